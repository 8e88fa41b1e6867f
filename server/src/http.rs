//! HTTP routes: the pages, their assets, the health check, the room and event API (events, join
//! codes, QR codes, facilitator secrets) and the WebSocket upgrade. `docs/api.md` describes
//! every route.

use crate::connection::{self, ConnectionConfig};
use crate::events::{CreatedEvent, EventRoom, FacilitatorSecret, NewEvent, NewRoom};
use crate::guard::Guard;
use crate::registry::Registry;
use crate::web;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bothy_shared::RoomId;
use bothy_shared::ids::{EventId, JoinCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub connection: ConnectionConfig,
    /// Limits per client address: origin allow-list, sockets, wrong guesses.
    pub guard: Guard,
    /// Largest WebSocket message and frame accepted, in bytes.
    pub max_message_bytes: usize,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub next_conn: Arc<AtomicU64>,
    /// The address people reach this server at (`--public-url`), for QR codes; without it,
    /// `http://` and the request's `Host`.
    pub public_url: Option<Arc<str>>,
    /// Time a client has to send a whole request body.
    pub body_timeout: Duration,
}

pub fn router(state: AppState) -> Router {
    let guesses = axum::middleware::from_fn_with_state(state.guard.clone(), limit_guesses);
    let bodies = axum::middleware::from_fn_with_state(state.body_timeout, read_body_in_time);
    let app = Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { web::asset("index.html", &h) }),
        )
        .route("/r/{room}", get(room_page))
        .route("/j/{code}", get(join_by_code))
        // The facilitator's pages; the client routes on the path, and the secret is in the
        // fragment, which the server never sees.
        .route(
            "/e/{event}",
            get(|h: HeaderMap| async move { web::asset("index.html", &h) }),
        )
        .route(
            "/e/{event}/cards",
            get(|h: HeaderMap| async move { web::asset("index.html", &h) }),
        )
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>, h: HeaderMap| async move { web::asset(&path, &h) }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::handler))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{room}/qr.svg", get(room_qr))
        .route("/api/events", post(create_event))
        .route(
            "/api/events/restore",
            post(restore_event).layer(DefaultBodyLimit::max(RESTORE_BODY_BYTES)),
        )
        .route("/api/events/{event}", get(get_event))
        .route("/api/events/{event}", axum::routing::delete(purge_event))
        .route("/api/events/{event}/secret", post(rotate_secret))
        .route("/api/events/{event}/snapshot", get(download_snapshot))
        .route(
            "/api/events/{event}/synthesis",
            get(get_synthesis).post(change_synthesis),
        )
        .route("/api/events/{event}/suggestions", post(suggest_themes))
        .route("/api/events/{event}/report", get(download_report))
        .route("/api/codes/{code}", get(lookup_code))
        .route("/api/boards/{ticket}", get(fetch_board))
        .route("/ws/{room}", get(upgrade))
        .layer(guesses)
        .layer(bodies)
        .layer(DefaultBodyLimit::max(BODY_BYTES))
        .layer(CompressionLayer::new());
    with_security_headers(app).with_state(state)
}

/// The headers every response carries.
fn with_security_headers<S: Clone + Send + Sync + 'static>(app: Router<S>) -> Router<S> {
    app.layer(SetResponseHeaderLayer::overriding(
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
}

/// What a connection gets when too many from its address are already waiting their turn
/// ([`crate::pacing`]): 429 to any request, then the connection is closed. Nothing else is
/// looked at, so the answer costs little.
pub fn too_many_waiting() -> Router {
    let refuse = || async {
        let mut response = api_error(
            StatusCode::TOO_MANY_REQUESTS,
            crate::guard::Refusal::TooFast.message(),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    with_security_headers(Router::new().fallback(refuse))
}

/// Largest request body, but for a restore.
const BODY_BYTES: usize = 16 * 1024;

/// The largest body a request to `path` may carry.
fn body_limit(path: &str) -> usize {
    if path == "/api/events/restore" {
        RESTORE_BODY_BYTES
    } else {
        BODY_BYTES
    }
}

/// Reads a request's whole body, within its size limit and `timeout`, before any handler runs:
/// a client that sends its body slowly, or not at all, is answered 408 and holds its connection
/// no longer than that. (A handler never waits on the network, so a timeout around the read
/// alone cuts nothing off half-done.)
async fn read_body_in_time(
    State(timeout): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    // HTTP/1.1: without either header there is no body (a WebSocket upgrade has none).
    if !chunked && declared.unwrap_or(0) == 0 {
        return next.run(request).await;
    }
    let limit = body_limit(request.uri().path());
    if declared.is_some_and(|n| n > limit as u64) {
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE);
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if over {
                api_error(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE)
            } else {
                api_error(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                )
            };
        }
        Err(_) => {
            let mut res = api_error(
                StatusCode::REQUEST_TIMEOUT,
                "The request body took too long to arrive. Please try again.",
            );
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return res;
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

const BODY_TOO_LARGE: &str = "The request body is too large.";

/// Whether a request tests a secret, and which answer means it was wrong: a join code (404), or
/// an event's facilitator secret (403).
fn guessed_secret(path: &str) -> Option<StatusCode> {
    if path.starts_with("/api/codes/") || path.starts_with("/j/") {
        Some(StatusCode::NOT_FOUND)
    } else if path.starts_with("/api/events/") && path != "/api/events/restore" {
        Some(StatusCode::FORBIDDEN)
    } else {
        None
    }
}

/// Wrong join codes and facilitator secrets count against the client's address; past its
/// allowance it is answered 429 (right or wrong) until it may guess again, so codes cannot be
/// found by trying them all.
async fn limit_guesses(
    State(guard): State<Guard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(wrong) = guessed_secret(request.uri().path()) else {
        return next.run(request).await;
    };
    let client = guard.client_ip(peer.ip(), request.headers());
    if let Err(wait) = guard.may_guess(client) {
        let mut res = api_error(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_GUESSES);
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let res = next.run(request).await;
    if res.status() == wrong {
        guard.wrong_guess(client);
    }
    res
}

/// The answer to an address that has made too many wrong guesses.
const TOO_MANY_GUESSES: &str = "Too many wrong codes or links from your network. Wait a minute, then check the code and try again.";

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

/// The header a facilitator's page sends its secret in (never in the URL, so it stays out of
/// logs and `Referer`s).
pub const FACILITATOR_HEADER: &str = "x-bothy-facilitator";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    prompt: String,
}

/// `POST /api/rooms` answer: a quick board is a one-room event.
#[derive(Serialize)]
struct RoomCreated {
    room: String,
    /// The participant link, relative to the server.
    path: String,
    event: String,
    code: String,
    facilitator_link: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEvent {
    title: String,
    #[serde(default = "anonymous_by_default")]
    anonymous: bool,
    /// Days until the event and its boards are deleted (1 to 3650; 90 if not given).
    #[serde(default)]
    retention_days: Option<u32>,
    rooms: Vec<ObjectOnly<CreateEventRoom>>,
}

fn anonymous_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEventRoom {
    name: String,
    prompt: String,
}

/// A derived struct that accepts only a JSON object (serde's derive would also take an array of
/// its field values, `["Table 3", "Why?"]`).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// `POST /api/events` answer: the only time the secret is shown.
#[derive(Serialize)]
struct EventCreated {
    event: String,
    title: String,
    anonymous: bool,
    facilitator_secret: String,
    facilitator_link: String,
    rooms: Vec<RoomLinks>,
}

/// `GET /api/events/{event}` answer: the event without its secret or hash.
#[derive(Serialize)]
struct EventView {
    event: String,
    title: String,
    anonymous: bool,
    created_at: u64,
    /// Days after `created_at` when the event is purged, and that moment (ms since the epoch).
    retention_days: u32,
    expires_at: u64,
    rooms: Vec<RoomLinks>,
}

/// One room of an event with everything needed to send people to it.
#[derive(Serialize)]
struct RoomLinks {
    room: String,
    name: String,
    /// Only in the creation answer (a prompt may change later; the board has the current one).
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    code: String,
    link: String,
    qr: String,
}

impl RoomLinks {
    fn of(r: &EventRoom, prompt: Option<String>) -> Self {
        Self {
            room: r.room.to_string(),
            name: r.name.clone(),
            prompt,
            code: r.code.as_str().to_owned(),
            link: room_path(&r.room),
            qr: format!("/api/rooms/{}/qr.svg", r.room),
        }
    }
}

fn room_path(room: &RoomId) -> String {
    format!("/r/{room}")
}

/// The facilitator's page, with the secret in the fragment: browsers never send a fragment to
/// the server, so the secret stays out of every request line and log.
fn facilitator_link(event: &EventId, secret: &FacilitatorSecret) -> String {
    format!("/e/{event}#f={}", secret.expose())
}

/// A JSON answer that carries or reveals facilitator data: never stored by a cache.
fn private_json(status: StatusCode, body: impl Serialize) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The answer to a body over the size limit.
fn too_large(e: BytesRejection) -> Response {
    api_error(e.status(), BODY_TOO_LARGE)
}

/// Creates an event on a blocking thread; `Err` is the 503 to answer.
async fn create_event_now(state: &AppState, new: NewEvent) -> Result<CreatedEvent, Response> {
    let events = state.registry.events().clone();
    match tokio::task::spawn_blocking(move || events.create(new)).await {
        Ok(Ok(created)) => Ok(created),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "could not create an event");
            Err(could_not_save())
        }
        Err(e) => {
            tracing::error!(error = %e, "the event creation task failed");
            Err(could_not_save())
        }
    }
}

fn could_not_save() -> Response {
    api_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The room could not be saved. Try again later.",
    )
}

async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return too_large(e),
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
    let room = NewRoom {
        name: QUICK_ROOM_NAME.to_owned(),
        prompt: body.prompt,
    };
    // Named, as boards were before events: people may type a name or stay anonymous.
    let new = match NewEvent::new(QUICK_EVENT_TITLE, false, vec![room], limits) {
        Ok(new) => new,
        Err(_) => {
            let msg = format!(
                "The prompt must be 1 to {} characters, without control characters.",
                limits.prompt_chars
            );
            return api_error(StatusCode::UNPROCESSABLE_ENTITY, &msg);
        }
    };
    let created = match create_event_now(&state, new).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let entry = &created.event.rooms[0];
    tracing::info!(room = %entry.room, event = %created.event.id, "room created");
    let body = RoomCreated {
        room: entry.room.to_string(),
        path: room_path(&entry.room),
        event: created.event.id.to_string(),
        code: entry.code.as_str().to_owned(),
        facilitator_link: facilitator_link(&created.event.id, &created.secret),
    };
    private_json(StatusCode::CREATED, body)
}

/// The title and room name of a board started with `POST /api/rooms`.
const QUICK_EVENT_TITLE: &str = "Quick board";
const QUICK_ROOM_NAME: &str = "Board";

async fn create_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return too_large(e),
    };
    let body = match read_json_object::<CreateEvent>(&headers, &body) {
        Ok(b) => b,
        Err(status) => {
            return api_error(
                status,
                "The request body must be JSON like {\"title\": \"...\", \"rooms\": \
                 [{\"name\": \"...\", \"prompt\": \"...\"}]}.",
            );
        }
    };
    let rooms = body
        .rooms
        .into_iter()
        .map(|ObjectOnly(r)| NewRoom {
            name: r.name,
            prompt: r.prompt,
        })
        .collect();
    let limits = &state.registry.config().limits;
    let new = match NewEvent::new(&body.title, body.anonymous, rooms, limits).and_then(|new| {
        match body.retention_days {
            Some(days) => new.with_retention_days(days),
            None => Ok(new),
        }
    }) {
        Ok(new) => new,
        Err(e) => return api_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let prompts: Vec<String> = new.rooms().iter().map(|r| r.prompt.clone()).collect();
    let created = match create_event_now(&state, new).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    created_answer(&created, prompts)
}

/// The answer to a new event: its ids, links and codes, and (this once) the secret.
fn created_answer(created: &CreatedEvent, prompts: Vec<String>) -> Response {
    let event = &created.event;
    let body = EventCreated {
        event: event.id.to_string(),
        title: event.title.clone(),
        anonymous: event.anonymous,
        facilitator_secret: created.secret.expose().to_owned(),
        facilitator_link: facilitator_link(&event.id, &created.secret),
        rooms: event
            .rooms
            .iter()
            .zip(prompts)
            .map(|(r, prompt)| RoomLinks::of(r, Some(prompt)))
            .collect(),
    };
    private_json(StatusCode::CREATED, body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: String,
    #[serde(default)]
    quote_all: bool,
}

/// "What we heard" from the event as it is now: CSV, Markdown or a printable HTML page (see
/// docs/reports.md), as a file to save. The same as `bothy report` on a downloaded snapshot.
async fn download_report(
    State(state): State<AppState>,
    Path(event): Path<String>,
    query: Result<axum::extract::Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Some(record) = facilitator_record(&state, &event, &headers) else {
        return forbidden();
    };
    let event = record.id.clone();
    let Some((format, options)) = query.ok().and_then(|axum::extract::Query(q)| {
        crate::report::Format::from_name(&q.format).map(|f| {
            (
                f,
                crate::report::ReportOptions {
                    quote_all: q.quote_all,
                },
            )
        })
    }) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Ask for a report with ?format=csv, ?format=md or ?format=html.",
        );
    };
    let snapshot = match crate::snapshots::take(&state.registry, &record).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(event = %event, error = %e, "could not take a snapshot for a report");
            return could_not_save();
        }
    };
    let name = download_name(&event, snapshot.exported_at, format.extension());
    let body =
        tokio::task::spawn_blocking(move || crate::report::render(&snapshot, format, &options))
            .await
            .unwrap_or_default();
    attachment(format.media_type(), &name, body.into_bytes())
}

/// `bothy-<event>-<YYYY-MM-DD>.<extension>`.
fn download_name(event: &EventId, at_ms: u64, extension: &str) -> String {
    let day = crate::report::file_date(at_ms);
    format!("bothy-{event}-{day}.{extension}")
}

/// A file for the browser to save, never to cache. (The name is an event id, a date and an
/// extension, so it needs no escaping.)
fn attachment(content_type: &'static str, name: &str, body: Vec<u8>) -> Response {
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

async fn get_synthesis(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(event) = facilitator_event(&state, &event, &headers) else {
        return forbidden();
    };
    match state
        .registry
        .synthesis()
        .get(state.registry.storage(), &event)
        .await
    {
        Ok(board) => private_json(StatusCode::OK, json!({ "themes": board.themes })),
        Err(e) => {
            tracing::error!(event = %event, error = %e, "could not read the synthesis board");
            could_not_save()
        }
    }
}

/// A change to the synthesis board: a [`crate::synthesis::SynthesisOp`], or
/// `{"kind": "add_room_theme", "theme", "room", "room_theme"}` to pull every note of a room's
/// theme in.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RoomThemeOp {
    AddRoomTheme {
        theme: u64,
        room: String,
        room_theme: u64,
    },
}

async fn change_synthesis(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(record) = facilitator_record(&state, &event, &headers) else {
        return forbidden();
    };
    let event = record.id.clone();
    let body = match body {
        Ok(b) => b,
        Err(e) => return too_large(e),
    };
    let bad_shape = |status| {
        api_error(
            status,
            "The change must be JSON like {\"kind\": \"create_theme\", \"title\": \"...\"}.",
        )
    };
    let op = match read_json_object::<crate::synthesis::SynthesisOp>(&headers, &body) {
        Ok(op) => Ok(op),
        Err(status) => match read_json_object::<RoomThemeOp>(&headers, &body) {
            Ok(room_theme) => Err(room_theme),
            Err(_) => return bad_shape(status),
        },
    };
    // Every note of every room, as it is now, when the change names notes.
    let needs_notes = !matches!(
        op,
        Ok(crate::synthesis::SynthesisOp::CreateTheme { .. }
            | crate::synthesis::SynthesisOp::RenameTheme { .. }
            | crate::synthesis::SynthesisOp::DeleteTheme { .. }
            | crate::synthesis::SynthesisOp::RemoveNote { .. })
    );
    let boards: std::collections::HashMap<String, bothy_shared::Board> = if needs_notes {
        match crate::snapshots::boards(&state.registry, &record).await {
            Ok(boards) => record
                .rooms
                .iter()
                .map(|r| r.room.to_string())
                .zip(boards.into_iter().map(|(_, b)| b))
                .collect(),
            Err(_) => return could_not_save(),
        }
    } else {
        Default::default()
    };
    let op = match op {
        Ok(op) => op,
        Err(RoomThemeOp::AddRoomTheme {
            theme,
            room,
            room_theme,
        }) => {
            let notes = boards
                .get(&room)
                .and_then(|b| b.themes.get(&room_theme))
                .map(|t| {
                    t.notes
                        .iter()
                        .map(|&note| bothy_shared::snapshot::NoteRef {
                            room: room.clone(),
                            note,
                        })
                        .collect()
                });
            match notes {
                Some(notes) => crate::synthesis::SynthesisOp::AddNotes { theme, notes },
                None => {
                    return api_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "That room theme is not there any more.",
                    );
                }
            }
        }
    };
    let limits = state.registry.config().limits.clone();
    let exists = |n: &bothy_shared::snapshot::NoteRef| {
        boards
            .get(&n.room)
            .is_some_and(|b| b.notes.contains_key(&n.note))
    };
    let changed = state
        .registry
        .synthesis()
        .change(state.registry.storage(), &event, |board| {
            let created = board.apply(&op, &limits, exists)?;
            Ok((created, board.themes.clone()))
        })
        .await;
    match changed {
        Ok(Ok((created, themes))) => private_json(
            StatusCode::OK,
            json!({ "created": created, "themes": themes }),
        ),
        Ok(Err(message)) => api_error(StatusCode::UNPROCESSABLE_ENTITY, &message),
        Err(e) => {
            tracing::error!(event = %event, error = %e, "could not save the synthesis board");
            could_not_save()
        }
    }
}

/// Proposed groupings of the notes that are in no theme yet (in their room or across rooms),
/// from their words alone, on this server (see `crate::suggest`).
async fn suggest_themes(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(record) = facilitator_record(&state, &event, &headers) else {
        return forbidden();
    };
    let event = record.id.clone();
    let synthesis = match state
        .registry
        .synthesis()
        .get(state.registry.storage(), &event)
        .await
    {
        Ok(s) => s,
        Err(_) => return could_not_save(),
    };
    let placed: std::collections::HashSet<bothy_shared::snapshot::NoteRef> =
        synthesis.themes.into_iter().flat_map(|t| t.notes).collect();
    let Ok(boards) = crate::snapshots::boards(&state.registry, &record).await else {
        return could_not_save();
    };
    let mut notes = Vec::new();
    for (r, (_, board)) in record.rooms.iter().zip(&boards) {
        for n in board.notes.values() {
            let key = bothy_shared::snapshot::NoteRef {
                room: r.room.to_string(),
                note: n.id,
            };
            if n.theme.is_none() && n.moderation.is_none() && !n.private && !placed.contains(&key) {
                notes.push((key, n.text.clone()));
            }
        }
    }
    let texts: std::collections::HashMap<_, _> = notes.iter().cloned().collect();
    let found = tokio::task::spawn_blocking(move || {
        crate::suggest::suggest(&notes, &crate::suggest::Options::default())
    })
    .await
    .unwrap_or_default();
    let proposals: Vec<_> = found
        .into_iter()
        .map(|s| {
            json!({
                "title": s.title,
                "words": s.words,
                "score": s.score,
                "notes": s.notes.iter().map(|n| json!({
                    "room": n.room, "note": n.note, "text": texts.get(n),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    private_json(StatusCode::OK, json!({ "suggestions": proposals }))
}

/// Largest snapshot file a restore accepts.
pub const RESTORE_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Recreates an event from a snapshot file, with new ids, codes and facilitator secret. The
/// file is checked like live input (`EventSnapshot::check`); a broken or hostile one is refused
/// with a message naming the problem, and nothing is created.
async fn restore_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let msg = format!(
                "The snapshot file is too large: at most {} MiB.",
                RESTORE_BODY_BYTES >> 20
            );
            return api_error(e.status(), &msg);
        }
    };
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_type {
        return api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the snapshot as JSON (Content-Type: application/json).",
        );
    }
    if !body.trim_ascii_start().starts_with(b"{") {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This is not a Bothy snapshot: it must be a JSON object.",
        );
    }
    let snapshot: bothy_shared::snapshot::EventSnapshot = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            let what = e.to_string();
            let what: String = what.chars().take(200).collect();
            let status = if e.is_data() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            return api_error(status, &format!("This is not a Bothy snapshot: {what}."));
        }
    };
    let limits = &state.registry.config().limits;
    if let Err(problem) = snapshot.check(limits) {
        return api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "The snapshot cannot be restored: {}.",
                problem.trim_end_matches('.')
            ),
        );
    }
    let boards: Vec<_> = snapshot.rooms.iter().map(|r| r.to_board()).collect();
    let prompts: Vec<String> = boards.iter().map(|b| b.prompt.clone()).collect();
    let new = NewEvent::restored(
        snapshot.event.title.clone(),
        snapshot.event.anonymous,
        snapshot.event.retention_days,
        boards,
    );
    let created = match create_event_now(&state, new).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let event = &created.event;
    tracing::info!(event = %event.id, "event restored from a snapshot");
    // The cross-room themes, pointing at the new rooms.
    if !snapshot.synthesis.is_empty() {
        let rename: std::collections::HashMap<&str, String> = snapshot
            .rooms
            .iter()
            .zip(&event.rooms)
            .map(|(old, new)| (old.id.as_str(), new.room.to_string()))
            .collect();
        let mut board = crate::synthesis::Synthesis {
            next_id: snapshot
                .synthesis
                .iter()
                .map(|t| t.id + 1)
                .max()
                .unwrap_or(1),
            themes: snapshot.synthesis.clone(),
        };
        for t in &mut board.themes {
            for n in &mut t.notes {
                if let Some(new) = rename.get(n.room.as_str()) {
                    n.room = new.clone();
                }
            }
        }
        let storage = state.registry.storage().clone();
        let id = event.id.clone();
        let saved =
            tokio::task::spawn_blocking(move || crate::synthesis::write(&storage, &id, &board))
                .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!(event = %event.id, "could not save the restored synthesis board");
        }
    }
    created_answer(&created, prompts)
}

/// The event, if `headers` carry its facilitator secret; otherwise `None`, answered with
/// [`forbidden`]. An unknown event gets the same answer as a wrong secret, so it does not tell
/// which event ids exist.
fn facilitator_event(state: &AppState, event: &str, headers: &HeaderMap) -> Option<EventId> {
    let secret = headers
        .get(FACILITATOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())?;
    let event = EventId::parse(event).ok()?;
    state
        .registry
        .events()
        .is_event_facilitator(&event, secret)
        .then_some(event)
}

/// The event's record, if `headers` carry its facilitator secret (see [`facilitator_event`]).
fn facilitator_record(
    state: &AppState,
    event: &str,
    headers: &HeaderMap,
) -> Option<std::sync::Arc<crate::events::EventRecord>> {
    let event = facilitator_event(state, event, headers)?;
    state.registry.events().get(&event)
}

fn forbidden() -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "This facilitator link does not work. It may be mistyped, or the secret was replaced.",
    )
}

/// The event snapshot as a JSON file to save: every room, every note (see docs/snapshot.md).
async fn download_snapshot(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(record) = facilitator_record(&state, &event, &headers) else {
        return forbidden();
    };
    let event = record.id.clone();
    match crate::snapshots::take(&state.registry, &record).await {
        Ok(snapshot) => {
            let json = serde_json::to_vec_pretty(&snapshot).expect("snapshots always serialise");
            let name = download_name(&event, snapshot.exported_at, "json");
            attachment("application/json", &name, json)
        }
        Err(e) => {
            tracing::error!(event = %event, error = %e, "could not take a snapshot");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The snapshot could not be taken right now. Try again in a moment.",
            )
        }
    }
}

async fn get_event(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(event) = facilitator_record(&state, &event, &headers) else {
        return forbidden();
    };
    let body = EventView {
        event: event.id.to_string(),
        title: event.title.clone(),
        anonymous: event.anonymous,
        created_at: event.created_at,
        retention_days: event.retention_days,
        expires_at: event.expires_at(),
        rooms: event.rooms.iter().map(|r| RoomLinks::of(r, None)).collect(),
    };
    private_json(StatusCode::OK, body)
}

async fn rotate_secret(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(event) = facilitator_event(&state, &event, &headers) else {
        return forbidden();
    };
    let events = state.registry.events().clone();
    let id = event.clone();
    match tokio::task::spawn_blocking(move || events.rotate_secret(&id)).await {
        Ok(Ok(secret)) => {
            // Whoever joined with the old link loses facilitator rights now, not at their next
            // reconnect.
            if let Some(record) = state.registry.events().get(&event) {
                for r in &record.rooms {
                    if let Some(room) = state.registry.open_handle(&r.room) {
                        room.drop_facilitators().await;
                    }
                }
            }
            private_json(
                StatusCode::OK,
                json!({
                    "facilitator_secret": secret.expose(),
                    "facilitator_link": facilitator_link(&event, &secret),
                }),
            )
        }
        other => {
            tracing::error!(event = %event, result = ?other.map(|r| r.map(|_| ())), "could not replace a facilitator secret");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The new secret could not be saved; the old one still works. Try again later.",
            )
        }
    }
}

const NO_SUCH_CODE: &str = "There is no room with that code.";

async fn lookup_code(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let target = JoinCode::parse(&code)
        .ok()
        .and_then(|c| state.registry.events().lookup_code(&c));
    match target {
        Some(t) => Json(json!({
            "room": t.room,
            "link": room_path(&t.room),
            "name": t.name,
        }))
        .into_response(),
        None => api_error(StatusCode::NOT_FOUND, NO_SUCH_CODE),
    }
}

/// `/j/{code}`: the short link on a slide or a QR code sends people to the room's board.
async fn join_by_code(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let target = JoinCode::parse(&code)
        .ok()
        .and_then(|c| state.registry.events().lookup_code(&c));
    match target {
        Some(t) => Redirect::to(&room_path(&t.room)).into_response(),
        None => not_found_page(),
    }
}

/// Whether the room has a board on disk (rooms of an event are known without a disk read).
async fn room_exists(state: &AppState, room: &RoomId) -> bool {
    if state.registry.events().event_of(room).is_some() {
        return true;
    }
    let storage = state.registry.storage().clone();
    let room = room.clone();
    tokio::task::spawn_blocking(move || storage.room_exists(&room))
        .await
        .unwrap_or(false)
}

/// `/r/{room}`: the board page, or a 404 page for a room that does not exist.
async fn room_page(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    match RoomId::parse(&room) {
        Ok(room) if room_exists(&state, &room).await => web::asset("index.html", &headers),
        _ => not_found_page(),
    }
}

/// The "there is no board here" page, with status 404.
fn not_found_page() -> Response {
    // No request headers: always the full page, never a 304.
    let mut res = web::asset("notfound.html", &HeaderMap::new());
    *res.status_mut() = StatusCode::NOT_FOUND;
    res.headers_mut().remove(header::ETAG);
    res
}

/// `GET /api/rooms/{room}/qr.svg`: a QR code of the room's absolute participant link.
/// A board too big for its welcome, from the one-time link the welcome carried: the JSON,
/// gzipped once for everyone who joined at that version (plain for a client that says it
/// cannot take gzip).
async fn fetch_board(
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> Response {
    let config = state.registry.config();
    let Some(board) = config.tickets.redeem(&ticket) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "This board link was used already or has expired. Reload the page to join again.",
        );
    };
    let takes_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_none_or(accepts_gzip);
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let json = (
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !takes_gzip {
        return ([json, no_store], board.json().get().to_owned()).into_response();
    }
    let Some(gzip) = board.gzip(&config.background).await else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The board could not be sent.",
        );
    };
    let gzip_encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    ([json, no_store, gzip_encoding], gzip).into_response()
}

/// Whether an `Accept-Encoding` value allows gzip: listed (or `*`) without `q=0`.
fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let q = parts
            .find_map(|p| p.strip_prefix("q="))
            .map_or(Some(1.0), |q| q.parse::<f32>().ok());
        (name.eq_ignore_ascii_case("gzip") || name == "*") && q.is_some_and(|q| q > 0.0)
    })
}

async fn room_qr(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(room) = RoomId::parse(&room) else {
        return api_error(StatusCode::NOT_FOUND, "There is no such room.");
    };
    if !room_exists(&state, &room).await {
        return api_error(StatusCode::NOT_FOUND, "There is no such room.");
    }
    let base = match &state.public_url {
        Some(url) => url.to_string(),
        None => match headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| valid_host(h))
        {
            Some(host) => format!("http://{host}"),
            None => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "The Host header is not a plain host name, so the link cannot be drawn.",
                );
            }
        },
    };
    let link = format!("{base}{}", room_path(&room));
    let svg = match qrcode::QrCode::with_error_correction_level(&link, qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(256, 256)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
        Err(e) => {
            tracing::warn!(error = %e, "could not draw a QR code");
            return api_error(
                StatusCode::BAD_REQUEST,
                "The link is too long for a QR code.",
            );
        }
    };
    let mut res = svg.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("host"));
    res
}

/// A `Host` header that is safe to put in a link: a name or IPv4 address (`[A-Za-z0-9.-]+`)
/// or a bracketed IPv6 address, with an optional port. Anything else (quotes, slashes, `@`,
/// spaces) is refused rather than cleaned.
pub fn valid_host(host: &str) -> bool {
    fn valid_port(p: &str) -> bool {
        (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    }
    if host.len() > 260 {
        return false;
    }
    if let Some(rest) = host.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let v6_ok = !v6.is_empty()
            && v6.contains(':')
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return v6_ok && port_ok;
    }
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(valid_port)
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
    let slot = match state.guard.admit(client) {
        Ok(slot) => slot,
        Err(refusal) => return api_error(StatusCode::TOO_MANY_REQUESTS, refusal.message()),
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
                    connection::Peer {
                        ip: client,
                        guard: state.guard,
                    },
                    state.shutdown,
                )
                .await;
                drop(slot);
            })
        })
}

/// `DELETE /api/events/{event}`: the facilitator purges the event now: its rooms close (people
/// in them see the board is gone), and every file of it is deleted before the answer (204).
async fn purge_event(
    State(state): State<AppState>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(event) = facilitator_event(&state, &event, &headers) else {
        return forbidden();
    };
    // Its own task, so a client that hangs up cannot stop the purge halfway.
    let registry = state.registry.clone();
    let id = event.clone();
    let purge = state
        .tracker
        .spawn(async move { crate::retention::purge_event(&registry, &id).await });
    match purge.await {
        Ok(Ok(_)) | Ok(Err(crate::retention::PurgeError::NoSuchEvent)) => {
            StatusCode::NO_CONTENT.into_response()
        }
        other => {
            tracing::error!(event = %event, result = ?other.map(|r| r.map(|_| ())), "could not finish purging an event");
            api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The event is closed but not all of its files could be deleted yet. The server \
                 will finish deleting them; if this persists, tell whoever runs the server.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{accepts_gzip, valid_host};

    #[test]
    fn gzip_is_sent_only_where_accept_encoding_allows_it() {
        for yes in [
            "gzip",
            "gzip, deflate, br, zstd",
            "br;q=1.0, GZIP;q=0.5",
            "*",
            "identity, *;q=0.1",
        ] {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in [
            "identity",
            "br",
            "gzip;q=0",
            "gzip; q=0.0",
            "gzip;q=x",
            "gzipped",
            "",
        ] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }

    #[test]
    fn only_plain_hosts_go_into_links() {
        for good in [
            "localhost",
            "127.0.0.1:8080",
            "board.example.org",
            "board-1.example.org:443",
            "[::1]:8080",
            "[2001:db8::1]",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "a b",
            "evil.org/\"><script>",
            "user@host",
            "host:port",
            "host:123456",
            "host:",
            "[::1",
            "[]:80",
            "[::1]x",
            "[::1]:80:80",
            "hóst",
            "host\"",
            "host<",
            "host/path",
            &"a".repeat(300),
        ] {
            assert!(!valid_host(bad), "{bad:?}");
        }
    }
}
