//! The clients on other nodes of a room this node holds: their nodes' requests read from the
//! bus (joins, messages, leaves, keepalives) and turned into the room's commands, as their own
//! sessions would send them here; their frames go out on the room's stream ([`Outlet::Remote`]).
//! The nodes that hold remote clients are heard every heartbeat; the clients of a node silent
//! for three heartbeats are removed (it died, or lost the bus). Each node numbers its requests:
//! when one is missing (the bus lost it), that node's clients are closed with 4008 (each
//! resumes), as their messages may be among the lost.
//!
//! Must not: check client messages again (their session did), or run server code itself
//! (service calls go to the server's [`CallHandler`]).

use super::stream::{Outlet, RoomStream};
use super::{next_connection_id, ClientId, Closer, Command, JoinRequest, RoomHandle, SessionLink};
use crate::cluster::{Bus, Delivery, Subscription};
use crate::metrics::Metrics;
use crate::model::{Identity, Value};
use crate::protocol::cluster::{decode_request, RemoteConn, Request, RequestHeader, StreamKind, Target};
use crate::protocol::{self, close, ClientMessage};
use compact_str::CompactString;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A service call of a client (here or on another node), for the server to run: its result goes
/// to `link`.
pub(crate) struct ServiceRequest {
    pub(crate) room: RoomHandle,
    pub(crate) client: ClientId,
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) link: SessionLink,
    pub(crate) id: u64,
    pub(crate) service: String,
    pub(crate) args: Value,
}

/// Runs service calls of remote clients (given by the server).
pub(crate) type CallHandler = Arc<dyn Fn(ServiceRequest) + Send + Sync>;

/// A remote client of the room.
struct RemoteClient {
    client: ClientId,
    link: SessionLink,
    identity: Option<Arc<Identity>>,
    /// The incarnation of the relay it joined through.
    relay: u64,
}

/// Serves the remote clients of one loaded room until its actor stops.
pub(crate) struct RemoteClients {
    pub(crate) room: RoomHandle,
    pub(crate) stream: Arc<RoomStream>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) calls: Option<CallHandler>,
    pub(crate) heartbeat: Duration,
    metrics: Arc<Metrics>,
    clients: HashMap<RemoteConn, RemoteClient>,
    /// When each node with remote clients was last heard.
    heard: HashMap<CompactString, Instant>,
    /// Each node's relay of the room (its incarnation) and the number of its last request.
    numbers: HashMap<CompactString, (u64, u64)>,
}

impl RemoteClients {
    pub(crate) fn new(
        room: RoomHandle,
        stream: Arc<RoomStream>,
        bus: Arc<dyn Bus>,
        calls: Option<CallHandler>,
        heartbeat: Duration,
        metrics: Arc<Metrics>,
    ) -> RemoteClients {
        RemoteClients {
            room,
            stream,
            bus,
            calls,
            heartbeat,
            metrics,
            clients: HashMap::new(),
            heard: HashMap::new(),
            numbers: HashMap::new(),
        }
    }

    /// Reads `requests` until the room's actor stops (`stopped`), then tells the remote
    /// clients' nodes to resume them elsewhere.
    pub(crate) async fn run(mut self, mut requests: Subscription, stopped: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                d = requests.next() => match d {
                    Delivery::Message(m) => match decode_request(&m) {
                        Ok((request, text)) => self.handle(request, text).await,
                        Err(e) => tracing::warn!(error = %e, "a request from another node does not decode"),
                    },
                    // Each node's next request says whether one of its own was lost.
                    Delivery::Lost => tracing::info!("requests from other nodes may have been lost"),
                    Delivery::Ended => break,
                },
                _ = tick.tick() => self.heartbeat().await,
            }
        }
        self.metrics.remote_clients.dec_by(self.clients.len() as i64);
        // Published before this returns (a stopping server waits for this task): the relays
        // move their sessions now, not after three silent heartbeats.
        let reset = StreamKind::Reset { reason: "the room moves".into() };
        let _ = self.stream.send_now(Target::All { except: None }, reset).await;
        self.bus.unsubscribe(&protocol::cluster::requests_channel(self.room.name()));
    }

    async fn handle(&mut self, header: RequestHeader, text: String) {
        let RequestHeader { node, relay, seq, request } = header;
        if !self.in_order(&node, relay, seq).await {
            return;
        }
        match request {
            Request::Join { from, resume, read_only, batch, compact_snapshots, identity, takeover } => {
                let takeover = takeover.map(|resend| super::handle::Takeover { resend });
                self.heard.insert(from.node.clone(), Instant::now());
                let identity = identity.map(|i| Arc::new(i.into_identity()));
                let request =
                    JoinRequest { resume, read_only, batch, compact_snapshots, identity: identity.clone(), takeover };
                self.join(from, relay, request).await;
            }
            Request::Message { from } => self.message(&from, &text).await,
            Request::Leave { from } => self.leave(&from).await,
            Request::Keepalive => {
                self.heard.insert(node, Instant::now());
            }
        }
    }

    async fn join(&mut self, from: RemoteConn, relay: u64, request: JoinRequest) {
        let identity = request.identity.clone();
        let closer = Arc::new(Closer::default());
        let out = Outlet::Remote { stream: self.stream.clone(), conn: from.clone() };
        let link = SessionLink { connection: next_connection_id(), out, closer: closer.clone() };
        let (reply, answer) = oneshot::channel();
        let sent = self.room.send_here(Command::Join { request, link: link.clone(), reply }).await;
        let outcome = match sent {
            Ok(()) => answer.await.map_err(|_| "the room closed".to_owned()).and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(client) => {
                let _ = self.stream.to_conn(&from, StreamKind::Joined { client: client.clone() }, None);
                // When the room closes the client (cut off, replaced), its node is told.
                let (stream, conn) = (self.stream.clone(), from.clone());
                tokio::spawn(async move {
                    closer.token().cancelled().await;
                    if let Some((code, reason)) = closer.reason() {
                        let kind = StreamKind::Closed { code: *code, reason: reason.clone() };
                        let _ = stream.to_conn(&conn, kind, None);
                    }
                });
                self.metrics.remote_clients.inc();
                self.clients.insert(from, RemoteClient { client, link, identity, relay });
            }
            Err(reason) => {
                let _ = self.stream.to_conn(&from, StreamKind::Refused { reason }, None);
            }
        }
    }

    async fn message(&mut self, from: &RemoteConn, text: &str) {
        let Some(c) = self.clients.get(from) else { return };
        let client = c.client.clone();
        let cmd = match protocol::decode_client(text) {
            Ok(ClientMessage::Action { id, base, changes, step }) => {
                let Ok(permit) = self.room.inbox_permit(text.len()).await else { return };
                Command::Action { client, id, base, changes, step, permit }
            }
            Ok(ClientMessage::Undo { id, scope }) => Command::Undo { client, id, scope, redo: false },
            Ok(ClientMessage::Redo { id, scope }) => Command::Undo { client, id, scope, redo: true },
            Ok(ClientMessage::Presence { state }) => {
                let Ok(permit) = self.room.inbox_permit(text.len()).await else { return };
                Command::Presence { client, state, permit }
            }
            Ok(ClientMessage::Call { id, service, args }) => {
                if let Some(calls) = &self.calls {
                    let room = self.room.clone();
                    calls(ServiceRequest {
                        room,
                        client,
                        identity: c.identity.clone(),
                        link: c.link.clone(),
                        id,
                        service,
                        args,
                    });
                }
                return;
            }
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "a forwarded message does not decode");
                return;
            }
        };
        let _ = self.room.send_here(cmd).await;
    }

    async fn leave(&mut self, from: &RemoteConn) {
        if let Some(c) = self.clients.remove(from) {
            self.metrics.remote_clients.dec();
            let _ = self.room.send_here(Command::Leave { client: c.client, connection: c.link.connection }).await;
            // Ends the task that waits to tell the node about a close (the node forgot it).
            c.link.closer.close(close::NORMAL, "left");
        }
    }

    /// Publishes the heartbeat; removes the clients of nodes not heard for three.
    async fn heartbeat(&mut self) {
        if self.clients.is_empty() {
            return;
        }
        let _ = self.stream.send(Target::All { except: None }, StreamKind::Heartbeat, None, None);
        let silent = self.heartbeat * 3;
        let gone: Vec<RemoteConn> = self
            .clients
            .keys()
            .filter(|c| self.heard.get(&c.node).is_none_or(|t| t.elapsed() > silent))
            .cloned()
            .collect();
        for conn in gone {
            tracing::info!(node = %conn.node, conn = conn.conn, "a remote client's node is silent: the client is removed");
            self.leave(&conn).await;
        }
        self.heard.retain(|n, t| t.elapsed() <= silent || self.clients.keys().any(|c| c.node == *n));
    }

    /// Checks the number of a request of `node`'s relay: after a gap, that node's clients are
    /// closed (4008: they resume). `false` for a request seen already. A new relay of the node
    /// means the old one stopped: the clients that joined through it are gone (moved to the new
    /// one, or closed), whether or not their leaves arrived.
    async fn in_order(&mut self, node: &CompactString, relay: u64, seq: u64) -> bool {
        let last = self.numbers.get(node).copied();
        match last {
            // An older relay's last words (its leaves): taken, not numbered.
            Some((r, _)) if relay < r => return true,
            Some((r, _)) if relay > r => {
                let gone: Vec<RemoteConn> = self
                    .clients
                    .iter()
                    .filter(|(c, rc)| c.node == *node && rc.relay < relay)
                    .map(|(c, _)| c.clone())
                    .collect();
                for conn in gone {
                    self.leave(&conn).await;
                }
            }
            _ => {}
        }
        self.numbers.insert(node.clone(), (relay, seq));
        match last.filter(|(r, _)| *r == relay) {
            Some((r, s)) if r == relay && seq <= s => {
                self.numbers.insert(node.clone(), (r, s));
                false
            }
            Some((r, s)) if r == relay && seq > s + 1 => {
                tracing::warn!(%node, missing = seq - s - 1, "requests of a node were lost: its clients move (they resume where they were)");
                let conns: Vec<RemoteConn> = self.clients.keys().filter(|c| c.node == *node).cloned().collect();
                for conn in conns {
                    if let Some(c) = self.clients.get(&conn) {
                        c.link.closer.close(close::ROOM_MOVED, "messages between the nodes were lost: resume");
                    }
                    self.leave(&conn).await;
                }
                true
            }
            _ => true,
        }
    }
}
