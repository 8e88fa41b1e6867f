//! `GET /metrics`: a handful of counters, one gauge and three histograms in the Prometheus text
//! format (version 0.0.4), written by hand.
//!
//! Hand-written because there are only a few series, all known at compile time: atomics and a
//! `String` do the job with no dependency and no global registry. Each server owns one
//! [`Metrics`] (reached through the rooms' [`RoomConfig`](crate::room::RoomConfig)), so two
//! servers in one test process never share counts. Every hook is one relaxed atomic add; nothing
//! here takes a lock or allocates on the hot path.

use crate::http::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets: 50 µs to 2.5 s, finest where
/// an fsync and a loopback fan-out fall (0.1 to 10 ms).
const LATENCY_BUCKETS: [f64; 20] = [
    0.000_05, 0.000_1, 0.000_2, 0.000_3, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002, 0.003, 0.005,
    0.007_5, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the batch-size histogram's buckets (operations per fsync).
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Everything `/metrics` reports, for one server.
#[derive(Debug)]
pub struct Metrics {
    /// Open WebSocket connections (joined or not yet joined).
    connections: AtomicU64,
    /// Operations saved and sent to the room.
    ops_applied: AtomicU64,
    /// Operations refused (any reason, `invalid` and `read_only` included).
    ops_rejected: AtomicU64,
    /// Messages put into members' outgoing queues by room broadcasts (`applied` and notices;
    /// not presence).
    fanout_messages: AtomicU64,
    /// Members closed with 4008 because their outgoing queue was full.
    slow_members_closed: AtomicU64,
    /// New TCP connections that waited their turn (pacing per address).
    connections_paced: AtomicU64,
    /// New TCP connections answered 429 at once: too many from their address were waiting.
    connections_refused_at_accept: AtomicU64,
    /// Time to write and `fdatasync` one journal batch.
    pub journal_fsync: Histogram<20>,
    /// Operations saved by one fsync (group commit).
    pub journal_batch_ops: Histogram<11>,
    /// From an operation being applied to the working board until its `applied` message is in
    /// every member's queue: the wait for the batch, its fsync, and the fan-out.
    pub apply_to_broadcast: Histogram<20>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections: AtomicU64::new(0),
            ops_applied: AtomicU64::new(0),
            ops_rejected: AtomicU64::new(0),
            fanout_messages: AtomicU64::new(0),
            slow_members_closed: AtomicU64::new(0),
            connections_paced: AtomicU64::new(0),
            connections_refused_at_accept: AtomicU64::new(0),
            journal_fsync: Histogram::new(LATENCY_BUCKETS),
            journal_batch_ops: Histogram::new(BATCH_BUCKETS),
            apply_to_broadcast: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

/// Counts a connection as open until it is dropped.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one open connection; hold the guard for as long as it is open.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// `count` operations were saved and sent to their room.
    pub fn ops_applied(&self, count: u64) {
        self.ops_applied.fetch_add(count, Ordering::Relaxed);
    }

    /// One operation was refused.
    pub fn op_rejected(&self) {
        self.ops_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A broadcast queued `count` messages.
    pub fn fanout(&self, count: u64) {
        self.fanout_messages.fetch_add(count, Ordering::Relaxed);
    }

    /// A member was closed because its queue was full.
    pub fn slow_member_closed(&self) {
        self.slow_members_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// A new TCP connection waits its turn.
    pub fn connection_paced(&self) {
        self.connections_paced.fetch_add(1, Ordering::Relaxed);
    }

    /// A new TCP connection is answered 429 at once (too many from its address waiting).
    pub fn connection_refused_at_accept(&self) {
        self.connections_refused_at_accept
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the room counts taken by the caller.
    pub fn render(&self, rooms_open: usize, rooms_read_only: usize) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "bothy_connections",
            "Open WebSocket connections.",
            get(&self.connections),
        );
        gauge(
            &mut out,
            "bothy_rooms_open",
            "Rooms loaded since the server started.",
            rooms_open as u64,
        );
        gauge(
            &mut out,
            "bothy_rooms_read_only",
            "Rooms that stopped accepting changes because they could not save.",
            rooms_read_only as u64,
        );
        counter(
            &mut out,
            "bothy_ops_applied_total",
            "Operations saved to the journal and sent to the room.",
            get(&self.ops_applied),
        );
        counter(
            &mut out,
            "bothy_ops_rejected_total",
            "Operations refused, for any reason.",
            get(&self.ops_rejected),
        );
        counter(
            &mut out,
            "bothy_fanout_messages_total",
            "Messages queued to members by room broadcasts (applied operations and notices).",
            get(&self.fanout_messages),
        );
        counter(
            &mut out,
            "bothy_slow_members_closed_total",
            "Connections closed with 4008 because their outgoing queue was full.",
            get(&self.slow_members_closed),
        );
        counter(
            &mut out,
            "bothy_connections_paced_total",
            "New TCP connections that waited their turn: their address was past its burst.",
            get(&self.connections_paced),
        );
        counter(
            &mut out,
            "bothy_connections_refused_at_accept_total",
            "New TCP connections answered 429 at once: too many from their address were waiting.",
            get(&self.connections_refused_at_accept),
        );
        self.journal_fsync.render(
            &mut out,
            "bothy_journal_fsync_seconds",
            "Time to write and fdatasync one journal batch.",
        );
        self.journal_batch_ops.render(
            &mut out,
            "bothy_journal_batch_ops",
            "Operations saved by one journal fsync.",
        );
        self.apply_to_broadcast.render(
            &mut out,
            "bothy_apply_to_broadcast_seconds",
            "From an operation applied to its applied message queued to every member.",
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
    );
}

/// A fixed-bucket histogram of `N` buckets plus `+Inf`. Observations are lock-free.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [f64; N],
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; N],
    overflow: AtomicU64,
    /// The sum of observations, in millionths of the unit (µs for seconds).
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Self {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records a duration (seconds histograms).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Records a value in the histogram's unit.
    pub fn observe(&self, value: f64) {
        match self.bounds.iter().position(|b| value <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_micros
            .fetch_add((value * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.overflow.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = write!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {sum}\n{name}_count {cumulative}\n"
        );
    }
}

/// `GET /metrics`.
pub async fn handler(State(state): State<AppState>) -> Response {
    let (open, read_only) = state.registry.counts();
    let body = state.registry.config().metrics.render(open, read_only);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let m = Metrics::default();
        m.journal_fsync.observe(0.000_2);
        m.journal_fsync.observe(0.003);
        m.journal_fsync.observe(10.0);
        let text = m.render(2, 0);
        assert!(text.contains("bothy_journal_fsync_seconds_bucket{le=\"0.0001\"} 0\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_bucket{le=\"0.0002\"} 1\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_bucket{le=\"0.003\"} 2\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_count 3\n"));
        assert!(text.contains("bothy_journal_fsync_seconds_sum 10.0032\n"));
        assert!(text.contains("# TYPE bothy_rooms_open gauge\nbothy_rooms_open 2\n"));
    }

    #[test]
    fn the_connection_gauge_follows_guards() {
        let m = Metrics::new();
        let a = m.connection_opened();
        let b = m.connection_opened();
        drop(a);
        assert!(m.render(0, 0).contains("\nbothy_connections 1\n"));
        drop(b);
        assert!(m.render(0, 0).contains("\nbothy_connections 0\n"));
    }
}
