//! The rooms of a server and their whole life: loaded on first use ([`Loader`]), run by their
//! actor, unloaded when idle, found again after an unload.
//!
//! In a cluster ([`ClusterLink`]), a room another node holds is relayed (`relay.rs`) instead of
//! loaded, and a room loaded here also serves its clients on other nodes (`remote.rs`).
//!
//! Each room name has one slot: `Loading` (one task loads the room, later askers wait for it),
//! `Loaded` (the actor's handle) or `Unloading` (the actor saves the room; no one loads it again
//! before that is done, or the load would miss what the save writes). A slot is the room's own:
//! loading or saving one room never waits for another.
//!
//! Must not: hold its lock across an await, or know sessions and sockets.

use super::load::{LoadFailure, LoadedRoom, Loader};
use super::relay::{spawn_relay, RelaySeed};
use super::remote::{CallHandler, RemoteClients};
use super::stream::RoomStream;
use super::{RoomHandle, RoomSeed};
use crate::cluster::Bus;
use crate::limits::ServerLimits;
use crate::protocol::cluster::{requests_channel, stream_channel};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the server could not provide a room.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The room name is not 1-64 of `A-Z a-z 0-9 _ - .`.
    #[error("bad room name {0:?}")]
    BadRoomName(String),
    /// `rooms_max` rooms are loaded.
    #[error("too many rooms are loaded (limit {limit})")]
    TooManyRooms {
        /// The limit.
        limit: usize,
    },
    /// The room hook refused to create the room.
    #[error("room {room} refused: {reason}")]
    RoomRefused {
        /// Room name.
        room: String,
        /// The hook's words.
        reason: String,
    },
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Whether `name` is a valid room name.
pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Where one room name is in its life.
enum Slot {
    /// One task is loading the room (from the store, or building it); the others wait for `done`.
    Loading(Arc<Notify>),
    /// The room's actor runs.
    Loaded {
        /// Tells this actor apart from a later one of the same room.
        generation: u64,
        handle: RoomHandle,
    },
    /// The room's actor is saving it before it stops; loads wait for `done`. Not counted against
    /// `rooms_max`: the room is on its way out.
    Unloading(Arc<Notify>),
}

/// What a server in a cluster gives its rooms: the bus to the other nodes, and who runs the
/// service calls of clients on other nodes (set once the server exists).
#[derive(Clone)]
pub(crate) struct ClusterLink {
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) calls: Arc<OnceLock<CallHandler>>,
}

/// The loaded rooms of one server, by name.
pub(crate) struct Registry {
    loader: Loader,
    cluster: Option<ClusterLink>,
    limits: Arc<ServerLimits>,
    /// Rooms stop (saving first) when it is cancelled, and no room loads after.
    shutdown: CancellationToken,
    /// The room actors, for shutdown to wait on.
    tasks: TaskTracker,
    /// A std mutex: held only to read or change a slot, never across an await (loads and saves
    /// happen outside it, each holding only its own room's slot).
    slots: Mutex<HashMap<String, Slot>>,
    /// The next actor's generation.
    generation: AtomicU64,
}

impl Registry {
    pub(crate) fn new(
        loader: Loader,
        limits: Arc<ServerLimits>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        cluster: Option<ClusterLink>,
    ) -> Registry {
        let slots = Mutex::new(HashMap::new());
        Registry { loader, cluster, limits, shutdown, tasks, slots, generation: AtomicU64::new(0) }
    }

    /// The loaded room `name`, or the room loaded from the store (or created) now. Waits while
    /// the room is being loaded by someone else or saved by its unload.
    pub(crate) async fn room(self: &Arc<Self>, name: &str) -> Result<RoomHandle, ServerError> {
        if !valid_room_name(name) {
            return Err(ServerError::BadRoomName(name.to_owned()));
        }
        let claim = loop {
            let busy = {
                if self.shutdown.is_cancelled() {
                    return Err(ServerError::ShuttingDown);
                }
                let mut slots = self.slots.lock().map_err(|_| ServerError::ShuttingDown)?;
                match slots.get(name) {
                    Some(Slot::Loaded { handle, .. }) => return Ok(handle.clone()),
                    // Created under the lock: the wakeup cannot come between looking and waiting.
                    Some(Slot::Loading(done) | Slot::Unloading(done)) => done.clone().notified_owned(),
                    None => {
                        // Counting is only needed near the limit.
                        if slots.len() >= self.limits.rooms_max
                            && slots.values().filter(|s| !matches!(s, Slot::Unloading(_))).count()
                                >= self.limits.rooms_max
                        {
                            return Err(ServerError::TooManyRooms { limit: self.limits.rooms_max });
                        }
                        let done = Arc::new(Notify::new());
                        slots.insert(name.to_owned(), Slot::Loading(done.clone()));
                        break Claim { registry: self.clone(), name: name.to_owned(), done };
                    }
                }
            };
            // Then look again: loaded, or free to load (a failed load, a finished unload).
            busy.await;
        };
        // A failed (or abandoned) load drops the claim: the slot is freed and the next asker
        // tries again.
        let loaded = match self.loader.load(name).await {
            Ok(loaded) => loaded,
            Err(LoadFailure::Refused(e)) => return Err(e),
            Err(LoadFailure::HeldElsewhere(e)) => {
                self.loader.metrics.held_elsewhere.inc();
                return match &self.cluster {
                    Some(cluster) => self.relay(name, cluster, claim).await,
                    None => Err(self.loader.failed(name, e)),
                };
            }
        };
        if self.loader.store.epoch(name).is_some() {
            self.loader.metrics.lease_claims.inc();
        }
        let LoadedRoom { doc, clients, clients_floor, log } = loaded;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        // In a cluster, the room's requests are heard from before anyone can find it here.
        let remote = match &self.cluster {
            Some(c) => match c.bus.subscribe(&requests_channel(name)).await {
                Ok(requests) => Some((
                    c.clone(),
                    requests,
                    RoomStream::new(c.bus.clone(), name, doc.version(), self.loader.store.epoch(name)),
                )),
                Err(e) => {
                    tracing::warn!(room = name, error = %e, "the bus failed: the room serves this node's clients only");
                    None
                }
            },
            None => None,
        };
        let seed = RoomSeed {
            name: name.into(),
            generation,
            doc,
            clients,
            clients_floor,
            log,
            store: self.loader.store.clone(),
            registry: Arc::downgrade(self),
            stream: remote.as_ref().map(|(_, _, stream)| stream.clone()),
        };
        let (handle, task) =
            super::spawn(seed, self.limits.clone(), self.loader.metrics.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            let _ = task.await;
        });
        if let Some((cluster, requests, stream)) = remote {
            let heartbeat = Duration::from_millis(self.limits.cluster_heartbeat_ms);
            let calls = cluster.calls.get().cloned();
            let clients =
                RemoteClients::new(handle.clone(), stream, cluster.bus, calls, heartbeat, self.loader.metrics.clone());
            let tx = handle.tx.clone();
            self.tasks.spawn(async move { clients.run(requests, async move { tx.closed().await }).await });
        }
        self.install(name, generation, handle, claim)
    }

    /// Room `name` if it is loaded (its actor or relay), without loading it.
    pub(crate) fn loaded(&self, name: &str) -> Option<RoomHandle> {
        match self.slots.lock().ok()?.get(name) {
            Some(Slot::Loaded { handle, .. }) => Some(handle.clone()),
            _ => None,
        }
    }

    /// Starts the relay of room `name`, held by another node, in the slot `claim` holds.
    async fn relay(
        self: &Arc<Self>,
        name: &str,
        cluster: &ClusterLink,
        claim: Claim,
    ) -> Result<RoomHandle, ServerError> {
        let stream = cluster.bus.subscribe(&stream_channel(name)).await.map_err(|e| ServerError::RoomRefused {
            room: name.to_owned(),
            reason: format!("another node holds the room, and the bus to it failed: {e}"),
        })?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let seed = RelaySeed {
            name: name.into(),
            generation,
            registry: Arc::downgrade(self),
            bus: cluster.bus.clone(),
            store: self.loader.store.clone(),
            stream,
            heartbeat: Duration::from_millis(self.limits.cluster_heartbeat_ms),
        };
        let (handle, task) = spawn_relay(seed, self.limits.clone(), self.loader.metrics.clone(), self.shutdown.clone());
        self.tasks.spawn(async move {
            let _ = task.await;
        });
        self.install(name, generation, handle, claim)
    }

    /// Puts the running actor (or relay) in the slot `claim` holds.
    fn install(
        &self,
        name: &str,
        generation: u64,
        handle: RoomHandle,
        claim: Claim,
    ) -> Result<RoomHandle, ServerError> {
        self.slots
            .lock()
            .map_err(|_| ServerError::ShuttingDown)?
            .insert(name.to_owned(), Slot::Loaded { generation, handle: handle.clone() });
        drop(claim);
        Ok(handle)
    }

    /// Marks room `name` as unloading if `generation` is its loaded actor: no one loads it until
    /// the returned claim is dropped (after the save). `None` if another actor replaced this one.
    pub(crate) fn begin_unload(self: &Arc<Self>, name: &str, generation: u64) -> Option<Claim> {
        let mut slots = self.slots.lock().ok()?;
        if !matches!(slots.get(name), Some(Slot::Loaded { generation: g, .. }) if *g == generation) {
            return None;
        }
        let done = Arc::new(Notify::new());
        slots.insert(name.to_owned(), Slot::Unloading(done.clone()));
        Some(Claim { registry: self.clone(), name: name.to_owned(), done })
    }

    /// Removes room `name` if `generation` is its loaded actor (a room whose store failed: the
    /// next join loads it from what the store has).
    pub(crate) fn unregister(&self, name: &str, generation: u64) -> bool {
        let Ok(mut slots) = self.slots.lock() else { return false };
        match slots.get(name) {
            Some(Slot::Loaded { generation: g, .. }) if *g == generation => {
                slots.remove(name);
                true
            }
            _ => false,
        }
    }

    /// Forgets every room (after shutdown, once the actors have stopped).
    pub(crate) fn clear(&self) {
        self.slots.lock().map(|mut s| s.clear()).ok();
    }
}

/// A `Loading` or `Unloading` slot this task fills. Dropping it wakes everyone waiting on the
/// slot and, if the slot is still this one (the load failed or was abandoned, the unload is
/// done), frees the name: a panic or a dropped future cannot leave a room stuck.
pub(crate) struct Claim {
    registry: Arc<Registry>,
    name: String,
    done: Arc<Notify>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.registry.slots.lock() {
            let ours = matches!(
                slots.get(&self.name),
                Some(Slot::Loading(done) | Slot::Unloading(done)) if Arc::ptr_eq(done, &self.done)
            );
            if ours {
                slots.remove(&self.name);
            }
        }
        self.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(valid_room_name("demo-1.a_b"));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name("a/b"));
        assert!(!valid_room_name(&"x".repeat(65)));
    }
}
