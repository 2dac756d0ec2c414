//! The SObject tree of one room: [`Document`].
//!
//! Owns the objects (in a slotmap, keyed by [`ObjKey`]; string ids outside), the tree links,
//! attribute values, the reverse index of references, the version counter and the per-topic
//! text history. Offers cheap reads (by id, children, ancestors, subtree) and the primitive
//! steps that [`Tx`](super::Tx) composes into transactions. Does no I/O and knows no clients
//! beyond the [`Actor`] of a change.
//!
//! Costs: id lookup is a hash probe; child insert/remove is a search and `memmove` in the
//! parent's key vector; ancestor walks are bounded by `tree_depth_max`; deleting a subtree visits
//! it once. No step scans the whole document.

use super::change::{AppliedChange, NodeSnapshot, ObjId};
use super::error::ModelError;
use super::kind::{is_set_element, set_order, TopicKind};
use super::registry::{SObjectType, TypeIdx, TypeRegistry};
use super::text::{byte_offset, utf16_len, TextEdit};
use super::value::{Dict, Value};
use crate::limits::ModelLimits;
use compact_str::CompactString;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use slotmap::SlotMap;
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

slotmap::new_key_type! {
    /// A document-local handle to an object: copyable, cheap, and never reused for another
    /// object (a stale key finds nothing).
    pub struct ObjKey;
}

pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Id -> key. Stores only keys: each id lives once, in its object, and the table compares
/// against it there (about 9 bytes per object instead of 33).
#[derive(Default)]
struct IdIndex {
    table: hashbrown::HashTable<ObjKey>,
    hasher: foldhash::fast::RandomState,
}

impl IdIndex {
    fn hash(&self, id: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(id)
    }
    fn get(&self, objects: &SlotMap<ObjKey, SObject>, id: &str) -> Option<ObjKey> {
        let eq = |k: &ObjKey| objects.get(*k).is_some_and(|o| o.id == id);
        self.table.find(self.hash(id), eq).copied()
    }
    /// Adds `key` under `id`; the object must already be in `objects`.
    fn insert(&mut self, objects: &SlotMap<ObjKey, SObject>, id: &str, key: ObjKey) {
        let hash = self.hash(id);
        let hasher = &self.hasher;
        let rehash = |k: &ObjKey| {
            use std::hash::BuildHasher;
            objects.get(*k).map_or(0, |o| hasher.hash_one(o.id.as_str()))
        };
        self.table.insert_unique(hash, key, rehash);
    }
    /// Removes `id`; the object must still be in `objects`.
    fn remove(&mut self, objects: &SlotMap<ObjKey, SObject>, id: &str) {
        let eq = |k: &ObjKey| objects.get(*k).is_some_and(|o| o.id == id);
        if let Ok(entry) = self.table.find_entry(self.hash(id), eq) {
            entry.remove();
        }
    }
}

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

/// A whole document: version, server id counter and the tree from the root.
///
/// It serializes in the nested form; it deserializes from the nested and from the compact form
/// ([`Document::compact_snapshot_view`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocSnapshot {
    /// Version of the last applied transition.
    pub version: u64,
    /// Next number for server-made ids (`s:<n>`).
    #[serde(default)]
    pub next_server_id: u64,
    /// The root object and everything under it.
    pub root: NodeSnapshot,
}

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
pub(crate) fn push_capped<T>(entries: &mut VecDeque<T>, floor: &mut u64, entry: T, max: usize, version: fn(&T) -> u64) {
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

/// The SObject tree of one room, with its version. See the module docs.
pub struct Document {
    pub(crate) types: Arc<TypeRegistry>,
    pub(crate) limits: ModelLimits,
    pub(crate) objects: SlotMap<ObjKey, SObject>,
    ids: IdIndex,
    root: ObjKey,
    pub(crate) version: u64,
    /// Target -> (referrer, attribute slot), one entry per reference.
    backrefs: Map<ObjKey, SmallVec<[(ObjKey, u16); 2]>>,
    pub(crate) texts: Map<(ObjKey, u16), TextHistory>,
    /// List topics: when each changed and by whom.
    pub(crate) lists: Map<(ObjKey, u16), ListHistory>,
    /// Text and list histories dropped whole: edits at versions `<= texts_floor` may be missing
    /// anywhere.
    pub(crate) texts_floor: u64,
    pub(crate) next_server_id: u64,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document").field("version", &self.version).field("objects", &self.objects.len()).finish()
    }
}

/// A resolved change to one attribute, positions already final.
pub(crate) enum AttrOp {
    Set(Value),
    Add(Value),
    /// Replays an add: lands exactly on `new` when the value is still `old`, else adds `delta`.
    AddExact {
        delta: Value,
        old: Value,
        new: Value,
    },
    TextInsert(u32, CompactString),
    TextDelete(u32, u32),
    DictSet(CompactString, Value),
    DictRemove(CompactString),
    ListInsert(Option<u32>, Value),
    ListRemove(u32),
    ListMove(u32, u32),
    ListSet(u32, Value),
    SetAdd(Value),
    SetRemove(Value),
    Emit(Value),
}

/// Who may make which ids when creating objects.
#[derive(Clone, Copy)]
pub(crate) enum IdRule<'a> {
    /// Any well-formed id (server code, replays).
    Any,
    /// Ids must start with `<client>:`.
    Client(&'a str),
}

impl Document {
    /// An empty document (just the root) with default limits.
    pub fn new(types: Arc<TypeRegistry>) -> Self {
        Self::with_limits(types, ModelLimits::default())
    }

    /// An empty document with the given limits.
    pub fn with_limits(types: Arc<TypeRegistry>, limits: ModelLimits) -> Self {
        let mut objects = SlotMap::with_key();
        let root_type = types.index_of(super::registry::ROOT_TYPE).unwrap_or(0);
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
            backrefs: Map::default(),
            texts: Map::default(),
            lists: Map::default(),
            texts_floor: 0,
            next_server_id: 1,
        }
    }

    /// Rebuilds a document from a snapshot, checking it as thoroughly as a client's create:
    /// known types and attributes, well-kinded values, unique ids, existing reference targets.
    pub fn from_snapshot(
        types: Arc<TypeRegistry>,
        limits: ModelLimits,
        snapshot: DocSnapshot,
    ) -> Result<Self, ModelError> {
        // Versions and server ids stay in the range every JSON reader holds exactly, so that the
        // next version can never wrap or be read back wrong.
        for (what, n) in [("version", snapshot.version), ("next_server_id", snapshot.next_server_id)] {
            if n > JSON_SAFE_INT_MAX {
                return Err(ModelError::TooLarge {
                    what: format!("the snapshot's {what}"),
                    size: n as usize,
                    limit: JSON_SAFE_INT_MAX as usize,
                });
            }
        }
        if snapshot.root.id != ROOT_ID || snapshot.root.type_name != super::registry::ROOT_TYPE {
            return Err(ModelError::Custom(format!(
                "the root must be {ROOT_ID:?} of type {:?}, not {:?} of type {:?}",
                super::registry::ROOT_TYPE,
                snapshot.root.id,
                snapshot.root.type_name
            )));
        }
        let root_type = types
            .index_of(&snapshot.root.type_name)
            .ok_or_else(|| ModelError::NoSuchType { type_name: snapshot.root.type_name.clone() })?;
        let mut doc = Document::with_limits(types, limits);
        doc.objects[doc.root].type_idx = root_type;
        doc.ids.remove(&doc.objects, ROOT_ID);
        doc.objects[doc.root].id = snapshot.root.id.clone();
        doc.ids.insert(&doc.objects, &snapshot.root.id, doc.root);
        let mut seen = HashSet::new();
        seen.insert(snapshot.root.id.as_str());
        let attrs = doc.normalize_attrs(root_type, &snapshot.root.id, &snapshot.root.attrs, true)?;
        let mut children = Vec::with_capacity(snapshot.root.children.len());
        for child in &snapshot.root.children {
            children.push(doc.normalize_node(child, 1, IdRule::Any, &mut seen, false)?);
        }
        for child in &children {
            doc.check_refs(child, &seen)?;
        }
        let root_node = NodeSnapshot {
            id: snapshot.root.id.clone(),
            type_name: snapshot.root.type_name.clone(),
            attrs,
            children: Vec::new(),
        };
        doc.check_refs(&root_node, &seen)?;
        let root = doc.root;
        for (i, child) in children.iter().enumerate() {
            doc.insert_subtree(root, i, child);
        }
        doc.set_attrs(root, &root_node.attrs);
        doc.link_attrs(root);
        doc.version = snapshot.version;
        doc.texts_floor = snapshot.version;
        doc.next_server_id = snapshot.next_server_id.max(1);
        Ok(doc)
    }

    /// The whole document as an owned, serializable value.
    pub fn snapshot(&self) -> DocSnapshot {
        DocSnapshot { version: self.version, next_server_id: self.next_server_id, root: self.node_snapshot(self.root) }
    }

    /// A view of the document that serializes exactly as [`snapshot`](Self::snapshot) does,
    /// straight from the tree, without building a copy first.
    pub fn snapshot_view(&self) -> SnapshotView<'_> {
        SnapshotView { doc: self, compact: false }
    }

    /// A view of the document that serializes in the compact form: each type's attribute names
    /// once, every object as an array `[id, type index, [values], [children]]` (about half the
    /// bytes of the nested form for typical objects; see docs/protocol.md). [`DocSnapshot`]
    /// deserializes from either form.
    pub fn compact_snapshot_view(&self) -> SnapshotView<'_> {
        SnapshotView { doc: self, compact: true }
    }

    /// One object and its subtree, owned.
    pub fn subtree_snapshot(&self, key: ObjKey) -> Option<NodeSnapshot> {
        self.objects.contains_key(key).then(|| self.node_snapshot(key))
    }

    fn node_snapshot(&self, key: ObjKey) -> NodeSnapshot {
        let o = &self.objects[key];
        let def = self.types.get(o.type_idx);
        let mut attrs = Dict::new();
        for (a, v) in def.attrs.iter().zip(o.attrs.iter()) {
            if a.kind != TopicKind::Event {
                attrs.insert(a.name.clone(), v.clone());
            }
        }
        NodeSnapshot {
            id: o.id.clone(),
            type_name: def.name.clone(),
            attrs,
            children: o.children.iter().map(|&c| self.node_snapshot(c)).collect(),
        }
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
        self.backrefs.get(&key).into_iter().flatten().filter_map(move |&(r, slot)| {
            let o = self.objects.get(r)?;
            Some((r, self.types.get(o.type_idx).attrs[usize::from(slot)].name.as_str()))
        })
    }

    // ----- resolution and checks -----

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

    fn check_value(&self, v: &Value, what: impl Fn() -> String) -> Result<(), ModelError> {
        let depth = v.depth();
        if depth > self.limits.value_depth_max {
            return Err(ModelError::TooLarge { what: what(), size: depth, limit: self.limits.value_depth_max });
        }
        let mut longest = 0;
        visit_strings(v, &mut |s| longest = longest.max(s.len()));
        if longest > self.limits.string_len_max {
            return Err(ModelError::TooLarge {
                what: format!("a string in {}", what()),
                size: longest,
                limit: self.limits.string_len_max,
            });
        }
        Ok(())
    }

    fn check_new_id(&self, id: &str, rule: IdRule<'_>) -> Result<(), ModelError> {
        let bad = |reason| Err(ModelError::BadId { id: id.into(), reason });
        if id.is_empty() {
            return bad("ids are not empty");
        }
        if id.len() > self.limits.id_len_max {
            return bad("too long");
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.' | b'~')) {
            return bad("ids use only ASCII letters, digits and : _ - . ~");
        }
        if let IdRule::Client(client) = rule {
            let ok = id.len() > client.len() + 1 && id.starts_with(client) && id.as_bytes()[client.len()] == b':';
            if !ok {
                return bad("a client's new ids start with its client id and ':'");
            }
        }
        if self.ids.get(&self.objects, id).is_some() {
            return Err(ModelError::DuplicateId { id: id.into() });
        }
        Ok(())
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

    fn ref_exists(&self, id: &str, pending: &HashSet<&str>) -> bool {
        self.key(id).is_some() || pending.contains(id)
    }

    /// Checks every attribute of a type against given values and fills in defaults.
    fn normalize_attrs(
        &self,
        type_idx: TypeIdx,
        id: &str,
        given: &Dict,
        allow_extra_events: bool,
    ) -> Result<Dict, ModelError> {
        let def = self.types.get(type_idx);
        for (name, _) in given.iter() {
            match def.slot(name) {
                None => {
                    return Err(ModelError::NoSuchAttribute {
                        obj: id.into(),
                        type_name: def.name.clone(),
                        attr: name.into(),
                    })
                }
                Some(slot) if def.attrs[usize::from(slot)].kind == TopicKind::Event && !allow_extra_events => {
                    return Err(ModelError::WrongKind {
                        obj: id.into(),
                        attr: name.into(),
                        kind: TopicKind::Event,
                        reason: "an event topic holds no value".into(),
                    })
                }
                Some(_) => {}
            }
        }
        let mut out = Dict::new();
        for a in def.attrs.iter().filter(|a| a.kind != TopicKind::Event) {
            let v = match given.get(&a.name) {
                Some(v) => a.kind.conform(v.clone()).map_err(|reason| ModelError::WrongKind {
                    obj: id.into(),
                    attr: a.name.clone(),
                    kind: a.kind,
                    reason,
                })?,
                None => a.default.clone(),
            };
            self.check_value(&v, || format!("{id}.{}", a.name))?;
            out.insert(a.name.clone(), v);
        }
        Ok(out)
    }

    /// Checks a subtree to be created at `depth` (its root's depth) and returns it with every
    /// attribute present. Adds its ids to `seen`. Reference targets are checked separately, once
    /// every new id is known.
    pub(crate) fn normalize_node<'s>(
        &self,
        node: &'s NodeSnapshot,
        depth: usize,
        rule: IdRule<'_>,
        seen: &mut HashSet<&'s str>,
        events_allowed: bool,
    ) -> Result<NodeSnapshot, ModelError> {
        if depth > self.limits.tree_depth_max {
            return Err(ModelError::TooDeep { depth, limit: self.limits.tree_depth_max });
        }
        if self.objects.len() + seen.len() >= self.limits.objects_max {
            return Err(ModelError::TooLarge {
                what: "the document's object count".into(),
                size: self.objects.len() + seen.len() + 1,
                limit: self.limits.objects_max,
            });
        }
        self.check_new_id(&node.id, rule)?;
        if !seen.insert(node.id.as_str()) {
            return Err(ModelError::DuplicateId { id: node.id.clone() });
        }
        let type_idx = self
            .types
            .index_of(&node.type_name)
            .ok_or_else(|| ModelError::NoSuchType { type_name: node.type_name.clone() })?;
        let attrs = self.normalize_attrs(type_idx, &node.id, &node.attrs, events_allowed)?;
        let mut children = Vec::with_capacity(node.children.len());
        for c in &node.children {
            children.push(self.normalize_node(c, depth + 1, rule, seen, events_allowed)?);
        }
        Ok(NodeSnapshot { id: node.id.clone(), type_name: node.type_name.clone(), attrs, children })
    }

    /// Checks that every reference in a normalized subtree names an existing or new object.
    pub(crate) fn check_refs(&self, node: &NodeSnapshot, pending: &HashSet<&str>) -> Result<(), ModelError> {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            let Some(type_idx) = self.types.index_of(&n.type_name) else {
                continue;
            };
            for a in self.types.get(type_idx).attrs.iter().filter(|a| a.kind.is_ref()) {
                if let Some(v) = n.attrs.get(&a.name) {
                    for target in ref_ids(a.kind, v) {
                        if !self.ref_exists(target, pending) {
                            return Err(ModelError::DanglingRef {
                                obj: n.id.clone(),
                                attr: a.name.clone(),
                                target: target.into(),
                            });
                        }
                    }
                }
            }
            stack.extend(n.children.iter());
        }
        Ok(())
    }

    // ----- tree primitives (callers have checked everything) -----

    /// Inserts a normalized, checked subtree; links its references once all of it exists.
    /// Returns the new keys, parents before children.
    pub(crate) fn insert_subtree(&mut self, parent: ObjKey, index: usize, node: &NodeSnapshot) -> Vec<ObjKey> {
        let mut created = Vec::with_capacity(node.count());
        let mut stack = vec![(parent, Some(index), node)];
        while let Some((p, at, n)) = stack.pop() {
            let type_idx = self.types.index_of(&n.type_name).unwrap_or(0);
            let def = self.types.get(type_idx);
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

    fn link_attrs(&mut self, key: ObjKey) {
        for (slot, kind) in self.ref_slots(key) {
            let v = self.objects[key].attrs[usize::from(slot)].clone();
            self.link(key, slot, kind, &v);
        }
    }

    fn link(&mut self, referrer: ObjKey, slot: u16, kind: TopicKind, v: &Value) {
        for target in ref_ids(kind, v) {
            if let Some(t) = self.key(target) {
                self.backrefs.entry(t).or_default().push((referrer, slot));
            }
        }
    }

    fn unlink(&mut self, referrer: ObjKey, slot: u16, kind: TopicKind, v: &Value) {
        for target in ref_ids(kind, v) {
            let Some(t) = self.key(target) else {
                continue;
            };
            if let Some(list) = self.backrefs.get_mut(&t) {
                if let Some(i) = list.iter().position(|&e| e == (referrer, slot)) {
                    list.swap_remove(i);
                }
                if list.is_empty() {
                    self.backrefs.remove(&t);
                }
            }
        }
    }

    /// References from outside the subtree of `key` into it: (referrer, slot), each once.
    pub(crate) fn external_refs_into(&self, key: ObjKey) -> Vec<(ObjKey, u16)> {
        let mut out: Vec<(ObjKey, u16)> = Vec::new();
        for k in self.subtree(key) {
            for &(r, slot) in self.backrefs.get(&k).into_iter().flatten() {
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

    /// Removes a subtree (references into it must already be cleared) and returns where it was
    /// and what it was.
    pub(crate) fn remove_subtree(&mut self, key: ObjKey) -> AppliedChange {
        let parent = self.objects[key].parent.unwrap_or(self.root);
        let index = self.objects[parent].children.iter().position(|&c| c == key).unwrap_or(0);
        self.objects[parent].children.remove(index);
        let node = self.take_node(key);
        AppliedChange::Delete { parent: self.objects[parent].id.clone(), index: index as u32, node }
    }

    fn take_node(&mut self, key: ObjKey) -> NodeSnapshot {
        for (slot, kind) in self.ref_slots(key) {
            let v = std::mem::take(&mut self.objects[key].attrs[usize::from(slot)]);
            self.unlink(key, slot, kind, &v);
            self.objects[key].attrs[usize::from(slot)] = v;
        }
        let children = std::mem::take(&mut self.objects[key].children);
        let children = children.into_iter().map(|c| self.take_node(c)).collect();
        self.backrefs.remove(&key);
        if let Some(id) = self.objects.get(key).map(|o| o.id.clone()) {
            self.ids.remove(&self.objects, &id);
        }
        let Some(o) = self.objects.remove(key) else {
            return NodeSnapshot {
                id: CompactString::default(),
                type_name: CompactString::default(),
                attrs: Dict::new(),
                children,
            };
        };
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
        let from_parent = self.objects[key].parent.unwrap_or(self.root);
        let from_index = self.objects[from_parent].children.iter().position(|&c| c == key).unwrap_or(0);
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

    // ----- attribute primitive -----

    /// Applies one resolved attribute operation. Checks kinds, ranges, limits and reference
    /// targets; does not run validators, permissions or reactions (the transaction does).
    pub(crate) fn attr_op(&mut self, key: ObjKey, slot: u16, op: AttrOp) -> Result<AppliedChange, ModelError> {
        let o = &self.objects[key];
        let a = &self.types.get(o.type_idx).attrs[usize::from(slot)];
        let (kind, obj, attr) = (a.kind, o.id.clone(), a.name.clone());
        let wrong = |reason: String| ModelError::WrongKind { obj: obj.clone(), attr: attr.clone(), kind, reason };
        let range = |index: u32, len: usize| ModelError::OutOfRange {
            target: format!("{obj}.{attr}"),
            index: u64::from(index),
            len: len as u64,
        };
        let kind_is = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(wrong(format!("{what} does not apply")))
            }
        };
        match op {
            AttrOp::Set(v) => {
                let v = kind.conform(v).map_err(wrong)?;
                self.check_value(&v, || format!("{obj}.{attr}"))?;
                self.check_targets(&obj, &attr, kind, &v)?;
                let old = std::mem::replace(self.slot_mut(key, slot), v.clone());
                if kind.is_ref() {
                    self.unlink(key, slot, kind, &old);
                    self.link(key, slot, kind, &v);
                }
                Ok(AppliedChange::Set { obj, attr, old, new: v })
            }
            AttrOp::Add(delta) | AttrOp::AddExact { delta, .. }
                if !matches!(kind, TopicKind::Int | TopicKind::Float) =>
            {
                let _ = delta;
                Err(wrong("add applies to int and float topics".into()))
            }
            AttrOp::Add(delta) => {
                let old = self.slot_mut(key, slot).clone();
                let new = add_values(kind, &old, &delta).map_err(|e| match e {
                    AddError::Kind(reason) => wrong(reason),
                    AddError::Overflow => {
                        ModelError::Overflow { obj: obj.clone(), attr: attr.clone(), delta: delta.to_string() }
                    }
                })?;
                *self.slot_mut(key, slot) = new.clone();
                Ok(AppliedChange::Add { obj, attr, delta, old, new })
            }
            AttrOp::AddExact { delta, old: expect, new: exact } => {
                let old = self.slot_mut(key, slot).clone();
                let new = if old == expect {
                    exact
                } else {
                    add_values(kind, &old, &delta).map_err(|_| ModelError::Overflow {
                        obj: obj.clone(),
                        attr: attr.clone(),
                        delta: delta.to_string(),
                    })?
                };
                *self.slot_mut(key, slot) = new.clone();
                Ok(AppliedChange::Add { obj, attr, delta, old, new })
            }
            AttrOp::TextInsert(pos, text) => {
                kind_is(kind == TopicKind::String, "a text insert")?;
                let limit = self.limits.string_len_max;
                let Value::String(s) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a string".into()));
                };
                let at = text_offset(s, pos, &obj, &attr)?;
                if s.len() + text.len() > limit {
                    return Err(ModelError::TooLarge {
                        what: format!("{obj}.{attr}"),
                        size: s.len() + text.len(),
                        limit,
                    });
                }
                s.insert_str(at, &text);
                Ok(AppliedChange::TextInsert { obj, attr, pos, text })
            }
            AttrOp::TextDelete(pos, len) => {
                kind_is(kind == TopicKind::String, "a text delete")?;
                let Value::String(s) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a string".into()));
                };
                let from = text_offset(s, pos, &obj, &attr)?;
                let to = text_offset(s, pos.saturating_add(len), &obj, &attr)?;
                let text = CompactString::from(&s[from..to]);
                s.replace_range(from..to, "");
                Ok(AppliedChange::TextDelete { obj, attr, pos, text })
            }
            AttrOp::DictSet(k, v) => {
                kind_is(matches!(kind, TopicKind::Dict | TopicKind::RefDict), "a dict key set")?;
                if kind == TopicKind::RefDict && v.as_str().is_none() {
                    return Err(wrong(format!("expected an object id, got {}", v.type_name())));
                }
                if !v.is_finite() {
                    return Err(wrong("floats must be finite".into()));
                }
                self.check_value(&v, || format!("{obj}.{attr}[{k:?}]"))?;
                if kind == TopicKind::RefDict {
                    self.check_targets(&obj, &attr, TopicKind::Ref, &v)?;
                }
                let Value::Dict(d) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a dict".into()));
                };
                let old = d.insert(k.clone(), v.clone());
                if kind.is_ref() {
                    if let Some(old) = &old {
                        self.unlink(key, slot, TopicKind::Ref, old);
                    }
                    self.link(key, slot, TopicKind::Ref, &v);
                }
                Ok(AppliedChange::DictSet { obj, attr, key: k, old, new: Some(v) })
            }
            AttrOp::DictRemove(k) => {
                kind_is(matches!(kind, TopicKind::Dict | TopicKind::RefDict), "a dict key remove")?;
                let Value::Dict(d) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a dict".into()));
                };
                let Some(old) = d.remove(&k) else {
                    return Err(ModelError::NoSuchKey { obj, attr, key: k });
                };
                if kind.is_ref() {
                    self.unlink(key, slot, TopicKind::Ref, &old);
                }
                Ok(AppliedChange::DictSet { obj, attr, key: k, old: Some(old), new: None })
            }
            AttrOp::ListInsert(index, v) => {
                kind_is(matches!(kind, TopicKind::List | TopicKind::RefList), "a list insert")?;
                self.check_element(&obj, &attr, kind, &v)?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a list".into()));
                };
                let i = match index {
                    Some(i) if i as usize > l.len() => return Err(range(i, l.len())),
                    Some(i) => i as usize,
                    None => l.len(),
                };
                l.insert(i, v.clone());
                if kind.is_ref() {
                    self.link(key, slot, TopicKind::Ref, &v);
                }
                Ok(AppliedChange::ListInsert { obj, attr, index: i as u32, value: v })
            }
            AttrOp::ListRemove(i) => {
                kind_is(matches!(kind, TopicKind::List | TopicKind::RefList), "a list remove")?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a list".into()));
                };
                if i as usize >= l.len() {
                    return Err(range(i, l.len()));
                }
                let value = l.remove(i as usize);
                if kind.is_ref() {
                    self.unlink(key, slot, TopicKind::Ref, &value);
                }
                Ok(AppliedChange::ListRemove { obj, attr, index: i, value })
            }
            AttrOp::ListMove(from, to) => {
                kind_is(matches!(kind, TopicKind::List | TopicKind::RefList), "a list move")?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a list".into()));
                };
                if from as usize >= l.len() {
                    return Err(range(from, l.len()));
                }
                if to as usize >= l.len() {
                    return Err(range(to, l.len()));
                }
                let v = l.remove(from as usize);
                l.insert(to as usize, v);
                Ok(AppliedChange::ListMove { obj, attr, from, to })
            }
            AttrOp::ListSet(i, v) => {
                kind_is(matches!(kind, TopicKind::List | TopicKind::RefList), "a list set")?;
                self.check_element(&obj, &attr, kind, &v)?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a list".into()));
                };
                if i as usize >= l.len() {
                    return Err(range(i, l.len()));
                }
                let old = std::mem::replace(&mut l[i as usize], v.clone());
                if kind.is_ref() {
                    self.unlink(key, slot, TopicKind::Ref, &old);
                    self.link(key, slot, TopicKind::Ref, &v);
                }
                Ok(AppliedChange::ListSet { obj, attr, index: i, old, new: v })
            }
            AttrOp::SetAdd(v) => {
                kind_is(kind == TopicKind::Set, "a set add")?;
                if !is_set_element(&v) {
                    return Err(wrong(format!(
                        "set elements are strings, integers or booleans, not {}",
                        v.type_name()
                    )));
                }
                self.check_value(&v, || format!("{obj}.{attr}"))?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a set".into()));
                };
                match l.binary_search_by(|e| set_order(e, &v)) {
                    Ok(_) => return Err(ModelError::SetElement { obj, attr, reason: format!("already holds {v}") }),
                    Err(i) => l.insert(i, v.clone()),
                }
                Ok(AppliedChange::SetAdd { obj, attr, value: v })
            }
            AttrOp::SetRemove(v) => {
                kind_is(kind == TopicKind::Set, "a set remove")?;
                let Value::List(l) = self.slot_mut(key, slot) else {
                    return Err(wrong("not a set".into()));
                };
                let Ok(i) = l.binary_search_by(|e| set_order(e, &v)) else {
                    return Err(ModelError::SetElement { obj, attr, reason: format!("does not hold {v}") });
                };
                l.remove(i);
                Ok(AppliedChange::SetRemove { obj, attr, value: v })
            }
            AttrOp::Emit(args) => {
                kind_is(kind == TopicKind::Event, "emit")?;
                if !args.is_finite() {
                    return Err(wrong("floats must be finite".into()));
                }
                self.check_value(&args, || format!("{obj}.{attr} arguments"))?;
                Ok(AppliedChange::Emit { obj, attr, args })
            }
        }
    }

    fn slot_mut(&mut self, key: ObjKey, slot: u16) -> &mut Value {
        &mut self.objects[key].attrs[usize::from(slot)]
    }

    fn check_element(&self, obj: &str, attr: &str, kind: TopicKind, v: &Value) -> Result<(), ModelError> {
        if kind == TopicKind::RefList && v.as_str().is_none() {
            return Err(ModelError::WrongKind {
                obj: obj.into(),
                attr: attr.into(),
                kind,
                reason: format!("expected an object id, got {}", v.type_name()),
            });
        }
        if !v.is_finite() {
            return Err(ModelError::WrongKind {
                obj: obj.into(),
                attr: attr.into(),
                kind,
                reason: "floats must be finite".into(),
            });
        }
        self.check_value(v, || format!("{obj}.{attr}"))?;
        if kind == TopicKind::RefList {
            self.check_targets(obj, attr, TopicKind::Ref, v)?;
        }
        Ok(())
    }

    fn check_targets(&self, obj: &str, attr: &str, kind: TopicKind, v: &Value) -> Result<(), ModelError> {
        for target in ref_ids(kind, v) {
            if self.key(target).is_none() {
                return Err(ModelError::DanglingRef { obj: obj.into(), attr: attr.into(), target: target.into() });
            }
        }
        Ok(())
    }
}

fn text_offset(s: &str, pos: u32, obj: &str, attr: &str) -> Result<usize, ModelError> {
    byte_offset(s, pos as usize).ok_or_else(|| {
        let len = utf16_len(s);
        if pos as usize > len {
            ModelError::OutOfRange { target: format!("{obj}.{attr}"), index: u64::from(pos), len: len as u64 }
        } else {
            ModelError::SplitsCharacter { obj: obj.into(), attr: attr.into(), pos: u64::from(pos) }
        }
    })
}

enum AddError {
    Kind(String),
    Overflow,
}

fn add_values(kind: TopicKind, old: &Value, delta: &Value) -> Result<Value, AddError> {
    match (kind, old, delta) {
        (TopicKind::Int, Value::Int(a), Value::Int(d)) => a.checked_add(*d).map(Value::Int).ok_or(AddError::Overflow),
        (TopicKind::Int, _, d) => Err(AddError::Kind(format!("expected an integer to add, got {}", d.type_name()))),
        (TopicKind::Float, Value::Float(a), d) => {
            let d =
                d.as_f64().ok_or_else(|| AddError::Kind(format!("expected a number to add, got {}", d.type_name())))?;
            let r = a + d;
            if r.is_finite() {
                Ok(Value::Float(r))
            } else {
                Err(AddError::Overflow)
            }
        }
        _ => Err(AddError::Kind("add applies to int and float topics".into())),
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

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::List(l) => l.iter().for_each(|e| visit_strings(e, f)),
        Value::Dict(d) => d.iter().for_each(|(k, e)| {
            f(k);
            visit_strings(e, f)
        }),
        _ => {}
    }
}

/// Serializes the document straight from the tree, in the nested form (as [`DocSnapshot`]
/// does) or the compact one.
pub struct SnapshotView<'a> {
    doc: &'a Document,
    compact: bool,
}

/// What every part of one serialization shares: the document, each type's attribute order
/// (computed once per snapshot, not per object) and the form.
#[derive(Clone, Copy)]
struct Tree<'a> {
    doc: &'a Document,
    orders: &'a [AttrOrder],
    compact: bool,
}

/// One object and its subtree, in the tree's form.
struct NodeView<'a> {
    tree: Tree<'a>,
    key: ObjKey,
}

/// A nested object's `attrs`, by name.
struct AttrsView<'a> {
    def: &'a super::registry::TypeDef,
    values: &'a [Value],
    order: &'a [usize],
}

/// A compact object's values, in its type's order.
struct ValuesView<'a> {
    values: &'a [Value],
    order: &'a [usize],
}

struct ChildrenView<'a> {
    tree: Tree<'a>,
    keys: &'a [ObjKey],
}

/// `[[type name, [attribute names]], ...]` in registry order: a type's index is its position.
struct TypesView<'a> {
    tree: Tree<'a>,
}

/// Per type, the indexes of its stored (non-event) attributes in name order: the order both
/// forms write attributes in (the nested one as sorted keys, like `Dict`).
type AttrOrder = SmallVec<[usize; 8]>;

fn attr_order(def: &super::registry::TypeDef) -> AttrOrder {
    let mut order: AttrOrder = (0..def.attrs.len()).filter(|&i| def.attrs[i].kind != TopicKind::Event).collect();
    order.sort_by(|&a, &b| def.attrs[a].name.cmp(&def.attrs[b].name));
    order
}

impl Serialize for SnapshotView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let doc = self.doc;
        let orders: Vec<AttrOrder> = doc.types.defs().iter().map(attr_order).collect();
        let tree = Tree { doc, orders: &orders, compact: self.compact };
        let mut m = s.serialize_map(Some(if self.compact { 4 } else { 3 }))?;
        m.serialize_entry("version", &doc.version)?;
        m.serialize_entry("next_server_id", &doc.next_server_id)?;
        if self.compact {
            m.serialize_entry("types", &TypesView { tree })?;
        }
        m.serialize_entry("root", &NodeView { tree, key: doc.root })?;
        m.end()
    }
}

impl Serialize for NodeView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Tree { doc, orders, compact } = self.tree;
        let o = &doc.objects[self.key];
        let order = &orders[usize::from(o.type_idx)];
        let children = ChildrenView { tree: self.tree, keys: &o.children };
        if compact {
            // `[id, type index, [values], [children]]`, the last omitted for a leaf.
            let mut seq = s.serialize_seq(Some(if o.children.is_empty() { 3 } else { 4 }))?;
            seq.serialize_element(&o.id)?;
            seq.serialize_element(&o.type_idx)?;
            seq.serialize_element(&ValuesView { values: &o.attrs, order })?;
            if !o.children.is_empty() {
                seq.serialize_element(&children)?;
            }
            return seq.end();
        }
        let def = doc.types.get(o.type_idx);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &o.id)?;
        m.serialize_entry("type", &def.name)?;
        if !order.is_empty() {
            m.serialize_entry("attrs", &AttrsView { def, values: &o.attrs, order })?;
        }
        if !o.children.is_empty() {
            m.serialize_entry("children", &children)?;
        }
        m.end()
    }
}

impl Serialize for AttrsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.order.len()))?;
        for &i in self.order {
            m.serialize_entry(self.def.attrs[i].name.as_str(), &self.values[i])?;
        }
        m.end()
    }
}

impl Serialize for ValuesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.order.len()))?;
        for &i in self.order {
            seq.serialize_element(&self.values[i])?;
        }
        seq.end()
    }
}

impl Serialize for ChildrenView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.keys.len()))?;
        for &key in self.keys {
            seq.serialize_element(&NodeView { tree: self.tree, key })?;
        }
        seq.end()
    }
}

impl Serialize for TypesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let defs = self.tree.doc.types.defs();
        let mut seq = s.serialize_seq(Some(defs.len()))?;
        for (def, order) in defs.iter().zip(self.tree.orders) {
            let names: SmallVec<[&str; 8]> = order.iter().map(|&i| def.attrs[i].name.as_str()).collect();
            seq.serialize_element(&(def.name.as_str(), names.as_slice()))?;
        }
        seq.end()
    }
}

/// A compact snapshot's `types` entry: the type name and its attribute names in order.
type CompactType = (CompactString, Vec<CompactString>);

impl<'de> Deserialize<'de> for DocSnapshot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DocSnapshotVisitor)
    }
}

struct DocSnapshotVisitor;

impl<'de> Visitor<'de> for DocSnapshotVisitor {
    type Value = DocSnapshot;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a document snapshot")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DocSnapshot, A::Error> {
        let (mut version, mut next_server_id, mut types, mut root) = (None, 0, None::<Vec<CompactType>>, None);
        while let Some(key) = map.next_key::<CompactString>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value()?),
                "next_server_id" => next_server_id = map.next_value()?,
                "types" => types = Some(map.next_value()?),
                "root" => root = Some(map.next_value_seed(NodeSeed { types: types.as_deref() })?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(DocSnapshot {
            version: version.ok_or_else(|| de::Error::missing_field("version"))?,
            next_server_id,
            root: root.ok_or_else(|| de::Error::missing_field("root"))?,
        })
    }
}

/// One object in either form: a map (nested) or an array (compact, which needs the types).
#[derive(Clone, Copy)]
struct NodeSeed<'t> {
    types: Option<&'t [CompactType]>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = NodeSnapshot;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NodeSnapshot, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = NodeSnapshot;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object: a map, or an array [id, type index, values, children] after `types`")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NodeSnapshot, A::Error> {
        NodeSnapshot::deserialize(de::value::MapAccessDeserializer::new(map))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeSnapshot, A::Error> {
        let types = self.types.ok_or_else(|| de::Error::custom("a compact object needs `types` before `root`"))?;
        let id: ObjId = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let t: usize = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let (type_name, names) =
            types.get(t).ok_or_else(|| de::Error::custom(format_args!("object {id}: no type at index {t}")))?;
        let attrs = seq.next_element_seed(ValuesSeed { names })?.unwrap_or_default();
        let children = seq.next_element_seed(ChildrenSeed { types })?.unwrap_or_default();
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(5, &self));
        }
        Ok(NodeSnapshot { id, type_name: type_name.clone(), attrs, children })
    }
}

/// A compact object's values, named by its type's attribute names.
struct ValuesSeed<'t> {
    names: &'t [CompactString],
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = Dict;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Dict, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = Dict;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an array of {} attribute values", self.names.len())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dict, A::Error> {
        let mut attrs = Dict::new();
        for (i, name) in self.names.iter().enumerate() {
            let value: Value = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
            attrs.insert(name.clone(), value);
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(self.names.len() + 1, &self));
        }
        Ok(attrs)
    }
}

struct ChildrenSeed<'t> {
    types: &'t [CompactType],
}

impl<'de> DeserializeSeed<'de> for ChildrenSeed<'_> {
    type Value = Vec<NodeSnapshot>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<NodeSnapshot>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChildrenSeed<'_> {
    type Value = Vec<NodeSnapshot>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of compact objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<NodeSnapshot>, A::Error> {
        let mut children = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(child) = seq.next_element_seed(NodeSeed { types: Some(self.types) })? {
            children.push(child);
        }
        Ok(children)
    }
}
