//! A bot: joins a room with the Rust client and edits it, like a person would.
//!
//! Run the server (`bash scripts/run`), then:
//! `cargo run --example bot -- ws://127.0.0.1:8765/ws/demo`
//! The bot adds a node to the graph, walks it around a circle for a few seconds, renames it,
//! and leaves.

use objectsync::client::{Client, ConnectOptions};
use objectsync::dict;
use objectsync::model::{Change, Value};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "ws://127.0.0.1:8765/ws/demo".into());
    let mut bot = Client::connect(&url, ConnectOptions::default()).await?;
    println!("joined as {} at version {}", bot.id(), bot.version());
    bot.set_presence(dict! { "name" => "bot" }.into()).await?;
    let node = bot.new_object_id();
    bot.act(vec![Change::Create {
        id: node.clone(),
        type_name: "Node".into(),
        parent: "graph".into(),
        index: None,
        attrs: dict! { "title" => "bot", "pos" => dict! { "x" => 600, "y" => 300 } },
        children: Vec::new(),
    }])
    .await?;
    // 120 steps at 30 per second: a bounded walk around a circle.
    for step in 0..120u32 {
        let angle = f64::from(step) / 120.0 * std::f64::consts::TAU;
        let pos = dict! { "x" => 600.0 + 200.0 * angle.cos(), "y" => 300.0 + 200.0 * angle.sin() };
        bot.send_action(vec![Change::Set { obj: node.clone(), attr: "pos".into(), value: Value::Dict(pos) }]).await?;
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let v =
        bot.act(vec![Change::Set { obj: node.clone(), attr: "title".into(), value: "bot was here".into() }]).await?;
    println!("done at version {v}");
    bot.close().await?;
    Ok(())
}
