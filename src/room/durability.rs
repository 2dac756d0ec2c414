//! Nothing is sent before it is durable (with a durable store): messages held in order until the
//! store batch they wait for commits, one store operation at a time (a batch of updates and client
//! records, or a snapshot when one is due), and the failure of the store.
//!
//! Must not: let a message pass one held before it, or a welcome show state that is not durable.

use super::actor::RoomState;
use super::{ClientId, Frame, JoinError};
use crate::protocol::close;
use crate::store::{KnownClient, RoomSnapshot, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A message waiting for the store: released, in order, once its version is durable.
pub(super) struct Held {
    /// The store batch ([`RoomState::batch_seq`]) that must be committed first: the one holding
    /// this update or the reject's client record, or a batch before it (keeping the order).
    pub(super) batch: u64,
    pub(super) frame: Frame,
    /// `None`: to everyone; `Some`: to one client (a reject).
    pub(super) to: Option<ClientId>,
    /// The version of a logged update (for the stream to other nodes).
    pub(super) version: Option<u64>,
}

/// Store work in flight: resolves to the number of the batch now committed (`None` for a snapshot).
pub(super) type StoreOp = Pin<Box<dyn Future<Output = Result<Option<u64>, StoreError>> + Send>>;

/// Updates between snapshots; the log is compacted behind each snapshot.
const SNAPSHOT_EVERY_UPDATES: u64 = 1000;
/// Time between snapshots of a room that changed.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(60);

impl RoomState {
    /// Sends now, or after the updates before it are durable (keeping everyone's order).
    pub(super) fn release_or_hold(&mut self, frame: Frame, to: Option<ClientId>, version: Option<u64>) {
        let pending = if self.unsynced.entries.is_empty() && self.unsynced.clients.is_empty() {
            self.held.back().map(|h| h.batch)
        } else {
            Some(self.batch_seq)
        };
        match pending {
            Some(batch) if self.durable => self.hold(Held { batch, frame, to, version }),
            _ => match to {
                None => self.outbox.push((frame, version)),
                Some(client) => self.send_to(&client, frame),
            },
        }
    }

    /// Keeps a message until its version is durable.
    pub(super) fn hold(&mut self, held: Held) {
        self.held_bytes += held.frame.len();
        self.metrics.held_bytes.inc_by(held.frame.len() as i64);
        self.held.push_back(held);
    }

    /// Starts the next store operation if none is running: the pending updates, else a
    /// snapshot when one is due.
    pub(super) fn start_store_op(&mut self) {
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

    /// Handles a finished store operation: releases what is now durable.
    pub(super) fn store_done(&mut self, done: Result<Option<u64>, StoreError>) -> Result<(), StoreError> {
        let Some(committed) = done? else { return Ok(()) };
        while self.held.front().is_some_and(|h| h.batch <= committed) {
            let Some(h) = self.held.pop_front() else { break };
            self.held_bytes -= h.frame.len();
            self.metrics.held_bytes.dec_by(h.frame.len() as i64);
            match h.to {
                None => self.outbox.push((h.frame, h.version)),
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

    /// Waits for the store to hold everything applied so far.
    pub(super) async fn flush(&mut self) -> Result<(), StoreError> {
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

    /// Writes what is pending and a snapshot (compacting the log behind it), then gives the room
    /// up ([`Store::release`](crate::store::Store::release)): called when the actor ends.
    pub(super) async fn save(&mut self) {
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "could not write the room's last updates");
            return;
        }
        let snapshot = self.room_snapshot();
        let compact_to = self.doc.version().saturating_sub(self.limits.room_log_versions_max as u64);
        if let Err(e) = self.store.save_snapshot(&self.name, &snapshot, compact_to).await {
            tracing::error!(error = %e, "could not save the room");
            return;
        }
        if let Err(e) = self.store.release(&self.name).await {
            tracing::warn!(error = %e, "could not give the room up (another node takes it when its lease ends)");
        }
    }

    pub(super) fn room_snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            doc: self.doc.snapshot(),
            clients: self
                .known
                .iter()
                .filter(|(_, k)| k.last_action > 0)
                .map(|(id, k)| KnownClient { id: id.clone(), last_action: k.last_action })
                .collect(),
            clients_floor: self.clients_floor,
            schema: Some(self.doc.types().schema()),
        }
    }

    /// The store failed: what is held was never acknowledged. Close everyone, leave the
    /// registry; the next join loads the room from what the store has.
    pub(super) fn fail(&mut self, e: &StoreError) {
        if matches!(e, StoreError::Fenced { .. }) {
            self.metrics.fenced_writes.inc();
        }
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
}

/// Awaits the store operation in flight; never resolves when there is none.
pub(super) async fn poll_op(op: &mut Option<StoreOp>) -> Result<Option<u64>, StoreError> {
    match op.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}
