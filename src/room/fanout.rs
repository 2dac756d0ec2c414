//! What is sent to whom: the outbox (gathered while the actor works, then sent as one `batch` frame
//! to clients that take them), broadcasts, messages to one client, and one function that queues
//! frames to clients and cuts off (close 4003) those whose queue refuses one. Clients on other
//! nodes get a broadcast through the room's stream, published once for all of them.
//!
//! Must not: wait for a session: a full queue cuts the session off, it never slows the room.

use super::actor::{Connected, RoomState};
use super::{ClientId, Frame, QueueFull};
use crate::limits::ServerLimits;
use crate::protocol::{self, close};

/// Messages in one `batch` frame at most.
const BATCH_MESSAGES_MAX: usize = 256;

impl RoomState {
    /// Sends what the outbox gathered: one frame each to clients that take no batches, one
    /// `batch` frame (encoded once, shared) to those that do.
    pub(super) fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.outbox);
        let frames: Vec<Frame> = outbox.iter().map(|(f, _)| f.clone()).collect();
        if frames.len() == 1 || !self.clients.values().any(|c| c.batch && !c.link.out.is_remote()) {
            self.queue_or_cut_off(To::All { except: None }, |_| &frames, &outbox);
            return;
        }
        let batches: Vec<Frame> = frames
            .chunks(BATCH_MESSAGES_MAX)
            .map(|chunk| protocol::encode_batch(chunk.iter().map(|f| f.as_str())).into())
            .collect();
        self.queue_or_cut_off(To::All { except: None }, |c| if c.batch { &batches } else { &frames }, &outbox);
    }

    /// Queues `frame` to every client (but `except`); cuts off clients whose queue is full.
    pub(super) fn broadcast(&mut self, frame: &Frame, except: Option<&ClientId>) {
        let remote = [(frame.clone(), None)];
        self.queue_or_cut_off(To::All { except }, |_| std::slice::from_ref(frame), &remote);
    }

    /// Sends `frame` to one client; cuts it off if its queue is full.
    pub(super) fn send_to(&mut self, client: &ClientId, frame: Frame) {
        // What was gathered for everyone comes first.
        self.flush_outbox();
        self.queue_or_cut_off(To::One(client), |_| std::slice::from_ref(&frame), &[]);
    }

    /// The one way frames reach sessions: queues to each client of `to` its frames, in order,
    /// counting the bytes queued. A client whose queue refuses one gets no more of them and, once
    /// every client had its turn, is cut off (close 4003): it can resume. For everyone (`To::All`),
    /// the clients on other nodes get `remote` (each frame with its logged version) through the
    /// stream, once; if the bus refuses it, they are all cut off.
    fn queue_or_cut_off<'f>(
        &mut self,
        to: To<'_>,
        frames_of: impl Fn(&Connected) -> &'f [Frame],
        remote: &[(Frame, Option<u64>)],
    ) {
        let mut slow: Vec<(ClientId, QueueFull)> = Vec::new();
        let mut remote_clients = false;
        let mut queue = |id: &ClientId, c: &Connected| {
            for f in frames_of(c) {
                if let Err(full) = c.link.out.try_queue(f.clone()) {
                    slow.push((id.clone(), full));
                    return;
                }
                self.metrics.bytes_out.inc_by(f.len() as u64);
            }
        };
        match to {
            To::One(id) => {
                if let Some(c) = self.clients.get(id) {
                    queue(id, c);
                }
            }
            To::All { except } => {
                for (id, c) in self.clients.iter().filter(|(id, _)| except != Some(*id)) {
                    if c.link.out.is_remote() {
                        remote_clients = true;
                    } else {
                        queue(id, c);
                    }
                }
                if remote_clients {
                    self.broadcast_remote(remote, except, &mut slow);
                }
            }
        }
        for (id, full) in slow {
            let reason = too_slow(full, &self.limits);
            if self.drop_client(&id, Some((close::TOO_SLOW, reason))) {
                self.metrics.slow_disconnects.inc();
            }
        }
    }
}

impl RoomState {
    /// Publishes frames for every remote client (but `except`) on the stream; if the bus refuses
    /// one, every remote client is put in `slow` (their nodes see the gap and resume them).
    fn broadcast_remote(
        &self,
        frames: &[(Frame, Option<u64>)],
        except: Option<&ClientId>,
        slow: &mut Vec<(ClientId, QueueFull)>,
    ) {
        let Some(stream) = &self.stream else { return };
        for (frame, version) in frames {
            if stream.broadcast(frame, except, *version).is_err() {
                let remote = self.clients.iter().filter(|(_, c)| c.link.out.is_remote());
                slow.extend(remote.map(|(id, _)| (id.clone(), QueueFull::Server)));
                return;
            }
            self.metrics.bytes_out.inc_by(frame.len() as u64);
        }
    }
}

/// Whom [`RoomState::queue_or_cut_off`] queues to.
enum To<'a> {
    /// Every client but `except`.
    All { except: Option<&'a ClientId> },
    /// One client (if it is still connected).
    One(&'a ClientId),
}

/// The close reason of a client whose queue refused a frame.
pub(crate) fn too_slow(full: QueueFull, limits: &ServerLimits) -> String {
    match full {
        QueueFull::Session => format!(
            "too slow: more than {} messages or {} bytes waiting",
            limits.outbound_queue_len_max, limits.outbound_queue_bytes_max
        ),
        QueueFull::Server => {
            format!("too slow: the server's {} bytes for waiting messages are taken", limits.outbound_bytes_max)
        }
        QueueFull::Closed => "the connection is closing".to_owned(),
    }
}
