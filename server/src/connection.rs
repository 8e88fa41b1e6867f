//! One WebSocket connection: read the `join`, then forward messages to the room; a writer task
//! sends the room's messages out. The room never waits for a socket: it fills a bounded queue,
//! and the writer drains it.

use crate::guard::Guard;
use crate::registry::{OpenError, Registry};
use crate::room::{CloseReason, ConnId, JoinRequest, Outbound, RoomHandle};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bothy_shared::ids::{ActorKey, RoomId, check_client_token};
use bothy_shared::protocol::{
    self, ClientMessage, Empty, ErrorCode, ErrorMessage, Join, Rejected, ServerMessage, close,
};
use bothy_shared::{Limits, RejectReason, Role, text};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::clock::QuantaClock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Connection settings from the server's configuration.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Messages that may wait for a slow socket before it is closed with `4008`.
    pub queue_len: usize,
    /// How long a new socket has to send `join`.
    pub join_timeout: Duration,
    /// How long one write may stall before the peer is treated as gone.
    pub write_timeout: Duration,
    /// Messages per second a connection may send, and the burst allowed above that.
    pub ops_per_second: u32,
    pub ops_burst: u32,
    /// Time between pings; a connection silent for two intervals is closed.
    pub ping_interval: Duration,
    /// Welcomes being written at once, across the server (see [`WelcomeGate`]).
    pub welcomes: WelcomeGate,
    /// The clock every connection's rate limiter reads, made once. Making one runs CPUID
    /// several times, and in a virtual machine each is a trip to the host: 36 µs a clock on
    /// the benchmark's machine. Made per connection (governor's `RateLimiter::direct`), it was
    /// a fifth of the server's work while a hundred sockets arrived at once (S6 in
    /// `docs/performance.md`).
    pub limiter_clock: QuantaClock,
}

/// Lets only a few welcomes be written at once, server-wide. A welcome carries the whole board
/// (hundreds of kilobytes for a full one), and a hundred sockets joining at the same moment (a
/// hall's Wi-Fi, or an attacker's script) would otherwise write tens of megabytes ahead of the
/// small messages everyone already in a room is waiting for (S6 in `docs/performance.md`: a
/// hundred joins to a full board held the others' messages up for as much as 78 ms). A joiner
/// waits for a turn before its join reaches the room and gives it back once its welcome is
/// written, or as soon as the peer has taken none of it for a moment (`WELCOME_STALL`): a slow
/// link, or a peer that does not read at all, keeps no one else waiting. A turn is never held
/// longer than `hold`.
#[derive(Clone, Debug)]
pub struct WelcomeGate {
    turns: Arc<tokio::sync::Semaphore>,
    hold: Duration,
}

/// Welcomes written at once.
const WELCOMES_AT_ONCE: usize = 2;
/// The longest one welcome holds its turn.
pub const WELCOME_HOLD: Duration = Duration::from_millis(100);
/// How long a welcome may go without the peer taking any of it before its turn is given back.
const WELCOME_STALL: Duration = Duration::from_millis(5);

impl WelcomeGate {
    /// A gate whose turns are held at most `hold` each.
    pub fn new(hold: Duration) -> Self {
        Self {
            turns: Arc::new(tokio::sync::Semaphore::new(WELCOMES_AT_ONCE)),
            hold,
        }
    }
}

impl Default for WelcomeGate {
    fn default() -> Self {
        Self::new(WELCOME_HOLD)
    }
}

/// Who is on the other end, as far as the per-address limits are concerned.
#[derive(Clone)]
pub struct Peer {
    pub ip: std::net::IpAddr,
    pub guard: Guard,
}

/// The key the server stores for an identity token: a one-way hash, so the files on disk
/// cannot be used to act as someone.
pub fn actor_key(token: &str) -> ActorKey {
    let digest = Sha256::digest(token.as_bytes());
    ActorKey::new(hex::encode(&digest[..16]))
}

/// Longest wait to send a close frame before dropping the connection.
const CLOSE_FRAME_TIMEOUT: Duration = Duration::from_secs(1);

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

fn encode(msg: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(msg).expect("server messages always serialise"))
}

/// Runs a connection to the end.
pub async fn run(
    socket: WebSocket,
    room_id: RoomId,
    conn: ConnId,
    registry: Registry,
    config: ConnectionConfig,
    peer: Peer,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("conn", id = conn, room = %room_id);
    let _open = registry.config().metrics.connection_opened();
    async move {
        let (sink, stream) = socket.split();
        let (out_tx, out_rx) = mpsc::channel(config.queue_len);
        let (kick_tx, kick_rx) = oneshot::channel();
        let (close_tx, close_rx) = oneshot::channel();
        let (written_tx, written_rx) = oneshot::channel();
        let done = CancellationToken::new();
        let writer = tokio::spawn(
            write_loop(
                sink,
                out_rx,
                WriterSignals {
                    kick: kick_rx,
                    close: close_rx,
                    written: written_tx,
                },
                shutdown.clone(),
                done.clone(),
                config.clone(),
            )
            .in_current_span(),
        );
        let quota =
            Quota::per_second(NonZeroU32::new(config.ops_per_second).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(config.ops_burst).unwrap_or(NonZeroU32::MIN));
        let reader = Reader {
            stream,
            peer,
            out: out_tx,
            close: Some(close_tx),
            conn,
            limiter: RateLimiter::direct_with_clock(quota, config.limiter_clock.clone()),
            refused_in_a_row: 0,
            pause_after: config.ops_burst.max(1),
            prepaid: false,
            silence_limit: config.ping_interval * 2,
        };
        reader
            .run(room_id, registry, config, kick_tx, written_rx, done)
            .await;
        let _ = writer.await;
        tracing::debug!("connection closed");
    }
    .instrument(span)
    .await
}

struct Reader {
    stream: SplitStream<WebSocket>,
    /// For counting a wrong facilitator secret against the address.
    peer: Peer,
    out: mpsc::Sender<Outbound>,
    /// Tells the writer to send this close frame after what is queued, then stop.
    close: Option<oneshot::Sender<CloseReason>>,
    conn: ConnId,
    /// Messages per second this connection may send (a token bucket with a burst).
    limiter: DefaultDirectRateLimiter,
    /// Messages refused as too fast since the last one accepted.
    refused_in_a_row: u32,
    /// After this many refusals in a row, stop reading until the bucket refills.
    pause_after: u32,
    /// The bucket's next token was taken while waiting for it to refill: the next message is
    /// already paid for.
    prepaid: bool,
    /// With pings every interval, silence for this long means the peer is gone.
    silence_limit: Duration,
}

impl Reader {
    fn close_with(&mut self, code: u16, reason: &'static str) {
        if let Some(tx) = self.close.take() {
            // The reasons are fixed strings: nothing the peer sent reaches the log. A server
            // that is stopping closes everyone, which is not worth a line each.
            if code != close::GOING_AWAY {
                tracing::info!(code, reason, "closing the connection");
            }
            let _ = tx.send(CloseReason { code, reason });
        }
    }

    fn reply(&self, msg: &ServerMessage) {
        // If the queue is full the room is closing this connection anyway.
        let _ = self.out.try_send(Outbound::Text(encode(msg)));
    }

    /// Over the rate limit: the message is not used, and its sender is told.
    fn refuse_too_fast(&self, decoded: Result<ClientMessage, protocol::DecodeError>) {
        const SLOW_DOWN: &str = "You are sending changes too fast. Wait a moment and try again.";
        let op_id = match decoded {
            Ok(ClientMessage::Op(m)) => Some(m.op_id),
            Ok(_) => None,
            Err(e) => e.op_id,
        };
        match op_id {
            Some(op_id) => self.reply(&ServerMessage::Rejected(Rejected {
                op_id,
                reason: RejectReason::RateLimited,
                message: SLOW_DOWN.into(),
            })),
            None => self.error(ErrorCode::RateLimited, SLOW_DOWN),
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>) {
        tracing::debug!(?code, "refused a message");
        self.reply(&ServerMessage::Error(ErrorMessage {
            code,
            message: message.into(),
        }));
    }

    /// The next text frame, or `None` when the connection is over (after arranging the close).
    async fn next_text(&mut self, done: &CancellationToken) -> Option<Utf8Bytes> {
        loop {
            let msg = tokio::select! {
                _ = done.cancelled() => return None,
                msg = tokio::time::timeout(self.silence_limit, self.stream.next()) => match msg {
                    Ok(msg) => msg,
                    Err(_) => {
                        self.close_with(close::NO_PONG, "no answer to ping");
                        return None;
                    }
                },
            };
            match msg {
                Some(Ok(Message::Text(t))) => return Some(t),
                Some(Ok(Message::Binary(_))) => {
                    self.close_with(
                        close::UNSUPPORTED_DATA,
                        "binary frames are not supported; send JSON text",
                    );
                    return None;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) => {
                    // Keep reading briefly: that is what sends the library's queued reply, so
                    // the client's close handshake completes (a browser then sees its own code,
                    // not 1006).
                    let drain = async { while self.stream.next().await.is_some() {} };
                    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                    return None;
                }
                None => return None,
                Some(Err(e)) => {
                    let (code, reason) = classify_read_error(&e);
                    tracing::debug!(error = %e, code, "read error");
                    self.close_with(code, reason);
                    return None;
                }
            }
        }
    }

    async fn run(
        mut self,
        room_id: RoomId,
        registry: Registry,
        config: ConnectionConfig,
        kick: oneshot::Sender<CloseReason>,
        welcomed: oneshot::Receiver<()>,
        done: CancellationToken,
    ) {
        let room = match registry.open(&room_id).await {
            Ok(room) => room,
            Err(OpenError::NoSuchRoom) => {
                self.close_with(close::NO_SUCH_ROOM, "there is no room with this id");
                return;
            }
            Err(OpenError::Storage(e)) => {
                tracing::error!(error = %e, "could not open room");
                self.close_with(
                    close::INTERNAL_ERROR,
                    "this room cannot be opened right now",
                );
                return;
            }
        };
        let first = tokio::time::timeout(config.join_timeout, self.next_text(&done)).await;
        let join = match first {
            Err(_) => {
                self.close_with(close::JOIN_TIMEOUT, "no join message arrived in time");
                return;
            }
            Ok(None) => return,
            Ok(Some(text)) => match protocol::decode_client_message(&text) {
                Ok(ClientMessage::Join(join)) => join,
                Ok(_) => {
                    self.close_with(close::BAD_JOIN, "the first message must be a join");
                    return;
                }
                Err(_) => {
                    self.close_with(close::BAD_JOIN, "the first message must be a valid join");
                    return;
                }
            },
        };
        let Some(request) = self.check_join(join, &room_id, &registry, kick) else {
            return;
        };
        // Cancelled if the room is purged: the board no longer exists.
        let deleted = registry.deleted_signal(&room_id);
        // Wait for a turn to be welcomed; hold it while the welcome is being written.
        let turn = tokio::select! {
            _ = done.cancelled() => return,
            turn = config.welcomes.turns.clone().acquire_owned() => turn.ok(),
        };
        if deleted.is_cancelled() || room.join(request).await.is_err() {
            self.close_room_ended(&deleted);
            return;
        }
        let _ = tokio::time::timeout(config.welcomes.hold, welcomed).await;
        drop(turn);
        self.forward(&room, &done, &deleted).await;
        room.leave(self.conn).await;
    }

    /// The room's task has gone: deleted (4004, as for a room that never existed) or the server
    /// is stopping (1001).
    fn close_room_ended(&mut self, deleted: &CancellationToken) {
        if deleted.is_cancelled() {
            self.close_with(close::NO_SUCH_ROOM, BOARD_DELETED);
        } else {
            self.close_with(close::GOING_AWAY, "the server is shutting down");
        }
    }

    fn check_join(
        &mut self,
        join: Join,
        room: &RoomId,
        registry: &Registry,
        kick: oneshot::Sender<CloseReason>,
    ) -> Option<JoinRequest> {
        let limits: &Limits = &registry.config().limits;
        if join.version != protocol::PROTOCOL_VERSION {
            self.close_with(
                close::BAD_JOIN,
                "unsupported protocol version; reload the page",
            );
            return None;
        }
        if check_client_token(&join.token).is_err() {
            self.close_with(
                close::BAD_JOIN,
                "the identity token must be 16 to 128 letters, digits, - or _",
            );
            return None;
        }
        let name = match join.name.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(n) => {
                if text::check(n, limits.display_name_chars, false).is_err() {
                    self.close_with(
                        close::BAD_JOIN,
                        "the display name is too long or has characters that cannot be shown",
                    );
                    return None;
                }
                Some(n.to_owned())
            }
        };
        // Facilitator rights come only from the event's secret, presented here; a wrong secret
        // is refused outright rather than quietly joining as a participant.
        let role = match &join.facilitator {
            None => Role::Participant,
            Some(_) if self.peer.guard.may_guess(self.peer.ip).is_err() => {
                self.close_with(
                    close::BAD_JOIN,
                    "too many wrong facilitator links from your network; wait a minute",
                );
                return None;
            }
            Some(secret) if registry.events().is_facilitator(room, &secret.0) => Role::Facilitator,
            Some(_) => {
                self.peer.guard.wrong_guess(self.peer.ip);
                self.close_with(
                    close::BAD_JOIN,
                    "this facilitator link is not valid (it may have been changed)",
                );
                return None;
            }
        };
        Some(JoinRequest {
            conn: self.conn,
            actor: actor_key(&join.token),
            role,
            name,
            last_seq: join.last_seq,
            out: self.out.clone(),
            kick,
        })
    }

    /// After the join: every message goes to the room, in order, until the connection ends or
    /// the room is deleted.
    async fn forward(
        &mut self,
        room: &RoomHandle,
        done: &CancellationToken,
        deleted: &CancellationToken,
    ) {
        loop {
            let text = tokio::select! {
                biased;
                _ = deleted.cancelled() => {
                    self.close_with(close::NO_SUCH_ROOM, BOARD_DELETED);
                    return;
                }
                text = self.next_text(done) => match text {
                    Some(text) => text,
                    None => return,
                },
            };
            let decoded = protocol::decode_client_message(&text);
            let paid = std::mem::take(&mut self.prepaid) || self.limiter.check().is_ok();
            if !paid {
                self.refuse_too_fast(decoded);
                // A sender that keeps going past a burst of refusals is not read at all until
                // its bucket refills: the kernel's buffers then slow it down, and reading and
                // refusing a flood no longer costs the server a core.
                self.refused_in_a_row += 1;
                if self.refused_in_a_row >= self.pause_after {
                    // `until_ready` takes the token it waited for: the next message uses it.
                    self.limiter.until_ready().await;
                    self.prepaid = true;
                    self.refused_in_a_row = 0;
                }
                continue;
            }
            self.refused_in_a_row = 0;
            let sent = match decoded {
                Ok(ClientMessage::Op(m)) => room.op(self.conn, m.op_id, m.op).await,
                Ok(ClientMessage::Ping(Empty {})) => room.ping(self.conn).await,
                Ok(ClientMessage::Join(_)) => {
                    self.error(
                        ErrorCode::AlreadyJoined,
                        "This connection has already joined.",
                    );
                    Ok(())
                }
                Err(e) => match e.op_id {
                    // An op whose operation could not be read: reject it by id, in order.
                    Some(op_id) => {
                        room.reject(
                            self.conn,
                            Rejected {
                                op_id,
                                reason: RejectReason::Invalid,
                                message: e.message,
                            },
                        )
                        .await
                    }
                    None => {
                        self.error(e.code, e.message);
                        Ok(())
                    }
                },
            };
            if sent.is_err() {
                self.close_room_ended(deleted);
                return;
            }
        }
    }
}

/// The close reason when a room is purged while people are connected.
const BOARD_DELETED: &str = "this board has been deleted";

/// Maps a read error to the close code the peer should get.
fn classify_read_error(e: &axum::Error) -> (u16, &'static str) {
    let text = e.to_string();
    if text.contains("Space limit exceeded")
        || text.contains("too long")
        || text.contains("Message too long")
    {
        (close::TOO_BIG, "message too big")
    } else if text.contains("UTF-8") || text.contains("utf-8") || text.contains("Utf8") {
        (close::INVALID_PAYLOAD, "text frames must be valid UTF-8")
    } else {
        (1002, "protocol error")
    }
}

/// What the writer hears from the room and the reader, and tells the reader.
struct WriterSignals {
    /// The room closing this member.
    kick: oneshot::Receiver<CloseReason>,
    /// The reader asking for a close frame after what is queued.
    close: oneshot::Receiver<CloseReason>,
    /// Told once the first message, the welcome, is written or stalls (see [`WelcomeGate`]).
    written: oneshot::Sender<()>,
}

/// Sends queued messages; stops on a kick from the room, a close from the reader, or shutdown,
/// sending a close frame in each case.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut out: mpsc::Receiver<Outbound>,
    signals: WriterSignals,
    shutdown: CancellationToken,
    done: CancellationToken,
    config: ConnectionConfig,
) {
    let WriterSignals {
        kick,
        close: mut close_rx,
        written,
    } = signals;
    let write_timeout = config.write_timeout;
    let mut written = Some(written);
    // Pings let the reader tell a silent-but-alive browser from a dead one.
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    // Resolves only if the room kicks this member. If the room drops its side without kicking
    // (the connection never joined, or the room ended), it never resolves and the writer keeps
    // serving the reader.
    let kicked = async move {
        match kick.await {
            Ok(r) => r,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(kicked);
    // One wait for shutdown for the whole loop: a fresh `cancelled()` in every `select!` would
    // join and leave the token's waiter list twice per message sent.
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    let going_away = CloseReason {
        code: close::GOING_AWAY,
        reason: "the server is restarting; reconnect shortly",
    };
    let reason = loop {
        tokio::select! {
            biased;
            r = &mut kicked => break Some(r),
            _ = &mut stopping => break Some(going_away),
            r = &mut close_rx => match r {
                Ok(r) => {
                    // Send what was queued before the close (e.g. an error reply) first.
                    while let Ok(Outbound::Text(t)) = out.try_recv() {
                        if sink.feed(Message::Text(t)).await.is_err() { break; }
                    }
                    break Some(r);
                }
                Err(_) => break None,
            },
            _ = ping.tick() => {
                let sent = tokio::time::timeout(write_timeout, sink.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break None;
                }
            }
            msg = out.recv() => match msg {
                Some(Outbound::Text(t)) => {
                    // The first message is the welcome: its writing gives the joiner's turn back.
                    let sending = async {
                        match written.take() {
                            Some(tx) => send_welcome(&mut sink, &mut out, t, write_timeout, tx).await,
                            None => send_batch(&mut sink, &mut out, t, write_timeout).await,
                        }
                    };
                    // A kick (the queue filled because this peer is not reading) or shutdown
                    // interrupts a write that has stalled, rather than waiting out its timeout.
                    tokio::select! {
                        biased;
                        r = &mut kicked => break Some(r),
                        _ = &mut stopping => break Some(going_away),
                        sent = sending => if !sent {
                            break None;
                        },
                    }
                }
                None => break None,
            },
        }
    };
    if let Some(r) = reason {
        // A close frame is tiny: a peer that cannot take it in a moment is not reading (the
        // usual reason for a "too slow" close), so do not hold its socket for long.
        let wait = write_timeout.min(CLOSE_FRAME_TIMEOUT);
        let _ = tokio::time::timeout(wait, sink.send(close_frame(r.code, r.reason))).await;
    }
    done.cancel();
}

/// Writes the welcome (and whatever else is queued) like [`send_batch`], and tells the joiner
/// its turn is over once the welcome is written, or once the peer has taken nothing for
/// [`WELCOME_STALL`]: a slow link or a peer that does not read gives its turn back at once.
async fn send_welcome(
    sink: &mut SplitSink<WebSocket, Message>,
    out: &mut mpsc::Receiver<Outbound>,
    welcome: Utf8Bytes,
    write_timeout: Duration,
    written: oneshot::Sender<()>,
) -> bool {
    let mut writing = std::pin::pin!(send_batch(sink, out, welcome, write_timeout));
    let mut stall = std::pin::pin!(tokio::time::sleep(WELCOME_STALL));
    let mut written = Some(written);
    let sent = std::future::poll_fn(|cx| {
        let sent = writing.as_mut().poll(cx);
        if sent.is_pending() && written.is_some() {
            if stall.as_mut().poll(cx).is_ready() {
                // Nothing taken since the last wake-up, for the whole stall time.
                let _ = written.take().map(|tx| tx.send(()));
            } else {
                // Woken by the socket: it took some, or has room again.
                stall
                    .as_mut()
                    .reset(tokio::time::Instant::now() + WELCOME_STALL);
                let _ = stall.as_mut().poll(cx);
            }
        }
        sent
    })
    .await;
    let _ = written.map(|tx| tx.send(()));
    sent
}

/// Writes one message and whatever else is already queued, then flushes once.
async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    out: &mut mpsc::Receiver<Outbound>,
    first: Utf8Bytes,
    write_timeout: Duration,
) -> bool {
    let work = async {
        sink.feed(Message::Text(first)).await?;
        for _ in 0..64 {
            match out.try_recv() {
                Ok(Outbound::Text(t)) => sink.feed(Message::Text(t)).await?,
                Err(_) => break,
            }
        }
        sink.flush().await
    };
    matches!(within(write_timeout, work).await, Some(Ok(())))
}

/// `work`'s output, or `None` if it takes longer than `limit`. Unlike `tokio::time::timeout`,
/// the timer is started only if `work` does not finish on its first poll: nearly every write
/// fits in the socket's buffer at once, and a timer set and cleared per message sent is a
/// measurable part of a fan-out's cost.
async fn within<F: Future>(limit: Duration, work: F) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let mut deadline = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if deadline.is_none() {
            deadline.set(Some(tokio::time::sleep(limit)));
        }
        deadline
            .as_mut()
            .as_pin_mut()
            .map_or(Poll::Pending, |sleep| sleep.poll(cx).map(|()| None))
    })
    .await
}
