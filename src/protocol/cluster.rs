//! The messages between the nodes of a cluster (over the bus, never seen by clients):
//! [`Request`]s to the node holding a room (its clients on other nodes joining, sending,
//! leaving), and the room's [`StreamMessage`]s from it (the frames its remote clients get, in the
//! room's one order, numbered so a gap is seen). Each is a JSON header line, then the payload as
//! it is: a client's message, or a frame already encoded for clients.
//!
//! Must not: hold state, or change a client message or a frame on the way.

use super::{to_json, Frame, Resume};
use crate::model::{Identity, Value};
use bytes::{BufMut, Bytes, BytesMut};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The channel where the node holding `room` reads requests.
pub(crate) fn requests_channel(room: &str) -> String {
    format!("objectsync:room:{room}:in")
}

/// The channel where the node holding `room` publishes the room's stream.
pub(crate) fn stream_channel(room: &str) -> String {
    format!("objectsync:room:{room}:out")
}

/// A client's connection on another node: the node and its connection number there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct RemoteConn {
    pub(crate) node: CompactString,
    pub(crate) conn: u64,
}

/// Who a client is, as another node's auth hook said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdentityRecord {
    user: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<CompactString>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    claims: Value,
}

impl IdentityRecord {
    pub(crate) fn of(i: &Identity) -> IdentityRecord {
        IdentityRecord { user: i.user.clone(), name: i.name.clone(), roles: i.roles.clone(), claims: i.claims.clone() }
    }
    pub(crate) fn into_identity(self) -> Identity {
        Identity { user: self.user, name: self.name, roles: self.roles, claims: self.claims }
    }
}

/// A request to the node holding a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum Request {
    /// A client on `from`'s node joins (its hello and the auth hook's grant).
    Join {
        from: RemoteConn,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
        read_only: bool,
        batch: bool,
        compact_snapshots: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<IdentityRecord>,
        /// A session moved from another relay: it resumes without a welcome, and these messages
        /// of its (id, text), whose outcome it has not seen, are applied if still unprocessed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        takeover: Option<Vec<(u64, String)>>,
    },
    /// A message of the joined client (the payload: its text, checked by its node).
    Message { from: RemoteConn },
    /// The connection ended.
    Leave { from: RemoteConn },
    /// The sending node still has clients in the room (sent every heartbeat).
    Keepalive,
}

/// A request as sent: numbered by the relay that sends it (1, 2, ... in that relay's
/// incarnation), so that the holder sees a lost one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RequestHeader {
    pub(crate) node: CompactString,
    pub(crate) relay: u64,
    pub(crate) seq: u64,
    #[serde(flatten)]
    pub(crate) request: Request,
}

/// Whom a stream message is for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub(crate) enum Target {
    /// Every remote client of the room, but `except`.
    All {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<CompactString>,
    },
    /// One connection.
    Conn { node: CompactString, conn: u64 },
}

/// What a stream message is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum StreamKind {
    /// A frame for clients (the payload). `update`: a logged update at version `v`.
    Frame { update: bool },
    /// The join of the target connection was accepted: it is `client` (after its welcome).
    Joined { client: CompactString },
    /// The join of the target connection was refused.
    Refused { reason: String },
    /// The target connection is to be closed.
    Closed { code: u16, reason: String },
    /// The holder is alive (sent every heartbeat).
    Heartbeat,
    /// The holder lets go of its remote clients (it stops, or lost messages of theirs): each
    /// resumes, at any node.
    Reset { reason: String },
}

/// One message of a room's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StreamHeader {
    /// Tells the holder's stream apart from another's: the holder's lease epoch, higher for a
    /// later holder (another node, or this room loaded again).
    pub(crate) incarnation: u64,
    /// 1, 2, ... in this incarnation: a gap means lost messages.
    pub(crate) seq: u64,
    /// The version of the last logged update published so far (this one, for an update).
    pub(crate) v: u64,
    #[serde(flatten)]
    pub(crate) target: Target,
    #[serde(flatten)]
    pub(crate) kind: StreamKind,
}

/// A header line, then the payload.
fn with_payload<T: Serialize>(header: &T, payload: &[u8]) -> Bytes {
    let head = to_json(header);
    let mut b = BytesMut::with_capacity(head.len() + 1 + payload.len());
    b.put_slice(head.as_bytes());
    b.put_u8(b'\n');
    b.put_slice(payload);
    b.freeze()
}

/// Splits a message into its header and payload.
fn split(message: &Bytes) -> Result<(&str, Bytes), String> {
    let at = message.iter().position(|&b| b == b'\n').ok_or("no header line")?;
    let head = std::str::from_utf8(&message[..at]).map_err(|e| format!("header: {e}"))?;
    Ok((head, message.slice(at + 1..)))
}

/// A request and its payload (a client's message text, or nothing).
pub(crate) fn encode_request(request: &RequestHeader, payload: &str) -> Bytes {
    with_payload(request, payload.as_bytes())
}

/// A request and its payload's text.
pub(crate) fn decode_request(message: &Bytes) -> Result<(RequestHeader, String), String> {
    let (head, payload) = split(message)?;
    let request: RequestHeader = serde_json::from_str(head).map_err(|e| format!("request: {e}"))?;
    let text = String::from_utf8(payload.to_vec()).map_err(|e| format!("payload: {e}"))?;
    Ok((request, text))
}

/// A stream message and its payload (the frame, or nothing).
pub(crate) fn encode_stream(header: &StreamHeader, frame: Option<&Frame>) -> Bytes {
    with_payload(header, frame.map_or(&[][..], |f| f.as_str().as_bytes()))
}

/// A stream message and its frame (for [`StreamKind::Frame`]).
pub(crate) fn decode_stream(message: &Bytes) -> Result<(StreamHeader, Option<Frame>), String> {
    let (head, payload) = split(message)?;
    let header: StreamHeader = serde_json::from_str(head).map_err(|e| format!("stream header: {e}"))?;
    let frame = match header.kind {
        StreamKind::Frame { .. } => Some(Frame::from_utf8(payload).map_err(|e| format!("frame: {e}"))?),
        _ => None,
    };
    Ok((header, frame))
}

/// What a relay reads of the frames it passes on, to move a session elsewhere if it must: a
/// welcome's resume token and version, and whose action an update or a reject settles.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Peek {
    Welcome {
        resume_token: String,
        version: u64,
    },
    Update {
        v: u64,
        origin: CompactString,
        action: Option<u64>,
    },
    Reject {
        action: u64,
    },
    #[serde(other)]
    Other,
}

/// Reads `frame` as far as [`Peek`] needs; `None` for a `batch` or what does not parse.
pub(crate) fn peek(frame: &Frame) -> Option<Peek> {
    serde_json::from_str(frame.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_stream_messages_round_trip_with_their_payload() {
        let from = RemoteConn { node: "n2".into(), conn: 7 };
        let join = Request::Join {
            from: from.clone(),
            resume: Some(Resume { client: "c1".into(), resume_token: "t".into(), version: 3 }),
            read_only: false,
            batch: true,
            compact_snapshots: false,
            identity: Some(IdentityRecord::of(&Identity::user("ann").with_role("admin"))),
            takeover: Some(vec![(3, "{}".into())]),
        };
        let numbered = |seq: u64, request: Request| RequestHeader { node: "n2".into(), relay: 4, seq, request };
        let join = numbered(1, join);
        assert_eq!(decode_request(&encode_request(&join, "")), Ok((join, String::new())));
        let text = "{\"t\":\"action\",\"id\":1}\nwith a newline";
        let msg = numbered(2, Request::Message { from });
        assert_eq!(decode_request(&encode_request(&msg, text)), Ok((msg, text.to_owned())));
        let header = StreamHeader {
            incarnation: 9,
            seq: 2,
            v: 5,
            target: Target::All { except: Some("c1".into()) },
            kind: StreamKind::Frame { update: true },
        };
        let frame = Frame::from("{\"t\":\"update\",\"v\":5}".to_owned());
        let (h, f) = decode_stream(&encode_stream(&header, Some(&frame))).expect("decodes");
        assert_eq!((h, f.map(|f| f.as_str().to_owned())), (header, Some(frame.as_str().to_owned())));
        let closed = StreamHeader {
            incarnation: 9,
            seq: 3,
            v: 5,
            target: Target::Conn { node: "n2".into(), conn: 7 },
            kind: StreamKind::Closed { code: 4003, reason: "too slow".into() },
        };
        assert_eq!(decode_stream(&encode_stream(&closed, None)), Ok((closed, None)));
        assert!(decode_stream(&Bytes::from_static(b"no header")).is_err());
    }

    #[test]
    fn a_relay_peeks_at_welcomes_updates_and_rejects() {
        let update = Frame::from(super::super::encode_update(7, "c1", Some(3), &[], false));
        assert_eq!(peek(&update), Some(Peek::Update { v: 7, origin: "c1".into(), action: Some(3) }));
        let reject = Frame::from(super::super::encode_reject(4, "invalid", "no", None));
        assert_eq!(peek(&reject), Some(Peek::Reject { action: 4 }));
        assert_eq!(peek(&Frame::from("{\"t\":\"presence\",\"client\":\"c1\"}")), Some(Peek::Other));
    }
}
