//! The pure model: values, topic kinds, changes, the SObject tree, types, transactions,
//! text transforms, undo/redo and snapshots.
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
mod registry;
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
#[doc(hidden)]
pub use registry::slot_of;
pub(crate) use registry::TypeDef;
pub use registry::{Access, AttrInfo, AttrSpec, DynTypeBuilder, SObjectType, TypeBuilder, TypeRegistry, ROOT_TYPE};
pub use tx::{Transition, Tx};
pub(crate) use undo::UndoHistory;
pub use value::{Dict, Value};

#[cfg(test)]
mod tests;
