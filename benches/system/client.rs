//! The load clients: lean ones that parse every frame only as far as a benchmark needs (the
//! value of each change, the origin and action of an ack), connecting to the server (with hello
//! and welcome) or to the relay (no handshake), and the actions they send.

use crate::PHASE_DEADLINE;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The same socket settings for the relay, the server and the load clients: tungstenite zeroes
/// its whole read buffer (128 KiB by default) for every read.
pub(crate) fn small_reads() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
}

#[derive(Deserialize)]
struct Lean {
    #[serde(default)]
    changes: Vec<LeanChange>,
    /// The messages of a `batch`.
    #[serde(default)]
    m: Vec<Lean>,
}

#[derive(Deserialize)]
struct LeanChange {
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Target {
    ObjectSync,
    Relay,
}

pub(crate) async fn connect(addr: SocketAddr, room: &str) -> Ws {
    let url = format!("ws://{addr}/ws/{room}");
    tokio_tungstenite::connect_async_with_config(url, Some(small_reads()), true).await.expect("connect").0
}

/// Connects and, for ObjectSync, says hello and reads the welcome.
pub(crate) async fn join(target: Target, addr: SocketAddr, room: &str) -> Ws {
    let mut ws = connect(addr, room).await;
    if target == Target::ObjectSync {
        ws.send(Message::Text(r#"{"t":"hello","protocol":1,"batch":true,"compact_snapshots":true}"#.into()))
            .await
            .expect("hello");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with(r#"{"t":"welcome""#) => break,
                Some(Ok(_)) => continue,
                other => panic!("no welcome: {other:?}"),
            }
        }
    }
    ws
}

/// Reads until `expect` frames carrying values were parsed (or the deadline); returns the
/// receive time of each value `k`.
pub(crate) async fn read_updates(mut ws: Ws, expect: usize) -> Vec<Option<Instant>> {
    let mut got = vec![None; expect];
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + PHASE_DEADLINE;
    while count < expect {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            _ => break,
        };
        let Message::Text(t) = msg else { continue };
        let now = Instant::now();
        let Ok(lean) = serde_json::from_str::<Lean>(&t) else { continue };
        let one = [lean];
        let messages = if one[0].m.is_empty() { &one[..] } else { &one[0].m[..] };
        for msg in messages {
            if let Some(k) = msg.changes.first().and_then(|c| c.value.as_u64()) {
                if let Some(slot) = got.get_mut(k as usize) {
                    if slot.is_none() {
                        *slot = Some(now);
                        count += 1;
                    }
                }
            }
        }
    }
    got
}

#[derive(Deserialize)]
pub(crate) struct Ack {
    #[serde(default)]
    pub(crate) origin: String,
    #[serde(default)]
    pub(crate) action: Option<u64>,
}

/// Action `k` (id `k + 1`): a dict set on node `k % nodes` whose value is `k`, so a reader knows
/// which update it got.
pub(crate) fn action_text(k: usize, nodes: usize) -> String {
    format!(
        r#"{{"t":"action","id":{},"base":0,"changes":[{{"op":"dict_set","obj":"n{}","attr":"pos","key":"x","value":{k}}}]}}"#,
        k + 1,
        k % nodes
    )
}

/// Says hello (without batches) and returns the client id the welcome gives.
pub(crate) async fn hello_for_client_id(ws: &mut Ws) -> String {
    ws.send(Message::Text(r#"{"t":"hello","protocol":1,"compact_snapshots":true}"#.into())).await.expect("hello");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("welcome json");
                break v["client"].as_str().unwrap_or_default().to_owned();
            }
            Some(Ok(_)) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    }
}
