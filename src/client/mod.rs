//! A Rust client: connects to a room, mirrors its tree, sends actions and awaits their acks,
//! receives updates, presence, events and service results. For bots, tools, tests and the
//! benchmark.
//!
//! One task owns a [`Client`]; every method takes `&mut self`. Messages that arrive while a
//! method waits for something else (an ack, a result) are kept, in order, for
//! [`next_event`](Client::next_event).

mod mirror;
mod tls;

pub use mirror::{Mirror, MirrorNode};

use crate::model::{Change, ObjId, Value};
use crate::protocol::{self, ClientMessage, Resume, ServerMessage, ServiceError};
use compact_str::CompactString;
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, VecDeque};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Small read buffer: tungstenite zeroes the whole buffer for every read, and updates are small.
fn socket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Could not connect or the socket failed (a server certificate that no trusted root
    /// vouches for included).
    #[error("connection: {0}")]
    Connection(String),
    /// [`ConnectOptions::tls_roots_pem`] holds no usable certificate.
    #[error("tls_roots_pem: {0}")]
    TlsRoots(String),
    /// The server closed the connection.
    #[error("closed by the server with {code}: {reason}")]
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The server sent something this client cannot read, or out of order.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The action was refused.
    #[error("rejected ({code}): {reason}")]
    Rejected {
        /// Machine-readable code.
        code: String,
        /// Human reason.
        reason: String,
    },
    /// The service failed or timed out.
    #[error("service {code}: {reason}")]
    Service {
        /// `no_such_service`, `timeout`, `service_failed`.
        code: String,
        /// Human reason.
        reason: String,
    },
}

/// Something the server sent, after the mirror has applied it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A state update (already applied to the mirror).
    Update {
        /// New version.
        v: u64,
        /// Who caused it.
        origin: CompactString,
        /// Their action id.
        action: Option<u64>,
        /// The changes.
        changes: Vec<Change>,
    },
    /// Emitted events (no state change).
    Events {
        /// Who emitted.
        origin: CompactString,
        /// Their action id.
        action: Option<u64>,
        /// The emits.
        changes: Vec<Change>,
    },
    /// One of this client's actions was refused.
    Reject {
        /// Its id.
        action: u64,
        /// Code.
        code: String,
        /// Reason.
        reason: String,
    },
    /// Another client's presence (`Null`: gone).
    Presence {
        /// Whose.
        client: CompactString,
        /// State.
        state: Value,
    },
    /// A service answered.
    Result {
        /// Call id.
        id: u64,
        /// Value or failure.
        outcome: Result<Value, ServiceError>,
    },
    /// The server could not understand a message of ours.
    Error {
        /// Code.
        code: String,
        /// Reason.
        reason: String,
    },
}

/// Options for [`Client::connect`].
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Passed to the server's auth hook.
    pub token: Option<String>,
    /// Resume as an earlier client (from [`Client::resume_point`]), with its mirror.
    pub resume: Option<(Resume, Mirror)>,
    /// For `wss://` URLs: root certificates (PEM) trusted besides the public ones (Mozilla's,
    /// built in), e.g. a private CA's or a self-signed server's own certificate.
    pub tls_roots_pem: Option<Vec<u8>>,
    /// The fingerprint of the types this client was built for
    /// ([`TypeRegistry::fingerprint`](crate::model::TypeRegistry::fingerprint)): a server with
    /// other types refuses it with close code 4009 (`SCHEMA_MISMATCH`). `None`: not checked.
    pub schema: Option<String>,
}

/// A connection to one room.
pub struct Client {
    ws: Socket,
    id: CompactString,
    resume_token: String,
    acked: u64,
    read_only: bool,
    /// Undo and redo steps the room held for this client when it joined.
    undo_steps: (usize, usize),
    mirror: Mirror,
    presence: HashMap<CompactString, Value>,
    next_action: u64,
    next_call: u64,
    next_object: u64,
    inbox: VecDeque<Event>,
    /// Messages of a `batch` not yet handled.
    unbatched: VecDeque<ServerMessage>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("id", &self.id).field("version", &self.mirror.version()).finish()
    }
}

impl Client {
    /// Connects to `url` (`ws://host:port/ws/<room>`, or `wss://` over TLS), says hello and
    /// waits for the welcome. When resuming, the catch-up updates are applied to the given
    /// mirror before this returns.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Client, ClientError> {
        let secure = url.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss://"));
        let connector = if secure { Some(tls::connector(options.tls_roots_pem.as_deref())?) } else { None };
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, Some(socket_config()), true, connector)
            .await
            .map_err(|e| ClientError::Connection(e.to_string()))?;
        let (resume, old_mirror) = match options.resume {
            Some((r, m)) => (Some(r), Some(m)),
            None => (None, None),
        };
        let next_action = resume.as_ref().map_or(1, |_| 0);
        let mut c = Client {
            ws,
            id: CompactString::default(),
            resume_token: String::new(),
            acked: 0,
            read_only: false,
            undo_steps: (0, 0),
            mirror: Mirror::default(),
            presence: HashMap::new(),
            next_action,
            next_call: 1,
            next_object: 1,
            inbox: VecDeque::new(),
            unbatched: VecDeque::new(),
        };
        c.send(&ClientMessage::Hello {
            protocol: protocol::PROTOCOL_VERSION,
            token: options.token,
            resume,
            batch: true,
            compact_snapshots: true,
            schema: options.schema,
        })
        .await?;
        match c.recv().await? {
            ServerMessage::Welcome {
                client,
                resume_token,
                version,
                acked,
                snapshot,
                presence,
                read_only,
                undo_steps,
                redo_steps,
            } => {
                c.undo_steps = (undo_steps, redo_steps);
                c.id = client;
                c.resume_token = resume_token;
                c.acked = acked;
                c.read_only = read_only;
                c.presence = presence;
                c.next_action = c.next_action.max(acked + 1);
                match (snapshot, old_mirror) {
                    (Some(s), _) => c.mirror = Mirror::from_snapshot(s),
                    (None, Some(m)) => {
                        c.mirror = m;
                        while c.mirror.version() < version {
                            let e = c.read_event().await?;
                            c.inbox.push_back(e);
                        }
                    }
                    (None, None) => {
                        return Err(ClientError::Protocol("welcome without a snapshot for a new client".into()))
                    }
                }
            }
            other => return Err(ClientError::Protocol(format!("expected welcome, got {other:?}"))),
        }
        Ok(c)
    }

    /// This client's id in the room.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The mirrored tree.
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }
    /// The version the mirror is at.
    pub fn version(&self) -> u64 {
        self.mirror.version()
    }
    /// The highest action id the room had processed when this client joined.
    pub fn acked(&self) -> u64 {
        self.acked
    }
    /// Whether this client may change nothing.
    pub fn read_only(&self) -> bool {
        self.read_only
    }
    /// The undo and redo steps the room held for this client when it joined: `(0, 0)` for a
    /// new client, and after the room unloaded or the server restarted (undo histories live in
    /// the room's memory).
    pub fn undo_steps(&self) -> (usize, usize) {
        self.undo_steps
    }
    /// Other clients' presence.
    pub fn presence(&self) -> &HashMap<CompactString, Value> {
        &self.presence
    }
    /// Where to resume from after a disconnect.
    pub fn resume_point(&self) -> Resume {
        Resume { client: self.id.clone(), resume_token: self.resume_token.clone(), version: self.mirror.version() }
    }
    /// Gives up the connection, keeping what a resume needs.
    pub fn into_resume(self) -> (Resume, Mirror) {
        (self.resume_point(), self.mirror)
    }
    /// A fresh id for an object this client creates (`<client id>:<n>`).
    pub fn new_object_id(&mut self) -> ObjId {
        let id = compact_str::format_compact!("{}:{}", self.id, self.next_object);
        self.next_object += 1;
        id
    }

    /// Sends a raw message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        self.send_text(protocol::encode_client(msg)).await
    }

    /// Sends a raw text frame (tests use it to send malformed input).
    pub async fn send_text(&mut self, text: String) -> Result<(), ClientError> {
        self.ws.send(Message::Text(text.into())).await.map_err(|e| ClientError::Connection(e.to_string()))
    }

    /// Sends an action without waiting (pipelining); returns its id.
    pub async fn send_action(&mut self, changes: Vec<Change>) -> Result<u64, ClientError> {
        let id = self.next_action;
        self.next_action += 1;
        let base = self.mirror.version();
        self.send(&ClientMessage::Action { id, base, changes, step: None }).await?;
        Ok(id)
    }

    /// Sends an action and waits for its ack; returns the version it created (the current
    /// version for an event-only action).
    pub async fn act(&mut self, changes: Vec<Change>) -> Result<u64, ClientError> {
        let id = self.send_action(changes).await?;
        self.wait_ack(id).await
    }

    /// Undoes this client's latest change under `scope` (or anywhere); waits for the result.
    pub async fn undo(&mut self, scope: Option<&str>) -> Result<u64, ClientError> {
        let id = self.next_action;
        self.next_action += 1;
        self.send(&ClientMessage::Undo { id, scope: scope.map(Into::into) }).await?;
        self.wait_ack(id).await
    }

    /// Redoes this client's latest undone change under `scope`; waits for the result.
    pub async fn redo(&mut self, scope: Option<&str>) -> Result<u64, ClientError> {
        let id = self.next_action;
        self.next_action += 1;
        self.send(&ClientMessage::Redo { id, scope: scope.map(Into::into) }).await?;
        self.wait_ack(id).await
    }

    /// Waits for the update or reject of action `id`, keeping other events for later.
    pub async fn wait_ack(&mut self, id: u64) -> Result<u64, ClientError> {
        loop {
            let e = self.read_event().await?;
            match &e {
                Event::Update { v, origin, action: Some(a), .. } if *a == id && *origin == self.id => {
                    let v = *v;
                    self.inbox.push_back(e);
                    return Ok(v);
                }
                Event::Events { origin, action: Some(a), .. } if *a == id && *origin == self.id => {
                    self.inbox.push_back(e);
                    return Ok(self.mirror.version());
                }
                Event::Reject { action, code, reason } if *action == id => {
                    return Err(ClientError::Rejected { code: code.clone(), reason: reason.clone() });
                }
                _ => self.inbox.push_back(e),
            }
        }
    }

    /// Calls a service and waits for its result.
    pub async fn call(&mut self, service: &str, args: Value) -> Result<Value, ClientError> {
        let id = self.next_call;
        self.next_call += 1;
        self.send(&ClientMessage::Call { id, service: service.into(), args }).await?;
        loop {
            let e = self.read_event().await?;
            match e {
                Event::Result { id: got, outcome } if got == id => {
                    return outcome.map_err(|e| ClientError::Service { code: e.code, reason: e.reason });
                }
                other => self.inbox.push_back(other),
            }
        }
    }

    /// Sets this client's presence (`Value::Null` clears it).
    pub async fn set_presence(&mut self, state: Value) -> Result<(), ClientError> {
        self.send(&ClientMessage::Presence { state }).await
    }

    /// The next event: one kept from earlier, or the next message from the server.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        match self.inbox.pop_front() {
            Some(e) => Ok(e),
            None => self.read_event().await,
        }
    }

    /// Reads events until the mirror reaches version `v`.
    pub async fn wait_for_version(&mut self, v: u64) -> Result<(), ClientError> {
        while self.mirror.version() < v {
            let e = self.read_event().await?;
            self.inbox.push_back(e);
        }
        Ok(())
    }

    /// Closes the connection normally.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws.close(None).await.map_err(|e| ClientError::Connection(e.to_string()))
    }

    async fn recv(&mut self) -> Result<ServerMessage, ClientError> {
        if let Some(m) = self.unbatched.pop_front() {
            return Ok(m);
        }
        loop {
            match self.ws.next().await {
                None => return Err(ClientError::Closed { code: 1006, reason: "connection lost".into() }),
                Some(Err(e)) => return Err(ClientError::Connection(e.to_string())),
                Some(Ok(Message::Text(t))) => {
                    match protocol::decode_server(&t).map_err(|e| ClientError::Protocol(e.to_string()))? {
                        ServerMessage::Batch { m } => {
                            self.unbatched.extend(m);
                            match self.unbatched.pop_front() {
                                Some(first) => return Ok(first),
                                None => continue,
                            }
                        }
                        other => return Ok(other),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) =
                        frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    return Err(ClientError::Closed { code, reason });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads one message, applies it to the mirror, and returns it as an event.
    async fn read_event(&mut self) -> Result<Event, ClientError> {
        let msg = self.recv().await?;
        Ok(match msg {
            ServerMessage::Update { v, origin, action, changes } => {
                if v != self.mirror.version() + 1 {
                    return Err(ClientError::Protocol(format!(
                        "update {v} after version {}: a gap",
                        self.mirror.version()
                    )));
                }
                for c in &changes {
                    self.mirror.apply(c).map_err(ClientError::Protocol)?;
                }
                self.mirror.set_version(v);
                Event::Update { v, origin, action, changes }
            }
            ServerMessage::Events { origin, action, changes, .. } => Event::Events { origin, action, changes },
            ServerMessage::Reject { action, code, reason, .. } => Event::Reject { action, code, reason },
            ServerMessage::Presence { client, state } => {
                if state.is_null() {
                    self.presence.remove(&client);
                } else {
                    self.presence.insert(client.clone(), state.clone());
                }
                Event::Presence { client, state }
            }
            ServerMessage::Result { id, ok, error } => Event::Result {
                id,
                outcome: match error {
                    Some(e) => Err(e),
                    None => Ok(ok.unwrap_or_default()),
                },
            },
            ServerMessage::Error { code, reason } => Event::Error { code, reason },
            ServerMessage::Welcome { .. } => return Err(ClientError::Protocol("a second welcome".into())),
            ServerMessage::Batch { .. } => return Err(ClientError::Protocol("a batch inside a batch".into())),
        })
    }
}
