//! System benchmark: the standard workloads against the real server binary in its own process,
//! side by side with a bare relay (also its own process), driven by lean clients that parse
//! every frame.
//!
//! `cargo bench --bench system -- all` runs everything (3 repetitions, medians and [min..max])
//! and writes `target/system-bench.md`. Without arguments (as `cargo test` runs it) it runs a
//! quick variant that only checks that every reader received every update.
//!
//! Every loop is bounded in count and time; all traffic is on 127.0.0.1.

use futures_util::{SinkExt, StreamExt};
use objectsync::client::Mirror;
use objectsync::protocol::{decode_server, ServerMessage};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// No single phase may take longer than this.
const PHASE_DEADLINE: Duration = Duration::from_secs(120);
/// Time for the server to finish closing a session before its memory is read.
const SETTLE: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("relay-server") {
        return run_relay();
    }
    let mode = args.first().cloned().unwrap_or_else(|| "quick".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async move {
        match mode.as_str() {
            "quick" => quick().await,
            "all" | "w1" | "w3" | "w4" | "w5" | "dur" => full(&mode).await,
            other => panic!("unknown mode {other}: use quick, all, w1, w3, w4, w5 or dur"),
        }
    });
}

// ----- processes -----

struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read listening line");
        let addr = line.trim().rsplit("//").next().and_then(|a| a.parse().ok()).expect("listening address");
        Proc { child, addr }
    }
    fn server() -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_objectsync"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--preset", "bench", "--static", "/nonexistent", "--memory"]);
        Proc::start(cmd)
    }
    /// The server with its SQLite store in `dir`.
    fn durable_server(dir: &std::path::Path) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_objectsync"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--preset", "bench", "--static", "/nonexistent", "--data"])
            .arg(dir);
        Proc::start(cmd)
    }
    fn relay() -> Proc {
        let mut cmd = Command::new(std::env::current_exe().expect("exe"));
        cmd.arg("relay-server");
        Proc::start(cmd)
    }
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    }
}

// ----- the bare relay (its own process) -----

fn run_relay() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("listening on http://{}", listener.local_addr().expect("addr"));
        // Peers by request path: a path is a room (W1 uses one, W5 a thousand).
        type Peers = Arc<Mutex<Vec<tokio::sync::mpsc::Sender<Message>>>>;
        let rooms: Arc<Mutex<HashMap<String, Peers>>> = Arc::default();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let rooms = rooms.clone();
            tokio::spawn(async move {
                let mut path = String::new();
                // The callback's error type is tungstenite's (an HTTP response), not ours.
                #[allow(clippy::result_large_err)]
                let see_path = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                    path = req.uri().path().to_owned();
                    Ok(res)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, see_path, Some(small_reads())).await
                else {
                    return;
                };
                let peers = rooms.lock().expect("rooms").entry(path).or_default().clone();
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(65_536);
                peers.lock().expect("peers").push(tx);
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                        let mut n = 1;
                        while n < 64 {
                            let Ok(m) = rx.try_recv() else { break };
                            if sink.feed(m).await.is_err() {
                                return;
                            }
                            n += 1;
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    if let Message::Text(t) = msg {
                        // One shared buffer: every peer gets a clone of the same bytes.
                        let m = Message::Text(t);
                        for p in peers.lock().expect("peers").iter() {
                            let _ = p.try_send(m.clone());
                        }
                    }
                }
            });
        }
    });
}

/// The same socket settings for the relay, the server and the load clients: tungstenite zeroes
/// its whole read buffer (128 KiB by default) for every read.
fn small_reads() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

// ----- clients -----

#[derive(Deserialize)]
struct Lean {
    #[serde(default)]
    changes: Vec<LeanChange>,
    /// The messages of a `batch`.
    #[serde(default)]
    m: Vec<Lean>,
}

#[derive(Deserialize)]
struct LeanChange {
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    ObjectSync,
    Relay,
}

async fn connect(addr: SocketAddr, room: &str) -> Ws {
    let url = format!("ws://{addr}/ws/{room}");
    tokio_tungstenite::connect_async_with_config(url, Some(small_reads()), true).await.expect("connect").0
}

/// Connects and, for ObjectSync, says hello and reads the welcome.
async fn join(target: Target, addr: SocketAddr, room: &str) -> Ws {
    let mut ws = connect(addr, room).await;
    if target == Target::ObjectSync {
        ws.send(Message::Text(r#"{"t":"hello","protocol":1,"batch":true,"compact_snapshots":true}"#.into()))
            .await
            .expect("hello");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"{"t":"welcome""#) => break,
                Some(Ok(_)) => continue,
                other => panic!("no welcome: {other:?}"),
            }
        }
    }
    ws
}

/// Reads until `expect` frames carrying values were parsed (or the deadline); returns the
/// receive time of each value `k`.
async fn read_updates(mut ws: Ws, expect: usize) -> Vec<Option<Instant>> {
    let mut got = vec![None; expect];
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
    while count < expect {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => break,
        };
        let Message::Text(t) = msg else { continue };
        let now = Instant::now();
        let Ok(lean) = serde_json::from_str::<Lean>(&t) else { continue };
        let one = [lean];
        let messages = if one[0].m.is_empty() { &one[..] } else { &one[0].m[..] };
        for msg in messages {
            if let Some(k) = msg.changes.first().and_then(|c| c.value.as_u64()) {
                if let Some(slot) = got.get_mut(k as usize) {
                    if slot.is_none() {
                        *slot = Some(now);
                        count += 1;
                    }
                }
            }
        }
    }
    got
}

struct FanOut {
    delivered_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    complete: bool,
}

/// W1: `readers` readers and one writer in a room of `nodes` nodes; the writer sends `updates`
/// dict sets, pipelined (`pace: None`) or at `pace` per second.
async fn fan_out(
    target: Target,
    addr: SocketAddr,
    room: &str,
    nodes: usize,
    readers: usize,
    updates: usize,
    pace: Option<u32>,
) -> FanOut {
    let mut reader_tasks = Vec::new();
    for _ in 0..readers {
        let ws = join(target, addr, room).await;
        reader_tasks.push(tokio::spawn(read_updates(ws, updates)));
    }
    let writer = join(target, addr, room).await;
    let (mut sink, mut stream) = writer.split();
    // The writer's own copies (acks) are read and dropped so they never push back.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    if target == Target::Relay {
        // The relay registers a peer right after its handshake: let the last ones land.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut sent = Vec::with_capacity(updates);
    let mut tick = pace.map(|p| tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(p))));
    for k in 0..updates {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        let text = format!(
            r#"{{"t":"action","id":{},"base":0,"changes":[{{"op":"dict_set","obj":"n{}","attr":"pos","key":"x","value":{k}}}]}}"#,
            k + 1,
            k % nodes
        );
        sent.push(Instant::now());
        if pace.is_some() {
            sink.send(Message::Text(text.into())).await.expect("send");
        } else {
            sink.feed(Message::Text(text.into())).await.expect("send");
            if k % 64 == 63 {
                sink.flush().await.expect("flush");
            }
        }
    }
    sink.flush().await.expect("flush");
    let mut latencies = Vec::with_capacity(readers * updates);
    let mut last = sent[0];
    let mut complete = true;
    for t in reader_tasks {
        let got = t.await.expect("reader");
        for (k, r) in got.iter().enumerate() {
            match r {
                Some(r) => {
                    latencies.push(r.duration_since(sent[k]).as_secs_f64() * 1000.0);
                    last = last.max(*r);
                }
                None => complete = false,
            }
        }
    }
    drain.abort();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    let secs = last.duration_since(sent[0]).as_secs_f64();
    FanOut { delivered_per_s: (updates * readers) as f64 / secs, p50_ms: pct(0.5), p99_ms: pct(0.99), complete }
}

/// W3: time from opening the socket until the client holds the whole tree; bytes received.
async fn cold_join(addr: SocketAddr, room: &str) -> (f64, usize, usize) {
    let start = Instant::now();
    let mut ws = connect(addr, room).await;
    ws.send(Message::Text(r#"{"t":"hello","protocol":1,"compact_snapshots":true}"#.into())).await.expect("hello");
    let text = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(_)) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    };
    let mirror = match decode_server(&text) {
        Ok(ServerMessage::Welcome { snapshot: Some(s), .. }) => Mirror::from_snapshot(s),
        other => panic!("bad welcome: {other:?}"),
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let _ = ws.close(None).await;
    (ms, text.len(), mirror.len())
}

/// Durable acks: `writers` writers, each in its own room, each sending `updates` actions
/// pipelined; acked updates per second over all of them.
async fn durable_acks(addr: SocketAddr, tag: &str, writers: usize, updates: usize) -> f64 {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for w in 0..writers {
        let room = format!("nodes-10-{tag}-{w}");
        tasks.push(tokio::spawn(async move {
            let ws = join(Target::ObjectSync, addr, &room).await;
            let (mut sink, mut stream) = ws.split();
            let reader = tokio::spawn(async move {
                let mut acked = 0;
                let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
                while acked < updates {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) if t.starts_with(r#"{"t":"update""#) => acked += 1,
                        Ok(Some(Ok(Message::Text(t)))) if t.starts_with(r#"{"t":"batch""#) => {
                            acked += t.matches(r#"{"t":"update""#).count();
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break,
                    }
                }
                acked
            });
            for k in 0..updates {
                let text = format!(
                    r#"{{"t":"action","id":{},"base":0,"changes":[{{"op":"dict_set","obj":"n{}","attr":"pos","key":"x","value":{k}}}]}}"#,
                    k + 1,
                    k % 10
                );
                sink.feed(Message::Text(text.into())).await.expect("send");
                if k % 64 == 63 {
                    sink.flush().await.expect("flush");
                }
            }
            sink.flush().await.expect("flush");
            reader.await.expect("reader")
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.expect("writer");
    }
    assert_eq!(acked, writers * updates, "every update acknowledged");
    acked as f64 / start.elapsed().as_secs_f64()
}

#[derive(Deserialize)]
struct Ack {
    #[serde(default)]
    origin: String,
    #[serde(default)]
    action: Option<u64>,
}

/// Raises this process's open-file limit to its hard limit (W5 holds thousands of sockets).
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we own; no other preconditions.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// W5: `rooms` rooms x `per_room` clients, each client sending `rate` actions per second for
/// `secs` seconds; returns (p50 ms, p99 ms, server CPU % of one core, actions acked).
async fn many_rooms(
    target: Target,
    server: &Proc,
    rooms: usize,
    per_room: usize,
    rate: f64,
    secs: u64,
) -> (f64, f64, f64, usize) {
    let addr = server.addr;
    // Connect everyone first (bounded: 64 connections in flight at once).
    let mut sockets = Vec::with_capacity(rooms * per_room);
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut joins = Vec::new();
    for r in 0..rooms {
        for _ in 0..per_room {
            let sem = sem.clone();
            let tag = format!("r{}", joins.len());
            joins.push(tokio::spawn(async move {
                let _permit = sem.acquire().await.expect("semaphore");
                let mut ws = connect(addr, &format!("nodes-5-w5-{r}")).await;
                if target == Target::Relay {
                    // The relay knows no clients: a client's "ack" is its own frame coming back.
                    return (ws, tag);
                }
                ws.send(Message::Text(r#"{"t":"hello","protocol":1,"compact_snapshots":true}"#.into()))
                    .await
                    .expect("hello");
                let client = loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            let v: serde_json::Value = serde_json::from_str(&t).expect("welcome json");
                            break v["client"].as_str().unwrap_or_default().to_owned();
                        }
                        Some(Ok(_)) => continue,
                        other => panic!("no welcome: {other:?}"),
                    }
                };
                (ws, client)
            }));
        }
    }
    for j in joins {
        sockets.push(j.await.expect("join"));
    }
    let cpu_before = server.cpu_ticks();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (ws, client)) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let period = Duration::from_secs_f64(1.0 / rate);
            // Spread the clients over the period so they do not all send at once.
            let first = tokio::time::Instant::now() + period.mul_f64((i % 997) as f64 / 997.0);
            let mut tick = tokio::time::interval_at(first, period);
            let end = tokio::time::Instant::now() + Duration::from_secs(secs);
            let mut sent: Vec<Instant> = Vec::new();
            let mut latencies = Vec::new();
            loop {
                tokio::select! {
                    _ = tick.tick(), if tokio::time::Instant::now() < end => {
                        let k = sent.len();
                        let text = match target {
                            Target::ObjectSync => format!(
                                r#"{{"t":"action","id":{},"base":0,"changes":[{{"op":"dict_set","obj":"n{}","attr":"pos","key":"x","value":{k}}}]}}"#,
                                k + 1,
                                k % 5
                            ),
                            // What the server would broadcast for it, sent as is to the room.
                            Target::Relay => format!(
                                r#"{{"t":"update","v":{k},"origin":"{client}","action":{},"changes":[{{"op":"dict_set","obj":"n{}","attr":"pos","key":"x","value":{k}}}]}}"#,
                                k + 1,
                                k % 5
                            ),
                        };
                        sent.push(Instant::now());
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    msg = stream.next() => {
                        let t = match msg {
                            Some(Ok(Message::Text(t))) => t,
                            // Pings (every 10 s from the server) are answered by tungstenite.
                            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                            _ => break,
                        };
                        if let Ok(ack) = serde_json::from_str::<Ack>(&t) {
                            if ack.origin == client {
                                if let Some(s) = ack.action.and_then(|a| sent.get(a as usize - 1)) {
                                    latencies.push(s.elapsed().as_secs_f64() * 1000.0);
                                }
                            }
                        }
                        if tokio::time::Instant::now() >= end && latencies.len() == sent.len() {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(end + Duration::from_secs(10)) => break,
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (server.cpu_ticks() - cpu_before) as f64 / ticks_per_second() / elapsed * 100.0;
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| all.get(((all.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    (pct(0.5), pct(0.99), cpu, all.len())
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

// ----- runs -----

async fn quick() {
    let server = Proc::server();
    let relay = Proc::relay();
    for (target, addr, name) in [(Target::ObjectSync, server.addr, "objectsync"), (Target::Relay, relay.addr, "relay")]
    {
        let r = fan_out(target, addr, "nodes-20", 20, 5, 200, None).await;
        assert!(r.complete, "{name}: a reader missed updates");
        println!("quick W1 {name}: {:.0} delivered/s, p99 {:.1} ms", r.delivered_per_s, r.p99_ms);
    }
    let (ms, bytes, objects) = cold_join(server.addr, "nodes-500").await;
    assert_eq!(objects, 502, "root + graph + 500 nodes");
    println!("quick W3: 500 nodes in {ms:.1} ms, {bytes} bytes");
    println!("1 passed, 0 failed");
}

/// Median of `a` over median of `b`.
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    a[a.len() / 2] / b[b.len() / 2]
}

fn median_range(v: &mut [f64]) -> String {
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

async fn full(mode: &str) {
    const REPS: usize = 3;
    let mut lines = vec![
        format!("Run of {} on {} ({} cores), release build.", date(), cpu_model(), num_cores()),
        String::new(),
        "| workload | figure | ObjectSync | bare relay | ratio |".into(),
        "|---|---|---|---|---|".into(),
    ];
    if mode == "all" || mode == "w1" {
        for (label, pace) in [("W1 burst (2,000 x 50 readers)", None), ("W1 paced 1,000/s", Some(1000))] {
            let (mut os_rate, mut os_p50, mut os_p99) = (Vec::new(), Vec::new(), Vec::new());
            let (mut re_rate, mut re_p50, mut re_p99) = (Vec::new(), Vec::new(), Vec::new());
            for rep in 0..REPS {
                let server = Proc::server();
                let relay = Proc::relay();
                let room = format!("nodes-100-{rep}");
                let os = fan_out(Target::ObjectSync, server.addr, &room, 100, 50, 2000, pace).await;
                let re = fan_out(Target::Relay, relay.addr, &room, 100, 50, 2000, pace).await;
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
    }
    if mode == "all" || mode == "w3" || mode == "w4" {
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
        lines.push(format!(
            "| W3 cold join, 10,000 nodes | ms to hold the whole tree | {} | — | |",
            median_range(&mut join_ms)
        ));
        lines.push(format!("| W3 cold join, 10,000 nodes | bytes received | {bytes} | — | |"));
        lines.push(format!("| W4 memory | server RSS per node, bytes | {} | — | |", median_range(&mut rss)));
    }
    if mode == "all" || mode == "w5" {
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
    }
    if mode == "all" || mode == "dur" {
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
        lines.push(format!("| durable acks, 1 writer (SQLite) | acked updates/s | {} | — | |", median_range(&mut one)));
        lines.push(format!(
            "| durable acks, 10 writers in 10 rooms | acked updates/s | {} | — | |",
            median_range(&mut ten)
        ));
        lines.push(format!("| load a 10,000-node room from disk + join | ms | {} | — | |", median_range(&mut load_ms)));
    }
    let table = lines.join("\n");
    println!("{table}");
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/system-bench.md", format!("{table}\n"));
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
