//! One actor per room: [`RoomHandle`] is how everything else reaches it. The room owns its whole
//! life: `registry.rs` loads it on first use (through `load.rs`), finds it again and unloads it;
//! `outbound.rs` is a session's bounded queue.
//!
//! The actor owns the room's [`Document`] and [`UndoHistory`] and is the only code that touches
//! them. It applies commands in arrival order, encodes each resulting message **once**, keeps the
//! last updates for resuming clients, and hands the same shared bytes to every session's bounded
//! queue. A session whose queue is full is cut off (close 4003) instead of slowing the room or
//! growing memory; it can resume from its last version.
//!
//! Must not: block on a socket, hold a lock across an await, know the wire beyond `protocol`'s
//! encoders, or reach into `server` (the server uses rooms, never the other way).

mod load;
mod outbound;
mod registry;

pub use load::load_room;
pub(crate) use load::{release_free_memory, Loader, RoomInitFn};
pub(crate) use outbound::{channel as outbound_channel, OutboundBudget, OutboundReceiver, OutboundSender, QueueFull};
pub(crate) use registry::Registry;
pub use registry::{valid_room_name, ServerError};

use crate::limits::ServerLimits;
use crate::metrics::Metrics;
use crate::model::{
    Actor, Change, Document, Identity, ModelError, ObjId, Rejection, Transition, Tx, UndoHistory, Value,
};
use crate::protocol::{self, close, Resume};
use crate::store::{KnownClient, LogEntry, RoomSnapshot, Store, StoreError, WriteBatch};
use compact_str::CompactString;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

/// A client id, unique in its room.
pub type ClientId = CompactString;

/// One encoded server message, shared by every session it goes to.
pub(crate) type Frame = Utf8Bytes;

/// Lets the room (or the session itself) end a session with a close code and reason.
#[derive(Default)]
pub(crate) struct Closer {
    token: CancellationToken,
    reason: OnceLock<(u16, String)>,
}

impl Closer {
    /// Asks the session to close with `code` (the first reason given wins); `true` if this call
    /// gave the reason (so a client cut off by several senders at once is counted once).
    pub(crate) fn close(&self, code: u16, reason: impl Into<String>) -> bool {
        let first = self.reason.set((code, reason.into())).is_ok();
        self.token.cancel();
        first
    }
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
    pub(crate) fn reason(&self) -> Option<&(u16, String)> {
        self.reason.get()
    }
}

/// What a session gives the room: its outbound queue and its closer.
#[derive(Clone)]
pub(crate) struct SessionLink {
    /// Tells this connection apart from a newer one of the same client (a resume while the old
    /// socket is still open): the old session's leave must not remove the new one.
    pub(crate) connection: ConnectionId,
    pub(crate) out: OutboundSender,
    pub(crate) closer: Arc<Closer>,
}

/// A client message's bytes, held against its room's `room_inbox_bytes_max` until the room has
/// handled it.
pub(crate) type InboxPermit = tokio::sync::OwnedSemaphorePermit;

/// A connection's number, unique in the process.
pub(crate) type ConnectionId = u64;

/// A new connection number.
pub(crate) fn next_connection_id() -> ConnectionId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A join as the session asks for it (after the auth hook said yes).
pub(crate) struct JoinRequest {
    pub(crate) resume: Option<Resume>,
    pub(crate) read_only: bool,
    /// The client accepts `batch` messages.
    pub(crate) batch: bool,
    /// The client accepts snapshots in the compact form.
    pub(crate) compact_snapshots: bool,
    /// Who the client is (the auth hook's word); `None` for an anonymous client.
    pub(crate) identity: Option<Arc<Identity>>,
}

/// Why a room refused a join.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum JoinError {
    #[error("room {room} is full ({limit} clients)")]
    Full { room: String, limit: usize },
    #[error("could not send the welcome: the connection is not reading")]
    NotReading,
    /// The room was being unloaded; asking the server again loads it afresh.
    #[error("the room was unloaded; try again")]
    Unloaded,
}

type Job = Box<dyn FnOnce(&mut RoomState) + Send>;

pub(crate) enum Command {
    Join {
        request: JoinRequest,
        link: SessionLink,
        reply: oneshot::Sender<Result<ClientId, JoinError>>,
    },
    /// The connection `connection` of `client` ended (ignored if a newer one replaced it).
    Leave {
        client: ClientId,
        connection: ConnectionId,
    },
    Action {
        client: ClientId,
        id: u64,
        base: u64,
        changes: Vec<Change>,
        /// The message's bytes, held against `room_inbox_bytes_max` until handled.
        permit: InboxPermit,
    },
    Undo {
        client: ClientId,
        id: u64,
        scope: Option<ObjId>,
        redo: bool,
    },
    Presence {
        client: ClientId,
        state: Value,
        permit: InboxPermit,
    },
    Run(Job),
}

/// Why a call through a [`RoomHandle`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The room's actor has stopped (server shutting down).
    #[error("room {room} is closed")]
    Closed {
        /// Room name.
        room: String,
    },
    /// The transaction was refused; nothing changed.
    #[error("room {room}: {rejection}")]
    Rejected {
        /// Room name.
        room: String,
        /// Why.
        rejection: Rejection,
    },
}

/// A handle to a running room: server code changes and reads the room through it. Cheap to
/// clone; every call is a message to the room's actor, ordered with everything else.
#[derive(Clone)]
pub struct RoomHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Command>,
    /// Bytes of client messages waiting in the inbox (`room_inbox_bytes_max`).
    inbox_bytes: Arc<tokio::sync::Semaphore>,
    inbox_bytes_max: usize,
    /// To find the room again after it was unloaded.
    registry: Weak<Registry>,
}

impl std::fmt::Debug for RoomHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHandle").field("name", &self.name).finish()
    }
}

impl RoomHandle {
    /// The room's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` as one transaction by the server and broadcasts the result to every client like
    /// any other update; returns what `f` returned.
    pub async fn transact<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, ModelError> + Send + 'static,
    ) -> Result<R, RoomError> {
        let (reply, rx) = oneshot::channel();
        let room = self.name.to_string();
        self.run(Box::new(move |state: &mut RoomState| {
            let _ = reply.send(state.server_transact(f));
        }))
        .await?;
        rx.await
            .map_err(|_| RoomError::Closed { room: room.clone() })?
            .map_err(|rejection| RoomError::Rejected { room, rejection })
    }

    /// Reads the document (e.g. to snapshot it) in order with everything else.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Document) -> R + Send + 'static,
    ) -> Result<R, RoomError> {
        let (reply, rx) = oneshot::channel();
        self.run(Box::new(move |state: &mut RoomState| {
            let _ = reply.send(f(&state.doc));
        }))
        .await?;
        rx.await.map_err(|_| self.closed())
    }

    async fn run(&self, job: Job) -> Result<(), RoomError> {
        self.send(Command::Run(job)).await
    }

    /// Sends a command; if this room was unloaded meanwhile, to the room loaded afresh.
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), RoomError> {
        let cmd = match self.tx.send(cmd).await {
            Ok(()) => return Ok(()),
            Err(mpsc::error::SendError(cmd)) => cmd,
        };
        let registry = self.registry.upgrade().ok_or_else(|| self.closed())?;
        let fresh = registry.room(&self.name).await.map_err(|_| self.closed())?;
        fresh.tx.send(cmd).await.map_err(|_| self.closed())
    }

    /// Waits until a client message of `bytes` fits in the room's inbox: a session whose room
    /// is behind stops reading its socket here (backpressure) instead of queueing without bound.
    pub(crate) async fn inbox_permit(&self, bytes: usize) -> Result<InboxPermit, RoomError> {
        let n = u32::try_from(bytes.clamp(1, self.inbox_bytes_max)).expect("invariant: inbox_bytes_max fits a u32");
        self.inbox_bytes.clone().acquire_many_owned(n).await.map_err(|_| self.closed())
    }

    fn closed(&self) -> RoomError {
        RoomError::Closed { room: self.name.to_string() }
    }
}

struct Connected {
    /// Accepts several messages in one `batch` frame.
    batch: bool,
    link: SessionLink,
    read_only: bool,
    presence: Value,
    identity: Option<Arc<Identity>>,
}

struct Known {
    /// Highest action id processed (applied or refused).
    last_action: u64,
    /// A version at or after that action's (for forgetting the oldest clients first).
    last_version: u64,
}

/// A message waiting for the store: released, in order, once its version is durable.
struct Held {
    /// The store batch ([`RoomState::batch_seq`]) that must be committed first: the one holding
    /// this update or the reject's client record, or a batch before it (keeping the order).
    batch: u64,
    frame: Frame,
    /// `None`: to everyone; `Some`: to one client (a reject).
    to: Option<ClientId>,
}

/// Where a join's outcome goes.
type JoinReply = oneshot::Sender<Result<ClientId, JoinError>>;

/// Store work in flight: resolves to the number of the batch now committed (`None` for a snapshot).
type StoreOp = Pin<Box<dyn Future<Output = Result<Option<u64>, StoreError>> + Send>>;

/// Commands handled per wakeup before what they produced is sent (bounds the delay a batch adds).
const COMMANDS_PER_WAKEUP_MAX: usize = 64;
/// Messages in one `batch` frame at most.
const BATCH_MESSAGES_MAX: usize = 256;

/// Updates between snapshots; the log is compacted behind each snapshot.
const SNAPSHOT_EVERY_UPDATES: u64 = 1000;
/// Time between snapshots of a room that changed.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(60);

/// The state one room's actor owns.
pub(crate) struct RoomState {
    name: Arc<str>,
    /// Tells this actor apart from a later one of the same room.
    generation: u64,
    store: Arc<dyn Store>,
    /// To leave it when unloading or when the store fails.
    registry: Weak<Registry>,
    /// Resume tokens are derived from it and the client id: nothing to store per client.
    secret: [u8; 32],
    /// Updates are broadcast only once durable (a durable store); else at once.
    durable: bool,
    /// Written to the store next.
    unsynced: WriteBatch,
    /// The number of the batch `unsynced` will be written as (store batches are numbered 1, 2,
    /// ... in the order they are written, one at a time).
    batch_seq: u64,
    /// Messages waiting for their version to be durable.
    held: VecDeque<Held>,
    /// Bytes of `held`: past `room_held_bytes_max` the actor takes no more commands until the
    /// store catches up (senders wait, their sessions stop reading: backpressure to clients).
    held_bytes: usize,
    /// One store operation at a time, so the store sees a room's writes in order.
    inflight: Option<StoreOp>,
    /// Joins wait while updates are held: a welcome shows only durable state.
    deferred_joins: Vec<(JoinRequest, SessionLink, JoinReply)>,
    updates_since_snapshot: u64,
    last_snapshot: Instant,
    /// Messages for everyone, gathered while the actor works through what is waiting, then
    /// sent together: one `batch` frame for clients that take them.
    outbox: Vec<Frame>,
    doc: Document,
    undo: UndoHistory,
    clients: HashMap<ClientId, Connected>,
    known: HashMap<ClientId, Known>,
    /// See [`RoomSnapshot::clients_floor`].
    clients_floor: u64,
    /// The last updates, for resuming clients: (version, encoded update).
    log: VecDeque<(u64, Frame)>,
    log_bytes: usize,
    limits: Arc<ServerLimits>,
    metrics: Arc<Metrics>,
    epoch: Instant,
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
}

/// Starts a room's actor; returns its handle and the task's join handle.
pub(crate) fn spawn(
    seed: RoomSeed,
    limits: Arc<ServerLimits>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(limits.room_inbox_len_max);
    // A message's permits are a u32: the bound is one too, so the largest message always fits.
    let inbox_bytes_max =
        limits.room_inbox_bytes_max.clamp(1, u32::MAX as usize).min(tokio::sync::Semaphore::MAX_PERMITS);
    let RoomSeed { name, generation, doc, clients, clients_floor, log, store, registry } = seed;
    // When a stored client last acted is not stored: at most now.
    let loaded_at = doc.version();
    let known =
        clients.into_iter().map(|c| (c.id, Known { last_action: c.last_action, last_version: loaded_at })).collect();
    let mut resume_log = VecDeque::new();
    let mut log_bytes = 0;
    for e in log.into_iter().filter(|e| e.version <= doc.version()) {
        log_bytes += e.frame.len();
        resume_log.push_back((e.version, Frame::from(e.frame)));
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
    let inbox_bytes = Arc::new(tokio::sync::Semaphore::new(inbox_bytes_max));
    (RoomHandle { name, tx, registry, inbox_bytes, inbox_bytes_max }, task)
}

impl RoomState {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
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
            c.link.closer.close(close::GOING_AWAY, "the server is shutting down");
        }
        self.save().await;
        self.metrics.rooms.dec();
        tracing::debug!("room stopped");
    }

    /// Handles a finished store operation: releases what is now durable.
    fn store_done(&mut self, done: Result<Option<u64>, StoreError>) -> Result<(), StoreError> {
        let Some(committed) = done? else { return Ok(()) };
        while self.held.front().is_some_and(|h| h.batch <= committed) {
            let Some(h) = self.held.pop_front() else { break };
            self.held_bytes -= h.frame.len();
            self.metrics.held_bytes.dec_by(h.frame.len() as i64);
            match h.to {
                None => self.outbox.push(h.frame),
                Some(client) => self.send_to(&client, h.frame),
            }
        }
        self.flush_outbox();
        if self.held.is_empty() {
            for (request, link, reply) in std::mem::take(&mut self.deferred_joins) {
                let r = self.join(request, link);
                let _ = reply.send(r);
            }
        }
        Ok(())
    }

    /// Starts the next store operation if none is running: the pending updates, else a
    /// snapshot when one is due.
    fn start_store_op(&mut self) {
        if self.inflight.is_some() {
            return;
        }
        let store = self.store.clone();
        let name = self.name.to_string();
        if !self.unsynced.entries.is_empty() || !self.unsynced.clients.is_empty() {
            // Messages held for this batch (its updates, the rejects whose client records it
            // carries) are released once it commits.
            let seq = self.batch_seq;
            self.batch_seq += 1;
            let batch = std::mem::take(&mut self.unsynced);
            self.inflight = Some(Box::pin(async move { store.append(&name, batch).await.map(|()| Some(seq)) }));
            return;
        }
        let due = self.updates_since_snapshot >= SNAPSHOT_EVERY_UPDATES
            || (self.updates_since_snapshot > 0 && self.last_snapshot.elapsed() >= SNAPSHOT_EVERY);
        if self.durable && due && self.held.is_empty() {
            let snapshot = self.room_snapshot();
            let compact_to = self.doc.version().saturating_sub(self.limits.room_log_versions_max as u64);
            self.updates_since_snapshot = 0;
            self.last_snapshot = Instant::now();
            self.inflight =
                Some(Box::pin(async move { store.save_snapshot(&name, &snapshot, compact_to).await.map(|()| None) }));
        }
    }

    /// The store failed: what is held was never acknowledged. Close everyone, leave the
    /// registry; the next join loads the room from what the store has.
    fn fail(&mut self, e: &StoreError) {
        if let Some(registry) = self.registry.upgrade() {
            registry.unregister(&self.name, self.generation);
        }
        for (_, c) in self.clients.drain() {
            c.link.closer.close(close::STORE_FAILED, format!("storage failed: {e}"));
        }
        for (_, _, reply) in self.deferred_joins.drain(..) {
            let _ = reply.send(Err(JoinError::Unloaded));
        }
        self.metrics.held_bytes.dec_by(self.held_bytes as i64);
        self.held.clear();
        self.held_bytes = 0;
    }

    /// Waits for the store to hold everything applied so far.
    async fn flush(&mut self) -> Result<(), StoreError> {
        loop {
            if let Some(op) = self.inflight.take() {
                let done = op.await;
                self.store_done(done)?;
            }
            self.start_store_op();
            if self.inflight.is_none() {
                return Ok(());
            }
        }
    }

    /// Saves the room and leaves the registry; until the save is done no one can load it (other
    /// rooms load and save meanwhile). Commands already queued are handled first (server code
    /// runs; joins are told to retry). `false` if the server is gone or another actor replaced
    /// this one.
    async fn unload(&mut self, rx: &mut mpsc::Receiver<Command>) -> bool {
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

    fn room_snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            doc: self.doc.snapshot(),
            clients: self
                .known
                .iter()
                .filter(|(_, k)| k.last_action > 0)
                .map(|(id, k)| KnownClient { id: id.clone(), last_action: k.last_action })
                .collect(),
            clients_floor: self.clients_floor,
        }
    }

    /// Writes what is pending and a snapshot (compacting the log behind it).
    async fn save(&mut self) {
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "could not write the room's last updates");
            return;
        }
        let snapshot = self.room_snapshot();
        let compact_to = self.doc.version().saturating_sub(self.limits.room_log_versions_max as u64);
        if let Err(e) = self.store.save_snapshot(&self.name, &snapshot, compact_to).await {
            tracing::error!(error = %e, "could not save the room");
        }
    }

    fn handle(&mut self, cmd: Command) {
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
            Command::Action { client, id, base, changes, permit } => {
                self.action(client, id, base, changes);
                drop(permit);
            }
            Command::Undo { client, id, scope, redo } => self.undo(client, id, scope, redo),
            Command::Presence { client, state, permit } => {
                self.presence(client, state);
                drop(permit);
            }
            Command::Run(job) => job(self),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn join(&mut self, request: JoinRequest, link: SessionLink) -> Result<ClientId, JoinError> {
        // The welcome's version must come after every update already sent.
        self.flush_outbox();
        if self.clients.len() >= self.limits.clients_per_room_max {
            return Err(JoinError::Full { room: self.name.to_string(), limit: self.limits.clients_per_room_max });
        }
        // A client the room does not know, resuming from before clients were forgotten, may be
        // one of them: it is a new client (its actions could not be deduplicated).
        // The token is bound to the identity: a resume by another user is a new client.
        let user = request.identity.as_deref().map(|i| i.user.as_str());
        let resumed = request.resume.filter(|r| {
            r.resume_token == self.resume_token(&r.client, user)
                && (self.known.contains_key(&r.client) || r.version >= self.clients_floor)
        });
        let (client, from) = match resumed {
            Some(r) => {
                // The old connection may not have been noticed dead yet: the new one replaces it.
                if let Some(old) = self.clients.remove(&r.client) {
                    old.link.closer.close(close::NORMAL, "replaced by a newer connection of the same client");
                    if !old.presence.is_null() {
                        let frame: Frame =
                            protocol::encode_presence(&r.client, old.identity.as_deref(), &Value::Null).into();
                        self.broadcast(&frame, None);
                    }
                }
                (r.client, Some(r.version))
            }
            None => (self.new_client_id(), None),
        };
        let catchup = from.and_then(|v| self.log_since(v));
        let resume_token = self.resume_token(&client, user);
        let known = self.known.entry(client.clone()).or_insert(Known { last_action: 0, last_version: 0 });
        let presence: BTreeMap<&str, &Value> = self
            .clients
            .iter()
            .filter(|(_, c)| !c.presence.is_null())
            .map(|(id, c)| (id.as_str(), &c.presence))
            .collect();
        let users: BTreeMap<&str, protocol::UserView<'_>> = self
            .clients
            .iter()
            .filter(|(_, c)| !c.presence.is_null())
            .filter_map(|(id, c)| Some((id.as_str(), protocol::UserView::of(c.identity.as_deref()?))))
            .collect();
        let (undo_steps, redo_steps) = self.undo.steps(&client);
        let welcome = protocol::encode_welcome(&protocol::Welcome {
            t: "welcome",
            protocol: protocol::PROTOCOL_VERSION,
            client: &client,
            resume_token: &resume_token,
            version: self.doc.version(),
            acked: known.last_action,
            snapshot: match (&catchup, request.compact_snapshots) {
                (Some(_), _) => None,
                (None, true) => Some(self.doc.compact_snapshot_view()),
                (None, false) => Some(self.doc.snapshot_view()),
            },
            presence,
            read_only: request.read_only,
            undo_steps,
            redo_steps,
            identity: request.identity.as_deref().map(protocol::UserView::of),
            users,
        });
        self.metrics.bytes_out.inc_by(welcome.len() as u64);
        link.out.try_queue(welcome.into()).map_err(|_| JoinError::NotReading)?;
        for frame in catchup.into_iter().flatten() {
            link.out.try_queue(frame).map_err(|_| JoinError::NotReading)?;
        }
        self.undo.returned(&client);
        // The hooks (permission, validators, reactions) see who acts.
        self.doc.set_identity(&client, request.identity.clone());
        self.clients.insert(
            client.clone(),
            Connected {
                link,
                read_only: request.read_only,
                presence: Value::Null,
                batch: request.batch,
                identity: request.identity,
            },
        );
        self.forget_oldest_clients();
        self.metrics.joins.inc();
        tracing::debug!(%client, resumed = from.is_some(), "client joined");
        Ok(client)
    }

    /// The updates after version `v`, if the log still holds all of them (and not too many to
    /// queue; a snapshot is cheaper then).
    fn log_since(&self, v: u64) -> Option<Vec<Frame>> {
        let now = self.doc.version();
        if v > now {
            return None;
        }
        if v == now {
            return Some(Vec::new());
        }
        let first = self.log.front()?.0;
        if first > v + 1 || (now - v) as usize > self.limits.outbound_queue_len_max / 2 {
            return None;
        }
        let missed: Vec<Frame> = self.log.iter().filter(|(ver, _)| *ver > v).map(|(_, f)| f.clone()).collect();
        // The catch-up must leave room in the client's queue for what comes next.
        let bytes: usize = missed.iter().map(|f| f.len()).sum();
        (bytes <= self.limits.outbound_queue_bytes_max / 2).then_some(missed)
    }

    fn new_client_id(&self) -> ClientId {
        loop {
            let n: u64 = rand::random();
            let id = compact_str::format_compact!("c{}", base36(n, 10));
            if !self.known.contains_key(&id) && !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    fn actor_of(&self, client: &ClientId) -> Option<(Actor, bool)> {
        self.clients.get(client).map(|c| (Actor::Client(client.clone()), c.read_only))
    }

    /// Checks read-only and the action id; on success records it as processed.
    fn admit(&mut self, client: &ClientId, id: u64) -> Option<Actor> {
        let (actor, read_only) = self.actor_of(client)?;
        if read_only {
            self.refuse(client, id, "read_only", "this client may not change anything");
            return None;
        }
        let last = self.known.get(client).map_or(0, |k| k.last_action);
        if id <= last {
            let reason = format!("action {id} is not above the last processed action {last}");
            self.refuse(client, id, "duplicate_action", &reason);
            return None;
        }
        let version = self.doc.version() + 1;
        if let Some(k) = self.known.get_mut(client) {
            k.last_action = id;
            k.last_version = version;
        }
        Some(actor)
    }

    fn action(&mut self, client: ClientId, id: u64, base: u64, changes: Vec<Change>) {
        let Some(actor) = self.admit(&client, id) else {
            return;
        };
        if changes.len() > self.limits.action_changes_max {
            let reason =
                format!("the action has {} changes; the limit is {}", changes.len(), self.limits.action_changes_max);
            return self.reject(&client, id, "too_many_changes", &reason, None);
        }
        match self.doc.apply(&actor, Some(base), changes) {
            Ok(t) => {
                self.undo.record(&self.doc, &t, self.now_ms());
                self.publish(&t, Some(id));
            }
            Err(r) => {
                let reason = r.error.to_string();
                self.reject(&client, id, r.code(), &reason, r.change_index);
            }
        }
    }

    fn undo(&mut self, client: ClientId, id: u64, scope: Option<ObjId>, redo: bool) {
        let Some(actor) = self.admit(&client, id) else {
            return;
        };
        let scope = match scope {
            None => None,
            Some(s) => match self.doc.key(&s) {
                Some(k) => Some(k),
                None => {
                    let e = ModelError::NoSuchObject { id: s };
                    return self.reject(&client, id, e.code(), &e.to_string(), None);
                }
            },
        };
        let now = self.now_ms();
        let r = if redo {
            self.undo.redo(&mut self.doc, &actor, scope, now)
        } else {
            self.undo.undo(&mut self.doc, &actor, scope, now)
        };
        match r {
            Ok(t) => self.publish(&t, Some(id)),
            Err(e) => self.reject(&client, id, e.code(), &e.to_string(), None),
        }
    }

    fn presence(&mut self, client: ClientId, state: Value) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        c.presence = state;
        let frame: Frame = protocol::encode_presence(&client, c.identity.as_deref(), &c.presence).into();
        self.flush_outbox();
        self.broadcast(&frame, Some(&client));
    }

    fn server_transact<R>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<R, ModelError>) -> Result<R, Rejection> {
        let (t, r) = self.doc.transact(&Actor::Server, f)?;
        if !t.changes.is_empty() {
            self.publish(&t, None);
        }
        Ok(r)
    }

    /// Encodes a transition once, logs it (if it changed state) and sends it to every client.
    fn publish(&mut self, t: &Transition, action: Option<u64>) {
        let origin = t.actor.client_id().unwrap_or("server");
        let events_only = !t.changes_state();
        let frame: Frame = protocol::encode_update(t.version, origin, action, &t.changes, events_only).into();
        if !events_only {
            self.log_bytes += frame.len();
            self.log.push_back((t.version, frame.clone()));
            self.trim_log();
            self.metrics.updates.inc();
            self.updates_since_snapshot += 1;
            if self.durable {
                self.unsynced.entries.push(LogEntry { version: t.version, frame: frame.to_string() });
                if let (Some(client), Some(id)) = (t.actor.client_id(), action) {
                    self.unsynced.clients.push(KnownClient { id: client.into(), last_action: id });
                }
            }
        }
        self.release_or_hold(frame, None);
    }

    /// Sends now, or after the updates before it are durable (keeping everyone's order).
    fn release_or_hold(&mut self, frame: Frame, to: Option<ClientId>) {
        let pending = if self.unsynced.entries.is_empty() && self.unsynced.clients.is_empty() {
            self.held.back().map(|h| h.batch)
        } else {
            Some(self.batch_seq)
        };
        match pending {
            Some(batch) if self.durable => self.hold(Held { batch, frame, to }),
            _ => match to {
                None => self.outbox.push(frame),
                Some(client) => self.send_to(&client, frame),
            },
        }
    }

    fn trim_log(&mut self) {
        while self.log.len() > self.limits.room_log_versions_max || self.log_bytes > self.limits.room_log_bytes_max {
            match self.log.pop_front() {
                Some((_, f)) => self.log_bytes -= f.len(),
                None => break,
            }
        }
    }

    /// The resume token of `client` as user `user`: a resume by another user (or an anonymous
    /// one of a user's client) does not match, so it becomes a new client.
    fn resume_token(&self, client: &str, user: Option<&str>) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.secret);
        h.update(self.name.as_bytes());
        h.update(&[0]);
        h.update(client.as_bytes());
        if let Some(user) = user {
            h.update(&[0]);
            h.update(user.as_bytes());
        }
        h.finalize().to_hex()[..32].to_owned()
    }

    /// Sends what the outbox gathered: one frame each to clients that take no batches, one
    /// `batch` frame (encoded once, shared) to those that do.
    fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.outbox);
        if frames.len() == 1 || !self.clients.values().any(|c| c.batch) {
            for f in &frames {
                self.broadcast(f, None);
            }
            return;
        }
        let batches: Vec<Frame> = frames
            .chunks(BATCH_MESSAGES_MAX)
            .map(|chunk| protocol::encode_batch(chunk.iter().map(|f| f.as_str())).into())
            .collect();
        let mut slow: Vec<(ClientId, QueueFull)> = Vec::new();
        for (id, c) in &self.clients {
            let out: &[Frame] = if c.batch { &batches } else { &frames };
            for f in out {
                if let Err(full) = c.link.out.try_queue(f.clone()) {
                    slow.push((id.clone(), full));
                    break;
                }
                self.metrics.bytes_out.inc_by(f.len() as u64);
            }
        }
        self.cut_off_slow(slow);
    }

    /// Cuts off the clients whose queue refused a frame (close 4003): they can resume.
    fn cut_off_slow(&mut self, slow: Vec<(ClientId, QueueFull)>) {
        for (id, full) in slow {
            let reason = too_slow(full, &self.limits);
            if self.drop_client(&id, Some((close::TOO_SLOW, reason))) {
                self.metrics.slow_disconnects.inc();
            }
        }
    }

    /// Queues `frame` to every client (but `except`); cuts off clients whose queue is full.
    fn broadcast(&mut self, frame: &Frame, except: Option<&ClientId>) {
        let mut slow: Vec<(ClientId, QueueFull)> = Vec::new();
        for (id, c) in &self.clients {
            if except == Some(id) {
                continue;
            }
            match c.link.out.try_queue(frame.clone()) {
                Ok(()) => {
                    self.metrics.bytes_out.inc_by(frame.len() as u64);
                }
                Err(full) => slow.push((id.clone(), full)),
            }
        }
        self.cut_off_slow(slow);
    }

    /// Sends `frame` to one client; cuts it off if its queue is full.
    fn send_to(&mut self, client: &ClientId, frame: Frame) {
        // What was gathered for everyone comes first.
        self.flush_outbox();
        let Some(c) = self.clients.get(client) else {
            return;
        };
        if let Err(full) = c.link.out.try_queue(frame) {
            self.cut_off_slow(vec![(client.clone(), full)]);
        }
    }

    /// Refuses a processed action: its id now counts as processed (`acked`, `duplicate_action`).
    /// With a durable store the client hears of it only once that is durable, like an update:
    /// after a crash, `acked` never goes back below an action the client was told was refused.
    fn reject(&mut self, client: &ClientId, action: u64, code: &str, reason: &str, change: Option<usize>) {
        self.metrics.rejects.inc();
        let frame: Frame = protocol::encode_reject(action, code, reason, change).into();
        if !self.durable {
            return self.release_or_hold(frame, Some(client.clone()));
        }
        // Released with the batch that commits the record (not with an earlier one in flight).
        self.unsynced.clients.push(KnownClient { id: client.clone(), last_action: action });
        self.hold(Held { batch: self.batch_seq, frame, to: Some(client.clone()) });
    }

    /// Past `room_known_clients_max`, forgets the disconnected clients whose last action is
    /// oldest (a tenth of the bound at once), and raises `clients_floor` past them.
    fn forget_oldest_clients(&mut self) {
        let max = self.limits.room_known_clients_max.max(self.limits.clients_per_room_max);
        if self.known.len() <= max {
            return;
        }
        let mut idle: Vec<(u64, ClientId)> = self
            .known
            .iter()
            .filter(|(id, _)| !self.clients.contains_key(*id))
            .map(|(id, k)| (k.last_version, id.clone()))
            .collect();
        idle.sort_unstable();
        let n = (self.known.len() - max + max / 10).min(idle.len());
        for (last_version, id) in idle.into_iter().take(n) {
            self.known.remove(&id);
            self.undo.forget(&id);
            self.clients_floor = self.clients_floor.max(last_version + 1);
        }
        tracing::debug!(forgotten = n, floor = self.clients_floor, "forgot the oldest clients");
    }

    /// Keeps a message until its version is durable.
    fn hold(&mut self, held: Held) {
        self.held_bytes += held.frame.len();
        self.metrics.held_bytes.inc_by(held.frame.len() as i64);
        self.held.push_back(held);
    }

    /// Refuses an action that was not processed (its id does not count): read-only clients,
    /// duplicate ids.
    fn refuse(&mut self, client: &ClientId, action: u64, code: &str, reason: &str) {
        self.metrics.rejects.inc();
        self.release_or_hold(protocol::encode_reject(action, code, reason, None).into(), Some(client.clone()));
    }

    /// Removes a client (closing its session if `close` is given) and tells the others its
    /// presence is gone.
    /// Removes a client (closing its session with `close`); `true` if `close` was the session's
    /// first close reason.
    fn drop_client(&mut self, client: &ClientId, close: Option<(u16, String)>) -> bool {
        let Some(c) = self.clients.remove(client) else {
            return false;
        };
        self.doc.set_identity(client, None);
        self.undo.departed(client);
        // A client that never had an action applied needs no record: its resume token is
        // derived, and there is nothing to deduplicate.
        if self.known.get(client).is_some_and(|k| k.last_action == 0) {
            self.known.remove(client);
        }
        let first = match close {
            Some((code, reason)) => {
                tracing::info!(%client, code, %reason, "client cut off");
                c.link.closer.close(code, reason)
            }
            None => false,
        };
        if !c.presence.is_null() {
            let frame: Frame = protocol::encode_presence(client, c.identity.as_deref(), &Value::Null).into();
            self.broadcast(&frame, None);
        }
        first
    }
}

/// The close reason of a client whose queue refused a frame.
pub(crate) fn too_slow(full: QueueFull, limits: &ServerLimits) -> String {
    match full {
        QueueFull::Session => format!(
            "too slow: more than {} messages or {} bytes waiting",
            limits.outbound_queue_len_max, limits.outbound_queue_bytes_max
        ),
        QueueFull::Server => {
            format!("too slow: the server's {} bytes for waiting messages are taken", limits.outbound_bytes_max)
        }
        QueueFull::Closed => "the connection is closing".to_owned(),
    }
}

fn base36(mut n: u64, digits: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; digits];
    for d in out.iter_mut().rev() {
        *d = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Awaits the store operation in flight; never resolves when there is none.
async fn poll_op(op: &mut Option<StoreOp>) -> Result<Option<u64>, StoreError> {
    match op.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
