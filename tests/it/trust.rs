//! The server's promises under unlucky and hostile input (issue 18): a resume while the old
//! socket is open, action ids past the JSON-safe range, refused transactions leaving no trace,
//! the deepest documents the limits accept round-tripping through SQLite and the wire.

use crate::harness::*;
use objectsync::client::{Client, ConnectOptions, Event};
use objectsync::protocol::ClientMessage;

/// The next reject (updates and presence before it are skipped): its action id and code.
async fn next_reject(c: &mut Client) -> (u64, String) {
    loop {
        if let Event::Reject { action, code, .. } = next_non_presence(c).await {
            return (action, code);
        }
    }
}

/// A phone switching from Wi-Fi to mobile data: the new connection resumes while the old socket
/// is still open. The old one is closed; the new one gets every later update and an answer for
/// every action.
#[tokio::test]
async fn a_resume_while_the_old_socket_is_open_ends_in_a_live_session() {
    let ts = TestServer::start().await;
    let mut old = ts.client("r").await;
    let mut other = ts.client("r").await;
    let n = old.new_object_id();
    within(old.act(vec![create_node(&n, 1)])).await.expect("ok");
    let resume = old.resume_point();
    let mirror = old.mirror().clone();
    let mut new = within(Client::connect(
        &ts.url("r"),
        ConnectOptions { resume: Some((resume.clone(), mirror)), ..ConnectOptions::default() },
    ))
    .await
    .expect("resume");
    assert_eq!(new.id(), resume.client.as_str());
    let (code, reason) = until_closed(&mut old).await;
    assert_eq!(code, 1000, "{reason}");
    assert!(reason.contains("replaced"), "{reason}");
    // The new connection's actions are answered ...
    within(new.act(vec![set_x(&n, 7)])).await.expect("acted on the new connection");
    let bad = new.send_action(vec![set_x("no-such-object", 1)]).await.expect("send");
    let (action, _) = next_reject(&mut new).await;
    assert_eq!(action, bad);
    // ... and it receives what others do.
    let v = within(other.act(vec![set_x(&n, 8)])).await.expect("other acts");
    within(new.wait_for_version(v)).await.expect("the new connection sees other's update");
    assert_eq!(new.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

/// An action id past 2^53 - 1 (what JSON numbers carry exactly) is refused, and the client can
/// act again afterwards.
#[tokio::test]
async fn action_ids_past_the_json_safe_range_are_refused_and_the_client_keeps_acting() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("ok");
    for id in [1u64 << 53, 1 << 63, u64::MAX] {
        a.send(&ClientMessage::Action { id, base: a.version(), changes: vec![set_x(&n, 5)], step: None })
            .await
            .expect("send");
        let (action, code) = next_reject(&mut a).await;
        assert_eq!((action, code.as_str()), (id, "bad_id"));
    }
    // The largest allowed id works, and nothing was applied by the refused ones.
    let max = objectsync::protocol::ID_MAX;
    a.send(&ClientMessage::Action { id: max, base: a.version(), changes: vec![set_x(&n, 6)], step: None })
        .await
        .expect("send");
    within(a.wait_ack(max)).await.expect("the largest id is accepted");
    assert_eq!(a.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

/// A chain of `Div`s `depth` deep under `parent` (ids `<prefix>1`..), the deepest with a `style`
/// nested `value_depth` levels.
fn div_chain(prefix: &str, depth: usize, value_depth: usize) -> objectsync::model::NodeSnapshot {
    let mut style = Value::Int(1);
    for _ in 0..value_depth {
        style = Value::Dict(objectsync::dict! { "a" => style });
    }
    let mut node = objectsync::model::NodeSnapshot {
        id: format!("{prefix}{depth}").into(),
        type_name: "Div".into(),
        attrs: match style {
            Value::Dict(d) => objectsync::dict! { "style" => Value::Dict(d) },
            _ => Default::default(),
        },
        children: Vec::new(),
    };
    for level in (1..depth).rev() {
        node = objectsync::model::NodeSnapshot {
            id: format!("{prefix}{level}").into(),
            type_name: "Div".into(),
            attrs: Default::default(),
            children: vec![node],
        };
    }
    node
}

use objectsync::model::Value;

/// Builds, in a document, the deepest trees and values the limits allow (one nested create, then
/// deleted and created again, so that the log holds a create of the whole chain), stores it in a
/// real SQLite file (snapshot and log), and loads it back in both ways: the snapshot alone and
/// the first snapshot plus the log. The room must come back equal.
fn check_round_trip_through_sqlite(depth: usize, value_depth: usize) {
    use objectsync::model::{Actor, Change, Document};
    use objectsync::store::{KnownClient, LogEntry, RoomSnapshot, SqliteStore, Store, WriteBatch};
    let types = std::sync::Arc::new(objectsync::presets::demo::types());
    let limits = objectsync::ModelLimits::default();
    let mut doc = Document::with_limits(types.clone(), limits.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let store = SqliteStore::open(dir.path()).expect("open");
        let first = RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0, schema: None };
        store.save_snapshot("deep", &first, 0).await.expect("first snapshot");
        let chain = div_chain("d", depth, value_depth);
        let create = Change::Create {
            id: chain.id.clone(),
            type_name: chain.type_name.clone(),
            parent: "root".into(),
            index: None,
            attrs: chain.attrs.clone(),
            children: chain.children.clone(),
        };
        let steps = vec![vec![create.clone()], vec![Change::Delete { id: "d1".into() }], vec![create]];
        for changes in steps {
            let t = doc.apply(&Actor::Server, None, changes).expect("the limits accept it");
            let frame = objectsync::protocol::encode_update(t.version, "server", None, &t.changes, false);
            assert!(
                objectsync::protocol::decode_server(&frame).is_ok(),
                "depth {depth}/{value_depth}: the update frame reads back"
            );
            let changes = objectsync::protocol::encode_changes(&t.changes);
            let batch = WriteBatch {
                entries: vec![LogEntry { version: t.version, origin: None, action: None, changes, schema_version: 1 }],
                clients: vec![KnownClient { id: "c1".into(), last_action: t.version }],
            };
            store.append("deep", batch).await.expect("append");
        }
        // The first snapshot and the log replayed.
        let stored = store.load("deep").await.expect("load").expect("stored");
        let replayed = objectsync::load_room(&types, &limits, "deep", stored).expect("log replays").doc;
        assert_eq!(replayed.snapshot(), doc.snapshot());
        // The latest snapshot, in a file opened afresh.
        let latest = RoomSnapshot { doc: doc.snapshot(), clients: Vec::new(), clients_floor: 0, schema: None };
        store.save_snapshot("deep", &latest, 0).await.expect("snapshot");
        drop(store);
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let stored = store.load("deep").await.expect("load").expect("stored");
        let loaded = objectsync::load_room(&types, &limits, "deep", stored).expect("loads").doc;
        assert_eq!(loaded.snapshot(), doc.snapshot());
        // Both snapshot forms of the wire read back, and nest no deeper than the limits say.
        for text in [
            serde_json::to_string(&objectsync::protocol::snapshot_view(&doc)).expect("nested"),
            serde_json::to_string(&objectsync::protocol::compact_snapshot_view(&doc)).expect("compact"),
        ] {
            let back: objectsync::model::DocSnapshot = objectsync::protocol::decode_trusted(&text).expect("reads");
            assert_eq!(back, doc.snapshot());
        }
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]
    #[test]
    fn documents_up_to_the_limits_round_trip_through_sqlite(
        depth in 1usize..=objectsync::ModelLimits::default().tree_depth_max,
        value_depth in 1usize..=objectsync::ModelLimits::default().value_depth_max,
    ) {
        check_round_trip_through_sqlite(depth, value_depth);
    }
}

#[test]
fn the_deepest_document_the_limits_accept_round_trips_through_sqlite() {
    let limits = objectsync::ModelLimits::default();
    check_round_trip_through_sqlite(limits.tree_depth_max, limits.value_depth_max);
}

#[test]
fn one_level_past_the_limits_is_refused() {
    use objectsync::model::{Actor, Change, Document};
    let limits = objectsync::ModelLimits::default();
    let mut doc = Document::with_limits(std::sync::Arc::new(objectsync::presets::demo::types()), limits.clone());
    for (depth, value_depth) in [(limits.tree_depth_max + 1, 1), (1, limits.value_depth_max + 1)] {
        let chain = div_chain("d", depth, value_depth);
        let create = Change::Create {
            id: chain.id,
            type_name: chain.type_name,
            parent: "root".into(),
            index: None,
            attrs: chain.attrs,
            children: chain.children,
        };
        let r = doc.apply(&Actor::Server, None, vec![create]);
        assert!(r.is_err(), "depth {depth}, value depth {value_depth} must be refused");
    }
}

/// The same over real sockets: a client builds the chain one object at a time (each message is
/// small), the deepest value is set, the chain is deleted and undone (so the log and every client
/// get one update with a create of the whole chain), the server stops and starts again on the
/// same SQLite file, and new clients in both snapshot forms read it.
#[tokio::test]
async fn the_deepest_room_survives_a_restart_and_reaches_clients_in_both_forms() {
    use objectsync::model::Change;
    let limits = objectsync::ModelLimits::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = || std::sync::Arc::new(objectsync::store::SqliteStore::open(dir.path()).expect("open"));
    let ts = TestServer::start_with(TestServer::builder().store(store())).await;
    let mut a = ts.client("deep").await;
    let mut watcher = ts.client("deep").await;
    let mut parent: String = "root".into();
    let mut ids = Vec::new();
    for _ in 0..limits.tree_depth_max {
        let id = a.new_object_id().to_string();
        let create = Change::Create {
            id: id.as_str().into(),
            type_name: "Div".into(),
            parent: parent.as_str().into(),
            index: None,
            attrs: Default::default(),
            children: Vec::new(),
        };
        within(a.act(vec![create])).await.expect("within the tree depth limit");
        ids.push(id.clone());
        parent = id;
    }
    let deepest = div_chain("x", 1, limits.value_depth_max).attrs;
    let style = deepest.get("style").cloned().expect("style");
    within(a.act(vec![Change::Set { obj: parent.as_str().into(), attr: "style".into(), value: style }]))
        .await
        .expect("within the value depth limit");
    within(a.act(vec![Change::Delete { id: ids[0].as_str().into() }])).await.expect("delete");
    within(a.undo(None)).await.expect("undo brings the chain back in one update");
    within(watcher.wait_for_version(a.version())).await.expect("the watcher reads the deep update");
    let expected = ts.snapshot("deep").await;
    assert_eq!(watcher.mirror().to_snapshot(), expected);
    ts.stop().await;

    let ts = TestServer::start_with(TestServer::builder().store(store())).await;
    assert_eq!(ts.snapshot("deep").await, expected, "the room loads after a restart");
    let compact = ts.client("deep").await;
    assert_eq!(compact.mirror().to_snapshot(), expected, "compact welcome");
    // The nested form, as a client that does not ask for the compact one gets it.
    let (mut ws, _) = tokio_tungstenite::connect_async(ts.url("deep")).await.expect("connect");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(r#"{"t":"hello","protocol":1}"#)).await.expect("hello");
    let welcome = loop {
        match within(ws.next()).await.expect("message").expect("read") {
            tokio_tungstenite::tungstenite::Message::Text(t) => break t,
            _ => continue,
        }
    };
    match objectsync::protocol::decode_server(&welcome).expect("the nested welcome reads") {
        objectsync::protocol::ServerMessage::Welcome { snapshot: Some(s), .. } => assert_eq!(s.root, expected),
        other => panic!("{other:?}"),
    }
    ts.stop().await;
}

/// Connections that never finish their request head are closed after `http_header_timeout_ms`,
/// and others are served meanwhile.
#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = objectsync::ServerLimits { http_header_timeout_ms: 300, ..TestServer::builder_limits() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut tcp = tokio::net::TcpStream::connect(ts.addr).await.expect("connect");
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("half a head");
        stalled.push(tcp);
    }
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("served meanwhile");
    for mut tcp in stalled {
        let mut buf = [0u8; 256];
        // The server ends the connection (an empty read, or a reset); it never answers.
        let read = within(tcp.read(&mut buf)).await;
        assert!(matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"), "{read:?}");
    }
    ts.stop().await;
}

/// Pings count against the message rate: a ping flood ends like a message flood (4004).
#[tokio::test]
async fn a_ping_flood_is_rate_limited_like_messages() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let limits = objectsync::ServerLimits {
        messages_per_second_max: 10,
        message_burst_max: 20,
        errors_max: 5,
        ..objectsync::ServerLimits::default()
    };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ts.url("r")).await.expect("connect");
    ws.send(Message::text(r#"{"t":"hello","protocol":1}"#)).await.expect("hello");
    for _ in 0..2000 {
        if ws.send(Message::Ping(Default::default())).await.is_err() {
            break;
        }
    }
    let code = loop {
        match within(ws.next()).await {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("the server must close with a code, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4004));
    ts.stop().await;
}

type RawSocket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client that says hello, then only writes: it never reads what the server sends.
async fn non_reader(url: &str) -> RawSocket {
    use futures_util::SinkExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    let hello = r#"{"t":"hello","protocol":1}"#;
    ws.send(tokio_tungstenite::tungstenite::Message::text(hello)).await.expect("hello");
    ws
}

/// Waits (bounded) until `slow_disconnects_total` reaches `n`.
async fn until_cut_off(ts: &TestServer, n: u64) {
    within(async {
        while metric(ts, "objectsync_slow_disconnects_total") < n as f64 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Calls `echo` with about 256 KiB of arguments, `count` times, without reading the results
/// (stops when the server closes the connection).
async fn pile_up_results(ws: &mut RawSocket, count: u64) {
    use futures_util::SinkExt;
    let args = "y".repeat(256 * 1024);
    for id in 1..=count {
        let call = format!(r#"{{"t":"call","id":{id},"service":"echo","args":"{args}"}}"#);
        match tokio::time::timeout(DEADLINE, ws.send(tokio_tungstenite::tungstenite::Message::text(call))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return, // cut off
            Err(_) => panic!("the server stopped reading a client it did not close"),
        }
    }
}

/// A client that asks for large service results and never reads them is cut off once its queue
/// holds `outbound_queue_bytes_max` (400 results are far fewer than `outbound_queue_len_max`
/// messages); the others carry on. (The client is not reading: its close frame may not reach
/// it, so the cut-off is read from the metrics.)
#[tokio::test]
async fn a_non_reader_is_cut_off_by_the_bytes_it_holds_not_the_count() {
    let limits = objectsync::ServerLimits { outbound_queue_bytes_max: 1 << 20, ..TestServer::builder_limits() };
    let ts = TestServer::start_with(objectsync::presets::demo::server().limits(limits)).await;
    let mut slow = non_reader(&ts.url("r")).await;
    // Bounded: 400 results of 256 KiB (100 MiB) at most; the queue holds 1 MiB.
    pile_up_results(&mut slow, 400).await;
    until_cut_off(&ts, 1).await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("the others carry on");
    assert!(metric(&ts, "objectsync_outbound_bytes") < f64::from(1 << 20), "the queue's bytes were given back");
    ts.stop().await;
}

/// Many slow clients together cannot hold more than `outbound_bytes_max`: past it, the client
/// whose result would go over is cut off, though each holds less than its own bound.
#[tokio::test]
async fn slow_clients_together_are_bounded_by_the_server_budget() {
    let budget = 2usize << 20;
    let limits = objectsync::ServerLimits {
        outbound_queue_bytes_max: 1 << 30,
        outbound_bytes_max: budget,
        ..TestServer::builder_limits()
    };
    let ts = TestServer::start_with(objectsync::presets::demo::server().limits(limits)).await;
    let mut first = non_reader(&ts.url("r")).await;
    let mut second = non_reader(&ts.url("r")).await;
    let (a, b) = tokio::join!(pile_up_results(&mut first, 200), pile_up_results(&mut second, 200));
    let ((), ()) = (a, b);
    until_cut_off(&ts, 1).await;
    assert!(metric(&ts, "objectsync_outbound_bytes") <= (budget + (300 << 10)) as f64);
    let mut c = ts.client("r").await;
    assert_eq!(within(c.call("echo", Value::from("hi"))).await.map(|_| ()), Ok(()), "a reader is served");
    ts.stop().await;
}

/// A client 2,500 versions behind resumes from the log (the doc promises the last
/// `room_log_versions_max` = 10,000 updates), not from a snapshot.
#[tokio::test]
async fn a_resume_within_the_documented_window_gets_the_missed_updates() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("ok");
    let (resume, mirror) = a.into_resume();
    let room = ts.server.room("r").await.expect("room");
    for i in 0..2500i64 {
        let id = n.clone();
        within(room.transact(move |tx| {
            tx.apply(objectsync::model::Change::DictSet {
                obj: id,
                attr: "pos".into(),
                key: "x".into(),
                value: Value::Int(i % 1000),
            })
        }))
        .await
        .expect("server change");
    }
    let mut a = within(Client::connect(
        &ts.url("r"),
        ConnectOptions { resume: Some((resume.clone(), mirror)), ..ConnectOptions::default() },
    ))
    .await
    .expect("resume");
    let mut missed = 0;
    while let Ok(Ok(Event::Update { .. })) =
        tokio::time::timeout(std::time::Duration::from_millis(200), a.next_event()).await
    {
        missed += 1;
    }
    assert_eq!(missed, 2500, "every missed update, not a snapshot");
    assert_eq!(a.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

/// Concurrent list changes by index never hit another element: two clients that remove index 0
/// of the same list from the same base do not remove two elements; the second is refused
/// (`list_base_stale`) and the list keeps the element nobody removed.
#[tokio::test]
async fn concurrent_list_removes_by_index_never_hit_a_neighbour() {
    use objectsync::model::Change;
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let n = a.new_object_id();
    let mut create = create_node(&n, 1);
    if let Change::Create { attrs, .. } = &mut create {
        attrs.insert("ports", Value::List(["p0", "p1", "p2"].iter().map(|&p| p.into()).collect()));
    }
    let v = within(a.act(vec![create])).await.expect("created");
    within(b.wait_for_version(v)).await.expect("b sees it");
    let remove0 = || vec![Change::ListRemove { obj: n.clone(), attr: "ports".into(), index: 0 }];
    let ida = a.send(&ClientMessage::Action { id: 2, base: v, changes: remove0(), step: None }).await;
    let idb = b.send(&ClientMessage::Action { id: 1, base: v, changes: remove0(), step: None }).await;
    assert!(ida.is_ok() && idb.is_ok());
    let ra = within(a.wait_ack(2)).await;
    let rb = within(b.wait_ack(1)).await;
    let refused: Vec<String> = [&ra, &rb]
        .iter()
        .filter_map(|r| match r {
            Err(objectsync::client::ClientError::Rejected { code, .. }) => Some(code.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec!["list_base_stale".to_owned()], "{ra:?} {rb:?}");
    let fresh = ts.client("r").await;
    let ports = fresh.mirror().value(&n, "ports").cloned();
    assert_eq!(ports, Some(Value::List(["p1", "p2"].iter().map(|&p| p.into()).collect())));
    ts.stop().await;
}

/// Seeded runs: three clients remove, move, set and insert elements of one list by index, each
/// from its own view, concurrently. Every accepted change did what its client meant: the element
/// at its index in the room, just before it applied, is the one the client saw there. (Without
/// the rule, a remove based on an old view removed a neighbour.)
#[tokio::test]
async fn seeded_concurrent_list_edits_only_touch_the_elements_meant() {
    use objectsync::model::Change;
    use rand::{Rng, SeedableRng};
    let list_of = |c: &Client, n: &str| -> Vec<String> {
        match c.mirror().value(n, "ports") {
            Some(Value::List(l)) => l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    };
    let ts = TestServer::start().await;
    let mut owner = ts.client("r").await;
    let n = owner.new_object_id().to_string();
    let mut create = create_node(&n, 1);
    if let Change::Create { attrs, .. } = &mut create {
        attrs.insert("ports", Value::List((0..12).map(|i| format!("e{i}").into()).collect()));
    }
    within(owner.act(vec![create])).await.expect("created");
    let mut refused_total = 0;
    for seed in 0..3u64 {
        let mut watcher = ts.client("r").await;
        let start = watcher.version();
        let mut lists = std::collections::HashMap::from([(start, list_of(&watcher, &n))]);
        let mut tasks = Vec::new();
        for who in 0..3u64 {
            let mut c = ts.client("r").await;
            let n = n.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 10 + who);
                // (version of the accepted change, index, the element the client saw there)
                let mut meant: Vec<(u64, usize, String)> = Vec::new();
                let mut refused = 0;
                for step in 0..40 {
                    let list = list_of(&c, &n);
                    let len = list.len() as u32;
                    let (change, index) = match rng.random_range(0..4) {
                        _ if len == 0 => {
                            let value = format!("c{who}-{seed}-{step}").into();
                            (
                                Change::ListInsert {
                                    obj: n.as_str().into(),
                                    attr: "ports".into(),
                                    index: Some(0),
                                    value,
                                },
                                None,
                            )
                        }
                        0 => {
                            let index = rng.random_range(0..=len);
                            let value = format!("c{who}-{seed}-{step}").into();
                            (
                                Change::ListInsert {
                                    obj: n.as_str().into(),
                                    attr: "ports".into(),
                                    index: Some(index),
                                    value,
                                },
                                None,
                            )
                        }
                        1 => {
                            let index = rng.random_range(0..len);
                            (Change::ListRemove { obj: n.as_str().into(), attr: "ports".into(), index }, Some(index))
                        }
                        2 => {
                            let (from, to) = (rng.random_range(0..len), rng.random_range(0..len));
                            (Change::ListMove { obj: n.as_str().into(), attr: "ports".into(), from, to }, Some(from))
                        }
                        _ => {
                            let index = rng.random_range(0..len);
                            let value = format!("{}*", list[index as usize]).into();
                            (
                                Change::ListSet { obj: n.as_str().into(), attr: "ports".into(), index, value },
                                Some(index),
                            )
                        }
                    };
                    match within(c.act(vec![change])).await {
                        Ok(v) => {
                            if let Some(i) = index {
                                meant.push((v, i as usize, list[i as usize].clone()));
                            }
                        }
                        Err(objectsync::client::ClientError::Rejected { code, reason }) => {
                            assert_eq!(code, "list_base_stale", "{reason}");
                            refused += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (meant, refused, c.version())
            }));
        }
        let mut meant = Vec::new();
        let mut last = start;
        for t in tasks {
            let (m, refused, v) = within(t).await.expect("client");
            meant.extend(m);
            refused_total += refused;
            last = last.max(v);
        }
        while watcher.version() < last {
            if let objectsync::client::Event::Update { v, .. } = within(watcher.next_event()).await.expect("event") {
                lists.insert(v, list_of(&watcher, &n));
            }
        }
        assert!(!meant.is_empty());
        for (v, index, element) in meant {
            let before = lists.get(&(v - 1)).unwrap_or_else(|| panic!("seed {seed}: no list at {}", v - 1));
            assert_eq!(before.get(index), Some(&element), "seed {seed}: the change at version {v} hit another element");
        }
    }
    eprintln!("list edits refused as stale: {refused_total} of 360");
    ts.stop().await;
}

/// The result of an action does not depend on whether or how the server restarted: concurrent
/// inserts at one position are ordered by client id, an edit based before the client's own is
/// `text_base_stale`, and a list change by index based before another client's is
/// `list_base_stale`, in the running room, in the room rebuilt from its log (what survives
/// `kill -9`), and in the room loaded from the snapshot of a clean shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_decide_the_same_after_a_crash_or_a_clean_restart() {
    use objectsync::model::{Actor, Change, Document};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = || std::sync::Arc::new(objectsync::store::SqliteStore::open(dir.path()).expect("open"));
    let reload = |dir: &std::path::Path| {
        let rt = tokio::runtime::Handle::current();
        let store = objectsync::store::SqliteStore::open_for_reading(dir).expect("read");
        let stored = tokio::task::block_in_place(|| rt.block_on(objectsync::store::Store::load(&store, "t")))
            .expect("load")
            .expect("stored");
        let types = std::sync::Arc::new(objectsync::presets::demo::types());
        objectsync::load_room(&types, &Default::default(), "t", stored).expect("loads").doc
    };
    let insert = |pos: u32, text: &str| {
        vec![Change::TextInsert { obj: "hello".into(), attr: "text".into(), pos, text: text.into() }]
    };
    let ts = TestServer::start_with(TestServer::builder().store(store())).await;
    let mut a = ts.client("t").await;
    let mut b = ts.client("t").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("node");
    within(b.wait_for_version(a.version())).await.expect("b sees it");
    let v0 = a.version();
    within(a.act(insert(0, "A"))).await.expect("a types");
    let remove0 = vec![Change::ListRemove { obj: n.clone(), attr: "ports".into(), index: 0 }];
    within(a.act(remove0.clone())).await.expect("a removes a port");
    // What survives kill -9: the room rebuilt from its first snapshot and the log.
    let mut crashed: Document = reload(dir.path());
    let (ida, idb) = (Actor::Client(a.id().into()), Actor::Client(b.id().into()));
    let stale = crashed.apply(&ida, Some(v0), insert(0, "x")).map(|_| ()).map_err(|r| r.code());
    assert_eq!(stale, Err("text_base_stale"), "after a crash");
    let list = crashed.apply(&idb, Some(v0), remove0.clone()).map(|_| ()).map_err(|r| r.code());
    assert_eq!(list, Err("list_base_stale"), "after a crash");
    crashed.apply(&idb, Some(v0), insert(0, "B")).expect("b's concurrent insert");
    // The running room decides alike.
    b.send(&ClientMessage::Action { id: 1, base: v0, changes: remove0.clone(), step: None }).await.expect("send");
    let refused = within(b.wait_ack(1)).await.map(|_| ()).map_err(|e| e.to_string());
    assert!(refused.is_err_and(|e| e.contains("list_base_stale")), "in the running room");
    b.send(&ClientMessage::Action { id: 2, base: v0, changes: insert(0, "B"), step: None }).await.expect("send");
    within(b.wait_ack(2)).await.expect("b's insert");
    a.send(&ClientMessage::Action { id: 10, base: v0, changes: insert(0, "x"), step: None }).await.expect("send");
    let running = within(a.wait_ack(10)).await.map(|_| ()).map_err(|e| e.to_string());
    assert!(running.is_err_and(|e| e.contains("text_base_stale")), "in the running room");
    let running_tree = ts.snapshot("t").await;
    let running_hello = find(&running_tree, "hello").expect("hello");
    let crashed_hello = crashed.value(crashed.key("hello").expect("hello"), "text").cloned();
    assert_eq!(crashed_hello.as_ref(), running_hello.attrs.get("text"), "the same text, ties by client id");
    let ab = if b.id() < a.id() { "BA" } else { "AB" };
    assert!(crashed_hello.and_then(|t| t.as_str().map(|s| s.starts_with(ab))).unwrap_or(false), "ordered by client id");
    ts.stop().await;
    // A clean shutdown saved a snapshot at the last version: the histories come from the log
    // the store keeps behind it.
    let mut restarted = reload(dir.path());
    let stale = restarted.apply(&ida, Some(v0), insert(0, "x")).map(|_| ()).map_err(|r| r.code());
    assert_eq!(stale, Err("text_base_stale"), "after a clean restart");
    let list = restarted.apply(&Actor::Client("cthird".into()), Some(v0), remove0).map(|_| ()).map_err(|r| r.code());
    assert_eq!(list, Err("list_base_stale"), "after a clean restart");
    let third = Actor::Client("c0".into());
    let t1 = crashed.apply(&third, Some(v0), insert(0, "Z")).expect("on the crashed copy");
    let t2 = restarted.apply(&third, Some(v0), insert(0, "Z")).expect("on the restarted room");
    assert_eq!(t1.changes, t2.changes, "the same transform");
}

fn find<'a>(node: &'a objectsync::model::NodeSnapshot, id: &str) -> Option<&'a objectsync::model::NodeSnapshot> {
    if node.id == id {
        return Some(node);
    }
    node.children.iter().find_map(|c| find(c, id))
}

/// A room remembers at most `room_known_clients_max` clients: past it the disconnected ones
/// whose last action is oldest are forgotten, and a resume of one of them is a new client (a
/// new id and a snapshot), never a resume whose re-sent actions could apply twice; a recent
/// client resumes as itself. Both hold after a restart.
#[tokio::test]
async fn a_room_remembers_a_bounded_number_of_clients_and_never_applies_an_action_twice() {
    let limits =
        objectsync::ServerLimits { room_known_clients_max: 3, clients_per_room_max: 3, ..TestServer::builder_limits() };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = || std::sync::Arc::new(objectsync::store::SqliteStore::open(dir.path()).expect("open"));
    let ts = TestServer::start_with(TestServer::builder().limits(limits.clone()).store(store())).await;
    let mut points = Vec::new();
    for i in 0..6 {
        let mut c = ts.client("r").await;
        let n = c.new_object_id();
        let acked = within(c.act(vec![create_node(&n, i)])).await.map(|_| 1).expect("acts");
        points.push((c.resume_point(), c.mirror().clone(), acked));
        within(c.close()).await.expect("close");
    }
    check_known_clients(&ts, &points, "running").await;
    ts.stop().await;
    let ts = TestServer::start_with(TestServer::builder().limits(limits).store(store())).await;
    check_known_clients(&ts, &points, "restarted").await;
    ts.stop().await;
}

/// The first client (forgotten) resumes as a new client; the last (remembered) as itself.
async fn check_known_clients(
    ts: &TestServer,
    points: &[(objectsync::protocol::Resume, objectsync::client::Mirror, u64)],
    when: &str,
) {
    let url = ts.url("r");
    let connect = |i: usize| {
        let (resume, mirror, _) = points[i].clone();
        Client::connect(&url, ConnectOptions { resume: Some((resume, mirror)), ..ConnectOptions::default() })
    };
    let oldest = within(connect(0)).await.expect("connect");
    assert_ne!(oldest.id(), points[0].0.client.as_str(), "{when}: a forgotten client is a new client");
    assert_eq!(oldest.acked(), 0, "{when}");
    within(oldest.close()).await.expect("close");
    let latest = within(connect(5)).await.expect("connect");
    assert_eq!(latest.id(), points[5].0.client.as_str(), "{when}: a recent client resumes as itself");
    assert_eq!(latest.acked(), points[5].2, "{when}: its actions are still deduplicated");
    within(latest.close()).await.expect("close");
}

/// What survives of undo is said in every welcome: a client that resumes while the room is
/// loaded keeps its undo steps (and can undo); after the room unloads, it is told it has none,
/// and its undo answers `nothing_to_undo`; the document is intact.
#[tokio::test]
async fn the_welcome_says_how_much_undo_survived() {
    let limits = objectsync::ServerLimits { room_unload_grace_ms: 50, ..TestServer::builder_limits() };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(objectsync::store::SqliteStore::open(dir.path()).expect("open"));
    let ts = TestServer::start_with(TestServer::builder().limits(limits).store(store)).await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("create");
    within(a.act(vec![set_title(&n, "kept")])).await.expect("title");
    let (resume, mirror) = a.into_resume();
    // A watcher keeps the room loaded while the client is away.
    let watcher = ts.client("r").await;
    let back =
        within(Client::connect(&ts.url("r"), ConnectOptions { resume: Some((resume, mirror)), ..Default::default() }))
            .await
            .expect("resume");
    assert_eq!(back.undo_steps(), (2, 0), "kept while the room is loaded");
    let (resume, mirror) = back.into_resume();
    drop(watcher);
    // Nobody left: the room unloads (grace 50 ms); a fresh client's join loads it again.
    within(async {
        while !ts.server.metrics().lines().any(|l| l == "objectsync_rooms 0") {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let mut again =
        within(Client::connect(&ts.url("r"), ConnectOptions { resume: Some((resume, mirror)), ..Default::default() }))
            .await
            .expect("resume after the unload");
    assert_eq!(again.undo_steps(), (0, 0), "gone with the unload, and the welcome says so");
    let undone = within(again.undo(None)).await;
    assert!(
        matches!(undone, Err(objectsync::client::ClientError::Rejected { ref code, .. }) if code == "nothing_to_undo")
    );
    assert_eq!(again.mirror().value(&n, "title").and_then(Value::as_str), Some("kept"), "the document is intact");
    ts.stop().await;
}
