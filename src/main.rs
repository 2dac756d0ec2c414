//! The `objectsync` command: [`objectsync::cli`] with the bundled presets (`--preset demo`, the
//! default; `bench`, the benchmark's workload; `conformance`, every part of the protocol;
//! `cards-v1` to `cards-v3`, one application's types at three schema versions, with migrations).

use objectsync::ServerBuilder;
use std::process::ExitCode;

fn main() -> ExitCode {
    objectsync::cli::run_presets(&[
        ("demo", demo),
        ("bench", objectsync::presets::bench::builder),
        ("conformance", conformance),
        ("cards-v1", || objectsync::presets::cards::builder(1)),
        ("cards-v2", || objectsync::presets::cards::builder(2)),
        ("cards-v3", || objectsync::presets::cards::builder(3)),
    ])
}

/// The demo app (node graph, text, counters) with its page from `client-ts/demo/dist`.
fn demo() -> ServerBuilder {
    objectsync::presets::demo::server().static_dir("client-ts/demo/dist")
}

/// Every kind and hook of the protocol (docs/protocol.md, "Testing a client").
fn conformance() -> ServerBuilder {
    objectsync::presets::conformance::builder()
}
