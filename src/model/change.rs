//! Changes: what an actor asks for ([`Change`]), what the document did ([`AppliedChange`]), and
//! who acted ([`Actor`]).
//!
//! A `Change` names objects by id and attributes by name, exactly as the wire does. An
//! `AppliedChange` records one primitive step as it happened, with what it replaced, so that
//! [`AppliedChange::inverse`] is exact and itself an `AppliedChange`. How it is written on the
//! wire (its forward form only) is `protocol`'s.

use super::value::{Dict, Value};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// An object id as clients see it.
pub type ObjId = CompactString;

/// Who makes a change: server code, or a connected client (by its client id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    /// Server-side code: no permission hook, no id prefix rule.
    Server,
    /// A client, named by its client id (unique in the room).
    Client(CompactString),
}

impl Actor {
    /// The key that orders same-position text inserts of two actors: the server's is empty,
    /// a client's is its id. Clients order ties the same way.
    pub fn tie_key(&self) -> &str {
        match self {
            Actor::Server => "",
            Actor::Client(id) => id,
        }
    }
    /// The client id, if a client.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Actor::Server => None,
            Actor::Client(id) => Some(id),
        }
    }
}

/// A whole object with its attributes and subtree, as in snapshots and `create` changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The object id.
    pub id: ObjId,
    /// The registered type name.
    #[serde(rename = "type")]
    pub type_name: CompactString,
    /// Attribute values by name (event topics hold none).
    #[serde(default, skip_serializing_if = "Dict::is_empty")]
    pub attrs: Dict,
    /// Children in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<NodeSnapshot>,
}

impl NodeSnapshot {
    /// Number of objects in this subtree.
    pub fn count(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            n += 1;
            stack.extend(node.children.iter());
        }
        n
    }
}

/// One requested change, as a client or server code asks for it.
///
/// Positions in text count UTF-16 code units; list and child indexes are 0-based. `index: None`
/// means "at the end".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// Create an object (and, if given, its children) under `parent` at `index`.
    Create {
        /// The new id (a client's ids start with `<client id>:`).
        id: ObjId,
        /// A registered type name.
        #[serde(rename = "type")]
        type_name: CompactString,
        /// The parent's id.
        parent: ObjId,
        /// Position among the parent's children; the end if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
        /// Initial attribute values; others take the type's defaults.
        #[serde(default, skip_serializing_if = "Dict::is_empty")]
        attrs: Dict,
        /// Children to create inside it, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        children: Vec<NodeSnapshot>,
    },
    /// Delete an object and its whole subtree; references to them are cleared.
    Delete {
        /// The id.
        id: ObjId,
    },
    /// Move an object under `parent` at `index` (its final position there).
    Move {
        /// The id.
        id: ObjId,
        /// The new parent.
        parent: ObjId,
        /// Final position among the new parent's children; the end if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
    },
    /// Replace an attribute's value (any stored kind).
    Set {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// New value.
        value: Value,
    },
    /// Add a number to an `int` or `float` attribute.
    Add {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The number to add.
        value: Value,
    },
    /// Insert text at a UTF-16 position of a `string` attribute.
    TextInsert {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// UTF-16 position.
        pos: u32,
        /// Text to insert.
        text: CompactString,
    },
    /// Delete `len` UTF-16 units at `pos` of a `string` attribute.
    TextDelete {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// UTF-16 position.
        pos: u32,
        /// UTF-16 length.
        len: u32,
    },
    /// Set one key of a `dict` or `ref_dict` attribute.
    DictSet {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The key.
        key: CompactString,
        /// The value.
        value: Value,
    },
    /// Remove one key of a `dict` or `ref_dict` attribute.
    DictRemove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The key.
        key: CompactString,
    },
    /// Insert into a `list` or `ref_list` attribute.
    ListInsert {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position; the end if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<u32>,
        /// The element.
        value: Value,
    },
    /// Remove the element at `index` of a `list` or `ref_list` attribute.
    ListRemove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position.
        index: u32,
    },
    /// Move an element of a `list` or `ref_list` from `from` to its final position `to`.
    ListMove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Current position.
        from: u32,
        /// Final position.
        to: u32,
    },
    /// Replace the element at `index` of a `list` or `ref_list` attribute.
    ListSet {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position.
        index: u32,
        /// The element.
        value: Value,
    },
    /// Add an element to a `set` attribute (refused if present).
    SetAdd {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The element.
        value: Value,
    },
    /// Remove an element from a `set` attribute (refused if absent).
    SetRemove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The element.
        value: Value,
    },
    /// Emit a one-shot event on an `event` attribute.
    Emit {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Event arguments.
        #[serde(default)]
        args: Value,
    },
}

impl Change {
    /// The attribute this change targets, if it targets one.
    pub fn attr(&self) -> Option<&str> {
        match self {
            Change::Create { .. } | Change::Delete { .. } | Change::Move { .. } => None,
            Change::Set { attr, .. }
            | Change::Add { attr, .. }
            | Change::TextInsert { attr, .. }
            | Change::TextDelete { attr, .. }
            | Change::DictSet { attr, .. }
            | Change::DictRemove { attr, .. }
            | Change::ListInsert { attr, .. }
            | Change::ListRemove { attr, .. }
            | Change::ListMove { attr, .. }
            | Change::ListSet { attr, .. }
            | Change::SetAdd { attr, .. }
            | Change::SetRemove { attr, .. }
            | Change::Emit { attr, .. } => Some(attr),
        }
    }

    /// The id of the object this change targets (for create: the new object).
    pub fn target(&self) -> &str {
        match self {
            Change::Create { id, .. } | Change::Delete { id } | Change::Move { id, .. } => id,
            Change::Set { obj, .. }
            | Change::Add { obj, .. }
            | Change::TextInsert { obj, .. }
            | Change::TextDelete { obj, .. }
            | Change::DictSet { obj, .. }
            | Change::DictRemove { obj, .. }
            | Change::ListInsert { obj, .. }
            | Change::ListRemove { obj, .. }
            | Change::ListMove { obj, .. }
            | Change::ListSet { obj, .. }
            | Change::SetAdd { obj, .. }
            | Change::SetRemove { obj, .. }
            | Change::Emit { obj, .. } => obj,
        }
    }
}

/// One primitive step as the document applied it, with enough to undo it exactly.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AppliedChange {
    /// An object (with its subtree) was created under `parent` at `index`.
    Create {
        /// Parent id.
        parent: ObjId,
        /// Position among the parent's children.
        index: u32,
        /// The whole new subtree, every attribute included.
        node: NodeSnapshot,
    },
    /// An object and its subtree were deleted from `parent` at `index`.
    Delete {
        /// Parent id.
        parent: ObjId,
        /// Position it had.
        index: u32,
        /// The whole deleted subtree.
        node: NodeSnapshot,
    },
    /// An object moved.
    Move {
        /// The object.
        id: ObjId,
        /// Old parent.
        from_parent: ObjId,
        /// Old position.
        from_index: u32,
        /// New parent.
        to_parent: ObjId,
        /// New position.
        to_index: u32,
    },
    /// An attribute was replaced.
    Set {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Value before.
        old: Value,
        /// Value after.
        new: Value,
    },
    /// A number was added.
    Add {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// What was added.
        delta: Value,
        /// Value before.
        old: Value,
        /// Value after.
        new: Value,
    },
    /// Text was inserted.
    TextInsert {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// UTF-16 position.
        pos: u32,
        /// Inserted text.
        text: CompactString,
    },
    /// Text was deleted.
    TextDelete {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// UTF-16 position.
        pos: u32,
        /// The deleted text.
        text: CompactString,
    },
    /// A dict key was set or removed (`new: None`) or added (`old: None`).
    DictSet {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The key.
        key: CompactString,
        /// Value before, if the key was there.
        old: Option<Value>,
        /// Value after, if the key is there.
        new: Option<Value>,
    },
    /// A list element was inserted.
    ListInsert {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position.
        index: u32,
        /// The element.
        value: Value,
    },
    /// A list element was removed.
    ListRemove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position it had.
        index: u32,
        /// The element.
        value: Value,
    },
    /// A list element moved.
    ListMove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Old position.
        from: u32,
        /// New position.
        to: u32,
    },
    /// A list element was replaced.
    ListSet {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Position.
        index: u32,
        /// Element before.
        old: Value,
        /// Element after.
        new: Value,
    },
    /// A set element was added.
    SetAdd {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The element.
        value: Value,
    },
    /// A set element was removed.
    SetRemove {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// The element.
        value: Value,
    },
    /// An event was emitted (not stored; has no inverse).
    Emit {
        /// Object id.
        obj: ObjId,
        /// Attribute name.
        attr: CompactString,
        /// Event arguments.
        args: Value,
    },
}

impl AppliedChange {
    /// About how many bytes this step holds (its values, texts and subtrees): what undo
    /// histories count against their byte bounds.
    pub fn approx_bytes(&self) -> usize {
        use AppliedChange as A;
        let node = |n: &NodeSnapshot| {
            let mut total = 0;
            let mut stack = vec![n];
            while let Some(n) = stack.pop() {
                total += std::mem::size_of::<NodeSnapshot>() + n.id.len() + n.type_name.len();
                total += n.attrs.iter().map(|(k, v)| k.len() + v.approx_bytes()).sum::<usize>();
                stack.extend(n.children.iter());
            }
            total
        };
        let value = |v: &Value| v.approx_bytes();
        let option = |v: &Option<Value>| v.as_ref().map_or(0, Value::approx_bytes);
        std::mem::size_of::<AppliedChange>()
            + match self {
                A::Create { node: n, .. } | A::Delete { node: n, .. } => node(n),
                A::Move { .. } | A::ListMove { .. } => 0,
                A::Set { old, new, .. } | A::ListSet { old, new, .. } => value(old) + value(new),
                A::Add { delta, old, new, .. } => value(delta) + value(old) + value(new),
                A::TextInsert { text, .. } | A::TextDelete { text, .. } => text.len(),
                A::DictSet { key, old, new, .. } => key.len() + option(old) + option(new),
                A::ListInsert { value: v, .. }
                | A::ListRemove { value: v, .. }
                | A::SetAdd { value: v, .. }
                | A::SetRemove { value: v, .. } => value(v),
                A::Emit { args, .. } => value(args),
            }
    }

    /// The step that undoes this one exactly; `None` for an event, which has no state to undo.
    pub fn inverse(&self) -> Option<AppliedChange> {
        use AppliedChange as A;
        Some(match self.clone() {
            A::Create { parent, index, node } => A::Delete { parent, index, node },
            A::Delete { parent, index, node } => A::Create { parent, index, node },
            A::Move { id, from_parent, from_index, to_parent, to_index } => A::Move {
                id,
                from_parent: to_parent,
                from_index: to_index,
                to_parent: from_parent,
                to_index: from_index,
            },
            A::Set { obj, attr, old, new } => A::Set { obj, attr, old: new, new: old },
            A::Add { obj, attr, delta, old, new } => {
                let delta = match delta {
                    Value::Int(i) => Value::Int(i.wrapping_neg()),
                    Value::Float(f) => Value::Float(-f),
                    other => other,
                };
                A::Add { obj, attr, delta, old: new, new: old }
            }
            A::TextInsert { obj, attr, pos, text } => A::TextDelete { obj, attr, pos, text },
            A::TextDelete { obj, attr, pos, text } => A::TextInsert { obj, attr, pos, text },
            A::DictSet { obj, attr, key, old, new } => A::DictSet { obj, attr, key, old: new, new: old },
            A::ListInsert { obj, attr, index, value } => A::ListRemove { obj, attr, index, value },
            A::ListRemove { obj, attr, index, value } => A::ListInsert { obj, attr, index, value },
            A::ListMove { obj, attr, from, to } => A::ListMove { obj, attr, from: to, to: from },
            A::ListSet { obj, attr, index, old, new } => A::ListSet { obj, attr, index, old: new, new: old },
            A::SetAdd { obj, attr, value } => A::SetRemove { obj, attr, value },
            A::SetRemove { obj, attr, value } => A::SetAdd { obj, attr, value },
            A::Emit { .. } => return None,
        })
    }

    /// The id of the object this step changed (for create and delete: the subtree's root).
    pub fn target(&self) -> &str {
        use AppliedChange as A;
        match self {
            A::Create { node, .. } | A::Delete { node, .. } => &node.id,
            A::Move { id, .. } => id,
            A::Set { obj, .. }
            | A::Add { obj, .. }
            | A::TextInsert { obj, .. }
            | A::TextDelete { obj, .. }
            | A::DictSet { obj, .. }
            | A::ListInsert { obj, .. }
            | A::ListRemove { obj, .. }
            | A::ListMove { obj, .. }
            | A::ListSet { obj, .. }
            | A::SetAdd { obj, .. }
            | A::SetRemove { obj, .. }
            | A::Emit { obj, .. } => obj,
        }
    }

    /// The attribute this step changed, if it changed one.
    pub fn attr(&self) -> Option<&str> {
        use AppliedChange as A;
        match self {
            A::Create { .. } | A::Delete { .. } | A::Move { .. } => None,
            A::Set { attr, .. }
            | A::Add { attr, .. }
            | A::TextInsert { attr, .. }
            | A::TextDelete { attr, .. }
            | A::DictSet { attr, .. }
            | A::ListInsert { attr, .. }
            | A::ListRemove { attr, .. }
            | A::ListMove { attr, .. }
            | A::ListSet { attr, .. }
            | A::SetAdd { attr, .. }
            | A::SetRemove { attr, .. }
            | A::Emit { attr, .. } => Some(attr),
        }
    }

    /// Whether this step changes stored state (everything but events).
    pub fn changes_state(&self) -> bool {
        !matches!(self, AppliedChange::Emit { .. })
    }

    /// The forward form as a request [`Change`] (what a client replays).
    pub fn to_change(&self) -> Change {
        use AppliedChange as A;
        match self.clone() {
            A::Create { parent, index, node } => Change::Create {
                id: node.id,
                type_name: node.type_name,
                parent,
                index: Some(index),
                attrs: node.attrs,
                children: node.children,
            },
            A::Delete { node, .. } => Change::Delete { id: node.id },
            A::Move { id, to_parent, to_index, .. } => Change::Move { id, parent: to_parent, index: Some(to_index) },
            A::Set { obj, attr, new, .. } => Change::Set { obj, attr, value: new },
            A::Add { obj, attr, delta, .. } => Change::Add { obj, attr, value: delta },
            A::TextInsert { obj, attr, pos, text } => Change::TextInsert { obj, attr, pos, text },
            A::TextDelete { obj, attr, pos, text } => {
                let len = u32::try_from(super::text::utf16_len(&text)).unwrap_or(u32::MAX);
                Change::TextDelete { obj, attr, pos, len }
            }
            A::DictSet { obj, attr, key, new: Some(value), .. } => Change::DictSet { obj, attr, key, value },
            A::DictSet { obj, attr, key, new: None, .. } => Change::DictRemove { obj, attr, key },
            A::ListInsert { obj, attr, index, value } => Change::ListInsert { obj, attr, index: Some(index), value },
            A::ListRemove { obj, attr, index, .. } => Change::ListRemove { obj, attr, index },
            A::ListMove { obj, attr, from, to } => Change::ListMove { obj, attr, from, to },
            A::ListSet { obj, attr, index, new, .. } => Change::ListSet { obj, attr, index, value: new },
            A::SetAdd { obj, attr, value } => Change::SetAdd { obj, attr, value },
            A::SetRemove { obj, attr, value } => Change::SetRemove { obj, attr, value },
            A::Emit { obj, attr, args } => Change::Emit { obj, attr, args },
        }
    }
}
