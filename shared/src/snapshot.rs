//! The event snapshot: one versioned JSON document holding every room of an event, for staff to
//! download, report from and restore. `docs/snapshot.md` describes it and
//! `docs/snapshot.schema.json` is its JSON Schema.
//!
//! Building one from boards ([`RoomExport::from_board`]) and checking one read from a file
//! ([`EventSnapshot::check`]) are pure; the server does the I/O.

use crate::board::{
    AuditEntry, Board, MAX_VOTE_BUDGET, ModerationState, REASON_CHARS, RoomState, Theme,
};
use crate::ids::{ActorKey, EventId, JoinCode, NoteId, RoomId};
use crate::limits::Limits;
use crate::op::Colour;
use crate::text;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What `format` must say.
pub const SNAPSHOT_FORMAT: &str = "bothy-event-snapshot";
/// The version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Most characters in an event title and a room name (as the server's events API checks).
pub const EVENT_TITLE_CHARS: usize = 120;
pub const ROOM_NAME_CHARS: usize = 60;
/// Most rooms in one event.
pub const ROOMS_PER_EVENT: usize = 20;
/// The longest retention period an event may have, in days (10 years).
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Most cross-room themes in one event's synthesis.
pub const CROSS_THEMES_PER_EVENT: usize = 200;

/// One event, every room, every note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSnapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// When the snapshot was taken, milliseconds since the Unix epoch.
    pub exported_at: u64,
    pub event: EventInfo,
    pub rooms: Vec<RoomExport>,
    /// Themes that gather notes from several rooms (the synthesis board).
    pub synthesis: Vec<CrossTheme>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInfo {
    pub id: String,
    pub title: String,
    /// No author names or pseudonyms anywhere when true.
    pub anonymous: bool,
    pub created_at: u64,
    /// Days the server keeps the event after it was created.
    pub retention_days: u32,
}

/// One room of the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomExport {
    pub id: String,
    pub name: String,
    pub prompt: String,
    /// The join code people typed.
    pub code: String,
    /// The room's last sequence number included.
    pub seq: u64,
    /// Private writing, lock, voting, theming, spotlight, timer, anonymity.
    pub state: RoomState,
    pub themes: Vec<Theme>,
    pub notes: Vec<NoteExport>,
    /// Every moderation action in the room.
    pub audit: Vec<AuditEntry>,
}

/// One note, with everything staff need to report on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteExport {
    pub id: NoteId,
    /// Empty for a removed note.
    pub text: String,
    pub colour: Colour,
    pub x: f64,
    pub y: f64,
    pub theme: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    /// Every dot, proxy dots included.
    pub votes: u32,
    /// Dots a facilitator added for people without a device (included in `votes`).
    pub proxy_votes: u32,
    pub moderation: Option<ModerationState>,
    pub moderation_reason: Option<String>,
    /// Added by a facilitator for someone without a device.
    pub proxy: bool,
    /// Never revealed (written in private writing that was not revealed).
    pub private: bool,
    /// The author agreed that the note may be quoted word for word.
    pub quotable: bool,
    /// The display name shown on the note (named events only).
    pub author: Option<String>,
    /// A pseudonym ("Person 3") standing for the same browser across the event's rooms, so staff
    /// can see that notes came from one person without knowing who (named events only).
    pub person: Option<String>,
}

/// A theme on the synthesis board: notes from any room, each keeping its room of origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossTheme {
    pub id: u64,
    pub title: String,
    pub notes: Vec<NoteRef>,
}

/// A note in a room of the event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRef {
    pub room: String,
    pub note: NoteId,
}

/// Hands out "Person 1", "Person 2", … for browsers, the same across an event's rooms. Notes
/// restored from a snapshot keep the pseudonym they had (see [`RoomExport::to_board`]).
#[derive(Debug, Default)]
pub struct Pseudonyms {
    given: HashMap<ActorKey, String>,
    taken: BTreeSet<u64>,
    next: u64,
}

/// The owner key a restored note gets for a pseudonym: nobody can present it.
const RESTORED_PREFIX: &str = "restored Person ";

impl Pseudonyms {
    /// Keeps the pseudonyms of restored notes on these boards, so new people get other numbers.
    /// Call it for every board of the event before [`RoomExport::from_board`].
    pub fn reserve(&mut self, board: &Board) {
        for owner in board.notes.values().filter_map(|n| n.owner.as_ref()) {
            if let Some(n) = owner
                .as_str()
                .strip_prefix(RESTORED_PREFIX)
                .and_then(|n| n.parse::<u64>().ok())
            {
                self.given.insert(owner.clone(), format!("Person {n}"));
                self.taken.insert(n);
            }
        }
    }

    pub fn of(&mut self, actor: &ActorKey) -> String {
        if let Some(p) = self.given.get(actor) {
            return p.clone();
        }
        let mut n = self.next.max(1);
        while self.taken.contains(&n) {
            n += 1;
        }
        self.next = n + 1;
        self.taken.insert(n);
        let p = format!("Person {n}");
        self.given.insert(actor.clone(), p.clone());
        p
    }
}

impl RoomExport {
    /// A room as staff get it. Owner keys never leave: a named event gets pseudonyms, an
    /// anonymous one nothing that links two notes.
    pub fn from_board(
        id: &str,
        code: &str,
        seq: u64,
        board: &Board,
        pseudonyms: &mut Pseudonyms,
    ) -> Self {
        pseudonyms.reserve(board);
        let anonymous = board.state.anonymous;
        let notes = board
            .notes
            .values()
            .map(|n| NoteExport {
                id: n.id,
                text: n.text.clone(),
                colour: n.colour,
                x: n.x,
                y: n.y,
                theme: n.theme,
                created_at: n.created_at,
                updated_at: n.updated_at,
                votes: n.tally(),
                proxy_votes: n.proxy_votes,
                moderation: n.moderation.as_ref().map(|m| m.action),
                moderation_reason: n.moderation.as_ref().map(|m| m.reason.clone()),
                proxy: n.proxy,
                private: n.private,
                quotable: n.quotable,
                author: if anonymous { None } else { n.author.clone() },
                person: match (&n.owner, anonymous) {
                    (Some(owner), false) => Some(pseudonyms.of(owner)),
                    _ => None,
                },
            })
            .collect();
        Self {
            id: id.to_owned(),
            name: board.name.clone(),
            prompt: board.prompt.clone(),
            code: code.to_owned(),
            seq,
            state: board.state.clone(),
            themes: board.themes.values().cloned().collect(),
            notes,
            audit: board.audit.clone(),
        }
    }

    /// The room as a board again (for a restore). The browsers behind the notes are gone, so
    /// each note gets a placeholder owner nobody can present (one per pseudonym, else one per
    /// note): nobody can edit or delete it any more, and a re-export gives the same pseudonyms.
    /// People's dots are kept under one placeholder voter, apart from facilitators' dots. The
    /// next ids continue after the highest in the file.
    pub fn to_board(&self) -> Board {
        use crate::board::{Moderation, Note};
        let notes = self
            .notes
            .iter()
            .map(|n| {
                let owner = match (&n.person, n.proxy) {
                    (_, true) => None,
                    (Some(person), false) => Some(ActorKey::new(format!(
                        "{RESTORED_PREFIX}{}",
                        person.trim_start_matches("Person ")
                    ))),
                    (None, false) => Some(ActorKey::new(format!("restored note {}", n.id))),
                };
                let people_dots = n.votes.saturating_sub(n.proxy_votes);
                let votes = if people_dots > 0 {
                    BTreeMap::from([(ActorKey::new("restored dots"), people_dots)])
                } else {
                    BTreeMap::new()
                };
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
                    owner,
                    private: n.private,
                    moderation: n.moderation.map(|action| Moderation {
                        action,
                        reason: n.moderation_reason.clone().unwrap_or_default(),
                    }),
                    proxy: n.proxy,
                    votes,
                    proxy_votes: n.proxy_votes,
                    quotable: n.quotable,
                };
                (n.id, note)
            })
            .collect();
        Board {
            name: self.name.clone(),
            prompt: self.prompt.clone(),
            notes,
            themes: self.themes.iter().map(|t| (t.id, t.clone())).collect(),
            next_note_id: self
                .notes
                .iter()
                .map(|n| n.id.saturating_add(1))
                .max()
                .unwrap_or(1),
            next_theme_id: self
                .themes
                .iter()
                .map(|t| t.id.saturating_add(1))
                .max()
                .unwrap_or(1),
            state: self.state.clone(),
            audit: self.audit.clone(),
        }
    }
}

impl EventSnapshot {
    /// Everything a snapshot read from a file must satisfy before it is used: the format and
    /// version, every text under the same limits as live input, ids unique and every reference
    /// resolving, every room a valid board. The message names the problem.
    pub fn check(&self, limits: &Limits) -> Result<(), String> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(format!(
                "this is not a Bothy event snapshot (\"format\" must be \"{SNAPSHOT_FORMAT}\")"
            ));
        }
        if self.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {} is not supported (this server reads version {SNAPSHOT_VERSION})",
                self.version
            ));
        }
        EventId::parse(&self.event.id).map_err(|e| format!("the event id: {e}"))?;
        text::check(&self.event.title, EVENT_TITLE_CHARS, false)
            .map_err(|p| format!("the event title: {}", describe(p)))?;
        if !(1..=MAX_RETENTION_DAYS).contains(&self.event.retention_days) {
            return Err(format!(
                "the retention period must be 1 to {MAX_RETENTION_DAYS} days; it is {}",
                self.event.retention_days
            ));
        }
        if self.rooms.is_empty() || self.rooms.len() > ROOMS_PER_EVENT {
            return Err(format!(
                "an event has 1 to {ROOMS_PER_EVENT} rooms; this one has {}",
                self.rooms.len()
            ));
        }
        let mut room_ids = BTreeSet::new();
        let mut notes_by_room: HashMap<&str, BTreeSet<NoteId>> = HashMap::new();
        for (i, room) in self.rooms.iter().enumerate() {
            let at = format!("room {} ({:?})", i + 1, short(&room.name));
            RoomId::parse(&room.id).map_err(|e| format!("{at}: the room id: {e}"))?;
            JoinCode::parse(&room.code).map_err(|e| format!("{at}: the join code: {e}"))?;
            if !room_ids.insert(room.id.as_str()) {
                return Err(format!("{at}: the room id {:?} appears twice", room.id));
            }
            text::check(&room.name, ROOM_NAME_CHARS, false)
                .map_err(|p| format!("{at}: the name: {}", describe(p)))?;
            if room.state.anonymous != self.event.anonymous {
                return Err(format!("{at}: anonymity differs from the event's"));
            }
            if room.notes.len() > limits.notes_per_room {
                return Err(format!(
                    "{at}: {} notes, more than the {} a board holds",
                    room.notes.len(),
                    limits.notes_per_room
                ));
            }
            if room.themes.len() > limits.themes_per_room {
                return Err(format!(
                    "{at}: {} themes, more than the {} a board holds",
                    room.themes.len(),
                    limits.themes_per_room
                ));
            }
            let mut ids = BTreeSet::new();
            for n in &room.notes {
                if !ids.insert(n.id) {
                    return Err(format!("{at}: note id {} appears twice", n.id));
                }
                if n.proxy_votes > n.votes {
                    return Err(format!("{at}: note {} has more proxy dots than dots", n.id));
                }
                if self.event.anonymous && (n.author.is_some() || n.person.is_some()) {
                    return Err(format!(
                        "{at}: note {} names an author in an anonymous event",
                        n.id
                    ));
                }
                match (n.moderation, &n.moderation_reason) {
                    (Some(ModerationState::Removed), _) if !n.text.is_empty() => {
                        return Err(format!(
                            "{at}: note {} was removed, but its words are in the file",
                            n.id
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(format!(
                            "{at}: note {} has a moderation reason but is not moderated",
                            n.id
                        ));
                    }
                    _ => {}
                }
                if let Some(p) = &n.person {
                    text::check(p, limits.display_name_chars, false)
                        .map_err(|e| format!("{at}: note {} person: {}", n.id, describe(e)))?;
                }
            }
            if let Some(v) = room.state.voting
                && !(1..=MAX_VOTE_BUDGET).contains(&v.budget)
            {
                return Err(format!(
                    "{at}: voting gives each person 1 to {MAX_VOTE_BUDGET} dots; this says {}",
                    v.budget
                ));
            }
            if let Some(id) = room.state.spotlight {
                let shown = room
                    .notes
                    .iter()
                    .find(|n| n.id == id)
                    .is_some_and(|n| !n.private && n.moderation.is_none());
                if !shown {
                    return Err(format!(
                        "{at}: the spotlight is on note {id}, which not everyone can read"
                    ));
                }
            }
            for (k, a) in room.audit.iter().enumerate() {
                let entry = format!("{at}: audit entry {}", k + 1);
                if let Some(reason) = &a.reason {
                    text::check(reason, REASON_CHARS, false)
                        .map_err(|p| format!("{entry}: the reason: {}", describe(p)))?;
                }
                if let Some(by) = &a.by {
                    if self.event.anonymous {
                        return Err(format!(
                            "{entry}: names a facilitator in an anonymous event"
                        ));
                    }
                    text::check(by, limits.display_name_chars, false)
                        .map_err(|p| format!("{entry}: the name: {}", describe(p)))?;
                }
            }
            let mut theme_ids = BTreeSet::new();
            for t in &room.themes {
                if !theme_ids.insert(t.id) {
                    return Err(format!("{at}: theme id {} appears twice", t.id));
                }
            }
            room.to_board()
                .check_invariants(limits)
                .map_err(|e| format!("{at}: {e}"))?;
            notes_by_room.insert(room.id.as_str(), ids);
        }
        if self.synthesis.len() > CROSS_THEMES_PER_EVENT {
            return Err(format!(
                "at most {CROSS_THEMES_PER_EVENT} cross-room themes; this has {}",
                self.synthesis.len()
            ));
        }
        let mut cross_ids = BTreeSet::new();
        let mut placed = BTreeSet::new();
        for t in &self.synthesis {
            let at = format!("cross-room theme {} ({:?})", t.id, short(&t.title));
            if !cross_ids.insert(t.id) {
                return Err(format!("{at}: the id appears twice"));
            }
            text::check(&t.title, limits.theme_title_chars, false)
                .map_err(|p| format!("{at}: the title: {}", describe(p)))?;
            for r in &t.notes {
                let exists = notes_by_room
                    .get(r.room.as_str())
                    .is_some_and(|ids| ids.contains(&r.note));
                if !exists {
                    return Err(format!(
                        "{at}: note {} of room {:?} is not in the snapshot",
                        r.note,
                        short(&r.room)
                    ));
                }
                if !placed.insert(r) {
                    return Err(format!(
                        "{at}: note {} of room {:?} is in two cross-room themes",
                        r.note,
                        short(&r.room)
                    ));
                }
            }
        }
        Ok(())
    }
}

fn describe(p: text::TextProblem) -> String {
    match p {
        text::TextProblem::Empty => "it is empty".into(),
        text::TextProblem::TooLong { max } => format!("it is longer than {max} characters"),
        text::TextProblem::ControlCharacter => "it contains characters that cannot be shown".into(),
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}
