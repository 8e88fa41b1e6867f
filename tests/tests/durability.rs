//! Durability with real files: restarts, graceful shutdown, torn and corrupt journals, an
//! interrupted compaction, a failing disk, and the time to recover a long journal.

use bothy_server::storage::{self, Faults, JournalRecord, Recovery, RoomSnapshot, Storage};
use bothy_shared::protocol::{ServerMessage, close};
use bothy_shared::{Board, Limits, RejectReason, RoomId};
use bothy_tests::ops::*;
use bothy_tests::{BinaryServer, Client, Closed, TestServer};
use rand::{Rng, SeedableRng};
use std::path::Path;

/// Makes a room through the real binary, runs `ops` confirmed ops in it, then SIGKILLs the
/// server so the journal is left exactly as written. Returns the room id and the board the
/// clients saw.
async fn room_with_journal(dir: &Path, ops: usize) -> (String, Board) {
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
    let room = bothy_tests::create_room(server.addr, "Ideas").await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut c = Client::connect(server.addr, &room).await;
        c.join(None).await;
        c.apply(create_note(&format!("from {i}"))).await;
        clients.push(c);
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
    // The final flush compacted the journal into the snapshot.
    let loaded = load(tmp.path(), &room).unwrap();
    assert_eq!(loaded.seq, 5);
    assert_eq!(loaded.journal.records, 0);
    assert_eq!(
        std::fs::metadata(journal_path(tmp.path(), &room))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(loaded.board.notes.len(), 5);
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
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            journal
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
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
    let tmp = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_in(tmp.path(), |c| c.faults = Faults::fail_journal_after(1500)).await;
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
    // After a restart on a healthy disk, every confirmed note is there.
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (_c, w) = server.joined(&room).await;
    assert!(!w.read_only);
    assert_eq!(w.seq, confirmed.len() as u64);
    assert_eq!(w.board.unwrap().notes.len(), confirmed.len());
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
