//! The bare relay: the benchmark's baseline (`make bench`, `docs/performance.md`).
//!
//! A minimal axum WebSocket room relay: every text frame a member sends goes to every *other*
//! member of the same room, as it is. No parsing, no validation, no sequence numbers, no
//! persistence, no limits beyond a 4 KiB read buffer. It is the ceiling Bothy is measured
//! against: whatever Bothy costs above it is the price of validation, ordering and durability.
//!
//! One thing it adds to a relay in its barest form: after registering a socket in its room it
//! sends `{"type":"welcome"}`, so the load generator knows when a member will receive broadcasts
//! (the same barrier Bothy's `welcome` gives) and starts the clock only when everyone is in.
//!
//! ```sh
//! relay --bind 127.0.0.1:0     # prints "Relay is running. Open http://ADDR/"
//! ```

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A bare WebSocket room relay (the benchmark baseline).
#[derive(Parser)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
}

/// Rooms by name, created on first use.
#[derive(Clone, Default)]
struct Relay {
    rooms: Arc<Mutex<HashMap<String, Arc<Room>>>>,
    next_member: Arc<AtomicU64>,
}

/// The members of one room: each one's outgoing queue. The lock is held only to copy a frame
/// handle into each queue, never across an `.await`.
#[derive(Default)]
struct Room {
    members: Mutex<Vec<(u64, mpsc::UnboundedSender<Utf8Bytes>)>>,
}

impl Room {
    fn broadcast(&self, from: u64, text: &Utf8Bytes) {
        let members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        for (id, tx) in members.iter() {
            if *id != from {
                let _ = tx.send(text.clone());
            }
        }
    }

    fn leave(&self, member: u64) {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|(id, _)| *id != member);
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // The same accept queue as Bothy's, so a burst of connections meets the same kernel.
    let listener = bothy_server::listen(args.bind)?;
    // The same line as Bothy's, so the benchmark finds the port the same way.
    println!(
        "Relay is running. Open http://{}/ in your browser.",
        listener.local_addr()?
    );
    let app = Router::new()
        .route("/ws/{room}", get(upgrade))
        .with_state(Relay::default());
    // As in Bothy: small messages go out at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn upgrade(
    State(relay): State<Relay>,
    Path(room): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let room = {
        let mut rooms = relay.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.entry(room).or_default().clone()
    };
    let id = relay.next_member.fetch_add(1, Ordering::Relaxed);
    ws.read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| member(socket, room, id))
}

async fn member(socket: WebSocket, room: Arc<Room>, id: u64) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let _ = tx.send(Utf8Bytes::from_static(r#"{"type":"welcome"}"#));
    room.members
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, tx));
    // The writer: everything queued, then one flush.
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.feed(Message::Text(text)).await.is_err() {
                return;
            }
            while let Ok(text) = rx.try_recv() {
                if sink.feed(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(Ok(msg)) = stream.next().await {
        match msg {
            Message::Text(text) => room.broadcast(id, &text),
            Message::Close(_) => break,
            _ => {}
        }
    }
    // Dropping the room's sender ends the writer once it has sent what was queued.
    room.leave(id);
    let _ = writer.await;
}
