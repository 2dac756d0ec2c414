//! [`Mirror`]: a client's copy of a room's tree, built from a snapshot and kept current by
//! applying the changes of each update in order. It trusts the server (the changes were already
//! validated) and knows no types: attributes are plain values.

use crate::model::text::TextEdit;
use crate::model::{Change, Dict, DocSnapshot, NodeSnapshot, ObjId, Value};
use compact_str::CompactString;
use std::collections::HashMap;

/// One object of the mirror.
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorNode {
    /// Registered type name.
    pub type_name: CompactString,
    /// Parent id (`None` for the root).
    pub parent: Option<ObjId>,
    /// Children ids in order.
    pub children: Vec<ObjId>,
    /// Attribute values by name.
    pub attrs: Dict,
}

/// A client's copy of a room's tree at some version.
#[derive(Clone, Debug, Default)]
pub struct Mirror {
    nodes: HashMap<ObjId, MirrorNode>,
    root: ObjId,
    version: u64,
}

impl Mirror {
    /// A mirror of `snapshot`.
    pub fn from_snapshot(snapshot: DocSnapshot) -> Self {
        let mut m = Mirror { nodes: HashMap::new(), root: snapshot.root.id.clone(), version: snapshot.version };
        m.insert(None, snapshot.root);
        m
    }

    fn insert(&mut self, parent: Option<ObjId>, node: NodeSnapshot) {
        let mut stack = vec![(parent, node)];
        while let Some((parent, n)) = stack.pop() {
            let children: Vec<ObjId> = n.children.iter().map(|c| c.id.clone()).collect();
            self.nodes.insert(n.id.clone(), MirrorNode { type_name: n.type_name, parent, children, attrs: n.attrs });
            stack.extend(n.children.into_iter().map(|c| (Some(n.id.clone()), c)));
        }
    }

    /// The version this mirror is at.
    pub fn version(&self) -> u64 {
        self.version
    }
    pub(crate) fn set_version(&mut self, v: u64) {
        self.version = v;
    }
    /// The root id.
    pub fn root(&self) -> &str {
        &self.root
    }
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether the mirror is empty (never: it holds at least the root once loaded).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// An object.
    pub fn get(&self, id: &str) -> Option<&MirrorNode> {
        self.nodes.get(id)
    }
    /// An attribute's value.
    pub fn value(&self, id: &str, attr: &str) -> Option<&Value> {
        self.nodes.get(id)?.attrs.get(attr)
    }

    /// The tree as a snapshot (same shape as the server's), for comparisons.
    pub fn to_snapshot(&self) -> NodeSnapshot {
        self.node_snapshot(&self.root)
    }

    fn node_snapshot(&self, id: &str) -> NodeSnapshot {
        let n = &self.nodes[id];
        NodeSnapshot {
            id: id.into(),
            type_name: n.type_name.clone(),
            attrs: n.attrs.clone(),
            children: n
                .children
                .iter()
                .filter(|c| self.nodes.contains_key(*c))
                .map(|c| self.node_snapshot(c))
                .collect(),
        }
    }

    fn attr_mut(&mut self, obj: &str, attr: &str) -> Result<&mut Value, String> {
        let node = self.nodes.get_mut(obj).ok_or_else(|| format!("no object {obj}"))?;
        if !node.attrs.contains_key(attr) {
            node.attrs.insert(attr, Value::Null);
        }
        node.attrs.get_mut(attr).ok_or_else(|| format!("no attribute {attr}"))
    }

    /// Applies one change of an update. An error means the mirror and the server disagree (a
    /// bug, or a missed update): the client should reload from a snapshot.
    pub fn apply(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::Create { id, type_name, parent, index, attrs, children } => {
                let node = NodeSnapshot {
                    id: id.clone(),
                    type_name: type_name.clone(),
                    attrs: attrs.clone(),
                    children: children.clone(),
                };
                self.create(parent, *index, node)
            }
            Change::Delete { id } => self.delete(id),
            Change::Move { id, parent, index } => self.move_to(id, parent, *index),
            Change::Emit { .. } => Ok(()),
            _ => self.apply_to_value(change),
        }
    }

    fn create(&mut self, parent: &ObjId, index: Option<u32>, node: NodeSnapshot) -> Result<(), String> {
        let p = self.nodes.get_mut(parent.as_str()).ok_or_else(|| format!("no parent {parent}"))?;
        let i = position(index, p.children.len(), || format!("children of {parent}"))?;
        p.children.insert(i, node.id.clone());
        self.insert(Some(parent.clone()), node);
        Ok(())
    }

    fn delete(&mut self, id: &ObjId) -> Result<(), String> {
        self.unlink(id)?;
        let mut stack = vec![id.clone()];
        while let Some(k) = stack.pop() {
            if let Some(n) = self.nodes.remove(&k) {
                stack.extend(n.children);
            }
        }
        Ok(())
    }

    fn move_to(&mut self, id: &ObjId, parent: &ObjId, index: Option<u32>) -> Result<(), String> {
        if !self.nodes.contains_key(parent.as_str()) {
            return Err(format!("no parent {parent}"));
        }
        self.unlink(id)?;
        let p = self.nodes.get_mut(parent.as_str()).ok_or_else(|| format!("no parent {parent}"))?;
        let i = position(index, p.children.len(), || format!("children of {parent}"))?;
        p.children.insert(i, id.clone());
        if let Some(n) = self.nodes.get_mut(id.as_str()) {
            n.parent = Some(parent.clone());
        }
        Ok(())
    }

    /// Takes `id` out of its parent's children; says the parent.
    fn unlink(&mut self, id: &ObjId) -> Result<ObjId, String> {
        let parent =
            self.nodes.get(id.as_str()).and_then(|n| n.parent.clone()).ok_or_else(|| format!("no object {id}"))?;
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.retain(|c| c != id);
        }
        Ok(parent)
    }

    /// A change of one attribute's value (every change but create, delete, move and emit).
    fn apply_to_value(&mut self, change: &Change) -> Result<(), String> {
        match change {
            Change::Set { obj, attr, value } => *self.attr_mut(obj, attr)? = value.clone(),
            Change::Add { obj, attr, value } => {
                let v = self.attr_mut(obj, attr)?;
                *v = added(v, value).ok_or_else(|| format!("{obj}.{attr}: cannot add {value} to {v}"))?;
            }
            Change::TextInsert { obj, attr, pos, text } => {
                self.edit_text(obj, attr, &TextEdit::Insert { pos: *pos, text: text.clone() })?
            }
            Change::TextDelete { obj, attr, pos, len } => {
                self.edit_text(obj, attr, &TextEdit::Delete { pos: *pos, len: *len })?
            }
            Change::DictSet { obj, attr, key, value } => {
                dict_mut(self.attr_mut(obj, attr)?, obj, attr)?.insert(key.clone(), value.clone());
            }
            Change::DictRemove { obj, attr, key } => {
                dict_mut(self.attr_mut(obj, attr)?, obj, attr)?.remove(key);
            }
            Change::ListInsert { obj, attr, index, value } => {
                let l = list_mut(self.attr_mut(obj, attr)?)?;
                let i = position(*index, l.len(), || format!("{obj}.{attr}"))?;
                l.insert(i, value.clone());
            }
            Change::ListRemove { obj, attr, index } => {
                let l = list_mut(self.attr_mut(obj, attr)?)?;
                element(*index, l.len(), || format!("{obj}.{attr}"))?;
                l.remove(*index as usize);
            }
            Change::ListMove { obj, attr, from, to } => {
                let l = list_mut(self.attr_mut(obj, attr)?)?;
                element(*from, l.len(), || format!("{obj}.{attr}"))?;
                element(*to, l.len(), || format!("{obj}.{attr}"))?;
                let v = l.remove(*from as usize);
                l.insert(*to as usize, v);
            }
            Change::ListSet { obj, attr, index, value } => {
                let l = list_mut(self.attr_mut(obj, attr)?)?;
                element(*index, l.len(), || format!("{obj}.{attr}"))?;
                l[*index as usize] = value.clone();
            }
            Change::SetAdd { obj, attr, value } => {
                let l = list_mut(self.attr_mut(obj, attr)?)?;
                if let Err(i) = l.binary_search_by(|e| crate::model::set_order(e, value)) {
                    l.insert(i, value.clone());
                }
            }
            Change::SetRemove { obj, attr, value } => list_mut(self.attr_mut(obj, attr)?)?.retain(|e| e != value),
            Change::Create { .. } | Change::Delete { .. } | Change::Move { .. } | Change::Emit { .. } => {
                debug_assert!(false, "invariant: apply handles the tree's changes and emits itself");
                return Err(format!("{change:?} is not a change of a value"));
            }
        }
        Ok(())
    }

    fn edit_text(&mut self, obj: &ObjId, attr: &str, edit: &TextEdit) -> Result<(), String> {
        let v = self.attr_mut(obj, attr)?;
        let s = v.as_str().ok_or_else(|| format!("{obj}.{attr} is not a string"))?;
        *v = Value::from(edit.apply(s).ok_or_else(|| format!("{obj}.{attr}: {edit:?} does not fit"))?);
        Ok(())
    }
}

/// `value + delta` as the server adds: integers to integers (refusing an overflow), otherwise
/// numbers as floats; `None` for anything else.
fn added(value: &Value, delta: &Value) -> Option<Value> {
    match (value, delta) {
        (Value::Int(a), Value::Int(d)) => a.checked_add(*d).map(Value::Int),
        (a, d) => Some(Value::Float(a.as_f64()? + d.as_f64()?)),
    }
}

fn dict_mut<'v>(v: &'v mut Value, obj: &str, attr: &str) -> Result<&'v mut Dict, String> {
    match v {
        Value::Dict(d) => Ok(d),
        _ => Err(format!("{obj}.{attr} is not a dict")),
    }
}

/// Where an insert lands among `len` items: at `index`, or the end. An index past the end means
/// the mirror and the server disagree.
fn position(index: Option<u32>, len: usize, what: impl FnOnce() -> String) -> Result<usize, String> {
    match index {
        Some(i) if i as usize > len => Err(format!("{}: index {i} beyond {len}", what())),
        Some(i) => Ok(i as usize),
        None => Ok(len),
    }
}

/// Checks that `index` names one of `len` items (the server refuses any other).
fn element(index: u32, len: usize, what: impl FnOnce() -> String) -> Result<(), String> {
    if (index as usize) < len {
        Ok(())
    } else {
        Err(format!("{}: no element {index} of {len}", what()))
    }
}

fn list_mut(v: &mut Value) -> Result<&mut thin_vec::ThinVec<Value>, String> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err("not a list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DocSnapshot, NodeSnapshot};

    /// The root with a list `l` of one element and a string `s`.
    fn mirror() -> Mirror {
        let mut attrs = crate::model::Dict::new();
        attrs.insert("l", Value::List(vec![Value::from(1)].into()));
        attrs.insert("s", "ab");
        let root = NodeSnapshot { id: "root".into(), type_name: "Root".into(), attrs, children: Vec::new() };
        Mirror::from_snapshot(DocSnapshot { version: 1, next_server_id: 1, root })
    }

    #[test]
    fn a_change_the_mirror_cannot_follow_is_an_error_not_a_guess() {
        let obj = || compact_str::CompactString::from("root");
        let attr = || compact_str::CompactString::from("l");
        let refused = [
            Change::ListInsert { obj: obj(), attr: attr(), index: Some(2), value: Value::Null },
            Change::ListRemove { obj: obj(), attr: attr(), index: 1 },
            Change::ListMove { obj: obj(), attr: attr(), from: 0, to: 1 },
            Change::ListSet { obj: obj(), attr: attr(), index: 1, value: Value::Null },
            Change::Add { obj: obj(), attr: attr(), value: Value::from(1) },
            Change::TextInsert { obj: obj(), attr: attr(), pos: 0, text: "x".into() },
        ];
        for change in refused {
            let mut m = mirror();
            assert!(m.apply(&change).is_err(), "{change:?} was followed");
            assert_eq!(m.value("root", "l"), mirror().value("root", "l"), "{change:?} changed the list");
        }
        let mut m = mirror();
        m.apply(&Change::ListInsert { obj: obj(), attr: attr(), index: Some(1), value: Value::Null })
            .expect("at the end");
        m.apply(&Change::TextInsert { obj: obj(), attr: "s".into(), pos: 2, text: "c".into() }).expect("a string");
        assert_eq!(m.value("root", "s"), Some(&Value::from("abc")));
    }
}
