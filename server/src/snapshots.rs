//! Event snapshots: every room of an event in one document (`bothy_shared::snapshot`), taken
//! from the rooms' confirmed boards, downloaded by facilitators and written to the data
//! directory on an interval while an event is live and once more when the server stops.

use crate::events::EventRecord;
use crate::registry::{OpenError, Registry};
use crate::storage::{self, Storage, StorageError};
use bothy_shared::snapshot::{
    EventInfo, EventSnapshot, Pseudonyms, RoomExport, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
use bothy_shared::{Board, Limits};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("room {0} could not be opened: {1}")]
    Room(String, OpenError),
    #[error("the server is shutting down")]
    Closed,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Builds the document from each room's board, in the event's room order.
fn assemble(
    event: &EventRecord,
    boards: Vec<(u64, Board)>,
    synthesis: crate::synthesis::Synthesis,
) -> EventSnapshot {
    let mut pseudonyms = Pseudonyms::default();
    for (_, board) in &boards {
        pseudonyms.reserve(board);
    }
    let rooms = event
        .rooms
        .iter()
        .zip(boards)
        .map(|(r, (seq, board))| {
            RoomExport::from_board(
                r.room.as_str(),
                &r.code.to_string(),
                seq,
                &board,
                &mut pseudonyms,
            )
        })
        .collect();
    EventSnapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: SNAPSHOT_VERSION,
        exported_at: now_ms(),
        event: EventInfo {
            id: event.id.to_string(),
            title: event.title.clone(),
            anonymous: event.anonymous,
            created_at: event.created_at,
            retention_days: event.retention_days,
        },
        rooms,
        synthesis: synthesis.themes,
    }
}

/// Each room's confirmed board and sequence number, in the event's room order, asked of the
/// room's task (which only clones it). Rooms not open yet are opened.
pub async fn boards(
    registry: &Registry,
    event: &EventRecord,
) -> Result<Vec<(u64, Board)>, SnapshotError> {
    let mut boards = Vec::with_capacity(event.rooms.len());
    for r in &event.rooms {
        let room = registry
            .open(&r.room)
            .await
            .map_err(|e| SnapshotError::Room(r.room.to_string(), e))?;
        boards.push(room.export().await.map_err(|_| SnapshotError::Closed)?);
    }
    Ok(boards)
}

/// A snapshot of a live event: each room's confirmed board, asked of the room's task (which
/// only clones it, so no room pauses). Rooms not open yet are opened.
pub async fn take(
    registry: &Registry,
    event: &EventRecord,
) -> Result<EventSnapshot, SnapshotError> {
    let boards = boards(registry, event).await?;
    let synthesis = registry
        .synthesis()
        .get(registry.storage(), &event.id)
        .await?;
    Ok(assemble(event, boards, synthesis))
}

/// A snapshot read from the rooms' files, for when no room task is running (after shutdown).
/// Blocking.
pub fn from_disk(
    storage: &Storage,
    event: &EventRecord,
    limits: &Limits,
) -> Result<EventSnapshot, StorageError> {
    let mut boards = Vec::with_capacity(event.rooms.len());
    for r in &event.rooms {
        let loaded = storage.load_room(&r.room, limits)?;
        boards.push((loaded.seq, loaded.board));
    }
    let synthesis = crate::synthesis::read(storage, &event.id)?;
    Ok(assemble(event, boards, synthesis))
}

/// Every `every`, writes a snapshot of each event with a room open; returns at shutdown with
/// the events it saw live, so the server can write their last snapshots once the rooms have
/// stopped.
pub async fn run_writer(
    registry: Registry,
    every: Duration,
    shutdown: CancellationToken,
) -> BTreeSet<bothy_shared::ids::EventId> {
    let mut live = BTreeSet::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                live.extend(live_events(&registry));
                return live;
            }
            _ = tick.tick() => {}
        }
        for event in live_events(&registry) {
            live.insert(event.clone());
            let Some(record) = registry.events().get(&event) else {
                continue;
            };
            match take(&registry, &record).await {
                Ok(snapshot) => {
                    let storage = registry.storage().clone();
                    let written = tokio::task::spawn_blocking(move || {
                        storage::write_event_snapshot(&storage, &event, &snapshot)
                    })
                    .await;
                    if !matches!(written, Ok(Ok(()))) {
                        tracing::error!(event = %record.id, "could not write the event snapshot");
                    }
                }
                Err(SnapshotError::Closed) => return live,
                Err(e) => {
                    tracing::error!(event = %record.id, error = %e, "could not take a snapshot")
                }
            }
        }
    }
}

/// Events with at least one room open in this process.
fn live_events(registry: &Registry) -> BTreeSet<bothy_shared::ids::EventId> {
    registry
        .open_rooms()
        .iter()
        .filter_map(|room| registry.events().event_of(room))
        .collect()
}

/// Writes the last snapshot of each event, from the files, once no room task runs. Blocking.
pub fn write_final(storage: &Arc<Storage>, events: &[Arc<EventRecord>], limits: &Limits) {
    for event in events {
        let written = from_disk(storage, event, limits)
            .and_then(|s| storage::write_event_snapshot(storage, &event.id, &s));
        if let Err(e) = written {
            tracing::error!(event = %event.id, error = %e, "could not write the last event snapshot");
        }
    }
}
