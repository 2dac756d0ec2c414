//! What a client's action, undo or presence and a server transaction do to the room: admitted
//! (read-only, action ids), applied to the document, then published once encoded (logged for
//! resumes, written to the store) or refused.
//!
//! Must not: send to a session itself (`durability.rs` holds or releases, `fanout.rs` sends).

use super::actor::RoomState;
use super::durability::Held;
use super::{ClientId, Frame};
use crate::model::{Actor, Change, ModelError, ObjId, Rejection, Transition, Tx, Value};
use crate::protocol;
use crate::store::{KnownClient, LogEntry};

impl RoomState {
    pub(super) fn actor_of(&self, client: &ClientId) -> Option<(Actor, bool)> {
        self.clients.get(client).map(|c| (Actor::Client(client.clone()), c.read_only))
    }

    /// Checks read-only and the action id; on success records it as processed.
    pub(super) fn admit(&mut self, client: &ClientId, id: u64) -> Option<Actor> {
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

    pub(super) fn action(&mut self, client: ClientId, id: u64, base: u64, changes: Vec<Change>, step: Option<&str>) {
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
                self.undo.record_in_step(&self.doc, &t, self.now_ms(), step);
                self.publish(&t, Some(id));
            }
            Err(r) => {
                let reason = r.error.to_string();
                self.reject(&client, id, r.code(), &reason, r.change_index);
            }
        }
    }

    pub(super) fn undo(&mut self, client: ClientId, id: u64, scope: Option<ObjId>, redo: bool) {
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

    pub(super) fn presence(&mut self, client: ClientId, state: Value) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        c.presence = state;
        let frame: Frame = protocol::encode_presence(&client, c.identity.as_deref(), &c.presence).into();
        self.flush_outbox();
        self.broadcast(&frame, Some(&client));
    }

    pub(super) fn server_transact<R>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, ModelError>,
    ) -> Result<R, Rejection> {
        let (t, r) = self.doc.transact(&Actor::Server, f)?;
        if !t.changes.is_empty() {
            self.publish(&t, None);
        }
        Ok(r)
    }

    /// Encodes a transition once, logs it (if it changed state) and sends it to every client.
    pub(super) fn publish(&mut self, t: &Transition, action: Option<u64>) {
        let origin = t.actor.client_id().unwrap_or("server");
        let events_only = !t.changes_state();
        // A logged update is encoded once: its changes for the store, the message around them.
        let logged = (!events_only && self.durable).then(|| protocol::encode_changes(&t.changes));
        let frame: Frame = match &logged {
            Some(changes) => protocol::encode_update_of(t.version, origin, action, changes, false).into(),
            None => protocol::encode_update(t.version, origin, action, &t.changes, events_only).into(),
        };
        if !events_only {
            self.log_bytes += frame.len();
            self.log.push_back((t.version, frame.clone()));
            self.trim_log();
            self.metrics.updates.inc();
            self.updates_since_snapshot += 1;
            if let Some(changes) = logged {
                let origin = t.actor.client_id().map(Into::into);
                let schema_version = self.doc.types().schema_version();
                self.unsynced.entries.push(LogEntry { version: t.version, origin, action, changes, schema_version });
                if let (Some(client), Some(id)) = (t.actor.client_id(), action) {
                    self.unsynced.clients.push(KnownClient { id: client.into(), last_action: id });
                }
            }
        }
        let version = (!events_only).then_some(t.version);
        self.release_or_hold(frame, None, version);
    }

    /// Refuses a processed action: its id now counts as processed (`acked`, `duplicate_action`).
    /// With a durable store the client hears of it only once that is durable, like an update:
    /// after a crash, `acked` never goes back below an action the client was told was refused.
    pub(super) fn reject(&mut self, client: &ClientId, action: u64, code: &str, reason: &str, change: Option<usize>) {
        self.metrics.rejects.inc();
        let frame: Frame = protocol::encode_reject(action, code, reason, change).into();
        if !self.durable {
            return self.release_or_hold(frame, Some(client.clone()), None);
        }
        // Released with the batch that commits the record (not with an earlier one in flight).
        self.unsynced.clients.push(KnownClient { id: client.clone(), last_action: action });
        self.hold(Held { batch: self.batch_seq, frame, to: Some(client.clone()), version: None });
    }

    /// Refuses an action that was not processed (its id does not count): read-only clients,
    /// duplicate ids.
    pub(super) fn refuse(&mut self, client: &ClientId, action: u64, code: &str, reason: &str) {
        self.metrics.rejects.inc();
        self.release_or_hold(protocol::encode_reject(action, code, reason, None).into(), Some(client.clone()), None);
    }
}
