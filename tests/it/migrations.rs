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

/// The log entry of server code's transition `t`, written at `schema_version`.
fn server_entry(t: &objectsync::model::Transition, schema_version: u32) -> LogEntry {
    LogEntry {
        version: t.version,
        origin: None,
        action: None,
        changes: objectsync::protocol::encode_changes(&t.changes),
        schema_version,
    }
}

/// Applies `changes` to `doc` as server code, logging the update in `store` when `log` is set.
async fn apply(doc: &mut Document, store: &SqliteStore, room: &str, changes: Vec<Change>, log: bool) {
    let t = doc.apply(&Actor::Server, None, changes).expect("the v1 types accept it");
    if log {
        let entry = server_entry(&t, 1);
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
    // What is logged now is logged at version 2.
    let v = within(c.act(changes(json!([{"op": "set", "obj": "c1", "attr": "size", "value": 3}])))).await.expect("ack");
    let raw: Json = serde_json::from_str(&rows(dir.path(), "plan")).expect("rows");
    let logged: Vec<(u64, u64)> = raw["log"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["version"].as_u64().unwrap_or(0), e["schema_version"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(logged, vec![(v, 2)]);
    drop(c);
    ts.stop().await;
    // Stored at once as a snapshot of version 2, the log before it dropped.
    let stored = stored_snapshot(dir.path(), "plan");
    assert_eq!(stored.schema.as_ref().map(|s| s.version), Some(2));
    assert_eq!(stored.doc.version, last + 2, "the migration's version, then the edit");
    let raw: Json = serde_json::from_str(&rows(dir.path(), "plan")).expect("rows");
    assert!(
        raw["log"].as_array().is_some_and(|l| l.iter().all(|e| e["version"].as_u64() > Some(last))),
        "no catch-up crosses schema versions: {}",
        raw["log"]
    );
    // Loaded again: nothing to migrate, nothing written.
    let before = rows(dir.path(), "plan");
    let ts = TestServer::start_with(server(cards::v2::types(), dir.path())).await;
    let mut state = room_state(&ts, "plan").await;
    assert_eq!(state["root"]["children"][0]["children"][0]["attrs"]["size"], json!(3));
    state["root"]["children"][0]["children"][0]["attrs"]["size"] = json!(12);
    assert_eq!(state, expected_v2(last + 2));
    assert_eq!(crate::harness::metric(&ts, "objectsync_room_migrations_total"), 0.0);
    ts.stop().await;
    assert_eq!(rows(dir.path(), "plan"), before, "the migration ran once");
}

#[test]
fn an_update_logged_at_another_schema_version_than_its_snapshot_is_refused_as_corrupt() {
    let types = Arc::new(cards::v2::types());
    let mut doc = Document::with_limits(types.clone(), Default::default());
    let t = doc
        .apply(&Actor::Server, None, changes(json!([{"op": "create", "id": "b1", "type": "Board", "parent": "root"}])))
        .expect("applies");
    let entry = server_entry(&t, 3);
    let empty = Document::with_limits(types.clone(), Default::default()).snapshot();
    let stored = objectsync::store::StoredRoom {
        snapshot: Some(RoomSnapshot {
            doc: empty,
            clients: Vec::new(),
            clients_floor: 0,
            schema: Some(types.schema()),
        }),
        log: vec![entry],
        clients: Vec::new(),
    };
    match objectsync::load_room(&types, &Default::default(), "r", stored) {
        Err(objectsync::store::StoreError::Corrupt { reason, .. }) => {
            assert!(reason.contains("written at schema version 3, its snapshot at 2"), "{reason}")
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| "a room")),
    }
}

#[tokio::test]
async fn a_client_resuming_across_a_migration_gets_a_snapshot_not_a_catch_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = TestServer::start_with(server(cards::v1::types(), dir.path())).await;
    let mut c = ts.client("plan").await;
    within(c.act(changes(json!([
        {"op": "create", "id": format!("{}:b", c.id()), "type": "Board", "parent": "root"},
        {"op": "create", "id": format!("{}:c", c.id()), "type": "Card", "parent": format!("{}:b", c.id()),
         "attrs": {"text": "hello", "size": "5"}},
    ]))))
    .await
    .expect("ack");
    let (resume, mirror) = c.into_resume();
    ts.stop().await;
    let ts = TestServer::start_with(server(cards::v2::types(), dir.path())).await;
    // A client that names no types is let in; it resumes from before the migration.
    let options = ConnectOptions { resume: Some((resume.clone(), mirror)), ..ConnectOptions::default() };
    let c = within(Client::connect(&ts.url("plan"), options)).await.expect("resume");
    assert_eq!(c.id(), resume.client.as_str(), "the same client");
    assert_eq!(c.version(), resume.version + 1, "the migration's version");
    let card = format!("{}:c", c.id());
    // Only a snapshot can say what the migration made: nothing of it is in any log.
    assert_eq!(c.mirror().value(&card, "body"), Some(&objectsync::model::Value::from("hello")));
    assert_eq!(c.mirror().value(&card, "size"), Some(&objectsync::model::Value::Int(5)));
    assert_eq!(c.mirror().value(&card, "text"), None);
    ts.stop().await;
}

#[test]
fn a_room_stored_before_types_were_recorded_migrates_from_its_snapshot_or_says_what_to_do() {
    let v1 = Arc::new(cards::v1::types());
    let mut doc = Document::with_limits(v1.clone(), Default::default());
    let create =
        json!([{"op": "create", "id": "c1", "type": "Card", "parent": "root", "attrs": {"text": "old", "size": "3"}}]);
    doc.apply(&Actor::Server, None, changes(create)).expect("v1 applies");
    let legacy = RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0, schema: None };
    let stored =
        |log: Vec<LogEntry>| objectsync::store::StoredRoom { snapshot: Some(legacy.clone()), log, clients: Vec::new() };
    let v2 = Arc::new(cards::v2::types());
    // Its snapshot alone: read as version 1 and migrated.
    let room = objectsync::load_room(&v2, &Default::default(), "r", stored(Vec::new())).expect("migrates");
    let card = room.doc.snapshot().root.children[0].clone();
    assert_eq!(card.attrs.get("body"), Some(&objectsync::model::Value::from("old")));
    assert_eq!(room.migrated.map(|m| (m.from, m.to)), Some((1, 2)));
    // With the same types: loaded as it is, and a snapshot recording them is stored.
    let room = objectsync::load_room(&v1, &Default::default(), "r", stored(Vec::new())).expect("loads");
    assert!(room.migrated.is_none() && room.store_snapshot);
    // Updates after it, which only the unrecorded types could replay: what to do is said.
    let t = doc
        .apply(&Actor::Server, None, changes(json!([{"op": "set", "obj": "c1", "attr": "size", "value": "4"}])))
        .expect("v1 applies");
    let entry = server_entry(&t, 1);
    match objectsync::load_room(&v2, &Default::default(), "r", stored(vec![entry])) {
        Err(objectsync::store::StoreError::Incompatible { reason, stored: 1, code: 2, .. }) => {
            assert!(reason.contains("load it once with the types that wrote it"), "{reason}")
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| "a room")),
    }
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
    assert!(out.contains("100 rooms: 90 migrated, 10 that cannot be read"), "{out}");
    let (_, out, _) = objectsync(&["migrate", "--preset", "cards-v2", "--dry-run", "--data", data]);
    assert!(out.contains("room-000: ok, at schema version 2"), "{out}");
    assert!(out.contains("100 rooms: 0 to migrate, 10 that cannot be read"), "{out}");
    assert_eq!(stored_snapshot(dir.path(), "room-000").doc.version, last + 1);
    assert_eq!(rows(dir.path(), "room-003"), before[3], "a room that cannot be migrated stays as it was");
}

/// The property test's attribute names: `a<i>` as stored, `r<i>` once renamed.
const OLD_NAMES: [&str; 5] = ["a0", "a1", "a2", "a3", "a4"];
const NEW_NAMES: [&str; 5] = ["r0", "r1", "r2", "r3", "r4"];

/// What becomes of one attribute of `T` in the random migration.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Kept,
    Renamed,
    Removed,
}

mod property {
    use super::*;
    use objectsync::model::{AttrSpec, TopicKind};
    use objectsync::store::StoredRoom;
    use proptest::prelude::*;

    const KINDS: [TopicKind; 7] = [
        TopicKind::String,
        TopicKind::Int,
        TopicKind::Float,
        TopicKind::Bool,
        TopicKind::List,
        TopicKind::Dict,
        TopicKind::Set,
    ];

    fn value(kind: TopicKind, n: i64) -> Json {
        match kind {
            TopicKind::String => json!(format!("s{n}")),
            TopicKind::Int => json!(n),
            TopicKind::Float => json!(n as f64 + 0.5),
            TopicKind::Bool => json!(n % 2 == 0),
            TopicKind::List => json!([n, format!("x{n}")]),
            TopicKind::Dict => json!({"k": n}),
            _ => json!([n, format!("e{n}")]),
        }
    }

    /// Types of `T` (the random attributes and a `link` to a `U`) and `U`, with the attributes
    /// of `T` named by `names` and, when `with_u`, the type `U`.
    fn types(kinds: &[TopicKind], names: &[Option<&'static str>], with_u: bool, version: u32) -> TypeRegistry {
        let mut t = TypeRegistry::new().version(version);
        let mut attrs: Vec<AttrSpec> =
            kinds.iter().zip(names).filter_map(|(k, n)| n.map(|n| AttrSpec::new(n, *k, None))).collect();
        attrs.push(AttrSpec::new("link", TopicKind::Ref, None));
        attrs.push(AttrSpec::new("links", TopicKind::RefList, None));
        t.define("T", attrs);
        if with_u {
            t.define("U", vec![AttrSpec::new("u", TopicKind::Int, None)]);
        }
        t
    }

    /// The changes that make a random document of `T`s (some nested) and `U`s, linked at
    /// random: one list per object (its create, then its links to objects made before it).
    fn object_changes(kinds: &[TopicKind], seeds: &[(u8, i64, u8)]) -> Vec<Vec<Json>> {
        let mut created: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (i, (shape, n, link)) in seeds.iter().enumerate() {
            let id = format!("o{i}");
            let is_u = shape % 4 == 0;
            let parent = if shape % 3 == 0 && !created.is_empty() {
                created[usize::from(*shape) % created.len()].clone()
            } else {
                "root".to_owned()
            };
            let mut make = Vec::new();
            if is_u {
                make.push(json!({"op": "create", "id": id, "type": "U", "parent": parent, "attrs": {"u": n}}));
            } else {
                let mut attrs = serde_json::Map::new();
                for (k, name) in kinds.iter().zip(OLD_NAMES) {
                    attrs.insert(name.into(), value(*k, *n));
                }
                make.push(json!({"op": "create", "id": id, "type": "T", "parent": parent, "attrs": attrs}));
                if !created.is_empty() {
                    let target = created[usize::from(*link) % created.len()].clone();
                    make.push(json!({"op": "set", "obj": id, "attr": "link", "value": target}));
                    make.push(json!({"op": "list_insert", "obj": id, "attr": "links", "index": 0, "value": target}));
                }
            }
            out.push(make);
            created.push(id);
        }
        out
    }

    /// The document of `made` applied in one transaction.
    fn document(made: &[Vec<Json>], types: &Arc<TypeRegistry>) -> Document {
        let mut doc = Document::with_limits(types.clone(), Default::default());
        let all: Vec<Json> = made.iter().flatten().cloned().collect();
        if !all.is_empty() {
            doc.apply(&Actor::Server, None, changes(Json::Array(all))).expect("a valid random document");
        }
        doc
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// For random documents and random renames and removals of attributes (and the removal
        /// of a type), the migration of the snapshot equals the same change made as a
        /// transaction over the document (copy each renamed value with `set`, delete the
        /// removed type's objects with `delete`, which clears references as the engine does)
        /// read with the new types; loading the migrated room again changes nothing; and a
        /// room whose updates were logged after its snapshot migrates to the same state.
        #[test]
        fn migrating_the_snapshot_equals_the_migration_as_a_transaction(
            kinds in proptest::collection::vec(proptest::sample::select(KINDS.to_vec()), 1..=5),
            fates in proptest::collection::vec(0u8..3, 5),
            remove_u in any::<bool>(),
            seeds in proptest::collection::vec((any::<u8>(), -50i64..50, any::<u8>()), 0..24),
            split in 0usize..24,
        ) {
            let fates: Vec<Fate> = fates.iter().take(kinds.len()).map(|f| [Fate::Kept, Fate::Renamed, Fate::Removed][usize::from(*f)]).collect();
            let old_names: Vec<Option<&'static str>> = OLD_NAMES.iter().take(kinds.len()).map(|n| Some(*n)).collect();
            let new_names: Vec<Option<&'static str>> = fates.iter().enumerate().map(|(i, f)| match f {
                Fate::Kept => Some(OLD_NAMES[i]),
                Fate::Renamed => Some(NEW_NAMES[i]),
                Fate::Removed => None,
            }).collect();
            let v1 = Arc::new(types(&kinds, &old_names, true, 1));
            let mut step = objectsync::model::Migration::from_version(1);
            for (i, f) in fates.iter().enumerate() {
                step = match f {
                    Fate::Kept => step,
                    Fate::Renamed => step.rename_attr("T", OLD_NAMES[i], NEW_NAMES[i]),
                    Fate::Removed => step.remove_attr("T", OLD_NAMES[i]),
                };
            }
            if remove_u {
                step = step.remove_type("U");
            }
            let mut v2 = types(&kinds, &new_names, !remove_u, 2);
            v2.migration(step);
            let v2 = Arc::new(v2);
            let made = object_changes(&kinds, &seeds);
            let doc = document(&made, &v1);
            let limits = objectsync::ModelLimits::default();

            // The migration of the stored snapshot, as a load makes it.
            let schema = Some(v1.schema());
            let stored = StoredRoom {
                snapshot: Some(RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0, schema: schema.clone() }),
                log: Vec::new(),
                clients: Vec::new(),
            };
            let migrated = objectsync::load_room(&v2, &limits, "p", stored).expect("the migration applies");
            prop_assert!(migrated.migrated.is_some() && migrated.store_snapshot && migrated.log.is_empty());
            let migrated_snapshot = migrated.doc.snapshot();

            // The same as a transaction: over types holding both names, copy each renamed value,
            // delete every U; then read with the new types (what they do not name is dropped).
            let both: Vec<Option<&'static str>> = (0..kinds.len()).map(|i| Some(OLD_NAMES[i])).collect();
            let mut bridge_types = types(&kinds, &both, true, 1);
            let renamed: Vec<AttrSpec> = fates.iter().enumerate().filter(|(_, f)| matches!(f, Fate::Renamed)).map(|(i, _)| AttrSpec::new(NEW_NAMES[i], kinds[i], None)).collect();
            if !renamed.is_empty() {
                let mut t = TypeRegistry::new();
                let mut attrs: Vec<AttrSpec> = (0..kinds.len()).map(|i| AttrSpec::new(OLD_NAMES[i], kinds[i], None)).collect();
                attrs.extend(renamed);
                attrs.push(AttrSpec::new("link", TopicKind::Ref, None));
                attrs.push(AttrSpec::new("links", TopicKind::RefList, None));
                t.define("T", attrs);
                t.define("U", vec![AttrSpec::new("u", TopicKind::Int, None)]);
                bridge_types = t;
            }
            let mut bridge = Document::from_snapshot(Arc::new(bridge_types), limits.clone(), doc.snapshot()).expect("the bridge reads it");
            let snapshot = serde_json::to_value(doc.snapshot()).expect("json");
            let mut tx = Vec::new();
            fn walk(n: &Json, out: &mut Vec<(String, String, Json)>) {
                out.push((n["id"].as_str().unwrap_or("").into(), n["type"].as_str().unwrap_or("").into(), n["attrs"].clone()));
                for c in n["children"].as_array().into_iter().flatten() { walk(c, out); }
            }
            let mut nodes = Vec::new();
            walk(&snapshot["root"], &mut nodes);
            for (id, ty, attrs) in &nodes {
                if ty == "T" {
                    for (i, f) in fates.iter().enumerate() {
                        if matches!(f, Fate::Renamed) {
                            tx.push(json!({"op": "set", "obj": id, "attr": NEW_NAMES[i], "value": attrs[OLD_NAMES[i]]}));
                        }
                    }
                }
            }
            if remove_u {
                // Outermost first: a U inside a deleted U is already gone.
                for (id, ty, _) in &nodes {
                    if ty == "U" {
                        tx.push(json!({"op": "delete", "id": id}));
                    }
                }
            }
            for change in changes(Json::Array(tx)) {
                // A delete of a U already deleted with its parent is refused alone: skip it.
                let _ = bridge.apply(&Actor::Server, None, vec![change]);
            }
            let mut projected = bridge.snapshot();
            projected.version = migrated_snapshot.version;
            let by_transaction = Document::from_snapshot(v2.clone(), limits.clone(), {
                let mut text = serde_json::to_value(&projected).expect("json");
                fn keep(n: &mut Json, t: &TypeRegistry) {
                    let ty = n["type"].as_str().unwrap_or("").to_owned();
                    let names: Vec<String> = t.describe().iter().find(|(name, _)| *name == ty).map(|(_, a)| a.iter().map(|(n, _)| n.to_string()).collect()).unwrap_or_default();
                    if let Some(attrs) = n.get_mut("attrs").and_then(Json::as_object_mut) {
                        attrs.retain(|k, _| names.contains(k));
                    }
                    for c in n.get_mut("children").and_then(Json::as_array_mut).into_iter().flatten() { keep(c, t); }
                }
                keep(&mut text["root"], &v2);
                serde_json::from_value::<DocSnapshot>(text).expect("a snapshot")
            }).expect("the new types read the transaction's result").snapshot();
            prop_assert_eq!(&migrated_snapshot.root, &by_transaction.root);

            // Loading the migrated room again changes nothing.
            let again = StoredRoom {
                snapshot: Some(RoomSnapshot { doc: migrated_snapshot.clone(), clients: Vec::new(), clients_floor: 0, schema: Some(v2.schema()) }),
                log: Vec::new(),
                clients: Vec::new(),
            };
            let reloaded = objectsync::load_room(&v2, &limits, "p", again).expect("loads");
            prop_assert!(reloaded.migrated.is_none() && !reloaded.store_snapshot);
            prop_assert_eq!(reloaded.doc.snapshot(), migrated_snapshot.clone());

            // The document written as a snapshot of its first `split` objects, the rest logged
            // after it one object per update, migrates to the same tree (the log is replayed
            // with the types it was written with, then migrated).
            let split = split.min(made.len());
            let mut writing = document(&made[..split], &v1);
            let head = writing.snapshot();
            let mut log = Vec::new();
            for object in &made[split..] {
                let t = writing.apply(&Actor::Server, None, changes(Json::Array(object.clone()))).expect("the rest applies");
                log.push(server_entry(&t, 1));
            }
            let stored = StoredRoom {
                snapshot: Some(RoomSnapshot { doc: head, clients: Vec::new(), clients_floor: 0, schema }),
                log,
                clients: Vec::new(),
            };
            let with_log = objectsync::load_room(&v2, &limits, "p", stored).expect("the migration applies after the log");
            prop_assert_eq!(&with_log.doc.snapshot().root, &migrated_snapshot.root);
            prop_assert_eq!(with_log.doc.version(), writing.version() + 1);
        }
    }
}
