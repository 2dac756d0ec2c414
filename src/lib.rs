//! ObjectSync: real-time synchronized object trees.
//!
//! A room holds a tree of typed SObjects whose attributes are typed topics (string, int, float,
//! bool, dict, list, set, event, references). The server is the authority: it validates every
//! action, applies it atomically, and replicates the result to every client in one order.
//!
//! Layout (see `ARCHITECTURE.md`):
//! - [`model`]: the pure core (tree, topics, changes, transactions, undo, snapshots).
//! - [`limits`]: every limit, with its default and why.
//! - [`metrics`]: the counters and gauges of `/metrics`, shared by rooms and the server.
//! - [`protocol`]: the wire messages and their codec.
//! - [`room`]: one actor per room owning its document.
//! - [`server`]: the axum router, sessions, hooks, shutdown.
//! - [`store`]: persistence of rooms behind a trait.
//! - [`tls`]: a certificate and key for [`Server::serve_tls`] (HTTPS and WSS).
//! - [`client`]: a Rust client (bots, tools, tests, benchmarks).
//! - [`demo`]: the types of the bundled demos.
//! - `cli` (default feature `cli`): the command line (`serve`, `codegen`, `export`, `import`)
//!   for one's own types.
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

pub mod bench_preset;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod codegen;
pub mod conformance_preset;
pub mod demo;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod room;
pub mod server;
pub mod store;
pub mod tls;

pub use limits::{ModelLimits, ServerLimits};
pub use room::{RoomError, RoomHandle};
pub use server::{BuildError, Server, ServerBuilder};
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
