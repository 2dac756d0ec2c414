//! One actor per room: [`RoomHandle`] is how everything else reaches it. The room owns its whole
//! life: `registry.rs` loads it on first use (through `load.rs`), finds it again and unloads it;
//! `outbound.rs` is a session's bounded queue.
//!
//! The actor itself is split by what it does: `handle.rs` (how others reach it: [`RoomHandle`],
//! commands, the session's link and closer), `actor.rs` (its state and command loop), `apply.rs`
//! (actions, undo, presence and server transactions applied and published), `join.rs` (joins,
//! resumes, welcomes, the clients it knows), `durability.rs` (messages held until the store has
//! them, store batches, snapshots) and `fanout.rs` (what is sent to whom, and cutting off a
//! session whose queue is full).
//!
//! The actor owns the room's [`Document`] and [`UndoHistory`] and is the only code that touches
//! them. It applies commands in arrival order, encodes each resulting message **once**, keeps the
//! last updates for resuming clients, and hands the same shared bytes to every session's bounded
//! queue. A session whose queue is full is cut off (close 4003) instead of slowing the room or
//! growing memory; it can resume from its last version.
//!
//! Must not: block on a socket, hold a lock across an await, know the wire beyond `protocol`'s
//! encoders, or reach into `server` (the server uses rooms, never the other way).

mod actor;
mod apply;
mod durability;
mod fanout;
mod handle;
mod join;
mod load;
mod moving;
mod outbound;
mod registry;
mod relay;
mod remote;
mod stream;

use actor::{spawn, RoomSeed};
pub(crate) use fanout::too_slow;
pub(crate) use handle::{next_connection_id, Closer, Command, JoinError, JoinRequest, SessionLink};
pub use handle::{RoomError, RoomHandle};
pub use load::{load_room, RestoredRoom};
pub(crate) use load::{release_free_memory, Loader, RoomInitFn};
pub(crate) use outbound::{channel as outbound_channel, OutboundBudget, OutboundReceiver, OutboundSender, QueueFull};
pub(crate) use registry::valid_room_name;
pub use registry::ServerError;
pub(crate) use registry::{ClusterLink, Registry};
pub(crate) use remote::{CallHandler, ServiceRequest};
pub(crate) use stream::Outlet;

pub(crate) use crate::protocol::Frame;
use compact_str::CompactString;

/// A client id, unique in its room.
pub type ClientId = CompactString;
