//! Mounting ObjectSync in an existing axum app: the app keeps its own routes, and the sync
//! server lives under `/sync` (WebSocket rooms at `/sync/ws/<room>`).
//!
//! Run: `cargo run --example embed_axum` then open a WebSocket to
//! `ws://127.0.0.1:3000/sync/ws/demo`.

use axum::routing::get;
use axum::Router;
use objectsync::presets::demo;
use objectsync::Server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Rooms are kept in SQLite in ./objectsync-data (the default store).
    let sync = Server::builder(demo::types())
        .on_room_create(|_, tx| demo::build_room(tx))
        .build()
        .map_err(std::io::Error::other)?;
    let app = Router::new().route("/", get(|| async { "my app" })).nest("/sync", sync.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
