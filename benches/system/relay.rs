//! The bare relay the server is compared with: a WebSocket echo to every peer of the same path
//! (a path is a room), one shared buffer per message, no parsing, no state. It runs in its own
//! process (`relay-server`) with the same runtime and socket settings as the server.

use crate::client::small_reads;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;

pub(crate) fn run_relay() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("listening on http://{}", listener.local_addr().expect("addr"));
        // Peers by request path: a path is a room (W1 uses one, W5 a thousand).
        type Peers = Arc<Mutex<Vec<tokio::sync::mpsc::Sender<Message>>>>;
        let rooms: Arc<Mutex<HashMap<String, Peers>>> = Arc::default();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let rooms = rooms.clone();
            tokio::spawn(async move {
                let mut path = String::new();
                // The callback's error type is tungstenite's (an HTTP response), not ours.
                #[allow(clippy::result_large_err)]
                let see_path = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                    path = req.uri().path().to_owned();
                    Ok(res)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(tcp, see_path, Some(small_reads())).await
                else {
                    return;
                };
                let peers = rooms.lock().expect("rooms").entry(path).or_default().clone();
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(65_536);
                peers.lock().expect("peers").push(tx);
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
                        let mut n = 1;
                        while n < 64 {
                            let Ok(m) = rx.try_recv() else { break };
                            if sink.feed(m).await.is_err() {
                                return;
                            }
                            n += 1;
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                });
                while let Some(Ok(msg)) = stream.next().await {
                    if let Message::Text(t) = msg {
                        // One shared buffer: every peer gets a clone of the same bytes.
                        let m = Message::Text(t);
                        for p in peers.lock().expect("peers").iter() {
                            let _ = p.try_send(m.clone());
                        }
                    }
                }
            });
        }
    });
}
