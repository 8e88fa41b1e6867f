//! Live behaviour over real sockets: convergence, isolation, rejections, reconnects,
//! slow consumers and presence.

use bothy_shared::RejectReason;
use bothy_shared::op::Colour;
use bothy_shared::protocol::ServerMessage;
use bothy_tests::ops::*;
use bothy_tests::{Client, Closed, Replica, TestServer};

fn applied_seqs(msgs: &[ServerMessage]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Applied(a) => Some(a.seq),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn two_clients_converge_on_every_kind_of_change() {
    let server = TestServer::start().await;
    let room = server.create_room("What is working well?").await;
    let (mut a, wa) = server.joined(&room).await;
    let (mut b, wb) = server.joined(&room).await;
    assert_eq!(wa.board.as_ref().unwrap().prompt, "What is working well?");
    let mut ra = Replica::from_welcome(&wa);
    let mut rb = Replica::from_welcome(&wb);

    let note = a
        .apply(create_note("The buddy scheme"))
        .await
        .created
        .unwrap();
    let theme = b.apply(create_theme("People")).await.created.unwrap();
    a.apply(edit_note(note, "The buddy scheme helps new volunteers"))
        .await;
    a.apply(recolour_note(note, Colour::Green)).await;
    b.apply(move_note(note, 250.5, 40.0)).await;
    b.apply(set_theme(note, Some(theme), Some(0))).await;
    b.apply(rename_theme(theme, "People and support")).await;
    let second = b.apply(create_note("Clear agendas")).await.created.unwrap();
    b.apply(delete_note(second)).await;

    // Both follow every applied message in order and end with the same board.
    a.sync().await;
    b.sync().await;
    for m in a.take_received().iter() {
        ra.follow(m);
    }
    for m in b.take_received().iter() {
        rb.follow(m);
    }
    // Each saw every change, its own confirmations included, in order.
    assert_eq!(ra.seq, 9);
    assert_eq!(rb.seq, 9);
    assert_eq!(ra.board, rb.board);
    let (_c, wc) = server.joined(&room).await;
    assert_eq!(
        wc.board.as_ref().unwrap(),
        &ra.board.public(),
        "a newcomer sees the same board"
    );
    let n = &ra.board.notes[&note];
    assert_eq!(n.text, "The buddy scheme helps new volunteers");
    assert_eq!(n.colour, Colour::Green);
    assert_eq!((n.x, n.y), (250.5, 40.0));
    assert_eq!(n.theme, Some(theme));
    assert_eq!(ra.board.themes[&theme].title, "People and support");
    assert!(!ra.board.notes.contains_key(&second));
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = TestServer::start().await;
    let one = server.create_room("Room one").await;
    let two = server.create_room("Room two").await;
    let (mut a, _) = server.joined(&one).await;
    let (mut b, wb) = server.joined(&two).await;
    let note = a
        .apply(create_note("only in room one"))
        .await
        .created
        .unwrap();
    // b received nothing from room one.
    let seen = b.sync().await;
    assert!(applied_seqs(&seen).is_empty(), "room two saw {seen:?}");
    // The same note id in room two names nothing there.
    let id = b.op(delete_note(note)).await;
    match b.outcome(&id).await {
        ServerMessage::Rejected(r) => assert_eq!(r.reason, RejectReason::NotFound),
        other => panic!("{other:?}"),
    }
    let (_c, wc) = server.joined(&two).await;
    assert_eq!(wc.board, wb.board);
    assert_eq!(wc.seq, 0);
}

#[tokio::test]
async fn a_refused_op_goes_to_its_author_only_and_changes_nothing() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut a, _) = server.joined(&room).await;
    let (mut b, _) = server.joined(&room).await;
    let mine = a.apply(create_note("mine")).await.created.unwrap();
    b.sync().await;

    let cases = [
        (create_note(&"x".repeat(501)), RejectReason::TextTooLong),
        (create_note("   "), RejectReason::TextEmpty),
        (
            create_note("bell\u{7}"),
            RejectReason::TextControlCharacters,
        ),
        (move_note(mine, 1e308, 0.0), RejectReason::OutOfBounds),
        (move_note(999, 1.0, 1.0), RejectReason::NotFound),
        (set_theme(mine, Some(42), None), RejectReason::NotFound),
        (rename_theme(7, "nope"), RejectReason::NotFound),
    ];
    for (op, reason) in cases {
        let id = b.op(op).await;
        match b.outcome(&id).await {
            ServerMessage::Rejected(r) => {
                assert_eq!(r.reason, reason);
                assert!(!r.message.is_empty());
            }
            other => panic!("expected rejection, got {other:?}"),
        }
    }
    // Someone else's note cannot be edited, recoloured or deleted.
    for op in [
        edit_note(mine, "changed"),
        recolour_note(mine, Colour::Pink),
        delete_note(mine),
    ] {
        let id = b.op(op).await;
        match b.outcome(&id).await {
            ServerMessage::Rejected(r) => assert_eq!(r.reason, RejectReason::NotYours),
            other => panic!("{other:?}"),
        }
    }
    // a saw none of it (only, perhaps, how many people are here).
    let seen = a.sync().await;
    assert!(
        seen.iter().all(|m| matches!(m, ServerMessage::Presence(_))),
        "{seen:?}"
    );
    let (_c, w) = server.joined(&room).await;
    assert_eq!(w.seq, 1);
    let board = w.board.unwrap();
    let note = board.notes.iter().find(|n| n.id == mine).unwrap();
    assert_eq!(note.text, "mine");
}

#[tokio::test]
async fn a_resent_op_is_applied_exactly_once() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let mut a = server.client(&room).await;
    a.join(None).await;
    // Sent, then the connection drops before the confirmation is read.
    let op_id = a.op_id();
    a.send_op(op_id.clone(), create_note("sent once")).await;
    let token = a.token.clone();
    a.close().await;

    let mut again = server.client(&room).await;
    again.token = token.clone();
    let w = again.join(Some(0)).await;
    again.send_op(op_id.clone(), create_note("sent once")).await;
    let outcome = again.outcome(&op_id).await;
    // Either the first send was applied (and this is a duplicate), or it was not and this
    // applies it; never both.
    let msgs = again.sync().await;
    let board = {
        let (_c, w2) = server.joined(&room).await;
        w2.board.unwrap()
    };
    let copies = board.notes.iter().filter(|n| n.text == "sent once").count();
    assert_eq!(
        copies, 1,
        "welcome {w:?}, outcome {outcome:?}, then {msgs:?}"
    );

    // And once more, after it is surely confirmed: always already_applied.
    again.send_op(op_id.clone(), create_note("sent once")).await;
    match again.outcome(&op_id).await {
        ServerMessage::AlreadyApplied(a) => assert_eq!(a.seq, 1),
        other => panic!("{other:?}"),
    }
    // The same op id from another person is a different op.
    let mut other = server.client(&room).await;
    other.join(None).await;
    other.send_op(op_id.clone(), create_note("sent once")).await;
    assert!(matches!(
        other.outcome(&op_id).await,
        ServerMessage::Applied(_)
    ));
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut a, _) = server.joined(&room).await;
    let (mut b, wb) = server.joined(&room).await;
    let mut rb = Replica::from_welcome(&wb);
    let note = a.apply(create_note("before")).await.created.unwrap();
    for m in b.sync().await.iter() {
        rb.follow(m);
    }
    let (token, seen) = (b.token.clone(), rb.seq);
    b.close().await;

    a.apply(edit_note(note, "after")).await;
    a.apply(create_theme("Later")).await;
    a.apply(set_theme(note, Some(1), None)).await;

    let mut b = server.client(&room).await;
    b.token = token;
    let w = b.join(Some(seen)).await;
    assert!(w.board.is_none(), "recent reconnect: only what was missed");
    assert_eq!(w.seq, 4);
    assert_eq!(w.mine, Vec::<u64>::new());
    let missed = b.sync().await;
    assert_eq!(applied_seqs(&missed), vec![2, 3, 4]);
    for m in &missed {
        rb.follow(m);
    }
    let (_c, fresh) = server.joined(&room).await;
    assert_eq!(rb.board.public(), fresh.board.unwrap());

    // A client that says nothing of what it saw, or something impossible, gets the board.
    let mut c = server.client(&room).await;
    assert!(c.join(Some(999)).await.board.is_some());
}

#[tokio::test]
async fn welcome_lists_the_notes_this_person_wrote() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut a, _) = server.joined(&room).await;
    let (mut b, _) = server.joined(&room).await;
    let n1 = a.apply(create_note("a1")).await.created.unwrap();
    let _n2 = b.apply(create_note("b1")).await.created.unwrap();
    let mut again = server.client(&room).await;
    again.token = a.token.clone();
    let w = again.join(None).await;
    assert_eq!(w.mine, vec![n1]);
    // Nobody's identity is in the board others receive.
    let text = serde_json::to_string(&w).unwrap();
    assert!(!text.contains("owner"), "{text}");
    assert!(!text.contains(&a.token) && !text.contains(&b.token));
}

#[tokio::test]
async fn presence_counts_people_not_tabs() {
    let server = TestServer::start().await;
    let room = server.create_room("Ideas").await;
    let (mut a, wa) = server.joined(&room).await;
    assert_eq!(wa.presence, 1);
    let (b, wb) = server.joined(&room).await;
    assert_eq!(wb.presence, 2);
    let counts = |msgs: Vec<ServerMessage>| -> Vec<u32> {
        msgs.into_iter()
            .filter_map(|m| match m {
                ServerMessage::Presence(p) => Some(p.count),
                _ => None,
            })
            .collect()
    };
    assert_eq!(counts(a.sync().await), vec![2]);
    // The same person in a second tab is still one person.
    let mut tab = server.client(&room).await;
    tab.token = a.token.clone();
    assert_eq!(tab.join(None).await.presence, 2);
    assert!(counts(a.sync().await).is_empty());
    b.close().await;
    let seen = a
        .recv_until(|m| matches!(m, ServerMessage::Presence(_)))
        .await;
    assert_eq!(counts(seen), vec![1]);
}

#[tokio::test]
async fn a_write_that_stalls_past_the_write_timeout_ends_the_connection() {
    // A queue long enough never to fill, so only the write timeout can end the connection; pings
    // too rare to end it instead.
    let server = TestServer::start_with(|c| {
        c.queue_len = 1024;
        c.limits.note_text_chars = 16_000;
        c.write_timeout = std::time::Duration::from_secs(1);
        c.ping_interval = std::time::Duration::from_secs(600);
    })
    .await;
    let room = server.create_room("Ideas").await;
    let (mut writer, _) = server.joined(&room).await;
    let mut slow = Client::connect_small_buffer(server.addr, &room).await;
    slow.join(None).await;
    let connections = |n: u32| format!("\nbothy_connections {n}\n");
    let metrics = bothy_tests::http::get(server.addr, "/metrics").await.body;
    assert!(metrics.contains(&connections(2)), "{metrics}");

    // 300 × 15 KB = 4.5 MB: more than the slow client's socket buffers hold, and fewer
    // messages than its queue.
    let big = "x".repeat(15_000);
    let note = writer.apply(create_note("a note")).await.created.unwrap();
    for i in 0..300 {
        writer.apply(edit_note(note, &format!("{i}{big}"))).await;
    }

    // The writer stalls, gives up after a second, and the connection ends.
    let deadline = tokio::time::Instant::now() + bothy_tests::DEADLINE;
    let metrics = loop {
        let metrics = bothy_tests::http::get(server.addr, "/metrics").await.body;
        if metrics.contains(&connections(1)) {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled connection is still open:\n{metrics}"
        );
        // Polling: the server tells no one when it gives up on a write.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        metrics.contains("bothy_slow_members_closed_total 0\n"),
        "it was the write timeout, not a full queue:\n{metrics}"
    );
    // The writer is still served.
    writer.apply(edit_note(note, "still here")).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_and_the_others_keep_going() {
    let server = TestServer::start_with(|c| {
        c.queue_len = 16;
        c.limits.note_text_chars = 16_000;
        c.write_timeout = std::time::Duration::from_secs(120);
    })
    .await;
    let room = server.create_room("Ideas").await;
    let (mut writer, _) = server.joined(&room).await;
    let (mut watcher, ww) = server.joined(&room).await;
    let mut slow = Client::connect_small_buffer(server.addr, &room).await;
    let ws = slow.join(None).await;
    let mut rw = Replica::from_welcome(&ww);

    let big = "x".repeat(15_000);
    let note = writer.apply(create_note("a note")).await.created.unwrap();
    // ~600 × 15 KB = 9 MB: far more than the slow client's socket buffers and queue hold.
    let total = 600;
    let watcher_task = tokio::spawn(async move {
        let msgs = watcher
            .recv_until(|m| matches!(m, ServerMessage::Applied(a) if a.seq == total + 1))
            .await;
        for m in &msgs {
            rw.follow(m);
        }
        (watcher, rw)
    });
    for i in 0..total {
        writer.apply(edit_note(note, &format!("{i}{big}"))).await;
    }
    let (_watcher, rw) = watcher_task.await.unwrap();
    assert_eq!(rw.seq, total + 1, "the watcher got every change");

    // The slow client now reads what fitted in its buffers. The room closed it with 4008; the
    // close frame arrives only if no message was half-written when the writer gave up on it.
    let mut last_seq = ws.seq;
    let closed = loop {
        match slow.try_recv(bothy_tests::DEADLINE).await {
            Ok(ServerMessage::Applied(a)) => last_seq = a.seq,
            Ok(_) => {}
            Err(c) => break c,
        }
    };
    assert!(
        matches!(closed, Closed::Frame { code: 4008, .. } | Closed::NoFrame),
        "closed with {closed:?}"
    );
    let metrics = bothy_tests::http::get(server.addr, "/metrics").await.body;
    assert!(
        metrics.contains("bothy_slow_members_closed_total 1\n"),
        "the room closed it as too slow:\n{metrics}"
    );
    assert!(
        last_seq < total + 1,
        "the slow client was cut off before the end"
    );

    // It rejoins and catches up to the same board.
    let mut back = server.client(&room).await;
    back.token = slow.token.clone();
    let w = back.join(Some(last_seq)).await;
    let mut rs = match &w.board {
        Some(_) => Replica::from_welcome(&w),
        None => panic!("far behind: expected the whole board"),
    };
    for m in back.sync().await.iter() {
        rs.follow(m);
    }
    assert_eq!(rs.board, rw.board);
}

#[tokio::test]
async fn joiners_that_do_not_read_their_welcome_keep_no_one_else_from_joining() {
    // A joiner gives its welcome turn back once the kernel has taken all it will of the
    // welcome, not when the peer has read it. The longest hold is stretched to an hour here, so
    // if a turn waited on the reading, two silent joiners would shut everyone else out.
    let server = TestServer::start_with(|c| {
        c.limits.note_text_chars = 16_000;
        c.limits.notes_per_room = 200;
        c.ops_per_second = 1_000;
        c.ops_burst = 1_000;
        c.welcome_hold = std::time::Duration::from_secs(3600);
        // The whole board in the welcome, as below the inline limit: 3 MB of it.
        c.inline_board_max = usize::MAX;
    })
    .await;
    let room = server.create_room("Long answers").await;
    let (mut host, _) = server.joined(&room).await;
    // 200 notes of 16,000 characters: a 3 MB welcome, more than the socket buffers between
    // the server and a client that does not read.
    for i in 0..200 {
        let text = format!("{i} {}", "x".repeat(15_990));
        host.apply(create_note(&text)).await;
    }
    let mut silent = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect_small_buffer(server.addr, &room).await;
        c.send_join(None).await;
        silent.push(c);
    }
    // All three are let in: the room counts them (a third would wait for a turn forever).
    host.recv_until(|m| matches!(m, ServerMessage::Presence(p) if p.count == 4))
        .await;
    let (_late, w) = server.joined(&room).await;
    assert_eq!(w.board.expect("the whole board").notes.len(), 200);
    assert_eq!(w.presence, 5);
}

#[tokio::test]
async fn a_big_board_comes_whole_from_a_one_time_link_gzipped() {
    // 299 notes of 2,000 characters: over half a megabyte of board, far over the inline limit.
    let server = TestServer::start_with(|c| {
        c.limits.note_text_chars = 2000;
        c.limits.notes_per_room = 300;
        // Joiners share a board made in the last hour (1 s by default), so C below shares B's.
        c.share_board_for = std::time::Duration::from_secs(3600);
    })
    .await;
    let room = server.create_room("Long answers").await;
    let (mut a, small) = server.joined(&room).await;
    assert!(
        small.board.is_some() && small.board_url.is_none(),
        "an empty board is inline"
    );
    for i in 0..299 {
        let text = format!("{i} {}", "long answer ".repeat(170));
        a.apply(create_note(&text[..2000])).await;
    }
    let mut b = server.client(&room).await;
    b.send_join(None).await;
    let ServerMessage::Welcome(w) = b.recv().await else {
        panic!("expected a welcome");
    };
    assert!(w.board.is_none());
    let url = w.board_url.clone().expect("a link to the board");
    assert!(url.starts_with("/api/boards/"), "{url}");
    // A change made before the link is fetched is not in the board behind it: the link is to
    // the board at the welcome's seq, and the change follows as the next `applied`.
    let added = a.apply(create_note("after the welcome")).await;
    assert_eq!(added.seq, w.seq + 1);

    let res = bothy_tests::http::request(
        server.addr,
        "GET",
        &url,
        None,
        &[("Accept-Encoding", "gzip, br")],
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let mut json = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&res.body_bytes[..]),
        &mut json,
    )
    .unwrap();
    assert!(json.len() > 600_000);
    assert!(
        res.body_bytes.len() * 20 < json.len(),
        "{} bytes gzipped",
        res.body_bytes.len()
    );
    let board: bothy_shared::view::BoardView = serde_json::from_str(&json).unwrap();
    assert_eq!(board.notes.len(), 299);
    let mut replica = Replica::from_welcome(&bothy_shared::protocol::Welcome {
        board: Some(board),
        ..w.clone()
    });
    let next = b
        .recv_until(|m| matches!(m, ServerMessage::Applied(x) if x.seq == w.seq + 1))
        .await;
    for m in &next {
        replica.follow(m);
    }
    assert_eq!(replica.seq, w.seq + 1);

    // The link is good once, and says so in words.
    let again = bothy_tests::http::get(server.addr, &url).await;
    assert_eq!(again.status, 404);
    assert!(again.body.contains("Reload the page"), "{}", again.body);
    let guessed = bothy_tests::http::get(server.addr, "/api/boards/0123456789abcdef").await;
    assert_eq!(guessed.status, 404);

    // C joins after the change: it is given the board B got (made once, gzipped once), with
    // `mine_seq` saying its own notes and dots are as of now, and the change follows at once.
    // A client that cannot take gzip gets that board plain.
    let mut c = server.client(&room).await;
    c.send_join(None).await;
    let ServerMessage::Welcome(wc) = c.recv().await else {
        panic!("expected a welcome");
    };
    assert_eq!(wc.seq, w.seq, "the same board version as B's");
    assert_eq!(wc.mine_seq, Some(w.seq + 1));
    let plain = bothy_tests::http::request(
        server.addr,
        "GET",
        wc.board_url.as_deref().unwrap(),
        None,
        &[("Accept-Encoding", "identity")],
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    let board: bothy_shared::view::BoardView = serde_json::from_str(&plain.body).unwrap();
    assert_eq!(board.notes.len(), 299);
    match c.recv().await {
        ServerMessage::Applied(x) => assert_eq!(x.seq, w.seq + 1),
        other => panic!("expected the change since the board, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stale_big_board_is_shared_with_the_changes_since_while_a_fresh_one_is_made() {
    // Every board goes by link, and a version is stale as soon as the room has changed.
    let server = TestServer::start_with(|c| {
        c.inline_board_max = 0;
        c.share_board_for = std::time::Duration::ZERO;
    })
    .await;
    let room = server.create_room("Fresh boards").await;
    let (mut a, first) = server.joined(&room).await;
    assert!(first.board_url.is_some(), "every board goes by link");
    let added = a.apply(create_note("one")).await;

    // B is given the version A got, with the change since, rather than the room stopping to
    // serialise the board again; a fresh version is made meanwhile, off the room's task.
    let mut b = server.client(&room).await;
    b.send_join(None).await;
    let ServerMessage::Welcome(wb) = b.recv().await else {
        panic!("expected a welcome");
    };
    assert_eq!(wb.seq, first.seq, "the version made before the change");
    assert_eq!(wb.mine_seq, Some(added.seq));
    match b.recv().await {
        ServerMessage::Applied(x) => assert_eq!(x.seq, added.seq),
        other => panic!("expected the change since the board, got {other:?}"),
    }

    // Once the fresh version is made, joiners are given it, whole and with nothing to catch up.
    // Until then (a moment) they are given the older one as B was.
    let mut fresh = None;
    for _ in 0..100 {
        let mut c = server.client(&room).await;
        c.send_join(None).await;
        let ServerMessage::Welcome(w) = c.recv().await else {
            panic!("expected a welcome");
        };
        if w.seq == added.seq {
            fresh = Some(w);
            break;
        }
        assert_eq!(w.seq, first.seq);
    }
    let fresh = fresh.expect("a fresh version within 100 joins");
    assert_eq!(fresh.mine_seq, None);
    let res = bothy_tests::http::request(
        server.addr,
        "GET",
        fresh.board_url.as_deref().expect("a link"),
        None,
        &[("Accept-Encoding", "identity")],
    )
    .await;
    assert_eq!(res.status, 200);
    let board: bothy_shared::view::BoardView = serde_json::from_str(&res.body).unwrap();
    assert_eq!(board.notes.len(), 1);
    assert_eq!(board.notes[0].text, "one");
}

#[tokio::test]
async fn a_crowd_joining_at_once_is_all_welcomed_and_the_room_keeps_going() {
    // Welcomes take turns (a few at once across the server): every joiner of a crowd still
    // gets one, the room goes on serving its members meanwhile, and the turns are all given
    // back, so someone arriving afterwards is welcomed too.
    let server = TestServer::start().await;
    let room = server.create_room("Crowd").await;
    let (mut host, _) = server.joined(&room).await;
    for i in 0..20 {
        host.apply(create_note(&format!("Note {i}"))).await;
    }
    let mut crowd = Vec::new();
    for _ in 0..40 {
        crowd.push(server.client(&room).await);
    }
    let joining = futures_util::future::join_all(crowd.iter_mut().map(|c| c.join(None)));
    let said = host.apply(create_note("Said while they join"));
    let (welcomes, said) = tokio::join!(joining, said);
    assert!(said.created.is_some());
    assert_eq!(welcomes.len(), 40);
    for w in &welcomes {
        assert!(w.board.as_ref().is_some_and(|b| b.notes.len() >= 20));
    }
    let (_late, w) = server.joined(&room).await;
    assert_eq!(w.board.expect("a board").notes.len(), 21);
    assert_eq!(w.presence, 42);
}
