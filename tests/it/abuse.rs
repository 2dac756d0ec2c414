//! Bad input over real sockets: each gets its documented error, and the others carry on.

use crate::harness::*;
use objectsync::client::{ClientError, Event};
use objectsync::model::Change;
use objectsync::ServerLimits;

/// Sends `text` raw and expects an `error` with `code`.
async fn expect_error(c: &mut objectsync::client::Client, text: &str, code: &str) {
    c.send_text(text.to_owned()).await.expect("send");
    match next_non_presence(c).await {
        Event::Error { code: got, .. } => assert_eq!(got, code, "for {text}"),
        other => panic!("for {text}: {other:?}"),
    }
}

/// Acts and expects a reject with `code`.
async fn expect_reject(c: &mut objectsync::client::Client, changes: Vec<Change>, code: &str) {
    match within(c.act(changes)).await {
        Err(ClientError::Rejected { code: got, reason }) => assert_eq!(got, code, "{reason}"),
        other => panic!("expected {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_messages_get_errors_and_the_room_carries_on() {
    let ts = TestServer::start().await;
    let mut bad = ts.client("r").await;
    let mut good = ts.client("r").await;
    expect_error(&mut bad, "{not json", "bad_message").await;
    expect_error(&mut bad, r#"{"t":"frobnicate"}"#, "unknown_message").await;
    expect_error(&mut bad, r#"{"t":"action","id":"one","base":0,"changes":[]}"#, "bad_message").await;
    expect_error(&mut bad, r#"{"t":"action","id":1,"base":0,"changes":[{"op":"explode","obj":"x"}]}"#, "bad_message")
        .await;
    expect_error(&mut bad, r#"{"t":"hello","protocol":1}"#, "bad_message").await;
    let n = bad.new_object_id();
    within(bad.act(vec![create_node(&n, 1)])).await.expect("a valid action after the errors");
    expect_reject(&mut bad, vec![Change::Set { obj: n.clone(), attr: "title".into(), value: 5.into() }], "wrong_kind")
        .await;
    expect_reject(&mut bad, vec![set_x("ghost", 1)], "no_such_object").await;
    expect_reject(&mut bad, vec![Change::Move { id: "graph".into(), parent: n.clone(), index: None }], "cycle").await;
    expect_reject(&mut bad, vec![Change::Delete { id: "root".into() }], "root_immutable").await;
    expect_reject(&mut bad, vec![set_x(&n, 99_999)], "invalid").await;
    expect_reject(&mut bad, vec![], "empty_action").await;
    let g = good.new_object_id();
    let v = within(good.act(vec![create_node(&g, 2)])).await.expect("others keep working");
    within(bad.wait_for_version(v)).await.expect("and the bad client still receives");
    ts.stop().await;
}

#[tokio::test]
async fn too_many_bad_messages_close_the_connection() {
    let limits = ServerLimits { errors_max: 3, ..ServerLimits::default() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut bad = ts.client("r").await;
    for _ in 0..5 {
        if bad.send_text("garbage".into()).await.is_err() {
            break;
        }
    }
    assert_eq!(until_closed(&mut bad).await.0, 4004);
    let mut good = ts.client("r").await;
    let n = good.new_object_id();
    within(good.act(vec![create_node(&n, 1)])).await.expect("server fine");
    ts.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let limits = ServerLimits { frame_bytes_max: 4096, ..ServerLimits::default() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut big = ts.client("r").await;
    let huge = format!(r#"{{"t":"presence","state":"{}"}}"#, "x".repeat(10_000));
    let _ = big.send_text(huge).await;
    let (code, _) = until_closed(&mut big).await;
    assert!(code == 1009 || code == 1006, "closed with {code}");
    let mut good = ts.client("r").await;
    let n = good.new_object_id();
    within(good.act(vec![create_node(&n, 1)])).await.expect("server fine");
    ts.stop().await;
}

#[tokio::test]
async fn a_bad_handshake_is_refused_with_4000() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ts = TestServer::start().await;
    for first in [r#"{"t":"action","id":1,"base":0,"changes":[]}"#, r#"{"t":"hello","protocol":99}"#, "garbage"] {
        let (mut ws, _) = tokio_tungstenite::connect_async(ts.url("r")).await.expect("connect");
        ws.send(Message::Text(first.into())).await.expect("send");
        let msg = within(ws.next()).await;
        match msg {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4000, "for {first}"),
            other => panic!("for {first}: {other:?}"),
        }
    }
    ts.stop().await;
}

#[tokio::test]
async fn flooding_is_rate_limited_then_cut_off() {
    let limits =
        ServerLimits { messages_per_second_max: 5, message_burst_max: 5, errors_max: 3, ..ServerLimits::default() };
    let ts = TestServer::start_with(TestServer::builder().limits(limits)).await;
    let mut flood = ts.client("r").await;
    for _ in 0..50 {
        if flood.set_presence(1.into()).await.is_err() {
            break;
        }
    }
    let mut saw_rate_limited = false;
    let code = loop {
        match within(flood.next_event()).await {
            Ok(Event::Error { code, .. }) => saw_rate_limited |= code == "rate_limited",
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => break code,
            Err(e) => panic!("{e}"),
        }
    };
    assert!(saw_rate_limited);
    assert_eq!(code, 4004);
    ts.stop().await;
}
