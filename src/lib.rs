//! ObjectSync: real-time synchronized object trees.
//!
//! A room holds a tree of typed SObjects whose attributes are typed topics (string, int, float,
//! bool, dict, list, set, event, references). The server is the authority: it validates every
//! action, applies it atomically, and replicates the result to every client in one order.
//!
//! What an application uses:
//! - [`model`]: declaring SObject types ([`sobject!`], [`model::TypeRegistry`], validators,
//!   reactions, permissions) and changing a document from server code ([`model::Document`],
//!   [`model::Tx`], [`model::Value`]).
//! - [`Server`] and [`ServerBuilder`]: the server (rooms over WebSocket, the store, hooks:
//!   [`AuthRequest`] and [`Grant`] or [`JwtAuth`] for who may connect, [`ServiceCall`] for
//!   services), with [`ServerLimits`] and [`ModelLimits`]; [`RoomHandle`] to change a live room.
//! - [`store`]: where rooms are kept ([`store::SqliteStore`] by default, [`store::MemoryStore`],
//!   or a [`store::Store`] of one's own).
//! - `cli` (default feature `cli`): `cli::run`, the command line (`serve`, `codegen`, `export`,
//!   `import`) for one's own types, in a three-line `main`.
//! - [`client`]: a Rust client (bots, tools, tests); [`protocol`]: the wire's messages and codes.
//!
//! The rest (rooms' actors, sessions, metrics, codegen) is the crate's own; `ARCHITECTURE.md`
//! maps it. The bundled demo and test presets are behind the `presets` feature.
//!
//! Declaring a type and changing a document from server code:
//!
//! ```
//! use objectsync::model::{Actor, Document, TypeRegistry};
//! use objectsync::{dict, sobject};
//! use std::sync::Arc;
//!
//! sobject! {
//!     /// Styled text.
//!     pub struct Text: "Text" {
//!         text: Str,
//!         style: Dict,
//!     }
//! }
//!
//! let mut types = TypeRegistry::new();
//! types.register::<Text>();
//! let mut doc = Document::new(Arc::new(types));
//! let (transition, text) = doc
//!     .transact(&Actor::Server, |tx| {
//!         let root = tx.root();
//!         let text = tx.create::<Text>(root)?;
//!         text.text().set(tx, "Hello")?;
//!         text.style().set_key(tx, "color", "red")?;
//!         Ok(text)
//!     })
//!     .map_err(|r| r.to_string())?;
//! assert_eq!(transition.version, 1);
//! assert_eq!(text.text().get(&doc).map_err(|e| e.to_string())?, "Hello");
//! # Ok::<(), String>(())
//! ```

#![warn(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
mod cluster;
#[cfg(feature = "cli")]
mod codegen;
mod limits;
mod metrics;
pub mod model;
#[cfg(feature = "presets")]
pub mod presets;
pub mod protocol;
mod room;
mod server;
pub mod store;
mod tls;

pub use cluster::BusError;
#[cfg(feature = "redis")]
pub use cluster::RedisBus;
pub use limits::{ModelLimits, ServerLimits};
pub use room::{load_room, ClientId, RestoredRoom, RoomError, RoomHandle, ServerError};
pub use server::{AuthRequest, BoxFuture, BuildError, Grant, JwtAuth, KeyError, Server, ServerBuilder, ServiceCall};
pub use tls::{TlsConfig, TlsError};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;

#[doc = include_str!("../docs/getting-started.md")]
#[cfg(doctest)]
struct GettingStartedDoctests;

#[doc = include_str!("../docs/kinds.md")]
#[cfg(doctest)]
struct KindsDoctests;

#[doc = include_str!("../docs/operations.md")]
#[cfg(doctest)]
struct OperationsDoctests;

#[doc = include_str!("../docs/migrations.md")]
#[cfg(doctest)]
struct MigrationsDoctests;
