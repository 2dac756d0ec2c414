//! Migrations of stored rooms: a [`Migration`] is the step from one schema version to the next,
//! written against the stored data (a snapshot's tree of [`NodeSnapshot`]s), not the live types:
//! rename or remove an attribute or a type, convert an attribute's value to a new kind, rewrite
//! the objects of a type with a closure over the old node (move a value into another attribute,
//! split or merge types), or run a server transaction over the document where that is easier.
//!
//! A room stored at version N is brought to the registry's version by the steps N -> N+1 -> ...
//! in order when it loads (`room::load`); the result is checked like any snapshot and stored at
//! once, so a step runs once per room.

use super::change::NodeSnapshot;
use super::document::{DocSnapshot, Document};
use super::error::ModelError;
use super::kind::TopicKind;
use super::registry::TypeRegistry;
use super::tx::Tx;
use super::value::{Dict, Value};
use super::Actor;
use crate::limits::ModelLimits;
use compact_str::CompactString;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

type ConvertFn = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;
type RewriteFn = Arc<dyn Fn(&mut NodeSnapshot) -> Result<(), String> + Send + Sync>;
type TransactionFn = Arc<dyn Fn(&mut Tx<'_>) -> Result<(), ModelError> + Send + Sync>;

/// The step that brings a stored room from one schema version to the next: a list of
/// operations on the stored data, run in the order they were added, each over the whole tree.
///
/// ```
/// use objectsync::model::{Migration, Value};
/// let step = Migration::from_version(1)
///     .rename_attr("Node", "title", "label")
///     .remove_attr("Node", "legacy")
///     .convert_attr("Node", "size", |v| match v {
///         Value::String(s) => s.parse::<i64>().map(Value::Int).map_err(|e| e.to_string()),
///         other => Ok(other),
///     })
///     .remove_type("Scratch");
/// assert_eq!(step.from(), 1);
/// ```
#[derive(Clone)]
pub struct Migration {
    from: u32,
    steps: Vec<Step>,
}

#[derive(Clone)]
enum Step {
    RenameType { from: CompactString, to: CompactString },
    RenameAttr { type_name: CompactString, from: CompactString, to: CompactString },
    RemoveAttr { type_name: CompactString, attr: CompactString },
    ConvertAttr { type_name: CompactString, attr: CompactString, convert: ConvertFn },
    RemoveType { type_name: CompactString },
    Rewrite { type_name: CompactString, rewrite: RewriteFn },
    Transaction { types: Arc<TypeRegistry>, run: TransactionFn },
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::RenameType { from, to } => format!("rename type {from} to {to}"),
            Step::RenameAttr { type_name, from, to } => format!("rename {type_name}.{from} to {to}"),
            Step::RemoveAttr { type_name, attr } => format!("remove {type_name}.{attr}"),
            Step::ConvertAttr { type_name, attr, .. } => format!("convert {type_name}.{attr}"),
            Step::RemoveType { type_name } => format!("remove type {type_name}"),
            Step::Rewrite { type_name, .. } => format!("rewrite each {type_name}"),
            Step::Transaction { .. } => "transaction".into(),
        }
    }
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration")
            .field("from", &self.from)
            .field("steps", &self.steps.iter().map(Step::describe).collect::<Vec<_>>())
            .finish()
    }
}

impl Migration {
    /// The step from schema version `from` to `from + 1`, with no operation yet.
    pub fn from_version(from: u32) -> Self {
        Migration { from, steps: Vec::new() }
    }

    /// The version it starts from.
    pub fn from(&self) -> u32 {
        self.from
    }

    /// Objects of type `from` become objects of type `to` (with the same attributes).
    pub fn rename_type(mut self, from: &str, to: &str) -> Self {
        self.steps.push(Step::RenameType { from: from.into(), to: to.into() });
        self
    }

    /// The attribute `from` of every object of `type_name` is called `to` (its value kept).
    pub fn rename_attr(mut self, type_name: &str, from: &str, to: &str) -> Self {
        self.steps.push(Step::RenameAttr { type_name: type_name.into(), from: from.into(), to: to.into() });
        self
    }

    /// The attribute `attr` of every object of `type_name` is dropped with its value.
    pub fn remove_attr(mut self, type_name: &str, attr: &str) -> Self {
        self.steps.push(Step::RemoveAttr { type_name: type_name.into(), attr: attr.into() });
        self
    }

    /// The value of `attr` of every object of `type_name` that has one is replaced by what
    /// `convert` makes of it: the way to change an attribute's kind (an `Err` refuses the
    /// migration, naming the object).
    pub fn convert_attr(
        mut self,
        type_name: &str,
        attr: &str,
        convert: impl Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps.push(Step::ConvertAttr {
            type_name: type_name.into(),
            attr: attr.into(),
            convert: Arc::new(convert),
        });
        self
    }

    /// Every object of `type_name` is deleted with its subtree, and references to them (in
    /// `ref`, `ref_list` and `ref_dict` attributes of what remains) are cleared as a delete
    /// clears them: a `ref` becomes null, list elements and dict keys are removed.
    pub fn remove_type(mut self, type_name: &str) -> Self {
        self.steps.push(Step::RemoveType { type_name: type_name.into() });
        self
    }

    /// `rewrite` is called with every object of `type_name` as stored (children before their
    /// parent): it may change its attributes (move a value into another attribute, compute a new
    /// one), its type name (split a type into several, or merge several into one) and its
    /// children (add objects). Its id must stay. An `Err` refuses the migration.
    pub fn rewrite(
        mut self,
        type_name: &str,
        rewrite: impl Fn(&mut NodeSnapshot) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.steps.push(Step::Rewrite { type_name: type_name.into(), rewrite: Arc::new(rewrite) });
        self
    }

    /// `run` is a server transaction over the document as it is at this point of the
    /// migration, read with `types` (usually the types of the version it starts from, kept
    /// for this purpose; without hooks is enough): for changes easier to say with the
    /// document's operations (delete what matches a query, fill an attribute from others).
    pub fn transaction(
        mut self,
        types: TypeRegistry,
        run: impl Fn(&mut Tx<'_>) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.steps.push(Step::Transaction { types: Arc::new(types), run: Arc::new(run) });
        self
    }

    /// Runs every step over `snapshot`, recording the ids of objects removed.
    fn run(
        &self,
        snapshot: &mut DocSnapshot,
        limits: &ModelLimits,
        removed: &mut HashSet<CompactString>,
    ) -> Result<(), String> {
        for (i, step) in self.steps.iter().enumerate() {
            let failed = |e: String| format!("step {} ({}): {e}", i + 1, step.describe());
            match step {
                Step::Transaction { types, run } => {
                    let taken = std::mem::replace(snapshot, empty_snapshot());
                    *snapshot = transact(types, limits, taken, run).map_err(failed)?;
                }
                _ => visit(&mut snapshot.root, step, removed).map_err(failed)?,
            }
        }
        Ok(())
    }
}

fn empty_snapshot() -> DocSnapshot {
    DocSnapshot {
        version: 0,
        next_server_id: 1,
        root: NodeSnapshot {
            id: super::ROOT_ID.into(),
            type_name: super::ROOT_TYPE.into(),
            attrs: Dict::new(),
            children: Vec::new(),
        },
    }
}

fn transact(
    types: &Arc<TypeRegistry>,
    limits: &ModelLimits,
    snapshot: DocSnapshot,
    run: &TransactionFn,
) -> Result<DocSnapshot, String> {
    let mut doc = Document::from_snapshot(types.clone(), limits.clone(), snapshot)
        .map_err(|e| format!("its types cannot read the room here: {e}"))?;
    doc.transact(&Actor::Server, |tx| run(tx)).map_err(|r| format!("refused: {r}"))?;
    Ok(doc.snapshot())
}

/// Applies one data step to `node` and everything under it, children first.
fn visit(node: &mut NodeSnapshot, step: &Step, removed: &mut HashSet<CompactString>) -> Result<(), String> {
    if let Step::RemoveType { type_name } = step {
        node.children.retain(|c| {
            let gone = c.type_name == *type_name;
            if gone {
                collect_ids(c, removed);
            }
            !gone
        });
    }
    for child in &mut node.children {
        visit(child, step, removed)?;
    }
    let at = |e: String| format!("{} {}: {e}", node.type_name, node.id);
    match step {
        Step::RenameType { from, to } if node.type_name == *from => node.type_name = to.clone(),
        Step::RenameAttr { type_name, from, to } if node.type_name == *type_name => {
            if let Some(v) = node.attrs.remove(from) {
                if node.attrs.contains_key(to) {
                    return Err(at(format!("it already has {to}")));
                }
                node.attrs.insert(to.clone(), v);
            }
        }
        Step::RemoveAttr { type_name, attr } if node.type_name == *type_name => {
            node.attrs.remove(attr);
        }
        Step::ConvertAttr { type_name, attr, convert } if node.type_name == *type_name => {
            if let Some(v) = node.attrs.remove(attr) {
                let v = convert(v).map_err(|e| at(format!("{attr}: {e}")))?;
                node.attrs.insert(attr.clone(), v);
            }
        }
        Step::Rewrite { type_name, rewrite } if node.type_name == *type_name => {
            let id = node.id.clone();
            let msg = |e: String| format!("{type_name} {id}: {e}");
            rewrite(node).map_err(msg)?;
            if node.id != id {
                return Err(format!("{type_name} {id}: a rewrite changed its id to {}", node.id));
            }
        }
        _ => {}
    }
    Ok(())
}

fn collect_ids(node: &NodeSnapshot, into: &mut HashSet<CompactString>) {
    into.insert(node.id.clone());
    for c in &node.children {
        collect_ids(c, into);
    }
}

/// What a migration did to one room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version the room was stored at.
    pub from: u32,
    /// The version it was brought to.
    pub to: u32,
    /// Objects whose type or attributes changed.
    pub changed: usize,
    /// Objects removed.
    pub removed: usize,
    /// Objects added.
    pub added: usize,
}

/// Brings `snapshot`, stored at schema version `stored`, to `types`' version by the registered
/// steps in order, then clears references to the objects the steps removed. The result keeps
/// the snapshot's version (the caller decides what version the migrated room gets) and is not
/// yet checked against `types` (`Document::from_snapshot` does that).
///
/// # Errors
/// A missing step (naming the versions and what to register), or a step that failed (naming
/// the step and the object).
pub fn migrate_snapshot(
    types: &TypeRegistry,
    limits: &ModelLimits,
    snapshot: &DocSnapshot,
    stored: u32,
) -> Result<(DocSnapshot, MigrationReport), String> {
    let target = types.schema_version();
    debug_assert!(stored < target, "invariant: only an older room is migrated");
    let mut out = snapshot.clone();
    let mut removed = HashSet::new();
    for from in stored..target {
        let step = types.migration_from(from).ok_or_else(|| {
            format!(
                "no migration from schema version {from} to {} is registered (TypeRegistry::migration(Migration::from_version({from})...))",
                from + 1
            )
        })?;
        step.run(&mut out, limits, &mut removed)
            .map_err(|e| format!("the migration from schema version {from} to {}, {e}", from + 1))?;
    }
    out.version = snapshot.version;
    clear_refs(&mut out.root, &removed, types);
    let mut report = diff(&snapshot.root, &out.root);
    (report.from, report.to) = (stored, target);
    Ok((out, report))
}

/// Clears references to `removed` ids held by attributes of reference kinds (by `types`).
fn clear_refs(node: &mut NodeSnapshot, removed: &HashSet<CompactString>, types: &TypeRegistry) {
    if !removed.is_empty() {
        if let Some(def) = types.index_of(&node.type_name).map(|i| types.get(i)) {
            let gone = |v: &Value| v.as_str().is_some_and(|id| removed.contains(id));
            for a in def.attrs.iter() {
                let Some(v) = node.attrs.get_mut(&a.name) else { continue };
                match (a.kind, v) {
                    (TopicKind::Ref, v) if gone(v) => *v = Value::Null,
                    (TopicKind::RefList, Value::List(l)) => l.retain(|e| !gone(e)),
                    (TopicKind::RefDict, Value::Dict(d)) => {
                        let keys: Vec<CompactString> =
                            d.iter().filter(|(_, v)| gone(v)).map(|(k, _)| k.into()).collect();
                        for k in keys {
                            d.remove(&k);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for c in &mut node.children {
        clear_refs(c, removed, types);
    }
}

/// Counts the objects changed, removed and added between two trees.
fn diff(before: &NodeSnapshot, after: &NodeSnapshot) -> MigrationReport {
    fn index<'a>(n: &'a NodeSnapshot, into: &mut HashMap<&'a str, (&'a str, &'a Dict)>) {
        into.insert(n.id.as_str(), (n.type_name.as_str(), &n.attrs));
        for c in &n.children {
            index(c, into);
        }
    }
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    index(before, &mut a);
    index(after, &mut b);
    let mut report = MigrationReport::default();
    for (id, old) in &a {
        match b.get(id) {
            None => report.removed += 1,
            Some(new) if new != old => report.changed += 1,
            Some(_) => {}
        }
    }
    report.added = b.keys().filter(|id| !a.contains_key(*id)).count();
    report
}
