//! The registry of open rooms: room id → [`RoomHandle`]. A room's task is started the first
//! time someone joins it after the server starts, from its files on disk.

use crate::events::EventIndex;
use crate::room::{RoomActor, RoomConfig, RoomHandle};
use crate::storage::{Recovery, Storage, StorageError};
use bothy_shared::RoomId;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why a room could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("there is no room with this id")]
    NoSuchRoom,
    #[error("the room's files could not be read")]
    Storage(#[source] StorageError),
}

/// Open rooms, shared by every connection.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// One cell per room id: the cell makes sure only one task loads and owns a room, even when
    /// many people join it at the same moment. No entry is held across an `.await`.
    rooms: DashMap<RoomId, Arc<OnceCell<RoomHandle>>>,
    storage: Arc<Storage>,
    config: RoomConfig,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Every event: which room belongs to which event, join codes, facilitator secrets' hashes.
    events: Arc<EventIndex>,
}

impl Registry {
    pub fn new(
        storage: Arc<Storage>,
        config: RoomConfig,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        events: Arc<EventIndex>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: DashMap::new(),
                storage,
                config,
                tracker,
                shutdown,
                events,
            }),
        }
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.inner.storage
    }

    pub fn config(&self) -> &RoomConfig {
        &self.inner.config
    }

    /// Events, rooms' events, join codes and facilitator checks.
    pub fn events(&self) -> &Arc<EventIndex> {
        &self.inner.events
    }

    /// Returns the room's handle, loading it from disk and starting its task if needed.
    /// An unknown room id creates nothing.
    pub async fn open(&self, room: &RoomId) -> Result<RoomHandle, OpenError> {
        let cell = self.inner.rooms.entry(room.clone()).or_default().clone();
        let result = cell
            .get_or_try_init(|| async {
                let storage = self.inner.storage.clone();
                let limits = self.inner.config.limits.clone();
                let id = room.clone();
                let loaded = tokio::task::spawn_blocking(move || {
                    if !storage.room_exists(&id) {
                        return Err(OpenError::NoSuchRoom);
                    }
                    storage.load_room(&id, &limits).map_err(OpenError::Storage)
                })
                .await
                .map_err(|e| OpenError::Storage(StorageError::Io {
                    path: Default::default(),
                    source: std::io::Error::other(e.to_string()),
                }))??;
                match &loaded.recovery {
                    Recovery::Clean { records } => {
                        tracing::info!(room = %room, seq = loaded.seq, replayed = records, "room opened");
                    }
                    other => tracing::warn!(room = %room, seq = loaded.seq, recovery = ?other, "room opened after recovery"),
                }
                let (actor, handle) = RoomActor::new(
                    room.clone(),
                    loaded,
                    self.inner.config.clone(),
                    self.inner.shutdown.clone(),
                );
                self.inner.tracker.spawn(actor.run());
                Ok::<_, OpenError>(handle)
            })
            .await
            .cloned();
        if result.is_err() {
            // Forget the empty cell so unknown ids leave nothing behind.
            self.inner.rooms.remove_if(room, |_, c| c.get().is_none());
        }
        result
    }

    /// The room's handle if its task is running (without loading it).
    pub fn open_handle(&self, room: &RoomId) -> Option<RoomHandle> {
        self.inner.rooms.get(room).and_then(|c| c.get().cloned())
    }

    /// How many rooms are open, and how many of them are read-only.
    pub fn counts(&self) -> (usize, usize) {
        let mut open = 0;
        let mut read_only = 0;
        for entry in self.inner.rooms.iter() {
            if let Some(h) = entry.value().get() {
                open += 1;
                if h.is_read_only() {
                    read_only += 1;
                }
            }
        }
        (open, read_only)
    }
}
