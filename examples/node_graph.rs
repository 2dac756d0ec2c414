//! The node-graph editor's server, as user code would write it: the demo's `Graph`/`Node`/`Edge`
//! types (a node must stay on the canvas; an edge cannot connect a node to itself; an edge whose
//! node is deleted goes too), each room built with a graph, and the editor's page, behind the
//! whole command line of [`objectsync::cli`] (`serve` with SQLite by default, `codegen`,
//! `export`, `import`, graceful shutdown). This is what `objectsync serve` runs.
//!
//! Run: `(cd client-ts && npm ci && npm run build:demo)`, then
//! `cargo run --example node_graph -- serve --bind 127.0.0.1:8767 --data objectsync-data/node-graph-example`,
//! and open http://127.0.0.1:8767/ in two windows. `cargo run --example node_graph -- --help`
//! lists the commands.

use std::process::ExitCode;

fn main() -> ExitCode {
    objectsync::cli::run(|| objectsync::presets::demo::server().static_dir("client-ts/demo/dist"))
}
