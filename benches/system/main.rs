//! System benchmark: the standard workloads against the real server binary in its own process,
//! side by side with a bare relay (also its own process), driven by lean clients that parse
//! every frame.
//!
//! `cargo bench --bench system -- all` runs everything (3 repetitions, medians and [min..max])
//! and writes `target/system-bench.md`. Without arguments (as `cargo test` runs it) it runs a
//! quick variant that only checks that every reader received every update.
//!
//! Every loop is bounded in count and time; all traffic is on 127.0.0.1.
//!
//! Modules: `process` (the server and relay processes, their memory and CPU), `relay` (the bare
//! relay), `client` (lean load clients and their messages), `workloads` (W1, W3, durable acks,
//! W5), `cluster` (three nodes on PostgreSQL and Redis beside one) and `report` (the quick check
//! and the full runs' markdown table).

mod client;
mod cluster;
// The tests' PostgreSQL and Redis servers, started the same way for the cluster rows.
#[allow(dead_code)]
#[path = "../../tests/it/databases.rs"]
mod databases;
mod process;
mod relay;
mod report;
mod workloads;

use std::time::Duration;

/// No single phase may take longer than this.
const PHASE_DEADLINE: Duration = Duration::from_secs(120);
/// Time for the server to finish closing a session before its memory is read.
const SETTLE: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("relay-server") {
        return relay::run_relay();
    }
    let mode = args.first().cloned().unwrap_or_else(|| "quick".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        match mode.as_str() {
            "quick" => report::quick().await,
            "all" | "w1" | "w3" | "w4" | "w5" | "dur" | "cluster" => report::full(&mode).await,
            other => panic!("unknown mode {other}: use quick, all, w1, w3, w4, w5, dur or cluster"),
        }
    });
}
