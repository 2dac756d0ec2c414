//! The SObject tree of one room: [`Document`], its reads and its tree primitives.
//!
//! Owns the objects (in a slotmap, keyed by [`ObjKey`]; string ids outside), the tree links,
//! attribute values, the version counter and the server id counter. Offers cheap reads (by id,
//! children, ancestors, subtree) and the primitive steps that [`Tx`](super::Tx) composes into
//! transactions: insert, remove and move subtrees, link and unlink references. Does no I/O and
//! knows no clients beyond the [`Actor`](super::Actor) of a change.
//!
//! The rest of the document lives beside it: `index` (the id and reference indexes), `check`
//! (what must hold before anything enters the tree), `attr_op` (the attribute primitive, one
//! function per operation), `history` (the per-topic text and list histories) and `snapshot`
//! (snapshots and their serde forms).
//!
//! Costs: id lookup is a hash probe; child insert/remove is a search and `memmove` in the
//! parent's key vector; ancestor walks are bounded by `tree_depth_max`; deleting a subtree visits
//! it once. No step scans the whole document.

mod attr_op;
mod check;
mod history;
mod index;
mod snapshot;

pub(crate) use attr_op::AttrOp;
pub(crate) use check::IdRule;
pub(crate) use history::{Author, ListHistory, TextHistory};
pub use snapshot::DocSnapshot;

use super::change::{AppliedChange, NodeSnapshot, ObjId};
use super::error::ModelError;
use super::identity::Identity;
use super::kind::TopicKind;
use super::registry::{SObjectType, TypeIdx, TypeRegistry, ROOT_TYPE};
use super::value::{Dict, Value};
use crate::limits::ModelLimits;
use compact_str::CompactString;
use index::{IdIndex, RefIndex};
use slotmap::SlotMap;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

slotmap::new_key_type! {
    /// A document-local handle to an object: copyable, cheap, and never reused for another
    /// object (a stale key finds nothing).
    pub struct ObjKey;
}

pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Id of the root object of every document.
pub const ROOT_ID: &str = "root";

/// 2^53 - 1: the largest integer every JSON reader (JavaScript's among them) holds exactly.
/// Versions, server ids and action ids stay at or below it.
pub const JSON_SAFE_INT_MAX: u64 = (1 << 53) - 1;

pub(crate) struct SObject {
    pub(crate) id: ObjId,
    pub(crate) type_idx: TypeIdx,
    pub(crate) parent: Option<ObjKey>,
    /// A thin vector: 8 bytes in the object, nothing allocated for a leaf.
    pub(crate) children: thin_vec::ThinVec<ObjKey>,
    pub(crate) attrs: Box<[Value]>,
}

/// The SObject tree of one room, with its version. See the module docs.
pub struct Document {
    pub(crate) types: Arc<TypeRegistry>,
    pub(crate) limits: ModelLimits,
    pub(crate) objects: SlotMap<ObjKey, SObject>,
    ids: IdIndex,
    root: ObjKey,
    pub(crate) version: u64,
    /// Who references each object.
    refs: RefIndex,
    pub(crate) texts: Map<(ObjKey, u16), TextHistory>,
    /// List topics: when each changed and by whom.
    pub(crate) lists: Map<(ObjKey, u16), ListHistory>,
    /// Text and list histories dropped whole: edits at versions `<= texts_floor` may be missing
    /// anywhere.
    pub(crate) texts_floor: u64,
    pub(crate) next_server_id: u64,
    /// Who the clients are, as the room was told (for the hooks: permission, validators,
    /// reactions). Not part of the document's state: never in a snapshot or a transition.
    identities: HashMap<CompactString, Arc<Identity>>,
    /// The client whose transaction is running, if a client's.
    pub(crate) acting: Option<CompactString>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").field("version", &self.version).field("objects", &self.objects.len()).finish()
    }
}

impl Document {
    /// An empty document (just the root) with default limits.
    pub fn new(types: Arc<TypeRegistry>) -> Self {
        Self::with_limits(types, ModelLimits::default())
    }

    /// An empty document with the given limits.
    pub fn with_limits(types: Arc<TypeRegistry>, limits: ModelLimits) -> Self {
        let mut objects = SlotMap::with_key();
        let root_type = types.index_of(ROOT_TYPE).expect("invariant: every TypeRegistry defines the root type");
        let attrs = types.get(root_type).attrs.iter().map(|a| a.default.clone()).collect();
        let root = objects.insert(SObject {
            id: ROOT_ID.into(),
            type_idx: root_type,
            parent: None,
            children: thin_vec::ThinVec::new(),
            attrs,
        });
        let mut ids = IdIndex::default();
        ids.insert(&objects, ROOT_ID, root);
        Document {
            types,
            limits,
            objects,
            ids,
            root,
            version: 0,
            refs: RefIndex::default(),
            texts: Map::default(),
            lists: Map::default(),
            texts_floor: 0,
            next_server_id: 1,
            identities: HashMap::new(),
            acting: None,
        }
    }

    /// Tells the document who client `client` is (`None`: anonymous), for the hooks to see.
    pub fn set_identity(&mut self, client: &str, identity: Option<Arc<Identity>>) {
        match identity {
            Some(identity) => {
                self.identities.insert(client.into(), identity);
            }
            None => {
                self.identities.remove(client);
            }
        }
    }

    /// Who client `client` is, if the room was told.
    pub fn identity(&self, client: &str) -> Option<&Identity> {
        self.identities.get(client).map(|i| &**i)
    }

    /// The client whose transaction is running (`None` between transactions and for server
    /// code): what a validator, which sees only the document, asks to know who acts.
    pub fn acting_client(&self) -> Option<&str> {
        self.acting.as_deref()
    }

    /// The identity of the client whose transaction is running, if it has one.
    pub fn acting_identity(&self) -> Option<&Identity> {
        self.acting.as_deref().and_then(|c| self.identity(c))
    }

    /// Version of the last applied transition (0 for a new document).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The root object.
    pub fn root(&self) -> ObjKey {
        self.root
    }
    /// Number of objects, the root included.
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    /// Whether only the root exists.
    pub fn is_empty(&self) -> bool {
        self.objects.len() == 1
    }
    /// The registry of types.
    pub fn types(&self) -> &Arc<TypeRegistry> {
        &self.types
    }
    /// The limits in force.
    pub fn limits(&self) -> &ModelLimits {
        &self.limits
    }
    /// The object with this id.
    pub fn key(&self, id: &str) -> Option<ObjKey> {
        self.ids.get(&self.objects, id)
    }
    /// Whether the object exists.
    pub fn contains(&self, key: ObjKey) -> bool {
        self.objects.contains_key(key)
    }
    /// An object's id.
    pub fn id(&self, key: ObjKey) -> Option<&str> {
        self.objects.get(key).map(|o| o.id.as_str())
    }
    /// An object's type name.
    pub fn type_name(&self, key: ObjKey) -> Option<&str> {
        self.objects.get(key).map(|o| self.types.get(o.type_idx).name.as_str())
    }
    /// An object's parent (`None` for the root or a missing object).
    pub fn parent(&self, key: ObjKey) -> Option<ObjKey> {
        self.objects.get(key).and_then(|o| o.parent)
    }
    /// An object's children, in order.
    pub fn children(&self, key: ObjKey) -> &[ObjKey] {
        self.objects.get(key).map_or(&[], |o| &o.children)
    }
    /// The parent, its parent, ... up to the root.
    pub fn ancestors(&self, key: ObjKey) -> impl Iterator<Item = ObjKey> + '_ {
        std::iter::successors(self.parent(key), move |&k| self.parent(k))
    }
    /// Whether `key` is `ancestor` or lies under it.
    pub fn is_under(&self, key: ObjKey, ancestor: ObjKey) -> bool {
        key == ancestor || self.ancestors(key).any(|a| a == ancestor)
    }
    /// The object and every descendant, parents before children, in child order.
    pub fn subtree(&self, key: ObjKey) -> impl Iterator<Item = ObjKey> + '_ {
        let mut stack: Vec<ObjKey> = if self.contains(key) { vec![key] } else { Vec::new() };
        std::iter::from_fn(move || {
            let k = stack.pop()?;
            stack.extend(self.children(k).iter().rev());
            Some(k)
        })
    }
    /// An attribute's value by name (`None` if the object or attribute is missing, or it is an
    /// event).
    pub fn value(&self, key: ObjKey, attr: &str) -> Option<&Value> {
        let o = self.objects.get(key)?;
        let slot = self.types.get(o.type_idx).slot(attr)?;
        o.attrs.get(usize::from(slot))
    }
    pub(crate) fn value_at(&self, key: ObjKey, slot: u16) -> Option<&Value> {
        self.objects.get(key)?.attrs.get(usize::from(slot))
    }
    /// A typed handle to the object with this id, if it exists and has type `T`.
    pub fn get<T: SObjectType>(&self, id: &str) -> Result<T, ModelError> {
        let key = self.resolve(id)?;
        self.handle(key)
    }
    /// A typed handle to `key`, if it exists and has type `T`.
    pub fn handle<T: SObjectType>(&self, key: ObjKey) -> Result<T, ModelError> {
        let o = self.objects.get(key).ok_or_else(|| ModelError::NoSuchObject { id: "<stale handle>".into() })?;
        let name = &self.types.get(o.type_idx).name;
        if name != T::NAME {
            return Err(ModelError::WrongKind {
                obj: o.id.clone(),
                attr: CompactString::default(),
                kind: TopicKind::Ref,
                reason: format!("object is a {name}, not a {}", T::NAME),
            });
        }
        Ok(T::from_key(key))
    }
    /// Children of `key` that have type `T`, in order.
    pub fn children_of<T: SObjectType>(&self, key: ObjKey) -> impl Iterator<Item = T> + '_ {
        self.children(key).iter().filter_map(|&c| self.handle::<T>(c).ok())
    }
    /// Objects whose reference attributes point at `key`, with the attribute names (once per
    /// reference).
    pub fn referrers(&self, key: ObjKey) -> impl Iterator<Item = (ObjKey, &str)> + '_ {
        self.refs.to(key).iter().filter_map(move |&(r, slot)| {
            let o = self.objects.get(r)?;
            Some((r, self.types.get(o.type_idx).attrs[usize::from(slot)].name.as_str()))
        })
    }

    // ----- resolution -----

    pub(crate) fn resolve(&self, id: &str) -> Result<ObjKey, ModelError> {
        self.key(id).ok_or_else(|| ModelError::NoSuchObject { id: id.into() })
    }

    pub(crate) fn resolve_attr(&self, key: ObjKey, attr: &str) -> Result<(u16, TopicKind), ModelError> {
        let o = &self.objects[key];
        let def = self.types.get(o.type_idx);
        let slot = def.slot(attr).ok_or_else(|| ModelError::NoSuchAttribute {
            obj: o.id.clone(),
            type_name: def.name.clone(),
            attr: attr.into(),
        })?;
        Ok((slot, def.attrs[usize::from(slot)].kind))
    }

    pub(crate) fn attr_kind(&self, key: ObjKey, slot: u16) -> TopicKind {
        self.types.get(self.objects[key].type_idx).attrs[usize::from(slot)].kind
    }

    pub(crate) fn depth(&self, key: ObjKey) -> usize {
        self.ancestors(key).count()
    }

    fn height(&self, key: ObjKey) -> usize {
        let mut max = 0;
        let mut stack = vec![(key, 0usize)];
        while let Some((k, d)) = stack.pop() {
            max = max.max(d);
            stack.extend(self.children(k).iter().map(|&c| (c, d + 1)));
        }
        max
    }

    /// A fresh id for an object made by server code.
    pub(crate) fn new_server_id(&mut self) -> ObjId {
        loop {
            let id = compact_str::format_compact!("s:{}", self.next_server_id);
            self.next_server_id += 1;
            if self.ids.get(&self.objects, &id).is_none() {
                return id;
            }
        }
    }

    // ----- tree primitives (callers have checked everything) -----

    /// Inserts a normalized, checked subtree; links its references once all of it exists.
    /// Returns the new keys, parents before children.
    pub(crate) fn insert_subtree(&mut self, parent: ObjKey, index: usize, node: &NodeSnapshot) -> Vec<ObjKey> {
        let mut created = Vec::with_capacity(node.count());
        let mut stack = vec![(parent, Some(index), node)];
        while let Some((p, at, n)) = stack.pop() {
            let type_idx = self
                .types
                .index_of(&n.type_name)
                .expect("invariant: insert_subtree takes normalized nodes, of known types");
            let def = self.types.get(type_idx);
            // A normalized node holds every stored attribute; events hold none (their default).
            let attrs =
                def.attrs.iter().map(|a| n.attrs.get(&a.name).cloned().unwrap_or_else(|| a.default.clone())).collect();
            let key = self.objects.insert(SObject {
                id: n.id.clone(),
                type_idx,
                parent: Some(p),
                children: thin_vec::ThinVec::with_capacity(n.children.len()),
                attrs,
            });
            self.ids.insert(&self.objects, &n.id, key);
            let siblings = &mut self.objects[p].children;
            match at {
                Some(i) => siblings.insert(i.min(siblings.len()), key),
                None => siblings.push(key),
            }
            created.push(key);
            stack.extend(n.children.iter().rev().map(|c| (key, None, c)));
        }
        for &k in &created {
            self.link_attrs(k);
        }
        created
    }

    fn set_attrs(&mut self, key: ObjKey, attrs: &Dict) {
        let def = self.types.get(self.objects[key].type_idx);
        let values: Box<[Value]> =
            def.attrs.iter().map(|a| attrs.get(&a.name).cloned().unwrap_or_else(|| a.default.clone())).collect();
        self.objects[key].attrs = values;
    }

    fn ref_slots(&self, key: ObjKey) -> SmallVec<[(u16, TopicKind); 4]> {
        let def = self.types.get(self.objects[key].type_idx);
        def.attrs.iter().enumerate().filter(|(_, a)| a.kind.is_ref()).map(|(i, a)| (i as u16, a.kind)).collect()
    }

    /// Records every reference of every object again, from nothing: after a whole tree was
    /// inserted piece by piece (a snapshot's top-level subtrees one after another), so that a
    /// reference to an object inserted after its referrer is recorded too.
    pub(super) fn relink_all(&mut self) {
        self.refs = RefIndex::default();
        let keys: Vec<ObjKey> = self.objects.keys().collect();
        for key in keys {
            self.link_attrs(key);
        }
    }

    fn link_attrs(&mut self, key: ObjKey) {
        for (slot, kind) in self.ref_slots(key) {
            let v = self.objects[key].attrs[usize::from(slot)].clone();
            self.link(key, slot, kind, &v);
        }
    }

    fn link(&mut self, referrer: ObjKey, slot: u16, kind: TopicKind, v: &Value) {
        for target in ref_ids(kind, v) {
            if let Some(t) = self.key(target) {
                self.refs.add(t, referrer, slot);
            }
        }
    }

    fn unlink(&mut self, referrer: ObjKey, slot: u16, kind: TopicKind, v: &Value) {
        for target in ref_ids(kind, v) {
            let Some(t) = self.key(target) else {
                continue;
            };
            self.refs.remove(t, referrer, slot);
        }
    }

    /// References from outside the subtree of `key` into it: (referrer, slot), each once.
    pub(crate) fn external_refs_into(&self, key: ObjKey) -> Vec<(ObjKey, u16)> {
        let mut out: Vec<(ObjKey, u16)> = Vec::new();
        for k in self.subtree(key) {
            for &(r, slot) in self.refs.to(k) {
                if !self.is_under(r, key) && !out.contains(&(r, slot)) {
                    out.push((r, slot));
                }
            }
        }
        out
    }

    /// The steps that clear references held by `referrer.slot` into the subtree of `key`:
    /// a `ref` becomes null, `ref_list` elements and `ref_dict` keys are removed.
    pub(crate) fn clearing_ops(&self, referrer: ObjKey, slot: u16, key: ObjKey) -> Vec<AttrOp> {
        let kind = self.attr_kind(referrer, slot);
        let inside = |id: &str| self.key(id).is_some_and(|t| self.is_under(t, key));
        let Some(v) = self.value_at(referrer, slot) else {
            return Vec::new();
        };
        match (kind, v) {
            (TopicKind::Ref, Value::String(id)) if inside(id) => vec![AttrOp::Set(Value::Null)],
            (TopicKind::RefList, Value::List(l)) => l
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, v)| v.as_str().is_some_and(inside))
                .map(|(i, _)| AttrOp::ListRemove(i as u32))
                .collect(),
            (TopicKind::RefDict, Value::Dict(d)) => d
                .iter()
                .filter(|(_, v)| v.as_str().is_some_and(inside))
                .map(|(k, _)| AttrOp::DictRemove(k.into()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Where `key` sits: its parent and its index among the parent's children. The root sits
    /// nowhere: it is never deleted or moved (`verb`). The two links agree by construction; were
    /// they ever to disagree, the object is refused as missing rather than a sibling taken for
    /// it.
    fn place(&self, key: ObjKey, verb: &'static str) -> Result<(ObjKey, usize), ModelError> {
        let o = &self.objects[key];
        let Some(parent) = o.parent else {
            return Err(ModelError::RootImmutable { verb });
        };
        let index = self.objects[parent].children.iter().position(|&c| c == key);
        debug_assert!(index.is_some(), "invariant: {} is among its parent's children", o.id);
        index.map(|i| (parent, i)).ok_or_else(|| ModelError::NoSuchObject { id: o.id.clone() })
    }

    /// Removes a subtree (references into it must already be cleared) and returns where it was
    /// and what it was.
    pub(crate) fn remove_subtree(&mut self, key: ObjKey) -> Result<AppliedChange, ModelError> {
        let (parent, index) = self.place(key, "deleted")?;
        self.objects[parent].children.remove(index);
        let node = self.take_node(key);
        Ok(AppliedChange::Delete { parent: self.objects[parent].id.clone(), index: index as u32, node })
    }

    fn take_node(&mut self, key: ObjKey) -> NodeSnapshot {
        for (slot, kind) in self.ref_slots(key) {
            let v = std::mem::take(&mut self.objects[key].attrs[usize::from(slot)]);
            self.unlink(key, slot, kind, &v);
            self.objects[key].attrs[usize::from(slot)] = v;
        }
        let children = std::mem::take(&mut self.objects[key].children);
        let children = children.into_iter().map(|c| self.take_node(c)).collect();
        self.refs.forget(key);
        let id = self.objects[key].id.clone();
        self.ids.remove(&self.objects, &id);
        let o = self.objects.remove(key).expect("invariant: the object was read above, and no descendant is itself");
        let def = self.types.get(o.type_idx);
        let mut attrs = Dict::new();
        for (a, v) in def.attrs.iter().zip(o.attrs.into_vec()) {
            if a.kind != TopicKind::Event {
                attrs.insert(a.name.clone(), v);
            }
        }
        NodeSnapshot { id: o.id, type_name: def.name.clone(), attrs, children }
    }

    /// Moves `key` under `parent` at final position `index` (the end if `None`).
    pub(crate) fn move_object(
        &mut self,
        key: ObjKey,
        parent: ObjKey,
        index: Option<u32>,
    ) -> Result<AppliedChange, ModelError> {
        if key == self.root {
            return Err(ModelError::RootImmutable { verb: "moved" });
        }
        let id = self.objects[key].id.clone();
        if self.is_under(parent, key) {
            return Err(ModelError::Cycle { id, parent: self.objects[parent].id.clone() });
        }
        let depth = self.depth(parent) + 1 + self.height(key);
        if depth > self.limits.tree_depth_max {
            return Err(ModelError::TooDeep { depth, limit: self.limits.tree_depth_max });
        }
        let (from_parent, from_index) = self.place(key, "moved")?;
        let len_after = self.objects[parent].children.len() - usize::from(from_parent == parent);
        let to_index = match index {
            Some(i) if i as usize > len_after => {
                return Err(ModelError::OutOfRange {
                    target: format!("children of {}", self.objects[parent].id),
                    index: u64::from(i),
                    len: len_after as u64,
                })
            }
            Some(i) => i as usize,
            None => len_after,
        };
        self.objects[from_parent].children.remove(from_index);
        self.objects[parent].children.insert(to_index, key);
        self.objects[key].parent = Some(parent);
        Ok(AppliedChange::Move {
            id,
            from_parent: self.objects[from_parent].id.clone(),
            from_index: from_index as u32,
            to_parent: self.objects[parent].id.clone(),
            to_index: to_index as u32,
        })
    }
}

/// The object ids a reference value holds.
pub(crate) fn ref_ids(kind: TopicKind, v: &Value) -> impl Iterator<Item = &str> {
    let (single, list, dict) = match (kind, v) {
        (TopicKind::Ref, Value::String(s)) => (Some(s.as_str()), None, None),
        (TopicKind::RefList, Value::List(l)) => (None, Some(l.iter()), None),
        (TopicKind::RefDict, Value::Dict(d)) => (None, None, Some(d.values())),
        _ => (None, None, None),
    };
    single
        .into_iter()
        .chain(list.into_iter().flatten().filter_map(Value::as_str))
        .chain(dict.into_iter().flatten().filter_map(Value::as_str))
}
