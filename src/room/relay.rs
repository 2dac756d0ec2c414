//! A room another node holds, as this node's sessions reach it: its relay takes the same
//! commands as a room's actor (through a [`RoomHandle`] marked as a relay) and passes them to the
//! holder on the bus, and hands the holder's stream to its sessions: a broadcast to every joined
//! session, a frame for one connection to that one, in the stream's order.
//!
//! The stream is numbered: a gap made only of logged updates (the last version published is in
//! every message) is filled from the store before anything else is passed on; a stream of an
//! older holder (a lower lease epoch) is ignored; any other gap, a stream of a later holder (the
//! room moved), a holder silent for three heartbeats or a reset of the holder ends the relay:
//! its sessions are moved to the room's next home (`moving.rs`: they resume there without a
//! welcome and go on) or, if that cannot be done, closed with 4008 (each resumes). The relay
//! stops once it has had no session for `room_unload_grace_ms`, or when a join finds no holder
//! listening; the next join then loads the room afresh (this node may claim it). Its own
//! requests are numbered too: the holder that misses one closes this node's clients (4008).
//!
//! Must not: touch a document, or pass a frame on out of the stream's order.

use super::handle::{next_connection_id, ConnectionId, Job, Takeover};
use super::join::JoinReply;
use super::moving::{carry, Moving};
use super::{ClientId, Command, Frame, JoinError, JoinRequest, Registry, RoomHandle, SessionLink};
use crate::cluster::{Bus, Delivery, Subscription};
use crate::limits::ServerLimits;
use crate::metrics::Metrics;
use crate::protocol::cluster::{
    decode_stream, encode_request, peek, requests_channel, stream_channel, IdentityRecord, Peek, RemoteConn, Request,
    RequestHeader, StreamHeader, StreamKind, Target,
};
use crate::protocol::{self, close, Resume};
use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A session of this node in the relayed room. Keyed by its number on the wire: the session's
/// own connection number, or a fresh one for a session moved here (the holder may still know
/// the old one).
struct Local {
    link: SessionLink,
    /// What it joined with (to join again elsewhere).
    request: JoinRequest,
    /// Known once the holder accepted the join.
    client: Option<ClientId>,
    /// The welcome (or a moved session's first frame) came: broadcasts after it are this
    /// session's.
    welcomed: bool,
    /// What came for it while its join waits for the holder's answer: given to it only once the
    /// join is accepted, dropped if anything of the stream may have been lost meanwhile (the
    /// join is tried again), so a session never starts from a stream with a hole.
    held: Vec<Frame>,
    held_bytes: usize,
    /// The join waiting for the holder's answer, and since when.
    reply: Option<(JoinReply, Instant)>,
    /// Its resume token and the last version it was given.
    resume_token: Option<String>,
    version: u64,
    /// The actions (undo, redo) it sent whose outcome it has not been given: (id, text),
    /// bounded by `room_inbox_bytes_max` (past it, the session cannot be moved, only closed).
    awaiting: Vec<(u64, String)>,
    awaiting_bytes: usize,
    overflow: bool,
}

impl Local {
    /// What moving it elsewhere needs, if it can be moved.
    fn movable(self) -> Result<Moving, SessionLink> {
        match (self.client, self.resume_token, self.reply, self.overflow, self.welcomed) {
            (Some(client), Some(resume_token), None, false, true) => {
                let resume = Resume { client: client.clone(), resume_token, version: self.version };
                Ok(Moving { client, link: self.link, request: self.request, resume, resend: self.awaiting })
            }
            _ => Err(self.link),
        }
    }

    /// Gives it a frame: to its queue, or held while its join waits (bounded like its queue:
    /// an empty hold takes any frame).
    fn give(&mut self, frame: Frame, limits: &ServerLimits) -> Result<(), super::QueueFull> {
        if self.reply.is_none() {
            return self.link.out.try_queue(frame);
        }
        if !self.held.is_empty() && self.held_bytes + frame.len() > limits.outbound_queue_bytes_max {
            return Err(super::QueueFull::Session);
        }
        self.held_bytes += frame.len();
        self.held.push(frame);
        Ok(())
    }

    /// The outcome of its action `id` (and of every earlier one) reached it.
    fn settle(&mut self, id: u64) {
        let before = self.awaiting.len();
        self.awaiting.retain(|(a, _)| *a > id);
        if self.awaiting.len() != before {
            self.awaiting_bytes = self.awaiting.iter().map(|(_, t)| t.len()).sum();
        }
    }
}

/// What a relay is started with.
pub(crate) struct RelaySeed {
    pub(crate) name: Arc<str>,
    pub(crate) generation: u64,
    pub(crate) registry: Weak<Registry>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) stream: Subscription,
    pub(crate) heartbeat: Duration,
}

struct Relay {
    name: Arc<str>,
    generation: u64,
    registry: Weak<Registry>,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    limits: Arc<ServerLimits>,
    metrics: Arc<Metrics>,
    heartbeat: Duration,
    requests: String,
    /// This relay's requests: its incarnation and the last number sent.
    incarnation_out: u64,
    request_seq: u64,
    sessions: HashMap<ConnectionId, Local>,
    by_client: HashMap<ClientId, ConnectionId>,
    /// The holder's stream: its incarnation, the last sequence number and logged version seen.
    incarnation: Option<u64>,
    seq: u64,
    version: u64,
    last_heard: Instant,
    idle_since: Instant,
    /// Its sessions were moved (or closed): it stops, and the next join goes through the store
    /// again (the room may have moved, or be free to take).
    done: bool,
    /// Sessions to move to the room's next home when it stops.
    moving: Vec<Moving>,
}

/// A number for a new relay, higher than every earlier one of this node (its microseconds since
/// 1970, or the last one plus one): the holder knows a node's newest relay by it.
fn next_incarnation() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let mut next = 0;
    let _ = LAST.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |last| {
        next = now.max(last + 1);
        Some(next)
    });
    next
}

/// Starts the relay of a room held elsewhere; returns its handle and task.
pub(crate) fn spawn_relay(
    seed: RelaySeed,
    limits: Arc<ServerLimits>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    let RelaySeed { name, generation, registry, bus, store, stream, heartbeat } = seed;
    let (handle, rx) = RoomHandle::with_inbox(name.clone(), registry.clone(), &limits, true);
    let relay = Relay {
        requests: requests_channel(&name),
        incarnation_out: next_incarnation(),
        request_seq: 0,
        name: name.clone(),
        generation,
        registry: registry.clone(),
        bus,
        store,
        limits,
        metrics,
        heartbeat,
        sessions: HashMap::new(),
        by_client: HashMap::new(),
        incarnation: None,
        seq: 0,
        version: 0,
        last_heard: Instant::now(),
        idle_since: Instant::now(),
        done: false,
        moving: Vec::new(),
    };
    let span = tracing::info_span!("relay", room = %name);
    let task = tokio::spawn(tracing::Instrument::instrument(relay.run(rx, stream, shutdown), span));
    (handle, task)
}

impl Relay {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut stream: Subscription, shutdown: CancellationToken) {
        self.metrics.relays.inc();
        let mut tick = tokio::time::interval(self.heartbeat);
        let grace = Duration::from_millis(self.limits.room_unload_grace_ms);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                d = stream.next() => match d {
                    Delivery::Message(m) => self.on_stream(&m).await,
                    // The next message's number tells what the joined sessions lost (a heartbeat
                    // comes soon); joins still waiting start again.
                    Delivery::Lost => {
                        tracing::info!("messages of the room's stream may have been lost");
                        self.drop_pending();
                    }
                    Delivery::Ended => break,
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        if !self.command(cmd).await {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    self.keep_alive();
                    if self.sessions.is_empty() && self.idle_since.elapsed() >= grace {
                        break;
                    }
                }
            }
            if self.done {
                break;
            }
        }
        if let Some(registry) = self.registry.upgrade() {
            registry.unregister(&self.name, self.generation);
        }
        self.bus.unsubscribe(&stream_channel(&self.name));
        let moving = std::mem::take(&mut self.moving);
        if !moving.is_empty() && !shutdown.is_cancelled() {
            // Still the sessions' handle: it passes their messages to where they moved.
            carry(&self.name, self.registry.clone(), &mut rx, moving, shutdown).await;
        }
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            if let Command::Join { reply, .. } = cmd {
                let _ = reply.send(Err(JoinError::Unloaded));
            }
        }
        self.close_all("the relay of the room stopped");
        self.metrics.relays.dec();
        tracing::debug!("relay stopped");
    }

    /// `false` when the relay must stop (no one holds the room any more).
    async fn command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Join { request, link, reply } => return self.join(request, link, reply).await,
            Command::Leave { client, connection } => {
                let wire = self.by_client.get(&client).copied();
                if let Some(wire) =
                    wire.filter(|w| self.sessions.get(w).is_some_and(|s| s.link.connection == connection))
                {
                    self.by_client.remove(&client);
                    self.sessions.remove(&wire);
                    self.request(Request::Leave { from: self.conn(wire) }, "");
                }
            }
            Command::Forward { client, text, action, permit } => {
                if let Some(&wire) = self.by_client.get(&client) {
                    self.metrics.forwarded.inc();
                    let max = self.limits.room_inbox_bytes_max;
                    if let (Some(id), Some(s)) = (action, self.sessions.get_mut(&wire)) {
                        s.awaiting_bytes += text.len();
                        s.overflow |= s.awaiting_bytes > max;
                        if !s.overflow {
                            s.awaiting.push((id, text.clone()));
                        }
                    }
                    if !self.request(Request::Message { from: self.conn(wire) }, &text) {
                        self.close(wire, "the bus refused a message for the node holding the room");
                    }
                }
                drop(permit);
            }
            // Sessions of a relay forward; server code is refused by the handle.
            Command::Action { .. } | Command::Undo { .. } | Command::Presence { .. } => {}
            Command::Run(job) => drop::<Job>(job),
        }
        self.note_idle();
        true
    }

    async fn join(&mut self, mut request: JoinRequest, link: SessionLink, reply: JoinReply) -> bool {
        // A moved session gets a number of its own: the holder may still know its old one.
        let takeover = request.takeover.take();
        let wire = if takeover.is_some() { next_connection_id() } else { link.connection };
        let join = self.numbered(Request::Join {
            from: self.conn(wire),
            resume: request.resume.clone(),
            read_only: request.read_only,
            batch: request.batch,
            compact_snapshots: request.compact_snapshots,
            identity: request.identity.as_deref().map(IdentityRecord::of),
            takeover: takeover.as_ref().map(|t| t.resend.clone()),
        });
        match self.bus.publish_counted(&self.requests, encode_request(&join, "")).await {
            Ok(n) if n > 0 => {
                let resume = request.resume.as_ref().filter(|_| takeover.is_some());
                let local = Local {
                    resume_token: resume.map(|r| r.resume_token.clone()),
                    version: resume.map_or(0, |r| r.version),
                    awaiting: takeover.map(|t: Takeover| t.resend).unwrap_or_default(),
                    awaiting_bytes: 0,
                    overflow: false,
                    link,
                    request,
                    client: None,
                    welcomed: false,
                    held: Vec::new(),
                    held_bytes: 0,
                    reply: Some((reply, Instant::now())),
                };
                self.sessions.insert(wire, local);
                self.last_heard = Instant::now();
                true
            }
            outcome => {
                tracing::debug!(?outcome, "no node holding the room heard the join");
                let _ = reply.send(Err(JoinError::Unloaded));
                // The holder is gone: the next join loads the room afresh.
                !self.sessions.is_empty()
            }
        }
    }

    fn conn(&self, connection: ConnectionId) -> RemoteConn {
        RemoteConn { node: self.bus.node().into(), conn: connection }
    }

    /// The next request of this relay, numbered.
    fn numbered(&mut self, request: Request) -> RequestHeader {
        self.request_seq += 1;
        RequestHeader { node: self.bus.node().into(), relay: self.incarnation_out, seq: self.request_seq, request }
    }

    /// Queues a request to the holder; `false` if the bus refused it (the holder sees the gap).
    fn request(&mut self, request: Request, text: &str) -> bool {
        let request = self.numbered(request);
        self.bus.publish(&self.requests, encode_request(&request, text)).is_ok()
    }

    fn note_idle(&mut self) {
        if self.sessions.is_empty() {
            self.idle_since = Instant::now();
        }
    }

    /// Every heartbeat: tells the holder this node's sessions are alive; gives up on a holder
    /// silent for three heartbeats, and on joins it did not answer.
    fn keep_alive(&mut self) {
        if self.sessions.is_empty() {
            return;
        }
        self.request(Request::Keepalive, "");
        let silent = self.heartbeat * 3;
        if self.last_heard.elapsed() > silent {
            self.move_all("the node holding the room is silent");
            return;
        }
        let late: Vec<ConnectionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.reply.as_ref().is_some_and(|(_, since)| since.elapsed() > silent))
            .map(|(c, _)| *c)
            .collect();
        for connection in late {
            if let Some(Local { reply: Some((reply, _)), .. }) = self.sessions.remove(&connection) {
                let _ = reply.send(Err(JoinError::Unloaded));
                self.request(Request::Leave { from: self.conn(connection) }, "");
                // A holder that hears joins and does not answer (paused): look again.
                self.done = true;
            }
        }
    }

    async fn on_stream(&mut self, message: &bytes::Bytes) {
        let (header, frame) = match decode_stream(message) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "a message of the room's stream does not decode");
                return;
            }
        };
        // A holder that lost the room (paused past its lease, say) may still publish: its
        // stream is older than the one followed (a lower epoch), and ignored.
        if self.incarnation.is_some_and(|i| header.incarnation < i) {
            return;
        }
        self.last_heard = Instant::now();
        if !self.in_order(&header).await {
            return;
        }
        let update = matches!(header.kind, StreamKind::Frame { update: true });
        self.seq = header.seq;
        self.version = header.v;
        match header.target {
            Target::All { except } => match (header.kind, frame) {
                (StreamKind::Frame { .. }, Some(frame)) => {
                    self.broadcast(&frame, except.as_ref(), update.then_some(header.v));
                }
                (StreamKind::Reset { reason }, _) => self.move_all(&reason),
                _ => {}
            },
            Target::Conn { node, conn } if node == self.bus.node() => self.deliver_to(conn, header.kind, frame),
            Target::Conn { .. } => {}
        }
    }

    /// Checks the stream's order; fills a gap of logged updates from the store. `false` if
    /// the message must not be passed on (the sessions were moved).
    async fn in_order(&mut self, header: &StreamHeader) -> bool {
        let update = matches!(header.kind, StreamKind::Frame { update: true });
        let version_before = header.v.saturating_sub(u64::from(update));
        match self.incarnation {
            None => {
                self.incarnation = Some(header.incarnation);
                return true;
            }
            Some(i) if header.incarnation > i => {
                self.move_all("the room moved to another node");
                self.incarnation = Some(header.incarnation);
                return true;
            }
            Some(_) => {}
        }
        let missing = header.seq.saturating_sub(self.seq + 1);
        if header.seq <= self.seq {
            return false; // already seen
        }
        if missing == 0 {
            return true;
        }
        // The lost messages may have been a waiting join's answer.
        self.drop_pending();
        let missing_updates = version_before.saturating_sub(self.version);
        let filled = if missing != missing_updates {
            Err(format!(
                "messages from the node holding the room were lost ({missing}, of which {missing_updates} updates at most)"
            ))
        } else {
            self.fill(self.version, missing_updates).await
        };
        match filled {
            Ok(()) => {
                self.metrics.relay_gap_fills.inc();
                true
            }
            Err(reason) => {
                // The sessions move (they resume where the room is); the stream goes on from
                // here for the joins after them.
                self.move_all(&reason);
                self.seq = header.seq;
                self.version = header.v;
                false
            }
        }
    }

    /// Passes on the `count` logged updates after `after`, read from the store.
    async fn fill(&mut self, after: u64, count: u64) -> Result<(), String> {
        let max = usize::try_from(count).unwrap_or(usize::MAX);
        let entries = match self.store.log_after(&self.name, after, max).await {
            Ok(Some(entries)) => entries,
            Ok(None) => return Err("the store cannot fill a gap in the room's stream".into()),
            Err(e) => return Err(format!("filling a gap in the room's stream: {e}")),
        };
        let expected: Vec<u64> = (after + 1..=after + count).collect();
        let got: Vec<u64> = entries.iter().map(|e| e.version).collect();
        if got != expected {
            return Err(format!("the store has versions {got:?} after {after}, not the {count} missing"));
        }
        tracing::info!(after, count, "filled a gap in the room's stream from the store");
        for e in entries {
            let origin = e.origin.as_deref().unwrap_or("server");
            let frame = Frame::from(protocol::encode_update_of(e.version, origin, e.action, &e.changes, false));
            self.broadcast(&frame, None, Some(e.version));
        }
        Ok(())
    }

    /// Passes a frame for everyone (`update`: a logged update at that version) to the
    /// welcomed sessions but `except`'s.
    fn broadcast(&mut self, frame: &Frame, except: Option<&ClientId>, update: Option<u64>) {
        let mut slow = Vec::new();
        // Whose action it settles (read only when some session awaits one).
        let settles = match update {
            Some(_) if self.sessions.values().any(|s| !s.awaiting.is_empty()) => match peek(frame) {
                Some(Peek::Update { origin, action: Some(a), .. }) => Some((origin, a)),
                _ => None,
            },
            _ => None,
        };
        for (connection, s) in &mut self.sessions {
            if !s.welcomed || (except.is_some() && s.client.as_ref() == except) {
                continue;
            }
            if let Some(v) = update {
                // It has it already (its welcome or catch-up came after it).
                if v <= s.version {
                    continue;
                }
                s.version = v;
            }
            if let Some((origin, a)) = &settles {
                if s.client.as_ref() == Some(origin) {
                    s.settle(*a);
                }
            }
            match s.give(frame.clone(), &self.limits) {
                Ok(()) => {
                    self.metrics.bytes_out.inc_by(frame.len() as u64);
                }
                Err(full) => slow.push((*connection, super::too_slow(full, &self.limits))),
            }
        }
        for (connection, reason) in slow {
            self.cut_off(connection, close::TOO_SLOW, reason);
        }
    }

    /// Anything of the stream may have been lost: joins still waiting may have lost part of
    /// their answer, so they are dropped (their sessions try again; a moved session is moved
    /// again from the same version, nothing of it having been given).
    fn drop_pending(&mut self) {
        let pending: Vec<ConnectionId> =
            self.sessions.iter().filter(|(_, s)| s.reply.is_some()).map(|(wire, _)| *wire).collect();
        for wire in pending {
            if let Some(Local { reply: Some((reply, _)), .. }) = self.sessions.remove(&wire) {
                let _ = reply.send(Err(JoinError::Unloaded));
                self.request(Request::Leave { from: self.conn(wire) }, "");
            }
        }
        self.note_idle();
    }

    fn deliver_to(&mut self, connection: ConnectionId, kind: StreamKind, frame: Option<Frame>) {
        let Some(s) = self.sessions.get_mut(&connection) else { return };
        match (kind, frame) {
            (StreamKind::Frame { .. }, Some(frame)) => {
                s.welcomed = true;
                match peek(&frame) {
                    Some(Peek::Welcome { resume_token, version }) => {
                        s.resume_token = Some(resume_token);
                        s.version = version;
                    }
                    Some(Peek::Update { v, .. }) => s.version = s.version.max(v), // a catch-up
                    Some(Peek::Reject { action }) => s.settle(action),
                    _ => {}
                }
                if let Err(full) = s.give(frame, &self.limits) {
                    let reason = super::too_slow(full, &self.limits);
                    self.cut_off(connection, close::TOO_SLOW, reason);
                }
            }
            (StreamKind::Joined { client }, _) => {
                s.welcomed = true;
                if let Some((reply, _)) = s.reply.take() {
                    s.client = Some(client.clone());
                    self.by_client.insert(client.clone(), connection);
                    // What came meanwhile, in order, then the join's answer.
                    let mut full = None;
                    for frame in std::mem::take(&mut s.held) {
                        if let Err(f) = s.link.out.try_queue(frame) {
                            full = Some(f);
                            break;
                        }
                    }
                    s.held_bytes = 0;
                    if let Some(f) = full {
                        let _ = reply.send(Err(JoinError::NotReading));
                        let reason = super::too_slow(f, &self.limits);
                        self.cut_off(connection, close::TOO_SLOW, reason);
                    } else if reply.send(Ok(client)).is_err() {
                        self.cut_off(connection, close::NORMAL, "the session ended before its join".into());
                    }
                }
            }
            (StreamKind::Refused { reason }, _) => {
                if let Some(Local { reply: Some((reply, _)), .. }) = self.sessions.remove(&connection) {
                    let _ = reply.send(Err(JoinError::Refused { reason }));
                }
            }
            // The holder let this node's clients go (it missed a request of theirs): they move,
            // resuming where they were and sending again what is unsettled.
            (StreamKind::Closed { code: close::ROOM_MOVED, reason }, _) => self.move_all(&reason),
            (StreamKind::Closed { code, reason }, _) => {
                if let Some(s) = self.sessions.remove(&connection) {
                    self.forget(connection, &s);
                    s.link.closer.close(code, reason);
                }
            }
            _ => {}
        }
        self.note_idle();
    }

    fn forget(&mut self, wire: ConnectionId, s: &Local) {
        if let Some(client) = &s.client {
            if self.by_client.get(client) == Some(&wire) {
                self.by_client.remove(client);
            }
        }
    }

    /// Closes one session (and tells the holder it left).
    fn cut_off(&mut self, connection: ConnectionId, code: u16, reason: String) {
        if let Some(s) = self.sessions.remove(&connection) {
            self.forget(connection, &s);
            if s.link.closer.close(code, reason) && code == close::TOO_SLOW {
                self.metrics.slow_disconnects.inc();
            }
            self.request(Request::Leave { from: self.conn(connection) }, "");
        }
        self.note_idle();
    }

    fn close(&mut self, connection: ConnectionId, reason: &str) {
        self.cut_off(connection, close::ROOM_MOVED, format!("{reason}: resume"));
    }

    /// The holder went away (or its stream cannot be followed): the relay stops, and its
    /// sessions are moved to the room's next home; those that cannot be are closed with 4008,
    /// joins waiting are told to try again.
    fn move_all(&mut self, reason: &str) {
        if !self.sessions.is_empty() {
            tracing::info!(reason, sessions = self.sessions.len(), "moving the relay's sessions");
            self.metrics.relay_resets.inc();
        }
        for (wire, s) in std::mem::take(&mut self.sessions) {
            // The old holder, if it is still there, lets the client go first.
            self.request(Request::Leave { from: self.conn(wire) }, "");
            if let Some((reply, _)) = s.reply {
                let _ = reply.send(Err(JoinError::Unloaded));
                continue;
            }
            match s.movable() {
                Ok(moving) => self.moving.push(moving),
                Err(link) => {
                    link.closer.close(close::ROOM_MOVED, format!("{reason}: resume"));
                }
            }
        }
        self.by_client.clear();
        self.note_idle();
        self.done = true;
    }

    /// Closes every session with 4008 (each resumes, at any node); joins waiting are told to
    /// try again.
    fn close_all(&mut self, reason: &str) {
        let wires: Vec<ConnectionId> = self.sessions.keys().copied().collect();
        for wire in wires {
            match self.sessions.get_mut(&wire).and_then(|s| s.reply.take()) {
                Some((reply, _)) => {
                    self.sessions.remove(&wire);
                    let _ = reply.send(Err(JoinError::Unloaded));
                    self.request(Request::Leave { from: self.conn(wire) }, "");
                }
                None => self.close(wire, reason),
            }
        }
        self.by_client.clear();
    }
}
