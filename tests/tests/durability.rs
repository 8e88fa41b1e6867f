//! Durability with real files: restarts, graceful shutdown, torn and corrupt journals, an
//! interrupted compaction, a failing disk, and the time to recover a long journal.

use bothy_server::storage::{self, Faults, JournalRecord, Recovery, RoomSnapshot, Storage};
use bothy_shared::protocol::{ServerMessage, close};
use bothy_shared::{Board, BoardView, Limits, RejectReason, RoomId};
use bothy_tests::ops::*;
use bothy_tests::{BinaryServer, Client, Closed, TestServer};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Makes a room through the real binary, runs `ops` confirmed ops in it, then SIGKILLs the
/// server so the journal is left exactly as written. Returns the room id and the board the
/// clients saw.
async fn room_with_journal(dir: &Path, ops: usize) -> (String, BoardView) {
    let server = BinaryServer::start(dir, &["--compact-every", "1000000"]);
    let room = bothy_tests::create_room(server.addr, "What would help?").await;
    let mut c = Client::connect(server.addr, &room).await;
    c.join(None).await;
    let mut notes = Vec::new();
    for i in 0..ops {
        let op = match i % 4 {
            0 | 1 => create_note(&format!("note {i} — “quoted” ✓")),
            2 => move_note(*notes.last().unwrap(), i as f64, 7.5),
            _ => edit_note(*notes.last().unwrap(), &format!("edited {i}\nsecond line")),
        };
        let a = c.apply(op).await;
        if let Some(id) = a.created {
            notes.push(id);
        }
    }
    let mut fresh = Client::connect(server.addr, &room).await;
    let board = fresh.join(None).await.board.unwrap();
    server.kill9();
    (room, board)
}

fn journal_path(dir: &Path, room: &str) -> std::path::PathBuf {
    dir.join("rooms").join(room).join("journal.log")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if entry.file_name() != "bothy.lock" {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The board after each prefix of the journal: `boards[n]` has the first n records applied.
fn prefix_boards(dir: &Path, room: &str) -> Vec<Board> {
    let snap: RoomSnapshot = serde_json::from_slice(
        &std::fs::read(dir.join("rooms").join(room).join("snapshot.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(snap.seq, 0, "test journals start from an empty snapshot");
    let mut board = snap.board;
    let mut boards = vec![board.clone()];
    let journal = std::fs::read(journal_path(dir, room)).unwrap();
    for line in journal.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let record: JournalRecord = storage::decode_line(line).unwrap();
        board.replay(&record.op, &record.context()).unwrap();
        boards.push(board.clone());
    }
    boards
}

/// Where each line of a journal starts: the record holding byte `pos`, counted from 1, is the
/// number of starts at or before it.
fn line_starts(journal: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            journal
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

fn load(dir: &Path, room: &str) -> Result<storage::LoadedRoom, storage::StorageError> {
    let storage = Storage::open(dir, Faults::default()).unwrap();
    storage.load_room(&RoomId::parse(room).unwrap(), &Limits::default())
}

#[tokio::test]
async fn a_restart_after_sigkill_recovers_every_confirmed_op() {
    let tmp = tempfile::tempdir().unwrap();
    let (room, board) = room_with_journal(tmp.path(), 40).await;
    let server = BinaryServer::start(tmp.path(), &[]);
    let mut c = Client::connect(server.addr, &room).await;
    let w = c.join(None).await;
    assert_eq!(w.seq, 40);
    assert_eq!(w.board.unwrap(), board);
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_saves_every_room() {
    let tmp = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(tmp.path(), &[]);
    // Three rooms, each with journal records not yet in its snapshot when the server stops.
    let mut rooms = Vec::new();
    for name in ["Ideas", "Worries", "Next steps"] {
        rooms.push(bothy_tests::create_room(server.addr, name).await);
    }
    let mut clients = Vec::new();
    for room in &rooms {
        for i in 0..5 {
            let mut c = Client::connect(server.addr, room).await;
            c.join(None).await;
            c.apply(create_note(&format!("from {i}"))).await;
            clients.push(c);
        }
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    for c in &mut clients {
        match c.expect_close().await {
            Closed::Frame { code, .. } => assert_eq!(code, close::GOING_AWAY),
            other => panic!("{other:?}"),
        }
    }
    assert!(status.success(), "exit status {status:?}");
    // Every room's journal is folded into its snapshot, no compaction is left half done, and
    // nothing is lost. (The rooms save their own; the events' last snapshots, written after
    // them, load the rooms and would finish a compaction a room left.)
    for room in &rooms {
        let journal = journal_path(tmp.path(), room);
        let previous = journal.with_file_name("journal.prev.log");
        assert!(!previous.exists(), "{} is still there", previous.display());
        let loaded = load(tmp.path(), room).unwrap();
        assert_eq!(loaded.seq, 5);
        assert_eq!(loaded.journal.records, 0);
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
        assert_eq!(loaded.board.notes.len(), 5);
    }
}

#[tokio::test]
async fn a_graceful_restart_in_process_keeps_the_board() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let room = server.create_room("Ideas").await;
    let (mut c, _) = server.joined(&room).await;
    let n = c.apply(create_note("kept")).await.created.unwrap();
    c.apply(create_theme("Theme")).await;
    c.apply(set_theme(n, Some(1), None)).await;
    let before = server.joined(&room).await.1.board.unwrap();
    server.stop().await;
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (_c, w) = server.joined(&room).await;
    assert_eq!(w.seq, 3);
    assert_eq!(w.board.unwrap(), before);
}

#[tokio::test]
async fn a_torn_last_record_at_every_byte_offset_is_dropped_and_the_rest_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let (room, _) = room_with_journal(tmp.path(), 12).await;
    let boards = prefix_boards(tmp.path(), &room);
    let journal = std::fs::read(journal_path(tmp.path(), &room)).unwrap();
    let last_start = journal[..journal.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let mut cases = 0;
    for cut in last_start..journal.len() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(tmp.path(), copy.path());
        std::fs::write(journal_path(copy.path(), &room), &journal[..cut]).unwrap();
        let loaded = load(copy.path(), &room).unwrap();
        assert_eq!(loaded.seq, 11, "cut at {cut}");
        assert_eq!(loaded.board, boards[11]);
        if cut == last_start {
            assert_eq!(loaded.recovery, Recovery::Clean { records: 11 });
        } else {
            assert_eq!(
                loaded.recovery,
                Recovery::TornTail {
                    records: 11,
                    dropped_bytes: (cut - last_start) as u64
                }
            );
        }
        // The file was truncated to whole records, so the next append starts clean.
        assert_eq!(
            std::fs::metadata(journal_path(copy.path(), &room))
                .unwrap()
                .len(),
            last_start as u64
        );
        cases += 1;
    }
    assert_eq!(cases, journal.len() - last_start);
    // And the real server starts on a torn journal and serves the recovered board.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(tmp.path(), copy.path());
    std::fs::write(
        journal_path(copy.path(), &room),
        &journal[..journal.len() - 3],
    )
    .unwrap();
    let server = TestServer::start_in(copy.path(), |_| {}).await;
    let (_c, w) = server.joined(&room).await;
    assert_eq!((w.seq, w.board.unwrap()), (11, boards[11].public()));
}

#[tokio::test]
async fn every_bit_flip_in_the_journal_is_detected_and_nothing_after_it_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let (room, _) = room_with_journal(tmp.path(), 30).await;
    let boards = prefix_boards(tmp.path(), &room);
    let journal = std::fs::read(journal_path(tmp.path(), &room)).unwrap();
    let line_starts = line_starts(&journal);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut detected, mut silent) = (0, 0);
    let flips = 1000;
    for _ in 0..flips {
        let pos = rng.random_range(0..journal.len());
        let bit = rng.random_range(0..8);
        let mut damaged = journal.clone();
        damaged[pos] ^= 1 << bit;
        let copy = tempfile::tempdir().unwrap();
        copy_dir(tmp.path(), copy.path());
        std::fs::write(journal_path(copy.path(), &room), &damaged).unwrap();
        let loaded = load(copy.path(), &room).unwrap();
        // The record holding the flipped byte (its newline included), counted from 1.
        let record = line_starts.iter().filter(|&&s| s <= pos).count();
        match &loaded.recovery {
            Recovery::Clean { .. } => silent += 1,
            Recovery::SetAside { set_aside, .. } => {
                detected += 1;
                // Set aside byte for byte, never overwritten.
                assert_eq!(std::fs::read(set_aside).unwrap(), damaged);
            }
            Recovery::TornTail { .. } => detected += 1,
        }
        // Only records before the damaged one are applied.
        assert!(
            loaded.seq < record as u64,
            "flip at {pos} in record {record}: seq {}",
            loaded.seq
        );
        assert_eq!(loaded.board, boards[loaded.seq as usize]);
    }
    println!("bit flips: {flips}, detected: {detected}, silently accepted: {silent}");
    assert_eq!((detected, silent), (flips, 0));
}

#[tokio::test]
async fn a_compaction_interrupted_before_the_journal_was_emptied_replays_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (room, board) = room_with_journal(tmp.path(), 20).await;
    let dir = tmp.path().join("rooms").join(&room);
    // Crash after writing the temp file: a stray temp snapshot is ignored.
    std::fs::write(dir.join("snapshot.json.tmp"), b"{\"half\":").unwrap();
    let loaded = load(tmp.path(), &room).unwrap();
    assert_eq!((loaded.seq, loaded.board.public()), (20, board.clone()));
    // Crash after the rename but before the journal was emptied: the snapshot already holds
    // records 1..=10, the journal still has 1..=20.
    let boards = prefix_boards(tmp.path(), &room);
    let snapshot = RoomSnapshot {
        format: storage::SNAPSHOT_FORMAT,
        room: RoomId::parse(&room).unwrap(),
        seq: 10,
        board: boards[10].clone(),
        recent_ops: vec![],
    };
    storage::write_snapshot(&dir, &snapshot).unwrap();
    let loaded = load(tmp.path(), &room).unwrap();
    assert_eq!(loaded.seq, 20);
    assert_eq!(
        loaded.board.public(),
        board,
        "records already in the snapshot are not applied twice"
    );
}

#[tokio::test]
async fn when_the_disk_fails_the_room_turns_read_only_and_keeps_what_was_confirmed() {
    // The write itself fails (disk full): the refused op never reaches the file.
    a_room_on_a_failing_disk(Faults::fail_journal_after(1500)).await;
}

#[tokio::test]
async fn a_failed_fsync_makes_the_room_read_only_and_loses_nothing_confirmed() {
    // The write succeeds and the fsync after it fails (I/O error): the refused op is whole in
    // the file, readable, and must not come back after a restart.
    a_room_on_a_failing_disk(Faults::fail_journal_sync_after(1500)).await;
}

/// Adds notes one at a time to a room on a disk that fails as `faults` says, until one is
/// refused. Checks that everyone is told the room is read-only, `/healthz` says so, and a
/// restart on a healthy disk holds every confirmed note exactly once and not the refused one.
async fn a_room_on_a_failing_disk(faults: Faults) {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |c| c.faults = faults).await;
    let room = server.create_room("Ideas").await;
    let (mut a, _) = server.joined(&room).await;
    let (mut b, _) = server.joined(&room).await;
    let mut confirmed = Vec::new();
    let failed = loop {
        let id = a
            .op(create_note(&format!("note {}", confirmed.len())))
            .await;
        match a.outcome(&id).await {
            ServerMessage::Applied(x) => confirmed.push(x.seq),
            ServerMessage::Rejected(r) => break r,
            other => panic!("{other:?}"),
        }
    };
    let refused_text = format!("note {}", confirmed.len());
    assert_eq!(failed.reason, RejectReason::ReadOnly);
    assert!(failed.message.contains("read-only"));
    assert!(!confirmed.is_empty());
    // Everyone is told; later ops are refused; health reports it.
    let seen = b
        .recv_until(|m| matches!(m, ServerMessage::ReadOnly(_)))
        .await;
    assert_eq!(
        seen.iter()
            .filter(|m| matches!(m, ServerMessage::Applied(_)))
            .count(),
        confirmed.len()
    );
    let id = b.op(create_note("later")).await;
    assert!(
        matches!(b.outcome(&id).await, ServerMessage::Rejected(r) if r.reason == RejectReason::ReadOnly)
    );
    let health = bothy_tests::http::get(server.addr, "/healthz").await;
    assert_eq!(health.status, 503);
    assert!(
        health.body.contains("\"rooms_read_only\":1"),
        "{}",
        health.body
    );
    let (_c, w) = server.joined(&room).await;
    assert!(w.read_only);
    assert_eq!(
        w.seq,
        confirmed.len() as u64,
        "new members see only confirmed changes"
    );
    server.stop().await;
    // The journal holds the confirmed records and nothing after them.
    let journal = std::fs::read_to_string(journal_path(tmp.path(), &room)).unwrap();
    assert_eq!(journal.lines().count(), confirmed.len(), "{journal}");
    // After a restart on a healthy disk, every confirmed note is there once, the refused one
    // is not, and the room takes changes again.
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (mut c, w) = server.joined(&room).await;
    assert!(!w.read_only);
    assert_eq!(w.seq, confirmed.len() as u64);
    let texts: Vec<String> = w.board.unwrap().notes.into_iter().map(|n| n.text).collect();
    let expected: Vec<String> = (0..confirmed.len()).map(|i| format!("note {i}")).collect();
    assert_eq!(texts, expected);
    assert!(!texts.contains(&refused_text));
    let next = c.apply(create_note("after the restart")).await;
    assert_eq!(next.seq, confirmed.len() as u64 + 1);
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_saved_makes_the_room_read_only_and_loses_nothing() {
    // A compaction's snapshot is saved beside the journal, which goes on confirming. Here the
    // disk refuses the snapshot (a folder stands where its temp file goes) while the journal
    // still takes writes: the room turns read-only, and everything it confirmed, before or
    // after the compaction began, is there after a restart.
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |c| c.compact_every = 5).await;
    let room = server.create_room("Ideas").await;
    let room_dir = tmp.path().join("rooms").join(&room);
    std::fs::create_dir(room_dir.join("snapshot.json.tmp")).unwrap();
    let (mut a, _) = server.joined(&room).await;
    let (mut b, _) = server.joined(&room).await;
    let mut confirmed = 0;
    let failed = loop {
        assert!(confirmed < 100, "the room never turned read-only");
        let id = a.op(create_note(&format!("note {confirmed}"))).await;
        match a.outcome(&id).await {
            ServerMessage::Applied(x) => {
                confirmed += 1;
                assert_eq!(x.seq, confirmed);
            }
            ServerMessage::Rejected(r) => break r,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(failed.reason, RejectReason::ReadOnly);
    assert!(confirmed >= 5, "confirmed {confirmed}");
    b.recv_until(|m| matches!(m, ServerMessage::ReadOnly(_)))
        .await;
    let health = bothy_tests::http::get(server.addr, "/healthz").await;
    assert_eq!(health.status, 503);
    server.stop().await;
    let expected: Vec<String> = (0..confirmed).map(|i| format!("note {i}")).collect();
    // Restarted while the disk still refuses: the compaction cannot be finished, so the room
    // opens read-only with everything it confirmed, and its journals stay as they are.
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (mut c, w) = server.joined(&room).await;
    assert!(w.read_only);
    assert_eq!(w.seq, confirmed);
    let texts: Vec<String> = w.board.unwrap().notes.into_iter().map(|n| n.text).collect();
    assert_eq!(texts, expected);
    let id = c.op(create_note("while read-only")).await;
    assert!(
        matches!(c.outcome(&id).await, ServerMessage::Rejected(r) if r.reason == RejectReason::ReadOnly)
    );
    assert!(room_dir.join("journal.prev.log").exists());
    server.stop().await;
    // Once the disk takes writes again, the next start finishes the compaction.
    std::fs::remove_dir(room_dir.join("snapshot.json.tmp")).unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (mut c, w) = server.joined(&room).await;
    assert!(!w.read_only);
    assert_eq!(w.seq, confirmed);
    let texts: Vec<String> = w.board.unwrap().notes.into_iter().map(|n| n.text).collect();
    assert_eq!(texts, expected);
    let next = c.apply(create_note("after the restart")).await;
    assert_eq!(next.seq, confirmed + 1);
    // The restart finished the compaction: one snapshot, one journal.
    assert!(!room_dir.join("journal.prev.log").exists());
}

#[tokio::test]
async fn a_busy_room_compacts_while_it_confirms_and_keeps_every_op_once() {
    // Two people adding notes as fast as they are confirmed, in a room that compacts every 7
    // records: every op is confirmed once, in order, and a SIGKILL at the end (whatever step of
    // a compaction it lands on) loses none of them.
    let tmp = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(tmp.path(), &["--compact-every", "7"]);
    let room = bothy_tests::create_room(server.addr, "What would help?").await;
    let mut a = Client::connect(server.addr, &room).await;
    a.join(None).await;
    let mut b = Client::connect(server.addr, &room).await;
    b.join(None).await;
    let mut seqs = Vec::new();
    for i in 0..60 {
        let (x, y) = tokio::join!(
            a.apply(create_note(&format!("a{i}"))),
            b.apply(create_note(&format!("b{i}")))
        );
        seqs.extend([x.seq, y.seq]);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=120).collect::<Vec<u64>>());
    server.kill9();
    let loaded = load(tmp.path(), &room).unwrap();
    assert_eq!(loaded.seq, 120);
    let mut texts: Vec<String> = loaded
        .board
        .notes
        .values()
        .map(|n| n.text.clone())
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..60)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.sort();
    assert_eq!(texts, expected);
}

#[test]
fn a_rotation_never_replaces_a_previous_journal_still_waiting_for_its_snapshot() {
    // If a journal.prev.log is there, its records may be in no snapshot yet: rotating over it
    // would lose them. The rotation fails instead (and the room would turn read-only).
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::open(tmp.path(), Faults::default()).unwrap();
    let h = history(6);
    storage
        .create_room(&h.room, Board::new("What would help?"))
        .unwrap();
    let mut loaded = storage.load_room(&h.room, &Limits::default()).unwrap();
    loaded.journal.append(&h.journal(3, 6), 3).unwrap();
    let previous = storage.room_dir(&h.room).join("journal.prev.log");
    std::fs::write(&previous, h.journal(0, 3)).unwrap();
    let err = loaded.journal.rotate().unwrap_err();
    assert!(err.to_string().contains("journal.prev.log"), "{err}");
    assert_eq!(std::fs::read(&previous).unwrap(), h.journal(0, 3));
    // Both journals are intact, and a restart replays them in order.
    let again = storage.load_room(&h.room, &Limits::default()).unwrap();
    assert_eq!((again.seq, &again.board), (6, &h.boards[6]));
    assert!(!previous.exists());
}

#[test]
fn recovering_a_10000_op_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = Storage::open(tmp.path(), Faults::default()).unwrap();
    let room = RoomId::parse("bigroom").unwrap();
    storage
        .create_room(&room, Board::new("Ten thousand changes"))
        .unwrap();
    let limits = Limits::default();
    let mut board = Board::new("Ten thousand changes");
    let mut journal = Vec::new();
    let actor = bothy_shared::ActorKey::new("k1");
    // 1,500 notes, then moves and edits of them: 10,000 records in all.
    for seq in 1..=10_000u64 {
        let target = seq % 1500 + 1;
        let op = match seq {
            1..=1500 => create_note(&format!(
                "note number {seq}: a realistic sticky note of some length"
            )),
            _ if seq % 2 == 0 => move_note(target, (seq % 3000) as f64, 10.0),
            _ => edit_note(
                target,
                &format!("edited note {seq}, with a few more words to be realistic"),
            ),
        };
        let record = JournalRecord {
            seq,
            at: 1_700_000_000_000 + seq,
            actor: actor.clone(),
            author: Some("Sam".into()),
            op_id: bothy_shared::OpId::parse(&format!("op-{seq}")).unwrap(),
            op,
        };
        board.apply(&record.op, &record.context(), &limits).unwrap();
        journal.extend_from_slice(&record.encode());
    }
    let records = 10_000;
    let renumbered = journal;
    std::fs::write(storage.room_dir(&room).join("journal.log"), &renumbered).unwrap();
    drop(storage);
    let storage = Storage::open(tmp.path(), Faults::default()).unwrap();
    let started = std::time::Instant::now();
    let loaded = storage.load_room(&room, &limits).unwrap();
    let took = started.elapsed();
    println!(
        "recovered {records} journal records ({} KiB) in {:.1} ms",
        renumbered.len() / 1024,
        took.as_secs_f64() * 1000.0
    );
    assert_eq!(loaded.seq, records as u64);
    assert_eq!(loaded.board, board);
}

// ---------------------------------------------------------------------------------------------
// A crash at each step of compaction. Compaction (storage::compact) writes `snapshot.json.tmp`,
// fsyncs it, renames it over `snapshot.json`, fsyncs the room folder, then truncates and fsyncs
// the journal; new records are appended after that. Each test below builds, file by file, the
// state a crash (kill -9 or power loss) at one of those steps can leave, for a journal of N
// records after an old snapshot at K0 and a new snapshot at every K from K0 to N, and restarts.
// Every restart must give the board with all N confirmed operations, each exactly once (and
// remembered once, so a resend is answered `already_applied`).
// ---------------------------------------------------------------------------------------------

/// A room's confirmed history, made without a server: the records, the board after each prefix
/// (`boards[k]` has the first k records applied), and the two identity tokens that wrote them.
struct History {
    room: RoomId,
    records: Vec<JournalRecord>,
    boards: Vec<Board>,
    tokens: [String; 2],
}

/// N records by two people: notes, themes, moves, edits, theming and a deletion.
fn history(n: usize) -> History {
    let room = RoomId::parse("compaction").unwrap();
    let tokens = [
        "tokenofailsa0000".to_owned(),
        "tokenofben0000000".to_owned(),
    ];
    let actors = tokens
        .clone()
        .map(|t| bothy_server::connection::actor_key(&t));
    let limits = Limits::default();
    let mut board = Board::new("What would help?");
    let mut boards = vec![board.clone()];
    let mut records = Vec::new();
    let (mut notes, mut themes): (Vec<(usize, u64)>, Vec<u64>) = (Vec::new(), Vec::new());
    for seq in 1..=n as u64 {
        let who = (seq % 2) as usize;
        let own_note = notes
            .iter()
            .rev()
            .find(|(w, _)| *w == who)
            .map(|(_, id)| *id);
        let op = match (seq % 6, own_note, themes.last()) {
            (1 | 2, _, _) | (_, None, _) => create_note(&format!("note {seq}: “quoted” ✓")),
            (3, _, _) => create_theme(&format!("Theme {seq}")),
            (4, Some(id), Some(&t)) => set_theme(id, Some(t), Some(0)),
            (5, Some(id), _) => edit_note(id, &format!("edited at {seq}\nsecond line")),
            (0, Some(id), _) if seq % 12 == 0 => delete_note(id),
            (_, Some(id), _) => move_note(id, seq as f64 * 10.5, 20.25),
        };
        let record = JournalRecord {
            seq,
            at: 1_767_225_600_000 + seq * 1000,
            actor: actors[who].clone(),
            author: (who == 0).then(|| "Ailsa".to_owned()),
            op_id: bothy_shared::OpId::parse(&format!("op-{seq}")).unwrap(),
            op,
        };
        let applied = board
            .apply(&record.op, &record.context(), &limits)
            .unwrap_or_else(|e| panic!("record {seq} applies: {e}"));
        if let Some(id) = applied.created {
            match record.op {
                bothy_shared::Op::CreateNote(_) => notes.push((who, id)),
                _ => themes.push(id),
            }
        }
        if let bothy_shared::Op::DeleteNote(d) = &record.op {
            notes.retain(|(_, id)| *id != d.note);
        }
        records.push(record);
        boards.push(board.clone());
    }
    History {
        room,
        records,
        boards,
        tokens,
    }
}

impl History {
    /// The snapshot compaction writes at seq k.
    fn snapshot(&self, k: usize) -> RoomSnapshot {
        RoomSnapshot {
            format: storage::SNAPSHOT_FORMAT,
            room: self.room.clone(),
            seq: k as u64,
            board: self.boards[k].clone(),
            recent_ops: self.records[..k]
                .iter()
                .map(|r| storage::RecentOp {
                    actor: r.actor.clone(),
                    op_id: r.op_id.clone(),
                    seq: r.seq,
                })
                .collect(),
        }
    }

    /// Journal lines for records `from + 1 ..= to`.
    fn journal(&self, from: usize, to: usize) -> Vec<u8> {
        self.records[from..to]
            .iter()
            .flat_map(|r| r.encode())
            .collect()
    }
}

/// What is in the room folder after the crash.
struct OnDisk {
    snapshot: Vec<u8>,
    tmp: Option<Vec<u8>>,
    /// `journal.prev.log`: the journal a running room's compaction moved aside.
    previous: Option<Vec<u8>>,
    /// `journal.log` (`None`: not there, as between the rotation's rename and its new file).
    journal: Option<Vec<u8>>,
}

fn write_room(dir: &Path, room: &RoomId, files: &OnDisk) {
    let room_dir = dir.join("rooms").join(room.as_str());
    std::fs::create_dir_all(&room_dir).unwrap();
    std::fs::write(room_dir.join("snapshot.json"), &files.snapshot).unwrap();
    if let Some(tmp) = &files.tmp {
        std::fs::write(room_dir.join("snapshot.json.tmp"), tmp).unwrap();
    }
    if let Some(previous) = &files.previous {
        std::fs::write(room_dir.join("journal.prev.log"), previous).unwrap();
    }
    if let Some(journal) = &files.journal {
        std::fs::write(room_dir.join("journal.log"), journal).unwrap();
    }
}

/// Restarts (twice, as a second crash could come right after recovery) and checks the room holds
/// the first `confirmed` operations of `h`, each exactly once. Returns what the first recovery
/// found.
fn restart_and_check(h: &History, files: &OnDisk, confirmed: usize, state: &str) -> Recovery {
    let n = confirmed;
    let tmp = tempfile::tempdir().unwrap();
    write_room(tmp.path(), &h.room, files);
    let mut first = None;
    for attempt in 1..=2 {
        let loaded = load(tmp.path(), h.room.as_str())
            .unwrap_or_else(|e| panic!("{state}: restart {attempt} failed: {e}"));
        assert_eq!(loaded.seq, n as u64, "{state}: restart {attempt} seq");
        assert_eq!(
            loaded.board, h.boards[n],
            "{state}: restart {attempt} board"
        );
        loaded
            .board
            .check_invariants(&Limits::default())
            .unwrap_or_else(|e| panic!("{state}: {e}"));
        let remembered: Vec<(u64, &str)> = loaded
            .recent_ops
            .iter()
            .map(|r| (r.seq, r.op_id.as_str()))
            .collect();
        let confirmed: Vec<(u64, &str)> = h.records[..n]
            .iter()
            .map(|r| (r.seq, r.op_id.as_str()))
            .collect();
        assert_eq!(
            remembered, confirmed,
            "{state}: every op id remembered once, in order"
        );
        if let Recovery::SetAside { problem, .. } = &loaded.recovery {
            panic!("{state}: a crash state was taken for corruption: {problem}");
        }
        first.get_or_insert(loaded.recovery);
    }
    // Nothing was set aside, the snapshot was never replaced by a bad one, and an unfinished
    // compaction was finished by the first restart.
    let room_dir = tmp.path().join("rooms").join(h.room.as_str());
    for entry in std::fs::read_dir(&room_dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".corrupt"), "{state}: {name} was set aside");
        assert_ne!(name, "journal.prev.log", "{state}: left after a restart");
    }
    first.unwrap()
}

#[test]
fn a_crash_at_each_step_of_compaction_keeps_every_confirmed_op_exactly_once() {
    const N: usize = 16;
    const K0: usize = 3;
    let h = history(N);
    let old = serde_json::to_vec(&h.snapshot(K0)).unwrap();
    let mut states = 0;
    for k in K0..=N {
        let new = serde_json::to_vec(&h.snapshot(k)).unwrap();
        let mut check = |files: OnDisk, confirmed: usize, step: &str, expect_torn: bool| {
            let step = format!("K={k}: {step}");
            let recovery = restart_and_check(&h, &files, confirmed, &step);
            assert_eq!(
                matches!(recovery, Recovery::TornTail { .. }),
                expect_torn,
                "{step}: {recovery:?}"
            );
            states += 1;
        };
        // A running room compacts in two steps. (1) With no batch in flight, so the journal
        // holds exactly records K0+1..=K, it renames the journal to journal.prev.log, creates
        // a new journal.log and fsyncs the folder. A crash between the rename and the new file:
        check(
            OnDisk {
                snapshot: old.clone(),
                tmp: None,
                previous: Some(h.journal(K0, k)),
                journal: None,
            },
            k,
            "rotated, no new journal yet",
            false,
        );
        // (2) Beside the new journal, which takes records K+1.. meanwhile, it writes the
        // snapshot at K: the temp file cut anywhere (a crash, or power lost before its fsync),
        // then whole but not renamed (or renamed and the rename lost with the power).
        let rotated = |tmp: Option<Vec<u8>>, snapshot: &Vec<u8>| OnDisk {
            snapshot: snapshot.clone(),
            tmp,
            previous: Some(h.journal(K0, k)),
            journal: Some(h.journal(k, N)),
        };
        for cut in [0, 1, new.len() / 3, new.len() / 2, new.len() - 1] {
            check(
                rotated(Some(new[..cut].to_vec()), &old),
                N,
                &format!("rotated, temp file cut at {cut} of {} bytes", new.len()),
                false,
            );
        }
        check(
            rotated(Some(new.clone()), &old),
            N,
            "rotated, temp file whole, not renamed",
            false,
        );
        // Renamed: the snapshot holds every record of journal.prev.log, not yet deleted.
        check(
            rotated(None, &new),
            N,
            "rotated, renamed, previous journal not deleted",
            false,
        );
        // ... and the power failed during an append to the new journal: a torn record, or
        // (ext4 with delayed allocation) a tail of zeros where unsynced data never landed.
        // Neither was confirmed.
        for (tail, what) in [
            (b"0badc0de {\"seq\":".to_vec(), "torn"),
            (vec![0u8; 512], "left as zeros"),
        ] {
            for snapshot in [&old, &new] {
                let mut files = rotated(None, snapshot);
                files.journal.as_mut().unwrap().extend_from_slice(&tail);
                let renamed = if snapshot == &new {
                    "renamed"
                } else {
                    "not renamed"
                };
                check(
                    files,
                    N,
                    &format!("rotated, snapshot {renamed}, an unconfirmed append {what}"),
                    true,
                );
            }
        }
        // Done: the previous journal deleted (the deletion fsynced or not).
        check(
            OnDisk {
                snapshot: new.clone(),
                tmp: None,
                previous: None,
                journal: Some(h.journal(k, N)),
            },
            N,
            "previous journal deleted, later records appended",
            false,
        );

        // At start-up (after recovery set a damaged journal aside, or finished an interrupted
        // compaction) a room compacts in one go: snapshot, then the journal emptied. Records
        // after K are only appended once the room runs, after the journal is emptied.
        let before = |tmp: Option<Vec<u8>>| OnDisk {
            snapshot: old.clone(),
            tmp,
            previous: None,
            journal: Some(h.journal(K0, k)),
        };
        check(
            before(None),
            k,
            "start-up: crash before the temp file",
            false,
        );
        for cut in [0, new.len() / 2, new.len() - 1] {
            check(
                before(Some(new[..cut].to_vec())),
                k,
                &format!("start-up: temp file cut at {cut} of {} bytes", new.len()),
                false,
            );
        }
        check(
            OnDisk {
                snapshot: new.clone(),
                tmp: None,
                previous: None,
                journal: Some(h.journal(K0, k)),
            },
            k,
            "start-up: renamed, journal not yet emptied",
            false,
        );
        check(
            OnDisk {
                snapshot: new.clone(),
                tmp: None,
                previous: Some(h.journal(K0, k)),
                journal: Some(Vec::new()),
            },
            k,
            "start-up: journal emptied, previous journal not yet deleted",
            false,
        );
    }
    println!(
        "compaction crash states: {states} restarts (each done twice), N={N}, K0={K0}, K={K0}..={N}"
    );
}

#[test]
fn a_damaged_previous_journal_sets_both_journals_aside_and_keeps_what_came_before() {
    // A bit flipped in journal.prev.log (a compaction was interrupted): the records after the
    // damage cannot be applied, nor can the later journal's, which would follow a gap. Both
    // files are kept, byte for byte; the room opens with what came before the damage.
    const N: usize = 12;
    const K: usize = 7;
    let h = history(N);
    let previous = h.journal(0, K);
    let journal = h.journal(K, N);
    let line_starts = line_starts(&previous);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..50 {
        let pos = rng.random_range(0..previous.len());
        let mut damaged = previous.clone();
        damaged[pos] ^= 1 << rng.random_range(0..8);
        let tmp = tempfile::tempdir().unwrap();
        write_room(
            tmp.path(),
            &h.room,
            &OnDisk {
                snapshot: serde_json::to_vec(&h.snapshot(0)).unwrap(),
                tmp: None,
                previous: Some(damaged.clone()),
                journal: Some(journal.clone()),
            },
        );
        let loaded = load(tmp.path(), h.room.as_str()).unwrap();
        let record = line_starts.iter().filter(|&&s| s <= pos).count();
        assert!(
            loaded.seq < record as u64,
            "flip at {pos}: seq {}",
            loaded.seq
        );
        assert_eq!(loaded.board, h.boards[loaded.seq as usize]);
        let room_dir = tmp.path().join("rooms").join(h.room.as_str());
        let mut kept: Vec<Vec<u8>> = std::fs::read_dir(&room_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".corrupt"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        kept.sort();
        assert!(
            matches!(loaded.recovery, Recovery::SetAside { .. }),
            "flip at {pos}: {:?}",
            loaded.recovery
        );
        // Even a flip in the last newline: the previous journal was whole, so a cut-short last
        // record in it is damage, not a torn tail to drop.
        let mut expected = vec![damaged.clone(), journal.clone()];
        expected.sort();
        assert_eq!(kept, expected, "flip at {pos}: {:?}", loaded.recovery);
        assert!(!room_dir.join("journal.prev.log").exists());
        // The room goes on from there.
        let again = load(tmp.path(), h.room.as_str()).unwrap();
        assert_eq!((again.seq, &again.board), (loaded.seq, &loaded.board));
        assert_eq!(again.recovery, Recovery::Clean { records: 0 });
    }
}

#[test]
fn a_crash_while_creating_a_room_leaves_no_room() {
    // The first snapshot is written like any other (temp file, rename); until the rename the
    // room does not exist, and the browser was never told it did (201 comes after).
    let tmp = tempfile::tempdir().unwrap();
    let room = RoomId::parse("halfmade").unwrap();
    let dir = tmp.path().join("rooms").join(room.as_str());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("snapshot.json.tmp"), b"{\"format\":1,\"ro").unwrap();
    let storage = Storage::open(tmp.path(), Faults::default()).unwrap();
    assert!(!storage.room_exists(&room));
    assert!(matches!(
        storage.load_room(&room, &Limits::default()),
        Err(storage::StorageError::NoSuchRoom(_))
    ));
}

#[tokio::test]
async fn the_server_restarts_on_an_interrupted_compaction_and_applies_resends_once() {
    // The state after the rename, before the journal was emptied (the snapshot holds records
    // 1..=K, the journal 1..=N): the real server serves it, and resends of confirmed ops from
    // either side of K are answered `already_applied`, never applied again.
    const N: usize = 14;
    const K: usize = 8;
    let h = history(N);
    let tmp = tempfile::tempdir().unwrap();
    write_room(
        tmp.path(),
        &h.room,
        &OnDisk {
            snapshot: serde_json::to_vec(&h.snapshot(K)).unwrap(),
            tmp: Some(b"{\"format\":1,\"room\":\"compaction\",\"seq\":".to_vec()),
            previous: None,
            journal: Some(h.journal(0, N)),
        },
    );
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let room = h.room.as_str();
    let mut c = server.client(room).await;
    c.token = h.tokens[0].clone();
    let w = c.join(None).await;
    assert_eq!(w.seq, N as u64);
    assert_eq!(w.board.unwrap(), h.boards[N].public());
    let actor = bothy_server::connection::actor_key(&h.tokens[0]);
    assert_eq!(w.mine, h.boards[N].notes_owned_by(&actor));
    // Resend Ailsa's ops from before and after K with the same op ids.
    for r in h.records.iter().filter(|r| r.actor == actor) {
        c.send_op(r.op_id.clone(), r.op.clone()).await;
        match c.outcome(&r.op_id).await {
            ServerMessage::AlreadyApplied(a) => assert_eq!(a.seq, r.seq),
            other => panic!("resend of {} got {other:?}", r.op_id.as_str()),
        }
    }
    let next = c.apply(create_note("after the restart")).await;
    assert_eq!(next.seq, N as u64 + 1);
    server.stop().await;
    // The graceful stop compacted; one more restart still has everything once.
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (_c, w) = server.joined(room).await;
    assert_eq!(w.seq, N as u64 + 1);
    let board = w.board.unwrap();
    assert_eq!(board.notes.len(), h.boards[N].notes.len() + 1);
}
