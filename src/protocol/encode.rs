//! The server's messages, each encoded once (a transition's steps and the document borrowed,
//! not copied), so one update's bytes are shared by every session of a room.

use super::{to_json, SnapshotView, PROTOCOL_VERSION};
use crate::model::{AppliedChange, Value};
use compact_str::CompactString;
use serde::Serialize;

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
        schema_version: u32,
        fingerprint: &'a str,
        types: Vec<Type<'a>>,
    }
    let described = types.describe_with_defaults();
    let (schema_version, fingerprint) = (types.schema_version(), types.fingerprint());
    let types = described
        .iter()
        .map(|(name, attrs)| Type {
            name,
            attrs: attrs.iter().map(|a| Attr { name: a.name, kind: a.kind.name(), default: a.default }).collect(),
        })
        .collect();
    to_json(&Types { protocol: PROTOCOL_VERSION, schema_version, fingerprint, types })
}
