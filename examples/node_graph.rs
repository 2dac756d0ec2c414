//! The node-graph editor's server, as user code would write it: the demo's `Graph`/`Node`/`Edge`
//! types (a node must stay on the canvas; an edge cannot connect a node to itself; an edge whose
//! node is deleted goes too), each room built with a graph, durable storage, and the editor's
//! page. This is what `objectsync serve` runs.
//!
//! Run: `(cd client-ts && npm ci && npm run build:demo)`, then
//! `cargo run --example node_graph`, and open http://127.0.0.1:8767/ in two windows.

use objectsync::demo;
use objectsync::store::SqliteStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = SqliteStore::open(std::path::Path::new("objectsync-data/node-graph-example"))?;
    let server = demo::server().store(Arc::new(store)).static_dir("client-ts/demo/dist").build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8767").await?;
    println!("listening on http://{}", listener.local_addr()?);
    let stopper = server.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stopper.shutdown();
    });
    server.serve(listener).await?;
    Ok(())
}
