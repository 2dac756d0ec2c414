//! Undo and redo as replay: [`Document::replay`] applies the inverses of recorded steps, newest
//! first, as one new transaction, each only if the state is still what the step left behind
//! (otherwise `undo_conflict`). Text edits are first moved past later edits of their topic
//! ([`plan_text_undo`]); deleting replays clear references as a client's delete does. The same
//! replay ([`replay_on`]) rolls back a refused transaction.

use super::text_undo::{plan_text_undo, OwnEdit, TextUndoPlan};
use super::{Mode, TextLog, Transition, Tx};
use crate::model::change::{Actor, AppliedChange, NodeSnapshot, ObjId};
use crate::model::document::{AttrOp, Document, IdRule, ObjKey};
use crate::model::error::ModelError;
use crate::model::text::utf16_len;
use crate::model::value::Value;
use compact_str::CompactString;
use std::collections::HashSet;

impl Document {
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

/// A text step as the own edit it undoes (the inverse of the step), with its object and
/// attribute; `None` for any other step.
fn text_step(step: &AppliedChange) -> Option<(OwnEdit, &ObjId, &CompactString)> {
    match step {
        AppliedChange::TextInsert { obj, attr, pos, text } => {
            Some((OwnEdit { insert: false, pos: *pos, text: text.clone() }, obj, attr))
        }
        AppliedChange::TextDelete { obj, attr, pos, text } => {
            Some((OwnEdit { insert: true, pos: *pos, text: text.clone() }, obj, attr))
        }
        _ => None,
    }
}

impl Tx<'_> {
    /// Replays one inverse step (undo/redo), checking that the state is still what the step
    /// expects. Reference clearing it causes runs reactions; the step itself does not.
    pub(super) fn replay(
        &mut self,
        step: AppliedChange,
        since: u64,
        plan: &mut TextUndoPlan,
    ) -> Result<(), ModelError> {
        if self.applied.len() >= self.doc.limits.action_changes_max {
            return Err(ModelError::TooManyChanges { limit: self.doc.limits.action_changes_max });
        }
        if let Some((own, obj, attr)) = text_step(&step) {
            return self.replay_text(&step, own, obj, attr, since, plan);
        }
        let conflict = |reason: String| ModelError::UndoConflict { verb: "undo", version: since, reason };
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

    /// Text: applies the inverse of the own edit as the plan moved it to the end of its history.
    /// Without a plan (the object was restored by this same undo), the edit applies where it was
    /// made (`unplanned`): the restored object is in the state it had then.
    fn replay_text(
        &mut self,
        step: &AppliedChange,
        unplanned: OwnEdit,
        obj: &ObjId,
        attr: &CompactString,
        since: u64,
        plan: &mut TextUndoPlan,
    ) -> Result<(), ModelError> {
        let conflict = |reason: String| ModelError::UndoConflict { verb: "undo", version: since, reason };
        let key = self.doc.resolve(obj).map_err(|e| conflict(e.to_string()))?;
        let (slot, _) = self.doc.resolve_attr(key, attr)?;
        self.permit(key, None, &step.to_change())?;
        let planned = plan.iter_mut().find(|(o, a, _)| o == obj && a == attr).and_then(|(_, _, edits)| edits.pop());
        let own = planned.unwrap_or(unplanned);
        let edit = own.inverse();
        let done = self.doc.attr_op(key, slot, edit.op()).map_err(|e| conflict(e.to_string()))?;
        // Undoing an insert deletes exactly the text it inserted, or the text changed since.
        let expected = !own.insert
            || matches!((&done, &own), (AppliedChange::TextDelete { text, .. }, OwnEdit { text: t, .. }) if text == t);
        self.applied.push(done);
        if !expected {
            return Err(conflict(format!("{obj}.{attr}: the inserted text was changed since")));
        }
        self.text_log.push(TextLog { topic: (key, slot), edit: Some(edit.edit()) });
        self.validate(key, slot, None)
    }

    /// The object a step acts on (the parent for a create) and, for a move, where it goes: what
    /// the permission hook is asked about.
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
}

fn conflict(reason: String) -> ModelError {
    ModelError::UndoConflict { verb: "undo", version: 0, reason }
}

/// What an attribute step expects to find before its inverse is applied.
enum Expect<'a> {
    /// Nothing: the operation itself checks what it needs.
    Nothing,
    /// The attribute holds this value.
    Value(&'a Value),
    /// The dict holds this value under this key (`None`: no such key).
    Key(&'a CompactString, Option<&'a Value>),
    /// The list holds this element at this index.
    Element(u32, &'a Value),
}

/// Applies `step` (an inverse) to `doc` if the state still matches: pushes reference-clearing
/// consequences to `out` and returns the step as applied (`None` for an event: nothing to undo).
pub(super) fn replay_on(
    doc: &mut Document,
    step: AppliedChange,
    out: &mut Vec<AppliedChange>,
) -> Result<Option<AppliedChange>, ModelError> {
    use AppliedChange as A;
    use Expect as E;
    let done = match step {
        A::Create { parent, index, node } => replay_create(doc, parent, index, &node)?,
        A::Delete { node, .. } => replay_delete(doc, &node.id, out)?,
        A::Move { id, from_parent, to_parent, to_index, .. } => {
            replay_move(doc, &id, &from_parent, &to_parent, to_index)?
        }
        A::Set { obj, attr, old, new } => replay_attr(doc, &obj, &attr, E::Value(&old), AttrOp::Set(new))?,
        A::Add { obj, attr, delta, old, new } => {
            replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::AddExact { delta, old, new })?
        }
        A::TextInsert { obj, attr, pos, text } => {
            replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::TextInsert(pos, text))?
        }
        A::TextDelete { obj, attr, pos, text } => replay_text_delete(doc, &obj, &attr, pos, &text)?,
        A::DictSet { obj, attr, key, old, new } => {
            let op = match new {
                Some(v) => AttrOp::DictSet(key.clone(), v),
                None => AttrOp::DictRemove(key.clone()),
            };
            replay_attr(doc, &obj, &attr, E::Key(&key, old.as_ref()), op)?
        }
        A::ListInsert { obj, attr, index, value } => {
            replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::ListInsert(Some(index), value))?
        }
        A::ListRemove { obj, attr, index, value } => {
            replay_attr(doc, &obj, &attr, E::Element(index, &value), AttrOp::ListRemove(index))?
        }
        A::ListMove { obj, attr, from, to } => replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::ListMove(from, to))?,
        A::ListSet { obj, attr, index, old, new } => {
            replay_attr(doc, &obj, &attr, E::Element(index, &old), AttrOp::ListSet(index, new))?
        }
        A::SetAdd { obj, attr, value } => replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::SetAdd(value))?,
        A::SetRemove { obj, attr, value } => replay_attr(doc, &obj, &attr, E::Nothing, AttrOp::SetRemove(value))?,
        A::Emit { .. } => return Ok(None),
    };
    Ok(Some(done))
}

/// Puts a deleted subtree back, checked as a create is (its ids must still be free, its
/// references must resolve), at its index or the end if the parent has fewer children now.
fn replay_create(
    doc: &mut Document,
    parent: ObjId,
    index: u32,
    node: &NodeSnapshot,
) -> Result<AppliedChange, ModelError> {
    let pk = doc.resolve(&parent)?;
    let mut seen = HashSet::new();
    let node = doc.normalize_node(node, doc.depth(pk) + 1, IdRule::Any, &mut seen, true)?;
    doc.check_refs(&node, &seen)?;
    drop(seen);
    let index = (index as usize).min(doc.children(pk).len());
    doc.insert_subtree(pk, index, &node);
    Ok(AppliedChange::Create { parent, index: index as u32, node })
}

/// Deletes a created subtree, clearing references into it first (pushed to `out`).
fn replay_delete(doc: &mut Document, id: &str, out: &mut Vec<AppliedChange>) -> Result<AppliedChange, ModelError> {
    let key = doc.resolve(id)?;
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

/// Moves an object back, if it is still where the step put it.
fn replay_move(
    doc: &mut Document,
    id: &str,
    from_parent: &str,
    to_parent: &str,
    to_index: u32,
) -> Result<AppliedChange, ModelError> {
    let key = doc.resolve(id)?;
    let Some(parent) = doc.parent(key) else {
        return Err(ModelError::RootImmutable { verb: "moved" });
    };
    let current = doc.objects[parent].id.as_str();
    if current != from_parent {
        return Err(conflict(format!("{id} was moved to {current} since")));
    }
    let pk = doc.resolve(to_parent)?;
    let len = doc.children(pk).len() - usize::from(current == to_parent);
    doc.move_object(key, pk, Some(to_index.min(len as u32)))
}

/// Applies `op` to `obj.attr` if the attribute still holds what `expect` says.
fn replay_attr(
    doc: &mut Document,
    obj: &str,
    attr: &str,
    expect: Expect<'_>,
    op: AttrOp,
) -> Result<AppliedChange, ModelError> {
    let (key, slot) = attr_of(doc, obj, attr)?;
    let current = doc.value_at(key, slot);
    let changed = match expect {
        Expect::Nothing => None,
        Expect::Value(v) => (current != Some(v)).then(|| format!("{obj}.{attr}")),
        Expect::Key(k, v) => {
            (current.and_then(|c| c.as_dict()).and_then(|d| d.get(k)) != v).then(|| format!("{obj}.{attr}[{k:?}]"))
        }
        Expect::Element(i, v) => {
            let at = current.and_then(|c| c.as_list()).and_then(|l| l.get(i as usize));
            (at != Some(v)).then(|| format!("{obj}.{attr}[{i}]"))
        }
    };
    if let Some(what) = changed {
        return Err(conflict(format!("{what} changed since")));
    }
    doc.attr_op(key, slot, op)
}

/// Deletes inserted text again, if it is still the text that was inserted.
fn replay_text_delete(
    doc: &mut Document,
    obj: &str,
    attr: &str,
    pos: u32,
    text: &str,
) -> Result<AppliedChange, ModelError> {
    let (key, slot) = attr_of(doc, obj, attr)?;
    let len = u32::try_from(utf16_len(text)).unwrap_or(u32::MAX);
    let done = doc.attr_op(key, slot, AttrOp::TextDelete(pos, len))?;
    if let AppliedChange::TextDelete { text: removed, .. } = &done {
        if *removed != text {
            // Put it back before refusing: the caller rolls back only what it recorded. It was
            // there a moment ago, so it fits again.
            let back = doc.attr_op(key, slot, AttrOp::TextInsert(pos, removed.clone()));
            debug_assert!(back.is_ok(), "invariant: removed text goes back where it was: {back:?}");
            return Err(conflict(format!("{obj}.{attr} changed since")));
        }
    }
    Ok(done)
}

fn attr_of(doc: &Document, obj: &str, attr: &str) -> Result<(ObjKey, u16), ModelError> {
    let key = doc.resolve(obj)?;
    Ok((key, doc.resolve_attr(key, attr)?.0))
}
