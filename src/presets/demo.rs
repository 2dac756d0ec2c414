//! The SObject types of the bundled demos: a node-graph editor (`Graph` -> `Node` -> `Edge`)
//! and the DOM example (`Div` -> `Text`). The `objectsync` binary serves rooms of these types.

use crate::model::{ModelError, Tx, TypeRegistry, Value};
use crate::{dict, sobject};

/// Width and height of the demo canvas: nodes must stay inside.
pub const CANVAS: (f64, f64) = (2000.0, 1200.0);

sobject! {
    /// A node graph.
    pub struct Graph: "Graph" {
        name: Str,
    }
}

sobject! {
    /// A node of the graph.
    pub struct Node: "Node" {
        title: Str = "node",
        pos: Dict = dict! { "x" => 100, "y" => 100 },
        color: Str = "#4f7cff",
        ports: List = vec!["in", "out"],
    }
}

sobject! {
    /// An edge from one node's output to another node's input.
    pub struct Edge: "Edge" {
        from: Ref,
        to: Ref,
    }
}

sobject! {
    /// A box on a page holding other elements.
    pub struct Div: "Div" {
        style: Dict,
    }
}

sobject! {
    /// Styled text on a page.
    pub struct Text: "Text" {
        text: Str,
        style: Dict,
    }
}

fn inside_canvas(pos: &crate::model::Dict) -> Result<(), String> {
    for (axis, max) in [("x", CANVAS.0), ("y", CANVAS.1)] {
        match pos.get(axis).and_then(Value::as_f64) {
            Some(v) if (0.0..=max).contains(&v) => {}
            Some(v) => return Err(format!("{axis} = {v} is outside the canvas (0..{max})")),
            None => return Err(format!("{axis} must be a number")),
        }
    }
    Ok(())
}

/// An edge that lost an end (its node was deleted, which clears references) deletes itself.
fn drop_dangling(tx: &mut Tx<'_>, e: Edge) -> Result<(), ModelError> {
    if e.from().get(tx)?.is_none() || e.to().get(tx)?.is_none() {
        tx.delete(e)?;
    }
    Ok(())
}

/// Registers the demo types, with their rules, into `types`.
pub fn register(types: &mut TypeRegistry) {
    types.register::<Graph>();
    types.register::<Node>().validate(Node::pos, |_, _, pos| inside_canvas(pos));
    types
        .register::<Edge>()
        .validate(Edge::to, |doc, e, to| match (e.from().get(doc), to) {
            (Ok(Some(from)), Some(to)) if from == to => Err("an edge cannot connect a node to itself".into()),
            _ => Ok(()),
        })
        .on_change(Edge::from, drop_dangling)
        .on_change(Edge::to, drop_dangling);
    types.register::<Div>();
    types.register::<Text>();
}

/// A server builder with the demo's types, rooms and services: `echo` (answers its caller's id
/// and arguments), `slow` (answers after `args.ms` milliseconds, at most 5,000: for trying
/// timeouts) and `fail` (always fails with `args` as its reason: for trying errors).
pub fn server() -> crate::ServerBuilder {
    crate::Server::builder(types())
        .on_room_create(|_, tx| build_room(tx))
        .service(
            "echo",
            |call| async move { Ok(dict! { "client" => call.client.as_str(), "args" => call.args }.into()) },
        )
        .service(
            "fail",
            |call| async move { Err(call.args.as_str().unwrap_or("this service always fails").to_owned()) },
        )
        .service("slow", |call| async move {
            let ms =
                call.args.as_dict().and_then(|d| d.get("ms")).and_then(Value::as_int).unwrap_or(1000).clamp(0, 5000);
            tokio::time::sleep(std::time::Duration::from_millis(ms as u64)).await;
            Ok(Value::Int(ms))
        })
}

/// The demo's types in a fresh registry.
pub fn types() -> TypeRegistry {
    let mut t = TypeRegistry::new();
    register(&mut t);
    t
}

/// Builds a new demo room: one `Graph` (id `graph`) and one `Div` (id `page`) holding a `Text`
/// (id `hello`).
pub fn build_room(tx: &mut Tx<'_>) -> Result<(), ModelError> {
    tx.apply(crate::model::Change::Create {
        id: "graph".into(),
        type_name: "Graph".into(),
        parent: "root".into(),
        index: None,
        attrs: dict! { "name" => "main" },
        children: Vec::new(),
    })?;
    tx.apply(crate::model::Change::Create {
        id: "page".into(),
        type_name: "Div".into(),
        parent: "root".into(),
        index: None,
        attrs: dict! { "style" => dict! { "padding" => "16px" } },
        children: vec![crate::model::NodeSnapshot {
            id: "hello".into(),
            type_name: "Text".into(),
            attrs: dict! { "text" => "Hello from ObjectSync", "style" => dict! { "color" => "#222", "font-size" => "24px" } },
            children: Vec::new(),
        }],
    })?;
    Ok(())
}
