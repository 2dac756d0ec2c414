//! The README's DOM example, server side: a room holds a `Div` (id `page`) with a styled `Text`
//! (id `hello`), and Rust code changes the text and its color every second while pages show it.
//!
//! Run: `cargo run --example dom_text -- --bind 127.0.0.1:8766 --static client-ts/examples/dom/dist`,
//! then open http://127.0.0.1:8766/ (the page joins room `dom`).

use objectsync::model::ModelError;
use objectsync::presets::demo;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut bind = "127.0.0.1:8766".to_owned();
    let mut static_dir = "client-ts/examples/dom/dist".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bind" => bind = args.next().unwrap_or(bind),
            "--static" => static_dir = args.next().unwrap_or(static_dir),
            other => eprintln!("unknown argument {other}"),
        }
    }
    // The page's room is rebuilt at every start: nothing to keep.
    let server = demo::server().static_dir(static_dir).in_memory().build().map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let room = server.room("dom").await.map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let colors = ["crimson", "teal", "darkorange", "slateblue"];
        for tick in 0u64.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let color = colors[(tick % 4) as usize];
            let r = room
                .transact(move |tx| {
                    let key = tx.key("hello").ok_or_else(|| ModelError::hook("no text"))?;
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
