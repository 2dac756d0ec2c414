//! The attribute primitive: [`Document::attr_op`] applies one resolved [`AttrOp`] to one
//! attribute and returns the step as applied (its exact inverse included). One function per
//! operation, grouped by family: whole values, numbers, text, dicts, lists, sets, events. Each
//! checks kinds, ranges, limits and reference targets and keeps the reference index in step; none
//! runs validators, permissions or reactions (the transaction does).

use super::{Document, ObjKey};
use crate::model::change::{AppliedChange, ObjId};
use crate::model::error::ModelError;
use crate::model::kind::{is_set_element, set_order, TopicKind};
use crate::model::text::{byte_offset, utf16_len};
use crate::model::value::Value;
use compact_str::CompactString;

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

/// The attribute an operation applies to, with what its errors name.
struct Target {
    key: ObjKey,
    slot: u16,
    kind: TopicKind,
    obj: ObjId,
    attr: CompactString,
}

impl Target {
    fn wrong(&self, reason: String) -> ModelError {
        ModelError::WrongKind { obj: self.obj.clone(), attr: self.attr.clone(), kind: self.kind, reason }
    }
    fn out_of_range(&self, index: u32, len: usize) -> ModelError {
        ModelError::OutOfRange { target: self.name(), index: u64::from(index), len: len as u64 }
    }
    /// `{obj}.{attr}`, as errors name an attribute.
    fn name(&self) -> String {
        format!("{}.{}", self.obj, self.attr)
    }
    /// Refuses `what` unless `ok` (the operation fits the attribute's kind).
    fn kind_is(&self, ok: bool, what: &str) -> Result<(), ModelError> {
        if ok {
            Ok(())
        } else {
            Err(self.wrong(format!("{what} does not apply")))
        }
    }
    fn is_list(&self) -> bool {
        matches!(self.kind, TopicKind::List | TopicKind::RefList)
    }
    fn is_dict(&self) -> bool {
        matches!(self.kind, TopicKind::Dict | TopicKind::RefDict)
    }
}

impl Document {
    /// Applies one resolved attribute operation. Checks kinds, ranges, limits and reference
    /// targets; does not run validators, permissions or reactions (the transaction does).
    pub(crate) fn attr_op(&mut self, key: ObjKey, slot: u16, op: AttrOp) -> Result<AppliedChange, ModelError> {
        let t = self.target(key, slot);
        match op {
            AttrOp::Set(v) => self.set(t, v),
            AttrOp::Add(delta) => self.add(t, delta),
            AttrOp::AddExact { delta, old, new } => self.add_exact(t, delta, old, new),
            AttrOp::TextInsert(pos, text) => self.text_insert(t, pos, text),
            AttrOp::TextDelete(pos, len) => self.text_delete(t, pos, len),
            AttrOp::DictSet(k, v) => self.dict_set(t, k, v),
            AttrOp::DictRemove(k) => self.dict_remove(t, k),
            AttrOp::ListInsert(index, v) => self.list_insert(t, index, v),
            AttrOp::ListRemove(i) => self.list_remove(t, i),
            AttrOp::ListMove(from, to) => self.list_move(t, from, to),
            AttrOp::ListSet(i, v) => self.list_set(t, i, v),
            AttrOp::SetAdd(v) => self.set_add(t, v),
            AttrOp::SetRemove(v) => self.set_remove(t, v),
            AttrOp::Emit(args) => self.emit(t, args),
        }
    }

    fn target(&self, key: ObjKey, slot: u16) -> Target {
        let o = &self.objects[key];
        let a = &self.types.get(o.type_idx).attrs[usize::from(slot)];
        Target { key, slot, kind: a.kind, obj: o.id.clone(), attr: a.name.clone() }
    }

    fn slot_mut(&mut self, t: &Target) -> &mut Value {
        &mut self.objects[t.key].attrs[usize::from(t.slot)]
    }

    // ----- whole values -----

    fn set(&mut self, t: Target, v: Value) -> Result<AppliedChange, ModelError> {
        let v = t.kind.conform(v).map_err(|reason| t.wrong(reason))?;
        self.check_value(&v, || t.name())?;
        self.check_targets(&t.obj, &t.attr, t.kind, &v)?;
        let old = std::mem::replace(self.slot_mut(&t), v.clone());
        if t.kind.is_ref() {
            self.unlink(t.key, t.slot, t.kind, &old);
            self.link(t.key, t.slot, t.kind, &v);
        }
        Ok(AppliedChange::Set { obj: t.obj, attr: t.attr, old, new: v })
    }

    // ----- numbers -----

    fn add(&mut self, t: Target, delta: Value) -> Result<AppliedChange, ModelError> {
        numbers_only(&t)?;
        let old = self.slot_mut(&t).clone();
        let new = add_values(t.kind, &old, &delta).map_err(|e| match e {
            AddError::Kind(reason) => t.wrong(reason),
            AddError::Overflow => overflow(&t, &delta),
        })?;
        *self.slot_mut(&t) = new.clone();
        Ok(AppliedChange::Add { obj: t.obj, attr: t.attr, delta, old, new })
    }

    /// Replays an add: `exact` when the value is still `expect`, else `delta` added to it.
    fn add_exact(&mut self, t: Target, delta: Value, expect: Value, exact: Value) -> Result<AppliedChange, ModelError> {
        numbers_only(&t)?;
        let old = self.slot_mut(&t).clone();
        let new =
            if old == expect { exact } else { add_values(t.kind, &old, &delta).map_err(|_| overflow(&t, &delta))? };
        *self.slot_mut(&t) = new.clone();
        Ok(AppliedChange::Add { obj: t.obj, attr: t.attr, delta, old, new })
    }

    // ----- text -----

    fn text_insert(&mut self, t: Target, pos: u32, text: CompactString) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.kind == TopicKind::String, "a text insert")?;
        let limit = self.limits.string_len_max;
        let Value::String(s) = self.slot_mut(&t) else {
            return Err(t.wrong("not a string".into()));
        };
        let at = text_offset(s, pos, &t)?;
        if s.len() + text.len() > limit {
            return Err(ModelError::TooLarge { what: t.name(), size: s.len() + text.len(), limit });
        }
        s.insert_str(at, &text);
        Ok(AppliedChange::TextInsert { obj: t.obj, attr: t.attr, pos, text })
    }

    fn text_delete(&mut self, t: Target, pos: u32, len: u32) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.kind == TopicKind::String, "a text delete")?;
        let Value::String(s) = self.slot_mut(&t) else {
            return Err(t.wrong("not a string".into()));
        };
        let from = text_offset(s, pos, &t)?;
        let to = text_offset(s, pos.saturating_add(len), &t)?;
        let text = CompactString::from(&s[from..to]);
        s.replace_range(from..to, "");
        Ok(AppliedChange::TextDelete { obj: t.obj, attr: t.attr, pos, text })
    }

    // ----- dicts -----

    fn dict_set(&mut self, t: Target, k: CompactString, v: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_dict(), "a dict key set")?;
        if t.kind == TopicKind::RefDict && v.as_str().is_none() {
            return Err(t.wrong(format!("expected an object id, got {}", v.type_name())));
        }
        if !v.is_finite() {
            return Err(t.wrong("floats must be finite".into()));
        }
        self.check_value(&v, || format!("{}.{}[{k:?}]", t.obj, t.attr))?;
        if t.kind == TopicKind::RefDict {
            self.check_targets(&t.obj, &t.attr, TopicKind::Ref, &v)?;
        }
        let Value::Dict(d) = self.slot_mut(&t) else {
            return Err(t.wrong("not a dict".into()));
        };
        let old = d.insert(k.clone(), v.clone());
        if t.kind.is_ref() {
            if let Some(old) = &old {
                self.unlink(t.key, t.slot, TopicKind::Ref, old);
            }
            self.link(t.key, t.slot, TopicKind::Ref, &v);
        }
        Ok(AppliedChange::DictSet { obj: t.obj, attr: t.attr, key: k, old, new: Some(v) })
    }

    fn dict_remove(&mut self, t: Target, k: CompactString) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_dict(), "a dict key remove")?;
        let Value::Dict(d) = self.slot_mut(&t) else {
            return Err(t.wrong("not a dict".into()));
        };
        let Some(old) = d.remove(&k) else {
            return Err(ModelError::NoSuchKey { obj: t.obj, attr: t.attr, key: k });
        };
        if t.kind.is_ref() {
            self.unlink(t.key, t.slot, TopicKind::Ref, &old);
        }
        Ok(AppliedChange::DictSet { obj: t.obj, attr: t.attr, key: k, old: Some(old), new: None })
    }

    // ----- lists -----

    fn list_insert(&mut self, t: Target, index: Option<u32>, v: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_list(), "a list insert")?;
        self.check_element(&t.obj, &t.attr, t.kind, &v)?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a list".into()));
        };
        let i = match index {
            Some(i) if i as usize > l.len() => return Err(t.out_of_range(i, l.len())),
            Some(i) => i as usize,
            None => l.len(),
        };
        l.insert(i, v.clone());
        if t.kind.is_ref() {
            self.link(t.key, t.slot, TopicKind::Ref, &v);
        }
        Ok(AppliedChange::ListInsert { obj: t.obj, attr: t.attr, index: i as u32, value: v })
    }

    fn list_remove(&mut self, t: Target, i: u32) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_list(), "a list remove")?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a list".into()));
        };
        if i as usize >= l.len() {
            return Err(t.out_of_range(i, l.len()));
        }
        let value = l.remove(i as usize);
        if t.kind.is_ref() {
            self.unlink(t.key, t.slot, TopicKind::Ref, &value);
        }
        Ok(AppliedChange::ListRemove { obj: t.obj, attr: t.attr, index: i, value })
    }

    fn list_move(&mut self, t: Target, from: u32, to: u32) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_list(), "a list move")?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a list".into()));
        };
        if from as usize >= l.len() {
            return Err(t.out_of_range(from, l.len()));
        }
        if to as usize >= l.len() {
            return Err(t.out_of_range(to, l.len()));
        }
        let v = l.remove(from as usize);
        l.insert(to as usize, v);
        Ok(AppliedChange::ListMove { obj: t.obj, attr: t.attr, from, to })
    }

    fn list_set(&mut self, t: Target, i: u32, v: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.is_list(), "a list set")?;
        self.check_element(&t.obj, &t.attr, t.kind, &v)?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a list".into()));
        };
        if i as usize >= l.len() {
            return Err(t.out_of_range(i, l.len()));
        }
        let old = std::mem::replace(&mut l[i as usize], v.clone());
        if t.kind.is_ref() {
            self.unlink(t.key, t.slot, TopicKind::Ref, &old);
            self.link(t.key, t.slot, TopicKind::Ref, &v);
        }
        Ok(AppliedChange::ListSet { obj: t.obj, attr: t.attr, index: i, old, new: v })
    }

    // ----- sets -----

    fn set_add(&mut self, t: Target, v: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.kind == TopicKind::Set, "a set add")?;
        if !is_set_element(&v) {
            return Err(t.wrong(format!("set elements are strings, integers or booleans, not {}", v.type_name())));
        }
        self.check_value(&v, || t.name())?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a set".into()));
        };
        match l.binary_search_by(|e| set_order(e, &v)) {
            Ok(_) => {
                return Err(ModelError::SetElement { obj: t.obj, attr: t.attr, reason: format!("already holds {v}") })
            }
            Err(i) => l.insert(i, v.clone()),
        }
        Ok(AppliedChange::SetAdd { obj: t.obj, attr: t.attr, value: v })
    }

    fn set_remove(&mut self, t: Target, v: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.kind == TopicKind::Set, "a set remove")?;
        let Value::List(l) = self.slot_mut(&t) else {
            return Err(t.wrong("not a set".into()));
        };
        let Ok(i) = l.binary_search_by(|e| set_order(e, &v)) else {
            return Err(ModelError::SetElement { obj: t.obj, attr: t.attr, reason: format!("does not hold {v}") });
        };
        l.remove(i);
        Ok(AppliedChange::SetRemove { obj: t.obj, attr: t.attr, value: v })
    }

    // ----- events -----

    fn emit(&mut self, t: Target, args: Value) -> Result<AppliedChange, ModelError> {
        t.kind_is(t.kind == TopicKind::Event, "emit")?;
        if !args.is_finite() {
            return Err(t.wrong("floats must be finite".into()));
        }
        self.check_value(&args, || format!("{} arguments", t.name()))?;
        Ok(AppliedChange::Emit { obj: t.obj, attr: t.attr, args })
    }
}

/// Adds apply to int and float topics only.
fn numbers_only(t: &Target) -> Result<(), ModelError> {
    if matches!(t.kind, TopicKind::Int | TopicKind::Float) {
        Ok(())
    } else {
        Err(t.wrong("add applies to int and float topics".into()))
    }
}

fn overflow(t: &Target, delta: &Value) -> ModelError {
    ModelError::Overflow { obj: t.obj.clone(), attr: t.attr.clone(), delta: delta.to_string() }
}

/// The byte offset of UTF-16 position `pos` in `s`: out of range past the end, or splitting a
/// surrogate pair.
fn text_offset(s: &str, pos: u32, t: &Target) -> Result<usize, ModelError> {
    byte_offset(s, pos as usize).ok_or_else(|| {
        let len = utf16_len(s);
        if pos as usize > len {
            ModelError::OutOfRange { target: t.name(), index: u64::from(pos), len: len as u64 }
        } else {
            ModelError::SplitsCharacter { obj: t.obj.clone(), attr: t.attr.clone(), pos: u64::from(pos) }
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
