//! How a document is written on the wire and read back: [`SnapshotView`] serializes a
//! [`Document`] straight from its tree, without building a copy first, in the nested form (what
//! [`DocSnapshot`] serializes to) or the compact one (`hello.compact_snapshots`: each type's
//! attribute names once, every object as an array `[id, type index, [values], [children]]`,
//! about half the bytes; docs/protocol.md); [`DocSnapshot`] deserializes from either form.
//! The serde data model only: the JSON text is the codec's, in `protocol/mod.rs`.

use crate::model::Dict;
use crate::model::{DocSnapshot, Document, NodeSnapshot, ObjId, ObjKey, TopicKind, TypeDef, Value};
use compact_str::CompactString;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// A view of `doc` that serializes exactly as [`Document::snapshot`] does, straight from the
/// tree.
pub fn snapshot_view(doc: &Document) -> SnapshotView<'_> {
    SnapshotView { doc, compact: false }
}

/// A view of `doc` that serializes in the compact form (see the module docs).
pub fn compact_snapshot_view(doc: &Document) -> SnapshotView<'_> {
    SnapshotView { doc, compact: true }
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
        m.serialize_entry("root", &NodeView { tree, key: doc.root() })?;
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
