//! Undoing text edits without losing what others typed since: [`plan_text_undo`] moves each of
//! the step's own edits past every later edit of its topic (by transposition, with `exclude` and
//! `transform_one` from [`text`](crate::model::text)), so that their inverses apply to the text as
//! it is now. An edit that depends on an own edit (typed inside text it inserted, or deleting
//! across the place it deleted from) makes the undo a conflict. Reads the document's text
//! histories; changes nothing.

use crate::model::change::{AppliedChange, ObjId};
use crate::model::document::{AttrOp, Document, ObjKey, TextHistory};
use crate::model::error::ModelError;
use crate::model::text::{exclude, transform_one, utf16_len, TextEdit};
use compact_str::CompactString;

/// One own text edit of the step being undone, as it would read had it been made after every
/// later edit of its topic. Deletes keep the text they removed.
#[derive(Clone, Debug)]
pub(super) struct OwnEdit {
    pub(super) insert: bool,
    pub(super) pos: u32,
    pub(super) text: CompactString,
}

impl OwnEdit {
    fn len(&self) -> u32 {
        u32::try_from(utf16_len(&self.text)).unwrap_or(u32::MAX)
    }
    pub(super) fn edit(&self) -> TextEdit {
        if self.insert {
            TextEdit::Insert { pos: self.pos, text: self.text.clone() }
        } else {
            TextEdit::Delete { pos: self.pos, len: self.len() }
        }
    }
    pub(super) fn inverse(&self) -> OwnEdit {
        OwnEdit { insert: !self.insert, pos: self.pos, text: self.text.clone() }
    }
    pub(super) fn op(&self) -> AttrOp {
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
pub(super) type TextUndoPlan = Vec<(ObjId, CompactString, Vec<OwnEdit>)>;

fn conflict(version: u64, reason: String) -> ModelError {
    ModelError::UndoConflict { verb: "undo", version, reason }
}

/// Moves each topic's own edits (those of `changes`) past every later edit in its history, by
/// transposition: an edit `o` that followed own edit `e` is rewritten as if `e` had not happened
/// (`exclude`), and `e` as if made after it. When `o` depends on `e` (it edited inside text `e`
/// inserted, or deleted across the place `e` deleted from) the undo is refused as a conflict.
pub(super) fn plan_text_undo(doc: &Document, changes: &[(u64, AppliedChange)]) -> Result<TextUndoPlan, ModelError> {
    let own = own_edits(doc, changes)?;
    let mut plan = Vec::with_capacity(own.len());
    for (topic, mine) in own {
        let (obj, attr) = topic_names(doc, topic);
        let moved = move_to_end(doc, topic, &mine)?;
        plan.push((obj, attr, moved));
    }
    Ok(plan)
}

/// The text edits of `changes` by topic, each with its place in the topic's history. Edits of
/// objects that do not exist now are left out: the undo itself restores those as they were.
fn own_edits(doc: &Document, changes: &[(u64, AppliedChange)]) -> Result<Vec<(Topic, Vec<OwnAt>)>, ModelError> {
    let mut own: Vec<(Topic, Vec<OwnAt>)> = Vec::new();
    // (topic, version, how many of the topic's edits in that version were seen)
    let mut counts: Vec<(Topic, u64, u32)> = Vec::new();
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
    Ok(own)
}

/// The object id and attribute name of a topic of a live object.
fn topic_names(doc: &Document, topic: Topic) -> (ObjId, CompactString) {
    let o = &doc.objects[topic.0];
    (o.id.clone(), doc.types.get(o.type_idx).attrs[usize::from(topic.1)].name.clone())
}

/// One topic's own edits `mine` (in history order, never empty), moved past every later edit of
/// its history.
fn move_to_end(doc: &Document, topic: Topic, mine: &[OwnAt]) -> Result<Vec<OwnEdit>, ModelError> {
    let (first_v, first_n) = (mine[0].0, mine[0].1);
    let missing = || {
        let (obj, attr) = topic_names(doc, topic);
        conflict(first_v, format!("{obj}.{attr}: the text history no longer reaches back to this edit"))
    };
    let history: &TextHistory = doc.texts.get(&topic).ok_or_else(missing)?;
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
        transpose(&mut moved, entry.edit.clone(), first_v)?;
    }
    if next_own != mine.len() {
        return Err(missing());
    }
    Ok(moved)
}

/// Rewrites the own edits `moved` as if made after `other`, which followed them; `other` is
/// rewritten as if they had not happened, one by one from the latest. Refused when `other`
/// depends on one of them.
fn transpose(moved: &mut [OwnEdit], mut other: TextEdit, version: u64) -> Result<(), ModelError> {
    let inside = || conflict(version, "the text was edited inside this change since".into());
    for e in moved.iter_mut().rev() {
        other = exclude(&other, &e.edit()).ok_or_else(inside)?;
        let shifted = transform_one(&e.edit(), &other, false);
        match shifted.as_slice() {
            [TextEdit::Insert { pos, .. }] | [TextEdit::Delete { pos, .. }] => e.pos = *pos,
            _ => return Err(inside()),
        }
    }
    Ok(())
}
