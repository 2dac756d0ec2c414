//! The stream of a room this node holds, for its clients on other nodes ([`RoomStream`]): every
//! frame they get, in the room's one order, published once on the bus (a broadcast once for all
//! of them, a frame for one client to its connection), numbered so that a node that misses one
//! sees the gap, and tagged with the last logged version so that it can tell whether the gap was
//! only updates (which it reads back from the store). [`Outlet`] is where a connected client's
//! frames go: its session's queue, or this stream.
//!
//! Must not: wait (the actor publishes from its loop; the bus queues, bounded in bytes).

use super::{Frame, OutboundSender, QueueFull};
use crate::cluster::{Bus, BusError};
use crate::protocol::cluster::{encode_stream, stream_channel, RemoteConn, StreamHeader, StreamKind, Target};
use std::sync::{Arc, Mutex};

/// The stream of one loaded room on the bus.
pub(crate) struct RoomStream {
    bus: Arc<dyn Bus>,
    channel: String,
    incarnation: u64,
    /// (last sequence number, last logged version published), taken while the message is
    /// queued: numbers follow the bus's order.
    numbers: Mutex<(u64, u64)>,
}

impl RoomStream {
    /// The stream of room `room`, at version `version` (what was loaded), held at `epoch` (the
    /// store's: a later holder's stream is told apart from this one by its higher number).
    pub(crate) fn new(bus: Arc<dyn Bus>, room: &str, version: u64, epoch: Option<u64>) -> Arc<RoomStream> {
        let incarnation = epoch.unwrap_or_else(|| rand::random::<u64>() >> 11); // JSON-safe
        Arc::new(RoomStream { bus, channel: stream_channel(room), incarnation, numbers: Mutex::new((0, version)) })
    }

    /// Publishes one message: numbered even when the bus refuses it, so the loss is seen.
    pub(crate) fn send(
        &self,
        target: Target,
        kind: StreamKind,
        frame: Option<&Frame>,
        update: Option<u64>,
    ) -> Result<(), BusError> {
        self.queue(target, kind, frame, update, |bus, channel, message| bus.publish(channel, message))
    }

    /// Publishes a message without a frame and waits until it is published.
    pub(crate) async fn send_now(&self, target: Target, kind: StreamKind) -> Result<u64, BusError> {
        self.queue(target, kind, None, None, |bus, channel, message| bus.publish_counted(channel, message)).await
    }

    /// Numbers a message and hands it to the bus with `publish` under the same lock, so the
    /// bus's order is the numbers' order.
    fn queue<R>(
        &self,
        target: Target,
        kind: StreamKind,
        frame: Option<&Frame>,
        update: Option<u64>,
        publish: impl FnOnce(&dyn Bus, &str, bytes::Bytes) -> R,
    ) -> R {
        let mut numbers = self.numbers.lock().unwrap_or_else(|e| e.into_inner());
        numbers.0 += 1;
        if let Some(v) = update {
            debug_assert!(v > numbers.1, "invariant: logged updates are published in version order");
            numbers.1 = v;
        }
        let header = StreamHeader { incarnation: self.incarnation, seq: numbers.0, v: numbers.1, target, kind };
        publish(&*self.bus, &self.channel, encode_stream(&header, frame))
    }

    /// A frame for every remote client but `except`; `update`: the version of a logged update.
    pub(crate) fn broadcast(
        &self,
        frame: &Frame,
        except: Option<&super::ClientId>,
        update: Option<u64>,
    ) -> Result<(), BusError> {
        let target = Target::All { except: except.cloned() };
        self.send(target, StreamKind::Frame { update: update.is_some() }, Some(frame), update)
    }

    /// A message for one remote connection.
    pub(crate) fn to_conn(&self, conn: &RemoteConn, kind: StreamKind, frame: Option<&Frame>) -> Result<(), BusError> {
        let target = Target::Conn { node: conn.node.clone(), conn: conn.conn };
        self.send(target, kind, frame, None)
    }
}

/// Where a connected client's frames go.
#[derive(Clone)]
pub(crate) enum Outlet {
    /// Its session's queue on this node.
    Local(OutboundSender),
    /// Its connection on another node, through the room's stream.
    Remote { stream: Arc<RoomStream>, conn: RemoteConn },
}

impl Outlet {
    /// Queues a frame for this client only; a stream the bus refuses counts as the server's
    /// bound being reached.
    pub(crate) fn try_queue(&self, frame: Frame) -> Result<(), QueueFull> {
        match self {
            Outlet::Local(out) => out.try_queue(frame),
            Outlet::Remote { stream, conn } => {
                stream.to_conn(conn, StreamKind::Frame { update: false }, Some(&frame)).map_err(|_| QueueFull::Server)
            }
        }
    }

    /// Whether the client is on another node (broadcasts reach it through the stream, once for
    /// all of them).
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, Outlet::Remote { .. })
    }
}
