//! `docs/snapshot.schema.json` against real event snapshots, with the `jsonschema` crate
//! (draft 2020-12):
//!
//! - the schema is itself a valid draft 2020-12 schema;
//! - snapshots made in this process from boards built by real operations
//!   ([`RoomExport::from_board`], as the server does), named and anonymous, validate;
//! - so does the fixture `tests/fixtures/event-snapshot.json`, when it is there;
//! - so does a snapshot downloaded from a live three-room event (`GET
//!   /api/events/{id}/snapshot` with the facilitator secret) after notes, themes, dots, consent,
//!   a hidden note and a proxy note;
//! - hostile documents are refused by the schema as they are by the server: wrong format or
//!   version, unknown fields at every level, too many or no rooms, over-long or control-character
//!   text, names in an anonymous event, coordinates off the board, ids from 2^53;
//! - the schema requires exactly what the Rust types require: every field serde needs, the schema
//!   needs, and nothing the reader accepts without is required by the schema.

use bothy_shared::op::*;
use bothy_shared::snapshot::{
    CrossTheme, EventInfo, EventSnapshot, NoteRef as RoomNote, Pseudonyms, RoomExport,
    SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
use bothy_shared::{ActorKey, Board, Limits, NoteId, Op, OpContext, Role};
use bothy_tests::ops::*;
use bothy_tests::{Client, TestServer, http};
use jsonschema::Validator;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::LazyLock;

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/snapshot.schema.json");
const FIXTURE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/event-snapshot.json");

fn schema() -> Value {
    let text = std::fs::read_to_string(SCHEMA_PATH).expect("docs/snapshot.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

static VALIDATOR: LazyLock<Validator> =
    LazyLock::new(|| jsonschema::draft202012::new(&schema()).expect("the schema compiles"));

/// Every way `doc` breaks the schema: where (a JSON pointer) and what.
fn errors(doc: &Value) -> Vec<(String, String)> {
    VALIDATOR
        .iter_errors(doc)
        .map(|e| (e.instance_path().to_string(), e.to_string()))
        .collect()
}

/// Every way `doc` breaks the schema, one per line ("" when it is valid).
fn violations(doc: &Value) -> String {
    errors(doc)
        .iter()
        .map(|(at, what)| format!("{at}: {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn assert_valid(doc: &Value, what: &str) {
    let found = violations(doc);
    assert!(found.is_empty(), "{what} breaks the schema:\n{found}");
}

/// What the server does with a restore file: the types, then `check`.
fn read(doc: &Value) -> Result<EventSnapshot, String> {
    let s: EventSnapshot = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    s.check(&Limits::default())?;
    Ok(s)
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = schema();
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("not a valid schema: {e} at {}", e.instance_path());
    }
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    LazyLock::force(&VALIDATOR);
}

// ---------------------------------------------------------------------------------------------
// Snapshots built in this process from real boards
// ---------------------------------------------------------------------------------------------

/// A room, changed only by [`Board::apply`].
struct Room {
    id: &'static str,
    code: &'static str,
    board: Board,
    seq: u64,
}

impl Room {
    fn new(id: &'static str, code: &'static str, name: &str, anonymous: bool) -> Self {
        Self {
            id,
            code,
            board: Board::for_room(name, "What would you change, and why?", anonymous),
            seq: 0,
        }
    }

    /// Applies `op` as `who` (a name; "Fran" is the facilitator): it must be accepted.
    fn by(&mut self, who: &str, op: Op) -> Option<u64> {
        self.seq += 1;
        let ctx = OpContext {
            actor: Some(ActorKey::new(format!("k3y-{who}"))),
            author: Some(who.into()),
            at: 1_767_225_600_000 + self.seq * 1_000,
            role: if who == "Fran" {
                Role::Facilitator
            } else {
                Role::Participant
            },
        };
        self.board
            .apply(&op, &ctx, &Limits::default())
            .unwrap_or_else(|e| panic!("{op:?}: {e}"))
            .created
    }

    fn note(&mut self, who: &str, text: &str, x: f64, y: f64) -> NoteId {
        let colour = Colour::ALL[self.seq as usize % 6];
        let op = Op::CreateNote(CreateNote {
            text: text.into(),
            colour,
            x,
            y,
        });
        self.by(who, op).expect("a note")
    }
}

/// Three rooms with something of everything: themes, dots (hidden tallies, proxy dots), consent
/// to quote, a hidden and a removed note, a proxy note, private writing, a timer, a lock; one
/// room empty. Two cross-room themes.
fn built_event(anonymous: bool) -> EventSnapshot {
    let mut a = Room::new("kq2mxwph7s", "K7R-M4X", "Table 1", anonymous);
    let shade = a.note("Ailsa", "More shade\nby the swings", 0.0, 0.0);
    let pond = a.note("Ben", "A pond? <script>alert(1)</script>", 3000.0, 2000.0);
    let rude = a.note("Cat", "Something unkind", 1.5, 2.25);
    let phone = a.note("Ben", "Ring 07700 900123", 10.0, 10.0);
    let ramps = a
        .by(
            "Fran",
            Op::ProxyNote(CreateNote {
                text: "Ramps at both gates".into(),
                colour: Colour::Purple,
                x: 1480.5,
                y: 300.75,
            }),
        )
        .expect("a note");
    a.by(
        "Ailsa",
        Op::SetQuotable(SetQuotable {
            note: shade,
            quotable: true,
        }),
    );
    let theme = a.by("Ailsa", create_theme("Outdoors")).expect("a theme");
    a.by("Ailsa", set_theme(shade, Some(theme), None));
    a.by("Fran", set_theme(ramps, Some(theme), Some(0)));
    let voting = Op::OpenVoting(OpenVoting {
        budget: 3,
        show_tallies: false,
    });
    a.by("Fran", voting);
    a.by("Ailsa", Op::Vote(NoteRef { note: pond }));
    a.by("Ben", Op::Vote(NoteRef { note: shade }));
    a.by("Fran", Op::ProxyVote(NoteRef { note: ramps }));
    for (op, note) in [("hide", rude), ("remove", phone)] {
        let m = Moderate {
            note,
            reason: format!("{op}: not for the wall"),
        };
        a.by(
            "Fran",
            if op == "hide" {
                Op::HideNote(m)
            } else {
                Op::RemoveNote(m)
            },
        );
    }
    a.by(
        "Fran",
        Op::SetWriting(SetWriting {
            writing: Writing::Private,
        }),
    );
    a.note("Cat", "Only I see this", 5.0, 5.0);

    let mut b = Room::new("tr4pq9vbnc", "TAN3W9", "Table 2", anonymous);
    let buses = b.note("Ailsa", "Buses after 10pm", 700.0, 800.0);
    b.note("Dev", "=HYPERLINK(\"x\")", 20.0, 30.0);
    b.by(
        "Fran",
        Op::StartTimer(StartTimer {
            seconds: 600,
            on_end: OnEnd::Lock,
        }),
    );
    b.by("Fran", Op::Spotlight(Spotlight { note: Some(buses) }));
    b.by("Fran", Op::SetLocked(SetLocked { locked: true }));

    let c = Room::new("gr3nyk8zda", "PXY-DE7", "Table 3", anonymous);

    let mut pseudonyms = Pseudonyms::default();
    let rooms = [a, b, c]
        .iter()
        .map(|r| RoomExport::from_board(r.id, r.code, r.seq, &r.board, &mut pseudonyms))
        .collect();
    let placed = |room: &str, note| RoomNote {
        room: room.into(),
        note,
    };
    EventSnapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: SNAPSHOT_VERSION,
        exported_at: 1_767_229_200_000,
        event: EventInfo {
            id: "yk3nn2thaz".into(),
            title: "Park plan".into(),
            anonymous,
            created_at: 1_767_139_200_000,
            retention_days: 30,
        },
        rooms,
        synthesis: vec![
            CrossTheme {
                id: 1,
                title: "Getting there".into(),
                notes: vec![placed("tr4pq9vbnc", buses), placed("kq2mxwph7s", ramps)],
            },
            CrossTheme {
                id: 2,
                title: "Empty so far".into(),
                notes: vec![],
            },
        ],
    }
}

fn built(anonymous: bool) -> Value {
    let s = built_event(anonymous);
    assert_eq!(
        s.check(&Limits::default()),
        Ok(()),
        "the server's own check"
    );
    serde_json::to_value(s).expect("serialises")
}

#[test]
fn snapshots_built_from_real_boards_validate() {
    for anonymous in [false, true] {
        let doc = built(anonymous);
        // The fixture has what it says: quotable, hidden, removed, proxy, private notes.
        let notes = &doc["rooms"][0]["notes"];
        let has = |f: &dyn Fn(&Value) -> bool| notes.as_array().unwrap().iter().any(f);
        assert!(has(&|n| n["quotable"] == true));
        assert!(has(&|n| n["moderation"] == "hidden"));
        assert!(has(&|n| n["moderation"] == "removed" && n["text"] == ""));
        assert!(has(&|n| n["proxy"] == true && n["proxy_votes"] == 1));
        assert!(has(&|n| n["private"] == true));
        assert_eq!(
            has(&|n| n["person"].is_string()),
            !anonymous,
            "pseudonyms only in a named event"
        );
        assert_valid(&doc, &format!("the built event (anonymous: {anonymous})"));
        // As a person would save it, pretty-printed and read back.
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        assert_valid(&serde_json::from_str(&pretty).unwrap(), "the pretty copy");
    }
}

#[test]
fn restored_rooms_export_to_documents_that_validate() {
    let s = built_event(false);
    let mut pseudonyms = Pseudonyms::default();
    let again = EventSnapshot {
        rooms: s
            .rooms
            .iter()
            .map(|r| RoomExport::from_board(&r.id, &r.code, r.seq, &r.to_board(), &mut pseudonyms))
            .collect(),
        ..s
    };
    assert_valid(
        &serde_json::to_value(again).unwrap(),
        "export → restore → export",
    );
}

#[test]
fn the_fixture_validates_when_it_is_there() {
    if !Path::new(FIXTURE_PATH).exists() {
        eprintln!("skipped: no {FIXTURE_PATH}");
        return;
    }
    let text = std::fs::read_to_string(FIXTURE_PATH).expect("readable");
    let doc: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    assert_valid(&doc, "tests/fixtures/event-snapshot.json");
    assert!(
        read(&doc).is_ok(),
        "the server refuses the fixture: {:?}",
        read(&doc).err()
    );
}

// ---------------------------------------------------------------------------------------------
// A snapshot downloaded from a live event
// ---------------------------------------------------------------------------------------------

const FACILITATOR: &str = "X-Bothy-Facilitator";

async fn joined(server: &TestServer, room: &str, name: &str, secret: Option<&str>) -> Client {
    let mut c = server.client(room).await;
    c.name = Some(name.into());
    c.facilitator = secret.map(str::to_owned);
    c.join(None).await;
    c
}

#[tokio::test]
async fn a_snapshot_downloaded_from_a_live_three_room_event_validates() {
    let server = TestServer::start().await;
    let body = json!({
        "title": "Park plan",
        "anonymous": false,
        "rooms": [
            {"name": "Table 1", "prompt": "What would make the park better?"},
            {"name": "Table 2", "prompt": "How do you get there?"},
            {"name": "Table 3", "prompt": "Anything else?"},
        ],
    })
    .to_string();
    let res = http::request(server.addr, "POST", "/api/events", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let created: Value = serde_json::from_str(&res.body).unwrap();
    let event = created["event"].as_str().unwrap().to_owned();
    let secret = created["facilitator_secret"].as_str().unwrap().to_owned();
    let rooms: Vec<String> = created["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rooms.len(), 3);

    for (i, room) in rooms.iter().enumerate() {
        let mut ailsa = joined(&server, room, "Ailsa", None).await;
        let mut ben = joined(&server, room, "Ben", None).await;
        let mut fran = joined(&server, room, "Fran", Some(&secret)).await;
        let shade = ailsa
            .apply(create_note(&format!("Room {i}: more shade")))
            .await
            .created
            .unwrap();
        let pond = ben
            .apply(create_note("A pond?\n<img src=x onerror=alert(1)>"))
            .await
            .created
            .unwrap();
        let rude = ben
            .apply(create_note("Something unkind"))
            .await
            .created
            .unwrap();
        ailsa
            .apply(Op::SetQuotable(SetQuotable {
                note: shade,
                quotable: true,
            }))
            .await;
        let theme = ailsa.apply(create_theme("Outdoors")).await.created.unwrap();
        ailsa.apply(set_theme(shade, Some(theme), None)).await;
        ben.apply(set_theme(pond, Some(theme), Some(0))).await;
        let proxy = fran
            .apply(Op::ProxyNote(CreateNote {
                text: "Ramps at both gates".into(),
                colour: Colour::Purple,
                x: 2999.0,
                y: 1999.0,
            }))
            .await
            .created
            .unwrap();
        fran.apply(Op::OpenVoting(OpenVoting {
            budget: 3,
            show_tallies: i != 1,
        }))
        .await;
        ailsa.apply(Op::Vote(NoteRef { note: pond })).await;
        ben.apply(Op::Vote(NoteRef { note: shade })).await;
        fran.apply(Op::ProxyVote(NoteRef { note: proxy })).await;
        fran.apply(Op::HideNote(Moderate {
            note: rude,
            reason: "Not kind".into(),
        }))
        .await;
        if i == 2 {
            fran.apply(Op::CloseVoting(NoFields {})).await;
        }
        for c in [ailsa, ben, fran] {
            c.close().await;
        }
    }

    let res = http::request(
        server.addr,
        "GET",
        &format!("/api/events/{event}/snapshot"),
        None,
        &[(FACILITATOR, &secret)],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let doc: Value = serde_json::from_str(&res.body).expect("the download is JSON");
    assert_valid(&doc, "the downloaded snapshot");
    let snapshot = read(&doc).expect("the server reads its own snapshot");
    assert_eq!(snapshot.rooms.len(), 3);
    for room in &snapshot.rooms {
        let quotable: Vec<bool> = room.notes.iter().map(|n| n.quotable).collect();
        assert_eq!(quotable, [true, false, false, false], "room {}", room.id);
        assert!(room.notes.iter().any(|n| n.proxy && n.proxy_votes == 1));
        assert_eq!(room.audit.len(), 1);
    }
    // Neither a token nor the secret is in it.
    assert!(!res.body.contains(&secret));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Hostile documents
// ---------------------------------------------------------------------------------------------

fn set(mut doc: Value, at: &str, value: Value) -> Value {
    *doc.pointer_mut(at)
        .unwrap_or_else(|| panic!("nothing at {at}")) = value;
    doc
}

fn add(mut doc: Value, at: &str, field: &str, value: Value) -> Value {
    doc.pointer_mut(at)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {at}"))
        .insert(field.into(), value);
    doc
}

/// Asserts the schema refuses `doc` for what is at `path` (a JSON pointer): a violation there,
/// below it, or at the object holding it (`oneOf` reports at the value it chose among).
#[track_caller]
fn schema_refuses(doc: &Value, path: &str) {
    let found = errors(doc);
    assert!(
        !found.is_empty(),
        "the schema accepts a document it should refuse at {path}"
    );
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    assert!(
        found
            .iter()
            .any(|(at, _)| at.starts_with(path) || (at == parent && !at.is_empty())),
        "no violation at {path}:\n{}",
        violations(doc)
    );
}

#[test]
fn hostile_documents_are_refused_by_the_schema_and_the_server() {
    let big = 1u64 << 53;
    let cases: Vec<(&str, Value)> = vec![
        (
            "/format",
            set(built(false), "/format", json!("bothy-board")),
        ),
        (
            "/event/retention_days",
            set(built(false), "/event/retention_days", json!(0)),
        ),
        (
            "/event/retention_days",
            set(built(false), "/event/retention_days", json!(3651)),
        ),
        ("/version", set(built(false), "/version", json!(2))),
        ("/rooms", set(built(false), "/rooms", json!([]))),
        (
            "/rooms/0/notes/0/text",
            set(
                built(false),
                "/rooms/0/notes/0/text",
                json!("x".repeat(501)),
            ),
        ),
        (
            "/rooms/0/notes/0/text",
            set(built(false), "/rooms/0/notes/0/text", json!(" \n\t ")),
        ),
        (
            "/rooms/0/notes/0/text",
            set(built(false), "/rooms/0/notes/0/text", json!("Bell\u{7}")),
        ),
        (
            "/event/title",
            set(built(false), "/event/title", json!("Esc\u{1b}[2J")),
        ),
        (
            "/event/title",
            set(built(false), "/event/title", json!("Two\nlines")),
        ),
        (
            "/rooms/0/name",
            set(built(false), "/rooms/0/name", json!("x".repeat(61))),
        ),
        (
            "/rooms/0/themes/0/title",
            set(built(false), "/rooms/0/themes/0/title", json!("C1\u{85}")),
        ),
        (
            "/rooms/0/notes/0/author",
            set(built(true), "/rooms/0/notes/0/author", json!("Ailsa")),
        ),
        (
            "/rooms/0/notes/0/person",
            set(built(true), "/rooms/0/notes/0/person", json!("Person 1")),
        ),
        (
            "/rooms/1/state/anonymous",
            set(built(true), "/rooms/1/state/anonymous", json!(false)),
        ),
        (
            "/rooms/0/notes/0/x",
            set(built(false), "/rooms/0/notes/0/x", json!(1e308)),
        ),
        (
            "/rooms/0/notes/0/y",
            set(built(false), "/rooms/0/notes/0/y", json!(-0.5)),
        ),
        (
            "/rooms/0/notes/0/id",
            set(built(false), "/rooms/0/notes/0/id", json!(big)),
        ),
        (
            "/rooms/0/notes/0/id",
            set(built(false), "/rooms/0/notes/0/id", json!(u64::MAX)),
        ),
        (
            "/rooms/0/notes/0/id",
            set(built(false), "/rooms/0/notes/0/id", json!(-1)),
        ),
        (
            "/rooms/0/notes/0/colour",
            set(built(false), "/rooms/0/notes/0/colour", json!("red;x:y")),
        ),
        (
            "/rooms/0/notes/1/moderation",
            set(
                built(false),
                "/rooms/0/notes/1/moderation",
                json!("deleted"),
            ),
        ),
        (
            "/rooms/0/notes/0/votes",
            set(
                built(false),
                "/rooms/0/notes/0/votes",
                json!(u64::from(u32::MAX) + 1),
            ),
        ),
        (
            "/rooms/0/notes/2/moderation_reason",
            set(
                built(false),
                "/rooms/0/notes/2/moderation_reason",
                Value::Null,
            ),
        ),
        (
            "/rooms/0/themes/0/notes",
            set(built(false), "/rooms/0/themes/0/notes", json!([1, 1])),
        ),
        (
            "/synthesis/0/notes",
            set(
                built(false),
                "/synthesis/0/notes/1",
                json!({"room": "tr4pq9vbnc", "note": 1}),
            ),
        ),
    ];
    for (path, doc) in &cases {
        schema_refuses(doc, path);
        // The server refuses every one of them too (u64::MAX aside: see
        // shared/tests/snapshot.rs, `the_largest_id_is_refused_without_a_panic`).
        if doc.pointer(path) != Some(&json!(u64::MAX)) {
            assert!(
                read(doc).is_err(),
                "the server accepts what the schema refuses at {path}"
            );
        }
    }
    // 21 rooms.
    let mut doc = built(false);
    let template = doc["rooms"][2].clone();
    let rooms = doc["rooms"].as_array_mut().unwrap();
    for i in 3..21 {
        let mut r = template.clone();
        r["id"] = json!(format!("room{i:02}"));
        rooms.push(r);
    }
    schema_refuses(&doc, "/rooms");
    assert!(read(&doc).is_err());
    // More notes than a board holds.
    let mut doc = built(false);
    let template = doc["rooms"][0]["notes"][1].clone();
    let notes = doc["rooms"][2]["notes"].as_array_mut().unwrap();
    for id in 1..=2001 {
        let mut n = template.clone();
        n["id"] = json!(id);
        n["theme"] = Value::Null;
        notes.push(n);
    }
    schema_refuses(&doc, "/rooms/2/notes");
    assert!(read(&doc).is_err());
}

/// Every object in `v`, as a JSON pointer.
fn objects(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            out.push(at.clone());
            for (k, x) in m {
                objects(x, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                objects(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn unknown_fields_are_refused_at_every_level_by_both() {
    for anonymous in [false, true] {
        let doc = built(anonymous);
        let mut places = Vec::new();
        objects(&doc, String::new(), &mut places);
        assert!(places.len() > 20, "{places:?}");
        for at in places {
            for field in ["owner", "token", "extra"] {
                let bad = add(doc.clone(), &at, field, json!("k3y-a"));
                schema_refuses(&bad, &at);
                let e = read(&bad).expect_err(&at);
                assert!(e.contains("unknown field"), "{at}: {e}");
            }
        }
    }
}

#[test]
fn the_schema_requires_exactly_what_the_types_require() {
    // For every field of every object: if the types refuse a document without it, so does the
    // schema; and the schema never refuses what the server would read.
    for anonymous in [false, true] {
        let doc = built(anonymous);
        let mut places = Vec::new();
        objects(&doc, String::new(), &mut places);
        let mut required = 0;
        for at in places {
            let fields: Vec<String> = doc
                .pointer(&at)
                .and_then(Value::as_object)
                .unwrap()
                .keys()
                .cloned()
                .collect();
            for field in fields {
                let mut without = doc.clone();
                without
                    .pointer_mut(&at)
                    .and_then(Value::as_object_mut)
                    .unwrap()
                    .remove(&field);
                let types = serde_json::from_value::<EventSnapshot>(without.clone());
                let schema_ok = violations(&without).is_empty();
                if types.is_err() {
                    required += 1;
                    assert!(
                        !schema_ok,
                        "the types need {at}/{field}; the schema does not"
                    );
                }
                if !schema_ok {
                    assert!(
                        read(&without).is_err(),
                        "the schema needs {at}/{field}; the server reads the file without it:\n{}",
                        violations(&without)
                    );
                }
            }
        }
        assert!(required > 50, "only {required} required fields");
    }
}

#[test]
fn script_in_text_fields_is_valid_text() {
    let mut doc = built(false);
    for at in [
        "/event/title",
        "/rooms/0/name",
        "/rooms/0/prompt",
        "/rooms/0/notes/0/text",
        "/rooms/0/notes/0/author",
        "/rooms/0/themes/0/title",
        "/synthesis/0/title",
    ] {
        doc = set(doc, at, json!("<script>alert(1)</script>"));
    }
    assert_valid(&doc, "script as text");
    assert!(read(&doc).is_ok());
}

#[test]
fn lengths_count_code_points_as_the_server_does() {
    // 500 four-byte characters are 500 characters (2000 bytes, 1000 UTF-16 units).
    let at = "/rooms/0/notes/0/text";
    let fits = set(built(false), at, json!("𝄞".repeat(500)));
    assert_valid(&fits, "500 characters");
    assert!(read(&fits).is_ok());
    let over = set(built(false), at, json!("é".repeat(501)));
    schema_refuses(&over, at);
    assert!(read(&over).is_err());
}

/// Where the schema states a rule the server's `EventSnapshot::check` does not enforce yet (each
/// is an ignored test in `shared/tests/snapshot.rs`): the schema refuses these documents.
#[test]
fn the_schema_states_rules_the_server_does_not_check_yet() {
    for (at, value) in [
        ("/rooms/0/state/voting/budget", json!(0)),
        ("/rooms/0/audit/0/reason", json!("Esc\u{1b}")),
        ("/rooms/0/audit/0/by", json!("x".repeat(41))),
        ("/rooms/0/id", json!("../../etc")),
        ("/rooms/0/code", json!("0000")),
        ("/event/id", json!("ABC DEF")),
        ("/rooms/0/notes/0/moderation_reason", json!("Esc\u{1b}")),
    ] {
        let mut doc = set(built(false), at, value);
        doc["synthesis"] = json!([]);
        schema_refuses(&doc, at);
    }
    schema_refuses(
        &set(built(true), "/rooms/0/audit/0/by", json!("Fran")),
        "/rooms/0/audit/0/by",
    );
}

#[test]
fn the_example_in_the_doc_validates() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/snapshot.md"))
        .expect("docs/snapshot.md");
    let start = doc.find("```json\n").expect("an example") + "```json\n".len();
    let end = start + doc[start..].find("\n```").expect("its end");
    let example: Value = serde_json::from_str(&doc[start..end]).expect("JSON");
    assert_valid(&example, "the example in docs/snapshot.md");
}
