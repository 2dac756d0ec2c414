//! Reading what the server wrote: [`ServerMessage`] (for the Rust client and tests), the
//! store's change records, and [`decode_trusted`], which reads JSON nested deeper than serde's
//! default without recursion limits.

use super::{encode_update_of, ProtocolError};
use crate::model::{Change, Value};
use compact_str::CompactString;
use serde::Deserialize;
use std::collections::HashMap;

/// A message from the server, decoded (for the Rust client and tests).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// Handshake answer.
    Welcome {
        /// Client id.
        client: CompactString,
        /// For resuming.
        resume_token: String,
        /// Room version.
        version: u64,
        /// Highest processed action id.
        #[serde(default)]
        acked: u64,
        /// The document, when the client must reload.
        #[serde(default)]
        snapshot: Option<crate::model::DocSnapshot>,
        /// Others' presence.
        #[serde(default)]
        presence: HashMap<CompactString, Value>,
        /// May change nothing.
        #[serde(default)]
        read_only: bool,
        /// Undo steps the room holds for this client.
        #[serde(default)]
        undo_steps: usize,
        /// Redo steps the room holds for this client.
        #[serde(default)]
        redo_steps: usize,
    },
    /// A state transition.
    Update {
        /// New version.
        v: u64,
        /// Who caused it.
        origin: CompactString,
        /// Their action id.
        #[serde(default)]
        action: Option<u64>,
        /// Applied changes (forward form).
        changes: Vec<Change>,
    },
    /// Events only; no version.
    Events {
        /// Current version.
        v: u64,
        /// Who emitted.
        origin: CompactString,
        /// Their action id.
        #[serde(default)]
        action: Option<u64>,
        /// The emits.
        changes: Vec<Change>,
    },
    /// An action was refused.
    Reject {
        /// Its id.
        action: u64,
        /// Machine-readable code.
        code: String,
        /// Human reason.
        reason: String,
        /// Index of the failing change.
        #[serde(default)]
        change: Option<usize>,
    },
    /// Another client's presence.
    Presence {
        /// Whose.
        client: CompactString,
        /// State, or null when gone.
        #[serde(default)]
        state: Value,
    },
    /// A service's answer.
    Result {
        /// The call id.
        id: u64,
        /// Success value.
        #[serde(default)]
        ok: Option<Value>,
        /// Failure.
        #[serde(default)]
        error: Option<ServiceError>,
    },
    /// A message was not understood.
    Error {
        /// Code.
        code: String,
        /// Reason.
        reason: String,
    },
    /// Several messages, in order (only to clients that said `batch` in their hello).
    Batch {
        /// The messages.
        m: Vec<ServerMessage>,
    },
}

/// A service failure in a `result`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ServiceError {
    /// `no_such_service`, `timeout`, `service_failed`.
    pub code: String,
    /// Human reason.
    pub reason: String,
}

/// Decodes changes written by [`encode_changes`] (the store's log), as steps to apply again.
pub(crate) fn decode_changes(text: &str) -> Result<Vec<Change>, String> {
    decode_trusted(text)
}

/// An `update` message's parts as the store keeps them (see [`split_update`]).
#[derive(Debug, PartialEq)]
pub(crate) struct UpdateParts {
    pub(crate) v: u64,
    /// The client that caused it; `None` for server code.
    pub(crate) origin: Option<CompactString>,
    pub(crate) action: Option<u64>,
    /// The `changes` array's text, as it was.
    pub(crate) changes: String,
}

/// Splits an `update` this server wrote into its parts, its `changes` kept as text: for
/// converting logs that stored whole messages. Refused unless [`encode_update_of`] gives back
/// exactly `text` from the parts.
pub(crate) fn split_update(text: &str) -> Result<UpdateParts, String> {
    #[derive(Deserialize)]
    struct Head {
        t: String,
        v: u64,
        origin: CompactString,
        action: Option<u64>,
        #[allow(dead_code)] // read to check that it is JSON; kept as text below
        changes: serde::de::IgnoredAny,
    }
    let head: Head = decode_trusted(text)?;
    if head.t != "update" {
        return Err(format!("a {:?} message, not an update", head.t));
    }
    // The encoder writes `changes` last, after fields (a number and a client id) that cannot
    // contain this key.
    let key = r#","changes":"#;
    let start = text.find(key).ok_or("no changes")? + key.len();
    let changes = text.get(start..text.len().saturating_sub(1)).ok_or("no changes")?.to_owned();
    let origin = (head.origin != "server").then_some(head.origin);
    let parts = UpdateParts { v: head.v, origin, action: head.action, changes };
    let again =
        encode_update_of(parts.v, parts.origin.as_deref().unwrap_or("server"), parts.action, &parts.changes, false);
    if again != text {
        return Err("not in the form this server writes".into());
    }
    Ok(parts)
}

/// Decodes a server message (for the Rust client and tests).
pub fn decode_server(text: &str) -> Result<ServerMessage, ProtocolError> {
    decode_trusted(text).map_err(|reason| ProtocolError::BadMessage { reason })
}

/// How deeply nested the JSON that the server writes may be when it is read back (stored
/// snapshots and updates, server messages read by the Rust client, `export` files).
///
/// The deepest document the model limits accept nests about `2 * tree_depth_max +
/// value_depth_max` levels (each object is a map inside its parent's `children` array),
/// above serde_json's default limit of 128: such a room was accepted, then could not be
/// loaded. Reading with [`decode_trusted`] allows this many levels, on a stack that grows as
/// needed; it is far above what the default limits write
/// ([`ModelLimits::json_depth_max`](crate::limits::ModelLimits::json_depth_max)) and low enough
/// that what is read can be dropped without exhausting a thread's stack. Clients' messages keep
/// serde_json's limit of 128 levels.
pub const TRUSTED_JSON_DEPTH_MAX: usize = 1024;

/// Decodes JSON that this server wrote (see [`TRUSTED_JSON_DEPTH_MAX`]): nesting is checked
/// first, without recursion, then the text is parsed on a stack that grows as needed.
pub fn decode_trusted<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let depth = json_depth(text.as_bytes());
    if depth > TRUSTED_JSON_DEPTH_MAX {
        return Err(format!("JSON nested {depth} levels deep; at most {TRUSTED_JSON_DEPTH_MAX} are read"));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = T::deserialize(serde_stacker::Deserializer::new(&mut de)).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// The deepest nesting of arrays and objects in JSON text (strings skipped), without parsing.
pub(crate) fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
