//! The WebSocket protocol, version [`PROTOCOL_VERSION`]. Every message is one JSON text frame
//! with a `type` field. `docs/protocol.md` shows a literal example of each, and the tests in
//! `shared/tests/wire.rs` pin those examples.
//!
//! The room is fixed by the URL at upgrade (`/ws/{room}`), never by a field in a message.

use crate::board::RejectReason;
use crate::ids::{NoteId, OpId};
use crate::op::Op;
use crate::view::BoardView;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The protocol version this build speaks. A join with another version is closed with
/// [`close::BAD_JOIN`].
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the server uses, with the reason text it sends.
pub mod close {
    /// The server is shutting down; reconnect shortly.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame was sent; Bothy speaks JSON text frames only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame or message was larger than the server's limit.
    pub const TOO_BIG: u16 = 1009;
    /// The room could not be opened (its files could not be read).
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The first message was not a valid `join`, or its protocol version is not supported.
    pub const BAD_JOIN: u16 = 4000;
    /// No `join` arrived in time after the upgrade.
    pub const JOIN_TIMEOUT: u16 = 4001;
    /// Nothing, not even a pong, arrived for two ping intervals: the peer is gone.
    pub const NO_PONG: u16 = 4002;
    /// The facilitator link this connection joined with was changed; join again with the new
    /// one.
    pub const FACILITATOR_LINK_CHANGED: u16 = 4003;
    /// The room in the URL does not exist.
    pub const NO_SUCH_ROOM: u16 = 4004;
    /// The connection could not keep up with the room; reconnect to catch up.
    pub const TOO_SLOW: u16 = 4008;
}

/// A message from a browser to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message on every connection.
    Join(Join),
    /// Ask for an operation on the board.
    Op(OpMessage),
    /// Keep-alive; the server answers `pong`.
    Ping(Empty),
}

/// A message with no fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The browser's random identity token (kept in local storage), so a reload or reconnect is
    /// the same person. It is never sent back or shown to anyone.
    pub token: String,
    /// The last sequence number this browser saw in this room, if any: the server then sends
    /// only what was missed.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// The display name to show on new notes; `null` or absent for anonymous. Ignored in an
    /// anonymous event.
    #[serde(default)]
    pub name: Option<String>,
    /// The event's facilitator secret (from the facilitator link), to join as a facilitator.
    /// A wrong secret closes the connection with [`close::BAD_JOIN`]. Never sent back.
    #[serde(default)]
    pub facilitator: Option<Secret>,
}

// The token must never appear in a log either: `Debug` leaves it out.
impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("version", &self.version)
            .field("token", &"…")
            .field("last_seq", &self.last_seq)
            .field("name", &self.name)
            .field("facilitator", &self.facilitator)
            .finish()
    }
}

/// A secret that must never appear in a log: its `Debug` shows only that it is there.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpMessage {
    /// Chosen by the client; a resend with the same id is applied at most once.
    pub op_id: OpId,
    #[serde(deserialize_with = "object_only")]
    pub op: Op,
}

/// Reads an operation only from a JSON object, each key at most once: serde's internally tagged
/// enums would also take an array whose first item is the tag, where unknown-field checks do not
/// apply, and a map would silently keep the last of two equal keys (so a reader that keeps the
/// first would see another operation than the server applies). Duplicate keys outside `op` are
/// refused by the derived code already.
fn object_only<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
    let map = d.deserialize_map(UniqueKeys)?;
    Op::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

/// Collects a JSON object, refusing a key that appears twice.
struct UniqueKeys;

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = serde_json::Map<String, serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut access: A,
    ) -> Result<Self::Value, A::Error> {
        let mut map = serde_json::Map::new();
        while let Some((key, value)) = access.next_entry::<String, serde_json::Value>()? {
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{key}`"
                )));
            }
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// A message from the server to a browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `join`: the board (or `null` when only missed changes follow) at `seq`.
    Welcome(Welcome),
    /// Replace your board with this one: sent to participants after a change that shows or
    /// hides things (a reveal, a hidden note, voting opening or closing).
    Sync(Sync),
    /// A confirmed, saved operation, sent to everyone in the room including its author.
    Applied(AppliedOp),
    /// A resent operation that was already applied at `seq` (sent to its author only).
    AlreadyApplied(AlreadyApplied),
    /// An operation that was refused (sent to its author only). Nothing changed.
    Rejected(Rejected),
    /// How many people are in the room now.
    Presence(Presence),
    /// The room cannot save changes for now, so it accepts none.
    ReadOnly(Notice),
    /// A message that could not be used (the connection stays open).
    Error(ErrorMessage),
    /// The answer to `ping`.
    Pong(Empty),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Welcome {
    pub version: u32,
    pub room: String,
    /// The sequence number of the last operation included.
    pub seq: u64,
    /// The whole board as this person may see it, or `null`: when the browser's `last_seq` was
    /// recent (then the `applied` messages it missed follow, up to `seq`), or when the board is
    /// too big to send here (then `board_url` is set).
    pub board: Option<BoardView>,
    /// Where to fetch the board at `seq` (once, within a minute) when it was too big to put in
    /// the welcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_url: Option<String>,
    /// Set when `mine` and `my_votes` are as of a later `seq` than the linked board's (the
    /// board is one made moments ago for others joining too, and the changes since it follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mine_seq: Option<u64>,
    /// Ids of the notes this person wrote (they may edit and delete them).
    pub mine: Vec<NoteId>,
    /// This person's dots: `[note id, dots]` pairs.
    pub my_votes: Vec<(NoteId, u32)>,
    /// People in the room, this one included.
    pub presence: u32,
    /// How many of those people are here as facilitators.
    pub facilitators: u32,
    /// True when the room cannot save changes for now.
    pub read_only: bool,
    /// How this connection joined.
    pub role: JoinedAs,
    /// Server time, milliseconds since the Unix epoch (for timers on a skewed clock).
    pub now: u64,
}

/// How a connection joined a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinedAs {
    Participant,
    Facilitator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    pub seq: u64,
    pub board: BoardView,
    pub mine: Vec<NoteId>,
    pub my_votes: Vec<(NoteId, u32)>,
}

/// [`Sync`] for sending, with the board pre-serialised (shared by everyone who sees the same).
#[derive(Debug, Serialize)]
pub struct SyncOut<'a> {
    #[serde(rename = "type")]
    pub kind: SyncTag,
    pub seq: u64,
    pub board: &'a RawValue,
    pub mine: &'a [NoteId],
    pub my_votes: &'a [(NoteId, u32)],
}

/// Always serialises as `"sync"`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTag {
    Sync,
}

/// The same message as [`Welcome`] for sending, with the board as pre-serialised JSON so a
/// room serialises its board once per change, not once per person joining.
#[derive(Debug, Serialize)]
pub struct WelcomeOut<'a> {
    #[serde(rename = "type")]
    pub kind: WelcomeTag,
    pub version: u32,
    pub room: &'a str,
    pub seq: u64,
    pub board: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mine_seq: Option<u64>,
    pub mine: &'a [NoteId],
    pub my_votes: &'a [(NoteId, u32)],
    pub presence: u32,
    pub facilitators: u32,
    pub read_only: bool,
    pub role: JoinedAs,
    pub now: u64,
}

/// Always serialises as `"welcome"`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WelcomeTag {
    Welcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedOp {
    pub seq: u64,
    pub op_id: OpId,
    /// Server time the operation was applied, milliseconds since the Unix epoch.
    pub at: u64,
    /// A new note's author as shown to others: their display name, or `null` when anonymous
    /// (always `null` for other operations).
    pub author: Option<String>,
    pub op: Op,
    /// The id of the note or theme this operation created, if any.
    pub created: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlreadyApplied {
    pub op_id: OpId,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    pub op_id: OpId,
    pub reason: RejectReason,
    /// Plain English, for the author.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// People in the room (a person with two tabs open counts once).
    pub count: u32,
    /// How many of those people are here as facilitators.
    pub facilitators: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub message: String,
}

/// Why a message could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON at all.
    MalformedJson,
    /// JSON, but the `type` is missing or not one this server knows.
    UnknownType,
    /// A known `type` with missing, extra or wrongly typed fields.
    InvalidMessage,
    /// A second `join` on the same connection.
    AlreadyJoined,
    /// Messages are arriving faster than the server allows; this one was not read.
    RateLimited,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorMessage {
    pub code: ErrorCode,
    pub message: String,
}

/// Why a text frame could not be read as a [`ClientMessage`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    /// The `op_id` of an `op` message whose operation could not be read, so the author can be
    /// sent a `rejected` for it.
    pub op_id: Option<OpId>,
}

/// Reads one client message. On failure, says what kind of failure it was; the happy path parses
/// once.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, DecodeError> {
    // Messages are JSON objects; the array forms serde would also accept are refused.
    if !text.trim_start().starts_with('{') {
        let code = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(_) => ErrorCode::UnknownType,
            Err(_) => ErrorCode::MalformedJson,
        };
        return Err(DecodeError {
            code,
            message: "A message must be a JSON object with a \"type\".".into(),
            op_id: None,
        });
    }
    let err = match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(DecodeError {
                code: ErrorCode::MalformedJson,
                message: format!("The message is not valid JSON ({}).", short(&e.to_string())),
                op_id: None,
            });
        }
    };
    let kind = value.get("type").and_then(|t| t.as_str());
    match kind {
        Some("join") | Some("op") | Some("ping") => {}
        _ => {
            return Err(DecodeError {
                code: ErrorCode::UnknownType,
                message: "The message has no known \"type\" (expected join, op or ping).".into(),
                op_id: None,
            });
        }
    }
    let op_id = if kind == Some("op") {
        value
            .get("op_id")
            .and_then(|v| v.as_str())
            .and_then(|s| OpId::parse(s).ok())
    } else {
        None
    };
    Err(DecodeError {
        code: ErrorCode::InvalidMessage,
        message: format!(
            "The {} message is not right: {}.",
            kind.unwrap_or("?"),
            short(&err.to_string())
        ),
        op_id,
    })
}

/// Keeps error text short: serde's messages can quote the input.
fn short(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_repeated_inside_an_op_is_refused_like_one_outside_it() {
        let twice = r#"{"type":"op","op_id":"a1","op":{"kind":"create_note","text":"shown","text":"applied","colour":"yellow","x":1,"y":1}}"#;
        let e = decode_client_message(twice).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert_eq!(
            e.op_id.map(|o| o.as_str().to_owned()).as_deref(),
            Some("a1")
        );
        assert!(
            e.message.contains("duplicate field `text`"),
            "{}",
            e.message
        );
        let outside =
            r#"{"type":"op","op_id":"a1","op_id":"a2","op":{"kind":"delete_note","note":1}}"#;
        assert_eq!(
            decode_client_message(outside).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        let once = r#"{"type":"op","op_id":"a1","op":{"kind":"delete_note","note":1}}"#;
        assert!(decode_client_message(once).is_ok());
        // Arrays are still refused.
        let array = r#"{"type":"op","op_id":"a1","op":["delete_note",1]}"#;
        assert!(decode_client_message(array).is_err());
    }

    #[test]
    fn a_join_in_a_log_shows_neither_token_nor_secret() {
        let text = r#"{"type":"join","version":1,"token":"tok-8d1e6a0c42","name":"Ailsa","facilitator":"sec-5b7f"}"#;
        let shown = format!("{:?}", decode_client_message(text).unwrap());
        assert!(shown.contains("Ailsa"), "{shown}");
        assert!(!shown.contains("tok-8d1e6a0c42"), "{shown}");
        assert!(!shown.contains("sec-5b7f"), "{shown}");
    }
}
