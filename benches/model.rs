//! Model micro-benchmarks: a one-change action (dict set on a node) in a 10,000-node document,
//! snapshotting that document, and the model's memory per node (counted by the allocator).
//!
//! Run: `cargo bench --bench model`. Numbers go to docs/benchmarks.md by hand; no test asserts
//! on time.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use objectsync::model::{Actor, Change, Document, ObjId, Value};
use objectsync::presets::bench;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

/// Counts live heap bytes, to measure memory per node.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NODES: usize = 10_000;

/// The standard workload's room: a graph `g` of 10,000 nodes (`n0`..), each with `title`,
/// `pos` {x, y} and `ports` (the same room the system benchmark serves).
fn build() -> Document {
    let mut doc = Document::new(Arc::new(bench::types()));
    let r = doc.transact(&Actor::Server, |tx| bench::build_room("nodes-10000", tx));
    assert!(r.is_ok(), "{r:?}");
    doc
}

/// Resident memory of this process, from /proc (Linux).
fn rss_bytes() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn memory_per_node() {
    let (heap, rss) = (LIVE_BYTES.load(Ordering::Relaxed), rss_bytes());
    let doc = build();
    let (heap2, rss2) = (LIVE_BYTES.load(Ordering::Relaxed), rss_bytes());
    println!(
        "model memory per node ({} nodes with title, pos, ports): {} bytes allocated, {} bytes resident",
        doc.len() - 2,
        (heap2 - heap) / NODES as isize,
        (rss2 - rss) / NODES as isize,
    );
}

fn benches(c: &mut Criterion) {
    memory_per_node();
    let mut doc = build();
    let actor = Actor::Client("c1".into());
    let ids: Vec<ObjId> = (0..NODES).map(|i| ObjId::from(format!("n{i}"))).collect();
    // Cold: round robin over all nodes, so each action touches memory no recent one did (the
    // worst case: every lookup misses the caches). Hot: the same node again, as in a drag.
    for (name, stride) in [
        ("apply one dict_set, round robin over a 10k-node doc", 1),
        ("apply one dict_set on one node of a 10k-node doc (drag)", 0),
    ] {
        let mut k = 0usize;
        c.bench_function(name, |b| {
            b.iter(|| {
                k += 1;
                let change = Change::DictSet {
                    obj: ids[(k * stride) % NODES].clone(),
                    attr: "pos".into(),
                    key: "x".into(),
                    value: Value::Int(k as i64),
                };
                black_box(doc.apply(&actor, None, vec![change]).is_ok())
            })
        });
    }
    c.bench_function("snapshot (owned) of a 10k-node doc", |b| b.iter(|| black_box(doc.snapshot())));
    c.bench_function("snapshot serialized to JSON from the tree (10k nodes)", |b| {
        b.iter_batched(
            || Vec::with_capacity(1 << 20),
            |mut out| {
                let r = serde_json::to_writer(&mut out, &objectsync::protocol::snapshot_view(&doc));
                black_box((r.is_ok(), out.len()))
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(model, benches);
criterion_main!(model);
