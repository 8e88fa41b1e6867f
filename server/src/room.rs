//! One task owns one room (the actor pattern). [`RoomActor`] owns the board, the sequence
//! number, the members and the journal; everything else talks to it through a [`RoomHandle`].
//!
//! An operation goes: validate and apply to the working board → append to the next journal
//! batch → (one batch at a time, on a blocking thread) write and fsync → replay onto the
//! confirmed board → fan out `applied` to every member. So a confirmation is never sent before
//! the operation is durable, several operations share each fsync, and the async workers never
//! block on the disk.

use crate::background::Background;
use crate::metrics::Metrics;
use crate::storage::{
    self, Journal, JournalRecord, LoadedRoom, RecentOp, RoomSnapshot, SNAPSHOT_FORMAT,
};
use crate::tickets::{BoardTickets, BoardVersion};
use axum::extract::ws::Utf8Bytes;
use bothy_shared::ids::{ActorKey, NoteId, OpId, RoomId};
use bothy_shared::op::NoFields;
use bothy_shared::protocol::{
    self, AlreadyApplied, AppliedOp, Empty, JoinedAs, Notice, Presence, Rejected, ServerMessage,
    SyncOut, SyncTag, WelcomeOut, WelcomeTag,
};
use bothy_shared::{Board, Delivery, Limits, Op, OpContext, OpError, RejectReason, Role, Viewer};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// How many applied operations a room keeps in memory for reconnecting browsers.
const CATCH_UP_RING: usize = 1024;
/// How many applied op ids a room remembers for de-duplication (saved in snapshots).
const RECENT_OPS_CAP: usize = 10_000;
/// Commands waiting for a room task before senders wait.
const COMMAND_QUEUE: usize = 1024;
/// The most often a room tells everyone how many people are here: when many join or leave at
/// once, one message per member per interval instead of one per member per arrival.
const PRESENCE_EVERY: Duration = Duration::from_millis(250);

/// How long a big board, once serialised (and gzipped), is given to joiners after the room has
/// changed, with the changes since following the welcome, before a fresh one is made
/// (`RoomConfig::share_board_for`).
pub const SHARE_FOR: Duration = Duration::from_secs(1);

/// A connection's id, unique within the server process.
pub type ConnId = u64;

/// What a connection's writer task sends on the socket.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
}

/// Why a room closed a member's connection.
#[derive(Debug, Clone, Copy)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

/// Room settings taken from the server's configuration.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub limits: Limits,
    /// A board whose JSON is longer than this goes to a joiner as a link, not in the welcome.
    pub inline_board_max: usize,
    /// The links to boards not yet fetched, shared with the HTTP handler that serves them.
    pub tickets: Arc<BoardTickets>,
    /// Where big boards' versions and gzips are made, behind the live traffic.
    pub background: Arc<Background>,
    /// How long a big board once serialised is shared by later joiners ([`SHARE_FOR`]).
    pub share_board_for: Duration,
    /// Compact the journal into a snapshot after this many records.
    pub compact_every: usize,
    /// The server's counters for `/metrics`, shared by every room.
    pub metrics: Arc<Metrics>,
}

/// A member joining: where to send its messages and how to close it.
#[derive(Debug)]
pub struct JoinRequest {
    pub conn: ConnId,
    pub actor: ActorKey,
    /// Facilitator when the join carried the event's facilitator secret.
    pub role: Role,
    pub name: Option<String>,
    pub last_seq: Option<u64>,
    pub out: mpsc::Sender<Outbound>,
    pub kick: oneshot::Sender<CloseReason>,
}

#[derive(Debug)]
enum Command {
    Join(JoinRequest),
    Op {
        conn: ConnId,
        op_id: OpId,
        op: Op,
    },
    Reject {
        conn: ConnId,
        rejected: Rejected,
    },
    Ping {
        conn: ConnId,
    },
    Leave {
        conn: ConnId,
    },
    /// The event's facilitator secret changed: close every facilitator connection.
    DropFacilitators,
    /// A copy of the confirmed board and its sequence number, for a snapshot.
    Export(oneshot::Sender<(u64, Board)>),
}

/// A cheap, cloneable way to talk to a room's task.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<Command>,
    read_only: Arc<AtomicBool>,
}

/// The room's task has ended (server shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the room has closed")]
pub struct RoomClosed;

impl RoomHandle {
    pub async fn join(&self, req: JoinRequest) -> Result<(), RoomClosed> {
        self.tx
            .send(Command::Join(req))
            .await
            .map_err(|_| RoomClosed)
    }

    pub async fn op(&self, conn: ConnId, op_id: OpId, op: Op) -> Result<(), RoomClosed> {
        self.tx
            .send(Command::Op { conn, op_id, op })
            .await
            .map_err(|_| RoomClosed)
    }

    /// Sends a rejection through the room, so it stays in order with the member's other replies.
    pub async fn reject(&self, conn: ConnId, rejected: Rejected) -> Result<(), RoomClosed> {
        self.tx
            .send(Command::Reject { conn, rejected })
            .await
            .map_err(|_| RoomClosed)
    }

    /// Answers `pong` once every change accepted before it has been saved and sent, so a ping is
    /// a barrier a client can wait on.
    pub async fn ping(&self, conn: ConnId) -> Result<(), RoomClosed> {
        self.tx
            .send(Command::Ping { conn })
            .await
            .map_err(|_| RoomClosed)
    }

    /// Closes every facilitator connection (after the facilitator secret was changed); they
    /// must join again with the new secret.
    pub async fn drop_facilitators(&self) {
        let _ = self.tx.send(Command::DropFacilitators).await;
    }

    /// A copy of the room's confirmed board and its sequence number. The room only clones the
    /// board; everything else (serialising, writing) happens elsewhere, so it never pauses.
    pub async fn export(&self) -> Result<(u64, Board), RoomClosed> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Export(tx))
            .await
            .map_err(|_| RoomClosed)?;
        rx.await.map_err(|_| RoomClosed)
    }

    pub async fn leave(&self, conn: ConnId) {
        let _ = self.tx.send(Command::Leave { conn }).await;
    }

    /// True once the room has stopped accepting changes because it could not save.
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }
}

struct Member {
    actor: ActorKey,
    role: Role,
    /// The display name shown on this member's new notes; `None` for anonymous.
    name: Option<String>,
    out: mpsc::Sender<Outbound>,
    kick: Option<oneshot::Sender<CloseReason>>,
    /// The headcount this member was last told.
    presence_told: Headcount,
}

/// Who is in a room, as `presence` tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Headcount {
    /// People: a person with two tabs open counts once.
    people: u32,
    /// Those of them with a facilitator connection.
    facilitators: u32,
}

impl Headcount {
    /// From each person present and whether they have a facilitator connection.
    fn of(people: &HashMap<&ActorKey, bool>) -> Self {
        Headcount {
            people: people.len() as u32,
            facilitators: people.values().filter(|f| **f).count() as u32,
        }
    }
}

/// An operation applied to the working board, waiting for its batch to be saved.
struct PendingOp {
    record: JournalRecord,
    /// The `applied` message, serialised once for every member.
    message: Utf8Bytes,
    /// When it was applied to the working board (for the apply-to-broadcast histogram).
    accepted: Instant,
    /// Who is told about it.
    delivery: Delivery,
}

/// Operations waiting for the next fsync, and replies to send once they are durable.
#[derive(Default)]
struct Batch {
    ops: Vec<PendingOp>,
    /// Replies that must wait until the batch is durable.
    deferred: Vec<Deferred>,
}

/// A reply held until the operations before it are saved.
enum Deferred {
    /// `already_applied` for a resend of an operation that is not yet durable.
    Confirmation(ConnId, Utf8Bytes),
    /// `pong`, sent after everything accepted before the ping.
    Pong(ConnId),
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.deferred.is_empty()
    }
}

/// The disk work a room has in progress; it holds the journal until it returns.
enum Flight {
    Batch {
        batch: Batch,
        task: JoinHandle<(Journal, Result<(), storage::StorageError>)>,
    },
    /// The first step of a compaction: the journal moves aside to be replaced by `snapshot`
    /// (see [`Journal::rotate`]).
    Rotation {
        snapshot: RoomSnapshot,
        task: JoinHandle<(Journal, Result<(), storage::StorageError>)>,
    },
}

/// The task that owns one room.
pub struct RoomActor {
    room: RoomId,
    config: RoomConfig,
    rx: mpsc::Receiver<Command>,
    /// The board with every accepted operation, including those still being saved.
    working: Board,
    /// The sequence number of the last accepted operation.
    working_seq: u64,
    /// The board with only saved (confirmed) operations: what new members are shown.
    confirmed: Board,
    confirmed_seq: u64,
    /// What joins ask of the confirmed board (see [`BoardFacts`]); brought up to date with
    /// `confirmed` by [`Self::refresh_facts`] before use.
    facts: BoardFacts,
    /// The confirmed board as facilitators see it, serialised at most once per change; kept
    /// after later changes, for joiners sent a board by link (see `shared_version`).
    facilitator_json: Option<Arc<BoardVersion>>,
    /// The confirmed board as a participant sees it when no note is private (then every
    /// participant sees the same), likewise.
    participant_json: Option<Arc<BoardVersion>>,
    /// Fresh versions of a big board being made on the background thread (see
    /// `shared_version`), and for which view: `[participants', facilitators']`.
    making: JoinSet<(Role, Option<Arc<BoardVersion>>)>,
    making_view: [bool; 2],
    /// The last applied messages and who was told, for members catching up after a reconnect.
    ring: VecDeque<RingEntry>,
    /// Applied op ids → sequence number, oldest first in `recent_order`.
    recent: HashMap<(ActorKey, OpId), u64>,
    recent_order: VecDeque<RecentOp>,
    /// In join order (connection ids only grow), so a fan-out serves the people who were here
    /// first before a crowd of newcomers.
    members: BTreeMap<ConnId, Member>,
    /// When the next presence message is due, if the count may have changed since the last.
    presence_due: Option<tokio::time::Instant>,
    presence_sent_at: Option<tokio::time::Instant>,
    next_batch: Batch,
    flight: Option<Flight>,
    /// `None` once a write failed: the room is then read-only until the server restarts.
    journal: Option<Journal>,
    read_only: Arc<AtomicBool>,
    shutdown: CancellationToken,
    /// Compact at the next quiet moment (a note's words were removed).
    compact_soon: bool,
    /// The second step of a compaction: the snapshot being saved on the background thread
    /// while the journal goes on taking operations (`None` in it: the job panicked).
    saving: Option<JoinHandle<Option<Result<(), storage::StorageError>>>>,
    /// Why saving a snapshot failed, until the room turns read-only (when no batch is in
    /// flight).
    save_failed: Option<String>,
}

/// What every join asks of the confirmed board, found in one pass over the notes and kept until
/// the board next changes. Before, each join scanned all the notes three times (its own notes,
/// its dots, any private note): with a hundred joining a 1,000-note board at once that was most
/// of the room's time, and everyone else's changes waited behind it in the room's queue.
struct BoardFacts {
    /// The confirmed sequence number these facts are of.
    seq: u64,
    /// Everyone who owns a note or has a dot on one: anyone else has nothing of their own yet.
    involved: HashSet<ActorKey>,
    /// Whether any note is private (then participants cannot share one view of the board).
    private: bool,
}

impl BoardFacts {
    fn of(board: &Board, seq: u64) -> Self {
        let mut involved = HashSet::new();
        let mut private = false;
        for note in board.notes.values() {
            private |= note.private;
            if let Some(owner) = &note.owner {
                involved.insert(owner.clone());
            }
            involved.extend(note.votes.keys().cloned());
        }
        Self {
            seq,
            involved,
            private,
        }
    }

    /// `actor`'s own notes and dots on `board`, the board these facts are of.
    fn own(&self, board: &Board, actor: &ActorKey) -> (Vec<NoteId>, Vec<(NoteId, u32)>) {
        if self.involved.contains(actor) {
            (board.notes_owned_by(actor), board.votes_of(actor))
        } else {
            (Vec::new(), Vec::new())
        }
    }
}

/// One applied message kept for catch-up.
struct RingEntry {
    seq: u64,
    message: Utf8Bytes,
    delivery: Delivery,
}

/// The actor key recorded for changes the server makes itself (a timer reaching zero). Real
/// keys are 32 hex digits, so it cannot collide with a person.
const SYSTEM_ACTOR: &str = "system";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages always serialise"))
}

impl RoomActor {
    /// Creates the actor for a loaded room and its handle. Run it with [`RoomActor::run`].
    pub fn new(
        room: RoomId,
        loaded: LoadedRoom,
        config: RoomConfig,
        shutdown: CancellationToken,
    ) -> (Self, RoomHandle) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let read_only = Arc::new(AtomicBool::new(loaded.read_only.is_some()));
        let journal = match loaded.read_only {
            None => Some(loaded.journal),
            Some(_) => None,
        };
        let mut recent = HashMap::new();
        let mut recent_order = VecDeque::new();
        let skip = loaded.recent_ops.len().saturating_sub(RECENT_OPS_CAP);
        for r in loaded.recent_ops.into_iter().skip(skip) {
            recent.insert((r.actor.clone(), r.op_id.clone()), r.seq);
            recent_order.push_back(r);
        }
        let actor = Self {
            room,
            config,
            rx,
            working: loaded.board.clone(),
            working_seq: loaded.seq,
            facts: BoardFacts::of(&loaded.board, loaded.seq),
            confirmed: loaded.board,
            confirmed_seq: loaded.seq,
            facilitator_json: None,
            participant_json: None,
            making: JoinSet::new(),
            making_view: [false; 2],
            ring: VecDeque::new(),
            recent,
            recent_order,
            members: BTreeMap::new(),
            presence_due: None,
            presence_sent_at: None,
            next_batch: Batch::default(),
            flight: None,
            journal,
            read_only: read_only.clone(),
            shutdown,
            compact_soon: false,
            saving: None,
            save_failed: None,
        };
        (actor, RoomHandle { tx, read_only })
    }

    pub async fn run(mut self) {
        let mut stopping = false;
        loop {
            self.start_disk_work(stopping);
            if stopping && self.flight.is_none() && self.saving.is_none() {
                break;
            }
            let timer = self.timer_deadline().filter(|_| !stopping);
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                }
                _ = sleep_until(timer), if timer.is_some() => self.end_timer(),
                _ = sleep_until(self.presence_due), if self.presence_due.is_some() => {
                    self.send_presence();
                }
                result = wait_flight(&mut self.flight), if self.flight.is_some() => {
                    let flight = self.flight.take().expect("flight is some");
                    self.finish_flight(flight, result);
                }
                result = wait_saving(&mut self.saving), if self.saving.is_some() => {
                    self.saving = None;
                    self.finish_saving(result);
                }
                Some(made) = self.making.join_next(), if !self.making.is_empty() => {
                    self.version_made(made);
                }
                cmd = self.rx.recv(), if !stopping => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => stopping = true,
                },
            }
        }
        tracing::debug!(room = %self.room, seq = self.confirmed_seq, "room task ended");
    }

    /// Starts the next fsync batch, or a compaction when the journal is long (or the room is
    /// stopping and has unsaved journal records), if no disk work is in progress.
    ///
    /// A compaction holds the journal only to rotate it (a rename and a folder fsync); the
    /// snapshot is then saved beside the journal, which goes on taking batches, so a big board's
    /// snapshot never holds up anyone's confirmation. One compaction at a time.
    fn start_disk_work(&mut self, stopping: bool) {
        if self.flight.is_some() {
            return;
        }
        if let Some(problem) = self.save_failed.take() {
            if self.journal.is_some() {
                self.become_read_only(&problem, None);
            }
            return;
        }
        let Some(mut journal) = self.journal.take() else {
            return;
        };
        if !self.next_batch.is_empty() {
            let batch = std::mem::take(&mut self.next_batch);
            let mut bytes = Vec::new();
            for op in &batch.ops {
                bytes.extend_from_slice(&op.record.encode());
            }
            let count = batch.ops.len();
            let metrics = self.config.metrics.clone();
            let task = tokio::task::spawn_blocking(move || {
                let result = if count == 0 {
                    Ok(())
                } else {
                    let started = Instant::now();
                    let result = journal.append(&bytes, count);
                    metrics.journal_fsync.observe_duration(started.elapsed());
                    metrics.journal_batch_ops.observe(count as f64);
                    result
                };
                (journal, result)
            });
            self.flight = Some(Flight::Batch { batch, task });
        } else if self.saving.is_none()
            && (journal.records >= self.config.compact_every
                || ((stopping || self.compact_soon) && journal.records > 0))
        {
            // No batch in flight and none waiting: the journal holds exactly the confirmed
            // operations, which this snapshot holds.
            self.compact_soon = false;
            let snapshot = RoomSnapshot {
                format: SNAPSHOT_FORMAT,
                room: self.room.clone(),
                seq: self.confirmed_seq,
                board: self.confirmed.clone(),
                recent_ops: self.recent_order.iter().cloned().collect(),
            };
            let task = tokio::task::spawn_blocking(move || {
                let result = journal.rotate();
                (journal, result)
            });
            self.flight = Some(Flight::Rotation { snapshot, task });
        } else {
            self.journal = Some(journal);
        }
    }

    fn finish_flight(
        &mut self,
        flight: Flight,
        result: Result<(Journal, Result<(), storage::StorageError>), tokio::task::JoinError>,
    ) {
        let (journal, outcome) = match result {
            Ok((journal, outcome)) => (Some(journal), outcome.map_err(|e| e.to_string())),
            Err(e) => (None, Err(format!("the disk task failed: {e}"))),
        };
        match (flight, outcome) {
            (Flight::Batch { batch, .. }, Ok(())) => {
                self.journal = journal;
                self.commit(batch);
            }
            (Flight::Rotation { snapshot, .. }, Ok(())) => {
                if let Some(journal) = journal {
                    let dir = journal.dir().to_owned();
                    self.journal = Some(journal);
                    let save = move || storage::save_compacted(&dir, &snapshot);
                    self.saving = Some(if self.shutdown.is_cancelled() {
                        // The room is stopping (with the server, as a rule, when every room
                        // saves at once): in parallel, at normal priority, with no live
                        // traffic of its own left to give way to.
                        tokio::task::spawn_blocking(move || Some(save()))
                    } else {
                        // Nobody waits on the snapshot any more: it is serialised and written
                        // at the lowest priority, in the gaps between the live traffic.
                        let background = self.config.background.clone();
                        tokio::spawn(async move { background.run(save).await })
                    });
                }
            }
            (flight, Err(problem)) => {
                let unsaved = match flight {
                    Flight::Batch { batch, .. } => Some(batch),
                    Flight::Rotation { .. } => None,
                };
                self.become_read_only(&problem, unsaved);
            }
        }
    }

    /// The snapshot of a compaction is saved, or could not be. On failure the room turns
    /// read-only as for a failed journal write, once any batch in flight is back (it may still
    /// be confirmed: its records are in the journal). Nothing confirmed is lost either way: the
    /// journals still hold every record the old snapshot lacks.
    fn finish_saving(
        &mut self,
        result: Result<Option<Result<(), storage::StorageError>>, JoinError>,
    ) {
        let problem = match result {
            Ok(Some(Ok(()))) => return,
            Ok(Some(Err(e))) => e.to_string(),
            Ok(None) => "saving the snapshot failed".to_owned(),
            Err(e) => format!("the disk task failed: {e}"),
        };
        if self.read_only.load(Ordering::Relaxed) {
            tracing::error!(room = %self.room, %problem, "could not save a snapshot");
            return;
        }
        self.save_failed = Some(problem);
    }

    /// A batch is durable: move the confirmed board forward and tell everyone who may know.
    fn commit(&mut self, batch: Batch) {
        self.config.metrics.ops_applied(batch.ops.len() as u64);
        for op in batch.ops {
            let seq = op.record.seq;
            if let Err(e) = self.confirmed.replay(&op.record.op, &op.record.context()) {
                // Cannot happen: the same operation applied to the working board in the same
                // order. Log loudly rather than panic the room.
                tracing::error!(room = %self.room, seq, error = %e, "confirmed board diverged from working board");
            }
            self.confirmed_seq = seq;
            if matches!(op.record.op, Op::RemoveNote(_)) {
                // The removed words are still in the journal: fold it into the snapshot soon,
                // so they leave the disk.
                self.compact_soon = true;
            }
            match &op.delivery {
                Delivery::Everyone => self.broadcast(&op.message),
                Delivery::Restricted(people) => {
                    let to: Vec<ConnId> = self
                        .members
                        .iter()
                        .filter(|(_, m)| m.role != Role::Participant || people.contains(&m.actor))
                        .map(|(c, _)| *c)
                        .collect();
                    for conn in to {
                        self.send_to(conn, op.message.clone());
                    }
                }
                Delivery::Resync => {
                    // Facilitators and the one who asked get the operation (so it settles);
                    // every participant then gets the board afresh.
                    let author = &op.record.actor;
                    let to: Vec<ConnId> = self
                        .members
                        .iter()
                        .filter(|(_, m)| m.role != Role::Participant || &m.actor == author)
                        .map(|(c, _)| *c)
                        .collect();
                    for conn in to {
                        self.send_to(conn, op.message.clone());
                    }
                    self.send_syncs();
                }
            }
            self.ring.push_back(RingEntry {
                seq,
                message: op.message,
                delivery: op.delivery,
            });
            if self.ring.len() > CATCH_UP_RING {
                self.ring.pop_front();
            }
            self.config
                .metrics
                .apply_to_broadcast
                .observe_duration(op.accepted.elapsed());
        }
        for d in batch.deferred {
            match d {
                Deferred::Confirmation(conn, msg) => self.send_to(conn, msg),
                Deferred::Pong(conn) => self.send_to(conn, encode(&ServerMessage::Pong(Empty {}))),
            }
        }
    }

    /// Sends every member a fresh board as they may see it (after a reveal, a hidden note,
    /// voting opening or closing). Boards that look the same to several people are serialised
    /// once.
    fn send_syncs(&mut self) {
        self.refresh_facts();
        let private = self.facts.private;
        let participants = self.members.values().any(|m| m.role == Role::Participant);
        if participants && !private {
            self.ensure_board_json(Role::Participant);
        }
        if self.members.values().any(|m| m.role != Role::Participant) {
            self.ensure_board_json(Role::Facilitator);
        }
        let mut slow = Vec::new();
        for (conn, m) in &self.members {
            let own_json;
            let board: &RawValue = match m.role {
                Role::Participant if private => {
                    own_json = view_json(&self.confirmed, Viewer::Participant(&m.actor));
                    &own_json
                }
                Role::Participant => self.participant_json.as_deref().expect("ensured").json(),
                _ => self.facilitator_json.as_deref().expect("ensured").json(),
            };
            let (mine, my_votes) = self.facts.own(&self.confirmed, &m.actor);
            let out = SyncOut {
                kind: SyncTag::Sync,
                seq: self.confirmed_seq,
                board,
                mine: &mine,
                my_votes: &my_votes,
            };
            let msg = Utf8Bytes::from(serde_json::to_string(&out).expect("sync always serialises"));
            if m.out.try_send(Outbound::Text(msg)).is_err() {
                slow.push(*conn);
            }
        }
        self.drop_members(slow);
    }

    /// A write or fsync failed. Never retry: what the kernel said was written may be lost. Stop
    /// accepting changes, put the working state back to what was confirmed, and say so.
    fn become_read_only(&mut self, problem: &str, unsaved: Option<Batch>) {
        tracing::error!(room = %self.room, %problem, "could not save to disk; the room is read-only");
        self.journal = None;
        self.read_only.store(true, Ordering::Relaxed);
        let mut lost = Vec::new();
        let mut pongs = Vec::new();
        for b in unsaved
            .into_iter()
            .chain([std::mem::take(&mut self.next_batch)])
        {
            lost.extend(b.ops);
            // Confirmations of unsaved ops are dropped: those ops are rejected below.
            pongs.extend(b.deferred.into_iter().filter_map(|d| match d {
                Deferred::Pong(conn) => Some(conn),
                Deferred::Confirmation(..) => None,
            }));
        }
        self.working = self.confirmed.clone();
        self.working_seq = self.confirmed_seq;
        let confirmed_seq = self.confirmed_seq;
        self.recent.retain(|_, seq| *seq <= confirmed_seq);
        self.recent_order.retain(|r| r.seq <= confirmed_seq);
        for op in lost {
            let rejected = Rejected {
                op_id: op.record.op_id.clone(),
                reason: RejectReason::ReadOnly,
                message: READ_ONLY_MESSAGE.into(),
            };
            let conns: Vec<ConnId> = self
                .members
                .iter()
                .filter(|(_, m)| m.actor == op.record.actor)
                .map(|(c, _)| *c)
                .collect();
            self.config.metrics.op_rejected();
            let msg = encode(&ServerMessage::Rejected(rejected));
            for c in conns {
                self.send_to(c, msg.clone());
            }
        }
        let notice = encode(&ServerMessage::ReadOnly(Notice {
            message: READ_ONLY_MESSAGE.into(),
        }));
        self.broadcast(&notice);
        for conn in pongs {
            self.send_to(conn, encode(&ServerMessage::Pong(Empty {})));
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join(req) => self.join(req),
            Command::Op { conn, op_id, op } => self.op(conn, op_id, op),
            Command::Reject { conn, rejected } => {
                self.config.metrics.op_rejected();
                self.send_to(conn, encode(&ServerMessage::Rejected(rejected)));
            }
            Command::Ping { conn } => {
                // A ping is a barrier: a presence message held back is sent before the pong.
                if self.presence_due.is_some() {
                    self.send_presence();
                }
                if self.next_batch.ops.is_empty() && self.flight.is_none() {
                    self.send_to(conn, encode(&ServerMessage::Pong(Empty {})));
                } else {
                    self.next_batch.deferred.push(Deferred::Pong(conn));
                }
            }
            Command::Leave { conn } => {
                if self.members.remove(&conn).is_some() {
                    self.presence_changed();
                }
            }
            Command::Export(reply) => {
                let _ = reply.send((self.confirmed_seq, self.confirmed.clone()));
            }
            Command::DropFacilitators => {
                let facilitators: Vec<ConnId> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.role == Role::Facilitator)
                    .map(|(c, _)| *c)
                    .collect();
                for conn in facilitators {
                    if let Some(mut m) = self.members.remove(&conn) {
                        kick(&mut m, LINK_CHANGED);
                    }
                }
                self.presence_changed();
            }
        }
    }

    /// Who is here: each person once (their tabs are one person), and whether any of their
    /// connections is a facilitator's. One pass and one map: a join in a room of a hundred
    /// members used to build four sets for this.
    fn people(&self) -> HashMap<&ActorKey, bool> {
        let mut people = HashMap::with_capacity(self.members.len() + 1);
        for m in self.members.values() {
            *people.entry(&m.actor).or_insert(false) |= m.role == Role::Facilitator;
        }
        people
    }

    /// Who is here now.
    fn headcount(&self) -> Headcount {
        Headcount::of(&self.people())
    }

    /// Who is here before `joining` joins, and after (it is not a member yet).
    fn headcount_with(&self, joining: &Member) -> (Headcount, Headcount) {
        let mut people = self.people();
        let before = Headcount::of(&people);
        *people.entry(&joining.actor).or_insert(false) |= joining.role == Role::Facilitator;
        (before, Headcount::of(&people))
    }

    /// Someone arrived or left: tell everyone now, or at the next [`PRESENCE_EVERY`] if a
    /// presence message went out less than that ago.
    fn presence_changed(&mut self) {
        if self.presence_due.is_some() {
            return;
        }
        let now = tokio::time::Instant::now();
        match self.presence_sent_at.map(|at| at + PRESENCE_EVERY) {
            Some(next) if next > now => self.presence_due = Some(next),
            _ => self.send_presence(),
        }
    }

    /// Tells every member who does not know it yet how many people are here.
    fn send_presence(&mut self) {
        self.presence_due = None;
        self.presence_sent_at = Some(tokio::time::Instant::now());
        let now = self.headcount();
        let msg = encode(&ServerMessage::Presence(Presence {
            count: now.people,
            facilitators: now.facilitators,
        }));
        let mut slow = Vec::new();
        for (conn, m) in self.members.iter_mut() {
            if m.presence_told == now {
                continue;
            }
            m.presence_told = now;
            if m.out.try_send(Outbound::Text(msg.clone())).is_err() {
                slow.push(*conn);
            }
        }
        self.drop_members(slow);
    }

    /// Finds the confirmed board's [`BoardFacts`] again if it changed since they were found.
    fn refresh_facts(&mut self) {
        if self.facts.seq != self.confirmed_seq {
            self.facts = BoardFacts::of(&self.confirmed, self.confirmed_seq);
        }
    }

    fn join(&mut self, req: JoinRequest) {
        let mut member = Member {
            actor: req.actor,
            role: req.role,
            name: req.name,
            out: req.out,
            kick: Some(req.kick),
            presence_told: Headcount::default(),
        };
        let mut catch_up = self.catch_up(&member, req.last_seq);
        self.refresh_facts();
        let (mine, my_votes) = self.facts.own(&self.confirmed, &member.actor);
        let private = self.facts.private;
        let (before, presence) = self.headcount_with(&member);
        member.presence_told = presence;
        let welcome = {
            let board: Option<Arc<BoardVersion>> = match (&catch_up, member.role) {
                (Some(_), _) => None,
                (None, Role::Participant) if private => Some(BoardVersion::new(
                    view_json(&self.confirmed, Viewer::Participant(&member.actor)),
                    self.confirmed_seq,
                )),
                (None, role) => match self.shared_version(&member) {
                    Some((version, since)) => {
                        catch_up = Some(since);
                        Some(version)
                    }
                    None => {
                        self.ensure_board_json(role);
                        self.board_json(role).cloned()
                    }
                },
            };
            let seq = board.as_ref().map_or(self.confirmed_seq, |b| b.seq);
            // A big board goes as a one-time link to a download, gzipped once for everyone.
            let board_url = board
                .as_ref()
                .filter(|b| b.json().get().len() > self.config.inline_board_max)
                .map(|b| format!("/api/boards/{}", self.config.tickets.issue(b.clone())));
            let board = board
                .as_deref()
                .map(BoardVersion::json)
                .filter(|_| board_url.is_none());
            let out = WelcomeOut {
                kind: WelcomeTag::Welcome,
                version: protocol::PROTOCOL_VERSION,
                room: self.room.as_str(),
                seq,
                board,
                board_url: board_url.as_deref(),
                mine_seq: (seq < self.confirmed_seq).then_some(self.confirmed_seq),
                mine: &mine,
                my_votes: &my_votes,
                presence: presence.people,
                facilitators: presence.facilitators,
                read_only: self.read_only.load(Ordering::Relaxed),
                role: if member.role == Role::Participant {
                    JoinedAs::Participant
                } else {
                    JoinedAs::Facilitator
                },
                now: now_ms(),
            };
            Utf8Bytes::from(serde_json::to_string(&out).expect("welcome always serialises"))
        };
        let mut ok = member.out.try_send(Outbound::Text(welcome)).is_ok();
        for msg in catch_up.unwrap_or_default() {
            ok &= member.out.try_send(Outbound::Text(msg)).is_ok();
        }
        if !ok {
            kick(&mut member, TOO_SLOW);
            return;
        }
        self.members.insert(req.conn, member);
        if presence != before {
            self.presence_changed();
        }
    }

    /// The messages a reconnecting member missed since `last_seq`, if the ring still has them
    /// all, they fit comfortably in the member's queue and none of them needs a fresh board;
    /// otherwise `None` (send the whole board).
    fn catch_up(&self, member: &Member, last_seq: Option<u64>) -> Option<Vec<Utf8Bytes>> {
        let seq = last_seq?;
        if seq == self.confirmed_seq {
            return Some(Vec::new());
        }
        let oldest_in_ring = self.ring.front().map_or(self.confirmed_seq + 1, |e| e.seq);
        if seq > self.confirmed_seq || seq + 1 < oldest_in_ring {
            return None;
        }
        let mut missed = Vec::new();
        for entry in self.ring.iter().filter(|e| e.seq > seq) {
            let sees = match &entry.delivery {
                Delivery::Everyone => true,
                Delivery::Restricted(people) => {
                    member.role != Role::Participant || people.contains(&member.actor)
                }
                Delivery::Resync => return None,
            };
            if sees {
                missed.push(entry.message.clone());
            }
        }
        (missed.len() < member.out.max_capacity() / 2).then_some(missed)
    }

    /// Serialises the confirmed board as this role sees it, if it changed since last time.
    fn ensure_board_json(&mut self, role: Role) {
        let seq = self.confirmed_seq;
        if self.board_json(role).is_some_and(|b| b.seq == seq) {
            return;
        }
        let json = view_json(&self.confirmed, shared_view(role));
        *self.board_json_slot(role) = Some(BoardVersion::new(json, seq));
    }

    fn board_json_slot(&mut self, role: Role) -> &mut Option<Arc<BoardVersion>> {
        if role == Role::Participant {
            &mut self.participant_json
        } else {
            &mut self.facilitator_json
        }
    }

    /// The last board serialised for this role, current or not.
    fn board_json(&self, role: Role) -> Option<&Arc<BoardVersion>> {
        if role == Role::Participant {
            self.participant_json.as_ref()
        } else {
            self.facilitator_json.as_ref()
        }
    }

    /// A board version a joiner may share with those who joined just before, and the changes
    /// since it: only for a board that goes by link (a big one), with every change since still
    /// in the ring and few enough to queue. Then a crowd joining a busy room costs one
    /// serialisation and one gzip a second, not one per joiner. A version made more than
    /// `share_board_for` ago is still shared, while a fresh one is made from a copy of the
    /// board on the background thread: serialising 2,000 notes here would hold up every
    /// member's messages for a millisecond, copying them takes a fifth of that.
    fn shared_version(&mut self, member: &Member) -> Option<(Arc<BoardVersion>, Vec<Utf8Bytes>)> {
        let version = self.board_json(member.role)?.clone();
        if version.seq == self.confirmed_seq
            || version.json().get().len() <= self.config.inline_board_max
        {
            return None;
        }
        let since = self.catch_up(member, Some(version.seq))?;
        if version.made.elapsed() > self.config.share_board_for {
            self.make_version_in_background(member.role);
        }
        Some((version, since))
    }

    /// Starts making the confirmed board's version for `role`'s view on the background
    /// thread, unless one is being made already.
    fn make_version_in_background(&mut self, role: Role) {
        if std::mem::replace(&mut self.making_view[view_index(role)], true) {
            return;
        }
        let board = self.confirmed.clone();
        let seq = self.confirmed_seq;
        let background = self.config.background.clone();
        self.making.spawn(async move {
            let json = background
                .run(move || view_json(&board, shared_view(role)))
                .await;
            (role, json.map(|json| BoardVersion::new(json, seq)))
        });
    }

    /// A version made on the background thread: kept if it is newer than the one the room has.
    fn version_made(&mut self, made: Result<(Role, Option<Arc<BoardVersion>>), JoinError>) {
        let Ok((role, version)) = made else {
            // Only if the task was cancelled or panicked, which says nothing of its view: let
            // the next joiner of either view start another (at worst one is made twice).
            self.making_view = [false; 2];
            return;
        };
        self.making_view[view_index(role)] = false;
        let Some(version) = version else {
            return;
        };
        let kept = self.board_json_slot(role);
        if kept.as_ref().is_none_or(|k| k.seq < version.seq) {
            *kept = Some(version);
        }
    }

    fn op(&mut self, conn: ConnId, op_id: OpId, op: Op) {
        let Some(member) = self.members.get(&conn) else {
            return; // left already
        };
        let (actor, role, name) = (member.actor.clone(), member.role, member.name.clone());
        if let Some(&seq) = self.recent.get(&(actor.clone(), op_id.clone())) {
            let msg = encode(&ServerMessage::AlreadyApplied(AlreadyApplied {
                op_id,
                seq,
            }));
            if seq <= self.confirmed_seq {
                self.send_to(conn, msg);
            } else {
                // Not durable yet: answer once its batch is saved.
                self.next_batch
                    .deferred
                    .push(Deferred::Confirmation(conn, msg));
            }
            return;
        }
        if let Err(OpError { reason, message }) = self.accept(actor, role, name, op_id.clone(), op)
        {
            self.config.metrics.op_rejected();
            let msg = encode(&ServerMessage::Rejected(Rejected {
                op_id,
                reason,
                message,
            }));
            self.send_to(conn, msg);
        }
    }

    /// Validates and applies an operation to the working board and queues it for the next
    /// journal batch; on error nothing changed.
    fn accept(
        &mut self,
        actor: ActorKey,
        role: Role,
        name: Option<String>,
        op_id: OpId,
        op: Op,
    ) -> Result<(), OpError> {
        if self.read_only.load(Ordering::Relaxed) {
            return Err(OpError::new(RejectReason::ReadOnly, READ_ONLY_MESSAGE));
        }
        let ctx = OpContext {
            actor: Some(actor.clone()),
            // In an anonymous room no name is stored, not even in the journal.
            author: name.filter(|_| !self.working.state.anonymous),
            at: now_ms(),
            role,
        };
        let delivery = self.working.delivery(&op, &ctx);
        let shown_author = self.working.shown_author(&op, &ctx);
        let applied = self.working.apply(&op, &ctx, &self.config.limits)?;
        self.working_seq += 1;
        let seq = self.working_seq;
        let message = encode(&ServerMessage::Applied(AppliedOp {
            seq,
            op_id: op_id.clone(),
            at: ctx.at,
            author: shown_author,
            op: op.clone(),
            created: applied.created,
        }));
        self.remember(RecentOp {
            actor: actor.clone(),
            op_id: op_id.clone(),
            seq,
        });
        self.next_batch.ops.push(PendingOp {
            record: JournalRecord {
                seq,
                at: ctx.at,
                actor,
                author: ctx.author,
                op_id,
                op,
            },
            message,
            accepted: Instant::now(),
            delivery,
        });
        Ok(())
    }

    /// When the running timer reaches zero, if one is running and the room can still change.
    fn timer_deadline(&self) -> Option<tokio::time::Instant> {
        let timer = self.working.state.timer?;
        if self.read_only.load(Ordering::Relaxed) {
            return None;
        }
        let left = timer.ends_at.saturating_sub(now_ms());
        Some(tokio::time::Instant::now() + std::time::Duration::from_millis(left))
    }

    /// The timer reached zero: the server applies `timer_ended` itself, as a journaled change,
    /// so a lock at zero survives a restart.
    fn end_timer(&mut self) {
        let op_id = OpId::parse(&format!("timer-{}", self.working_seq + 1))
            .expect("timer op ids are valid");
        let op = Op::TimerEnded(NoFields {});
        let actor = ActorKey::new(SYSTEM_ACTOR);
        if let Err(e) = self.accept(actor, Role::System, None, op_id, op) {
            tracing::warn!(room = %self.room, error = %e, "could not end the timer");
            // Never spin on a timer that cannot end: forget it on the working board.
            self.working.state.timer = None;
        }
    }

    fn remember(&mut self, r: RecentOp) {
        self.recent
            .insert((r.actor.clone(), r.op_id.clone()), r.seq);
        self.recent_order.push_back(r);
        while self.recent_order.len() > RECENT_OPS_CAP {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&(old.actor, old.op_id));
            }
        }
    }

    /// Sends one message to every member. A member whose queue is full is closed with
    /// [`TOO_SLOW`]; it will reconnect and catch up. Nobody waits for anybody.
    fn broadcast(&mut self, msg: &Utf8Bytes) {
        let mut slow = Vec::new();
        for (conn, m) in &self.members {
            if m.out.try_send(Outbound::Text(msg.clone())).is_err() {
                slow.push(*conn);
            }
        }
        let queued = self.members.len() - slow.len();
        self.config.metrics.fanout(queued as u64);
        self.drop_members(slow);
    }

    fn send_to(&mut self, conn: ConnId, msg: Utf8Bytes) {
        let full = match self.members.get(&conn) {
            Some(m) => m.out.try_send(Outbound::Text(msg)).is_err(),
            None => false,
        };
        if full {
            self.drop_members(vec![conn]);
        }
    }

    fn drop_members(&mut self, conns: Vec<ConnId>) {
        if conns.is_empty() {
            return;
        }
        for conn in conns {
            if let Some(mut m) = self.members.remove(&conn) {
                // A closed queue is a connection already gone, not a slow one.
                if !m.out.is_closed() {
                    self.config.metrics.slow_member_closed();
                }
                tracing::info!(room = %self.room, conn, "closing a connection that cannot keep up");
                kick(&mut m, TOO_SLOW);
            }
        }
        self.presence_changed();
    }
}

const TOO_SLOW: CloseReason = CloseReason {
    code: protocol::close::TOO_SLOW,
    reason: "too slow to keep up; reconnect to catch up",
};

const LINK_CHANGED: CloseReason = CloseReason {
    code: protocol::close::FACILITATOR_LINK_CHANGED,
    reason: "the facilitator link was changed; join again with the new one",
};

const READ_ONLY_MESSAGE: &str = "The board is read-only for now: the server cannot save changes. Nothing already saved is lost.";

fn kick(m: &mut Member, reason: CloseReason) {
    if let Some(k) = m.kick.take() {
        let _ = k.send(reason);
    }
}

/// The view of the board every member with this role is shown (when no note is private).
fn shared_view(role: Role) -> Viewer<'static> {
    if role == Role::Participant {
        Viewer::Anyone
    } else {
        Viewer::Facilitator
    }
}

/// Where a role's view has its place in `[participants', facilitators']`.
fn view_index(role: Role) -> usize {
    usize::from(role != Role::Participant)
}

/// Serialises a view of the board once, to be shared by every message that carries it.
fn view_json(board: &Board, viewer: Viewer) -> Box<RawValue> {
    let json = serde_json::to_string(&board.view(viewer)).expect("boards always serialise");
    RawValue::from_string(json).expect("serde_json output is valid JSON")
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn wait_flight(
    flight: &mut Option<Flight>,
) -> Result<(Journal, Result<(), storage::StorageError>), tokio::task::JoinError> {
    match flight {
        Some(Flight::Batch { task, .. }) | Some(Flight::Rotation { task, .. }) => task.await,
        None => std::future::pending().await,
    }
}

async fn wait_saving(
    saving: &mut Option<JoinHandle<Option<Result<(), storage::StorageError>>>>,
) -> Result<Option<Result<(), storage::StorageError>>, JoinError> {
    match saving {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}
