//! HTTP endpoints, graceful shutdown, flow control.

use crate::harness::*;
use futures_util::{SinkExt, StreamExt};
use objectsync::model::{Change, Value};
use objectsync::protocol::ClientMessage;
use objectsync::ServerLimits;
use tokio_tungstenite::tungstenite::Message;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    raw_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).await
}

async fn raw_request(addr: std::net::SocketAddr, req: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = vec![0u8; 4096];
    let mut len = 0;
    // Read until the server closes or the headers are complete.
    while let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut out[len..])).await {
        if n == 0 {
            break;
        }
        len += n;
        if out[..len].windows(4).any(|w| w == b"\r\n\r\n") && !req.contains("Connection: close") {
            break;
        }
    }
    String::from_utf8_lossy(&out[..len]).into_owned()
}

#[tokio::test]
async fn healthz_metrics_and_bad_room_names() {
    let ts = TestServer::start().await;
    let _c = ts.client("r").await;
    assert!(http_get(ts.addr, "/healthz").await.ends_with("ok"));
    let metrics = http_get(ts.addr, "/metrics").await;
    assert!(metrics.contains("objectsync_rooms 1"), "{metrics}");
    assert!(metrics.contains("objectsync_clients 1"), "{metrics}");
    let upgrade = "GET /ws/bad%20name HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let answer = raw_request(ts.addr, upgrade).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    ts.stop().await;
}

#[tokio::test]
async fn requests_that_are_not_websocket_handshakes_get_plain_http_errors() {
    let ts = TestServer::start().await;
    let head = "Host: localhost\r\nConnection: close";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    let cases = [
        (format!("GET /ws/r HTTP/1.1\r\n{head}\r\n\r\n"), "HTTP/1.1 400", "Connection header"),
        (
            format!("GET /ws/r HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n{key}\r\n\r\n"),
            "HTTP/1.1 426",
            "Version must be 13",
        ),
        (
            "GET /ws/r HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n".to_owned(),
            "HTTP/1.1 400",
            "Sec-WebSocket-Key",
        ),
    ];
    for (request, status, reason) in cases {
        let answer = raw_request(ts.addr, &request).await;
        assert!(answer.starts_with(status) && answer.contains(reason), "{request}: {answer}");
    }
    // A handshake with a list in Connection (as some browsers send) is accepted.
    let ok = format!("GET /ws/r HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n{key}\r\n\r\n");
    let answer = raw_request(ts.addr, &ok).await;
    assert!(answer.starts_with("HTTP/1.1 101") && answer.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{answer}");
    // The server keeps serving.
    let _c = ts.client("r").await;
    ts.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_sessions_with_going_away() {
    let ts = TestServer::start().await;
    let mut a = ts.client("r").await;
    ts.server.shutdown();
    assert_eq!(until_closed(&mut a).await.0, 1001);
    ts.stop().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_while_others_keep_receiving() {
    let limits = ServerLimits {
        outbound_queue_len_max: 8,
        messages_per_second_max: 100_000,
        message_burst_max: 100_000,
        ..ServerLimits::default()
    };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    // The slow one: says hello, then never reads again.
    let (mut slow, _) = tokio_tungstenite::connect_async(ts.url("r")).await.expect("connect");
    let hello = objectsync::protocol::encode_client(&ClientMessage::Hello {
        protocol: 1,
        token: None,
        resume: None,
        batch: false,
        compact_snapshots: false,
        schema: None,
    });
    slow.send(Message::Text(hello.into())).await.expect("hello");
    let mut writer = ts.client("r").await;
    let mut fast = ts.client("r").await;
    let big = "x".repeat(64 * 1024);
    let metrics_cut = || async { http_get(ts.addr, "/metrics").await.contains("objectsync_slow_disconnects_total 1") };
    let mut sent = 0u64;
    // Bounded: at most 2,000 updates of 64 KiB (the socket buffers fill long before).
    while sent < 2000 {
        let change = Change::Set { obj: "hello".into(), attr: "text".into(), value: Value::from(big.as_str()) };
        let v = within(writer.act(vec![change])).await.expect("write");
        within(fast.wait_for_version(v)).await.expect("fast reader keeps up");
        sent += 1;
        if sent.is_multiple_of(50) && metrics_cut().await {
            break;
        }
    }
    assert!(metrics_cut().await, "the slow client was not cut off after {sent} updates");
    // The slow client finds its close frame (4003) after what was buffered.
    let mut code = None;
    while let Ok(Some(msg)) = tokio::time::timeout(DEADLINE, slow.next()).await {
        if let Ok(Message::Close(Some(f))) = msg {
            code = Some(u16::from(f.code));
            break;
        }
        if msg.is_err() {
            break;
        }
    }
    assert_eq!(code, Some(4003));
    // The others carry on.
    let n = writer.new_object_id();
    let v = within(writer.act(vec![create_node(&n, 1)])).await.expect("still serving");
    within(fast.wait_for_version(v)).await.expect("fast still receives");
    assert!(fast.mirror().get(&n).is_some());
    ts.stop().await;
}

#[tokio::test]
async fn idle_rooms_unload_and_come_back_intact() {
    let limits = ServerLimits { room_unload_grace_ms: 100, ..ServerLimits::default() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let handle = ts.server.room("r").await.expect("room");
    let mut a = ts.client("r").await;
    let n = a.new_object_id();
    within(a.act(vec![create_node(&n, 7)])).await.expect("create");
    let (resume, mirror) = a.into_resume();
    // Bounded wait for the unload (the room reports it in /metrics).
    let mut unloaded = false;
    for _ in 0..100 {
        if http_get(ts.addr, "/metrics").await.contains("objectsync_rooms 0") {
            unloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(unloaded, "the idle room was not unloaded");
    // Its old client resumes (from a snapshot: the log went with the unload) as the same client.
    let a = within(objectsync::client::Client::connect(
        &ts.url("r"),
        objectsync::client::ConnectOptions { resume: Some((resume.clone(), mirror)), ..Default::default() },
    ))
    .await
    .expect("resume");
    assert_eq!(a.id(), resume.client.as_str());
    assert!(a.mirror().get(&n).is_some(), "the node survived the unload");
    // A handle taken before the unload still reaches the room.
    let title = within(handle.read(move |doc| doc.key("hello").is_some())).await.expect("old handle");
    assert!(title);
    ts.stop().await;
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    use objectsync::protocol::ClientMessage;
    let ts = TestServer::start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(ts.url("r")).await.expect("connect");
    let hello = objectsync::protocol::encode_client(&ClientMessage::Hello {
        protocol: 1,
        token: None,
        resume: None,
        batch: false,
        compact_snapshots: false,
        schema: None,
    });
    ws.send(Message::Text(hello.into())).await.expect("hello");
    let _welcome = within(ws.next()).await;
    let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "done".into(),
    };
    ws.send(Message::Close(Some(close))).await.expect("close");
    let mut answered = None;
    while let Some(msg) = within(ws.next()).await {
        match msg {
            Ok(Message::Close(frame)) => {
                answered = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert_eq!(answered, Some(1000));
    ts.stop().await;
}

/// `rooms_max` counts the rooms loaded: past it a new room is refused (the server says which
/// limit), the loaded ones are still served.
#[tokio::test]
async fn past_rooms_max_a_new_room_is_refused_and_loaded_rooms_are_served() {
    let limits = ServerLimits { rooms_max: 2, ..TestServer::builder_limits() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let _a = ts.client("a").await;
    let _b = ts.client("b").await;
    let refused = within(ts.server.room("c")).await.expect_err("a third room");
    assert_eq!(refused, objectsync::ServerError::TooManyRooms { limit: 2 });
    within(ts.server.room("a")).await.expect("a loaded room is served");
    let mut b = ts.client("b").await;
    let n = b.new_object_id();
    within(b.act(vec![create_node(&n, 1)])).await.expect("and changed");
    ts.stop().await;
}

/// A configuration that cannot work is an error of `build`, naming the limit, not a panic later.
#[test]
fn the_builder_refuses_limits_that_cannot_work() {
    let limits = objectsync::ServerLimits { room_inbox_len_max: 0, ..objectsync::ServerLimits::default() };
    let err = TestServer::builder().limits(limits).build().expect_err("a zero inbox");
    assert!(matches!(err, objectsync::BuildError::BadLimit { name: "room_inbox_len_max", .. }), "{err}");
    let deep = objectsync::ModelLimits { tree_depth_max: 600, ..objectsync::ModelLimits::default() };
    let err = TestServer::builder().model_limits(deep).build().expect_err("too deep to read back");
    assert!(err.to_string().contains("tree_depth_max 600"), "{err}");
}
