//! Retention and purge. Every event has a retention period (`retention_days`, 90 unless chosen
//! at creation); when it has passed, the server deletes the event and every file of it. A
//! facilitator can purge an event at once (`DELETE /api/events/{event}`), and so can the
//! server's operator while no server runs on the data directory (`bothy purge EVENT_ID`).
//!
//! A purge, in this order:
//! 1. `events/<id>/` is renamed to `events/<id>.purging/` and `events/` fsynced. This is the
//!    commit point: from here on a restart never loads the event, it finishes the purge. The
//!    event leaves memory too, so its join codes, links and facilitator secret stop working.
//! 2. Each of its rooms is closed: connections are closed with 4004 (the board no longer
//!    exists), the room's task saves what it has in flight and ends, and the room can no
//!    longer be opened.
//! 3. Each `rooms/<room>/` is deleted and `rooms/` fsynced; then `events/<id>.purging/` (with
//!    `event.json` and any event snapshot) is deleted and `events/` fsynced.
//!
//! At start-up, before anything is served, interrupted purges are finished and expired events
//! purged ([`load_events`]); then [`run_sweeper`] purges expired events every
//! `--retention-sweep-secs` (an hour by default). Purges run one at a time.

use crate::events::{self, EventError, EventIndex};
use crate::registry::Registry;
use crate::storage::{PurgeReport, Storage, StorageError};
use bothy_shared::RoomId;
use bothy_shared::ids::EventId;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a purge did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("there is no such event")]
    NoSuchEvent,
    /// The files could not all be deleted. The event is already gone from memory and will not
    /// be loaded again; the next sweep or start finishes the deletion.
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the purge task failed: {0}")]
    Task(String),
}

impl From<EventError> for PurgeError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::NoSuchEvent => PurgeError::NoSuchEvent,
            EventError::Storage(StorageError::NoSuchEvent(_)) => PurgeError::NoSuchEvent,
            EventError::Storage(e) => PurgeError::Storage(e),
            EventError::Exhausted(what) => PurgeError::Task(format!("no free {what}")),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PurgeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PurgeError::Task(e.to_string()))
}

/// Purges an event from a running server: forgets it, closes its rooms (disconnecting
/// everyone in them), and deletes every file of it. Waits for any other purge to finish first.
/// Run it as its own task if the caller may be dropped (an HTTP request): it must not stop
/// halfway.
pub async fn purge_event(registry: &Registry, event: &EventId) -> Result<PurgeReport, PurgeError> {
    let _one_at_a_time = registry.purge_lock().lock().await;
    purge_locked(registry, event).await
}

async fn purge_locked(registry: &Registry, event: &EventId) -> Result<PurgeReport, PurgeError> {
    let events = registry.events().clone();
    let id = event.clone();
    let record = blocking(move || events.begin_purge(&id)).await??;
    let rooms: Vec<RoomId> = record.rooms.iter().map(|r| r.room.clone()).collect();
    for room in &rooms {
        registry.close_room(room).await;
    }
    let storage = registry.storage().clone();
    let (id, to_delete) = (event.clone(), rooms.clone());
    let report = blocking(move || storage.finish_event_purge(&id, &to_delete)).await??;
    for room in &rooms {
        registry.forget_closed(room);
    }
    tracing::info!(event = %event, rooms = rooms.len(), files = report.files, "event purged");
    Ok(report)
}

/// One retention sweep on a running server: finishes any purge that did not complete, then
/// purges every event whose retention period has ended at `now_ms`. Returns the events
/// purged. Failures are logged; the next sweep tries again.
pub async fn sweep(registry: &Registry, now_ms: u64) -> Vec<EventId> {
    let _one_at_a_time = registry.purge_lock().lock().await;
    let storage = registry.storage().clone();
    match blocking(move || storage.finish_interrupted_purges()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not finish an interrupted purge"),
        Err(e) => tracing::error!(error = %e, "could not finish an interrupted purge"),
    }
    let mut purged = Vec::new();
    for event in registry.events().expired(now_ms) {
        match purge_locked(registry, &event).await {
            Ok(_) => {
                tracing::info!(event = %event, "the event's retention period ended; it was purged");
                purged.push(event);
            }
            Err(PurgeError::NoSuchEvent) => {}
            Err(e) => {
                tracing::error!(event = %event, error = %e, "could not purge an expired event")
            }
        }
    }
    purged
}

/// Sweeps every `every` until shutdown (the first sweep is at start-up, in [`load_events`]).
pub async fn run_sweeper(registry: Registry, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        sweep(&registry, events::now_ms()).await;
    }
}

/// Loads the events at start-up (blocking), before any room opens or anything is served:
/// finishes every purge a crash interrupted, reads the events, and purges those whose
/// retention period has ended at `now_ms`. A purge that fails is logged and left to the
/// next sweep; it does not stop the server.
pub fn load_events(storage: Arc<Storage>, now_ms: u64) -> Result<EventIndex, StorageError> {
    if let Err(e) = storage.finish_interrupted_purges() {
        tracing::error!(error = %e, "could not finish an interrupted purge");
    }
    let index = EventIndex::load(storage.clone())?;
    for event in index.expired(now_ms) {
        let purged = index
            .begin_purge(&event)
            .map_err(PurgeError::from)
            .and_then(|record| {
                let rooms: Vec<RoomId> = record.rooms.iter().map(|r| r.room.clone()).collect();
                Ok(storage.finish_event_purge(&event, &rooms)?)
            });
        match purged {
            Ok(report) => {
                tracing::info!(event = %event, files = report.files, "the event's retention period ended; it was purged")
            }
            Err(e) => {
                tracing::error!(event = %event, error = %e, "could not purge an expired event")
            }
        }
    }
    Ok(index)
}

/// The message when `bothy purge` finds a server holding the data directory.
pub const SERVER_RUNNING: &str = "Bothy is running on this data directory: purge from the facilitator overview or stop the server first";

/// `bothy purge EVENT_ID`: purges an event from the files while no server runs on the data
/// directory, and says what was deleted. Exit code 1, with a message, for an id that is not
/// an event's, a data directory in use by a server, or an I/O error.
pub fn purge_command(data_dir: &Path, event: &str) -> ExitCode {
    match purge_offline(data_dir, event) {
        Ok((id, report)) => {
            println!(
                "Purged event {id}: deleted {} folders and {} files in {}:",
                report.folders.len(),
                report.files,
                data_dir.display()
            );
            for folder in &report.folders {
                println!("  {}", folder.display());
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bothy purge: {message}");
            ExitCode::FAILURE
        }
    }
}

fn purge_offline(data_dir: &Path, event: &str) -> Result<(EventId, PurgeReport), String> {
    let id = EventId::parse(event).map_err(|_| {
        format!(
            "{event:?} is not an event id (it is the letters and digits after /e/ in the \
             facilitator link)"
        )
    })?;
    if !data_dir.join("events").is_dir() {
        return Err(format!(
            "{} is not a Bothy data directory (it has no events folder)",
            data_dir.display()
        ));
    }
    let storage = match Storage::open(data_dir, Default::default()) {
        Ok(s) => s,
        Err(StorageError::Locked(_)) => return Err(SERVER_RUNNING.to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    let finished = storage
        .finish_interrupted_purges()
        .map_err(|e| e.to_string())?;
    match storage.purge_event_files(&id) {
        Ok(report) => Ok((id, report)),
        Err(StorageError::NoSuchEvent(_)) => {
            // Its purge was interrupted and has just been finished.
            match finished.into_iter().find(|(e, _)| *e == id) {
                Some((_, report)) => Ok((id, report)),
                None => Err(format!(
                    "there is no event {id} in {} (nothing was deleted)",
                    data_dir.display()
                )),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{NewEvent, NewRoom};
    use crate::storage::Faults;
    use bothy_shared::Limits;

    fn new_event(days: u32) -> NewEvent {
        let rooms = vec![
            NewRoom {
                name: "A".into(),
                prompt: "Why?".into(),
            },
            NewRoom {
                name: "B".into(),
                prompt: "How?".into(),
            },
        ];
        NewEvent::new("Day", true, rooms, &Limits::default())
            .unwrap()
            .with_retention_days(days)
            .unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn expired_events_are_purged_at_start_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let index = EventIndex::load(storage.clone()).unwrap();
        let short = index.create(new_event(1)).unwrap().event;
        let long = index.create(new_event(3650)).unwrap().event;
        assert_eq!(short.expires_at(), short.created_at + 86_400_000);
        drop(index);
        // A day and a bit later: only the one-day event has expired.
        let later = short.created_at + 86_400_000 + 1;
        let index = load_events(storage.clone(), later).unwrap();
        assert!(index.get(&short.id).is_none());
        assert!(index.get(&long.id).is_some());
        assert_eq!(
            entries(&dir.path().join("events")),
            vec![long.id.to_string()]
        );
        let mut rooms: Vec<String> = long.rooms.iter().map(|r| r.room.to_string()).collect();
        rooms.sort();
        assert_eq!(entries(&dir.path().join("rooms")), rooms);
        for r in &short.rooms {
            assert!(index.lookup_code(&r.code).is_none());
            assert_eq!(index.event_of(&r.room), None);
        }
    }

    #[test]
    fn a_purge_cut_short_at_any_step_is_finished_at_start() {
        for step in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
            let index = EventIndex::load(storage.clone()).unwrap();
            let gone = index.create(new_event(90)).unwrap().event;
            let kept = index.create(new_event(90)).unwrap().event;
            index.begin_purge(&gone.id).unwrap();
            // Step 0: only renamed. Step 1: one room deleted. Step 2: every room deleted.
            let deleted = match step {
                0 => 0,
                1 => 1,
                _ => gone.rooms.len(),
            };
            for r in &gone.rooms[..deleted] {
                std::fs::remove_dir_all(storage.room_dir(&r.room)).unwrap();
            }
            drop(index);
            let index = load_events(storage.clone(), events::now_ms()).unwrap();
            assert_eq!(index.len(), 1);
            assert_eq!(
                entries(&dir.path().join("events")),
                vec![kept.id.to_string()],
                "step {step}"
            );
            assert_eq!(entries(&dir.path().join("rooms")).len(), kept.rooms.len());
        }
    }

    #[test]
    fn the_offline_purge_refuses_a_running_server_and_unknown_events() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let index = EventIndex::load(storage.clone()).unwrap();
        let event = index.create(new_event(90)).unwrap().event;
        // The lock is held (as by a server).
        let err = purge_offline(dir.path(), event.id.as_str()).unwrap_err();
        assert_eq!(err, SERVER_RUNNING);
        drop(index);
        drop(storage);
        assert!(
            purge_offline(dir.path(), "nosuchevent")
                .unwrap_err()
                .contains("there is no event nosuchevent")
        );
        assert!(
            purge_offline(dir.path(), "../etc")
                .unwrap_err()
                .contains("is not an event id")
        );
        let (id, report) = purge_offline(dir.path(), event.id.as_str()).unwrap();
        assert_eq!(id, event.id);
        assert_eq!(report.folders.len(), 3, "two rooms and the event");
        assert!(report.files >= 3, "{report:?}");
        assert!(entries(&dir.path().join("events")).is_empty());
        assert!(entries(&dir.path().join("rooms")).is_empty());
    }
}
