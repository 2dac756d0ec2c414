//! The README's DOM example, server side: a room holds a `Div` with a styled `Text`, and Rust
//! code changes the text and its style every second while pages show it.
//!
//! Run: `cargo run --example dom_text`, then open the page of client-ts's DOM example against
//! `ws://127.0.0.1:8766/ws/dom`.

use objectsync::model::ModelError;
use objectsync::{demo, Server};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = Server::builder(demo::types()).on_room_create(|_, tx| demo::build_room(tx)).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8766").await?;
    println!("listening on http://{}", listener.local_addr()?);
    let room = server.room("dom").await.map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let colors = ["crimson", "teal", "darkorange", "slateblue"];
        for tick in 0u64.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let color = colors[(tick % 4) as usize];
            let r = room
                .transact(move |tx| {
                    let key = tx.key("hello").ok_or_else(|| ModelError::Custom("no text".into()))?;
                    let text: demo::Text = tx.handle(key)?;
                    text.text().set(tx, format!("Hello from Rust, tick {tick}"))?;
                    text.style().set_key(tx, "color", color)
                })
                .await;
            if let Err(e) = r {
                eprintln!("update failed: {e}");
            }
        }
    });
    server.serve(listener).await
}
