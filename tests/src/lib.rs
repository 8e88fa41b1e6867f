//! Test support: a real Bothy server on `127.0.0.1:0` with a temporary data directory, the real
//! `bothy` binary for crash tests, and a typed WebSocket client whose every receive has a
//! deadline (tests wait for events, they never sleep).
//!
//! # Layout
//! - [`TestServer`]: the server in this process, stopped on drop.
//! - [`BinaryServer`]: the `bothy` binary as a child process, for SIGKILL and SIGTERM tests.
//! - [`Client`]: a WebSocket client speaking the protocol, with `recv`, `recv_until`,
//!   `expect_close`.
//! - [`Replica`]: a board kept up to date from `welcome` and `applied` messages, as a browser does.
//! - [`http`]: a minimal HTTP/1.1 client for the JSON API.
//! - [`raw`]: a byte-level WebSocket and HTTP client for input no library would send (the
//!   bad-input corpus).
//! - [`bench`]: clock, `/proc` readings and percentiles for the benchmark binaries in `src/bin`.

pub mod bench;
pub mod http;
pub mod raw;

use bothy_server::ServerConfig;
use bothy_shared::protocol::{
    ClientMessage, Join, OpMessage, PROTOCOL_VERSION, Secret, ServerMessage, Welcome,
};
use bothy_shared::{Board, Op, OpContext, OpId};
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A server running in this process on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Kept so the directory lives as long as the server, when the server made it.
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with default settings and a fresh temporary data directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server with a fresh data directory and settings changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut s = Self::start_in(tmp.path(), tweak).await;
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data directory (to test restarts).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig {
            data_dir: dir.to_owned(),
            // Tests send operations as fast as they can; the rate limit has its own tests.
            ops_per_second: 1_000_000,
            ops_burst: 1_000_000,
            ..ServerConfig::default()
        };
        tweak(&mut config);
        let listener = bothy_server::listen(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            bothy_server::serve(listener, config, token)
                .await
                .expect("server runs");
        });
        Self {
            addr,
            data_dir: dir.to_owned(),
            shutdown,
            task: Some(task),
            _tmp: None,
        }
    }

    /// Shuts down gracefully and waits until every room is saved.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("server stops in time")
                .expect("server task ends cleanly");
        }
    }

    /// Creates a room through the HTTP API and returns its id.
    pub async fn create_room(&self, prompt: &str) -> String {
        create_room(self.addr, prompt).await
    }

    pub async fn client(&self, room: &str) -> Client {
        Client::connect(self.addr, room).await
    }

    /// Connects and joins with a fresh identity; returns the client and its welcome.
    pub async fn joined(&self, room: &str) -> (Client, Welcome) {
        let mut c = self.client(room).await;
        let w = c.join(None).await;
        (c, w)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Creates a room through `POST /api/rooms`.
pub async fn create_room(addr: SocketAddr, prompt: &str) -> String {
    let body = serde_json::json!({ "prompt": prompt }).to_string();
    let res = http::request(addr, "POST", "/api/rooms", Some(&body), &[]).await;
    assert_eq!(res.status, 201, "room created: {}", res.body);
    let v: serde_json::Value = serde_json::from_str(&res.body).expect("json");
    v["room"].as_str().expect("room id").to_owned()
}

/// The real `bothy` binary as a child process (built by `make test` before the tests run).
pub struct BinaryServer {
    pub addr: SocketAddr,
    /// `None` once the process has been killed or has exited.
    child: Option<Child>,
    /// Reads its stdout to the end (so it never blocks on a full pipe) and keeps it.
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// Path of the `bothy` binary next to the test binaries.
pub fn bothy_binary() -> PathBuf {
    if let Ok(p) = std::env::var("BOTHY_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/bothy
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("bothy"))
        .expect("target dir");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --bin bothy` first (make test does)",
        path.display()
    );
    path
}

impl BinaryServer {
    /// Starts `bothy serve` on an ephemeral port and waits for the line that gives the address.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", data_dir, extra_args)
    }

    /// Starts `bothy serve` on a given address (to restart on the same port after a kill).
    pub fn start_on(bind: &str, data_dir: &Path, extra_args: &[&str]) -> Self {
        Self::launch(bind, data_dir, extra_args, "warn", Stdio::inherit())
    }

    /// Starts `bothy serve` on an ephemeral port, logging with the filter `log_filter` (as
    /// `BOTHY_LOG`) into the file `log`.
    pub fn start_logged(
        data_dir: &Path,
        extra_args: &[&str],
        log_filter: &str,
        log: &Path,
    ) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        Self::launch("127.0.0.1:0", data_dir, extra_args, log_filter, log.into())
    }

    fn launch(
        bind: &str,
        data_dir: &Path,
        extra_args: &[&str],
        log_filter: &str,
        log: Stdio,
    ) -> Self {
        let mut child = Command::new(bothy_binary())
            .arg("serve")
            .arg("--bind")
            .arg(bind)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("BOTHY_LOG", log_filter)
            // Test clients send as fast as they can (flags in `extra_args` still win).
            .env("BOTHY_OPS_PER_SECOND", "1000000")
            .env("BOTHY_OPS_BURST", "1000000")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("bothy starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let (mut all, mut line) = (Vec::new(), Vec::new());
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if let Some(rest) = String::from_utf8_lossy(&line).split("http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_owned());
                }
                all.append(&mut line);
            }
            all
        });
        let addr = rx
            .recv_timeout(DEADLINE)
            .expect("bothy printed its address before exiting");
        Self {
            addr: addr.parse().expect("socket address"),
            child: Some(child),
            stdout: Some(stdout),
        }
    }

    /// SIGKILL: the process gets no chance to save anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    /// SIGTERM, then wait (up to the deadline) for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.terminate_with_stdout().0
    }

    /// SIGTERM, then wait (up to the deadline) for the exit status and everything the process
    /// printed on stdout.
    pub fn terminate_with_stdout(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        let mut child = self.child.take().expect("running");
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM sent");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(DEADLINE)
            .expect("bothy exits after SIGTERM")
            .expect("exit status");
        let stdout = self.stdout.take().expect("stdout reader");
        (status, stdout.join().expect("stdout read to the end"))
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A random identity token, as a browser makes one.
pub fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..24)
        .map(|_| {
            let c = rng.random_range(0..36u8);
            (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
        })
        .collect()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server did with the connection when it closed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    Frame {
        code: u16,
        reason: String,
    },
    /// The TCP connection ended without a close frame.
    NoFrame,
}

/// A typed WebSocket client.
pub struct Client {
    ws: Ws,
    pub token: String,
    pub name: Option<String>,
    /// The facilitator secret to join with, if any.
    pub facilitator: Option<String>,
    next_op: u64,
    /// Every message received so far, in order (see [`Client::take_received`]).
    received: Vec<ServerMessage>,
    /// The server, for fetching a board the welcome sent as a link.
    addr: SocketAddr,
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str) -> Self {
        tokio::time::timeout(DEADLINE, Self::try_connect(addr, room))
            .await
            .expect("connect in time")
            .expect("websocket connects")
    }

    /// Connects with extra request headers (e.g. `Origin`), or says why not (with the HTTP
    /// status when the upgrade was refused).
    pub async fn try_connect_with(
        addr: SocketAddr,
        room: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/ws/{room}")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        for (k, v) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| e.to_string())?,
                v.parse().map_err(|_| "bad header value".to_owned())?,
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Self {
                ws,
                token: new_token(),
                name: None,
                facilitator: None,
                next_op: 0,
                received: Vec::new(),
                addr,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                Err(format!("http {}", res.status().as_u16()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Connects, or says why not (the server may be down in crash tests).
    pub async fn try_connect(addr: SocketAddr, room: &str) -> Result<Self, String> {
        let url = format!("ws://{addr}/ws/{room}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            ws,
            token: new_token(),
            name: None,
            facilitator: None,
            next_op: 0,
            received: Vec::new(),
            addr,
        })
    }

    /// Joins with this client's token and waits for the welcome. A board sent as a link is
    /// fetched, as the browser does, and put in the welcome's `board` (`board_url` stays set).
    pub async fn join(&mut self, last_seq: Option<u64>) -> Welcome {
        self.send_join(last_seq).await;
        match self.recv().await {
            ServerMessage::Welcome(mut w) => {
                if let Some(url) = &w.board_url {
                    w.board = Some(self.fetch_board(url).await);
                }
                w
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Fetches a board from a welcome's `board_url`, gzipped, as a browser does.
    pub async fn fetch_board(&self, url: &str) -> bothy_shared::view::BoardView {
        let res = http::request(self.addr, "GET", url, None, &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(res.status, 200, "the board from its link: {}", res.body);
        assert_eq!(res.header("content-encoding"), Some("gzip"));
        let mut json = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&res.body_bytes[..]),
            &mut json,
        )
        .expect("gzip");
        serde_json::from_str(&json).expect("a board")
    }

    /// Sends `join` without waiting for the welcome.
    pub async fn send_join(&mut self, last_seq: Option<u64>) {
        let join = self.join_message(last_seq);
        self.send(&join).await;
    }

    fn join_message(&self, last_seq: Option<u64>) -> ClientMessage {
        ClientMessage::Join(Join {
            version: PROTOCOL_VERSION,
            token: self.token.clone(),
            last_seq,
            name: self.name.clone(),
            facilitator: self.facilitator.clone().map(Secret),
        })
    }

    /// Joins, or says how the connection closed (crash tests, where the server may vanish).
    pub async fn try_join(&mut self, last_seq: Option<u64>) -> Result<Welcome, Closed> {
        let join = self.join_message(last_seq);
        self.try_send(&join).await?;
        match self.try_recv(DEADLINE).await? {
            ServerMessage::Welcome(w) => Ok(w),
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Sends, or says the connection is gone.
    pub async fn try_send(&mut self, msg: &ClientMessage) -> Result<(), Closed> {
        let text = serde_json::to_string(msg).expect("serialise");
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|_| Closed::NoFrame)
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        let text = serde_json::to_string(msg).expect("serialise");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_message(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// A fresh op id for this client. Its prefix is a hash of the token, not the token's own
    /// characters: op ids are saved in the journal, and a token must never reach the disk. The
    /// same token gives the same prefix, so a reconnect with it resends the same ids.
    pub fn op_id(&mut self) -> OpId {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.token.hash(&mut hasher);
        self.next_op += 1;
        let prefix = hasher.finish() as u32;
        OpId::parse(&format!("{prefix:08x}-{}", self.next_op)).expect("op id")
    }

    /// Sends an op with a fresh id and returns the id.
    pub async fn op(&mut self, op: Op) -> OpId {
        let op_id = self.op_id();
        self.send_op(op_id.clone(), op).await;
        op_id
    }

    pub async fn send_op(&mut self, op_id: OpId, op: Op) {
        self.send(&ClientMessage::Op(OpMessage { op_id, op })).await;
    }

    /// The next server message, or panic after the deadline.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.try_recv(DEADLINE).await {
            Ok(m) => m,
            Err(closed) => panic!("connection closed while waiting for a message: {closed:?}"),
        }
    }

    /// The next server message, or how the connection closed. Panics after `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Result<ServerMessage, Closed> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("a message arrives before the deadline");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let m: ServerMessage = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("bad server message {t}: {e}"));
                    self.received.push(m.clone());
                    return Ok(m);
                }
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Err(Closed::Frame {
                        code: code.into(),
                        reason: reason.to_string(),
                    });
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return Err(Closed::NoFrame);
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Receives until `pred` matches, returning that message and everything before it.
    pub async fn recv_until(
        &mut self,
        mut pred: impl FnMut(&ServerMessage) -> bool,
    ) -> Vec<ServerMessage> {
        let mut seen = Vec::new();
        loop {
            let m = self.recv().await;
            let done = pred(&m);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }

    /// Waits for the confirmation (`applied` with this op id) or rejection of one op.
    pub async fn outcome(&mut self, op_id: &OpId) -> ServerMessage {
        let seen = self
            .recv_until(|m| match m {
                ServerMessage::Applied(a) => &a.op_id == op_id,
                ServerMessage::Rejected(r) => &r.op_id == op_id,
                ServerMessage::AlreadyApplied(a) => &a.op_id == op_id,
                _ => false,
            })
            .await;
        seen.into_iter().last().expect("at least one")
    }

    /// Waits for the server to close the connection and returns the close code.
    pub async fn expect_close(&mut self) -> Closed {
        loop {
            match self.try_recv(DEADLINE).await {
                Ok(_) => continue,
                Err(c) => return c,
            }
        }
    }

    /// Reads the TCP stream underneath, bypassing the WebSocket library (which would answer
    /// pings), until the server closes it. Returns the raw bytes.
    pub async fn read_raw_to_end(&mut self) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let MaybeTlsStream::Plain(tcp) = self.ws.get_mut() else {
            panic!("plain TCP expected");
        };
        let mut bytes = Vec::new();
        tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut bytes))
            .await
            .expect("the server closes the connection in time")
            .expect("read");
        bytes
    }

    /// Every message received since the last call, in order.
    pub fn take_received(&mut self) -> Vec<ServerMessage> {
        std::mem::take(&mut self.received)
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A board kept up to date the way a browser keeps it: from the welcome, then every `applied`.
#[derive(Debug, Clone)]
pub struct Replica {
    pub board: Board,
    pub seq: u64,
}

impl Replica {
    pub fn from_welcome(w: &Welcome) -> Self {
        Self {
            board: w.board.as_ref().expect("welcome with a board").to_board(),
            seq: w.seq,
        }
    }

    /// Follows one server message. Panics if sequence numbers skip or an op does not apply.
    pub fn follow(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Welcome(w) => {
                if let Some(b) = &w.board {
                    self.board = b.to_board();
                    self.seq = w.seq;
                }
            }
            ServerMessage::Applied(a) => {
                if a.seq <= self.seq {
                    return;
                }
                assert_eq!(
                    a.seq,
                    self.seq + 1,
                    "sequence numbers arrive in order with no gap"
                );
                let ctx = OpContext {
                    actor: None,
                    author: a.author.clone(),
                    at: a.at,
                    role: Default::default(),
                };
                // A browser takes new ids from the server's confirmation.
                match (&a.op, a.created) {
                    (Op::CreateTheme(_), Some(id)) => self.board.next_theme_id = id,
                    (_, Some(id)) => self.board.next_note_id = id,
                    _ => {}
                }
                let applied = self.board.replay(&a.op, &ctx).expect("confirmed ops apply");
                assert_eq!(applied.created, a.created, "same ids as the server");
                self.seq = a.seq;
            }
            _ => {}
        }
    }
}

/// Short constructors for operations.
pub mod ops {
    use bothy_shared::op::*;
    use bothy_shared::{NoteId, ThemeId};

    pub fn create_note(text: &str) -> Op {
        Op::CreateNote(CreateNote {
            text: text.into(),
            colour: Colour::Yellow,
            x: 100.0,
            y: 100.0,
        })
    }
    pub fn edit_note(note: NoteId, text: &str) -> Op {
        Op::EditNote(EditNote {
            note,
            text: text.into(),
        })
    }
    pub fn recolour_note(note: NoteId, colour: Colour) -> Op {
        Op::RecolourNote(RecolourNote { note, colour })
    }
    pub fn move_note(note: NoteId, x: f64, y: f64) -> Op {
        Op::MoveNote(MoveNote { note, x, y })
    }
    pub fn delete_note(note: NoteId) -> Op {
        Op::DeleteNote(DeleteNote { note })
    }
    pub fn create_theme(title: &str) -> Op {
        Op::CreateTheme(CreateTheme {
            title: title.into(),
        })
    }
    pub fn rename_theme(theme: ThemeId, title: &str) -> Op {
        Op::RenameTheme(RenameTheme {
            theme,
            title: title.into(),
        })
    }
    pub fn delete_theme(theme: ThemeId) -> Op {
        Op::DeleteTheme(DeleteTheme { theme })
    }
    pub fn set_theme(note: NoteId, theme: Option<ThemeId>, position: Option<u32>) -> Op {
        Op::SetNoteTheme(SetNoteTheme {
            note,
            theme,
            position,
        })
    }
}

impl Client {
    /// Connects with a 4 KiB receive buffer, so a client that stops reading backs up quickly.
    pub async fn connect_small_buffer(addr: SocketAddr, room: &str) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket.connect(addr).await.expect("tcp connect");
        let url = format!("ws://{addr}/ws/{room}");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("websocket connects");
        Self {
            ws,
            token: new_token(),
            name: None,
            facilitator: None,
            next_op: 0,
            received: Vec::new(),
            addr,
        }
    }

    /// Sends a ping and returns every message received before the pong: a barrier that shows
    /// what the server had sent this client up to now, without sleeping.
    pub async fn sync(&mut self) -> Vec<ServerMessage> {
        self.send(&ClientMessage::Ping(Default::default())).await;
        let mut seen = self
            .recv_until(|m| matches!(m, ServerMessage::Pong(_)))
            .await;
        seen.pop();
        seen
    }

    /// Sends an op and waits for its outcome; panics unless it was applied. Returns the
    /// `applied` message.
    pub async fn apply(&mut self, op: Op) -> bothy_shared::protocol::AppliedOp {
        let id = self.op(op).await;
        match self.outcome(&id).await {
            ServerMessage::Applied(a) => a,
            other => panic!("expected applied, got {other:?}"),
        }
    }
}
