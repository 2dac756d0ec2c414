//! The `objectsync` command: runs the server with the demo types and page.

use clap::{Parser, Subcommand};
use objectsync::demo;
use objectsync::store::{MemoryStore, RoomSnapshot, SqliteStore, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "objectsync", version, about = "Real-time synchronized object trees")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket rooms (at /ws/<room>), /healthz, /metrics and the demo page.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8765")]
        bind: SocketAddr,
        /// Directory of static files served at / (the demo page).
        #[arg(long = "static", default_value = "client-ts/demo/dist")]
        static_dir: PathBuf,
        /// Which types and rooms to serve: `demo` (the demo app), `bench` (the benchmark's
        /// workload: rooms named `nodes-<N>` start with a graph of N nodes; no rate limits) or
        /// `conformance` (every kind and hook of the protocol, see docs/protocol.md).
        #[arg(long, default_value = "demo")]
        preset: Preset,
        #[command(flatten)]
        storage: Storage,
        /// Milliseconds a service has to answer before the caller gets `timeout`.
        #[arg(long, default_value_t = objectsync::ServerLimits::default().service_timeout_ms)]
        service_timeout_ms: u64,
    },
    /// Write TypeScript declarations of the SObject types (a class per type with typed getters).
    Codegen {
        /// `ts` (a class per type) or `json` (every type's attributes with kind and default, as
        /// `GET /types` serves them).
        #[arg(value_parser = ["ts", "json"])]
        language: String,
        /// Which types.
        #[arg(long, default_value = "demo")]
        preset: Preset,
        /// The module the generated code imports the client from.
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
        #[arg(long, default_value = "objectsync-data")]
        data: PathBuf,
        /// The types of the rooms stored there.
        #[arg(long, default_value = "demo")]
        preset: Preset,
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
        #[arg(long, default_value = "objectsync-data")]
        data: PathBuf,
        /// The types of the rooms stored there.
        #[arg(long, default_value = "demo")]
        preset: Preset,
    },
}

#[derive(clap::Args)]
struct Storage {
    /// Directory of the SQLite database (created if missing).
    #[arg(long, default_value = "objectsync-data")]
    data: PathBuf,
    /// Keep rooms in memory only: nothing survives a restart.
    #[arg(long, conflicts_with = "data")]
    memory: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Preset {
    Demo,
    Bench,
    Conformance,
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists: the allocator's settings apply to the threads made after them.
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "objectsync=info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { bind, static_dir, preset, storage, service_timeout_ms } => {
            serve(bind, static_dir, preset, storage, service_timeout_ms).await
        }
        Command::Codegen { language, preset, import, out } => {
            let ts = match language.as_str() {
                "json" => objectsync::protocol::encode_types(&types(preset)) + "\n",
                _ => objectsync::codegen::typescript(&types(preset), &import),
            };
            match out {
                Some(path) => std::fs::write(&path, ts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => print!("{ts}"),
            }
            Ok(())
        }
        Command::Export { room, data, preset, raw: false } => export(&room, &data, preset).await,
        Command::Export { room, data, raw: true, .. } => {
            let raw = SqliteStore::read_raw(&data, &room)?;
            println!("{}", serde_json::to_string_pretty(&raw)?);
            Ok(())
        }
        Command::Import { room, file, data, preset } => import(&room, &file, &data, preset).await,
    }
}

fn types(preset: Preset) -> objectsync::model::TypeRegistry {
    match preset {
        Preset::Demo => demo::types(),
        Preset::Bench => objectsync::bench_preset::types(),
        Preset::Conformance => objectsync::conformance_preset::types(),
    }
}

async fn export(room: &str, data: &Path, preset: Preset) -> anyhow::Result<()> {
    let store = SqliteStore::open_for_reading(data)?;
    let stored = store
        .load(room)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\nthe room cannot be loaded; `objectsync export --raw {room}` prints what is stored as it is"
            )
        })?
        .ok_or_else(|| anyhow::anyhow!("no room {room:?} in {}", data.display()))?;
    let types = Arc::new(types(preset));
    let (doc, clients, _) = objectsync::server::load_room(&types, &Default::default(), room, stored).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthe room cannot be loaded; `objectsync export --raw {room}` prints what is stored as it is"
        )
    })?;
    let snapshot = RoomSnapshot { doc: doc.snapshot(), clients, clients_floor: 0 };
    println!("{}", serde_json::to_string_pretty(&snapshot)?);
    Ok(())
}

async fn import(room: &str, file: &Path, data: &Path, preset: Preset) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let snapshot: RoomSnapshot =
        objectsync::protocol::decode_trusted(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // Check it as thoroughly as a load would before replacing anything: the tree and its
    // values against the types and limits, versions and action ids in the JSON-safe range.
    objectsync::model::Document::from_snapshot(Arc::new(types(preset)), Default::default(), snapshot.doc.clone())
        .map_err(|e| anyhow::anyhow!("{}: not a valid room: {e}", file.display()))?;
    if let Some(c) = snapshot.clients.iter().find(|c| c.last_action > objectsync::model::JSON_SAFE_INT_MAX) {
        anyhow::bail!("{}: client {} has action id {} above 2^53 - 1", file.display(), c.id, c.last_action);
    }
    if !objectsync::server::valid_room_name(room) {
        anyhow::bail!("bad room name {room:?}");
    }
    let store = SqliteStore::open(data)?;
    store.replace_room(room, &snapshot).await?;
    println!("imported room {room} at version {}", snapshot.doc.version);
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

async fn serve(
    bind: SocketAddr,
    static_dir: PathBuf,
    preset: Preset,
    storage: Storage,
    service_timeout_ms: u64,
) -> anyhow::Result<()> {
    raise_fd_limit();
    let store: Arc<dyn Store> = if storage.memory {
        Arc::new(MemoryStore::default())
    } else {
        let store = SqliteStore::open(&storage.data)?;
        tracing::info!(path = %store.path().display(), "rooms are stored in SQLite");
        Arc::new(store)
    };
    let server = match preset {
        Preset::Demo => demo::server(),
        Preset::Bench => objectsync::bench_preset::builder(),
        Preset::Conformance => objectsync::conformance_preset::builder(),
    }
    .service_timeout_ms(service_timeout_ms)
    .store(store)
    .static_dir(static_dir)
    .build();
    let listener = tokio::net::TcpListener::bind(bind).await?;
    // Tests and scripts wait for this line to know the port (useful with --bind 127.0.0.1:0).
    println!("listening on http://{}", listener.local_addr()?);
    let stopper = server.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stopper.shutdown();
    });
    server.serve(listener).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
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
