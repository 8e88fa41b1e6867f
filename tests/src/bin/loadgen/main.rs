//! The load generator: WebSocket clients that drive Bothy, or the bare relay (`relay`), with
//! the same schedule and measure them the same way. `make bench` runs it through `bench`; it can
//! also be run by hand against a running server. It prints one JSON object on stdout.
//!
//! ```sh
//! loadgen run  --addr 127.0.0.1:8080 --mode bothy --rooms 10 --clients-per-room 50 --rate 1 --source-net 11
//! loadgen idle --addr 127.0.0.1:8080 --room-ids ROOM1,ROOM2 --clients 5000 --source-net 12
//! loadgen join --addr 127.0.0.1:8080 --clients 200 --notes 2000
//! loadgen harm --addr 127.0.0.1:8080 --source-net 13 --server-pid "$(pgrep -n bothy)"
//! ```
//!
//! # How `run` measures
//! Every client sends operations (alternately `create_note` and `move_note`, ~150 bytes) at a
//! fixed rate on a fixed schedule: client `c`'s `n`th op is *intended* at
//! `t0 + (c / clients) * period + n * period`. The op id carries the client, `n` and the
//! `CLOCK_MONOTONIC` instant just before the frame was written (`c-n-sent`, in hex). Bothy's
//! `applied` message and the relay's forwarded frame both carry the op id, so every receipt by
//! another member gives, on one clock and identically for both servers:
//! - fan-out latency: receipt − sent;
//! - latency from the intended send time (corrected for coordinated omission): receipt −
//!   intended, which also counts time a client spent unable to send because the server had
//!   stopped reading;
//! - for the author (Bothy only: the relay does not echo), confirmation latency.
//!
//! Lost deliveries are those expected (each op sent and not rejected, times the other members of
//! its room) and not received by the end of the drain period. Deliveries per second are those
//! received inside the measured window. Server CPU (`utime + stime`) and memory (`VmRSS`,
//! `VmHWM`) come from `/proc/PID`.

#![recursion_limit = "256"]

mod harm;
mod ws;

use bothy_shared::protocol;
use bothy_tests::bench::{latency_summary, machine_cpu, mono_ns, proc_sample};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use ws::{FrameReader, FrameWriter, OP_CLOSE, OP_PING, OP_TEXT};

/// Longest any single connect, upgrade or join may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const PALETTE: [&str; 6] = ["yellow", "pink", "blue", "green", "orange", "purple"];

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for Bothy and the bare relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clients over rooms sending ops on a fixed schedule; measures every delivery.
    Run(RunArgs),
    /// Idle joined connections; prints a JSON line when all are in, then holds them until stdin
    /// closes.
    Idle(IdleArgs),
    /// Many clients joining one full board at the same moment (Bothy only).
    Join(JoinArgs),
    /// Load without harm: one room's latency unloaded, then with a flooder, a slow reader and
    /// 500 sockets from one address (Bothy only).
    Harm(harm::HarmArgs),
    /// Many sockets opened at once from one address, joining one room (`harm`'s third attack,
    /// which runs it as a process of its own); prints `ready`, opens them when it reads `go` on
    /// stdin, prints a JSON line when all are answered, then holds the admitted ones until stdin
    /// closes.
    Sockets(harm::SocketsArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Bothy: create rooms over HTTP, join, expect `welcome`, `applied` and confirmations.
    Bothy,
    /// The bare relay: no join message, a bare `welcome` frame, ops forwarded as sent.
    Relay,
}

#[derive(Args)]
struct Target {
    /// The server's address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long, value_enum, default_value = "bothy")]
    mode: Mode,
    /// The server's process id, to read its CPU time and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connect from loopback addresses 127.NET.x.y (see `--per-source`) instead of 127.0.0.1.
    #[arg(long)]
    source_net: Option<u8>,
    /// Clients per source address (Bothy's default limit per address is 200).
    #[arg(long, default_value_t = 100)]
    per_source: usize,
}

impl Target {
    fn sources(&self) -> Sources {
        Sources {
            net: self.source_net,
            per: self.per_source,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    #[arg(long, default_value_t = 50)]
    clients_per_room: usize,
    /// Operations per second sent by each client.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Seconds of sending before the measured window (its ops count for losses only).
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Seconds in the measured window.
    #[arg(long, default_value_t = 8.0)]
    secs: f64,
    /// Seconds after the last send to wait for outstanding deliveries.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    /// Notes created in each room before the clients join (the targets of moves).
    #[arg(long, default_value_t = 20)]
    seed_notes: u64,
    /// Connections being opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
}

#[derive(Args)]
struct IdleArgs {
    #[command(flatten)]
    target: Target,
    /// Rooms to join, comma-separated (clients go round-robin).
    #[arg(long, value_delimiter = ',', required = true)]
    room_ids: Vec<String>,
    #[arg(long)]
    clients: usize,
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
}

#[derive(Args)]
struct JoinArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Notes on the board before they join.
    #[arg(long, default_value_t = 2000)]
    notes: u64,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One thread: the generator is pinned to one core, and a single-threaded runtime spends it
    // on sockets rather than on work stealing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the runtime starts");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(a) => run(a).await,
            Command::Idle(a) => idle(a).await,
            Command::Join(a) => join_storm(a).await,
            Command::Harm(a) => harm::harm(a).await,
            Command::Sockets(a) => harm::sockets(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn secs_ns(secs: f64) -> u64 {
    (secs * 1e9) as u64
}

/// Sleeps until a `CLOCK_MONOTONIC` instant (tokio's `Instant` reads the same clock).
async fn sleep_until_ns(at: u64) {
    let now = mono_ns();
    if at > now {
        tokio::time::sleep_until(Instant::now() + Duration::from_nanos(at - now)).await;
    }
}

/// A join message with a fresh identity.
fn join_message() -> String {
    join_as(&bothy_tests::new_token(), None)
}

/// A join message for an identity, after `last_seq` (a reconnect) or first time.
fn join_as(token: &str, last_seq: Option<u64>) -> String {
    json!({"type":"join","version":1,"token":token,"last_seq":last_seq,"name":null}).to_string()
}

/// The number after the first `key` (like `"seq":`) in `text`.
fn number_after(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = ws::find(text, key)? + key.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The first bytes of a message, where its type, `seq` and `op_id` are.
fn head(payload: &[u8]) -> &[u8] {
    &payload[..payload.len().min(160)]
}

/// What a welcome said: its `seq`, and whether it carried the whole board (in it, or as a
/// link to fetch).
#[derive(Clone)]
struct WelcomeSeen {
    seq: Option<u64>,
    full_board: bool,
    board_url: Option<String>,
}

fn read_welcome(payload: &[u8]) -> WelcomeSeen {
    let board_url = board_url(payload);
    WelcomeSeen {
        seq: number_after(head(payload), br#""seq":"#),
        full_board: board_url.is_some() || ws::find(head(payload), br#""board":null"#).is_none(),
        board_url,
    }
}

/// A welcome's `board_url`: the link to a board too big to put in the welcome.
fn board_url(welcome: &[u8]) -> Option<String> {
    const KEY: &[u8] = br#""board_url":""#;
    let rest = &welcome[ws::find(head(welcome), KEY)? + KEY.len()..];
    let end = rest.iter().position(|&b| b == b'"')?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

/// Fetches a board sent as a link, gzipped, as a browser does (which then also unzips and
/// parses it, on its own machine); returns the bytes received.
async fn fetch_board(addr: SocketAddr, url: &str, source: Option<IpAddr>) -> io::Result<usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // From the joiner's own address, as its page would: the server paces new connections per
    // address.
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let mut s = socket.connect(addr).await?;
    let request = format!(
        "GET {url} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).await?;
    if !response.starts_with(b"HTTP/1.1 200") {
        let line = response.split(|&b| b == b'\r').next().unwrap_or_default();
        return Err(io::Error::other(format!(
            "the board link answered {}",
            String::from_utf8_lossy(line)
        )));
    }
    Ok(response.len())
}

/// Connects to a room and waits for its welcome (Bothy: after sending `join` as `token`, or a
/// fresh identity). Returns the halves and what the welcome said.
async fn connect_joined(
    addr: SocketAddr,
    mode: Mode,
    room: &str,
    source: Option<IpAddr>,
    read_buffer: usize,
    join: Option<String>,
) -> io::Result<(FrameReader, FrameWriter, WelcomeSeen)> {
    let work = async {
        let (mut reader, mut writer) =
            ws::connect(addr, &format!("/ws/{room}"), source, read_buffer).await?;
        if mode == Mode::Bothy {
            let join = join.unwrap_or_else(join_message);
            writer.send_text(join.as_bytes()).await?;
        }
        let welcome = reader
            .until_text(br#"{"type":"welcome""#, read_welcome)
            .await?;
        if let Some(url) = &welcome.board_url {
            fetch_board(addr, url, source).await?;
        }
        Ok((reader, writer, welcome))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(io::Error::other("timed out connecting and joining")))
}

/// Rooms for a run: created over HTTP on Bothy (rooms exist only when created), named on the
/// relay.
async fn make_rooms(target: &Target, count: usize) -> Vec<String> {
    match target.mode {
        Mode::Bothy => {
            let mut rooms = Vec::with_capacity(count);
            for i in 0..count {
                rooms.push(bothy_tests::create_room(target.addr, &format!("Bench room {i}")).await);
            }
            rooms
        }
        Mode::Relay => (0..count).map(|i| format!("bench-{i}")).collect(),
    }
}

/// Notes one seeding client creates: within Bothy's default burst of messages per connection
/// (40, the join included), so seeding is never refused for going too fast.
const SEED_PER_CLIENT: u64 = 30;

/// Creates `count` notes in a Bothy room, 30 at a time from short-lived clients one after
/// another, and returns the first note's id (the notes' ids follow on from it).
async fn seed_notes_in(addr: SocketAddr, room: &str, count: u64) -> io::Result<u64> {
    let mut first = None;
    let mut done = 0;
    while done < count {
        let chunk = (count - done).min(SEED_PER_CLIENT);
        let id = seed_some(addr, room, done, chunk).await?;
        first.get_or_insert(id);
        done += chunk;
    }
    Ok(first.unwrap_or(1))
}

/// One seeding client: joins, creates notes `from..from + count`, waits until all are applied.
/// Returns the lowest id they were given (each `applied` says what it `created`; the notes of
/// one seeding client get consecutive ids, as nobody else creates notes meanwhile).
async fn seed_some(addr: SocketAddr, room: &str, from: u64, count: u64) -> io::Result<u64> {
    let (mut reader, mut writer) =
        ws::connect(addr, &format!("/ws/{room}"), None, 64 * 1024).await?;
    writer.send_text(join_message().as_bytes()).await?;
    reader.until_text(br#"{"type":"welcome""#, |_| ()).await?;
    let mut first_id: Option<u64> = None;
    let mut text = String::new();
    for i in from..from + count {
        text.clear();
        let _ = write!(
            text,
            r#"{{"type":"op","op_id":"seed-{i}","op":{{"kind":"create_note","text":"Seed note {i}: what would make the garden better?","colour":"{}","x":{}.5,"y":{}.25}}}}"#,
            PALETTE[i as usize % 6],
            (i * 47) % 2900,
            (i * 31) % 1900
        );
        writer.send_text(text.as_bytes()).await?;
    }
    let mut applied = 0;
    while applied < count {
        match reader.next().await? {
            Some(f) if f.opcode == OP_TEXT && f.payload.starts_with(br#"{"type":"applied""#) => {
                applied += 1;
                let id = number_after(f.payload, br#""created":"#)
                    .ok_or_else(|| io::Error::other("an applied create has no `created` id"))?;
                first_id = Some(first_id.map_or(id, |f| f.min(id)));
            }
            Some(f) if f.opcode == OP_TEXT && f.payload.starts_with(br#"{"type":"rejected""#) => {
                return Err(io::Error::other(format!(
                    "a seed note was rejected: {}",
                    String::from_utf8_lossy(f.payload)
                )));
            }
            Some(f) if f.opcode == OP_CLOSE => {
                return Err(io::Error::other(format!(
                    "the seeding client was closed with {}",
                    f.close_code()
                )));
            }
            Some(_) => {}
            None => return Err(io::Error::other("closed while seeding")),
        }
    }
    first_id.ok_or_else(|| io::Error::other("no seed note was created"))
}

/// Where clients connect from: Bothy admits only so many sockets per address (200 by
/// default), so simulated people are spread over loopback addresses `127.NET.x.y`, `per`
/// to an address, as people in a hall share a few addresses. `None`: all from 127.0.0.1.
#[derive(Clone, Copy)]
struct Sources {
    net: Option<u8>,
    per: usize,
}

impl Sources {
    fn of(&self, client: usize) -> Option<IpAddr> {
        let net = self.net?;
        let k = client / self.per.max(1);
        let (hi, lo) = ((k / 250) as u8, (k % 250 + 1) as u8);
        Some(IpAddr::V4(std::net::Ipv4Addr::new(127, net, hi, lo)))
    }
}

/// `GET /metrics` as a JSON object: series (with labels) → value.
async fn scrape_metrics(addr: SocketAddr) -> Value {
    let res = bothy_tests::http::get(addr, "/metrics").await;
    let map: serde_json::Map<String, Value> = res
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), json!(v.parse::<f64>().ok()?))))
        .collect();
    Value::Object(map)
}

// ---------------------------------------------------------------------------------------------
// run: the fan-out scenarios

/// The fixed schedule, known to every task once the clients have joined.
struct Plan {
    clients: u64,
    per_room: u64,
    period_ns: u64,
    ops_per_client: u64,
    t0: u64,
    /// The measured window, `[w0, w1)`.
    w0: u64,
    w1: u64,
    /// Seeded notes: the first id and how many (targets of `move_note`).
    notes: (u64, u64),
    /// Keep every delivery with its intended send time (`harm` splits them into phases
    /// afterwards).
    timeline: bool,
    /// Each client's even ops create a note until it has created this many; every other op
    /// moves a seeded note.
    creates_per_client: u64,
}

impl Plan {
    fn intended(&self, client: u64, n: u64) -> u64 {
        self.t0 + client * self.period_ns / self.clients + n * self.period_ns
    }

    fn in_window(&self, t: u64) -> bool {
        (self.w0..self.w1).contains(&t)
    }

    /// Writes client `c`'s `n`th op, sent at `sent`: a note create or a move, alternately (a
    /// move once the client has made its creates).
    fn op(&self, out: &mut String, c: u64, n: u64, sent: u64) {
        out.clear();
        let x = (c * 37 + n * 101) % 2900;
        let y = (c * 53 + n * 67) % 1900;
        let _ = if n.is_multiple_of(2) && n / 2 < self.creates_per_client {
            write!(
                out,
                r#"{{"type":"op","op_id":"{c:x}-{n:x}-{sent:x}","op":{{"kind":"create_note","text":"Note {n} from {c}: more shade by the pond, and benches facing west","colour":"{}","x":{x}.5,"y":{y}.25}}}}"#,
                PALETTE[((c + n) % 6) as usize]
            )
        } else {
            let note = self.notes.0 + (c + n) % self.notes.1.max(1);
            write!(
                out,
                r#"{{"type":"op","op_id":"{c:x}-{n:x}-{sent:x}","op":{{"kind":"move_note","note":{note},"x":{x}.5,"y":{y}.25}}}}"#
            )
        };
    }
}

/// Reads `client-n-sent` (hex) from a message's `"op_id"`.
fn parse_op_id(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let key = br#""op_id":""#;
    let start = ws::find(&payload[..payload.len().min(80)], key)? + key.len();
    let rest = &payload[start..];
    let end = rest.iter().position(|b| *b == b'"')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    let mut parts = id.split('-');
    let mut next = || u64::from_str_radix(parts.next()?, 16).ok();
    Some((next()?, next()?, next()?))
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    bytes_sent: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
    rejected: AtomicU64,
    confirmed: AtomicU64,
    closed: AtomicU64,
    /// Connections Bothy closed with 4008 (too slow), each followed by a reconnect.
    kicked: AtomicU64,
    /// Reconnects answered with the whole board (the gap was too long to catch up).
    resync_full: AtomicU64,
    /// Reconnects answered with the missed `applied` messages.
    resync_catch_up: AtomicU64,
    /// Ops resent after a reconnect because they had not been answered.
    resent: AtomicU64,
    /// Ops that could not be written because the connection had just been closed; the
    /// reconnect resends them.
    send_failures: AtomicU64,
}

/// What every task of a run shares.
struct Shared {
    addr: SocketAddr,
    mode: Mode,
    /// Set once every client has joined.
    plan: OnceLock<Plan>,
    counters: Counters,
    stop: CancellationToken,
    /// Senders stop here, before their planned last op (`harm` ends when its phases do).
    stop_sending: CancellationToken,
}

/// One simulated browser: its identity, its current connection's writer (replaced when it
/// reconnects), and its ops not yet answered (resent after a reconnect, as the protocol says).
struct Client {
    me: u64,
    room: String,
    token: String,
    writer: tokio::sync::Mutex<FrameWriter>,
    unanswered: std::sync::Mutex<std::collections::BTreeMap<u64, String>>,
    /// The loopback address it connects from (reconnects too).
    source: Option<IpAddr>,
}

impl Client {
    fn answered(&self, n: u64) {
        self.unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n);
    }

    /// After Bothy closed this client for being too slow: reconnect at once with `last_seq`,
    /// then resend what was not answered, with the same op ids.
    async fn reconnect(&self, shared: &Shared, last_seq: Option<u64>) -> io::Result<FrameReader> {
        let join = join_as(&self.token, last_seq);
        let (reader, writer, welcome) = connect_joined(
            shared.addr,
            shared.mode,
            &self.room,
            self.source,
            16 * 1024,
            Some(join),
        )
        .await?;
        let c = &shared.counters;
        if welcome.full_board {
            c.resync_full.fetch_add(1, Ordering::Relaxed);
        } else {
            c.resync_catch_up.fetch_add(1, Ordering::Relaxed);
        }
        let mut w = self.writer.lock().await;
        *w = writer;
        let resend: Vec<String> = self
            .unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for text in resend {
            w.send_text(text.as_bytes()).await?;
            c.resent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(reader)
    }
}

/// What one receiving client saw.
#[derive(Default)]
struct Samples {
    fanout: Vec<u64>,
    intended: Vec<u64>,
    confirm: Vec<u64>,
    /// With [`Plan::timeline`]: (intended, receipt − sent, receipt − intended) per delivery.
    timeline: Vec<(u64, u64, u64)>,
    close_code: Option<u16>,
    first_rejection: Option<String>,
    /// Why reading failed, if it did.
    read_error: Option<String>,
}

/// Reads one client's messages until the run stops, recording every delivery; on a 4008 close
/// (Bothy: too slow) reconnects from `last_seq` as a browser does.
async fn receive(
    client: Arc<Client>,
    mut reader: FrameReader,
    mut last_seq: Option<u64>,
    shared: Arc<Shared>,
) -> Samples {
    let me = client.me;
    let counters = &shared.counters;
    let mut s = Samples::default();
    loop {
        let frame = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            f = reader.next() => f,
        };
        let now = mono_ns();
        let f = match frame {
            Ok(Some(f)) => f,
            Ok(None) => {
                counters.closed.fetch_add(1, Ordering::Relaxed);
                s.close_code = Some(1006);
                break;
            }
            Err(e) => {
                counters.closed.fetch_add(1, Ordering::Relaxed);
                s.close_code = Some(1006);
                s.read_error = Some(e.to_string());
                break;
            }
        };
        if f.opcode == OP_CLOSE {
            let code = f.close_code();
            if code == protocol::close::TOO_SLOW && shared.mode == Mode::Bothy {
                counters.kicked.fetch_add(1, Ordering::Relaxed);
                // Reconnect at once; if that fails too, back off (50 ms doubling to 2 s).
                let mut delay = Duration::from_millis(50);
                let reconnected = loop {
                    match client.reconnect(&shared, last_seq).await {
                        Ok(r) => break Some(r),
                        Err(e) => s.read_error = Some(format!("reconnecting: {e}")),
                    }
                    tokio::select! {
                        _ = shared.stop.cancelled() => break None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                };
                if let Some(r) = reconnected {
                    reader = r;
                    continue;
                }
            }
            counters.closed.fetch_add(1, Ordering::Relaxed);
            s.close_code = Some(code);
            break;
        }
        if f.opcode == OP_PING {
            let payload = f.payload.to_vec();
            let _ = client.writer.lock().await.send_pong(&payload).await;
            continue;
        }
        if f.opcode != OP_TEXT {
            continue;
        }
        let p = f.payload;
        let applied = p.starts_with(br#"{"type":"applied""#);
        let delivery = applied || p.starts_with(br#"{"type":"op""#);
        let rejection = !delivery && p.starts_with(br#"{"type":"rejected""#);
        let duplicate = !delivery && !rejection && p.starts_with(br#"{"type":"already_applied""#);
        if applied {
            last_seq = number_after(head(p), br#""seq":"#).or(last_seq);
        }
        if !delivery && !rejection && !duplicate {
            continue; // welcome, presence, pong
        }
        let (Some(plan), Some((c, n, sent))) = (shared.plan.get(), parse_op_id(p)) else {
            continue;
        };
        if c == me {
            client.answered(n);
        }
        if rejection || duplicate {
            if rejection && c == me {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                s.first_rejection
                    .get_or_insert_with(|| String::from_utf8_lossy(p).into_owned());
            }
        } else if c == me {
            counters.confirmed.fetch_add(1, Ordering::Relaxed);
            if plan.in_window(plan.intended(c, n)) {
                s.confirm.push(now.saturating_sub(sent));
            }
        } else {
            counters.delivered.fetch_add(1, Ordering::Relaxed);
            if plan.in_window(now) {
                counters.delivered_in_window.fetch_add(1, Ordering::Relaxed);
            }
            let intended = plan.intended(c, n);
            if plan.in_window(intended) {
                s.fanout.push(now.saturating_sub(sent));
                s.intended.push(now.saturating_sub(intended));
                if plan.timeline {
                    s.timeline.push((
                        intended,
                        now.saturating_sub(sent),
                        now.saturating_sub(intended),
                    ));
                }
            }
        }
    }
    s
}

/// Sends a client's ops on schedule (until the plan's last op or `stop_sending`), and returns
/// how late each op in the window was sent, as (intended, sent − intended): how well the
/// schedule held. An op that cannot be written (the connection was just closed) stays
/// unanswered and is resent by the reconnect.
async fn send(client: Arc<Client>, shared: Arc<Shared>) -> Vec<(u64, u64)> {
    let plan = shared
        .plan
        .get()
        .expect("the plan is set before senders start");
    let counters = &shared.counters;
    let mut lag = Vec::new();
    let mut text = String::with_capacity(256);
    for n in 0..plan.ops_per_client {
        let intended = plan.intended(client.me, n);
        tokio::select! {
            biased;
            _ = shared.stop_sending.cancelled() => break,
            _ = sleep_until_ns(intended) => {}
        }
        let sent = mono_ns();
        if plan.in_window(intended) {
            lag.push((intended, sent.saturating_sub(intended)));
        }
        plan.op(&mut text, client.me, n, sent);
        if shared.mode == Mode::Bothy {
            client
                .unanswered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(n, text.clone());
        }
        counters.sent.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes_sent
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        if client
            .writer
            .lock()
            .await
            .send_text(text.as_bytes())
            .await
            .is_err()
        {
            counters.send_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    lag
}

/// Rooms for a run, with `seed_notes` notes in each on Bothy (the targets of moves); returns
/// them and the first seeded note's id.
async fn prepare_rooms(
    t: &Target,
    count: usize,
    seed_notes: u64,
) -> Result<(Vec<String>, u64), String> {
    let rooms = make_rooms(t, count).await;
    let mut first_note = 1;
    if t.mode == Mode::Bothy && seed_notes > 0 {
        let seeds: Vec<_> = rooms
            .iter()
            .map(|r| {
                let (addr, room) = (t.addr, r.clone());
                tokio::spawn(async move { seed_notes_in(addr, &room, seed_notes).await })
            })
            .collect();
        for s in seeds {
            first_note = s
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
    }
    Ok((rooms, first_note))
}

/// Connects and joins `per_room` clients to each room (`connect_concurrency` at a time), and
/// starts each one's receiver.
async fn connect_clients(
    shared: &Arc<Shared>,
    rooms: &[String],
    per_room: usize,
    sources: Sources,
    connect_concurrency: usize,
) -> Result<(Vec<Arc<Client>>, Vec<JoinHandle<Samples>>), String> {
    let clients = rooms.len() * per_room;
    let gate = Arc::new(Semaphore::new(connect_concurrency.max(1)));
    let mut joining = Vec::with_capacity(clients);
    for c in 0..clients {
        let room = rooms[c / per_room].clone();
        let (gate, shared) = (gate.clone(), shared.clone());
        let source = sources.of(c);
        joining.push(tokio::spawn(async move {
            let token = bothy_tests::new_token();
            let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let join = join_as(&token, None);
            let (reader, writer, welcome) = connect_joined(
                shared.addr,
                shared.mode,
                &room,
                source,
                16 * 1024,
                Some(join),
            )
            .await
            .map_err(|e| format!("client {c}: {e}"))?;
            drop(permit);
            let client = Arc::new(Client {
                me: c as u64,
                room,
                token,
                writer: tokio::sync::Mutex::new(writer),
                unanswered: Default::default(),
                source,
            });
            let receiver = tokio::spawn(receive(client.clone(), reader, welcome.seq, shared));
            Ok::<_, String>((client, receiver))
        }));
    }
    let mut all_clients = Vec::with_capacity(clients);
    let mut receivers = Vec::with_capacity(clients);
    for j in joining {
        let (client, r) = j.await.map_err(|e| e.to_string())??;
        all_clients.push(client);
        receivers.push(r);
    }
    Ok((all_clients, receivers))
}

async fn run(a: RunArgs) -> Result<(), String> {
    let t = &a.target;
    let clients = a.rooms * a.clients_per_room;
    if clients == 0 || a.rate <= 0.0 || a.clients_per_room < 2 {
        return Err("need at least one room of two clients and a positive rate".into());
    }
    let setup_start = mono_ns();
    let (rooms, first_note) = prepare_rooms(t, a.rooms, a.seed_notes).await?;
    eprintln!(
        "loadgen: {} rooms ready; connecting {clients} clients",
        rooms.len()
    );
    let shared = Arc::new(Shared {
        addr: t.addr,
        mode: t.mode,
        plan: OnceLock::new(),
        counters: Counters::default(),
        stop: CancellationToken::new(),
        stop_sending: CancellationToken::new(),
    });
    let (all_clients, receivers) = connect_clients(
        &shared,
        &rooms,
        a.clients_per_room,
        t.sources(),
        a.connect_concurrency,
    )
    .await?;
    let joined_at = mono_ns();
    let pid = t.server_pid;
    let sample = |pid: Option<u32>| pid.and_then(|p| proc_sample(p).ok()).unwrap_or_default();
    let connected = sample(pid);
    eprintln!(
        "loadgen: {clients} joined in {:.2} s",
        (joined_at - setup_start) as f64 / 1e9
    );

    // The schedule starts shortly after the last join, once presence messages have settled.
    let period_ns = (1e9 / a.rate) as u64;
    let t0 = mono_ns() + 300_000_000;
    let w0 = t0 + secs_ns(a.warmup_secs);
    let w1 = w0 + secs_ns(a.secs);
    let ops_per_client = ((a.warmup_secs + a.secs) * a.rate).ceil() as u64;
    let plan_ref = Plan {
        clients: clients as u64,
        per_room: a.clients_per_room as u64,
        period_ns,
        ops_per_client,
        t0,
        w0,
        w1,
        notes: (first_note, a.seed_notes.max(1)),
        timeline: false,
        creates_per_client: u64::MAX,
    };
    let last_intended = plan_ref.intended(clients as u64 - 1, ops_per_client - 1);
    let per_room = plan_ref.per_room;
    let _ = shared.plan.set(plan_ref);
    let senders: Vec<_> = all_clients
        .iter()
        .map(|c| tokio::spawn(send(c.clone(), shared.clone())))
        .collect();
    let counters = &shared.counters;

    sleep_until_ns(w0).await;
    let (server0, gen0, busy0) = (sample(pid), sample(Some(0)), machine_cpu());
    sleep_until_ns(w1).await;
    let (server1, gen1, busy1) = (sample(pid), sample(Some(0)), machine_cpu());

    // Drain: until every expected delivery has arrived, or the drain period is over.
    sleep_until_ns(last_intended).await;
    let deadline = last_intended + secs_ns(a.drain_secs);
    let total_ops = clients as u64 * ops_per_client;
    loop {
        let sent = counters.sent.load(Ordering::Relaxed);
        let rejected = counters.rejected.load(Ordering::Relaxed);
        let expected = (sent - rejected.min(sent)) * (per_room - 1);
        if (sent == total_ops && counters.delivered.load(Ordering::Relaxed) >= expected)
            || mono_ns() >= deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained_at = mono_ns();
    shared.stop.cancel();
    let mut all = Samples::default();
    let mut close_codes = std::collections::BTreeMap::<String, u64>::new();
    let mut first_rejection = None;
    let mut first_read_error = None;
    for r in receivers {
        let s = r.await.map_err(|e| e.to_string())?;
        all.fanout.extend(s.fanout);
        all.intended.extend(s.intended);
        all.confirm.extend(s.confirm);
        if let Some(code) = s.close_code {
            *close_codes.entry(code.to_string()).or_default() += 1;
        }
        first_rejection = first_rejection.or(s.first_rejection);
        first_read_error = first_read_error.or(s.read_error);
    }
    let end = sample(pid);
    // Bothy's own counters, read while every client is still connected (a mass disconnect
    // afterwards would add its own presence traffic to them).
    let metrics = if t.mode == Mode::Bothy {
        scrape_metrics(t.addr).await
    } else {
        Value::Null
    };
    let mut send_lag = Vec::new();
    let mut blocked_senders = 0;
    for s in senders {
        if s.is_finished() {
            send_lag.extend(
                s.await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|(_, lag)| lag),
            );
        } else {
            // Still blocked on a server that stopped reading: abandoned with the process.
            blocked_senders += 1;
        }
    }

    let c = |x: &AtomicU64| x.load(Ordering::Relaxed);
    let (sent, rejected, delivered) = (
        c(&counters.sent),
        c(&counters.rejected),
        c(&counters.delivered),
    );
    let expected = (sent - rejected.min(sent)) * (per_room - 1);
    let in_window = c(&counters.delivered_in_window);
    let window_secs = a.secs;
    let server_cpu = server1.cpu_secs - server0.cpu_secs;
    let generator_cpu = gen1.cpu_secs - gen0.cpu_secs;
    let report = json!({
        "mode": if t.mode == Mode::Bothy { "bothy" } else { "relay" },
        "rooms": a.rooms,
        "clients": clients,
        "clients_per_room": a.clients_per_room,
        "rate": a.rate,
        "warmup_secs": a.warmup_secs,
        "secs": a.secs,
        "join_secs": (joined_at - setup_start) as f64 / 1e9,
        "ops_sent": sent,
        "ops_planned": total_ops,
        "ops_rejected": rejected,
        "ops_confirmed": c(&counters.confirmed),
        "first_rejection": first_rejection,
        "first_read_error": first_read_error,
        "avg_op_bytes": c(&counters.bytes_sent) as f64 / sent.max(1) as f64,
        "deliveries_expected": expected,
        "deliveries": delivered,
        "lost": expected.saturating_sub(delivered),
        "extra": delivered.saturating_sub(expected),
        "clients_closed": c(&counters.closed),
        "kicked": c(&counters.kicked),
        "resync_full": c(&counters.resync_full),
        "resync_catch_up": c(&counters.resync_catch_up),
        "resent": c(&counters.resent),
        "send_failures": c(&counters.send_failures),
        "close_codes": close_codes,
        "offered_deliveries_per_s": clients as f64 * a.rate * (per_room - 1) as f64,
        "deliveries_per_s": in_window as f64 / window_secs,
        "drain_secs": (drained_at.saturating_sub(last_intended)) as f64 / 1e9,
        "fanout": latency_summary(&mut all.fanout),
        "fanout_from_intended": latency_summary(&mut all.intended),
        "send_lag": latency_summary(&mut send_lag),
        "blocked_senders": blocked_senders,
        "confirm": if t.mode == Mode::Bothy { latency_summary(&mut all.confirm) } else { Value::Null },
        "server": pid.map(|_| json!({
            "cpu_secs": server_cpu,
            "cpu_util": server_cpu / window_secs,
            "cpu_us_per_delivery": server_cpu * 1e6 / in_window.max(1) as f64,
            "rss_connected_kib": connected.rss_kib,
            "rss_end_kib": end.rss_kib,
            "rss_peak_kib": end.hwm_kib,
        })),
        "generator": { "cpu_util": generator_cpu / window_secs },
        "metrics": metrics,
        // Everything else the machine ran in the window (other people's work disturbs a run).
        // Other programs on this VM (anything but the server and the generator), and time
        // the host took the CPUs away: both disturb a run.
        "other_cpu_util": ((busy1.tasks - busy0.tasks) - server_cpu - generator_cpu).max(0.0)
            / window_secs,
        "steal_util": (busy1.steal - busy0.steal) / window_secs,
        // Loopback receive processing (ours, mostly), charged to no process.
        "softirq_util": (busy1.softirq - busy0.softirq) / window_secs,
    });
    println!("{report}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// idle: capacity

async fn idle(a: IdleArgs) -> Result<(), String> {
    let t = &a.target;
    let gate = Arc::new(Semaphore::new(a.connect_concurrency.max(1)));
    let start = mono_ns();
    let mut tasks = Vec::with_capacity(a.clients);
    for c in 0..a.clients {
        let room = a.room_ids[c % a.room_ids.len()].clone();
        let gate = gate.clone();
        let (addr, mode, source) = (t.addr, t.mode, t.sources().of(c));
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            let (mut reader, writer, _) = connect_joined(addr, mode, &room, source, 2048, None)
                .await
                .map_err(|e| e.to_string())?;
            drop(permit);
            let joined = mono_ns();
            // Keep reading (presence messages, pings) until the server or this process ends.
            tokio::spawn(async move {
                let mut writer = writer;
                while let Ok(Some(f)) = reader.next().await {
                    if f.opcode == OP_PING {
                        let payload = f.payload.to_vec();
                        if writer.send_pong(&payload).await.is_err() {
                            break;
                        }
                    }
                }
            });
            Ok::<u64, String>(joined)
        }));
    }
    let (mut joined, mut last, mut failed, mut first_error) = (0u64, start, 0u64, None);
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok(at) => {
                joined += 1;
                last = last.max(at);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let report = json!({
        "joined": joined,
        "failed": failed,
        "first_error": first_error,
        "start_mono_ns": start,
        "last_welcome_mono_ns": last,
        "generator_rss_kib": proc_sample(0).map(|s| s.rss_kib).unwrap_or(0),
    });
    println!("{report}");
    // Hold the connections until whoever started this closes our stdin.
    let mut sink = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// join: a full board, many joining at once

async fn join_storm(a: JoinArgs) -> Result<(), String> {
    let t = &a.target;
    if t.mode != Mode::Bothy {
        return Err("the join scenario needs Bothy (the relay has no board)".into());
    }
    let room = make_rooms(t, 1).await.remove(0);
    seed_notes_in(t.addr, &room, a.notes)
        .await
        .map_err(|e| format!("seeding: {e}"))?;
    eprintln!("loadgen: room {room} has {} notes", a.notes);
    // Open every socket first, then send every join at the same moment.
    let barrier = Arc::new(tokio::sync::Barrier::new(a.clients));
    let mut tasks = Vec::with_capacity(a.clients);
    for c in 0..a.clients {
        let barrier = barrier.clone();
        let (addr, room, source) = (t.addr, room.clone(), t.sources().of(c));
        tasks.push(tokio::spawn(async move {
            let (mut reader, mut writer) =
                ws::connect(addr, &format!("/ws/{room}"), source, 16 * 1024)
                    .await
                    .map_err(|e| e.to_string())?;
            let join = join_message();
            barrier.wait().await;
            let sent = mono_ns();
            writer
                .send_text(join.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let welcomed = async {
                let (size, url) = reader
                    .until_text(br#"{"type":"welcome""#, |p| (p.len(), board_url(p)))
                    .await?;
                let message = mono_ns() - sent;
                let board = match url {
                    Some(url) => fetch_board(addr, &url, source).await?,
                    None => 0,
                };
                Ok::<_, io::Error>((message, size + board))
            };
            let (message, size) = tokio::time::timeout(CONNECT_TIMEOUT, welcomed)
                .await
                .map_err(|_| "no welcome (and board) in time".to_owned())?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((mono_ns() - sent, message, size, reader, writer))
        }));
    }
    let mut latencies = Vec::with_capacity(a.clients);
    let mut message_latencies = Vec::with_capacity(a.clients);
    let mut sizes = Vec::with_capacity(a.clients);
    let mut held = Vec::with_capacity(a.clients);
    for task in tasks {
        let (latency, message, size, r, w) = task.await.map_err(|e| e.to_string())??;
        latencies.push(latency);
        message_latencies.push(message);
        sizes.push(size as u64);
        held.push((r, w));
    }
    let server = t
        .server_pid
        .and_then(|p| proc_sample(p).ok())
        .unwrap_or_default();
    let report = json!({
        "room": room,
        "notes": a.notes,
        "clients": a.clients,
        // Join sent → the board in hand: the welcome read and, if it came as a link, the board
        // fetched. `welcome_message`: join sent → the welcome message read.
        "welcome": latency_summary(&mut latencies),
        "welcome_message": latency_summary(&mut message_latencies),
        "welcome_bytes_mean": sizes.iter().sum::<u64>() as f64 / sizes.len().max(1) as f64,
        "welcome_bytes_max": sizes.iter().max(),
        "server_rss_peak_kib": server.hwm_kib,
    });
    println!("{report}");
    drop(held);
    Ok(())
}
