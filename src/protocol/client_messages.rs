//! What clients send: [`ClientMessage`] (and its [`Resume`] point), decoded with
//! [`decode_client`] into a message or a [`ProtocolError`] with its wire code, never a panic.

use super::{to_json, STEP_BYTES_MAX};
use crate::model::{Change, ObjId, Value};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// A resume point sent in `hello`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resume {
    /// The client id from the earlier `welcome`.
    pub client: CompactString,
    /// The resume token from the earlier `welcome`.
    pub resume_token: String,
    /// The last version the client applied.
    pub version: u64,
}

/// A message from a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// The handshake.
    Hello {
        /// Must be [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
        protocol: u32,
        /// For the auth hook.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Reconnecting as an earlier client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
        /// The client accepts `batch` messages.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        batch: bool,
        /// The client accepts snapshots in the compact form.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compact_snapshots: bool,
        /// The fingerprint of the types the client was built for (`TypeRegistry::fingerprint`,
        /// written by `objectsync codegen ts`); a client that names none is not checked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
    },
    /// Changes to apply atomically.
    Action {
        /// Strictly increasing per client.
        id: u64,
        /// The version the client had applied.
        base: u64,
        /// The changes.
        changes: Vec<Change>,
        /// The undo step it belongs to: a client's actions with the same `step` are one undo
        /// step however far apart they come (a drag, a gesture); without it, edits of the same
        /// objects closer than `undo_merge_window_ms` merge. At most [`STEP_BYTES_MAX`] bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<CompactString>,
    },
    /// Undo the client's latest change in `scope`.
    Undo {
        /// An action id.
        id: u64,
        /// Object whose subtree limits the undo.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<ObjId>,
    },
    /// Redo the client's latest undone change in `scope`.
    Redo {
        /// An action id.
        id: u64,
        /// Object whose subtree limits the redo.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<ObjId>,
    },
    /// Set this client's presence (`null` clears it).
    Presence {
        /// Any JSON.
        #[serde(default)]
        state: Value,
    },
    /// Call a service.
    Call {
        /// Matches the `result`.
        id: u64,
        /// Registered service name.
        service: String,
        /// Arguments.
        #[serde(default)]
        args: Value,
    },
}

/// Why a client message could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Not JSON, or missing/wrong fields.
    #[error("{reason}")]
    BadMessage {
        /// The decoder's words (with line and column).
        reason: String,
    },
    /// A `t` this server does not know.
    #[error("unknown message type {t:?}")]
    UnknownMessage {
        /// The type given.
        t: String,
    },
}

impl ProtocolError {
    /// The wire code of the `error` message.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::BadMessage { .. } => "bad_message",
            ProtocolError::UnknownMessage { .. } => "unknown_message",
        }
    }
}

const CLIENT_TYPES: &[&str] = &["hello", "action", "undo", "redo", "presence", "call"];

/// Decodes one client message.
pub fn decode_client(text: &str) -> Result<ClientMessage, ProtocolError> {
    let message: ClientMessage = serde_json::from_str(text).map_err(|e| {
        // Tell an unknown type apart from a malformed known one, for the error code.
        #[derive(Deserialize)]
        struct Tagged {
            t: String,
        }
        match serde_json::from_str::<Tagged>(text) {
            Ok(Tagged { t }) if !CLIENT_TYPES.contains(&t.as_str()) => ProtocolError::UnknownMessage { t },
            _ => ProtocolError::BadMessage { reason: e.to_string() },
        }
    })?;
    match &message {
        ClientMessage::Action { step: Some(step), .. } if step.len() > STEP_BYTES_MAX => {
            let reason = format!("a step of {} bytes; at most {STEP_BYTES_MAX}", step.len());
            Err(ProtocolError::BadMessage { reason })
        }
        _ => Ok(message),
    }
}

/// Encodes a client message (for the Rust client and tests).
pub fn encode_client(msg: &ClientMessage) -> String {
    to_json(msg)
}
