//! The wire contract the browser client depends on: the literal JSON of every message, in both
//! directions, and how strictly client messages are read.
//!
//! Each literal is exactly what `serde_json::to_string` writes (compact, fields in declared
//! order), and reads back as the same value. `docs/protocol.md` shows the same literals; the
//! last tests check that it still does, and that every JSON example in it is a real message.

use bothy_shared::ids::ActorKey;
use bothy_shared::op::*;
use bothy_shared::protocol::*;
use bothy_shared::{Board, Limits, Note, OpId, RejectReason, Theme};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt::Debug;

// The literals. `docs/protocol.md` must show each one, byte for byte.

const JOIN_FIRST: &str =
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":null,"name":null}"#;
const JOIN_AGAIN: &str =
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":12,"name":"Ailsa"}"#;
const CREATE_NOTE: &str = r#"{"type":"op","op_id":"h3x9-14","op":{"kind":"create_note","text":"Benches by the pond","colour":"green","x":905.5,"y":520.25}}"#;
const EDIT_NOTE: &str = r#"{"type":"op","op_id":"h3x9-15","op":{"kind":"edit_note","note":9,"text":"Benches by the pond, in the shade"}}"#;
const RECOLOUR_NOTE: &str =
    r#"{"type":"op","op_id":"h3x9-16","op":{"kind":"recolour_note","note":9,"colour":"orange"}}"#;
const MOVE_NOTE: &str =
    r#"{"type":"op","op_id":"p0q1-3","op":{"kind":"move_note","note":8,"x":640.5,"y":312.25}}"#;
const DELETE_NOTE: &str = r#"{"type":"op","op_id":"h3x9-17","op":{"kind":"delete_note","note":9}}"#;
const CREATE_THEME: &str =
    r#"{"type":"op","op_id":"h3x9-18","op":{"kind":"create_theme","title":"Water"}}"#;
const RENAME_THEME: &str = r#"{"type":"op","op_id":"h3x9-19","op":{"kind":"rename_theme","theme":2,"title":"Outdoor space"}}"#;
const DELETE_THEME: &str =
    r#"{"type":"op","op_id":"h3x9-20","op":{"kind":"delete_theme","theme":2}}"#;
const SET_NOTE_THEME: &str = r#"{"type":"op","op_id":"h3x9-21","op":{"kind":"set_note_theme","note":8,"theme":2,"position":0}}"#;
const UNSET_NOTE_THEME: &str = r#"{"type":"op","op_id":"h3x9-22","op":{"kind":"set_note_theme","note":8,"theme":null,"position":null}}"#;
const PING: &str = r#"{"type":"ping"}"#;

const WELCOME: &str = r#"{"type":"welcome","version":1,"room":"garden-team","seq":12,"board":{"prompt":"What would make the garden better?","notes":[{"id":7,"text":"More shade","colour":"yellow","x":120.5,"y":80.25,"author":"Ailsa","created_at":1767225600000,"updated_at":1767225660000,"theme":2},{"id":8,"text":"A pond?","colour":"blue","x":900.5,"y":410.75,"author":null,"created_at":1767225630000,"updated_at":1767225630000,"theme":null}],"themes":[{"id":2,"title":"Outdoors","notes":[7]}],"next_note_id":9,"next_theme_id":3},"mine":[7],"presence":3,"read_only":false}"#;
const WELCOME_CATCH_UP: &str = r#"{"type":"welcome","version":1,"room":"garden-team","seq":14,"board":null,"mine":[7,9],"presence":3,"read_only":false}"#;
const APPLIED_CREATE: &str = r#"{"type":"applied","seq":13,"op_id":"h3x9-14","at":1767225720000,"author":"Ailsa","op":{"kind":"create_note","text":"Benches by the pond","colour":"green","x":905.5,"y":520.25},"created":9}"#;
const APPLIED_MOVE: &str = r#"{"type":"applied","seq":14,"op_id":"p0q1-3","at":1767225725000,"author":null,"op":{"kind":"move_note","note":8,"x":640.5,"y":312.25},"created":null}"#;
const ALREADY_APPLIED: &str = r#"{"type":"already_applied","op_id":"h3x9-14","seq":13}"#;
const REJECTED: &str = r#"{"type":"rejected","op_id":"h3x9-23","reason":"not_yours","message":"Only the person who wrote this note can change or delete it."}"#;
const PRESENCE: &str = r#"{"type":"presence","count":4}"#;
const READ_ONLY: &str = r#"{"type":"read_only","message":"The board is read-only for now: the server cannot save changes. Nothing already saved is lost."}"#;
const ERROR: &str =
    r#"{"type":"error","code":"already_joined","message":"This connection has already joined."}"#;
const PONG: &str = r#"{"type":"pong"}"#;

const OPS: [&str; 10] = [
    CREATE_NOTE,
    EDIT_NOTE,
    RECOLOUR_NOTE,
    MOVE_NOTE,
    DELETE_NOTE,
    CREATE_THEME,
    RENAME_THEME,
    DELETE_THEME,
    SET_NOTE_THEME,
    UNSET_NOTE_THEME,
];
const CLIENT: [&str; 3] = [JOIN_FIRST, JOIN_AGAIN, PING];
const SERVER: [&str; 10] = [
    WELCOME,
    WELCOME_CATCH_UP,
    APPLIED_CREATE,
    APPLIED_MOVE,
    ALREADY_APPLIED,
    REJECTED,
    PRESENCE,
    READ_ONLY,
    ERROR,
    PONG,
];

/// A message type the literals pin, with any extra check for its direction.
trait Wire: Serialize + DeserializeOwned + PartialEq + Debug {
    fn also(&self, _json: &str) {}
}

impl Wire for ClientMessage {
    /// The server reads client messages through the decoder: it must agree.
    fn also(&self, json: &str) {
        assert_eq!(decode_client_message(json).as_ref(), Ok(self));
    }
}

impl Wire for ServerMessage {}

/// Pins `value` to `json` in both directions.
#[track_caller]
fn pin<T: Wire>(value: &T, json: &str) {
    assert_eq!(serde_json::to_string(value).expect("serialises"), json);
    assert_eq!(&serde_json::from_str::<T>(json).expect("reads back"), value);
    value.also(json);
}

/// One `#[test]` per literal: `name: LITERAL = value;`.
macro_rules! pinned {
    ($($name:ident: $json:ident = $value:expr;)*) => {
        $(
            #[test]
            fn $name() {
                pin(&$value, $json);
            }
        )*
    };
}

fn id(s: &str) -> OpId {
    OpId::parse(s).expect("a valid op id")
}

fn op(op_id: &str, op: Op) -> ClientMessage {
    ClientMessage::Op(OpMessage {
        op_id: id(op_id),
        op,
    })
}

fn join(last_seq: Option<u64>, name: Option<&str>) -> ClientMessage {
    ClientMessage::Join(Join {
        version: PROTOCOL_VERSION,
        token: "Zq4xW8rT2mKp9sLd0vBn6c".into(),
        last_seq,
        name: name.map(Into::into),
    })
}

const T0: u64 = 1_767_225_600_000;

fn create_note() -> Op {
    Op::CreateNote(CreateNote {
        text: "Benches by the pond".into(),
        colour: Colour::Green,
        x: 905.5,
        y: 520.25,
    })
}

fn move_note() -> Op {
    Op::MoveNote(MoveNote {
        note: 8,
        x: 640.5,
        y: 312.25,
    })
}

/// A board with a themed note by a named author and an anonymous unthemed note, as participants
/// see it (no owners).
fn board() -> Board {
    let mut b = Board::new("What would make the garden better?");
    let note = |id, text: &str, colour, x, y, author: Option<&str>, at, theme| Note {
        id,
        text: text.into(),
        colour,
        x,
        y,
        author: author.map(Into::into),
        created_at: at,
        updated_at: at,
        theme,
        owner: None,
    };
    let mut shade = note(
        7,
        "More shade",
        Colour::Yellow,
        120.5,
        80.25,
        Some("Ailsa"),
        T0,
        Some(2),
    );
    shade.updated_at = T0 + 60_000;
    b.notes.insert(7, shade);
    let pond = note(
        8,
        "A pond?",
        Colour::Blue,
        900.5,
        410.75,
        None,
        T0 + 30_000,
        None,
    );
    b.notes.insert(8, pond);
    b.themes.insert(
        2,
        Theme {
            id: 2,
            title: "Outdoors".into(),
            notes: vec![7],
        },
    );
    b.next_note_id = 9;
    b.next_theme_id = 3;
    b.check_invariants(&Limits::default())
        .expect("the example board is a valid board");
    b
}

fn welcome() -> Welcome {
    Welcome {
        version: PROTOCOL_VERSION,
        room: "garden-team".into(),
        seq: 12,
        board: Some(board()),
        mine: vec![7],
        presence: 3,
        read_only: false,
    }
}

fn welcome_catch_up() -> Welcome {
    Welcome {
        seq: 14,
        board: None,
        mine: vec![7, 9],
        ..welcome()
    }
}

pinned! {
    join_first_time: JOIN_FIRST = join(None, None);
    join_again: JOIN_AGAIN = join(Some(12), Some("Ailsa"));
    op_create_note: CREATE_NOTE = op("h3x9-14", create_note());
    op_edit_note: EDIT_NOTE = op("h3x9-15", Op::EditNote(EditNote {
        note: 9,
        text: "Benches by the pond, in the shade".into(),
    }));
    op_recolour_note: RECOLOUR_NOTE = op("h3x9-16", Op::RecolourNote(RecolourNote {
        note: 9,
        colour: Colour::Orange,
    }));
    op_move_note: MOVE_NOTE = op("p0q1-3", move_note());
    op_delete_note: DELETE_NOTE = op("h3x9-17", Op::DeleteNote(DeleteNote { note: 9 }));
    op_create_theme: CREATE_THEME = op("h3x9-18", Op::CreateTheme(CreateTheme {
        title: "Water".into(),
    }));
    op_rename_theme: RENAME_THEME = op("h3x9-19", Op::RenameTheme(RenameTheme {
        theme: 2,
        title: "Outdoor space".into(),
    }));
    op_delete_theme: DELETE_THEME = op("h3x9-20", Op::DeleteTheme(DeleteTheme { theme: 2 }));
    op_set_note_theme: SET_NOTE_THEME = op("h3x9-21", Op::SetNoteTheme(SetNoteTheme {
        note: 8,
        theme: Some(2),
        position: Some(0),
    }));
    op_set_note_theme_null: UNSET_NOTE_THEME = op("h3x9-22", Op::SetNoteTheme(SetNoteTheme {
        note: 8,
        theme: None,
        position: None,
    }));
    ping: PING = ClientMessage::Ping(Empty {});

    welcome_with_board: WELCOME = ServerMessage::Welcome(welcome());
    welcome_without_board: WELCOME_CATCH_UP = ServerMessage::Welcome(welcome_catch_up());
    applied_create: APPLIED_CREATE = ServerMessage::Applied(AppliedOp {
        seq: 13,
        op_id: id("h3x9-14"),
        at: T0 + 120_000,
        author: Some("Ailsa".into()),
        op: create_note(),
        created: Some(9),
    });
    applied_move_by_anonymous: APPLIED_MOVE = ServerMessage::Applied(AppliedOp {
        seq: 14,
        op_id: id("p0q1-3"),
        at: T0 + 125_000,
        author: None,
        op: move_note(),
        created: None,
    });
    already_applied: ALREADY_APPLIED = ServerMessage::AlreadyApplied(AlreadyApplied {
        op_id: id("h3x9-14"),
        seq: 13,
    });
    rejected: REJECTED = ServerMessage::Rejected(Rejected {
        op_id: id("h3x9-23"),
        reason: RejectReason::NotYours,
        message: "Only the person who wrote this note can change or delete it.".into(),
    });
    presence: PRESENCE = ServerMessage::Presence(Presence { count: 4 });
    read_only: READ_ONLY = ServerMessage::ReadOnly(Notice {
        message: "The board is read-only for now: the server cannot save changes. \
                  Nothing already saved is lost."
            .into(),
    });
    error: ERROR = ServerMessage::Error(ErrorMessage {
        code: ErrorCode::AlreadyJoined,
        message: "This connection has already joined.".into(),
    });
    pong: PONG = ServerMessage::Pong(Empty {});
}

#[test]
fn welcome_out_writes_the_same_bytes_as_welcome() {
    for (welcome, literal) in [(welcome(), WELCOME), (welcome_catch_up(), WELCOME_CATCH_UP)] {
        let raw = welcome.board.as_ref().map(|b| {
            RawValue::from_string(serde_json::to_string(b).expect("serialises")).expect("JSON")
        });
        let out = WelcomeOut {
            kind: WelcomeTag::Welcome,
            version: welcome.version,
            room: &welcome.room,
            seq: welcome.seq,
            board: raw.as_deref(),
            mine: &welcome.mine,
            presence: welcome.presence,
            read_only: welcome.read_only,
        };
        let out = serde_json::to_string(&out).expect("serialises");
        assert_eq!(out, literal);
        let typed = serde_json::to_string(&ServerMessage::Welcome(welcome)).expect("serialises");
        assert_eq!(out, typed);
    }
}

#[test]
fn absent_optional_join_fields_read_as_null() {
    let short = r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#;
    assert_eq!(decode_client_message(short), Ok(join(None, None)));
}

#[test]
fn whole_number_coordinates_are_accepted() {
    // JavaScript's JSON.stringify writes 640, not 640.0.
    let js = r#"{"type":"op","op_id":"p0q1-3","op":{"kind":"move_note","note":8,"x":640,"y":312}}"#;
    let expected = op(
        "p0q1-3",
        Op::MoveNote(MoveNote {
            note: 8,
            x: 640.0,
            y: 312.0,
        }),
    );
    assert_eq!(decode_client_message(js), Ok(expected));
}

#[test]
fn a_note_has_no_owner_field_unless_it_has_an_owner() {
    let mut b = board();
    let json = serde_json::to_string(&b).expect("serialises");
    assert!(!json.contains("owner"), "{json}");
    // The server's own copy keeps owners (they are saved), but never shows them.
    for n in b.notes.values_mut() {
        n.owner = Some(ActorKey::new("5f0c0ffee5f0c0ffee5f0c0ffee5f0c0"));
    }
    let stored = serde_json::to_string(&b).expect("serialises");
    assert_eq!(
        stored
            .matches(r#""owner":"5f0c0ffee5f0c0ffee5f0c0ffee5f0c0""#)
            .count(),
        2
    );
    assert_eq!(
        serde_json::from_str::<Board>(&stored).expect("reads back"),
        b
    );
    let public = serde_json::to_string(&b.public()).expect("serialises");
    assert_eq!(public, json);
}

#[test]
fn the_palette_is_six_names() {
    let names = serde_json::to_string(&Colour::ALL).expect("serialises");
    assert_eq!(
        names,
        r#"["yellow","pink","blue","green","orange","purple"]"#
    );
}

/// `json` with `field` set to `value` in the object at `path` (empty path: the message itself).
fn with(json: &str, path: &[&str], field: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(json).expect("a literal is JSON");
    let mut target = &mut v;
    for key in path {
        target = &mut target[*key];
    }
    target
        .as_object_mut()
        .expect("an object")
        .insert(field.into(), value);
    v.to_string()
}

/// Asserts `text` is refused as an invalid message, and says which op id (if any) it gave back.
#[track_caller]
fn invalid(text: &str) -> Option<OpId> {
    let e = decode_client_message(text).expect_err(text);
    assert_eq!(e.code, ErrorCode::InvalidMessage, "{text}: {}", e.message);
    assert!(!e.message.is_empty());
    e.op_id
}

#[test]
fn unknown_fields_are_refused_in_every_op_payload() {
    for literal in OPS {
        let op_id: Value = serde_json::from_str::<Value>(literal).expect("JSON")["op_id"].clone();
        let expected = op_id.as_str().map(id);
        let bad = with(literal, &["op"], "token", "Zq4xW8rT2mKp9sLd0vBn6c".into());
        assert_eq!(invalid(&bad), expected);
        let bad = with(literal, &["op"], "owner", "someone".into());
        assert_eq!(invalid(&bad), expected);
    }
}

#[test]
fn unknown_fields_are_refused_in_every_message() {
    for literal in OPS.into_iter().chain(CLIENT) {
        invalid(&with(literal, &[], "room", "another-room".into()));
        invalid(&with(literal, &[], "admin", true.into()));
    }
    for literal in SERVER {
        let bad = with(literal, &[], "extra", 1.into());
        assert!(
            serde_json::from_str::<ServerMessage>(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn colours_outside_the_palette_are_refused() {
    for bad in [
        "red;background:url(//x)",
        "\" onmouseover=\"alert(1)",
        "Yellow",
        "#ffff00",
        "",
    ] {
        for literal in [CREATE_NOTE, RECOLOUR_NOTE] {
            let text = with(literal, &["op"], "colour", bad.into());
            assert!(invalid(&text).is_some(), "{text}");
        }
        assert!(serde_json::from_value::<Colour>(bad.into()).is_err());
    }
}

#[test]
fn decode_says_what_kind_of_failure_it_was() {
    use ErrorCode::*;
    let cases: &[(&str, ErrorCode)] = &[
        (&JOIN_AGAIN[..JOIN_AGAIN.len() - 1], MalformedJson),
        (&CREATE_NOTE[..40], MalformedJson),
        (r#"{"type":"ping"} x"#, MalformedJson),
        (r#"{"type":"ping"}{"type":"ping"}"#, MalformedJson),
        (r#"{"type":"ping"},"#, MalformedJson),
        ("", MalformedJson),
        ("{'type':'ping'}", MalformedJson),
        (r#"{"type":"pong"}"#, UnknownType),
        (r#"{"type":"Ping"}"#, UnknownType),
        (r#"{"type":"welcome"}"#, UnknownType),
        (
            r#"{"version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#,
            UnknownType,
        ),
        (r#"{"type":null}"#, UnknownType),
        (r#"{"type":["ping"]}"#, UnknownType),
        ("{}", UnknownType),
        ("null", UnknownType),
        ("42", UnknownType),
        (
            r#"{"type":"join","version":"1","token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#,
            InvalidMessage,
        ),
        (r#"{"type":"join","version":1,"token":16}"#, InvalidMessage),
        (r#"{"type":"join","version":1}"#, InvalidMessage),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":-1}"#,
            InvalidMessage,
        ),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","name":5}"#,
            InvalidMessage,
        ),
        (r#"{"type":"ping","x":1}"#, InvalidMessage),
        (r#"{"type":"op"}"#, InvalidMessage),
        (
            r#"{"type":"op","op_id":14,"op":{"kind":"delete_note","note":9}}"#,
            InvalidMessage,
        ),
    ];
    for (text, code) in cases {
        let e = decode_client_message(text).expect_err(text);
        assert_eq!(e.code, *code, "{text}: {}", e.message);
        assert!(!e.message.is_empty());
        assert_eq!(e.op_id, None, "{text}");
    }
}

#[test]
fn a_bad_op_with_a_good_op_id_gives_the_op_id_back() {
    let good = Some(id("h3x9-30"));
    for (text, op_id) in [
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":"8","x":1.5,"y":2.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":8,"x":"1.5","y":2.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":8,"x":1.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"paint_note","note":8}}"#,
            &good,
        ),
        (r#"{"type":"op","op_id":"h3x9-30","op":{"note":8}}"#, &good),
        (r#"{"type":"op","op_id":"h3x9-30","op":null}"#, &good),
        (r#"{"type":"op","op_id":"h3x9-30"}"#, &good),
        (
            r#"{"type":"op","op_id":"has space","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
        (
            r#"{"type":"op","op_id":"","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
        (
            r#"{"type":"op","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
    ] {
        assert_eq!(&invalid(text), op_id, "{text}");
    }
}

#[test]
fn error_messages_do_not_echo_long_input() {
    let field = "a".repeat(10_000);
    let text = with(PING, &[], &field, 1.into());
    let e = decode_client_message(&text).expect_err("unknown field");
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert!(e.message.chars().count() < 300, "{}", e.message);
}

/// Messages are JSON objects. serde's internally tagged enums also accept a sequence whose first
/// element is the tag, which the decoder should refuse.
#[test]
fn messages_must_be_objects() {
    for text in [
        r#"["ping"]"#,
        r#"["join",1,"Zq4xW8rT2mKp9sLd0vBn6c",null,null]"#,
        r#"{"type":"op","op_id":"h3x9-31","op":["delete_note",9]}"#,
    ] {
        assert!(decode_client_message(text).is_err(), "{text} was accepted");
    }
}

// The names the doc's tables list. The matches fail to compile when a variant is added, so the
// lists (and the doc) cannot silently fall behind.

fn reject_reasons() -> Vec<RejectReason> {
    use RejectReason::*;
    let all = vec![
        Invalid,
        TextEmpty,
        TextTooLong,
        TextControlCharacters,
        OutOfBounds,
        NotFound,
        NotYours,
        TooManyNotes,
        TooManyThemes,
        ReadOnly,
        RateLimited,
    ];
    for r in &all {
        match r {
            Invalid
            | TextEmpty
            | TextTooLong
            | TextControlCharacters
            | OutOfBounds
            | NotFound
            | NotYours
            | TooManyNotes
            | TooManyThemes
            | ReadOnly
            | RateLimited => {}
        }
    }
    all
}

fn error_codes() -> Vec<ErrorCode> {
    use ErrorCode::*;
    let all = vec![
        MalformedJson,
        UnknownType,
        InvalidMessage,
        AlreadyJoined,
        RateLimited,
    ];
    for c in &all {
        match c {
            MalformedJson | UnknownType | InvalidMessage | AlreadyJoined | RateLimited => {}
        }
    }
    all
}

#[test]
fn reject_reasons_and_error_codes_have_these_names() {
    let reasons = serde_json::to_string(&reject_reasons()).expect("serialises");
    assert_eq!(
        reasons,
        r#"["invalid","text_empty","text_too_long","text_control_characters","out_of_bounds","not_found","not_yours","too_many_notes","too_many_themes","read_only","rate_limited"]"#
    );
    let codes = serde_json::to_string(&error_codes()).expect("serialises");
    assert_eq!(
        codes,
        r#"["malformed_json","unknown_type","invalid_message","already_joined","rate_limited"]"#
    );
}

const DOC: &str = include_str!("../../docs/protocol.md");

#[test]
fn the_protocol_doc_shows_every_literal() {
    for literal in OPS.into_iter().chain(CLIENT).chain(SERVER) {
        assert!(DOC.contains(literal), "docs/protocol.md lacks {literal}");
    }
}

#[test]
fn every_json_example_in_the_protocol_doc_is_a_real_message() {
    let mut in_json = false;
    let mut seen = 0;
    for line in DOC.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            "" => {}
            text if in_json => {
                let again = if let Ok(m) = serde_json::from_str::<ClientMessage>(text) {
                    serde_json::to_string(&m)
                } else {
                    let m = serde_json::from_str::<ServerMessage>(text)
                        .unwrap_or_else(|e| panic!("not a message ({e}): {text}"));
                    serde_json::to_string(&m)
                };
                assert_eq!(again.expect("serialises"), text, "written differently");
                seen += 1;
            }
            _ => {}
        }
    }
    assert!(seen >= OPS.len() + CLIENT.len() + SERVER.len());
}

#[test]
fn the_protocol_doc_lists_every_reason_code_and_close_code() {
    let names = reject_reasons()
        .into_iter()
        .map(|r| serde_json::to_value(r).expect("serialises"))
        .chain(
            error_codes()
                .into_iter()
                .map(|c| serde_json::to_value(c).expect("serialises")),
        );
    for name in names {
        let cell = format!("| `{}` |", name.as_str().expect("a string"));
        assert!(
            DOC.contains(&cell),
            "docs/protocol.md lacks a row for {cell}"
        );
    }
    for code in [
        close::GOING_AWAY,
        close::UNSUPPORTED_DATA,
        close::INVALID_PAYLOAD,
        close::TOO_BIG,
        close::INTERNAL_ERROR,
        close::BAD_JOIN,
        close::JOIN_TIMEOUT,
        close::NO_PONG,
        close::NO_SUCH_ROOM,
        close::TOO_SLOW,
    ] {
        let cell = format!("| {code} |");
        assert!(
            DOC.contains(&cell),
            "docs/protocol.md lacks a row for close code {code}"
        );
    }
}
