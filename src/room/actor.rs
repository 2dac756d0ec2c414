//! The actor: [`RoomState`] (everything one room owns), starting it ([`spawn`]) and its loop:
//! commands in arrival order (a few at a time, then what they produced is sent together), store
//! operations finishing, unloading when idle, saving on shutdown.
//!
//! Must not: block on a socket or hold a lock across an await; what a command does lives beside it
//! (`apply.rs`, `join.rs`), as do the store pipeline (`durability.rs`) and sending (`fanout.rs`).

use super::durability::{poll_op, Held, StoreOp};
use super::join::{JoinReply, Known};
use super::stream::RoomStream;
use super::{release_free_memory, ClientId, Command, Frame, JoinError, JoinRequest, Registry, RoomHandle, SessionLink};
use crate::limits::ServerLimits;
use crate::metrics::Metrics;
use crate::model::{Document, Identity, UndoHistory, Value};
use crate::protocol::close;
use crate::protocol::ClientMessage;
use crate::store::{KnownClient, LogEntry, Store, WriteBatch};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A client connected to the room, through its session.
pub(super) struct Connected {
    /// Accepts several messages in one `batch` frame.
    pub(super) batch: bool,
    pub(super) link: SessionLink,
    pub(super) read_only: bool,
    pub(super) presence: Value,
    pub(super) identity: Option<Arc<Identity>>,
}

/// Commands handled per wakeup before what they produced is sent (bounds the delay a batch adds).
const COMMANDS_PER_WAKEUP_MAX: usize = 64;

/// The state one room's actor owns.
pub(crate) struct RoomState {
    pub(super) name: Arc<str>,
    /// Tells this actor apart from a later one of the same room.
    pub(super) generation: u64,
    pub(super) store: Arc<dyn Store>,
    /// To leave it when unloading or when the store fails.
    pub(super) registry: Weak<Registry>,
    /// Resume tokens are derived from it and the client id: nothing to store per client.
    pub(super) secret: [u8; 32],
    /// Updates are broadcast only once durable (a durable store); else at once.
    pub(super) durable: bool,
    /// Written to the store next.
    pub(super) unsynced: WriteBatch,
    /// The number of the batch `unsynced` will be written as (store batches are numbered 1, 2,
    /// ... in the order they are written, one at a time).
    pub(super) batch_seq: u64,
    /// Messages waiting for their version to be durable.
    pub(super) held: VecDeque<Held>,
    /// Bytes of `held`: past `room_held_bytes_max` the actor takes no more commands until the
    /// store catches up (senders wait, their sessions stop reading: backpressure to clients).
    pub(super) held_bytes: usize,
    /// One store operation at a time, so the store sees a room's writes in order.
    pub(super) inflight: Option<StoreOp>,
    /// Joins wait while updates are held: a welcome shows only durable state.
    pub(super) deferred_joins: Vec<(JoinRequest, SessionLink, JoinReply)>,
    pub(super) updates_since_snapshot: u64,
    pub(super) last_snapshot: Instant,
    /// Messages for everyone (with the version of a logged update), gathered while the actor
    /// works through what is waiting, then sent together: one `batch` frame for clients that
    /// take them.
    pub(super) outbox: Vec<(Frame, Option<u64>)>,
    /// The room's stream to its clients on other nodes (in a cluster).
    pub(super) stream: Option<Arc<RoomStream>>,
    pub(super) doc: Document,
    pub(super) undo: UndoHistory,
    pub(super) clients: HashMap<ClientId, Connected>,
    pub(super) known: HashMap<ClientId, Known>,
    /// See [`RoomSnapshot::clients_floor`].
    pub(super) clients_floor: u64,
    /// The last updates, for resuming clients: (version, encoded update).
    pub(super) log: VecDeque<(u64, Frame)>,
    pub(super) log_bytes: usize,
    pub(super) limits: Arc<ServerLimits>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) epoch: Instant,
}

/// What a room's actor starts from.
pub(crate) struct RoomSeed {
    pub(crate) name: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) doc: Document,
    pub(crate) clients: Vec<KnownClient>,
    /// See [`RoomSnapshot::clients_floor`].
    pub(crate) clients_floor: u64,
    /// Stored updates (for resuming clients), oldest first.
    pub(crate) log: Vec<LogEntry>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Weak<Registry>,
    /// In a cluster: the stream to the room's clients on other nodes.
    pub(crate) stream: Option<Arc<RoomStream>>,
}

/// Starts a room's actor; returns its handle and the task's join handle.
pub(crate) fn spawn(
    seed: RoomSeed,
    limits: Arc<ServerLimits>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    let RoomSeed { name, generation, doc, clients, clients_floor, log, store, registry, stream } = seed;
    let (handle, rx) = RoomHandle::with_inbox(name.clone(), registry.clone(), &limits, false);
    // When a stored client last acted is not stored: at most now.
    let loaded_at = doc.version();
    let known =
        clients.into_iter().map(|c| (c.id, Known { last_action: c.last_action, last_version: loaded_at })).collect();
    let mut resume_log = VecDeque::new();
    let mut log_bytes = 0;
    for e in log.into_iter().filter(|e| e.version <= doc.version()) {
        let origin = e.origin.as_deref().unwrap_or("server");
        let frame = Frame::from(crate::protocol::encode_update_of(e.version, origin, e.action, &e.changes, false));
        log_bytes += frame.len();
        resume_log.push_back((e.version, frame));
    }
    let mut state = RoomState {
        name: name.clone(),
        generation,
        secret: store.secret(),
        durable: store.durable(),
        unsynced: WriteBatch::default(),
        batch_seq: 1,
        held: VecDeque::new(),
        held_bytes: 0,
        inflight: None,
        deferred_joins: Vec::new(),
        updates_since_snapshot: 0,
        last_snapshot: Instant::now(),
        outbox: Vec::new(),
        stream,
        store,
        registry: registry.clone(),
        undo: UndoHistory::new(doc.limits()),
        doc,
        clients: HashMap::new(),
        known,
        clients_floor,
        log: resume_log,
        log_bytes,
        limits,
        metrics,
        epoch: Instant::now(),
    };
    state.trim_log();
    let span = tracing::info_span!("room", room = %name);
    let task = tokio::spawn(tracing::Instrument::instrument(state.run(rx, shutdown), span));
    (handle, task)
}

impl RoomState {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        self.metrics.rooms.inc();
        tracing::debug!("room loaded");
        let grace = Duration::from_millis(self.limits.room_unload_grace_ms);
        let mut idle_since = tokio::time::Instant::now();
        loop {
            let unload_at = idle_since + grace;
            let idle = self.clients.is_empty() && self.inflight.is_none() && self.held.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                done = poll_op(&mut self.inflight) => {
                    self.inflight = None;
                    if let Err(e) = self.store_done(done) {
                        tracing::error!(error = %e, "the store failed; closing the room");
                        self.fail(&e);
                        self.metrics.rooms.dec();
                        return;
                    }
                }
                cmd = rx.recv(), if self.held_bytes <= self.limits.room_held_bytes_max => {
                    let Some(cmd) = cmd else { break };
                    self.handle(cmd);
                    // Work through what else is already waiting, then send it all together.
                    for _ in 1..COMMANDS_PER_WAKEUP_MAX {
                        if self.held_bytes > self.limits.room_held_bytes_max {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(cmd) => self.handle(cmd),
                            Err(_) => break,
                        }
                    }
                    self.flush_outbox();
                    idle_since = tokio::time::Instant::now();
                }
                _ = tokio::time::sleep_until(unload_at), if idle => {
                    if self.unload(&mut rx).await {
                        self.metrics.rooms.dec();
                        return;
                    }
                    idle_since = tokio::time::Instant::now();
                }
            }
            self.start_store_op();
        }
        for (_, c) in self.clients.drain() {
            // Clients of other nodes are not closed: once the room is saved and given up, their
            // relays are told (remote.rs) and move them to the room's next home.
            if !c.link.out.is_remote() {
                c.link.closer.close(close::GOING_AWAY, "the server is shutting down");
            }
        }
        self.save().await;
        self.metrics.rooms.dec();
        tracing::debug!("room stopped");
    }

    /// Saves the room and leaves the registry; until the save is done no one can load it (other
    /// rooms load and save meanwhile). Commands already queued are handled first (server code
    /// runs; joins are told to retry). `false` if the server is gone or another actor replaced
    /// this one.
    pub(super) async fn unload(&mut self, rx: &mut mpsc::Receiver<Command>) -> bool {
        let Some(registry) = self.registry.upgrade() else { return false };
        // Held until this returns: the room's slot stays `Unloading` through the save.
        let Some(_unloading) = registry.begin_unload(&self.name, self.generation) else { return false };
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Join { reply, .. } => {
                    let _ = reply.send(Err(JoinError::Unloaded));
                }
                Command::Run(job) => job(self),
                _ => {}
            }
        }
        self.save().await;
        tracing::debug!("room unloaded");
        // The room's document, logs and histories are freed when this actor ends: give that
        // memory back to the system (an idle server returns near its starting size).
        tokio::task::spawn_blocking(release_free_memory);
        true
    }

    pub(super) fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Join { request, link, reply } => {
                if self.held.is_empty() {
                    let r = self.join(request, link);
                    let _ = reply.send(r);
                } else {
                    self.deferred_joins.push((request, link, reply));
                }
            }
            Command::Leave { client, connection } => {
                if self.clients.get(&client).is_some_and(|c| c.link.connection == connection) {
                    self.drop_client(&client, None);
                }
            }
            Command::Action { client, id, base, changes, step, permit } => {
                self.action(client, id, base, changes, step.as_deref());
                drop(permit);
            }
            Command::Undo { client, id, scope, redo } => self.undo(client, id, scope, redo),
            Command::Presence { client, state, permit } => {
                self.presence(client, state);
                drop(permit);
            }
            Command::Forward { client, text, permit, .. } => {
                self.forwarded(client, &text);
                drop(permit);
            }
            Command::Run(job) => job(self),
        }
    }

    /// A message forwarded by a session that took this room for one held elsewhere (its relay
    /// moved it here): applied like the session would have sent it. Its session runs service
    /// calls itself once the room is here; one that was on its way when the room came is
    /// answered `unavailable` (the client may call again).
    pub(super) fn forwarded(&mut self, client: ClientId, text: &str) {
        match crate::protocol::decode_client(text) {
            Ok(ClientMessage::Action { id, base, changes, step }) => {
                self.action(client, id, base, changes, step.as_deref())
            }
            Ok(ClientMessage::Undo { id, scope }) => self.undo(client, id, scope, false),
            Ok(ClientMessage::Redo { id, scope }) => self.undo(client, id, scope, true),
            Ok(ClientMessage::Presence { state }) => self.presence(client, state),
            Ok(ClientMessage::Call { id, .. }) => {
                let reason = "the room moved to this client's node while the call was on its way; call again";
                self.send_to(&client, crate::protocol::encode_result(id, Err(("unavailable", reason))).into());
            }
            _ => {}
        }
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}
