//! The command line of a server, for one's own types and hooks: `serve`, `codegen`, `export`,
//! `import`, `migrate` (stored rooms brought to the types' schema version, or `--dry-run`
//! checked), with graceful shutdown on SIGINT and SIGTERM. An application's binary is a few
//! lines:
//!
//! ```no_run
//! use objectsync::model::TypeRegistry;
//! use objectsync::{sobject, Server};
//!
//! sobject! {
//!     /// A sticky note.
//!     pub struct Note: "Note" {
//!         text: Str,
//!         color: Str = "yellow",
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     objectsync::cli::run(|| {
//!         let mut types = TypeRegistry::new();
//!         types.register::<Note>();
//!         Server::builder(types).static_dir("dist")
//!     })
//! }
//! ```
//!
//! `my-app serve` then serves it with rooms in SQLite (`--data DIR`, default
//! [`DEFAULT_DATA_DIR`]) or in memory (`--memory`), over HTTPS and WSS with `--tls-cert FILE
//! --tls-key FILE`; `my-app codegen ts --out src/schema.ts` writes
//! its TypeScript classes and schema; `my-app export ROOM` and `my-app import ROOM FILE` copy a
//! room out of and into the data directory. `--limit NAME=VALUE` (repeatable) sets any field of
//! [`ServerLimits`] or [`ModelLimits`] by name. `--help`
//! lists the rest.
//!
//! Part of the default `cli` feature (it brings clap, anyhow and tracing-subscriber); a library
//! user who writes its own `main` can turn the feature off.

use crate::limits::{ModelLimits, ServerLimits};
use crate::room::{load_room, valid_room_name};
use crate::server::JwtAuth;
use crate::server::{ServerBuilder, StoreChoice};
use crate::store::{RoomSnapshot, SqliteStore, Store, StoredRoom, DEFAULT_DATA_DIR};
use crate::tls::TlsConfig;
use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Runs the command line for one application: `app` makes its server's builder (types, hooks,
/// limits, static files) and is called once per command. Returns the process's exit code; errors
/// are printed to stderr.
pub fn run(app: impl Fn() -> ServerBuilder) -> ExitCode {
    run_apps(&[("app", &app)])
}

/// A named application of [`run_presets`]: its name for `--preset` and the maker of its builder.
pub type Preset = (&'static str, fn() -> ServerBuilder);

/// Runs the command line for several named applications, chosen with `--preset NAME` (the first
/// is the default): how the `objectsync` binary serves its demo, benchmark and conformance
/// presets.
pub fn run_presets(presets: &[Preset]) -> ExitCode {
    let apps: Vec<(&'static str, &dyn Fn() -> ServerBuilder)> =
        presets.iter().map(|(name, f)| (*name, f as &dyn Fn() -> ServerBuilder)).collect();
    run_apps(&apps)
}

fn run_apps(apps: &[(&'static str, &dyn Fn() -> ServerBuilder)]) -> ExitCode {
    assert!(!apps.is_empty(), "objectsync::cli needs at least one application");
    let args = match parse(apps) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // Before any thread exists: the allocator's settings apply to the threads made after them.
    tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let app = apps
        .iter()
        .find(|(name, _)| *name == args.preset)
        .map(|(_, f)| *f)
        .expect("invariant: clap checked the preset");
    match runtime.block_on(execute(args.command, app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The parsed command line: the command and the chosen application.
struct Args {
    command: Command,
    preset: String,
}

fn parse(apps: &[(&'static str, &dyn Fn() -> ServerBuilder)]) -> Result<Args, clap::Error> {
    let names: Vec<&'static str> = apps.iter().map(|(name, _)| *name).collect();
    let bin = std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "objectsync".into());
    let preset = clap::Arg::new("preset")
        .long("preset")
        .global(true)
        .value_name("NAME")
        .help("Which application's types and hooks")
        .value_parser(clap::builder::PossibleValuesParser::new(names.clone()))
        .default_value(names[0])
        .hide(names.len() == 1);
    // The command's name in usage and errors is the binary's own (the application's).
    let cmd = Cli::command().bin_name(bin).arg(preset);
    let matches = cmd.try_get_matches()?;
    let preset = matches.get_one::<String>("preset").cloned().unwrap_or_else(|| names[0].to_owned());
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Args { command: cli.command, preset })
}

#[derive(Parser)]
#[command(version, about = "Real-time synchronized object trees")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start: the size of `serve`'s options costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Serve WebSocket rooms (at /ws/<room>), /healthz, /metrics, /types and static files.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8765")]
        bind: SocketAddr,
        /// Directory of static files served at / (instead of the application's own).
        #[arg(long = "static")]
        static_dir: Option<PathBuf>,
        #[command(flatten)]
        storage: Storage,
        #[command(flatten)]
        tls: Tls,
        #[command(flatten)]
        access: Access,
        /// Set a limit by its field name in ServerLimits or ModelLimits, e.g. `clients_max=500`
        /// or `frame_bytes_max=4MiB` (`server.` or `model.` in front where a name is in both).
        #[arg(long = "limit", value_name = "NAME=VALUE")]
        limits: Vec<String>,
        /// Milliseconds a service has to answer before the caller gets `timeout` (the same as
        /// `--limit service_timeout_ms=MS`).
        #[arg(long)]
        service_timeout_ms: Option<u64>,
    },
    /// Write the SObject types for TypeScript (`ts`: a class per type and the schema) or as
    /// JSON (`json`: every type's attributes with kind and default, as `GET /types` serves them),
    /// or the wire's constants for TypeScript (`protocol-ts`: close codes, error codes, limits).
    Codegen {
        /// `ts`, `json` or `protocol-ts`.
        #[arg(value_parser = ["ts", "json", "protocol-ts"])]
        language: String,
        /// The module the generated TypeScript imports the client from.
        #[arg(long, default_value = "objectsync-client")]
        import: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print a room (its document and known clients) as JSON, from the data directory.
    Export {
        /// The room.
        room: String,
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Print the stored rows as they are (snapshot text, log, clients), without loading the
        /// room: for a room that cannot be loaded.
        #[arg(long)]
        raw: bool,
    },
    /// Replace a room with a JSON file written by `export` (stop the server first).
    Import {
        /// The room.
        room: String,
        /// The JSON file.
        file: PathBuf,
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// Load every stored room and bring it to this build's schema version (the application's
    /// migrations), reporting each room: ok, what changed, or why it cannot be read. Stop the
    /// server and back the directory up first; with --dry-run nothing is written (and the
    /// server may run).
    Migrate {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Run the migrations in memory only and report; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args)]
struct Storage {
    /// Directory of the SQLite database (created if missing) [default: the application's store,
    /// or objectsync-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Keep rooms in memory only: nothing survives a restart.
    #[arg(long, conflicts_with = "data")]
    memory: bool,
    /// Keep rooms in PostgreSQL (`postgres://USER@HOST:PORT/DB`), shared with the other nodes
    /// given the same URL: each room is written by one node at a time, the one holding its
    /// lease (feature `postgres`).
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "URL", conflicts_with_all = ["data", "memory"])]
    postgres: Option<String>,
    /// This node's name among the nodes sharing --postgres [default: the host name and the
    /// process id].
    #[cfg(feature = "postgres")]
    #[arg(long, requires = "postgres")]
    node_id: Option<String>,
    /// How long a room's lease runs after this node's last renewal: after a crash, another node
    /// may take its rooms this long after it stopped renewing [default: 10000].
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "MS", requires = "postgres")]
    lease_ms: Option<u64>,
    /// How often this node renews its leases [default: 2000; keep it well under --lease-ms].
    #[cfg(feature = "postgres")]
    #[arg(long, value_name = "MS", requires = "postgres")]
    lease_renew_ms: Option<u64>,
    /// Redis (`redis://HOST:PORT`) through which the nodes sharing --postgres talk, so that any
    /// node accepts any client (feature `redis`).
    #[cfg(feature = "redis")]
    #[arg(long, value_name = "URL", requires = "postgres")]
    redis: Option<String>,
}

impl Storage {
    /// The PostgreSQL store the flags ask for, if they do.
    #[cfg(feature = "postgres")]
    async fn postgres(&self) -> anyhow::Result<Option<crate::store::PostgresStore>> {
        let Some(url) = &self.postgres else { return Ok(None) };
        let mut options = crate::store::PostgresOptions::new(self.node_id.clone().unwrap_or_else(default_node_id));
        options.lease_ms = self.lease_ms.unwrap_or(options.lease_ms);
        options.lease_renew_ms = self.lease_renew_ms.unwrap_or(options.lease_renew_ms);
        if options.lease_renew_ms >= options.lease_ms {
            return Err(anyhow!(
                "--lease-renew-ms {} must be under --lease-ms {}",
                options.lease_renew_ms,
                options.lease_ms
            ));
        }
        let store = crate::store::PostgresStore::connect(url, options).await?;
        tracing::info!(node = store.node_id(), "rooms are stored in PostgreSQL");
        Ok(Some(store))
    }

    /// The bus to the other nodes the flags ask for, as node `node`.
    #[cfg(feature = "redis")]
    async fn redis(&self, node: &str, limits: &ServerLimits) -> anyhow::Result<Option<Arc<crate::RedisBus>>> {
        let Some(url) = &self.redis else { return Ok(None) };
        let bus = crate::RedisBus::connect(url, node, limits).await.with_context(|| format!("--redis {url}"))?;
        tracing::info!(node, "this node talks to the others through Redis");
        Ok(Some(bus))
    }
}

/// The host name and the process id: unique among the nodes of one machine and of others.
#[cfg(feature = "postgres")]
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!("{}-{}", if host.is_empty() { "node" } else { host }, std::process::id())
}

#[derive(clap::Args)]
struct Tls {
    /// Serve HTTPS and WSS on --bind with this certificate chain (PEM: the server's certificate
    /// first, then any intermediates). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Who may connect: origins, trusted proxies, signed tokens.
#[derive(clap::Args)]
struct Access {
    /// A browser origin allowed besides the server's own (repeatable; `*` for any), e.g.
    /// `https://app.example.com`. Others are refused with HTTP 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A proxy (by IP address) whose X-Forwarded-For / Forwarded headers are believed
    /// (repeatable).
    #[arg(long = "trust-proxy", value_name = "IP")]
    trust_proxies: Vec<std::net::IpAddr>,
    /// Let in clients with a JWT signed with HS256 and the secret in FILE (replaces the
    /// application's auth hook; docs/operations.md, Security).
    #[arg(long, value_name = "FILE", group = "jwt")]
    jwt_hs256_secret_file: Option<PathBuf>,
    /// Let in clients with a JWT signed with RS256, verified with the public key in FILE (PEM).
    #[arg(long, value_name = "FILE", group = "jwt")]
    jwt_rs256_key: Option<PathBuf>,
    /// Let in clients with a JWT signed with ES256, verified with the public key in FILE (PEM).
    #[arg(long, value_name = "FILE", group = "jwt")]
    jwt_es256_key: Option<PathBuf>,
    /// Let in clients with a JWT verified with the key of the JWKS document in FILE named by the
    /// token's `kid`.
    #[arg(long, value_name = "FILE", group = "jwt")]
    jwks: Option<PathBuf>,
    /// Require this `iss` in tokens.
    #[arg(long, value_name = "ISSUER", requires = "jwt")]
    jwt_issuer: Option<String>,
    /// Require this `aud` in tokens.
    #[arg(long, value_name = "AUDIENCE", requires = "jwt")]
    jwt_audience: Option<String>,
}

impl Access {
    fn apply(self, mut builder: ServerBuilder) -> anyhow::Result<ServerBuilder> {
        if !self.allow_origins.is_empty() {
            builder = builder.allowed_origins(self.allow_origins);
        }
        if !self.trust_proxies.is_empty() {
            builder = builder.trust_proxies(self.trust_proxies);
        }
        let read = |path: &Path| std::fs::read(path).with_context(|| path.display().to_string());
        let file = |path: &Path, e: crate::server::KeyError| anyhow!("{}: {e}", path.display());
        let jwt = if let Some(path) = &self.jwt_hs256_secret_file {
            let secret = read(path)?;
            // A secret file usually ends with a newline that is not part of the secret.
            let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
            Some(JwtAuth::hs256(secret).map_err(|e| file(path, e))?)
        } else if let Some(path) = &self.jwt_rs256_key {
            Some(JwtAuth::rs256_pem(&read(path)?).map_err(|e| file(path, e))?)
        } else if let Some(path) = &self.jwt_es256_key {
            Some(JwtAuth::es256_pem(&read(path)?).map_err(|e| file(path, e))?)
        } else if let Some(path) = &self.jwks {
            let text = String::from_utf8(read(path)?).with_context(|| path.display().to_string())?;
            Some(JwtAuth::jwks(&text).map_err(|e| file(path, e))?)
        } else {
            None
        };
        if let Some(mut jwt) = jwt {
            if let Some(iss) = self.jwt_issuer {
                jwt = jwt.issuer(iss);
            }
            if let Some(aud) = self.jwt_audience {
                jwt = jwt.audience(aud);
            }
            builder = builder.authorize_jwt(jwt);
        }
        Ok(builder)
    }
}

async fn execute(command: Command, app: &dyn Fn() -> ServerBuilder) -> anyhow::Result<()> {
    match command {
        Command::Serve { bind, static_dir, storage, tls, access, limits, service_timeout_ms } => {
            // Before anything is opened: a wrong file fails the start at once, naming it.
            let tls = match (tls.tls_cert, tls.tls_key) {
                (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key)?),
                _ => None,
            };
            let mut builder = access.apply(app())?;
            for spec in &limits {
                set_limit(&mut builder.limits, &mut builder.model_limits, spec)
                    .map_err(|e| anyhow!("--limit {spec}: {e}"))?;
            }
            if let Some(ms) = service_timeout_ms {
                builder.limits.service_timeout_ms = ms;
            }
            if let Some(dir) = static_dir {
                builder.static_dir = Some(dir);
            }
            #[cfg(feature = "postgres")]
            if let Some(store) = storage.postgres().await? {
                #[cfg(feature = "redis")]
                if let Some(bus) = storage.redis(store.node_id(), &builder.limits).await? {
                    builder = builder.redis(bus);
                }
                builder = builder.store(Arc::new(store));
            }
            if storage.memory {
                builder = builder.in_memory();
            } else if let Some(data) = storage.data {
                let store = SqliteStore::open(&data)?;
                tracing::info!(path = %store.path().display(), "rooms are stored in SQLite");
                builder = builder.store(Arc::new(store));
            }
            serve(bind, builder, tls).await
        }
        Command::Codegen { language, import, out } => {
            let types = app().types;
            let text = match language.as_str() {
                "json" => crate::protocol::encode_types(&types) + "\n",
                "protocol-ts" => crate::codegen::protocol_typescript(),
                _ => crate::codegen::typescript(&types, &import),
            };
            match out {
                Some(path) => std::fs::write(&path, text).with_context(|| path.display().to_string())?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Export { room, data, raw: true } => {
            let raw = SqliteStore::read_raw(&data, &room)?;
            println!("{}", serde_json::to_string_pretty(&raw)?);
            Ok(())
        }
        Command::Export { room, data, raw: false } => export(&room, &data, app()).await,
        Command::Import { room, file, data } => import(&room, &file, &data, app()).await,
        Command::Migrate { data, dry_run } => migrate(&data, dry_run, app()).await,
    }
}

async fn serve(bind: SocketAddr, builder: ServerBuilder, tls: Option<TlsConfig>) -> anyhow::Result<()> {
    raise_fd_limit();
    if matches!(builder.store, StoreChoice::Default) {
        // `build` says where the default store is; say how to choose another.
        tracing::info!("--data DIR keeps rooms in another directory, --memory in memory only");
    }
    tracing::info!(
        schema_version = builder.types.schema_version(),
        fingerprint = builder.types.fingerprint(),
        "the application's types (clients built for other types are refused with 4009)"
    );
    let server = builder.build()?;
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    // Tests and scripts wait for this line to know the port (useful with --bind 127.0.0.1:0).
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{}", listener.local_addr()?);
    let stopper = server.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stopper.shutdown();
    });
    match tls {
        Some(tls) => server.serve_tls(listener, tls).await?,
        None => server.serve(listener).await?,
    }
    Ok(())
}

fn cannot_load(room: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}\nthe room cannot be loaded; `export --raw {room}` prints what is stored as it is")
}

async fn export(room: &str, data: &Path, builder: ServerBuilder) -> anyhow::Result<()> {
    let store = SqliteStore::open_for_reading(data)?;
    let stored = store
        .load(room)
        .await
        .map_err(|e| cannot_load(room, e))?
        .ok_or_else(|| anyhow!("no room {room:?} in {}", data.display()))?;
    let types = Arc::new(builder.types);
    let restored = load_room(&types, &builder.model_limits, room, stored).map_err(|e| cannot_load(room, e))?;
    let snapshot = RoomSnapshot {
        doc: restored.doc.snapshot(),
        clients: restored.clients,
        clients_floor: 0,
        schema: Some(types.schema()),
    };
    println!("{}", serde_json::to_string_pretty(&snapshot)?);
    Ok(())
}

async fn import(room: &str, file: &Path, data: &Path, builder: ServerBuilder) -> anyhow::Result<()> {
    if !valid_room_name(room) {
        bail!("bad room name {room:?}");
    }
    let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let snapshot: RoomSnapshot =
        crate::protocol::decode_trusted(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    if let Some(c) = snapshot.clients.iter().find(|c| c.last_action > crate::model::JSON_SAFE_INT_MAX) {
        bail!("{}: client {} has action id {} above 2^53 - 1", file.display(), c.id, c.last_action);
    }
    // Loaded as a stored room would be before replacing anything: the tree and its values
    // checked against the types and limits, versions in the JSON-safe range, and a snapshot of
    // an earlier schema version migrated (what is imported is what a load would make of it).
    let types = Arc::new(builder.types);
    let stored = StoredRoom { snapshot: Some(snapshot.clone()), log: Vec::new(), clients: Vec::new() };
    let restored = load_room(&types, &builder.model_limits, room, stored)
        .map_err(|e| anyhow!("{}: not a valid room: {e}", file.display()))?;
    let snapshot = RoomSnapshot {
        doc: restored.doc.snapshot(),
        clients: snapshot.clients,
        clients_floor: snapshot.clients_floor,
        schema: Some(types.schema()),
    };
    let store = SqliteStore::open(data)?;
    store.replace_room(room, &snapshot).await?;
    println!("imported room {room} at version {}", snapshot.doc.version);
    Ok(())
}

/// `migrate`: every stored room loaded (and migrated) as the server would load it, a line per
/// room; unless `dry_run`, each room whose snapshot does not record this build's types is stored
/// again (migrated). Fails if any room cannot be read, after reporting all of them.
async fn migrate(data: &Path, dry_run: bool, builder: ServerBuilder) -> anyhow::Result<()> {
    let store = if dry_run { SqliteStore::open_for_reading(data)? } else { SqliteStore::open(data)? };
    let types = Arc::new(builder.types);
    let mut rooms = store.rooms().await?;
    rooms.sort();
    let (mut failed, mut migrated) = (0usize, 0usize);
    for room in &rooms {
        let outcome = match store.load(room).await {
            Ok(Some(stored)) => load_room(&types, &builder.model_limits, room, stored),
            Ok(None) => continue,
            Err(e) => Err(e),
        };
        let restored = match outcome {
            Ok(restored) => restored,
            Err(e) => {
                failed += 1;
                println!("{room}: error: {e}");
                continue;
            }
        };
        let saved = match restored.snapshot_to_store(&types) {
            Some((snapshot, compact_to)) if !dry_run => {
                store.save_snapshot(room, &snapshot, compact_to).await.map(|()| true)
            }
            _ => Ok(false),
        };
        if let Err(e) = saved {
            failed += 1;
            println!("{room}: error: {e}");
            continue;
        }
        let verb = if dry_run { "would migrate" } else { "migrated" };
        match &restored.migrated {
            Some(m) => {
                migrated += 1;
                println!(
                    "{room}: {verb} from schema version {} to {}: {} objects changed, {} removed, {} added",
                    m.from, m.to, m.changed, m.removed, m.added
                );
            }
            None => println!("{room}: ok, at schema version {}", types.schema_version()),
        }
    }
    match dry_run {
        true => {
            println!("{} rooms: {migrated} to migrate, {failed} that cannot be read (nothing written)", rooms.len())
        }
        false => println!("{} rooms: {migrated} migrated, {failed} that cannot be read", rooms.len()),
    }
    if failed > 0 {
        bail!("{failed} of {} rooms cannot be read with these types", rooms.len());
    }
    Ok(())
}

/// Applies `NAME=VALUE` to the limits: `NAME` is a field of [`ServerLimits`] or
/// [`ModelLimits`] (prefixed `server.` or `model.` where it is in both), `VALUE` a whole number
/// with an optional `KiB`, `MiB` or `GiB` and `_` between digits.
fn set_limit(server: &mut ServerLimits, model: &mut ModelLimits, spec: &str) -> Result<(), String> {
    let (name, value) = spec.split_once('=').ok_or("expected NAME=VALUE")?;
    let value = parse_amount(value.trim())?;
    let (scope, field) = match name.trim().split_once('.') {
        Some((scope @ ("server" | "model"), field)) => (Some(scope), field),
        Some(_) => return Err(format!("unknown limit {name:?}")),
        None => (None, name.trim()),
    };
    let in_server = has_field(server, field);
    let in_model = has_field(model, field);
    match (scope, in_server, in_model) {
        (Some("server") | None, true, false) | (Some("server"), true, true) => set_field(server, field, value),
        (Some("model") | None, false, true) | (Some("model"), true, true) => set_field(model, field, value),
        (None, true, true) => {
            Err(format!("{field} is a server and a model limit: say server.{field} or model.{field}"))
        }
        _ => Err(format!(
            "unknown limit {name:?}; the limits are the fields of ServerLimits ({}) and ModelLimits ({})",
            field_names(server).join(", "),
            field_names(model).join(", ")
        )),
    }
}

/// A whole number with an optional binary unit: `4096`, `16MiB`, `1_000_000`.
fn parse_amount(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?} (KiB, MiB or GiB)")),
    };
    let n: u64 = digits.trim().replace('_', "").parse().map_err(|_| format!("{text:?} is not a whole number"))?;
    n.checked_mul(scale).ok_or_else(|| format!("{text} is too large"))
}

/// The field names of a limits struct, sorted.
fn field_names<T: Serialize>(limits: &T) -> Vec<String> {
    match serde_json::to_value(limits) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => unreachable!("invariant: limits serialize to an object of numbers"),
    }
}

/// Whether the limits struct has a field `name`.
fn has_field<T: Serialize>(limits: &T, name: &str) -> bool {
    field_names(limits).iter().any(|f| f == name)
}

/// Sets the field `name` of a limits struct to `value`.
fn set_field<T: Serialize + DeserializeOwned>(limits: &mut T, name: &str, value: u64) -> Result<(), String> {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(&*limits) else {
        unreachable!("invariant: limits serialize to an object of numbers")
    };
    if !fields.contains_key(name) {
        return Err(format!("unknown limit {name:?}"));
    }
    fields.insert(name.to_owned(), value.into());
    *limits = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|_| format!("{value} does not fit {name}"))?;
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: every client holds a socket.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Tunes glibc's allocator for a long-running server: allocations of 128 KiB and more (a big
/// room's welcome, its snapshot) get their own mappings, returned to the system when freed.
/// glibc raises this threshold by itself after such a block is freed, and then keeps every
/// later one in its heap after use: a server that sent one large welcome stayed larger by its
/// size.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is called before the server
    // starts its threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        // Fixing the threshold above also fixes the heap's automatic trim at 128 KiB, which with
        // thousands of sessions shrinks and regrows the heaps (mprotect, page faults) all the
        // time; trim only past 4 MiB of free top (explicit trims ignore this).
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_set_by_name_with_units_and_scopes() {
        let (mut s, mut m) = (ServerLimits::default(), ModelLimits::default());
        set_limit(&mut s, &mut m, "clients_max=3").expect("set");
        set_limit(&mut s, &mut m, "outbound_bytes_max = 2MiB").expect("set");
        set_limit(&mut s, &mut m, "undo_steps_max=1_000").expect("set");
        set_limit(&mut s, &mut m, "model.action_changes_max=7").expect("set");
        set_limit(&mut s, &mut m, "server.action_changes_max=9").expect("set");
        assert_eq!((s.clients_max, s.outbound_bytes_max, s.action_changes_max), (3, 2 << 20, 9));
        assert_eq!((m.undo_steps_max, m.action_changes_max), (1000, 7));
    }

    #[test]
    fn a_bad_limit_says_what_is_wrong() {
        let (mut s, mut m) = (ServerLimits::default(), ModelLimits::default());
        let err = |spec: &str| set_limit(&mut s.clone(), &mut m.clone(), spec).expect_err(spec);
        assert!(err("clients").contains("NAME=VALUE"));
        assert!(err("client_max=3").contains("unknown limit") && err("client_max=3").contains("clients_max"));
        assert!(err("action_changes_max=3").contains("model.action_changes_max"));
        assert!(err("clients_max=-1").contains("not a whole number"));
        assert!(err("clients_max=3MB").contains("unknown unit"));
        assert!(err("frame_bytes_max=99999999999GiB").contains("too large"));
        assert!(err("other.clients_max=3").contains("unknown limit"));
        set_limit(&mut s, &mut m, "clients_max=5").expect("set");
        assert_eq!(s.clients_max, 5);
    }
}
