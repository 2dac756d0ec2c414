//! How an [`AppliedChange`] is written on the wire: its forward form only (what clients need to
//! replay it, field for field what [`Change`](crate::model::Change) deserializes), straight from
//! the step, so a transition is encoded without copies.

use crate::model::{AppliedChange, NodeSnapshot};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Writes the forward form, field for field what [`Change`](crate::model::Change) deserializes, without copying.
impl Serialize for AppliedChange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use AppliedChange as A;
        let mut m = s.serialize_map(None)?;
        match self {
            A::Create { parent, index, node } => create_entries(&mut m, parent, *index, node)?,
            A::Delete { node, .. } => {
                m.serialize_entry("op", "delete")?;
                m.serialize_entry("id", &node.id)?;
            }
            A::Move { id, to_parent, to_index, .. } => {
                m.serialize_entry("op", "move")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("parent", to_parent)?;
                m.serialize_entry("index", to_index)?;
            }
            A::Set { obj, attr, new, .. } => attr_entries(&mut m, "set", obj, attr, ("value", new))?,
            A::Add { obj, attr, delta, .. } => attr_entries(&mut m, "add", obj, attr, ("value", delta))?,
            A::TextInsert { obj, attr, pos, text } => {
                attr_entries(&mut m, "text_insert", obj, attr, ("pos", pos))?;
                m.serialize_entry("text", text)?;
            }
            A::TextDelete { obj, attr, pos, text } => {
                attr_entries(&mut m, "text_delete", obj, attr, ("pos", pos))?;
                m.serialize_entry("len", &crate::model::text::utf16_len(text))?;
            }
            A::DictSet { obj, attr, key, new: Some(value), .. } => {
                attr_entries(&mut m, "dict_set", obj, attr, ("key", key))?;
                m.serialize_entry("value", value)?;
            }
            A::DictSet { obj, attr, key, new: None, .. } => {
                attr_entries(&mut m, "dict_remove", obj, attr, ("key", key))?
            }
            A::ListInsert { obj, attr, index, value } => {
                attr_entries(&mut m, "list_insert", obj, attr, ("index", index))?;
                m.serialize_entry("value", value)?;
            }
            A::ListRemove { obj, attr, index, .. } => attr_entries(&mut m, "list_remove", obj, attr, ("index", index))?,
            A::ListMove { obj, attr, from, to } => {
                attr_entries(&mut m, "list_move", obj, attr, ("from", from))?;
                m.serialize_entry("to", to)?;
            }
            A::ListSet { obj, attr, index, new, .. } => {
                attr_entries(&mut m, "list_set", obj, attr, ("index", index))?;
                m.serialize_entry("value", new)?;
            }
            A::SetAdd { obj, attr, value } => attr_entries(&mut m, "set_add", obj, attr, ("value", value))?,
            A::SetRemove { obj, attr, value } => attr_entries(&mut m, "set_remove", obj, attr, ("value", value))?,
            A::Emit { obj, attr, args } => attr_entries(&mut m, "emit", obj, attr, ("args", args))?,
        }
        m.end()
    }
}

/// A create's entries: the new object as the request names it, empty attributes and children
/// left out.
fn create_entries<M: SerializeMap>(m: &mut M, parent: &str, index: u32, node: &NodeSnapshot) -> Result<(), M::Error> {
    m.serialize_entry("op", "create")?;
    m.serialize_entry("id", &node.id)?;
    m.serialize_entry("type", &node.type_name)?;
    m.serialize_entry("parent", parent)?;
    m.serialize_entry("index", &index)?;
    if !node.attrs.is_empty() {
        m.serialize_entry("attrs", &node.attrs)?;
    }
    if !node.children.is_empty() {
        m.serialize_entry("children", &node.children)?;
    }
    Ok(())
}

/// An attribute step's first entries: `op`, `obj`, `attr` and its first own field.
fn attr_entries<M: SerializeMap, V: Serialize + ?Sized>(
    m: &mut M,
    op: &str,
    obj: &str,
    attr: &str,
    (name, value): (&str, &V),
) -> Result<(), M::Error> {
    m.serialize_entry("op", op)?;
    m.serialize_entry("obj", obj)?;
    m.serialize_entry("attr", attr)?;
    m.serialize_entry(name, value)
}
