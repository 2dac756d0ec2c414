//! Topic kinds: what an attribute may hold and which changes apply to it.
//!
//! [`TopicKind`] is the runtime tag (what the registry, the wire and error messages name); the
//! marker types in [`kinds`] carry the same tag in the type system, so a typed handle
//! `Attr<kinds::Str>` offers text edits and `Attr<kinds::Dict>` offers key edits, and asking a
//! string for a key does not compile.

use super::value::{Dict, Value};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a topic (an attribute of an SObject).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TopicKind {
    /// Text; supports UTF-16 positioned insert and delete, transformed against concurrent edits.
    String,
    /// A 64-bit integer; supports `add`.
    Int,
    /// A finite float; supports `add`.
    Float,
    /// A boolean.
    Bool,
    /// A map from string keys to values.
    Dict,
    /// An ordered list of values.
    List,
    /// Distinct scalars (strings, integers, booleans), kept in one canonical order (booleans,
    /// then integers, then strings), so a set's value never depends on the order of adds.
    Set,
    /// One-shot messages: emitted, delivered, never stored.
    Event,
    /// A reference to one SObject by id, or null.
    Ref,
    /// An ordered list of SObject ids.
    RefList,
    /// A map from string keys to SObject ids.
    RefDict,
}

impl TopicKind {
    /// The name used on the wire and in generated code.
    pub fn name(self) -> &'static str {
        match self {
            TopicKind::String => "string",
            TopicKind::Int => "int",
            TopicKind::Float => "float",
            TopicKind::Bool => "bool",
            TopicKind::Dict => "dict",
            TopicKind::List => "list",
            TopicKind::Set => "set",
            TopicKind::Event => "event",
            TopicKind::Ref => "ref",
            TopicKind::RefList => "ref_list",
            TopicKind::RefDict => "ref_dict",
        }
    }

    /// The value a topic of this kind starts with when its type gives no default.
    pub fn empty_value(self) -> Value {
        match self {
            TopicKind::String => Value::String(Default::default()),
            TopicKind::Int => Value::Int(0),
            TopicKind::Float => Value::Float(0.0),
            TopicKind::Bool => Value::Bool(false),
            TopicKind::Dict | TopicKind::RefDict => Value::Dict(Dict::new()),
            TopicKind::List | TopicKind::Set | TopicKind::RefList => Value::List(thin_vec::ThinVec::new()),
            TopicKind::Event | TopicKind::Ref => Value::Null,
        }
    }

    /// Whether values of this kind hold SObject ids.
    pub fn is_ref(self) -> bool {
        matches!(self, TopicKind::Ref | TopicKind::RefList | TopicKind::RefDict)
    }

    /// Brings `value` into this kind's shape (an integer for a float topic becomes a float), or
    /// says what is wrong with it. Reference targets are checked by the document, not here.
    pub fn conform(self, value: Value) -> Result<Value, String> {
        let value = match (self, value) {
            (TopicKind::Set, Value::List(mut l)) => {
                l.sort_by(set_order);
                Value::List(l)
            }
            (_, v) => v,
        };
        let ok = match (self, &value) {
            (TopicKind::Float, Value::Int(i)) => return Ok(Value::Float(*i as f64)),
            (TopicKind::String, Value::String(_))
            | (TopicKind::Int, Value::Int(_))
            | (TopicKind::Bool, Value::Bool(_))
            | (TopicKind::Dict, Value::Dict(_))
            | (TopicKind::List, Value::List(_))
            | (TopicKind::Ref, Value::Null | Value::String(_)) => true,
            (TopicKind::Float, Value::Float(f)) => f.is_finite(),
            (TopicKind::Set, Value::List(l)) => {
                if let Some(bad) = l.iter().find(|v| !is_set_element(v)) {
                    return Err(format!("set elements must be strings, integers or booleans, not {}", bad.type_name()));
                }
                if has_duplicates(l) {
                    return Err("set elements must be distinct".into());
                }
                true
            }
            (TopicKind::RefList, Value::List(l)) => l.iter().all(|v| v.as_str().is_some()),
            (TopicKind::RefDict, Value::Dict(d)) => d.values().all(|v| v.as_str().is_some()),
            (TopicKind::Event, _) => return Err("an event topic holds no value; emit to it instead".into()),
            _ => false,
        };
        if !ok {
            return Err(format!("expected {}, got {}", self.describe(), value.type_name()));
        }
        if !value.is_finite() {
            return Err("floats must be finite".into());
        }
        Ok(value)
    }

    /// What a value of this kind looks like, for error messages.
    fn describe(self) -> &'static str {
        match self {
            TopicKind::String => "a string",
            TopicKind::Int => "an integer",
            TopicKind::Float => "a finite number",
            TopicKind::Bool => "a boolean",
            TopicKind::Dict => "a dict",
            TopicKind::List => "a list",
            TopicKind::Set => "a list of distinct scalars",
            TopicKind::Event => "nothing",
            TopicKind::Ref => "an object id or null",
            TopicKind::RefList => "a list of object ids",
            TopicKind::RefDict => "a dict of object ids",
        }
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether `v` may be an element of a `set` topic.
pub(crate) fn is_set_element(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Int(_) | Value::Bool(_))
}

/// The canonical order of set elements: booleans, integers, strings.
pub(crate) fn set_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Bool(_) => 0,
            Value::Int(_) => 1,
            Value::String(_) => 2,
            _ => 3,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn has_duplicates(l: &[Value]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(l.len());
    l.iter().any(|v| !seen.insert(SetKey::of(v)))
}

/// A hashable view of a set element.
#[derive(PartialEq, Eq, Hash)]
enum SetKey<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Other,
}

impl<'a> SetKey<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            Value::String(s) => SetKey::Str(s),
            Value::Int(i) => SetKey::Int(*i),
            Value::Bool(b) => SetKey::Bool(*b),
            _ => SetKey::Other,
        }
    }
}

/// A topic kind in the type system, for typed attribute handles.
pub trait Kind: 'static {
    /// The runtime tag.
    const KIND: TopicKind;
    /// How a stored value of this kind is read.
    type View<'a>;
    /// Reads a stored value; `None` only if the value does not have this kind's shape, which the
    /// document never lets happen.
    fn view(v: &Value) -> Option<Self::View<'_>>;
}

/// Marker types, one per [`TopicKind`], used as `Attr<K>` parameters.
pub mod kinds {
    use super::{Kind, TopicKind};
    use crate::model::value::{Dict as DictValue, Value};

    macro_rules! marker {
        ($(#[$m:meta])* $name:ident, $kind:ident, $view:ty, |$v:ident| $read:expr) => {
            $(#[$m])*
            #[derive(Clone, Copy, Debug)]
            pub struct $name;
            impl Kind for $name {
                const KIND: TopicKind = TopicKind::$kind;
                type View<'a> = $view;
                fn view($v: &Value) -> Option<Self::View<'_>> {
                    $read
                }
            }
        };
    }

    marker!(/// `string`: read as `&str`.
        Str, String, &'a str, |v| v.as_str());
    marker!(/// `int`: read as `i64`.
        Int, Int, i64, |v| v.as_int());
    marker!(/// `float`: read as `f64`.
        Float, Float, f64, |v| v.as_f64());
    marker!(/// `bool`: read as `bool`.
        Bool, Bool, bool, |v| v.as_bool());
    marker!(/// `dict`: read as `&Dict`.
        Dict, Dict, &'a DictValue, |v| v.as_dict());
    marker!(/// `list`: read as a slice.
        List, List, &'a [Value], |v| v.as_list());
    marker!(/// `set`: read as a slice of distinct scalars.
        Set, Set, &'a [Value], |v| v.as_list());
    marker!(/// `event`: holds nothing; emit to it.
        Event, Event, (), |_v| Some(()));
    marker!(/// `ref`: read as the target's id, if set.
        Ref, Ref, Option<&'a str>, |v| match v { Value::Null => Some(None), Value::String(s) => Some(Some(s.as_str())), _ => None });
    marker!(/// `ref_list`: read as a slice of ids.
        RefList, RefList, &'a [Value], |v| v.as_list());
    marker!(/// `ref_dict`: read as a dict of ids.
        RefDict, RefDict, &'a DictValue, |v| v.as_dict());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_accepts_int_and_refuses_nan() {
        assert_eq!(TopicKind::Float.conform(Value::Int(2)), Ok(Value::Float(2.0)));
        assert!(TopicKind::Float.conform(Value::Float(f64::NAN)).is_err());
    }

    #[test]
    fn set_refuses_duplicates_and_non_scalars() {
        let dup = Value::List(thin_vec::thin_vec![Value::from("a"), Value::from("a")]);
        assert!(TopicKind::Set.conform(dup).is_err());
        let nested = Value::List(thin_vec::thin_vec![Value::List(thin_vec::thin_vec![])]);
        assert!(TopicKind::Set.conform(nested).is_err());
        let ok = Value::List(thin_vec::thin_vec![Value::from("a"), Value::Int(1), Value::Bool(true)]);
        assert!(TopicKind::Set.conform(ok).is_ok());
    }

    #[test]
    fn wrong_shape_names_both_sides() {
        let err = TopicKind::Dict.conform(Value::from("x")).err().unwrap_or_default();
        assert_eq!(err, "expected a dict, got string");
    }

    #[test]
    fn nested_nan_is_refused() {
        let mut d = Dict::new();
        d.insert("x", f64::INFINITY);
        assert!(TopicKind::Dict.conform(Value::Dict(d)).is_err());
    }
}
