//! The caps a board enforces. The server can be configured with other values; these defaults
//! are what the client is built for.

use serde::{Deserialize, Serialize};

/// Caps on one room's board. Text lengths are counted in Unicode scalar values (what Rust's
/// `str::chars` and JavaScript's `[...text].length` count), so the browser and server agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Most characters in a note.
    pub note_text_chars: usize,
    /// Most characters in a theme title.
    pub theme_title_chars: usize,
    /// Most characters in a display name.
    pub display_name_chars: usize,
    /// Most characters in a room's prompt.
    pub prompt_chars: usize,
    /// Most notes on one board (deleted notes do not count).
    pub notes_per_room: usize,
    /// Most themes on one board.
    pub themes_per_room: usize,
    /// The board's width in board units; x runs from 0 to this.
    pub board_width: f64,
    /// The board's height in board units; y runs from 0 to this.
    pub board_height: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            note_text_chars: 500,
            theme_title_chars: 80,
            display_name_chars: 40,
            prompt_chars: 300,
            notes_per_room: 2000,
            themes_per_room: 100,
            board_width: 3000.0,
            board_height: 2000.0,
        }
    }
}
