//! The operations a participant can ask the server to apply to a room's board.
//!
//! Each operation is a struct with `deny_unknown_fields`, wrapped in an enum tagged by `kind`
//! (strictness lives on the payload structs because serde does not honour it on internally
//! tagged enums, serde#2123).

use crate::ids::{NoteId, ThemeId};
use serde::{Deserialize, Serialize};

/// The fixed palette of note colours. Anything else is refused when the message is read, so no
/// free-form colour string ever reaches a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Yellow,
    Pink,
    Blue,
    Green,
    Orange,
    Purple,
}

impl Colour {
    pub const ALL: [Colour; 6] = [
        Colour::Yellow,
        Colour::Pink,
        Colour::Blue,
        Colour::Green,
        Colour::Orange,
        Colour::Purple,
    ];
}

/// An operation on a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// Post a new note. The server assigns its id.
    CreateNote(CreateNote),
    /// Change the text of one's own note.
    EditNote(EditNote),
    /// Change the colour of one's own note.
    RecolourNote(RecolourNote),
    /// Move a note on the free-placement board (anyone may move any note).
    MoveNote(MoveNote),
    /// Delete one's own note.
    DeleteNote(DeleteNote),
    /// Start a new, empty theme. The server assigns its id.
    CreateTheme(CreateTheme),
    /// Rename a theme.
    RenameTheme(RenameTheme),
    /// Delete a theme; its notes become unthemed.
    DeleteTheme(DeleteTheme),
    /// Put a note into a theme at a position, or take it out of any theme (`theme: null`).
    SetNoteTheme(SetNoteTheme),
    /// Give a note one of one's dots while voting is open.
    Vote(NoteRef),
    /// Take one of one's dots back from a note while voting is open.
    Unvote(NoteRef),
    /// Say whether one's own note may be quoted word for word in reports.
    SetQuotable(SetQuotable),

    // Facilitator operations: refused with `facilitator_only` from anyone else.
    /// Start private writing (`private`) or reveal every note (`open`).
    SetWriting(SetWriting),
    /// Start a countdown; at zero the server does `on_end`.
    StartTimer(StartTimer),
    /// Stop the countdown without doing anything.
    StopTimer(NoFields),
    /// Lock (read-only for participants) or unlock the board.
    SetLocked(SetLocked),
    /// Open dot voting with a number of dots per person.
    OpenVoting(OpenVoting),
    /// Close voting: the tallies are shown to everyone.
    CloseVoting(NoFields),
    /// Who may make and change themes.
    SetTheming(SetTheming),
    /// Show one note to everyone in the room, or stop (`note: null`).
    Spotlight(Spotlight),
    /// Hide a note behind a neutral placeholder, with a reason for the audit list.
    HideNote(Moderate),
    /// Show a hidden note again.
    UnhideNote(NoteRef),
    /// Remove a note's text for good, leaving a placeholder; the reason goes in the audit list.
    RemoveNote(Moderate),
    /// Add a note for someone without a device; it is marked as added by a facilitator.
    ProxyNote(CreateNote),
    /// Add a vote for someone without a device.
    ProxyVote(NoteRef),

    /// Sent by the server itself when a timer reaches zero; refused from any connection.
    TimerEnded(NoFields),
}

impl Op {
    /// True for operations only a facilitator may ask for.
    pub fn is_facilitator_only(&self) -> bool {
        matches!(
            self,
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
        )
    }

    /// True for operations that make or change themes (which facilitators may keep to
    /// themselves).
    pub fn is_theming(&self) -> bool {
        matches!(
            self,
            Op::CreateTheme(_) | Op::RenameTheme(_) | Op::DeleteTheme(_) | Op::SetNoteTheme(_)
        )
    }

    /// The note this operation is about, if any.
    pub fn note(&self) -> Option<NoteId> {
        match self {
            Op::EditNote(o) => Some(o.note),
            Op::RecolourNote(o) => Some(o.note),
            Op::SetQuotable(o) => Some(o.note),
            Op::MoveNote(o) => Some(o.note),
            Op::DeleteNote(o) => Some(o.note),
            Op::SetNoteTheme(o) => Some(o.note),
            Op::Vote(o) | Op::Unvote(o) | Op::UnhideNote(o) | Op::ProxyVote(o) => Some(o.note),
            Op::HideNote(o) | Op::RemoveNote(o) => Some(o.note),
            Op::Spotlight(o) => o.note,
            _ => None,
        }
    }
}

/// An operation with no fields: `{"kind": "stop_timer"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuotable {
    pub note: NoteId,
    pub quotable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRef {
    pub note: NoteId,
}

/// Whether participants see each other's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writing {
    /// Everyone sees every note.
    #[default]
    Open,
    /// Each participant sees only their own notes (and those from before), until the reveal.
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWriting {
    pub writing: Writing,
}

/// What happens when a timer reaches zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnEnd {
    #[default]
    Nothing,
    Lock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTimer {
    /// 1 second to 6 hours.
    pub seconds: u32,
    pub on_end: OnEnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLocked {
    pub locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenVoting {
    /// Dots per person, 1 to 99.
    pub budget: u32,
    /// Whether participants see the running tallies while voting is open.
    pub show_tallies: bool,
}

/// Who may make, rename, delete and fill themes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theming {
    #[default]
    Everyone,
    Facilitators,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTheming {
    pub theming: Theming,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spotlight {
    /// The note to show everyone, or `null` to stop. Required.
    #[serde(deserialize_with = "required_nullable")]
    pub note: Option<NoteId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moderate {
    pub note: NoteId,
    /// Why, for the audit list only facilitators see (1 to 200 characters).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNote {
    pub text: String,
    pub colour: Colour,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditNote {
    pub note: NoteId,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecolourNote {
    pub note: NoteId,
    pub colour: Colour,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveNote {
    pub note: NoteId,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteNote {
    pub note: NoteId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTheme {
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameTheme {
    pub theme: ThemeId,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteTheme {
    pub theme: ThemeId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetNoteTheme {
    pub note: NoteId,
    /// The theme to put the note in, or `null` to take it out of its theme. Required: a
    /// message that leaves it out is refused rather than read as `null`.
    #[serde(deserialize_with = "required_nullable")]
    pub theme: Option<ThemeId>,
    /// Where in the theme's list (0 = first); past the end means last. Ignored with `theme: null`.
    #[serde(default)]
    pub position: Option<u32>,
}

/// Reads an `Option` field that must be present (possibly `null`). With `deserialize_with`,
/// serde no longer treats a missing `Option` field as `None`.
fn required_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(d)
}
