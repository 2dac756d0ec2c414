//! Durable rooms: a real SQLite file, restarts, `kill -9` of the real binary mid-stream, and
//! corrupt data.

use crate::harness::*;
use objectsync::client::{Client, ClientError, ConnectOptions, Mirror};
use objectsync::model::{Change, Value};
use objectsync::protocol::Resume;
use objectsync::store::SqliteStore;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// The real `objectsync` binary serving the demo rooms from `dir`.
struct Binary;

impl Binary {
    fn start(dir: &std::path::Path) -> ServerProcess {
        ServerProcess::spawn(
            Command::new(env!("CARGO_BIN_EXE_objectsync"))
                .args(["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent", "--data"])
                .arg(dir),
        )
    }
}

fn step(node: &str, i: i64) -> Vec<Change> {
    // Two changes that must land together: a title that always matches pos.x.
    vec![set_x(node, i), set_title(node, &format!("t{i}"))]
}

/// Every node's title matches its pos.x: no action was half applied.
fn assert_atomic(mirror: &Mirror) {
    let Some(graph) = mirror.get("graph") else { panic!("no graph") };
    for id in &graph.children {
        let x = mirror.value(id, "pos").and_then(|p| p.as_dict()).and_then(|d| d.get("x")).and_then(Value::as_int);
        let title = mirror.value(id, "title").and_then(Value::as_str).map(str::to_owned);
        assert_eq!(title, x.map(|x| format!("t{x}")), "node {id} is half applied");
    }
}

/// A writer: creates its node, then sends `steps` actions in groups of 10, waiting for each
/// group's last ack. Stops at the first error (the server was killed).
async fn write(mut c: Client, steps: i64) -> Client {
    let node = c.new_object_id();
    let create = Change::Create {
        id: node.clone(),
        type_name: "Node".into(),
        parent: "graph".into(),
        index: None,
        attrs: objectsync::dict! { "pos" => objectsync::dict! { "x" => 0, "y" => 10 }, "title" => "t0" },
        children: Vec::new(),
    };
    if c.act(vec![create]).await.is_err() {
        return c;
    }
    for group in 0..steps / 10 {
        let mut last = 0;
        for i in 1..=10 {
            match c.send_action(step(&node, group * 10 + i)).await {
                Ok(id) => last = id,
                Err(_) => return c,
            }
        }
        if c.wait_ack(last).await.is_err() {
            return c;
        }
    }
    c
}

/// `kill -9` during pipelined writes in several rooms: after a restart every room has every
/// acknowledged change, with no half-applied action and no version gap (the room would not load),
/// and each room's furthest client resumes onto exactly the restarted room (its catch-up applies
/// without a gap or a duplicate).
#[tokio::test]
async fn kill_9_mid_stream_loses_nothing_acknowledged() {
    const ROOMS: usize = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    // Three rounds, each killing the server at a random moment of a bounded stream.
    for round in 0..3u32 {
        let server = Binary::start(dir.path());
        let mut writers = Vec::new();
        for i in 0..2 * ROOMS {
            let room = format!("crash-{}", i % ROOMS);
            let c = within(Client::connect(&server.url(&room), ConnectOptions::default())).await.expect("connect");
            writers.push((room, tokio::spawn(write(c, 300))));
        }
        let delay = 30 + rand::random::<u64>() % 250;
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        server.kill();
        let mut seen: Vec<(String, Resume, Mirror)> = Vec::new();
        for (room, w) in writers {
            let c = within(w).await.expect("writer");
            let (resume, mirror) = c.into_resume();
            seen.push((room, resume, mirror));
        }
        let server = Binary::start(dir.path());
        for r in 0..ROOMS {
            let room = format!("crash-{r}");
            let mine: Vec<&(String, Resume, Mirror)> = seen.iter().filter(|(name, _, _)| *name == room).collect();
            let furthest = mine.iter().max_by_key(|(_, resume, _)| resume.version).expect("a writer");
            let seen_version = furthest.1.version;
            // The client that saw the most resumes: the restarted server's log must continue
            // exactly from what it saw (catch-up applies cleanly) and end where the server is.
            let resumed = within(Client::connect(
                &server.url(&room),
                ConnectOptions { resume: Some((furthest.1.clone(), furthest.2.clone())), ..ConnectOptions::default() },
            ))
            .await
            .expect("resume after restart");
            let fresh = within(Client::connect(&server.url(&room), ConnectOptions::default())).await.expect("fresh");
            assert!(
                fresh.version() >= seen_version,
                "round {round}, {room}: version {} < acknowledged {seen_version}",
                fresh.version()
            );
            assert_eq!(resumed.mirror().to_snapshot(), fresh.mirror().to_snapshot(), "round {round}, {room}");
            assert_atomic(fresh.mirror());
            // Every client's acknowledged updates are in the restarted room.
            for (_, resume, mirror) in &mine {
                assert!(
                    mirror.version() <= fresh.version(),
                    "round {round}, {room}: client {} saw more than survived",
                    resume.client
                );
            }
            eprintln!(
                "round {round}, {room}: killed after {delay} ms; clients saw up to version {seen_version}; restarted at {}",
                fresh.version()
            );
        }
        server.kill();
    }
}

#[tokio::test]
async fn a_restarted_server_has_every_room_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = || Arc::new(SqliteStore::open(dir.path()).expect("open store"));
    let ts = TestServer::start_with(TestServer::builder().store(store())).await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("create");
    for i in 0..50 {
        a.send_action(vec![set_x(&n, i)]).await.expect("send");
    }
    let last = a.send_action(vec![set_title(&n, "done")]).await.expect("send");
    within(a.wait_ack(last)).await.expect("acked");
    let (resume, mirror) = a.into_resume();
    let before = ts.snapshot("r").await;
    ts.stop().await;
    let ts = TestServer::start_with(TestServer::builder().store(store())).await;
    assert_eq!(ts.snapshot("r").await, before);
    // The same client resumes, and an action id it already used is still refused.
    let mut a = within(Client::connect(
        &ts.url("r"),
        ConnectOptions { resume: Some((resume.clone(), mirror)), ..Default::default() },
    ))
    .await
    .expect("resume");
    assert_eq!(a.id(), resume.client.as_str());
    assert_eq!(a.version(), resume.version);
    a.send(&objectsync::protocol::ClientMessage::Action {
        id: last,
        base: a.version(),
        changes: vec![set_x(&n, 7)],
        step: None,
    })
    .await
    .expect("send");
    match next_non_presence(&mut a).await {
        objectsync::client::Event::Reject { code, .. } => assert_eq!(code, "duplicate_action"),
        other => panic!("{other:?}"),
    }
    ts.stop().await;
}

#[tokio::test]
async fn a_corrupt_room_is_refused_clearly_and_the_others_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let ts =
            TestServer::start_with(TestServer::builder().store(Arc::new(SqliteStore::open(dir.path()).expect("open"))))
                .await;
        let mut a = ts.client("broken").await;
        let n = a.new_object_id();
        within(a.act(vec![create_node(&n, 1)])).await.expect("create");
        let _b = ts.client("fine").await;
        ts.stop().await;
    }
    let conn = rusqlite::Connection::open(dir.path().join("objectsync.db")).expect("conn");
    conn.execute("UPDATE rooms SET snapshot = substr(snapshot, 1, 40) WHERE name = 'broken'", []).expect("truncate");
    drop(conn);
    let ts =
        TestServer::start_with(TestServer::builder().store(Arc::new(SqliteStore::open(dir.path()).expect("open"))))
            .await;
    let r = within(Client::connect(&ts.url("broken"), ConnectOptions::default())).await;
    match r {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 4002);
            assert!(reason.contains("broken") && reason.contains("corrupt"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut fine = ts.client("fine").await;
    let n = fine.new_object_id();
    within(fine.act(vec![create_node(&n, 2)])).await.expect("the other room works");
    ts.stop().await;
}

#[tokio::test]
async fn export_and_import_round_trip_a_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Binary::start(dir.path());
    let mut a = within(Client::connect(&server.url("keep"), ConnectOptions::default())).await.expect("connect");
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 42)])).await.expect("create");
    within(a.act(vec![set_title(&n, "exported")])).await.expect("title");
    let before = a.mirror().to_snapshot();
    drop(a);
    server.kill();
    let exe = env!("CARGO_BIN_EXE_objectsync");
    let out = Command::new(exe).args(["export", "keep", "--data"]).arg(dir.path()).output().expect("export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("keep.json");
    std::fs::write(&file, &out.stdout).expect("write");
    // Restore it under another name, and refuse a broken file with a clear message.
    let out =
        Command::new(exe).args(["import", "copy"]).arg(&file).arg("--data").arg(dir.path()).output().expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"doc":{"version":1,"root":{"id":"root","type":"Nope"}},"clients":[]}"#).expect("write");
    let out =
        Command::new(exe).args(["import", "copy"]).arg(&bad).arg("--data").arg(dir.path()).output().expect("import");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid room"));
    let server = Binary::start(dir.path());
    let copy = within(Client::connect(&server.url("copy"), ConnectOptions::default())).await.expect("connect");
    assert_eq!(copy.mirror().to_snapshot(), before);
}

/// A refused action counts as processed (`acked`) once the client has heard of it, and that
/// survives `kill -9`: the refusal is sent only after the client's record is committed with it.
#[tokio::test]
async fn acked_covers_refused_actions_after_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Binary::start(dir.path());
    let mut c = within(Client::connect(&server.url("r"), ConnectOptions::default())).await.expect("connect");
    let n = c.new_object_id();
    within(c.act(vec![create_node(&n, 1)])).await.expect("applied");
    // Refused by the model, then by the server's change limit: both are processed.
    let refused = within(c.act(vec![Change::Delete { id: "root".into() }])).await;
    assert!(matches!(refused, Err(ClientError::Rejected { ref code, .. }) if code == "root_immutable"), "{refused:?}");
    let too_many: Vec<Change> = (0..1001).map(|i| set_x(&n, i % 1000)).collect();
    let refused = within(c.act(too_many)).await;
    assert!(
        matches!(refused, Err(ClientError::Rejected { ref code, .. }) if code == "too_many_changes"),
        "{refused:?}"
    );
    let last_refused = 3; // action ids: 1 applied, 2 and 3 refused
    let (resume, mirror) = c.into_resume();
    server.kill();
    let server = Binary::start(dir.path());
    let c = within(Client::connect(
        &server.url("r"),
        ConnectOptions { resume: Some((resume, mirror)), ..Default::default() },
    ))
    .await
    .expect("resume after kill -9");
    assert!(c.acked() >= last_refused, "acked {} forgot the refused action {last_refused}", c.acked());
    drop(c);
    server.kill();
}

/// `import` is refused while a server has the data directory (the import would be lost or
/// mixed with live updates), and what it imports is checked: versions and ids in the JSON-safe
/// range (a version near 2^64 made the next one wrap to 0), the root's id and type.
#[tokio::test]
async fn import_refuses_a_running_server_and_out_of_range_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env!("CARGO_BIN_EXE_objectsync");
    let import = |file: &std::path::Path| {
        Command::new(exe).args(["import", "r"]).arg(file).arg("--data").arg(dir.path()).output().expect("import")
    };
    let server = Binary::start(dir.path());
    let c = within(Client::connect(&server.url("r"), ConnectOptions::default())).await.expect("connect");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"doc":{"version":5,"next_server_id":1,"root":{"id":"root","type":"Root"}},"clients":[]}"#,
    )
    .expect("write");
    let out = import(&good);
    assert!(!out.status.success(), "import while the server runs must be refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process") && err.contains("stop the server"), "{err}");
    // Export still works while the server runs.
    let out = Command::new(exe).args(["export", "r", "--data"]).arg(dir.path()).output().expect("export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(c);
    server.kill();
    for (name, text, says) in [
        (
            "huge-version",
            r#"{"doc":{"version":18446744073709551000,"root":{"id":"root","type":"Root"}},"clients":[]}"#,
            "version",
        ),
        (
            "unsafe-version",
            r#"{"doc":{"version":9007199254740992,"root":{"id":"root","type":"Root"}},"clients":[]}"#,
            "version",
        ),
        ("root-id", r#"{"doc":{"version":1,"root":{"id":"graph","type":"Root"}},"clients":[]}"#, "root"),
        ("root-type", r#"{"doc":{"version":1,"root":{"id":"root","type":"Graph"}},"clients":[]}"#, "root"),
        (
            "bad-child-id",
            r#"{"doc":{"version":1,"root":{"id":"root","type":"Root","children":[{"id":"a b","type":"Graph"}]}},"clients":[]}"#,
            "not a valid room",
        ),
        (
            "action-id",
            r#"{"doc":{"version":1,"root":{"id":"root","type":"Root"}},"clients":[{"id":"c1","last_action":9007199254740992}]}"#,
            "action id",
        ),
    ] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, text).expect("write");
        let out = import(&file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{name}: {err}");
    }
    let out = import(&good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = Binary::start(dir.path());
    let c = within(Client::connect(&server.url("r"), ConnectOptions::default())).await.expect("connect");
    assert_eq!(c.version(), 5);
    drop(c);
    server.kill();
}

/// Starts the binary on `dir` expecting it to refuse: its error output.
fn start_refused(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_objectsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent", "--data"])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run the server");
    assert!(!out.status.success(), "the server started on a damaged directory");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes a few acknowledged updates to room `r` of a server on `dir`, then kills it.
async fn write_some(dir: &std::path::Path) {
    let server = Binary::start(dir);
    let mut c = within(Client::connect(&server.url("r"), ConnectOptions::default())).await.expect("connect");
    let n = c.new_object_id();
    within(c.act(vec![create_node(&n, 1)])).await.expect("create");
    for i in 0..5 {
        within(c.act(vec![set_x(&n, i)])).await.expect("set");
    }
    drop(c);
    server.kill();
}

/// Damage is noticed, never served as if nothing happened: a database truncated to zero bytes, a
/// lost write-ahead log (acknowledged versions gone) and a file that is not a database are each
/// refused at start, naming the file and what to do; a byte flip that keeps the JSON valid makes
/// that room refused (its checksum) while the others are served.
#[tokio::test]
async fn damaged_data_is_refused_not_served() {
    // Truncated to zero bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    write_some(dir.path()).await;
    std::fs::write(dir.path().join("objectsync.db"), b"").expect("truncate");
    let _ = std::fs::remove_file(dir.path().join("objectsync.db-wal"));
    let err = start_refused(dir.path());
    assert!(err.contains("objectsync.db") && err.contains("truncated") && err.contains("backup"), "{err}");
    // The write-ahead log lost after kill -9: the database is older than what was acknowledged.
    let dir = tempfile::tempdir().expect("tempdir");
    write_some(dir.path()).await;
    {
        // The first commits reach the database file itself; the next ones stay in the WAL.
        let conn = rusqlite::Connection::open(dir.path().join("objectsync.db")).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    }
    write_some(dir.path()).await;
    std::fs::remove_file(dir.path().join("objectsync.db-wal")).expect("the WAL holds the last commits");
    let err = start_refused(dir.path());
    assert!(err.contains("write-ahead log") && err.contains("were acknowledged"), "{err}");
    // Lost before the first checkpoint: the file is as good as empty.
    let dir = tempfile::tempdir().expect("tempdir");
    write_some(dir.path()).await;
    std::fs::remove_file(dir.path().join("objectsync.db-wal")).expect("the WAL holds every commit");
    let err = start_refused(dir.path());
    assert!(err.contains("write-ahead log") && err.contains("backup"), "{err}");
    // Not a database at all.
    let dir = tempfile::tempdir().expect("tempdir");
    write_some(dir.path()).await;
    std::fs::write(dir.path().join("objectsync.db"), vec![0x5a; 8192]).expect("garble");
    let _ = std::fs::remove_file(dir.path().join("objectsync.db-wal"));
    let err = start_refused(dir.path());
    assert!(err.contains("objectsync.db") && err.contains("backup"), "{err}");
    // A byte flip inside a stored update that keeps the JSON valid.
    let dir = tempfile::tempdir().expect("tempdir");
    write_some(dir.path()).await;
    {
        let conn = rusqlite::Connection::open(dir.path().join("objectsync.db")).expect("open");
        let changed = conn
            .execute(
                "UPDATE log SET changes = replace(changes, '\"value\":3', '\"value\":8') \
                 WHERE room = 'r' AND instr(changes, '\"value\":3') > 0",
                [],
            )
            .expect("flip");
        assert_eq!(changed, 1, "one stored update changed, still valid JSON");
    }
    let server = Binary::start(dir.path());
    let refused = Client::connect(&server.url("r"), ConnectOptions::default()).await;
    match refused {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 4002);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("the damaged room was served: {other:?}"),
    }
    let other = within(Client::connect(&server.url("other"), ConnectOptions::default())).await;
    assert!(other.is_ok(), "the other rooms are served");
    server.kill();
}

/// A database of schema 1 (no checksums) is converted when opened, and its rooms load.
#[tokio::test]
async fn a_schema_1_database_is_converted() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = rusqlite::Connection::open(dir.path().join("objectsync.db")).expect("open");
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
             CREATE TABLE rooms (name TEXT PRIMARY KEY, version INTEGER NOT NULL, snapshot TEXT NOT NULL);
             CREATE TABLE log (room TEXT NOT NULL, version INTEGER NOT NULL, frame TEXT NOT NULL,
                               PRIMARY KEY (room, version)) WITHOUT ROWID;
             CREATE TABLE clients (room TEXT NOT NULL, id TEXT NOT NULL, last_action INTEGER NOT NULL,
                                   PRIMARY KEY (room, id)) WITHOUT ROWID;
             PRAGMA user_version = 1;",
        )
        .expect("schema 1");
        conn.execute("INSERT INTO meta (key, value) VALUES ('secret', ?1)", [vec![7u8; 32]]).expect("secret");
        conn.execute(
            "INSERT INTO rooms VALUES ('old', 1, '{\"doc\":{\"version\":1,\"next_server_id\":1,\"root\":{\"id\":\"root\",\"type\":\"Root\",\"children\":[{\"id\":\"graph\",\"type\":\"Graph\",\"attrs\":{\"name\":\"main\"}}]}},\"clients\":[]}')",
            [],
        )
        .expect("room");
        conn.execute(
            "INSERT INTO log VALUES ('old', 2, '{\"t\":\"update\",\"v\":2,\"origin\":\"server\",\"changes\":[{\"op\":\"set\",\"obj\":\"graph\",\"attr\":\"name\",\"value\":\"kept\"}]}')",
            [],
        )
        .expect("log");
    }
    let store = SqliteStore::open(dir.path()).expect("converted");
    let stored = objectsync::store::Store::load(&store, "old").await.expect("load").expect("room");
    let types = Arc::new(objectsync::presets::demo::types());
    let doc = objectsync::load_room(&types, &Default::default(), "old", stored).expect("loads").doc;
    assert_eq!(doc.version(), 2);
    let graph = doc.key("graph").expect("graph");
    assert_eq!(doc.value(graph, "name"), Some(&Value::from("kept")));
}

/// The library's builder and the binary agree: without `--data` or `.store(...)`, rooms are
/// kept in SQLite in `objectsync-data` under the working directory, and survive a restart.
#[tokio::test]
async fn the_default_store_is_sqlite_in_objectsync_data() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let start = || {
        ServerProcess::spawn(
            Command::new(env!("CARGO_BIN_EXE_objectsync"))
                .args(["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent"])
                .current_dir(cwd.path()),
        )
    };
    let server = start();
    let mut c = within(Client::connect(&server.url("kept"), ConnectOptions::default())).await.expect("connect");
    let n = c.new_object_id();
    within(c.act(vec![create_node(&n, 1)])).await.expect("create");
    drop(c);
    server.kill();
    assert!(cwd.path().join(objectsync::store::DEFAULT_DATA_DIR).join("objectsync.db").is_file());
    let server = start();
    let c = within(Client::connect(&server.url("kept"), ConnectOptions::default())).await.expect("connect");
    assert!(c.mirror().get(&n).is_some(), "the node made before the restart is there");
    // The library's builder opens the same store by default: here it is held by the running
    // binary, so building says so.
    let held = std::process::Command::new(env!("CARGO_BIN_EXE_objectsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .expect("run a second server");
    assert!(!held.status.success());
    let err = String::from_utf8_lossy(&held.stderr);
    assert!(err.contains("objectsync-data"), "{err}");
    server.kill();
}
