//! The board model and the one function that changes it.
//!
//! [`Board::apply`] validates an operation completely (caps, text, palette, bounds, ids,
//! ownership) and applies it or changes nothing. [`Board::replay`] applies an operation the
//! server already confirmed: it still checks that ids exist, so a replayed sequence can never
//! break the board's invariants, but it does not re-check ownership or caps, which were
//! decided when the operation was confirmed.

use crate::ids::{ActorKey, NoteId, ThemeId};
use crate::limits::Limits;
use crate::op::{Colour, OnEnd, Op, Theming, Writing};
use crate::text::{self, TextProblem};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A sticky note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub id: NoteId,
    pub text: String,
    pub colour: Colour,
    pub x: f64,
    pub y: f64,
    /// The display name the author chose, or `null` for anonymous.
    pub author: Option<String>,
    /// Milliseconds since the Unix epoch, server clock.
    pub created_at: u64,
    pub updated_at: u64,
    pub theme: Option<ThemeId>,
    /// Who may edit the note. Stored on the server; never sent to anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ActorKey>,
    /// Written during private writing and not yet revealed: only its author and the
    /// facilitators see it.
    #[serde(default)]
    pub private: bool,
    /// Hidden or removed by a facilitator.
    #[serde(default)]
    pub moderation: Option<Moderation>,
    /// Added by a facilitator for someone without a device.
    #[serde(default)]
    pub proxy: bool,
    /// Dots given, by voter. Stored on the server; only tallies are ever sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub votes: BTreeMap<ActorKey, u32>,
    /// Dots a facilitator added for people without a device.
    #[serde(default)]
    pub proxy_votes: u32,
    /// The author agreed that the note may be quoted word for word in reports (off until they
    /// say so).
    #[serde(default)]
    pub quotable: bool,
}

impl Note {
    /// Every dot on the note.
    pub fn tally(&self) -> u32 {
        self.votes
            .values()
            .fold(self.proxy_votes, |a, &v| a.saturating_add(v))
    }
}

/// A facilitator's decision about a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moderation {
    pub action: ModerationState,
    /// Why: shown only to facilitators.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModerationState {
    /// Behind a placeholder; a facilitator can show it again.
    Hidden,
    /// Its text is gone for good; a placeholder stays.
    Removed,
}

/// One moderation action, kept for the facilitators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub at: u64,
    pub action: AuditAction,
    pub note: NoteId,
    /// The reason given (hide and remove).
    pub reason: Option<String>,
    /// The facilitator's display name, if they gave one.
    pub by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Hide,
    Unhide,
    Remove,
}

/// A named group of notes, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    pub id: ThemeId,
    pub title: String,
    pub notes: Vec<NoteId>,
}

/// One room's board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// The room's name, as the facilitator gave it ("Table 3", "Housing").
    #[serde(default)]
    pub name: String,
    pub prompt: String,
    #[serde(with = "by_id")]
    pub notes: BTreeMap<NoteId, Note>,
    #[serde(with = "by_id")]
    pub themes: BTreeMap<ThemeId, Theme>,
    /// The id the next note will get.
    pub next_note_id: NoteId,
    /// The id the next theme will get.
    pub next_theme_id: ThemeId,
    /// What the facilitators have set: private writing, lock, voting, timer and so on.
    #[serde(default)]
    pub state: RoomState,
    /// Every moderation action, oldest first. Only facilitators see it.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
}

/// The room's settings and phase, set by facilitators.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomState {
    /// In an anonymous event no author name is ever stored or shown.
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub writing: Writing,
    /// Read-only for participants.
    #[serde(default)]
    pub locked: bool,
    /// Open voting, if any.
    #[serde(default)]
    pub voting: Option<Voting>,
    #[serde(default)]
    pub theming: Theming,
    /// The note shown to everyone.
    #[serde(default)]
    pub spotlight: Option<NoteId>,
    #[serde(default)]
    pub timer: Option<Timer>,
}

/// A round of dot voting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voting {
    /// Dots per person.
    pub budget: u32,
    /// Whether participants see tallies while voting is open.
    pub show_tallies: bool,
}

/// A running countdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    /// Server time it reaches zero, milliseconds since the Unix epoch.
    pub ends_at: u64,
    pub on_end: OnEnd,
}

/// Who is asking for an operation: rights come from how the connection joined, never from a
/// field in the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Participant,
    /// Joined with the event's facilitator secret.
    Facilitator,
    /// The server itself (a timer reaching zero).
    System,
}

/// Who asks for an operation, and when.
#[derive(Debug, Clone)]
pub struct OpContext {
    /// The actor asking; becomes the owner of a note it creates.
    pub actor: Option<ActorKey>,
    /// The display name shown as the author of a note it creates.
    pub author: Option<String>,
    /// Server time, milliseconds since the Unix epoch.
    pub at: u64,
    pub role: Role,
}

/// What an applied operation produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The id of the note or theme the operation created, if it created one.
    pub created: Option<u64>,
}

/// Why an operation was refused, as a machine-readable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The operation could not be read (wrong fields or types).
    Invalid,
    TextEmpty,
    TextTooLong,
    TextControlCharacters,
    OutOfBounds,
    NotFound,
    NotYours,
    TooManyNotes,
    TooManyThemes,
    /// The room cannot save changes right now.
    ReadOnly,
    /// This connection is sending operations faster than the server allows.
    RateLimited,
    /// Only a facilitator may do this.
    FacilitatorOnly,
    /// A facilitator has locked the board.
    Locked,
    /// Not possible now (voting closed, theming kept to facilitators, a moderated note, …).
    NotAllowed,
    /// Every dot has been used.
    NoVotesLeft,
}

/// Most characters in a moderation reason.
pub const REASON_CHARS: usize = 200;
/// Longest timer, in seconds (6 hours).
pub const MAX_TIMER_SECONDS: u32 = 6 * 60 * 60;
/// Most dots per person.
pub const MAX_VOTE_BUDGET: u32 = 99;

/// A refused operation: a reason code and a plain-English message for the author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    pub reason: RejectReason,
    pub message: String,
}

impl OpError {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

fn text_error(field: &str, problem: TextProblem) -> OpError {
    match problem {
        TextProblem::Empty => {
            OpError::new(RejectReason::TextEmpty, format!("The {field} is empty."))
        }
        TextProblem::TooLong { max } => OpError::new(
            RejectReason::TextTooLong,
            format!(
                "The {field} is too long: at most {} characters.",
                text::grouped(max)
            ),
        ),
        TextProblem::ControlCharacter => OpError::new(
            RejectReason::TextControlCharacters,
            format!("The {field} contains characters that cannot be shown."),
        ),
    }
}

/// Ids stay below 2^53 so JavaScript reads them exactly, and a counter can never overflow.
pub const MAX_ID: u64 = (1 << 53) - 1;

fn out_of_ids() -> OpError {
    OpError::new(
        RejectReason::TooManyNotes,
        "This board cannot hold any more notes or themes.",
    )
}

fn note_missing() -> OpError {
    OpError::new(
        RejectReason::NotFound,
        "That note is not on this board any more.",
    )
}

fn voting_closed() -> OpError {
    OpError::new(RejectReason::NotAllowed, "Voting is not open.")
}

fn moderated() -> OpError {
    OpError::new(
        RejectReason::NotAllowed,
        "A facilitator has hidden or removed this note, so it cannot be changed.",
    )
}

fn theme_missing() -> OpError {
    OpError::new(
        RejectReason::NotFound,
        "That theme is not on this board any more.",
    )
}

impl Board {
    /// An empty board with a prompt.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self::for_room("", prompt, false)
    }

    /// An empty board for a named room of an event.
    pub fn for_room(name: impl Into<String>, prompt: impl Into<String>, anonymous: bool) -> Self {
        Self {
            name: name.into(),
            state: RoomState {
                anonymous,
                ..RoomState::default()
            },
            prompt: prompt.into(),
            notes: BTreeMap::new(),
            themes: BTreeMap::new(),
            next_note_id: 1,
            next_theme_id: 1,
            audit: Vec::new(),
        }
    }

    /// Validates `op` completely against `limits` and the actor's rights, then applies it.
    /// On error nothing has changed.
    pub fn apply(&mut self, op: &Op, ctx: &OpContext, limits: &Limits) -> Result<Applied, OpError> {
        self.check_live(op, ctx, limits)?;
        self.apply_checked(op, ctx)
    }

    /// Applies an operation the server has already confirmed (journal recovery, a browser
    /// following the room). Ids must still exist; ownership and caps are not re-checked.
    pub fn replay(&mut self, op: &Op, ctx: &OpContext) -> Result<Applied, OpError> {
        self.apply_checked(op, ctx)
    }

    /// Ids of the notes this actor owns, in id order.
    pub fn notes_owned_by(&self, actor: &ActorKey) -> Vec<NoteId> {
        self.notes
            .values()
            .filter(|n| n.owner.as_ref() == Some(actor))
            .map(|n| n.id)
            .collect()
    }

    fn own_note(&self, id: NoteId, ctx: &OpContext) -> Result<&Note, OpError> {
        let note = self.visible_note(id, ctx)?;
        let allowed = if note.proxy {
            ctx.role == Role::Facilitator
        } else {
            note.owner.is_none() || note.owner == ctx.actor
        };
        if !allowed {
            return Err(OpError::new(
                RejectReason::NotYours,
                "Only the person who wrote this note can change or delete it.",
            ));
        }
        Ok(note)
    }

    fn check_position(x: f64, y: f64, limits: &Limits) -> Result<(), OpError> {
        let ok = x.is_finite()
            && y.is_finite()
            && (0.0..=limits.board_width).contains(&x)
            && (0.0..=limits.board_height).contains(&y);
        if ok {
            Ok(())
        } else {
            Err(OpError::new(
                RejectReason::OutOfBounds,
                format!(
                    "A note's position must be within the board: x from 0 to {}, y from 0 to {}.",
                    limits.board_width, limits.board_height
                ),
            ))
        }
    }

    /// Everything a live operation must satisfy beyond what replay checks: who may ask for it,
    /// caps, text and bounds.
    fn check_live(&self, op: &Op, ctx: &OpContext, limits: &Limits) -> Result<(), OpError> {
        self.check_rights(op, ctx)?;
        match op {
            Op::CreateNote(o) | Op::ProxyNote(o) => {
                if self.notes.len() >= limits.notes_per_room {
                    return Err(OpError::new(
                        RejectReason::TooManyNotes,
                        format!(
                            "This board is full: at most {} notes.",
                            text::grouped(limits.notes_per_room)
                        ),
                    ));
                }
                text::check(&o.text, limits.note_text_chars, true)
                    .map_err(|p| text_error("note", p))?;
                Self::check_position(o.x, o.y, limits)
            }
            Op::EditNote(o) => {
                self.own_note(o.note, ctx)?;
                text::check(&o.text, limits.note_text_chars, true)
                    .map_err(|p| text_error("note", p))
            }
            Op::RecolourNote(o) => self.own_note(o.note, ctx).map(|_| ()),
            Op::SetQuotable(o) => {
                let note = self.own_note(o.note, ctx)?;
                if note.owner.is_none() {
                    // Only the person who wrote it can agree to be quoted.
                    return Err(OpError::new(
                        RejectReason::NotYours,
                        "Only the person who wrote this note can say whether it may be quoted.",
                    ));
                }
                Ok(())
            }
            Op::DeleteNote(o) => self.own_note(o.note, ctx).map(|_| ()),
            Op::MoveNote(o) => {
                self.visible_note(o.note, ctx)?;
                Self::check_position(o.x, o.y, limits)
            }
            Op::CreateTheme(o) => {
                if self.themes.len() >= limits.themes_per_room {
                    return Err(OpError::new(
                        RejectReason::TooManyThemes,
                        format!(
                            "This board has the most themes it can hold ({}).",
                            limits.themes_per_room
                        ),
                    ));
                }
                text::check(&o.title, limits.theme_title_chars, false)
                    .map_err(|p| text_error("theme title", p))
            }
            Op::RenameTheme(o) => text::check(&o.title, limits.theme_title_chars, false)
                .map_err(|p| text_error("theme title", p)),
            Op::DeleteTheme(_) => Ok(()),
            Op::SetNoteTheme(o) => self.visible_note(o.note, ctx).map(|_| ()),
            Op::Vote(o) | Op::ProxyVote(o) => {
                let Some(voting) = self.state.voting else {
                    return Err(voting_closed());
                };
                let note = self.visible_note(o.note, ctx)?;
                if note.moderation.is_some() {
                    return Err(moderated());
                }
                if let (Op::Vote(_), Some(actor)) = (op, &ctx.actor) {
                    let used: u32 = self
                        .notes
                        .values()
                        .filter_map(|n| n.votes.get(actor))
                        .fold(0u32, |a, &v| a.saturating_add(v));
                    if used >= voting.budget {
                        return Err(OpError::new(
                            RejectReason::NoVotesLeft,
                            format!(
                                "You have used all {} of your dots. Take one back to move it.",
                                voting.budget
                            ),
                        ));
                    }
                }
                if note.tally() == u32::MAX {
                    return Err(OpError::new(
                        RejectReason::NotAllowed,
                        "This note cannot take more dots.",
                    ));
                }
                Ok(())
            }
            Op::Unvote(o) => {
                if self.state.voting.is_none() {
                    return Err(voting_closed());
                }
                let note = self.visible_note(o.note, ctx)?;
                let mine = ctx.actor.as_ref().and_then(|a| note.votes.get(a));
                if mine.is_none_or(|&v| v == 0) {
                    return Err(OpError::new(
                        RejectReason::NotAllowed,
                        "You have no dot on this note to take back.",
                    ));
                }
                Ok(())
            }
            Op::SetWriting(_)
            | Op::StopTimer(_)
            | Op::SetLocked(_)
            | Op::CloseVoting(_)
            | Op::SetTheming(_)
            | Op::TimerEnded(_) => Ok(()),
            Op::StartTimer(o) => {
                if (1..=MAX_TIMER_SECONDS).contains(&o.seconds) {
                    Ok(())
                } else {
                    Err(OpError::new(
                        RejectReason::Invalid,
                        format!("A timer runs from 1 to {MAX_TIMER_SECONDS} seconds."),
                    ))
                }
            }
            Op::OpenVoting(o) => {
                if (1..=MAX_VOTE_BUDGET).contains(&o.budget) {
                    Ok(())
                } else {
                    Err(OpError::new(
                        RejectReason::Invalid,
                        format!("Each person can have 1 to {MAX_VOTE_BUDGET} dots."),
                    ))
                }
            }
            Op::Spotlight(o) => match o.note {
                None => Ok(()),
                Some(id) => {
                    let note = self.notes.get(&id).ok_or_else(note_missing)?;
                    if note.private || note.moderation.is_some() {
                        return Err(OpError::new(
                            RejectReason::NotAllowed,
                            "Only a note everyone can read can be shown to everyone.",
                        ));
                    }
                    Ok(())
                }
            },
            Op::HideNote(o) | Op::RemoveNote(o) => {
                let note = self.notes.get(&o.note).ok_or_else(note_missing)?;
                text::check(&o.reason, REASON_CHARS, false).map_err(|p| text_error("reason", p))?;
                let already = match (op, &note.moderation) {
                    (_, Some(m)) if m.action == ModerationState::Removed => true,
                    (Op::HideNote(_), Some(_)) => true,
                    _ => false,
                };
                if already {
                    return Err(moderated());
                }
                Ok(())
            }
            Op::UnhideNote(o) => {
                let note = self.notes.get(&o.note).ok_or_else(note_missing)?;
                match &note.moderation {
                    Some(m) if m.action == ModerationState::Hidden => Ok(()),
                    _ => Err(OpError::new(
                        RejectReason::NotAllowed,
                        "That note is not hidden.",
                    )),
                }
            }
        }
    }

    /// Who may ask for this operation now: facilitator operations need a facilitator, the lock
    /// and the theming setting bind participants.
    fn check_rights(&self, op: &Op, ctx: &OpContext) -> Result<(), OpError> {
        if matches!(op, Op::TimerEnded(_)) {
            return match ctx.role {
                Role::System => Ok(()),
                _ => Err(OpError::new(
                    RejectReason::NotAllowed,
                    "Only the server ends a timer.",
                )),
            };
        }
        if ctx.role != Role::Participant {
            return Ok(());
        }
        if op.is_facilitator_only() {
            return Err(OpError::new(
                RejectReason::FacilitatorOnly,
                "Only a facilitator can do this.",
            ));
        }
        if self.state.locked {
            return Err(OpError::new(
                RejectReason::Locked,
                "The board is locked: a facilitator has paused changes.",
            ));
        }
        if op.is_theming() && self.state.theming == Theming::Facilitators {
            return Err(OpError::new(
                RejectReason::NotAllowed,
                "In this room only facilitators make and fill themes.",
            ));
        }
        Ok(())
    }

    /// A note this person can see: a private note of someone else is "not found" to them, so a
    /// guessed id tells them nothing.
    fn visible_note(&self, id: NoteId, ctx: &OpContext) -> Result<&Note, OpError> {
        let note = self.notes.get(&id).ok_or_else(note_missing)?;
        let sees = ctx.role != Role::Participant || !note.private || note.owner == ctx.actor;
        if sees { Ok(note) } else { Err(note_missing()) }
    }

    /// Checks that every id the operation names exists, then changes the board.
    fn apply_checked(&mut self, op: &Op, ctx: &OpContext) -> Result<Applied, OpError> {
        match op {
            Op::CreateNote(o) | Op::ProxyNote(o) => {
                if !(o.x.is_finite() && o.y.is_finite()) {
                    return Err(OpError::new(
                        RejectReason::OutOfBounds,
                        "A note's position must be a number.",
                    ));
                }
                let id = self.next_note_id;
                if id >= MAX_ID {
                    return Err(out_of_ids());
                }
                let proxy = matches!(op, Op::ProxyNote(_));
                self.next_note_id += 1;
                self.notes.insert(
                    id,
                    Note {
                        id,
                        text: o.text.clone(),
                        colour: o.colour,
                        x: o.x,
                        y: o.y,
                        author: if proxy || self.state.anonymous {
                            None
                        } else {
                            ctx.author.clone()
                        },
                        created_at: ctx.at,
                        updated_at: ctx.at,
                        theme: None,
                        owner: if proxy { None } else { ctx.actor.clone() },
                        private: self.state.writing == Writing::Private,
                        moderation: None,
                        proxy,
                        votes: BTreeMap::new(),
                        proxy_votes: 0,
                        quotable: false,
                    },
                );
                Ok(Applied { created: Some(id) })
            }
            Op::EditNote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                if note.moderation.is_some() {
                    return Err(moderated());
                }
                note.text = o.text.clone();
                note.updated_at = ctx.at;
                Ok(Applied::default())
            }
            Op::RecolourNote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.colour = o.colour;
                note.updated_at = ctx.at;
                Ok(Applied::default())
            }
            Op::SetQuotable(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.quotable = o.quotable;
                Ok(Applied::default())
            }
            Op::MoveNote(o) => {
                if !(o.x.is_finite() && o.y.is_finite()) {
                    return Err(OpError::new(
                        RejectReason::OutOfBounds,
                        "A note's position must be a number.",
                    ));
                }
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.x = o.x;
                note.y = o.y;
                note.updated_at = ctx.at;
                Ok(Applied::default())
            }
            Op::DeleteNote(o) => {
                let note = self.notes.remove(&o.note).ok_or_else(note_missing)?;
                if let Some(t) = note.theme.and_then(|t| self.themes.get_mut(&t)) {
                    t.notes.retain(|&n| n != o.note);
                }
                if self.state.spotlight == Some(o.note) {
                    self.state.spotlight = None;
                }
                Ok(Applied::default())
            }
            Op::CreateTheme(o) => {
                let id = self.next_theme_id;
                if id >= MAX_ID {
                    return Err(out_of_ids());
                }
                self.next_theme_id += 1;
                self.themes.insert(
                    id,
                    Theme {
                        id,
                        title: o.title.clone(),
                        notes: Vec::new(),
                    },
                );
                Ok(Applied { created: Some(id) })
            }
            Op::RenameTheme(o) => {
                let theme = self.themes.get_mut(&o.theme).ok_or_else(theme_missing)?;
                theme.title = o.title.clone();
                Ok(Applied::default())
            }
            Op::DeleteTheme(o) => {
                let theme = self.themes.remove(&o.theme).ok_or_else(theme_missing)?;
                for id in theme.notes {
                    if let Some(n) = self.notes.get_mut(&id) {
                        n.theme = None;
                    }
                }
                Ok(Applied::default())
            }
            Op::SetNoteTheme(o) => {
                if !self.notes.contains_key(&o.note) {
                    return Err(note_missing());
                }
                if o.theme.is_some_and(|t| !self.themes.contains_key(&t)) {
                    return Err(theme_missing());
                }
                // Everything named exists: from here on nothing can fail.
                let note = self.notes.get_mut(&o.note).expect("checked above");
                if let Some(old) = note.theme.take().and_then(|t| self.themes.get_mut(&t)) {
                    old.notes.retain(|&n| n != o.note);
                }
                note.theme = o.theme;
                note.updated_at = ctx.at;
                if let Some(theme) = o.theme.and_then(|t| self.themes.get_mut(&t)) {
                    let at = o
                        .position
                        .map_or(theme.notes.len(), |p| (p as usize).min(theme.notes.len()));
                    theme.notes.insert(at, o.note);
                }
                Ok(Applied::default())
            }
            Op::Vote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                if let Some(actor) = &ctx.actor {
                    let v = note.votes.entry(actor.clone()).or_insert(0);
                    *v = v.saturating_add(1);
                }
                Ok(Applied::default())
            }
            Op::Unvote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                if let Some(actor) = &ctx.actor
                    && let Some(v) = note.votes.get_mut(actor)
                {
                    *v = v.saturating_sub(1);
                    if *v == 0 {
                        note.votes.remove(actor);
                    }
                }
                Ok(Applied::default())
            }
            Op::ProxyVote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.proxy_votes = note.proxy_votes.saturating_add(1);
                Ok(Applied::default())
            }
            Op::SetWriting(o) => {
                self.state.writing = o.writing;
                if o.writing == Writing::Open {
                    for n in self.notes.values_mut() {
                        n.private = false;
                    }
                }
                Ok(Applied::default())
            }
            Op::StartTimer(o) => {
                self.state.timer = Some(Timer {
                    ends_at: ctx.at.saturating_add(u64::from(o.seconds) * 1000),
                    on_end: o.on_end,
                });
                Ok(Applied::default())
            }
            Op::StopTimer(_) => {
                self.state.timer = None;
                Ok(Applied::default())
            }
            Op::TimerEnded(_) => {
                if let Some(timer) = self.state.timer.take()
                    && timer.on_end == OnEnd::Lock
                {
                    self.state.locked = true;
                }
                Ok(Applied::default())
            }
            Op::SetLocked(o) => {
                self.state.locked = o.locked;
                Ok(Applied::default())
            }
            Op::OpenVoting(o) => {
                self.state.voting = Some(Voting {
                    budget: o.budget,
                    show_tallies: o.show_tallies,
                });
                Ok(Applied::default())
            }
            Op::CloseVoting(_) => {
                self.state.voting = None;
                Ok(Applied::default())
            }
            Op::SetTheming(o) => {
                self.state.theming = o.theming;
                Ok(Applied::default())
            }
            Op::Spotlight(o) => {
                if let Some(id) = o.note
                    && !self.notes.contains_key(&id)
                {
                    return Err(note_missing());
                }
                self.state.spotlight = o.note;
                Ok(Applied::default())
            }
            Op::HideNote(o) | Op::RemoveNote(o) => {
                let remove = matches!(op, Op::RemoveNote(_));
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.moderation = Some(Moderation {
                    action: if remove {
                        ModerationState::Removed
                    } else {
                        ModerationState::Hidden
                    },
                    reason: o.reason.clone(),
                });
                if remove {
                    // The words are gone for good; only the placeholder and the audit entry stay.
                    note.text.clear();
                    note.votes.clear();
                    note.proxy_votes = 0;
                }
                note.updated_at = ctx.at;
                if self.state.spotlight == Some(o.note) {
                    self.state.spotlight = None;
                }
                self.audit.push(AuditEntry {
                    at: ctx.at,
                    action: if remove {
                        AuditAction::Remove
                    } else {
                        AuditAction::Hide
                    },
                    note: o.note,
                    reason: Some(o.reason.clone()),
                    by: ctx.author.clone().filter(|_| !self.state.anonymous),
                });
                Ok(Applied::default())
            }
            Op::UnhideNote(o) => {
                let note = self.notes.get_mut(&o.note).ok_or_else(note_missing)?;
                note.moderation = None;
                note.updated_at = ctx.at;
                self.audit.push(AuditEntry {
                    at: ctx.at,
                    action: AuditAction::Unhide,
                    note: o.note,
                    reason: None,
                    by: ctx.author.clone().filter(|_| !self.state.anonymous),
                });
                Ok(Applied::default())
            }
        }
    }

    /// Checks the board's invariants: used on every board read from a file, so a damaged or
    /// hand-made snapshot is refused rather than served.
    pub fn check_invariants(&self, limits: &Limits) -> Result<(), String> {
        text::check(&self.prompt, limits.prompt_chars, true)
            .map_err(|p| format!("prompt: {}", text_error("prompt", p)))?;
        if self.next_note_id > MAX_ID || self.next_theme_id > MAX_ID {
            return Err(format!("next ids must be at most {MAX_ID}"));
        }
        for (id, note) in &self.notes {
            if *id >= self.next_note_id {
                return Err(format!("note {id} is not below next_note_id"));
            }
            if Self::check_position(note.x, note.y, limits).is_err() {
                return Err(format!(
                    "note {id} has a position outside the board (x 0 to {}, y 0 to {})",
                    limits.board_width, limits.board_height
                ));
            }
            let removed = note
                .moderation
                .as_ref()
                .is_some_and(|m| m.action == ModerationState::Removed);
            if !(removed && note.text.is_empty()) {
                text::check(&note.text, limits.note_text_chars, true)
                    .map_err(|p| format!("note {id}: {}", text_error("note", p)))?;
            }
            if let Some(m) = &note.moderation {
                text::check(&m.reason, REASON_CHARS, false)
                    .map_err(|p| format!("note {id}: {}", text_error("reason", p)))?;
            }
            if let Some(name) = &note.author {
                text::check(name, limits.display_name_chars, false)
                    .map_err(|p| format!("note {id}: {}", text_error("author name", p)))?;
            }
            match note.theme {
                None => {}
                Some(t) => {
                    let theme = self
                        .themes
                        .get(&t)
                        .ok_or_else(|| format!("note {id} names missing theme {t}"))?;
                    if theme.notes.iter().filter(|&&n| n == *id).count() != 1 {
                        return Err(format!("note {id} is not listed exactly once in theme {t}"));
                    }
                }
            }
        }
        if let Some(n) = self.state.spotlight
            && !self.notes.contains_key(&n)
        {
            return Err(format!("the spotlight names missing note {n}"));
        }
        if let Some(name) = (!self.name.is_empty()).then_some(&self.name) {
            text::check(name, limits.prompt_chars, false)
                .map_err(|p| format!("room name: {}", text_error("room name", p)))?;
        }
        for (id, theme) in &self.themes {
            if *id >= self.next_theme_id {
                return Err(format!("theme {id} is not below next_theme_id"));
            }
            text::check(&theme.title, limits.theme_title_chars, false)
                .map_err(|p| format!("theme {id}: {}", text_error("theme title", p)))?;
            for n in &theme.notes {
                let note = self
                    .notes
                    .get(n)
                    .ok_or_else(|| format!("theme {id} lists missing note {n}"))?;
                if note.theme != Some(*id) {
                    return Err(format!("theme {id} lists note {n}, which is not in it"));
                }
            }
        }
        Ok(())
    }
}

/// Serialises a map keyed by id as a JSON list (simpler for browsers), and refuses duplicate or
/// mismatched ids when reading one.
mod by_id {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub trait HasId {
        fn id(&self) -> u64;
    }
    impl HasId for super::Note {
        fn id(&self) -> u64 {
            self.id
        }
    }
    impl HasId for super::Theme {
        fn id(&self) -> u64 {
            self.id
        }
    }

    pub fn serialize<S: Serializer, T: Serialize>(
        map: &BTreeMap<u64, T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<BTreeMap<u64, T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + HasId,
    {
        let list = Vec::<T>::deserialize(d)?;
        let mut map = BTreeMap::new();
        for item in list {
            let id = item.id();
            if map.insert(id, item).is_some() {
                return Err(D::Error::custom(format!("id {id} appears twice")));
            }
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::*;

    fn ctx(who: &str) -> OpContext {
        OpContext {
            actor: Some(ActorKey::new(who)),
            author: None,
            at: 1,
            role: Role::Participant,
        }
    }

    fn create(b: &mut Board, who: &str) -> NoteId {
        let op = Op::CreateNote(CreateNote {
            text: "hello".into(),
            colour: Colour::Yellow,
            x: 10.0,
            y: 10.0,
        });
        b.apply(&op, &ctx(who), &Limits::default())
            .unwrap()
            .created
            .unwrap()
    }

    #[test]
    fn only_the_author_edits_or_deletes() {
        let mut b = Board::new("p");
        let id = create(&mut b, "alice");
        let del = Op::DeleteNote(DeleteNote { note: id });
        let err = b.apply(&del, &ctx("bob"), &Limits::default()).unwrap_err();
        assert_eq!(err.reason, RejectReason::NotYours);
        assert!(b.apply(&del, &ctx("alice"), &Limits::default()).is_ok());
        assert!(b.notes.is_empty());
    }

    #[test]
    fn out_of_bounds_and_huge_coordinates_are_refused() {
        let mut b = Board::new("p");
        let id = create(&mut b, "a");
        for (x, y) in [(1e308, 0.0), (-1.0, 0.0), (0.0, 1e9), (f64::NAN, 0.0)] {
            let op = Op::MoveNote(MoveNote { note: id, x, y });
            let err = b.apply(&op, &ctx("a"), &Limits::default()).unwrap_err();
            assert_eq!(err.reason, RejectReason::OutOfBounds);
        }
    }

    #[test]
    fn theme_membership_stays_consistent() {
        let mut b = Board::new("p");
        let limits = Limits::default();
        let n = create(&mut b, "a");
        let t1 = b
            .apply(
                &Op::CreateTheme(CreateTheme {
                    title: "One".into(),
                }),
                &ctx("a"),
                &limits,
            )
            .unwrap()
            .created
            .unwrap();
        let t2 = b
            .apply(
                &Op::CreateTheme(CreateTheme {
                    title: "Two".into(),
                }),
                &ctx("a"),
                &limits,
            )
            .unwrap()
            .created
            .unwrap();
        for t in [Some(t1), Some(t2), Some(t2), None, Some(t1)] {
            let op = Op::SetNoteTheme(SetNoteTheme {
                note: n,
                theme: t,
                position: Some(7),
            });
            b.apply(&op, &ctx("b"), &limits).unwrap();
            b.check_invariants(&limits).unwrap();
        }
        b.apply(
            &Op::DeleteTheme(DeleteTheme { theme: t1 }),
            &ctx("b"),
            &limits,
        )
        .unwrap();
        assert_eq!(b.notes[&n].theme, None);
        b.check_invariants(&limits).unwrap();
    }

    #[test]
    fn duplicate_ids_in_a_file_are_refused() {
        let json = r#"{"prompt":"p","notes":[
            {"id":1,"text":"a","colour":"blue","x":0,"y":0,"author":null,"created_at":0,"updated_at":0,"theme":null},
            {"id":1,"text":"b","colour":"blue","x":0,"y":0,"author":null,"created_at":0,"updated_at":0,"theme":null}],
            "themes":[],"next_note_id":2,"next_theme_id":1}"#;
        let err = serde_json::from_str::<Board>(json).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
