//! Facilitation over real sockets: authority lives on the server, private writing and
//! anonymity hold in every message a participant receives, and the run sheet reaches every
//! room of an event.

use bothy_shared::op::*;
use bothy_shared::protocol::{ServerMessage, close};
use bothy_shared::{Op, RejectReason};
use bothy_tests::ops::*;
use bothy_tests::{Client, Closed, TestServer, http};
use serde_json::{Value, json};

/// An event created through `POST /api/events`.
struct Event {
    id: String,
    secret: String,
    rooms: Vec<String>,
}

async fn create_event(server: &TestServer, rooms: usize, anonymous: bool) -> Event {
    let body = json!({
        "title": "Learning event",
        "anonymous": anonymous,
        "rooms": (1..=rooms)
            .map(|i| json!({"name": format!("Room {i}"), "prompt": format!("Question {i}?")}))
            .collect::<Vec<_>>(),
    })
    .to_string();
    let res = http::request(server.addr, "POST", "/api/events", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "event created: {}", res.body);
    let v: Value = serde_json::from_str(&res.body).unwrap();
    Event {
        id: v["event"].as_str().unwrap().to_owned(),
        secret: v["facilitator_secret"].as_str().unwrap().to_owned(),
        rooms: v["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["room"].as_str().unwrap().to_owned())
            .collect(),
    }
}

async fn participant(server: &TestServer, room: &str, name: Option<&str>) -> Client {
    let mut c = server.client(room).await;
    c.name = name.map(str::to_owned);
    let w = c.join(None).await;
    assert_eq!(w.role, bothy_shared::protocol::JoinedAs::Participant);
    c
}

async fn facilitator(server: &TestServer, room: &str, secret: &str) -> Client {
    let mut c = server.client(room).await;
    c.facilitator = Some(secret.to_owned());
    let w = c.join(None).await;
    assert_eq!(w.role, bothy_shared::protocol::JoinedAs::Facilitator);
    c
}

/// Every message as the JSON text it was sent as.
fn texts(msgs: &[ServerMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect()
}

fn rejected(m: &ServerMessage) -> RejectReason {
    match m {
        ServerMessage::Rejected(r) => r.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn every_facilitator_op(note: u64) -> Vec<Op> {
    vec![
        Op::SetWriting(SetWriting {
            writing: Writing::Private,
        }),
        Op::SetWriting(SetWriting {
            writing: Writing::Open,
        }),
        Op::StartTimer(StartTimer {
            seconds: 300,
            on_end: OnEnd::Lock,
        }),
        Op::StopTimer(NoFields {}),
        Op::SetLocked(SetLocked { locked: true }),
        Op::OpenVoting(OpenVoting {
            budget: 3,
            show_tallies: true,
        }),
        Op::CloseVoting(NoFields {}),
        Op::SetTheming(SetTheming {
            theming: Theming::Facilitators,
        }),
        Op::Spotlight(Spotlight { note: Some(note) }),
        Op::HideNote(Moderate {
            note,
            reason: "unkind".into(),
        }),
        Op::UnhideNote(NoteRef { note }),
        Op::RemoveNote(Moderate {
            note,
            reason: "unkind".into(),
        }),
        Op::ProxyNote(CreateNote {
            text: "for someone".into(),
            colour: Colour::Blue,
            x: 1.0,
            y: 1.0,
        }),
        Op::ProxyVote(NoteRef { note }),
    ]
}

#[tokio::test]
async fn a_participant_can_do_no_facilitator_operation() {
    let server = TestServer::start().await;
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let mut a = participant(&server, room, None).await;
    let mut watcher = participant(&server, room, None).await;
    let mut fac = facilitator(&server, room, &event.secret).await;
    let note = a.apply(create_note("a note")).await.created.unwrap();
    watcher.sync().await;
    fac.sync().await;
    let (_c, before) = server.joined(room).await;

    let ops = every_facilitator_op(note);
    assert_eq!(ops.len(), 14, "every facilitator operation");
    for op in ops {
        assert!(op.is_facilitator_only(), "{op:?}");
        let id = a.op(op.clone()).await;
        assert_eq!(
            rejected(&a.outcome(&id).await),
            RejectReason::FacilitatorOnly,
            "{op:?}"
        );
    }
    // The server's own operation cannot be sent by anyone.
    for c in [&mut a, &mut fac] {
        let id = c.op(Op::TimerEnded(NoFields {})).await;
        assert_eq!(rejected(&c.outcome(&id).await), RejectReason::NotAllowed);
    }
    // (Presence changes as `before` joined and left; no change to the board was sent.)
    let changes = |msgs: Vec<ServerMessage>| {
        msgs.into_iter()
            .filter(|m| !matches!(m, ServerMessage::Presence(_)))
            .collect::<Vec<_>>()
    };
    let to_watcher = changes(watcher.sync().await);
    assert!(to_watcher.is_empty(), "broadcast to others: {to_watcher:?}");
    let to_fac = changes(fac.sync().await);
    assert!(to_fac.is_empty(), "reached the facilitator: {to_fac:?}");
    let (_c, after) = server.joined(room).await;
    assert_eq!(after.seq, before.seq, "no change was made");
    assert_eq!(after.board, before.board);
}

#[tokio::test]
async fn a_wrong_facilitator_secret_is_refused_and_the_secret_is_never_echoed() {
    let server = TestServer::start().await;
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let mut wrong = server.client(room).await;
    wrong.facilitator = Some("0".repeat(48));
    wrong
        .send(&bothy_shared::protocol::ClientMessage::Join(
            bothy_shared::protocol::Join {
                version: 1,
                token: wrong.token.clone(),
                last_seq: None,
                name: None,
                facilitator: Some(bothy_shared::protocol::Secret("0".repeat(48))),
            },
        ))
        .await;
    match wrong.expect_close().await {
        Closed::Frame { code, .. } => assert_eq!(code, close::BAD_JOIN),
        other => panic!("expected a close frame, got {other:?}"),
    }
    // The right secret: facilitator, and nothing the server sends contains it.
    let mut fac = facilitator(&server, room, &event.secret).await;
    fac.apply(Op::SetLocked(SetLocked { locked: true })).await;
    fac.sync().await;
    for t in texts(&fac.take_received()) {
        assert!(!t.contains(&event.secret), "the secret came back: {t}");
    }
    // After rotation the old secret no longer works, and a facilitator connection that joined
    // with it is closed.
    let res = http::request(
        server.addr,
        "POST",
        &format!("/api/events/{}/secret", event.id),
        None,
        &[("X-Bothy-Facilitator", &event.secret)],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    match fac.expect_close().await {
        Closed::Frame { code, .. } => assert_eq!(code, close::FACILITATOR_LINK_CHANGED),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let mut old = server.client(room).await;
    old.facilitator = Some(event.secret.clone());
    match old.try_join(None).await {
        Err(Closed::Frame { code, .. }) => assert_eq!(code, close::BAD_JOIN),
        other => panic!("the old secret must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn private_notes_never_reach_other_participants_until_revealed() {
    private_notes_stay_private(TestServer::start().await).await;
}

#[tokio::test]
async fn private_notes_never_reach_other_participants_through_a_board_link() {
    // Every board goes as a link: each participant's link is to their own view.
    private_notes_stay_private(TestServer::start_with(|c| c.inline_board_max = 0).await).await;
}

async fn private_notes_stay_private(server: TestServer) {
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let mut fac = facilitator(&server, room, &event.secret).await;
    let mut a = participant(&server, room, Some("Ann")).await;
    let mut b = participant(&server, room, Some("Bo")).await;
    let theme = fac.apply(create_theme("Ideas")).await.created.unwrap();
    let public_note = a.apply(create_note("said before")).await.created.unwrap();
    fac.apply(Op::SetWriting(SetWriting {
        writing: Writing::Private,
    }))
    .await;

    const SECRET_TEXT: &str = "only-ann-and-the-facilitators-see-this";
    let hidden = a.apply(create_note(SECRET_TEXT)).await.created.unwrap();
    a.apply(edit_note(hidden, &format!("{SECRET_TEXT} (edited)")))
        .await;
    a.apply(move_note(hidden, 100.0, 100.0)).await;
    a.apply(set_theme(hidden, Some(theme), Some(0))).await;
    // B cannot touch what B cannot see, and is told only "not found".
    let id = b.op(move_note(hidden, 5.0, 5.0)).await;
    assert_eq!(rejected(&b.outcome(&id).await), RejectReason::NotFound);
    let mine = b.apply(create_note("bo's own")).await.created.unwrap();

    // The facilitator sees it all as it happens.
    let fac_seen = texts(&fac.sync().await);
    assert!(fac_seen.iter().any(|t| t.contains(SECRET_TEXT)));

    // Everything B received, a fresh welcome for B, and every page B can fetch.
    b.sync().await;
    let mut seen = texts(&b.take_received());
    let mut b_again = server.client(room).await;
    b_again.token = b.token.clone();
    let w = b_again.join(None).await;
    // The welcome as sent, and as the page has it (with a board fetched from its link).
    seen.push(serde_json::to_string(&w).unwrap());
    b_again.sync().await;
    seen.extend(texts(&b_again.take_received()));
    for path in [
        format!("/r/{room}"),
        format!("/api/rooms/{room}/qr.svg"),
        format!("/api/events/{}", event.id),
    ] {
        seen.push(http::get(server.addr, &path).await.body);
    }
    let hidden_id = format!("\"note\":{hidden}");
    let hidden_obj = format!("\"id\":{hidden},");
    for t in &seen {
        assert!(!t.contains(SECRET_TEXT), "B received the hidden text: {t}");
        assert!(
            !t.contains(&hidden_id),
            "B received an op on the hidden note: {t}"
        );
        assert!(!t.contains(&hidden_obj), "B received the hidden note: {t}");
        assert!(
            !t.contains(&format!("[{hidden}]")),
            "B saw the hidden note in a theme: {t}"
        );
    }
    // A newcomer sees the note from before, and neither private note.
    let (_c, anyone) = server.joined(room).await;
    let ids: Vec<u64> = anyone.board.unwrap().notes.iter().map(|n| n.id).collect();
    assert!(ids.contains(&public_note) && !ids.contains(&hidden) && !ids.contains(&mine));
    // Ann, in a new tab, is sent her own private note (a board of her own), and not Bo's.
    let mut a_again = server.client(room).await;
    a_again.token = a.token.clone();
    let ids: Vec<u64> = a_again
        .join(None)
        .await
        .board
        .unwrap()
        .notes
        .iter()
        .map(|n| n.id)
        .collect();
    assert!(ids.contains(&public_note) && ids.contains(&hidden) && !ids.contains(&mine));

    // Reveal: B is sent the board with the note in it.
    fac.apply(Op::SetWriting(SetWriting {
        writing: Writing::Open,
    }))
    .await;
    let after = b.sync().await;
    let sync = after
        .iter()
        .find_map(|m| match m {
            ServerMessage::Sync(s) => Some(s),
            _ => None,
        })
        .expect("B gets a fresh board at the reveal");
    let note = sync.board.notes.iter().find(|n| n.id == hidden).unwrap();
    assert_eq!(note.text, format!("{SECRET_TEXT} (edited)"));
    assert!(!note.private);
    assert_eq!(sync.mine, vec![mine]);
    let theme_notes = &sync
        .board
        .themes
        .iter()
        .find(|t| t.id == theme)
        .unwrap()
        .notes;
    assert_eq!(theme_notes, &vec![hidden]);
}

#[tokio::test]
async fn in_an_anonymous_event_no_participant_learns_who_wrote_what() {
    let server = TestServer::start().await;
    let event = create_event(&server, 1, true).await;
    let room = &event.rooms[0];
    let mut fac = facilitator(&server, room, &event.secret).await;
    let mut a = participant(&server, room, Some("Alice Example")).await;
    let mut b = participant(&server, room, None).await;
    let a_key = bothy_server::connection::actor_key(&a.token);
    let n1 = a.apply(create_note("first thought")).await.created.unwrap();
    a.apply(create_note("second thought")).await;
    a.apply(edit_note(n1, "first thought, edited")).await;
    fac.apply(Op::OpenVoting(OpenVoting {
        budget: 3,
        show_tallies: true,
    }))
    .await;
    a.apply(Op::Vote(NoteRef { note: n1 })).await;
    b.apply(Op::Vote(NoteRef { note: n1 })).await;
    b.sync().await;
    fac.sync().await;
    let mut seen = texts(&b.take_received());
    seen.extend(texts(&fac.take_received()));
    let (_c, fresh) = server.joined(room).await;
    seen.push(serde_json::to_string(&fresh).unwrap());
    for t in &seen {
        for secret in [a.token.as_str(), a_key.as_str(), "Alice Example"] {
            assert!(!t.contains(secret), "{secret:?} leaked in {t}");
        }
    }
    let authors: Vec<_> = fresh
        .board
        .unwrap()
        .notes
        .iter()
        .map(|n| n.author.clone())
        .collect();
    assert_eq!(authors, vec![None, None]);
    // A still knows which notes are theirs.
    let mut a_again = server.client(room).await;
    a_again.token = a.token.clone();
    assert_eq!(a_again.join(None).await.mine.len(), 2);
}

#[tokio::test]
async fn the_run_sheet_reaches_every_room_and_lock_blocks_participants_everywhere() {
    let server = TestServer::start().await;
    let event = create_event(&server, 3, false).await;
    let mut facs = Vec::new();
    let mut people = Vec::new();
    for room in &event.rooms {
        facs.push(facilitator(&server, room, &event.secret).await);
        people.push(participant(&server, room, None).await);
    }
    // "Start private writing and a 5-minute timer in all rooms."
    for f in &mut facs {
        let w = f
            .op(Op::SetWriting(SetWriting {
                writing: Writing::Private,
            }))
            .await;
        let t = f
            .op(Op::StartTimer(StartTimer {
                seconds: 300,
                on_end: OnEnd::Nothing,
            }))
            .await;
        assert!(matches!(f.outcome(&w).await, ServerMessage::Applied(_)));
        assert!(matches!(f.outcome(&t).await, ServerMessage::Applied(_)));
    }
    for p in &mut people {
        let kinds: Vec<_> = p
            .sync()
            .await
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Applied(a) => Some(a.op),
                _ => None,
            })
            .collect();
        assert!(matches!(
            kinds.as_slice(),
            [Op::SetWriting(_), Op::StartTimer(_)]
        ));
    }
    for room in &event.rooms {
        let (_c, w) = server.joined(room).await;
        let state = w.board.unwrap().state;
        assert_eq!(state.writing, Writing::Private);
        let timer = state.timer.expect("a timer runs");
        let left = timer.ends_at.saturating_sub(w.now);
        assert!((290_000..=300_000).contains(&left), "{left} ms left");
    }
    // Lock all rooms: participants can change nothing, facilitators still can.
    for f in &mut facs {
        f.apply(Op::SetLocked(SetLocked { locked: true })).await;
    }
    for p in &mut people {
        let id = p.op(create_note("too late")).await;
        assert_eq!(rejected(&p.outcome(&id).await), RejectReason::Locked);
    }
    for f in &mut facs {
        f.apply(Op::ProxyNote(CreateNote {
            text: "added for someone".into(),
            colour: Colour::Green,
            x: 1.0,
            y: 1.0,
        }))
        .await;
    }
}

#[tokio::test]
async fn a_timer_that_locks_at_zero_locks_the_board_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let event = create_event(&server, 1, false).await;
    let room = event.rooms[0].clone();
    let mut fac = facilitator(&server, &room, &event.secret).await;
    let mut p = participant(&server, &room, None).await;
    fac.apply(Op::StartTimer(StartTimer {
        seconds: 1,
        on_end: OnEnd::Lock,
    }))
    .await;
    // Wait for the server's own change, not for the clock.
    p.recv_until(|m| matches!(m, ServerMessage::Applied(a) if matches!(a.op, Op::TimerEnded(_))))
        .await;
    let id = p.op(create_note("after time")).await;
    assert_eq!(rejected(&p.outcome(&id).await), RejectReason::Locked);
    server.stop().await;
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let (_c, w) = server.joined(&room).await;
    let state = w.board.unwrap().state;
    assert!(state.locked && state.timer.is_none());
}

#[tokio::test]
async fn hidden_tallies_and_moderation_reasons_stay_with_the_facilitators() {
    let server = TestServer::start().await;
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let mut fac = facilitator(&server, room, &event.secret).await;
    let mut a = participant(&server, room, None).await;
    let mut b = participant(&server, room, None).await;
    let n = a.apply(create_note("vote for me")).await.created.unwrap();
    let rude = b
        .apply(create_note("something hurtful"))
        .await
        .created
        .unwrap();
    fac.apply(Op::OpenVoting(OpenVoting {
        budget: 2,
        show_tallies: false,
    }))
    .await;
    b.sync().await;
    b.take_received();
    // A's dots reach A and the facilitators only; the budget holds.
    a.apply(Op::Vote(NoteRef { note: n })).await;
    a.apply(Op::Vote(NoteRef { note: n })).await;
    let id = a.op(Op::Vote(NoteRef { note: n })).await;
    assert_eq!(rejected(&a.outcome(&id).await), RejectReason::NoVotesLeft);
    let id = b.op(Op::Unvote(NoteRef { note: n })).await;
    assert_eq!(rejected(&b.outcome(&id).await), RejectReason::NotAllowed);
    assert!(b.sync().await.is_empty(), "B is not told about A's dots");
    let (_c, w) = server.joined(room).await;
    assert!(w.board.unwrap().notes.iter().all(|x| x.votes.is_none()));
    let mut a2 = server.client(room).await;
    a2.token = a.token.clone();
    assert_eq!(a2.join(None).await.my_votes, vec![(n, 2)]);
    // Closing shows the tallies to everyone.
    fac.apply(Op::CloseVoting(NoFields {})).await;
    let synced = b.sync().await;
    let Some(s) = synced.iter().rev().find_map(|m| match m {
        ServerMessage::Sync(s) => Some(s),
        _ => None,
    }) else {
        panic!("expected a sync, got {synced:?}");
    };
    assert_eq!(
        s.board.notes.iter().find(|x| x.id == n).unwrap().votes,
        Some(2)
    );

    // Hiding: participants get a placeholder and never the reason.
    const REASON: &str = "names a person in the room";
    fac.apply(Op::HideNote(Moderate {
        note: rude,
        reason: REASON.into(),
    }))
    .await;
    let seen = texts(&b.sync().await);
    assert!(
        seen.iter()
            .all(|t| !t.contains(REASON) && !t.contains("something hurtful"))
    );
    let (_c, w) = server.joined(room).await;
    let board = w.board.unwrap();
    let shown = board.notes.iter().find(|x| x.id == rude).unwrap();
    assert_eq!(shown.text, "");
    assert!(board.audit.is_empty());
    // Its author cannot edit it; the facilitator's audit list has the action.
    let id = b.op(edit_note(rude, "sneaky")).await;
    assert_eq!(rejected(&b.outcome(&id).await), RejectReason::NotAllowed);
    let mut f2 = server.client(room).await;
    f2.facilitator = Some(event.secret.clone());
    let audit = f2.join(None).await.board.unwrap().audit;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].reason.as_deref(), Some(REASON));
}

#[tokio::test]
async fn a_foreign_origin_cannot_open_an_event_room() {
    let server = TestServer::start().await;
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let refused =
        Client::try_connect_with(server.addr, room, &[("Origin", "https://evil.example")]).await;
    assert_eq!(refused.err().as_deref(), Some("http 403"));
    let own = format!("http://{}", server.addr);
    assert!(
        Client::try_connect_with(server.addr, room, &[("Origin", &own)])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_removed_note_leaves_the_disk_soon() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let event = create_event(&server, 1, false).await;
    let room = event.rooms[0].clone();
    let mut fac = facilitator(&server, &room, &event.secret).await;
    let mut p = participant(&server, &room, None).await;
    const WORDS: &str = "a-full-name-and-a-home-address";
    let n = p.apply(create_note(WORDS)).await.created.unwrap();
    fac.apply(Op::RemoveNote(Moderate {
        note: n,
        reason: "personal details".into(),
    }))
    .await;
    let dir = tmp.path().join("rooms").join(&room);
    let on_disk = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
            .any(|bytes| String::from_utf8_lossy(&bytes).contains(WORDS))
    };
    // The room compacts at its next quiet moment; wait for that (bounded), not for a guess.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while on_disk() {
        assert!(
            std::time::Instant::now() < deadline,
            "the removed words are still in the room's files"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The placeholder and the audit entry stay.
    let (_c, w) = server.joined(&room).await;
    let note = w
        .board
        .unwrap()
        .notes
        .into_iter()
        .find(|x| x.id == n)
        .unwrap();
    assert_eq!(note.text, "");
}

/// The `presence` counts a room's members send: people, and how many of them facilitate.
fn headcounts(msgs: Vec<ServerMessage>) -> Vec<(u32, u32)> {
    msgs.into_iter()
        .filter_map(|m| match m {
            ServerMessage::Presence(p) => Some((p.count, p.facilitators)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn presence_says_how_many_of_the_people_are_facilitators() {
    // The overview joins every room as a facilitator: it shows the people less the
    // facilitators, so a co-facilitator's overview is not counted as someone writing.
    let server = TestServer::start().await;
    let event = create_event(&server, 1, false).await;
    let room = &event.rooms[0];
    let mut p = server.client(room).await;
    let w = p.join(None).await;
    assert_eq!((w.presence, w.facilitators), (1, 0));

    let mut f = server.client(room).await;
    f.facilitator = Some(event.secret.clone());
    let w = f.join(None).await;
    assert_eq!((w.presence, w.facilitators), (2, 1));
    assert_eq!(headcounts(p.sync().await), vec![(2, 1)]);

    // A second overview of the same facilitator (the same token) changes nothing.
    let mut again = server.client(room).await;
    again.facilitator = Some(event.secret.clone());
    again.token = f.token.clone();
    let w = again.join(None).await;
    assert_eq!((w.presence, w.facilitators), (2, 1));
    assert!(headcounts(p.sync().await).is_empty());

    // A participant who also opens the facilitator link counts as a facilitator, once.
    let mut p_as_f = server.client(room).await;
    p_as_f.facilitator = Some(event.secret.clone());
    p_as_f.token = p.token.clone();
    let w = p_as_f.join(None).await;
    assert_eq!((w.presence, w.facilitators), (2, 2));
    assert_eq!(headcounts(p.sync().await), vec![(2, 2)]);
    p_as_f.close().await;
    let seen = p
        .recv_until(|m| matches!(m, ServerMessage::Presence(_)))
        .await;
    assert_eq!(headcounts(seen), vec![(2, 1)]);

    // The facilitator leaves (both tabs): one person, no facilitator.
    f.close().await;
    again.close().await;
    let seen = p
        .recv_until(|m| matches!(m, ServerMessage::Presence(x) if x.facilitators == 0))
        .await;
    assert_eq!(headcounts(seen).last(), Some(&(1, 0)));
}
