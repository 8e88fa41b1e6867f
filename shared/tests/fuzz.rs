//! Fuzzing with property-based generated input (issue 6, QUALITY.md R10): message decoding and
//! [`Board::apply`] never panic, whatever arrives.
//!
//! - [`decode_client_message`] on arbitrary strings, on mutated copies of the literal examples
//!   from `docs/protocol.md` (bytes flipped, inserted, deleted, duplicated, cut), and on
//!   structured random JSON built from the protocol's own names. A message that decodes must
//!   survive a JSON round trip unchanged.
//! - [`Board::apply`] and [`Board::replay`] on operations with arbitrary field values (any `f64`
//!   including NaN and infinities, any `u64` id, any string including control characters), from
//!   several actors, on boards built by earlier random operations. On `Ok` the board's invariants
//!   hold; on `Err` the board is exactly as it was.
//!
//! The case count is bounded for `make test` (a few seconds in a debug build); `make fuzz` runs
//! the same properties with `PROPTEST_CASES=200000` in a release build.

use bothy_shared::op::{
    CreateNote, CreateTheme, DeleteNote, DeleteTheme, EditNote, MoveNote, RecolourNote,
    RenameTheme, SetNoteTheme,
};
use bothy_shared::protocol::{ClientMessage, decode_client_message};
use bothy_shared::{ActorKey, Board, Colour, Limits, Op, OpContext};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRunner};
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
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":null,"name":null}"#,
    r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":12,"name":"Ailsa"}"#,
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
    "type", "version", "token", "last_seq", "name", "op_id", "op", "kind", "text", "colour", "x",
    "y", "note", "theme", "title", "position", "room", "owner", "id", "seq",
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
    "hide_note",
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
        "text" | "title" | "name" => prop_oneof![
            "[a-zA-Z ]{1,20}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ]
        .boxed(),
        "colour" => prop::sample::select(WORDS).prop_map(Value::from).boxed(),
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
    ("hide_note", &["note"]),
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
        1 => object(vec![("type", "join".into())], &["version", "token", "last_seq", "name"]),
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
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 1000,
        ..config()
    });
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
    assert!(
        seen.borrow().len() >= 6,
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

fn any_op() -> impl Strategy<Value = Op> {
    let colour = prop::sample::select(Colour::ALL.to_vec());
    prop_oneof![
        (any_text(), colour.clone(), any_f64(), any_f64())
            .prop_map(|(text, colour, x, y)| Op::CreateNote(CreateNote { text, colour, x, y })),
        (any_id(), any_text()).prop_map(|(note, text)| Op::EditNote(EditNote { note, text })),
        (any_id(), colour)
            .prop_map(|(note, colour)| Op::RecolourNote(RecolourNote { note, colour })),
        (any_id(), any_f64(), any_f64()).prop_map(|(note, x, y)| Op::MoveNote(MoveNote {
            note,
            x,
            y
        })),
        any_id().prop_map(|note| Op::DeleteNote(DeleteNote { note })),
        any_text().prop_map(|title| Op::CreateTheme(CreateTheme { title })),
        (any_id(), any_text())
            .prop_map(|(theme, title)| Op::RenameTheme(RenameTheme { theme, title })),
        any_id().prop_map(|theme| Op::DeleteTheme(DeleteTheme { theme })),
        (
            any_id(),
            prop::option::of(any_id()),
            prop::option::of(any::<u32>())
        )
            .prop_map(|(note, theme, position)| Op::SetNoteTheme(SetNoteTheme {
                note,
                theme,
                position
            })),
    ]
}

/// Who asks: one of three people, or no one (a replay without an actor), with a display name
/// that passed the join checks.
fn any_ctx() -> impl Strategy<Value = OpContext> {
    (
        prop::option::of(prop::sample::select(vec!["ailsa", "ben", "cat"])),
        // A display name is checked when its owner joins (connection.rs); `apply` trusts it.
        prop::option::of("[A-Z][a-z]{0,12}|Ｆａ\u{200b}|😀{1,40}"),
        any::<u64>(),
    )
        .prop_map(|(actor, author, at)| OpContext {
            actor: actor.map(ActorKey::new),
            author,
            at,
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

#[test]
fn apply_never_panics_keeps_invariants_and_refuses_cleanly() {
    let mut runner = TestRunner::new(sequence_config());
    let (applied, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let strategy = (
        prop::collection::vec((any_op(), any_ctx()), 1..30),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(steps, small)| {
            let limits = if small {
                small_limits()
            } else {
                Limits::default()
            };
            let mut board = Board::new("What went well?");
            for (op, ctx) in &steps {
                let before = board.clone();
                match board.apply(op, ctx, &limits) {
                    Ok(done) => {
                        applied.set(applied.get() + 1);
                        if let Err(e) = board.check_invariants(&limits) {
                            return Err(TestCaseError::fail(format!(
                                "{op:?} broke the board: {e}"
                            )));
                        }
                        let creates = matches!(op, Op::CreateNote(_) | Op::CreateTheme(_));
                        prop_assert_eq!(done.created.is_some(), creates);
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
