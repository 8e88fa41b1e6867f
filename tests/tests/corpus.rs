//! The bad-input corpus (issue 6): every case in `tests/corpus/*.jsonl`, run against a real
//! server over real sockets. `tests/corpus/README.md` describes the files.
//!
//! Each layer (transport, json, protocol, content) is one test with its own server and one
//! shared room, plus a second room whose note and theme ids are "foreign" to the first. A
//! bystander stays joined to the shared room through every case. Every case asserts:
//! - its expected outcome (`accepted`, an `error` code, a `rejected` reason, a close code or an
//!   HTTP status), and for accepted text that it was stored verbatim;
//! - no panic anywhere in this process (a panic hook counts them; the server runs in-process),
//!   and the server keeps serving: a fresh client joins and gets a `pong`;
//! - no state change unless accepted: the fresh client's board and seq equal the bystander's
//!   replica, which moves only on the `applied` messages the case legitimately caused;
//! - other clients unaffected: the bystander receives nothing (besides presence counts) but
//!   those `applied` messages, and is still connected.
//!
//! The counts by layer and outcome are printed (`--no-capture` shows them).

use bothy_shared::protocol::{
    self, AppliedOp, ClientMessage, ErrorCode, Join, PROTOCOL_VERSION, ServerMessage,
};
use bothy_shared::{BoardView, Op, OpId, RejectReason};
use bothy_tests::ops::*;
use bothy_tests::raw::{self, Frame, RawSocket, ReadEnd, Upgrade, opcode};
use bothy_tests::{Client, Replica, TestServer};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// The longest any one wait in a case may take.
const WAIT: Duration = Duration::from_secs(5);
/// The corpus must keep at least this many cases.
const MIN_CASES: usize = 300;
const LAYERS: [&str; 4] = ["transport", "json", "protocol", "content"];
/// A well-formed room id that no room has.
const MISSING_ROOM: &str = "nosuchroom0";
/// The text of the note a joined-with-a-name case posts to show the name it was given.
const SIGNED: &str = "signed";

// ---------------------------------------------------------------------------------------------
// Panics anywhere in the process (the server runs in it) are counted and attributed to a case.
// ---------------------------------------------------------------------------------------------

static PANICS: AtomicUsize = AtomicUsize::new(0);
static CURRENT: Mutex<String> = Mutex::new(String::new());

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            let case = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
            eprintln!("panic while running corpus case {case:?}");
            previous(info);
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------------------------

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// One line of `transport.jsonl`, `json.jsonl` or `protocol.jsonl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseLine {
    id: String,
    layer: String,
    via: Via,
    input: serde_json::Value,
    /// The right outcome.
    expect: String,
    /// A known deviation: what the server does today instead of `expect` (with a `note` saying
    /// why). The case passes with either, and fails once `expect` is seen, so the file is
    /// updated when the bug is fixed.
    #[serde(default)]
    today: Option<String>,
    /// `frames` only: send the frames before joining (then join).
    #[serde(default)]
    before_join: bool,
    /// `main` (default) or `missing` (a well-formed room id no room has).
    #[serde(default)]
    room: Option<String>,
    /// `http` only; `application/json` when absent.
    #[serde(default)]
    content_type: Option<String>,
    /// Why the case is here, or why its outcome is what it is today.
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Via {
    /// One text frame after a successful join.
    Text,
    /// One text frame as the first message on a new connection.
    First,
    /// Raw frames (after a join unless `before_join`).
    Frames,
    /// A WebSocket upgrade request with chosen method, path and headers.
    Upgrade,
    /// `POST /api/rooms` with this body.
    Http,
}

/// One line of `content.jsonl`: a payload posted into every text field that exists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadLine {
    id: String,
    payload: String,
    expect: Sinks,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// The expected outcome per kind of text field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sinks {
    /// Note text: `create_note` and `edit_note`.
    note: String,
    /// Theme title: `create_theme` and `rename_theme`.
    title: String,
    /// Display name: `join`.
    name: String,
    /// Room prompt: `POST /api/rooms`.
    prompt: String,
}

/// What a case is expected to do, or did.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Accepted,
    Error(String),
    Rejected(String),
    Close(u16),
    Http(u16),
    /// No answer at all to a message that needs one (never expected).
    Silent,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted => write!(f, "accepted"),
            Outcome::Error(c) => write!(f, "error:{c}"),
            Outcome::Rejected(r) => write!(f, "rejected:{r}"),
            Outcome::Close(c) => write!(f, "close:{c}"),
            Outcome::Http(s) => write!(f, "http:{s}"),
            Outcome::Silent => write!(f, "silent"),
        }
    }
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    let bad = || format!("unknown outcome {s:?}");
    if s == "accepted" {
        return Ok(Outcome::Accepted);
    }
    let (kind, arg) = s.split_once(':').ok_or_else(bad)?;
    match kind {
        "error" => {
            serde_json::from_value::<ErrorCode>(arg.into()).map_err(|_| bad())?;
            Ok(Outcome::Error(arg.into()))
        }
        "rejected" => {
            serde_json::from_value::<RejectReason>(arg.into()).map_err(|_| bad())?;
            Ok(Outcome::Rejected(arg.into()))
        }
        "close" => Ok(Outcome::Close(arg.parse().map_err(|_| bad())?)),
        "http" => Ok(Outcome::Http(arg.parse().map_err(|_| bad())?)),
        _ => Err(bad()),
    }
}

fn code_name<T: serde::Serialize>(code: &T) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A case ready to run: its input still holds `$PLACEHOLDERS`, filled in per run.
#[derive(Debug)]
struct Case {
    id: String,
    layer: String,
    action: Action,
    expect: Outcome,
    /// A known deviation from `expect` (see [`CaseLine::today`]).
    today: Option<Outcome>,
    note: Option<String>,
    /// For accepted content: where the text must be found, exactly.
    stored: Option<Stored>,
}

#[derive(Debug)]
enum Action {
    Text(String),
    First {
        text: String,
        missing_room: bool,
    },
    Frames {
        frames: Vec<FrameSpec>,
        before_join: bool,
    },
    Upgrade(UpgradeSpec),
    Http {
        /// `/api/rooms` or `/api/events`.
        path: &'static str,
        body: String,
        content_type: Option<String>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameSpec {
    /// `text`, `binary`, `cont`, `close`, `ping`, `pong`, or an opcode number.
    op: serde_json::Value,
    #[serde(default = "yes")]
    fin: bool,
    #[serde(default)]
    rsv: u8,
    #[serde(default = "yes")]
    mask: bool,
    #[serde(default)]
    payload: String,
    /// A close frame's code and reason (instead of `payload`).
    #[serde(default)]
    close: Option<(u16, String)>,
    #[serde(default)]
    declared_len: Option<u64>,
    #[serde(default)]
    long_len: bool,
    /// Send this frame this many times.
    #[serde(default = "one")]
    repeat: usize,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpgradeSpec {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    omit: Vec<String>,
}

/// Where accepted content must be found, byte for byte.
#[derive(Debug, Clone)]
enum Stored {
    /// The text of the note the case created.
    NoteText(String),
    /// The text of the case client's own note (`$MINE`).
    EditedText(String),
    /// The title of the theme the case created.
    ThemeTitle(String),
    /// The title of `$THEME`.
    RenamedTitle(String),
    /// The author shown on a note posted after joining with the name.
    Author(Option<String>),
    /// The prompt of the room the case created.
    Prompt(String),
    /// The name of the room the case's event created.
    RoomName(String),
    /// The title of the event the case created, as the server answered it.
    EventTitle(String),
}

fn read_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

/// Loads one layer's cases. Content payloads become one case per text field.
fn load_layer(layer: &str) -> Vec<Case> {
    let file = corpus_dir().join(format!("{layer}.jsonl"));
    let at = |n: usize| format!("{}:{n}", file.display());
    let mut cases = Vec::new();
    for (n, line) in read_lines(&file) {
        if layer == "content" {
            let p: PayloadLine = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: not a payload line: {e}", at(n)));
            cases.extend(content_cases(&p).unwrap_or_else(|e| panic!("{}: {e}", at(n))));
            continue;
        }
        let c: CaseLine =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: not a case: {e}", at(n)));
        assert_eq!(
            c.layer,
            layer,
            "{}: case {} is in the wrong file",
            at(n),
            c.id
        );
        let as_text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => serde_json::to_string(other).expect("json"),
        };
        let action = match c.via {
            Via::Text => Action::Text(as_text(&c.input)),
            Via::First => Action::First {
                text: as_text(&c.input),
                missing_room: match c.room.as_deref() {
                    None | Some("main") => false,
                    Some("missing") => true,
                    Some(other) => panic!("{}: unknown room {other:?}", at(n)),
                },
            },
            Via::Frames => Action::Frames {
                frames: serde_json::from_value(c.input.clone())
                    .unwrap_or_else(|e| panic!("{}: frames: {e}", at(n))),
                before_join: c.before_join,
            },
            Via::Upgrade => Action::Upgrade(
                serde_json::from_value(c.input.clone())
                    .unwrap_or_else(|e| panic!("{}: upgrade: {e}", at(n))),
            ),
            Via::Http => Action::Http {
                path: "/api/rooms",
                body: as_text(&c.input),
                content_type: c.content_type.clone(),
            },
        };
        assert!(
            c.room.is_none() || c.via == Via::First,
            "{}: `room` is for `first` cases",
            at(n)
        );
        cases.push(Case {
            id: c.id,
            layer: c.layer,
            action,
            expect: parse_outcome(&c.expect).unwrap_or_else(|e| panic!("{}: {e}", at(n))),
            today: c.today.as_deref().map(|t| {
                assert!(c.note.is_some(), "{}: a `today` needs a `note`", at(n));
                parse_outcome(t).unwrap_or_else(|e| panic!("{}: {e}", at(n)))
            }),
            note: c.note.clone(),
            stored: None,
        });
    }
    cases
}

/// One case per text field for a content payload. The messages are built with serde_json, so
/// the payload arrives exactly as written in the file (after `⟪n×text⟫` expansion).
fn content_cases(p: &PayloadLine) -> Result<Vec<Case>, String> {
    let payload = expand(&p.payload)?;
    let op = |op: serde_json::Value| {
        serde_json::json!({"type": "op", "op_id": "$OPID", "op": op}).to_string()
    };
    let note = parse_outcome(&p.expect.note)?;
    let title = parse_outcome(&p.expect.title)?;
    let name = parse_outcome(&p.expect.name)?;
    let prompt = parse_outcome(&p.expect.prompt)?;
    let trimmed = payload.trim().to_owned();
    let room_body = serde_json::json!({
        "title": "Corpus", "rooms": [{"name": payload, "prompt": "Why?"}]
    })
    .to_string();
    let event_body = serde_json::json!({
        "title": payload, "rooms": [{"name": "Room", "prompt": "Why?"}]
    })
    .to_string();
    let case = |sink: &str, action, expect: &Outcome, stored| Case {
        id: format!("{}@{sink}", p.id),
        layer: "content".into(),
        action,
        expect: expect.clone(),
        today: None,
        note: None,
        stored: (*expect == Outcome::Accepted).then_some(stored),
    };
    // `$` in a payload would be taken for a placeholder.
    if payload.contains('$') {
        return Err("content payloads may not contain `$`".into());
    }
    Ok(vec![
        case(
            "note.create",
            Action::Text(op(serde_json::json!({
                "kind": "create_note", "text": payload, "colour": "yellow", "x": 10, "y": 10
            }))),
            &note,
            Stored::NoteText(payload.clone()),
        ),
        case(
            "note.edit",
            Action::Text(op(serde_json::json!({
                "kind": "edit_note", "note": "$MINE", "text": payload
            }))),
            &note,
            Stored::EditedText(payload.clone()),
        ),
        case(
            "theme.create",
            Action::Text(op(
                serde_json::json!({"kind": "create_theme", "title": payload}),
            )),
            &title,
            Stored::ThemeTitle(payload.clone()),
        ),
        case(
            "theme.rename",
            Action::Text(op(serde_json::json!({
                "kind": "rename_theme", "theme": "$THEME", "title": payload
            }))),
            &title,
            Stored::RenamedTitle(payload.clone()),
        ),
        case(
            "name.join",
            Action::First {
                text: serde_json::json!({
                    "type": "join", "version": 1, "token": "$TOKEN", "last_seq": null,
                    "name": payload
                })
                .to_string(),
                missing_room: false,
            },
            &name,
            Stored::Author((!trimmed.is_empty()).then(|| trimmed.clone())),
        ),
        case(
            "prompt.http",
            Action::Http {
                path: "/api/rooms",
                body: serde_json::json!({ "prompt": payload }).to_string(),
                content_type: None,
            },
            &prompt,
            Stored::Prompt(trimmed.clone()),
        ),
        case(
            "room-name.http",
            Action::Http {
                path: "/api/events",
                body: room_body.clone(),
                content_type: None,
            },
            &event_field(&room_body, &trimmed, ROOM_NAME_CHARS),
            Stored::RoomName(trimmed.clone()),
        ),
        case(
            "event-title.http",
            Action::Http {
                path: "/api/events",
                body: event_body.clone(),
                content_type: None,
            },
            &event_field(&event_body, &trimmed, EVENT_TITLE_CHARS),
            Stored::EventTitle(trimmed.clone()),
        ),
    ])
}

/// Room names and event titles are one line, trimmed, at most `limit` characters, in a body of
/// at most 16 KiB. (The other fields' outcomes are written out in the file; these two follow
/// the same text rules, which `shared`'s own tests pin.)
fn event_field(body: &str, trimmed: &str, limit: usize) -> Outcome {
    if body.len() > 16 * 1024 {
        Outcome::Http(413)
    } else if bothy_shared::text::check(trimmed, limit, false).is_ok() {
        Outcome::Accepted
    } else {
        Outcome::Http(422)
    }
}

/// The limits `POST /api/events` applies (server/src/events.rs).
const ROOM_NAME_CHARS: usize = 60;
const EVENT_TITLE_CHARS: usize = 120;

// ---------------------------------------------------------------------------------------------
// Input notation: placeholders, repetition and raw bytes
// ---------------------------------------------------------------------------------------------

/// Values for the `$PLACEHOLDERS` of one case.
struct Vars {
    /// `$OPID`, `$TOKEN`, `$ROOM`, `$FOREIGN_ROOM`, `$HOST`: replaced as text.
    text: Vec<(&'static str, String)>,
    /// `$MINE`, `$OTHERS`, `$THEME`, `$FOREIGN_NOTE`, `$FOREIGN_THEME`: numbers; written
    /// `"$MINE"` (quoted) in a JSON input, the quotes go too.
    numbers: Vec<(&'static str, u64)>,
}

impl Vars {
    fn fill(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (name, n) in &self.numbers {
            out = out.replace(&format!("\"${name}\""), &n.to_string());
            out = out.replace(&format!("${name}"), &n.to_string());
        }
        for (name, v) in &self.text {
            out = out.replace(&format!("${name}"), v);
        }
        out
    }
}

/// Expands `⟪n×text⟫` to `text` repeated n times.
fn expand(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find('⟪') {
        out.push_str(&rest[..start]);
        let after = &rest[start + '⟪'.len_utf8()..];
        let end = after.find('⟫').ok_or("unclosed ⟪")?;
        let (count, text) = after[..end].split_once('×').ok_or("⟪ without ×")?;
        let count: usize = count.parse().map_err(|_| format!("bad count {count:?}"))?;
        out.push_str(&text.repeat(count));
        rest = &after[end + '⟫'.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The bytes to send: `⟨hh hh …⟩` stands for raw bytes (for invalid UTF-8).
fn bytes_of(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find('⟨') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + '⟨'.len_utf8()..];
        let end = after.find('⟩').ok_or("unclosed ⟨")?;
        for hex in after[..end].split_whitespace() {
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad byte {hex:?}"))?);
        }
        rest = &after[end + '⟩'.len_utf8()..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

fn prepare(s: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    bytes_of(&expand(&vars.fill(s))?)
}

fn build_frames(specs: &[FrameSpec], vars: &Vars) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    for spec in specs {
        let op = match &spec.op {
            serde_json::Value::String(s) => match s.as_str() {
                "text" => opcode::TEXT,
                "binary" => opcode::BINARY,
                "cont" => opcode::CONTINUATION,
                "close" => opcode::CLOSE,
                "ping" => opcode::PING,
                "pong" => opcode::PONG,
                other => return Err(format!("unknown frame op {other:?}")),
            },
            serde_json::Value::Number(n) => n
                .as_u64()
                .filter(|n| *n < 16)
                .ok_or("opcodes are 0 to 15")? as u8,
            other => return Err(format!("bad frame op {other}")),
        };
        let payload = match &spec.close {
            Some((code, reason)) => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend(prepare(reason, vars)?);
                p
            }
            None => prepare(&spec.payload, vars)?,
        };
        let frame = Frame {
            fin: spec.fin,
            rsv: spec.rsv,
            opcode: op,
            masked: spec.mask,
            payload,
            declared_len: spec.declared_len,
            long_len: spec.long_len,
        };
        frames.extend(std::iter::repeat_n(frame, spec.repeat));
    }
    Ok(frames)
}

/// The whole messages these frames carry, as a server would reassemble them (text only).
fn messages_in(frames: &[Frame]) -> Vec<Vec<u8>> {
    let mut done = Vec::new();
    let mut partial: Option<Vec<u8>> = None;
    for f in frames {
        match f.opcode {
            opcode::TEXT if partial.is_none() => partial = Some(f.payload.clone()),
            opcode::CONTINUATION => {
                if let Some(p) = partial.as_mut() {
                    p.extend_from_slice(&f.payload);
                }
            }
            _ => continue,
        }
        if f.fin
            && let Some(p) = partial.take()
        {
            done.push(p);
        }
    }
    done
}

fn pings_in(messages: &[Vec<u8>]) -> usize {
    messages
        .iter()
        .filter_map(|m| std::str::from_utf8(m).ok())
        .filter(|t| {
            matches!(
                protocol::decode_client_message(t),
                Ok(ClientMessage::Ping(_))
            )
        })
        .count()
}

/// The op id and operation a message carries, if it is a readable `op`.
fn sent_op(bytes: &[u8]) -> Option<(OpId, Op)> {
    match protocol::decode_client_message(std::str::from_utf8(bytes).ok()?) {
        Ok(ClientMessage::Op(m)) => Some((m.op_id, m.op)),
        _ => None,
    }
}

/// The `op_id` a message names, if any can be read from it.
fn named_op_id(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("op_id")?.as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Running cases
// ---------------------------------------------------------------------------------------------

impl Case {
    /// Whether the case's input uses this text (a placeholder, say).
    fn mentions(&self, what: &str) -> bool {
        match &self.action {
            Action::Text(t) | Action::First { text: t, .. } => t.contains(what),
            Action::Http { body, .. } => body.contains(what),
            Action::Frames { frames, .. } => frames.iter().any(|f| f.payload.contains(what)),
            Action::Upgrade(u) => {
                u.path.as_deref().is_some_and(|p| p.contains(what))
                    || u.headers.iter().any(|(_, v)| v.contains(what))
            }
        }
    }
}

/// What a case did.
#[derive(Debug, Default)]
struct Observed {
    outcome: Option<Outcome>,
    /// The `applied` messages the case caused (the bystander must see exactly these).
    applied: Vec<AppliedOp>,
    /// Messages that arrived when none should have (e.g. before a close).
    stray: Vec<ServerMessage>,
    /// The room a `POST /api/rooms` or `POST /api/events` created.
    new_room: Option<String>,
    /// The title of the event a `POST /api/events` created, as the server answered it.
    new_title: Option<String>,
}

impl Observed {
    fn with(outcome: Outcome) -> Self {
        Self {
            outcome: Some(outcome),
            ..Self::default()
        }
    }
}

/// One server, its shared room, a foreign room, and the clients that watch them.
struct Fixture {
    server: TestServer,
    room: String,
    foreign: String,
    /// The identity every case client uses, so `$MINE` is its own note.
    token: String,
    mine: u64,
    others: u64,
    theme: u64,
    foreign_note: u64,
    foreign_theme: u64,
    bystander: Client,
    replica: Replica,
    foreign_bystander: Client,
    foreign_replica: Replica,
}

async fn fixture() -> Fixture {
    // The corpus opens hundreds of sockets a second from 127.0.0.1; the per-address rate of new
    // sockets is tested on its own in limits.rs.
    let server = TestServer::start_with(|c| {
        c.new_connections_per_ip_per_second = 100_000;
        c.new_connections_per_ip_burst = 100_000;
    })
    .await;
    let room = server
        .create_room("What should the corpus room hold?")
        .await;
    let foreign = server.create_room("The room next door").await;

    // The room next door has more notes and themes than the shared room reaches in the cases
    // that name its ids (checked before each), so its highest ids exist there and nowhere else.
    let mut f = server.client(&foreign).await;
    f.join(None).await;
    for i in 0..60 {
        f.op(create_note(&format!("next door {i}"))).await;
    }
    for i in 0..8 {
        f.op(create_theme(&format!("Theme next door {i}"))).await;
    }
    f.sync().await;
    f.close().await;

    let token = format!("author{}", bothy_tests::new_token());
    let mut a = server.client(&room).await;
    a.token = token.clone();
    a.join(None).await;
    let mine = a.apply(create_note("mine")).await.created.expect("id");
    let theme = a.apply(create_theme("A theme")).await.created.expect("id");
    a.apply(set_theme(mine, Some(theme), None)).await;
    let (mut bystander, _) = server.joined(&room).await;
    let others = bystander
        .apply(create_note("someone else's"))
        .await
        .created
        .expect("id");
    a.close().await;
    bystander.sync().await;
    let (_c, w) = server.joined(&room).await;
    let replica = Replica::from_welcome(&w);

    let (mut foreign_bystander, w) = server.joined(&foreign).await;
    foreign_bystander.sync().await;
    let foreign_replica = Replica::from_welcome(&w);
    let foreign_note = *foreign_replica.board.notes.keys().last().expect("notes");
    let foreign_theme = *foreign_replica.board.themes.keys().last().expect("themes");
    Fixture {
        server,
        room,
        foreign,
        token,
        mine,
        others,
        theme,
        foreign_note,
        foreign_theme,
        bystander,
        replica,
        foreign_bystander,
        foreign_replica,
    }
}

fn server_says(m: &ServerMessage) -> String {
    let s = serde_json::to_string(m).unwrap_or_default();
    s.chars().take(200).collect()
}

impl Fixture {
    fn vars(&self, n: usize) -> Vars {
        Vars {
            text: vec![
                ("OPID", format!("case-{n}")),
                ("TOKEN", self.token.clone()),
                ("FOREIGN_ROOM", self.foreign.clone()),
                ("ROOM", self.room.clone()),
                ("HOST", self.server.addr.to_string()),
            ],
            numbers: vec![
                ("MINE", self.mine),
                ("OTHERS", self.others),
                ("THEME", self.theme),
                ("FOREIGN_NOTE", self.foreign_note),
                ("FOREIGN_THEME", self.foreign_theme),
            ],
        }
    }

    fn join_text(&self) -> String {
        serde_json::to_string(&ClientMessage::Join(Join {
            version: PROTOCOL_VERSION,
            token: self.token.clone(),
            last_seq: Some(self.replica.seq),
            name: None,
            facilitator: None,
        }))
        .expect("json")
    }

    fn room_count(&self) -> usize {
        std::fs::read_dir(self.server.data_dir.join("rooms"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Connects to the shared room and joins as the case identity.
    async fn joined_raw(&self) -> Result<RawSocket, String> {
        let mut s = RawSocket::connect(self.server.addr, &self.room, WAIT).await?;
        s.send_text(&self.join_text(), WAIT).await?;
        match first_reply(&mut s).await? {
            Reply::Message(m) if matches!(*m, ServerMessage::Welcome(_)) => Ok(s),
            other => Err(format!("joining for the case: {other:?}")),
        }
    }

    async fn execute(&self, case: &Case, vars: &Vars) -> Result<Observed, String> {
        match &case.action {
            Action::Text(text) => {
                let bytes = prepare(text, vars)?;
                let mut s = self.joined_raw().await?;
                let _ = s.send(&Frame::text(bytes.clone()), WAIT).await;
                let pings = pings_in(std::slice::from_ref(&bytes));
                let mut seen = after_join(&mut s, pings).await?;
                seen.classify(&bytes, pings > 0)?;
                Ok(seen.observed)
            }
            Action::Frames {
                frames,
                before_join,
            } => {
                let frames = build_frames(frames, vars)?;
                if *before_join {
                    let mut s = RawSocket::connect(self.server.addr, &self.room, WAIT).await?;
                    for f in &frames {
                        if s.send(f, WAIT).await.is_err() {
                            break;
                        }
                    }
                    let _ = s.send_text(&self.join_text(), WAIT).await;
                    return self.after_first(&mut s, None).await;
                }
                let mut s = self.joined_raw().await?;
                for f in &frames {
                    if s.send(f, WAIT).await.is_err() {
                        break;
                    }
                }
                let messages = messages_in(&frames);
                let pings = pings_in(&messages);
                let mut seen = after_join(&mut s, pings).await?;
                // A ping frame is answered with a pong frame with the same payload (tungstenite
                // keeps only the newest pending pong, so only the last ping is checked).
                let last_ping = frames
                    .iter()
                    .rev()
                    .find(|f| f.opcode == opcode::PING && f.fin && f.rsv == 0 && f.masked);
                if let Some(p) = last_ping
                    && seen.control_pongs.last() != Some(&p.payload)
                    && seen.close.is_none()
                {
                    return Err(format!(
                        "ping frame not answered with its payload: {:?}",
                        seen.control_pongs
                    ));
                }
                let joined: Vec<u8> = messages.concat();
                seen.classify(&joined, true)?;
                Ok(seen.observed)
            }
            Action::First { text, missing_room } => {
                let room = if *missing_room {
                    MISSING_ROOM
                } else {
                    &self.room
                };
                let mut s = RawSocket::connect(self.server.addr, room, WAIT).await?;
                let _ = s.send(&Frame::text(prepare(text, vars)?), WAIT).await;
                let signed = match &case.stored {
                    Some(Stored::Author(_)) => Some(vars.fill("$OPID")),
                    _ => None,
                };
                self.after_first(&mut s, signed).await
            }
            Action::Upgrade(spec) => {
                let path = spec.path.clone().unwrap_or_else(|| "/ws/$ROOM".into());
                let up = Upgrade {
                    method: spec.method.clone(),
                    path: String::from_utf8_lossy(&prepare(&path, vars)?).into_owned(),
                    headers: spec
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), vars.fill(v)))
                        .collect(),
                    omit: spec.omit.clone(),
                };
                let (head, socket) = RawSocket::upgrade(self.server.addr, &up, WAIT).await?;
                let Some(mut s) = socket else {
                    return Ok(Observed::with(Outcome::Http(head.status)));
                };
                if head.header("sec-websocket-accept") != Some(raw::ACCEPT) {
                    return Err(format!("wrong Sec-WebSocket-Accept: {:?}", head.headers));
                }
                if let Some(ext) = head.header("sec-websocket-extensions") {
                    return Err(format!("an extension was negotiated: {ext}"));
                }
                let _ = s.send_text(&self.join_text(), WAIT).await;
                self.after_first(&mut s, None).await
            }
            Action::Http {
                path,
                body,
                content_type,
            } => {
                let body = prepare(body, vars)?;
                let ct = content_type.as_deref().unwrap_or("application/json");
                let (head, body) = raw::http_request(
                    self.server.addr,
                    "POST",
                    path,
                    (!ct.is_empty()).then_some(ct),
                    &body,
                    WAIT,
                )
                .await?;
                let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
                if head.status == 201 {
                    let v = json.as_ref().ok_or("201 without JSON")?;
                    let room = v["room"]
                        .as_str()
                        .or_else(|| v["rooms"][0]["room"].as_str())
                        .ok_or("201 without a room id")?;
                    let mut o = Observed::with(Outcome::Accepted);
                    o.new_room = Some(room.to_owned());
                    o.new_title = v["title"].as_str().map(str::to_owned);
                    return Ok(o);
                }
                // Errors are JSON with a short message, never internal details.
                let message = json
                    .as_ref()
                    .and_then(|v| v["error"].as_str())
                    .ok_or_else(|| {
                        format!(
                            "HTTP {} without a JSON error: {:?}",
                            head.status,
                            String::from_utf8_lossy(&body)
                        )
                    })?;
                if message.is_empty() || message.len() > 200 {
                    return Err(format!("unhelpful error message {message:?}"));
                }
                Ok(Observed::with(Outcome::Http(head.status)))
            }
        }
    }

    /// After a first message (or a join): a welcome means accepted; then the connection must
    /// answer a ping with nothing else first. With `signed`, post a note under that op id to
    /// show the name the join gave.
    async fn after_first(
        &self,
        s: &mut RawSocket,
        signed: Option<String>,
    ) -> Result<Observed, String> {
        match first_reply(s).await? {
            Reply::Closed(code, reason) => {
                check_reason(code, &reason)?;
                Ok(Observed::with(Outcome::Close(code)))
            }
            Reply::Message(m) if matches!(*m, ServerMessage::Welcome(_)) => {
                let mut o = Observed::with(Outcome::Accepted);
                if let Some(op_id) = signed {
                    let msg = serde_json::json!({"type": "op", "op_id": op_id, "op": {
                        "kind": "create_note", "text": SIGNED, "colour": "blue", "x": 5, "y": 5
                    }});
                    s.send_text(&msg.to_string(), WAIT).await?;
                }
                let seen = after_join(s, 0).await?;
                if let Some(c) = seen.close {
                    return Err(format!("closed with {c:?} after the welcome"));
                }
                o.applied = seen.observed.applied;
                o.stray = seen.replies;
                Ok(o)
            }
            Reply::Message(other) => Err(format!(
                "first reply was {} instead of a welcome or a close",
                server_says(&other)
            )),
        }
    }

    /// Runs one case and checks everything; `Ok` with the outcome seen.
    async fn run(&mut self, case: &Case, n: usize) -> Result<Outcome, String> {
        let result = self.run_checked(case, n).await;
        if result.is_err() {
            // Start the next case from what the server really has, so one failure does not
            // cascade into the cases after it.
            let _ = barrier(&mut self.bystander).await;
            if let Ok((seq, board)) = fresh_board(self.server.addr, &self.room).await {
                self.replica = Replica {
                    board: board.to_board(),
                    seq,
                };
            }
        }
        result
    }

    async fn run_checked(&mut self, case: &Case, n: usize) -> Result<Outcome, String> {
        *CURRENT.lock().expect("lock") = case.id.clone();
        let panics = PANICS.load(Ordering::SeqCst);
        let vars = self.vars(n);
        let rooms = self.room_count();
        if case.mentions("$FOREIGN")
            && (self.replica.board.notes.contains_key(&self.foreign_note)
                || self.replica.board.themes.contains_key(&self.foreign_theme))
        {
            return Err("fixture: the foreign ids now exist in the shared room too".into());
        }
        let observed = self.execute(case, &vars).await?;
        let outcome = observed.outcome.clone().unwrap_or(Outcome::Silent);
        if case.today.is_some() && outcome == case.expect {
            return Err(format!(
                "now {outcome} as expected: remove its `today` (the known deviation is fixed)"
            ));
        }
        if outcome != case.expect && Some(&outcome) != case.today.as_ref() {
            let seen: Vec<String> = observed
                .stray
                .iter()
                .cloned()
                .chain(observed.applied.iter().cloned().map(ServerMessage::Applied))
                .map(|m| server_says(&m))
                .collect();
            return Err(format!("expected {}, got {outcome} {seen:?}", case.expect));
        }
        if !observed.stray.is_empty() {
            let stray: Vec<_> = observed.stray.iter().map(server_says).collect();
            return Err(format!("unexpected messages to the case client: {stray:?}"));
        }
        if outcome != Outcome::Accepted && !observed.applied.is_empty() {
            return Err("refused, yet something was applied".into());
        }
        if matches!(case.stored, Some(Stored::Author(_))) && observed.applied.len() != 1 {
            return Err("the note posted under the name was not applied".into());
        }

        // The bystander sees exactly the applied operations, and is still connected.
        let seen = barrier(&mut self.bystander).await?;
        let seen: Vec<&ServerMessage> = seen
            .iter()
            .filter(|m| !matches!(m, ServerMessage::Presence(_)))
            .collect();
        let got: Vec<&AppliedOp> = seen
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Applied(a) => Some(a),
                _ => None,
            })
            .collect();
        if seen.len() != got.len() || got.iter().copied().ne(observed.applied.iter()) {
            let seen: Vec<_> = seen.iter().map(|m| server_says(m)).collect();
            return Err(format!("the bystander saw {seen:?}"));
        }
        for a in &observed.applied {
            self.replica.follow(&ServerMessage::Applied(a.clone()));
        }

        // A fresh client joins and pings: the board is exactly the replica.
        let board = fresh_board(self.server.addr, &self.room).await?;
        if board != (self.replica.seq, self.replica.board.public()) {
            return Err(format!(
                "the board changed: seq {} (expected {})",
                board.0, self.replica.seq
            ));
        }

        if let Some(stored) = &case.stored {
            self.check_stored(stored, &observed).await?;
        }
        let rooms_now = self.room_count();
        let new_rooms = usize::from(observed.new_room.is_some());
        if rooms_now != rooms + new_rooms {
            return Err(format!(
                "{} rooms on disk, expected {}",
                rooms_now,
                rooms + new_rooms
            ));
        }
        if PANICS.load(Ordering::SeqCst) != panics {
            return Err("something panicked".into());
        }
        Ok(outcome)
    }

    async fn check_stored(&self, stored: &Stored, observed: &Observed) -> Result<(), String> {
        let board = &self.replica.board;
        let created = observed.applied.first().and_then(|a| a.created);
        let (found, wanted) = match stored {
            Stored::NoteText(t) => (
                created
                    .and_then(|id| board.notes.get(&id))
                    .map(|n| n.text.clone()),
                t.clone(),
            ),
            Stored::EditedText(t) => (
                board.notes.get(&self.mine).map(|n| n.text.clone()),
                t.clone(),
            ),
            Stored::ThemeTitle(t) => (
                created
                    .and_then(|id| board.themes.get(&id))
                    .map(|th| th.title.clone()),
                t.clone(),
            ),
            Stored::RenamedTitle(t) => (
                board.themes.get(&self.theme).map(|th| th.title.clone()),
                t.clone(),
            ),
            Stored::Author(a) => {
                let note = created.and_then(|id| board.notes.get(&id));
                let ok = note.is_some_and(|n| n.text == SIGNED && &n.author == a)
                    && observed.applied.first().map(|x| &x.author) == Some(a);
                if !ok {
                    return Err(format!("the name was not kept as {a:?}: {note:?}"));
                }
                return Ok(());
            }
            Stored::Prompt(p) => {
                let room = observed.new_room.as_deref().ok_or("no room")?;
                let (_, b) = fresh_board(self.server.addr, room).await?;
                (Some(b.prompt), p.clone())
            }
            Stored::RoomName(n) => {
                let room = observed.new_room.as_deref().ok_or("no room")?;
                let (_, b) = fresh_board(self.server.addr, room).await?;
                (Some(b.name), n.clone())
            }
            Stored::EventTitle(t) => (observed.new_title.clone(), t.clone()),
        };
        if found.as_deref() != Some(wanted.as_str()) {
            let show = |s: &str| s.chars().take(60).collect::<String>();
            return Err(format!(
                "not stored verbatim: found {:?}, sent {:?}",
                found.as_deref().map(show),
                show(&wanted)
            ));
        }
        Ok(())
    }

    /// The foreign room saw nothing from any case.
    async fn check_foreign(&mut self) -> Result<(), String> {
        let seen = barrier(&mut self.foreign_bystander).await?;
        if seen
            .iter()
            .any(|m| !matches!(m, ServerMessage::Presence(_)))
        {
            return Err(format!("the foreign room's bystander saw {seen:?}"));
        }
        let board = fresh_board(self.server.addr, &self.foreign).await?;
        if board
            != (
                self.foreign_replica.seq,
                self.foreign_replica.board.public(),
            )
        {
            return Err("the foreign room changed".into());
        }
        Ok(())
    }
}

/// Codes the server chose itself come with a reason.
fn check_reason(code: u16, reason: &str) -> Result<(), String> {
    if reason.is_empty() && ![1000, 1005, 1006].contains(&code) {
        return Err(format!("close {code} without a reason"));
    }
    Ok(())
}

/// A ping barrier on a harness client, without panicking on a closed connection.
async fn barrier(c: &mut Client) -> Result<Vec<ServerMessage>, String> {
    c.try_send(&ClientMessage::Ping(Default::default()))
        .await
        .map_err(|e| format!("a watching client was disconnected: {e:?}"))?;
    let mut seen = Vec::new();
    loop {
        match c.try_recv(WAIT).await {
            Ok(ServerMessage::Pong(_)) => return Ok(seen),
            Ok(m) => seen.push(m),
            Err(e) => return Err(format!("a watching client was disconnected: {e:?}")),
        }
    }
}

/// Joins a room as a new person, pings, and returns the board it was given.
async fn fresh_board(addr: std::net::SocketAddr, room: &str) -> Result<(u64, BoardView), String> {
    let mut c = Client::try_connect(addr, room)
        .await
        .map_err(|e| format!("the server stopped serving: {e}"))?;
    let w = c
        .try_join(None)
        .await
        .map_err(|e| format!("a fresh client could not join: {e:?}"))?;
    barrier(&mut c).await?;
    c.close().await;
    Ok((w.seq, w.board.ok_or("a welcome without a board")?))
}

#[derive(Debug)]
enum Reply {
    Message(Box<ServerMessage>),
    Closed(u16, String),
}

/// The first message that is not a presence count, or how the connection ended.
async fn first_reply(s: &mut RawSocket) -> Result<Reply, String> {
    loop {
        match s.recv(WAIT).await {
            Ok(f) => match f.opcode {
                opcode::TEXT => match parse_server(&f.payload)? {
                    ServerMessage::Presence(_) => continue,
                    m => return Ok(Reply::Message(Box::new(m))),
                },
                opcode::CLOSE => {
                    let (code, reason) = f.close().unwrap_or((1005, String::new()));
                    return Ok(Reply::Closed(code, reason));
                }
                opcode::PING | opcode::PONG => continue,
                other => return Err(format!("the server sent opcode {other}")),
            },
            Err(ReadEnd::Eof) | Err(ReadEnd::Io(_)) => return Ok(Reply::Closed(1006, "".into())),
            Err(ReadEnd::Timeout) => return Err("no answer in time".into()),
            Err(ReadEnd::Garbled(e)) => return Err(e),
        }
    }
}

fn parse_server(payload: &[u8]) -> Result<ServerMessage, String> {
    serde_json::from_slice(payload).map_err(|e| {
        format!(
            "unreadable server message {:?}: {e}",
            String::from_utf8_lossy(payload)
        )
    })
}

/// What a joined connection received after the case input and a ping barrier.
struct AfterJoin {
    observed: Observed,
    /// Replies other than `pong` and presence.
    replies: Vec<ServerMessage>,
    control_pongs: Vec<Vec<u8>>,
    close: Option<(u16, String)>,
}

/// Sends a barrier ping and reads until `pings + 1` pongs (the input's pings and the barrier's),
/// or a close.
async fn after_join(s: &mut RawSocket, pings: usize) -> Result<AfterJoin, String> {
    let _ = s.send_text(r#"{"type":"ping"}"#, WAIT).await;
    let mut seen = AfterJoin {
        observed: Observed::default(),
        replies: Vec::new(),
        control_pongs: Vec::new(),
        close: None,
    };
    let mut pongs = 0;
    while pongs < pings + 1 {
        match s.recv(WAIT).await {
            Ok(f) => match f.opcode {
                opcode::TEXT => match parse_server(&f.payload)? {
                    ServerMessage::Pong(_) => pongs += 1,
                    ServerMessage::Presence(_) => {}
                    ServerMessage::Applied(a) => seen.observed.applied.push(a),
                    m => seen.replies.push(m),
                },
                opcode::PONG => seen.control_pongs.push(f.payload),
                opcode::PING => {}
                opcode::CLOSE => {
                    seen.close = Some(f.close().unwrap_or((1005, String::new())));
                    break;
                }
                other => return Err(format!("the server sent opcode {other}")),
            },
            Err(ReadEnd::Eof) | Err(ReadEnd::Io(_)) => {
                seen.close = Some((1006, String::new()));
                break;
            }
            Err(ReadEnd::Timeout) => {
                return Err(format!(
                    "no pong in time (got {pongs} of {}; replies {:?})",
                    pings + 1,
                    seen.replies
                ));
            }
            Err(ReadEnd::Garbled(e)) => return Err(e),
        }
    }
    Ok(seen)
}

impl AfterJoin {
    /// Decides the outcome from what arrived. `sent` is the message the case sent;
    /// `silence_ok` says whether no reply at all is a success (pings and control frames).
    fn classify(&mut self, sent: &[u8], silence_ok: bool) -> Result<(), String> {
        if let Some((code, reason)) = &self.close {
            check_reason(*code, reason)?;
            self.observed.outcome = Some(Outcome::Close(*code));
            self.observed.stray = std::mem::take(&mut self.replies);
            return Ok(());
        }
        let op = sent_op(sent);
        let named = named_op_id(sent);
        let replies = std::mem::take(&mut self.replies);
        let outcome = match (replies.as_slice(), self.observed.applied.as_slice()) {
            ([], [a]) => {
                let (op_id, op) = op.ok_or("an operation applied that could not be read")?;
                if a.op_id != op_id || a.op != op {
                    return Err(format!(
                        "applied something else: {}",
                        server_says(&ServerMessage::Applied(a.clone()))
                    ));
                }
                Outcome::Accepted
            }
            ([], []) if silence_ok => Outcome::Accepted,
            ([], []) => Outcome::Silent,
            ([ServerMessage::Rejected(r)], []) => {
                if named.as_deref() != Some(r.op_id.as_str()) {
                    return Err(format!("rejected another op id: {}", r.op_id.as_str()));
                }
                if r.message.is_empty() {
                    return Err("a rejection without a message".into());
                }
                Outcome::Rejected(code_name(&r.reason))
            }
            ([ServerMessage::Error(e)], []) => {
                if e.message.is_empty() || e.message.chars().count() > 300 {
                    return Err(format!("unhelpful error message {:?}", e.message));
                }
                Outcome::Error(code_name(&e.code))
            }
            (replies, applied) => {
                self.observed.stray = replies.to_vec();
                return Err(format!(
                    "several replies: {:?} and {} applied",
                    replies.iter().map(server_says).collect::<Vec<_>>(),
                    applied.len()
                ));
            }
        };
        self.observed.outcome = Some(outcome);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The tests: one per layer, and one that checks the files and prints the whole corpus.
// ---------------------------------------------------------------------------------------------

fn table(counts: &BTreeMap<(String, String), usize>) -> String {
    let mut out = String::new();
    for ((layer, outcome), n) in counts {
        out.push_str(&format!("  {layer:<10} {outcome:<34} {n:>4}\n"));
    }
    out
}

async fn run_layer(layer: &str) {
    count_panics();
    let cases = load_layer(layer);
    let started = Instant::now();
    let mut fx = fixture().await;
    let mut counts = BTreeMap::new();
    let mut failures = Vec::new();
    let mut known = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let case_started = Instant::now();
        match fx.run(case, n).await {
            Ok(outcome) => {
                if outcome != case.expect {
                    known.push(format!(
                        "  {}: {outcome}, should be {} ({})",
                        case.id,
                        case.expect,
                        case.note.as_deref().unwrap_or_default()
                    ));
                }
                *counts
                    .entry((case.layer.clone(), outcome.to_string()))
                    .or_insert(0) += 1;
            }
            Err(e) => failures.push(format!("{}: {e}", case.id)),
        }
        let took = case_started.elapsed();
        if took > Duration::from_secs(2) {
            println!("slow case {}: {:.1} s", case.id, took.as_secs_f64());
        }
    }
    CURRENT.lock().expect("lock").clear();
    if let Err(e) = fx.check_foreign().await {
        failures.push(format!("after the {layer} layer: {e}"));
    }
    println!(
        "corpus layer {layer}: {} cases, {} passed, in {:.1} s\n{}",
        cases.len(),
        cases.len() - failures.len(),
        started.elapsed().as_secs_f64(),
        table(&counts)
    );
    if !known.is_empty() {
        println!(
            "{} known deviations in the {layer} layer (the outcome today is not the right one):\n{}",
            known.len(),
            known.join("\n")
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} {layer} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    fx.server.stop().await;
}

#[tokio::test]
async fn corpus_transport() {
    run_layer("transport").await;
}

#[tokio::test]
async fn corpus_json() {
    run_layer("json").await;
}

#[tokio::test]
async fn corpus_protocol() {
    run_layer("protocol").await;
}

#[tokio::test]
async fn corpus_content() {
    run_layer("content").await;
}

/// The files parse, ids are unique, every layer has cases, and there are enough of them.
#[test]
fn corpus_files_are_well_formed() {
    let mut ids = BTreeSet::new();
    let mut counts = BTreeMap::new();
    let mut total = 0;
    for layer in LAYERS {
        let cases = load_layer(layer);
        assert!(!cases.is_empty(), "no {layer} cases");
        for c in cases {
            assert!(ids.insert(c.id.clone()), "case id {} is used twice", c.id);
            assert!(
                c.id.starts_with(&format!("{layer}.")),
                "case id {} should start with {layer}.",
                c.id
            );
            *counts.entry((c.layer, c.expect.to_string())).or_insert(0) += 1;
            total += 1;
        }
    }
    let mut by_layer: BTreeMap<&str, usize> = BTreeMap::new();
    for ((layer, _), n) in &counts {
        *by_layer.entry(layer.as_str()).or_insert(0) += n;
    }
    println!(
        "bad-input corpus: {total} cases {by_layer:?}\nexpected outcomes by layer:\n{}",
        table(&counts)
    );
    assert!(
        total >= MIN_CASES,
        "only {total} cases; keep at least {MIN_CASES}"
    );
}

#[test]
fn the_notation_expands_as_documented() {
    assert_eq!(expand("a⟪3×bc⟫d").unwrap(), "abcbcbcd");
    assert_eq!(expand("⟪2×[⟫⟪2×]⟫").unwrap(), "[[]]");
    assert_eq!(bytes_of("a⟨c3 28⟩b").unwrap(), vec![b'a', 0xc3, 0x28, b'b']);
    let vars = Vars {
        text: vec![("OPID", "case-1".into())],
        numbers: vec![("MINE", 7)],
    };
    assert_eq!(
        vars.fill(r#"{"op_id":"$OPID","note":"$MINE","x":$MINE}"#),
        r#"{"op_id":"case-1","note":7,"x":7}"#
    );
    let frames = vec![
        Frame {
            fin: false,
            ..Frame::text(r#"{"type":"#)
        },
        Frame::new(opcode::PING, "p"),
        Frame::new(opcode::CONTINUATION, r#""ping"}"#),
    ];
    assert_eq!(pings_in(&messages_in(&frames)), 1);
}
