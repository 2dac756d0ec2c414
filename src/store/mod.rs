//! Persistence behind the [`Store`] trait: rooms saved as snapshots (and, with a durable store,
//! an update log). [`MemoryStore`] keeps them in the process (tests, ephemeral rooms).
//!
//! Knows no clients or sockets: it stores rooms by name, idempotently by version. Nothing
//! above this trait is specific to one database.

use crate::model::DocSnapshot;
use async_trait::async_trait;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// A client the room remembers across unloads and restarts: so it can resume, and so an action
/// id it already sent is never applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownClient {
    /// Client id.
    pub id: CompactString,
    /// The token it resumes with.
    pub resume_token: String,
    /// Highest action id processed.
    pub last_action: u64,
}

/// Everything needed to bring a room back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The document.
    pub doc: DocSnapshot,
    /// The clients it knows.
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
    /// The storage failed (I/O, database).
    #[error("room {room}: storage failed: {reason}")]
    Io {
        /// Room name.
        room: String,
        /// What failed.
        reason: String,
    },
}

/// Where rooms live when they are not loaded.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The room's latest saved state, if any.
    async fn load(&self, room: &str) -> Result<Option<RoomSnapshot>, StoreError>;
    /// Saves the room's state (replacing an older one).
    async fn save(&self, room: &str, snapshot: &RoomSnapshot) -> Result<(), StoreError>;
}

/// Rooms kept in this process's memory: they survive unloading, not a restart.
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<String, RoomSnapshot>>,
}

#[async_trait]
impl Store for MemoryStore {
    async fn load(&self, room: &str) -> Result<Option<RoomSnapshot>, StoreError> {
        let rooms =
            self.rooms.lock().map_err(|_| StoreError::Io { room: room.into(), reason: "lock poisoned".into() })?;
        Ok(rooms.get(room).cloned())
    }
    async fn save(&self, room: &str, snapshot: &RoomSnapshot) -> Result<(), StoreError> {
        let mut rooms =
            self.rooms.lock().map_err(|_| StoreError::Io { room: room.into(), reason: "lock poisoned".into() })?;
        match rooms.get(room) {
            // Idempotent by version: never go back.
            Some(old) if old.doc.version > snapshot.doc.version => {}
            _ => {
                rooms.insert(room.to_owned(), snapshot.clone());
            }
        }
        Ok(())
    }
}
