//! What each person is shown of a board. The server stores one [`Board`]; every message and
//! every welcome is built from it through [`Board::view`] and [`Board::delivery`], so what a
//! participant may not see (someone else's private note, a hidden note's words, running
//! tallies, the audit list, any author key) is left out in one place.

use crate::board::{AuditEntry, Board, ModerationState, Note, OpContext, RoomState, Theme};
use crate::ids::{ActorKey, NoteId};
use crate::op::{Colour, Op, Writing};
use serde::{Deserialize, Serialize};

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer<'a> {
    /// Sees every note (private ones too, and hidden notes' words), tallies and the audit list;
    /// never an author key.
    Facilitator,
    /// Sees their own notes and every revealed one; a hidden note as a placeholder.
    Participant(&'a ActorKey),
    /// Someone with no notes of their own: what any participant sees.
    Anyone,
}

/// A board as one person is shown it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardView {
    pub name: String,
    pub prompt: String,
    pub notes: Vec<NoteView>,
    pub themes: Vec<Theme>,
    pub state: RoomState,
    /// Moderation actions: facilitators only (empty for participants).
    pub audit: Vec<AuditEntry>,
}

/// A note as one person is shown it. Fields at their usual value (no author, no theme, not
/// private, not moderated, not a proxy note, no tally, not quotable) are left out of the JSON:
/// a welcome carries every note, often over a slow phone connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteView {
    pub id: NoteId,
    /// Empty when the note is hidden (for participants) or removed.
    pub text: String,
    pub colour: Colour,
    pub x: f64,
    pub y: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<u64>,
    /// Written during private writing and not yet revealed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub private: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<ModerationState>,
    /// Why it was moderated: facilitators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation_reason: Option<String>,
    /// Added by a facilitator for someone without a device.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy: bool,
    /// Every dot on the note, or absent while the tallies are hidden from this person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<u32>,
    /// Its author agreed that it may be quoted in reports.
    #[serde(default, skip_serializing_if = "is_false")]
    pub quotable: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Who an applied operation is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Everyone in the room gets the `applied` message.
    Everyone,
    /// Only facilitators and these people (the one who asked, the note's author): it concerns
    /// a private note or a secret vote.
    Restricted(Vec<ActorKey>),
    /// Facilitators get `applied`; every participant gets a fresh `sync` of the board instead,
    /// because the change shows or hides things no operation can express (a reveal, a hidden
    /// note, tallies becoming visible) or carries what participants may not see (a reason).
    Resync,
}

impl Board {
    /// Whether this viewer may see this note at all.
    pub fn sees(&self, note: &Note, viewer: Viewer) -> bool {
        match viewer {
            Viewer::Facilitator => true,
            Viewer::Participant(actor) => !note.private || note.owner.as_ref() == Some(actor),
            Viewer::Anyone => !note.private,
        }
    }

    /// Whether this viewer is shown the running tallies.
    pub fn tallies_visible(&self, viewer: Viewer) -> bool {
        matches!(viewer, Viewer::Facilitator) || self.state.voting.is_none_or(|v| v.show_tallies)
    }

    /// True when some note is private: then participants' views differ from one another.
    pub fn has_private_notes(&self) -> bool {
        self.notes.values().any(|n| n.private)
    }

    /// The board as this viewer is shown it.
    pub fn view(&self, viewer: Viewer) -> BoardView {
        let facilitator = viewer == Viewer::Facilitator;
        let tallies = self.tallies_visible(viewer);
        let notes = self
            .notes
            .values()
            .filter(|n| self.sees(n, viewer))
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
                    theme: n.theme,
                    private: n.private,
                    moderation: n.moderation.as_ref().map(|m| m.action),
                    moderation_reason: n
                        .moderation
                        .as_ref()
                        .filter(|_| facilitator)
                        .map(|m| m.reason.clone()),
                    proxy: n.proxy,
                    votes: tallies.then(|| n.tally()),
                    quotable: n.quotable,
                }
            })
            .collect();
        let themes = self
            .themes
            .values()
            .map(|t| Theme {
                id: t.id,
                title: t.title.clone(),
                notes: t
                    .notes
                    .iter()
                    .copied()
                    .filter(|id| self.notes.get(id).is_some_and(|n| self.sees(n, viewer)))
                    .collect(),
            })
            .collect();
        BoardView {
            name: self.name.clone(),
            prompt: self.prompt.clone(),
            notes,
            themes,
            state: self.state.clone(),
            audit: if facilitator {
                self.audit.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// The board as any participant without notes of their own sees it.
    pub fn public(&self) -> BoardView {
        self.view(Viewer::Anyone)
    }

    /// This person's dots, by note, in note order.
    pub fn votes_of(&self, actor: &ActorKey) -> Vec<(NoteId, u32)> {
        self.notes
            .values()
            .filter_map(|n| n.votes.get(actor).map(|&v| (n.id, v)))
            .collect()
    }

    /// Who should be told about `op`, decided on the board as it was just before the operation
    /// was applied.
    pub fn delivery(&self, op: &Op, ctx: &OpContext) -> Delivery {
        let restricted_to = |note: Option<&Note>| {
            let mut people: Vec<ActorKey> = ctx.actor.iter().cloned().collect();
            if let Some(owner) = note.and_then(|n| n.owner.clone())
                && !people.contains(&owner)
            {
                people.push(owner);
            }
            Delivery::Restricted(people)
        };
        match op {
            Op::CreateNote(_) | Op::ProxyNote(_) => {
                if self.state.writing == Writing::Private {
                    restricted_to(None)
                } else {
                    Delivery::Everyone
                }
            }
            // A position in a theme counts every note in it; a participant who cannot see some
            // of them would place the note elsewhere, so they get the theme afresh.
            Op::SetNoteTheme(o)
                if o.theme.and_then(|t| self.themes.get(&t)).is_some_and(|t| {
                    t.notes
                        .iter()
                        .any(|id| *id != o.note && self.notes.get(id).is_some_and(|n| n.private))
                }) =>
            {
                Delivery::Resync
            }
            Op::EditNote(_)
            | Op::SetQuotable(_)
            | Op::RecolourNote(_)
            | Op::MoveNote(_)
            | Op::DeleteNote(_)
            | Op::SetNoteTheme(_) => {
                let note = op.note().and_then(|id| self.notes.get(&id));
                match note {
                    Some(n) if n.private => restricted_to(Some(n)),
                    _ => Delivery::Everyone,
                }
            }
            Op::Vote(_) | Op::Unvote(_) | Op::ProxyVote(_) => {
                let note = op.note().and_then(|id| self.notes.get(&id));
                if !self.state.voting.is_none_or(|v| v.show_tallies) {
                    // Blind voting: only the voter (and the facilitators) hear of a dot, not
                    // even the note's author.
                    restricted_to(None)
                } else if let Some(n) = note.filter(|n| n.private) {
                    restricted_to(Some(n))
                } else {
                    Delivery::Everyone
                }
            }
            Op::SetWriting(o) => {
                if o.writing == Writing::Open && self.has_private_notes() {
                    Delivery::Resync
                } else {
                    Delivery::Everyone
                }
            }
            Op::HideNote(_)
            | Op::UnhideNote(_)
            | Op::RemoveNote(_)
            | Op::OpenVoting(_)
            | Op::CloseVoting(_) => Delivery::Resync,
            Op::CreateTheme(_)
            | Op::RenameTheme(_)
            | Op::DeleteTheme(_)
            | Op::StartTimer(_)
            | Op::StopTimer(_)
            | Op::TimerEnded(_)
            | Op::SetLocked(_)
            | Op::SetTheming(_)
            | Op::Spotlight(_) => Delivery::Everyone,
        }
    }

    /// The author name an `applied` message carries: a new note's author in a named room,
    /// otherwise nobody (so a vote or a move never says who made it).
    pub fn shown_author(&self, op: &Op, ctx: &OpContext) -> Option<String> {
        match op {
            Op::CreateNote(_) if !self.state.anonymous => ctx.author.clone(),
            _ => None,
        }
    }
}

impl BoardView {
    /// A board to replay confirmed operations on, as a browser does: what this view shows,
    /// with no owners or voters (tallies become facilitator-added dots). The next ids come
    /// from the operations the server confirms (`created`), so they start just past the
    /// highest id shown.
    pub fn to_board(&self) -> Board {
        use crate::board::Moderation;
        let notes = self
            .notes
            .iter()
            .map(|n| {
                let note = Note {
                    id: n.id,
                    text: n.text.clone(),
                    colour: n.colour,
                    x: n.x,
                    y: n.y,
                    author: n.author.clone(),
                    created_at: n.created_at,
                    updated_at: n.updated_at,
                    theme: n.theme,
                    owner: None,
                    private: n.private,
                    moderation: n.moderation.map(|action| Moderation {
                        action,
                        reason: n.moderation_reason.clone().unwrap_or_default(),
                    }),
                    proxy: n.proxy,
                    votes: Default::default(),
                    proxy_votes: n.votes.unwrap_or(0),
                    quotable: n.quotable,
                };
                (n.id, note)
            })
            .collect();
        let themes = self.themes.iter().map(|t| (t.id, t.clone())).collect();
        Board {
            name: self.name.clone(),
            prompt: self.prompt.clone(),
            notes,
            themes,
            next_note_id: self.notes.iter().map(|n| n.id + 1).max().unwrap_or(1),
            next_theme_id: self.themes.iter().map(|t| t.id + 1).max().unwrap_or(1),
            state: self.state.clone(),
            audit: self.audit.clone(),
        }
    }
}
