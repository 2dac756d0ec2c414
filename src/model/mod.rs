//! The pure model: values, topic kinds, changes, the SObject tree, types, transactions,
//! text transforms, undo/redo, snapshots, and the schema of the types with the migrations of
//! stored rooms between its versions.
//!
//! No I/O, no async, no JSON text: everything here is plain data and functions, tested without
//! a socket. The server applies client actions with [`Document::apply`], server code changes
//! state with [`Document::transact`], and both get a [`Transition`] to broadcast.
//!
//! Architecture invariant: this module depends on nothing in the crate except `limits`.

mod attr;
mod change;
mod document;
mod error;
mod identity;
mod kind;
mod migration;
mod registry;
mod schema;
pub(crate) mod text;
mod tx;
mod undo;
mod value;

pub use attr::Attr;
pub use change::{Actor, AppliedChange, Change, NodeSnapshot, ObjId};
pub use document::{DocSnapshot, Document, ObjKey, JSON_SAFE_INT_MAX, ROOT_ID};
pub use error::{ModelError, Rejection};
pub use identity::Identity;
pub(crate) use kind::set_order;
pub use kind::{kinds, Kind, TopicKind};
pub use migration::{migrate_snapshot, Migration, MigrationReport};
#[doc(hidden)]
pub use registry::slot_of;
pub(crate) use registry::TypeDef;
pub use registry::{Access, AttrInfo, AttrSpec, DynTypeBuilder, SObjectType, TypeBuilder, TypeRegistry, ROOT_TYPE};
pub(crate) use schema::differences as schema_differences;
pub use schema::{AttrShape, Schema, TypeShape, FIRST_SCHEMA_VERSION};
pub use tx::{Transition, Tx};
pub(crate) use undo::UndoHistory;
pub use value::{Dict, Value};

#[cfg(test)]
mod tests;
