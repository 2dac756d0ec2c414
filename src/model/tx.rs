//! Transactions: [`Tx`] applies changes one by one, runs permissions, validators and reactions,
//! and either commits them as one [`Transition`] (one version) or rolls every step back.
//!
//! Rollback applies the exact inverse of each recorded step in reverse order, so a refused action
//! leaves the document as it was, bit for bit. Text edits based on an older version are
//! transformed here against the edits other actors made since (see [`super::text`]).

use super::change::{Actor, AppliedChange, Change, NodeSnapshot, ObjId};
use super::document::{AttrOp, Author, Document, IdRule, ObjKey};
use super::error::{ModelError, Rejection};
use super::kind::TopicKind;
use super::registry::{Access, SObjectType};
use super::text::{exclude, transform_one, transform_seqs, utf16_len, TextEdit};
use super::value::Dict;
use crate::limits::TEXT_SWEEP_EVERY;
use compact_str::CompactString;
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

/// For one topic: the edits other actors made since the action's base, rewritten to apply after
/// this action's own earlier edits to that topic.
struct TopicView {
    topic: (ObjKey, u16),
    concurrent: Vec<(TextEdit, CompactString)>,
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

    /// Undoes `changes` (each with the version of its transition) as one new transaction by
    /// `actor`: their inverses in reverse order, each checked against the current state. Text
    /// edits are first moved past every later edit of their topic (see [`plan_text_undo`]), so
    /// undoing them keeps what others typed since.
    pub(crate) fn replay(&mut self, actor: &Actor, changes: &[(u64, AppliedChange)]) -> Result<Transition, ModelError> {
        let mut plan = plan_text_undo(self, changes)?;
        let mut tx = Tx::new(self, actor.clone(), None, Mode::Replay);
        for (version, change) in changes.iter().rev() {
            let Some(inverse) = change.inverse() else {
                continue;
            };
            if let Err(e) = tx.replay(inverse, *version, &mut plan) {
                tx.rollback();
                return Err(e);
            }
        }
        Ok(tx.commit())
    }
}

impl<'d> Tx<'d> {
    fn new(doc: &'d mut Document, actor: Actor, base: Option<u64>, mode: Mode) -> Self {
        let next_server_id_at_start = doc.next_server_id;
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
        let step = self.doc.remove_subtree(key);
        self.applied.push(step);
        Ok(())
    }

    /// Applies a change to one attribute; returns which, for its reactions.
    fn apply_attr(&mut self, change: Change) -> Result<(ObjKey, u16), ModelError> {
        let key = self.doc.resolve(change.target())?;
        let Some(attr) = change.attr() else {
            return Err(ModelError::Custom("not an attribute change".into()));
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
                return Err(ModelError::Custom("not an attribute change".into()))
            }
        };
        let is_set = matches!(op, AttrOp::Set(_));
        // An append (no index) names no position: it is never stale.
        let by_index = matches!(
            op,
            AttrOp::ListInsert(Some(_), _) | AttrOp::ListRemove(..) | AttrOp::ListMove(..) | AttrOp::ListSet(..)
        );
        if let (true, Some(base), 0, Mode::Request) = (by_index, self.base, self.depth, self.mode) {
            self.check_list_base(key, slot, base)?;
        }
        let step = self.doc.attr_op(key, slot, op)?;
        if is_set && kind == TopicKind::String {
            self.text_log.push(TextLog { topic: (key, slot), edit: None });
            // Later edits in this action are relative to the new text: nothing to transform.
            self.views.retain(|v| v.topic != (key, slot));
            self.views.push(TopicView { topic: (key, slot), concurrent: Vec::new() });
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

    /// Applies a text edit from a request, transformed against concurrent edits if it is based
    /// on an older version.
    fn text_edit(&mut self, key: ObjKey, slot: u16, kind: TopicKind, edit: TextEdit) -> Result<(), ModelError> {
        if kind != TopicKind::String {
            let (obj, attr) = self.names(key, slot);
            return Err(ModelError::WrongKind { obj, attr, kind, reason: "text edits apply to string topics".into() });
        }
        let from_request = self.depth == 0 && self.mode == Mode::Request;
        let edits = match self.base {
            Some(base) if from_request => self.transform_request(key, slot, base, edit)?,
            _ => vec![edit],
        };
        for edit in edits {
            self.apply_text(key, slot, edit)?;
        }
        self.validate(key, slot, None)
    }

    fn apply_text(&mut self, key: ObjKey, slot: u16, edit: TextEdit) -> Result<(), ModelError> {
        let op = match &edit {
            TextEdit::Insert { pos, text } => AttrOp::TextInsert(*pos, text.clone()),
            TextEdit::Delete { pos, len } => AttrOp::TextDelete(*pos, *len),
        };
        let step = self.doc.attr_op(key, slot, op)?;
        self.applied.push(step);
        self.text_log.push(TextLog { topic: (key, slot), edit: Some(edit) });
        Ok(())
    }

    fn transform_request(
        &mut self,
        key: ObjKey,
        slot: u16,
        base: u64,
        edit: TextEdit,
    ) -> Result<Vec<TextEdit>, ModelError> {
        let topic = (key, slot);
        let at = match self.views.iter().position(|v| v.topic == topic) {
            Some(i) => i,
            None => {
                let concurrent = self.concurrent_edits(topic, base)?;
                self.views.push(TopicView { topic, concurrent });
                self.views.len() - 1
            }
        };
        let my_tie = CompactString::from(self.actor.tie_key());
        let view = &mut self.views[at];
        let mut edits = vec![edit];
        let mut rewritten = Vec::with_capacity(view.concurrent.len());
        for (other, tie) in view.concurrent.drain(..) {
            let (mine, theirs) = transform_seqs(&edits, std::slice::from_ref(&other), my_tie < tie);
            edits = mine;
            rewritten.extend(theirs.into_iter().map(|e| (e, tie.clone())));
        }
        view.concurrent = rewritten;
        Ok(edits)
    }

    /// Committed edits to `topic` after version `since`, in order. An edit by this transaction's
    /// own client is an error: its client should have based on it.
    fn concurrent_edits(&self, topic: (ObjKey, u16), since: u64) -> Result<Vec<(TextEdit, CompactString)>, ModelError> {
        let history = self.doc.texts.get(&topic);
        let floor = history.map_or(0, |h| h.floor).max(self.doc.texts_floor).max(self.age_floor());
        let (obj, attr) = self.names(topic.0, topic.1);
        if since < floor && since < self.doc.version {
            return Err(ModelError::TextBaseTooOld { obj, attr, base: since, floor });
        }
        let mut out = Vec::new();
        for e in history.into_iter().flat_map(|h| h.entries.iter()).filter(|e| e.version > since) {
            if e.client.is_some() && e.client.as_deref() == self.actor.client_id() {
                return Err(ModelError::TextBaseStale { obj, attr, base: since, own: e.version });
            }
            out.push((e.edit.clone(), e.tie.clone()));
        }
        Ok(out)
    }

    /// A list change by index must be based on every change to that list by anyone else: an
    /// index computed before another client inserted, removed or moved an element would hit a
    /// different element. (The client's own later changes are fine: it made them on top.)
    fn check_list_base(&self, key: ObjKey, slot: u16, base: u64) -> Result<(), ModelError> {
        let history = self.doc.lists.get(&(key, slot));
        let floor = history.map_or(0, |h| h.floor).max(self.doc.texts_floor).max(self.age_floor());
        if base < floor && base < self.doc.version {
            let (obj, attr) = self.names(key, slot);
            return Err(ModelError::ListBaseTooOld { obj, attr, base, floor });
        }
        let me = self.actor.client_id();
        let foreign = history
            .into_iter()
            .flat_map(|h| h.entries.iter())
            .find(|e| e.version > base && (e.client.is_none() || e.client.as_deref() != me));
        match foreign {
            Some(e) => {
                let (obj, attr) = self.names(key, slot);
                Err(ModelError::ListBaseStale { obj, attr, base, changed: e.version })
            }
            None => Ok(()),
        }
    }

    /// Bases older than `text_history_versions_max` are refused whatever the histories hold, so
    /// that a running room and one restarted from its log (which keeps that many versions)
    /// decide alike.
    fn age_floor(&self) -> u64 {
        self.doc.version.saturating_sub(self.doc.limits.text_history_versions_max)
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
        let access = Access { actor: &self.actor, doc: self.doc, object, destination, change };
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

    /// Replays one inverse step (undo/redo), checking that the state is still what the step
    /// expects. Reference clearing it causes runs reactions; the step itself does not.
    fn replay(&mut self, step: AppliedChange, since: u64, plan: &mut TextUndoPlan) -> Result<(), ModelError> {
        if self.applied.len() >= self.doc.limits.action_changes_max {
            return Err(ModelError::TooManyChanges { limit: self.doc.limits.action_changes_max });
        }
        let conflict = |reason: String| ModelError::UndoConflict { verb: "undo", version: since, reason };
        // Text: apply the inverse of the edit as the plan moved it to the end of its history.
        if let AppliedChange::TextInsert { obj, attr, .. } | AppliedChange::TextDelete { obj, attr, .. } = &step {
            let key = self.doc.resolve(obj).map_err(|e| conflict(e.to_string()))?;
            let (slot, _) = self.doc.resolve_attr(key, attr)?;
            self.permit(key, None, &step.to_change())?;
            // Without a plan (the object was restored by this same undo), the edit applies where
            // it was made: the restored object is in the state it had then.
            let planned = plan.iter_mut().find(|(o, a, _)| o == obj && a == attr).and_then(|(_, _, edits)| edits.pop());
            let own = match (planned, &step) {
                (Some(own), _) => own,
                (None, AppliedChange::TextInsert { pos, text, .. }) => {
                    OwnEdit { insert: false, pos: *pos, text: text.clone() }
                }
                (None, AppliedChange::TextDelete { pos, text, .. }) => {
                    OwnEdit { insert: true, pos: *pos, text: text.clone() }
                }
                (None, _) => return Ok(()),
            };
            let edit = own.inverse();
            let done = self.doc.attr_op(key, slot, edit.op()).map_err(|e| conflict(e.to_string()))?;
            let expected = matches!((&done, &own), (AppliedChange::TextDelete { text, .. }, OwnEdit { insert: true, text: t, .. }) if text == t)
                || !own.insert;
            self.applied.push(done);
            if !expected {
                return Err(conflict(format!("{obj}.{attr}: the inserted text was changed since")));
            }
            self.text_log.push(TextLog { topic: (key, slot), edit: Some(edit.edit()) });
            return self.validate(key, slot, None);
        }
        let (object, destination) = self.replay_targets(&step).map_err(|e| conflict(e.to_string()))?;
        if self.doc.types.permission_hook().is_some() {
            self.permit(object, destination, &step.to_change())?;
        }
        let before = self.applied.len();
        let result = self.replay_step(step);
        result.map_err(|e| match e {
            ModelError::UndoConflict { .. } => e,
            other => conflict(other.to_string()),
        })?;
        // The replayed step (last) is validated; reference clearing before it runs reactions.
        let last = self.applied.len().saturating_sub(1);
        if last >= before {
            let step = &self.applied[last];
            if let (Some(key), Some(attr)) = (self.doc.key(step.target()), step.attr()) {
                let (slot, _) = self.doc.resolve_attr(key, attr)?;
                self.validate(key, slot, None)?;
            }
        }
        if last > before {
            self.react_range(before, last)?;
        }
        Ok(())
    }

    fn replay_targets(&self, step: &AppliedChange) -> Result<(ObjKey, Option<ObjKey>), ModelError> {
        Ok(match step {
            AppliedChange::Create { parent, .. } => (self.doc.resolve(parent)?, None),
            AppliedChange::Move { id, to_parent, .. } => (self.doc.resolve(id)?, Some(self.doc.resolve(to_parent)?)),
            other => (self.doc.resolve(other.target())?, None),
        })
    }

    /// Applies an inverse step if the state still matches what it expects.
    fn replay_step(&mut self, step: AppliedChange) -> Result<(), ModelError> {
        let step = replay_on(self.doc, step, &mut self.applied)?;
        if let Some(s) = step {
            self.applied.push(s);
        }
        Ok(())
    }

    fn commit(self) -> Transition {
        let doc = self.doc;
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

/// Applies `step` (an inverse) to `doc` if the state still matches: pushes reference-clearing
/// consequences to `out` and returns the step as applied.
fn replay_on(
    doc: &mut Document,
    step: AppliedChange,
    out: &mut Vec<AppliedChange>,
) -> Result<Option<AppliedChange>, ModelError> {
    let conflict = |reason: String| ModelError::UndoConflict { verb: "undo", version: 0, reason };
    let attr_of = |doc: &Document, obj: &str, attr: &str| -> Result<(ObjKey, u16), ModelError> {
        let key = doc.resolve(obj)?;
        Ok((key, doc.resolve_attr(key, attr)?.0))
    };
    use AppliedChange as A;
    let done = match step {
        A::Create { parent, index, node } => {
            let pk = doc.resolve(&parent)?;
            let mut seen = HashSet::new();
            let node = doc.normalize_node(&node, doc.depth(pk) + 1, IdRule::Any, &mut seen, true)?;
            doc.check_refs(&node, &seen)?;
            drop(seen);
            let index = (index as usize).min(doc.children(pk).len());
            doc.insert_subtree(pk, index, &node);
            A::Create { parent, index: index as u32, node }
        }
        A::Delete { node, .. } => {
            let key = doc.resolve(&node.id)?;
            if key == doc.root() {
                return Err(ModelError::RootImmutable { verb: "deleted" });
            }
            for (referrer, slot) in doc.external_refs_into(key) {
                for op in doc.clearing_ops(referrer, slot, key) {
                    out.push(doc.attr_op(referrer, slot, op)?);
                }
            }
            doc.remove_subtree(key)
        }
        A::Move { id, from_parent, to_parent, to_index, .. } => {
            let key = doc.resolve(&id)?;
            let current = doc.parent(key).and_then(|p| doc.id(p)).unwrap_or_default();
            if current != from_parent {
                return Err(conflict(format!("{id} was moved to {current} since")));
            }
            let pk = doc.resolve(&to_parent)?;
            let len = doc.children(pk).len() - usize::from(current == to_parent);
            doc.move_object(key, pk, Some(to_index.min(len as u32)))?
        }
        A::Set { obj, attr, old, new } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            if doc.value_at(key, slot) != Some(&old) {
                return Err(conflict(format!("{obj}.{attr} changed since")));
            }
            doc.attr_op(key, slot, AttrOp::Set(new))?
        }
        A::Add { obj, attr, delta, old, new } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::AddExact { delta, old, new })?
        }
        A::TextInsert { obj, attr, pos, text } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::TextInsert(pos, text))?
        }
        A::TextDelete { obj, attr, pos, text } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            let len = u32::try_from(utf16_len(&text)).unwrap_or(u32::MAX);
            let done = doc.attr_op(key, slot, AttrOp::TextDelete(pos, len))?;
            if let A::TextDelete { text: removed, .. } = &done {
                if *removed != text {
                    // Put it back before refusing: the caller rolls back only what it recorded.
                    let _ = doc.attr_op(key, slot, AttrOp::TextInsert(pos, removed.clone()));
                    return Err(conflict(format!("{obj}.{attr} changed since")));
                }
            }
            done
        }
        A::DictSet { obj, attr, key: k, old, new } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            let current = doc.value_at(key, slot).and_then(|v| v.as_dict()).and_then(|d| d.get(&k));
            if current != old.as_ref() {
                return Err(conflict(format!("{obj}.{attr}[{k:?}] changed since")));
            }
            match new {
                Some(v) => doc.attr_op(key, slot, AttrOp::DictSet(k, v))?,
                None => doc.attr_op(key, slot, AttrOp::DictRemove(k))?,
            }
        }
        A::ListInsert { obj, attr, index, value } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::ListInsert(Some(index), value))?
        }
        A::ListRemove { obj, attr, index, value } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            let current = doc.value_at(key, slot).and_then(|v| v.as_list()).and_then(|l| l.get(index as usize));
            if current != Some(&value) {
                return Err(conflict(format!("{obj}.{attr}[{index}] changed since")));
            }
            doc.attr_op(key, slot, AttrOp::ListRemove(index))?
        }
        A::ListMove { obj, attr, from, to } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::ListMove(from, to))?
        }
        A::ListSet { obj, attr, index, old, new } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            let current = doc.value_at(key, slot).and_then(|v| v.as_list()).and_then(|l| l.get(index as usize));
            if current != Some(&old) {
                return Err(conflict(format!("{obj}.{attr}[{index}] changed since")));
            }
            doc.attr_op(key, slot, AttrOp::ListSet(index, new))?
        }
        A::SetAdd { obj, attr, value } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::SetAdd(value))?
        }
        A::SetRemove { obj, attr, value } => {
            let (key, slot) = attr_of(doc, &obj, &attr)?;
            doc.attr_op(key, slot, AttrOp::SetRemove(value))?
        }
        A::Emit { .. } => return Ok(None),
    };
    Ok(Some(done))
}

/// One own text edit of the step being undone, as it would read had it been made after every
/// later edit of its topic. Deletes keep the text they removed.
#[derive(Clone, Debug)]
struct OwnEdit {
    insert: bool,
    pos: u32,
    text: CompactString,
}

impl OwnEdit {
    fn len(&self) -> u32 {
        u32::try_from(utf16_len(&self.text)).unwrap_or(u32::MAX)
    }
    fn edit(&self) -> TextEdit {
        if self.insert {
            TextEdit::Insert { pos: self.pos, text: self.text.clone() }
        } else {
            TextEdit::Delete { pos: self.pos, len: self.len() }
        }
    }
    fn inverse(&self) -> OwnEdit {
        OwnEdit { insert: !self.insert, pos: self.pos, text: self.text.clone() }
    }
    fn op(&self) -> AttrOp {
        if self.insert {
            AttrOp::TextInsert(self.pos, self.text.clone())
        } else {
            AttrOp::TextDelete(self.pos, self.len())
        }
    }
}

/// A string topic: object and attribute slot.
type Topic = (ObjKey, u16);

/// An own edit with its place in the history: version, and ordinal among the topic's edits at
/// that version (from 1).
type OwnAt = (u64, u32, OwnEdit);

/// Per topic (object id, attribute), the step's own edits moved to the end of the topic's
/// history, in order.
type TextUndoPlan = Vec<(ObjId, CompactString, Vec<OwnEdit>)>;

/// Moves each topic's own edits (those of `changes`) past every later edit in its history, by
/// transposition: an edit `o` that followed own edit `e` is rewritten as if `e` had not happened
/// (`exclude`), and `e` as if made after it. When `o` depends on `e` (it edited inside text `e`
/// inserted, or deleted across the place `e` deleted from) the undo is refused as a conflict.
fn plan_text_undo(doc: &Document, changes: &[(u64, AppliedChange)]) -> Result<TextUndoPlan, ModelError> {
    let conflict = |version: u64, reason: String| ModelError::UndoConflict { verb: "undo", version, reason };
    // (topic, [(version, ordinal among the topic's edits in that version, edit)])
    let mut own: Vec<(Topic, Vec<OwnAt>)> = Vec::new();
    let mut counts: Vec<((ObjKey, u16), u64, u32)> = Vec::new();
    for (v, c) in changes {
        let (obj, attr, edit) = match c {
            AppliedChange::TextInsert { obj, attr, pos, text } => {
                (obj, attr, OwnEdit { insert: true, pos: *pos, text: text.clone() })
            }
            AppliedChange::TextDelete { obj, attr, pos, text } => {
                (obj, attr, OwnEdit { insert: false, pos: *pos, text: text.clone() })
            }
            _ => continue,
        };
        // An object that does not exist now is restored by the undo itself, as it was.
        let Some(key) = doc.key(obj) else { continue };
        let (slot, _) = doc.resolve_attr(key, attr).map_err(|e| conflict(*v, e.to_string()))?;
        let topic = (key, slot);
        let n = match counts.iter_mut().find(|(t, cv, _)| *t == topic && cv == v) {
            Some(entry) => {
                entry.2 += 1;
                entry.2
            }
            None => {
                counts.push((topic, *v, 1));
                1
            }
        };
        match own.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, list)) => list.push((*v, n, edit)),
            None => own.push((topic, vec![(*v, n, edit)])),
        }
    }
    let mut plan = Vec::with_capacity(own.len());
    for (topic, mine) in own {
        let (first_v, first_n) = (mine[0].0, mine[0].1);
        let missing = || {
            let (obj, attr) = (
                doc.id(topic.0).unwrap_or_default(),
                &doc.types.get(doc.objects[topic.0].type_idx).attrs[usize::from(topic.1)].name,
            );
            conflict(first_v, format!("{obj}.{attr}: the text history no longer reaches back to this edit"))
        };
        let history = doc.texts.get(&topic).ok_or_else(missing)?;
        let mut moved: Vec<OwnEdit> = Vec::with_capacity(mine.len());
        let mut next_own = 0;
        let mut started = false;
        let mut at: (u64, u32) = (0, 0);
        for entry in &history.entries {
            at = if entry.version == at.0 { (at.0, at.1 + 1) } else { (entry.version, 1) };
            if !started {
                if at == (first_v, first_n) {
                    started = true;
                } else {
                    continue;
                }
            }
            if let Some((v, n, e)) = mine.get(next_own) {
                if (*v, *n) == at {
                    moved.push(e.clone());
                    next_own += 1;
                    continue;
                }
            }
            // Another edit after some of ours: transpose it before them.
            let mut other = entry.edit.clone();
            for e in moved.iter_mut().rev() {
                other = exclude(&other, &e.edit())
                    .ok_or_else(|| conflict(first_v, "the text was edited inside this change since".into()))?;
                let shifted = transform_one(&e.edit(), &other, false);
                match shifted.as_slice() {
                    [TextEdit::Insert { pos, .. }] | [TextEdit::Delete { pos, .. }] => e.pos = *pos,
                    _ => return Err(conflict(first_v, "the text was edited inside this change since".into())),
                }
            }
        }
        if next_own != mine.len() {
            return Err(missing());
        }
        let o = &doc.objects[topic.0];
        plan.push((o.id.clone(), doc.types.get(o.type_idx).attrs[usize::from(topic.1)].name.clone(), moved));
    }
    Ok(plan)
}
