//! Rooms that outlive their code: rooms written into a real SQLite file with the cards
//! preset's types of version 1 (a snapshot, then updates logged after it), loaded by a server
//! with the types of version 2 or 3 (renames, a removal, a new kind, a split type, a removed
//! type, a value moved into a new attribute), with and without the migrations; `migrate
//! --dry-run` over a hundred rooms; clients of other types refused.

use crate::harness::{within, TestServer};
use objectsync::client::{Client, ConnectOptions};
use objectsync::model::{Actor, Change, DocSnapshot, Document, TypeRegistry};
use objectsync::presets::cards;
use objectsync::store::{LogEntry, RawRoom, RoomSnapshot, SqliteStore, Store, WriteBatch};
use objectsync::{Server, ServerError};
use serde_json::{json, Value as Json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn changes(v: Json) -> Vec<Change> {
    serde_json::from_value(v).expect("changes")
}

/// Applies `changes` to `doc` as server code, logging the update in `store` when `log` is set.
async fn apply(doc: &mut Document, store: &SqliteStore, room: &str, changes: Vec<Change>, log: bool) {
    let t = doc.apply(&Actor::Server, None, changes).expect("the v1 types accept it");
    if log {
        let entry = LogEntry {
            version: t.version,
            origin: None,
            action: None,
            changes: objectsync::protocol::encode_changes(&t.changes),
        };
        store.append(room, WriteBatch { entries: vec![entry], clients: Vec::new() }).await.expect("append");
    }
}

/// Writes `room` with the types of version 1: one transaction, the snapshot after it, then
/// four updates logged after the snapshot. `size` is the first card's size as written. Returns
/// the room's last version.
async fn write_v1_room(store: &SqliteStore, room: &str, size: &str) -> u64 {
    let types = Arc::new(cards::v1::types());
    let mut doc = Document::with_limits(types.clone(), Default::default());
    let first = changes(json!([
        {"op": "create", "id": "b1", "type": "Board", "parent": "root",
         "attrs": {"title": "Plan", "tags": ["x", 1, true], "meta": {"owner": "ana", "k": 1}}},
        {"op": "create", "id": "c1", "type": "Card", "parent": "b1",
         "attrs": {"text": "hello", "size": size, "legacy": true, "weight": 1.5, "count": 3, "notes": [1, "x"]}},
        {"op": "create", "id": "c2", "type": "Card", "parent": "b1", "attrs": {"text": "big", "size": " 40 ", "count": 20}},
        {"op": "create", "id": "s1", "type": "Scratch", "parent": "b1", "attrs": {"junk": "j"}},
        {"op": "set", "obj": "b1", "attr": "order", "value": ["c1", "s1", "c2"]},
        {"op": "set", "obj": "b1", "attr": "pinned", "value": "s1"},
        {"op": "set", "obj": "b1", "attr": "labels", "value": {"first": "c1", "junk": "s1"}},
    ]));
    apply(&mut doc, store, room, first, false).await;
    let snapshot =
        RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0, schema: Some(types.schema()) };
    store.save_snapshot(room, &snapshot, 0).await.expect("snapshot");
    let tail = [
        json!([{"op": "text_insert", "obj": "c1", "attr": "text", "pos": 5, "text": " world"}]),
        json!([{"op": "set", "obj": "c2", "attr": "size", "value": "7"}]),
        json!([{"op": "create", "id": "c3", "type": "Card", "parent": "b1", "attrs": {"text": "third", "count": 10}},
               {"op": "create", "id": "s2", "type": "Scratch", "parent": "c3"}]),
        json!([{"op": "set", "obj": "b1", "attr": "pinned", "value": "s2"},
               {"op": "dict_set", "obj": "b1", "attr": "labels", "key": "third", "value": "c3"}]),
    ];
    for t in tail {
        apply(&mut doc, store, room, changes(t), true).await;
    }
    doc.version()
}

/// The room written by [`write_v1_room`] as the migration to version 2 says it becomes.
fn expected_v2(version: u64) -> Json {
    json!({"version": version, "next_server_id": 1, "root": {"id": "root", "type": "Root", "children": [
        {"id": "b1", "type": "Board",
         "attrs": {"title": "Plan", "tags": [true, 1, "x"], "meta": {"k": 1, "owner": "ana"},
                   "order": ["c1", "c2"], "pinned": null, "labels": {"first": "c1", "third": "c3"}},
         "children": [
            {"id": "c1", "type": "Card",
             "attrs": {"body": "hello world", "size": 12, "weight": 1.5, "count": 3, "notes": [1, "x"]}},
            {"id": "c2", "type": "BigCard", "attrs": {"body": "big", "size": 7, "weight": 0.0, "count": 20, "notes": []}},
            {"id": "c3", "type": "BigCard", "attrs": {"body": "third", "size": 1, "weight": 0.0, "count": 10, "notes": []}},
         ]},
    ]}})
}

/// The same room at version 3: `body` renamed `content`, a `color` added, `meta.owner` moved.
fn expected_v3(version: u64) -> Json {
    let card = |id: &str, ty: &str, content: &str, size: i64, weight: f64, count: i64, notes: Json| {
        json!({"id": id, "type": ty, "attrs": {"content": content, "color": "white", "size": size,
               "weight": weight, "count": count, "notes": notes}})
    };
    json!({"version": version, "next_server_id": 1, "root": {"id": "root", "type": "Root", "children": [
        {"id": "b1", "type": "Board",
         "attrs": {"title": "Plan", "owner": "ana", "tags": [true, 1, "x"], "meta": {"k": 1},
                   "order": ["c1", "c2"], "pinned": null, "labels": {"first": "c1", "third": "c3"}},
         "children": [
            card("c1", "Card", "hello world", 12, 1.5, 3, json!([1, "x"])),
            card("c2", "BigCard", "big", 7, 0.0, 20, json!([])),
            card("c3", "BigCard", "third", 1, 0.0, 10, json!([])),
         ]},
    ]}})
}

fn server(types: TypeRegistry, dir: &Path) -> objectsync::ServerBuilder {
    Server::builder(types).store(Arc::new(SqliteStore::open(dir).expect("open the store")))
}

fn rows(dir: &Path, room: &str) -> String {
    let raw: RawRoom = SqliteStore::read_raw(dir, room).expect("read the rows");
    serde_json::to_string(&raw).expect("rows as JSON")
}

async fn room_state(ts: &TestServer, room: &str) -> Json {
    let handle = ts.server.room(room).await.expect("the room loads");
    let snapshot: DocSnapshot = within(handle.read(|doc| doc.snapshot())).await.expect("read");
    serde_json::to_value(&snapshot).expect("snapshot as JSON")
}

async fn write_rooms(dir: &Path, rooms: &[(&str, &str)]) -> u64 {
    let store = SqliteStore::open(dir).expect("open");
    let mut last = 0;
    for (room, size) in rooms {
        last = write_v1_room(&store, room, size).await;
    }
    last
}

fn stored_snapshot(dir: &Path, room: &str) -> RoomSnapshot {
    let raw: Json = serde_json::from_str(&rows(dir, room)).expect("rows");
    let text = raw["snapshot"]["text"].as_str().expect("a snapshot").to_owned();
    serde_json::from_str(&text).expect("the snapshot parses")
}

#[tokio::test]
async fn a_room_of_version_1_is_migrated_to_version_2_once_with_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = write_rooms(dir.path(), &[("plan", "12")]).await;
    let types = cards::v2::types();
    let fingerprint = types.fingerprint().to_owned();
    let ts = TestServer::start_with(server(types, dir.path())).await;
    // Every object and value as the migration says, nothing else; one version more.
    assert_eq!(room_state(&ts, "plan").await, expected_v2(last + 1));
    assert_eq!(crate::harness::metric(&ts, "objectsync_room_migrations_total"), 1.0);
    // A client of the new types is let in and sees it; the validators of version 2 hold.
    let options = ConnectOptions { schema: Some(fingerprint.clone()), ..ConnectOptions::default() };
    let mut c = within(Client::connect(&ts.url("plan"), options)).await.expect("connect");
    assert_eq!(c.version(), last + 1);
    let refused = within(c.act(changes(json!([{"op": "set", "obj": "c1", "attr": "size", "value": -1}])))).await;
    assert!(
        matches!(&refused, Err(objectsync::client::ClientError::Rejected { code, .. }) if code == "invalid"),
        "the v2 validator refuses a negative size: {refused:?}"
    );
    drop(c);
    ts.stop().await;
    // Stored at once as a snapshot of version 2, the log before it dropped.
    let stored = stored_snapshot(dir.path(), "plan");
    assert_eq!(stored.schema.as_ref().map(|s| s.version), Some(2));
    assert_eq!(stored.doc.version, last + 1);
    let raw: Json = serde_json::from_str(&rows(dir.path(), "plan")).expect("rows");
    assert_eq!(raw["log"], json!([]), "no catch-up crosses schema versions");
    // Loaded again: nothing to migrate, nothing written.
    let before = rows(dir.path(), "plan");
    let ts = TestServer::start_with(server(cards::v2::types(), dir.path())).await;
    assert_eq!(room_state(&ts, "plan").await, expected_v2(last + 1));
    assert_eq!(crate::harness::metric(&ts, "objectsync_room_migrations_total"), 0.0);
    ts.stop().await;
    assert_eq!(rows(dir.path(), "plan"), before, "the migration ran once");
}

#[tokio::test]
async fn a_chain_of_migrations_brings_version_1_to_version_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = write_rooms(dir.path(), &[("plan", "12")]).await;
    let ts = TestServer::start_with(server(cards::v3::types(), dir.path())).await;
    assert_eq!(room_state(&ts, "plan").await, expected_v3(last + 1));
    ts.stop().await;
    assert_eq!(stored_snapshot(dir.path(), "plan").schema.map(|s| s.version), Some(3));
    // A room already at version 2 takes only the second step.
    let dir = tempfile::tempdir().expect("tempdir");
    let last = write_rooms(dir.path(), &[("plan", "12")]).await;
    let ts = TestServer::start_with(server(cards::v2::types(), dir.path())).await;
    room_state(&ts, "plan").await;
    ts.stop().await;
    let ts = TestServer::start_with(server(cards::v3::types(), dir.path())).await;
    assert_eq!(room_state(&ts, "plan").await, expected_v3(last + 2));
    ts.stop().await;
}

/// Types of version 2 with no migration registered.
fn v2_without_migrations(version: u32) -> TypeRegistry {
    let mut t = TypeRegistry::new().version(version);
    t.register::<cards::v2::Board>();
    t.register::<cards::v2::Card>();
    t.register::<cards::v2::BigCard>();
    t
}

/// Starts a server of `types` on `dir`, asks for `room`, and returns why it was refused, after
/// checking that a client is closed with 4002 and that the stored rows did not change.
async fn refusal(types: TypeRegistry, dir: &Path, room: &str) -> String {
    let before = rows(dir, room);
    let ts = TestServer::start_with(server(types, dir)).await;
    let reason = match ts.server.room(room).await {
        Err(ServerError::RoomRefused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {:?}", other.map(|_| "a room")),
    };
    match within(Client::connect(&ts.url(room), ConnectOptions::default())).await {
        Err(objectsync::client::ClientError::Closed { code, .. }) => {
            assert_eq!(code, objectsync::protocol::close::ROOM_UNAVAILABLE)
        }
        other => panic!("expected close 4002, got {:?}", other.map(|_| "a client")),
    }
    ts.stop().await;
    assert_eq!(rows(dir, room), before, "a refused room stays stored as it was");
    reason
}

#[tokio::test]
async fn types_that_cannot_read_a_room_are_refused_loudly_and_it_stays_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_rooms(dir.path(), &[("plan", "12"), ("negative", "-5"), ("wordy", "twelve")]).await;
    // A new version without the step from the stored one.
    let reason = refusal(v2_without_migrations(2), dir.path(), "plan").await;
    assert!(reason.contains("stored at schema version 1, this build's types are version 2"), "{reason}");
    assert!(reason.contains("no migration from schema version 1 to 2"), "{reason}");
    // The types changed but the version did not: every difference named, and what to write.
    let reason = refusal(v2_without_migrations(1), dir.path(), "plan").await;
    for said in [
        "Card.text (string) is gone",
        "Card.size was string, is now int",
        "Card.legacy (bool) is gone",
        "Card.body (string) is new",
        "type Scratch is gone",
        "type BigCard is new",
        "the schema version is still 1",
        "TypeRegistry::version(2)",
        "Migration::from_version(1)",
    ] {
        assert!(reason.contains(said), "{said:?} in {reason}");
    }
    // A migration whose result a validator refuses, and one that fails on a value.
    let reason = refusal(cards::v2::types(), dir.path(), "negative").await;
    assert!(reason.contains("a validator refuses it") && reason.contains("size -5 is below 0"), "{reason}");
    let reason = refusal(cards::v2::types(), dir.path(), "wordy").await;
    assert!(reason.contains("step 2 (convert Card.size)") && reason.contains("Card c1"), "{reason}");
    // A room of a later version than the build's.
    let ts = TestServer::start_with(server(cards::v3::types(), dir.path())).await;
    room_state(&ts, "plan").await;
    ts.stop().await;
    let reason = refusal(cards::v2::types(), dir.path(), "plan").await;
    assert!(reason.contains("stored at schema version 3, this build's types are version 2"), "{reason}");
    assert!(reason.contains("later build"), "{reason}");
}

#[tokio::test]
async fn a_client_of_other_types_is_told_to_reload() {
    let ts = TestServer::start_with(cards::builder(2).in_memory()).await;
    let v1 = cards::types(1).fingerprint().to_owned();
    let v2 = cards::types(2).fingerprint().to_owned();
    assert_ne!(v1, v2);
    let url = ts.url("r");
    let connect =
        |schema: Option<String>| Client::connect(&url, ConnectOptions { schema, ..ConnectOptions::default() });
    within(connect(Some(v2.clone()))).await.expect("a client of these types");
    within(connect(None)).await.expect("a client that names no types");
    match within(connect(Some(v1.clone()))).await {
        Err(objectsync::client::ClientError::Closed { code, reason }) => {
            assert_eq!(code, objectsync::protocol::close::SCHEMA_MISMATCH);
            assert!(reason.contains(&v2) && reason.contains(&v1) && reason.contains("reload"), "{reason}");
        }
        other => panic!("expected close 4009, got {:?}", other.map(|_| "a client")),
    }
    ts.stop().await;
    // An application may let the old clients in after a change they can live with.
    let mut types = cards::types(2);
    types.accept_clients_of(v1.clone());
    let ts = TestServer::start_with(Server::builder(types).in_memory()).await;
    within(Client::connect(&ts.url("r"), ConnectOptions { schema: Some(v1), ..ConnectOptions::default() }))
        .await
        .expect("an accepted older client");
    ts.stop().await;
}

fn objectsync(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_objectsync")).args(args).output().expect("run objectsync");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_dry_run_reports_every_room_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<String> = (0..100).map(|i| format!("room-{i:03}")).collect();
    // Every tenth room has a size that does not convert.
    let rooms: Vec<(&str, &str)> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), if i % 10 == 3 { "huge" } else { "12" })).collect();
    let last = write_rooms(dir.path(), &rooms).await;
    let before: Vec<String> = names.iter().map(|n| rows(dir.path(), n)).collect();
    let data = dir.path().to_str().expect("utf-8 path");
    let (ok, out, err) = objectsync(&["migrate", "--preset", "cards-v2", "--dry-run", "--data", data]);
    assert!(!ok, "ten rooms cannot be read: {err}");
    for (i, name) in names.iter().enumerate() {
        let line =
            out.lines().find(|l| l.starts_with(&format!("{name}: "))).unwrap_or_else(|| panic!("{name} in {out}"));
        if i % 10 == 3 {
            assert!(line.contains("error") && line.contains("size \"huge\""), "{line}");
        } else {
            assert_eq!(
                line,
                format!("{name}: would migrate from schema version 1 to 2: 4 objects changed, 2 removed, 0 added")
            );
        }
    }
    assert!(out.contains("100 rooms: 90 to migrate, 10 that cannot be read (nothing written)"), "{out}");
    let after: Vec<String> = names.iter().map(|n| rows(dir.path(), n)).collect();
    assert!(before == after, "a dry run writes nothing");
    // The real run (offline) stores the ninety, and a second dry run finds them done.
    let (ok, out, _) = objectsync(&["migrate", "--preset", "cards-v2", "--data", data]);
    assert!(!ok && out.contains("room-000: migrated from schema version 1 to 2"), "{out}");
    let (_, out, _) = objectsync(&["migrate", "--preset", "cards-v2", "--dry-run", "--data", data]);
    assert!(out.contains("room-000: ok, at schema version 2"), "{out}");
    assert!(out.contains("100 rooms: 0 to migrate, 10 that cannot be read"), "{out}");
    assert_eq!(stored_snapshot(dir.path(), "room-000").doc.version, last + 1);
    assert_eq!(rows(dir.path(), "room-003"), before[3], "a room that cannot be migrated stays as it was");
}
