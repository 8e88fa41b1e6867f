//! Property tests of [`Board::apply`], [`Board::view`] and [`Board::delivery`] against a
//! reference model.
//!
//! The model is written from the rules (the doc comments in `op.rs`, `board.rs`, `view.rs`,
//! `text.rs` and `limits.rs`), not from `board.rs`'s code: notes live in a `Vec` in creation
//! order, themes in a `Vec`, and theme membership is kept *only* in each theme's list, so a
//! note's theme is found by searching the lists. Random sequences of every kind of operation,
//! from participants, facilitators and the server itself, with ids, texts, numbers and
//! coordinates that are often wrong, are applied to both, and after every operation the
//! verdicts, the boards and what each person is shown must agree.
//!
//! The rules the model covers beyond notes and themes: who may ask for what (facilitator
//! operations, `timer_ended`, the lock, theming rights), private writing (who sees which note,
//! who may find it), dot voting (the budget, own dots only, tallies hidden while voting with
//! hidden tallies), moderation (placeholders, removal for good, the audit list), the spotlight,
//! the timer, proxy notes, anonymous rooms and consent to quote (the author's alone).
//!
//! Four properties:
//! 1. `apply` agrees with the model, changes nothing when it refuses, and keeps the invariants;
//!    every person's view is the one the model expects, and none carries an actor key.
//! 2. Whoever is not sent an operation (and gets no fresh board) sees no change, and whoever is
//!    sent one may see what it is about (checked within property 1, on every accepted step).
//! 3. Replaying every accepted operation on a fresh board gives the identical board (journal
//!    recovery and browsers do this).
//! 4. The resulting board, and every accepted operation, survive a JSON round trip exactly.
//!
//! When several things are wrong with one operation, the rules do not say which reason wins, so
//! the model fixes the order the server reports today (see `Model::apply`).

use bothy_shared::board::{AuditAction, AuditEntry, ModerationState, REASON_CHARS, Timer, Voting};
use bothy_shared::op::{
    CreateNote, CreateTheme, DeleteNote, DeleteTheme, EditNote, Moderate, MoveNote, NoFields,
    NoteRef, OnEnd, OpenVoting, RecolourNote, RenameTheme, SetLocked, SetNoteTheme, SetQuotable,
    SetTheming, SetWriting, Spotlight, StartTimer, Theming, Writing,
};
use bothy_shared::{
    ActorKey, Board, BoardView, Colour, Delivery, Limits, NoteId, NoteView, Op, OpContext,
    RejectReason, Role, RoomState, Theme, ThemeId, Viewer,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::sync::LazyLock;

const NAME: &str = "Table 3";
const PROMPT: &str = "What went well?";
const WIDTH: f64 = 100.0;
/// Not square, so a rule that mixes up x and y is caught.
const HEIGHT: f64 = 60.0;
/// Longest timer (6 hours) and most dots per person, from the doc comments in `op.rs`.
const MAX_TIMER_SECONDS: u32 = 6 * 60 * 60;
const MAX_BUDGET: u32 = 99;

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
    /// The actor who may change it (`None`: anyone, or for a proxy note, facilitators).
    owner: Option<String>,
    author: Option<String>,
    created_at: u64,
    updated_at: u64,
    /// Written during private writing and not revealed since.
    private: bool,
    /// Hidden or removed, and why.
    moderation: Option<(ModerationState, String)>,
    proxy: bool,
    /// Dots by voter (never a zero count).
    votes: BTreeMap<String, u32>,
    proxy_votes: u32,
    /// Its author agreed that it may be quoted.
    quotable: bool,
}

impl ModelNote {
    fn tally(&self) -> u32 {
        self.proxy_votes + self.votes.values().sum::<u32>()
    }
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
    anonymous: bool,
    private_writing: bool,
    locked: bool,
    /// Open voting: dots per person, and whether participants see the tallies.
    voting: Option<(u32, bool)>,
    only_facilitators_theme: bool,
    spotlight: Option<NoteId>,
    /// A running timer: when it ends, and whether it then locks the board.
    timer: Option<(u64, bool)>,
    audit: Vec<AuditEntry>,
}

/// Who asks: an actor (or none) and how they joined.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Who {
    actor: Option<&'static str>,
    role: Role,
}

/// The actor key of `a`: distinctive, so a view that carries one is caught.
fn actor_key(a: &str) -> ActorKey {
    ActorKey::new(format!("k3y-{a}"))
}

impl Who {
    /// The context the server gives: in an anonymous room it drops the display name itself.
    fn ctx(&self, at: u64, anonymous: bool) -> OpContext {
        OpContext {
            actor: self.actor.map(actor_key),
            author: self.author(anonymous),
            at,
            role: self.role,
        }
    }

    fn author(&self, anonymous: bool) -> Option<String> {
        match (self.actor, anonymous, self.role) {
            (Some(a), false, Role::Participant | Role::Facilitator) => Some(format!("Person {a}")),
            _ => None,
        }
    }

    fn key(&self) -> Option<String> {
        self.actor.map(|a| actor_key(a).as_str().to_owned())
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

/// Who is looking, in the model's terms.
#[derive(Debug, Clone, Copy)]
enum Looker {
    Facilitator,
    Participant(&'static str),
    Anyone,
}

impl Model {
    fn new(anonymous: bool) -> Self {
        Self {
            anonymous,
            ..Self::default()
        }
    }

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

    /// The note must exist and the asker must be allowed to know it does: someone else's
    /// private note is "not found" to a participant.
    fn visible(&self, id: NoteId, who: &Who) -> Result<usize, RejectReason> {
        let i = self.note_index(id)?;
        let n = &self.notes[i];
        if who.role == Role::Participant && n.private && n.owner != who.key() {
            return Err(RejectReason::NotFound);
        }
        Ok(i)
    }

    /// The note must be visible, and the asker must be its owner: a note without an owner may
    /// be changed by anyone, a proxy note by facilitators only.
    fn own_note(&self, id: NoteId, who: &Who) -> Result<usize, RejectReason> {
        let i = self.visible(id, who)?;
        let n = &self.notes[i];
        let allowed = if n.proxy {
            who.role == Role::Facilitator
        } else {
            n.owner.is_none() || n.owner == who.key()
        };
        if allowed {
            Ok(i)
        } else {
            Err(RejectReason::NotYours)
        }
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

    fn dots_used(&self, key: &str) -> u32 {
        self.notes
            .iter()
            .map(|n| n.votes.get(key).copied().unwrap_or(0))
            .sum()
    }

    /// Who may ask for this operation now.
    fn check_rights(&self, op: &Op, who: &Who) -> Result<(), RejectReason> {
        if matches!(op, Op::TimerEnded(_)) {
            // Only the server ends a timer.
            return if who.role == Role::System {
                Ok(())
            } else {
                Err(RejectReason::NotAllowed)
            };
        }
        if who.role != Role::Participant {
            return Ok(());
        }
        let facilitators_only = matches!(
            op,
            Op::SetWriting(_)
                | Op::StartTimer(_)
                | Op::StopTimer(_)
                | Op::SetLocked(_)
                | Op::OpenVoting(_)
                | Op::CloseVoting(_)
                | Op::SetTheming(_)
                | Op::Spotlight(_)
                | Op::HideNote(_)
                | Op::UnhideNote(_)
                | Op::RemoveNote(_)
                | Op::ProxyNote(_)
                | Op::ProxyVote(_)
        );
        if facilitators_only {
            return Err(RejectReason::FacilitatorOnly);
        }
        if self.locked {
            return Err(RejectReason::Locked);
        }
        let theming = matches!(
            op,
            Op::CreateTheme(_) | Op::RenameTheme(_) | Op::DeleteTheme(_) | Op::SetNoteTheme(_)
        );
        if theming && self.only_facilitators_theme {
            return Err(RejectReason::NotAllowed);
        }
        Ok(())
    }

    /// Applies `op` by the rules; the id it created, or why it was refused (in which case
    /// nothing changed).
    ///
    /// Rights come first: `timer_ended` from anyone but the server (not allowed), then for a
    /// participant a facilitator operation (facilitator only), the lock (locked) and theming
    /// kept to facilitators (not allowed). Then, which reason wins when several apply (not
    /// stated by the rules; the server's order today):
    /// - create note, proxy note: too many notes, then text, then bounds;
    /// - edit note: not found (or someone else's private note), then not yours, then text, then
    ///   moderated;
    /// - recolour / delete note: not found, then not yours;
    /// - set quotable: not found, then not yours;
    /// - move note (anyone may move any note they can see): not found, then bounds;
    /// - create theme: too many themes, then title;
    /// - rename theme: title, then not found;
    /// - set note theme: the note not found, then the theme not found;
    /// - vote, proxy vote: voting closed, then not found, then moderated, then no dots left;
    /// - unvote: voting closed, then not found, then no dot of one's own on the note;
    /// - start timer, open voting: out of range (invalid);
    /// - spotlight: not found, then private or moderated;
    /// - hide / remove: not found, then the reason, then already hidden or removed;
    /// - unhide: not found, then not hidden.
    fn apply(
        &mut self,
        op: &Op,
        who: &Who,
        at: u64,
        limits: &Limits,
    ) -> Result<Option<u64>, RejectReason> {
        self.check_rights(op, who)?;
        match op {
            Op::CreateNote(o) | Op::ProxyNote(o) => {
                let proxy = matches!(op, Op::ProxyNote(_));
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
                    owner: if proxy { None } else { who.key() },
                    // A proxy note was written down for someone else: no name.
                    author: if proxy {
                        None
                    } else {
                        who.author(self.anonymous)
                    },
                    created_at: at,
                    updated_at: at,
                    private: self.private_writing,
                    moderation: None,
                    proxy,
                    votes: BTreeMap::new(),
                    proxy_votes: 0,
                    quotable: false,
                });
                Ok(Some(id))
            }
            Op::EditNote(o) => {
                let i = self.own_note(o.note, who)?;
                check_text(&o.text, limits.note_text_chars, true)?;
                if self.notes[i].moderation.is_some() {
                    return Err(RejectReason::NotAllowed);
                }
                self.notes[i].text = o.text.clone();
                self.notes[i].updated_at = at;
                Ok(None)
            }
            Op::RecolourNote(o) => {
                let i = self.own_note(o.note, who)?;
                self.notes[i].colour = o.colour;
                self.notes[i].updated_at = at;
                Ok(None)
            }
            Op::SetQuotable(o) => {
                // Consent to quote is the author's alone: the asker must be the note's owner.
                // A proxy note, or a note written without a key, belongs to nobody, so nobody
                // can consent for it; a facilitator cannot consent for anyone.
                let i = self.visible(o.note, who)?;
                let owner = &self.notes[i].owner;
                if owner.is_none() || *owner != who.key() {
                    return Err(RejectReason::NotYours);
                }
                // Not an edit: `updated_at` stays.
                self.notes[i].quotable = o.quotable;
                Ok(None)
            }
            Op::MoveNote(o) => {
                let i = self.visible(o.note, who)?;
                check_position(o.x, o.y, limits)?;
                self.notes[i].x = o.x;
                self.notes[i].y = o.y;
                self.notes[i].updated_at = at;
                Ok(None)
            }
            Op::DeleteNote(o) => {
                let i = self.own_note(o.note, who)?;
                self.notes.remove(i);
                self.take_out_of_themes(o.note);
                if self.spotlight == Some(o.note) {
                    self.spotlight = None;
                }
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
                let n = self.visible(o.note, who)?;
                let target = match o.theme {
                    Some(t) => Some(self.theme_index(t)?),
                    None => None,
                };
                self.notes[n].updated_at = at;
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
            Op::Vote(o) | Op::ProxyVote(o) => {
                let (budget, _) = self.voting.ok_or(RejectReason::NotAllowed)?;
                let i = self.visible(o.note, who)?;
                if self.notes[i].moderation.is_some() {
                    return Err(RejectReason::NotAllowed);
                }
                if matches!(op, Op::ProxyVote(_)) {
                    // For someone without a device: no one's budget.
                    self.notes[i].proxy_votes += 1;
                } else if let Some(key) = who.key() {
                    if self.dots_used(&key) >= budget {
                        return Err(RejectReason::NoVotesLeft);
                    }
                    *self.notes[i].votes.entry(key).or_insert(0) += 1;
                }
                Ok(None)
            }
            Op::Unvote(o) => {
                self.voting.ok_or(RejectReason::NotAllowed)?;
                let i = self.visible(o.note, who)?;
                let key = who.key().ok_or(RejectReason::NotAllowed)?;
                let votes = &mut self.notes[i].votes;
                match votes.get_mut(&key) {
                    None => return Err(RejectReason::NotAllowed),
                    Some(1) => {
                        votes.remove(&key);
                    }
                    Some(v) => *v -= 1,
                }
                Ok(None)
            }
            Op::SetWriting(o) => {
                self.private_writing = o.writing == Writing::Private;
                if o.writing == Writing::Open {
                    for n in &mut self.notes {
                        n.private = false;
                    }
                }
                Ok(None)
            }
            Op::StartTimer(o) => {
                if o.seconds == 0 || o.seconds > MAX_TIMER_SECONDS {
                    return Err(RejectReason::Invalid);
                }
                self.timer = Some((at + u64::from(o.seconds) * 1000, o.on_end == OnEnd::Lock));
                Ok(None)
            }
            Op::StopTimer(_) => {
                self.timer = None;
                Ok(None)
            }
            Op::TimerEnded(_) => {
                if let Some((_, true)) = self.timer.take() {
                    self.locked = true;
                }
                Ok(None)
            }
            Op::SetLocked(o) => {
                self.locked = o.locked;
                Ok(None)
            }
            Op::OpenVoting(o) => {
                if o.budget == 0 || o.budget > MAX_BUDGET {
                    return Err(RejectReason::Invalid);
                }
                self.voting = Some((o.budget, o.show_tallies));
                Ok(None)
            }
            Op::CloseVoting(_) => {
                self.voting = None;
                Ok(None)
            }
            Op::SetTheming(o) => {
                self.only_facilitators_theme = o.theming == Theming::Facilitators;
                Ok(None)
            }
            Op::Spotlight(o) => {
                if let Some(id) = o.note {
                    let n = &self.notes[self.note_index(id)?];
                    // Only a note everyone can read.
                    if n.private || n.moderation.is_some() {
                        return Err(RejectReason::NotAllowed);
                    }
                }
                self.spotlight = o.note;
                Ok(None)
            }
            Op::HideNote(o) | Op::RemoveNote(o) => {
                let remove = matches!(op, Op::RemoveNote(_));
                let i = self.note_index(o.note)?;
                check_text(&o.reason, REASON_CHARS, false)?;
                match self.notes[i].moderation {
                    Some((ModerationState::Removed, _)) => return Err(RejectReason::NotAllowed),
                    Some(_) if !remove => return Err(RejectReason::NotAllowed),
                    _ => {}
                }
                let n = &mut self.notes[i];
                let (state, action) = if remove {
                    // The words, and the dots, are gone for good.
                    n.text.clear();
                    n.votes.clear();
                    n.proxy_votes = 0;
                    (ModerationState::Removed, AuditAction::Remove)
                } else {
                    (ModerationState::Hidden, AuditAction::Hide)
                };
                n.moderation = Some((state, o.reason.clone()));
                n.updated_at = at;
                if self.spotlight == Some(o.note) {
                    self.spotlight = None;
                }
                self.audit.push(AuditEntry {
                    at,
                    action,
                    note: o.note,
                    reason: Some(o.reason.clone()),
                    by: who.author(self.anonymous),
                });
                Ok(None)
            }
            Op::UnhideNote(o) => {
                let i = self.note_index(o.note)?;
                let n = &mut self.notes[i];
                if !matches!(n.moderation, Some((ModerationState::Hidden, _))) {
                    return Err(RejectReason::NotAllowed);
                }
                n.moderation = None;
                n.updated_at = at;
                self.audit.push(AuditEntry {
                    at,
                    action: AuditAction::Unhide,
                    note: o.note,
                    reason: None,
                    by: who.author(self.anonymous),
                });
                Ok(None)
            }
        }
    }

    fn state(&self) -> RoomState {
        RoomState {
            anonymous: self.anonymous,
            writing: if self.private_writing {
                Writing::Private
            } else {
                Writing::Open
            },
            locked: self.locked,
            voting: self.voting.map(|(budget, show_tallies)| Voting {
                budget,
                show_tallies,
            }),
            theming: if self.only_facilitators_theme {
                Theming::Facilitators
            } else {
                Theming::Everyone
            },
            spotlight: self.spotlight,
            timer: self.timer.map(|(ends_at, lock)| Timer {
                ends_at,
                on_end: if lock { OnEnd::Lock } else { OnEnd::Nothing },
            }),
        }
    }

    fn sees(&self, n: &ModelNote, looker: Looker) -> bool {
        match looker {
            Looker::Facilitator => true,
            // Their own notes, and every revealed one.
            Looker::Participant(a) => !n.private || n.owner == Some(actor_key(a).as_str().into()),
            Looker::Anyone => !n.private,
        }
    }

    /// The board as `looker` should be shown it: facilitators see everything but actor keys;
    /// participants see no one else's private note (not even its id in a theme), a moderated
    /// note as a placeholder with no words, author or reason, no tallies while voting with
    /// hidden tallies, and no audit list.
    fn view(&self, looker: Looker) -> BoardView {
        let facilitator = matches!(looker, Looker::Facilitator);
        let tallies = facilitator || self.voting.is_none_or(|(_, show)| show);
        let notes = self
            .notes
            .iter()
            .filter(|n| self.sees(n, looker))
            .map(|n| {
                let withheld = !facilitator && n.moderation.is_some();
                NoteView {
                    id: n.id,
                    text: if withheld {
                        String::new()
                    } else {
                        n.text.clone()
                    },
                    colour: n.colour,
                    x: n.x,
                    y: n.y,
                    author: if withheld { None } else { n.author.clone() },
                    created_at: n.created_at,
                    updated_at: n.updated_at,
                    theme: self.theme_of(n.id),
                    private: n.private,
                    moderation: n.moderation.as_ref().map(|m| m.0),
                    moderation_reason: n
                        .moderation
                        .as_ref()
                        .filter(|_| facilitator)
                        .map(|m| m.1.clone()),
                    proxy: n.proxy,
                    votes: tallies.then(|| n.tally()),
                    quotable: n.quotable,
                }
            })
            .collect();
        let themes = self
            .themes
            .iter()
            .map(|t| Theme {
                id: t.id,
                title: t.title.clone(),
                notes: t
                    .notes
                    .iter()
                    .copied()
                    .filter(|&id| {
                        self.notes
                            .iter()
                            .any(|n| n.id == id && self.sees(n, looker))
                    })
                    .collect(),
            })
            .collect();
        BoardView {
            name: NAME.into(),
            prompt: PROMPT.into(),
            notes,
            themes,
            state: self.state(),
            audit: if facilitator {
                self.audit.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// The people whose views are checked: the three participants who act, and one who never does.
const PARTICIPANTS: [&str; 4] = ["a", "b", "c", "z"];

/// Their actor keys, for the views to borrow.
static KEYS: LazyLock<Vec<ActorKey>> =
    LazyLock::new(|| PARTICIPANTS.iter().map(|a| actor_key(a)).collect());

/// Every kind of person who looks at the board.
fn lookers() -> Vec<(Looker, Viewer<'static>)> {
    let mut out = vec![
        (Looker::Facilitator, Viewer::Facilitator),
        (Looker::Anyone, Viewer::Anyone),
    ];
    for (a, k) in PARTICIPANTS.iter().zip(KEYS.iter()) {
        out.push((Looker::Participant(a), Viewer::Participant(k)));
    }
    out
}

/// Every field the model knows about must match the board's, note by note and theme by theme,
/// and every person must be shown what the model says they may see.
fn assert_matches(
    board: &Board,
    model: &Model,
    lookers: &[(Looker, Viewer<'static>)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&board.prompt, PROMPT);
    prop_assert_eq!(&board.name, NAME);
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
        prop_assert_eq!(n.updated_at, m.updated_at, "updated_at of note {}", m.id);
        prop_assert_eq!(n.theme, model.theme_of(m.id), "theme of note {}", m.id);
        prop_assert_eq!(n.private, m.private, "private of note {}", m.id);
        prop_assert_eq!(
            n.moderation.as_ref().map(|x| (x.action, x.reason.as_str())),
            m.moderation.as_ref().map(|x| (x.0, x.1.as_str())),
            "moderation of note {}",
            m.id
        );
        prop_assert_eq!(n.proxy, m.proxy, "proxy of note {}", m.id);
        let votes: BTreeMap<String, u32> = n
            .votes
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        prop_assert_eq!(&votes, &m.votes, "votes of note {}", m.id);
        prop_assert_eq!(n.proxy_votes, m.proxy_votes, "proxy votes of note {}", m.id);
        prop_assert_eq!(n.quotable, m.quotable, "quotable of note {}", m.id);
    }

    let board_themes: Vec<ThemeId> = board.themes.keys().copied().collect();
    let model_themes: Vec<ThemeId> = model.themes.iter().map(|t| t.id).collect();
    prop_assert_eq!(board_themes, model_themes, "theme ids");
    for m in &model.themes {
        let t = &board.themes[&m.id];
        prop_assert_eq!(&t.title, &m.title, "title of theme {}", m.id);
        prop_assert_eq!(&t.notes, &m.notes, "notes of theme {}, in order", m.id);
    }
    prop_assert_eq!(&board.state, &model.state(), "room state");
    prop_assert_eq!(&board.audit, &model.audit, "audit list");

    for (looker, viewer) in lookers {
        prop_assert_eq!(
            &board.view(*viewer),
            &model.view(*looker),
            "the view of {:?}",
            looker
        );
    }
    for a in PARTICIPANTS {
        let mine: Vec<NoteId> = model
            .notes
            .iter()
            .filter(|n| n.owner == Some(actor_key(a).as_str().into()))
            .map(|n| n.id)
            .collect();
        prop_assert_eq!(board.notes_owned_by(&actor_key(a)), mine, "notes of {}", a);
        let key = actor_key(a).as_str().to_owned();
        let dots: Vec<(NoteId, u32)> = model
            .notes
            .iter()
            .filter_map(|n| n.votes.get(&key).map(|&v| (n.id, v)))
            .collect();
        prop_assert_eq!(board.votes_of(&actor_key(a)), dots, "dots of {}", a);
    }
    Ok(())
}

/// Who is told about an accepted operation (property 2). `before` and `after` are the board
/// either side of it.
///
/// - A participant who is sent neither the `applied` nor a fresh board must see no change:
///   otherwise their board silently falls behind the server's.
/// - A participant who is sent the `applied` must be allowed to see what it is about: the note
///   it names (before it, or, for a new note, after it), and a dot only while they see the
///   tallies, unless it is their own.
/// - A moderation, whose reason participants may never see, is never sent to them.
fn check_delivery(
    before: &Board,
    after: &Board,
    op: &Op,
    ctx: &OpContext,
    created: Option<u64>,
    lookers: &[(Looker, Viewer<'static>)],
) -> Result<(), TestCaseError> {
    let delivery = before.delivery(op, ctx);
    for (looker, viewer) in lookers {
        let Viewer::Participant(key) = viewer else {
            continue;
        };
        let sent = match &delivery {
            Delivery::Everyone => true,
            Delivery::Restricted(people) => people.contains(key),
            Delivery::Resync => false,
        };
        if !sent {
            if delivery != Delivery::Resync {
                prop_assert_eq!(
                    before.view(*viewer),
                    after.view(*viewer),
                    "{:?} was not told of {:?} but their view changed",
                    looker,
                    op
                );
            }
            continue;
        }
        prop_assert!(
            !matches!(op, Op::HideNote(_) | Op::RemoveNote(_) | Op::UnhideNote(_)),
            "{:?} was sent a moderation: {:?}",
            looker,
            op
        );
        let named = op.note().and_then(|id| before.notes.get(&id));
        if let Some(n) = named {
            prop_assert!(
                before.sees(n, *viewer),
                "{:?} was told of {:?} on a note they cannot see",
                looker,
                op
            );
        }
        let new_note = created.filter(|_| matches!(op, Op::CreateNote(_) | Op::ProxyNote(_)));
        if let Some(n) = new_note.and_then(|id| after.notes.get(&id)) {
            prop_assert!(
                after.sees(n, *viewer),
                "{:?} was told of a note they cannot see: {:?}",
                looker,
                op
            );
        }
        let dot = matches!(op, Op::Vote(_) | Op::Unvote(_) | Op::ProxyVote(_));
        let own = ctx.actor.as_ref() == Some(key);
        if dot && !own {
            prop_assert!(
                before.tallies_visible(*viewer),
                "{:?} was told of someone else's dot while the tallies are hidden: {:?}",
                looker,
                op
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Generated ids at or above this stand for "one of the live notes (or themes)": `LIVE + k` is
/// resolved, just before its step runs, to the k-th live id (counting round), so that sequences
/// name things that exist far more often than raw ids alone would. With nothing live it is left
/// as it is: an id that was never issued.
const LIVE: u64 = 1 << 62;
/// Ids from here stand for "one of the notes this operation is likeliest to work on": the
/// asker's own notes for an edit, recolour, delete or consent to quote, the notes they put dots
/// on for an unvote, hidden notes for an unhide or a removal, the spotlit note for a hide,
/// themed notes to (re)theme or delete, themes holding notes. With none of those, any live note
/// (or theme).
const HINT: u64 = LIVE + 64;

/// What `LIVE` and `HINT` ids resolve to, taken from the board just before a step.
struct Targets {
    notes: Vec<NoteId>,
    themes: Vec<ThemeId>,
    mine: Vec<NoteId>,
    dotted: Vec<NoteId>,
    hidden: Vec<NoteId>,
    spotlit: Vec<NoteId>,
    themed: Vec<NoteId>,
    mine_themed: Vec<NoteId>,
    full_themes: Vec<ThemeId>,
}

impl Targets {
    fn of(board: &Board, who: &Who) -> Self {
        let key = who.actor.map(actor_key);
        let notes = || board.notes.values();
        Self {
            notes: notes().map(|n| n.id).collect(),
            themes: board.themes.keys().copied().collect(),
            mine: notes()
                .filter(|n| key.is_some() && n.owner == key)
                .map(|n| n.id)
                .collect(),
            dotted: notes()
                .filter(|n| key.as_ref().is_some_and(|k| n.votes.contains_key(k)))
                .map(|n| n.id)
                .collect(),
            hidden: notes()
                .filter(|n| {
                    n.moderation
                        .as_ref()
                        .is_some_and(|m| m.action == ModerationState::Hidden)
                })
                .map(|n| n.id)
                .collect(),
            spotlit: board.state.spotlight.into_iter().collect(),
            themed: notes()
                .filter(|n| n.theme.is_some())
                .map(|n| n.id)
                .collect(),
            mine_themed: notes()
                .filter(|n| key.is_some() && n.owner == key && n.theme.is_some())
                .map(|n| n.id)
                .collect(),
            full_themes: board
                .themes
                .values()
                .filter(|t| !t.notes.is_empty())
                .map(|t| t.id)
                .collect(),
        }
    }

    /// The operation with every `LIVE + k` and `HINT + k` id replaced by a live one.
    fn resolve<'a>(&'a self, op: &Op) -> Op {
        let or = |a: &'a [NoteId], b: &'a [NoteId]| if a.is_empty() { b } else { a };
        let hint = match op {
            Op::EditNote(_) | Op::RecolourNote(_) | Op::SetQuotable(_) => &self.mine,
            Op::DeleteNote(_) => or(&self.mine_themed, &self.mine),
            Op::SetNoteTheme(_) => &self.themed,
            Op::Unvote(_) => &self.dotted,
            Op::UnhideNote(_) | Op::RemoveNote(_) => &self.hidden,
            Op::HideNote(_) => &self.spotlit,
            _ => &[],
        };
        let hint = or(hint, &self.notes);
        let theme_hint = or(&self.full_themes, &self.themes);
        let pick = |id: u64, live: &[u64], hint: &[u64]| {
            let (k, list) = match id.checked_sub(LIVE) {
                Some(k) if k < 64 => (k, live),
                Some(k) if k < 128 => (k - 64, hint),
                _ => return id,
            };
            if list.is_empty() {
                id
            } else {
                list[k as usize % list.len()]
            }
        };
        let note = |id| pick(id, &self.notes, hint);
        let theme = |id| pick(id, &self.themes, theme_hint);
        let mut op = op.clone();
        match &mut op {
            Op::CreateNote(_)
            | Op::CreateTheme(_)
            | Op::ProxyNote(_)
            | Op::SetWriting(_)
            | Op::StartTimer(_)
            | Op::StopTimer(_)
            | Op::SetLocked(_)
            | Op::OpenVoting(_)
            | Op::CloseVoting(_)
            | Op::SetTheming(_)
            | Op::TimerEnded(_) => {}
            Op::EditNote(o) => o.note = note(o.note),
            Op::RecolourNote(o) => o.note = note(o.note),
            Op::SetQuotable(o) => o.note = note(o.note),
            Op::MoveNote(o) => o.note = note(o.note),
            Op::DeleteNote(o) => o.note = note(o.note),
            Op::RenameTheme(o) => o.theme = theme(o.theme),
            Op::DeleteTheme(o) => o.theme = theme(o.theme),
            Op::SetNoteTheme(o) => {
                o.note = note(o.note);
                o.theme = o.theme.map(theme);
            }
            Op::Vote(o) | Op::Unvote(o) | Op::ProxyVote(o) | Op::UnhideNote(o) => {
                o.note = note(o.note)
            }
            Op::HideNote(o) | Op::RemoveNote(o) => o.note = note(o.note),
            Op::Spotlight(o) => o.note = o.note.map(note),
        }
        op
    }
}

/// Often a live note; otherwise a plausible id (which may be deleted or not yet issued), or one
/// that can never exist.
fn note_id() -> impl Strategy<Value = NoteId> {
    prop_oneof![
        8 => LIVE..LIVE + 8,
        6 => HINT..HINT + 8,
        4 => 1u64..=12,
        1 => Just(0u64),
        1 => 13u64..10_000,
        1 => Just(u64::MAX),
    ]
}

/// Mostly a note the operation is likely to work on (see [`HINT`]).
fn hinted_note_id() -> impl Strategy<Value = NoteId> {
    prop_oneof![
        12 => HINT..HINT + 8,
        4 => LIVE..LIVE + 8,
        1 => 1u64..=12,
    ]
}

fn theme_id() -> impl Strategy<Value = ThemeId> {
    prop_oneof![
        8 => LIVE..LIVE + 4,
        4 => HINT..HINT + 4,
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

/// A moderation reason: usually a few words, sometimes empty, blank, on two lines, at the cap or
/// just over it.
fn reason() -> BoxedStrategy<String> {
    prop_oneof![
        12 => "[A-Z][a-z ]{0,15}",
        1 => Just(String::new()),
        1 => Just("  ".to_owned()),
        1 => Just("Off\ntopic".to_owned()),
        1 => (REASON_CHARS..=REASON_CHARS + 1).prop_map(|n| "é".repeat(n)),
    ]
    .boxed()
}

fn create_note() -> BoxedStrategy<CreateNote> {
    let note_max = limits().note_text_chars;
    (text(note_max), colour(), coord(WIDTH), coord(HEIGHT))
        .prop_map(|(text, colour, x, y)| CreateNote { text, colour, x, y })
        .boxed()
}

/// The operations participants ask for: notes, themes and dots. Each arm is boxed: the value
/// trees stay small, which keeps a debug build fast.
fn participant_op() -> impl Strategy<Value = Op> {
    let l = limits();
    let (note_max, title_max) = (l.note_text_chars, l.theme_title_chars);
    let note_ref = || note_id().prop_map(|note| NoteRef { note });
    prop_oneof![
        8 => create_note().prop_map(Op::CreateNote).boxed(),
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
        5 => note_ref().prop_map(Op::Vote).boxed(),
        4 => hinted_note_id().prop_map(|note| Op::Unvote(NoteRef { note })).boxed(),
        3 => (prop_oneof![2 => hinted_note_id(), 1 => note_id()], any::<bool>())
            .prop_map(|(note, quotable)| Op::SetQuotable(SetQuotable { note, quotable })).boxed(),
    ]
}

/// The operations only facilitators may ask for, and the server's `timer_ended`.
fn facilitator_op() -> impl Strategy<Value = Op> {
    let note_ref = || note_id().prop_map(|note| NoteRef { note });
    prop_oneof![
        3 => prop::sample::select(vec![Writing::Open, Writing::Private])
            .prop_map(|writing| Op::SetWriting(SetWriting { writing })).boxed(),
        2 => (
            prop_oneof![
                8 => 1..=MAX_TIMER_SECONDS,
                1 => Just(0),
                1 => Just(MAX_TIMER_SECONDS + 1),
                1 => any::<u32>(),
            ],
            prop::sample::select(vec![OnEnd::Nothing, OnEnd::Lock]),
        )
            .prop_map(|(seconds, on_end)| Op::StartTimer(StartTimer { seconds, on_end })).boxed(),
        1 => Just(Op::StopTimer(NoFields {})).boxed(),
        3 => prop::bool::weighted(0.15)
            .prop_map(|locked| Op::SetLocked(SetLocked { locked })).boxed(),
        3 => (
            prop_oneof![8 => 1u32..=4, 1 => Just(0), 1 => Just(MAX_BUDGET), 1 => Just(MAX_BUDGET + 1)],
            any::<bool>(),
        )
            .prop_map(|(budget, show_tallies)| Op::OpenVoting(OpenVoting { budget, show_tallies }))
            .boxed(),
        1 => Just(Op::CloseVoting(NoFields {})).boxed(),
        1 => prop::bool::weighted(0.2)
            .prop_map(|f| Op::SetTheming(SetTheming {
                theming: if f { Theming::Facilitators } else { Theming::Everyone },
            }))
            .boxed(),
        3 => prop::option::weighted(0.8, note_id())
            .prop_map(|note| Op::Spotlight(Spotlight { note })).boxed(),
        3 => (hinted_note_id(), reason())
            .prop_map(|(note, reason)| Op::HideNote(Moderate { note, reason })).boxed(),
        3 => hinted_note_id().prop_map(|note| Op::UnhideNote(NoteRef { note })).boxed(),
        1 => (hinted_note_id(), reason())
            .prop_map(|(note, reason)| Op::RemoveNote(Moderate { note, reason })).boxed(),
        2 => create_note().prop_map(Op::ProxyNote).boxed(),
        2 => note_ref().prop_map(Op::ProxyVote).boxed(),
        1 => Just(Op::TimerEnded(NoFields {})).boxed(),
    ]
}

fn participant() -> impl Strategy<Value = Who> {
    let p = |a| Who {
        actor: Some(a),
        role: Role::Participant,
    };
    prop_oneof![
        // Mostly one person, so that owners often change their own notes.
        5 => Just(p("a")),
        2 => Just(p("b")),
        2 => Just(p("c")),
        // An actor without a key: its notes have no owner.
        1 => Just(Who { actor: None, role: Role::Participant }),
    ]
}

const SERVER: Who = Who {
    actor: None,
    role: Role::System,
};

fn facilitator() -> impl Strategy<Value = Who> {
    let f = |a| Who {
        actor: Some(a),
        role: Role::Facilitator,
    };
    prop_oneof![3 => Just(f("f")), 1 => Just(f("g")), 1 => Just(SERVER)]
}

/// One step: mostly participants doing participants' things and facilitators facilitating,
/// sometimes the other way round, and the server ending timers.
fn step() -> impl Strategy<Value = (Who, Op)> {
    prop_oneof![
        20 => (participant(), participant_op()).boxed(),
        10 => (facilitator(), facilitator_op()).boxed(),
        2 => (facilitator(), participant_op()).boxed(),
        1 => (participant(), facilitator_op()).boxed(),
        1 => Just((SERVER, Op::TimerEnded(NoFields {}))).boxed(),
    ]
}

/// How a facilitator might set a room up before people start: each step sometimes.
fn setup() -> impl Strategy<Value = Vec<(Who, Op)>> {
    let f = Who {
        actor: Some("f"),
        role: Role::Facilitator,
    };
    let open_voting = (prop_oneof![3 => 1u32..=2, 1 => 3u32..=4], any::<bool>()).prop_map(
        |(budget, show_tallies)| {
            Op::OpenVoting(OpenVoting {
                budget,
                show_tallies,
            })
        },
    );
    let theme = "[A-Z][a-z]{0,8}".prop_map(|title| Op::CreateTheme(CreateTheme { title }));
    (
        prop::option::weighted(0.6, open_voting),
        prop::option::weighted(
            0.3,
            Just(Op::SetWriting(SetWriting {
                writing: Writing::Private,
            })),
        ),
        prop::option::weighted(
            0.2,
            (1..=MAX_TIMER_SECONDS).prop_map(|seconds| {
                Op::StartTimer(StartTimer {
                    seconds,
                    on_end: OnEnd::Lock,
                })
            }),
        ),
        prop::option::weighted(
            0.1,
            Just(Op::SetTheming(SetTheming {
                theming: Theming::Facilitators,
            })),
        ),
        prop::collection::vec(theme, 0..=2),
    )
        .prop_map(move |(voting, writing, timer, theming, themes)| {
            [voting, writing, timer, theming]
                .into_iter()
                .flatten()
                .chain(themes)
                .map(|op| (f, op))
                .collect()
        })
}

/// A room (named or anonymous) and a sequence of steps in it. Sequences often open with the
/// room being set up (voting open, private writing, a timer, themes), so that the steps after
/// meet those settings early enough.
fn steps() -> impl Strategy<Value = (bool, Vec<(Who, Op)>)> {
    (
        prop::bool::weighted(0.25),
        setup(),
        prop::collection::vec(step(), 0..=100),
    )
        .prop_map(|(anonymous, mut setup, steps)| {
            setup.extend(steps);
            (anonymous, setup)
        })
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
fn run(anonymous: bool, steps: &[(Who, Op)]) -> (Board, Vec<(Op, OpContext, Option<u64>)>) {
    let limits = limits();
    let mut board = Board::for_room(NAME, PROMPT, anonymous);
    let mut accepted = Vec::new();
    for (i, (who, op)) in steps.iter().enumerate() {
        let op = Targets::of(&board, who).resolve(op);
        let ctx = who.ctx(at(i), anonymous);
        if let Ok(applied) = board.apply(&op, &ctx, &limits) {
            accepted.push((op, ctx, applied.created));
        }
    }
    (board, accepted)
}

proptest! {
    #![proptest_config(config())]

    /// `apply` agrees with the model on every verdict and every field, changes nothing when it
    /// refuses, and keeps the board's invariants after every operation; every person is shown
    /// what the model says, and who is told of each change follows the rules.
    #[test]
    fn apply_agrees_with_the_model((anonymous, steps) in steps()) {
        let limits = limits();
        let lookers = lookers();
        let mut board = Board::for_room(NAME, PROMPT, anonymous);
        let mut model = Model::new(anonymous);
        for (i, (who, op)) in steps.iter().enumerate() {
            let op = &Targets::of(&board, who).resolve(op);
            let before = board.clone();
            let ctx = who.ctx(at(i), anonymous);
            let got = board.apply(op, &ctx, &limits);
            let want = model.apply(op, who, at(i), &limits);
            match (&got, &want) {
                (Ok(applied), Ok(created)) => {
                    prop_assert_eq!(applied.created, *created, "step {}: {:?}", i, op);
                    check_delivery(&before, &board, op, &ctx, *created, &lookers)?;
                }
                (Err(e), Err(reason)) => {
                    prop_assert_eq!(e.reason, *reason, "step {}: {:?} by {:?}", i, op, who);
                    prop_assert!(!e.message.is_empty());
                    prop_assert_eq!(&board, &before, "step {}: refused but changed", i);
                }
                _ => prop_assert!(
                    false,
                    "step {}: {:?} by {:?}: board said {:?}, model said {:?}",
                    i, op, who, got, want
                ),
            }
            if let Err(e) = board.check_invariants(&limits) {
                prop_assert!(false, "step {}: {:?}: invariant broken: {}", i, op, e);
            }
            assert_matches(&board, &model, &lookers)?;
        }
        // A view has no field for an actor key; make sure none slips into another one.
        for (looker, viewer) in &lookers {
            let json = serde_json::to_string(&board.view(*viewer)).expect("serialises");
            prop_assert!(!json.contains("k3y-"), "{:?} is shown an actor key: {}", looker, json);
        }
    }

    /// Replaying every accepted operation, with the same context, on a fresh board gives the
    /// same results and the identical board.
    #[test]
    fn replaying_accepted_operations_rebuilds_the_board((anonymous, steps) in steps()) {
        let (board, accepted) = run(anonymous, &steps);
        let mut replayed = Board::for_room(NAME, PROMPT, anonymous);
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
    fn json_round_trip_is_exact((anonymous, steps) in steps()) {
        let (board, accepted) = run(anonymous, &steps);
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
    let who = Who {
        actor: Some("a"),
        role: Role::Participant,
    };
    board.apply(&op, &who.ctx(1, false), &limits).unwrap();
    let json = serde_json::to_string(&board).unwrap();
    let back: Board = serde_json::from_str(&json).unwrap();
    assert_eq!(back, board, "read back from {json}");
}

/// Consent to quote, step by step: off by default, given and withdrawn by the author alone, never
/// by someone else, a facilitator, or anyone for a proxy note; not an edit (`updated_at` stays).
#[test]
fn consent_to_quote_is_the_authors_alone() {
    let limits = Limits::default();
    let mut board = Board::for_room(NAME, PROMPT, false);
    let person = |a| Who {
        actor: Some(a),
        role: Role::Participant,
    };
    let (a, b) = (person("a"), person("b"));
    let f = Who {
        actor: Some("f"),
        role: Role::Facilitator,
    };
    let note = || CreateNote {
        text: "Benches".into(),
        colour: Colour::Green,
        x: 1.0,
        y: 2.0,
    };
    let mut step = |who: Who, at: u64, op: Op| board.apply(&op, &who.ctx(at, false), &limits);
    let quote = |note, quotable| Op::SetQuotable(SetQuotable { note, quotable });
    let mine = step(a, 1, Op::CreateNote(note())).unwrap().created.unwrap();
    let proxy = step(f, 2, Op::ProxyNote(note())).unwrap().created.unwrap();
    let reason = |r: Result<_, bothy_shared::OpError>| r.map(|_| ()).map_err(|e| e.reason);
    use RejectReason::{Locked, NotFound, NotYours};
    assert_eq!(reason(step(b, 3, quote(mine, true))), Err(NotYours));
    assert_eq!(reason(step(f, 4, quote(mine, true))), Err(NotYours));
    assert_eq!(reason(step(f, 5, quote(proxy, true))), Err(NotYours));
    assert_eq!(reason(step(a, 6, quote(proxy, true))), Err(NotYours));
    assert_eq!(reason(step(a, 7, quote(mine, true))), Ok(()));
    assert_eq!(reason(step(a, 8, quote(mine, false))), Ok(()));
    assert_eq!(reason(step(a, 9, quote(mine, true))), Ok(()));
    // Someone else's private note does not exist for a participant.
    step(
        f,
        10,
        Op::SetWriting(SetWriting {
            writing: Writing::Private,
        }),
    )
    .unwrap();
    let private = step(b, 11, Op::CreateNote(note()))
        .unwrap()
        .created
        .unwrap();
    assert_eq!(reason(step(a, 12, quote(private, true))), Err(NotFound));
    assert_eq!(reason(step(b, 13, quote(private, true))), Ok(()));
    // A hidden note's author may still say; a locked board refuses.
    let hide = Op::HideNote(Moderate {
        note: mine,
        reason: "Check".into(),
    });
    step(f, 14, hide).unwrap();
    assert_eq!(reason(step(a, 15, quote(mine, false))), Ok(()));
    step(f, 16, Op::SetLocked(SetLocked { locked: true })).unwrap();
    assert_eq!(reason(step(a, 17, quote(mine, true))), Err(Locked));

    let n = &board.notes;
    assert!(!n[&mine].quotable && n[&private].quotable && !n[&proxy].quotable);
    assert_eq!(n[&mine].updated_at, 14, "only the hide changed it");
    assert_eq!(n[&private].updated_at, 11);
    let view = board.view(Viewer::Facilitator);
    let shown: Vec<bool> = view.notes.iter().map(|n| n.quotable).collect();
    assert_eq!(shown, [false, false, true]);
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
    let note = |id: NoteId| model.notes.iter().find(|n| n.id == id);
    if let (Op::SetQuotable(o), Err(RejectReason::NotYours)) = (op, verdict) {
        match note(o.note) {
            Some(n) if n.proxy => out.push("refused SetQuotable on a proxy note".into()),
            Some(n) if n.owner.is_some() && who.role == Role::Facilitator => {
                out.push("refused SetQuotable by a facilitator on someone's note".into());
            }
            Some(n) if n.owner.is_some() => {
                out.push("refused SetQuotable on someone else's note".into());
            }
            _ => {}
        }
    }
    if let (Op::SetQuotable(o), Err(RejectReason::NotFound)) = (op, verdict)
        && note(o.note).is_some_and(|n| n.private)
    {
        out.push("refused SetQuotable on someone else's private note".into());
    }
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
        Op::CreateNote(_) if model.private_writing => {
            out.push("wrote a private note".into());
        }
        Op::SetWriting(o)
            if o.writing == Writing::Open && model.notes.iter().any(|n| n.private) =>
        {
            out.push("revealed private notes".into());
        }
        Op::Vote(_) if model.voting.is_some_and(|(_, show)| !show) => {
            out.push("voted with the tallies hidden".into());
        }
        Op::RemoveNote(o) if note(o.note).is_some_and(|n| n.moderation.is_some()) => {
            out.push("removed a hidden note".into());
        }
        Op::TimerEnded(_) if model.timer.is_some_and(|(_, lock)| lock) => {
            out.push("a timer locked the board".into());
        }
        Op::Spotlight(Spotlight { note: Some(_) }) => out.push("spotlit a note".into()),
        _ => {}
    }
    if model.spotlight.is_some() && model.spotlight == op.note() && !matches!(op, Op::Spotlight(_))
    {
        out.push(format!("{kind} on the spotlit note"));
    }
    if who.role == Role::Facilitator && model.locked && !matches!(op, Op::SetLocked(_)) {
        out.push("a facilitator changed a locked board".into());
    }
    let owner = op
        .note()
        .filter(|_| matches!(op, Op::EditNote(_) | Op::RecolourNote(_) | Op::MoveNote(_)))
        .and_then(note)
        .and_then(|n| n.owner.clone());
    if owner.is_some() && owner != who.key() {
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
        let (anonymous, steps) = strategy.new_tree(&mut runner).unwrap().current();
        let mut model = Model::new(anonymous);
        // Ids are resolved from the board, as in the properties.
        let mut board = Board::for_room(NAME, PROMPT, anonymous);
        for (i, (who, op)) in steps.iter().enumerate() {
            let op = &Targets::of(&board, who).resolve(op);
            let before = model.clone();
            let verdict = model.apply(op, who, at(i), &limits);
            let _ = board.apply(op, &who.ctx(at(i), anonymous), &limits);
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
        "accepted Vote",
        "accepted Unvote",
        "accepted ProxyVote",
        "accepted SetWriting",
        "accepted StartTimer",
        "accepted StopTimer",
        "accepted SetLocked",
        "accepted OpenVoting",
        "accepted CloseVoting",
        "accepted SetTheming",
        "accepted Spotlight",
        "accepted HideNote",
        "accepted UnhideNote",
        "accepted RemoveNote",
        "accepted ProxyNote",
        "accepted TimerEnded",
        "accepted SetQuotable",
        "accepted MoveNote by someone else",
        "refused Invalid",
        "refused TextEmpty",
        "refused TextTooLong",
        "refused TextControlCharacters",
        "refused OutOfBounds",
        "refused NotFound",
        "refused NotYours",
        "refused TooManyNotes",
        "refused TooManyThemes",
        "refused FacilitatorOnly",
        "refused Locked",
        "refused NotAllowed",
        "refused NoVotesLeft",
        "deleted a note in a theme",
        "deleted a theme holding notes",
        "took a note out of its theme",
        "moved a note within its theme",
        "moved a note to another theme",
        "put a note at or past the end of a theme",
        "wrote a private note",
        "revealed private notes",
        "voted with the tallies hidden",
        "removed a hidden note",
        "a timer locked the board",
        "spotlit a note",
        "HideNote on the spotlit note",
        "a facilitator changed a locked board",
        "refused SetQuotable on a proxy note",
        "refused SetQuotable on someone else's note",
        "refused SetQuotable by a facilitator on someone's note",
        "refused SetQuotable on someone else's private note",
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
