//! The registry of open rooms: room id → [`RoomHandle`]. A room's task is started the first
//! time someone joins it after the server starts, from its files on disk.
//!
//! A room can also be closed alone, for a purge ([`Registry::close_room`]): its members are
//! told the board is gone (4004), its task finishes its disk work and ends, and the room cannot
//! be opened again while its files are deleted.

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
    /// How to stop each running room's task alone, and learn when it has ended.
    running: DashMap<RoomId, RoomTask>,
    /// Every event's synthesis board.
    synthesis: crate::synthesis::Store,
    /// Rooms being purged: never opened again (their files are being deleted).
    closed: DashMap<RoomId, ()>,
    /// Held for the whole of a purge or a retention sweep: one at a time.
    purges: tokio::sync::Mutex<()>,
}

/// A running room's task, as the registry controls it.
struct RoomTask {
    /// Given to the room's task (a child of the server's shutdown token): cancelling it stops
    /// that room alone; it saves what it has in flight and ends.
    stop: CancellationToken,
    /// Cancelled when the room is deleted: its connections close with 4004 at once.
    deleted: CancellationToken,
    /// Cancelled when the task has ended (also if it panicked) and released its journal.
    ended: CancellationToken,
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
                running: DashMap::new(),
                synthesis: Default::default(),
                closed: DashMap::new(),
                purges: tokio::sync::Mutex::new(()),
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
    /// Every event's synthesis board (cross-room themes).
    pub fn synthesis(&self) -> &crate::synthesis::Store {
        &self.inner.synthesis
    }

    pub fn events(&self) -> &Arc<EventIndex> {
        &self.inner.events
    }

    /// Returns the room's handle, loading it from disk and starting its task if needed.
    /// An unknown room id creates nothing.
    pub async fn open(&self, room: &RoomId) -> Result<RoomHandle, OpenError> {
        let cell = self.inner.rooms.entry(room.clone()).or_default().clone();
        let result = cell
            .get_or_try_init(|| async {
                if self.inner.closed.contains_key(room) {
                    return Err(OpenError::NoSuchRoom);
                }
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
                let task = RoomTask {
                    stop: self.inner.shutdown.child_token(),
                    deleted: CancellationToken::new(),
                    ended: CancellationToken::new(),
                };
                let (actor, handle) = RoomActor::new(
                    room.clone(),
                    loaded,
                    self.inner.config.clone(),
                    task.stop.clone(),
                );
                let ended = task.ended.clone().drop_guard();
                self.inner.running.insert(room.clone(), task);
                self.inner.tracker.spawn(async move {
                    let _ended = ended;
                    actor.run().await;
                });
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

    /// Ids of the rooms whose tasks are running.
    pub fn open_rooms(&self) -> Vec<RoomId> {
        self.inner
            .rooms
            .iter()
            .filter(|e| e.value().get().is_some())
            .map(|e| e.key().clone())
            .collect()
    }

    /// Cancelled when the room is deleted (purged): a connection to it then closes with 4004.
    /// Already cancelled if the room is not running (it was closed since it was opened).
    pub fn deleted_signal(&self, room: &RoomId) -> CancellationToken {
        match self.inner.running.get(room) {
            Some(task) => task.deleted.clone(),
            None => {
                let gone = CancellationToken::new();
                gone.cancel();
                gone
            }
        }
    }

    /// Closes a room for good, before its files are deleted: from now on it cannot be opened;
    /// its connections are closed with 4004 (the browser says the board no longer exists); its
    /// task saves what it has in flight and ends, and this returns once it has (and so has let
    /// go of its journal). A room not running is only barred from opening. Call
    /// [`Registry::forget_closed`] once its files are gone.
    pub async fn close_room(&self, room: &RoomId) {
        self.inner.closed.insert(room.clone(), ());
        let cell = self.inner.rooms.get(room).map(|c| c.value().clone());
        if let Some(cell) = cell {
            // If someone is opening the room right now, wait for that to finish (a task may be
            // starting); an empty cell stays empty, and later openings see `closed`.
            let _ = cell
                .get_or_try_init(|| async { Err::<RoomHandle, ()>(()) })
                .await;
        }
        if let Some((_, task)) = self.inner.running.remove(room) {
            task.deleted.cancel();
            task.stop.cancel();
            task.ended.cancelled().await;
        }
        self.inner.rooms.remove(room);
        tracing::info!(room = %room, "room closed for deletion");
    }

    /// Lets a room id be opened again once a purge has deleted its files (it then opens only if
    /// files exist, which they no longer do).
    pub fn forget_closed(&self, room: &RoomId) {
        self.inner.closed.remove(room);
    }

    /// One purge or retention sweep at a time: hold this for the whole of one.
    pub fn purge_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.purges
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
