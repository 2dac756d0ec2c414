//! Store faults over real sockets and a real SQLite file, injected by a store that wraps it: a
//! disk that stalls (the room's memory stays bounded and nothing is lost once it recovers) and
//! a disk that fails for one room (its writers get 1011, the other rooms carry on, nothing
//! acknowledged is lost), and one room held at the store (the other rooms load, join and unload
//! as usual).

use crate::harness::*;
use objectsync::client::{Client, ConnectOptions};
use objectsync::store::{RoomSnapshot, SqliteStore, Store, StoreError, StoredRoom, WriteBatch};
use std::sync::{Arc, Mutex};

/// A real [`SqliteStore`] whose writes can be held back (a stalled disk) or made to fail for one
/// room (a full disk).
struct FaultyStore {
    inner: SqliteStore,
    /// `false`: writes wait.
    open: tokio::sync::watch::Sender<bool>,
    failing_room: Mutex<Option<String>>,
    /// Each write takes a permit (none are added unless a test does): writes one at a time.
    permits: Option<tokio::sync::Semaphore>,
    /// Client records of the appends committed so far: (client, last action).
    committed_clients: Mutex<Vec<(String, u64)>>,
    /// Appends begun (waiting for their permit included).
    appends_begun: std::sync::atomic::AtomicUsize,
    /// Every operation on this room (loads included) waits at the store until it is `None` again.
    held_room: tokio::sync::watch::Sender<Option<String>>,
    /// The loads and snapshots begun and finished, in order (`"load r"`, `"loaded r"`, `"save r"`,
    /// `"saved r"`): to wait for one, and to check their order.
    ops: tokio::sync::watch::Sender<Vec<String>>,
}

impl FaultyStore {
    fn new(dir: &std::path::Path) -> Arc<FaultyStore> {
        Self::build(dir, None)
    }
    /// A store whose writes each wait for a permit given by [`FaultyStore::allow_writes`].
    fn with_permits(dir: &std::path::Path) -> Arc<FaultyStore> {
        Self::build(dir, Some(tokio::sync::Semaphore::new(0)))
    }
    fn build(dir: &std::path::Path, permits: Option<tokio::sync::Semaphore>) -> Arc<FaultyStore> {
        let (open, _) = tokio::sync::watch::channel(true);
        Arc::new(FaultyStore {
            inner: SqliteStore::open(dir).expect("open"),
            open,
            failing_room: Mutex::new(None),
            permits,
            committed_clients: Mutex::new(Vec::new()),
            appends_begun: Default::default(),
            held_room: tokio::sync::watch::channel(None).0,
            ops: tokio::sync::watch::channel(Vec::new()).0,
        })
    }
    /// Holds every store operation on `room` (or none) where it is until the next call.
    fn hold_room(&self, room: Option<&str>) {
        self.held_room.send_replace(room.map(str::to_owned));
    }
    async fn not_held(&self, room: &str) {
        let mut rx = self.held_room.subscribe();
        let _ = rx.wait_for(|held| held.as_deref() != Some(room)).await;
    }
    fn record(&self, op: String) {
        self.ops.send_modify(|ops| ops.push(op));
    }
    /// Waits until operation `op` has been recorded `n` times.
    async fn wait_op(&self, op: &str, n: usize) {
        let mut rx = self.ops.subscribe();
        let _ = within(rx.wait_for(|ops| ops.iter().filter(|o| *o == op).count() >= n)).await;
    }
    fn allow_writes(&self, n: usize) {
        if let Some(p) = &self.permits {
            p.add_permits(n);
        }
    }
    async fn write_allowed(&self, room: &str) -> Result<(), StoreError> {
        if self.failing_room.lock().expect("lock").as_deref() == Some(room) {
            return Err(StoreError::Io { room: room.into(), reason: "No space left on device (injected)".into() });
        }
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
        if let Some(p) = &self.permits {
            if let Ok(permit) = p.acquire().await {
                permit.forget();
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    fn durable(&self) -> bool {
        true
    }
    fn secret(&self) -> [u8; 32] {
        self.inner.secret()
    }
    async fn load(&self, room: &str) -> Result<Option<StoredRoom>, StoreError> {
        self.record(format!("load {room}"));
        self.not_held(room).await;
        let stored = self.inner.load(room).await;
        self.record(format!("loaded {room}"));
        stored
    }
    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        self.appends_begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.not_held(room).await;
        self.write_allowed(room).await?;
        let clients: Vec<(String, u64)> = batch.clients.iter().map(|c| (c.id.to_string(), c.last_action)).collect();
        self.inner.append(room, batch).await?;
        self.committed_clients.lock().expect("lock").extend(clients);
        Ok(())
    }
    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError> {
        self.record(format!("save {room}"));
        self.not_held(room).await;
        self.write_allowed(room).await?;
        self.inner.save_snapshot(room, snapshot, compact_to).await?;
        self.record(format!("saved {room}"));
        Ok(())
    }
    async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.inner.rooms().await
    }
}

/// While the disk stalls, a room holds at most `room_held_bytes_max` of updates waiting for it
/// (and its inbox at most `room_inbox_bytes_max`); the writer is slowed, not the server's
/// memory grown. When the disk recovers every action is answered and nothing is lost.
#[tokio::test]
async fn a_stalled_disk_bounds_what_a_room_holds_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FaultyStore::new(dir.path());
    let held_max = 256 << 10;
    let limits = objectsync::ServerLimits {
        room_held_bytes_max: held_max,
        room_inbox_bytes_max: 256 << 10,
        ..TestServer::builder_limits()
    };
    let ts = TestServer::start_with(TestServer::builder().limits(limits).store(store.clone())).await;
    let mut writer = ts.client("r").await;
    let n = writer.new_object_id();
    within(writer.act(vec![create_node(&n, 1)])).await.expect("created");
    store.open.send_replace(false);
    let big = "t".repeat(20_000);
    let mut last = 0;
    for i in 0..100 {
        let title = format!("{big}{i}");
        last = within(writer.send_action(vec![set_title(&n, &title)])).await.expect("send");
    }
    // Sampled while the disk stalls (bounded: 50 samples): never more than the bound and the
    // one update that crossed it.
    let mut highest = 0;
    for _ in 0..50 {
        highest = highest.max(metric(&ts, "objectsync_held_bytes") as i64);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(highest > 0, "updates are held while the disk stalls");
    assert!(highest <= (held_max + 64 * 1024) as i64, "{highest} bytes held");
    store.open.send_replace(true);
    within(writer.wait_ack(last)).await.expect("every action is answered once the disk recovers");
    let fresh = ts.client("r").await;
    assert_eq!(fresh.mirror().value(&n, "title").and_then(|t| t.as_str().map(str::to_owned)), Some(format!("{big}99")));
    ts.stop().await;
}

/// A disk that fails for one room: that room's writers (one still sending) are closed with 1011
/// and its reason, the other rooms keep serving, and what was acknowledged before is there
/// when the disk is back.
#[tokio::test]
async fn a_failing_disk_closes_one_room_with_1011_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FaultyStore::new(dir.path());
    let ts = TestServer::start_with(TestServer::builder().store(store.clone())).await;
    let mut doomed = ts.client("doomed").await;
    let mut fine = ts.client("fine").await;
    let n = doomed.new_object_id();
    within(doomed.act(vec![create_node(&n, 1)])).await.expect("created");
    let acked = within(doomed.act(vec![set_title(&n, "acknowledged")])).await.expect("acked");
    *store.failing_room.lock().expect("lock") = Some("doomed".into());
    // Still sending when the room fails.
    for i in 0..50 {
        if doomed.send_action(vec![set_title(&n, &format!("lost {i}"))]).await.is_err() {
            break;
        }
    }
    let (code, reason) = until_closed(&mut doomed).await;
    assert_eq!(code, 1011, "{reason}");
    assert!(reason.contains("No space left"), "{reason}");
    let m = fine.new_object_id();
    within(fine.act(vec![create_node(&m, 2)])).await.expect("the other room carries on");
    *store.failing_room.lock().expect("lock") = None;
    let back = within(Client::connect(&ts.url("doomed"), ConnectOptions::default())).await.expect("rejoin");
    assert!(back.version() >= acked);
    assert_eq!(
        back.mirror().value(&n, "title").and_then(|t| t.as_str().map(str::to_owned)),
        Some("acknowledged".into())
    );
    ts.stop().await;
}

/// A reject is heard only once the batch holding its client record is committed, not with an
/// earlier batch that was in flight when it was decided: otherwise a crash in between would make
/// `acked` forget an action the client was told was refused.
#[tokio::test]
async fn a_reject_waits_for_its_own_record_not_an_earlier_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FaultyStore::with_permits(dir.path());
    let ts = TestServer::start_with(objectsync::presets::demo::server().store(store.clone())).await;
    store.allow_writes(1); // the room's first snapshot
    let mut c = ts.client("r").await;
    let n = c.new_object_id();
    // Action 1 (applied) goes to the store in batch 1, which waits; action 2 is refused meanwhile:
    // its record goes in batch 2.
    let applied = within(c.send_action(vec![create_node(&n, 1)])).await.expect("send");
    within(async {
        while store.appends_begun.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    let refused =
        within(c.send_action(vec![objectsync::model::Change::Delete { id: "root".into() }])).await.expect("send");
    // Only batch 1 may commit.
    store.allow_writes(1);
    within(c.wait_ack(applied)).await.expect("action 1 acknowledged once batch 1 committed");
    // A service result is never held: anything released before it is in the inbox by now.
    within(c.call("echo", objectsync::model::Value::Int(1))).await.expect("echo");
    let early = tokio::time::timeout(std::time::Duration::ZERO, c.next_event()).await;
    assert!(
        !matches!(early, Ok(Ok(objectsync::client::Event::Reject { .. }))),
        "the reject was sent before its client record was committed: {early:?}"
    );
    store.allow_writes(100);
    match within(c.wait_ack(refused)).await {
        Err(objectsync::client::ClientError::Rejected { code, .. }) => assert_eq!(code, "root_immutable"),
        other => panic!("{other:?}"),
    }
    let committed = store.committed_clients.lock().expect("lock").clone();
    assert!(committed.iter().any(|(id, last)| id == c.id() && *last >= refused), "{committed:?}");
    ts.stop().await;
}

/// Loading or saving one room never waits for another: while room `a`'s load, then its unload's
/// save, is held at the store, clients still join rooms `b` and `c` (loaded from the store
/// then). And a room being unloaded is not loaded again before its save is done: a join of `a`
/// during the held save waits for it, then finds what `a` had.
#[tokio::test]
async fn a_room_held_at_the_store_does_not_hold_up_other_rooms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FaultyStore::new(dir.path());
    let limits = objectsync::ServerLimits { room_unload_grace_ms: 100, ..TestServer::builder_limits() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits).store(store.clone())).await;
    let connect = |room: &str| {
        let url = ts.url(room);
        tokio::spawn(async move { Client::connect(&url, ConnectOptions::default()).await })
    };

    // Room a's load is held: a client joins room b meanwhile.
    store.hold_room(Some("a"));
    let joining_a = connect("a");
    store.wait_op("load a", 1).await;
    let _b = ts.client("b").await;
    store.hold_room(None);
    let mut a = within(joining_a).await.expect("task").expect("a joins once its load goes on");
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("created");

    // Room a's unload saves, held: a client joins room c (a cold room, loaded meanwhile); a
    // client joining a waits for the save.
    store.hold_room(Some("a"));
    drop(a);
    store.wait_op("save a", 2).await;
    let joining_a = connect("a");
    let _c = ts.client("c").await;
    let ops = store.ops.borrow().clone();
    assert!(ops.contains(&"loaded c".to_owned()), "{ops:?}");
    assert_eq!(ops.iter().filter(|o| *o == "load a").count(), 1, "a was loaded again while it was saved: {ops:?}");
    store.hold_room(None);
    let a = within(joining_a).await.expect("task").expect("a joins once it is saved");
    assert!(a.mirror().get(&n).is_some(), "the node survived the unload");
    let ops = store.ops.borrow().clone();
    let saved = ops.iter().rposition(|o| o == "saved a").expect("saved");
    let reloaded = ops.iter().rposition(|o| o == "load a").expect("loaded again");
    assert!(saved < reloaded, "a was loaded again before its save was done: {ops:?}");
    ts.stop().await;
}

/// A load that fails (the store refuses the new room's first snapshot) or is abandoned (its
/// caller gives up while the store holds it) leaves nothing behind: the next ask loads the room
/// afresh instead of waiting for a load that will never finish.
#[tokio::test]
async fn a_failed_or_abandoned_load_frees_the_room_for_the_next_ask() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FaultyStore::new(dir.path());
    let ts = TestServer::start_with(TestServer::builder().store(store.clone())).await;

    *store.failing_room.lock().expect("lock") = Some("a".into());
    for attempt in 1..=2 {
        let refused = within(ts.server.room("a")).await.expect_err("the store refuses room a");
        assert!(refused.to_string().contains("No space left"), "attempt {attempt}: {refused}");
    }
    *store.failing_room.lock().expect("lock") = None;
    within(ts.server.room("a")).await.expect("a loads once the store takes it");

    store.hold_room(Some("b"));
    let server = ts.server.clone();
    let abandoned = tokio::spawn(async move { server.room("b").await });
    store.wait_op("load b", 1).await;
    abandoned.abort();
    assert!(within(abandoned).await.expect_err("aborted").is_cancelled());
    store.hold_room(None);
    within(ts.server.room("b")).await.expect("b loads after the abandoned load");
    ts.stop().await;
}
