//! Bothy's server: live sticky-note boards for breakout rooms.
//!
//! # Layout
//! - [`config`]: the command line (clap), every flag also an environment variable.
//! - [`http`]: routes: the pages, assets, `/healthz`, `/metrics`, `/api/rooms`, `/api/events`,
//!   join codes, QR codes, the WebSocket upgrade.
//! - [`events`]: events (groups of breakout rooms), join codes and facilitator secrets, saved
//!   in `events/` and indexed in memory.
//! - [`connection`]: one WebSocket: read `join`, forward messages to the room, write its queue.
//! - [`registry`]: open rooms by id; loads a room from disk on first join.
//! - [`retention`]: each event's retention period, the expiry sweep, and purging an event
//!   (from the API, the sweep or `bothy purge`).
//! - [`metrics`]: counters and histograms for `GET /metrics` (Prometheus text format).
//! - [`pacing`]: new TCP connections per client address, paced before any HTTP is read.
//! - [`room`]: the task that owns one room: board, sequence, members, journal batches, fan-out.
//! - [`storage`]: the data directory: snapshots, journals, recovery. The only code that does
//!   file I/O.
//! - [`web`]: the embedded browser client.
//!
//! [`listen`] opens the listener (with a deep accept queue); [`serve`] runs the whole server on
//! it until a shutdown token is cancelled.

pub mod background;
pub mod config;
pub mod connection;
pub mod events;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod pacing;
pub mod registry;
pub mod report;
pub mod retention;
pub mod room;
pub mod snapshots;
pub mod storage;
pub mod suggest;
pub mod synthesis;
pub mod tickets;
pub mod web;

use crate::connection::ConnectionConfig;
use crate::http::AppState;
use crate::registry::Registry;
use crate::room::RoomConfig;
use crate::storage::{Storage, StorageError};
use axum::Router;
use axum::extract::ConnectInfo;
use bothy_shared::Limits;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Everything the server can be configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub max_message_bytes: usize,
    /// Boards longer than this (bytes of JSON) go to joiners as a link, not in the welcome.
    pub inline_board_max: usize,
    /// How long such a board, once made, is shared by later joiners (`room::SHARE_FOR`; not a
    /// flag: a test lengthens it to see the sharing without a race).
    pub share_board_for: Duration,
    pub queue_len: usize,
    pub join_timeout: Duration,
    pub write_timeout: Duration,
    pub compact_every: usize,
    pub shutdown_timeout: Duration,
    pub limits: Limits,
    /// Injected disk faults (tests only; none by default).
    pub faults: storage::Faults,
    /// The longest a joiner holds its turn to be welcomed (see `connection::WelcomeGate`; not
    /// a flag: tests lengthen it to show that turns end when the kernel is full).
    pub welcome_hold: Duration,
    /// Messages per second one connection may send, and the burst above it.
    pub ops_per_second: u32,
    pub ops_burst: u32,
    /// Open WebSocket connections allowed from one client address.
    pub max_connections_per_ip: usize,
    /// New WebSocket connections one address may open per second, and the burst above that.
    pub new_connections_per_ip_per_second: u32,
    pub new_connections_per_ip_burst: u32,
    /// New TCP connections one address may have handled per second, and at once; past those
    /// they wait their turn, up to `accepts_waiting_per_ip` of them (see [`pacing`]).
    pub accepts_per_ip_per_second: f64,
    pub accepts_per_ip_burst: u32,
    pub accepts_waiting_per_ip: usize,
    /// Wrong join codes or facilitator secrets one address may send per minute.
    pub wrong_guesses_per_ip_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins besides the server's own whose pages may open sockets.
    pub allowed_origins: Vec<String>,
    /// Time between WebSocket pings; two silent intervals close the connection.
    pub ping_interval: Duration,
    /// Time a client has to send an HTTP request's headers.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body.
    pub body_timeout: Duration,
    /// Time between event snapshots written while an event is live.
    pub snapshot_every: Duration,
    /// Time between retention sweeps (expired events are also purged at start-up).
    pub retention_sweep: Duration,
    /// The address people reach the server at, like `https://board.example.org` (no trailing
    /// slash), for the links in QR codes. `None`: `http://` and the request's `Host`.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        config::ServeArgs::default().to_config()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Connections the kernel may hold for Bothy before it accepts them (the system's
/// `net.core.somaxconn` caps it). Tokio's `TcpListener::bind` asks for 128: a hall reconnecting
/// at once, or a few hundred sockets from one address, overflowed that, and every connection
/// the kernel dropped waited a second to try again (SYN retransmission).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with a [`LISTEN_BACKLOG`]-deep queue of connections not yet accepted.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server may listen again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves until `shutdown` is cancelled, then closes every socket with 1001, saves every room
/// and returns (waiting at most `shutdown_timeout`).
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let data_dir = config.data_dir.clone();
    let faults = config.faults.clone();
    let (storage, events) = tokio::task::spawn_blocking(move || {
        let storage = Arc::new(Storage::open(&data_dir, faults)?);
        // Finishes interrupted purges and purges expired events before anything is served.
        let events = retention::load_events(storage.clone(), events::now_ms())?;
        Ok::<_, StorageError>((storage, Arc::new(events)))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    let tracker = TaskTracker::new();
    let metrics = metrics::Metrics::new();
    let registry = Registry::new(
        storage,
        RoomConfig {
            limits: config.limits.clone(),
            inline_board_max: config.inline_board_max,
            share_board_for: config.share_board_for,
            tickets: Arc::new(tickets::BoardTickets::default()),
            background: Arc::new(background::Background::start()?),
            compact_every: config.compact_every,
            metrics: metrics.clone(),
        },
        tracker.clone(),
        shutdown.clone(),
        events,
    );
    let state = AppState {
        registry,
        connection: ConnectionConfig {
            queue_len: config.queue_len,
            join_timeout: config.join_timeout,
            write_timeout: config.write_timeout,
            ops_per_second: config.ops_per_second,
            ops_burst: config.ops_burst,
            ping_interval: config.ping_interval,
            welcomes: connection::WelcomeGate::new(config.welcome_hold),
            limiter_clock: governor::clock::QuantaClock::default(),
        },
        guard: guard::Guard::new(guard::GuardConfig {
            max_per_ip: config.max_connections_per_ip,
            connects_per_second: config.new_connections_per_ip_per_second,
            connects_burst: config.new_connections_per_ip_burst,
            wrong_guesses_per_minute: config.wrong_guesses_per_ip_per_minute,
            trusted_proxies: config.trusted_proxies.clone(),
            allowed_origins: config.allowed_origins.clone(),
        }),
        max_message_bytes: config.max_message_bytes,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
        next_conn: Arc::new(AtomicU64::new(1)),
        public_url: config.public_url.as_deref().map(Arc::from),
        body_timeout: config.body_timeout,
    };
    // Addresses seen once are forgotten after a minute of quiet.
    let guard = state.guard.clone();
    tracker.spawn(sweep_every(SWEEP_EVERY, shutdown.clone(), move || {
        guard.forget_idle()
    }));
    let registry = state.registry.clone();
    tracker.spawn(retention::run_sweeper(
        registry.clone(),
        config.retention_sweep,
        shutdown.clone(),
    ));
    let snapshot_writer = tokio::spawn(snapshots::run_writer(
        registry.clone(),
        config.snapshot_every,
        shutdown.clone(),
    ));
    let app = http::router(state);
    accept_loop(listener, app, &config, &metrics, &tracker, &shutdown).await;
    // Every HTTP connection, WebSocket and room is tracked; wait for them to finish.
    tracker.close();
    let stopped = tokio::time::timeout(config.shutdown_timeout, tracker.wait()).await;
    if stopped.is_err() {
        tracing::warn!("shutdown timed out with tasks still running");
    }
    // The last snapshot of each event that was live, from the files the rooms left (only once
    // every room has stopped, so nothing writes them any more).
    let live = snapshot_writer.await.unwrap_or_default();
    if stopped.is_ok() && !live.is_empty() {
        let events: Vec<_> = live
            .iter()
            .filter_map(|e| registry.events().get(e))
            .collect();
        let storage = registry.storage().clone();
        let limits = config.limits.clone();
        let _ =
            tokio::task::spawn_blocking(move || snapshots::write_final(&storage, &events, &limits))
                .await;
    }
    Ok(())
}

/// Accepts HTTP connections until shutdown. (Our own loop rather than `axum::serve`, to bound
/// how long a client may take to send its request headers and how large they may be: a
/// connection that dribbles its headers is closed after `header_timeout`.)
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    config: &ServerConfig,
    metrics: &metrics::Metrics,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .max_headers(MAX_REQUEST_HEADERS);
    let pacer = pacing::Pacer::new(pacing::PacingConfig {
        per_second: config.accepts_per_ip_per_second,
        burst: config.accepts_per_ip_burst,
        max_waiting: config.accepts_waiting_per_ip,
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let paced = pacer.clone();
    tracker.spawn(sweep_every(SWEEP_EVERY, shutdown.clone(), move || {
        paced.forget_idle()
    }));
    let too_many_waiting = http::too_many_waiting();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, usually: back off briefly rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let turn = pacer.turn(peer.ip());
        let app = match turn {
            pacing::Turn::Now => app.clone(),
            pacing::Turn::Later(_) => {
                metrics.connection_paced();
                app.clone()
            }
            pacing::Turn::Refuse => {
                metrics.connection_refused_at_accept();
                too_many_waiting.clone()
            }
        };
        let http1 = http1.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let pacing::Turn::Later(waiting) = turn {
                tokio::select! {
                    _ = tokio::time::sleep_until(waiting.at().into()) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            serve_connection(tcp, peer, app, &http1, &shutdown).await;
        });
    }
}

/// Serves one HTTP connection (and the WebSocket it may become) until it ends or the server
/// shuts down.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    http1: &hyper::server::conn::http1::Builder,
    shutdown: &CancellationToken,
) {
    // Small messages must go out at once, not wait for Nagle's algorithm.
    let _ = tcp.set_nodelay(true);
    limit_unsent(&tcp);
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
    let connection = http1
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            // Finish the request in flight, then close; upgraded sockets have their own
            // shutdown (close code 1001).
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// How often the per-address maps forget addresses seen once: after a minute of quiet.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Calls `sweep` every `every` until `shutdown`.
async fn sweep_every(every: Duration, shutdown: CancellationToken, mut sweep: impl FnMut()) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => sweep(),
        }
    }
}

/// Keeps at most this much unsent data in the kernel for one socket. Without it the kernel lets
/// a reader that has stopped reading soak up hundreds of KiB before a write blocks, so Bothy's
/// own bounded queue (and the "too slow" close) only notices it tens of seconds later.
const UNSENT_LIMIT_BYTES: libc::c_int = 16 * 1024;

#[cfg(target_os = "linux")]
fn limit_unsent(tcp: &tokio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let value = UNSENT_LIMIT_BYTES;
    // SAFETY: a valid socket descriptor, a c_int option value and its size.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "TCP_NOTSENT_LOWAT not set");
    }
}

#[cfg(not(target_os = "linux"))]
fn limit_unsent(_tcp: &tokio::net::TcpStream) {}

/// Largest request line plus headers accepted.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
/// Most request headers accepted.
const MAX_REQUEST_HEADERS: usize = 64;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The kernel's accept queue for Bothy's listener: on a listening socket, Linux reports its
    /// limit in `tcp_info.tcpi_sacked`.
    fn accept_queue_limit(listener: &TcpListener) -> u32 {
        // SAFETY: a zeroed tcp_info is valid.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: a valid socket, and the kernel writes at most `len` bytes into `info`.
        let rc = unsafe {
            libc::getsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
        info.tcpi_sacked
    }

    #[tokio::test]
    async fn the_listener_queues_as_many_connections_as_the_system_allows_up_to_4096() {
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .expect("somaxconn is readable")
            .trim()
            .parse()
            .expect("somaxconn is a number");
        let listener = listen(([127, 0, 0, 1], 0).into()).expect("listens");
        assert_eq!(accept_queue_limit(&listener), LISTEN_BACKLOG.min(somaxconn));
        // What this replaced: tokio's `bind` queues 128, which a hall reconnecting overflows.
        let tokio_default = TcpListener::bind("127.0.0.1:0").await.expect("listens");
        assert!(
            accept_queue_limit(&tokio_default) < accept_queue_limit(&listener) || somaxconn <= 128
        );
    }
}
