//! What a room's actor starts from: a stored room turned into its document (the snapshot, then
//! every logged update after it), the clients it knows and the log kept for resuming clients; or
//! a room the store does not have, built by the room hook and stored.
//!
//! Must not: keep state between loads, or know the registry's slots and sessions (the registry
//! calls it while it holds the room's slot).

use super::ServerError;
use crate::limits::ModelLimits;
use crate::metrics::Metrics;
use crate::model::{
    migrate_snapshot, Actor, Change, Document, MigrationReport, ModelError, Tx, TypeRegistry, FIRST_SCHEMA_VERSION,
};
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
        let (doc, clients, clients_floor, log) = match stored {
            Some(stored) => {
                let room = self.restore(name, stored).await?;
                (room.doc, room.clients, room.clients_floor, room.log)
            }
            None => {
                let mut doc = Document::with_limits(self.types.clone(), self.model_limits.clone());
                if let Some(init) = &self.room_init {
                    doc.transact(&Actor::Server, |tx| init(name, tx)).map_err(|r| refused(r.to_string()))?;
                }
                if self.store.durable() {
                    // A stored room always starts from a snapshot: the log holds only what follows.
                    let snapshot = RoomSnapshot {
                        doc: doc.snapshot(),
                        clients: Vec::new(),
                        clients_floor: 0,
                        schema: Some(self.types.schema()),
                    };
                    self.store.save_snapshot(name, &snapshot, 0).await.map_err(|e| refused(e.to_string()))?;
                }
                (doc, Vec::new(), 0, Vec::new())
            }
        };
        // Building or loading a room makes transient copies of it (the stored or built snapshot,
        // its checked form); give that memory back to the system instead of keeping it.
        release_free_memory();
        Ok(LoadedRoom { doc, clients, clients_floor, log })
    }

    /// A stored room rebuilt, and migrated if it was stored at an earlier schema version; a
    /// snapshot recording this build's types is stored at once when the stored one does not
    /// (the room stays as it was stored if that fails).
    async fn restore(&self, name: &str, stored: StoredRoom) -> Result<RestoredRoom, LoadFailure> {
        let room = load_room(&self.types, &self.model_limits, name, stored).map_err(|e| self.failed(name, e))?;
        if let Some((snapshot, compact_to)) = room.snapshot_to_store(&self.types) {
            self.store.save_snapshot(name, &snapshot, compact_to).await.map_err(|e| self.failed(name, e))?;
        }
        if let Some(m) = &room.migrated {
            tracing::info!(
                room = name,
                from = m.from,
                to = m.to,
                changed = m.changed,
                removed = m.removed,
                added = m.added,
                "migrated the room to this build's schema version and stored it"
            );
            self.metrics.room_migrations.inc();
        }
        Ok(room)
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

/// A stored room rebuilt by [`load_room`].
#[derive(Debug)]
pub struct RestoredRoom {
    /// The document, at this build's schema version.
    pub doc: Document,
    /// The clients the room knows (from the snapshot and the log).
    pub clients: Vec<KnownClient>,
    /// See [`RoomSnapshot::clients_floor`].
    pub clients_floor: u64,
    /// The stored log kept for resuming clients, oldest first (empty after a migration: no
    /// catch-up crosses schema versions, a client resuming from before it gets a snapshot).
    pub log: Vec<LogEntry>,
    /// What the migrations did, if the room was stored at an earlier schema version. Its
    /// version is then one more than the stored room's.
    pub migrated: Option<MigrationReport>,
    /// The stored snapshot does not record this build's types as they are (a migration, types
    /// recorded before, or none recorded): the loader stores a new snapshot at once, before
    /// anything is logged with these types.
    pub store_snapshot: bool,
}

impl RestoredRoom {
    /// The snapshot to store at once ([`store_snapshot`](Self::store_snapshot)), recording
    /// `types`, with the version the log may be compacted to: after a migration the log before
    /// it goes (no catch-up crosses versions); otherwise it stays for resuming clients.
    pub(crate) fn snapshot_to_store(&self, types: &TypeRegistry) -> Option<(RoomSnapshot, u64)> {
        self.store_snapshot.then(|| {
            let snapshot = RoomSnapshot {
                doc: self.doc.snapshot(),
                clients: self.clients.clone(),
                clients_floor: self.clients_floor,
                schema: Some(types.schema()),
            };
            (snapshot, if self.migrated.is_some() { self.doc.version() } else { 0 })
        })
    }
}

/// Rebuilds a stored room: its snapshot, then every logged update after it, in order; a room
/// stored at an earlier schema version is replayed with the types it recorded and then
/// migrated by `types`' migrations ([`crate::model::Migration`]), checked against `types` and
/// their validators. A gap or an update that does not apply is corruption, reported with the
/// room and version.
///
/// # Errors
///
/// [`StoreError::Corrupt`] if there is no snapshot, the snapshot is invalid, or an update is
/// missing, does not parse or does not apply; [`StoreError::Incompatible`] if the room was
/// stored with types `types` cannot read and no migration bridges them (or one failed), naming
/// the type and attribute, both versions and what to write.
pub fn load_room(
    types: &Arc<TypeRegistry>,
    limits: &ModelLimits,
    room: &str,
    stored: StoredRoom,
) -> Result<RestoredRoom, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { room: room.into(), reason };
    let snapshot = stored.snapshot.ok_or_else(|| corrupt("the log has no snapshot to start from".into()))?;
    let clients_floor = snapshot.clients_floor;
    let stored_version = snapshot.schema.as_ref().map_or(FIRST_SCHEMA_VERSION, |s| s.version);
    let code = types.schema_version();
    let incompatible =
        |reason: String| StoreError::Incompatible { room: room.into(), stored: stored_version, code, reason };
    let recorded_as_now = snapshot.schema.as_ref().is_some_and(|s| *s == types.schema());
    let mut clients = snapshot.clients.clone();
    for c in &stored.clients {
        match clients.iter_mut().find(|k| k.id == c.id) {
            Some(k) => k.last_action = k.last_action.max(c.last_action),
            None => clients.push(c.clone()),
        }
    }
    if stored_version > code {
        return Err(incompatible(
            "it was written by a later build of this application (rooms are never migrated back): run that build"
                .into(),
        ));
    }
    if stored_version == code {
        let doc = replay(types, limits, room, snapshot.doc, &stored.log).map_err(|e| match (&snapshot.schema, e) {
            // Types that changed without a new version explain the failure better than the
            // failure itself.
            (Some(recorded), StoreError::Corrupt { reason, .. }) if recorded.fingerprint() != types.fingerprint() => {
                incompatible(unversioned_change(recorded, &types.schema(), &reason))
            }
            // Stored before rooms recorded their types: a change of the types is as likely.
            (None, StoreError::Corrupt { reason, .. }) => incompatible(format!(
                "{reason}; it was stored before rooms recorded their types: if they changed since, declare \
                 TypeRegistry::version({}) and register Migration::from_version({code}) saying what became of them",
                code + 1
            )),
            (_, e) => e,
        })?;
        return Ok(RestoredRoom {
            doc,
            clients,
            clients_floor,
            log: stored.log,
            migrated: None,
            store_snapshot: !recorded_as_now,
        });
    }
    // Stored at an earlier version: the room as it was, by the types it recorded.
    let at_stored = match &snapshot.schema {
        Some(recorded) => {
            let old = TypeRegistry::of_schema(recorded).map_err(|e| corrupt(format!("its recorded types: {e}")))?;
            replay(&Arc::new(old), limits, room, snapshot.doc, &stored.log)?.snapshot()
        }
        None if stored.log.iter().all(|e| e.version <= snapshot.doc.version) => snapshot.doc,
        None => {
            return Err(incompatible(
                "it was stored before rooms recorded their types, with updates after its last snapshot: \
                 load it once with the types that wrote it, on this release (`migrate` with those types \
                 records them in every room), then with the new ones"
                    .into(),
            ))
        }
    };
    let (mut migrated, report) = migrate_snapshot(types, limits, &at_stored, stored_version).map_err(incompatible)?;
    migrated.version = at_stored.version + 1;
    let doc = Document::from_snapshot(types.clone(), limits.clone(), migrated).map_err(|e| {
        incompatible(format!("after the migrations it does not fit the types: {e} (write the step that makes it fit)"))
    })?;
    doc.check_validators().map_err(|e| incompatible(format!("after the migrations a validator refuses it: {e}")))?;
    Ok(RestoredRoom { doc, clients, clients_floor, log: Vec::new(), migrated: Some(report), store_snapshot: true })
}

/// Why a room stored at this build's schema version does not load, when its recorded types
/// differ from this build's: the differences, and what to write.
fn unversioned_change(recorded: &crate::model::Schema, code: &crate::model::Schema, failure: &str) -> String {
    let diffs = crate::model::schema_differences(recorded, code);
    format!(
        "{failure}; the types changed since it was stored ({}) but the schema version is still {v}: \
         declare TypeRegistry::version({next}) and register Migration::from_version({v}) saying what became of them",
        diffs.join(", "),
        v = code.version,
        next = code.version + 1,
    )
}

/// The document of `snapshot` with every logged update after it applied, read with `types`.
fn replay(
    types: &Arc<TypeRegistry>,
    limits: &ModelLimits,
    room: &str,
    snapshot: crate::model::DocSnapshot,
    log: &[LogEntry],
) -> Result<Document, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { room: room.into(), reason };
    let mut doc = Document::from_snapshot(types.clone(), limits.clone(), snapshot)
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
    let contained: Vec<(u64, Actor, Vec<Change>)> = log
        .iter()
        .filter(|e| e.version <= start)
        .map(|e| decode(e).map(|(actor, changes)| (e.version, actor, changes)))
        .collect::<Result<_, _>>()?;
    doc.restore_histories(&contained);
    drop(contained);
    for entry in log.iter().filter(|e| e.version > start) {
        if entry.version != doc.version() + 1 {
            return Err(corrupt(format!("version {} is missing from the log", doc.version() + 1)));
        }
        if entry.schema_version != types.schema_version() {
            return Err(corrupt(format!(
                "the update of version {} was written at schema version {}, its snapshot at {}",
                entry.version,
                entry.schema_version,
                types.schema_version()
            )));
        }
        let (actor, changes) = decode(entry)?;
        doc.restore_as(&actor, changes)
            .map_err(|r| corrupt(format!("the update of version {} does not apply: {r}", entry.version)))?;
    }
    Ok(doc)
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
