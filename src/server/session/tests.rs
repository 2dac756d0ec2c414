//! Sessions driven through channels instead of a socket: what the client sends goes in as
//! `Message`s (or read errors), what the session writes comes out as `Message`s. The room behind
//! is real (the demo's types, rooms in memory).

use super::{serve, AuthRequest};
use crate::limits::ServerLimits;
use crate::protocol::close;
use crate::server::Server;
use futures_util::{sink, stream};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a test waits for the session's next message before failing.
const WAIT: Duration = Duration::from_secs(5);

/// The client's end of a session served over channels.
struct Wire {
    to_session: Option<mpsc::UnboundedSender<Result<Message, WsError>>>,
    from_session: mpsc::UnboundedReceiver<Message>,
    task: JoinHandle<()>,
}

impl Wire {
    /// Starts a session of `server` for `room`, from 127.0.0.1.
    fn open(server: &Server, room: &str) -> Wire {
        let (to_session, incoming) = mpsc::unbounded_channel::<Result<Message, WsError>>();
        let (outgoing, from_session) = mpsc::unbounded_channel::<Message>();
        let stream = Box::pin(stream::unfold(incoming, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }));
        let sink = Box::pin(sink::unfold(outgoing, |tx, m: Message| async move {
            tx.send(m).map_err(|_| WsError::ConnectionClosed)?;
            Ok::<_, WsError>(tx)
        }));
        let request = AuthRequest {
            room: room.to_owned(),
            token: None,
            path: format!("/ws/{room}"),
            query: None,
            headers: Default::default(),
            remote: Some([127, 0, 0, 1].into()),
            peer: None,
        };
        let task = tokio::spawn(serve(stream, sink, request, server.inner.clone()));
        Wire { to_session: Some(to_session), from_session, task }
    }

    fn send(&self, message: Message) {
        let tx = self.to_session.as_ref().expect("invariant: the test sends before it hangs up");
        tx.send(Ok(message)).expect("the session reads");
    }

    fn send_json(&self, value: Value) {
        self.send(Message::text(value.to_string()));
    }

    fn send_error(&self, error: WsError) {
        let tx = self.to_session.as_ref().expect("invariant: the test sends before it hangs up");
        tx.send(Err(error)).expect("the session reads");
    }

    /// The next message the session writes, as written (pings skipped, fragments as they are).
    async fn next_raw(&mut self) -> Message {
        loop {
            let message = tokio::time::timeout(WAIT, self.from_session.recv())
                .await
                .expect("the session wrote in time")
                .expect("the session wrote before ending");
            if !matches!(message, Message::Ping(_)) {
                return message;
            }
        }
    }

    /// The next message the session writes, its fragments joined (pings skipped).
    async fn next(&mut self) -> Message {
        let mut text = Vec::new();
        loop {
            match self.next_raw().await {
                Message::Frame(frame) => {
                    let last = frame.header().is_final;
                    text.extend_from_slice(&frame.into_payload());
                    if last {
                        return Message::text(String::from_utf8(text).expect("fragments of a text message"));
                    }
                }
                whole => {
                    assert!(text.is_empty(), "a message between the fragments of another");
                    return whole;
                }
            }
        }
    }

    /// The next message, which must be a text message of type `t`.
    async fn next_json(&mut self, t: &str) -> Value {
        match self.next().await {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("the session writes JSON");
                assert_eq!(value["t"], t, "expected a {t}, got {:.200}", value.to_string());
                value
            }
            other => panic!("expected a {t}, got {:.200}", format!("{other:?}")),
        }
    }

    /// The close frame's code and reason, skipping what comes before it.
    async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Message::Close(frame) = self.next().await {
                let frame = frame.expect("the session's close frame says why");
                return (u16::from(frame.code), frame.reason.to_string());
            }
        }
    }

    /// Hangs up (the stream ends) and waits for the session's task to end.
    async fn hang_up(mut self) {
        self.to_session = None;
        tokio::time::timeout(WAIT, self.task).await.expect("the session ended").expect("the session did not panic");
    }
}

fn server(limits: ServerLimits) -> Server {
    crate::presets::demo::server().in_memory().limits(limits).build().expect("the demo server builds")
}

fn hello() -> Value {
    json!({ "t": "hello", "protocol": 1 })
}

#[tokio::test]
async fn a_hello_is_welcomed_and_an_action_answered_with_its_update() {
    let server = server(ServerLimits::default());
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    let welcome = wire.next_json("welcome").await;
    let version = welcome["version"].as_u64().expect("a welcome has a version");
    let change = json!({ "op": "dict_set", "obj": "page", "attr": "style", "key": "x", "value": 3 });
    wire.send_json(json!({ "t": "action", "id": 1, "base": version, "changes": [change] }));
    let update = wire.next_json("update").await;
    assert_eq!(update["v"], version + 1);
    assert_eq!(update["action"], 1);
    assert_eq!(update["origin"], welcome["client"]);
    wire.send(Message::Close(None));
    assert_eq!(wire.closed().await.0, close::NORMAL);
    wire.hang_up().await;
}

#[tokio::test]
async fn the_first_message_must_be_a_hello_of_this_protocol() {
    let server = server(ServerLimits::default());
    for (first, reason) in [
        (Message::binary(vec![1, 2]), "the first message must be a text hello"),
        (Message::text(json!({ "t": "presence", "state": {} }).to_string()), "the first message must be hello"),
        (Message::text(json!({ "t": "hello", "protocol": 99 }).to_string()), "unsupported protocol 99"),
        (Message::text("{"), "bad hello"),
    ] {
        let mut wire = Wire::open(&server, "r");
        wire.send(first);
        let (code, said) = wire.closed().await;
        assert_eq!(code, close::BAD_HANDSHAKE);
        assert!(said.starts_with(reason), "{said:?} should start with {reason:?}");
        wire.hang_up().await;
    }
}

#[tokio::test(start_paused = true)]
async fn no_hello_in_time_closes_with_4000() {
    let limits = ServerLimits { hello_timeout_ms: 50, ..ServerLimits::default() };
    let server = server(limits);
    let mut wire = Wire::open(&server, "r");
    assert_eq!(wire.closed().await, (close::BAD_HANDSHAKE, "no hello in time".to_owned()));
    wire.hang_up().await;
}

#[tokio::test]
async fn bad_messages_are_answered_until_errors_max_then_closed_with_4004() {
    let limits = ServerLimits { errors_max: 2, ..ServerLimits::default() };
    let server = server(limits);
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    wire.next_json("welcome").await;
    wire.send(Message::binary(vec![0]));
    assert_eq!(wire.next_json("error").await["code"], "bad_message");
    // A second hello is answered, and not counted: it is no harm to anyone.
    wire.send_json(hello());
    assert_eq!(wire.next_json("error").await["reason"], "hello was already received");
    wire.send(Message::text("not json"));
    assert_eq!(wire.next_json("error").await["code"], "bad_message");
    wire.send_json(json!({ "t": "no such message" }));
    assert_eq!(wire.closed().await, (close::TOO_MANY_ERRORS, "more than 2 bad messages".to_owned()));
    wire.hang_up().await;
}

#[tokio::test]
async fn ids_above_2_53_are_refused_with_bad_id() {
    let server = server(ServerLimits::default());
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    wire.next_json("welcome").await;
    let id = crate::protocol::ID_MAX + 1;
    wire.send_json(json!({ "t": "undo", "id": id }));
    let reject = wire.next_json("reject").await;
    assert_eq!((reject["action"].as_u64(), reject["code"].as_str()), (Some(id), Some("bad_id")));
    wire.send_json(json!({ "t": "call", "id": id, "service": "echo", "args": null }));
    let result = wire.next_json("result").await;
    assert_eq!(result["error"]["code"], "bad_id");
    wire.hang_up().await;
}

#[tokio::test]
async fn a_call_is_answered_by_its_service_or_no_such_service() {
    let server = server(ServerLimits::default());
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    let client = wire.next_json("welcome").await["client"].clone();
    wire.send_json(json!({ "t": "call", "id": 4, "service": "echo", "args": [1] }));
    let result = wire.next_json("result").await;
    assert_eq!(result["id"], 4);
    assert_eq!(result["ok"], json!({ "client": client, "args": [1] }));
    wire.send_json(json!({ "t": "call", "id": 5, "service": "nope", "args": null }));
    assert_eq!(wire.next_json("result").await["error"]["code"], "no_such_service");
    wire.hang_up().await;
}

#[tokio::test]
async fn a_message_over_the_rate_is_refused_with_rate_limited() {
    let limits = ServerLimits { messages_per_second_max: 1, message_burst_max: 2, ..ServerLimits::default() };
    let server = server(limits);
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    wire.next_json("welcome").await;
    for _ in 0..3 {
        wire.send_json(json!({ "t": "presence", "state": { "x": 1 } }));
    }
    // The burst lets two through (presence answers nobody but the others); the third is refused.
    let error = wire.next_json("error").await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["reason"], "more than 1 messages per second");
    wire.hang_up().await;
}

// Paused: after a framing error the session holds the socket for a while before it ends.
#[tokio::test(start_paused = true)]
async fn read_errors_close_with_the_rfc_6455_code() {
    let server = server(ServerLimits::default());
    let capacity = || WsError::Capacity(CapacityError::MessageTooLong { size: 1 << 30, max_size: 1 << 20 });
    let mut before_hello = Wire::open(&server, "r");
    before_hello.send_error(capacity());
    assert_eq!(before_hello.closed().await.0, close::TOO_BIG);
    before_hello.hang_up().await;
    let mut joined = Wire::open(&server, "r");
    joined.send_json(hello());
    joined.next_json("welcome").await;
    joined.send_error(WsError::Utf8(String::from("bad bytes")));
    assert_eq!(joined.closed().await.0, close::INVALID_DATA);
    joined.hang_up().await;
}

// Real time: idleness is measured on the system clock, which a paused runtime does not move.
#[tokio::test]
async fn a_silent_client_is_closed_with_4005() {
    let limits = ServerLimits { idle_timeout_ms: 40, ping_interval_ms: 60_000, ..ServerLimits::default() };
    let server = server(limits);
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    wire.next_json("welcome").await;
    assert_eq!(wire.closed().await, (close::IDLE, "no traffic for 40 ms".to_owned()));
    wire.hang_up().await;
}

#[tokio::test]
async fn shutdown_closes_every_session_with_1001() {
    let server = server(ServerLimits::default());
    let mut wire = Wire::open(&server, "r");
    wire.send_json(hello());
    wire.next_json("welcome").await;
    server.shutdown();
    assert_eq!(wire.closed().await, (close::GOING_AWAY, "the server is shutting down".to_owned()));
    wire.hang_up().await;
}

#[tokio::test]
async fn a_large_welcome_is_written_in_fragments() {
    let server = server(ServerLimits::default());
    let mut first = Wire::open(&server, "big");
    first.send_json(hello());
    let version = first.next_json("welcome").await["version"].as_u64().expect("a version");
    let text = "x".repeat(3 * super::writer::FRAGMENT_BYTES);
    let change = json!({ "op": "set", "obj": "hello", "attr": "text", "value": text });
    first.send_json(json!({ "t": "action", "id": 1, "base": version, "changes": [change] }));
    first.next_json("update").await;
    let mut second = Wire::open(&server, "big");
    second.send_json(hello());
    let mut fragments = Vec::new();
    loop {
        match second.next_raw().await {
            Message::Frame(frame) => {
                let fin = frame.header().is_final;
                fragments.push(frame.into_payload());
                if fin {
                    break;
                }
            }
            other => panic!("expected the welcome's fragments, got {:.200}", format!("{other:?}")),
        }
    }
    assert!(fragments.len() >= 3, "{} fragments", fragments.len());
    assert!(fragments.iter().all(|f| f.len() <= super::writer::FRAGMENT_BYTES));
    let whole: Vec<u8> = fragments.concat();
    let welcome: Value = serde_json::from_slice(&whole).expect("the fragments make one JSON message");
    assert_eq!(welcome["t"], "welcome");
    first.hang_up().await;
    second.hang_up().await;
}
