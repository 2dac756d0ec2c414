//! What a room's actor starts from: a stored room turned into its document (the snapshot, then
//! every logged update after it), the clients it knows and the log kept for resuming clients; or
//! a room the store does not have, built by the room hook and stored.
//!
//! Must not: keep state between loads, or know the registry's slots and sessions (the registry
//! calls it while it holds the room's slot).

use super::ServerError;
use crate::limits::ModelLimits;
use crate::metrics::Metrics;
use crate::model::{Actor, Change, Document, ModelError, Tx, TypeRegistry};
use crate::store::{KnownClient, LogEntry, RoomSnapshot, Store, StoreError, StoredRoom};
use std::sync::Arc;

/// The room hook: builds a new room's initial tree, as one server transaction.
pub(crate) type RoomInitFn = Arc<dyn Fn(&str, &mut Tx<'_>) -> Result<(), ModelError> + Send + Sync>;

/// What loading a room needs of the server's configuration.
pub(crate) struct Loader {
    /// Every room's types.
    pub(crate) types: Arc<TypeRegistry>,
    /// Every room's document limits.
    pub(crate) model_limits: ModelLimits,
    /// Builds a room the store does not have; without it a new room starts empty.
    pub(crate) room_init: Option<RoomInitFn>,
    /// Where rooms are loaded from (and new rooms first saved to).
    pub(crate) store: Arc<dyn Store>,
    /// Counts the loads that failed.
    pub(crate) metrics: Arc<Metrics>,
}

/// Why a room was not loaded here.
pub(crate) enum LoadFailure {
    /// Another node holds it (a store shared by a cluster): its relay reaches it.
    HeldElsewhere(StoreError),
    /// It cannot be loaded or built.
    Refused(ServerError),
}

impl From<ServerError> for LoadFailure {
    fn from(e: ServerError) -> Self {
        LoadFailure::Refused(e)
    }
}

/// A room as loaded or built, before its actor starts.
pub(crate) struct LoadedRoom {
    pub(crate) doc: Document,
    pub(crate) clients: Vec<KnownClient>,
    /// See [`RoomSnapshot::clients_floor`].
    pub(crate) clients_floor: u64,
    /// Stored updates (for resuming clients), oldest first.
    pub(crate) log: Vec<LogEntry>,
}

impl Loader {
    /// Room `name` as the store has it, or built now by the room hook (and, with a durable
    /// store, saved as its first snapshot) if the store has no such room.
    pub(crate) async fn load(&self, name: &str) -> Result<LoadedRoom, LoadFailure> {
        let refused = |reason: String| ServerError::RoomRefused { room: name.to_owned(), reason };
        let stored = match self.store.load(name).await {
            Ok(stored) => stored,
            Err(e @ StoreError::HeldElsewhere { .. }) => return Err(LoadFailure::HeldElsewhere(e)),
            Err(e) => return Err(self.failed(name, e).into()),
        };
        let clients_floor = stored.as_ref().and_then(|s| s.snapshot.as_ref()).map_or(0, |s| s.clients_floor);
        let (doc, clients, log) = match stored {
            Some(stored) => {
                load_room(&self.types, &self.model_limits, name, stored).map_err(|e| self.failed(name, e))?
            }
            None => {
                let mut doc = Document::with_limits(self.types.clone(), self.model_limits.clone());
                if let Some(init) = &self.room_init {
                    doc.transact(&Actor::Server, |tx| init(name, tx)).map_err(|r| refused(r.to_string()))?;
                }
                if self.store.durable() {
                    // A stored room always starts from a snapshot: the log holds only what follows.
                    let snapshot = RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0 };
                    self.store.save_snapshot(name, &snapshot, 0).await.map_err(|e| refused(e.to_string()))?;
                }
                (doc, Vec::new(), Vec::new())
            }
        };
        // Building or loading a room makes transient copies of it (the stored or built snapshot,
        // its checked form); give that memory back to the system instead of keeping it.
        release_free_memory();
        Ok(LoadedRoom { doc, clients, clients_floor, log })
    }

    /// A stored room that cannot be loaded is said loudly: it stays stored as it is, and every
    /// join is refused until someone repairs it.
    pub(crate) fn failed(&self, name: &str, e: StoreError) -> ServerError {
        tracing::error!(
            room = name,
            error = %e,
            "the room cannot be loaded; its stored data is kept as it is (`objectsync export --raw` prints it)"
        );
        self.metrics.room_load_failures.inc();
        ServerError::RoomRefused { room: name.to_owned(), reason: e.to_string() }
    }
}

/// Rebuilds a stored room: its snapshot, then every logged update after it, in order. A gap or
/// an update that does not apply is corruption, reported with the room and version.
///
/// Returns the document, the clients the room knows (from the snapshot and the log) and the
/// stored log.
///
/// # Errors
///
/// [`StoreError::Corrupt`] if there is no snapshot, the snapshot is invalid, or an update is
/// missing, does not parse or does not apply.
pub fn load_room(
    types: &Arc<TypeRegistry>,
    limits: &ModelLimits,
    room: &str,
    stored: StoredRoom,
) -> Result<(Document, Vec<KnownClient>, Vec<LogEntry>), StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { room: room.into(), reason };
    let snapshot = stored.snapshot.ok_or_else(|| corrupt("the log has no snapshot to start from".into()))?;
    let mut doc = Document::from_snapshot(types.clone(), limits.clone(), snapshot.doc)
        .map_err(|e| corrupt(format!("the snapshot is invalid: {e}")))?;
    let start = doc.version();
    let decode = |entry: &LogEntry| match crate::protocol::decode_changes(&entry.changes) {
        Ok(changes) => {
            let actor = entry.origin.clone().map_or(Actor::Server, Actor::Client);
            Ok((actor, changes))
        }
        Err(e) => Err(corrupt(format!("the update of version {} does not parse: {e}", entry.version))),
    };
    // The updates the snapshot already contains (kept for resuming clients) rebuild the text and
    // list histories, so that an action decides as it would have before the restart.
    let contained: Vec<(u64, Actor, Vec<Change>)> = stored
        .log
        .iter()
        .filter(|e| e.version <= start)
        .map(|e| decode(e).map(|(actor, changes)| (e.version, actor, changes)))
        .collect::<Result<_, _>>()?;
    doc.restore_histories(&contained);
    drop(contained);
    for entry in stored.log.iter().filter(|e| e.version > start) {
        if entry.version != doc.version() + 1 {
            return Err(corrupt(format!("version {} is missing from the log", doc.version() + 1)));
        }
        let (actor, changes) = decode(entry)?;
        doc.restore_as(&actor, changes)
            .map_err(|r| corrupt(format!("the update of version {} does not apply: {r}", entry.version)))?;
    }
    let mut clients = snapshot.clients;
    for c in stored.clients {
        match clients.iter_mut().find(|k| k.id == c.id) {
            Some(k) => k.last_action = k.last_action.max(c.last_action),
            None => clients.push(c),
        }
    }
    Ok((doc, clients, stored.log))
}

/// Returns freed heap memory to the system (glibc keeps it otherwise): after a load's transient
/// copies, after an unload, after a session's large frame.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it has no
    // preconditions and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
