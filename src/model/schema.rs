//! The shape of an application's types as it is stored beside a room: [`Schema`] (the schema
//! version the application declares, and every type's attributes with their kinds and defaults)
//! and its fingerprint, which a client built for these types sends in its `hello`.
//!
//! A stored room keeps the shape it was written with, so that a later build with other types can
//! replay the room's log at the version it was written in and then migrate it
//! ([`Migration`](super::Migration)), and can say exactly what differs when it cannot.

use super::kind::TopicKind;
use super::value::Value;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The schema version of a registry that declares none, and of rooms stored before versions
/// were recorded.
pub const FIRST_SCHEMA_VERSION: u32 = 1;

/// Every type of a registry as data: what a stored room records of the types it was written with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The application's schema version ([`TypeRegistry::version`](super::TypeRegistry::version)).
    pub version: u32,
    /// The types, in registration order (the root type first).
    pub types: Vec<TypeShape>,
}

/// One type of a [`Schema`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeShape {
    /// The type name.
    pub name: CompactString,
    /// Its attributes, in slot order.
    pub attrs: Vec<AttrShape>,
}

/// One attribute of a [`TypeShape`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttrShape {
    /// The attribute name.
    pub name: CompactString,
    /// Its kind.
    pub kind: TopicKind,
    /// The value it starts with.
    pub default: Value,
}

impl Schema {
    /// The fingerprint of these types: 16 hex digits of a BLAKE3 hash of every type's name and
    /// its attributes' names and kinds (sorted, so the order of registration does not count;
    /// defaults and the version number do not count either). Two registries with the same
    /// fingerprint accept the same changes by shape.
    pub fn fingerprint(&self) -> String {
        let mut types: Vec<&TypeShape> = self.types.iter().collect();
        types.sort_by(|a, b| a.name.cmp(&b.name));
        let mut text = String::new();
        for t in types {
            let mut attrs: Vec<&AttrShape> = t.attrs.iter().collect();
            attrs.sort_by(|a, b| a.name.cmp(&b.name));
            text.push_str(&t.name);
            text.push('{');
            for a in attrs {
                // Names cannot hold ':' or ',' unescaped here: JSON-quote them to be sure.
                let _ = write!(text, "{:?}:{},", a.name.as_str(), a.kind.name());
            }
            text.push_str("}\n");
        }
        let hash = blake3::hash(text.as_bytes());
        hash.as_bytes()[..8].iter().fold(String::with_capacity(16), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&TypeShape> {
        self.types.iter().find(|t| t.name == name)
    }
}

impl TypeShape {
    /// The attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<&AttrShape> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// What differs between the types a room was stored with and the types of this build, said
/// per type and attribute (for a refusal that names what to migrate).
pub(crate) fn differences(stored: &Schema, code: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for t in &stored.types {
        let Some(now) = code.get(&t.name) else {
            out.push(format!("type {} is gone", t.name));
            continue;
        };
        for a in &t.attrs {
            match now.attr(&a.name) {
                None => out.push(format!("{}.{} ({}) is gone", t.name, a.name, a.kind.name())),
                Some(b) if b.kind != a.kind => {
                    out.push(format!("{}.{} was {}, is now {}", t.name, a.name, a.kind.name(), b.kind.name()))
                }
                Some(_) => {}
            }
        }
        for b in &now.attrs {
            if t.attr(&b.name).is_none() {
                out.push(format!("{}.{} ({}) is new", t.name, b.name, b.kind.name()));
            }
        }
    }
    for t in &code.types {
        if stored.get(&t.name).is_none() {
            out.push(format!("type {} is new", t.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(types: &[(&str, &[(&str, TopicKind)])]) -> Schema {
        Schema {
            version: 1,
            types: types
                .iter()
                .map(|(name, attrs)| TypeShape {
                    name: (*name).into(),
                    attrs: attrs
                        .iter()
                        .map(|(n, k)| AttrShape { name: (*n).into(), kind: *k, default: k.empty_value() })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_fingerprint_counts_names_and_kinds_not_order_or_defaults() {
        let a = schema(&[("A", &[("x", TopicKind::Int), ("y", TopicKind::String)]), ("B", &[])]);
        let reordered = schema(&[("B", &[]), ("A", &[("y", TopicKind::String), ("x", TopicKind::Int)])]);
        assert_eq!(a.fingerprint(), reordered.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        let mut other_default = a.clone();
        other_default.types[0].attrs[0].default = Value::Int(5);
        other_default.version = 2;
        assert_eq!(a.fingerprint(), other_default.fingerprint());
        let rekinded = schema(&[("A", &[("x", TopicKind::Float), ("y", TopicKind::String)]), ("B", &[])]);
        let renamed = schema(&[("A", &[("z", TopicKind::Int), ("y", TopicKind::String)]), ("B", &[])]);
        let moved = schema(&[("A", &[("y", TopicKind::String)]), ("B", &[("x", TopicKind::Int)])]);
        for other in [rekinded, renamed, moved] {
            assert_ne!(a.fingerprint(), other.fingerprint());
        }
    }

    #[test]
    fn differences_name_every_type_and_attribute() {
        let stored = schema(&[("A", &[("x", TopicKind::Int), ("y", TopicKind::String)]), ("Gone", &[])]);
        let code = schema(&[("A", &[("x", TopicKind::Float), ("z", TopicKind::Bool)]), ("New", &[])]);
        assert_eq!(
            differences(&stored, &code),
            vec![
                "A.x was int, is now float",
                "A.y (string) is gone",
                "A.z (bool) is new",
                "type Gone is gone",
                "type New is new"
            ]
        );
    }
}
