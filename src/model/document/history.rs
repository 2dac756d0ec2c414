//! What a document remembers of recent edits, per topic: [`TextHistory`] (the text edits a late
//! edit is transformed against) and [`ListHistory`] (when a list changed and by whom, for
//! `list_base_stale`), each bounded by `text_history_len_max` with a floor below which entries
//! may be missing. Records committed steps into them, sweeps idle ones, and rebuilds them from a
//! stored log on load. Decides nothing itself: the transaction reads them.

use super::{Document, Map, ObjKey, SObject};
use crate::model::change::{Actor, AppliedChange, Change};
use crate::model::kind::TopicKind;
use crate::model::text::TextEdit;
use crate::model::value::Value;
use compact_str::CompactString;
use slotmap::SlotMap;
use std::collections::VecDeque;

/// Text edits kept for one string topic.
#[derive(Default)]
pub(crate) struct TextHistory {
    /// Edits at versions `<= floor` may be missing (trimmed, or the text was replaced then).
    pub(crate) floor: u64,
    pub(crate) entries: VecDeque<TextEntry>,
}

/// A topic's history: edits or changes by version, with the floor below which some are missing.
pub(crate) trait History {
    /// The version of the newest entry, or the floor.
    fn last_version(&self) -> u64;
}

impl History for TextHistory {
    fn last_version(&self) -> u64 {
        self.entries.back().map_or(self.floor, |e| e.version)
    }
}

impl History for ListHistory {
    fn last_version(&self) -> u64 {
        self.entries.back().map_or(self.floor, |e| e.version)
    }
}

/// Appends to a history of at most `max` entries; the oldest one dropped raises the floor.
fn push_capped<T>(entries: &mut VecDeque<T>, floor: &mut u64, entry: T, max: usize, version: fn(&T) -> u64) {
    entries.push_back(entry);
    if entries.len() > max {
        if let Some(old) = entries.pop_front() {
            *floor = (*floor).max(version(&old));
        }
    }
}

/// Changes kept for one list topic: when it changed, and by whom (for `list_base_stale`).
#[derive(Default)]
pub(crate) struct ListHistory {
    /// Changes at versions `<= floor` may be missing.
    pub(crate) floor: u64,
    pub(crate) entries: VecDeque<ListEntry>,
}

pub(crate) struct ListEntry {
    pub(crate) version: u64,
    /// The client whose transaction it was; `None` for server code.
    pub(crate) client: Option<CompactString>,
}

pub(crate) struct TextEntry {
    pub(crate) version: u64,
    /// The client whose own request made it; `None` for server code and reactions.
    pub(crate) client: Option<CompactString>,
    pub(crate) tie: CompactString,
    pub(crate) edit: TextEdit,
}

/// Who made the steps being recorded: the client (`None` for server code) and the tie key that
/// orders its concurrent inserts.
pub(crate) struct Author {
    pub(crate) client: Option<CompactString>,
    pub(crate) tie: CompactString,
}

impl Author {
    pub(crate) fn of(actor: &Actor) -> Self {
        Author { client: actor.client_id().map(CompactString::from), tie: CompactString::from(actor.tie_key()) }
    }
}

/// Whether a stored change names a list position (an append names none, a set replaces it).
fn changes_list_by_index(change: &Change) -> bool {
    matches!(
        change,
        Change::ListInsert { .. }
            | Change::ListRemove { .. }
            | Change::ListMove { .. }
            | Change::ListSet { .. }
            | Change::Set { .. }
    )
}

impl Document {
    /// Records a committed step of string topic `topic` at `version`: an edit, or `None` when
    /// the whole text was replaced (older edits can no longer be transformed past it).
    pub(crate) fn record_text(&mut self, topic: (ObjKey, u16), version: u64, by: &Author, edit: Option<TextEdit>) {
        let history_max = self.limits.text_history_len_max;
        let h = self.texts.entry(topic).or_default();
        match edit {
            None => {
                h.entries.clear();
                h.floor = version;
            }
            Some(edit) => {
                let entry = TextEntry { version, client: by.client.clone(), tie: by.tie.clone(), edit };
                push_capped(&mut h.entries, &mut h.floor, entry, history_max, |e| e.version);
            }
        }
    }

    /// Records that list topic `topic` changed at `version` (by `client`), once per version and
    /// client: what a later change by index is checked against.
    fn record_list(&mut self, topic: (ObjKey, u16), version: u64, client: Option<&CompactString>) {
        let history_max = self.limits.text_history_len_max;
        let h = self.lists.entry(topic).or_default();
        if h.entries.back().is_some_and(|e| e.version == version && e.client.as_ref() == client) {
            return;
        }
        let entry = ListEntry { version, client: client.cloned() };
        push_capped(&mut h.entries, &mut h.floor, entry, history_max, |e| e.version);
    }

    /// Records, for every list attribute `changes` touched, that it changed at `version` (by
    /// `client`): what the list-base check of later changes by index reads.
    pub(crate) fn record_list_ops(&mut self, changes: &[AppliedChange], version: u64, client: Option<&CompactString>) {
        for c in changes {
            let list_op = match c {
                AppliedChange::ListInsert { .. }
                | AppliedChange::ListRemove { .. }
                | AppliedChange::ListMove { .. }
                | AppliedChange::ListSet { .. } => true,
                AppliedChange::Set { new, .. } => matches!(new, Value::List(_)),
                _ => false,
            };
            if !list_op {
                continue;
            }
            let (Some(key), Some(attr)) = (self.key(c.target()), c.attr()) else { continue };
            let Ok((slot, kind)) = self.resolve_attr(key, attr) else { continue };
            if matches!(kind, TopicKind::List | TopicKind::RefList) {
                self.record_list((key, slot), version, client);
            }
        }
    }

    /// Drops text and list histories of deleted objects and of topics idle for
    /// `text_history_versions_max`.
    pub(crate) fn sweep_histories(&mut self) {
        let horizon = self.version.saturating_sub(self.limits.text_history_versions_max);
        let mut floor = self.texts_floor;
        sweep(&mut self.texts, &self.objects, horizon, &mut floor);
        sweep(&mut self.lists, &self.objects, horizon, &mut floor);
        self.texts_floor = floor;
    }

    /// Rebuilds the text and list histories from updates already contained in this document
    /// (the stored log before the snapshot it was loaded from), so that edits based on those
    /// versions are transformed or refused exactly as the running room did. `updates` are the
    /// versions `first..=self.version()` in order, each with the actor that made it; if they do
    /// not reach the current version nothing is rebuilt (histories start at the snapshot).
    pub fn restore_histories(&mut self, updates: &[(u64, Actor, Vec<Change>)]) {
        let contiguous = updates.windows(2).all(|w| w[1].0 == w[0].0 + 1);
        let (Some(first), Some(last)) = (updates.first(), updates.last()) else { return };
        if !contiguous || last.0 != self.version || first.0 == 0 {
            return;
        }
        self.texts.clear();
        self.lists.clear();
        self.texts_floor = first.0 - 1;
        for (version, actor, changes) in updates {
            let by = Author::of(actor);
            for change in changes {
                self.restore_history_of(*version, &by, change);
            }
        }
    }

    /// Records one stored change as [`restore_histories`](Self::restore_histories) replays
    /// them: text edits and text replacements, and list changes by index.
    fn restore_history_of(&mut self, version: u64, by: &Author, change: &Change) {
        let Some(key) = self.key(change.target()) else { return };
        let Some(Ok((slot, kind))) = change.attr().map(|a| self.resolve_attr(key, a)) else { return };
        let edit = match change {
            Change::TextInsert { pos, text, .. } => Some(TextEdit::Insert { pos: *pos, text: text.clone() }),
            Change::TextDelete { pos, len, .. } => Some(TextEdit::Delete { pos: *pos, len: *len }),
            _ => None,
        };
        match (kind, change, edit) {
            (TopicKind::String, _, Some(edit)) => self.record_text((key, slot), version, by, Some(edit)),
            (TopicKind::String, Change::Set { .. }, None) => self.record_text((key, slot), version, by, None),
            (TopicKind::List | TopicKind::RefList, _, None) if changes_list_by_index(change) => {
                // One entry per version, whoever else changed the list in it.
                let h = self.lists.entry((key, slot)).or_default();
                if h.entries.back().is_some_and(|e| e.version == version) {
                    return;
                }
                let history_max = self.limits.text_history_len_max;
                let entry = ListEntry { version, client: by.client.clone() };
                push_capped(&mut h.entries, &mut h.floor, entry, history_max, |e| e.version);
            }
            _ => {}
        }
    }
}

/// Keeps the histories of live objects changed after `horizon`; raises `floor` past those of
/// live objects it drops.
fn sweep<H: History>(
    histories: &mut Map<(ObjKey, u16), H>,
    objects: &SlotMap<ObjKey, SObject>,
    horizon: u64,
    floor: &mut u64,
) {
    histories.retain(|(key, _), h| {
        let last = h.last_version();
        let keep = objects.contains_key(*key) && last > horizon;
        if !keep && objects.contains_key(*key) {
            *floor = (*floor).max(last);
        }
        keep
    });
}
