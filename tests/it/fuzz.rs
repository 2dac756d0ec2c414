//! Protocol fuzzing against a real server (real sockets, a real SQLite file, the conformance
//! preset's types with every kind and hook): several clients at once send random valid actions
//! built from what they see, mutated and garbage messages, undo/redo, presence and calls, until
//! a deadline. Checked: every action is answered (an update or a reject, never silence), no
//! session is stuck or closed, and at the end every client's mirror equals a fresh snapshot.
//!
//! `OBJECTSYNC_FUZZ_SECS` sets the time (default 60 s: what CI runs), `OBJECTSYNC_FUZZ_SEED` the
//! seed (printed at the start, so a failing run can be repeated).

use crate::harness::*;
use objectsync::client::{Client, ClientError, ConnectOptions};
use objectsync::model::{Change, NodeSnapshot, Value};
use objectsync::protocol::ClientMessage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const CLIENTS: u64 = 6;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Every object id in the tree, with its type.
fn objects(n: &NodeSnapshot, out: &mut Vec<(String, String)>) {
    out.push((n.id.to_string(), n.type_name.to_string()));
    for c in &n.children {
        objects(c, out);
    }
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> Option<&'a T> {
    (!xs.is_empty()).then(|| &xs[rng.random_range(0..xs.len())])
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::Int(rng.random_range(-5..50)),
        3 => Value::Float(rng.random_range(-2.0..2.0)),
        4 => Value::from(["a", "é", "😀", "", "forbidden"][rng.random_range(0..5)]),
        5 => Value::List((0..rng.random_range(0..3)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => Value::Dict(objectsync::dict! { "k" => random_value(rng, depth + 1) }),
    }
}

/// A random change from what the client sees (often valid, sometimes refused by design).
fn random_change(rng: &mut StdRng, me: &str, seq: u64, view: &[(String, String)]) -> Change {
    let items: Vec<&String> = view.iter().filter(|(_, t)| t == "Item").map(|(id, _)| id).collect();
    let any: Vec<&String> = view.iter().map(|(id, _)| id).collect();
    let item = pick(rng, &items).map_or_else(|| "item".to_owned(), |s| (*s).clone());
    let target = pick(rng, &any).map_or_else(|| "board".to_owned(), |s| (*s).clone());
    let obj = item.as_str().into();
    let small = |rng: &mut StdRng| rng.random_range(0..4u32);
    match rng.random_range(0..20) {
        0 | 1 => Change::Create {
            id: format!("{me}:{seq}").into(),
            type_name: if rng.random_range(0..4) == 0 { "Lane".into() } else { "Item".into() },
            parent: ["board", "lane-open", "lane-owned", target.as_str()][rng.random_range(0..4)].into(),
            index: rng.random::<bool>().then(|| small(rng)),
            attrs: Default::default(),
            children: Vec::new(),
        },
        2 => Change::Delete { id: obj },
        3 => Change::Move { id: obj, parent: target.as_str().into(), index: rng.random::<bool>().then(|| small(rng)) },
        4 => Change::Set { obj, attr: "label".into(), value: random_value(rng, 3) },
        5 => Change::TextInsert {
            obj,
            attr: "label".into(),
            pos: small(rng),
            text: ["x", "é", "😀"][rng.random_range(0..3)].into(),
        },
        6 => Change::TextDelete { obj, attr: "label".into(), pos: small(rng), len: small(rng) },
        7 => Change::Add { obj, attr: "count".into(), value: Value::Int(rng.random_range(-3..5)) },
        8 => Change::Add { obj, attr: "weight".into(), value: Value::Float(0.5) },
        9 => Change::DictSet {
            obj,
            attr: "meta".into(),
            key: ["a", "b"][rng.random_range(0..2)].into(),
            value: random_value(rng, 0),
        },
        10 => Change::DictRemove { obj, attr: "meta".into(), key: "a".into() },
        11 => Change::ListInsert {
            obj,
            attr: "tags".into(),
            index: rng.random::<bool>().then(|| small(rng)),
            value: random_value(rng, 1),
        },
        12 => Change::ListRemove { obj, attr: "tags".into(), index: small(rng) },
        13 => Change::ListMove { obj, attr: "tags".into(), from: small(rng), to: small(rng) },
        14 => Change::ListSet { obj, attr: "tags".into(), index: small(rng), value: random_value(rng, 1) },
        15 => Change::SetAdd { obj, attr: "flags".into(), value: Value::Int(rng.random_range(0..4)) },
        16 => Change::SetRemove { obj, attr: "flags".into(), value: Value::Int(rng.random_range(0..4)) },
        17 => Change::Emit { obj, attr: "ping".into(), args: random_value(rng, 1) },
        18 => Change::Set { obj, attr: "link".into(), value: Value::from(target.as_str()) },
        _ => Change::ListInsert { obj, attr: "links".into(), index: None, value: Value::from(target.as_str()) },
    }
}

/// A valid message's text with a random byte changed, cut, or doubled.
fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    match rng.random_range(0..3) {
        0 if !bytes.is_empty() => {
            let i = rng.random_range(0..bytes.len());
            const ALPHABET: &[u8] = b"{}[]\":,0123456789-eE.nulltruefalse\\ x";
            bytes[i] = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        1 => bytes.truncate(rng.random_range(0..=bytes.len())),
        _ => bytes.extend_from_slice(text.as_bytes()),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn run_client(url: String, seed: u64, deadline: Instant) -> (Client, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = within(Client::connect(&url, ConnectOptions::default())).await.expect("connect");
    let me = c.id().to_owned();
    let mut next_id = c.acked() + 1;
    let mut next_call = 1;
    let mut answered = 0;
    while Instant::now() < deadline {
        let mut view = Vec::new();
        objects(&c.mirror().to_snapshot(), &mut view);
        let base = c.version();
        let mut waiting = Vec::new();
        for _ in 0..rng.random_range(1..4) {
            let id = next_id;
            let msg = match rng.random_range(0..12) {
                0 => ClientMessage::Undo { id, scope: None },
                1 => ClientMessage::Redo { id, scope: None },
                _ => {
                    let changes =
                        (0..rng.random_range(1..4)).map(|k| random_change(&mut rng, &me, id * 10 + k, &view)).collect();
                    ClientMessage::Action { id, base, changes, step: None }
                }
            };
            next_id += 1;
            waiting.push(id);
            within(c.send(&msg)).await.expect("send");
        }
        match rng.random_range(0..6) {
            0 => {
                // A mutated action with a fresh id: answered if it still decodes, else an error.
                let id = next_id;
                let valid = ClientMessage::Action {
                    id,
                    base,
                    changes: vec![random_change(&mut rng, &me, id * 10, &view)],
                    step: None,
                };
                let text = mutate(&mut rng, &objectsync::protocol::encode_client(&valid));
                if let Ok(
                    ClientMessage::Action { id: got, .. }
                    | ClientMessage::Undo { id: got, .. }
                    | ClientMessage::Redo { id: got, .. },
                ) = objectsync::protocol::decode_client(&text)
                {
                    if got == next_id {
                        waiting.push(got);
                        next_id += 1;
                    } else if got >= next_id && got <= objectsync::protocol::ID_MAX {
                        // Another id: it is processed and answered, and ids below it are used.
                        waiting.push(got);
                        next_id = got + 1;
                    }
                }
                within(c.send_text(text)).await.expect("send");
            }
            1 => {
                let garbage = ["{", "[]", "null", "{\"t\":7}", "{\"t\":\"action\"}", "{\"t\":\"nope\"}", "\u{0}"];
                within(c.send_text(garbage[rng.random_range(0..garbage.len())].to_owned())).await.expect("send");
            }
            2 => within(c.set_presence(random_value(&mut rng, 1))).await.expect("presence"),
            3 => {
                let service = ["echo", "tick", "missing"][rng.random_range(0..3)];
                let call =
                    ClientMessage::Call { id: next_call, service: service.into(), args: random_value(&mut rng, 1) };
                next_call += 1;
                within(c.send(&call)).await.expect("call");
            }
            _ => {}
        }
        // Every action is answered: an update (or events) tagged with it, or a reject.
        for id in waiting {
            match within(c.wait_ack(id)).await {
                Ok(_) | Err(ClientError::Rejected { .. }) => answered += 1,
                Err(e) => panic!("client {me} (seed {seed}): action {id} was not answered: {e}"),
            }
        }
    }
    (c, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_messages_from_many_clients() {
    let secs = env_u64("OBJECTSYNC_FUZZ_SECS").unwrap_or(60);
    let seed = env_u64("OBJECTSYNC_FUZZ_SEED").unwrap_or_else(|| rand::random::<u32>().into());
    eprintln!("protocol fuzz: seed {seed}, {secs} s (OBJECTSYNC_FUZZ_SEED / OBJECTSYNC_FUZZ_SECS)");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(objectsync::store::SqliteStore::open(dir.path()).expect("open"));
    let limits = objectsync::ServerLimits { errors_max: u32::MAX, ..TestServer::builder_limits() };
    let builder = objectsync::presets::conformance::builder().limits(limits).store(store);
    let ts = TestServer::start_with(builder).await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> =
        (0..CLIENTS).map(|i| tokio::spawn(run_client(ts.url("fuzz"), seed * 100 + i, deadline))).collect();
    let mut clients = Vec::new();
    let mut answered = 0;
    for t in tasks {
        let (c, n) = t.await.expect("a client task panicked");
        answered += n;
        clients.push(c);
    }
    let fresh = ts.client("fuzz").await;
    let expected = fresh.mirror().to_snapshot();
    for c in &mut clients {
        within(c.wait_for_version(fresh.version())).await.expect("catch up");
        assert_eq!(c.mirror().to_snapshot(), expected, "client {} (seed {seed}) differs from a fresh snapshot", c.id());
    }
    eprintln!("protocol fuzz: {answered} actions answered, room at version {}", fresh.version());
    assert!(answered > 0);
    ts.stop().await;
}
