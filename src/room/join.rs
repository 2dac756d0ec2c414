//! Joins and leaves: a resume checked against its token, the welcome (or the catch-up from the
//! resume log), the clients the room knows (their last action, for deduplication) and forgetting
//! the oldest of them, and a client's removal.
//!
//! Must not: keep anything per client to check a resume token (it is derived from the room's
//! secret).

use super::actor::{Connected, RoomState};
use super::{ClientId, Frame, JoinError, JoinRequest, SessionLink};
use crate::model::Value;
use crate::protocol::{self, close, Resume};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// A client the room knows (connected or not), for deduplicating its actions.
pub(super) struct Known {
    /// Highest action id processed (applied or refused).
    pub(super) last_action: u64,
    /// A version at or after that action's (for forgetting the oldest clients first).
    pub(super) last_version: u64,
}

/// Where a join's outcome goes.
pub(super) type JoinReply = oneshot::Sender<Result<ClientId, JoinError>>;

impl RoomState {
    pub(super) fn join(&mut self, mut request: JoinRequest, link: SessionLink) -> Result<ClientId, JoinError> {
        // The welcome's version must come after every update already sent.
        self.flush_outbox();
        if self.clients.len() >= self.limits.clients_per_room_max {
            return Err(JoinError::Full { room: self.name.to_string(), limit: self.limits.clients_per_room_max });
        }
        if request.takeover.is_some() {
            return self.take_over(request, link);
        }
        let user = request.identity.as_deref().map(|i| i.user.as_str());
        let (client, from) = self.resumed_or_new(request.resume.take(), user);
        let catchup = from.and_then(|v| self.log_since(v));
        let acked = self.known.entry(client.clone()).or_insert(Known { last_action: 0, last_version: 0 }).last_action;
        let welcome = self.welcome(&client, acked, catchup.is_some(), &request);
        self.metrics.bytes_out.inc_by(welcome.len() as u64);
        link.out.try_queue(welcome.into()).map_err(|_| JoinError::NotReading)?;
        for frame in catchup.into_iter().flatten() {
            link.out.try_queue(frame).map_err(|_| JoinError::NotReading)?;
        }
        self.admit_client(&client, request, link);
        tracing::debug!(%client, resumed = from.is_some(), "client joined");
        Ok(client)
    }

    /// A joined client becomes one of the room's.
    fn admit_client(&mut self, client: &ClientId, request: JoinRequest, link: SessionLink) {
        self.undo.returned(client);
        // The hooks (permission, validators, reactions) see who acts.
        self.doc.set_identity(client, request.identity.clone());
        let JoinRequest { read_only, batch, identity, .. } = request;
        self.clients.insert(client.clone(), Connected { link, read_only, presence: Value::Null, batch, identity });
        self.forget_oldest_clients();
        self.metrics.joins.inc();
    }

    /// A session a relay moved here (its holder went away): it resumes without a welcome, gets
    /// the versions after its own, then what it had sent and the room had not processed is
    /// applied. Refused if it cannot resume or its versions are no longer in the log (the
    /// relay then closes it, and the client resumes with a snapshot).
    fn take_over(&mut self, mut request: JoinRequest, link: SessionLink) -> Result<ClientId, JoinError> {
        let refused = |reason: &str| JoinError::Refused { reason: reason.to_owned() };
        let takeover = request.takeover.take().unwrap_or_default();
        let Some(resume) = request.resume.clone() else { return Err(refused("a takeover needs a resume point")) };
        // The client connected again meanwhile: the moved session is an old one.
        if self.clients.contains_key(&resume.client) {
            return Err(refused("the client has a newer connection"));
        }
        let user = request.identity.as_deref().map(|i| i.user.as_str());
        let (client, from) = self.resumed_or_new(request.resume.take(), user);
        if from.is_none() || client != resume.client {
            return Err(refused("the client cannot resume here"));
        }
        let catchup = self.log_since(resume.version).ok_or_else(|| refused("its versions are no longer in the log"))?;
        self.known.entry(client.clone()).or_insert(Known { last_action: 0, last_version: 0 });
        for frame in catchup {
            link.out.try_queue(frame).map_err(|_| JoinError::NotReading)?;
        }
        self.admit_client(&client, request, link);
        let last = self.known.get(&client).map_or(0, |k| k.last_action);
        for (id, text) in takeover.resend.into_iter().filter(|(id, _)| *id > last) {
            self.forwarded(client.clone(), &text);
            debug_assert!(
                self.known.get(&client).is_none_or(|k| k.last_action >= id),
                "invariant: a resent action is processed"
            );
        }
        tracing::info!(%client, from = resume.version, "a session moved here from a relay");
        Ok(client)
    }

    /// The client a join is: the one it resumes (with the version it resumes from), if its token
    /// matches, else a new one.
    fn resumed_or_new(&mut self, resume: Option<Resume>, user: Option<&str>) -> (ClientId, Option<u64>) {
        // A client the room does not know, resuming from before clients were forgotten, may be
        // one of them: it is a new client (its actions could not be deduplicated).
        // The token is bound to the identity: a resume by another user is a new client.
        let resumed = resume.filter(|r| {
            r.resume_token == self.resume_token(&r.client, user)
                && (self.known.contains_key(&r.client) || r.version >= self.clients_floor)
        });
        let Some(r) = resumed else {
            return (self.new_client_id(), None);
        };
        // The old connection may not have been noticed dead yet: the new one replaces it.
        if let Some(old) = self.clients.remove(&r.client) {
            old.link.closer.close(close::NORMAL, "replaced by a newer connection of the same client");
            self.presence_gone(&r.client, &old);
        }
        (r.client, Some(r.version))
    }

    /// The welcome of `client`: a snapshot unless it catches up from the log, the presence and
    /// users of the others, its undo and redo steps.
    fn welcome(&self, client: &ClientId, acked: u64, catchup: bool, request: &JoinRequest) -> String {
        let user = request.identity.as_deref().map(|i| i.user.as_str());
        let resume_token = self.resume_token(client, user);
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
        let (undo_steps, redo_steps) = self.undo.steps(client);
        protocol::encode_welcome(&protocol::Welcome {
            t: "welcome",
            protocol: protocol::PROTOCOL_VERSION,
            client,
            resume_token: &resume_token,
            version: self.doc.version(),
            acked,
            snapshot: match (catchup, request.compact_snapshots) {
                (true, _) => None,
                (false, true) => Some(protocol::compact_snapshot_view(&self.doc)),
                (false, false) => Some(protocol::snapshot_view(&self.doc)),
            },
            presence,
            read_only: request.read_only,
            undo_steps,
            redo_steps,
            identity: request.identity.as_deref().map(protocol::UserView::of),
            users,
        })
    }

    /// Tells the others that `client`'s presence is gone (if it had one).
    fn presence_gone(&mut self, client: &ClientId, c: &Connected) {
        if !c.presence.is_null() {
            let frame: Frame = protocol::encode_presence(client, c.identity.as_deref(), &Value::Null).into();
            self.broadcast(&frame, None);
        }
    }

    /// The updates after version `v`, if the log still holds all of them (and not too many to
    /// queue; a snapshot is cheaper then).
    pub(super) fn log_since(&self, v: u64) -> Option<Vec<Frame>> {
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

    pub(super) fn new_client_id(&self) -> ClientId {
        loop {
            let n: u64 = rand::random();
            let id = compact_str::format_compact!("c{}", base36(n, 10));
            if !self.known.contains_key(&id) && !self.clients.contains_key(&id) {
                return id;
            }
        }
    }

    /// The resume token of `client` as user `user`: a resume by another user (or an anonymous
    /// one of a user's client) does not match, so it becomes a new client.
    pub(super) fn resume_token(&self, client: &str, user: Option<&str>) -> String {
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

    pub(super) fn trim_log(&mut self) {
        while self.log.len() > self.limits.room_log_versions_max || self.log_bytes > self.limits.room_log_bytes_max {
            match self.log.pop_front() {
                Some((_, f)) => self.log_bytes -= f.len(),
                None => break,
            }
        }
    }

    /// Past `room_known_clients_max`, forgets the disconnected clients whose last action is
    /// oldest (a tenth of the bound at once), and raises `clients_floor` past them.
    pub(super) fn forget_oldest_clients(&mut self) {
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

    /// Removes a client (closing its session if `close` is given) and tells the others its
    /// presence is gone; `true` if `close` was the session's first close reason.
    pub(super) fn drop_client(&mut self, client: &ClientId, close: Option<(u16, String)>) -> bool {
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
        self.presence_gone(client, &c);
        first
    }
}

fn base36(mut n: u64, digits: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; digits];
    for d in out.iter_mut().rev() {
        *d = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).expect("invariant: base36 digits are ASCII")
}
