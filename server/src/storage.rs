//! Files on disk: one folder per room under `<data-dir>/rooms/`, each with an atomic JSON
//! snapshot and an append-only journal of confirmed operations, and one folder per event under
//! `<data-dir>/events/` with its `event.json`. `docs/storage.md` describes the layout; this
//! module is the only code that touches it. Purging an event (its retention ended, or a
//! facilitator asked) deletes its folder and its rooms' folders in a crash-safe order: see
//! [`Storage::begin_event_purge`].
//!
//! Every function here does blocking file I/O: call it from `spawn_blocking` or at start-up.

use crate::events::EventRecord;
use bothy_shared::ids::{ActorKey, EventId, OpId, RoomId};
use bothy_shared::{Board, Limits, Op, OpContext};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The snapshot format version written to every snapshot file.
pub const SNAPSHOT_FORMAT: u32 = 1;
const SNAPSHOT_FILE: &str = "snapshot.json";
const SNAPSHOT_TMP: &str = "snapshot.json.tmp";
const JOURNAL_FILE: &str = "journal.log";
/// The journal as it was when a compaction began, until the snapshot that holds it is saved:
/// appends go on in a fresh `journal.log` meanwhile (see [`Journal::rotate`]).
const PREVIOUS_JOURNAL_FILE: &str = "journal.prev.log";
const EVENT_FILE: &str = "event.json";
const EVENT_TMP: &str = "event.json.tmp";
/// Added to an event folder's name while the event is being purged (`events/<id>.purging`).
/// Not an event id, so the folder is never loaded as an event.
const PURGING_SUFFIX: &str = ".purging";
/// An `event.json` larger than this cannot be one the server wrote.
const MAX_EVENT_FILE_BYTES: u64 = 1 << 20;
/// A journal line longer than this cannot be a record the server wrote.
const MAX_RECORD_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the data directory {0} is in use by another Bothy process")]
    Locked(PathBuf),
    #[error("room {0} does not exist")]
    NoSuchRoom(RoomId),
    #[error("room {0} already exists")]
    RoomExists(RoomId),
    #[error("the snapshot {path} cannot be used: {reason}")]
    BadSnapshot { path: PathBuf, reason: String },
    #[error("event {0} already exists")]
    EventExists(EventId),
    #[error("there is no event {0}")]
    NoSuchEvent(EventId),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A room's state as saved in `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSnapshot {
    pub format: u32,
    pub room: RoomId,
    /// The sequence number of the last operation included in `board`.
    pub seq: u64,
    pub board: Board,
    /// Recently applied operation ids, so a resend after a restart is still applied once.
    pub recent_ops: Vec<RecentOp>,
}

/// One applied operation id, kept for de-duplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentOp {
    pub actor: ActorKey,
    pub op_id: OpId,
    pub seq: u64,
}

/// One confirmed operation as written to the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalRecord {
    pub seq: u64,
    pub at: u64,
    pub actor: ActorKey,
    pub author: Option<String>,
    pub op_id: OpId,
    pub op: Op,
}

impl JournalRecord {
    pub fn context(&self) -> OpContext {
        OpContext {
            actor: Some(self.actor.clone()),
            author: self.author.clone(),
            at: self.at,
            // Replay does not check rights: they were checked when the change was accepted.
            role: bothy_shared::Role::default(),
        }
    }

    /// The record as one journal line: `crc32c-hex SPACE json NEWLINE`. JSON never contains a raw
    /// newline, so a line is a record.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("records always serialise");
        let mut line = Vec::with_capacity(json.len() + 10);
        line.extend_from_slice(format!("{:08x} ", crc32c::crc32c(&json)).as_bytes());
        line.extend_from_slice(&json);
        line.push(b'\n');
        line
    }
}

/// Injected disk faults, for tests of what happens when the disk fails (the same code path as a
/// real `ENOSPC` or `EIO`). Off unless a test turns it on.
///
/// A failed write and a failed fsync are different faults: after a failed write the record is
/// (at most partly) in the file; after a failed fsync it is all there, readable, and may or may
/// not survive a power cut. Both must leave the room read-only with the record unconfirmed.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Journal bytes that may still be written, across all rooms; once spent, every journal
    /// write fails with "no space left on device". `None`: no fault.
    write_budget: Option<Arc<AtomicI64>>,
    /// Journal bytes that may still be written and fsynced, across all rooms; once spent, the
    /// write still happens but the fsync after it fails with "I/O error". `None`: no fault.
    sync_budget: Option<Arc<AtomicI64>>,
}

impl Faults {
    /// Journal writes fail once `bytes` more bytes have been written.
    pub fn fail_journal_after(bytes: i64) -> Self {
        Self {
            write_budget: Some(Arc::new(AtomicI64::new(bytes))),
            ..Self::default()
        }
    }

    /// Journal fsyncs fail once `bytes` more bytes have been written: the write that spends the
    /// budget reaches the file, and the fsync after it fails.
    pub fn fail_journal_sync_after(bytes: i64) -> Self {
        Self {
            sync_budget: Some(Arc::new(AtomicI64::new(bytes))),
            ..Self::default()
        }
    }

    fn check_journal_write(&self, len: usize) -> io::Result<()> {
        if spend(&self.write_budget, len) {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        }
    }

    fn check_journal_sync(&self, len: usize) -> io::Result<()> {
        if spend(&self.sync_budget, len) {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(5)) // EIO
        }
    }
}

/// Takes `len` bytes from `budget`; `false` once it is spent. No budget: always `true`.
fn spend(budget: &Option<Arc<AtomicI64>>, len: usize) -> bool {
    match budget {
        Some(budget) => budget.fetch_sub(len as i64, Ordering::SeqCst) >= len as i64,
        None => true,
    }
}

/// The data directory. Holds an exclusive lock so two servers never write the same files.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    _lock: File,
    faults: Faults,
}

impl Storage {
    /// Creates the directory layout if needed and takes the lock.
    pub fn open(root: &Path, faults: Faults) -> Result<Self, StorageError> {
        fs::create_dir_all(root.join("rooms")).map_err(io_err(root))?;
        fs::create_dir_all(root.join("events")).map_err(io_err(root))?;
        let lock_path = root.join("bothy.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&lock) {
            Ok(true) => {}
            Ok(false) => return Err(StorageError::Locked(root.to_owned())),
            Err(e) => return Err(io_err(&lock_path)(e)),
        }
        Ok(Self {
            root: root.to_owned(),
            _lock: lock,
            faults,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn room_dir(&self, room: &RoomId) -> PathBuf {
        self.root.join("rooms").join(room.as_str())
    }

    pub fn room_exists(&self, room: &RoomId) -> bool {
        self.room_dir(room).join(SNAPSHOT_FILE).is_file()
    }

    /// Creates a room with an empty board, durably: the folder and first snapshot are fsynced
    /// before this returns.
    pub fn create_room(&self, room: &RoomId, board: Board) -> Result<(), StorageError> {
        let dir = self.room_dir(room);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::RoomExists(room.clone()));
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
        sync_dir(&self.root.join("rooms"))?;
        let snapshot = RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            room: room.clone(),
            seq: 0,
            board,
            recent_ops: Vec::new(),
        };
        write_snapshot(&dir, &snapshot)?;
        Ok(())
    }

    /// Checks that the data directory accepts a durable write (for `/healthz`).
    pub fn probe_writable(&self) -> Result<(), StorageError> {
        let path = self.root.join(".healthz");
        let mut f = File::create(&path).map_err(io_err(&path))?;
        f.write_all(b"ok").map_err(io_err(&path))?;
        f.sync_data().map_err(io_err(&path))?;
        Ok(())
    }

    pub fn event_dir(&self, event: &EventId) -> PathBuf {
        self.root.join("events").join(event.as_str())
    }

    /// Claims an event id by creating its folder (durably). An id already taken is refused
    /// with [`StorageError::EventExists`], never reused.
    pub fn create_event_dir(&self, event: &EventId) -> Result<(), StorageError> {
        let dir = self.event_dir(event);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::EventExists(event.clone()));
            }
            Err(e) => return Err(io_err(&dir)(e)),
        }
        sync_dir(&self.root.join("events"))
    }

    /// Saves an event's `event.json` atomically (temp file, fsync, rename, fsync the folder),
    /// replacing the old one: a crash leaves the old file or the new one, never a mix. The
    /// event's folder must exist ([`Storage::create_event_dir`]).
    pub fn write_event(&self, event: &EventRecord) -> Result<(), StorageError> {
        let dir = self.event_dir(&event.id);
        let json = serde_json::to_vec_pretty(event).expect("events always serialise");
        let tmp = dir.join(EVENT_TMP);
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&json).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        let dest = dir.join(EVENT_FILE);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        sync_dir(&dir)
    }

    /// Reads every event under `<data-dir>/events/`. A folder that is not an event (a name
    /// that is not an event id, no `event.json` because a creation was cut short) is skipped
    /// with a warning; an `event.json` that cannot be used is reported with an error and left
    /// as it is. Neither stops the server: the rooms of a skipped event still open, without a
    /// facilitator.
    pub fn load_events(&self) -> Result<Vec<EventRecord>, StorageError> {
        let events_dir = self.root.join("events");
        let entries = fs::read_dir(&events_dir).map_err(io_err(&events_dir))?;
        let mut events = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&events_dir))?;
            let path = entry.path();
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|name| EventId::parse(name).ok())
            else {
                tracing::warn!(path = %path.display(), "skipped a folder that is not an event");
                continue;
            };
            if !path.is_dir() {
                tracing::warn!(path = %path.display(), "skipped a file that is not an event folder");
                continue;
            }
            let file = path.join(EVENT_FILE);
            if !file.is_file() {
                // The folder is claimed before `event.json` is written: a creation was cut
                // short. Its rooms (if any) open as rooms without an event.
                tracing::warn!(path = %path.display(), "skipped an event folder without event.json (its creation was interrupted)");
                continue;
            }
            match read_event(&file, &id) {
                Ok(event) => events.push(event),
                Err(reason) => {
                    tracing::error!(path = %file.display(), %reason, "an event file cannot be used; its event is skipped and the file left as it is");
                }
            }
        }
        Ok(events)
    }

    fn purging_dir(&self, event: &EventId) -> PathBuf {
        self.root
            .join("events")
            .join(format!("{event}{PURGING_SUFFIX}"))
    }

    /// The first step of purging an event, and the one that commits it: renames
    /// `events/<id>/` to `events/<id>.purging/` and fsyncs `events/`. From then on a restart
    /// never loads the event; it finishes the purge instead ([`Storage::finish_interrupted_purges`]),
    /// using the room list in the renamed `event.json`. The caller closes the event's rooms and
    /// then calls [`Storage::finish_event_purge`].
    pub fn begin_event_purge(&self, event: &EventId) -> Result<(), StorageError> {
        let dir = self.event_dir(event);
        if !dir.is_dir() {
            return Err(StorageError::NoSuchEvent(event.clone()));
        }
        let purging = self.purging_dir(event);
        if fs::symlink_metadata(&purging).is_ok() {
            // An earlier event with this id was being purged when the server stopped, and the
            // id was then drawn again: finish that purge first.
            let rooms = purging_rooms(&purging).map_err(|reason| StorageError::Io {
                path: purging.clone(),
                source: io::Error::other(reason),
            })?;
            self.finish_event_purge(event, &rooms)?;
        }
        fs::rename(&dir, &purging).map_err(io_err(&dir))?;
        sync_dir(&self.root.join("events"))
    }

    /// The last step of a purge: deletes each room's folder (`rooms/<room>/`: snapshot,
    /// journal, set-aside journals, anything else in it), fsyncs `rooms/`, then deletes
    /// `events/<id>.purging/` (event.json and any event snapshot) and fsyncs `events/`. The
    /// rooms go first, so a crash in between leaves the `.purging` folder that names them. The
    /// rooms' tasks must have stopped. Folders already gone are skipped, so it can be repeated.
    pub fn finish_event_purge(
        &self,
        event: &EventId,
        rooms: &[RoomId],
    ) -> Result<PurgeReport, StorageError> {
        let mut report = PurgeReport::default();
        for room in rooms {
            let dir = self.room_dir(room);
            if remove_tree(&dir, &mut report.files).map_err(io_err(&dir))? {
                report.folders.push(Path::new("rooms").join(room.as_str()));
            }
        }
        sync_dir(&self.root.join("rooms"))?;
        let purging = self.purging_dir(event);
        if remove_tree(&purging, &mut report.files).map_err(io_err(&purging))? {
            report
                .folders
                .push(Path::new("events").join(event.as_str()));
        }
        sync_dir(&self.root.join("events"))?;
        Ok(report)
    }

    /// Finishes every purge a crash or power cut interrupted (each `events/<id>.purging/`
    /// folder), at start-up before any room opens. A folder whose room list cannot be read is
    /// reported and left as it is.
    pub fn finish_interrupted_purges(&self) -> Result<Vec<(EventId, PurgeReport)>, StorageError> {
        let events_dir = self.root.join("events");
        let entries = fs::read_dir(&events_dir).map_err(io_err(&events_dir))?;
        let mut finished = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&events_dir))?;
            let path = entry.path();
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_suffix(PURGING_SUFFIX))
                .and_then(|id| EventId::parse(id).ok())
            else {
                continue;
            };
            let rooms = match purging_rooms(&path) {
                Ok(rooms) => rooms,
                Err(reason) => {
                    tracing::error!(path = %path.display(), %reason, "an interrupted purge cannot be finished: its event.json cannot be read; left as it is");
                    continue;
                }
            };
            let report = self.finish_event_purge(&id, &rooms)?;
            tracing::warn!(event = %id, folders = report.folders.len(), files = report.files, "finished a purge that was interrupted");
            finished.push((id, report));
        }
        Ok(finished)
    }

    /// Purges an event from the files alone (blocking; for `bothy purge` while no server runs
    /// on the data directory): the same steps as the server's purge, with the room list read
    /// from `event.json`. A damaged `event.json` still names its rooms if its `rooms` can be
    /// read; an event folder without `event.json` (a creation cut short) is deleted alone.
    pub fn purge_event_files(&self, event: &EventId) -> Result<PurgeReport, StorageError> {
        let dir = self.event_dir(event);
        if !dir.is_dir() {
            return Err(StorageError::NoSuchEvent(event.clone()));
        }
        let rooms = purging_rooms(&dir).map_err(|reason| StorageError::Io {
            path: dir.join(EVENT_FILE),
            source: io::Error::other(reason),
        })?;
        self.begin_event_purge(event)?;
        self.finish_event_purge(event, &rooms)
    }

    /// Loads a room: its snapshot, then every journal record after it (in `journal.prev.log`,
    /// if a compaction was interrupted, then in `journal.log`). See [`Recovery`] for what
    /// happens to a torn or corrupt journal.
    pub fn load_room(&self, room: &RoomId, limits: &Limits) -> Result<LoadedRoom, StorageError> {
        let dir = self.room_dir(room);
        if !dir.join(SNAPSHOT_FILE).is_file() {
            return Err(StorageError::NoSuchRoom(room.clone()));
        }
        let snapshot = read_snapshot(&dir.join(SNAPSHOT_FILE), room, limits)?;
        let mut state = RecoveredState::from_snapshot(snapshot);
        let previous_path = dir.join(PREVIOUS_JOURNAL_FILE);
        let journal_path = dir.join(JOURNAL_FILE);
        let interrupted = previous_path.is_file();
        let (mut damaged, mut torn) = (None, None);
        for path in [&previous_path, &journal_path] {
            // Only the newest journal can end in a torn record: the previous one was whole and
            // fsynced before it was moved aside.
            let newest = path == &journal_path;
            match replay_journal(path, newest, &mut state)? {
                found @ Recovery::SetAside { .. } => {
                    if !newest {
                        // The later records cannot follow a gap: keep them aside too.
                        set_aside_unread(&journal_path)?;
                    }
                    damaged = Some(found);
                    break;
                }
                Recovery::TornTail { dropped_bytes, .. } => torn = Some(dropped_bytes),
                Recovery::Clean { .. } => {}
            }
        }
        let recovery = match (damaged, torn) {
            (Some(found), _) => found,
            (None, Some(dropped_bytes)) => Recovery::TornTail {
                records: state.replayed,
                dropped_bytes,
            },
            (None, None) => Recovery::Clean {
                records: state.replayed,
            },
        };
        let mut journal = Journal::open(&dir, self.faults.clone())?;
        journal.records = state.replayed;
        let mut read_only = None;
        if matches!(recovery, Recovery::SetAside { .. }) {
            // A damaged journal was moved aside: what was recovered from it is only in memory
            // until this snapshot is saved, so the room cannot open without it.
            compact(&dir, &state.to_snapshot(room), &mut journal)?;
        } else if interrupted {
            // A compaction did not finish: finish it, so the room starts from a clean snapshot
            // and one empty journal. If the disk still refuses, both journals stay as they are
            // (replay is idempotent) and the room opens read-only, to be seen and downloaded.
            if let Err(e) = compact(&dir, &state.to_snapshot(room), &mut journal) {
                tracing::error!(room = %room, error = %e, "could not finish an interrupted compaction; the room is read-only");
                read_only = Some(e.to_string());
            }
        }
        Ok(LoadedRoom {
            board: state.board,
            seq: state.seq,
            recent_ops: state.recent_ops,
            journal,
            recovery,
            read_only,
        })
    }
}

/// What recovery found in a room's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Every record was whole and applied.
    Clean { records: usize },
    /// The last record was cut short (expected after a crash or power cut); it was never
    /// confirmed, so it was dropped and the file truncated to the last whole record.
    TornTail { records: usize, dropped_bytes: u64 },
    /// A whole record failed its checksum or could not be applied. Everything before it was
    /// recovered; the journal file was renamed to `set_aside` and never overwritten.
    SetAside {
        records: usize,
        line: usize,
        problem: String,
        set_aside: PathBuf,
    },
}

/// A room as read from disk.
#[derive(Debug)]
pub struct LoadedRoom {
    pub board: Board,
    pub seq: u64,
    pub recent_ops: Vec<RecentOp>,
    pub journal: Journal,
    pub recovery: Recovery,
    /// Why the room must not take changes: an interrupted compaction could not be finished,
    /// and the journals it left must not be rotated again.
    pub read_only: Option<String>,
}

struct RecoveredState {
    board: Board,
    seq: u64,
    recent_ops: Vec<RecentOp>,
    replayed: usize,
}

impl RecoveredState {
    fn from_snapshot(s: RoomSnapshot) -> Self {
        Self {
            board: s.board,
            seq: s.seq,
            recent_ops: s.recent_ops,
            replayed: 0,
        }
    }

    fn to_snapshot(&self, room: &RoomId) -> RoomSnapshot {
        RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            room: room.clone(),
            seq: self.seq,
            board: self.board.clone(),
            recent_ops: self.recent_ops.clone(),
        }
    }

    /// Applies one journal line, or says why it cannot be used.
    fn apply_line(&mut self, line: &[u8]) -> Result<(), String> {
        let record = decode_line(line)?;
        if record.seq <= self.seq {
            // Already in the snapshot: compaction was interrupted before the journal was
            // emptied. Replay is idempotent by sequence number.
            return Ok(());
        }
        if record.seq != self.seq + 1 {
            return Err(format!("sequence {} follows {}", record.seq, self.seq));
        }
        self.board
            .replay(&record.op, &record.context())
            .map_err(|e| format!("operation {} cannot be applied: {e}", record.seq))?;
        self.seq = record.seq;
        self.recent_ops.push(RecentOp {
            actor: record.actor,
            op_id: record.op_id,
            seq: record.seq,
        });
        self.replayed += 1;
        Ok(())
    }
}

/// Decodes one journal line (without its newline), checking the checksum.
pub fn decode_line(line: &[u8]) -> Result<JournalRecord, String> {
    if line.len() < 10 || line[8] != b' ' {
        return Err("the line is not `checksum json`".into());
    }
    // Exactly the lowercase hex the server writes: `from_str_radix` alone would also take
    // uppercase, and a bit flip from 'a' to 'A' would go unnoticed.
    let crc_hex = &line[..8];
    if !crc_hex
        .iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("the checksum is not lowercase hex".into());
    }
    let crc_hex = std::str::from_utf8(crc_hex).map_err(|_| "the checksum is not hex")?;
    let crc = u32::from_str_radix(crc_hex, 16).map_err(|_| "the checksum is not hex")?;
    let json = &line[9..];
    if crc32c::crc32c(json) != crc {
        return Err("the checksum does not match".into());
    }
    serde_json::from_slice(json).map_err(|e| format!("the record cannot be read: {e}"))
}

/// Replays one journal file into `state`. A last record without its newline is a torn tail if
/// `newest` (dropped, and the file cut back), and damage otherwise.
fn replay_journal(
    path: &Path,
    newest: bool,
    state: &mut RecoveredState,
) -> Result<Recovery, StorageError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Recovery::Clean { records: 0 }),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut good_end: u64 = 0;
    let mut line_no = 0;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(io_err(path))?;
        if n == 0 {
            return Ok(Recovery::Clean {
                records: state.replayed,
            });
        }
        line_no += 1;
        if line.last() != Some(&b'\n') {
            if n > MAX_RECORD_BYTES {
                return set_aside(
                    path,
                    state,
                    line_no,
                    "a record is longer than any the server writes".into(),
                );
            }
            if !newest {
                return set_aside(
                    path,
                    state,
                    line_no,
                    "the last record is cut short in a journal that was complete".into(),
                );
            }
            // No newline: the last write was cut short. Drop it and truncate, so the next
            // append starts on a clean line.
            let len = fs::metadata(path).map_err(io_err(path))?.len();
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_err(path))?;
            f.set_len(good_end).map_err(io_err(path))?;
            f.sync_all().map_err(io_err(path))?;
            tracing::warn!(path = %path.display(), dropped_bytes = len - good_end, "dropped a torn last journal record");
            return Ok(Recovery::TornTail {
                records: state.replayed,
                dropped_bytes: len - good_end,
            });
        }
        match state.apply_line(&line[..line.len() - 1]) {
            Ok(()) => good_end += n as u64,
            Err(problem) => return set_aside(path, state, line_no, problem),
        }
    }
}

fn set_aside(
    path: &Path,
    state: &RecoveredState,
    line: usize,
    problem: String,
) -> Result<Recovery, StorageError> {
    let aside = move_aside(path)?;
    tracing::error!(
        journal = %path.display(),
        set_aside = %aside.display(),
        line,
        %problem,
        "journal record is damaged; recovered the records before it and set the file aside"
    );
    Ok(Recovery::SetAside {
        records: state.replayed,
        line,
        problem,
        set_aside: aside,
    })
}

/// Sets aside a journal that was not replayed because the one before it was damaged: its
/// records cannot follow the gap, and they are kept for inspection, never deleted.
fn set_aside_unread(path: &Path) -> Result<(), StorageError> {
    if !path.is_file() {
        return Ok(());
    }
    let aside = move_aside(path)?;
    tracing::error!(
        journal = %path.display(),
        set_aside = %aside.display(),
        "the journal before this one is damaged; set this one aside unread"
    );
    Ok(())
}

/// Renames a journal to `journal.<ms>.corrupt` (`journal.prev.<ms>.corrupt` for
/// `journal.prev.log`: both may be set aside in the same millisecond), durably.
fn move_aside(path: &Path) -> Result<PathBuf, StorageError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    let aside = path.with_file_name(format!("{stem}.{stamp}.corrupt"));
    fs::rename(path, &aside).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(aside)
}

fn read_snapshot(
    path: &Path,
    room: &RoomId,
    limits: &Limits,
) -> Result<RoomSnapshot, StorageError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let bad = |reason: String| StorageError::BadSnapshot {
        path: path.to_owned(),
        reason,
    };
    let snapshot: RoomSnapshot = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if snapshot.format != SNAPSHOT_FORMAT {
        return Err(bad(format!(
            "format {} is not {SNAPSHOT_FORMAT}",
            snapshot.format
        )));
    }
    if &snapshot.room != room {
        return Err(bad(format!("it belongs to room {}", snapshot.room)));
    }
    snapshot.board.check_invariants(limits).map_err(bad)?;
    Ok(snapshot)
}

fn read_event(path: &Path, id: &EventId) -> Result<EventRecord, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_EVENT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_EVENT_FILE_BYTES {
        return Err("the file is larger than any the server writes".into());
    }
    let event: EventRecord = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if event.format != crate::events::EVENT_FORMAT {
        return Err(format!(
            "format {} is not {}",
            event.format,
            crate::events::EVENT_FORMAT
        ));
    }
    if &event.id != id {
        return Err(format!("it belongs to event {}", event.id));
    }
    if !crate::events::retention_allowed(event.retention_days) {
        return Err(format!(
            "retention_days {} is not between {} and {}",
            event.retention_days,
            crate::events::MIN_RETENTION_DAYS,
            crate::events::MAX_RETENTION_DAYS
        ));
    }
    Ok(event)
}

/// Writes a snapshot atomically: temp file, fsync, rename over the old one, fsync the folder.
pub fn write_snapshot(dir: &Path, snapshot: &RoomSnapshot) -> Result<(), StorageError> {
    let tmp = dir.join(SNAPSHOT_TMP);
    let json = serde_json::to_vec(snapshot).expect("snapshots always serialise");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&json).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    let dest = dir.join(SNAPSHOT_FILE);
    fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    sync_dir(dir)
}

/// Saves `snapshot` and then empties the journal (and deletes `journal.prev.log`, if a
/// compaction left one), all at once: for start-up, when nothing else uses the journal. A crash
/// between the steps leaves records the snapshot already holds; replay skips them by sequence
/// number. A running room compacts in two steps instead: [`Journal::rotate`], then
/// [`save_compacted`].
pub fn compact(
    dir: &Path,
    snapshot: &RoomSnapshot,
    journal: &mut Journal,
) -> Result<(), StorageError> {
    write_snapshot(dir, snapshot)?;
    journal.truncate()?;
    remove_previous_journal(dir)
}

/// The second step of a running room's compaction, after [`Journal::rotate`]: saves `snapshot`,
/// which holds every record of `journal.prev.log`, then deletes that file. It does not touch
/// `journal.log`, so the room goes on saving operations meanwhile. A crash before the snapshot
/// is renamed leaves the old snapshot and both journals, which replay in order; after it,
/// records the snapshot already holds, which replay skips.
pub fn save_compacted(dir: &Path, snapshot: &RoomSnapshot) -> Result<(), StorageError> {
    write_snapshot(dir, snapshot)?;
    remove_previous_journal(dir)
}

fn remove_previous_journal(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(PREVIOUS_JOURNAL_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// What a purge deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// The folders deleted, relative to the data directory: `rooms/<room>` for each room and
    /// `events/<id>` for the event.
    pub folders: Vec<PathBuf>,
    /// How many files were deleted in them.
    pub files: usize,
}

/// The room ids in an event folder's `event.json` (the folder may be `<id>.purging`). Only
/// `rooms[].room` is read, so a purge is not stopped by any other damage. No `event.json`: no
/// rooms (it is deleted last, after the rooms).
fn purging_rooms(dir: &Path) -> Result<Vec<RoomId>, String> {
    #[derive(Deserialize)]
    struct RoomList {
        rooms: Vec<RoomEntry>,
    }
    #[derive(Deserialize)]
    struct RoomEntry {
        room: RoomId,
    }
    let path = dir.join(EVENT_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_EVENT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_EVENT_FILE_BYTES {
        return Err("the file is larger than any the server writes".into());
    }
    let list: RoomList = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok(list.rooms.into_iter().map(|r| r.room).collect())
}

/// Deletes a file or a folder and everything in it, counting the files; never follows a
/// symbolic link (the link itself is deleted). `Ok(false)` if there was nothing there.
fn remove_tree(path: &Path, files: &mut usize) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            remove_tree(&entry?.path(), files)?;
        }
        fs::remove_dir(path)?;
    } else {
        fs::remove_file(path)?;
        *files += 1;
    }
    Ok(true)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A room's append-only journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    faults: Faults,
    path: PathBuf,
    dir: PathBuf,
    /// The file's length when it held only whole, fsynced records: a failed append cuts the
    /// file back to it.
    synced_len: u64,
    /// Records written since the last snapshot.
    pub records: usize,
}

impl Journal {
    fn open(dir: &Path, faults: Faults) -> Result<Self, StorageError> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // Recovery has already cut off a torn tail, so the file holds whole records only.
        let synced_len = file.metadata().map_err(io_err(&path))?.len();
        sync_dir(dir)?;
        Ok(Self {
            file,
            faults,
            path,
            dir: dir.to_owned(),
            synced_len,
            records: 0,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends whole encoded records and fsyncs. Only after this returns `Ok` may they be
    /// confirmed. After an error the journal must not be used again (a failed fsync may have
    /// dropped the data it reported on: "fsyncgate"); the records are cut off again first, so
    /// that a restart does not bring back changes the room has rejected.
    pub fn append(&mut self, encoded: &[u8], count: usize) -> Result<(), StorageError> {
        if let Err(e) = self.write_and_sync(encoded) {
            self.cut_back();
            return Err(io_err(&self.path)(e));
        }
        self.synced_len += encoded.len() as u64;
        self.records += count;
        Ok(())
    }

    fn write_and_sync(&mut self, encoded: &[u8]) -> io::Result<()> {
        self.faults.check_journal_write(encoded.len())?;
        self.file.write_all(encoded)?;
        self.faults.check_journal_sync(encoded.len())?;
        self.file.sync_data()
    }

    /// After a failed append, truncates the file to its last fsynced length: the records after
    /// it were never confirmed, whether none, part or all of them reached the file. Only those
    /// bytes go; everything confirmed was fsynced before. If the disk refuses this too, it is
    /// logged: a restart may then replay (whole) unconfirmed records, or drop a torn one.
    fn cut_back(&mut self) {
        let result = self
            .file
            .set_len(self.synced_len)
            .and_then(|()| self.file.sync_all());
        if let Err(e) = result {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                "could not cut unconfirmed records off the journal; a restart may replay them"
            );
        }
    }

    fn truncate(&mut self) -> Result<(), StorageError> {
        self.file.set_len(0).map_err(io_err(&self.path))?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        self.synced_len = 0;
        self.records = 0;
        Ok(())
    }

    /// The first step of a running room's compaction: renames the journal, which must hold
    /// exactly the records of the snapshot about to be saved, to `journal.prev.log`, and goes
    /// on in a new, empty `journal.log`. It costs a rename and a folder fsync, so operations
    /// wait for that and not for the snapshot ([`save_compacted`]). Nothing is appended to the
    /// new file before the folder is fsynced, so a crash in between loses no confirmed record.
    pub fn rotate(&mut self) -> Result<(), StorageError> {
        let previous = self.dir.join(PREVIOUS_JOURNAL_FILE);
        if previous.exists() {
            // An unfinished compaction's records the snapshot does not hold yet: never
            // replace them.
            return Err(io_err(&previous)(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a previous journal is still waiting for its snapshot",
            )));
        }
        fs::rename(&self.path, &previous).map_err(io_err(&self.path))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        sync_dir(&self.dir)?;
        self.file = file;
        self.synced_len = 0;
        self.records = 0;
        Ok(())
    }
}

/// Saves an event's latest snapshot as `events/<id>/snapshot.json`, atomically.
pub fn write_event_snapshot(
    storage: &Storage,
    event: &EventId,
    snapshot: &bothy_shared::snapshot::EventSnapshot,
) -> Result<(), StorageError> {
    let json = serde_json::to_vec(snapshot).expect("snapshots always serialise");
    write_event_file(storage, event, "snapshot.json", &json)
}

/// Saves a file in an event's folder atomically (temp file, fsync, rename, fsync the folder):
/// a crash leaves the old file or the new one, never a mix.
pub fn write_event_file(
    storage: &Storage,
    event: &EventId,
    name: &str,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let dir = storage.event_dir(event);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    let dest = dir.join(name);
    fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    sync_dir(&dir)
}
