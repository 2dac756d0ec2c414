//! The cluster rows: three nodes of the server binary on one PostgreSQL and one Redis (started
//! here like the tests start them), measured beside one node of the same cluster in the same
//! run: W1 with every reader on the node holding the room, and with the readers spread over the
//! three nodes (the writer on the holder); durable acks with PostgreSQL beside SQLite; and the
//! failover pause, from the SIGKILL of the room's holder until a client of another node has its
//! next action acknowledged.

use crate::client::{action_text, join, Target};
use crate::databases::{Postgres, Redis};
use crate::process::Proc;
use crate::report::{median_range, ratio, REPS};
use crate::workloads::{durable_acks, fan_out};
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The lease of the cluster's nodes (and its renewal): the failover pause is measured against it.
const LEASE_MS: u64 = 2000;
const LEASE_RENEW_MS: u64 = 400;
/// Failover trials.
const FAILOVER_TRIALS: usize = 5;

fn node(db: &str, redis: &Redis, name: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_objectsync"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--preset", "bench", "--static", "/nonexistent"])
        .args(["--postgres", db, "--node-id", name, "--redis", &redis.url()])
        .args(["--lease-ms", &LEASE_MS.to_string(), "--lease-renew-ms", &LEASE_RENEW_MS.to_string()]);
    Proc::start(cmd)
}

fn three(db: &str, redis: &Redis) -> Vec<Proc> {
    (1..=3).map(|i| node(db, redis, &format!("node-{i}"))).collect()
}

/// The rows of the table.
pub(crate) async fn rows() -> Vec<String> {
    let pg = Postgres::start().await;
    let redis = Redis::start().await;
    let mut lines = Vec::new();
    for (label, pace) in [("W1 burst (2,000 x 50 readers)", None), ("W1 paced 1,000/s", Some(1000))] {
        let (mut one_rate, mut one_p99, mut three_rate, mut three_p99) = (vec![], vec![], vec![], vec![]);
        for rep in 0..REPS {
            let db = pg.database().await;
            let nodes = three(&db, &redis);
            let at: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
            let one = fan_out(Target::ObjectSync, &at[..1], &format!("nodes-100-one-{rep}"), 100, 50, 2000, pace).await;
            let spread = fan_out(Target::ObjectSync, &at, &format!("nodes-100-three-{rep}"), 100, 50, 2000, pace).await;
            assert!(one.complete && spread.complete, "a reader missed updates");
            one_rate.push(one.delivered_per_s);
            one_p99.push(one.p99_ms);
            three_rate.push(spread.delivered_per_s);
            three_p99.push(spread.p99_ms);
        }
        if pace.is_none() {
            let r = ratio(&three_rate, &one_rate) * 100.0;
            lines.push(format!(
                "| {label}, readers over 3 nodes (PostgreSQL + Redis) | delivered updates/s | {} | one node: {} | {r:.0} % of one node |",
                median_range(&mut three_rate),
                median_range(&mut one_rate)
            ));
        }
        let r = ratio(&three_p99, &one_p99);
        lines.push(format!(
            "| {label}, readers over 3 nodes (PostgreSQL + Redis) | p99 latency ms | {} | one node: {} | {r:.2}x one node |",
            median_range(&mut three_p99),
            median_range(&mut one_p99)
        ));
    }
    lines.extend(durable(&pg, &redis).await);
    lines.push(failover(&pg, &redis).await);
    lines
}

/// Durable acks on PostgreSQL (1 and 10 writers) beside SQLite.
async fn durable(pg: &Postgres, redis: &Redis) -> Vec<String> {
    let (mut pg_one, mut pg_ten, mut lite_one, mut lite_ten) = (vec![], vec![], vec![], vec![]);
    for rep in 0..REPS {
        let db = pg.database().await;
        let nodes = three(&db, redis);
        pg_one.push(durable_acks(nodes[0].addr, &format!("pg-one-{rep}"), 1, 2000).await);
        pg_ten.push(durable_acks(nodes[0].addr, &format!("pg-ten-{rep}"), 10, 500).await);
        let dir = std::env::temp_dir().join(format!("objectsync-bench-cluster-{}-{rep}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let lite = Proc::durable_server(&dir);
            lite_one.push(durable_acks(lite.addr, "lite-one", 1, 2000).await);
            lite_ten.push(durable_acks(lite.addr, "lite-ten", 10, 500).await);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let r1 = ratio(&pg_one, &lite_one) * 100.0;
    let r10 = ratio(&pg_ten, &lite_ten) * 100.0;
    vec![
        format!(
            "| durable acks, 1 writer, PostgreSQL | acked updates/s | {} | SQLite: {} | {r1:.0} % of SQLite |",
            median_range(&mut pg_one),
            median_range(&mut lite_one)
        ),
        format!(
            "| durable acks, 10 writers in 10 rooms, PostgreSQL | acked updates/s | {} | SQLite: {} | {r10:.0} % of SQLite |",
            median_range(&mut pg_ten),
            median_range(&mut lite_ten)
        ),
    ]
}

/// The failover pause: the holder (node 1) is killed while a writer of node 2 acts; the time
/// until an action sent at node 2 is acknowledged again.
async fn failover(pg: &Postgres, redis: &Redis) -> String {
    let mut pauses = Vec::new();
    for trial in 0..FAILOVER_TRIALS {
        let db = pg.database().await;
        let mut nodes: Vec<Option<Proc>> = three(&db, redis).into_iter().map(Some).collect();
        let room = format!("nodes-10-failover-{trial}");
        let holder = nodes[0].as_ref().expect("node 1").addr;
        let _first = join(Target::ObjectSync, holder, &room).await;
        let two = nodes[1].as_ref().expect("node 2").addr;
        assert!(acked_at(two, &room).await, "node 2 relays the room");
        drop(nodes[0].take()); // SIGKILL
        let killed = Instant::now();
        while !acked_at(two, &room).await {
            assert!(killed.elapsed() < Duration::from_secs(60), "no node took the room");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pauses.push(killed.elapsed().as_secs_f64() * 1000.0);
    }
    pauses.sort_by(f64::total_cmp);
    let (median, max) = (pauses[pauses.len() / 2], pauses[pauses.len() - 1]);
    format!(
        "| failover: holder killed (SIGKILL) until the next ack at another node, {FAILOVER_TRIALS} trials | ms, median / max | {median:.0} / {max:.0} | lease {LEASE_MS} | {:.2}x the lease (max) |",
        max / LEASE_MS as f64
    )
}

/// Whether a new client of `room` at `addr` has an action acknowledged within 3 s.
async fn acked_at(addr: SocketAddr, room: &str) -> bool {
    let attempt = async {
        let url = format!("ws://{addr}/ws/{room}");
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else { return false };
        let hello = r#"{"t":"hello","protocol":1}"#;
        if ws.send(Message::Text(hello.into())).await.is_err() {
            return false;
        }
        let mut welcomed = false;
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            if !welcomed && t.starts_with(r#"{"t":"welcome""#) {
                welcomed = true;
                if ws.send(Message::Text(action_text(0, 10).into())).await.is_err() {
                    return false;
                }
            } else if welcomed && t.starts_with(r#"{"t":"update""#) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(3), attempt).await.unwrap_or(false)
}
