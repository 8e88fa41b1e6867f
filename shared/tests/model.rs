//! Property tests of [`Board::apply`] against a reference model.
//!
//! The model is written from the rules (the doc comments in `op.rs`, `board.rs`, `text.rs` and
//! `limits.rs`), not from `board.rs`'s code: notes live in a `Vec` in creation order, themes in a
//! `Vec`, and theme membership is kept *only* in each theme's list, so a note's theme is found by
//! searching the lists. Random sequences of every kind of operation from a few actors, with ids,
//! texts and coordinates that are often wrong, are applied to both, and after every operation
//! the verdicts and the boards must agree.
//!
//! Three properties:
//! 1. `apply` agrees with the model, changes nothing when it refuses, and keeps the invariants.
//! 2. Replaying every accepted operation on a fresh board gives the identical board (journal
//!    recovery and browsers do this).
//! 3. The resulting board, and every accepted operation, survive a JSON round trip exactly.
//!
//! When several things are wrong with one operation, the rules do not say which reason wins, so
//! the model fixes the order the server reports today (see `Model::apply`).

use bothy_shared::op::{
    CreateNote, CreateTheme, DeleteNote, DeleteTheme, EditNote, MoveNote, RecolourNote,
    RenameTheme, SetNoteTheme,
};
use bothy_shared::{ActorKey, Board, Colour, Limits, NoteId, Op, OpContext, RejectReason, ThemeId};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;

const PROMPT: &str = "What went well?";
const WIDTH: f64 = 100.0;
/// Not square, so a rule that mixes up x and y is caught.
const HEIGHT: f64 = 60.0;

/// Small caps so that sequences of a few dozen operations reach them.
fn limits() -> Limits {
    Limits {
        note_text_chars: 20,
        theme_title_chars: 12,
        display_name_chars: 10,
        prompt_chars: 300,
        notes_per_room: 8,
        themes_per_room: 3,
        board_width: WIDTH,
        board_height: HEIGHT,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        // Failures are reported, not written into the source tree.
        failure_persistence: None,
        // Much faster than the default ChaCha in a debug build, and random enough here.
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ModelNote {
    id: NoteId,
    text: String,
    colour: Colour,
    x: f64,
    y: f64,
    owner: Option<String>,
    author: Option<String>,
    created_at: u64,
}

#[derive(Debug, Clone)]
struct ModelTheme {
    id: ThemeId,
    title: String,
    notes: Vec<NoteId>,
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// Live notes, oldest first (ids only grow, so this is also id order).
    notes: Vec<ModelNote>,
    /// Live themes, oldest first.
    themes: Vec<ModelTheme>,
    /// How many notes were ever created: ids are 1, 2, 3, … and never reused.
    notes_made: u64,
    themes_made: u64,
}

/// Who asks: an actor key (or none), the display name shown on notes it writes, and the time.
#[derive(Debug, Clone)]
struct Who {
    actor: Option<&'static str>,
}

impl Who {
    fn ctx(&self, at: u64) -> OpContext {
        OpContext {
            actor: self.actor.map(ActorKey::new),
            author: self.actor.map(|a| format!("Person {a}")),
            at,
        }
    }
}

/// A C0 or C1 control character, or DEL.
fn is_control(c: char) -> bool {
    c <= '\u{1f}' || ('\u{7f}'..='\u{9f}').contains(&c)
}

/// The text rule: not blank, at most `max` Unicode scalar values, no control characters (new
/// lines and tabs allowed in multi-line text), checked in that order.
fn check_text(s: &str, max: usize, multiline: bool) -> Result<(), RejectReason> {
    if s.chars().all(char::is_whitespace) {
        return Err(RejectReason::TextEmpty);
    }
    if s.chars().count() > max {
        return Err(RejectReason::TextTooLong);
    }
    for c in s.chars() {
        let allowed = multiline && (c == '\n' || c == '\t');
        if is_control(c) && !allowed {
            return Err(RejectReason::TextControlCharacters);
        }
    }
    Ok(())
}

/// The bounds rule: 0 ≤ x ≤ width and 0 ≤ y ≤ height (NaN fails every comparison).
fn check_position(x: f64, y: f64, limits: &Limits) -> Result<(), RejectReason> {
    let inside = x >= 0.0 && x <= limits.board_width && y >= 0.0 && y <= limits.board_height;
    if inside {
        Ok(())
    } else {
        Err(RejectReason::OutOfBounds)
    }
}

impl Model {
    fn note_index(&self, id: NoteId) -> Result<usize, RejectReason> {
        for (i, n) in self.notes.iter().enumerate() {
            if n.id == id {
                return Ok(i);
            }
        }
        Err(RejectReason::NotFound)
    }

    fn theme_index(&self, id: ThemeId) -> Result<usize, RejectReason> {
        for (i, t) in self.themes.iter().enumerate() {
            if t.id == id {
                return Ok(i);
            }
        }
        Err(RejectReason::NotFound)
    }

    /// The note must exist, and the actor must be its owner (a note without an owner may be
    /// changed by anyone).
    fn own_note(&self, id: NoteId, who: &Who) -> Result<usize, RejectReason> {
        let i = self.note_index(id)?;
        match &self.notes[i].owner {
            Some(owner) if Some(owner.as_str()) != who.actor => Err(RejectReason::NotYours),
            _ => Ok(i),
        }
    }

    fn live_ids(&self) -> (Vec<NoteId>, Vec<ThemeId>) {
        let notes = self.notes.iter().map(|n| n.id).collect();
        let themes = self.themes.iter().map(|t| t.id).collect();
        (notes, themes)
    }

    /// The theme a note is in, found by searching every theme's list.
    fn theme_of(&self, note: NoteId) -> Option<ThemeId> {
        let mut found = None;
        for t in &self.themes {
            if t.notes.contains(&note) {
                assert!(found.is_none(), "model bug: note {note} in two themes");
                found = Some(t.id);
            }
        }
        found
    }

    fn take_out_of_themes(&mut self, note: NoteId) {
        for t in &mut self.themes {
            t.notes.retain(|&n| n != note);
        }
    }

    /// Applies `op` by the rules; the id it created, or why it was refused (in which case
    /// nothing changed).
    ///
    /// Which reason wins when several apply (not stated by the rules; the server's order today):
    /// - create note: too many notes, then text, then bounds;
    /// - edit note: not found, then not yours, then text;
    /// - recolour / delete note: not found, then not yours;
    /// - move note (anyone may move any note): bounds, then not found;
    /// - create theme: too many themes, then title;
    /// - rename theme: title, then not found;
    /// - set note theme: the note not found, then the theme not found.
    fn apply(
        &mut self,
        op: &Op,
        who: &Who,
        at: u64,
        limits: &Limits,
    ) -> Result<Option<u64>, RejectReason> {
        match op {
            Op::CreateNote(o) => {
                if self.notes.len() >= limits.notes_per_room {
                    return Err(RejectReason::TooManyNotes);
                }
                check_text(&o.text, limits.note_text_chars, true)?;
                check_position(o.x, o.y, limits)?;
                self.notes_made += 1;
                let id = self.notes_made;
                self.notes.push(ModelNote {
                    id,
                    text: o.text.clone(),
                    colour: o.colour,
                    x: o.x,
                    y: o.y,
                    owner: who.actor.map(str::to_owned),
                    author: who.ctx(at).author,
                    created_at: at,
                });
                Ok(Some(id))
            }
            Op::EditNote(o) => {
                let i = self.own_note(o.note, who)?;
                check_text(&o.text, limits.note_text_chars, true)?;
                self.notes[i].text = o.text.clone();
                Ok(None)
            }
            Op::RecolourNote(o) => {
                let i = self.own_note(o.note, who)?;
                self.notes[i].colour = o.colour;
                Ok(None)
            }
            Op::MoveNote(o) => {
                check_position(o.x, o.y, limits)?;
                let i = self.note_index(o.note)?;
                self.notes[i].x = o.x;
                self.notes[i].y = o.y;
                Ok(None)
            }
            Op::DeleteNote(o) => {
                let i = self.own_note(o.note, who)?;
                self.notes.remove(i);
                self.take_out_of_themes(o.note);
                Ok(None)
            }
            Op::CreateTheme(o) => {
                if self.themes.len() >= limits.themes_per_room {
                    return Err(RejectReason::TooManyThemes);
                }
                check_text(&o.title, limits.theme_title_chars, false)?;
                self.themes_made += 1;
                let id = self.themes_made;
                self.themes.push(ModelTheme {
                    id,
                    title: o.title.clone(),
                    notes: Vec::new(),
                });
                Ok(Some(id))
            }
            Op::RenameTheme(o) => {
                check_text(&o.title, limits.theme_title_chars, false)?;
                let i = self.theme_index(o.theme)?;
                self.themes[i].title = o.title.clone();
                Ok(None)
            }
            Op::DeleteTheme(o) => {
                // Its notes become unthemed: membership lives only in the list we drop.
                let i = self.theme_index(o.theme)?;
                self.themes.remove(i);
                Ok(None)
            }
            Op::SetNoteTheme(o) => {
                self.note_index(o.note)?;
                let target = match o.theme {
                    Some(t) => Some(self.theme_index(t)?),
                    None => None,
                };
                self.take_out_of_themes(o.note);
                if let Some(i) = target {
                    let list = &mut self.themes[i].notes;
                    // 0 is first; past the end (or no position) means last.
                    let at = match o.position {
                        Some(p) if (p as usize) < list.len() => p as usize,
                        _ => list.len(),
                    };
                    list.insert(at, o.note);
                }
                Ok(None)
            }
        }
    }
}

/// Every field the model knows about must match the board's, note by note and theme by theme.
fn assert_matches(board: &Board, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(&board.prompt, PROMPT);
    prop_assert_eq!(board.next_note_id, model.notes_made + 1);
    prop_assert_eq!(board.next_theme_id, model.themes_made + 1);

    let board_notes: Vec<NoteId> = board.notes.keys().copied().collect();
    let model_notes: Vec<NoteId> = model.notes.iter().map(|n| n.id).collect();
    prop_assert_eq!(board_notes, model_notes, "note ids");
    for m in &model.notes {
        let n = &board.notes[&m.id];
        prop_assert_eq!(n.id, m.id);
        prop_assert_eq!(&n.text, &m.text, "text of note {}", m.id);
        prop_assert_eq!(n.colour, m.colour, "colour of note {}", m.id);
        // Bit for bit: the board keeps exactly the position it was given.
        prop_assert_eq!(n.x.to_bits(), m.x.to_bits(), "x of note {}", m.id);
        prop_assert_eq!(n.y.to_bits(), m.y.to_bits(), "y of note {}", m.id);
        prop_assert_eq!(
            n.owner.as_ref().map(ActorKey::as_str),
            m.owner.as_deref(),
            "owner of note {}",
            m.id
        );
        prop_assert_eq!(&n.author, &m.author, "author of note {}", m.id);
        prop_assert_eq!(n.created_at, m.created_at, "created_at of note {}", m.id);
        prop_assert_eq!(n.theme, model.theme_of(m.id), "theme of note {}", m.id);
    }

    let board_themes: Vec<ThemeId> = board.themes.keys().copied().collect();
    let model_themes: Vec<ThemeId> = model.themes.iter().map(|t| t.id).collect();
    prop_assert_eq!(board_themes, model_themes, "theme ids");
    for m in &model.themes {
        let t = &board.themes[&m.id];
        prop_assert_eq!(&t.title, &m.title, "title of theme {}", m.id);
        prop_assert_eq!(&t.notes, &m.notes, "notes of theme {}, in order", m.id);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        // Mostly one person, so that owners often change their own notes.
        6 => Just(Some("a")),
        2 => Just(Some("b")),
        2 => Just(Some("c")),
        // An anonymous actor: its notes have no owner.
        1 => Just(None),
    ]
    .prop_map(|actor| Who { actor })
}

/// Generated ids at or above this stand for "one of the live notes (or themes)": `LIVE + k` is
/// resolved, just before its step runs, to the k-th live id (counting round), so that sequences
/// name things that exist far more often than raw ids alone would. With nothing live it is left
/// as it is: an id that was never issued.
const LIVE: u64 = 1 << 62;

/// The operation with every `LIVE + k` id replaced by a live one.
fn resolve(op: &Op, notes: &[NoteId], themes: &[ThemeId]) -> Op {
    let pick = |id: u64, live: &[u64]| match (id.checked_sub(LIVE), live.len()) {
        (Some(k), n) if k < 64 && n > 0 => live[k as usize % n],
        _ => id,
    };
    let mut op = op.clone();
    match &mut op {
        Op::CreateNote(_) | Op::CreateTheme(_) => {}
        Op::EditNote(o) => o.note = pick(o.note, notes),
        Op::RecolourNote(o) => o.note = pick(o.note, notes),
        Op::MoveNote(o) => o.note = pick(o.note, notes),
        Op::DeleteNote(o) => o.note = pick(o.note, notes),
        Op::RenameTheme(o) => o.theme = pick(o.theme, themes),
        Op::DeleteTheme(o) => o.theme = pick(o.theme, themes),
        Op::SetNoteTheme(o) => {
            o.note = pick(o.note, notes);
            o.theme = o.theme.map(|t| pick(t, themes));
        }
    }
    op
}

/// Often a live note; otherwise a plausible id (which may be deleted or not yet issued), or one
/// that can never exist.
fn note_id() -> impl Strategy<Value = NoteId> {
    prop_oneof![
        12 => LIVE..LIVE + 8,
        4 => 1u64..=12,
        1 => Just(0u64),
        1 => 13u64..10_000,
        1 => Just(u64::MAX),
    ]
}

fn theme_id() -> impl Strategy<Value = ThemeId> {
    prop_oneof![
        12 => LIVE..LIVE + 4,
        3 => 1u64..=6,
        1 => Just(0u64),
        1 => 7u64..10_000,
        1 => Just(u64::MAX),
    ]
}

fn colour() -> impl Strategy<Value = Colour> {
    prop::sample::select(Colour::ALL.to_vec())
}

/// One coordinate on an axis running from 0 to `max`: mostly on the board, sometimes on an
/// edge, just off it, negative, huge, infinite, NaN or subnormal.
fn coord(max: f64) -> BoxedStrategy<f64> {
    prop_oneof![
        30 => 0.0..=max,
        6 => (0u32..=max as u32).prop_map(f64::from),
        1 => prop::sample::select(vec![
            0.0,
            -0.0,
            max,
            max + 1e-12,
            max + 1.0,
            99.999_999_999_999_99,
            -1e-300,
            5e-324,
            1e308,
            -1e308,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]),
        1 => -50.0f64..0.0,
        1 => max..2.0 * max,
        1 => prop::num::f64::ANY,
    ]
    .boxed()
}

/// Characters user text is made of: mostly letters and spaces, some multi-byte ones (up to four
/// bytes, so byte counts and character counts differ), new lines and tabs, some control
/// characters, and some that are neither (a line separator, a bidi override).
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        80 => proptest::char::range('a', 'z'),
        12 => Just(' '),
        3 => prop::sample::select(vec!['é', '中', '👍', '🏽', '𝄞', '\u{2028}', '\u{202e}']),
        2 => prop::sample::select(vec!['\n', '\t', '\u{3000}', '\u{a0}']),
        1 => prop::sample::select(vec!['\r', '\u{0}', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}']),
    ]
}

/// Text for a field that holds at most `max` characters: often fine, sometimes empty, blank,
/// exactly at the cap, just over it, or much too long.
fn text(max: usize) -> BoxedStrategy<String> {
    let whitespace = prop::sample::select(vec![' ', '\n', '\t', '\u{3000}', '\u{85}', '\u{a0}']);
    prop_oneof![
        1 => Just(String::new()),
        1 => prop::collection::vec(whitespace, 1..4).prop_map(|cs| cs.into_iter().collect()),
        30 => prop::collection::vec(text_char(), 1..=max).prop_map(|cs| cs.into_iter().collect()),
        1 => prop::collection::vec(text_char(), max + 1..=max + 4)
            .prop_map(|cs| cs.into_iter().collect()),
        // At the cap and one over, in four-byte characters: 4 × max bytes is still fine.
        1 => prop::sample::select(vec!["𝄞", "a", "é"]).prop_flat_map(move |c| {
            (max..=max + 1).prop_map(move |n| c.repeat(n))
        }),
        1 => Just("x".repeat(max * 50)),
    ]
    .boxed()
}

/// Every kind of operation. Each arm is boxed: the value trees stay small, which keeps a debug
/// build fast.
fn op() -> impl Strategy<Value = Op> {
    let l = limits();
    let (note_max, title_max) = (l.note_text_chars, l.theme_title_chars);
    prop_oneof![
        8 => (text(note_max), colour(), coord(WIDTH), coord(HEIGHT))
            .prop_map(|(text, colour, x, y)| Op::CreateNote(CreateNote { text, colour, x, y })).boxed(),
        2 => (note_id(), text(note_max))
            .prop_map(|(note, text)| Op::EditNote(EditNote { note, text })).boxed(),
        1 => (note_id(), colour())
            .prop_map(|(note, colour)| Op::RecolourNote(RecolourNote { note, colour })).boxed(),
        2 => (note_id(), coord(WIDTH), coord(HEIGHT))
            .prop_map(|(note, x, y)| Op::MoveNote(MoveNote { note, x, y })).boxed(),
        2 => note_id().prop_map(|note| Op::DeleteNote(DeleteNote { note })).boxed(),
        3 => text(title_max).prop_map(|title| Op::CreateTheme(CreateTheme { title })).boxed(),
        1 => (theme_id(), text(title_max))
            .prop_map(|(theme, title)| Op::RenameTheme(RenameTheme { theme, title })).boxed(),
        1 => theme_id().prop_map(|theme| Op::DeleteTheme(DeleteTheme { theme })).boxed(),
        6 => (
            note_id(),
            prop::option::weighted(0.85, theme_id()),
            prop::option::weighted(0.7, prop_oneof![4 => 0u32..=4, 1 => 5u32..100, 1 => Just(u32::MAX)]),
        )
            .prop_map(|(note, theme, position)| {
                Op::SetNoteTheme(SetNoteTheme { note, theme, position })
            })
            .boxed(),
    ]
}

fn steps() -> impl Strategy<Value = Vec<(Who, Op)>> {
    prop::collection::vec((who(), op()), 0..=60)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// The server clock for step `i`: distinct per step, so a timestamp taken from the wrong
/// operation shows.
fn at(i: usize) -> u64 {
    1_700_000_000_000 + i as u64
}

/// Applies every step with `apply`; the final board and the accepted operations with their
/// contexts, in order, with what each created.
fn run(steps: &[(Who, Op)]) -> (Board, Vec<(Op, OpContext, Option<u64>)>) {
    let limits = limits();
    let mut board = Board::new(PROMPT);
    let mut accepted = Vec::new();
    for (i, (who, op)) in steps.iter().enumerate() {
        let notes: Vec<NoteId> = board.notes.keys().copied().collect();
        let themes: Vec<ThemeId> = board.themes.keys().copied().collect();
        let op = resolve(op, &notes, &themes);
        let ctx = who.ctx(at(i));
        if let Ok(applied) = board.apply(&op, &ctx, &limits) {
            accepted.push((op, ctx, applied.created));
        }
    }
    (board, accepted)
}

proptest! {
    #![proptest_config(config())]

    /// `apply` agrees with the model on every verdict and every field, changes nothing when it
    /// refuses, and keeps the board's invariants after every operation.
    #[test]
    fn apply_agrees_with_the_model(steps in steps()) {
        let limits = limits();
        let mut board = Board::new(PROMPT);
        let mut model = Model::default();
        for (i, (who, op)) in steps.iter().enumerate() {
            let (notes, themes) = model.live_ids();
            let op = &resolve(op, &notes, &themes);
            let before = board.clone();
            let got = board.apply(op, &who.ctx(at(i)), &limits);
            let want = model.apply(op, who, at(i), &limits);
            match (&got, &want) {
                (Ok(applied), Ok(created)) => {
                    prop_assert_eq!(applied.created, *created, "step {}: {:?}", i, op);
                }
                (Err(e), Err(reason)) => {
                    prop_assert_eq!(e.reason, *reason, "step {}: {:?}", i, op);
                    prop_assert!(!e.message.is_empty());
                    prop_assert_eq!(&board, &before, "step {}: refused but changed", i);
                }
                _ => prop_assert!(
                    false,
                    "step {}: {:?} by {:?}: board said {:?}, model said {:?}",
                    i, op, who.actor, got, want
                ),
            }
            if let Err(e) = board.check_invariants(&limits) {
                prop_assert!(false, "step {}: {:?}: invariant broken: {}", i, op, e);
            }
            assert_matches(&board, &model)?;
        }
    }

    /// Replaying every accepted operation, with the same context, on a fresh board gives the
    /// same results and the identical board.
    #[test]
    fn replaying_accepted_operations_rebuilds_the_board(steps in steps()) {
        let (board, accepted) = run(&steps);
        let mut replayed = Board::new(PROMPT);
        for (i, (op, ctx, created)) in accepted.iter().enumerate() {
            match replayed.replay(op, ctx) {
                Ok(applied) => prop_assert_eq!(applied.created, *created, "replay {}", i),
                Err(e) => prop_assert!(false, "replay {}: {:?} refused: {}", i, op, e),
            }
        }
        prop_assert_eq!(&replayed, &board);
        prop_assert_eq!(
            serde_json::to_string(&replayed).unwrap(),
            serde_json::to_string(&board).unwrap()
        );
    }

    /// The board, and every accepted operation, read back from JSON exactly as written (this is
    /// what snapshots, the journal and the wire rely on).
    #[test]
    fn json_round_trip_is_exact(steps in steps()) {
        let (board, accepted) = run(&steps);
        let json = serde_json::to_string(&board).unwrap();
        let back: Board = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &board, "board from {}", json);
        for n in board.notes.values() {
            let m = &back.notes[&n.id];
            prop_assert_eq!((m.x.to_bits(), m.y.to_bits()), (n.x.to_bits(), n.y.to_bits()));
        }
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        prop_assert!(back.check_invariants(&limits()).is_ok());

        for (op, _, _) in &accepted {
            let json = serde_json::to_string(op).unwrap();
            let back: Op = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, op, "op from {}", json);
        }
    }
}

/// Regression: the round-trip property found that, without serde_json's `float_roundtrip`
/// feature, ordinary coordinates written in their shortest form were read back one step off
/// (99.99999999999999 came back as 100.0).
#[test]
fn note_position_survives_json_exactly() {
    let limits = limits();
    let mut board = Board::new(PROMPT);
    let op = Op::CreateNote(CreateNote {
        text: "hi".into(),
        colour: Colour::Blue,
        x: 99.999_999_999_999_99,
        y: 39.430_133_835_633_676,
    });
    board
        .apply(&op, &Who { actor: Some("a") }.ctx(1), &limits)
        .unwrap();
    let json = serde_json::to_string(&board).unwrap();
    let back: Board = serde_json::from_str(&json).unwrap();
    assert_eq!(back, board, "read back from {json}");
}

/// The interesting situations one step of a sequence is in, judged on the model before the
/// step, and how it ended.
fn situations(
    model: &Model,
    who: &Who,
    op: &Op,
    verdict: &Result<Option<u64>, RejectReason>,
) -> Vec<String> {
    let kind = format!("{op:?}");
    let kind = kind.split('(').next().unwrap_or_default();
    let mut out = vec![match verdict {
        Ok(_) => format!("accepted {kind}"),
        Err(r) => format!("refused {r:?}"),
    }];
    if verdict.is_err() {
        return out;
    }
    match op {
        Op::DeleteNote(o) if model.theme_of(o.note).is_some() => {
            out.push("deleted a note in a theme".into());
        }
        Op::DeleteTheme(o)
            if model
                .themes
                .iter()
                .any(|t| t.id == o.theme && !t.notes.is_empty()) =>
        {
            out.push("deleted a theme holding notes".into());
        }
        Op::SetNoteTheme(o) => {
            let from = model.theme_of(o.note);
            let to = o
                .theme
                .and_then(|t| model.themes.iter().find(|m| m.id == t));
            match (from, to) {
                (Some(_), None) => out.push("took a note out of its theme".into()),
                (Some(f), Some(t)) if f == t.id => out.push("moved a note within its theme".into()),
                (Some(_), Some(_)) => out.push("moved a note to another theme".into()),
                _ => {}
            }
            if let (Some(t), Some(p)) = (to, o.position)
                && p as usize >= t.notes.len()
                && !t.notes.is_empty()
            {
                out.push("put a note at or past the end of a theme".into());
            }
        }
        _ => {}
    }
    let target = match op {
        Op::EditNote(o) => Some(o.note),
        Op::RecolourNote(o) => Some(o.note),
        Op::MoveNote(o) => Some(o.note),
        _ => None,
    };
    let owner = target
        .and_then(|id| model.notes.iter().find(|n| n.id == id))
        .and_then(|n| n.owner.as_deref());
    if owner.is_some() && owner != who.actor {
        out.push(format!("accepted {kind} by someone else"));
    }
    out
}

/// The generators are not vacuous: across as many sequences as a property run sees, every kind
/// of operation is accepted, every reason `apply` can give is given, and the tricky situations
/// come up often enough to be tested.
#[test]
fn generators_reach_every_outcome() {
    let limits = limits();
    let mut runner =
        TestRunner::new_with_rng(config(), TestRng::deterministic_rng(RngAlgorithm::XorShift));
    let strategy = steps();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..config().cases {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let mut model = Model::default();
        for (i, (who, op)) in steps.iter().enumerate() {
            let (notes, themes) = model.live_ids();
            let op = &resolve(op, &notes, &themes);
            let before = model.clone();
            let verdict = model.apply(op, who, at(i), &limits);
            for s in situations(&before, who, op, &verdict) {
                *seen.entry(s).or_default() += 1;
            }
        }
    }
    eprintln!("{seen:#?}");
    let expected = [
        "accepted CreateNote",
        "accepted EditNote",
        "accepted RecolourNote",
        "accepted MoveNote",
        "accepted DeleteNote",
        "accepted CreateTheme",
        "accepted RenameTheme",
        "accepted DeleteTheme",
        "accepted SetNoteTheme",
        "accepted MoveNote by someone else",
        "refused TextEmpty",
        "refused TextTooLong",
        "refused TextControlCharacters",
        "refused OutOfBounds",
        "refused NotFound",
        "refused NotYours",
        "refused TooManyNotes",
        "refused TooManyThemes",
        "deleted a note in a theme",
        "deleted a theme holding notes",
        "took a note out of its theme",
        "moved a note within its theme",
        "moved a note to another theme",
        "put a note at or past the end of a theme",
    ];
    for s in expected {
        let n = seen.get(s).copied().unwrap_or(0);
        assert!(
            n >= 25,
            "{s}: only {n} times in {} sequences",
            config().cases
        );
    }
}
