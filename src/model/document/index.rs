//! The document's two indexes: [`IdIndex`] (object id to key, a hash probe) and [`RefIndex`]
//! (which attributes reference an object: the reverse of every `ref`, `ref_list` and `ref_dict`
//! value). They hold keys only; the objects stay in the document's slotmap. They do not decide
//! anything: [`Document`](super::Document) keeps them in step with the tree.

use super::{Map, ObjKey, SObject};
use slotmap::SlotMap;
use smallvec::SmallVec;

/// Id -> key. Stores only keys: each id lives once, in its object, and the table compares
/// against it there (about 9 bytes per object instead of 33).
#[derive(Default)]
pub(super) struct IdIndex {
    table: hashbrown::HashTable<ObjKey>,
    hasher: foldhash::fast::RandomState,
}

impl IdIndex {
    fn hash(&self, id: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(id)
    }
    pub(super) fn get(&self, objects: &SlotMap<ObjKey, SObject>, id: &str) -> Option<ObjKey> {
        let eq = |k: &ObjKey| objects.get(*k).is_some_and(|o| o.id == id);
        self.table.find(self.hash(id), eq).copied()
    }
    /// Adds `key` under `id`; the object must already be in `objects`.
    pub(super) fn insert(&mut self, objects: &SlotMap<ObjKey, SObject>, id: &str, key: ObjKey) {
        let hash = self.hash(id);
        let hasher = &self.hasher;
        let rehash = |k: &ObjKey| {
            use std::hash::BuildHasher;
            let o = objects.get(*k);
            // Every key in the table names a live object: ids leave the table before their
            // objects leave the slotmap.
            debug_assert!(o.is_some(), "invariant: the id index holds only live objects");
            o.map_or(0, |o| hasher.hash_one(o.id.as_str()))
        };
        self.table.insert_unique(hash, key, rehash);
    }
    /// Removes `id`; the object must still be in `objects`.
    pub(super) fn remove(&mut self, objects: &SlotMap<ObjKey, SObject>, id: &str) {
        let eq = |k: &ObjKey| objects.get(*k).is_some_and(|o| o.id == id);
        let entry = self.table.find_entry(self.hash(id), eq);
        debug_assert!(entry.is_ok(), "invariant: {id:?} is in the id index when it is removed");
        if let Ok(entry) = entry {
            entry.remove();
        }
    }
}

/// Target -> (referrer, attribute slot), one entry per reference (an id held twice is two
/// entries), so that deleting an object finds what points at it without a walk.
#[derive(Default)]
pub(super) struct RefIndex {
    by_target: Map<ObjKey, SmallVec<[(ObjKey, u16); 2]>>,
}

impl RefIndex {
    /// The references to `target`: (referrer, attribute slot).
    pub(super) fn to(&self, target: ObjKey) -> &[(ObjKey, u16)] {
        self.by_target.get(&target).map_or(&[], |list| list.as_slice())
    }
    /// Records that `referrer.slot` holds `target` once more.
    pub(super) fn add(&mut self, target: ObjKey, referrer: ObjKey, slot: u16) {
        self.by_target.entry(target).or_default().push((referrer, slot));
    }
    /// Records that `referrer.slot` holds `target` once less.
    pub(super) fn remove(&mut self, target: ObjKey, referrer: ObjKey, slot: u16) {
        let Some(list) = self.by_target.get_mut(&target) else {
            debug_assert!(false, "invariant: a reference being removed was recorded");
            return;
        };
        let at = list.iter().position(|&e| e == (referrer, slot));
        debug_assert!(at.is_some(), "invariant: a reference being removed was recorded");
        if let Some(i) = at {
            list.swap_remove(i);
        }
        if list.is_empty() {
            self.by_target.remove(&target);
        }
    }
    /// Drops every reference to `target` (it is leaving the document).
    pub(super) fn forget(&mut self, target: ObjKey) {
        self.by_target.remove(&target);
    }
}
