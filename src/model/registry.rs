//! SObject types: [`TypeRegistry`] holds every type a room knows (name, attributes with kinds and
//! defaults), the hooks server code attaches to them (validators, reactions, `build`), and the
//! permission hook. Defined once at start-up, shared by every room through an `Arc`.
//!
//! Types are usually declared with [`sobject!`](crate::sobject), which gives a typed handle whose
//! attribute accessors return `Attr<K>`; [`TypeRegistry::define`] does the same at run time for
//! types known only by data.

use super::attr::Attr;
use super::change::{Actor, Change, NodeSnapshot};
use super::document::{Document, ObjKey};
use super::error::ModelError;
use super::kind::{Kind, TopicKind};
use super::migration::Migration;
use super::schema::{AttrShape, Schema, TypeShape, FIRST_SCHEMA_VERSION};
use super::tx::Tx;
use super::value::Value;
use compact_str::CompactString;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

/// Index of a type in its registry.
pub(crate) type TypeIdx = u16;

/// Name of the built-in type of every document's root object.
pub const ROOT_TYPE: &str = "Root";

/// One attribute of a type, as declared.
#[derive(Clone, Debug)]
pub struct AttrSpec {
    /// Name as clients see it.
    pub name: &'static str,
    /// Its kind.
    pub kind: TopicKind,
    /// Initial value; the kind's empty value when `None`.
    pub default: Option<Value>,
}

impl AttrSpec {
    /// An attribute of `kind` named `name`, with an optional default.
    pub fn new(name: &'static str, kind: TopicKind, default: Option<Value>) -> Self {
        AttrSpec { name, kind, default }
    }
}

/// A Rust type standing for an SObject type: a typed, copyable handle to one object.
///
/// Implemented by [`sobject!`](crate::sobject); hand-written implementations must list
/// attributes in the same order as the slots their accessors use.
pub trait SObjectType: Copy + 'static {
    /// The type name clients see.
    const NAME: &'static str;
    /// The attributes, in slot order.
    fn attributes() -> Vec<AttrSpec>;
    /// Wraps an object key (the caller has checked the object's type).
    fn from_key(key: ObjKey) -> Self;
    /// The object key.
    fn key(self) -> ObjKey;
}

/// Checks a new attribute value; `Err` rejects the whole transaction with that reason.
pub type ValidatorFn = Arc<dyn Fn(&Document, ObjKey, &Value) -> Result<(), String> + Send + Sync>;
/// Runs after a change to an attribute, inside the same transaction, and may change more.
pub type ReactionFn = Arc<dyn Fn(&mut Tx<'_>, ObjKey) -> Result<(), ModelError> + Send + Sync>;
/// Runs after an object of the type is created (not when undo restores one).
pub type CreateFn = Arc<dyn Fn(&mut Tx<'_>, ObjKey) -> Result<(), ModelError> + Send + Sync>;
/// Runs after an object of the type is deleted, with what it was.
pub type DeleteFn = Arc<dyn Fn(&mut Tx<'_>, &NodeSnapshot) -> Result<(), ModelError> + Send + Sync>;
/// Decides whether an actor may make a change; `Err` rejects with that reason.
pub type PermissionFn = Arc<dyn Fn(&Access<'_>) -> Result<(), String> + Send + Sync>;

/// What the permission hook sees for one change by a client.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    /// Who asks.
    pub actor: &'a Actor,
    /// Who the asking client is, as the auth hook said (`None`: anonymous).
    pub identity: Option<&'a super::Identity>,
    /// The document before the change.
    pub doc: &'a Document,
    /// The object changed; for a create, the parent it is created under.
    pub object: ObjKey,
    /// For a move, the new parent.
    pub destination: Option<ObjKey>,
    /// The change asked for.
    pub change: &'a Change,
}

pub(crate) struct AttrDef {
    pub(crate) name: CompactString,
    pub(crate) kind: TopicKind,
    pub(crate) default: Value,
    pub(crate) validators: Vec<ValidatorFn>,
    pub(crate) reactions: Vec<ReactionFn>,
}

pub(crate) struct TypeDef {
    pub(crate) name: CompactString,
    pub(crate) attrs: Vec<AttrDef>,
    pub(crate) on_create: Vec<CreateFn>,
    pub(crate) on_delete: Vec<DeleteFn>,
}

impl TypeDef {
    pub(crate) fn slot(&self, attr: &str) -> Option<u16> {
        // Types have a handful of attributes: a scan beats hashing.
        self.attrs.iter().position(|a| a.name == attr).map(|i| i as u16)
    }
}

/// All SObject types of an application and the hooks on them, with the schema version they
/// make and the migrations that bring rooms stored at earlier versions to it.
pub struct TypeRegistry {
    types: Vec<TypeDef>,
    by_name: HashMap<CompactString, TypeIdx>,
    permission: Option<PermissionFn>,
    version: u32,
    migrations: Vec<Migration>,
    /// Fingerprints of client builds let in besides this registry's own.
    compatible: Vec<String>,
    /// This registry's fingerprint, once asked (reset by every change of the types).
    fingerprint: OnceLock<String>,
}

impl Default for TypeRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.iter().map(|t| &t.name)).finish()
    }
}

impl TypeRegistry {
    /// A registry holding only the built-in root type.
    pub fn new() -> Self {
        let mut r = TypeRegistry {
            types: Vec::new(),
            by_name: HashMap::new(),
            permission: None,
            version: FIRST_SCHEMA_VERSION,
            migrations: Vec::new(),
            compatible: Vec::new(),
            fingerprint: OnceLock::new(),
        };
        r.define(ROOT_TYPE, Vec::new());
        r
    }

    /// Declares the schema version these types make (1 when never declared). Every stored
    /// snapshot records it; a room stored at an earlier version is brought to this one by the
    /// registered [`Migration`]s when it loads, and one stored at a later version is refused.
    /// Raise it with every change of the types that stored rooms cannot be read with as they
    /// are (a rename, a removal, a new kind), and register the step from the previous version.
    ///
    /// ```
    /// use objectsync::model::{Migration, TypeRegistry};
    /// let mut types = TypeRegistry::new().version(2);
    /// types.migration(Migration::from_version(1).rename_type("Note", "Card"));
    /// assert_eq!(types.schema_version(), 2);
    /// ```
    pub fn version(mut self, version: u32) -> Self {
        self.set_version(version);
        self
    }

    /// As [`version`](Self::version), on a registry behind a reference.
    ///
    /// # Panics
    /// If `version` is 0 (versions start at 1): a start-up mistake.
    pub fn set_version(&mut self, version: u32) {
        assert!(version >= FIRST_SCHEMA_VERSION, "schema versions start at {FIRST_SCHEMA_VERSION}");
        self.version = version;
    }

    /// The schema version these types make.
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// Registers the step that brings a room stored at `migration`'s version to the next one.
    ///
    /// # Panics
    /// If a step from that version is already registered, or it starts at or after this
    /// registry's version (set the version first): start-up mistakes.
    pub fn migration(&mut self, migration: Migration) -> &mut Self {
        let from = migration.from();
        assert!(
            self.migrations.iter().all(|m| m.from() != from),
            "a migration from schema version {from} is registered twice"
        );
        assert!(
            from < self.version,
            "a migration from schema version {from} needs types of a later version (set TypeRegistry::version first; it is {})",
            self.version
        );
        self.migrations.push(migration);
        self
    }

    /// The step from version `from`, if registered.
    pub(crate) fn migration_from(&self, from: u32) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.from() == from)
    }

    /// Lets in clients built for other types, by their fingerprint: after a change old clients
    /// still work with (an added attribute or type they never touch), name the previous
    /// fingerprint here so they are not told to reload. By default only clients of exactly
    /// these types (or clients that name none) are let in.
    pub fn accept_clients_of(&mut self, fingerprint: impl Into<String>) -> &mut Self {
        self.compatible.push(fingerprint.into());
        self
    }

    /// Whether a client that says it was built for types of `fingerprint` is let in.
    pub fn accepts_client(&self, fingerprint: &str) -> bool {
        fingerprint == self.fingerprint() || self.compatible.iter().any(|f| f == fingerprint)
    }

    /// These types as data, with the schema version: what every stored snapshot records.
    pub fn schema(&self) -> Schema {
        Schema {
            version: self.version,
            types: self
                .types
                .iter()
                .map(|t| TypeShape {
                    name: t.name.clone(),
                    attrs: t
                        .attrs
                        .iter()
                        .map(|a| AttrShape { name: a.name.clone(), kind: a.kind, default: a.default.clone() })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The fingerprint of these types ([`Schema::fingerprint`]): what `objectsync codegen ts`
    /// writes into the generated TypeScript and a client sends in its `hello`.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| self.schema().fingerprint())
    }

    /// A registry of the types a stored room recorded, without hooks: to replay the room's log
    /// as it was written before migrating it.
    pub(crate) fn of_schema(schema: &Schema) -> Result<TypeRegistry, String> {
        let mut r = TypeRegistry::new();
        r.version = schema.version;
        for t in &schema.types {
            if t.name == ROOT_TYPE {
                if !t.attrs.is_empty() {
                    return Err(format!("the stored {ROOT_TYPE} type has attributes"));
                }
                continue;
            }
            if r.by_name.contains_key(&t.name) {
                return Err(format!("type {} is recorded twice", t.name));
            }
            let mut attrs = Vec::with_capacity(t.attrs.len());
            for a in &t.attrs {
                let default = match a.kind {
                    // An event holds no value: its recorded default is the kind's empty one.
                    TopicKind::Event => a.kind.empty_value(),
                    kind => kind
                        .conform(a.default.clone())
                        .map_err(|e| format!("the default of {}.{}: {e}", t.name, a.name))?,
                };
                attrs.push(AttrDef {
                    name: a.name.clone(),
                    kind: a.kind,
                    default,
                    validators: Vec::new(),
                    reactions: Vec::new(),
                });
            }
            let idx = r.types.len() as TypeIdx;
            r.types.push(TypeDef { name: t.name.clone(), attrs, on_create: Vec::new(), on_delete: Vec::new() });
            r.by_name.insert(t.name.clone(), idx);
        }
        Ok(r)
    }

    /// Registers `T` and returns a builder for its hooks.
    ///
    /// # Panics
    /// If a type of that name is already registered, or a default does not fit its kind: both
    /// are mistakes in the program's start-up code, not in anything a client sends.
    pub fn register<T: SObjectType>(&mut self) -> TypeBuilder<'_, T> {
        let idx = self.define(T::NAME, T::attributes()).idx;
        TypeBuilder { reg: self, idx, _t: PhantomData }
    }

    /// Registers a type known only at run time.
    ///
    /// # Panics
    /// As [`register`](Self::register).
    pub fn define(&mut self, name: &str, attrs: Vec<AttrSpec>) -> DynTypeBuilder<'_> {
        assert!(!self.by_name.contains_key(name), "SObject type {name:?} is registered twice");
        assert!(self.types.len() < usize::from(u16::MAX), "too many SObject types");
        let attrs = attrs
            .into_iter()
            .map(|spec| {
                let default = match spec.default {
                    None => spec.kind.empty_value(),
                    Some(v) => spec.kind.conform(v).unwrap_or_else(|e| {
                        panic!("default of {name}.{}: {e}", spec.name);
                    }),
                };
                AttrDef {
                    name: spec.name.into(),
                    kind: spec.kind,
                    default,
                    validators: Vec::new(),
                    reactions: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        let idx = self.types.len() as TypeIdx;
        self.types.push(TypeDef { name: name.into(), attrs, on_create: Vec::new(), on_delete: Vec::new() });
        self.by_name.insert(name.into(), idx);
        self.fingerprint = OnceLock::new();
        DynTypeBuilder { reg: self, idx }
    }

    /// Sets the permission hook, asked for every change a client makes.
    pub fn permission(&mut self, hook: impl Fn(&Access<'_>) -> Result<(), String> + Send + Sync + 'static) {
        self.permission = Some(Arc::new(hook));
    }

    /// Type names with their attributes' names and kinds, in registration order (for codegen
    /// and documentation).
    pub fn describe(&self) -> Vec<(&str, Vec<(&str, TopicKind)>)> {
        self.types
            .iter()
            .map(|t| (t.name.as_str(), t.attrs.iter().map(|a| (a.name.as_str(), a.kind)).collect()))
            .collect()
    }

    /// Like [`describe`](Self::describe), with each attribute's default value.
    pub fn describe_with_defaults(&self) -> Vec<(&str, Vec<AttrInfo<'_>>)> {
        self.types
            .iter()
            .map(|t| {
                let attrs = t.attrs.iter().map(|a| AttrInfo { name: &a.name, kind: a.kind, default: &a.default });
                (t.name.as_str(), attrs.collect())
            })
            .collect()
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<TypeIdx> {
        self.by_name.get(name).copied()
    }
    pub(crate) fn defs(&self) -> &[TypeDef] {
        &self.types
    }
    pub(crate) fn get(&self, idx: TypeIdx) -> &TypeDef {
        &self.types[usize::from(idx)]
    }
    pub(crate) fn permission_hook(&self) -> Option<&PermissionFn> {
        self.permission.as_ref()
    }
}

/// An attribute as [`TypeRegistry::describe_with_defaults`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct AttrInfo<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its kind.
    pub kind: TopicKind,
    /// The value it starts with.
    pub default: &'a Value,
}

/// Adds hooks to a registered type, by attribute name.
pub struct DynTypeBuilder<'r> {
    reg: &'r mut TypeRegistry,
    idx: TypeIdx,
}

impl DynTypeBuilder<'_> {
    fn def(&mut self) -> &mut TypeDef {
        &mut self.reg.types[usize::from(self.idx)]
    }
    fn attr(&mut self, name: &str) -> &mut AttrDef {
        let def = self.def();
        let type_name = def.name.clone();
        def.attrs
            .iter_mut()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("type {type_name} has no attribute {name:?}"))
    }
    /// Adds a validator to the attribute `attr`.
    ///
    /// # Panics
    /// If the type has no such attribute (a start-up mistake).
    pub fn validate(
        mut self,
        attr: &str,
        f: impl Fn(&Document, ObjKey, &Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.attr(attr).validators.push(Arc::new(f));
        self
    }
    /// Adds a reaction to changes of the attribute `attr`.
    ///
    /// # Panics
    /// If the type has no such attribute.
    pub fn on_change(
        mut self,
        attr: &str,
        f: impl Fn(&mut Tx<'_>, ObjKey) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.attr(attr).reactions.push(Arc::new(f));
        self
    }
    /// Adds a hook run when an object of this type is created (e.g. to build its children).
    pub fn build(mut self, f: impl Fn(&mut Tx<'_>, ObjKey) -> Result<(), ModelError> + Send + Sync + 'static) -> Self {
        self.def().on_create.push(Arc::new(f));
        self
    }
    /// Adds a hook run after an object of this type is deleted.
    pub fn on_delete(
        mut self,
        f: impl Fn(&mut Tx<'_>, &NodeSnapshot) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.def().on_delete.push(Arc::new(f));
        self
    }
}

/// Adds hooks to a type registered from a Rust type `T`, with typed attributes and handles.
pub struct TypeBuilder<'r, T> {
    reg: &'r mut TypeRegistry,
    idx: TypeIdx,
    _t: PhantomData<T>,
}

impl<T: SObjectType> TypeBuilder<'_, T> {
    fn slot_of<K: Kind>(attr: fn(T) -> Attr<K>) -> usize {
        usize::from(attr(T::from_key(ObjKey::default())).slot())
    }
    fn attr_def(&mut self, slot: usize) -> &mut AttrDef {
        &mut self.reg.types[usize::from(self.idx)].attrs[slot]
    }

    /// Adds a validator: `node.pos` must lie inside the canvas, say. It sees the document after
    /// the change, the object, and the attribute's new value.
    pub fn validate<K: Kind>(
        mut self,
        attr: fn(T) -> Attr<K>,
        f: impl Fn(&Document, T, K::View<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        let slot = Self::slot_of(attr);
        self.attr_def(slot).validators.push(Arc::new(move |doc, key, value| match K::view(value) {
            Some(view) => f(doc, T::from_key(key), view),
            None => Err(format!("expected a {} value", K::KIND)),
        }));
        self
    }

    /// Adds a reaction to every change of `attr` (by clients, server code or other reactions);
    /// what it changes joins the same transaction.
    pub fn on_change<K: Kind>(
        mut self,
        attr: fn(T) -> Attr<K>,
        f: impl Fn(&mut Tx<'_>, T) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        let slot = Self::slot_of(attr);
        self.attr_def(slot).reactions.push(Arc::new(move |tx, key| f(tx, T::from_key(key))));
        self
    }

    /// Adds a hook run when an object of this type is created (not when undo restores it), in
    /// the same transaction: the place to create its children.
    pub fn build(self, f: impl Fn(&mut Tx<'_>, T) -> Result<(), ModelError> + Send + Sync + 'static) -> Self {
        self.reg.types[usize::from(self.idx)].on_create.push(Arc::new(move |tx, key| f(tx, T::from_key(key))));
        self
    }

    /// Adds a hook run after an object of this type is deleted, with its last state.
    pub fn on_delete(
        self,
        f: impl Fn(&mut Tx<'_>, &NodeSnapshot) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.reg.types[usize::from(self.idx)].on_delete.push(Arc::new(f));
        self
    }
}

/// Position of `name` in `names`, at compile time (used by [`sobject!`](crate::sobject)).
#[doc(hidden)]
pub const fn slot_of(names: &[&str], name: &str) -> u16 {
    let mut i = 0;
    while i < names.len() {
        let a = names[i].as_bytes();
        let b = name.as_bytes();
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i as u16;
            }
        }
        i += 1;
    }
    panic!("attribute not declared")
}

/// Declares an SObject type: a typed handle struct, its registered name, and its attributes with
/// kinds (from [`kinds`](crate::model::kinds)) and optional defaults.
///
/// ```
/// use objectsync::{sobject, dict};
/// sobject! {
///     /// A piece of styled text.
///     pub struct Text: "Text" {
///         text: Str = "Hello",
///         style: Dict = dict! { "color" => "black" },
///     }
/// }
/// ```
///
/// Each attribute becomes a method returning `Attr<kind>`, e.g. `text.style()`, whose typed
/// operations (`set_key`, `insert`, ...) only exist where the kind has them.
#[macro_export]
macro_rules! sobject {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident : $type_name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident $(= $default:expr)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis struct $name($crate::model::ObjKey);

        impl $crate::model::SObjectType for $name {
            const NAME: &'static str = $type_name;
            fn attributes() -> ::std::vec::Vec<$crate::model::AttrSpec> {
                ::std::vec![ $( $crate::model::AttrSpec::new(
                    ::std::stringify!($field),
                    <$crate::model::kinds::$kind as $crate::model::Kind>::KIND,
                    $crate::__sobject_default!($($default)?),
                ) ),* ]
            }
            fn from_key(key: $crate::model::ObjKey) -> Self {
                $name(key)
            }
            fn key(self) -> $crate::model::ObjKey {
                self.0
            }
        }

        impl ::std::convert::From<$name> for $crate::model::ObjKey {
            fn from(handle: $name) -> Self {
                handle.0
            }
        }

        impl $name {
            #[doc(hidden)]
            pub const __ATTRIBUTE_NAMES: &'static [&'static str] = &[$(::std::stringify!($field)),*];
            $(
                #[doc = ::std::concat!("The `", ::std::stringify!($field), "` attribute (", ::std::stringify!($kind), ").")]
                $(#[$fmeta])*
                #[allow(dead_code)]
                $vis fn $field(self) -> $crate::model::Attr<$crate::model::kinds::$kind> {
                    $crate::model::Attr::new(
                        self.0,
                        const { $crate::model::slot_of(<$name>::__ATTRIBUTE_NAMES, ::std::stringify!($field)) },
                    )
                }
            )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sobject_default {
    () => {
        ::std::option::Option::None
    };
    ($e:expr) => {
        ::std::option::Option::Some($crate::model::Value::from($e))
    };
}
