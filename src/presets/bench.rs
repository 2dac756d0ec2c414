//! The benchmark's workload as a server preset (`objectsync serve --preset bench`): a graph of
//! nodes with `title: string`, `pos: dict` {x, y} and `ports: list` of 2 strings. A room named
//! `nodes-<N>` starts with N nodes (`n0` .. `n<N-1>`) under the graph `g`, built server side
//! before any client joins. Rate limits are off: the benchmark measures throughput.

use crate::limits::ServerLimits;
use crate::model::{Change, ModelError, NodeSnapshot, Tx, TypeRegistry};
use crate::server::{Server, ServerBuilder};
use crate::{dict, sobject};

sobject! {
    /// The benchmark graph.
    pub struct Graph: "Graph" {}
}

sobject! {
    /// A benchmark node: three attributes.
    pub struct Node: "Node" {
        title: Str,
        pos: Dict,
        ports: List,
    }
}

/// The benchmark's types.
pub fn types() -> TypeRegistry {
    let mut t = TypeRegistry::new();
    t.register::<Graph>();
    t.register::<Node>();
    t
}

/// Builds room `name`: a graph `g` with N nodes if the name starts with `nodes-<N>` (anything
/// after the digits tells rooms apart), else an empty graph.
pub fn build_room(name: &str, tx: &mut Tx<'_>) -> Result<(), ModelError> {
    let digits: String = name.strip_prefix("nodes-").unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
    let n: usize = digits.parse().unwrap_or(0);
    let children = (0..n)
        .map(|i| NodeSnapshot {
            id: compact_str::format_compact!("n{i}"),
            type_name: "Node".into(),
            attrs: dict! {
                "title" => format!("node-{i}"),
                "pos" => dict! { "x" => i as i64, "y" => i as i64 },
                "ports" => vec!["in", "out"],
            },
            children: Vec::new(),
        })
        .collect();
    tx.apply(Change::Create {
        id: "g".into(),
        type_name: "Graph".into(),
        parent: "root".into(),
        index: None,
        attrs: Default::default(),
        children,
    })
}

/// A server builder with the benchmark's types, rooms and limits.
pub fn builder() -> ServerBuilder {
    let limits = ServerLimits {
        messages_per_second_max: 1_000_000,
        message_burst_max: 1_000_000,
        outbound_queue_len_max: 65_536,
        clients_per_room_max: 10_000,
        // Every benchmark client comes from 127.0.0.1.
        connections_per_address_max: 100_000,
        ..ServerLimits::default()
    };
    let model = crate::limits::ModelLimits { action_changes_max: 100_000, ..Default::default() };
    Server::builder(types()).on_room_create(build_room).limits(limits).model_limits(model)
}
