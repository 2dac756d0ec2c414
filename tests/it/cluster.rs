//! Nodes of one cluster (the real binary, a real PostgreSQL and a real Redis on loopback) behave
//! as one server: clients of a room spread over the nodes see the same updates in the same
//! order, rejects reach only their sender, a client resumes at another node, and a stream
//! that lost messages is filled from the store.

use crate::databases::{Postgres, Redis};
use crate::harness::{create_node, set_x, within, ServerProcess};
use crate::postgres::node_command;
use objectsync::client::{Client, ClientError, ConnectOptions, Event, Mirror};
use objectsync::protocol::{ClientMessage, Resume};
use std::time::Duration;

/// Node `node` of the binary on the database at `db`, talking to the others through `redis`.
fn cluster_node(db: &str, redis: &str, node: &str) -> ServerProcess {
    cluster_node_with(db, redis, node, &[])
}

/// The same, with more `--limit NAME=VALUE`s.
fn cluster_node_with(db: &str, redis: &str, node: &str, limits: &[&str]) -> ServerProcess {
    let mut cmd = node_command(db, node);
    cmd.args(["--redis", redis, "--limit", "cluster_heartbeat_ms=200"]);
    cmd.args(limits.iter().flat_map(|l| ["--limit", l]));
    ServerProcess::spawn(&mut cmd)
}

/// A database, a Redis and three nodes.
struct Cluster {
    _pg: Postgres,
    db: String,
    redis: Redis,
    nodes: Vec<ServerProcess>,
}

async fn three_nodes() -> Cluster {
    let pg = Postgres::start().await;
    let db = pg.database().await;
    let redis = Redis::start().await;
    let nodes = start_nodes(&db, &redis);
    Cluster { _pg: pg, db, redis, nodes }
}

fn start_nodes(db: &str, redis: &Redis) -> Vec<ServerProcess> {
    (1..=3).map(|i| cluster_node(db, &redis.url(), &format!("node-{i}"))).collect()
}

/// The value of metric `name` of a node (`GET /metrics`), summed over its label sets.
async fn node_metric(node: &ServerProcess, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(node.addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    let full = format!("objectsync_{name}");
    body.lines()
        .filter(|l| l.starts_with(&full) && !l.starts_with('#'))
        .filter(|l| l[full.len()..].starts_with([' ', '{', '_']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn connect(node: &ServerProcess, room: &str) -> Client {
    within(Client::connect(&node.url(room), ConnectOptions::default())).await.expect("connect")
}

/// What a client saw of the room's updates: (version, origin, action), in order.
type Seen = Vec<(u64, String, Option<u64>)>;

/// Reads `c`'s events until its mirror is at `v`, and the updates among them (and what came
/// before, kept in its inbox); panics on a reject.
async fn updates_until(c: &mut Client, v: u64, seen: &mut Seen) {
    while seen.last().map_or(0, |u| u.0) < v {
        match within(c.next_event()).await.expect("connected") {
            Event::Update { v, origin, action, .. } => seen.push((v, origin.to_string(), action)),
            Event::Reject { action, code, reason } => panic!("{} got a reject of {action}: {code} {reason}", c.id()),
            _ => {}
        }
    }
}

/// Reads `c`'s events until the presence of `who`.
async fn presence_of(c: &mut Client, who: &str) -> objectsync::model::Value {
    loop {
        if let Event::Presence { client, state } = c.next_event().await.expect("connected") {
            if client == who {
                return state;
            }
        }
    }
}

fn x_of(c: &Client, n: &str) -> Option<i64> {
    c.mirror().value(n, "pos").and_then(|p| p.as_dict()).and_then(|p| p.get("x")).and_then(|x| x.as_int())
}

#[tokio::test]
async fn three_nodes_behave_as_one_server() {
    let cluster = three_nodes().await;
    let [one, two, three] = &cluster.nodes[..] else { unreachable!() };
    // The first join loads the room on node 1; the others relay it.
    let mut a = connect(one, "board").await;
    let mut b = connect(two, "board").await;
    let mut c = connect(three, "board").await;
    let n = a.new_object_id().to_string();
    let created = within(a.act(vec![create_node(&n, 0)])).await.expect("create");
    // Writers on every node, their actions pipelined (sent without waiting).
    let mut sent: Vec<(String, u64)> = Vec::new();
    for round in 0..20 {
        for (i, cl) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
            let id = within(cl.send_action(vec![set_x(&n, round * 3 + i as i64)])).await.expect("send");
            sent.push((cl.id().to_string(), id));
        }
    }
    let expected = created + sent.len() as u64;
    let (mut sa, mut sb, mut sc) = (Seen::new(), Seen::new(), Seen::new());
    updates_until(&mut a, expected, &mut sa).await;
    updates_until(&mut b, expected, &mut sb).await;
    updates_until(&mut c, expected, &mut sc).await;
    let sa: Seen = sa.into_iter().filter(|u| u.0 >= created).collect();
    let sb: Seen = sb.into_iter().filter(|u| u.0 >= created).collect();
    let sc: Seen = sc.into_iter().filter(|u| u.0 >= created).collect();
    assert_eq!(sa.len(), 1 + sent.len(), "every update, once: {sa:?}");
    assert_eq!(sa, sb, "node 2's client saw the same updates in the same order");
    assert_eq!(sa, sc, "node 3's client saw the same updates in the same order");
    let versions: Vec<u64> = sa.iter().map(|u| u.0).collect();
    assert_eq!(versions, (created..=expected).collect::<Vec<_>>(), "no gap");
    for (client, id) in &sent {
        let n = sa.iter().filter(|u| &u.1 == client && u.2 == Some(*id)).count();
        assert_eq!(n, 1, "{client}'s action {id} applied exactly once");
    }

    // Presence of a client of node 2 is seen on nodes 1 and 3; a service called at node 3 runs
    // (on the node holding the room) and answers its caller.
    let cursor = objectsync::model::Value::from(7i64);
    within(b.set_presence(cursor.clone())).await.expect("presence");
    for cl in [&mut a, &mut c] {
        let state = within(presence_of(cl, b.id())).await;
        assert_eq!(state, cursor, "{} sees node 2's client's presence", cl.id());
    }
    let answer = within(c.call("echo", objectsync::model::Value::from("hi"))).await.expect("the service answers");
    let caller = answer.as_dict().and_then(|d| d.get("client")).and_then(|v| v.as_str()).map(str::to_owned);
    assert_eq!(caller.as_deref(), Some(c.id()), "the service saw its caller on node 3");

    // A reject reaches its sender only.
    let bad = vec![set_x("no-such-object", 1)];
    match within(b.act(bad)).await {
        Err(ClientError::Rejected { code, .. }) => assert_eq!(code, "no_such_object"),
        other => panic!("node 2's client must get its reject: {other:?}"),
    }
    let v = within(c.act(vec![set_x(&n, 1000)])).await.expect("acknowledged");
    for cl in [&mut a, &mut b] {
        let mut seen = Seen::new();
        updates_until(cl, v, &mut seen).await; // panics on a reject of another client
    }

    // A fresh client anywhere sees the same state.
    for node in [one, two, three] {
        let fresh = connect(node, "board").await;
        assert_eq!(fresh.version(), v);
        assert_eq!(fresh.mirror().to_snapshot(), a.mirror().to_snapshot(), "a fresh snapshot equals the mirrors");
    }
    assert_eq!(x_of(&b, &n), Some(1000));

    // Node 2's client resumes at node 3: the same client, what it missed, no action twice.
    let id = b.id().to_string();
    let (resume, mirror) = b.into_resume();
    let v = within(a.act(vec![set_x(&n, 1800)])).await.expect("acknowledged");
    let options = ConnectOptions { resume: Some((resume, mirror)), ..ConnectOptions::default() };
    let mut b = within(Client::connect(&three.url("board"), options)).await.expect("resume at node 3");
    assert_eq!(b.id(), id, "the same client");
    assert_eq!(b.version(), v, "caught up");
    let v = within(b.act(vec![set_x(&n, 1500)])).await.expect("acts after resuming");
    let mut seen = Seen::new();
    updates_until(&mut a, v, &mut seen).await;
    assert_eq!(x_of(&a, &n), Some(1500));
    assert!(node_metric(two, "forwarded").await > 0.0, "node 2 forwarded its client's messages");
    assert!(node_metric(one, "remote_clients").await >= 1.0, "node 1 serves clients of other nodes");
    assert_eq!(node_metric(one, "lease_claims").await, 1.0, "node 1 took the room");
    assert!(node_metric(two, "held_elsewhere").await >= 1.0, "node 2 found it held by node 1");
    assert!(node_metric(two, "relays").await >= 1.0, "node 2 relays it");
    drop(cluster.redis);
}

#[tokio::test]
async fn a_redis_restart_mid_run_loses_nothing_and_duplicates_nothing() {
    let Cluster { _pg, db, mut redis, nodes } = three_nodes().await;
    let nodes: Vec<Option<ServerProcess>> = nodes.into_iter().map(Some).collect();
    let (_creator, mut writers) = writers_at(&nodes, 0..3).await;
    for w in &mut writers {
        w.send(&nodes, 20).await;
    }
    redis.restart(Duration::from_millis(300)).await;
    for w in &mut writers {
        w.send(&nodes, 20).await;
    }
    for w in &mut writers {
        w.settle(&nodes).await;
    }
    check_history(&db, &writers).await;
    for w in &writers {
        assert_eq!(w.acked.len(), 40, "{}: every action applied", w.client.id());
    }
    let resumes: Vec<usize> = writers.iter().map(|w| w.resumes).collect();
    assert_eq!(resumes, [0, 0, 0], "every session kept going (the relays moved theirs where they lost messages)");
    eprintln!("redis restart: resumes per writer (nodes 1, 2, 3) {resumes:?}");
}

/// Trials of the owner's death: `OBJECTSYNC_FAILOVER_TRIALS` (default 2, as CI runs; 20 in
/// the long mode).
#[tokio::test]
async fn the_owner_killed_mid_run_loses_nothing_and_another_node_carries_on() {
    let trials: usize = std::env::var("OBJECTSYNC_FAILOVER_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let pg = Postgres::start().await;
    let redis = Redis::start().await;
    let mut pauses = Vec::new();
    for trial in 0..trials {
        let db = pg.database().await;
        let mut nodes: Vec<Option<ServerProcess>> = start_nodes(&db, &redis).into_iter().map(Some).collect();
        let (creator, mut writers) = writers_at(&nodes, 0..3).await;
        for w in &mut writers {
            w.send(&nodes, 10).await;
            w.settle(&nodes).await;
        }
        // More in flight on every node, then the owner dies.
        for w in &mut writers {
            w.send(&nodes, 10).await;
        }
        let killed = std::time::Instant::now();
        nodes[0].take().expect("node 1").kill();
        drop(creator);
        for w in &mut writers {
            w.settle(&nodes).await;
        }
        pauses.push(killed.elapsed());
        // And the room goes on; services answer the moved sessions.
        for w in &mut writers {
            w.send(&nodes, 5).await;
            w.settle(&nodes).await;
        }
        for w in writers.iter_mut().skip(1) {
            let answer = within(w.client.call("echo", objectsync::model::Value::from("after"))).await;
            assert!(answer.is_ok(), "trial {trial}: a service answers {} after the move: {answer:?}", w.client.id());
        }
        check_history(&db, &writers).await;
        for w in &writers {
            assert_eq!(w.acked.len(), 25, "trial {trial}: {} had every action applied", w.client.id());
        }
        let resumes: Vec<usize> = writers.iter().map(|w| w.resumes).collect();
        assert_eq!(&resumes[1..], &[0, 0], "trial {trial}: the sessions on the surviving nodes kept going");
        eprintln!(
            "failover trial {trial}: every writer settled {:?} after the kill; resumes {resumes:?}",
            pauses[trial]
        );
    }
    pauses.sort();
    eprintln!(
        "failover: {trials} trials, pause until every writer settled: median {:?}, max {:?}",
        pauses[trials / 2],
        pauses[trials - 1]
    );
}

/// A client that writes through one node and, when its session ends, resumes at another one
/// that is up, sending again what the room had not processed (by the welcome's `acked`).
struct Writer {
    client: Client,
    /// Index of the node it is connected to.
    at: usize,
    /// Its object and the next action id.
    n: String,
    next_id: u64,
    /// Sent and not yet seen applied: id to its change.
    pending: std::collections::BTreeMap<u64, objectsync::model::Change>,
    /// Seen applied (its own update came back).
    acked: Vec<u64>,
    /// Times it resumed.
    resumes: usize,
}

impl Writer {
    async fn join(nodes: &[Option<ServerProcess>], at: usize, room: &str, n: &str) -> Writer {
        let node = nodes[at].as_ref().expect("a running node");
        let client = connect_retrying(node, room, None).await;
        Writer { client, at, n: n.to_owned(), next_id: 1, pending: Default::default(), acked: Vec::new(), resumes: 0 }
    }

    /// Sends `count` moves without waiting.
    async fn send(&mut self, nodes: &[Option<ServerProcess>], count: usize) {
        for _ in 0..count {
            let id = self.next_id;
            self.next_id += 1;
            let change = set_x(&self.n, (id % 1999) as i64);
            self.pending.insert(id, change.clone());
            let msg = ClientMessage::Action { id, base: self.client.version(), changes: vec![change], step: None };
            if self.client.send(&msg).await.is_err() {
                self.resume(nodes, "board").await;
            }
        }
    }

    /// Reads until every sent action was seen applied, resuming when the session ends.
    async fn settle(&mut self, nodes: &[Option<ServerProcess>]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !self.pending.is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "{} did not settle: {:?}", self.client.id(), self.pending);
            match tokio::time::timeout(Duration::from_secs(5), self.client.next_event()).await {
                Ok(Ok(Event::Update { origin, action: Some(id), .. })) if origin == self.client.id() => {
                    if self.pending.remove(&id).is_some() {
                        self.acked.push(id);
                    }
                }
                Ok(Ok(Event::Reject { action, code, reason })) => {
                    panic!("{}: action {action} refused: {code} {reason}", self.client.id())
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    eprintln!("{} resumes: {e}", self.client.id());
                    self.resume(nodes, "board").await;
                }
                Err(_) => {
                    eprintln!(
                        "{} resumes: nothing for 5 s, {} actions unsettled",
                        self.client.id(),
                        self.pending.len()
                    );
                    self.resume(nodes, "board").await;
                }
            }
        }
    }

    /// Resumes at the first running node from its own on, and sends again what the room did not
    /// process.
    async fn resume(&mut self, nodes: &[Option<ServerProcess>], room: &str) {
        self.resumes += 1;
        let at = (0..nodes.len()).map(|i| (self.at + i) % nodes.len()).find(|&i| nodes[i].is_some());
        self.at = at.expect("a running node");
        let node = nodes[self.at].as_ref().expect("running");
        let point = (self.client.resume_point(), self.client.mirror().clone());
        self.client = connect_retrying(node, room, Some(point)).await;
        let acked = self.client.acked();
        // Processed before the session ended: their updates are in the catch-up, or were seen.
        let resend: Vec<(u64, objectsync::model::Change)> =
            self.pending.range(acked + 1..).map(|(id, c)| (*id, c.clone())).collect();
        for (id, change) in resend {
            let msg = ClientMessage::Action { id, base: self.client.version(), changes: vec![change], step: None };
            let _ = self.client.send(&msg).await;
        }
    }
}

/// A client of node 1 (which so holds the room) that created the object the writers move, and
/// a writer at each node of `at`.
async fn writers_at(nodes: &[Option<ServerProcess>], at: std::ops::Range<usize>) -> (Client, Vec<Writer>) {
    let mut creator = connect(nodes[0].as_ref().expect("node 1"), "board").await;
    let n = creator.new_object_id().to_string();
    within(creator.act(vec![create_node(&n, 0)])).await.expect("create");
    let mut writers = Vec::new();
    for at in at {
        writers.push(Writer::join(nodes, at, "board", &n).await);
    }
    (creator, writers)
}

/// Connects (or resumes) at `node`, retrying while the room is unavailable there (4002, 4008:
/// held by a node that stopped, until its lease runs out).
async fn connect_retrying(node: &ServerProcess, room: &str, resume: Option<(Resume, Mirror)>) -> Client {
    let started = std::time::Instant::now();
    loop {
        let options = ConnectOptions { resume: resume.clone(), ..ConnectOptions::default() };
        match Client::connect(&node.url(room), options).await {
            Ok(client) => return client,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not connect to {room} at {}: {e}", node.addr),
        }
    }
}

/// The room's log in PostgreSQL: (version, origin, action), in order.
async fn stored_log(db: &str, room: &str) -> Vec<(i64, Option<String>, Option<i64>)> {
    let (client, connection) = tokio_postgres::connect(db, tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(connection);
    let rows = client
        .query("SELECT version, origin, action FROM objectsync_log WHERE room = $1 ORDER BY version", &[&room])
        .await
        .expect("query");
    drop(client);
    let _ = task.await;
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

/// Every update stored once, without a gap, and every action a writer saw applied among them
/// exactly once.
async fn check_history(db: &str, writers: &[Writer]) {
    let log = stored_log(db, "board").await;
    let versions: Vec<i64> = log.iter().map(|e| e.0).collect();
    let first = versions.first().copied().unwrap_or(1);
    assert_eq!(versions, (first..first + log.len() as i64).collect::<Vec<_>>(), "no gap in the stored versions");
    let mut seen = std::collections::HashSet::new();
    for (v, origin, action) in &log {
        if let (Some(o), Some(a)) = (origin, action) {
            assert!(seen.insert((o.clone(), *a)), "action {a} of {o} stored twice (again at {v})");
        }
    }
    for w in writers {
        for id in &w.acked {
            assert!(
                seen.contains(&(w.client.id().to_string(), *id as i64)),
                "{}'s action {id} is stored",
                w.client.id()
            );
        }
    }
}

#[tokio::test]
async fn a_holder_paused_past_its_lease_writes_nothing_and_its_clients_end_on_the_new_history() {
    let Cluster { _pg, db, redis: _redis, nodes } = three_nodes().await;
    let mut nodes: Vec<Option<ServerProcess>> = nodes.into_iter().map(Some).collect();
    let (_creator, mut writers) = writers_at(&nodes, 0..3).await;
    for w in &mut writers {
        w.send(&nodes, 10).await;
        w.settle(&nodes).await;
    }
    let paused = nodes[0].take().expect("node 1");
    paused.signal(libc::SIGSTOP);
    // Node 1's writer sends into the paused node; the others go on through nodes 2 and 3, which
    // take the room once node 1's lease ran out.
    writers[0].send(&nodes, 5).await;
    for w in &mut writers[1..] {
        w.send(&nodes, 10).await;
        w.settle(&nodes).await;
    }
    // Node 1 wakes up: what it applies in memory is fenced, its sessions close, and its writer
    // resumes at another node, sending again what was never processed.
    paused.signal(libc::SIGCONT);
    writers[0].settle(&nodes).await;
    assert!(node_metric(&paused, "fenced_writes").await >= 1.0, "node 1's write was fenced");
    for w in &mut writers {
        w.send(&nodes, 5).await;
        w.settle(&nodes).await;
    }
    check_history(&db, &writers).await;
    let resumes: Vec<usize> = writers.iter().map(|w| w.resumes).collect();
    eprintln!("paused holder: resumes per writer (nodes 1, 2, 3) {resumes:?}");
    assert_eq!(&resumes[1..], &[0, 0], "the sessions on nodes 2 and 3 kept going");
    assert_eq!(writers[0].acked.len(), 20, "node 1's writer: everything applied once, on the new history");
    for w in &writers[1..] {
        assert_eq!(w.acked.len(), 25, "{}: every action applied", w.client.id());
    }
    drop(paused);
}

#[tokio::test]
async fn a_relay_that_misses_updates_fills_them_from_postgresql_before_anything_else() {
    let pg = Postgres::start().await;
    let db = pg.database().await;
    let redis = Redis::start().await;
    // Node 1 holds the room (heartbeats rare: only updates go by); node 2's relay keeps at
    // most 64 messages waiting, so a burst of 300 overflows it and it misses some.
    let one = cluster_node_with(&db, &redis.url(), "node-1", &["cluster_heartbeat_ms=5000"]);
    let two = cluster_node_with(
        &db,
        &redis.url(),
        "node-2",
        &["cluster_subscription_len_max=64", "cluster_heartbeat_ms=5000"],
    );
    let mut w = connect(&one, "board").await;
    let n = w.new_object_id().to_string();
    let created = within(w.act(vec![create_node(&n, 0)])).await.expect("create");
    let mut r = connect(&two, "board").await;
    let mut last = created;
    for x in 1..=300 {
        last = within(w.send_action(vec![set_x(&n, x)])).await.expect("send");
    }
    let last = within(w.wait_ack(last)).await.expect("acknowledged");
    let mut seen = Seen::new();
    updates_until(&mut r, last, &mut seen).await;
    let versions: Vec<u64> = seen.iter().map(|u| u.0).collect();
    assert_eq!(versions, (created + 1..=last).collect::<Vec<_>>(), "every update, in order, once");
    assert_eq!(x_of(&r, &n), Some(300));
    let fills = node_metric(&two, "relay_gap_fills").await;
    assert!(fills >= 1.0, "node 2 missed updates and filled them from PostgreSQL ({fills} fills)");
}

#[tokio::test]
async fn a_graceful_stop_of_the_holder_hands_the_room_over_without_closing_other_nodes_sessions() {
    let Cluster { _pg, db, redis: _redis, nodes } = three_nodes().await;
    let mut nodes: Vec<Option<ServerProcess>> = nodes.into_iter().map(Some).collect();
    let (_creator, mut writers) = writers_at(&nodes, 1..3).await;
    for w in &mut writers {
        w.send(&nodes, 10).await;
        w.settle(&nodes).await;
    }
    let stopping = nodes[0].take().expect("node 1");
    stopping.signal(libc::SIGTERM);
    let stopped = std::time::Instant::now();
    for w in &mut writers {
        w.send(&nodes, 10).await;
        w.settle(&nodes).await;
    }
    let pause = stopped.elapsed();
    check_history(&db, &writers).await;
    for w in &writers {
        assert_eq!(w.acked.len(), 20, "{}: every action applied", w.client.id());
        assert_eq!(w.resumes, 0, "{}: its session went on", w.client.id());
    }
    // The lease (1.5 s) was released, not waited for.
    assert!(pause < Duration::from_millis(1400), "the room moved at once ({pause:?})");
    drop(stopping);
}
