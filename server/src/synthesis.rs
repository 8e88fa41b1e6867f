//! The synthesis board: themes that gather notes from several rooms of an event, each note
//! keeping its room of origin; the rooms themselves are never changed. Saved per event in
//! `events/<id>/synthesis.json` (atomic writes), changed by facilitators over HTTP one
//! operation at a time.

use crate::storage::{Storage, StorageError};
use bothy_shared::ids::EventId;
use bothy_shared::snapshot::{CROSS_THEMES_PER_EVENT, CrossTheme, NoteRef};
use bothy_shared::{Limits, text};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Mutex;

const SYNTHESIS_FILE: &str = "synthesis.json";
/// Most notes one cross-room theme holds (every note of a full event fits).
pub const NOTES_PER_CROSS_THEME: usize = 2000;

/// One event's synthesis board, as saved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synthesis {
    /// The id the next cross-room theme gets.
    pub next_id: u64,
    pub themes: Vec<CrossTheme>,
}

/// A change to the synthesis board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SynthesisOp {
    CreateTheme {
        title: String,
    },
    RenameTheme {
        theme: u64,
        title: String,
    },
    DeleteTheme {
        theme: u64,
    },
    /// Pull notes into a theme (out of any other cross-room theme).
    AddNotes {
        theme: u64,
        notes: Vec<NoteRef>,
    },
    RemoveNote {
        theme: u64,
        note: NoteRef,
    },
}

impl Synthesis {
    /// Applies one change, or changes nothing and says why. `exists` tells whether a note is
    /// on its room's board. Returns the id of a created theme.
    pub fn apply(
        &mut self,
        op: &SynthesisOp,
        limits: &Limits,
        exists: impl Fn(&NoteRef) -> bool,
    ) -> Result<Option<u64>, String> {
        let title_ok = |t: &str| {
            text::check(t, limits.theme_title_chars, false).map_err(|_| {
                format!(
                    "A theme title is 1 to {} characters on one line.",
                    limits.theme_title_chars
                )
            })
        };
        let missing = || "That cross-room theme is not there any more.".to_owned();
        match op {
            SynthesisOp::CreateTheme { title } => {
                title_ok(title)?;
                if self.themes.len() >= CROSS_THEMES_PER_EVENT {
                    return Err(format!(
                        "The synthesis board holds at most {CROSS_THEMES_PER_EVENT} themes."
                    ));
                }
                let id = self.next_id.max(1);
                self.next_id = id + 1;
                self.themes.push(CrossTheme {
                    id,
                    title: title.clone(),
                    notes: Vec::new(),
                });
                Ok(Some(id))
            }
            SynthesisOp::RenameTheme { theme, title } => {
                title_ok(title)?;
                let t = self.themes.iter_mut().find(|t| t.id == *theme);
                t.ok_or_else(missing)?.title = title.clone();
                Ok(None)
            }
            SynthesisOp::DeleteTheme { theme } => {
                let before = self.themes.len();
                self.themes.retain(|t| t.id != *theme);
                if self.themes.len() == before {
                    return Err(missing());
                }
                Ok(None)
            }
            SynthesisOp::AddNotes { theme, notes } => {
                if !self.themes.iter().any(|t| t.id == *theme) {
                    return Err(missing());
                }
                if let Some(n) = notes.iter().find(|n| !exists(n)) {
                    return Err(format!(
                        "Note {} is not on that room's board any more.",
                        n.note
                    ));
                }
                let adding: HashSet<&NoteRef> = notes.iter().collect();
                for t in &mut self.themes {
                    t.notes.retain(|n| !adding.contains(n));
                }
                let t = self
                    .themes
                    .iter_mut()
                    .find(|t| t.id == *theme)
                    .expect("checked above");
                let mut seen = HashSet::new();
                for n in notes {
                    if seen.insert(n) {
                        t.notes.push(n.clone());
                    }
                }
                if t.notes.len() > NOTES_PER_CROSS_THEME {
                    return Err(format!(
                        "A cross-room theme holds at most {} notes.",
                        text::grouped(NOTES_PER_CROSS_THEME)
                    ));
                }
                Ok(None)
            }
            SynthesisOp::RemoveNote { theme, note } => {
                let t = self.themes.iter_mut().find(|t| t.id == *theme);
                t.ok_or_else(missing)?.notes.retain(|n| n != note);
                Ok(None)
            }
        }
    }
}

/// Every event's synthesis board, loaded on first use; one lock per event so changes apply
/// one at a time.
#[derive(Default)]
pub struct Store {
    boards: DashMap<EventId, Arc<Mutex<Option<Synthesis>>>>,
}

impl Store {
    fn cell(&self, event: &EventId) -> Arc<Mutex<Option<Synthesis>>> {
        self.boards.entry(event.clone()).or_default().clone()
    }

    /// The event's synthesis board.
    pub async fn get(
        &self,
        storage: &Arc<Storage>,
        event: &EventId,
    ) -> Result<Synthesis, StorageError> {
        let cell = self.cell(event);
        let mut guard = cell.lock().await;
        if guard.is_none() {
            *guard = Some(load(storage.clone(), event.clone()).await?);
        }
        Ok(guard.clone().unwrap_or_default())
    }

    /// Applies a change with `check` (which gets the board, and saves it only if it changed).
    pub async fn change<T>(
        &self,
        storage: &Arc<Storage>,
        event: &EventId,
        change: impl FnOnce(&mut Synthesis) -> Result<T, String>,
    ) -> Result<Result<T, String>, StorageError> {
        let cell = self.cell(event);
        let mut guard = cell.lock().await;
        if guard.is_none() {
            *guard = Some(load(storage.clone(), event.clone()).await?);
        }
        let mut board = guard.clone().unwrap_or_default();
        let result = change(&mut board);
        if result.is_ok() && Some(&board) != guard.as_ref() {
            save(storage.clone(), event.clone(), board.clone()).await?;
            *guard = Some(board);
        }
        Ok(result)
    }

    /// Forgets an event (after a purge).
    pub fn forget(&self, event: &EventId) {
        self.boards.remove(event);
    }
}

/// Reads `synthesis.json` (an event without one has an empty board). Blocking inside.
async fn load(storage: Arc<Storage>, event: EventId) -> Result<Synthesis, StorageError> {
    tokio::task::spawn_blocking(move || read(&storage, &event))
        .await
        .map_err(|e| StorageError::Io {
            path: Default::default(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Reads an event's synthesis board from its folder. Blocking.
pub fn read(storage: &Storage, event: &EventId) -> Result<Synthesis, StorageError> {
    let path = storage.event_dir(event).join(SYNTHESIS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::BadSnapshot {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Synthesis::default()),
        Err(source) => Err(StorageError::Io { path, source }),
    }
}

async fn save(storage: Arc<Storage>, event: EventId, board: Synthesis) -> Result<(), StorageError> {
    tokio::task::spawn_blocking(move || write(&storage, &event, &board))
        .await
        .map_err(|e| StorageError::Io {
            path: Default::default(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Saves an event's synthesis board atomically. Blocking.
pub fn write(storage: &Storage, event: &EventId, board: &Synthesis) -> Result<(), StorageError> {
    let json = serde_json::to_vec(board).expect("synthesis always serialises");
    crate::storage::write_event_file(storage, event, SYNTHESIS_FILE, &json)
}
