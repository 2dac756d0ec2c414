//! A joined session's reading side: every message the client sends is measured, rate-limited,
//! decoded and forwarded to the room (or to a service); bad ones are answered with `error`, and
//! too many of them, idleness, an expired grant or the server's shutdown end the session.

use super::Incoming;
use crate::limits::ServerLimits;
use crate::model::Identity;
use crate::protocol::{self, close, ClientMessage};
use crate::room::{too_slow, ClientId, Command, RoomHandle, ServiceRequest, SessionLink};
use crate::server::admission::RateLimit;
use crate::server::{Inner, ServiceCall};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument;

/// A joined connection: its room, client, link and identity, the server it belongs to, and what
/// it has spent of its limits.
pub(super) struct Session {
    inner: Arc<Inner>,
    room: RoomHandle,
    client: ClientId,
    link: SessionLink,
    identity: Option<Arc<Identity>>,
    rates: Rates,
    /// Bad messages so far, against `errors_max`.
    errors: u32,
}

/// Whether the session reads on after a message.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    End,
}

impl Flow {
    fn from_ok(ok: bool) -> Flow {
        if ok {
            Flow::Continue
        } else {
            Flow::End
        }
    }
}

impl Session {
    pub(super) fn new(
        inner: Arc<Inner>,
        room: RoomHandle,
        client: ClientId,
        link: SessionLink,
        identity: Option<Arc<Identity>>,
    ) -> Session {
        let limits = &inner.limits;
        let rates = Rates {
            connection: RateLimit::new(limits.messages_per_second_max, limits.message_burst_max),
            user: identity.as_ref().map(|i| {
                inner.admission.user_rate(&i.user, limits.user_messages_per_second_max, limits.user_message_burst_max)
            }),
        };
        Session { inner, room, client, link, identity, rates, errors: 0 }
    }

    /// Reads until the client leaves or the session must end: the closer fired (cut off,
    /// replaced), the server shuts down (1001), the grant expires at `expires_at` (4006), or
    /// nothing came for `idle_timeout_ms` (4005).
    pub(super) async fn read<I: Incoming>(&mut self, stream: &mut I, expires_at: Option<SystemTime>) {
        // The grant's end, on the runtime's clock (a grant already over was refused at join).
        let expiry = expires_at.map(|t| {
            let left = t.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + left
        });
        let expired = async move {
            match expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let idle = Duration::from_millis(self.inner.limits.idle_timeout_ms);
        let mut last_seen = Instant::now();
        let mut idle_check = tokio::time::interval(idle / 4);
        // Made once: a cancellation future made per message registers and unregisters a waiter
        // each time (measurable with thousands of sessions).
        let token = self.link.closer.token().clone();
        let closed = token.cancelled();
        let shutdown_token = self.inner.shutdown.clone();
        let shutdown = shutdown_token.cancelled();
        tokio::pin!(closed, shutdown, expired);
        loop {
            let msg = tokio::select! {
                biased;
                _ = &mut closed => return,
                _ = &mut shutdown => {
                    self.link.closer.close(close::GOING_AWAY, "the server is shutting down");
                    return;
                }
                _ = &mut expired => {
                    self.link.closer.close(close::TOKEN_EXPIRED, "the token expired: get a new one and resume");
                    return;
                }
                _ = idle_check.tick() => {
                    if last_seen.elapsed() > idle {
                        let reason = format!("no traffic for {} ms", self.inner.limits.idle_timeout_ms);
                        self.link.closer.close(close::IDLE, reason);
                        return;
                    }
                    continue;
                }
                msg = stream.next() => msg,
            };
            last_seen = Instant::now();
            if self.receive(msg).await == Flow::End {
                return;
            }
        }
    }

    /// Handles what the stream gave: a message, its end, or a read error.
    async fn receive(&mut self, msg: Option<Result<Message, WsError>>) -> Flow {
        let limits = Arc::clone(&self.inner.limits);
        let text = match msg {
            None => return Flow::End,
            Some(Ok(Message::Close(frame))) => {
                // Answer with the client's own code: a clean close on both sides.
                let code = frame.map_or(close::NORMAL, |f| u16::from(f.code));
                self.link.closer.close(code, "bye");
                return Flow::End;
            }
            Some(Ok(Message::Text(t))) => t,
            // Pings cost an answer each (tungstenite queues the pong): they count against the
            // same rate as messages, so a ping flood is cut off like a message flood.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                return match self.rates.allow(&limits) {
                    Ok(()) => Flow::Continue,
                    Err(reason) => Flow::from_ok(self.complain("rate_limited", &reason)),
                };
            }
            // Frames come only when writing raw ones; reads yield whole messages.
            Some(Ok(Message::Frame(_))) => return Flow::Continue,
            Some(Ok(Message::Binary(_))) => {
                return Flow::from_ok(self.complain("bad_message", "binary frames are not part of the protocol"));
            }
            Some(Err(e)) => {
                match read_error_close(&e, &limits) {
                    Some((code, reason)) => {
                        self.link.closer.close(code, reason);
                    }
                    None => tracing::debug!(error = %e, "read error"),
                }
                return Flow::End;
            }
        };
        self.inner.metrics.bytes_in.inc_by(text.len() as u64);
        if let Err(reason) = self.rates.allow(&limits) {
            return Flow::from_ok(self.complain("rate_limited", &reason));
        }
        match protocol::decode_client(&text) {
            Ok(msg) => Flow::from_ok(self.dispatch(msg, text.as_str()).await),
            Err(e) => Flow::from_ok(self.complain(e.code(), &e.to_string())),
        }
    }

    /// Forwards one decoded message (`text`, as it came); `false` when the session must end.
    async fn dispatch(&mut self, msg: ClientMessage, text: &str) -> bool {
        let client = self.client.clone();
        let bytes = text.len();
        let cmd = match msg {
            ClientMessage::Hello { .. } => {
                return self.queue(protocol::encode_error("bad_message", "hello was already received"));
            }
            ClientMessage::Action { id, .. } | ClientMessage::Undo { id, .. } | ClientMessage::Redo { id, .. }
                if id > protocol::ID_MAX =>
            {
                let reason = format!("action id {id} is above {} (2^53 - 1)", protocol::ID_MAX);
                return self.queue(protocol::encode_reject(id, "bad_id", &reason, None));
            }
            ClientMessage::Call { id, .. } if id > protocol::ID_MAX => {
                let reason = format!("call id {id} is above {} (2^53 - 1)", protocol::ID_MAX);
                return self.queue(protocol::encode_result(id, Err(("bad_id", &reason))));
            }
            // A call runs beside the room: here if the room came to this node meanwhile (its
            // relay moved this session to it), else on the node holding it.
            ClientMessage::Call { id, service, args } if self.room.is_relay() && self.room_here().is_some() => {
                let room = self.room_here().expect("invariant: checked just above");
                self.call_in(room, id, service, args);
                return true;
            }
            // A room held by another node gets the message as it came (checked above).
            ClientMessage::Action { .. }
            | ClientMessage::Undo { .. }
            | ClientMessage::Redo { .. }
            | ClientMessage::Presence { .. }
            | ClientMessage::Call { .. }
                if self.room.is_relay() && self.presence_fits(&msg) =>
            {
                let action = match msg {
                    ClientMessage::Action { id, .. }
                    | ClientMessage::Undo { id, .. }
                    | ClientMessage::Redo { id, .. } => Some(id),
                    _ => None,
                };
                let Ok(permit) = self.room.inbox_permit(bytes).await else { return false };
                Command::Forward { client, text: text.to_owned(), action, permit }
            }
            ClientMessage::Action { id, base, changes, step } => {
                let Ok(permit) = self.room.inbox_permit(bytes).await else { return false };
                Command::Action { client, id, base, changes, step, permit }
            }
            ClientMessage::Undo { id, scope } => Command::Undo { client, id, scope, redo: false },
            ClientMessage::Redo { id, scope } => Command::Undo { client, id, scope, redo: true },
            ClientMessage::Presence { state } => {
                let size = serde_json::to_string(&state).map_or(usize::MAX, |s| s.len());
                let max = self.inner.limits.presence_bytes_max;
                if size > max {
                    let reason = format!("presence state of {size} bytes; the limit is {max}");
                    return self.queue(protocol::encode_error("too_large", &reason));
                }
                let Ok(permit) = self.room.inbox_permit(bytes).await else { return false };
                Command::Presence { client, state, permit }
            }
            ClientMessage::Call { id, service, args } => {
                self.call(id, service, args);
                return true;
            }
        };
        self.room.send(cmd).await.is_ok()
    }

    /// Whether a message is not a presence over `presence_bytes_max` (those are refused here,
    /// below, whichever node holds the room).
    fn presence_fits(&self, msg: &ClientMessage) -> bool {
        match msg {
            ClientMessage::Presence { state } => {
                serde_json::to_string(state).map_or(usize::MAX, |s| s.len()) <= self.inner.limits.presence_bytes_max
            }
            _ => true,
        }
    }

    /// The room's actor, if it runs on this node now (for a session that joined it through a
    /// relay and was moved to it).
    fn room_here(&self) -> Option<RoomHandle> {
        self.inner.rooms.loaded(self.room.name()).filter(|h| !h.is_relay())
    }

    /// Runs a service in its own task, with the timeout, and queues its `result`.
    fn call(&self, id: u64, service: String, args: crate::model::Value) {
        self.call_in(self.room.clone(), id, service, args);
    }

    /// The same, the service reaching the room through `room`.
    fn call_in(&self, room: RoomHandle, id: u64, service: String, args: crate::model::Value) {
        let request = ServiceRequest {
            room,
            client: self.client.clone(),
            identity: self.identity.clone(),
            link: self.link.clone(),
            id,
            service,
            args,
        };
        run_service(&self.inner, request);
    }

    /// Queues a message for this session; a full queue cuts it off. `false` if cut off.
    fn queue(&self, text: String) -> bool {
        queue(&self.link, &self.inner, text)
    }

    /// Answers a bad message with `error`; `false` once the connection has had too many.
    fn complain(&mut self, code: &str, reason: &str) -> bool {
        self.inner.metrics.bad_messages.inc();
        self.errors += 1;
        let max = self.inner.limits.errors_max;
        if self.errors > max {
            self.link.closer.close(close::TOO_MANY_ERRORS, format!("more than {max} bad messages"));
            return false;
        }
        self.queue(protocol::encode_error(code, reason))
    }
}

/// Runs a service call (of a client here, or on another node for a room held here) in its own
/// task, with the timeout, and queues its `result` to the client's link.
pub(crate) fn run_service(inner: &Arc<Inner>, request: ServiceRequest) {
    let ServiceRequest { room, client, identity, link, id, service, args } = request;
    let Some(f) = inner.services.get(&service).cloned() else {
        let reason = format!("no service named {service:?}");
        queue(&link, inner, protocol::encode_result(id, Err(("no_such_service", &reason))));
        return;
    };
    let caller = ServiceCall { room, client, identity, args };
    let timeout = Duration::from_millis(inner.limits.service_timeout_ms);
    let task_inner = inner.clone();
    inner.tasks.spawn(
        async move {
            let frame = match tokio::time::timeout(timeout, f(caller)).await {
                Ok(Ok(v)) => protocol::encode_result(id, Ok(&v)),
                Ok(Err(reason)) => protocol::encode_result(id, Err(("service_failed", &reason))),
                Err(_) => {
                    let reason = format!("service {service} did not answer within {} ms", timeout.as_millis());
                    protocol::encode_result(id, Err(("timeout", &reason)))
                }
            };
            queue(&link, &task_inner, frame);
        }
        .in_current_span(),
    );
}

/// Queues `text` on `link`; a full queue cuts the session off (4003). `false` if cut off.
fn queue(link: &SessionLink, inner: &Inner, text: String) -> bool {
    if let Err(full) = link.out.try_queue(text.into()) {
        if link.closer.close(close::TOO_SLOW, too_slow(full, &inner.limits)) {
            inner.metrics.slow_disconnects.inc();
        }
        return false;
    }
    true
}

/// A connection's message rates: its own, and its user's across all the user's connections.
struct Rates {
    connection: RateLimit,
    user: Option<Arc<std::sync::Mutex<RateLimit>>>,
}

impl Rates {
    /// Takes a token of both buckets, or says which limit was passed.
    fn allow(&mut self, limits: &ServerLimits) -> Result<(), String> {
        if !self.connection.allow() {
            return Err(format!("more than {} messages per second", limits.messages_per_second_max));
        }
        match &self.user {
            Some(bucket) if !bucket.lock().unwrap_or_else(|e| e.into_inner()).allow() => {
                Err(format!("more than {} messages per second for this user", limits.user_messages_per_second_max))
            }
            _ => Ok(()),
        }
    }
}

/// The close code and reason RFC 6455 gives a read error that is the client's fault: 1009 for a
/// message over `frame_bytes_max`, 1007 for a text message that is not UTF-8, 1002 for a
/// violation of the framing (an unmasked frame, a reserved bit or opcode...). `None` for a
/// connection that simply failed (nobody to tell).
pub(super) fn read_error_close(e: &WsError, limits: &ServerLimits) -> Option<(u16, String)> {
    match e {
        WsError::Capacity(_) => Some((close::TOO_BIG, format!("message larger than {} bytes", limits.frame_bytes_max))),
        WsError::Utf8(_) => Some((close::INVALID_DATA, "a text message that is not valid UTF-8".to_owned())),
        WsError::Protocol(p) => Some((close::PROTOCOL_ERROR, format!("WebSocket protocol error: {p}"))),
        _ => None,
    }
}
