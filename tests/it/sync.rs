//! Replication: order, acks, rejects, resume, dedupe, presence, services, read-only, server code.

use crate::harness::*;
use objectsync::client::{ClientError, ConnectOptions, Event};
use objectsync::model::{Change, Value};
use objectsync::presets::demo;
use objectsync::protocol::ClientMessage;
use objectsync::Grant;
use objectsync::Server;
use std::time::Duration;

#[tokio::test]
async fn clients_see_the_same_updates_in_the_same_order() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let na = a.new_object_id();
    let v = within(a.act(vec![create_node(&na, 1)])).await.expect("create");
    let mut seen_b = Vec::new();
    // Both write concurrently; both must see one sequence.
    for i in 0..20 {
        a.send_action(vec![set_x(&na, i)]).await.expect("send a");
        b.send_action(vec![set_title(&na, &format!("b{i}"))]).await.expect("send b");
    }
    within(a.wait_for_version(v + 40)).await.expect("a caught up");
    within(b.wait_for_version(v + 40)).await.expect("b caught up");
    let mut seen_a = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(50), a.next_event()).await {
        if let Event::Update { v, origin, .. } = e {
            seen_a.push((v, origin));
        }
    }
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(50), b.next_event()).await {
        if let Event::Update { v, origin, .. } = e {
            seen_b.push((v, origin));
        }
    }
    let a_tail: Vec<_> = seen_a.iter().filter(|(ver, _)| *ver > v).cloned().collect();
    let b_tail: Vec<_> = seen_b.iter().filter(|(ver, _)| *ver > v).cloned().collect();
    assert_eq!(a_tail.len(), 40);
    assert_eq!(a_tail, b_tail, "one order for everyone");
    assert_eq!(a.mirror().to_snapshot(), ts.snapshot("r").await);
    assert_eq!(b.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

#[tokio::test]
async fn a_reject_changes_nothing_and_reaches_only_the_sender() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let before = ts.snapshot("r").await;
    let bad = vec![create_node("stranger:1", 5)];
    let r = within(a.act(bad)).await;
    assert!(matches!(r, Err(ClientError::Rejected { ref code, .. }) if code == "bad_id"), "{r:?}");
    let r = within(a.act(vec![set_x("graph", 1)])).await;
    assert!(matches!(r, Err(ClientError::Rejected { ref code, .. }) if code == "no_such_attribute"), "{r:?}");
    assert_eq!(ts.snapshot("r").await, before);
    // b sees no reject, only the next real update.
    let n = a.new_object_id();
    let v = within(a.act(vec![create_node(&n, 1)])).await.expect("ok");
    match next_non_presence(&mut b).await {
        Event::Update { v: got, .. } => assert_eq!(got, v),
        other => panic!("b got {other:?}"),
    }
    ts.stop().await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let ts = TestServer::start().await;
    let mut a = ts.client("one").await;
    let mut b = ts.client("two").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("ok");
    assert!(ts.snapshot("two").await.children[0].children.is_empty());
    let r = tokio::time::timeout(Duration::from_millis(200), b.next_event()).await;
    assert!(r.is_err(), "room two heard {r:?}");
    ts.stop().await;
}

#[tokio::test]
async fn resume_gets_exactly_the_missed_versions_and_no_action_twice() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let mut other = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("ok");
    let (resume, mirror) = a.into_resume();
    let left_at = resume.version;
    for i in 0..5 {
        within(other.act(vec![set_x(&n, 100 + i)])).await.expect("ok");
    }
    let mut a = within(objectsync::client::Client::connect(
        &ts.url("r"),
        ConnectOptions { resume: Some((resume.clone(), mirror)), ..ConnectOptions::default() },
    ))
    .await
    .expect("resume");
    assert_eq!(a.id(), resume.client.as_str(), "same client id");
    assert_eq!(a.version(), left_at + 5);
    let mut got = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), a.next_event()).await {
        if let Event::Update { v, .. } = e {
            got.push(v);
        }
    }
    assert_eq!(got, (left_at + 1..=left_at + 5).collect::<Vec<_>>());
    assert_eq!(a.mirror().to_snapshot(), ts.snapshot("r").await);
    // Re-sending an already processed action id is refused, not applied again.
    let acked = a.acked();
    a.send(&ClientMessage::Action { id: acked, base: a.version(), changes: vec![set_x(&n, 999)], step: None })
        .await
        .expect("send");
    match next_non_presence(&mut a).await {
        Event::Reject { code, .. } => assert_eq!(code, "duplicate_action"),
        other => panic!("{other:?}"),
    }
    assert_ne!(a.mirror().value(&n, "pos").and_then(|p| p.as_dict()).and_then(|d| d.get("x")), Some(&Value::Int(999)));
    ts.stop().await;
}

#[tokio::test]
async fn a_resume_too_old_for_the_log_gets_a_snapshot() {
    let limits = objectsync::ServerLimits {
        room_log_versions_max: 3,
        messages_per_second_max: 100_000,
        message_burst_max: 100_000,
        ..Default::default()
    };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut a = ts.client("r").await;
    let mut other = ts.client("r").await;
    let n = other.new_object_id();
    within(other.act(vec![create_node(&n, 1)])).await.expect("ok");
    within(a.wait_for_version(other.version())).await.expect("sync");
    let (resume, mirror) = a.into_resume();
    for i in 0..6 {
        within(other.act(vec![set_x(&n, i)])).await.expect("ok");
    }
    let a = within(objectsync::client::Client::connect(
        &ts.url("r"),
        ConnectOptions { resume: Some((resume, mirror)), ..ConnectOptions::default() },
    ))
    .await
    .expect("resume");
    assert_eq!(a.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

#[tokio::test]
async fn presence_appears_and_disappears() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let b = ts.client("r").await;
    let mut b = b;
    b.set_presence(objectsync::dict! { "name" => "Bob" }.into()).await.expect("presence");
    let b_id = b.id().to_owned();
    loop {
        if let Event::Presence { client, state } = within(a.next_event()).await.expect("event") {
            assert_eq!(client, b_id);
            assert_eq!(state.as_dict().and_then(|d| d.get("name")), Some(&Value::from("Bob")));
            break;
        }
    }
    // A newcomer gets it in its welcome.
    let c = ts.client("r").await;
    assert!(c.presence().contains_key(b_id.as_str()));
    b.close().await.expect("close");
    loop {
        if let Event::Presence { client, state } = within(a.next_event()).await.expect("event") {
            assert_eq!((client.as_str(), state), (b_id.as_str(), Value::Null));
            break;
        }
    }
    ts.stop().await;
}

#[tokio::test]
async fn services_answer_fail_and_time_out() {
    let limits = objectsync::ServerLimits { service_timeout_ms: 200, ..Default::default() };
    let builder = TestServer::builder()
        .limits(limits)
        .service("echo", |call| async move {
            Ok(objectsync::dict! { "client" => call.client.as_str(), "args" => call.args }.into())
        })
        .service("fail", |_| async { Err("nope".to_owned()) })
        .service("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Value::Null)
        })
        .service("rename", |call| async move {
            let title = call.args.as_str().unwrap_or_default().to_owned();
            call.room
                .transact(move |tx| {
                    let page = tx.key("hello").ok_or(objectsync::model::ModelError::hook("no hello"))?;
                    let text: demo::Text = tx.handle(page)?;
                    text.text().set(tx, title)
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(Value::Bool(true))
        });
    let ts = TestServer::start_with(builder).await;
    let mut a = ts.client("r").await;
    let v = within(a.call("echo", Value::Int(7))).await.expect("echo");
    assert_eq!(v.as_dict().and_then(|d| d.get("client")), Some(&Value::from(a.id())));
    let e = within(a.call("fail", Value::Null)).await;
    assert!(matches!(e, Err(ClientError::Service { ref code, .. }) if code == "service_failed"), "{e:?}");
    let e = within(a.call("slow", Value::Null)).await;
    assert!(matches!(e, Err(ClientError::Service { ref code, .. }) if code == "timeout"), "{e:?}");
    let e = within(a.call("missing", Value::Null)).await;
    assert!(matches!(e, Err(ClientError::Service { ref code, .. }) if code == "no_such_service"), "{e:?}");
    within(a.call("rename", "from a service".into())).await.expect("rename");
    within(a.wait_for_version(1)).await.expect("update");
    assert_eq!(a.mirror().value("hello", "text"), Some(&Value::from("from a service")));
    ts.stop().await;
}

#[tokio::test]
async fn read_only_clients_get_their_actions_rejected() {
    let builder = TestServer::builder().authorize(|req| async move {
        match req.token.as_deref() {
            Some("writer") => Ok(Grant::new()),
            Some("reader") => Ok(Grant::new().read_only(true)),
            _ => Err("unknown token".to_owned()),
        }
    });
    let ts = TestServer::start_with(builder).await;
    let connect = |token: Option<&str>| {
        let url = ts.url("r");
        let token = token.map(str::to_owned);
        async move { objectsync::client::Client::connect(&url, ConnectOptions { token, ..ConnectOptions::default() }).await }
    };
    let mut reader = within(connect(Some("reader"))).await.expect("reader");
    assert!(reader.read_only());
    let n = reader.new_object_id();
    let r = within(reader.act(vec![create_node(&n, 1)])).await;
    assert!(matches!(r, Err(ClientError::Rejected { ref code, .. }) if code == "read_only"), "{r:?}");
    let r = within(connect(None)).await;
    assert!(matches!(r, Err(ClientError::Closed { code: 4001, .. })), "{r:?}");
    let mut writer = within(connect(Some("writer"))).await.expect("writer");
    let n = writer.new_object_id();
    within(writer.act(vec![create_node(&n, 1)])).await.expect("writer writes");
    ts.stop().await;
}

#[tokio::test]
async fn permissions_per_subtree_are_enforced() {
    // Each client may change only what lies under a Div whose style names it as owner.
    let mut types = demo::types();
    types.permission(|a| {
        let Some(client) = a.actor.client_id() else {
            return Ok(());
        };
        let owner = std::iter::once(a.object)
            .chain(a.doc.ancestors(a.object))
            .find(|&k| a.doc.type_name(k) == Some("Div"))
            .and_then(|div| a.doc.value(div, "style"))
            .and_then(|s| s.as_dict().and_then(|d| d.get("owner")).cloned());
        match owner {
            Some(Value::String(o)) if o != client => Err(format!("this layer belongs to {o}")),
            _ => Ok(()),
        }
    });
    let ts =
        TestServer::start_with(Server::builder(types).on_room_create(|_, tx| demo::build_room(tx)).in_memory()).await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let layer = a.new_object_id();
    let style = objectsync::dict! { "owner" => a.id() };
    let create_layer = Change::Create {
        id: layer.clone(),
        type_name: "Div".into(),
        parent: "root".into(),
        index: None,
        attrs: objectsync::dict! { "style" => style },
        children: Vec::new(),
    };
    within(a.act(vec![create_layer])).await.expect("a makes its layer");
    within(b.wait_for_version(a.version())).await.expect("b syncs");
    let text_b = b.new_object_id();
    let into_a = Change::Create {
        id: text_b,
        type_name: "Text".into(),
        parent: layer.clone(),
        index: None,
        attrs: Default::default(),
        children: Vec::new(),
    };
    let r = within(b.act(vec![into_a.clone()])).await;
    assert!(matches!(r, Err(ClientError::Rejected { ref code, .. }) if code == "denied"), "{r:?}");
    let text_a = a.new_object_id();
    let mine = Change::Create {
        id: text_a,
        type_name: "Text".into(),
        parent: layer,
        index: None,
        attrs: Default::default(),
        children: Vec::new(),
    };
    within(a.act(vec![mine])).await.expect("a writes in its layer");
    ts.stop().await;
}

#[tokio::test]
async fn server_code_changes_reach_every_client() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let room = ts.server.room("r").await.expect("room");
    within(room.transact(|tx| {
        let key = tx.key("hello").ok_or(objectsync::model::ModelError::hook("no hello"))?;
        let text: demo::Text = tx.handle(key)?;
        text.text().set(tx, "Hello from Rust")?;
        text.style().set_key(tx, "color", "red")
    }))
    .await
    .expect("transact");
    for c in [&mut a, &mut b] {
        match next_non_presence(c).await {
            Event::Update { origin, action, .. } => {
                assert_eq!((origin.as_str(), action), ("server", None))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.mirror().value("hello", "text"), Some(&Value::from("Hello from Rust")));
        let style = c.mirror().value("hello", "style").and_then(|s| s.as_dict().cloned()).unwrap_or_default();
        assert_eq!(style.get("color"), Some(&Value::from("red")));
    }
    let refused = within(room.transact(|tx| tx.delete(tx.root()))).await;
    assert!(matches!(refused, Err(objectsync::RoomError::Rejected { .. })), "{refused:?}");
    ts.stop().await;
}

#[tokio::test]
async fn undo_and_redo_over_the_wire() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 1)])).await.expect("create");
    within(a.act(vec![set_title(&n, "renamed")])).await.expect("rename");
    within(a.undo(Some(&n))).await.expect("undo");
    assert_eq!(a.mirror().value(&n, "title"), Some(&Value::from("node")));
    within(a.redo(Some(&n))).await.expect("redo");
    assert_eq!(a.mirror().value(&n, "title"), Some(&Value::from("renamed")));
    let r = within(a.undo(Some("nope"))).await;
    assert!(matches!(r, Err(ClientError::Rejected { ref code, .. }) if code == "no_such_object"), "{r:?}");
    ts.stop().await;
}

#[tokio::test]
async fn events_reach_everyone_without_a_version() {
    let mut types = objectsync::model::TypeRegistry::new();
    objectsync::sobject! { pub struct Bell: "Bell" { ring: Event } }
    types.register::<Bell>();
    let ts = TestServer::start_with(Server::builder(types).in_memory()).await;
    let mut a = ts.client("r").await;
    let mut b = ts.client("r").await;
    let bell = a.new_object_id();
    let create = Change::Create {
        id: bell.clone(),
        type_name: "Bell".into(),
        parent: "root".into(),
        index: None,
        attrs: Default::default(),
        children: Vec::new(),
    };
    let v = within(a.act(vec![create])).await.expect("create");
    let emit = Change::Emit { obj: bell, attr: "ring".into(), args: Value::Int(3) };
    assert_eq!(within(a.act(vec![emit])).await.expect("emit"), v, "no new version");
    within(b.wait_for_version(v)).await.expect("sync");
    loop {
        match next_non_presence(&mut b).await {
            Event::Events { changes, .. } => {
                assert!(matches!(&changes[0], Change::Emit { args: Value::Int(3), .. }));
                break;
            }
            Event::Update { .. } => continue,
            other => panic!("{other:?}"),
        }
    }
    ts.stop().await;
}

#[tokio::test]
async fn concurrent_writers_converge_with_the_server() {
    let ts = TestServer::start().await;
    let writers = 4;
    let actions = 100;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let url = ts.url("busy");
        tasks.push(tokio::spawn(async move {
            let mut c = objectsync::client::Client::connect(&url, ConnectOptions::default()).await.expect("connect");
            let n = c.new_object_id();
            c.act(vec![create_node(&n, w)]).await.expect("create");
            let mut last = 0;
            for i in 0..actions {
                // Every writer also sets one shared key: the server orders them.
                let shared = Change::DictSet {
                    obj: "hello".into(),
                    attr: "style".into(),
                    key: "last".into(),
                    value: Value::Int(w),
                };
                last = c.send_action(vec![set_x(&n, i), shared]).await.expect("send");
            }
            c.wait_ack(last).await.expect("last ack");
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(within(t).await.expect("writer"));
    }
    // Wait until every client has every update: the final version is the server's.
    let room = ts.server.room("busy").await.expect("room");
    let mut final_version = 0;
    for _ in 0..200 {
        let v = within(room.read(|d| d.version())).await.expect("read");
        let all_acked = clients.iter().all(|c| c.version() >= v);
        if v == final_version && all_acked {
            break;
        }
        final_version = v;
        for c in clients.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(20), c.wait_for_version(v)).await;
        }
    }
    let server = ts.snapshot("busy").await;
    for c in &clients {
        assert_eq!(c.mirror().to_snapshot(), server, "client {} diverged", c.id());
    }
    ts.stop().await;
}

#[tokio::test]
async fn batching_and_plain_clients_get_the_same_sequence() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ts = TestServer::start().await;
    // A plain client (no `batch` in its hello) reading raw frames.
    let (mut plain, _) = tokio_tungstenite::connect_async(ts.url("r")).await.expect("connect");
    plain.send(Message::Text(r#"{"t":"hello","protocol":1}"#.into())).await.expect("hello");
    let mut batching = ts.client("r").await;
    let mut writer = ts.client("r").await;
    let n = writer.new_object_id();
    let v0 = within(writer.act(vec![create_node(&n, 1)])).await.expect("create");
    let mut last = 0;
    for i in 0..200 {
        last = writer.send_action(vec![set_x(&n, i)]).await.expect("send");
    }
    let end = within(writer.wait_ack(last)).await.expect("ack");
    within(batching.wait_for_version(end)).await.expect("batching client caught up");
    let mut versions = Vec::new();
    let mut saw_batch = false;
    while versions.last().copied().unwrap_or(0) < end {
        let Some(Ok(Message::Text(t))) = within(plain.next()).await else { panic!("plain client lost the stream") };
        saw_batch |= t.starts_with(r#"{"t":"batch""#);
        if let Ok(objectsync::protocol::ServerMessage::Update { v, .. }) = objectsync::protocol::decode_server(&t) {
            versions.push(v);
        }
    }
    assert!(!saw_batch, "a client that did not ask for batches got one");
    let tail: Vec<u64> = versions.into_iter().filter(|v| *v > v0).collect();
    assert_eq!(tail, (v0 + 1..=end).collect::<Vec<_>>());
    assert_eq!(batching.mirror().to_snapshot(), ts.snapshot("r").await);
    ts.stop().await;
}

#[tokio::test]
async fn a_large_welcome_arrives_whole_in_either_snapshot_form() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ts = TestServer::start().await;
    let room = ts.server.room("big").await.expect("room");
    // Far more than one WebSocket fragment (32 KiB) of welcome.
    within(room.transact(|tx| (0..3000).try_for_each(|i| tx.apply(create_node(&format!("s:{i}"), i % 2000)))))
        .await
        .expect("build");
    let expected = ts.snapshot("big").await;
    let compact = ts.client("big").await;
    assert_eq!(compact.mirror().to_snapshot(), expected);
    let (mut ws, _) = tokio_tungstenite::connect_async(ts.url("big")).await.expect("connect");
    ws.send(Message::Text(r#"{"t":"hello","protocol":1}"#.into())).await.expect("hello");
    let text = match within(ws.next()).await {
        Some(Ok(Message::Text(t))) => t,
        other => panic!("no welcome: {other:?}"),
    };
    assert!(text.len() > 100_000 && text.contains(r#""attrs":{"#), "nested form expected");
    match objectsync::protocol::decode_server(&text) {
        Ok(objectsync::protocol::ServerMessage::Welcome { snapshot: Some(s), .. }) => assert_eq!(s.root, expected),
        other => panic!("bad welcome: {other:?}"),
    }
    ts.stop().await;
}
