//! Secrets stay secret on disk and in the log. The real `bothy` binary, logging at `trace` (see
//! [`LOG_FILTER`]), runs a whole session: an event,
//! participants writing, voting and reconnecting, a facilitator, bad messages, compactions, a
//! rotated facilitator secret, the snapshot and report downloads, a restart. Then every byte of
//! its data directory and of everything it printed is searched for each identity token and
//! facilitator secret, plain and in the encodings a bug would produce. The hashes the docs say
//! are kept must be there, which shows the right files were read (docs/security.md,
//! docs/storage.md).

use bothy_server::connection::actor_key;
use bothy_server::events::SecretHash;
use bothy_shared::OpId;
use bothy_shared::op::*;
use bothy_shared::protocol::{JoinedAs, ServerMessage, close};
use bothy_tests::ops::*;
use bothy_tests::{BinaryServer, Client, Closed, http, new_token};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything at `trace`, Bothy's own code and every library. At `trace` the WebSocket library,
/// tungstenite, logs every message it receives verbatim (`Received message {"type":"join",…,
/// "token":"…",…}`) and again in hex, so the server holds it at `debug` whatever `BOTHY_LOG`
/// says (`log_filter` in `server/src/main.rs`); without that, this test fails.
const LOG_FILTER: &str = "trace";

/// Compact after every few records and write event snapshots every second, so both happen
/// during the session and not only at shutdown.
const ARGS: [&str; 4] = ["--compact-every", "4", "--snapshot-every-secs", "1"];

const FACILITATOR: &str = "X-Bothy-Facilitator";

/// SHA-256 of "abc" (FIPS 180-2, appendix B.1): pins the server's hashes to SHA-256.
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// Starts `bothy serve` logging at [`LOG_FILTER`] into `log`.
fn start(data_dir: &Path, log: &Path) -> BinaryServer {
    BinaryServer::start_logged(data_dir, &ARGS, LOG_FILTER, log)
}

/// SIGTERM; it must stop cleanly (every room saved). Returns what it printed on stdout.
fn stop(server: BinaryServer) -> Vec<u8> {
    let (status, stdout) = server.terminate_with_stdout();
    assert!(status.success(), "bothy stopped cleanly: {status}");
    stdout
}

/// A secret and the forms of it a careless line of code would write: itself, its first eight
/// characters (a short prefix "to tell them apart"), its second half (a truncated copy), base64
/// (standard and URL-safe; unpadded, so padded copies match too) and hex of its bytes. JSON
/// escaping leaves these characters as they are.
struct Needle {
    what: String,
    forms: Vec<Vec<u8>>,
}

impl Needle {
    fn new(what: impl Into<String>, secret: &str) -> Self {
        const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = secret.as_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let forms = [
            secret.to_owned(),
            secret[..8].to_owned(),
            secret[secret.len() / 2..].to_owned(),
            base64(bytes, STD),
            base64(bytes, URL),
            hex.clone(),
            hex.to_ascii_uppercase(),
        ];
        Self {
            what: what.into(),
            forms: forms.into_iter().map(String::into_bytes).collect(),
        }
    }

    /// The first line of `haystack` holding a form of the secret, if any.
    fn found_in(&self, haystack: &[u8]) -> Option<String> {
        self.forms.iter().find_map(|form| {
            let at = position(haystack, form)?;
            let start = haystack[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let end = haystack[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(haystack.len(), |i| at + i);
            let line = String::from_utf8_lossy(&haystack[start..end.min(start + 600)]);
            Some(format!(
                "{:?} in the line {line:?}",
                String::from_utf8_lossy(form)
            ))
        })
    }
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    position(haystack, needle).is_some()
}

/// Every file under `dir`, recursively, with its bytes (symbolic links are not followed).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let kind = std::fs::symlink_metadata(&path)
                .expect("metadata")
                .file_type();
            if kind.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read file");
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Fails if any needle occurs in any of `places` (a name and its bytes).
fn assert_nowhere(needles: &[Needle], places: &[(String, Vec<u8>)]) {
    for (place, bytes) in places {
        for n in needles {
            if let Some(form) = n.found_in(bytes) {
                panic!("{place} holds {}: {form}", n.what);
            }
        }
    }
}

/// The data directory as (path, bytes) pairs, paths relative to it.
fn data_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(data)
        .into_iter()
        .map(|(p, b)| {
            let rel = p.strip_prefix(data).expect("under the data dir");
            (format!("data/{}", rel.display()), b)
        })
        .collect()
}

/// Keeps every message `c` received since the last call, as JSON text, and returns the highest
/// sequence number among them (what a browser sends as `last_seq`).
fn heard(c: &mut Client, into: &mut Vec<(String, Vec<u8>)>) -> Option<u64> {
    let mut last = None;
    for m in c.take_received() {
        let seq = match &m {
            ServerMessage::Welcome(w) => Some(w.seq),
            ServerMessage::Applied(a) => Some(a.seq),
            _ => None,
        };
        last = last.max(seq);
        let text = serde_json::to_string(&m).expect("serialise");
        into.push((format!("a message to {}", c.token), text.into_bytes()));
    }
    last
}

async fn joined(addr: SocketAddr, room: &str, token: &str, name: Option<&str>) -> Client {
    let mut c = Client::connect(addr, room).await;
    c.token = token.to_owned();
    c.name = name.map(str::to_owned);
    let w = c.join(None).await;
    assert_eq!(w.role, JoinedAs::Participant);
    c
}

async fn facilitator(addr: SocketAddr, room: &str, token: &str, secret: &str) -> Client {
    let mut c = Client::connect(addr, room).await;
    c.token = token.to_owned();
    c.facilitator = Some(secret.to_owned());
    let w = c.join(None).await;
    assert_eq!(w.role, JoinedAs::Facilitator);
    c
}

/// Applies `op` under a fresh op id (a reconnected [`Client`] counts its op ids from 1 again).
async fn apply_fresh(c: &mut Client, op_id: &str, op: Op) {
    let op_id = OpId::parse(op_id).expect("op id");
    c.send_op(op_id.clone(), op).await;
    let outcome = c.outcome(&op_id).await;
    assert!(matches!(outcome, ServerMessage::Applied(_)), "{outcome:?}");
}

/// The close code, after the server closed the connection; the reason is kept in `into`.
async fn closed_with(c: &mut Client, into: &mut Vec<(String, Vec<u8>)>) -> u16 {
    match c.expect_close().await {
        Closed::Frame { code, reason } => {
            into.push((format!("a close reason ({code})"), reason.into_bytes()));
            code
        }
        Closed::NoFrame => panic!("expected a close frame"),
    }
}

async fn get(addr: SocketAddr, path: &str, secret: &str) -> http::Response {
    let res = http::request(addr, "GET", path, None, &[(FACILITATOR, secret)]).await;
    assert_eq!(res.status, 200, "GET {path}: {}", res.body);
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_facilitator_secret_reaches_the_disk_or_the_log() {
    // The server's hashes are SHA-256 (the actor key is its first 16 bytes, in hex).
    assert_eq!(actor_key("abc").as_str(), &SHA256_ABC[..32]);
    assert_eq!(json!(SecretHash::of("abc")), json!(SHA256_ABC));

    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let logs = [tmp.path().join("run1.log"), tmp.path().join("run2.log")];
    // A marker in every token, so a leak is easy to spot by eye in a failure message.
    let marker = &new_token()[..10];
    let token = |who: &str| format!("{who}-{marker}-{}", new_token());
    let (ailsa, bruce, morag, fac) = (token("ailsa"), token("bruce"), token("morag"), token("fac"));
    // What clients and HTTP answers carried, each checked at the end.
    let mut received: Vec<(String, Vec<u8>)> = Vec::new();

    // First run: a two-room named event and a session in it.
    let server = start(&data, &logs[0]);
    let addr = server.addr;
    let body = json!({
        "title": "Planning day",
        "anonymous": false,
        "rooms": [
            {"name": "Housing", "prompt": "What would help most?"},
            {"name": "Transport", "prompt": "What gets in the way?"},
        ],
    })
    .to_string();
    let res = http::request(addr, "POST", "/api/events", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "event created: {}", res.body);
    let v: Value = serde_json::from_str(&res.body).expect("json");
    let event = v["event"].as_str().expect("event id").to_owned();
    let old_secret = v["facilitator_secret"].as_str().expect("secret").to_owned();
    let (room_a, room_b) = (
        v["rooms"][0]["room"].as_str().expect("room").to_owned(),
        v["rooms"][1]["room"].as_str().expect("room").to_owned(),
    );
    assert_eq!(http::get(addr, "/healthz").await.status, 200);
    received.push((
        "GET event".into(),
        get(addr, &format!("/api/events/{event}"), &old_secret)
            .await
            .body_bytes,
    ));
    // A near miss of the secret over HTTP: refused (and counted), never echoed.
    let mut near = old_secret.clone();
    near.replace_range(47.., if near.ends_with('0') { "1" } else { "0" });
    let res = http::request(
        addr,
        "GET",
        &format!("/api/events/{event}"),
        None,
        &[(FACILITATOR, &near)],
    )
    .await;
    assert_eq!(res.status, 403);
    received.push(("a 403".into(), res.body_bytes));

    let mut f = facilitator(addr, &room_a, &fac, &old_secret).await;
    let mut a = joined(addr, &room_a, &ailsa, Some("Ailsa")).await;
    let mut b = joined(addr, &room_a, &bruce, None).await;
    let mut m = joined(addr, &room_b, &morag, Some("Morag")).await;

    // Writing, editing, grouping, consent, voting: more records than --compact-every.
    let n1 = a
        .apply(create_note("More buses at night"))
        .await
        .created
        .expect("id");
    a.apply(edit_note(n1, "More buses after 11pm")).await;
    a.apply(move_note(n1, 300.0, 200.0)).await;
    a.apply(recolour_note(n1, Colour::Green)).await;
    a.apply(Op::SetQuotable(SetQuotable {
        note: n1,
        quotable: true,
    }))
    .await;
    let n2 = b
        .apply(create_note("Cheaper rent"))
        .await
        .created
        .expect("id");
    let t = b.apply(create_theme("Money")).await.created.expect("id");
    b.apply(set_theme(n2, Some(t), None)).await;
    let n3 = f
        .apply(create_note("A note from the front"))
        .await
        .created
        .expect("id");
    f.apply(Op::ProxyNote(CreateNote {
        text: "Said aloud by someone without a phone".into(),
        colour: Colour::Blue,
        x: 10.0,
        y: 10.0,
    }))
    .await;
    f.apply(Op::OpenVoting(OpenVoting {
        budget: 3,
        show_tallies: true,
    }))
    .await;
    a.apply(Op::Vote(NoteRef { note: n2 })).await;
    a.apply(Op::Vote(NoteRef { note: n2 })).await;
    a.apply(Op::Unvote(NoteRef { note: n2 })).await;
    b.apply(Op::Vote(NoteRef { note: n1 })).await;
    f.apply(Op::HideNote(Moderate {
        note: n3,
        reason: "a test of moderation".into(),
    }))
    .await;
    m.apply(create_note("The last train is at ten")).await;

    // Bad messages carrying a token or the secret: a second join (with a token, and with the
    // secret), a join cut short, unknown fields. Each is answered; the connections stay open.
    let again = json!({
        "type": "join", "version": 1, "token": ailsa, "last_seq": null, "name": null,
        "facilitator": null,
    });
    a.send_raw(&again.to_string()).await;
    let again = json!({
        "type": "join", "version": 1, "token": fac, "last_seq": null, "name": null,
        "facilitator": old_secret,
    });
    f.send_raw(&again.to_string()).await;
    b.send_raw(&format!(r#"{{"type":"join","version":1,"token":"{bruce}""#))
        .await;
    let stray =
        json!({"type": "op", "op_id": "bad-1", "op": {"kind": "vote", "note": n1, "token": bruce}});
    b.send_raw(&stray.to_string()).await;
    b.send_raw(&json!({"type": "ping", "token": bruce}).to_string())
        .await;
    for c in [&mut a, &mut b, &mut f] {
        let seen = c.sync().await;
        assert!(
            seen.iter()
                .any(|m| matches!(m, ServerMessage::Error(_) | ServerMessage::Rejected(_))),
            "{seen:?}"
        );
    }
    // Bad joins: a name too long, then an unsupported version; each closed with 4000.
    let mut bad = Client::connect(addr, &room_a).await;
    bad.token = morag.clone();
    bad.name = Some("n".repeat(41));
    bad.send_join(None).await;
    assert_eq!(closed_with(&mut bad, &mut received).await, close::BAD_JOIN);
    let mut bad = Client::connect(addr, &room_a).await;
    bad.send_raw(
        &json!({"type": "join", "version": 99, "token": morag, "facilitator": old_secret})
            .to_string(),
    )
    .await;
    assert_eq!(closed_with(&mut bad, &mut received).await, close::BAD_JOIN);

    // While the server runs: room B's journal holds Morag's record under her actor key, and no
    // file holds a token or the secret.
    let needles = |secrets: &[&str]| -> Vec<Needle> {
        let mut n: Vec<Needle> = [
            ("ailsa", &ailsa),
            ("bruce", &bruce),
            ("morag", &morag),
            ("fac", &fac),
        ]
        .into_iter()
        .map(|(who, t)| Needle::new(format!("{who}'s identity token"), t))
        .collect();
        n.extend(
            secrets
                .iter()
                .map(|s| Needle::new("a facilitator secret", s)),
        );
        n
    };
    let journal =
        std::fs::read(data.join("rooms").join(&room_b).join("journal.log")).expect("journal");
    assert!(
        contains(&journal, actor_key(&morag).as_str().as_bytes()),
        "the journal keeps the actor key"
    );
    assert_nowhere(&needles(&[&old_secret]), &data_files(&data));

    // Reconnecting: same token, the last seq seen; a resent op is recognised by its id.
    let last_seq = heard(&mut a, &mut received).expect("Ailsa saw changes");
    a.close().await;
    let mut a = Client::connect(addr, &room_a).await;
    a.token = ailsa.clone();
    a.join(Some(last_seq)).await;
    // A second tab of hers, from scratch.
    let mut a2 = Client::connect(addr, &room_a).await;
    a2.token = ailsa.clone();
    a2.join(None).await;
    let op_id = OpId::parse("reconnected-1").expect("op id");
    a.send_op(op_id.clone(), create_note("Said twice")).await;
    assert!(matches!(a.outcome(&op_id).await, ServerMessage::Applied(_)));
    // The other tab is told of it, then resends it as if it had sent it too.
    assert!(matches!(
        a2.outcome(&op_id).await,
        ServerMessage::Applied(_)
    ));
    a2.send_op(op_id.clone(), create_note("Said twice")).await;
    assert!(matches!(
        a2.outcome(&op_id).await,
        ServerMessage::AlreadyApplied(_)
    ));

    // Rotating the secret: the facilitator is closed with 4003, the old secret refused, the new
    // one works.
    let res = http::request(
        addr,
        "POST",
        &format!("/api/events/{event}/secret"),
        None,
        &[(FACILITATOR, &old_secret)],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let v: Value = serde_json::from_str(&res.body).expect("json");
    let secret = v["facilitator_secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        closed_with(&mut f, &mut received).await,
        close::FACILITATOR_LINK_CHANGED
    );
    heard(&mut f, &mut received);
    let mut old = Client::connect(addr, &room_a).await;
    old.facilitator = Some(old_secret.clone());
    old.send_join(None).await;
    assert_eq!(closed_with(&mut old, &mut received).await, close::BAD_JOIN);
    let mut f = facilitator(addr, &room_b, &fac, &secret).await;
    apply_fresh(
        &mut f,
        "rotated-1",
        Op::SetLocked(SetLocked { locked: true }),
    )
    .await;

    // Downloads: the snapshot, the reports, the event.
    for path in [
        format!("/api/events/{event}/snapshot"),
        format!("/api/events/{event}/report?format=csv"),
        format!("/api/events/{event}/report?format=html&quote_all=true"),
        format!("/api/events/{event}"),
    ] {
        received.push((
            format!("GET {path}"),
            get(addr, &path, &secret).await.body_bytes,
        ));
    }
    for c in [&mut a, &mut a2, &mut b, &mut m, &mut f] {
        c.sync().await;
        heard(c, &mut received);
    }
    let mut stdout = vec![stop(server)];
    // The clients see the shutdown; nothing they were sent on the way out carries a secret.
    for c in [&mut a, &mut a2, &mut b, &mut m, &mut f] {
        assert_eq!(closed_with(c, &mut received).await, close::GOING_AWAY);
        heard(c, &mut received);
    }

    // Second run on the same directory: rooms recovered, people back.
    let server = start(&data, &logs[1]);
    let addr = server.addr;
    let mut f = facilitator(addr, &room_b, &fac, &secret).await;
    apply_fresh(
        &mut f,
        "restarted-1",
        Op::SetLocked(SetLocked { locked: false }),
    )
    .await;
    let mut m = joined(addr, &room_b, &morag, Some("Morag")).await;
    apply_fresh(&mut m, "restarted-1", create_note("After the restart")).await;
    let mut b = joined(addr, &room_a, &bruce, None).await;
    b.sync().await;
    for c in [&mut m, &mut f, &mut b] {
        heard(c, &mut received);
    }
    stdout.push(stop(server));

    // Every file in the data directory, and everything the server printed.
    let files = data_files(&data);
    let mut printed: Vec<(String, Vec<u8>)> = logs
        .iter()
        .map(|p| {
            (
                format!("the log {}", p.display()),
                std::fs::read(p).expect("log"),
            )
        })
        .collect();
    printed.extend(
        stdout
            .into_iter()
            .enumerate()
            .map(|(i, b)| (format!("stdout of run {}", i + 1), b)),
    );
    let all_needles = needles(&[&old_secret, &secret]);
    assert_nowhere(&all_needles, &files);
    assert_nowhere(&all_needles, &printed);
    assert_nowhere(&all_needles, &received);

    // What is kept instead: the actor key of everyone who wrote a note, and the hash of the
    // current secret. Finding them shows the right files were read.
    let everything: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    for t in [&ailsa, &bruce, &morag, &fac] {
        assert!(
            contains(&everything, actor_key(t).as_str().as_bytes()),
            "{t}'s actor key is kept"
        );
    }
    let event_file = data.join("events").join(&event).join("event.json");
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(event_file).expect("event.json")).expect("json");
    assert_eq!(on_disk["facilitator_hash"], json!(SecretHash::of(&secret)));
    for expected in ["event.json", "snapshot.json", "journal.log"] {
        assert!(
            files.iter().any(|(p, _)| p.ends_with(expected)),
            "{expected} was read"
        );
    }
    // The log is the verbose one, and it is about this event.
    let log: Vec<u8> = printed.iter().flat_map(|(_, b)| b.clone()).collect();
    assert!(
        contains(&log, b"TRACE") && contains(&log, b"DEBUG"),
        "trace and debug lines"
    );
    assert!(contains(&log, event.as_bytes()) && contains(&log, room_a.as_bytes()));
    // Refusals are in it, by their fixed reasons and codes, without what the peer sent.
    assert!(
        contains(&log, b"closing the connection")
            && contains(&log, b"this facilitator link is not valid"),
        "a refused join leaves a line"
    );
    assert!(
        contains(&log, b"refused a message"),
        "a refused message leaves a line"
    );

    eprintln!(
        "scanned {} files ({} bytes) in the data directory, {} bytes of log and output, {} \
         messages and answers; {} needles",
        files.len(),
        everything.len(),
        log.len(),
        received.len(),
        all_needles.len(),
    );
}
