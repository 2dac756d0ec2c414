//! One task per connection: handshake, auth, the connection's places, join, then a reader
//! ([`reader::Session`]) and a writer ([`writer::write_loop`]) fed by a bounded queue. Sessions
//! only move bytes: they decode and forward to the room, and write what the room (or a service)
//! queues. They never touch a `Document`.
//!
//! A session is generic over the socket's two halves ([`Incoming`], [`Outgoing`]), so the unit
//! tests drive it through channels, with no network.

mod reader;
#[cfg(test)]
mod tests;
mod writer;

use super::websocket::Socket;
use super::{AuthRequest, Grant, Inner};
use crate::protocol::{self, close, ClientMessage};
use crate::room::{
    next_connection_id, outbound_channel, ClientId, Closer, Command, JoinError, JoinRequest, OutboundReceiver, Outlet,
    RoomHandle, SessionLink,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
pub(crate) use reader::run_service;
use reader::{read_error_close, Session};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::Instrument;
use writer::{close_message, write_loop};

/// Session ends return memory to the system at most this often.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// After its close frame, the session reads what the client still sends for at most this long,
/// waiting for the client's own close.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// The same while the server shuts down.
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// The socket's reading half, as a session sees it.
pub(crate) trait Incoming: Stream<Item = Result<Message, WsError>> + Unpin + Send {}
impl<T: Stream<Item = Result<Message, WsError>> + Unpin + Send> Incoming for T {}

/// The socket's writing half, as a session sees it (moved to the writer's task).
pub(crate) trait Outgoing: Sink<Message, Error = WsError> + Unpin + Send + 'static {}
impl<T: Sink<Message, Error = WsError> + Unpin + Send + 'static> Outgoing for T {}

/// Serves one upgraded WebSocket until it closes.
pub(crate) async fn run(socket: Socket, request: AuthRequest, inner: Arc<Inner>) {
    let (sink, stream) = socket.split();
    serve(stream, sink, request, inner).await
}

/// Serves one connection, given as its two halves, until it closes.
pub(crate) async fn serve<I: Incoming, O: Outgoing>(stream: I, mut sink: O, request: AuthRequest, inner: Arc<Inner>) {
    // Read again after its end (the drain after a client's close), a stream says `None` again.
    let mut stream = stream.fuse();
    let span = tracing::info_span!("session", room = %request.room, client = tracing::field::Empty);
    async move {
        // The address's place is taken before anything else, so one address cannot hold every
        // connection of the server, even with sockets that never say hello.
        let place = match request.remote {
            Some(ip) => inner.admission.address(ip, inner.limits.connections_per_address_max).ok_or(ip).map(Some),
            None => Ok(None),
        };
        let code = match place {
            Err(ip) => {
                let reason = format!("{ip} has its limit of {} connections", inner.limits.connections_per_address_max);
                refuse(&mut sink, close::TOO_MANY_CONNECTIONS, &reason).await
            }
            Ok(_place) => match handshake(&mut stream, &inner).await {
                Err((code, reason)) => {
                    tracing::debug!(code, %reason, "handshake refused");
                    refuse(&mut sink, code, &reason).await
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

/// Sends a close frame before any session exists; says the code.
async fn refuse<O: Outgoing>(sink: &mut O, code: u16, reason: &str) -> Option<u16> {
    let _ = sink.send(close_message(code, reason)).await;
    Some(code)
}

/// What the client's `hello` asked for.
struct Hello {
    token: Option<String>,
    resume: Option<protocol::Resume>,
    batch: bool,
    compact_snapshots: bool,
}

/// Reads the first message, which must be a `hello` of this protocol, within `hello_timeout_ms`.
async fn handshake<I: Incoming>(stream: &mut I, inner: &Inner) -> Result<Hello, (u16, String)> {
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
    match protocol::decode_client(&text) {
        Ok(ClientMessage::Hello { protocol, token, resume, batch, compact_snapshots, schema }) => {
            if protocol != protocol::PROTOCOL_VERSION {
                return Err((
                    close::BAD_HANDSHAKE,
                    format!("unsupported protocol {protocol}; this server speaks {}", protocol::PROTOCOL_VERSION),
                ));
            }
            if let Some(theirs) = schema.filter(|f| !inner.types.accepts_client(f)) {
                return Err((close::SCHEMA_MISMATCH, schema_mismatch_reason(&theirs, &inner.types)));
            }
            Ok(Hello { token, resume, batch, compact_snapshots })
        }
        Ok(_) => Err((close::BAD_HANDSHAKE, "the first message must be hello".into())),
        Err(e) => Err((close::BAD_HANDSHAKE, format!("bad hello: {e}"))),
    }
}

/// The close reason of a client built for other types: both fingerprints (kept under the
/// close frame's 123 bytes) and what to do.
fn schema_mismatch_reason(theirs: &str, types: &crate::model::TypeRegistry) -> String {
    let theirs: String = theirs.chars().take(16).collect();
    format!(
        "schema mismatch: the server's types are version {} ({}), the client's {theirs}: reload",
        types.schema_version(),
        types.fingerprint()
    )
}

/// The places a connection holds while it lives: its user's (when it has one) and the server's
/// client count. Given back on drop.
struct Admitted {
    inner: Arc<Inner>,
    _user_place: Option<super::admission::Place<compact_str::CompactString>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.inner.clients.fetch_sub(1, Ordering::SeqCst);
        self.inner.metrics.clients.dec();
    }
}

/// Asks the auth hook, then takes the user's place and the server's: the grant, or the close
/// code and reason that refuse the connection.
async fn admit(
    inner: &Arc<Inner>,
    mut request: AuthRequest,
    hello: &Hello,
) -> Result<(Grant, Admitted), (u16, String)> {
    request.token = hello.token.clone();
    let grant = match inner.authorize(request).await {
        Ok(g) if g.expires_at.is_some_and(|t| t <= SystemTime::now()) => {
            return Err((close::UNAUTHORIZED, "the grant has expired".into()));
        }
        Ok(g) => g,
        Err(reason) => {
            tracing::info!(%reason, "refused by the auth hook");
            return Err((close::UNAUTHORIZED, reason));
        }
    };
    let user_place = match grant.identity.as_ref().map(|i| &i.user) {
        Some(u) => match inner.admission.user(u, inner.limits.connections_per_user_max) {
            Some(place) => Some(place),
            None => {
                let reason = format!("user {u} has its limit of {} connections", inner.limits.connections_per_user_max);
                return Err((close::TOO_MANY_CONNECTIONS, reason));
            }
        },
        None => None,
    };
    if inner.clients.fetch_add(1, Ordering::SeqCst) >= inner.limits.clients_max {
        inner.clients.fetch_sub(1, Ordering::SeqCst);
        let reason = format!("the server has its limit of {} clients", inner.limits.clients_max);
        return Err((close::ROOM_UNAVAILABLE, reason));
    }
    inner.metrics.clients.inc();
    Ok((grant, Admitted { inner: inner.clone(), _user_place: user_place }))
}

/// After a good `hello`: admission, join, then the reader here and the writer in its own task,
/// until the session ends. Says the close code it ended with.
async fn connected<I: Incoming, O: Outgoing>(
    mut sink: O,
    stream: &mut I,
    request: AuthRequest,
    hello: Hello,
    inner: Arc<Inner>,
) -> Option<u16> {
    let room_name = request.room.clone();
    let (grant, _admitted) = match admit(&inner, request, &hello).await {
        Ok(admitted) => admitted,
        Err((code, reason)) => return refuse(&mut sink, code, &reason).await,
    };
    let (room, client, link, rx) = match join(&inner, &room_name, &hello, &grant).await {
        Ok(joined) => joined,
        Err(reason) => return refuse(&mut sink, close::ROOM_UNAVAILABLE, &reason).await,
    };
    tracing::Span::current().record("client", client.as_str());
    let ping_interval = Duration::from_millis(inner.limits.ping_interval_ms);
    let writer = tokio::spawn(write_loop(sink, rx, link.closer.clone(), ping_interval).in_current_span());
    let mut session = Session::new(inner.clone(), room.clone(), client.clone(), link.clone(), grant.identity.clone());
    session.read(stream, grant.expires_at).await;
    let _ = room.send(Command::Leave { client, connection: link.connection }).await;
    if link.closer.reason().is_none() {
        link.closer.close(close::NORMAL, "bye");
    }
    // The socket's write buffer grew to the largest frame (a big room's welcome) and has just
    // been freed with the socket: hand such memory back to the system.
    if writer.await.unwrap_or(false) {
        release_memory_soon();
    }
    link.closer.reason().map(|(code, _)| *code)
}

type Joined = (RoomHandle, ClientId, SessionLink, OutboundReceiver);

/// Joins (or resumes in) the room; a room being unloaded answers "try again", and the next
/// attempt loads it afresh.
async fn join(inner: &Arc<Inner>, room_name: &str, hello: &Hello, grant: &Grant) -> Result<Joined, String> {
    let mut last_error = String::new();
    for _ in 0..3 {
        let room = inner.rooms.room(room_name).await.map_err(|e| e.to_string())?;
        let (out, rx) = outbound_channel(
            inner.limits.outbound_queue_len_max,
            inner.limits.outbound_queue_bytes_max,
            inner.outbound.clone(),
        );
        let link = SessionLink {
            connection: next_connection_id(),
            out: Outlet::Local(out),
            closer: Arc::new(Closer::default()),
        };
        let (reply, answer) = oneshot::channel();
        let request = JoinRequest {
            resume: hello.resume.clone(),
            read_only: grant.read_only,
            identity: grant.identity.clone(),
            batch: hello.batch,
            compact_snapshots: hello.compact_snapshots,
            takeover: None,
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

/// After the close frame: reads (and drops) what the client still sends, until its own close or
/// the end of the stream, for at most `timeout`. A socket closed with unread data makes the
/// kernel answer with a reset, which can overtake the close frame: the client would see 1006 and
/// no reason instead of the code it must act on.
async fn drain<I: Incoming>(stream: &mut I, timeout: Duration) {
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
