//! The `objectsync` command: runs the server with the demo types and page.

use clap::{Parser, Subcommand};
use objectsync::{demo, Server};
use std::net::SocketAddr;
use std::path::PathBuf;

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
        /// Which types and rooms to serve: `demo` (the demo app) or `bench` (the benchmark's
        /// workload: rooms named `nodes-<N>` start with a graph of N nodes; no rate limits).
        #[arg(long, default_value = "demo")]
        preset: Preset,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Preset {
    Demo,
    Bench,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "objectsync=info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { bind, static_dir, preset } => serve(bind, static_dir, preset).await,
    }
}

async fn serve(bind: SocketAddr, static_dir: PathBuf, preset: Preset) -> anyhow::Result<()> {
    let server = match preset {
        Preset::Demo => Server::builder(demo::types()).on_room_create(|_, tx| demo::build_room(tx)),
        Preset::Bench => objectsync::bench_preset::builder(),
    }
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
