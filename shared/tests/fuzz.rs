//! Fuzzing with property-based generated input (issue 6, QUALITY.md R10): message decoding and
//! [`Board::apply`] never panic, whatever arrives.
//!
//! - [`decode_client_message`] on arbitrary strings, on mutated copies of the literal examples
//!   from `docs/protocol.md` (bytes flipped, inserted, deleted, duplicated, cut), and on
//!   structured random JSON built from the protocol's own names. A message that decodes must
//!   survive a JSON round trip unchanged.
//! - [`Board::apply`] and [`Board::replay`] on every kind of operation with arbitrary field
//!   values (any `f64` including NaN and infinities, any `u64` id, any string including control
//!   characters, any timer length or dot budget), from several actors in every role
//!   (participant, facilitator, the server itself), on boards built by earlier random
//!   operations. On `Ok` the board's invariants hold and it survives a JSON round trip; on `Err`
//!   the board is exactly as it was. Every view of the board and every delivery decision is
//!   computed along the way, and must not panic either.
//! - Boards read from damaged snapshot files: a field of a real board replaced by any JSON value.
//!   A board that reads and passes `check_invariants` must then take any operation without
//!   panicking.
//! - Event snapshots read from damaged restore files, the same way: `EventSnapshot::check` never
//!   panics, and every room of one it accepts restores to a board that takes any operation.
//!
//! The case count is bounded for `make test` (a few seconds in a debug build); `make fuzz` runs
//! the same properties with `PROPTEST_CASES=200000` in a release build.

use bothy_shared::op::{
    CreateNote, CreateTheme, DeleteNote, DeleteTheme, EditNote, Moderate, MoveNote, NoFields,
    NoteRef, OnEnd, OpenVoting, RecolourNote, RenameTheme, SetLocked, SetNoteTheme, SetQuotable,
    SetTheming, SetWriting, Spotlight, StartTimer, Theming, Writing,
};
use bothy_shared::protocol::{ClientMessage, decode_client_message};
use bothy_shared::snapshot::{
    CrossTheme, EventInfo, EventSnapshot, NoteRef as RoomNote, Pseudonyms, RoomExport,
    SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
use bothy_shared::{ActorKey, Board, Colour, Limits, Op, OpContext, Role, Viewer};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Number, Value};

/// Cases per property when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 3000;

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES; without it, keep `make test` quick.
    let mut c = ProptestConfig {
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = DEFAULT_CASES;
    }
    c
}

/// Every literal client message in `docs/protocol.md` (pinned by `wire.rs`), and a few more.
const EXAMPLES: &[&str] = &[
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":null,"name":null,"facilitator":null}"#,
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":null,"name":null}"#,
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":12,"name":"Ailsa","facilitator":null}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"op","op_id":"h3x9-14","op":{"kind":"create_note","text":"Benches by the pond","colour":"green","x":905.5,"y":520.25}}"#,
    r#"{"type":"op","op_id":"h3x9-15","op":{"kind":"edit_note","note":9,"text":"Benches by the pond, in the shade"}}"#,
    r#"{"type":"op","op_id":"h3x9-16","op":{"kind":"recolour_note","note":9,"colour":"orange"}}"#,
    r#"{"type":"op","op_id":"p0q1-3","op":{"kind":"move_note","note":8,"x":640.5,"y":312.25}}"#,
    r#"{"type":"op","op_id":"h3x9-17","op":{"kind":"delete_note","note":9}}"#,
    r#"{"type":"op","op_id":"h3x9-18","op":{"kind":"create_theme","title":"Water"}}"#,
    r#"{"type":"op","op_id":"h3x9-19","op":{"kind":"rename_theme","theme":2,"title":"Outdoor space"}}"#,
    r#"{"type":"op","op_id":"h3x9-20","op":{"kind":"delete_theme","theme":2}}"#,
    r#"{"type":"op","op_id":"h3x9-21","op":{"kind":"set_note_theme","note":8,"theme":2,"position":0}}"#,
    r#"{"type":"op","op_id":"h3x9-22","op":{"kind":"set_note_theme","note":8,"theme":null,"position":null}}"#,
    r#"{"type":"op","op_id":"e-1","op":{"kind":"create_note","text":"\ud83d\ude00 \u00e9\n\t\"q\"","colour":"pink","x":0,"y":2000}}"#,
    r#"{"type":"join","version":1,"token":"Mf3kR8sQ1wXc7VbN5tYh2J","last_seq":null,"name":"Morag","facilitator":"f56b7c696e147ce38d2d9288bd4982b883b936dd78526cb3"}"#,
    r#"{"type":"op","op_id":"h3x9-24","op":{"kind":"vote","note":7}}"#,
    r#"{"type":"op","op_id":"h3x9-25","op":{"kind":"unvote","note":7}}"#,
    r#"{"type":"op","op_id":"h3x9-29","op":{"kind":"set_quotable","note":7,"quotable":true}}"#,
    r#"{"type":"op","op_id":"f4c1-1","op":{"kind":"set_writing","writing":"private"}}"#,
    r#"{"type":"op","op_id":"f4c1-2","op":{"kind":"set_writing","writing":"open"}}"#,
    r#"{"type":"op","op_id":"f4c1-3","op":{"kind":"start_timer","seconds":300,"on_end":"lock"}}"#,
    r#"{"type":"op","op_id":"f4c1-4","op":{"kind":"stop_timer"}}"#,
    r#"{"type":"op","op_id":"f4c1-5","op":{"kind":"set_locked","locked":true}}"#,
    r#"{"type":"op","op_id":"f4c1-6","op":{"kind":"open_voting","budget":3,"show_tallies":false}}"#,
    r#"{"type":"op","op_id":"f4c1-7","op":{"kind":"close_voting"}}"#,
    r#"{"type":"op","op_id":"f4c1-8","op":{"kind":"set_theming","theming":"facilitators"}}"#,
    r#"{"type":"op","op_id":"f4c1-9","op":{"kind":"spotlight","note":7}}"#,
    r#"{"type":"op","op_id":"f4c1-10","op":{"kind":"spotlight","note":null}}"#,
    r#"{"type":"op","op_id":"f4c1-11","op":{"kind":"hide_note","note":9,"reason":"Names a neighbour"}}"#,
    r#"{"type":"op","op_id":"f4c1-12","op":{"kind":"unhide_note","note":9}}"#,
    r#"{"type":"op","op_id":"f4c1-13","op":{"kind":"remove_note","note":9,"reason":"A phone number"}}"#,
    r#"{"type":"op","op_id":"f4c1-14","op":{"kind":"proxy_note","text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75}}"#,
    r#"{"type":"op","op_id":"f4c1-15","op":{"kind":"proxy_vote","note":10}}"#,
    r#"{"type":"op","op_id":"timer-17","op":{"kind":"timer_ended"}}"#,
];

/// Decodes, and if that worked, checks that the message survives a JSON round trip. Panics
/// anywhere in here fail the property.
fn decode_and_round_trip(text: &str) -> Result<bool, TestCaseError> {
    match decode_client_message(text) {
        Ok(msg) => {
            let again = serde_json::to_string(&msg).expect("a decoded message serialises");
            let back = decode_client_message(&again)
                .map_err(|e| TestCaseError::fail(format!("{again} no longer decodes: {e:?}")))?;
            prop_assert_eq!(back, msg, "round trip of {}", text);
            Ok(true)
        }
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            prop_assert!(
                e.message.chars().count() <= 300,
                "long error: {}",
                e.message
            );
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary strings and mutated examples
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Duplicate { at: usize, len: usize },
    Cut { at: usize },
}

/// Bytes that matter to JSON, and any byte.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"{}[]\":,\\ 0123456789eE.-+tfnu\n".to_vec()),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), interesting_byte()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
    ]
}

fn mutate(example: &str, mutations: &[Mutation]) -> String {
    let mut b = example.as_bytes().to_vec();
    for m in mutations {
        let n = b.len().max(1);
        match *m {
            Mutation::Flip { at, bit } => {
                if let Some(x) = b.get_mut(at % n) {
                    *x ^= 1 << bit;
                }
            }
            Mutation::Insert { at, byte } => b.insert(at % (b.len() + 1), byte),
            Mutation::Delete { at } => {
                if !b.is_empty() {
                    b.remove(at % n);
                }
            }
            Mutation::Duplicate { at, len } => {
                let start = at % n;
                let end = (start + len).min(b.len());
                let copy = b[start.min(b.len())..end].to_vec();
                b.splice(end..end, copy);
            }
            Mutation::Cut { at } => b.truncate(at % n),
        }
    }
    // The server only ever decodes valid UTF-8 (the transport refuses the rest with 1007).
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_any_string_never_panics(text in any::<String>()) {
        decode_and_round_trip(&text)?;
    }

    #[test]
    fn decoding_json_shaped_text_never_panics(text in r#"[{}\[\]":,\\ a-z0-9.eE+-]{0,80}"#) {
        decode_and_round_trip(&text)?;
    }

    #[test]
    fn decoding_mutated_examples_never_panics(
        example in prop::sample::select(EXAMPLES),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        decode_and_round_trip(&mutate(example, &mutations))?;
    }
}

#[test]
fn the_examples_decode() {
    for e in EXAMPLES {
        assert!(matches!(decode_and_round_trip(e), Ok(true)), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Structured random JSON from the protocol's own vocabulary
// ---------------------------------------------------------------------------------------------

const KEYS: &[&str] = &[
    "type",
    "version",
    "token",
    "last_seq",
    "name",
    "facilitator",
    "op_id",
    "op",
    "kind",
    "text",
    "colour",
    "x",
    "y",
    "note",
    "theme",
    "title",
    "position",
    "writing",
    "seconds",
    "on_end",
    "locked",
    "budget",
    "show_tallies",
    "theming",
    "reason",
    "quotable",
    "room",
    "owner",
    "role",
    "id",
    "seq",
];
const WORDS: &[&str] = &[
    "join",
    "op",
    "ping",
    "pong",
    "welcome",
    "create_note",
    "edit_note",
    "recolour_note",
    "move_note",
    "delete_note",
    "create_theme",
    "rename_theme",
    "delete_theme",
    "set_note_theme",
    "vote",
    "unvote",
    "set_quotable",
    "set_writing",
    "start_timer",
    "stop_timer",
    "set_locked",
    "open_voting",
    "close_voting",
    "set_theming",
    "spotlight",
    "hide_note",
    "unhide_note",
    "remove_note",
    "proxy_note",
    "proxy_vote",
    "timer_ended",
    "open",
    "private",
    "nothing",
    "lock",
    "everyone",
    "facilitators",
    "facilitator",
    "participant",
    "yellow",
    "pink",
    "blue",
    "green",
    "orange",
    "purple",
    "red;background:url(//x)",
    "Zq4xW8rT2mKp9sLd0vBn6c",
    "h3x9-14",
    "",
    "\u{202e}\u{200b}\u{0}\u{1b}\u{7f}\u{85}",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..20).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1e308,
            -1e308,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            3000.0,
            2000.0,
            3000.0001,
        ])
        .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::from(u32::MAX) + 1)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => number(),
        3 => prop::sample::select(WORDS).prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => "[a-z]{0,3}|.{495,505}".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value usually of the right kind for this field, sometimes anything.
fn field(name: &'static str) -> BoxedStrategy<Value> {
    let right: BoxedStrategy<Value> = match name {
        "text" | "title" | "name" | "reason" => prop_oneof![
            "[a-zA-Z ]{1,20}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ]
        .boxed(),
        "colour" => prop_oneof![
            4 => prop::sample::select(&["yellow", "pink", "blue", "green", "orange", "purple"][..]),
            1 => prop::sample::select(WORDS),
        ]
        .prop_map(Value::from)
        .boxed(),
        "x" | "y" => number().boxed(),
        "note" | "theme" | "position" | "last_seq" => prop_oneof![
            3 => (0u64..10).prop_map(Value::from),
            1 => number(),
            1 => Just(Value::Null),
        ]
        .boxed(),
        "op_id" => "[a-z0-9-]{1,8}|.{0,3}".prop_map(Value::from).boxed(),
        "token" => "[A-Za-z0-9_-]{14,20}".prop_map(Value::from).boxed(),
        "version" => prop_oneof![4 => Just(Value::from(1)), 1 => number()].boxed(),
        "writing" => prop::sample::select(vec!["open", "private", "Private", "closed"])
            .prop_map(Value::from)
            .boxed(),
        "on_end" => prop::sample::select(vec!["nothing", "lock", "Lock", "stop"])
            .prop_map(Value::from)
            .boxed(),
        "theming" => prop::sample::select(vec!["everyone", "facilitators", "nobody"])
            .prop_map(Value::from)
            .boxed(),
        "seconds" | "budget" => prop_oneof![
            3 => (0u64..400).prop_map(Value::from),
            1 => number(),
        ]
        .boxed(),
        "locked" | "show_tallies" | "quotable" => any::<bool>().prop_map(Value::from).boxed(),
        "facilitator" => {
            prop_oneof!["[0-9a-f]{48}".prop_map(Value::from), Just(Value::Null),].boxed()
        }
        _ => leaf().boxed(),
    };
    prop_oneof![6 => right, 1 => leaf()].boxed()
}

/// An object with these fields (each sometimes left out) and sometimes one more.
fn object(
    fixed: Vec<(&'static str, Value)>,
    fields: &'static [&'static str],
) -> BoxedStrategy<Value> {
    let values: Vec<BoxedStrategy<(bool, Value)>> = fields
        .iter()
        .map(|f| (prop::bool::weighted(0.95), field(f)).boxed())
        .collect();
    (values, prop::option::weighted(0.1, (key(), leaf())))
        .prop_map(move |(values, extra)| {
            let mut m: Map<String, Value> = fixed
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            for (f, (keep, v)) in fields.iter().zip(values) {
                if keep {
                    m.insert((*f).to_owned(), v);
                }
            }
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

/// The fields of each operation, as `docs/protocol.md` lists them.
const OPS: &[(&str, &[&str])] = &[
    ("create_note", &["text", "colour", "x", "y"]),
    ("edit_note", &["note", "text"]),
    ("recolour_note", &["note", "colour"]),
    ("move_note", &["note", "x", "y"]),
    ("delete_note", &["note"]),
    ("create_theme", &["title"]),
    ("rename_theme", &["theme", "title"]),
    ("delete_theme", &["theme"]),
    ("set_note_theme", &["note", "theme", "position"]),
    ("vote", &["note"]),
    ("unvote", &["note"]),
    ("set_quotable", &["note", "quotable"]),
    ("set_writing", &["writing"]),
    ("start_timer", &["seconds", "on_end"]),
    ("stop_timer", &[]),
    ("set_locked", &["locked"]),
    ("open_voting", &["budget", "show_tallies"]),
    ("close_voting", &[]),
    ("set_theming", &["theming"]),
    ("spotlight", &["note"]),
    ("hide_note", &["note", "reason"]),
    ("unhide_note", &["note"]),
    ("remove_note", &["note", "reason"]),
    ("proxy_note", &["text", "colour", "x", "y"]),
    ("proxy_vote", &["note"]),
    ("timer_ended", &[]),
];

/// A message-shaped object: the protocol's messages and operations with values usually of the
/// right kind, sometimes wrong, a field sometimes missing or extra. Many of them decode, so the
/// paths after a successful parse are reached too.
fn message() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(OPS)
        .prop_flat_map(|(kind, fields)| object(vec![("kind", kind.into())], fields));
    let op_message = (
        prop_oneof![5 => op, 1 => value()],
        field("op_id"),
        prop::option::weighted(0.1, (key(), leaf())),
    )
        .prop_map(|(op, op_id, extra)| {
            let mut m = Map::new();
            m.insert("type".into(), "op".into());
            m.insert("op_id".into(), op_id);
            m.insert("op".into(), op);
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        });
    prop_oneof![
        4 => op_message,
        1 => object(
            vec![("type", "join".into())],
            &["version", "token", "last_seq", "name", "facilitator"],
        ),
        1 => object(vec![("type", "ping".into())], &[]),
    ]
}

#[test]
fn decoding_structured_json_never_panics() {
    let mut runner = TestRunner::new(config());
    let decoded = std::cell::Cell::new(0u32);
    let total = std::cell::Cell::new(0u32);
    let strategy = prop_oneof![3 => message(), 1 => value()];
    runner
        .run(&strategy, |v| {
            total.set(total.get() + 1);
            if decode_and_round_trip(&v.to_string())? {
                decoded.set(decoded.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    println!(
        "structured JSON: {} of {} decoded as messages",
        decoded.get(),
        total.get()
    );
    // Enough valid messages that the paths after a successful parse are exercised too.
    assert!(decoded.get() * 50 >= total.get(), "too few valid messages");
}

#[test]
fn decoded_ops_from_generated_messages_include_every_kind() {
    // A coverage check of the generator above, so the fuzz keeps reaching every operation.
    // Seeded, so that it never fails by bad luck.
    let mut runner = TestRunner::new_with_rng(
        ProptestConfig {
            cases: 2000,
            ..config()
        },
        TestRng::deterministic_rng(RngAlgorithm::XorShift),
    );
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    runner
        .run(&message(), |v| {
            if let Ok(ClientMessage::Op(m)) = decode_client_message(&v.to_string()) {
                let kind = serde_json::to_value(&m.op).unwrap()["kind"].clone();
                seen.borrow_mut()
                    .insert(kind.as_str().unwrap_or_default().to_owned());
            }
            Ok(())
        })
        .unwrap();
    // Every kind of operation: `OPS` names them all (26 today).
    assert_eq!(OPS.len(), 26);
    assert_eq!(
        seen.borrow().len(),
        OPS.len(),
        "the generator reached only {:?}",
        seen.borrow()
    );
}

// ---------------------------------------------------------------------------------------------
// Board::apply with arbitrary field values
// ---------------------------------------------------------------------------------------------

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => any::<f64>(),
        6 => 0.0f64..=2000.0,
        1 => prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            2000.0,
            3000.0,
            1e308,
            -1e-308,
            f64::MIN_POSITIVE,
            5e-324,
        ]),
    ]
}

fn any_id() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..8, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z][a-z ]{0,12}",
        2 => any::<String>(),
        1 => prop::collection::vec(prop::char::range('\u{0}', '\u{a0}'), 0..20)
            .prop_map(|c| c.into_iter().collect()),
        1 => "[ \t\n\u{85}\u{a0}\u{2028}\u{3000}]{0,4}",
        1 => "a{75,85}|b{495,505}|😀{75,85}",
        1 => prop::sample::select(WORDS).prop_map(str::to_owned),
    ]
}

fn any_create() -> impl Strategy<Value = CreateNote> {
    let colour = prop::sample::select(Colour::ALL.to_vec());
    (any_text(), colour, any_f64(), any_f64()).prop_map(|(text, colour, x, y)| CreateNote {
        text,
        colour,
        x,
        y,
    })
}

fn any_count() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..=5,
        1 => 95u32..=105,
        1 => 21_590u32..=21_610,
        1 => any::<u32>(),
        1 => Just(u32::MAX),
    ]
}

/// Every kind of operation, with arbitrary values.
fn any_op() -> impl Strategy<Value = Op> {
    let colour = prop::sample::select(Colour::ALL.to_vec());
    let note_ref = || any_id().prop_map(|note| NoteRef { note });
    prop_oneof![
        3 => any_create().prop_map(Op::CreateNote).boxed(),
        1 => (any_id(), any_text()).prop_map(|(note, text)| Op::EditNote(EditNote { note, text })).boxed(),
        1 => (any_id(), colour)
            .prop_map(|(note, colour)| Op::RecolourNote(RecolourNote { note, colour })).boxed(),
        1 => (any_id(), any_f64(), any_f64())
            .prop_map(|(note, x, y)| Op::MoveNote(MoveNote { note, x, y })).boxed(),
        1 => any_id().prop_map(|note| Op::DeleteNote(DeleteNote { note })).boxed(),
        1 => any_text().prop_map(|title| Op::CreateTheme(CreateTheme { title })).boxed(),
        1 => (any_id(), any_text())
            .prop_map(|(theme, title)| Op::RenameTheme(RenameTheme { theme, title })).boxed(),
        1 => any_id().prop_map(|theme| Op::DeleteTheme(DeleteTheme { theme })).boxed(),
        1 => (
            any_id(),
            prop::option::of(any_id()),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(note, theme, position)| Op::SetNoteTheme(SetNoteTheme {
                note,
                theme,
                position
            })).boxed(),
        2 => note_ref().prop_map(Op::Vote).boxed(),
        1 => note_ref().prop_map(Op::Unvote).boxed(),
        1 => (any_id(), any::<bool>())
            .prop_map(|(note, quotable)| Op::SetQuotable(SetQuotable { note, quotable })).boxed(),
        1 => prop::sample::select(vec![Writing::Open, Writing::Private])
            .prop_map(|writing| Op::SetWriting(SetWriting { writing })).boxed(),
        1 => (any_count(), prop::sample::select(vec![OnEnd::Nothing, OnEnd::Lock]))
            .prop_map(|(seconds, on_end)| Op::StartTimer(StartTimer { seconds, on_end })).boxed(),
        1 => Just(Op::StopTimer(NoFields {})).boxed(),
        1 => any::<bool>().prop_map(|locked| Op::SetLocked(SetLocked { locked })).boxed(),
        1 => (any_count(), any::<bool>())
            .prop_map(|(budget, show_tallies)| Op::OpenVoting(OpenVoting { budget, show_tallies }))
            .boxed(),
        1 => Just(Op::CloseVoting(NoFields {})).boxed(),
        1 => prop::sample::select(vec![Theming::Everyone, Theming::Facilitators])
            .prop_map(|theming| Op::SetTheming(SetTheming { theming })).boxed(),
        1 => prop::option::of(any_id()).prop_map(|note| Op::Spotlight(Spotlight { note })).boxed(),
        1 => (any_id(), any_text())
            .prop_map(|(note, reason)| Op::HideNote(Moderate { note, reason })).boxed(),
        1 => note_ref().prop_map(Op::UnhideNote).boxed(),
        1 => (any_id(), any_text())
            .prop_map(|(note, reason)| Op::RemoveNote(Moderate { note, reason })).boxed(),
        1 => any_create().prop_map(Op::ProxyNote).boxed(),
        1 => note_ref().prop_map(Op::ProxyVote).boxed(),
        1 => Just(Op::TimerEnded(NoFields {})).boxed(),
    ]
}

/// Who asks: one of three people, or no one (a replay without an actor), with a display name
/// that passed the join checks, in any role.
fn any_ctx() -> impl Strategy<Value = OpContext> {
    (
        prop::option::of(prop::sample::select(vec!["ailsa", "ben", "cat"])),
        // A display name is checked when its owner joins (connection.rs); `apply` trusts it.
        prop::option::of("[A-Z][a-z]{0,12}|Ｆａ\u{200b}|😀{1,40}"),
        any::<u64>(),
        prop::sample::select(vec![
            Role::Participant,
            Role::Participant,
            Role::Facilitator,
            Role::System,
        ]),
    )
        .prop_map(|(actor, author, at, role)| OpContext {
            actor: actor.map(ActorKey::new),
            author,
            at,
            role,
        })
}

fn small_limits() -> Limits {
    Limits {
        notes_per_room: 6,
        themes_per_room: 3,
        ..Limits::default()
    }
}

/// Each case is a whole sequence of operations, so fewer of them.
fn sequence_config() -> ProptestConfig {
    let c = config();
    ProptestConfig {
        cases: (c.cases / 6).max(1),
        ..c
    }
}

/// Everything the server computes from a board for the people in a room: every view, who is
/// told of `op`, and the author name it carries. None of it may panic.
fn look(board: &Board, op: &Op, ctx: &OpContext) {
    let keys = ["ailsa", "ben", "cat"].map(ActorKey::new);
    let mut viewers = vec![Viewer::Facilitator, Viewer::Anyone];
    viewers.extend(keys.iter().map(Viewer::Participant));
    for viewer in viewers {
        std::hint::black_box(board.view(viewer));
    }
    for key in &keys {
        std::hint::black_box((board.notes_owned_by(key), board.votes_of(key)));
    }
    std::hint::black_box((board.delivery(op, ctx), board.shown_author(op, ctx)));
}

#[test]
fn apply_never_panics_keeps_invariants_and_refuses_cleanly() {
    let mut runner = TestRunner::new(sequence_config());
    let (applied, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let strategy = (
        prop::collection::vec((any_op(), any_ctx()), 1..30),
        any::<bool>(),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(steps, small, anonymous)| {
            let limits = if small {
                small_limits()
            } else {
                Limits::default()
            };
            let mut board = Board::for_room("Table 3", "What went well?", anonymous);
            for (op, ctx) in &steps {
                let before = board.clone();
                look(&board, op, ctx);
                match board.apply(op, ctx, &limits) {
                    Ok(done) => {
                        applied.set(applied.get() + 1);
                        if let Err(e) = board.check_invariants(&limits) {
                            return Err(TestCaseError::fail(format!(
                                "{op:?} broke the board: {e}"
                            )));
                        }
                        let creates = matches!(
                            op,
                            Op::CreateNote(_) | Op::ProxyNote(_) | Op::CreateTheme(_)
                        );
                        prop_assert_eq!(done.created.is_some(), creates);
                        // What is saved reads back as the same board.
                        let json = serde_json::to_string(&board).expect("a board serialises");
                        let back: Board = serde_json::from_str(&json)
                            .map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
                        prop_assert_eq!(&back, &board, "read back from {}", json);
                    }
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        prop_assert_eq!(
                            &board,
                            &before,
                            "{:?} was refused ({}) but changed the board",
                            op,
                            e
                        );
                        prop_assert!(!e.message.is_empty());
                    }
                }
                // Replay (journal recovery, browsers) of the same op on the old board never
                // panics, and changes nothing when it refuses.
                let mut replayed = before.clone();
                if replay_refused(&mut replayed, op, ctx) {
                    prop_assert_eq!(&replayed, &before);
                }
            }
            Ok(())
        })
        .unwrap();
    let (a, r) = (applied.get(), refused.get());
    println!("Board::apply: {a} operations applied, {r} refused");
    // Both paths are exercised in earnest.
    assert!(
        a * 10 >= a + r && r * 10 >= a + r,
        "{a} applied, {r} refused"
    );
}

fn replay_refused(board: &mut Board, op: &Op, ctx: &OpContext) -> bool {
    board.replay(op, ctx).is_err()
}

/// A board with some of everything on it, built by a facilitated session.
fn busy_board() -> Board {
    let limits = Limits::default();
    let mut b = Board::for_room("Table 3", "What went well?", false);
    let who = |actor: &str, role| OpContext {
        actor: Some(ActorKey::new(actor)),
        author: Some("Ailsa".into()),
        at: 1_767_225_600_000,
        role,
    };
    let (p, f) = (Role::Participant, Role::Facilitator);
    let note = |text: &str| {
        Op::CreateNote(CreateNote {
            text: text.into(),
            colour: Colour::Blue,
            x: 10.0,
            y: 20.0,
        })
    };
    let steps = [
        (who("ailsa", p), note("One")),
        (who("ben", p), note("Two")),
        (
            who("ailsa", p),
            Op::SetQuotable(SetQuotable {
                note: 1,
                quotable: true,
            }),
        ),
        (
            who("ailsa", p),
            Op::CreateTheme(CreateTheme { title: "T".into() }),
        ),
        (
            who("ailsa", p),
            Op::SetNoteTheme(SetNoteTheme {
                note: 1,
                theme: Some(1),
                position: None,
            }),
        ),
        (
            who("fran", f),
            Op::SetWriting(SetWriting {
                writing: Writing::Private,
            }),
        ),
        (who("ben", p), note("Three")),
        (
            who("fran", f),
            Op::OpenVoting(OpenVoting {
                budget: 3,
                show_tallies: false,
            }),
        ),
        (who("ailsa", p), Op::Vote(NoteRef { note: 2 })),
        (who("fran", f), Op::ProxyVote(NoteRef { note: 1 })),
        (
            who("fran", f),
            Op::HideNote(Moderate {
                note: 2,
                reason: "Why".into(),
            }),
        ),
        (
            who("fran", f),
            Op::StartTimer(StartTimer {
                seconds: 60,
                on_end: OnEnd::Lock,
            }),
        ),
        (who("fran", f), Op::Spotlight(Spotlight { note: Some(1) })),
    ];
    for (ctx, op) in steps {
        b.apply(&op, &ctx, &limits).expect("a valid session");
    }
    b
}

/// Each object and array of `v`, with the path to it.
fn places(v: &Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(path.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = path.clone();
                p.push(k.clone());
                places(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                places(x, p, out);
            }
        }
        _ => {}
    }
}

fn at_path<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().expect("an index")],
        _ => &mut v[k.as_str()],
    })
}

/// A hand-edited or damaged snapshot is either refused when read (by serde or by
/// `check_invariants`) or is a board every operation can be applied to without a panic.
#[test]
fn a_damaged_snapshot_is_refused_or_safe_to_use() {
    let original = serde_json::to_value(busy_board()).expect("serialises");
    let mut paths = Vec::new();
    places(&original, Vec::new(), &mut paths);
    let mut runner = TestRunner::new(sequence_config());
    let (kept, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let strategy = (
        prop::sample::select(paths),
        prop_oneof![3 => leaf(), 1 => value()],
        prop::collection::vec((any_op(), any_ctx()), 1..10),
    );
    runner
        .run(&strategy, |(path, replacement, ops)| {
            let mut damaged = original.clone();
            *at_path(&mut damaged, &path) = replacement;
            let limits = Limits::default();
            let Ok(mut board) = serde_json::from_value::<Board>(damaged) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            if board.check_invariants(&limits).is_err() {
                refused.set(refused.get() + 1);
                return Ok(());
            }
            kept.set(kept.get() + 1);
            for (op, ctx) in &ops {
                look(&board, op, ctx);
                if board.apply(op, ctx, &limits).is_ok() {
                    prop_assert!(
                        board.check_invariants(&limits).is_ok(),
                        "{:?} broke a board that passed the checks",
                        op
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    let (k, r) = (kept.get(), refused.get());
    println!("damaged snapshots: {k} read and used, {r} refused");
    assert!(k > 0 && r > 0, "{k} kept, {r} refused");
}

/// Regression: a snapshot whose next ids were `u64::MAX` used to pass `check_invariants`, and the
/// next create overflowed (a panic in a debug build, a wrap to 0 in release). Ids now stay below
/// 2^53 (what a browser holds exactly): such a board is refused, and a create at the last id is
/// rejected rather than wrapping.
#[test]
fn a_board_at_the_last_id_refuses_instead_of_overflowing() {
    let limits = Limits::default();
    let mut board = Board::new("p");
    board.next_note_id = u64::MAX;
    board.next_theme_id = u64::MAX;
    let ctx = OpContext {
        actor: None,
        author: None,
        at: 1,
        role: Role::Participant,
    };
    let created = std::panic::catch_unwind(move || {
        let valid = board.check_invariants(&limits).is_ok();
        let op = Op::CreateNote(CreateNote {
            text: "a".into(),
            colour: Colour::Blue,
            x: 1.0,
            y: 1.0,
        });
        let result = board.apply(&op, &ctx, &limits);
        (
            valid,
            result.is_ok(),
            board.check_invariants(&limits).is_ok(),
        )
    });
    match created {
        Err(_) => panic!("creating a note on a board at the last id panicked"),
        Ok((true, true, false)) => panic!("the created note broke the board's invariants"),
        Ok(_) => {}
    }
}

/// An event of two busy rooms, with a cross-room theme, as the server exports it.
fn busy_event() -> EventSnapshot {
    let board = busy_board();
    let mut pseudonyms = Pseudonyms::default();
    EventSnapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: SNAPSHOT_VERSION,
        exported_at: 1_767_229_200_000,
        event: EventInfo {
            id: "yk3nn2thaz".into(),
            title: "Town plan".into(),
            anonymous: false,
            created_at: 1_767_139_200_000,
            retention_days: 90,
        },
        rooms: ["hs7kq2mxwp", "tr4pq9vbnc"]
            .iter()
            .map(|id| RoomExport::from_board(id, "K7R-M4X", 12, &board, &mut pseudonyms))
            .collect(),
        synthesis: vec![CrossTheme {
            id: 1,
            title: "Getting around".into(),
            notes: vec![RoomNote {
                room: "tr4pq9vbnc".into(),
                note: 1,
            }],
        }],
    }
}

/// A damaged event snapshot (a restore file edited by hand, or by someone hostile): a field
/// replaced by any JSON value. `EventSnapshot::check` never panics; a snapshot it accepts
/// survives a JSON round trip, and each of its rooms restores to a board that takes any
/// operation without a panic or a broken invariant.
#[test]
fn a_damaged_event_snapshot_is_refused_or_safe_to_restore() {
    let original = serde_json::to_value(busy_event()).expect("serialises");
    assert_eq!(busy_event().check(&Limits::default()), Ok(()));
    let mut paths = Vec::new();
    places(&original, Vec::new(), &mut paths);
    let mut runner = TestRunner::new(sequence_config());
    let (kept, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let strategy = (
        prop::sample::select(paths),
        prop_oneof![3 => leaf(), 1 => value()],
        prop::collection::vec((any_op(), any_ctx()), 1..6),
    );
    runner
        .run(&strategy, |(path, replacement, ops)| {
            let mut damaged = original.clone();
            *at_path(&mut damaged, &path) = replacement;
            let limits = Limits::default();
            let Ok(snapshot) = serde_json::from_value::<EventSnapshot>(damaged) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            if let Err(message) = snapshot.check(&limits) {
                prop_assert!(!message.is_empty() && message.len() < 400, "{}", message);
                refused.set(refused.get() + 1);
                return Ok(());
            }
            kept.set(kept.get() + 1);
            let text = serde_json::to_string(&snapshot).expect("serialises");
            let back: EventSnapshot = serde_json::from_str(&text).expect("reads back");
            prop_assert_eq!(&back, &snapshot);
            for room in &snapshot.rooms {
                let mut board = room.to_board();
                prop_assert!(board.check_invariants(&limits).is_ok());
                for (op, ctx) in &ops {
                    look(&board, op, ctx);
                    if board.apply(op, ctx, &limits).is_ok() {
                        prop_assert!(
                            board.check_invariants(&limits).is_ok(),
                            "{:?} broke a restored board",
                            op
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let (k, r) = (kept.get(), refused.get());
    println!("damaged event snapshots: {k} restored and used, {r} refused");
    assert!(k > 0 && r > 0, "{k} kept, {r} refused");
}
