//! The PostgreSQL store against a real PostgreSQL server ([`Postgres`]): the same store contract
//! as SQLite's, the lease that gives each room one writing node (fenced by its epoch), and a
//! server whose rooms live in PostgreSQL, picked up by another node.

use crate::databases::Postgres;
use crate::harness::{create_node, set_x, until_closed, within, ServerProcess, TestServer, DEADLINE};
use objectsync::client::{Client, ClientError, ConnectOptions};
use objectsync::model::{DocSnapshot, NodeSnapshot};
use objectsync::protocol::{close, ClientMessage};
use objectsync::store::{
    KnownClient, LogEntry, PostgresOptions, PostgresStore, RoomSnapshot, SqliteStore, Store, StoreError, WriteBatch,
};
use std::sync::Arc;
use std::time::Duration;

fn snapshot(version: u64, clients: Vec<KnownClient>) -> RoomSnapshot {
    let root =
        NodeSnapshot { id: "root".into(), type_name: "Root".into(), attrs: Default::default(), children: Vec::new() };
    RoomSnapshot { doc: DocSnapshot { version, next_server_id: 1, root }, clients, clients_floor: 0, schema: None }
}

fn entry(version: u64) -> LogEntry {
    LogEntry {
        version,
        origin: Some("c1".into()),
        action: Some(version),
        changes: format!("[{version}]"),
        schema_version: 1,
    }
}

fn client(id: &str, last_action: u64) -> KnownClient {
    KnownClient { id: id.into(), last_action }
}

/// What every durable store must do, as a room uses it: load (claiming the room, for a store
/// shared by nodes), append idempotently by version, snapshot and compact, keep the highest
/// action id per client.
async fn store_contract(store: &dyn Store, claims_rooms: bool) {
    assert!(store.durable());
    assert!(store.load("r").await.expect("load").is_none(), "a new room is not stored");
    store.save_snapshot("r", &snapshot(0, Vec::new()), 0).await.expect("first snapshot");
    for v in 1..=10 {
        let batch = WriteBatch { entries: vec![entry(v)], clients: vec![client("c1", v)] };
        store.append("r", batch).await.expect("append");
    }
    let again = WriteBatch {
        entries: vec![LogEntry { changes: "[\"other\"]".into(), ..entry(3) }],
        clients: vec![client("c1", 2)],
    };
    store.append("r", again).await.expect("an entry again is no change");
    let r = store.load("r").await.expect("load").expect("stored");
    assert_eq!(r.log.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert_eq!(r.log[2], entry(3), "the first write of a version stays");
    assert_eq!(r.clients, vec![client("c1", 10)], "the highest action id stays");
    store.save_snapshot("r", &snapshot(10, vec![client("c2", 4)]), 7).await.expect("snapshot");
    let r = store.load("r").await.expect("load").expect("stored");
    assert_eq!(r.snapshot.as_ref().map(|s| s.doc.version), Some(10));
    assert_eq!(r.log.iter().map(|e| e.version).collect::<Vec<_>>(), vec![8, 9, 10], "compacted behind");
    assert_eq!(r.clients, vec![client("c2", 4)], "the snapshot's clients replace the records");
    store.save_snapshot("r", &snapshot(5, Vec::new()), 0).await.expect("an older snapshot");
    let r = store.load("r").await.expect("load").expect("stored");
    assert_eq!(r.snapshot.map(|s| s.doc.version), Some(10), "an older snapshot never replaces a newer one");
    let unclaimed = store.save_snapshot("s", &snapshot(0, Vec::new()), 0).await;
    assert_eq!(unclaimed.is_err(), claims_rooms, "a room not loaded first: {unclaimed:?}");
    let rooms: Vec<String> = if claims_rooms { vec!["r".into()] } else { vec!["r".into(), "s".into()] };
    assert_eq!(store.rooms().await.expect("rooms"), rooms);
}

fn options(node: &str, lease_ms: u64, lease_renew_ms: u64) -> PostgresOptions {
    PostgresOptions { lease_ms, lease_renew_ms, ..PostgresOptions::new(node) }
}

#[tokio::test]
async fn postgres_and_sqlite_keep_the_same_store_contract() {
    let pg = Postgres::start().await;
    let store = PostgresStore::connect(&pg.database().await, PostgresOptions::new("n1")).await.expect("connect");
    store_contract(&store, true).await;
    let dir = tempfile::tempdir().expect("tempdir");
    store_contract(&SqliteStore::open(dir.path()).expect("open"), false).await;
}

#[tokio::test]
async fn a_node_that_lost_its_lease_can_never_write_the_room_again() {
    let pg = Postgres::start().await;
    let url = pg.database().await;
    // Node a never renews (as if paused); its lease runs 300 ms.
    let a = PostgresStore::connect(&url, options("a", 300, 3_600_000)).await.expect("a");
    let b = PostgresStore::connect(&url, options("b", 10_000, 2_000)).await.expect("b");
    a.load("r").await.expect("a claims the room");
    a.save_snapshot("r", &snapshot(0, Vec::new()), 0).await.expect("a writes");
    a.append("r", WriteBatch { entries: vec![entry(1)], clients: Vec::new() }).await.expect("a appends");
    match b.load("r").await {
        Err(StoreError::HeldElsewhere { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("b must not get a room a holds: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = b.load("r").await.expect("the lease ran out: b claims the room").expect("stored");
    assert_eq!(r.log.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1], "b sees what a committed");
    b.append("r", WriteBatch { entries: vec![entry(2)], clients: Vec::new() }).await.expect("b appends");
    // a wakes up and writes as if nothing happened: refused, nothing written.
    let stale = LogEntry { changes: "[\"from a\"]".into(), ..entry(2) };
    match a.append("r", WriteBatch { entries: vec![stale, entry(3)], clients: vec![client("ca", 9)] }).await {
        Err(StoreError::Fenced { reason, .. }) => assert!(reason.contains("node b"), "{reason}"),
        other => panic!("a must be fenced: {other:?}"),
    }
    assert!(matches!(a.save_snapshot("r", &snapshot(3, Vec::new()), 3).await, Err(StoreError::Fenced { .. })));
    let r = b.load("r").await.expect("b reloads").expect("stored");
    assert_eq!(r.log, vec![entry(1), entry(2)], "only b's history, nothing of a after the takeover");
    assert!(r.clients.is_empty());
}

#[tokio::test]
async fn a_renewed_lease_is_kept_and_a_released_one_is_free_at_once() {
    let pg = Postgres::start().await;
    let url = pg.database().await;
    let a = PostgresStore::connect(&url, options("a", 300, 50)).await.expect("a");
    let b = PostgresStore::connect(&url, options("b", 300, 50)).await.expect("b");
    a.load("r").await.expect("a claims");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(matches!(b.load("r").await, Err(StoreError::HeldElsewhere { .. })), "a renews its lease");
    a.release("r").await.expect("release");
    b.load("r").await.expect("released: b claims at once");
    assert!(matches!(a.append("r", WriteBatch::default()).await, Err(StoreError::Fenced { .. })));
}

#[tokio::test]
async fn a_server_on_postgres_acknowledges_after_commit_and_another_node_carries_on() {
    let pg = Postgres::start().await;
    let url = pg.database().await;
    let store = Arc::new(PostgresStore::connect(&url, PostgresOptions::new("node-1")).await.expect("connect"));
    let one = TestServer::start_with(TestServer::builder().store(store)).await;
    let mut c = one.client("board").await;
    let n = c.new_object_id();
    within(c.act(vec![create_node(&n, 1)])).await.expect("create");
    for x in 2..=20 {
        within(c.act(vec![set_x(&n, x)])).await.expect("acknowledged");
    }
    let before = one.snapshot("board").await;
    drop(c);
    // A graceful stop saves the room and releases its lease: another node has it at once.
    one.stop().await;
    let store = Arc::new(PostgresStore::connect(&url, PostgresOptions::new("node-2")).await.expect("connect"));
    let two = TestServer::start_with(TestServer::builder().store(store)).await;
    assert_eq!(two.snapshot("board").await, before, "node 2 carries on from what node 1 acknowledged");
    two.stop().await;
}

/// The real binary, node `node` of the nodes sharing the database at `url`, with a short lease.
fn node(url: &str, node: &str) -> ServerProcess {
    ServerProcess::spawn(&mut node_command(url, node))
}

/// The command of [`node`], for more arguments (the cluster's tests add `--redis`).
pub(crate) fn node_command(url: &str, node: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_objectsync"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent", "--postgres", url, "--node-id", node]);
    cmd.args(["--lease-ms", "1500", "--lease-renew-ms", "300"]);
    cmd
}

/// Connects to `room` on `node` as soon as it has the room (it refuses it with 4002 while
/// another node holds it); the wait it took.
async fn connect_when_held(node: &ServerProcess, room: &str) -> (Client, Duration) {
    let started = std::time::Instant::now();
    loop {
        // Each attempt within the deadline: a join that waits for the room forever fails here.
        match within(Client::connect(&node.url(room), ConnectOptions::default())).await {
            Ok(client) => return (client, started.elapsed()),
            Err(ClientError::Closed { code: 4002, .. }) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the node did not take the room: {e}"),
        }
    }
}

fn x_of(c: &Client, n: &str) -> Option<i64> {
    c.mirror().value(n, "pos").and_then(|p| p.as_dict()).and_then(|p| p.get("x")).and_then(|x| x.as_int())
}

/// Two nodes of the binary on one database, and a client of node 1 whose node `n` was created
/// and then moved to x = 1..=`moves`, every move acknowledged by node 1.
struct Nodes {
    _pg: Postgres,
    one: ServerProcess,
    two: ServerProcess,
    c: Client,
    n: String,
}

async fn two_nodes_and_a_writer(moves: i64) -> Nodes {
    let pg = Postgres::start().await;
    let url = pg.database().await;
    let one = node(&url, "node-1");
    let two = node(&url, "node-2");
    let mut c = within(Client::connect(&one.url("board"), ConnectOptions::default())).await.expect("connect to node 1");
    let n = c.new_object_id().to_string();
    within(c.act(vec![create_node(&n, 0)])).await.expect("create");
    for x in 1..=moves {
        within(c.act(vec![set_x(&n, x)])).await.expect("acknowledged by node 1");
    }
    Nodes { _pg: pg, one, two, c, n }
}

#[tokio::test]
async fn an_owner_paused_past_its_lease_writes_nothing_when_it_wakes_up() {
    let Nodes { _pg, one, two, mut c, n } = two_nodes_and_a_writer(10).await;
    one.signal(libc::SIGSTOP);
    // Five more actions reach node 1's socket while it sleeps: never acknowledged.
    for (i, x) in (11..=15).enumerate() {
        let msg =
            ClientMessage::Action { id: 100 + i as u64, base: c.version(), changes: vec![set_x(&n, x)], step: None };
        c.send(&msg).await.expect("send");
    }
    let (mut d, _) = connect_when_held(&two, "board").await;
    assert_eq!(x_of(&d, &n), Some(10), "node 2 has what node 1 acknowledged");
    for x in [21, 22, 23] {
        within(d.act(vec![set_x(&n, x)])).await.expect("acknowledged by node 2");
    }
    one.signal(libc::SIGCONT);
    // Node 1 wakes up, applies the five actions in memory, and cannot store them: the room
    // closes its sessions with 1011 and nothing of it reaches the database.
    let (code, reason) = within(until_closed(&mut c)).await;
    assert_eq!(code, close::STORE_FAILED, "{reason}");
    let v = within(d.act(vec![set_x(&n, 24)])).await.expect("node 2's session went on");
    let (fresh, _) = connect_when_held(&two, "board").await;
    assert_eq!(fresh.version(), v);
    assert_eq!(x_of(&fresh, &n), Some(24), "node 2's history only: none of node 1's unacknowledged moves");
    drop(one);
}

#[tokio::test]
async fn after_the_owner_is_killed_another_node_takes_the_room_with_every_acknowledged_update() {
    let acked = 30;
    let Nodes { _pg, one, two, c, n } = two_nodes_and_a_writer(acked).await;
    // While node 1 holds the room, node 2 refuses it (it is not forwarded yet: 4002).
    match Client::connect(&two.url("board"), ConnectOptions::default()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 4002, "{reason}");
            assert!(reason.contains("node-1"), "{reason}");
        }
        other => panic!("node 2 must refuse a room node 1 holds: {:?}", other.map(|_| ())),
    }
    let last = c.version();
    one.kill(); // SIGKILL: no save, no release; the lease runs out
    let (mut d, pause) = connect_when_held(&two, "board").await;
    assert!(pause >= Duration::from_millis(900), "node 2 waited for the lease ({pause:?})");
    let x = x_of(&d, &n);
    assert_eq!(x, Some(acked), "every acknowledged update is on node 2");
    assert_eq!(d.version(), last, "node 2 starts at the version node 1 acknowledged");
    let v = within(d.act(vec![set_x(&n, 99)])).await.expect("node 2 accepts writes");
    assert_eq!(v, last + 1, "and goes on without a gap");
}
