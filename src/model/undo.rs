//! Undo and redo per client and per subtree: [`UndoHistory`].
//!
//! Each client has its own stack of steps; a step is one or more of its transitions (quick
//! successive transitions on the same objects merge, so a drag undoes at once). `undo(scope)`
//! takes the client's latest step that touched the scope object or anything under it, and
//! replays its inverse as a new transition through the document's checks: if the state moved on
//! in a conflicting way it is refused with `undo_conflict` and that step is dropped, never
//! half-applied. Text inverses are transformed against every text edit made since.
//!
//! The model has no clock: callers pass `now_ms` (any monotonic milliseconds).

use super::change::{Actor, AppliedChange, ObjId};
use super::document::{Document, ObjKey};
use super::error::ModelError;
use super::tx::Transition;
use crate::limits::ModelLimits;
use compact_str::CompactString;
use std::collections::{HashMap, VecDeque};

struct Step {
    /// The steps with the version after which each was valid.
    changes: Vec<(u64, AppliedChange)>,
    /// Ids of the objects changed directly.
    targets: Vec<ObjId>,
    /// Ids of the objects changed and all their ancestors (what scopes match).
    scope: Vec<ObjId>,
    last_ms: u64,
    /// The step the client named (an action's `step`): its later actions naming it merge here
    /// however long it takes.
    named: Option<CompactString>,
    /// About how many bytes the step holds ([`AppliedChange::approx_bytes`] of its changes).
    bytes: usize,
}

fn changes_bytes(changes: &[(u64, AppliedChange)]) -> usize {
    changes.iter().map(|(_, c)| c.approx_bytes()).sum()
}

#[derive(Default)]
struct ClientHistory {
    undo: VecDeque<Step>,
    redo: Vec<Step>,
    /// The next recorded transition starts a new step.
    boundary: bool,
    /// Bytes of its undo and redo steps.
    bytes: usize,
    /// When the client left (a count of departures, for their order); `None` while connected.
    /// Departed clients' histories are the first to go when the room's bound is reached.
    departed: Option<u64>,
}

impl ClientHistory {
    /// Drops the oldest step (undo first, then redo); its bytes, or `None` if there is none.
    fn drop_oldest(&mut self) -> Option<usize> {
        let step = self.undo.pop_front().or_else(|| (!self.redo.is_empty()).then(|| self.redo.remove(0)))?;
        self.bytes -= step.bytes;
        Some(step.bytes)
    }
}

/// Undo/redo stacks of every client of one document, bounded in steps and bytes per client
/// and in bytes per room (`ModelLimits::undo_*`).
pub struct UndoHistory {
    clients: HashMap<CompactString, ClientHistory>,
    steps_max: usize,
    merge_window_ms: u64,
    step_bytes_max: usize,
    client_bytes_max: usize,
    room_bytes_max: usize,
    /// Bytes of every client's steps.
    bytes: usize,
    departures: u64,
}

impl std::fmt::Debug for UndoHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UndoHistory").field("clients", &self.clients.len()).finish()
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Undo,
    Redo,
}

impl Direction {
    fn verb(self) -> &'static str {
        match self {
            Direction::Undo => "undo",
            Direction::Redo => "redo",
        }
    }
}

impl UndoHistory {
    /// Empty histories with the limits' step count and merge window.
    pub fn new(limits: &ModelLimits) -> Self {
        UndoHistory {
            clients: HashMap::new(),
            steps_max: limits.undo_steps_max,
            merge_window_ms: limits.undo_merge_window_ms,
            step_bytes_max: limits.undo_step_bytes_max,
            client_bytes_max: limits.undo_client_bytes_max,
            room_bytes_max: limits.undo_room_bytes_max,
            bytes: 0,
            departures: 0,
        }
    }

    /// How many undo and redo steps `client` has.
    pub fn steps(&self, client: &str) -> (usize, usize) {
        self.clients.get(client).map_or((0, 0), |h| (h.undo.len(), h.redo.len()))
    }

    /// Bytes held by every client's steps.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The client left the room: its history stays (it may come back and resume), but it is
    /// the first to go when the room's bound is reached.
    pub fn departed(&mut self, client: &str) {
        self.departures += 1;
        if let Some(h) = self.clients.get_mut(client) {
            h.departed = Some(self.departures);
        }
        self.enforce_room_bound();
    }

    /// The client is connected again.
    pub fn returned(&mut self, client: &str) {
        if let Some(h) = self.clients.get_mut(client) {
            h.departed = None;
        }
    }

    /// Keeps `client` within its bounds (steps, bytes), then the room within its own.
    fn enforce(&mut self, client: &str) {
        if let Some(h) = self.clients.get_mut(client) {
            while h.undo.len() > self.steps_max || h.bytes > self.client_bytes_max {
                match h.drop_oldest() {
                    Some(bytes) => self.bytes -= bytes,
                    None => break,
                }
            }
        }
        self.enforce_room_bound();
    }

    /// Drops departed clients' histories (the earliest departed first), then the oldest steps of
    /// the client holding the most, until the room is within `undo_room_bytes_max`.
    fn enforce_room_bound(&mut self) {
        while self.bytes > self.room_bytes_max {
            let departed = self.clients.iter().filter_map(|(id, h)| h.departed.map(|d| (d, id.clone()))).min();
            if let Some((_, id)) = departed {
                if let Some(h) = self.clients.remove(&id) {
                    self.bytes -= h.bytes;
                }
                continue;
            }
            let largest = self.clients.values_mut().max_by_key(|h| h.bytes);
            match largest.and_then(ClientHistory::drop_oldest) {
                Some(bytes) => self.bytes -= bytes,
                None => break,
            }
        }
        debug_assert_eq!(self.bytes, self.clients.values().map(|h| h.bytes).sum::<usize>(), "invariant: undo bytes");
    }

    /// Records a transition a client made (call after every accepted action, not after undo or
    /// redo, which this type records itself). Server transitions are not recorded.
    #[cfg(test)]
    pub fn record(&mut self, doc: &Document, t: &Transition, now_ms: u64) {
        self.record_in_step(doc, t, now_ms, None);
    }

    /// [`record`](Self::record) for an action that names its undo step: it merges into the
    /// client's latest step if that has the same name (whatever the time between them, whatever
    /// it changes, up to `undo_step_bytes_max`), and starts a step of its own otherwise. An
    /// action that names none merges by the time window, never into a named step.
    pub fn record_in_step(&mut self, doc: &Document, t: &Transition, now_ms: u64, step: Option<&str>) {
        let Actor::Client(client) = &t.actor else {
            return;
        };
        if !t.changes_state() {
            return;
        }
        let (targets, scope) = footprint(doc, &t.changes);
        let bytes: usize = t.changes.iter().map(AppliedChange::approx_bytes).sum();
        let h = self.clients.entry(client.clone()).or_default();
        let redo_bytes: usize = h.redo.drain(..).map(|s| s.bytes).sum();
        h.bytes -= redo_bytes;
        self.bytes -= redo_bytes;
        // Only attribute edits merge (a drag, typing): creating, deleting or moving an object is
        // always a step of its own.
        let merge = !h.boundary
            && h.undo.back().is_some_and(|last| {
                last.bytes + bytes <= self.step_bytes_max
                    && match (step, &last.named) {
                        (Some(name), Some(last_name)) => name == last_name.as_str(),
                        (None, None) => {
                            now_ms.saturating_sub(last.last_ms) < self.merge_window_ms
                                && !t.changes.iter().any(is_structural)
                                && !last.changes.iter().any(|(_, c)| is_structural(c))
                                && targets.iter().all(|id| last.targets.binary_search(id).is_ok())
                        }
                        _ => false,
                    }
            });
        h.boundary = false;
        let changes = t.changes.iter().cloned().map(|c| (t.version, c));
        match h.undo.back_mut() {
            Some(last) if merge => {
                last.changes.extend(changes);
                last.last_ms = now_ms;
                last.bytes += bytes;
                merge_sorted(&mut last.scope, scope);
                merge_sorted(&mut last.targets, targets);
            }
            _ => {
                let named = step.map(CompactString::from);
                h.undo.push_back(Step { changes: changes.collect(), targets, scope, last_ms: now_ms, named, bytes })
            }
        }
        h.bytes += bytes;
        self.bytes += bytes;
        let client = client.clone();
        self.enforce(&client);
    }

    /// Ends the client's current step: its next transition will not merge into it.
    #[cfg(test)]
    pub fn boundary(&mut self, client: &str) {
        if let Some(h) = self.clients.get_mut(client) {
            h.boundary = true;
        }
    }

    /// Drops a client's history (e.g. when it leaves for good).
    pub fn forget(&mut self, client: &str) {
        if let Some(h) = self.clients.remove(client) {
            self.bytes -= h.bytes;
        }
    }

    /// Undoes the client's latest step touching `scope` (or its latest step at all).
    pub fn undo(
        &mut self,
        doc: &mut Document,
        actor: &Actor,
        scope: Option<ObjKey>,
        now_ms: u64,
    ) -> Result<Transition, ModelError> {
        self.run(doc, actor, scope, now_ms, Direction::Undo)
    }

    /// Redoes the client's latest undone step touching `scope`.
    pub fn redo(
        &mut self,
        doc: &mut Document,
        actor: &Actor,
        scope: Option<ObjKey>,
        now_ms: u64,
    ) -> Result<Transition, ModelError> {
        self.run(doc, actor, scope, now_ms, Direction::Redo)
    }

    fn run(
        &mut self,
        doc: &mut Document,
        actor: &Actor,
        scope: Option<ObjKey>,
        now_ms: u64,
        dir: Direction,
    ) -> Result<Transition, ModelError> {
        let scope_id: Option<ObjId> = match scope {
            Some(k) => {
                Some(doc.id(k).map(ObjId::from).ok_or_else(|| ModelError::NoSuchObject { id: "<scope>".into() })?)
            }
            None => None,
        };
        let nothing = || ModelError::NothingToUndo {
            verb: dir.verb(),
            scope: scope_id.as_ref().map_or("the whole document".into(), |id| format!("object {id:?}")),
        };
        let client = actor.client_id().ok_or_else(nothing)?;
        let h = self.clients.get_mut(client).ok_or_else(nothing)?;
        let step = match dir {
            Direction::Undo => {
                let i = h.undo.iter().rposition(|s| matches(s, scope_id.as_deref())).ok_or_else(nothing)?;
                h.undo.remove(i).ok_or_else(nothing)?
            }
            Direction::Redo => {
                let i = h.redo.iter().rposition(|s| matches(s, scope_id.as_deref())).ok_or_else(nothing)?;
                h.redo.remove(i)
            }
        };
        // Taken out: whatever happens next, its bytes are no longer held.
        h.bytes -= step.bytes;
        self.bytes -= step.bytes;
        let version = step.changes.last().map_or(0, |(v, _)| *v);
        let t = doc.replay(actor, &step.changes).map_err(|e| match e {
            ModelError::UndoConflict { reason, .. } => ModelError::UndoConflict { verb: dir.verb(), version, reason },
            other => ModelError::UndoConflict { verb: dir.verb(), version, reason: other.to_string() },
        })?;
        let (targets, scope) = footprint(doc, &t.changes);
        let changes: Vec<(u64, AppliedChange)> = t.changes.iter().cloned().map(|c| (t.version, c)).collect();
        let bytes = changes_bytes(&changes);
        let done = Step { changes, targets, scope, last_ms: now_ms, named: None, bytes };
        match dir {
            Direction::Undo => h.redo.push(done),
            Direction::Redo => h.undo.push_back(done),
        }
        h.bytes += bytes;
        self.bytes += bytes;
        h.boundary = true;
        self.enforce(client);
        Ok(t)
    }
}

fn is_structural(c: &AppliedChange) -> bool {
    matches!(c, AppliedChange::Create { .. } | AppliedChange::Delete { .. } | AppliedChange::Move { .. })
}

fn matches(step: &Step, scope: Option<&str>) -> bool {
    scope.is_none_or(|id| step.scope.binary_search_by(|s| s.as_str().cmp(id)).is_ok())
}

/// The ids a transition changed directly, and those plus their ancestors; both sorted.
fn footprint(doc: &Document, changes: &[AppliedChange]) -> (Vec<ObjId>, Vec<ObjId>) {
    let mut targets: Vec<ObjId> = Vec::new();
    let mut scope: Vec<ObjId> = Vec::new();
    for c in changes.iter().filter(|c| c.changes_state()) {
        targets.push(c.target().into());
        scope.push(c.target().into());
        // A deleted object has no ancestors left in the document: start from its old parent.
        let anchor = match c {
            AppliedChange::Delete { parent, .. } => doc.key(parent).inspect(|_| scope.push(parent.clone())),
            other => doc.key(other.target()),
        };
        if let Some(k) = anchor {
            scope.extend(doc.ancestors(k).filter_map(|a| doc.id(a)).map(ObjId::from));
        }
    }
    targets.sort();
    targets.dedup();
    scope.sort();
    scope.dedup();
    (targets, scope)
}

fn merge_sorted(into: &mut Vec<ObjId>, more: Vec<ObjId>) {
    into.extend(more);
    into.sort();
    into.dedup();
}
