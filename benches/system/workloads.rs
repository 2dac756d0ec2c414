//! The workloads, each against one target (the server or the relay) at an address: W1 fan-out
//! (one writer, many readers), W3 cold join (a whole tree to a new client), durable acks (writers
//! waiting for SQLite), W5 many rooms (thousands of clients at a steady rate). Each returns its
//! figures; `report` runs them and makes the table.

use crate::client::{action_text, connect, hello_for_client_id, join, read_updates, Ack, Target, Ws};
use crate::process::{ticks_per_second, Proc};
use crate::PHASE_DEADLINE;
use futures_util::{SinkExt, StreamExt};
use objectsync::client::Mirror;
use objectsync::protocol::{decode_server, ServerMessage};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub(crate) struct FanOut {
    pub(crate) delivered_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) complete: bool,
}

/// W1: `readers` readers and one writer in a room of `nodes` nodes; the writer sends `updates`
/// dict sets, pipelined (`pace: None`) or at `pace` per second. Reader `i` connects to
/// `at[i % at.len()]` (the first one loads the room there), the writer to `at[0]`.
pub(crate) async fn fan_out(
    target: Target,
    at: &[SocketAddr],
    room: &str,
    nodes: usize,
    readers: usize,
    updates: usize,
    pace: Option<u32>,
) -> FanOut {
    let mut reader_tasks = Vec::new();
    for i in 0..readers {
        let ws = join(target, at[i % at.len()], room).await;
        reader_tasks.push(tokio::spawn(read_updates(ws, updates)));
    }
    let writer = join(target, at[0], room).await;
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
        let text = action_text(k, nodes);
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
    let fan_out = delivered(reader_tasks, &sent, readers).await;
    drain.abort();
    fan_out
}

/// What the readers got of the updates sent at `sent`: throughput from the first send to the
/// last receipt, and latency percentiles.
async fn delivered(reader_tasks: Vec<JoinHandle<Vec<Option<Instant>>>>, sent: &[Instant], readers: usize) -> FanOut {
    let updates = sent.len();
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
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(f64::NAN);
    let secs = last.duration_since(sent[0]).as_secs_f64();
    FanOut { delivered_per_s: (updates * readers) as f64 / secs, p50_ms: pct(0.5), p99_ms: pct(0.99), complete }
}

/// W3: time from opening the socket until the client holds the whole tree; bytes received.
pub(crate) async fn cold_join(addr: SocketAddr, room: &str) -> (f64, usize, usize) {
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
pub(crate) async fn durable_acks(addr: SocketAddr, tag: &str, writers: usize, updates: usize) -> f64 {
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
                let text = action_text(k, 10);
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

/// W5: `rooms` rooms x `per_room` clients, each client sending `rate` actions per second for
/// `secs` seconds; returns (p50 ms, p99 ms, server CPU % of one core, actions acked).
pub(crate) async fn many_rooms(
    target: Target,
    server: &Proc,
    rooms: usize,
    per_room: usize,
    rate: f64,
    secs: u64,
) -> (f64, f64, f64, usize) {
    let sockets = connect_all(target, server.addr, rooms, per_room).await;
    let cpu_before = server.cpu_ticks();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (ws, client)) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(steady_client(target, ws, client, i, rate, secs)));
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

/// Connects `per_room` clients to each of `rooms` rooms (64 connections in flight at once);
/// returns each socket with the client id its acks carry.
async fn connect_all(target: Target, addr: SocketAddr, rooms: usize, per_room: usize) -> Vec<(Ws, String)> {
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
                let client = hello_for_client_id(&mut ws).await;
                (ws, client)
            }));
        }
    }
    for j in joins {
        sockets.push(j.await.expect("join"));
    }
    sockets
}

/// Client `i` of W5: sends `rate` actions per second for `secs` seconds and returns the latency
/// of each ack of its own actions.
async fn steady_client(target: Target, ws: Ws, client: String, i: usize, rate: f64, secs: u64) -> Vec<f64> {
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
                    Target::ObjectSync => action_text(k, 5),
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
}
