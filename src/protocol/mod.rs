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
mod frame;
mod snapshot;

pub(crate) use frame::Frame;
pub use snapshot::{compact_snapshot_view, snapshot_view, SnapshotView};

use crate::model::{AppliedChange, Change, ObjId, Value};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
}

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
        /// Must be [`PROTOCOL_VERSION`].
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

/// The longest `step` an action may name, in bytes.
pub const STEP_BYTES_MAX: usize = 64;

/// Serializes a message the server or client writes. Nothing in these messages can fail to
/// serialize (string keys only, no `Serialize` impl that returns an error, non-finite floats
/// become `null`): a failure is a bug, not a frame to send empty.
fn to_json<T: Serialize + ?Sized>(message: &T) -> String {
    serde_json::to_string(message).expect("invariant: protocol messages always serialize")
}

/// Encodes a client message (for the Rust client and tests).
pub fn encode_client(msg: &ClientMessage) -> String {
    to_json(msg)
}

/// `welcome`, borrowing the document for its snapshot.
#[derive(Serialize)]
pub(crate) struct Welcome<'a> {
    /// Always "welcome".
    pub t: &'static str,
    /// [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The client id.
    pub client: &'a str,
    /// To resume later.
    pub resume_token: &'a str,
    /// The room's version now.
    pub version: u64,
    /// Highest action id of this client processed.
    pub acked: u64,
    /// Present when the client must reload the tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotView<'a>>,
    /// Other clients' presence, by client id in sorted order (like every JSON object the server
    /// writes).
    pub presence: std::collections::BTreeMap<&'a str, &'a Value>,
    /// Whether the client may change nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Undo steps the room holds for this client (0 after the room unloaded or the server
    /// restarted: undo histories live in memory while the room is loaded).
    #[serde(skip_serializing_if = "is_zero")]
    pub undo_steps: usize,
    /// Redo steps the room holds for this client.
    #[serde(skip_serializing_if = "is_zero")]
    pub redo_steps: usize,
    /// Who this client is, as the auth hook said (absent for an anonymous client).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<UserView<'a>>,
    /// Who the clients in `presence` are, for those with an identity.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub users: std::collections::BTreeMap<&'a str, UserView<'a>>,
}

/// What clients are told of an identity: the user id, name and roles (never the claims).
#[derive(Serialize, Clone, Copy, Debug)]
pub(crate) struct UserView<'a> {
    /// The user id.
    pub id: &'a str,
    /// The display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The roles.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub roles: &'a [CompactString],
}

impl<'a> UserView<'a> {
    /// The view of `identity`.
    pub fn of(identity: &'a crate::model::Identity) -> Self {
        UserView { id: &identity.user, name: identity.name.as_deref(), roles: &identity.roles }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Encodes a `welcome`.
pub(crate) fn encode_welcome(w: &Welcome<'_>) -> String {
    to_json(w)
}

#[derive(Serialize)]
struct UpdateOut<'a> {
    t: &'static str,
    v: u64,
    origin: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<u64>,
    changes: &'a [AppliedChange],
}

/// Encodes an `update` (state changes, new version `v`) or, with `events_only`, an `events`
/// message (`v` is the unchanged current version).
pub fn encode_update(
    v: u64,
    origin: &str,
    action: Option<u64>,
    changes: &[AppliedChange],
    events_only: bool,
) -> String {
    let t = if events_only { "events" } else { "update" };
    to_json(&UpdateOut { t, v, origin, action, changes })
}

/// Encodes a transition's changes: the `changes` array of its `update`, and what the store
/// keeps of it ([`crate::store::LogEntry::changes`]).
pub fn encode_changes(changes: &[AppliedChange]) -> String {
    to_json(changes)
}

/// An `update` (or, with `events_only`, an `events` message) around changes already encoded by
/// [`encode_changes`]: byte for byte what [`encode_update`] writes for them, without encoding
/// them again (a logged update is encoded once for the store and the sessions both).
pub(crate) fn encode_update_of(v: u64, origin: &str, action: Option<u64>, changes: &str, events_only: bool) -> String {
    use std::fmt::Write as _;
    let t = if events_only { "events" } else { "update" };
    let origin = to_json(origin);
    let mut out = String::with_capacity(changes.len() + origin.len() + 64);
    // Writing to a String cannot fail.
    let _ = write!(out, r#"{{"t":"{t}","v":{v},"origin":{origin}"#);
    if let Some(action) = action {
        let _ = write!(out, r#","action":{action}"#);
    }
    out.push_str(r#","changes":"#);
    out.push_str(changes);
    out.push('}');
    out
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

#[derive(Serialize)]
struct RejectOut<'a> {
    t: &'static str,
    action: u64,
    code: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<usize>,
}

/// Encodes a `reject`.
pub(crate) fn encode_reject(action: u64, code: &str, reason: &str, change: Option<usize>) -> String {
    to_json(&RejectOut { t: "reject", action, code, reason, change })
}

#[derive(Serialize)]
struct PresenceOut<'a> {
    t: &'static str,
    client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserView<'a>>,
    state: &'a Value,
}

/// Encodes a `presence` (a `Null` state means gone), with who the client is when it has an
/// identity: the server's word, which a client's own state cannot change.
pub(crate) fn encode_presence(client: &str, user: Option<&crate::model::Identity>, state: &Value) -> String {
    let user = user.map(UserView::of);
    to_json(&PresenceOut { t: "presence", client, user, state })
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct ResultOut<'a> {
    t: &'static str,
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
}

/// Encodes a `result`: `Ok(value)` or `Err((code, reason))`.
pub(crate) fn encode_result(id: u64, outcome: Result<&Value, (&str, &str)>) -> String {
    let (ok, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err((code, reason)) => (None, Some(ErrorBody { code, reason })),
    };
    to_json(&ResultOut { t: "result", id, ok, error })
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    t: &'static str,
    code: &'a str,
    reason: &'a str,
}

/// Encodes a `batch` of already encoded messages, in order (their text is copied once, and the
/// result is shared by every client that takes batches).
pub(crate) fn encode_batch<'a>(messages: impl Iterator<Item = &'a str> + Clone) -> String {
    let len: usize = messages.clone().map(|m| m.len() + 1).sum();
    let mut out = String::with_capacity(len + 20);
    out.push_str(r#"{"t":"batch","m":["#);
    for (i, m) in messages.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m);
    }
    out.push_str("]}");
    out
}

/// Encodes an `error`.
pub(crate) fn encode_error(code: &str, reason: &str) -> String {
    to_json(&ErrorOut { t: "error", code, reason })
}

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

/// The registered types as clients read them (`GET /types`, `objectsync codegen json`): every
/// type's name and its attributes with their kind and default value, in registration order.
pub(crate) fn encode_types(types: &crate::model::TypeRegistry) -> String {
    #[derive(Serialize)]
    struct Attr<'a> {
        name: &'a str,
        kind: &'a str,
        default: &'a Value,
    }
    #[derive(Serialize)]
    struct Type<'a> {
        name: &'a str,
        attrs: Vec<Attr<'a>>,
    }
    #[derive(Serialize)]
    struct Types<'a> {
        protocol: u32,
        types: Vec<Type<'a>>,
    }
    let described = types.describe_with_defaults();
    let types = described
        .iter()
        .map(|(name, attrs)| Type {
            name,
            attrs: attrs.iter().map(|a| Attr { name: a.name, kind: a.kind.name(), default: a.default }).collect(),
        })
        .collect();
    to_json(&Types { protocol: PROTOCOL_VERSION, types })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn some_changes() -> Vec<AppliedChange> {
        vec![
            AppliedChange::Set {
                obj: "n".into(),
                attr: "title".into(),
                old: Value::Null,
                new: "a \"quoted\" é".into(),
            },
            AppliedChange::Set { obj: "m".into(), attr: "count".into(), old: Value::Int(1), new: Value::Int(2) },
        ]
    }

    #[test]
    fn an_update_around_encoded_changes_is_the_update_encoded_at_once() {
        let changes = some_changes();
        let text = encode_changes(&changes);
        for (origin, action, events_only) in [("server", None, false), ("c1", Some(7), false), ("c1", Some(8), true)] {
            assert_eq!(
                encode_update_of(3, origin, action, &text, events_only),
                encode_update(3, origin, action, &changes, events_only)
            );
        }
        assert_eq!(decode_changes(&text).map(|c| c.len()), Ok(2));
    }

    #[test]
    fn an_update_splits_into_the_parts_the_store_keeps_and_back() {
        let changes = some_changes();
        let frame = encode_update(9, "c1", Some(4), &changes, false);
        let parts = split_update(&frame).expect("splits");
        assert_eq!(
            parts,
            UpdateParts { v: 9, origin: Some("c1".into()), action: Some(4), changes: encode_changes(&changes) }
        );
        let server = split_update(&encode_update(2, "server", None, &[], false)).expect("splits");
        assert_eq!((server.origin, server.action, server.changes.as_str()), (None, None, "[]"));
        assert!(split_update(&encode_update(2, "c1", None, &changes, true)).is_err(), "events are not logged");
        let reordered = r#"{"t":"update","changes":[],"v":2,"origin":"server"}"#;
        assert!(split_update(reordered).is_err());
        assert!(split_update(r#"{"t":"update","v":2"#).is_err());
    }

    #[test]
    fn unknown_type_and_bad_message_are_told_apart() {
        assert_eq!(decode_client(r#"{"t":"frobnicate"}"#).map_err(|e| e.code()), Err("unknown_message"));
        assert_eq!(decode_client(r#"{"t":"action","id":1}"#).map_err(|e| e.code()), Err("bad_message"));
        assert_eq!(decode_client("not json").map_err(|e| e.code()), Err("bad_message"));
        assert_eq!(
            decode_client(r#"{"t":"action","id":"x","base":0,"changes":[]}"#).map_err(|e| e.code()),
            Err("bad_message")
        );
    }

    #[test]
    fn json_depth_counts_nesting_outside_strings() {
        assert_eq!(json_depth(br#"1"#), 0);
        assert_eq!(json_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(json_depth(br#"["[[[{", "\"[[", []]"#), 2);
        let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
        assert!(serde_json::from_str::<Value>(&deep).is_err(), "serde_json alone stops at 128");
        assert_eq!(decode_trusted::<Value>(&deep).map(|v| v.depth()), Ok(600));
        let too_deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
        let e = decode_trusted::<Value>(&too_deep).map(|_| ()).unwrap_err();
        assert!(e.contains("2000 levels"), "{e}");
        assert!(decode_trusted::<Value>("[1] trailing").is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = decode_client(r#"{"t":"hello","protocol":1,"future":true}"#);
        assert_eq!(
            m,
            Ok(ClientMessage::Hello { protocol: 1, token: None, resume: None, batch: false, compact_snapshots: false })
        );
        let m = decode_client(r#"{"t":"action","id":1,"base":0,"changes":[{"op":"delete","id":"x","later":1}]}"#);
        assert!(m.is_ok(), "{m:?}");
    }

    #[test]
    fn client_messages_round_trip() {
        let msgs = [
            r#"{"t":"hello","protocol":1,"token":"k","resume":{"client":"c1","resume_token":"r","version":4}}"#,
            r#"{"t":"action","id":3,"base":2,"changes":[{"op":"text_insert","obj":"n","attr":"title","pos":1,"text":"😀"}]}"#,
            r#"{"t":"undo","id":4,"scope":"n"}"#,
            r#"{"t":"presence","state":{"x":1}}"#,
            r#"{"t":"call","id":9,"service":"s","args":[1]}"#,
        ];
        for text in msgs {
            let m = decode_client(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(decode_client(&encode_client(&m)), Ok(m));
        }
    }

    #[test]
    fn a_batch_holds_messages_in_order() {
        let a = encode_presence("c1", None, &Value::Null);
        let b = encode_error("bad_message", "x");
        let batch = encode_batch([a.as_str(), b.as_str()].into_iter());
        match decode_server(&batch) {
            Ok(ServerMessage::Batch { m }) => {
                assert!(matches!(m.as_slice(), [ServerMessage::Presence { .. }, ServerMessage::Error { .. }]), "{m:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_messages_decode() {
        let update = encode_update(
            5,
            "c1",
            Some(2),
            &[AppliedChange::Set { obj: "n".into(), attr: "title".into(), old: Value::Null, new: "x".into() }],
            false,
        );
        assert_eq!(
            update,
            r#"{"t":"update","v":5,"origin":"c1","action":2,"changes":[{"op":"set","obj":"n","attr":"title","value":"x"}]}"#
        );
        assert!(matches!(decode_server(&update), Ok(ServerMessage::Update { v: 5, .. })));
        let result = encode_result(3, Err(("timeout", "too slow")));
        assert!(matches!(decode_server(&result), Ok(ServerMessage::Result { id: 3, error: Some(_), .. })));
    }
}
