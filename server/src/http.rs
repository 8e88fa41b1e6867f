//! HTTP routes: the page, its assets, the health check, the room API and the WebSocket upgrade.

use crate::connection::{self, ConnectionConfig};
use crate::registry::Registry;
use crate::web;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State, WebSocketUpgrade, rejection::JsonRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bothy_shared::{Board, RoomId, text};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
    body: Result<Json<CreateRoom>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return api_error(
                e.status(),
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
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(room) = RoomId::parse(&room) else {
        return api_error(StatusCode::BAD_REQUEST, "That is not a room id.");
    };
    let conn = state.next_conn.fetch_add(1, Ordering::Relaxed);
    let tracker = state.tracker.clone();
    ws.max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        // Small buffers keep an idle connection cheap; tungstenite's default is 128 KiB each.
        .read_buffer_size(4 * 1024)
        // Write each message out at once. (No cap on the write buffer: a welcome carries the whole
        // board, which can be megabytes; the outgoing queue is what bounds a slow reader.)
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(
                socket,
                room,
                conn,
                state.registry,
                state.connection,
                state.shutdown,
            ))
        })
}
