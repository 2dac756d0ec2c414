//! How everything else reaches a room: [`RoomHandle`] (server code's calls, each a [`Command`] to
//! the actor, ordered with everything else), what a session gives the room ([`SessionLink`],
//! [`Closer`]), the inbox's byte permits, and the join a session asks for ([`JoinRequest`],
//! [`JoinError`]).
//!
//! Must not: touch the room's state itself (only the actor does, running what is sent here).

use super::actor::RoomState;
use super::{ClientId, Outlet, Registry};
use crate::model::{Change, Document, Identity, ModelError, ObjId, Rejection, Tx, Value};
use crate::protocol::Resume;
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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

/// What a session gives the room: where its frames go (its outbound queue, or for a client on
/// another node the room's stream) and its closer.
#[derive(Clone)]
pub(crate) struct SessionLink {
    /// Tells this connection apart from a newer one of the same client (a resume while the old
    /// socket is still open): the old session's leave must not remove the new one.
    pub(crate) connection: ConnectionId,
    pub(crate) out: Outlet,
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
    /// A session already connected, moved here by a relay whose holder went away: it resumes
    /// (`resume` is set) without a welcome, gets only the versions after its own, and the
    /// actions it had sent and the room had not processed are applied now.
    pub(crate) takeover: Option<Takeover>,
}

/// What a session moved by a relay brings (see [`JoinRequest::takeover`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Takeover {
    /// The client's messages (action, undo, redo) whose outcome it has not seen: (id, text).
    pub(crate) resend: Vec<(u64, String)>,
}

/// Why a room refused a join.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum JoinError {
    #[error("room {room} is full ({limit} clients)")]
    Full { room: String, limit: usize },
    #[error("could not send the welcome: the connection is not reading")]
    NotReading,
    /// The room was being unloaded (or the node holding it did not answer); asking the server
    /// again loads it afresh.
    #[error("the room was unloaded; try again")]
    Unloaded,
    /// The node holding the room refused the join.
    #[error("{reason}")]
    Refused { reason: String },
}

pub(super) type Job = Box<dyn FnOnce(&mut RoomState) + Send>;

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
        /// The undo step the action names, if any.
        step: Option<compact_str::CompactString>,
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
    /// A client message for the node holding the room (sent to a room held elsewhere: checked
    /// by the session, passed on as it came).
    Forward {
        client: ClientId,
        text: String,
        /// The id of an action, undo or redo (its outcome is awaited).
        action: Option<u64>,
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
    /// Another node holds the room: server code reads and changes it there.
    #[error("room {room} is held by another node")]
    HeldElsewhere {
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
    pub(super) name: Arc<str>,
    pub(super) tx: mpsc::Sender<Command>,
    /// Bytes of client messages waiting in the inbox (`room_inbox_bytes_max`).
    pub(super) inbox_bytes: Arc<tokio::sync::Semaphore>,
    pub(super) inbox_bytes_max: usize,
    /// To find the room again after it was unloaded.
    pub(super) registry: Weak<Registry>,
    /// A room held by another node: this handle reaches its relay, which only passes client
    /// messages on.
    pub(super) relay: bool,
}

impl std::fmt::Debug for RoomHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHandle").field("name", &self.name).finish()
    }
}

impl RoomHandle {
    /// A handle on a new inbox (for a room's actor, or a relay when `relay`), bounded by
    /// `room_inbox_len_max` commands and `room_inbox_bytes_max` bytes of client messages; the
    /// receiving end is the actor's.
    pub(super) fn with_inbox(
        name: Arc<str>,
        registry: Weak<Registry>,
        limits: &crate::limits::ServerLimits,
        relay: bool,
    ) -> (RoomHandle, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(limits.room_inbox_len_max);
        // A message's permits are a u32: the bound is one too, so the largest message always fits.
        let inbox_bytes_max =
            limits.room_inbox_bytes_max.clamp(1, u32::MAX as usize).min(tokio::sync::Semaphore::MAX_PERMITS);
        let inbox_bytes = Arc::new(tokio::sync::Semaphore::new(inbox_bytes_max));
        (RoomHandle { name, tx, inbox_bytes, inbox_bytes_max, registry, relay }, rx)
    }

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
        if self.relay {
            return Err(RoomError::HeldElsewhere { room: self.name.to_string() });
        }
        self.send(Command::Run(job)).await
    }

    /// Whether another node holds the room (client messages are forwarded to it as they came).
    pub(crate) fn is_relay(&self) -> bool {
        self.relay
    }

    /// Sends a command; if this room was unloaded meanwhile, to the room loaded afresh.
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), RoomError> {
        let cmd = match self.tx.send(cmd).await {
            Ok(()) => return Ok(()),
            // A room that is gone has no one to leave.
            Err(mpsc::error::SendError(Command::Leave { .. })) => return Ok(()),
            Err(mpsc::error::SendError(cmd)) => cmd,
        };
        let registry = self.registry.upgrade().ok_or_else(|| self.closed())?;
        let fresh = registry.room(&self.name).await.map_err(|_| self.closed())?;
        fresh.tx.send(cmd).await.map_err(|_| self.closed())
    }

    /// Sends a command to this actor only (not to a room loaded again after it).
    pub(crate) async fn send_here(&self, cmd: Command) -> Result<(), RoomError> {
        self.tx.send(cmd).await.map_err(|_| self.closed())
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
