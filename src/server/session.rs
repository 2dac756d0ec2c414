//! One task per connection: handshake, auth, reading with limits, and a writer fed by a bounded
//! queue. Sessions only move bytes: they decode and forward to the room, and write what the room
//! (or a service) queues. They never touch a `Document`.

use super::admission::RateLimit;
use super::websocket::{text_fragments, Socket};
use super::{AuthRequest, Grant, Inner, ServiceCall};
use crate::limits::ServerLimits;
use crate::model::Identity;
use crate::protocol::{self, close, ClientMessage};
use crate::room::{
    next_connection_id, outbound_channel, too_slow, ClientId, Closer, Command, Frame, JoinError, JoinRequest,
    OutboundReceiver, RoomHandle, SessionLink,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument;

/// Frames written per flush: batches a burst into one syscall without starving pings.
const WRITE_BATCH_MAX: usize = 64;
/// Messages longer than this are written as several WebSocket fragments.
const FRAGMENT_BYTES: usize = 16 * 1024;
/// A frame this large (a big room's welcome) leaves memory worth returning to the system when
/// its session ends.
const LARGE_FRAME_BYTES: usize = 256 * 1024;
/// Session ends return memory to the system at most this often.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// After its close frame, the session reads what the client still sends for at most this long,
/// waiting for the client's own close.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// The same while the server shuts down.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

pub(crate) async fn run(socket: Socket, request: AuthRequest, inner: Arc<Inner>) {
    let span = tracing::info_span!("session", room = %request.room, client = tracing::field::Empty);
    async move {
        let (mut sink, mut stream) = socket.split();
        // The address's place is taken before anything else, so one address cannot hold every
        // connection of the server, even with sockets that never say hello.
        let place = match request.remote {
            Some(ip) => inner.admission.address(ip, inner.limits.connections_per_address_max).ok_or(ip).map(Some),
            None => Ok(None),
        };
        let code = match place {
            Err(ip) => {
                let reason = format!("{ip} has its limit of {} connections", inner.limits.connections_per_address_max);
                let _ = sink.send(close_message(close::TOO_MANY_CONNECTIONS, &reason)).await;
                Some(close::TOO_MANY_CONNECTIONS)
            }
            Ok(_place) => match handshake(&mut stream, &inner).await {
                Err((code, reason)) => {
                    tracing::debug!(code, %reason, "handshake refused");
                    let _ = sink.send(close_message(code, &reason)).await;
                    Some(code)
                }
                Ok(hello) => connected(sink, &mut stream, request, hello, inner.clone()).await,
            },
        };
        // At shutdown every session drains at once, and the server waits for them: briefly.
        let drain_for = if inner.shutdown.is_cancelled() { SHUTDOWN_DRAIN_TIMEOUT } else { CLOSE_DRAIN_TIMEOUT };
        // After a framing error the stream cannot be read on (an oversized message's payload is
        // still arriving): the socket is only held open, so the close frame is read before the
        // unread bytes make the kernel reset the connection.
        let unreadable = matches!(code, Some(close::TOO_BIG | close::INVALID_DATA | close::PROTOCOL_ERROR));
        if unreadable {
            tokio::time::sleep(drain_for).await;
        } else {
            drain(&mut stream, drain_for).await;
        }
    }
    .instrument(span)
    .await
}

struct Hello {
    token: Option<String>,
    resume: Option<protocol::Resume>,
    batch: bool,
    compact_snapshots: bool,
}

async fn handshake(stream: &mut SplitStream<Socket>, inner: &Inner) -> Result<Hello, (u16, String)> {
    let timeout = Duration::from_millis(inner.limits.hello_timeout_ms);
    let first = tokio::time::timeout(timeout, stream.next())
        .await
        .map_err(|_| (close::BAD_HANDSHAKE, "no hello in time".to_owned()))?;
    let text = match first {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(_)) => return Err((close::BAD_HANDSHAKE, "the first message must be a text hello".into())),
        Some(Err(e)) => {
            return Err(read_error_close(&e, &inner.limits)
                .unwrap_or_else(|| (close::BAD_HANDSHAKE, format!("read error: {e}"))))
        }
        None => return Err((close::NORMAL, "closed before hello".into())),
    };
    inner.metrics.bytes_in.inc_by(text.len() as u64);
    let hello = match protocol::decode_client(&text) {
        Ok(ClientMessage::Hello { protocol, token, resume, batch, compact_snapshots }) => {
            if protocol != protocol::PROTOCOL_VERSION {
                return Err((
                    close::BAD_HANDSHAKE,
                    format!("unsupported protocol {protocol}; this server speaks {}", protocol::PROTOCOL_VERSION),
                ));
            }
            Hello { token, resume, batch, compact_snapshots }
        }
        Ok(_) => return Err((close::BAD_HANDSHAKE, "the first message must be hello".into())),
        Err(e) => return Err((close::BAD_HANDSHAKE, format!("bad hello: {e}"))),
    };
    Ok(hello)
}

async fn connected(
    mut sink: SplitSink<Socket, Message>,
    stream: &mut SplitStream<Socket>,
    mut request: AuthRequest,
    hello: Hello,
    inner: Arc<Inner>,
) -> Option<u16> {
    let room_name = request.room.clone();
    request.token = hello.token.clone();
    let grant = match inner.authorize(request).await {
        Ok(g) if g.expires_at.is_some_and(|t| t <= SystemTime::now()) => {
            let _ = sink.send(close_message(close::UNAUTHORIZED, "the grant has expired")).await;
            return Some(close::UNAUTHORIZED);
        }
        Ok(g) => g,
        Err(reason) => {
            tracing::info!(%reason, "refused by the auth hook");
            let _ = sink.send(close_message(close::UNAUTHORIZED, &reason)).await;
            return Some(close::UNAUTHORIZED);
        }
    };
    let user = grant.identity.as_ref().map(|i| i.user.clone());
    let _user_place = match &user {
        Some(u) => match inner.admission.user(u, inner.limits.connections_per_user_max) {
            Some(place) => Some(place),
            None => {
                let reason = format!("user {u} has its limit of {} connections", inner.limits.connections_per_user_max);
                let _ = sink.send(close_message(close::TOO_MANY_CONNECTIONS, &reason)).await;
                return Some(close::TOO_MANY_CONNECTIONS);
            }
        },
        None => None,
    };
    if inner.clients.fetch_add(1, Ordering::SeqCst) >= inner.limits.clients_max {
        inner.clients.fetch_sub(1, Ordering::SeqCst);
        let reason = format!("the server has its limit of {} clients", inner.limits.clients_max);
        let _ = sink.send(close_message(close::ROOM_UNAVAILABLE, &reason)).await;
        return Some(close::ROOM_UNAVAILABLE);
    }
    inner.metrics.clients.inc();
    let joined = join(&inner, &room_name, &hello, &grant).await;
    let code = match joined {
        Err(reason) => {
            let _ = sink.send(close_message(close::ROOM_UNAVAILABLE, &reason)).await;
            Some(close::ROOM_UNAVAILABLE)
        }
        Ok((room, client, link, rx)) => {
            tracing::Span::current().record("client", client.as_str());
            let writer = tokio::spawn(write_loop(sink, rx, link.closer.clone(), inner.clone()).in_current_span());
            let peer = Peer { room: &room, client: &client, link: &link, identity: grant.identity.clone() };
            read_loop(stream, &peer, grant.expires_at, &inner).await;
            let _ = room.send(Command::Leave { client, connection: link.connection }).await;
            if link.closer.reason().is_none() {
                link.closer.close(close::NORMAL, "bye");
            }
            // The socket's write buffer grew to the largest frame (a big room's welcome) and
            // has just been freed with the socket: hand such memory back to the system.
            if writer.await.unwrap_or(false) {
                release_memory_soon();
            }
            link.closer.reason().map(|(code, _)| *code)
        }
    };
    inner.clients.fetch_sub(1, Ordering::SeqCst);
    inner.metrics.clients.dec();
    code
}

type Joined = (RoomHandle, ClientId, SessionLink, OutboundReceiver);

async fn join(inner: &Arc<Inner>, room_name: &str, hello: &Hello, grant: &Grant) -> Result<Joined, String> {
    // A room being unloaded answers "try again"; the next attempt loads it afresh.
    let mut last_error = String::new();
    for _ in 0..3 {
        let room = inner.rooms.room(room_name).await.map_err(|e| e.to_string())?;
        let (out, rx) = outbound_channel(
            inner.limits.outbound_queue_len_max,
            inner.limits.outbound_queue_bytes_max,
            inner.outbound.clone(),
        );
        let link = SessionLink { connection: next_connection_id(), out, closer: Arc::new(Closer::default()) };
        let (reply, answer) = oneshot::channel();
        let request = JoinRequest {
            resume: hello.resume.clone(),
            read_only: grant.read_only,
            identity: grant.identity.clone(),
            batch: hello.batch,
            compact_snapshots: hello.compact_snapshots,
        };
        room.send(Command::Join { request, link: link.clone(), reply }).await.map_err(|e| e.to_string())?;
        match answer.await {
            Ok(Ok(client)) => return Ok((room, client, link, rx)),
            Ok(Err(JoinError::Unloaded)) | Err(_) => last_error = "the room was unloading".into(),
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
    Err(last_error)
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

/// The session as the read loop sees it: its room, client, link and identity.
struct Peer<'a> {
    room: &'a RoomHandle,
    client: &'a ClientId,
    link: &'a SessionLink,
    identity: Option<Arc<Identity>>,
}

async fn read_loop(
    stream: &mut SplitStream<Socket>,
    peer: &Peer<'_>,
    expires_at: Option<SystemTime>,
    inner: &Arc<Inner>,
) {
    let link = peer.link;
    let limits = &inner.limits;
    let mut rate = Rates {
        connection: RateLimit::new(limits.messages_per_second_max, limits.message_burst_max),
        user: peer.identity.as_ref().map(|i| {
            inner.admission.user_rate(&i.user, limits.user_messages_per_second_max, limits.user_message_burst_max)
        }),
    };
    let mut errors = 0u32;
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
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut last_seen = Instant::now();
    let mut idle_check = tokio::time::interval(idle / 4);
    // Made once: a cancellation future made per message registers and unregisters a waiter
    // each time (measurable with thousands of sessions).
    let closed = link.closer.token().cancelled();
    let shutdown = inner.shutdown.cancelled();
    tokio::pin!(closed, shutdown, expired);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut closed => return,
            _ = &mut shutdown => {
                link.closer.close(close::GOING_AWAY, "the server is shutting down");
                return;
            }
            _ = &mut expired => {
                link.closer.close(close::TOKEN_EXPIRED, "the token expired: get a new one and resume");
                return;
            }
            _ = idle_check.tick() => {
                if last_seen.elapsed() > idle {
                    link.closer.close(close::IDLE, format!("no traffic for {} ms", limits.idle_timeout_ms));
                    return;
                }
                continue;
            }
            msg = stream.next() => msg,
        };
        last_seen = Instant::now();
        let text = match msg {
            None => return,
            Some(Ok(Message::Close(frame))) => {
                // Answer with the client's own code: a clean close on both sides.
                let code = frame.map_or(close::NORMAL, |f| u16::from(f.code));
                link.closer.close(code, "bye");
                return;
            }
            Some(Ok(Message::Text(t))) => t,
            // Pings cost an answer each (tungstenite queues the pong): they count against the
            // same rate as messages, so a ping flood is cut off like a message flood.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                if let Err(reason) = rate.allow(limits) {
                    if !complain(link, inner, &mut errors, "rate_limited", &reason) {
                        return;
                    }
                }
                continue;
            }
            // Frames come only when writing raw ones; reads yield whole messages.
            Some(Ok(Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                if !complain(link, inner, &mut errors, "bad_message", "binary frames are not part of the protocol") {
                    return;
                }
                continue;
            }
            Some(Err(e)) => {
                match read_error_close(&e, limits) {
                    Some((code, reason)) => {
                        link.closer.close(code, reason);
                    }
                    None => tracing::debug!(error = %e, "read error"),
                }
                return;
            }
        };
        inner.metrics.bytes_in.inc_by(text.len() as u64);
        if let Err(reason) = rate.allow(limits) {
            if !complain(link, inner, &mut errors, "rate_limited", &reason) {
                return;
            }
            continue;
        }
        let msg = match protocol::decode_client(&text) {
            Ok(m) => m,
            Err(e) => {
                if !complain(link, inner, &mut errors, e.code(), &e.to_string()) {
                    return;
                }
                continue;
            }
        };
        if !dispatch(msg, text.len(), peer, inner).await {
            return;
        }
    }
}

/// Forwards one decoded message; `false` when the session must end.
async fn dispatch(msg: ClientMessage, bytes: usize, peer: &Peer<'_>, inner: &Arc<Inner>) -> bool {
    let (room, link) = (peer.room, peer.link);
    let limits = &inner.limits;
    let client = peer.client.clone();
    let cmd = match msg {
        ClientMessage::Hello { .. } => {
            return queue(link, inner, protocol::encode_error("bad_message", "hello was already received"));
        }
        ClientMessage::Action { id, .. } | ClientMessage::Undo { id, .. } | ClientMessage::Redo { id, .. }
            if id > protocol::ID_MAX =>
        {
            let reason = format!("action id {id} is above {} (2^53 - 1)", protocol::ID_MAX);
            return queue(link, inner, protocol::encode_reject(id, "bad_id", &reason, None));
        }
        ClientMessage::Call { id, .. } if id > protocol::ID_MAX => {
            let reason = format!("call id {id} is above {} (2^53 - 1)", protocol::ID_MAX);
            return queue(link, inner, protocol::encode_result(id, Err(("bad_id", &reason))));
        }
        ClientMessage::Action { id, base, changes } => {
            let Ok(permit) = room.inbox_permit(bytes).await else { return false };
            Command::Action { client, id, base, changes, permit }
        }
        ClientMessage::Undo { id, scope } => Command::Undo { client, id, scope, redo: false },
        ClientMessage::Redo { id, scope } => Command::Undo { client, id, scope, redo: true },
        ClientMessage::Presence { state } => {
            let size = serde_json::to_string(&state).map_or(usize::MAX, |s| s.len());
            if size > limits.presence_bytes_max {
                let reason = format!("presence state of {size} bytes; the limit is {}", limits.presence_bytes_max);
                return queue(link, inner, protocol::encode_error("too_large", &reason));
            }
            let Ok(permit) = room.inbox_permit(bytes).await else { return false };
            Command::Presence { client, state, permit }
        }
        ClientMessage::Call { id, service, args } => {
            let caller = ServiceCall { room: room.clone(), client, identity: peer.identity.clone(), args };
            call(id, service, caller, link.clone(), inner.clone());
            return true;
        }
    };
    room.send(cmd).await.is_ok()
}

/// Runs a service in its own task, with the timeout, and queues its `result`.
fn call(id: u64, service: String, caller: ServiceCall, link: SessionLink, inner: Arc<Inner>) {
    let Some(f) = inner.services.get(&service).cloned() else {
        let reason = format!("no service named {service:?}");
        queue(&link, &inner, protocol::encode_result(id, Err(("no_such_service", &reason))));
        return;
    };
    let timeout = Duration::from_millis(inner.limits.service_timeout_ms);
    let tasks = inner.tasks.clone();
    tasks.spawn(
        async move {
            let frame = match tokio::time::timeout(timeout, f(caller)).await {
                Ok(Ok(v)) => protocol::encode_result(id, Ok(&v)),
                Ok(Err(reason)) => protocol::encode_result(id, Err(("service_failed", &reason))),
                Err(_) => {
                    let reason = format!("service {service} did not answer within {} ms", timeout.as_millis());
                    protocol::encode_result(id, Err(("timeout", &reason)))
                }
            };
            queue(&link, &inner, frame);
        }
        .in_current_span(),
    );
}

/// Queues a message for this session; a full queue cuts it off. `false` if cut off.
fn queue(link: &SessionLink, inner: &Inner, text: String) -> bool {
    if let Err(full) = link.out.try_queue(text.into()) {
        if link.closer.close(close::TOO_SLOW, too_slow(full, &inner.limits)) {
            inner.metrics.slow_disconnects.inc();
        }
        return false;
    }
    true
}

/// Answers a bad message with `error`; `false` once the connection has had too many.
fn complain(link: &SessionLink, inner: &Inner, errors: &mut u32, code: &str, reason: &str) -> bool {
    inner.metrics.bad_messages.inc();
    *errors += 1;
    if *errors > inner.limits.errors_max {
        link.closer.close(close::TOO_MANY_ERRORS, format!("more than {} bad messages", inner.limits.errors_max));
        return false;
    }
    queue(link, inner, protocol::encode_error(code, reason))
}

/// Writes the room's frames and pings until the session closes; says whether any frame was
/// large.
async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut rx: OutboundReceiver,
    closer: Arc<Closer>,
    inner: Arc<Inner>,
) -> bool {
    let mut ping = tokio::time::interval(Duration::from_millis(inner.limits.ping_interval_ms));
    ping.reset();
    let mut sent_large = false;
    let closed = closer.token().cancelled();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                // A client that does not read blocks the write; the session must still end when
                // it is cut off (or the server stops), so the write waits on the closer too.
                let written = tokio::select! {
                    biased;
                    _ = &mut closed => break,
                    written = write_burst(&mut sink, &mut rx, frame) => written,
                };
                match written {
                    Ok(large) => sent_large |= large,
                    Err(_) => {
                        closer.close(close::NORMAL, "write failed");
                        return sent_large;
                    }
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    closer.close(close::NORMAL, "write failed");
                    return sent_large;
                }
            }
        }
    }
    let (code, reason) = closer.reason().cloned().unwrap_or((close::NORMAL, String::new()));
    let flush_and_close = async {
        // Say why before closing: everything already queued goes out (an `error` explains a
        // 4004; the queue's bounds bound it, the timeout below the time). A client cut off for
        // being slow gets no more of what it could not read.
        if code != close::TOO_SLOW {
            while let Some(frame) = rx.try_recv() {
                if feed(&mut sink, frame).await.is_err() {
                    return;
                }
            }
        }
        let _ = sink.send(close_message(code, &reason)).await;
        // Flushes anything tungstenite queued (such as its own answer to the client's close).
        let _ = sink.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), flush_and_close).await;
    sent_large
}

/// The close code and reason RFC 6455 gives a read error that is the client's fault: 1009 for a
/// message over `frame_bytes_max`, 1007 for a text message that is not UTF-8, 1002 for a
/// violation of the framing (an unmasked frame, a reserved bit or opcode...). `None` for a
/// connection that simply failed (nobody to tell).
fn read_error_close(e: &WsError, limits: &crate::limits::ServerLimits) -> Option<(u16, String)> {
    match e {
        WsError::Capacity(_) => Some((close::TOO_BIG, format!("message larger than {} bytes", limits.frame_bytes_max))),
        WsError::Utf8(_) => Some((close::INVALID_DATA, "a text message that is not valid UTF-8".to_owned())),
        WsError::Protocol(p) => Some((close::PROTOCOL_ERROR, format!("WebSocket protocol error: {p}"))),
        _ => None,
    }
}

/// Writes `first` and what else is queued (up to [`WRITE_BATCH_MAX`] frames), then flushes: a
/// burst becomes one write. Says whether a frame was large.
async fn write_burst(
    sink: &mut SplitSink<Socket, Message>,
    rx: &mut OutboundReceiver,
    first: Frame,
) -> Result<bool, tokio_tungstenite::tungstenite::Error> {
    let mut large = first.len() >= LARGE_FRAME_BYTES;
    feed(sink, first).await?;
    let mut n = 1;
    while n < WRITE_BATCH_MAX {
        let Some(frame) = rx.try_recv() else { break };
        large |= frame.len() >= LARGE_FRAME_BYTES;
        feed(sink, frame).await?;
        n += 1;
    }
    sink.flush().await?;
    Ok(large)
}

/// After the close frame: reads (and drops) what the client still sends, until its own close or
/// the end of the stream, for at most `timeout`. A socket closed with unread data
/// makes the kernel answer with a reset, which can overtake the close frame: the client would
/// see 1006 and no reason instead of the code it must act on.
async fn drain(stream: &mut SplitStream<Socket>, timeout: Duration) {
    let until_closed = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, until_closed).await;
}

/// Returns free memory to the system after a session that wrote a large frame, at most once per
/// [`TRIM_INTERVAL`] (the clients of a big room leaving together must not walk the heap once
/// each), on a blocking thread (a large heap takes milliseconds).
fn release_memory_soon() {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let Ok(mut last) = LAST.lock() else { return };
    if last.is_some_and(|t| t.elapsed() < TRIM_INTERVAL) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    tokio::task::spawn_blocking(crate::room::release_free_memory);
}

/// Queues `frame` on the socket, in fragments of at most [`FRAGMENT_BYTES`] when it is larger:
/// the socket's write buffer then never grows past a few fragments.
async fn feed(
    sink: &mut SplitSink<Socket, Message>,
    frame: Frame,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    for message in text_fragments(frame, FRAGMENT_BYTES) {
        sink.feed(message).await?;
    }
    Ok(())
}

fn close_message(code: u16, reason: &str) -> Message {
    // A close reason has at most 123 bytes.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason[..end].into() }))
}
