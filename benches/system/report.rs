//! The runs: `quick` (what `cargo test` runs: every reader got every update, the join holds the
//! whole tree) and `full` (each workload three times against the server and the relay, medians
//! with [min..max], printed as a markdown table and written to `target/system-bench.md`).

use crate::client::Target;
use crate::process::{raise_fd_limit, Proc};
use crate::workloads::{cold_join, durable_acks, fan_out, many_rooms};
use crate::SETTLE;
use std::process::Command;

/// Repetitions of each figure in a full run.
pub(crate) const REPS: usize = 3;

pub(crate) async fn quick() {
    let server = Proc::server();
    let relay = Proc::relay();
    for (target, addr, name) in [(Target::ObjectSync, server.addr, "objectsync"), (Target::Relay, relay.addr, "relay")]
    {
        let r = fan_out(target, &[addr], "nodes-20", 20, 5, 200, None).await;
        assert!(r.complete, "{name}: a reader missed updates");
        println!("quick W1 {name}: {:.0} delivered/s, p99 {:.1} ms", r.delivered_per_s, r.p99_ms);
    }
    let (ms, bytes, objects) = cold_join(server.addr, "nodes-500").await;
    assert_eq!(objects, 502, "root + graph + 500 nodes");
    println!("quick W3: 500 nodes in {ms:.1} ms, {bytes} bytes");
    println!("1 passed, 0 failed");
}

/// Median of `a` over median of `b`.
pub(crate) fn ratio(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    a[a.len() / 2] / b[b.len() / 2]
}

pub(crate) fn median_range(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let fmt = |x: f64| {
        if x >= 1000.0 {
            format!("{x:.0}")
        } else if x >= 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    };
    format!("{} [{}..{}]", fmt(v[v.len() / 2]), fmt(v[0]), fmt(v[v.len() - 1]))
}

pub(crate) async fn full(mode: &str) {
    let mut lines = vec![
        format!("Run of {} on {} ({} cores), release build.", date(), cpu_model(), num_cores()),
        String::new(),
        "| workload | figure | ObjectSync | bare relay | ratio |".into(),
        "|---|---|---|---|---|".into(),
    ];
    if mode == "all" || mode == "w1" {
        lines.extend(w1().await);
    }
    if mode == "all" || mode == "w3" || mode == "w4" {
        lines.extend(w3_w4().await);
    }
    if mode == "all" || mode == "w5" {
        lines.extend(w5().await);
    }
    if mode == "all" || mode == "dur" {
        lines.extend(durability().await);
    }
    if mode == "all" || mode == "cluster" {
        lines.extend(crate::cluster::rows().await);
    }
    let table = lines.join("\n");
    println!("{table}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/system-bench.md", format!("{table}\n"));
}

/// W1, burst and paced: delivered updates per second (burst only), p50 and p99 latency.
async fn w1() -> Vec<String> {
    let mut lines = Vec::new();
    for (label, pace) in [("W1 burst (2,000 x 50 readers)", None), ("W1 paced 1,000/s", Some(1000))] {
        let (mut os_rate, mut os_p50, mut os_p99) = (Vec::new(), Vec::new(), Vec::new());
        let (mut re_rate, mut re_p50, mut re_p99) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..REPS {
            let server = Proc::server();
            let relay = Proc::relay();
            let room = format!("nodes-100-{rep}");
            let os = fan_out(Target::ObjectSync, &[server.addr], &room, 100, 50, 2000, pace).await;
            let re = fan_out(Target::Relay, &[relay.addr], &room, 100, 50, 2000, pace).await;
            assert!(os.complete && re.complete, "a reader missed updates");
            os_rate.push(os.delivered_per_s);
            os_p50.push(os.p50_ms);
            os_p99.push(os.p99_ms);
            re_rate.push(re.delivered_per_s);
            re_p50.push(re.p50_ms);
            re_p99.push(re.p99_ms);
        }
        if pace.is_none() {
            let r = ratio(&os_rate, &re_rate) * 100.0;
            lines.push(format!(
                "| {label} | delivered updates/s | {} | {} | {r:.0} % of relay |",
                median_range(&mut os_rate),
                median_range(&mut re_rate)
            ));
        }
        lines.push(format!(
            "| {label} | p50 latency ms | {} | {} | |",
            median_range(&mut os_p50),
            median_range(&mut re_p50)
        ));
        let r = ratio(&os_p99, &re_p99);
        lines.push(format!(
            "| {label} | p99 latency ms | {} | {} | {r:.2}x relay |",
            median_range(&mut os_p99),
            median_range(&mut re_p99)
        ));
    }
    lines
}

/// W3 (a cold join of 10,000 nodes: time and bytes) and W4 (server memory per node).
async fn w3_w4() -> Vec<String> {
    let (mut join_ms, mut rss) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..REPS {
        let server = Proc::server();
        let _ = cold_join(server.addr, "nodes-0").await;
        // Each reading after the server has closed the joining session (steady state).
        tokio::time::sleep(SETTLE).await;
        let empty = server.rss_bytes();
        // Build the 10,000-node room before timing (the first join builds it).
        let _ = cold_join(server.addr, "nodes-10000").await;
        tokio::time::sleep(SETTLE).await;
        let full = server.rss_bytes();
        rss.push((full.saturating_sub(empty)) as f64 / 10_000.0);
        let (ms, b, objects) = cold_join(server.addr, "nodes-10000").await;
        assert_eq!(objects, 10_002);
        join_ms.push(ms);
        bytes = b;
        let _ = server.cpu_ticks();
    }
    vec![
        format!("| W3 cold join, 10,000 nodes | ms to hold the whole tree | {} | — | |", median_range(&mut join_ms)),
        format!("| W3 cold join, 10,000 nodes | bytes received | {bytes} | — | |"),
        format!("| W4 memory | server RSS per node, bytes | {} | — | |", median_range(&mut rss)),
    ]
}

/// W5: p50 and p99 ack latency and server CPU, as many rooms as the open-file limit allows (up
/// to 1,000).
async fn w5() -> Vec<String> {
    let limit = raise_fd_limit();
    // One socket per client on each side, plus slack.
    let rooms = if limit >= 12_000 { 1000 } else { ((limit as usize).saturating_sub(200) / 10).max(10) };
    let mut figures: [[Vec<f64>; 3]; 2] = Default::default();
    for _ in 0..REPS {
        for (i, target) in [Target::ObjectSync, Target::Relay].into_iter().enumerate() {
            let server = if target == Target::Relay { Proc::relay() } else { Proc::server() };
            let (a, b, c, n) = many_rooms(target, &server, rooms, 5, 2.0, 30).await;
            assert!(n > 0, "no action was acknowledged");
            figures[i][0].push(a);
            figures[i][1].push(b);
            figures[i][2].push(c);
        }
    }
    let label = format!("W5 {rooms} rooms x 5 clients, 2 actions/s each, 30 s");
    let [[mut p50, mut p99, mut cpu], [mut re_p50, mut re_p99, mut re_cpu]] = figures;
    let mut lines = Vec::new();
    lines.push(format!(
        "| {label} | p50 ack latency ms | {} | {} | |",
        median_range(&mut p50),
        median_range(&mut re_p50)
    ));
    let r = ratio(&p99, &re_p99);
    lines.push(format!(
        "| {label} | p99 ack latency ms | {} | {} | {r:.2}x relay |",
        median_range(&mut p99),
        median_range(&mut re_p99)
    ));
    let r = ratio(&cpu, &re_cpu);
    lines.push(format!(
        "| {label} | server CPU % of one core | {} | {} | {r:.2}x relay |",
        median_range(&mut cpu),
        median_range(&mut re_cpu)
    ));
    lines
}

/// Durability: acked updates per second with SQLite (one writer; ten in ten rooms), and loading
/// a 10,000-node room from disk.
async fn durability() -> Vec<String> {
    let (mut one, mut ten, mut load_ms) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..REPS {
        let dir = std::env::temp_dir().join(format!("objectsync-bench-{}-{rep}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let server = Proc::durable_server(&dir);
            one.push(durable_acks(server.addr, "one", 1, 5000).await);
            ten.push(durable_acks(server.addr, "ten", 10, 1000).await);
            // Store a 10,000-node room for the load below.
            let _ = cold_join(server.addr, "nodes-10000").await;
        }
        let server = Proc::durable_server(&dir);
        let (ms, _, objects) = cold_join(server.addr, "nodes-10000").await;
        assert_eq!(objects, 10_002);
        load_ms.push(ms);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
    vec![
        format!("| durable acks, 1 writer (SQLite) | acked updates/s | {} | — | |", median_range(&mut one)),
        format!("| durable acks, 10 writers in 10 rooms | acked updates/s | {} | — | |", median_range(&mut ten)),
        format!("| load a 10,000-node room from disk + join | ms | {} | — | |", median_range(&mut load_ms)),
    ]
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".into(), |m| m.trim().to_owned())
}

fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .map_or_else(|| "unknown date".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}
