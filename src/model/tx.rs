//! Transactions: [`Tx`] applies changes one by one, runs permissions, validators and reactions,
//! and either commits them as one [`Transition`] (one version) or rolls every step back.
//!
//! Rollback applies the exact inverse of each recorded step in reverse order, so a refused action
//! leaves the document as it was, bit for bit. Beside it, in `tx/`: `concurrent` (text edits
//! based on an older version, transformed against the edits others made since; list changes by
//! index checked against them), `replay` (undo and redo, and rollback: inverse steps replayed
//! against the current state) and `text_undo` (own text edits moved past later ones before they
//! are undone).

mod concurrent;
mod replay;
mod text_undo;

use super::change::{Actor, AppliedChange, Change, NodeSnapshot, ObjId};
use super::document::{AttrOp, Author, Document, IdRule, ObjKey};
use super::error::{ModelError, Rejection};
use super::identity::Identity;
use super::kind::TopicKind;
use super::registry::{Access, SObjectType};
use super::text::TextEdit;
use super::value::Dict;
use crate::limits::TEXT_SWEEP_EVERY;
use compact_str::CompactString;
use concurrent::TopicView;
use replay::replay_on;
use std::collections::HashSet;

/// The result of a committed transaction: the ordered steps actually applied (reactions and
/// reference clearing included), under one version, ready to broadcast.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The document's version after it. Transitions that change state (all but event-only ones)
    /// take the next version; event-only ones carry the current version.
    pub version: u64,
    /// Who made it.
    pub actor: Actor,
    /// The steps, in order.
    pub changes: Vec<AppliedChange>,
}

impl Transition {
    /// Whether any step changes stored state (and so the version advanced).
    pub fn changes_state(&self) -> bool {
        self.changes.iter().any(AppliedChange::changes_state)
    }
    /// The steps that undo it, in the order to apply them.
    pub fn inverse(&self) -> Vec<AppliedChange> {
        self.changes.iter().rev().filter_map(AppliedChange::inverse).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Changes asked for by an actor or by server code.
    Request,
    /// Inverse steps replayed by undo or redo.
    Replay,
    /// Changes of a stored update re-applied on load: hooks, validators and reactions already
    /// ran when it was made.
    Restore,
}

/// A pending text-history entry, written to the document on commit.
struct TextLog {
    topic: (ObjKey, u16),
    /// `None`: the whole text was replaced, older edits can no longer be transformed.
    edit: Option<TextEdit>,
}

/// An open transaction on a [`Document`]. Reads go through `Deref<Target = Document>`; changes
/// go through [`apply`](Tx::apply) or the typed [`Attr`](super::Attr) handles.
pub struct Tx<'d> {
    doc: &'d mut Document,
    actor: Actor,
    base: Option<u64>,
    mode: Mode,
    applied: Vec<AppliedChange>,
    text_log: Vec<TextLog>,
    views: Vec<TopicView>,
    depth: usize,
    /// The server id counter when the transaction began: a refused transaction leaves no trace,
    /// not even an id it used up.
    next_server_id_at_start: u64,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Document;
    fn deref(&self) -> &Document {
        self.doc
    }
}

impl Document {
    /// Applies an actor's action atomically: every change is checked and applied, with
    /// reactions, or none is. `base` is the version the actor saw (text edits made on an older
    /// version are transformed); `None` means the current version.
    pub fn apply(&mut self, actor: &Actor, base: Option<u64>, changes: Vec<Change>) -> Result<Transition, Rejection> {
        if changes.is_empty() {
            return Err(ModelError::EmptyAction.into());
        }
        if changes.len() > self.limits.action_changes_max {
            return Err(ModelError::TooManyChanges { limit: self.limits.action_changes_max }.into());
        }
        if let Some(base) = base.filter(|&b| b > self.version) {
            return Err(ModelError::BadBase { base, version: self.version }.into());
        }
        let mut tx = Tx::new(self, actor.clone(), base, Mode::Request);
        for (i, change) in changes.into_iter().enumerate() {
            if let Err(error) = tx.apply(change) {
                tx.rollback();
                return Err(Rejection { change_index: Some(i), error });
            }
        }
        Ok(tx.commit())
    }

    /// Re-applies the changes of a stored update (their forward form, as broadcast) as the next
    /// version, without running validators, reactions or build hooks again: their effects are
    /// among the changes. Used to load a room from its snapshot and log.
    pub fn restore(&mut self, changes: Vec<Change>) -> Result<Transition, Rejection> {
        self.restore_as(&Actor::Server, changes)
    }

    /// [`restore`](Self::restore) as the actor that made the update (its `origin`): text and
    /// list histories then record whose edits they were, as when the room was running, so an
    /// action decides the same after a restart.
    pub fn restore_as(&mut self, actor: &Actor, changes: Vec<Change>) -> Result<Transition, Rejection> {
        let mut tx = Tx::new(self, actor.clone(), None, Mode::Restore);
        for (i, change) in changes.into_iter().enumerate() {
            if let Err(error) = tx.apply(change) {
                tx.rollback();
                return Err(Rejection { change_index: Some(i), error });
            }
        }
        Ok(tx.commit())
    }

    /// Runs `f` as one transaction by `actor` (usually [`Actor::Server`]): everything it changes
    /// commits as one transition, or nothing does if it returns an error.
    pub fn transact<R>(
        &mut self,
        actor: &Actor,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, ModelError>,
    ) -> Result<(Transition, R), Rejection> {
        let mut tx = Tx::new(self, actor.clone(), None, Mode::Request);
        match f(&mut tx) {
            Ok(r) => Ok((tx.commit(), r)),
            Err(error) => {
                tx.rollback();
                Err(error.into())
            }
        }
    }
}

impl<'d> Tx<'d> {
    fn new(doc: &'d mut Document, actor: Actor, base: Option<u64>, mode: Mode) -> Self {
        let next_server_id_at_start = doc.next_server_id;
        doc.acting = actor.client_id().map(Into::into);
        Tx {
            doc,
            actor,
            base,
            mode,
            applied: Vec::new(),
            text_log: Vec::new(),
            views: Vec::new(),
            depth: 0,
            next_server_id_at_start,
        }
    }

    /// Who acts in this transaction.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The identity of the client acting (`None` for server code or an anonymous client): what
    /// reactions and build hooks see of who made the change.
    pub fn identity(&self) -> Option<&Identity> {
        self.actor.client_id().and_then(|c| self.doc.identity(c))
    }

    /// The steps applied so far.
    pub fn applied(&self) -> &[AppliedChange] {
        &self.applied
    }

    /// Creates an object of type `T` under `parent` (at the end), with default attributes and a
    /// fresh server id; `T`'s `build` hooks run.
    pub fn create<T: SObjectType>(&mut self, parent: impl Into<ObjKey>) -> Result<T, ModelError> {
        self.create_at::<T>(parent, None)
    }

    /// Creates an object of type `T` under `parent` at `index`.
    pub fn create_at<T: SObjectType>(
        &mut self,
        parent: impl Into<ObjKey>,
        index: Option<u32>,
    ) -> Result<T, ModelError> {
        let key = self.create_dyn(T::NAME, parent.into(), index, Dict::new())?;
        Ok(T::from_key(key))
    }

    /// Creates an object of a type given by name, with initial attribute values.
    pub fn create_dyn(
        &mut self,
        type_name: &str,
        parent: ObjKey,
        index: Option<u32>,
        attrs: Dict,
    ) -> Result<ObjKey, ModelError> {
        let parent = self.doc.id(parent).ok_or_else(|| stale("parent"))?.into();
        let id = self.doc.new_server_id();
        self.apply(Change::Create {
            id: id.clone(),
            type_name: type_name.into(),
            parent,
            index,
            attrs,
            children: Vec::new(),
        })?;
        self.doc.resolve(&id)
    }

    /// Deletes an object and its subtree.
    pub fn delete(&mut self, obj: impl Into<ObjKey>) -> Result<(), ModelError> {
        let id = self.doc.id(obj.into()).ok_or_else(|| stale("object"))?.into();
        self.apply(Change::Delete { id })
    }

    /// Moves an object under `parent` at `index` (the end if `None`).
    pub fn move_to(
        &mut self,
        obj: impl Into<ObjKey>,
        parent: impl Into<ObjKey>,
        index: Option<u32>,
    ) -> Result<(), ModelError> {
        let id = self.doc.id(obj.into()).ok_or_else(|| stale("object"))?.into();
        let parent = self.doc.id(parent.into()).ok_or_else(|| stale("parent"))?.into();
        self.apply(Change::Move { id, parent, index })
    }

    /// Applies one requested change (with its reactions) inside this transaction.
    pub fn apply(&mut self, change: Change) -> Result<(), ModelError> {
        if self.applied.len() >= self.doc.limits.action_changes_max {
            return Err(ModelError::TooManyChanges { limit: self.doc.limits.action_changes_max });
        }
        let start = self.applied.len();
        match change {
            Change::Create { .. } => self.apply_create(change)?,
            Change::Delete { ref id } => {
                let key = self.doc.resolve(id)?;
                self.permit(key, None, &change)?;
                self.delete_key(key)?;
            }
            Change::Move { ref id, ref parent, index } => {
                let key = self.doc.resolve(id)?;
                let parent = self.doc.resolve(parent)?;
                self.permit(key, Some(parent), &change)?;
                let step = self.doc.move_object(key, parent, index)?;
                self.applied.push(step);
            }
            _ => {
                let (key, slot) = self.apply_attr(change)?;
                return self.react_attr(key, slot);
            }
        }
        self.react(start)
    }

    fn apply_create(&mut self, change: Change) -> Result<(), ModelError> {
        let parent_key = match &change {
            Change::Create { parent, .. } => self.doc.resolve(parent)?,
            _ => return Ok(()),
        };
        self.permit(parent_key, None, &change)?;
        let Change::Create { id, type_name, parent, index, attrs, children } = change else {
            return Ok(());
        };
        let len = self.doc.children(parent_key).len();
        let index = match index {
            Some(i) if i as usize > len => {
                return Err(ModelError::OutOfRange {
                    target: format!("children of {parent}"),
                    index: u64::from(i),
                    len: len as u64,
                })
            }
            Some(i) => i as usize,
            None => len,
        };
        let rule = match (&self.actor, self.depth) {
            (Actor::Client(c), 0) => IdRule::Client(c),
            _ => IdRule::Any,
        };
        let request = NodeSnapshot { id, type_name, attrs, children };
        let mut seen = HashSet::new();
        let node = self.doc.normalize_node(&request, self.doc.depth(parent_key) + 1, rule, &mut seen, false)?;
        self.doc.check_refs(&node, &seen)?;
        drop(seen);
        let keys = self.doc.insert_subtree(parent_key, index, &node);
        self.applied.push(AppliedChange::Create { parent, index: index as u32, node });
        for &key in &keys {
            let attrs = self.doc.types.get(self.doc.objects[key].type_idx).attrs.len() as u16;
            for slot in 0..attrs {
                self.validate(key, slot, None)?;
            }
        }
        Ok(())
    }

    fn delete_key(&mut self, key: ObjKey) -> Result<(), ModelError> {
        if key == self.doc.root() {
            return Err(ModelError::RootImmutable { verb: "deleted" });
        }
        for (referrer, slot) in self.doc.external_refs_into(key) {
            for op in self.doc.clearing_ops(referrer, slot, key) {
                let step = self.doc.attr_op(referrer, slot, op)?;
                self.applied.push(step);
            }
        }
        let step = self.doc.remove_subtree(key)?;
        self.applied.push(step);
        Ok(())
    }

    /// Applies a change to one attribute; returns which, for its reactions.
    fn apply_attr(&mut self, change: Change) -> Result<(ObjKey, u16), ModelError> {
        let key = self.doc.resolve(change.target())?;
        let Some(attr) = change.attr() else {
            unreachable!("invariant: Tx::apply sends create, delete and move elsewhere");
        };
        let (slot, kind) = self.doc.resolve_attr(key, attr)?;
        self.permit(key, None, &change)?;
        let op = match change {
            Change::Set { value, .. } => AttrOp::Set(value),
            Change::Add { value, .. } => AttrOp::Add(value),
            Change::TextInsert { pos, text, .. } => {
                self.text_edit(key, slot, kind, TextEdit::Insert { pos, text })?;
                return Ok((key, slot));
            }
            Change::TextDelete { pos, len, .. } => {
                self.text_edit(key, slot, kind, TextEdit::Delete { pos, len })?;
                return Ok((key, slot));
            }
            Change::DictSet { key: k, value, .. } => AttrOp::DictSet(k, value),
            Change::DictRemove { key: k, .. } => AttrOp::DictRemove(k),
            Change::ListInsert { index, value, .. } => AttrOp::ListInsert(index, value),
            Change::ListRemove { index, .. } => AttrOp::ListRemove(index),
            Change::ListMove { from, to, .. } => AttrOp::ListMove(from, to),
            Change::ListSet { index, value, .. } => AttrOp::ListSet(index, value),
            Change::SetAdd { value, .. } => AttrOp::SetAdd(value),
            Change::SetRemove { value, .. } => AttrOp::SetRemove(value),
            Change::Emit { args, .. } => AttrOp::Emit(args),
            Change::Create { .. } | Change::Delete { .. } | Change::Move { .. } => {
                unreachable!("invariant: Tx::apply sends create, delete and move elsewhere")
            }
        };
        let is_set = matches!(op, AttrOp::Set(_));
        self.check_list_request(key, slot, &op)?;
        let step = self.doc.attr_op(key, slot, op)?;
        if is_set && kind == TopicKind::String {
            self.text_replaced((key, slot));
        }
        match step {
            AppliedChange::Emit { ref args, .. } if self.has_validators(key, slot) => {
                let args = args.clone();
                self.applied.push(step);
                self.validate(key, slot, Some(&args))?;
            }
            step => {
                self.applied.push(step);
                self.validate(key, slot, None)?;
            }
        }
        Ok((key, slot))
    }

    fn has_validators(&self, key: ObjKey, slot: u16) -> bool {
        !self.doc.types.get(self.doc.objects[key].type_idx).attrs[usize::from(slot)].validators.is_empty()
    }

    /// Runs the reactions to a change of one attribute.
    fn react_attr(&mut self, key: ObjKey, slot: u16) -> Result<(), ModelError> {
        if self.mode == Mode::Restore {
            return Ok(());
        }
        let def = self.doc.types.get(self.doc.objects[key].type_idx);
        if def.attrs[usize::from(slot)].reactions.is_empty() {
            return Ok(());
        }
        let types = self.doc.types.clone();
        for r in &types.get(self.doc.objects[key].type_idx).attrs[usize::from(slot)].reactions {
            self.nested(|tx| r(tx, key))?;
        }
        Ok(())
    }

    fn names(&self, key: ObjKey, slot: u16) -> (CompactString, CompactString) {
        let o = &self.doc.objects[key];
        (o.id.clone(), self.doc.types.get(o.type_idx).attrs[usize::from(slot)].name.clone())
    }

    /// Asks the permission hook, for a client's own changes (not reactions, not server code).
    fn permit(&self, object: ObjKey, destination: Option<ObjKey>, change: &Change) -> Result<(), ModelError> {
        if self.depth > 0 || !matches!(self.actor, Actor::Client(_)) {
            return Ok(());
        }
        let Some(hook) = self.doc.types.permission_hook() else {
            return Ok(());
        };
        let identity = self.actor.client_id().and_then(|c| self.doc.identity(c));
        let access = Access { actor: &self.actor, identity, doc: self.doc, object, destination, change };
        hook(&access).map_err(|reason| ModelError::Denied { obj: self.doc.objects[object].id.clone(), reason })
    }

    /// Runs the validators of one attribute on its current value (or on event arguments).
    fn validate(&self, key: ObjKey, slot: u16, event_args: Option<&super::value::Value>) -> Result<(), ModelError> {
        if self.mode == Mode::Restore {
            return Ok(());
        }
        let def = self.doc.types.get(self.doc.objects[key].type_idx);
        let a = &def.attrs[usize::from(slot)];
        if a.validators.is_empty() {
            return Ok(());
        }
        let value = match event_args {
            Some(args) => args,
            None => &self.doc.objects[key].attrs[usize::from(slot)],
        };
        for f in &a.validators {
            f(self.doc, key, value).map_err(|reason| ModelError::Invalid {
                obj: self.doc.objects[key].id.clone(),
                attr: a.name.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Runs the hooks for the steps from `start` on: `build` for created objects, `on_delete`
    /// for deleted ones, reactions for changed attributes.
    fn react(&mut self, start: usize) -> Result<(), ModelError> {
        self.react_range(start, self.applied.len())
    }

    fn react_range(&mut self, start: usize, end: usize) -> Result<(), ModelError> {
        if self.mode == Mode::Restore {
            return Ok(());
        }
        let types = self.doc.types.clone();
        for i in start..end {
            match &self.applied[i] {
                AppliedChange::Create { node, .. } => {
                    let ids: Vec<ObjId> = subtree_ids(node);
                    for id in ids {
                        let Some(key) = self.doc.key(&id) else {
                            continue;
                        };
                        let hooks = types.get(self.doc.objects[key].type_idx).on_create.clone();
                        for h in hooks {
                            self.nested(|tx| h(tx, key))?;
                        }
                    }
                }
                AppliedChange::Delete { node, .. } => {
                    let mut stack = vec![node];
                    let mut calls = Vec::new();
                    while let Some(n) = stack.pop() {
                        if let Some(t) = types.index_of(&n.type_name) {
                            for h in &types.get(t).on_delete {
                                calls.push((h.clone(), n.clone()));
                            }
                        }
                        stack.extend(n.children.iter());
                    }
                    for (h, n) in calls {
                        self.nested(|tx| h(tx, &n))?;
                    }
                }
                AppliedChange::Move { .. } => {}
                step => {
                    let Some(key) = self.doc.key(step.target()) else {
                        continue;
                    };
                    let def = types.get(self.doc.objects[key].type_idx);
                    let Some(slot) = step.attr().and_then(|a| def.slot(a)) else {
                        continue;
                    };
                    for r in &def.attrs[usize::from(slot)].reactions {
                        self.nested(|tx| r(tx, key))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self) -> Result<(), ModelError>) -> Result<(), ModelError> {
        if self.depth >= self.doc.limits.reaction_depth_max {
            return Err(ModelError::ReactionDepth { limit: self.doc.limits.reaction_depth_max });
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn commit(self) -> Transition {
        let doc = self.doc;
        doc.acting = None;
        let changes_state = self.applied.iter().any(AppliedChange::changes_state);
        if changes_state {
            doc.version += 1;
        }
        let version = doc.version;
        // Every edit of a client's transaction is its own (reactions and undo included), the
        // same when the transaction is restored from the log after a restart.
        let by = Author::of(&self.actor);
        if changes_state {
            doc.record_list_ops(&self.applied, version, by.client.as_ref());
        }
        for t in self.text_log {
            doc.record_text(t.topic, version, &by, t.edit);
        }
        if changes_state && version.is_multiple_of(TEXT_SWEEP_EVERY) {
            doc.sweep_histories();
        }
        Transition { version, actor: self.actor, changes: self.applied }
    }

    fn rollback(self) {
        let doc = self.doc;
        doc.acting = None;
        let mut scratch = Vec::new();
        for step in self.applied.into_iter().rev() {
            if let Some(inverse) = step.inverse() {
                let r = replay_on(doc, inverse, &mut scratch);
                debug_assert!(r.is_ok(), "rollback step failed: {r:?}");
                scratch.clear();
            }
        }
        doc.next_server_id = self.next_server_id_at_start;
    }
}

fn stale(what: &str) -> ModelError {
    ModelError::NoSuchObject { id: format!("<stale {what} handle>").into() }
}

fn subtree_ids(node: &NodeSnapshot) -> Vec<ObjId> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        out.push(n.id.clone());
        stack.extend(n.children.iter().rev());
    }
    out
}
