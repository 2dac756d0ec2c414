//! Store faults over real sockets and a real SQLite file, injected by a store that wraps it: a
//! disk that stalls (the room's memory stays bounded and nothing is lost once it recovers) and
//! a disk that fails for one room (its writers get 1011, the other rooms carry on, nothing
//! acknowledged is lost).

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
}

impl FaultyStore {
    fn new(dir: &std::path::Path) -> Arc<FaultyStore> {
        let (open, _) = tokio::sync::watch::channel(true);
        Arc::new(FaultyStore { inner: SqliteStore::open(dir).expect("open"), open, failing_room: Mutex::new(None) })
    }
    async fn write_allowed(&self, room: &str) -> Result<(), StoreError> {
        if self.failing_room.lock().expect("lock").as_deref() == Some(room) {
            return Err(StoreError::Io { room: room.into(), reason: "No space left on device (injected)".into() });
        }
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
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
        self.inner.load(room).await
    }
    async fn append(&self, room: &str, batch: WriteBatch) -> Result<(), StoreError> {
        self.write_allowed(room).await?;
        self.inner.append(room, batch).await
    }
    async fn save_snapshot(&self, room: &str, snapshot: &RoomSnapshot, compact_to: u64) -> Result<(), StoreError> {
        self.write_allowed(room).await?;
        self.inner.save_snapshot(room, snapshot, compact_to).await
    }
    async fn rooms(&self) -> Result<Vec<String>, StoreError> {
        self.inner.rooms().await
    }
}

fn metric(ts: &TestServer, name: &str) -> i64 {
    ts.server
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as i64)
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
        highest = highest.max(metric(&ts, "objectsync_held_bytes"));
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
