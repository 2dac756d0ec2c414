//! What an action based on an older version meets: its text edits are transformed against the
//! edits others committed since its base (and refused when the base is before the kept history,
//! or before the client's own later edit), and its list changes by index are refused when another
//! actor changed that list since (`list_base_stale`). The rules are in
//! [`text`](crate::model::text) and docs/model.md; this applies them inside a [`Tx`].

use super::{Mode, TextLog, Tx};
use crate::model::document::{AttrOp, ObjKey};
use crate::model::error::ModelError;
use crate::model::kind::TopicKind;
use crate::model::text::{transform_seqs, TextEdit};
use compact_str::CompactString;

/// For one topic: the edits other actors made since the action's base, rewritten to apply after
/// this action's own earlier edits to that topic.
pub(super) struct TopicView {
    pub(super) topic: (ObjKey, u16),
    pub(super) concurrent: Vec<(TextEdit, CompactString)>,
}

impl Tx<'_> {
    /// Checks a list change by index of a client's request against the list's history (an
    /// append names no position: it is never stale).
    pub(super) fn check_list_request(&self, key: ObjKey, slot: u16, op: &AttrOp) -> Result<(), ModelError> {
        let by_index = matches!(
            op,
            AttrOp::ListInsert(Some(_), _) | AttrOp::ListRemove(..) | AttrOp::ListMove(..) | AttrOp::ListSet(..)
        );
        match (by_index, self.base, self.depth, self.mode) {
            (true, Some(base), 0, Mode::Request) => self.check_list_base(key, slot, base),
            _ => Ok(()),
        }
    }

    /// After the whole text of `topic` was set, later edits in this action are relative to the
    /// new text: nothing to transform them against.
    pub(super) fn text_replaced(&mut self, topic: (ObjKey, u16)) {
        self.text_log.push(TextLog { topic, edit: None });
        self.views.retain(|v| v.topic != topic);
        self.views.push(TopicView { topic, concurrent: Vec::new() });
    }

    /// Applies a text edit from a request, transformed against concurrent edits if it is based
    /// on an older version.
    pub(super) fn text_edit(
        &mut self,
        key: ObjKey,
        slot: u16,
        kind: TopicKind,
        edit: TextEdit,
    ) -> Result<(), ModelError> {
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
}
