//! Typed attribute handles: [`Attr<K>`] names one attribute of one object and offers exactly the
//! reads and changes its kind `K` has. Handles come from the accessors that
//! [`sobject!`](crate::sobject) generates (`text.style()`), so attribute names are checked by
//! the compiler; a handle to a deleted object reads and writes as a clear error.

use super::change::{Change, ObjId};
use super::document::{Document, ObjKey};
use super::error::ModelError;
use super::kind::{kinds, Kind};
use super::tx::Tx;
use super::value::{Dict as DictValue, Value};
use compact_str::CompactString;
use std::marker::PhantomData;

/// One attribute of one object, typed by its kind.
pub struct Attr<K> {
    obj: ObjKey,
    slot: u16,
    _kind: PhantomData<K>,
}

impl<K> Clone for Attr<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Attr<K> {}
impl<K> std::fmt::Debug for Attr<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attr").field("obj", &self.obj).field("slot", &self.slot).finish()
    }
}

impl<K: Kind> Attr<K> {
    /// A handle to attribute `slot` of `obj` (generated code calls this).
    pub fn new(obj: ObjKey, slot: u16) -> Self {
        Attr { obj, slot, _kind: PhantomData }
    }
    /// The attribute's position in its type.
    pub fn slot(&self) -> u16 {
        self.slot
    }
    /// The object.
    pub fn object(&self) -> ObjKey {
        self.obj
    }
    /// The attribute's name.
    pub fn name<'d>(&self, doc: &'d Document) -> Result<&'d str, ModelError> {
        let o = doc.objects.get(self.obj).ok_or_else(|| self.gone())?;
        Ok(doc.types.get(o.type_idx).attrs[usize::from(self.slot)].name.as_str())
    }
    /// The current value.
    pub fn get<'d>(&self, doc: &'d Document) -> Result<K::View<'d>, ModelError> {
        let v = doc.value_at(self.obj, self.slot).ok_or_else(|| self.gone())?;
        // Values conform to their attribute's kind; a handle of another kind reaches this
        // attribute only through an object of another type (`T::from_key` on a foreign key).
        K::view(v).ok_or_else(|| {
            let o = &doc.objects[self.obj];
            ModelError::WrongKind {
                obj: o.id.clone(),
                attr: doc.types.get(o.type_idx).attrs[usize::from(self.slot)].name.clone(),
                kind: K::KIND,
                reason: format!("attribute does not hold a {} value", K::KIND),
            }
        })
    }

    fn gone(&self) -> ModelError {
        ModelError::NoSuchObject { id: "<deleted object>".into() }
    }

    /// Builds a change for this attribute from its object id and name, and applies it.
    fn change(&self, tx: &mut Tx<'_>, make: impl FnOnce(ObjId, CompactString) -> Change) -> Result<(), ModelError> {
        let o = tx.objects.get(self.obj).ok_or_else(|| self.gone())?;
        let attr = tx.types.get(o.type_idx).attrs[usize::from(self.slot)].name.clone();
        let change = make(o.id.clone(), attr);
        tx.apply(change)
    }

    fn set_value(&self, tx: &mut Tx<'_>, value: Value) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::Set { obj, attr, value })
    }
}

impl Attr<kinds::Str> {
    /// Replaces the text.
    pub fn set(&self, tx: &mut Tx<'_>, text: impl Into<CompactString>) -> Result<(), ModelError> {
        self.set_value(tx, Value::String(text.into()))
    }
    /// Inserts `text` at UTF-16 position `pos`.
    pub fn insert(&self, tx: &mut Tx<'_>, pos: u32, text: impl Into<CompactString>) -> Result<(), ModelError> {
        let text = text.into();
        self.change(tx, |obj, attr| Change::TextInsert { obj, attr, pos, text })
    }
    /// Deletes `len` UTF-16 units at `pos`.
    pub fn delete(&self, tx: &mut Tx<'_>, pos: u32, len: u32) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::TextDelete { obj, attr, pos, len })
    }
}

impl Attr<kinds::Int> {
    /// Replaces the number.
    pub fn set(&self, tx: &mut Tx<'_>, v: i64) -> Result<(), ModelError> {
        self.set_value(tx, Value::Int(v))
    }
    /// Adds to the number (refused on overflow).
    pub fn add(&self, tx: &mut Tx<'_>, delta: i64) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::Add { obj, attr, value: Value::Int(delta) })
    }
}

impl Attr<kinds::Float> {
    /// Replaces the number.
    pub fn set(&self, tx: &mut Tx<'_>, v: f64) -> Result<(), ModelError> {
        self.set_value(tx, Value::Float(v))
    }
    /// Adds to the number.
    pub fn add(&self, tx: &mut Tx<'_>, delta: f64) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::Add { obj, attr, value: Value::Float(delta) })
    }
}

impl Attr<kinds::Bool> {
    /// Replaces the flag.
    pub fn set(&self, tx: &mut Tx<'_>, v: bool) -> Result<(), ModelError> {
        self.set_value(tx, Value::Bool(v))
    }
}

impl Attr<kinds::Dict> {
    /// Replaces the whole dict.
    pub fn set(&self, tx: &mut Tx<'_>, d: DictValue) -> Result<(), ModelError> {
        self.set_value(tx, Value::Dict(d))
    }
    /// The value under `key`.
    pub fn get_key<'d>(&self, doc: &'d Document, key: &str) -> Result<Option<&'d Value>, ModelError> {
        Ok(self.get(doc)?.get(key))
    }
    /// Sets one key.
    pub fn set_key(
        &self,
        tx: &mut Tx<'_>,
        key: impl Into<CompactString>,
        value: impl Into<Value>,
    ) -> Result<(), ModelError> {
        let (key, value) = (key.into(), value.into());
        self.change(tx, |obj, attr| Change::DictSet { obj, attr, key, value })
    }
    /// Removes one key (refused if absent).
    pub fn remove_key(&self, tx: &mut Tx<'_>, key: impl Into<CompactString>) -> Result<(), ModelError> {
        let key = key.into();
        self.change(tx, |obj, attr| Change::DictRemove { obj, attr, key })
    }
}

impl Attr<kinds::List> {
    /// Replaces the whole list.
    pub fn set(&self, tx: &mut Tx<'_>, l: Vec<Value>) -> Result<(), ModelError> {
        self.set_value(tx, Value::List(l.into()))
    }
    /// Inserts at `index`.
    pub fn insert(&self, tx: &mut Tx<'_>, index: u32, value: impl Into<Value>) -> Result<(), ModelError> {
        let value = value.into();
        self.change(tx, |obj, attr| Change::ListInsert { obj, attr, index: Some(index), value })
    }
    /// Appends.
    pub fn push(&self, tx: &mut Tx<'_>, value: impl Into<Value>) -> Result<(), ModelError> {
        let value = value.into();
        self.change(tx, |obj, attr| Change::ListInsert { obj, attr, index: None, value })
    }
    /// Removes the element at `index`.
    pub fn remove(&self, tx: &mut Tx<'_>, index: u32) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::ListRemove { obj, attr, index })
    }
    /// Moves the element at `from` to final position `to`.
    pub fn move_item(&self, tx: &mut Tx<'_>, from: u32, to: u32) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::ListMove { obj, attr, from, to })
    }
    /// Replaces the element at `index`.
    pub fn set_item(&self, tx: &mut Tx<'_>, index: u32, value: impl Into<Value>) -> Result<(), ModelError> {
        let value = value.into();
        self.change(tx, |obj, attr| Change::ListSet { obj, attr, index, value })
    }
}

impl Attr<kinds::Set> {
    /// Whether the set holds `v`.
    pub fn contains(&self, doc: &Document, v: &Value) -> Result<bool, ModelError> {
        Ok(self.get(doc)?.contains(v))
    }
    /// Adds an element (refused if present).
    pub fn add(&self, tx: &mut Tx<'_>, value: impl Into<Value>) -> Result<(), ModelError> {
        let value = value.into();
        self.change(tx, |obj, attr| Change::SetAdd { obj, attr, value })
    }
    /// Removes an element (refused if absent).
    pub fn remove(&self, tx: &mut Tx<'_>, value: impl Into<Value>) -> Result<(), ModelError> {
        let value = value.into();
        self.change(tx, |obj, attr| Change::SetRemove { obj, attr, value })
    }
}

impl Attr<kinds::Event> {
    /// Emits an event with `args` to the room (not stored).
    pub fn emit(&self, tx: &mut Tx<'_>, args: impl Into<Value>) -> Result<(), ModelError> {
        let args = args.into();
        self.change(tx, |obj, attr| Change::Emit { obj, attr, args })
    }
}

fn target_id(doc: &Document, target: ObjKey) -> Result<ObjId, ModelError> {
    doc.id(target).map(ObjId::from).ok_or_else(|| ModelError::NoSuchObject { id: "<deleted reference target>".into() })
}

impl Attr<kinds::Ref> {
    /// The referenced object, if set.
    pub fn target(&self, doc: &Document) -> Result<Option<ObjKey>, ModelError> {
        Ok(self.get(doc)?.and_then(|id| doc.key(id)))
    }
    /// Points at `target`, or clears with `None`.
    pub fn set(&self, tx: &mut Tx<'_>, target: Option<ObjKey>) -> Result<(), ModelError> {
        let value = match target {
            Some(t) => Value::String(target_id(tx, t)?),
            None => Value::Null,
        };
        self.set_value(tx, value)
    }
}

impl Attr<kinds::RefList> {
    /// The referenced objects, in order.
    pub fn targets(&self, doc: &Document) -> Result<Vec<ObjKey>, ModelError> {
        Ok(self.get(doc)?.iter().filter_map(|v| v.as_str().and_then(|id| doc.key(id))).collect())
    }
    /// Appends a reference.
    pub fn push(&self, tx: &mut Tx<'_>, target: ObjKey) -> Result<(), ModelError> {
        let value = Value::String(target_id(tx, target)?);
        self.change(tx, |obj, attr| Change::ListInsert { obj, attr, index: None, value })
    }
    /// Removes the reference at `index`.
    pub fn remove(&self, tx: &mut Tx<'_>, index: u32) -> Result<(), ModelError> {
        self.change(tx, |obj, attr| Change::ListRemove { obj, attr, index })
    }
}

impl Attr<kinds::RefDict> {
    /// The object under `key`.
    pub fn target(&self, doc: &Document, key: &str) -> Result<Option<ObjKey>, ModelError> {
        Ok(self.get(doc)?.get(key).and_then(Value::as_str).and_then(|id| doc.key(id)))
    }
    /// Points `key` at `target`.
    pub fn set_key(&self, tx: &mut Tx<'_>, key: impl Into<CompactString>, target: ObjKey) -> Result<(), ModelError> {
        let (key, value) = (key.into(), Value::String(target_id(tx, target)?));
        self.change(tx, |obj, attr| Change::DictSet { obj, attr, key, value })
    }
    /// Removes `key`.
    pub fn remove_key(&self, tx: &mut Tx<'_>, key: impl Into<CompactString>) -> Result<(), ModelError> {
        let key = key.into();
        self.change(tx, |obj, attr| Change::DictRemove { obj, attr, key })
    }
}
