//! Events: a group of breakout rooms run together by facilitators. Each event is saved in
//! `<data-dir>/events/<event-id>/event.json` and held in memory by the [`EventIndex`]: event id →
//! event, room id → event id, join code → room id.
//!
//! An event has one facilitator secret (192 random bits). Only its SHA-256 is kept, on disk and
//! in memory; the secret itself is shown once, in the answer that creates or replaces it, and is
//! never logged. Whoever presents it is a facilitator of every room of the event.
//!
//! Creating an event writes each room's folder first and `event.json` last, so a crash halfway
//! leaves no event pointing at missing rooms (at worst a few room folders no event mentions).
//!
//! Each event has a retention period (`retention_days`, 90 unless chosen at creation). When it
//! has passed, or when a facilitator asks, the event is purged: [`EventIndex::begin_purge`]
//! takes it out of the maps and out of `events/` (renamed to `<id>.purging`), and
//! [`crate::retention`] closes its rooms and deletes every file.
//!
//! The methods that create or change an event do blocking file I/O: call them from
//! `spawn_blocking`. The look-ups only read memory.

use crate::storage::{Storage, StorageError};
use bothy_shared::ids::{EventId, ID_ALPHABET, JoinCode, RoomId};
use bothy_shared::{Board, Limits, text};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;

/// The format version written to every `event.json`.
pub const EVENT_FORMAT: u32 = 1;
/// Most characters in an event's title.
pub const EVENT_TITLE_CHARS: usize = 120;
/// Most characters in a room's name.
pub const ROOM_NAME_CHARS: usize = 60;
/// Most rooms in one event.
pub const ROOMS_PER_EVENT: usize = 20;
/// Random bytes in a facilitator secret (shown as twice as many hex digits).
const SECRET_BYTES: usize = 24;
/// Attempts at a fresh id or code before giving up (a collision is retried, never overwritten).
const ATTEMPTS: usize = 8;
/// Days an event and its boards are kept when its creator does not say.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// The shortest and longest retention periods an event may have, in days (ten years at most).
pub const MIN_RETENTION_DAYS: u32 = 1;
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// Milliseconds in a day.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// An event as saved in `event.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    pub format: u32,
    pub id: EventId,
    pub title: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Days after `created_at` when the event and every file of it are deleted. Files written
    /// before retention existed have no such field and read as [`DEFAULT_RETENTION_DAYS`].
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// In an anonymous event no author name is stored or shown (each room's board says so too).
    pub anonymous: bool,
    /// SHA-256 of the facilitator secret; the secret itself is never stored.
    pub facilitator_hash: SecretHash,
    /// The event's rooms, in the order the facilitator gave them.
    pub rooms: Vec<EventRoom>,
}

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// Whether `days` is a retention period an event may have.
pub fn retention_allowed(days: u32) -> bool {
    (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days)
}

impl EventRecord {
    /// When the retention period ends, in milliseconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.created_at
            .saturating_add(u64::from(self.retention_days).saturating_mul(DAY_MS))
    }

    /// Whether the retention period has ended at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at()
    }
}

/// One room of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRoom {
    pub room: RoomId,
    pub code: JoinCode,
    /// The room's name as the facilitator gave it ("Table 3", "Housing").
    pub name: String,
}

/// The SHA-256 of a facilitator secret, saved as 64 lowercase hex digits. Compared in constant
/// time; its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `secret` hashes to this, in time that does not depend on where they differ.
    pub fn matches(&self, secret: &str) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("facilitator_hash must be 64 lowercase hex digits");
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&s, &mut hash).map_err(|_| bad())?;
        Ok(Self(hash))
    }
}

/// A facilitator secret, in the clear: only between its creation and the answer that shows it
/// once. Its `Debug` does not print it.
#[derive(Clone)]
pub struct FacilitatorSecret(String);

impl FacilitatorSecret {
    /// 24 random bytes (192 bits) from the operating system's generator, as 48 hex digits.
    fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The secret itself, to put in the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for FacilitatorSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FacilitatorSecret(<redacted>)")
    }
}

/// A request for a new event, checked: every text trimmed and within its limits.
#[derive(Debug, Clone)]
pub struct NewEvent {
    title: String,
    anonymous: bool,
    rooms: Vec<NewRoom>,
    /// Days the event is kept; [`DEFAULT_RETENTION_DAYS`] unless [`NewEvent::with_retention_days`].
    retention_days: u32,
    /// The rooms' boards when the event is restored from a snapshot (else empty boards).
    boards: Option<Vec<Board>>,
}

/// One room of a [`NewEvent`].
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: String,
    pub prompt: String,
}

/// Why a new event was refused; the message is for the person who filled in the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error("The title must be 1 to {EVENT_TITLE_CHARS} characters on one line.")]
    Title,
    #[error("An event has 1 to {ROOMS_PER_EVENT} rooms.")]
    RoomCount,
    #[error("Room {0}: the name must be 1 to {ROOM_NAME_CHARS} characters on one line.")]
    RoomName(usize),
    #[error("Room {room}: the prompt must be 1 to {max} characters, without control characters.")]
    Prompt { room: usize, max: usize },
    #[error(
        "The boards can be kept for {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days (retention_days)."
    )]
    Retention,
}

impl NewEvent {
    /// An event recreated from a snapshot that passed `EventSnapshot::check`: the rooms get
    /// these boards (with new ids, codes and secret).
    pub fn restored(
        title: String,
        anonymous: bool,
        retention_days: u32,
        boards: Vec<Board>,
    ) -> Self {
        Self {
            title,
            anonymous,
            rooms: boards
                .iter()
                .map(|b| NewRoom {
                    name: b.name.clone(),
                    prompt: b.prompt.clone(),
                })
                .collect(),
            retention_days,
            boards: Some(boards),
        }
    }

    /// Checks and trims what a facilitator asked for. Rooms are numbered from 1 in messages.
    pub fn new(
        title: &str,
        anonymous: bool,
        rooms: Vec<NewRoom>,
        limits: &Limits,
    ) -> Result<Self, InvalidEvent> {
        let title = title.trim().to_owned();
        if text::check(&title, EVENT_TITLE_CHARS, false).is_err() {
            return Err(InvalidEvent::Title);
        }
        if rooms.is_empty() || rooms.len() > ROOMS_PER_EVENT {
            return Err(InvalidEvent::RoomCount);
        }
        let rooms = rooms
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r.name.trim().to_owned();
                if text::check(&name, ROOM_NAME_CHARS, false).is_err() {
                    return Err(InvalidEvent::RoomName(i + 1));
                }
                let prompt = r.prompt.trim().to_owned();
                if text::check(&prompt, limits.prompt_chars, true).is_err() {
                    return Err(InvalidEvent::Prompt {
                        room: i + 1,
                        max: limits.prompt_chars,
                    });
                }
                Ok(NewRoom { name, prompt })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            title,
            anonymous,
            rooms,
            retention_days: DEFAULT_RETENTION_DAYS,
            boards: None,
        })
    }

    /// Keeps the event for `days` days (1 to 3650) instead of the default 90.
    pub fn with_retention_days(mut self, days: u32) -> Result<Self, InvalidEvent> {
        if !retention_allowed(days) {
            return Err(InvalidEvent::Retention);
        }
        self.retention_days = days;
        Ok(self)
    }

    pub fn rooms(&self) -> &[NewRoom] {
        &self.rooms
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }
}

/// A new event, with its secret in the clear to show once.
#[derive(Debug)]
pub struct CreatedEvent {
    pub event: Arc<EventRecord>,
    pub secret: FacilitatorSecret,
}

/// Why an event could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("there is no such event")]
    NoSuchEvent,
    #[error("no free {0} was found")]
    Exhausted(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where a join code leads.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeTarget {
    pub room: RoomId,
    pub name: String,
    pub event: EventId,
}

/// Every event, in memory, with the maps to find one from a room or a code. Shared by all
/// handlers; the locks are never held across an `.await` or a file write.
pub struct EventIndex {
    storage: Arc<Storage>,
    maps: RwLock<Maps>,
    /// Held while a secret is replaced or an event is purged, so two changes of one event
    /// cannot leave the file and the memory disagreeing (and a rotation cannot bring a purged
    /// event back into memory).
    changing: Mutex<()>,
}

#[derive(Default)]
struct Maps {
    events: HashMap<EventId, Arc<EventRecord>>,
    by_room: HashMap<RoomId, EventId>,
    by_code: HashMap<JoinCode, RoomId>,
    /// Codes handed to an event that is still being created, so no other creation takes them.
    reserved: HashSet<JoinCode>,
}

impl Maps {
    /// Adds an event to the maps. A room or code some other event already has (only possible
    /// in hand-edited files) keeps its first owner, with a warning.
    fn insert(&mut self, event: Arc<EventRecord>) {
        for r in &event.rooms {
            if let Some(other) = self.by_room.get(&r.room).filter(|e| **e != event.id) {
                tracing::warn!(room = %r.room, event = %event.id, %other, "a room belongs to two events; the first keeps it");
            } else {
                self.by_room.insert(r.room.clone(), event.id.clone());
            }
            if let Some(other) = self.by_code.get(&r.code).filter(|room| **room != r.room) {
                tracing::warn!(code = %r.code, room = %r.room, %other, "a join code is used twice; the first keeps it");
            } else {
                self.by_code.insert(r.code.clone(), r.room.clone());
            }
        }
        self.events.insert(event.id.clone(), event);
    }

    /// Takes an event out of the maps: its id, its rooms and its codes no longer lead anywhere.
    fn remove(&mut self, event: &EventId) -> Option<Arc<EventRecord>> {
        let record = self.events.remove(event)?;
        for r in &record.rooms {
            if self.by_room.get(&r.room) == Some(event) {
                self.by_room.remove(&r.room);
            }
            if self.by_code.get(&r.code) == Some(&r.room) {
                self.by_code.remove(&r.code);
            }
        }
        Some(record)
    }
}

impl fmt::Debug for EventIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = self.maps.read().map(|m| m.events.len()).unwrap_or(0);
        f.debug_struct("EventIndex")
            .field("events", &events)
            .finish_non_exhaustive()
    }
}

impl EventIndex {
    /// Reads every event from the data directory (blocking; at start-up).
    pub fn load(storage: Arc<Storage>) -> Result<Self, StorageError> {
        let mut maps = Maps::default();
        for event in storage.load_events()? {
            maps.insert(Arc::new(event));
        }
        tracing::info!(events = maps.events.len(), "events loaded");
        Ok(Self {
            storage,
            maps: RwLock::new(maps),
            changing: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        // A panic while the lock was held cannot leave the maps half-changed (every change is
        // one insert or remove), so a poisoned lock is still safe to use.
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The event, if there is one with this id.
    pub fn get(&self, event: &EventId) -> Option<Arc<EventRecord>> {
        self.read().events.get(event).cloned()
    }

    /// The events whose retention period has ended at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> Vec<EventId> {
        self.read()
            .events
            .values()
            .filter(|e| e.is_expired(now_ms))
            .map(|e| e.id.clone())
            .collect()
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.read().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event a room belongs to (rooms created before events existed belong to none).
    pub fn event_of(&self, room: &RoomId) -> Option<EventId> {
        self.read().by_room.get(room).cloned()
    }

    /// The room's entry in its event: its code and name.
    pub fn room(&self, room: &RoomId) -> Option<EventRoom> {
        let maps = self.read();
        let event = maps.events.get(maps.by_room.get(room)?)?;
        event.rooms.iter().find(|r| &r.room == room).cloned()
    }

    /// Where a join code leads, if anywhere.
    pub fn lookup_code(&self, code: &JoinCode) -> Option<CodeTarget> {
        let maps = self.read();
        let room = maps.by_code.get(code)?;
        let event_id = maps.by_room.get(room)?;
        let event = maps.events.get(event_id)?;
        let entry = event.rooms.iter().find(|r| &r.room == room)?;
        Some(CodeTarget {
            room: room.clone(),
            name: entry.name.clone(),
            event: event_id.clone(),
        })
    }

    /// Whether `secret` is the facilitator secret of the room's event. False for a room
    /// without an event. The comparison takes the same time wherever the secrets differ.
    pub fn is_facilitator(&self, room: &RoomId, secret: &str) -> bool {
        let hash = {
            let maps = self.read();
            maps.by_room
                .get(room)
                .and_then(|e| maps.events.get(e))
                .map(|e| e.facilitator_hash.clone())
        };
        check(hash.as_ref(), secret)
    }

    /// Whether `secret` is the event's facilitator secret. False for an unknown event.
    pub fn is_event_facilitator(&self, event: &EventId, secret: &str) -> bool {
        let hash = self
            .read()
            .events
            .get(event)
            .map(|e| e.facilitator_hash.clone());
        check(hash.as_ref(), secret)
    }

    /// Creates an event (blocking): every room's folder and first snapshot, then the event's
    /// folder and `event.json`, all fsynced. Ids and codes are random; one already taken is
    /// retried, never overwritten. Returns the event and its secret, to be shown once.
    pub fn create(&self, new: NewEvent) -> Result<CreatedEvent, EventError> {
        let codes = self.reserve_codes(new.rooms.len())?;
        let result = self.create_with_codes(new, &codes);
        let mut maps = self.write();
        for code in &codes {
            maps.reserved.remove(code);
        }
        if let Ok(created) = &result {
            maps.insert(created.event.clone());
        }
        result
    }

    fn reserve_codes(&self, n: usize) -> Result<Vec<JoinCode>, EventError> {
        let mut maps = self.write();
        let mut codes = Vec::with_capacity(n);
        for _ in 0..n {
            let code = (0..ATTEMPTS)
                .map(|_| new_code())
                .find(|c| !maps.by_code.contains_key(c) && !maps.reserved.contains(c))
                .ok_or(EventError::Exhausted("join code"))?;
            maps.reserved.insert(code.clone());
            codes.push(code);
        }
        Ok(codes)
    }

    fn create_with_codes(
        &self,
        new: NewEvent,
        codes: &[JoinCode],
    ) -> Result<CreatedEvent, EventError> {
        let mut rooms = Vec::with_capacity(new.rooms.len());
        let mut boards = new.boards.map(Vec::into_iter);
        for (spec, code) in new.rooms.into_iter().zip(codes) {
            let board = match boards.as_mut().and_then(Iterator::next) {
                Some(board) => board,
                None => Board::for_room(spec.name.clone(), spec.prompt, new.anonymous),
            };
            let room = self.create_room(board)?;
            rooms.push(EventRoom {
                room,
                code: code.clone(),
                name: spec.name,
            });
        }
        let id = self.claim_event_id()?;
        let secret = FacilitatorSecret::generate();
        let event = EventRecord {
            format: EVENT_FORMAT,
            id,
            title: new.title,
            created_at: now_ms(),
            retention_days: new.retention_days,
            anonymous: new.anonymous,
            facilitator_hash: secret.hash(),
            rooms,
        };
        self.storage.write_event(&event)?;
        tracing::info!(event = %event.id, rooms = event.rooms.len(), "event created");
        Ok(CreatedEvent {
            event: Arc::new(event),
            secret,
        })
    }

    fn create_room(&self, board: Board) -> Result<RoomId, EventError> {
        // Ten characters from 31 give ~50 bits; a collision is retried, never overwritten.
        for _ in 0..ATTEMPTS {
            let id = new_room_id();
            match self.storage.create_room(&id, board.clone()) {
                Ok(()) => return Ok(id),
                Err(StorageError::RoomExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EventError::Exhausted("room id"))
    }

    fn claim_event_id(&self) -> Result<EventId, EventError> {
        for _ in 0..ATTEMPTS {
            let id = new_event_id();
            match self.storage.create_event_dir(&id) {
                Ok(()) => return Ok(id),
                Err(StorageError::EventExists(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EventError::Exhausted("event id"))
    }

    /// Replaces the event's facilitator secret (blocking): the new hash is saved atomically
    /// before it takes effect, and from then on the old secret no longer works. Returns the new
    /// secret, to be shown once.
    pub fn rotate_secret(&self, event: &EventId) -> Result<FacilitatorSecret, EventError> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.get(event).ok_or(EventError::NoSuchEvent)?;
        let secret = FacilitatorSecret::generate();
        let mut changed = (*current).clone();
        changed.facilitator_hash = secret.hash();
        self.storage.write_event(&changed)?;
        self.write().events.insert(event.clone(), Arc::new(changed));
        tracing::info!(event = %event, "facilitator secret replaced");
        Ok(secret)
    }

    /// The first, committing step of a purge (blocking): renames the event's folder to
    /// `events/<id>.purging` (fsynced), so a restart never loads the event again, then takes it
    /// out of the maps, so its codes, links and secret stop working at once. Returns the event,
    /// whose rooms the caller must then close and delete
    /// ([`crate::storage::Storage::finish_event_purge`]). An unknown event changes nothing.
    pub fn begin_purge(&self, event: &EventId) -> Result<Arc<EventRecord>, EventError> {
        let _one_at_a_time = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        if self.get(event).is_none() {
            return Err(EventError::NoSuchEvent);
        }
        self.storage.begin_event_purge(event)?;
        let record = self.write().remove(event).ok_or(EventError::NoSuchEvent)?;
        tracing::info!(event = %event, rooms = record.rooms.len(), "event purge started");
        Ok(record)
    }
}

/// Compares a presented secret with a stored hash; with no hash, does the same work and says no.
fn check(hash: Option<&SecretHash>, secret: &str) -> bool {
    match hash {
        Some(h) => h.matches(secret),
        None => {
            // Same work as a real check, so timing does not tell which events exist.
            let _ = SecretHash([0; 32]).matches(secret);
            false
        }
    }
}

fn random_id() -> String {
    let alphabet = ID_ALPHABET.as_bytes();
    let mut rng = rand::rng();
    (0..10)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// A fresh random room id: 10 characters from [`ID_ALPHABET`].
pub fn new_room_id() -> RoomId {
    RoomId::parse(&random_id()).expect("generated ids are valid")
}

/// A fresh random event id: 10 characters from [`ID_ALPHABET`].
pub fn new_event_id() -> EventId {
    EventId::parse(&random_id()).expect("generated ids are valid")
}

/// A fresh random join code.
pub fn new_code() -> JoinCode {
    let mut rng = rand::rng();
    let n = JoinCode::ALPHABET.len();
    JoinCode::from_indexes(std::array::from_fn(|_| rng.random_range(0..n)))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Faults;

    fn index() -> (tempfile::TempDir, EventIndex) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let index = EventIndex::load(storage).unwrap();
        (dir, index)
    }

    fn new_event(rooms: usize) -> NewEvent {
        let rooms = (1..=rooms)
            .map(|i| NewRoom {
                name: format!("Table {i}"),
                prompt: format!("Question {i}?"),
            })
            .collect();
        NewEvent::new("Planning day", true, rooms, &Limits::default()).unwrap()
    }

    #[test]
    fn secrets_are_192_bits_and_never_printed() {
        let s = FacilitatorSecret::generate();
        assert_eq!(s.expose().len(), 48);
        assert!(s.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(s.expose(), FacilitatorSecret::generate().expose());
        assert!(!format!("{s:?}").contains(s.expose()));
        let hash = s.hash();
        assert!(!format!("{hash:?}").contains(&hex::encode(hash.0)));
        assert!(hash.matches(s.expose()));
        assert!(!hash.matches(""));
        assert!(!hash.matches(&s.expose()[1..]));
    }

    #[test]
    fn hashes_round_trip_as_lowercase_hex_only() {
        let hash = SecretHash::of("x");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<SecretHash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<SecretHash>(&json.to_uppercase()).is_err());
        assert!(serde_json::from_str::<SecretHash>("\"abcd\"").is_err());
    }

    #[test]
    fn new_events_are_checked_and_trimmed() {
        let limits = Limits::default();
        let room = |name: &str, prompt: &str| NewRoom {
            name: name.into(),
            prompt: prompt.into(),
        };
        let ok = NewEvent::new(" Day ", false, vec![room(" A ", " Why?\n ")], &limits).unwrap();
        assert_eq!(ok.title, "Day");
        assert_eq!(ok.rooms[0].name, "A");
        assert_eq!(ok.rooms[0].prompt, "Why?");
        let bad = |title: &str, rooms: Vec<NewRoom>| {
            NewEvent::new(title, true, rooms, &limits).unwrap_err()
        };
        assert_eq!(bad(" ", vec![room("A", "B")]), InvalidEvent::Title);
        assert_eq!(bad("a\nb", vec![room("A", "B")]), InvalidEvent::Title);
        assert_eq!(
            bad(&"t".repeat(121), vec![room("A", "B")]),
            InvalidEvent::Title
        );
        assert_eq!(bad("T", vec![]), InvalidEvent::RoomCount);
        assert_eq!(bad("T", vec![room("A", "B"); 21]), InvalidEvent::RoomCount);
        assert_eq!(
            bad("T", vec![room("A", "B"), room("", "B")]),
            InvalidEvent::RoomName(2)
        );
        assert_eq!(
            bad("T", vec![room(&"n".repeat(61), "B")]),
            InvalidEvent::RoomName(1)
        );
        assert_eq!(bad("T", vec![room("A\tB", "B")]), InvalidEvent::RoomName(1));
        assert!(matches!(
            bad("T", vec![room("A", &"p".repeat(301))]),
            InvalidEvent::Prompt { room: 1, .. }
        ));
        assert!(matches!(
            bad("T", vec![room("A", "a\u{7}b")]),
            InvalidEvent::Prompt { room: 1, .. }
        ));
        assert!(NewEvent::new("T", true, vec![room("A", "B"); 20], &limits).is_ok());
    }

    #[test]
    fn an_event_is_found_by_id_room_and_code_and_survives_a_reload() {
        let (dir, index) = index();
        let created = index.create(new_event(3)).unwrap();
        let event = created.event.clone();
        assert_eq!(event.rooms.len(), 3);
        let codes: HashSet<_> = event.rooms.iter().map(|r| r.code.clone()).collect();
        assert_eq!(codes.len(), 3, "codes are unique");
        for r in &event.rooms {
            assert_eq!(index.event_of(&r.room), Some(event.id.clone()));
            let target = index.lookup_code(&r.code).unwrap();
            assert_eq!((target.room, target.name), (r.room.clone(), r.name.clone()));
            assert!(index.is_facilitator(&r.room, created.secret.expose()));
            assert!(!index.is_facilitator(&r.room, "wrong"));
            assert!(dir.path().join("rooms").join(r.room.as_str()).is_dir());
        }
        assert!(index.is_event_facilitator(&event.id, created.secret.expose()));
        let file = dir
            .path()
            .join("events")
            .join(event.id.as_str())
            .join("event.json");
        let on_disk = std::fs::read_to_string(&file).unwrap();
        assert!(!on_disk.contains(created.secret.expose()));
        drop(index);
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let again = EventIndex::load(storage).unwrap();
        assert_eq!(again.get(&event.id).as_deref(), Some(&*event));
        assert!(again.is_event_facilitator(&event.id, created.secret.expose()));
    }

    #[test]
    fn rotation_replaces_the_secret_on_disk_and_in_memory() {
        let (dir, index) = index();
        let created = index.create(new_event(1)).unwrap();
        let id = created.event.id.clone();
        let room = created.event.rooms[0].room.clone();
        let new = index.rotate_secret(&id).unwrap();
        assert!(!index.is_event_facilitator(&id, created.secret.expose()));
        assert!(!index.is_facilitator(&room, created.secret.expose()));
        assert!(index.is_event_facilitator(&id, new.expose()));
        assert!(index.is_facilitator(&room, new.expose()));
        drop(index);
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let again = EventIndex::load(storage).unwrap();
        assert!(again.is_event_facilitator(&id, new.expose()));
        assert!(!again.is_event_facilitator(&id, created.secret.expose()));
        let unknown = EventId::parse("nosuchevent").unwrap();
        assert!(matches!(
            again.rotate_secret(&unknown),
            Err(EventError::NoSuchEvent)
        ));
    }

    #[test]
    fn rooms_without_an_event_have_no_facilitator() {
        let (_dir, index) = index();
        let room = RoomId::parse("plainroom").unwrap();
        assert_eq!(index.event_of(&room), None);
        assert!(!index.is_facilitator(&room, ""));
        assert!(!index.is_facilitator(&room, &hex::encode([0u8; 32])));
        let unknown = EventId::parse("nosuchevent").unwrap();
        assert!(!index.is_event_facilitator(&unknown, "x"));
    }

    #[test]
    fn an_interrupted_creation_or_a_damaged_file_is_skipped_not_fatal() {
        let (dir, index) = index();
        let created = index.create(new_event(1)).unwrap();
        drop(index);
        let events = dir.path().join("events");
        // A folder claimed but never given its event.json, a stray file, a damaged event.
        std::fs::create_dir(events.join("halfmade")).unwrap();
        std::fs::write(events.join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(events.join("damaged")).unwrap();
        std::fs::write(events.join("damaged").join("event.json"), "{not json").unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let again = EventIndex::load(storage).unwrap();
        assert_eq!(again.len(), 1);
        assert!(again.get(&created.event.id).is_some());
        assert_eq!(
            std::fs::read_to_string(events.join("damaged").join("event.json")).unwrap(),
            "{not json",
            "left as it was"
        );
    }

    #[test]
    fn generated_ids_and_codes_parse() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(JoinCode::parse(code.as_str()), Ok(code.clone()));
            assert_eq!(JoinCode::parse(&code.to_string()), Ok(code));
            assert_eq!(new_room_id().as_str().len(), 10);
            assert_eq!(new_event_id().as_str().len(), 10);
        }
    }

    #[test]
    fn retention_is_90_days_unless_chosen_and_read_as_90_from_older_files() {
        let limits = Limits::default();
        let rooms = || {
            vec![NewRoom {
                name: "A".into(),
                prompt: "B".into(),
            }]
        };
        let new = NewEvent::new("T", true, rooms(), &limits).unwrap();
        assert_eq!(new.retention_days(), DEFAULT_RETENTION_DAYS);
        for bad in [0, 3651, u32::MAX] {
            let new = NewEvent::new("T", true, rooms(), &limits).unwrap();
            assert_eq!(
                new.with_retention_days(bad).unwrap_err(),
                InvalidEvent::Retention
            );
        }
        let (dir, index) = index();
        let one = NewEvent::new("T", true, rooms(), &limits)
            .unwrap()
            .with_retention_days(1)
            .unwrap();
        let created = index.create(one).unwrap().event;
        assert_eq!(created.retention_days, 1);
        assert!(!created.is_expired(created.created_at + DAY_MS - 1));
        assert!(created.is_expired(created.created_at + DAY_MS));
        assert_eq!(
            index.expired(created.created_at + DAY_MS),
            vec![created.id.clone()]
        );
        drop(index);

        // A file written before retention existed, and one with a period out of range.
        let file = dir
            .path()
            .join("events")
            .join(created.id.as_str())
            .join("event.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("retention_days");
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Faults::default()).unwrap());
        let again = EventIndex::load(storage.clone()).unwrap();
        assert_eq!(
            again.get(&created.id).unwrap().retention_days,
            DEFAULT_RETENTION_DAYS
        );
        drop(again);
        v["retention_days"] = 0.into();
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let again = EventIndex::load(storage).unwrap();
        assert!(again.get(&created.id).is_none(), "refused, left as it is");
    }

    #[test]
    fn a_purge_forgets_the_event_and_renames_its_folder_first() {
        let (dir, index) = index();
        let gone = index.create(new_event(2)).unwrap();
        let kept = index.create(new_event(1)).unwrap().event;
        let id = gone.event.id.clone();
        let record = index.begin_purge(&id).unwrap();
        assert_eq!(record.rooms, gone.event.rooms);
        assert!(index.get(&id).is_none());
        assert!(!index.is_event_facilitator(&id, gone.secret.expose()));
        for r in &record.rooms {
            assert!(index.lookup_code(&r.code).is_none());
            assert_eq!(index.event_of(&r.room), None);
            assert!(!index.is_facilitator(&r.room, gone.secret.expose()));
        }
        let events = dir.path().join("events");
        assert!(!events.join(id.as_str()).exists());
        assert!(
            events
                .join(format!("{id}.purging"))
                .join("event.json")
                .is_file()
        );
        assert!(index.get(&kept.id).is_some());
        assert!(index.lookup_code(&kept.rooms[0].code).is_some());
        assert!(matches!(
            index.begin_purge(&id),
            Err(EventError::NoSuchEvent)
        ));
        assert!(matches!(
            index.rotate_secret(&id),
            Err(EventError::NoSuchEvent)
        ));
    }
}
