//! Persistence behind the [`Store`] trait: per room, an append-only log of encoded updates and
//! periodic snapshots (with the log compacted behind them). [`SqliteStore`] is the durable
//! default of the server (in [`DEFAULT_DATA_DIR`]); [`MemoryStore`] keeps rooms in the process (tests, ephemeral
//! rooms).
//!
//! Knows no clients or sockets: rooms by name, entries by version, idempotent by version.
//! Nothing above this trait is specific to SQLite, so a server database can implement it later.

#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{RawRoom, RawSnapshot, SqliteStore};

/// Where the server keeps its rooms unless told otherwise (relative to the working directory):
/// the default of [`ServerBuilder::store`](crate::ServerBuilder::store) and of `serve --data`.
pub const DEFAULT_DATA_DIR: &str = "objectsync-data";

use crate::model::{DocSnapshot, Schema};
use async_trait::async_trait;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a room remembers of a client across unloads and restarts, so an action id it already
/// sent is never applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownClient {
    /// Client id.
    pub id: CompactString,
    /// Highest action id applied.
    pub last_action: u64,
}

/// A room's state at one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The document.
    pub doc: DocSnapshot,
    /// The clients it knows.
    pub clients: Vec<KnownClient>,
    /// Clients were forgotten (to keep the room's records bounded) whose last action came
    /// before this version: a resume of a client the room does not know, from a version below
    /// it, is a new client (it may be one that was forgotten; its actions cannot be deduplicated).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clients_floor: u64,
    /// The types it was written with, and their schema version (`None`: a snapshot written
    /// before they were recorded, read as schema version 1). The log entries after it were
    /// written with the same types: a room is migrated, and stored as a new snapshot, before
    /// anything is logged at a later version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One accepted transition as the store keeps it: what changed and who asked. The store's own
/// record, not the socket's `update` message, so that a change of the message's envelope is
/// not a change of what is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The version it created.
    pub version: u64,
    /// The client whose action, undo or redo it was; `None` for server code.
    pub origin: Option<CompactString>,
    /// That client's action id, when it was an action.
    pub action: Option<u64>,
    /// The changes, as [`protocol::encode_changes`](crate::protocol::encode_changes) wrote them
    /// (the steps as applied, replayable).
    pub changes: String,
    /// The schema version of the types it was written with
    /// ([`TypeRegistry::schema_version`](crate::model::TypeRegistry::schema_version)): always
    /// that of the snapshot it follows (a room is migrated and stored as a snapshot before
    /// anything is logged with other types), which loading checks.
    #[serde(default = "first_schema_version")]
    pub schema_version: u32,
}

fn first_schema_version() -> u32 {
    crate::model::FIRST_SCHEMA_VERSION
}

/// Updates to append, with the clients whose last action id they advance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// Entries in version order, following the last stored one.
    pub entries: Vec<LogEntry>,
    /// Clients with their new highest applied action id.
    pub clients: Vec<KnownClient>,
}

/// What [`Store::load`] returns: the latest snapshot (if any) and the stored log after it, plus
/// the entries just before it that are kept for resuming clients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredRoom {
    /// Latest snapshot.
    pub snapshot: Option<RoomSnapshot>,
    /// Every stored log entry, in version order (older than the snapshot ones are for resume).
    pub log: Vec<LogEntry>,
    /// Clients and their highest applied action ids.
    pub clients: Vec<KnownClient>,
}

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored data of a room cannot be read back.
    #[error("room {room}: stored data is corrupt: {reason}")]
    Corrupt {
        /// Room name.
        room: String,
        /// What is wrong.
        reason: String,
    },
    /// The storage failed, said in words: a store's own failures that carry no error of the
    /// backend (the writer thread stopped, a lock poisoned), and those of stores of one's own.
    #[error("room {room}: storage failed: {reason}")]
    Io {
        /// Room name (empty for the store as a whole).
        room: String,
        /// What failed.
        reason: String,
    },
    /// The storage backend failed (the file system, the database): `source` is its error, kept
    /// as it came (downcast [`StoreCause::error`] to tell, say, a full disk from a locked file).
    #[error("room {room}: storage failed: {source}")]
    Backend {
        /// Room name (empty for the store as a whole).
        room: String,
        /// The backend's error, with what was being done or the file at fault.
        source: StoreCause,
    },
    /// Another process has the data directory open for writing (a running server, an import).
    #[error("{dir} is in use by another process ({reason}): stop the server before importing or opening it again")]
    Locked {
        /// The data directory.
        dir: String,
        /// What the lock said.
        reason: String,
    },
    /// The database file is damaged, truncated, replaced or behind what was acknowledged: it
    /// is refused as a whole, untouched.
    #[error("{path}: {reason}")]
    Damaged {
        /// The database file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The data was written by a newer version of this program.
    #[error("{path}: schema version {found} is newer than this build reads ({supported}); upgrade objectsync")]
    NewerSchema {
        /// The database file.
        path: String,
        /// Version found.
        found: i64,
        /// Highest version this build reads.
        supported: i64,
    },
    /// The room was stored with types this build cannot read it with, and no migration
    /// bridges them (or one failed): it stays stored as it is.
    #[error("room {room}: stored at schema version {stored}, this build's types are version {code}: {reason}")]
    Incompatible {
        /// Room name.
        room: String,
        /// The schema version it was stored at.
        stored: u32,
        /// The schema version of this build's types.
        code: u32,
        /// What differs or failed, naming the type and attribute, and what to write.
        reason: String,
    },
    /// Another node holds the room (a store shared by several nodes: one writes a room at a time).
    #[error("room {room} is held by node {owner} (its lease runs for {left_ms} ms more)")]
    HeldElsewhere {
        /// Room name.
        room: String,
        /// The node that holds it.
        owner: String,
        /// How long its lease still runs unless renewed.
        left_ms: u64,
    },
    /// This node lost the room to another (its lease ran out and another node took it): it must
    /// not write the room again. Nothing of the refused write was stored.
    #[error("room {room}: this node no longer holds it ({reason}); nothing was written")]
    Fenced {
        /// Room name.
        room: String,
        /// Who holds it now, at which epoch.
        reason: String,
    },
}

/// The error a storage backend gave, with what was being done or the file at fault. Shared, so
/// that a [`StoreError`] stays cheap to clone (one failed commit answers every write it held);
/// two are equal when they say the same.
#[derive(Clone)]
pub struct StoreCause {
    context: Option<String>,
    error: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl StoreCause {
    /// The backend's error as it came.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreCause { context: None, error: Arc::new(error) }
    }
    /// With what was being done, or the file at fault (said before the error).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }
    /// The backend's error, to downcast (e.g. to `std::io::Error`).
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl std::fmt::Display for StoreCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.context {
            Some(context) => write!(f, "{context}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::fmt::Debug for StoreCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCause").field("context", &self.context).field("error", &self.error).finish()
    }
}

impl PartialEq for StoreCause {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Its source is the backend error's own: the error itself is already in its message.
impl std::error::Error for StoreCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Where rooms live. Implementations are shared by every room of a server.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether an acknowledged update must first be written here (`append` returned). A store
    /// that is not durable lets the room broadcast at once.
    fn durable(&self) -> bool;
    /// A secret that lives as long as the stored rooms (resume tokens are derived from it).
    fn secret(&self) -> [u8; 32];
    /// The room's stored state, if any.
    async fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError>;
    /// Appends updates; when this returns they are durable.
    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError>;
    /// Saves a snapshot; log entries at or below `compact_to` may then be dropped. The
    /// snapshot's clients replace the room's client records (forgotten clients go).
    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError>;
    /// Names of the stored rooms.
    async fn rooms(&self) -> Result<Vec<String>, StoreError>;
    /// The room was saved for the last time in this process (unloaded, or the server stops):
    /// a store shared by several nodes lets another one have it now. Nothing by default.
    async fn release(&self, _room: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// The epoch of this node's hold on `room` (a store shared by nodes: it grows with every
    /// claim, so a later holder's is higher); `None` for a store of one node.
    fn epoch(&self, _room: &str) -> Option<u64> {
        None
    }
    /// The logged updates of `room` after version `after`, at most `max` of them, oldest first,
    /// read without holding the room: for a node that relays a room another node holds and
    /// missed some of its stream. `None`: a store of one node (no room is held elsewhere).
    async fn log_after(&self, _room: &str, _after: u64, _max: usize) -> Result<Option<Vec<LogEntry>>, StoreError> {
        Ok(None)
    }
}

/// Rooms kept in this process's memory: they survive unloading, not a restart.
pub struct MemoryStore {
    rooms: Mutex<HashMap<String, StoredRoom>>,
    secret: [u8; 32],
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore { rooms: Mutex::default(), secret: rand::random() }
    }
}

impl MemoryStore {
    fn with<R>(&self, room: &str, f: impl FnOnce(&mut HashMap<String, StoredRoom>) -> R) -> Result<R, StoreError> {
        let mut rooms =
            self.rooms.lock().map_err(|_| StoreError::Io { room: room.into(), reason: "lock poisoned".into() })?;
        Ok(f(&mut rooms))
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn durable(&self) -> bool {
        false
    }
    fn secret(&self) -> [u8; 32] {
        self.secret
    }
    async fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError> {
        self.with(room, |rooms| rooms.get(room).cloned())
    }
    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        self.with(room, |rooms| {
            let r = rooms.entry(room.to_owned()).or_default();
            // The last version stored: the log's, else the snapshot's, else none yet (0).
            let last = r.log.last().map(|e| e.version).or(r.snapshot.as_ref().map(|s| s.doc.version)).unwrap_or(0);
            r.log.extend(batch.entries.into_iter().filter(|e| e.version > last));
            merge_clients(&mut r.clients, batch.clients);
        })
    }
    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError> {
        self.with(room, |rooms| {
            let r = rooms.entry(room.to_owned()).or_default();
            if r.snapshot.as_ref().is_some_and(|s| s.doc.version > snapshot.doc.version) {
                return;
            }
            r.snapshot = Some(snapshot.clone());
            r.log.retain(|e| e.version > compact_to);
            // The snapshot lists every client the room still knows: forgotten ones go.
            r.clients = snapshot.clients.clone();
        })
    }
    async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.with("", |rooms| rooms.keys().cloned().collect())
    }
}

/// Keeps, per client, the highest last action.
fn merge_clients(into: &mut Vec<KnownClient>, more: Vec<KnownClient>) {
    for c in more {
        match into.iter_mut().find(|k| k.id == c.id) {
            Some(k) => k.last_action = k.last_action.max(c.last_action),
            None => into.push(c),
        }
    }
}
