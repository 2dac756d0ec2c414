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
}

#[derive(Default)]
struct ClientHistory {
    undo: VecDeque<Step>,
    redo: Vec<Step>,
    /// The next recorded transition starts a new step.
    boundary: bool,
}

/// Undo/redo stacks of every client of one document.
pub struct UndoHistory {
    clients: HashMap<CompactString, ClientHistory>,
    steps_max: usize,
    merge_window_ms: u64,
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
        }
    }

    /// Records a transition a client made (call after every accepted action, not after undo or
    /// redo, which this type records itself). Server transitions are not recorded.
    pub fn record(&mut self, doc: &Document, t: &Transition, now_ms: u64) {
        let Actor::Client(client) = &t.actor else {
            return;
        };
        if !t.changes_state() {
            return;
        }
        let (targets, scope) = footprint(doc, &t.changes);
        let h = self.clients.entry(client.clone()).or_default();
        h.redo.clear();
        // Only attribute edits merge (a drag, typing): creating, deleting or moving an object is
        // always a step of its own.
        let merge = !h.boundary
            && !t.changes.iter().any(is_structural)
            && h.undo.back().is_some_and(|last| {
                now_ms.saturating_sub(last.last_ms) <= self.merge_window_ms
                    && !last.changes.iter().any(|(_, c)| is_structural(c))
                    && targets.iter().all(|id| last.targets.binary_search(id).is_ok())
            });
        h.boundary = false;
        let changes = t.changes.iter().cloned().map(|c| (t.version, c));
        match h.undo.back_mut() {
            Some(last) if merge => {
                last.changes.extend(changes);
                last.last_ms = now_ms;
                merge_sorted(&mut last.scope, scope);
            }
            _ => {
                h.undo.push_back(Step { changes: changes.collect(), targets, scope, last_ms: now_ms });
                if h.undo.len() > self.steps_max {
                    h.undo.pop_front();
                }
            }
        }
    }

    /// Ends the client's current step: its next transition will not merge into it.
    pub fn boundary(&mut self, client: &str) {
        if let Some(h) = self.clients.get_mut(client) {
            h.boundary = true;
        }
    }

    /// Drops a client's history (e.g. when it leaves for good).
    pub fn forget(&mut self, client: &str) {
        self.clients.remove(client);
    }

    /// Whether the client has a step to undo in `scope`.
    pub fn can_undo(&self, doc: &Document, client: &str, scope: Option<ObjKey>) -> bool {
        let scope = scope.and_then(|k| doc.id(k));
        self.clients.get(client).is_some_and(|h| h.undo.iter().any(|s| matches(s, scope)))
    }

    /// Whether the client has a step to redo in `scope`.
    pub fn can_redo(&self, doc: &Document, client: &str, scope: Option<ObjKey>) -> bool {
        let scope = scope.and_then(|k| doc.id(k));
        self.clients.get(client).is_some_and(|h| h.redo.iter().any(|s| matches(s, scope)))
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
        let version = step.changes.last().map_or(0, |(v, _)| *v);
        let t = doc.replay(actor, &step.changes).map_err(|e| match e {
            ModelError::UndoConflict { reason, .. } => ModelError::UndoConflict { verb: dir.verb(), version, reason },
            other => ModelError::UndoConflict { verb: dir.verb(), version, reason: other.to_string() },
        })?;
        let (targets, scope) = footprint(doc, &t.changes);
        let done = Step {
            changes: t.changes.iter().cloned().map(|c| (t.version, c)).collect(),
            targets,
            scope,
            last_ms: now_ms,
        };
        match dir {
            Direction::Undo => h.redo.push(done),
            Direction::Redo => {
                h.undo.push_back(done);
                if h.undo.len() > self.steps_max {
                    h.undo.pop_front();
                }
            }
        }
        h.boundary = true;
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
