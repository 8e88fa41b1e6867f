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
