//! Snapshots: [`DocSnapshot`] (a whole document as owned data), the checked conversion back
//! into a [`Document`] ([`Document::from_snapshot`]), and [`SnapshotView`], which serializes the
//! document straight from the tree in the nested or the compact form. [`DocSnapshot`]
//! deserializes from either form. Knows the serde data model, not JSON text.

use super::check::IdRule;
use super::{Document, ObjKey, JSON_SAFE_INT_MAX, ROOT_ID};
use crate::limits::ModelLimits;
use crate::model::change::{NodeSnapshot, ObjId};
use crate::model::error::ModelError;
use crate::model::kind::TopicKind;
use crate::model::registry::{TypeDef, TypeRegistry, ROOT_TYPE};
use crate::model::value::{Dict, Value};
use compact_str::CompactString;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
use std::collections::HashSet;
use std::sync::Arc;

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

impl Document {
    /// Rebuilds a document from a snapshot, checking it as thoroughly as a client's create:
    /// known types and attributes, well-kinded values, unique ids, existing reference targets.
    pub fn from_snapshot(
        types: Arc<TypeRegistry>,
        limits: ModelLimits,
        snapshot: DocSnapshot,
    ) -> Result<Self, ModelError> {
        check_header(&snapshot)?;
        let mut doc = Document::with_limits(types, limits);
        let root = doc.root;
        let root_type = doc.objects[root].type_idx;
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
}

/// What a snapshot must say before its tree is read: versions and server ids in the range every
/// JSON reader holds exactly (so the next version can never wrap or be read back wrong), and the
/// root as every document has it.
fn check_header(snapshot: &DocSnapshot) -> Result<(), ModelError> {
    for (what, n) in [("version", snapshot.version), ("next_server_id", snapshot.next_server_id)] {
        if n > JSON_SAFE_INT_MAX {
            return Err(ModelError::TooLarge {
                what: format!("the snapshot's {what}"),
                size: n as usize,
                limit: JSON_SAFE_INT_MAX as usize,
            });
        }
    }
    let root = &snapshot.root;
    if root.id != ROOT_ID {
        return Err(ModelError::BadId { id: root.id.clone(), reason: "the root of a snapshot has the id \"root\"" });
    }
    if root.type_name != ROOT_TYPE {
        // As `Document::handle` says an object is not of the type asked for.
        return Err(ModelError::WrongKind {
            obj: root.id.clone(),
            attr: CompactString::default(),
            kind: TopicKind::Ref,
            reason: format!("the root is a {ROOT_TYPE}, not a {}", root.type_name),
        });
    }
    Ok(())
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
    def: &'a TypeDef,
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

fn attr_order(def: &TypeDef) -> AttrOrder {
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
