//! Wire protocol v1 (`docs/protocol.md`): the messages, their JSON codec, and the error and close
//! codes.
//!
//! Holds no state. Decoding never panics and turns every malformed input into a
//! [`ProtocolError`] with a wire code; encoding borrows (a transition's steps, the document for a
//! snapshot) and writes each server message once, so one update's bytes are shared by every
//! session of a room.
//!
//! Architecture invariant: this module and `client` are the only ones that know JSON text.

mod changes;
mod client_messages;
pub(crate) mod cluster;
mod encode;
mod frame;
mod server_messages;
mod snapshot;

pub use client_messages::{decode_client, encode_client, ClientMessage, ProtocolError, Resume};
pub(crate) use encode::{
    encode_batch, encode_error, encode_presence, encode_reject, encode_result, encode_types, encode_update_of,
    encode_welcome, UserView, Welcome,
};
pub use encode::{encode_changes, encode_update};
pub(crate) use frame::Frame;
pub(crate) use server_messages::{decode_changes, split_update};
pub use server_messages::{decode_server, decode_trusted, ServerMessage, ServiceError, TRUSTED_JSON_DEPTH_MAX};
pub use snapshot::{compact_snapshot_view, snapshot_view, SnapshotView};

use serde::Serialize;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest action or call id a client may use: 2^53 - 1, the largest integer every JSON
/// implementation (JavaScript's `Number` among them) reads exactly. A larger id is refused
/// (`bad_id`) rather than accepted, after which the client could never act again.
pub const ID_MAX: u64 = crate::model::JSON_SAFE_INT_MAX;

/// Close codes (`docs/protocol.md`, "Close codes").
pub mod close {
    /// Normal close.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A WebSocket protocol violation (RFC 6455: an unmasked client frame, a reserved bit or
    /// opcode, a bad fragment sequence).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not valid UTF-8 (RFC 6455).
    pub const INVALID_DATA: u16 = 1007;
    /// A frame larger than `frame_bytes_max`.
    pub const TOO_BIG: u16 = 1009;
    /// First message not a valid `hello`, or an unsupported protocol.
    pub const BAD_HANDSHAKE: u16 = 4000;
    /// The auth hook refused.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Room refused or a room/client limit reached.
    pub const ROOM_UNAVAILABLE: u16 = 4002;
    /// The client did not read fast enough.
    pub const TOO_SLOW: u16 = 4003;
    /// Too many bad messages.
    pub const TOO_MANY_ERRORS: u16 = 4004;
    /// No traffic for `idle_timeout`.
    pub const IDLE: u16 = 4005;
    /// The room's storage failed; what was not acknowledged is lost; reconnect later.
    pub const STORE_FAILED: u16 = 1011;
    /// The grant (a token) expired: get a new token and resume.
    pub const TOKEN_EXPIRED: u16 = 4006;
    /// Too many connections from this address or of this user (`connections_per_address_max`,
    /// `connections_per_user_max`).
    pub const TOO_MANY_CONNECTIONS: u16 = 4007;
    /// In a cluster: the link to the node holding the room was interrupted (it stopped, the
    /// room moved, messages between the nodes were lost); nothing acknowledged is lost: resume,
    /// at any node.
    pub const ROOM_MOVED: u16 = 4008;
    /// The client was built for other types than the server's (its `hello.schema` fingerprint
    /// is neither the server's nor one it accepts): a new version of the application was
    /// deployed; reload the client rather than reconnect.
    pub const SCHEMA_MISMATCH: u16 = 4009;
}

/// The longest `step` an action may name, in bytes.
pub const STEP_BYTES_MAX: usize = 64;

/// Serializes a message the server or client writes. Nothing in these messages can fail to
/// serialize (string keys only, no `Serialize` impl that returns an error, non-finite floats
/// become `null`): a failure is a bug, not a frame to send empty.
pub(crate) fn to_json<T: Serialize + ?Sized>(message: &T) -> String {
    serde_json::to_string(message).expect("invariant: protocol messages always serialize")
}

#[cfg(test)]
mod tests;
