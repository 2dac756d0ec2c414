//! JSON-like values held by topics: [`Value`] and its string-keyed map [`Dict`].
//!
//! Owns the data shapes and their serde mapping; knows nothing of topics, kinds or documents.
//! Strings are [`CompactString`]s: ids, keys and short texts (up to 24 bytes) live inline, which
//! keeps a node of a typical graph free of small heap allocations.

use compact_str::CompactString;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use thin_vec::ThinVec;

/// A JSON-like value: what a topic holds, what a dict or list element is.
///
/// Integers and floats are distinct (`Int(1) != Float(1.0)`); a float topic accepts an integer
/// and stores it as a float, because JavaScript sends `1.0` as `1`.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// No value: an unset reference, an event without arguments.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A 64-bit signed integer (JavaScript reads it exactly up to 2^53).
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// UTF-8 text; positions on the wire count UTF-16 code units.
    String(CompactString),
    /// An ordered list (a thin vector: its length lives with the elements, which keeps every
    /// `Value` at 24 bytes).
    List(ThinVec<Value>),
    /// A map from string keys to values, kept sorted by key.
    Dict(Dict),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The number as a float, if this is an integer or a float.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    /// The dict, if this is one.
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// A short name of the variant, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
        }
    }
    /// Whether every float inside is finite (JSON has no NaN or infinity).
    pub fn is_finite(&self) -> bool {
        match self {
            Value::Float(f) => f.is_finite(),
            Value::List(l) => l.iter().all(Value::is_finite),
            Value::Dict(d) => d.values().all(Value::is_finite),
            _ => true,
        }
    }
    /// About how many bytes this value holds (itself and what it owns): what undo histories
    /// count against their byte bounds. Iterative, so any depth is safe.
    pub fn approx_bytes(&self) -> usize {
        let mut total = 0;
        let mut stack = vec![self];
        while let Some(v) = stack.pop() {
            total += std::mem::size_of::<Value>();
            match v {
                Value::String(s) => total += s.len(),
                Value::List(l) => stack.extend(l.iter()),
                Value::Dict(d) => {
                    for (k, e) in d.iter() {
                        total += k.len() + std::mem::size_of::<CompactString>();
                        stack.push(e);
                    }
                }
                _ => {}
            }
        }
        total
    }

    /// Nesting depth: 0 for scalars, 1 for a flat list or dict.
    pub fn depth(&self) -> usize {
        match self {
            Value::List(l) => 1 + l.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(d) => 1 + d.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(CompactString::from(s))
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(CompactString::from(s))
    }
}
impl From<CompactString> for Value {
    fn from(s: CompactString) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Value::Dict(d)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(l: Vec<T>) -> Self {
        Value::List(l.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<ThinVec<T>> for Value {
    fn from(l: ThinVec<T>) -> Self {
        Value::List(l.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}

/// A map from string keys to [`Value`]s, sorted by key.
///
/// A sorted vector rather than a tree or hash map: topics hold small dicts (a position, a style),
/// where a vector is smaller and as fast; lookups are binary searches.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dict(ThinVec<(CompactString, Value)>);

impl Dict {
    /// An empty dict.
    pub fn new() -> Self {
        Dict(ThinVec::new())
    }
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }
    /// The value under `key`, to change it in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }
    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }
    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(&mut self, key: impl Into<CompactString>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                // Small dicts (a position, a style) grow one entry at a time: no spare capacity
                // per object; larger ones grow geometrically.
                if self.0.len() == self.0.capacity() && self.0.len() < 8 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (key, value));
                None
            }
        }
    }
    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<K: Into<CompactString>, V: Into<Value>> FromIterator<(K, V)> for Dict {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut d = Dict::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl IntoIterator for Dict {
    type Item = (CompactString, Value);
    type IntoIter = thin_vec::IntoIter<(CompactString, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Builds a [`Dict`] from `key => value` pairs: `dict! { "x" => 1, "y" => 2.5 }`.
#[macro_export]
macro_rules! dict {
    () => { $crate::model::Dict::new() };
    ($($k:expr => $v:expr),+ $(,)?) => {{
        let mut d = $crate::model::Dict::new();
        $( d.insert($k, $v); )+
        d
    }};
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(t) => s.serialize_str(t),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Dict(d) => d.serialize(s),
        }
    }
}

impl Serialize for Dict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(CompactString::from(s)))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(CompactString::from(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut l = ThinVec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            l.push(v);
        }
        Ok(Value::List(l))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        DictVisitor.visit_map(map).map(Value::Dict)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct DictVisitor;

impl<'de> Visitor<'de> for DictVisitor {
    type Value = Dict;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map with string keys")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dict, A::Error> {
        let mut entries: Vec<(CompactString, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some((k, v)) = map.next_entry::<CompactString, Value>()? {
            entries.push((k, v));
        }
        // Stable sort, then keep the last of equal keys: a repeated key means what JSON.parse does.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: ThinVec<(CompactString, Value)> = ThinVec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Ok(Dict(out))
    }
}

impl<'de> Deserialize<'de> for Dict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DictVisitor)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Dict(d) => {
                f.write_str("{")?;
                for (i, (k, v)) in d.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_takes_24_bytes() {
        // A node's attributes, dict entries and list elements are Values: every byte counts per
        // object (W4 of the benchmark).
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 24);
    }

    #[test]
    fn dict_keeps_keys_sorted_and_replaces() {
        let mut d = Dict::new();
        assert_eq!(d.insert("b", 1), None);
        assert_eq!(d.insert("a", 2), None);
        assert_eq!(d.insert("b", 3), Some(Value::Int(1)));
        assert_eq!(d.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(d.remove("a"), Some(Value::Int(2)));
        assert_eq!(d.remove("a"), None);
    }

    #[test]
    fn json_round_trip_keeps_int_and_float_apart() {
        let v: Value = serde_json::from_str(r#"{"x":1,"y":1.5,"s":"é😀","l":[null,true],"z":1.0}"#).unwrap_or_default();
        let d = v.as_dict().cloned().unwrap_or_default();
        assert_eq!(d.get("x"), Some(&Value::Int(1)));
        assert_eq!(d.get("z"), Some(&Value::Float(1.0)));
        let text = serde_json::to_string(&v).unwrap_or_default();
        let back: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, v);
    }

    #[test]
    fn repeated_json_key_keeps_the_last() {
        let v: Value = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap_or_default();
        assert_eq!(v.as_dict().and_then(|d| d.get("a")), Some(&Value::Int(2)));
    }
}
