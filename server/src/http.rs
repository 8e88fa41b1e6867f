//! HTTP routes: the page, its assets, the health check, the room API and the WebSocket upgrade.

use crate::connection::{self, ConnectionConfig};
use crate::registry::Registry;
use crate::web;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bothy_shared::{Board, RoomId, text};
use dashmap::DashMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub connection: ConnectionConfig,
    /// Who may open a socket: origin allow-list and connections per address.
    pub guard: UpgradeGuard,
    /// Largest WebSocket message and frame accepted, in bytes.
    pub max_message_bytes: usize,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub next_conn: Arc<AtomicU64>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { web::asset("index.html", &h) }),
        )
        .route(
            "/r/{room}",
            get(|h: HeaderMap| async move { web::asset("index.html", &h) }),
        )
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>, h: HeaderMap| async move { web::asset(&path, &h) }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::handler))
        .route("/api/rooms", post(create_room))
        .route("/ws/{room}", get(upgrade))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// Only this server's own files and sockets; no inline script, no framing, no plugins.
/// (`connect-src 'self'` covers the page's own `ws:`/`wss:` origin.)
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Reads a JSON object body into `T`, or says which status refuses it: 415 without a JSON
/// content type, 400 for text that is not JSON, 422 for JSON of the wrong shape. (Checked by
/// hand because serde's derived structs would also accept an array.)
fn read_json_object<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, StatusCode> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let status_of = |e: serde_json::Error| {
        if e.is_data() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_REQUEST
        }
    };
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_or_else(status_of, |_| StatusCode::UNPROCESSABLE_ENTITY));
    }
    serde_json::from_slice(body).map_err(status_of)
}

/// A JSON error body with a short message; never internal details.
fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let storage = state.registry.storage().clone();
    let writable = tokio::task::spawn_blocking(move || storage.probe_writable().is_ok())
        .await
        .unwrap_or(false);
    let (rooms_open, rooms_read_only) = state.registry.counts();
    let ok = writable && rooms_read_only == 0;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "storage_writable": writable,
        "rooms_open": rooms_open,
        "rooms_read_only": rooms_read_only,
    });
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    prompt: String,
}

#[derive(Serialize)]
struct RoomCreated {
    room: String,
    /// The participant link, relative to the server.
    path: String,
}

/// Characters for generated room ids: no look-alikes (0/o, 1/l/i).
const ID_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

fn new_room_id() -> RoomId {
    let mut rng = rand::rng();
    let id: String = (0..10)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect();
    RoomId::parse(&id).expect("generated ids are valid")
}

async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return api_error(e.status(), "The request body is too large."),
    };
    let body = match read_json_object::<CreateRoom>(&headers, &body) {
        Ok(b) => b,
        Err(status) => {
            return api_error(
                status,
                "The request body must be JSON like {\"prompt\": \"...\"}.",
            );
        }
    };
    let limits = &state.registry.config().limits;
    let prompt = body.prompt.trim().to_owned();
    if text::check(&prompt, limits.prompt_chars, true).is_err() {
        let msg = format!(
            "The prompt must be 1 to {} characters, without control characters.",
            limits.prompt_chars
        );
        return api_error(StatusCode::UNPROCESSABLE_ENTITY, &msg);
    }
    let storage = state.registry.storage().clone();
    let created = tokio::task::spawn_blocking(move || {
        // Ten characters from 31 give ~50 bits; a collision is retried, never overwritten.
        for _ in 0..5 {
            let id = new_room_id();
            match storage.create_room(&id, Board::new(prompt.clone())) {
                Ok(()) => return Ok(id),
                Err(crate::storage::StorageError::RoomExists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(crate::storage::StorageError::RoomExists(new_room_id()))
    })
    .await;
    match created {
        Ok(Ok(id)) => {
            tracing::info!(room = %id, "room created");
            let body = RoomCreated {
                path: format!("/r/{id}"),
                room: id.to_string(),
            };
            (StatusCode::CREATED, Json(body)).into_response()
        }
        other => {
            tracing::error!(result = ?other.map(|r| r.map(|_| ())), "could not create a room");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The room could not be saved. Try again later.",
            )
        }
    }
}

async fn upgrade(
    State(state): State<AppState>,
    Path(room): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(room) = RoomId::parse(&room) else {
        return api_error(StatusCode::BAD_REQUEST, "That is not a room id.");
    };
    if !state.guard.origin_allowed(&headers) {
        return api_error(
            StatusCode::FORBIDDEN,
            "Pages from another site may not open this board.",
        );
    }
    let client = state.guard.client_ip(peer.ip(), &headers);
    let Some(slot) = state.guard.admit(client) else {
        return api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many connections from your network. Close some tabs and try again.",
        );
    };
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let tracker = state.tracker.clone();
    ws.max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        // Small buffers keep an idle connection cheap; tungstenite's default is 128 KiB each.
        .read_buffer_size(4 * 1024)
        // Collect queued frames and write them with one system call: the writer task flushes
        // after each batch, so nothing waits here (docs/performance.md measured one `sendto`
        // per message as the main fan-out cost). No cap on the write buffer: a welcome carries
        // the whole board; the outgoing queue is what bounds a slow reader.
        .write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                connection::run(
                    socket,
                    room,
                    conn,
                    state.registry,
                    state.connection,
                    state.shutdown,
                )
                .await;
                drop(slot);
            })
        })
}

/// Decides who may open a socket: the page's origin must be this server's own (or on the
/// allow-list), and one address may hold only so many sockets.
#[derive(Clone)]
pub struct UpgradeGuard {
    per_ip: Arc<DashMap<IpAddr, usize>>,
    max_per_ip: usize,
    trusted_proxies: Arc<Vec<IpAddr>>,
    allowed_origins: Arc<Vec<String>>,
}

impl UpgradeGuard {
    pub fn new(
        max_per_ip: usize,
        trusted_proxies: Vec<IpAddr>,
        allowed_origins: Vec<String>,
    ) -> Self {
        Self {
            per_ip: Arc::new(DashMap::new()),
            max_per_ip,
            trusted_proxies: Arc::new(trusted_proxies),
            allowed_origins: Arc::new(
                allowed_origins
                    .into_iter()
                    .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            ),
        }
    }

    /// Browsers always send `Origin` on a WebSocket upgrade; a foreign page's socket is refused.
    /// Tools that send no `Origin` (not browsers, so they cannot ride a visitor's session) are
    /// let through.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.to_ascii_lowercase();
        let own = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| host.to_ascii_lowercase())
            .is_some_and(|host| {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
        own || self.allowed_origins.contains(&origin)
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    /// last address that proxy appended to `X-Forwarded-For`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
            .unwrap_or(peer)
    }

    /// Takes a connection slot for this address, or `None` when it has too many.
    pub fn admit(&self, ip: IpAddr) -> Option<IpSlot> {
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ip,
            per_ip: self.per_ip.clone(),
        })
    }
}

/// One open connection counted against its address; released on drop.
pub struct IpSlot {
    ip: IpAddr,
    per_ip: Arc<DashMap<IpAddr, usize>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Some(mut count) = self.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
        }
        self.per_ip.remove_if(&self.ip, |_, c| *c == 0);
    }
}
