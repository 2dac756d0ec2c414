//! The server: configuration and hooks ([`ServerBuilder`]), the axum router (WebSocket rooms at
//! `/ws/<room>`, `/healthz`, `/metrics`, static files) and graceful shutdown. Rooms are found,
//! loaded and unloaded by the room registry (`crate::room`), which the server only asks.
//!
//! The router can be served by [`Server::serve`] or mounted in an existing axum app
//! ([`Server::router`]).

mod admission;
mod auth;
mod jwt;
mod listener;
mod session;
mod websocket;

pub use auth::{AuthRequest, Grant};
pub use jwt::{JwtAuth, KeyError};

use crate::limits::{ModelLimits, ServerLimits};
use crate::metrics::Metrics;
use crate::model::{Identity, ModelError, Tx, TypeRegistry, Value};
use crate::room::{self, valid_room_name, ClientId, Loader, Registry, RoomHandle, RoomInitFn, ServerError};
use crate::store::{MemoryStore, SqliteStore, Store, StoreError};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bytes read from a socket at once (messages are small; large ones take several reads).
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Bytes queued on a socket before tungstenite writes them out without waiting for a flush.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// A boxed future, as hooks return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A service call as a service handler sees it.
#[derive(Clone, Debug)]
pub struct ServiceCall {
    /// The caller's room, to read or change it.
    pub room: RoomHandle,
    /// The caller's client id.
    pub client: ClientId,
    /// Who the caller is (the auth hook's word); `None` for an anonymous client.
    pub identity: Option<Arc<Identity>>,
    /// The call's arguments.
    pub args: Value,
}

type AuthFn = Arc<dyn Fn(AuthRequest) -> BoxFuture<Result<Grant, String>> + Send + Sync>;
type ServiceFn = Arc<dyn Fn(ServiceCall) -> BoxFuture<Result<Value, String>> + Send + Sync>;

/// Why [`ServerBuilder::build`] could not make a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The default store (SQLite in [`DEFAULT_DATA_DIR`](crate::store::DEFAULT_DATA_DIR)) could
    /// not be opened.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The model limits accept documents whose JSON the server could not read back
    /// ([`ModelLimits::json_depth_max`] above
    /// [`TRUSTED_JSON_DEPTH_MAX`](crate::protocol::TRUSTED_JSON_DEPTH_MAX)): such a room would
    /// be accepted and then fail to load.
    #[error(
        "model limits tree_depth_max {tree_depth_max} and value_depth_max {value_depth_max} allow JSON {json_depth} levels deep; the server reads {}",
        crate::protocol::TRUSTED_JSON_DEPTH_MAX
    )]
    TooDeep {
        /// The limit.
        tree_depth_max: usize,
        /// The limit.
        value_depth_max: usize,
        /// The JSON depth they allow.
        json_depth: usize,
    },
    /// A server limit cannot work ([`ServerLimits::invalid`]).
    #[error("limit {name}: {why}")]
    BadLimit {
        /// The limit.
        name: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// Where a server keeps its rooms.
pub(crate) enum StoreChoice {
    /// SQLite in [`DEFAULT_DATA_DIR`](crate::store::DEFAULT_DATA_DIR), opened by `build`.
    Default,
    /// The one given.
    Given(Arc<dyn Store>),
}

/// Configures a [`Server`].
pub struct ServerBuilder {
    pub(crate) types: TypeRegistry,
    pub(crate) limits: ServerLimits,
    pub(crate) model_limits: ModelLimits,
    auth: Option<AuthFn>,
    room_init: Option<RoomInitFn>,
    services: HashMap<String, ServiceFn>,
    pub(crate) static_dir: Option<PathBuf>,
    pub(crate) store: StoreChoice,
    origins: auth::AllowedOrigins,
    trusted_proxies: Vec<IpAddr>,
    cluster: Option<Arc<dyn crate::cluster::Bus>>,
}

impl ServerBuilder {
    /// Browser origins allowed to open connections besides the server's own (`Origin` headers
    /// such as `"https://app.example.com"`; `"*"` allows any). By default a browser page of
    /// another origin is refused (HTTP 403): with cookie authentication, any page the user
    /// visits could otherwise open a connection in the user's name (cross-site WebSocket
    /// hijacking). Clients that are not browsers send no `Origin` and are not concerned.
    pub fn allowed_origins<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        let list: Vec<String> = origins.into_iter().map(Into::into).collect();
        self.origins = if list.iter().any(|o| o == "*") {
            auth::AllowedOrigins::Any
        } else {
            auth::AllowedOrigins::List(list.into_iter().map(|o| o.trim_end_matches('/').to_owned()).collect())
        };
        self
    }
    /// Proxies (by address) whose `X-Forwarded-For` / `Forwarded` headers are believed: a
    /// connection from one of them counts as coming from the address it forwarded, for
    /// [`AuthRequest::remote`] and the per-address limit. Connections from anywhere else are
    /// taken at their TCP address, whatever headers they send.
    pub fn trust_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies = proxies.into_iter().collect();
        self
    }
    /// Where rooms are stored: loaded from when first joined, written to with every accepted
    /// change, saved to when unloaded or at shutdown. The default is a [`SqliteStore`] in
    /// [`DEFAULT_DATA_DIR`](crate::store::DEFAULT_DATA_DIR), opened by [`build`](Self::build).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = StoreChoice::Given(store);
        self
    }
    /// Makes this server a node of a cluster: with a store shared by the nodes (PostgreSQL),
    /// any node accepts any client, whose messages go to the node holding its room over
    /// `bus` (docs/scaling.md).
    #[cfg(feature = "redis")]
    pub fn redis(mut self, bus: Arc<crate::cluster::RedisBus>) -> Self {
        self.cluster = Some(bus);
        self
    }
    /// Keeps rooms in memory only ([`MemoryStore`]): nothing survives a restart. For tests,
    /// examples and ephemeral rooms.
    pub fn in_memory(self) -> Self {
        self.store(Arc::new(MemoryStore::default()))
    }
    /// Server limits (frame size, rates, queues, rooms...).
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Time a service has to answer (keeps the other limits).
    pub fn service_timeout_ms(mut self, ms: u64) -> Self {
        self.limits.service_timeout_ms = ms;
        self
    }
    /// Model limits for every room's document.
    pub fn model_limits(mut self, limits: ModelLimits) -> Self {
        self.model_limits = limits;
        self
    }
    /// Decides who may join which room, as whom, and with what rights: asked with the upgrade
    /// request (headers and cookies, path, query, the client's address) and the `hello`
    /// token, it answers a [`Grant`] (an identity, read-only, an expiry) or a refusal, which
    /// closes the connection with 4001 and the reason. Without it, everyone may join every
    /// room, anonymous and read-write. [`jwt::JwtAuth`] is one ready to use.
    pub fn authorize<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, String>> + Send + 'static,
    {
        self.auth = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }
    /// Lets in clients with a valid signed token ([`jwt::JwtAuth`]), as the user its claims
    /// name, in the rooms they open.
    pub fn authorize_jwt(self, jwt: jwt::JwtAuth) -> Self {
        self.authorize(move |req| {
            let verdict = jwt.verify(&req);
            async move { verdict }
        })
    }
    /// Builds a new room's initial tree (runs once per room, as a server transaction); an error
    /// refuses the room (clients get close code 4002).
    pub fn on_room_create(
        mut self,
        f: impl Fn(&str, &mut Tx<'_>) -> Result<(), ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.room_init = Some(Arc::new(f));
        self
    }
    /// Registers a service clients can `call`.
    pub fn service<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(ServiceCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        self.services.insert(name.to_owned(), Arc::new(move |call| Box::pin(f(call))));
        self
    }
    /// Serves files from `dir` at `/` (the demo page).
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }
    /// The server, with its store opened (the default SQLite store is opened here).
    ///
    /// # Errors
    ///
    /// If the default store cannot be opened (another server holds it, the disk refuses, the
    /// data is damaged), if the model limits accept documents the server could not read back,
    /// or if a server limit cannot work.
    pub fn build(self) -> Result<Server, BuildError> {
        let cluster = self.cluster.clone().map(|bus| room::ClusterLink { bus, calls: Arc::default() });
        if self.model_limits.json_depth_max() > crate::protocol::TRUSTED_JSON_DEPTH_MAX {
            return Err(BuildError::TooDeep {
                tree_depth_max: self.model_limits.tree_depth_max,
                value_depth_max: self.model_limits.value_depth_max,
                json_depth: self.model_limits.json_depth_max(),
            });
        }
        if let Some((name, why)) = self.limits.invalid() {
            return Err(BuildError::BadLimit { name, why });
        }
        let store: Arc<dyn Store> = match self.store {
            StoreChoice::Given(store) => store,
            StoreChoice::Default => {
                let store = SqliteStore::open(std::path::Path::new(crate::store::DEFAULT_DATA_DIR))?;
                tracing::info!(path = %store.path().display(), "rooms are stored in SQLite");
                Arc::new(store)
            }
        };
        // A restarted room rebuilds text and list histories from its stored log, which keeps
        // `room_log_versions_max` versions: a running room must not reach further back.
        let mut model_limits = self.model_limits;
        model_limits.text_history_versions_max =
            model_limits.text_history_versions_max.min(self.limits.room_log_versions_max as u64);
        let outbound = room::OutboundBudget::new(self.limits.outbound_bytes_max);
        let types = Arc::new(self.types);
        let limits = Arc::new(self.limits);
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let loader =
            Loader { types: types.clone(), model_limits, room_init: self.room_init, store, metrics: metrics.clone() };
        let rooms = Arc::new(Registry::new(loader, limits.clone(), shutdown.clone(), tasks.clone(), cluster.clone()));
        let server = Server {
            inner: Arc::new(Inner {
                types,
                limits,
                auth: self.auth,
                services: self.services,
                static_dir: self.static_dir,
                rooms,
                metrics,
                origins: self.origins,
                trusted_proxies: self.trusted_proxies,
                admission: admission::Admission::default(),
                clients: AtomicUsize::new(0),
                outbound,
                shutdown,
                tasks,
            }),
        };
        if let Some(cluster) = cluster {
            // Calls of clients on other nodes run here, like those of this node's clients.
            let inner = Arc::downgrade(&server.inner);
            let calls: room::CallHandler = Arc::new(move |request| {
                if let Some(inner) = inner.upgrade() {
                    session::run_service(&inner, request);
                }
            });
            let _ = cluster.calls.set(calls);
        }
        Ok(server)
    }
}

pub(crate) struct Inner {
    pub(crate) types: Arc<TypeRegistry>,
    pub(crate) limits: Arc<ServerLimits>,
    auth: Option<AuthFn>,
    pub(crate) services: HashMap<String, ServiceFn>,
    static_dir: Option<PathBuf>,
    /// The rooms: loaded, found again and unloaded there, each room on its own.
    pub(crate) rooms: Arc<Registry>,
    pub(crate) metrics: Arc<Metrics>,
    origins: auth::AllowedOrigins,
    trusted_proxies: Vec<IpAddr>,
    /// Connections per address and per user, and each user's message rate.
    pub(crate) admission: admission::Admission,
    pub(crate) clients: AtomicUsize,
    /// Bytes queued to every session, against `outbound_bytes_max`.
    pub(crate) outbound: Arc<room::OutboundBudget>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

/// An ObjectSync server. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("types", &self.inner.types).finish()
    }
}

impl Server {
    /// Starts configuring a server for these SObject types.
    pub fn builder(types: TypeRegistry) -> ServerBuilder {
        ServerBuilder {
            types,
            limits: ServerLimits::default(),
            model_limits: ModelLimits::default(),
            auth: None,
            room_init: None,
            services: HashMap::new(),
            static_dir: None,
            store: StoreChoice::Default,
            origins: auth::AllowedOrigins::default(),
            trusted_proxies: Vec::new(),
            cluster: None,
        }
    }

    /// The axum router: `GET /ws/{room}` (WebSocket), `/healthz`, `/metrics`, `/types` (the
    /// registered types with their attribute kinds and defaults, as JSON), and static files
    /// at `/` if configured. Mount it in an existing app with `Router::merge` or `nest`.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route("/ws/{room}", get(ws_handler))
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics_handler))
            .route("/types", get(types_handler))
            .with_state(self.inner.clone());
        if let Some(dir) = &self.inner.static_dir {
            router = router.fallback_service(tower_http::services::ServeDir::new(dir));
        }
        router
    }

    /// The room named `name`, created (and built by the room hook) if it is not loaded.
    pub async fn room(&self, name: &str) -> Result<RoomHandle, ServerError> {
        self.inner.rooms.room(name).await
    }

    /// Serves on `listener` until [`shutdown`](Self::shutdown) (or the token's cancellation),
    /// then closes every session with 1001 and waits for them (at most 5 s).
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_on(listener, None).await
    }

    /// Serves on `listener` (with TLS if given) until shutdown, then waits for the sessions.
    async fn serve_on(
        &self,
        listener: tokio::net::TcpListener,
        tls: Option<crate::tls::TlsConfig>,
    ) -> std::io::Result<()> {
        let header_timeout = Duration::from_millis(self.inner.limits.http_header_timeout_ms);
        let r = listener::accept_loop(
            listener,
            self.router(),
            header_timeout,
            tls,
            self.inner.shutdown.clone(),
            self.inner.tasks.clone(),
        )
        .await;
        self.inner.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tasks.wait()).await;
        self.inner.rooms.clear();
        r
    }

    /// Starts a graceful shutdown: stop accepting, close sessions with "going away".
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        self.inner.metrics.outbound_bytes.set(i64::try_from(self.inner.outbound.bytes()).unwrap_or(i64::MAX));
        self.inner.metrics.render()
    }
}

impl Inner {
    pub(crate) async fn authorize(&self, req: AuthRequest) -> Result<Grant, String> {
        match &self.auth {
            Some(f) => f(req).await,
            None => Ok(Grant::default()),
        }
    }
}

async fn ws_handler(State(inner): State<Arc<Inner>>, Path(room): Path<String>, req: Request) -> Response {
    if !valid_room_name(&room) {
        return (StatusCode::NOT_FOUND, "bad room name").into_response();
    }
    if !inner.origins.allows(req.headers()) {
        let origin = req.headers().get(axum::http::header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("?");
        tracing::warn!(%origin, %room, "refused a cross-origin connection (see ServerBuilder::allowed_origins, serve --allow-origin)");
        return (StatusCode::FORBIDDEN, "this origin may not connect").into_response();
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let upgrade_request = auth::AuthRequest {
        room: room.clone(),
        token: None,
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        headers: req.headers().clone(),
        remote: auth::client_address(peer, req.headers(), &inner.trusted_proxies),
        peer,
    };
    let upgrade = match websocket::Upgrade::from_request(req) {
        Ok(u) => u,
        Err(refusal) => return refusal.into_response(),
    };
    let frame_max = inner.limits.frame_bytes_max;
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(frame_max))
        .max_frame_size(Some(frame_max))
        // The default 128 KiB read buffer is zeroed for every read: with thousands of sockets
        // sending small messages that memset was the server's largest cost (W5).
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write out once this much is queued (a burst of small updates stays one write; a large
        // message goes out fragment by fragment instead of growing the buffer to its size).
        .write_buffer_size(WRITE_BUFFER_BYTES);
    upgrade.accept(config, move |socket| {
        let tracker = inner.tasks.clone();
        async move {
            tracker.track_future(session::run(socket, upgrade_request, inner)).await;
        }
    })
}

async fn types_handler(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    ([("content-type", "application/json")], crate::protocol::encode_types(&inner.types))
}

async fn metrics_handler(State(inner): State<Arc<Inner>>) -> impl IntoResponse {
    inner.metrics.outbound_bytes.set(i64::try_from(inner.outbound.bytes()).unwrap_or(i64::MAX));
    ([("content-type", "text/plain; version=0.0.4")], inner.metrics.render())
}
