//! Work that can wait behind the live traffic: one thread at the lowest CPU priority (nice
//! 19). On a busy core the kernel then runs the rooms' fan-out first and this work in the gaps,
//! so a crowd fetching a big board does not hold up the notes everyone else is posting. On an
//! idle core it runs at once, as any thread would.
//!
//! Only work the room's members are not waiting on belongs here: a big board's new version for
//! joiners (who meanwhile get the older one), its gzip for their downloads, and a compaction's
//! snapshot while the server runs (the journal holds everything it does meanwhile; at shutdown
//! the rooms save in parallel on tokio's blocking pool). The journal's writes stay on
//! tokio's blocking pool, where a confirmation never waits behind a compression.

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the background thread: the lowest priority there is.
pub const NICE: i32 = 19;

/// A handle to the background thread; it ends when the last handle is dropped.
#[derive(Debug)]
pub struct Background {
    jobs: mpsc::Sender<Job>,
}

impl Background {
    /// Starts the thread.
    pub fn start() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("bothy-background".into())
            .spawn(move || {
                lower_priority();
                for job in queue {
                    // A job that panics loses its own answer, not the thread.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the background thread and waits for its answer; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(work());
            }))
            .ok()?;
        rx.await.ok()
    }
}

/// Lowers the calling thread's priority (on Linux a nice value belongs to one thread).
fn lower_priority() {
    // SAFETY: gettid and setpriority only read and set the calling thread's attributes.
    let done = unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE)
    };
    if done != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not lower the background thread's priority; it runs at normal priority"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value.
    fn nice() -> i32 {
        // SAFETY: as in `lower_priority`.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[tokio::test]
    async fn work_runs_on_a_thread_of_the_lowest_priority_and_only_there() {
        let before = nice();
        let background = Background::start().unwrap();
        let (name, its_nice) = background
            .run(|| (std::thread::current().name().map(str::to_owned), nice()))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("bothy-background"));
        assert_eq!(its_nice, NICE);
        assert_eq!(nice(), before, "the caller's priority is its own");
    }

    #[tokio::test]
    async fn jobs_are_answered_in_turn() {
        let background = Background::start().unwrap();
        let answers: Vec<_> =
            futures_util::future::join_all((0..50u32).map(|i| background.run(move || i * 2))).await;
        assert_eq!(answers, (0..50u32).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_job_that_panics_is_answered_none_and_the_next_is_served() {
        let background = Background::start().unwrap();
        assert_eq!(background.run(|| -> u32 { panic!("boom") }).await, None);
        assert_eq!(background.run(|| 7).await, Some(7));
    }
}
