//! Event snapshots over real HTTP and real files: download, the files written while an event is
//! live and at shutdown, and restore (including hostile files, which create nothing).

use bothy_shared::op::*;
use bothy_shared::snapshot::EventSnapshot;
use bothy_shared::{Limits, Op};
use bothy_tests::ops::*;
use bothy_tests::{Client, TestServer, http};
use serde_json::{Value, json};
use std::path::Path;

struct Event {
    id: String,
    secret: String,
    rooms: Vec<String>,
}

async fn create_event(server: &TestServer, anonymous: bool) -> Event {
    let body = json!({
        "title": "Community health forum",
        "anonymous": anonymous,
        "rooms": [
            {"name": "What's working", "prompt": "What is working well?"},
            {"name": "What could be better", "prompt": "What could be better?"},
            {"name": "Ideas", "prompt": "What would you try?"},
        ],
    })
    .to_string();
    let res = http::request(server.addr, "POST", "/api/events", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    parse_created(&res.body)
}

fn parse_created(body: &str) -> Event {
    let v: Value = serde_json::from_str(body).unwrap();
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

/// Fills the rooms the way a session does: notes, consent, themes, dots, a hidden note and a
/// note added for someone without a device.
async fn run_session(server: &TestServer, event: &Event) {
    // The same person (one browser) in every room.
    let ann = bothy_tests::new_token();
    for (i, room) in event.rooms.iter().enumerate() {
        let mut fac = server.client(room).await;
        fac.facilitator = Some(event.secret.clone());
        fac.join(None).await;
        let mut p = server.client(room).await;
        p.name = Some("Ann".into());
        p.token = ann.clone();
        p.join(None).await;
        let a = p
            .apply(create_note(&format!("Room {i}: the drop-in clinic")))
            .await
            .created
            .unwrap();
        let b = p
            .apply(create_note(&format!(
                "Room {i}: =SUM(A1) <script>x</script>"
            )))
            .await
            .created
            .unwrap();
        p.apply(Op::SetQuotable(SetQuotable {
            note: a,
            quotable: true,
        }))
        .await;
        let t = fac.apply(create_theme("Access")).await.created.unwrap();
        p.apply(set_theme(a, Some(t), None)).await;
        fac.apply(Op::OpenVoting(OpenVoting {
            budget: 3,
            show_tallies: true,
        }))
        .await;
        p.apply(Op::Vote(NoteRef { note: a })).await;
        fac.apply(Op::ProxyVote(NoteRef { note: a })).await;
        fac.apply(Op::CloseVoting(NoFields {})).await;
        fac.apply(Op::HideNote(Moderate {
            note: b,
            reason: "Off topic".into(),
        }))
        .await;
        fac.apply(Op::ProxyNote(CreateNote {
            text: format!("Room {i}: said in the hall"),
            colour: Colour::Green,
            x: 1.0,
            y: 1.0,
        }))
        .await;
        p.close().await;
        fac.close().await;
    }
}

async fn download(server: &TestServer, event: &Event) -> (http::Response, EventSnapshot) {
    let res = http::request(
        server.addr,
        "GET",
        &format!("/api/events/{}/snapshot", event.id),
        None,
        &[("X-Bothy-Facilitator", &event.secret)],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let snapshot: EventSnapshot = serde_json::from_str(&res.body).expect("a snapshot");
    (res, snapshot)
}

/// What must survive export → restore → export: everything but ids, codes and times.
fn content(s: &EventSnapshot) -> Value {
    let mut v = serde_json::to_value(s).unwrap();
    v["exported_at"] = Value::Null;
    v["event"]["id"] = Value::Null;
    v["event"]["created_at"] = Value::Null;
    for room in v["rooms"].as_array_mut().unwrap() {
        room["id"] = Value::Null;
        room["code"] = Value::Null;
        room["seq"] = Value::Null;
    }
    v
}

fn room_dirs(data: &Path) -> usize {
    std::fs::read_dir(data.join("rooms")).unwrap().count()
}

#[tokio::test]
async fn a_facilitator_downloads_the_whole_event_and_nobody_else_can() {
    let server = TestServer::start().await;
    let event = create_event(&server, false).await;
    run_session(&server, &event).await;
    let (res, snapshot) = download(&server, &event).await;
    assert!(
        res.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;") && d.contains(".json")),
        "{:?}",
        res.headers
    );
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    snapshot.check(&Limits::default()).expect("valid");
    assert_eq!(snapshot.rooms.len(), 3);
    for room in &snapshot.rooms {
        assert_eq!(room.notes.len(), 3);
        let a = &room.notes[0];
        assert!(a.quotable && a.votes == 2 && a.proxy_votes == 1 && a.theme.is_some());
        assert_eq!(a.author.as_deref(), Some("Ann"));
        assert_eq!(
            a.person.as_deref(),
            Some("Person 1"),
            "one browser, one pseudonym"
        );
        assert!(room.notes[2].proxy);
        assert_eq!(room.audit.len(), 1);
    }
    // No identity token or actor key anywhere.
    assert!(!res.body.contains("owner") && !res.body.contains("\"actor\""));
    for headers in [vec![], vec![("X-Bothy-Facilitator", "0".repeat(48))]] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = http::request(
            server.addr,
            "GET",
            &format!("/api/events/{}/snapshot", event.id),
            None,
            &h,
        )
        .await;
        assert_eq!(res.status, 403);
    }
}

#[tokio::test]
async fn export_restore_export_gives_the_same_content() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let event = create_event(&server, false).await;
    run_session(&server, &event).await;
    let (res, first) = download(&server, &event).await;
    let restored = http::request(
        server.addr,
        "POST",
        "/api/events/restore",
        Some(&res.body),
        &[],
    )
    .await;
    assert_eq!(restored.status, 201, "{}", restored.body);
    let copy = parse_created(&restored.body);
    assert_ne!(copy.id, event.id);
    assert_ne!(copy.secret, event.secret);
    assert!(copy.rooms.iter().all(|r| !event.rooms.contains(r)));
    let (_, second) = download(&server, &copy).await;
    assert_eq!(content(&second), content(&first));
    // The restored rooms are live boards.
    let mut c = Client::connect(server.addr, &copy.rooms[0]).await;
    let w = c.join(None).await;
    assert_eq!(w.board.unwrap().notes.len(), 3);
    c.apply(create_note("after the restore")).await;
}

#[tokio::test]
async fn hostile_or_broken_snapshots_are_refused_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |_| {}).await;
    let event = create_event(&server, false).await;
    run_session(&server, &event).await;
    let (res, _) = download(&server, &event).await;
    let good: Value = serde_json::from_str(&res.body).unwrap();
    let before = room_dirs(tmp.path());

    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let long = "x".repeat(501);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "not json",
            "{\"format\":".into(),
            400,
            "not a Bothy snapshot",
        ),
        ("an array", "[1,2]".into(), 422, "JSON object"),
        (
            "wrong format",
            edit(&|v| v["format"] = json!("something-else")),
            422,
            "not a Bothy event snapshot",
        ),
        (
            "wrong version",
            edit(&|v| v["version"] = json!(99)),
            422,
            "version 99",
        ),
        (
            "unknown field",
            edit(&|v| v["rooms"][0]["notes"][0]["owner"] = json!("k")),
            422,
            "unknown field",
        ),
        (
            "unknown top field",
            edit(&|v| v["admin"] = json!(true)),
            422,
            "unknown field",
        ),
        (
            "note too long",
            edit(&|v| v["rooms"][0]["notes"][0]["text"] = json!(long)),
            422,
            "too long",
        ),
        (
            "duplicate note id",
            edit(&|v| {
                let n = v["rooms"][0]["notes"][0].clone();
                v["rooms"][0]["notes"].as_array_mut().unwrap().push(n);
            }),
            422,
            "appears twice",
        ),
        (
            "duplicate room id",
            edit(&|v| {
                let r = v["rooms"][0].clone();
                v["rooms"].as_array_mut().unwrap().push(r);
            }),
            422,
            "appears twice",
        ),
        (
            "missing theme",
            edit(&|v| v["rooms"][0]["notes"][0]["theme"] = json!(999)),
            422,
            "missing theme",
        ),
        (
            "no rooms",
            edit(&|v| v["rooms"] = json!([])),
            422,
            "1 to 20 rooms",
        ),
        (
            "control characters",
            edit(&|v| v["event"]["title"] = json!("a\u{7}b")),
            422,
            "cannot be shown",
        ),
        (
            "huge coordinate",
            edit(&|v| v["rooms"][0]["notes"][0]["x"] = json!(1e308)),
            422,
            "position",
        ),
        (
            "names in an anonymous event",
            edit(&|v| v["event"]["anonymous"] = json!(true)),
            422,
            "anonym",
        ),
        (
            "cross theme naming a missing note",
            edit(&|v| {
                v["synthesis"] =
                    json!([{"id": 1, "title": "T", "notes": [{"room": "nope", "note": 1}]}])
            }),
            422,
            "not in the snapshot",
        ),
        (
            "too large",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(9 << 20)),
            413,
            "too large",
        ),
    ];
    for (what, body, status, says) in cases {
        let res = http::request(server.addr, "POST", "/api/events/restore", Some(&body), &[]).await;
        assert_eq!(res.status, status, "{what}: {}", res.body);
        let v: Value =
            serde_json::from_str(&res.body).unwrap_or_else(|_| panic!("{what}: {}", res.body));
        let message = v["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{what}: {message:?} should say {says:?}"
        );
        assert_eq!(room_dirs(tmp.path()), before, "{what}: nothing created");
    }
    // Script in every text field is only text: accepted, and stored verbatim.
    const XSS: &str = "<script>alert(1)</script>";
    let body = edit(&|v| {
        v["event"]["title"] = json!(XSS);
        v["rooms"][0]["name"] = json!(XSS);
        v["rooms"][0]["prompt"] = json!(XSS);
        v["rooms"][0]["notes"][0]["text"] = json!(XSS);
        v["rooms"][0]["themes"][0]["title"] = json!(XSS);
    });
    let res = http::request(server.addr, "POST", "/api/events/restore", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let copy = parse_created(&res.body);
    let (_, s) = download(&server, &copy).await;
    assert_eq!(s.event.title, XSS);
    assert_eq!(s.rooms[0].notes[0].text, XSS);
}

#[tokio::test]
async fn snapshots_are_written_while_an_event_is_live_and_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |c| {
        c.snapshot_every = std::time::Duration::from_millis(200);
    })
    .await;
    let event = create_event(&server, true).await;
    let file = tmp
        .path()
        .join("events")
        .join(&event.id)
        .join("snapshot.json");
    let mut p = server.client(&event.rooms[0]).await;
    p.join(None).await;
    p.apply(create_note("written while live")).await;
    // Wait (bounded) for the writer's next round, not for a guessed time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("written while live") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no snapshot written");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    p.apply(create_note("the last word")).await;
    p.close().await;
    server.stop().await;
    let last: EventSnapshot =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    last.check(&Limits::default()).unwrap();
    assert!(
        last.rooms[0]
            .notes
            .iter()
            .any(|n| n.text == "the last word")
    );
    assert!(
        last.rooms[0]
            .notes
            .iter()
            .all(|n| n.author.is_none() && n.person.is_none())
    );
}

async fn fac_request(
    server: &TestServer,
    event: &Event,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let res = http::request(
        server.addr,
        method,
        &format!("/api/events/{}/{path}", event.id),
        body,
        &[("X-Bothy-Facilitator", &event.secret)],
    )
    .await;
    (
        res.status,
        serde_json::from_str(&res.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn cross_room_themes_keep_each_note_s_room_and_leave_the_rooms_untouched() {
    let server = TestServer::start().await;
    let event = create_event(&server, false).await;
    run_session(&server, &event).await;
    let (_, before) = download(&server, &event).await;
    let (status, v) = fac_request(
        &server,
        &event,
        "POST",
        "synthesis",
        Some(r#"{"kind":"create_theme","title":"Getting care"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let theme = v["created"].as_u64().unwrap();
    // A whole room theme from room 0, and one note from room 1.
    let room_theme = before.rooms[0].themes[0].id;
    let add_theme = json!({"kind": "add_room_theme", "theme": theme, "room": event.rooms[0], "room_theme": room_theme});
    let (status, v) = fac_request(
        &server,
        &event,
        "POST",
        "synthesis",
        Some(&add_theme.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let note = before.rooms[1].notes[0].id;
    let add = json!({"kind": "add_notes", "theme": theme, "notes": [{"room": event.rooms[1], "note": note}]});
    let (status, v) =
        fac_request(&server, &event, "POST", "synthesis", Some(&add.to_string())).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["themes"][0]["notes"].as_array().unwrap().len(), 2);
    // A note that does not exist, a theme that does not exist, a bad title: refused.
    for bad in [
        json!({"kind": "add_notes", "theme": theme, "notes": [{"room": event.rooms[1], "note": 999}]}),
        json!({"kind": "add_notes", "theme": 77, "notes": []}),
        json!({"kind": "create_theme", "title": ""}),
        json!({"kind": "rename_theme", "theme": theme, "title": "a\u{0}b"}),
        json!({"kind": "explode"}),
    ] {
        let (status, v) =
            fac_request(&server, &event, "POST", "synthesis", Some(&bad.to_string())).await;
        assert!(status == 422, "{bad}: {status} {v}");
        assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Nobody without the secret reads or changes it.
    let res = http::request(
        server.addr,
        "POST",
        &format!("/api/events/{}/synthesis", event.id),
        Some(r#"{"kind":"create_theme","title":"x"}"#),
        &[],
    )
    .await;
    assert_eq!(res.status, 403);
    // The snapshot carries it, with rooms of origin; the rooms' own boards did not change.
    let (_, after) = download(&server, &event).await;
    assert_eq!(after.synthesis.len(), 1);
    let rooms: Vec<&str> = after.synthesis[0]
        .notes
        .iter()
        .map(|n| n.room.as_str())
        .collect();
    assert_eq!(
        rooms,
        vec![event.rooms[0].as_str(), event.rooms[1].as_str()]
    );
    for (a, b) in before.rooms.iter().zip(&after.rooms) {
        assert_eq!(a.notes, b.notes);
        assert_eq!(a.themes, b.themes);
    }
    after.check(&Limits::default()).unwrap();
}

/// Writes `count` notes in `room` the way participants do, over its WebSocket, and returns their
/// ids. Sent a hundred at a time, each batch waited for by its outcomes, so the server's queue
/// to this client (256 messages) never fills.
async fn write_notes(server: &TestServer, room: &str, count: usize) -> Vec<u64> {
    let (mut c, _) = server.joined(room).await;
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let mut sent = Vec::new();
        for i in ids.len()..count.min(ids.len() + 100) {
            sent.push(c.op(create_note(&format!("Note {i}"))).await);
        }
        for op_id in &sent {
            match c.outcome(op_id).await {
                bothy_shared::protocol::ServerMessage::Applied(a) => {
                    ids.push(a.created.expect("a new note's id"))
                }
                other => panic!("expected applied, got {other:?}"),
            }
        }
    }
    c.close().await;
    ids
}

async fn change_synthesis(server: &TestServer, event: &Event, change: &Value) -> (u16, Value) {
    fac_request(
        server,
        event,
        "POST",
        "synthesis",
        Some(&change.to_string()),
    )
    .await
}

async fn synthesis_board(server: &TestServer, event: &Event) -> Value {
    let (status, v) = fac_request(server, event, "GET", "synthesis", None).await;
    assert_eq!(status, 200, "{}", v["error"]);
    v
}

#[tokio::test]
async fn cross_room_themes_stop_at_200_per_event_and_2000_notes_each() {
    let server = TestServer::start().await;
    let event = create_event(&server, false).await;
    // 2,001 notes that exist (a theme refuses notes that are not on their room's board before it
    // counts them), 667 in each of the three rooms.
    let mut notes = Vec::new();
    for room in &event.rooms {
        for note in write_notes(&server, room, 667).await {
            notes.push(json!({"room": room, "note": note}));
        }
    }
    assert_eq!(notes.len(), 2001);

    // 200 themes are fine; the 201st is refused with a message and changes nothing.
    let mut themes = Vec::new();
    for i in 1..=200 {
        let create = json!({"kind": "create_theme", "title": format!("Theme {i}")});
        let (status, v) = change_synthesis(&server, &event, &create).await;
        assert_eq!(status, 200, "theme {i}: {}", v["error"]);
        themes.push(v["created"].as_u64().expect("a theme id"));
    }
    let full = synthesis_board(&server, &event).await;
    assert_eq!(full["themes"].as_array().unwrap().len(), 200);
    let create = json!({"kind": "create_theme", "title": "One too many"});
    let (status, v) = change_synthesis(&server, &event, &create).await;
    assert_eq!(status, 422, "not refused: created {}", v["created"]);
    assert_eq!(v["error"], "The synthesis board holds at most 200 themes.");
    let after = synthesis_board(&server, &event).await;
    assert!(after == full, "the refused theme changed the board");

    // 2,000 notes fit in one theme. They go in 400 at a time: a request body is at most 16 KiB.
    let (first, second) = (themes[0], themes[1]);
    for batch in notes[..2000].chunks(400) {
        let add = json!({"kind": "add_notes", "theme": first, "notes": batch});
        let (status, v) = change_synthesis(&server, &event, &add).await;
        assert_eq!(status, 200, "{}", v["error"]);
    }
    // The 2,001st waits in another theme.
    let add = json!({"kind": "add_notes", "theme": second, "notes": [notes[2000]]});
    let (status, v) = change_synthesis(&server, &event, &add).await;
    assert_eq!(status, 200, "{}", v["error"]);
    let before = synthesis_board(&server, &event).await;
    assert_eq!(before["themes"][0]["notes"].as_array().unwrap().len(), 2000);
    assert_eq!(before["themes"][1]["notes"], json!([notes[2000]]));

    // Moving it into the full theme is refused with a message, and it stays where it was.
    let add = json!({"kind": "add_notes", "theme": first, "notes": [notes[2000]]});
    let (status, v) = change_synthesis(&server, &event, &add).await;
    assert_eq!(status, 422, "not refused: created {}", v["created"]);
    assert_eq!(v["error"], "A cross-room theme holds at most 2,000 notes.");
    let after = synthesis_board(&server, &event).await;
    assert!(after == before, "the refused move changed the board");
}

#[tokio::test]
async fn suggested_themes_group_similar_notes_across_rooms() {
    let server = TestServer::start().await;
    let event = create_event(&server, true).await;
    let notes = [
        (0, "The buses are always late in the morning"),
        (0, "The GP phone line is engaged every morning at 8"),
        (1, "Bus 42 was late again and then cancelled"),
        (1, "Getting a GP appointment takes weeks on the phone"),
        (2, "More buses in the evening, they stop too early"),
        (2, "Thanks for the biscuits"),
    ];
    for (room, text) in notes {
        let mut c = server.client(&event.rooms[room]).await;
        c.join(None).await;
        c.apply(create_note(text)).await;
        c.close().await;
    }
    let (status, v) = fac_request(&server, &event, "POST", "suggestions", None).await;
    assert_eq!(status, 200, "{v}");
    let groups = v["suggestions"].as_array().unwrap();
    let texts = |g: &Value| -> Vec<String> {
        g["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let bus = groups
        .iter()
        .find(|g| texts(g).iter().any(|t| t.contains("Bus 42")))
        .expect("a group with the bus notes");
    let bus_texts = texts(bus);
    assert_eq!(bus_texts.len(), 3, "{bus_texts:?}");
    assert!(bus_texts.iter().all(|t| t.to_lowercase().contains("bus")));
    let rooms: std::collections::BTreeSet<&str> = bus["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms.len(), 3, "the group spans rooms");
    assert!(
        bus["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("bus")
    );
    assert!(
        groups
            .iter()
            .all(|g| !texts(g).iter().any(|t| t.contains("biscuits")))
    );
}

#[tokio::test]
async fn reports_download_as_files_and_quote_only_with_consent() {
    let server = TestServer::start().await;
    let event = create_event(&server, false).await;
    run_session(&server, &event).await;
    let get = |q: &str| {
        let path = format!("/api/events/{}/report?{q}", event.id);
        let secret = event.secret.clone();
        let addr = server.addr;
        async move {
            http::request(
                addr,
                "GET",
                &path,
                None,
                &[("X-Bothy-Facilitator", &secret)],
            )
            .await
        }
    };
    let csv = get("format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.body_bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "UTF-8 with a BOM"
    );
    assert!(
        csv.header("content-disposition")
            .is_some_and(|d| d.contains(".csv"))
    );
    // "the drop-in clinic" notes are OK to quote; the "=SUM(A1)" ones are not (and are hidden).
    assert!(csv.body.contains("the drop-in clinic"));
    assert!(!csv.body.contains("=SUM(A1)") && !csv.body.contains("<script>"));
    let html = get("format=html").await;
    assert_eq!(html.status, 200);
    assert!(html.body.contains("Community health forum") && !html.body.contains("<script>x"));
    let md = get("format=md&quote_all=true").await;
    assert_eq!(md.status, 200);
    assert!(md.body.contains("said in the hall"));
    assert_eq!(get("format=pdf").await.status, 400);
    let res = http::request(
        server.addr,
        "GET",
        &format!("/api/events/{}/report?format=csv", event.id),
        None,
        &[],
    )
    .await;
    assert_eq!(res.status, 403);
}
