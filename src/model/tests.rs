//! Tests of the model through its public surface: one `check`-style helper per operation, so
//! tests say what they mean and survive refactors.

use super::*;
use crate::limits::ModelLimits;
use crate::{dict, sobject};
use std::sync::Arc;

sobject! {
    /// A graph.
    pub struct Graph: "Graph" {
        name: Str,
    }
}

sobject! {
    /// A node with one attribute of every stored kind.
    pub struct Node: "Node" {
        title: Str = "node",
        pos: Dict = dict! { "x" => 0, "y" => 0 },
        ports: List,
        tags: Set,
        count: Int,
        weight: Float,
        on: Bool,
        ping: Event,
        next: Ref,
        links: RefList,
        named: RefDict,
    }
}

sobject! {
    /// An edge between two nodes.
    pub struct Edge: "Edge" {
        from: Ref,
        to: Ref,
    }
}

sobject! {
    /// A box whose `build` makes two ports.
    pub struct Box2: "Box" {
        label: Str,
    }
}

sobject! {
    /// A port.
    pub struct Port: "Port" {
        name: Str,
    }
}

sobject! {
    /// A layer: clients may only edit objects under the layer named after them.
    pub struct Layer: "Layer" {
        owner: Str,
    }
}

fn registry() -> Arc<TypeRegistry> {
    let mut t = TypeRegistry::new();
    t.register::<Graph>();
    t.register::<Node>().validate(Node::pos, |_, _, pos| match pos.get("x").and_then(Value::as_f64) {
        Some(x) if !(0.0..=1000.0).contains(&x) => Err(format!("x = {x} is outside the canvas")),
        _ => Ok(()),
    });
    // An edge whose end is cleared (its node was deleted) deletes itself.
    let drop_dangling = |tx: &mut Tx<'_>, e: Edge| {
        if e.from().get(tx)?.is_none() || e.to().get(tx)?.is_none() {
            tx.delete(e)?;
        }
        Ok(())
    };
    t.register::<Edge>()
        .validate(Edge::to, |doc, e, to| match (e.from().get(doc), to) {
            (Ok(Some(from)), Some(to)) if from == to => Err("an edge cannot connect a node to itself".into()),
            _ => Ok(()),
        })
        .on_change(Edge::from, drop_dangling)
        .on_change(Edge::to, drop_dangling);
    t.register::<Box2>().build(|tx, b| {
        for name in ["in", "out"] {
            let p = tx.create::<Port>(b)?;
            p.name().set(tx, name)?;
        }
        Ok(())
    });
    t.register::<Port>();
    t.register::<Layer>();
    t.permission(|a| {
        let Some(client) = a.actor.client_id() else {
            return Ok(());
        };
        for place in std::iter::once(a.object).chain(a.destination) {
            let layer =
                std::iter::once(place).chain(a.doc.ancestors(place)).find(|&k| a.doc.type_name(k) == Some("Layer"));
            match layer.and_then(|l| a.doc.value(l, "owner")).and_then(Value::as_str) {
                Some(owner) if owner != client => return Err(format!("this layer belongs to {owner}")),
                _ => {}
            }
        }
        Ok(())
    });
    Arc::new(t)
}

fn doc() -> Document {
    Document::new(registry())
}

fn client(id: &str) -> Actor {
    Actor::Client(id.into())
}

fn changes(json: &str) -> Vec<Change> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test changes {json}: {e}"))
}

/// Applies `json` changes as client `c1` on the current version.
fn apply(doc: &mut Document, json: &str) -> Result<Transition, Rejection> {
    doc.apply(&client("c1"), None, changes(json))
}

/// Applies and expects acceptance.
fn ok(doc: &mut Document, json: &str) -> Transition {
    apply(doc, json).unwrap_or_else(|r| panic!("refused {json}: {r}"))
}

/// Applies, expects refusal with `code`, and checks nothing changed.
fn refused(doc: &mut Document, json: &str, code: &str) -> Rejection {
    let before = doc.snapshot();
    match apply(doc, json) {
        Ok(t) => panic!("accepted {json}: {t:?}"),
        Err(r) => {
            assert_eq!(r.code(), code, "{r}");
            assert_eq!(doc.snapshot(), before, "a refused action changed the document");
            r
        }
    }
}

fn value(doc: &Document, id: &str, attr: &str) -> Value {
    doc.key(id).and_then(|k| doc.value(k, attr)).cloned().unwrap_or_else(|| panic!("no {id}.{attr}"))
}

/// A graph `g` with nodes `c1:a` and `c1:b`.
fn graph() -> Document {
    graph_with(ModelLimits::default())
}

fn graph_with(limits: ModelLimits) -> Document {
    let mut d = Document::with_limits(registry(), limits);
    d.transact(&Actor::Server, |tx| {
        tx.apply(Change::Create {
            id: "g".into(),
            type_name: "Graph".into(),
            parent: "root".into(),
            index: None,
            attrs: Dict::new(),
            children: Vec::new(),
        })
    })
    .unwrap_or_else(|r| panic!("{r}"));
    ok(
        &mut d,
        r#"[{"op":"create","id":"c1:a","type":"Node","parent":"g"},{"op":"create","id":"c1:b","type":"Node","parent":"g"}]"#,
    );
    d
}

fn inverse_of(t: &Transition) -> Vec<(u64, AppliedChange)> {
    t.changes.iter().cloned().map(|c| (t.version, c)).collect()
}

/// Undoes a transition by replaying its inverse and checks the tree is back to `before`.
fn assert_inverse_restores(doc: &mut Document, t: &Transition, before: &DocSnapshot) {
    doc.replay(&Actor::Server, &inverse_of(t)).unwrap_or_else(|e| panic!("inverse failed: {e}"));
    assert_eq!(doc.snapshot().root, before.root);
}

// ----- tree -----

#[test]
fn create_fills_defaults_and_takes_given_attributes() {
    let mut d = graph();
    let t = ok(&mut d, r#"[{"op":"create","id":"c1:n","type":"Node","parent":"g","attrs":{"title":"hi","weight":2}}]"#);
    assert_eq!(t.version, d.version());
    assert_eq!(value(&d, "c1:n", "title"), Value::from("hi"));
    assert_eq!(value(&d, "c1:n", "weight"), Value::Float(2.0), "an int for a float topic becomes a float");
    assert_eq!(value(&d, "c1:n", "pos"), Value::Dict(dict! { "x" => 0, "y" => 0 }));
    let AppliedChange::Create { node, index, .. } = &t.changes[0] else { panic!("{t:?}") };
    assert_eq!(*index, 2);
    assert!(node.attrs.get("ports").is_some(), "broadcast create carries every stored attribute");
    assert!(node.attrs.get("ping").is_none(), "events hold nothing");
}

#[test]
fn create_checks_ids_types_attributes_and_index() {
    let mut d = graph();
    refused(&mut d, r#"[{"op":"create","id":"c2:x","type":"Node","parent":"g"}]"#, "bad_id");
    refused(&mut d, r#"[{"op":"create","id":"c1x","type":"Node","parent":"g"}]"#, "bad_id");
    refused(&mut d, r#"[{"op":"create","id":"c1:a b","type":"Node","parent":"g"}]"#, "bad_id");
    refused(&mut d, r#"[{"op":"create","id":"c1:a","type":"Node","parent":"g"}]"#, "duplicate_id");
    refused(&mut d, r#"[{"op":"create","id":"c1:x","type":"Nope","parent":"g"}]"#, "no_such_type");
    refused(&mut d, r#"[{"op":"create","id":"c1:x","type":"Node","parent":"zz"}]"#, "no_such_object");
    refused(
        &mut d,
        r#"[{"op":"create","id":"c1:x","type":"Node","parent":"g","attrs":{"nope":1}}]"#,
        "no_such_attribute",
    );
    refused(&mut d, r#"[{"op":"create","id":"c1:x","type":"Node","parent":"g","attrs":{"title":5}}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"create","id":"c1:x","type":"Node","parent":"g","index":3}]"#, "out_of_range");
    refused(
        &mut d,
        r#"[{"op":"create","id":"c1:x","type":"Node","parent":"g","attrs":{"next":"missing"}}]"#,
        "dangling_ref",
    );
    refused(
        &mut d,
        r#"[{"op":"create","id":"c1:x","type":"Node","parent":"g","children":[{"id":"c1:x","type":"Port"}]}]"#,
        "duplicate_id",
    );
}

#[test]
fn create_with_children_and_refs_inside_the_new_subtree() {
    let mut d = graph();
    let before = d.snapshot();
    let t = ok(
        &mut d,
        r#"[{"op":"create","id":"c1:p","type":"Node","parent":"g","index":0,"attrs":{"next":"c1:q"},
             "children":[{"id":"c1:q","type":"Node","attrs":{"next":"c1:p"}}]}]"#,
    );
    let p = d.key("c1:p").unwrap_or_default();
    assert_eq!(d.children(d.key("g").unwrap_or_default())[0], p);
    assert_eq!(d.referrers(p).count(), 1);
    assert_inverse_restores(&mut d, &t, &before);
    assert!(d.key("c1:q").is_none());
}

#[test]
fn build_hook_creates_children_in_the_same_transition() {
    let mut d = graph();
    let t = ok(&mut d, r#"[{"op":"create","id":"c1:box","type":"Box","parent":"g"}]"#);
    assert_eq!(t.changes.len(), 5, "create + 2 x (create port, set name): {t:#?}");
    let b = d.key("c1:box").unwrap_or_default();
    let names: Vec<_> = d.children_of::<Port>(b).map(|p| p.name().get(&d).map(str::to_owned)).collect();
    assert_eq!(names, [Ok("in".to_owned()), Ok("out".to_owned())]);
}

#[test]
fn a_refused_transaction_leaves_no_trace_not_even_a_used_server_id() {
    let mut d = graph();
    let before = d.snapshot();
    // The box's build hook makes two ports with server ids; the second change is refused.
    refused(
        &mut d,
        r#"[{"op":"create","id":"c1:box","type":"Box","parent":"g"},{"op":"delete","id":"nothing"}]"#,
        "no_such_object",
    );
    assert_eq!(d.snapshot(), before, "next_server_id included");
    let t = ok(&mut d, r#"[{"op":"create","id":"c1:box","type":"Box","parent":"g"}]"#);
    let mut again = graph();
    let t2 = ok(&mut again, r#"[{"op":"create","id":"c1:box","type":"Box","parent":"g"}]"#);
    assert_eq!(t.changes, t2.changes, "the same ids as without the refused attempt");
}

#[test]
fn delete_removes_the_subtree_and_clears_references_in_the_same_transition() {
    let mut d = graph();
    ok(
        &mut d,
        r#"[{"op":"create","id":"c1:c","type":"Node","parent":"c1:a"},
            {"op":"set","obj":"c1:b","attr":"next","value":"c1:c"},
            {"op":"list_insert","obj":"c1:b","attr":"links","value":"c1:a"},
            {"op":"list_insert","obj":"c1:b","attr":"links","value":"c1:b"},
            {"op":"list_insert","obj":"c1:b","attr":"links","value":"c1:c"},
            {"op":"dict_set","obj":"c1:b","attr":"named","key":"k","value":"c1:a"}]"#,
    );
    let before = d.snapshot();
    let t = ok(&mut d, r#"[{"op":"delete","id":"c1:a"}]"#);
    assert!(d.key("c1:a").is_none() && d.key("c1:c").is_none());
    assert_eq!(value(&d, "c1:b", "next"), Value::Null);
    assert_eq!(value(&d, "c1:b", "links"), Value::List(thin_vec::thin_vec!["c1:b".into()]));
    assert_eq!(value(&d, "c1:b", "named"), Value::Dict(Dict::new()));
    assert!(matches!(t.changes.last(), Some(AppliedChange::Delete { .. })), "clearing comes first: {t:#?}");
    assert_inverse_restores(&mut d, &t, &before);
    assert_eq!(d.referrers(d.key("c1:c").unwrap_or_default()).count(), 2, "backrefs restored: next and links");
}

#[test]
fn a_snapshot_read_back_knows_references_into_later_subtrees() {
    // A node inside the first top-level subtree references one in the second: read back from
    // a snapshot, deleting the target still clears the reference (the load records it).
    let mut d = Document::with_limits(registry(), ModelLimits::default());
    ok(
        &mut d,
        r#"[{"op":"create","id":"c1:g1","type":"Graph","parent":"root"},
            {"op":"create","id":"c1:g2","type":"Graph","parent":"root"},
            {"op":"create","id":"c1:t","type":"Node","parent":"c1:g2"},
            {"op":"create","id":"c1:n","type":"Node","parent":"c1:g1","attrs":{"next":"c1:t","links":["c1:t"],"named":{"k":"c1:t"}}}]"#,
    );
    let mut d = Document::from_snapshot(registry(), ModelLimits::default(), d.snapshot()).expect("reads back");
    assert_eq!(d.referrers(d.key("c1:t").unwrap_or_default()).count(), 3, "next, links and named");
    ok(&mut d, r#"[{"op":"delete","id":"c1:g2"}]"#);
    assert_eq!(value(&d, "c1:n", "next"), Value::Null);
    assert_eq!(value(&d, "c1:n", "links"), Value::List(thin_vec::thin_vec![]));
    assert_eq!(value(&d, "c1:n", "named"), Value::Dict(Dict::new()));
}

#[test]
fn delete_refuses_the_root() {
    let mut d = graph();
    refused(&mut d, r#"[{"op":"delete","id":"root"}]"#, "root_immutable");
    refused(&mut d, r#"[{"op":"move","id":"root","parent":"g"}]"#, "root_immutable");
}

#[test]
fn move_reorders_reparents_and_refuses_cycles() {
    let mut d = graph();
    let g = d.key("g").unwrap_or_default();
    let (a, b) = (d.key("c1:a").unwrap_or_default(), d.key("c1:b").unwrap_or_default());
    let before = d.snapshot();
    let t = ok(&mut d, r#"[{"op":"move","id":"c1:b","parent":"g","index":0}]"#);
    assert_eq!(d.children(g), [b, a]);
    assert_inverse_restores(&mut d, &t, &before);
    assert_eq!(d.children(g), [a, b]);
    ok(&mut d, r#"[{"op":"move","id":"c1:b","parent":"c1:a"}]"#);
    assert_eq!(d.parent(b), Some(a));
    refused(&mut d, r#"[{"op":"move","id":"c1:a","parent":"c1:b"}]"#, "cycle");
    refused(&mut d, r#"[{"op":"move","id":"c1:a","parent":"c1:a"}]"#, "cycle");
    refused(&mut d, r#"[{"op":"move","id":"c1:a","parent":"g","index":2}]"#, "out_of_range");
}

#[test]
fn tree_depth_is_limited() {
    let limits = ModelLimits { tree_depth_max: 3, ..ModelLimits::default() };
    let mut d = Document::with_limits(registry(), limits);
    ok(&mut d, r#"[{"op":"create","id":"c1:1","type":"Node","parent":"root"}]"#);
    ok(&mut d, r#"[{"op":"create","id":"c1:2","type":"Node","parent":"c1:1"}]"#);
    ok(&mut d, r#"[{"op":"create","id":"c1:3","type":"Node","parent":"c1:2"}]"#);
    refused(&mut d, r#"[{"op":"create","id":"c1:4","type":"Node","parent":"c1:3"}]"#, "too_deep");
    ok(&mut d, r#"[{"op":"create","id":"c1:x","type":"Node","parent":"root"}]"#);
    refused(&mut d, r#"[{"op":"move","id":"c1:1","parent":"c1:x"}]"#, "too_deep");
}

// ----- attribute changes: apply, inverse, refusals -----

/// Applies `json` (accepted), checks `attr` of `c1:a` becomes `expect`, and that the inverse
/// restores the document.
fn check_attr(d: &mut Document, json: &str, attr: &str, expect: Value) {
    let before = d.snapshot();
    let t = ok(d, json);
    assert_eq!(value(d, "c1:a", attr), expect, "{json}");
    assert_inverse_restores(d, &t, &before);
    ok(d, json);
}

#[test]
fn set_replaces_any_stored_kind_and_checks_the_kind() {
    let mut d = graph();
    check_attr(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"T"}]"#, "title", "T".into());
    check_attr(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"on","value":true}]"#, "on", true.into());
    check_attr(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"weight","value":3}]"#, "weight", Value::Float(3.0));
    check_attr(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"next","value":"c1:b"}]"#, "next", "c1:b".into());
    check_attr(
        &mut d,
        r#"[{"op":"set","obj":"c1:a","attr":"tags","value":["x",1]}]"#,
        "tags",
        vec![Value::from(1), "x".into()].into(),
    );
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":1}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"count","value":1.5}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"pos","value":[1]}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"tags","value":["x","x"]}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"ping","value":1}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"next","value":"nobody"}]"#, "dangling_ref");
    refused(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"nope","value":1}]"#, "no_such_attribute");
    refused(&mut d, r#"[{"op":"set","obj":"c1:zz","attr":"title","value":"x"}]"#, "no_such_object");
}

#[test]
fn add_works_on_numbers_and_refuses_overflow() {
    let mut d = graph();
    check_attr(&mut d, r#"[{"op":"add","obj":"c1:a","attr":"count","value":5}]"#, "count", 5.into());
    check_attr(&mut d, r#"[{"op":"add","obj":"c1:a","attr":"weight","value":0.5}]"#, "weight", Value::Float(0.5));
    ok(&mut d, &format!(r#"[{{"op":"set","obj":"c1:a","attr":"count","value":{}}}]"#, i64::MAX));
    refused(&mut d, r#"[{"op":"add","obj":"c1:a","attr":"count","value":1}]"#, "overflow");
    refused(&mut d, r#"[{"op":"add","obj":"c1:a","attr":"count","value":0.5}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"add","obj":"c1:a","attr":"title","value":1}]"#, "wrong_kind");
}

#[test]
fn text_edits_count_utf16_units() {
    let mut d = graph();
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"héllo😀!"}]"#);
    check_attr(
        &mut d,
        r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":8,"text":"→"}]"#,
        "title",
        "héllo😀!→".into(),
    );
    refused(&mut d, r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":6,"text":"x"}]"#, "splits_character");
    refused(&mut d, r#"[{"op":"text_delete","obj":"c1:a","attr":"title","pos":0,"len":6}]"#, "splits_character");
    check_attr(
        &mut d,
        r#"[{"op":"text_delete","obj":"c1:a","attr":"title","pos":5,"len":2}]"#,
        "title",
        "héllo!→".into(),
    );
    refused(&mut d, r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":99,"text":"x"}]"#, "out_of_range");
    refused(&mut d, r#"[{"op":"text_insert","obj":"c1:a","attr":"pos","pos":0,"text":"x"}]"#, "wrong_kind");
}

#[test]
fn dict_keys_are_set_and_removed() {
    let mut d = graph();
    check_attr(
        &mut d,
        r#"[{"op":"dict_set","obj":"c1:a","attr":"pos","key":"x","value":7}]"#,
        "pos",
        dict! {"x" => 7, "y" => 0}.into(),
    );
    check_attr(&mut d, r#"[{"op":"dict_remove","obj":"c1:a","attr":"pos","key":"y"}]"#, "pos", dict! {"x" => 7}.into());
    refused(&mut d, r#"[{"op":"dict_remove","obj":"c1:a","attr":"pos","key":"zz"}]"#, "no_such_key");
    refused(&mut d, r#"[{"op":"dict_set","obj":"c1:a","attr":"title","key":"x","value":1}]"#, "wrong_kind");
    refused(&mut d, r#"[{"op":"dict_set","obj":"c1:a","attr":"named","key":"x","value":"ghost"}]"#, "dangling_ref");
    refused(&mut d, r#"[{"op":"dict_set","obj":"c1:a","attr":"named","key":"x","value":3}]"#, "wrong_kind");
}

#[test]
fn list_insert_remove_move_and_set() {
    let mut d = graph();
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"ports","value":["a","b","c"]}]"#);
    let l = |xs: &[&str]| Value::List(xs.iter().map(|&x| x.into()).collect());
    check_attr(
        &mut d,
        r#"[{"op":"list_insert","obj":"c1:a","attr":"ports","index":1,"value":"x"}]"#,
        "ports",
        l(&["a", "x", "b", "c"]),
    );
    check_attr(
        &mut d,
        r#"[{"op":"list_insert","obj":"c1:a","attr":"ports","value":"z"}]"#,
        "ports",
        l(&["a", "x", "b", "c", "z"]),
    );
    check_attr(
        &mut d,
        r#"[{"op":"list_remove","obj":"c1:a","attr":"ports","index":0}]"#,
        "ports",
        l(&["x", "b", "c", "z"]),
    );
    check_attr(
        &mut d,
        r#"[{"op":"list_move","obj":"c1:a","attr":"ports","from":0,"to":2}]"#,
        "ports",
        l(&["b", "c", "x", "z"]),
    );
    check_attr(
        &mut d,
        r#"[{"op":"list_set","obj":"c1:a","attr":"ports","index":2,"value":"q"}]"#,
        "ports",
        l(&["b", "c", "q", "z"]),
    );
    refused(&mut d, r#"[{"op":"list_insert","obj":"c1:a","attr":"ports","index":5,"value":"x"}]"#, "out_of_range");
    refused(&mut d, r#"[{"op":"list_remove","obj":"c1:a","attr":"ports","index":4}]"#, "out_of_range");
    refused(&mut d, r#"[{"op":"list_move","obj":"c1:a","attr":"ports","from":0,"to":4}]"#, "out_of_range");
    refused(&mut d, r#"[{"op":"list_insert","obj":"c1:a","attr":"links","value":"ghost"}]"#, "dangling_ref");
}

#[test]
fn set_elements_are_unique_scalars() {
    let mut d = graph();
    check_attr(&mut d, r#"[{"op":"set_add","obj":"c1:a","attr":"tags","value":"red"}]"#, "tags", vec!["red"].into());
    refused(&mut d, r#"[{"op":"set_add","obj":"c1:a","attr":"tags","value":"red"}]"#, "set_element");
    refused(&mut d, r#"[{"op":"set_add","obj":"c1:a","attr":"tags","value":{"a":1}}]"#, "wrong_kind");
    check_attr(
        &mut d,
        r#"[{"op":"set_remove","obj":"c1:a","attr":"tags","value":"red"}]"#,
        "tags",
        Value::List(thin_vec::thin_vec![]),
    );
    refused(&mut d, r#"[{"op":"set_remove","obj":"c1:a","attr":"tags","value":"red"}]"#, "set_element");
}

#[test]
fn emit_is_delivered_but_not_stored_and_takes_no_version() {
    let mut d = graph();
    let before = d.snapshot();
    let t = ok(&mut d, r#"[{"op":"emit","obj":"c1:a","attr":"ping","args":{"n":1}}]"#);
    assert_eq!(t.version, before.version);
    assert!(!t.changes_state());
    assert_eq!(d.snapshot(), before);
    refused(&mut d, r#"[{"op":"emit","obj":"c1:a","attr":"title","args":1}]"#, "wrong_kind");
}

// ----- transactions -----

#[test]
fn a_failing_change_rolls_back_the_whole_action() {
    let mut d = graph();
    let r = refused(
        &mut d,
        r#"[{"op":"set","obj":"c1:a","attr":"title","value":"changed"},
            {"op":"create","id":"c1:new","type":"Node","parent":"g"},
            {"op":"delete","id":"c1:b"},
            {"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"x"},
            {"op":"list_remove","obj":"c1:a","attr":"ports","index":9}]"#,
        "out_of_range",
    );
    assert_eq!(r.change_index, Some(4));
    assert!(r.to_string().contains("c1:a.ports"), "{r}");
}

#[test]
fn versions_count_accepted_state_changes() {
    let mut d = graph();
    let v = d.version();
    ok(
        &mut d,
        r#"[{"op":"set","obj":"c1:a","attr":"on","value":true},{"op":"set","obj":"c1:a","attr":"on","value":false}]"#,
    );
    assert_eq!(d.version(), v + 1);
    refused(&mut d, r#"[{"op":"delete","id":"nope"}]"#, "no_such_object");
    assert_eq!(d.version(), v + 1);
    assert_eq!(apply(&mut d, "[]").map_err(|r| r.code()), Err("empty_action"));
    let r = d.apply(&client("c1"), Some(v + 5), changes(r#"[{"op":"delete","id":"c1:a"}]"#));
    assert_eq!(r.map_err(|r| r.code()), Err("bad_base"));
}

#[test]
fn validators_refuse_with_the_object_and_attribute() {
    let mut d = graph();
    let r = refused(&mut d, r#"[{"op":"dict_set","obj":"c1:a","attr":"pos","key":"x","value":5000}]"#, "invalid");
    assert_eq!(r.to_string(), "change 0: c1:a.pos: x = 5000 is outside the canvas");
    refused(
        &mut d,
        r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:a"}}]"#,
        "invalid",
    );
    ok(&mut d, r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:b"}}]"#);
}

#[test]
fn permission_hook_limits_a_client_to_its_own_layer() {
    let mut d = doc();
    d.transact(&Actor::Server, |tx| {
        for owner in ["c1", "c2"] {
            let root = tx.root();
            let layer = tx.create::<Layer>(root)?;
            layer.owner().set(tx, owner)?;
        }
        Ok(())
    })
    .unwrap_or_else(|r| panic!("{r}"));
    let layers: Vec<_> = d.children(d.root()).iter().map(|&k| d.id(k).unwrap_or_default().to_owned()).collect();
    let mine = format!(r#"[{{"op":"create","id":"c1:n","type":"Node","parent":"{}"}}]"#, layers[0]);
    let theirs = format!(r#"[{{"op":"create","id":"c1:m","type":"Node","parent":"{}"}}]"#, layers[1]);
    ok(&mut d, &mine);
    let r = refused(&mut d, &theirs, "denied");
    assert!(r.to_string().contains("belongs to c2"), "{r}");
    refused(&mut d, &format!(r#"[{{"op":"move","id":"c1:n","parent":"{}"}}]"#, layers[1]), "denied");
    // Server code is not subject to the hook.
    let l2 = d.key(&layers[1]).unwrap_or_default();
    d.transact(&Actor::Server, |tx| tx.create::<Node>(l2).map(|_| ())).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn deleting_a_node_deletes_its_edges_through_a_reaction() {
    let mut d = graph();
    ok(&mut d, r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:b"}}]"#);
    let before = d.snapshot();
    let t = ok(&mut d, r#"[{"op":"delete","id":"c1:a"}]"#);
    assert!(d.key("c1:e").is_none(), "the edge went with its node");
    assert_inverse_restores(&mut d, &t, &before);
    assert_eq!(value(&d, "c1:e", "from"), Value::from("c1:a"));
}

#[test]
fn reaction_loops_are_cut_by_the_depth_limit() {
    sobject! { pub struct Echo: "Echo" { n: Int } }
    let mut t = TypeRegistry::new();
    t.register::<Echo>().on_change(Echo::n, |tx, e| e.n().add(tx, 1));
    let mut d = Document::new(Arc::new(t));
    ok(&mut d, r#"[{"op":"create","id":"c1:e","type":"Echo","parent":"root"}]"#);
    let r = apply(&mut d, r#"[{"op":"set","obj":"c1:e","attr":"n","value":1}]"#);
    assert_eq!(r.map_err(|r| r.code()), Err("reaction_depth"));
    assert_eq!(value(&d, "c1:e", "n"), Value::Int(0));
}

#[test]
fn typed_handles_read_and_write() {
    let mut d = graph();
    let a: Node = d.get("c1:a").unwrap_or_else(|e| panic!("{e}"));
    assert!(d.get::<Edge>("c1:a").is_err(), "wrong type is an error, not a panic");
    d.transact(&Actor::Server, |tx| {
        a.title().insert(tx, 4, "!")?;
        a.pos().set_key(tx, "x", 3)?;
        a.ports().push(tx, "in")?;
        a.tags().add(tx, "t")?;
        a.count().add(tx, 2)?;
        a.weight().set(tx, 0.5)?;
        a.on().set(tx, true)?;
        let b = tx.key("c1:b").ok_or(ModelError::hook("b"))?;
        a.next().set(tx, Some(b))?;
        a.links().push(tx, b)?;
        a.named().set_key(tx, "k", b)?;
        a.ping().emit(tx, "hi")?;
        Ok(())
    })
    .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(a.title().get(&d), Ok("node!"));
    assert_eq!(a.pos().get_key(&d, "x"), Ok(Some(&Value::Int(3))));
    assert_eq!(a.count().get(&d), Ok(2));
    assert_eq!(a.next().target(&d), Ok(d.key("c1:b")));
    assert_eq!(a.links().targets(&d).map(|l| l.len()), Ok(1));
    d.transact(&Actor::Server, |tx| tx.delete(a)).unwrap_or_else(|r| panic!("{r}"));
    assert!(a.title().get(&d).is_err(), "a handle to a deleted object reads as an error");
}

// ----- text transform -----

#[test]
fn concurrent_inserts_at_one_position_keep_both_in_either_order() {
    let run = |first: &str, second: &str| {
        let mut d = graph();
        ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"ab"}]"#);
        let base = d.version();
        let ins =
            |t: &str| changes(&format!(r#"[{{"op":"text_insert","obj":"c1:a","attr":"title","pos":1,"text":"{t}"}}]"#));
        let (c1, c2) = (client(first), client(second));
        d.apply(&c1, Some(base), ins(first)).unwrap_or_else(|r| panic!("{r}"));
        d.apply(&c2, Some(base), ins(second)).unwrap_or_else(|r| panic!("{r}"));
        value(&d, "c1:a", "title")
    };
    assert_eq!(run("cx", "cy"), Value::from("acxcyb"));
    assert_eq!(run("cy", "cx"), Value::from("acxcyb"), "tie order is by client id, not arrival");
}

#[test]
fn overlapping_concurrent_deletes_remove_each_character_once() {
    let mut d = graph();
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"abcdef"}]"#);
    let base = d.version();
    let del = |pos: u32, len: u32| {
        changes(&format!(r#"[{{"op":"text_delete","obj":"c1:a","attr":"title","pos":{pos},"len":{len}}}]"#))
    };
    d.apply(&client("c2"), Some(base), del(1, 3)).unwrap_or_else(|r| panic!("{r}"));
    d.apply(&client("c3"), Some(base), del(2, 3)).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(value(&d, "c1:a", "title"), Value::from("af"));
}

#[test]
fn edits_in_one_action_are_transformed_in_sequence() {
    // c2 replaces "cd" with "XY" (delete then insert) while c3 inserted at the front.
    let mut d = graph();
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"abcdef"}]"#);
    let base = d.version();
    d.apply(
        &client("c3"),
        Some(base),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":">>"}]"#),
    )
    .unwrap_or_else(|r| panic!("{r}"));
    d.apply(
        &client("c2"),
        Some(base),
        changes(r#"[{"op":"text_delete","obj":"c1:a","attr":"title","pos":2,"len":2},{"op":"text_insert","obj":"c1:a","attr":"title","pos":2,"text":"XY"}]"#),
    )
    .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(value(&d, "c1:a", "title"), Value::from(">>abXYef"));
}

#[test]
fn text_base_rules() {
    let mut d = graph();
    let v0 = d.version();
    d.apply(
        &client("c1"),
        Some(v0),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"x"}]"#),
    )
    .unwrap_or_else(|r| panic!("{r}"));
    // The same client basing a second edit before its own first one is refused.
    let r = d.apply(
        &client("c1"),
        Some(v0),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":1,"text":"y"}]"#),
    );
    assert_eq!(r.map_err(|r| r.code()), Err("text_base_stale"));
    // After the whole text is replaced, older edits cannot be transformed.
    let v1 = d.version();
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"new"}]"#);
    let r = d.apply(
        &client("c2"),
        Some(v1),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"z"}]"#),
    );
    assert_eq!(r.map_err(|r| r.code()), Err("text_base_too_old"));
}

#[test]
fn text_history_is_bounded() {
    let limits = ModelLimits { text_history_len_max: 4, ..ModelLimits::default() };
    let mut d = Document::with_limits(registry(), limits);
    ok(&mut d, r#"[{"op":"create","id":"c1:a","type":"Node","parent":"root"}]"#);
    let base = d.version();
    for _ in 0..6 {
        ok(&mut d, r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"x"}]"#);
    }
    let r = d.apply(
        &client("c2"),
        Some(base),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"z"}]"#),
    );
    assert_eq!(r.map_err(|r| r.code()), Err("text_base_too_old"));
    let r = d.apply(
        &client("c2"),
        Some(d.version() - 3),
        changes(r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":"z"}]"#),
    );
    assert!(r.is_ok(), "{r:?}");
}

// ----- undo / redo -----

fn undo(h: &mut UndoHistory, d: &mut Document, who: &str, scope: Option<&str>) -> Result<Transition, ModelError> {
    let scope = scope.map(|id| d.key(id).unwrap_or_default());
    h.undo(d, &client(who), scope, 10_000)
}

fn redo(h: &mut UndoHistory, d: &mut Document, who: &str, scope: Option<&str>) -> Result<Transition, ModelError> {
    let scope = scope.map(|id| d.key(id).unwrap_or_default());
    h.redo(d, &client(who), scope, 10_000)
}

/// Applies as `who` at time `ms` and records it.
fn act(h: &mut UndoHistory, d: &mut Document, who: &str, ms: u64, json: &str) {
    let t = d.apply(&client(who), None, changes(json)).unwrap_or_else(|r| panic!("{r}"));
    h.record(d, &t, ms);
}

#[test]
fn undo_is_per_client_and_per_subtree() {
    let mut d = graph();
    let mut h = UndoHistory::new(d.limits());
    act(&mut h, &mut d, "c1", 0, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"A1"}]"#);
    act(&mut h, &mut d, "c1", 1000, r#"[{"op":"set","obj":"c1:b","attr":"title","value":"B1"}]"#);
    act(&mut h, &mut d, "c2", 2000, r#"[{"op":"set","obj":"c1:b","attr":"on","value":true}]"#);
    // c1 undoes its change under c1:a, although its latest change was to c1:b.
    let t = undo(&mut h, &mut d, "c1", Some("c1:a")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.actor, client("c1"));
    assert_eq!(value(&d, "c1:a", "title"), Value::from("node"));
    assert_eq!(value(&d, "c1:b", "title"), Value::from("B1"));
    assert_eq!(value(&d, "c1:b", "on"), Value::Bool(true), "c2's change stays");
    // Scoped to the graph, c1's remaining step (on c1:b) matches.
    undo(&mut h, &mut d, "c1", Some("g")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:b", "title"), Value::from("node"));
    assert_eq!(undo(&mut h, &mut d, "c1", None).map_err(|e| e.code()), Err("nothing_to_undo"));
    redo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:b", "title"), Value::from("B1"));
    assert_eq!(undo(&mut h, &mut d, "c3", None).map_err(|e| e.code()), Err("nothing_to_undo"));
}

/// Applies as `who` at time `ms` in the undo step named `step` and records it.
fn act_in_step(h: &mut UndoHistory, d: &mut Document, who: &str, ms: u64, step: &str, json: &str) {
    let t = d.apply(&client(who), None, changes(json)).unwrap_or_else(|r| panic!("{r}"));
    h.record_in_step(d, &t, ms, Some(step));
}

#[test]
fn actions_naming_one_step_undo_together_however_far_apart() {
    let mut d = graph();
    let mut h = UndoHistory::new(d.limits());
    let x = |i: u64| format!(r#"[{{"op":"dict_set","obj":"c1:a","attr":"pos","key":"x","value":{i}}}]"#);
    let pos_before = value(&d, "c1:a", "pos");
    // A drag held still for seconds between moves, and another node moved in the same gesture.
    act_in_step(&mut h, &mut d, "c1", 0, "drag-1", &x(10));
    act_in_step(&mut h, &mut d, "c1", 5_000, "drag-1", &x(20));
    act_in_step(&mut h, &mut d, "c1", 9_000, "drag-1", r#"[{"op":"set","obj":"c1:b","attr":"title","value":"moved"}]"#);
    // The next drag, at once: a step of its own.
    act_in_step(&mut h, &mut d, "c1", 9_010, "drag-2", &x(30));
    // An edit naming no step, right after: not merged into the named one.
    act(&mut h, &mut d, "c1", 9_020, &x(40));
    assert_eq!(h.steps("c1"), (3, 0));
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:a", "pos").as_dict().and_then(|p| p.get("x")).cloned(), Some(Value::Int(30)));
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:a", "pos").as_dict().and_then(|p| p.get("x")).cloned(), Some(Value::Int(20)));
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:b", "title"), Value::from("node"), "the whole first drag, both nodes");
    assert_eq!(value(&d, "c1:a", "pos"), pos_before);
    assert_eq!(h.steps("c1"), (0, 3));
}

#[test]
fn quick_successive_changes_to_one_object_undo_as_one_step() {
    let mut d = graph();
    let mut h = UndoHistory::new(d.limits());
    for i in 0..60u64 {
        let json = format!(r#"[{{"op":"dict_set","obj":"c1:a","attr":"pos","key":"x","value":{i}}}]"#);
        act(&mut h, &mut d, "c1", i * 16, &json);
    }
    h.boundary("c1");
    act(&mut h, &mut d, "c1", 1000, r#"[{"op":"dict_set","obj":"c1:a","attr":"pos","key":"y","value":5}]"#);
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        value(&d, "c1:a", "pos"),
        Value::Dict(dict! {"x" => 59, "y" => 0}),
        "the explicit boundary split the steps"
    );
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:a", "pos"), Value::Dict(dict! {"x" => 0, "y" => 0}), "the drag is undone at once");
}

#[test]
fn undo_that_conflicts_is_refused_and_changes_nothing() {
    let mut d = graph();
    let mut h = UndoHistory::new(d.limits());
    act(&mut h, &mut d, "c1", 0, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"mine"}]"#);
    act(&mut h, &mut d, "c2", 10, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"theirs"}]"#);
    let before = d.snapshot();
    let r = undo(&mut h, &mut d, "c1", None);
    assert_eq!(r.as_ref().map_err(ModelError::code), Err("undo_conflict"), "{r:?}");
    assert_eq!(d.snapshot(), before);
    // Deleting an object restores it, with the edge a reaction deleted along with it.
    act(
        &mut h,
        &mut d,
        "c1",
        2000,
        r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:b"}}]"#,
    );
    let with_edge = d.snapshot();
    act(&mut h, &mut d, "c1", 4000, r#"[{"op":"delete","id":"c1:a"}]"#);
    assert!(d.key("c1:e").is_none());
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.snapshot().root, with_edge.root);
}

#[test]
fn undo_of_a_text_insert_survives_concurrent_edits() {
    let mut d = graph();
    let mut h = UndoHistory::new(d.limits());
    ok(&mut d, r#"[{"op":"set","obj":"c1:a","attr":"title","value":"hello"}]"#);
    act(&mut h, &mut d, "c1", 0, r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":5,"text":" world"}]"#);
    act(&mut h, &mut d, "c2", 10, r#"[{"op":"text_insert","obj":"c1:a","attr":"title","pos":0,"text":">> "}]"#);
    undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:a", "title"), Value::from(">> hello"));
    redo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value(&d, "c1:a", "title"), Value::from(">> hello world"));
}

#[test]
fn undo_history_is_bounded() {
    let limits = ModelLimits { undo_steps_max: 3, ..ModelLimits::default() };
    let mut d = Document::with_limits(registry(), limits);
    let mut h = UndoHistory::new(d.limits());
    act(&mut h, &mut d, "c1", 0, r#"[{"op":"create","id":"c1:a","type":"Node","parent":"root"}]"#);
    for i in 0..5u64 {
        let json = r#"[{"op":"add","obj":"c1:a","attr":"count","value":1}]"#;
        act(&mut h, &mut d, "c1", 10_000 * (i + 1), json);
    }
    for _ in 0..3 {
        undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(undo(&mut h, &mut d, "c1", None).map_err(|e| e.code()), Err("nothing_to_undo"));
    assert_eq!(value(&d, "c1:a", "count"), Value::Int(2));
}

#[test]
fn undo_is_bounded_in_bytes_per_step_per_client_and_per_room() {
    let limits = ModelLimits {
        undo_step_bytes_max: 4_000,
        undo_client_bytes_max: 40_000,
        undo_room_bytes_max: 60_000,
        ..ModelLimits::default()
    };
    let mut d = graph_with(limits.clone());
    let mut h = UndoHistory::new(d.limits());
    // A drag that goes on (every move within the merge window) still splits into steps of at
    // most undo_step_bytes_max: one undo takes back only the last part.
    for i in 0..400u64 {
        let json = format!(r#"[{{"op":"dict_set","obj":"c1:a","attr":"pos","key":"x","value":{i}}}]"#);
        act(&mut h, &mut d, "c1", i * 16, &json);
    }
    let t = undo(&mut h, &mut d, "c1", None).unwrap_or_else(|e| panic!("{e}"));
    let replayed: usize = t.changes.iter().map(AppliedChange::approx_bytes).sum();
    assert!(replayed <= limits.undo_step_bytes_max, "{replayed} bytes in one undo");
    assert!(value(&d, "c1:a", "pos").as_dict().and_then(|p| p.get("x")).and_then(Value::as_int) > Some(300));
    assert!(h.bytes() <= limits.undo_client_bytes_max, "{} bytes held for one client", h.bytes());
    // Big values: the client's oldest steps go first.
    let big = "x".repeat(9_000);
    for i in 0..10u64 {
        let json = format!(r#"[{{"op":"set","obj":"c1:b","attr":"title","value":"{big}{i}"}}]"#);
        act(&mut h, &mut d, "c1", 100_000 + i * 10_000, &json);
    }
    assert!(h.bytes() <= limits.undo_client_bytes_max);
    // c1 leaves, then another client's history grows: past the room's bound, the departed
    // client's history goes before the connected one loses anything.
    h.departed("c1");
    for i in 0..2u64 {
        let json = format!(r#"[{{"op":"set","obj":"c1:a","attr":"title","value":"{big}{i}"}}]"#);
        act(&mut h, &mut d, "c2", 300_000 + i * 10_000, &json);
    }
    assert!(h.bytes() <= limits.undo_room_bytes_max);
    let c1 = undo(&mut h, &mut d, "c1", None).map(|_| ()).map_err(|e| e.code());
    assert_eq!(c1, Err("nothing_to_undo"), "c1's history went");
    for _ in 0..2 {
        undo(&mut h, &mut d, "c2", None).map(|_| ()).unwrap_or_else(|e| panic!("c2 keeps its steps: {}", e.code()));
    }
}

// ----- snapshots -----

#[test]
fn snapshot_round_trips_and_both_forms_serialize_alike() {
    let mut d = graph();
    ok(
        &mut d,
        r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:b"}},
            {"op":"set","obj":"c1:a","attr":"title","value":"ü😀"},
            {"op":"set","obj":"c1:a","attr":"links","value":["c1:b","c1:a"]}]"#,
    );
    let snap = d.snapshot();
    let json = serde_json::to_string(&snap).unwrap_or_default();
    assert_eq!(serde_json::to_string(&crate::protocol::snapshot_view(&d)).unwrap_or_default(), json);
    let back: DocSnapshot = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    let d2 = Document::from_snapshot(registry(), ModelLimits::default(), back).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d2.snapshot(), snap);
    assert_eq!(d2.referrers(d2.key("c1:b").unwrap_or_default()).count(), 2);
}

#[test]
fn the_compact_form_reads_back_as_the_same_snapshot_and_is_smaller() {
    let mut d = graph();
    ok(
        &mut d,
        r#"[{"op":"create","id":"c1:e","type":"Edge","parent":"g","attrs":{"from":"c1:a","to":"c1:b"}},
            {"op":"set","obj":"c1:a","attr":"title","value":"ü😀"}]"#,
    );
    let nested = serde_json::to_string(&crate::protocol::snapshot_view(&d)).unwrap_or_default();
    let compact = serde_json::to_string(&crate::protocol::compact_snapshot_view(&d)).unwrap_or_default();
    assert!(compact.len() < nested.len(), "{compact}");
    assert!(compact.contains(r#""types":"#) && compact.contains(r#"["c1:e","#), "{compact}");
    let back: DocSnapshot = serde_json::from_str(&compact).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, d.snapshot());
}

#[test]
fn a_malformed_compact_snapshot_is_refused_with_a_reason() {
    let types = r#""types":[["Root",[]],["Node",["a","b"]]]"#;
    let cases = [
        (r#"{"version":1,"root":["root",0,[]]}"#.to_owned(), "needs `types`"),
        (format!(r#"{{"version":1,{types},"root":["root",0,[],[["n",7,[]]]]}}"#), "no type at index 7"),
        (format!(r#"{{"version":1,{types},"root":["root",0,[],[["n",1,[1]]]]}}"#), "invalid length 1"),
        (format!(r#"{{"version":1,{types},"root":["root",0,[],[["n",1,[1,2,3]]]]}}"#), "invalid length 3"),
        (format!(r#"{{"version":1,{types},"root":["root",0,[],[],5]}}"#), "invalid length"),
        (format!(r#"{{{types},"root":["root",0,[]]}}"#), "missing field `version`"),
    ];
    for (json, reason) in cases {
        match serde_json::from_str::<DocSnapshot>(&json) {
            Ok(s) => panic!("{json} was read as {s:?}"),
            Err(e) => assert!(e.to_string().contains(reason), "{json}: {e}"),
        }
    }
    let good = format!(r#"{{"version":3,{types},"root":["root",0,[],[["n",1,[1,{{"k":[true]}}]]]]}}"#);
    let s: DocSnapshot = serde_json::from_str(&good).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.root.children[0].attrs.get("b"), Some(&Value::Dict(crate::dict! { "k" => vec![true] })));
}

#[test]
fn a_bad_snapshot_is_refused_clearly() {
    let d = graph();
    let mut snap = d.snapshot();
    snap.root.children[0].children[0].attrs.insert("next", "ghost");
    let r = Document::from_snapshot(registry(), ModelLimits::default(), snap);
    assert_eq!(r.map(|_| ()).map_err(|e| e.code()), Err("dangling_ref"));
}

#[test]
fn a_snapshot_whose_root_is_not_the_root_is_refused_naming_it() {
    let d = graph();
    let mut wrong_id = d.snapshot();
    wrong_id.root.id = "top".into();
    let r = Document::from_snapshot(registry(), ModelLimits::default(), wrong_id);
    assert_eq!(r.map(|_| ()).map_err(|e| e.code()), Err("bad_id"));
    let mut wrong_type = d.snapshot();
    wrong_type.root.type_name = "Graph".into();
    let e = Document::from_snapshot(registry(), ModelLimits::default(), wrong_type).map(|_| ()).expect_err("refused");
    assert!(e.code() == "wrong_kind" && e.to_string().contains("Graph"), "{e}");
}

#[test]
fn the_tree_primitives_refuse_the_root_rather_than_take_a_child_for_it() {
    let mut d = graph();
    let (root, before) = (d.root(), d.snapshot());
    assert_eq!(d.remove_subtree(root).map(|_| ()).map_err(|e| e.code()), Err("root_immutable"));
    let first = d.children(root)[0];
    assert_eq!(d.move_object(root, first, None).map(|_| ()).map_err(|e| e.code()), Err("root_immutable"));
    assert_eq!(d.snapshot(), before);
}

#[test]
fn a_hook_refuses_with_its_words_and_the_custom_code() {
    let mut d = graph();
    let r = d.transact(&Actor::Server, |_| Err::<(), _>(ModelError::hook("not today")));
    let e = r.map(|_| ()).expect_err("refused").error;
    assert_eq!((e.code(), e.to_string()), ("custom", "not today".to_owned()));
}

// ----- property tests -----

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Random numbers, folded into a change against the current document: mostly valid, some
    /// not (unknown ids, out-of-range indexes, wrong kinds).
    #[derive(Debug, Clone)]
    struct Raw(u8, u16, u16, u16, i16);

    fn pick(ids: &[String], n: u16) -> &str {
        if n % 17 == 16 {
            "ghost"
        } else {
            &ids[usize::from(n) % ids.len()]
        }
    }

    fn make(d: &Document, Raw(op, a, b, c, n): &Raw, fresh: &mut u32) -> Change {
        let ids: Vec<String> = d.subtree(d.root()).filter_map(|k| d.id(k)).map(str::to_owned).collect();
        let obj: ObjId = pick(&ids, *a).into();
        let other: ObjId = pick(&ids, *b).into();
        let attr = |names: &[&str]| CompactString::from(names[usize::from(*c) % names.len()]);
        use compact_str::CompactString;
        match op % 16 {
            0 | 1 => {
                *fresh += 1;
                Change::Create {
                    id: format!("c1:n{fresh}").into(),
                    type_name: if c % 5 == 0 { "Edge".into() } else { "Node".into() },
                    parent: obj,
                    index: (n % 3 == 0).then_some(u32::from(*b % 4)),
                    attrs: if c % 5 == 0 {
                        dict! {"from" => other.as_str(), "to" => pick(&ids, *c)}
                    } else {
                        Dict::new()
                    },
                    children: Vec::new(),
                }
            }
            2 => Change::Delete { id: obj },
            3 => Change::Move { id: obj, parent: other, index: (n % 2 == 0).then_some(u32::from(*c % 3)) },
            4 => Change::Set { obj, attr: attr(&["title", "count", "on", "weight"]), value: Value::Int(i64::from(*n)) },
            5 => Change::Add { obj, attr: attr(&["count", "weight"]), value: Value::Int(i64::from(*n)) },
            6 => Change::TextInsert {
                obj,
                attr: "title".into(),
                pos: u32::from(*c % 8),
                text: if n % 2 == 0 { "é".into() } else { "😀x".into() },
            },
            7 => Change::TextDelete { obj, attr: "title".into(), pos: u32::from(*c % 6), len: u32::from(*b % 4) },
            8 => Change::DictSet {
                obj,
                attr: "pos".into(),
                key: if c % 2 == 0 { "x".into() } else { "z".into() },
                value: Value::Int(i64::from(*n)),
            },
            9 => Change::DictRemove { obj, attr: "pos".into(), key: if c % 2 == 0 { "x".into() } else { "z".into() } },
            10 => Change::ListInsert {
                obj,
                attr: attr(&["ports", "links"]),
                index: (n % 2 == 0).then_some(u32::from(*c % 3)),
                value: other.as_str().into(),
            },
            11 => Change::ListRemove { obj, attr: attr(&["ports", "links"]), index: u32::from(*c % 3) },
            12 => Change::ListMove { obj, attr: "ports".into(), from: u32::from(*b % 3), to: u32::from(*c % 3) },
            13 => Change::SetAdd { obj, attr: "tags".into(), value: Value::Int(i64::from(n % 4)) },
            14 => Change::SetRemove { obj, attr: "tags".into(), value: Value::Int(i64::from(n % 4)) },
            _ => Change::Set {
                obj,
                attr: "next".into(),
                value: if n % 3 == 0 { Value::Null } else { other.as_str().into() },
            },
        }
    }

    fn raw() -> impl Strategy<Value = Raw> {
        (any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<i16>())
            .prop_map(|(a, b, c, d, e)| Raw(a, b, c, d, e))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Random actions: refused ones change nothing; accepted ones take exactly one version,
        /// their inverse restores the tree and replaying them again lands on the same tree;
        /// snapshots round-trip; undo then redo then undo lands where the first undo did.
        #[test]
        fn random_actions_keep_every_invariant(actions in proptest::collection::vec(proptest::collection::vec(raw(), 1..4), 1..40)) {
            let mut d = graph();
            let mut h = UndoHistory::new(d.limits());
            let mut fresh = 0;
            for (step, raws) in actions.iter().enumerate() {
                let mut changes = Vec::new();
                for r in raws {
                    changes.push(make(&d, r, &mut fresh));
                }
                let before = d.snapshot();
                match d.apply(&client("c1"), None, changes) {
                    Err(_) => prop_assert_eq!(d.snapshot(), before),
                    Ok(t) => {
                        let after = d.snapshot();
                        if t.changes_state() {
                            prop_assert_eq!(t.version, before.version + 1);
                        } else {
                            prop_assert_eq!(t.version, before.version);
                        }
                        let undone = d.replay(&Actor::Server, &inverse_of(&t));
                        prop_assert!(undone.is_ok(), "inverse of {:?} failed: {:?}", t, undone);
                        prop_assert_eq!(&d.snapshot().root, &before.root);
                        let undone = undone.map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let redone = d.replay(&Actor::Server, &inverse_of(&undone));
                        prop_assert!(redone.is_ok(), "replay of {:?} failed: {:?}", t, redone);
                        prop_assert_eq!(&d.snapshot().root, &after.root);
                        h.record(&d, &t, step as u64 * 1000);
                    }
                }
                let snap = d.snapshot();
                let back = Document::from_snapshot(registry(), ModelLimits::default(), snap.clone());
                prop_assert!(back.is_ok(), "{:?}", back.err());
                prop_assert_eq!(back.map(|b| b.snapshot()).ok(), Some(snap));
                if step % 7 == 6 {
                    let actor = client("c1");
                    if h.undo(&mut d, &actor, None, 0).is_ok() {
                        let once = d.snapshot().root;
                        if h.redo(&mut d, &actor, None, 0).is_ok() {
                            prop_assert!(h.undo(&mut d, &actor, None, 0).is_ok());
                            prop_assert_eq!(d.snapshot().root, once);
                        }
                    }
                }
            }
        }

        /// Two clients edit one text from the same version; either arrival order gives the same
        /// text.
        #[test]
        fn concurrent_text_actions_converge(
            start in "[a-d😀]{0,6}",
            a in proptest::collection::vec((any::<bool>(), 0u32..10, 0u32..4, "[xy😀]{1,2}"), 1..4),
            b in proptest::collection::vec((any::<bool>(), 0u32..10, 0u32..4, "[zw]{1,2}"), 1..4),
        ) {
            let fold = |s: &str, edits: &[(bool, u32, u32, String)]| -> Vec<Change> {
                // Fold the random numbers into edits valid on the text as it evolves.
                let mut text = s.to_string();
                let mut out = Vec::new();
                for (ins, p, l, t) in edits {
                    let bounds: Vec<u32> = std::iter::once(0).chain(text.chars().scan(0u32, |acc, c| { *acc += c.len_utf16() as u32; Some(*acc) })).collect();
                    let i = *p as usize % bounds.len();
                    let edit = if *ins || bounds.len() == 1 {
                        super::text::TextEdit::Insert { pos: bounds[i], text: t.as_str().into() }
                    } else {
                        let j = (i + *l as usize).min(bounds.len() - 1);
                        super::text::TextEdit::Delete { pos: bounds[i], len: bounds[j] - bounds[i] }
                    };
                    text = edit.apply(&text).unwrap_or_default();
                    out.push(match edit {
                        super::text::TextEdit::Insert { pos, text } => Change::TextInsert { obj: "c1:a".into(), attr: "title".into(), pos, text },
                        super::text::TextEdit::Delete { pos, len } => Change::TextDelete { obj: "c1:a".into(), attr: "title".into(), pos, len },
                    });
                }
                out
            };
            let (ca, cb) = (fold(&start, &a), fold(&start, &b));
            let run = |first: (&str, &Vec<Change>), second: (&str, &Vec<Change>)| {
                let mut d = graph();
                let set = Change::Set { obj: "c1:a".into(), attr: "title".into(), value: start.as_str().into() };
                d.apply(&client("c1"), None, vec![set]).map_err(|r| r.to_string())?;
                let base = d.version();
                d.apply(&client(first.0), Some(base), first.1.clone()).map_err(|r| r.to_string())?;
                d.apply(&client(second.0), Some(base), second.1.clone()).map_err(|r| r.to_string())?;
                Ok::<Value, String>(value(&d, "c1:a", "title"))
            };
            let left = run(("ca", &ca), ("cb", &cb));
            let right = run(("cb", &cb), ("ca", &ca));
            prop_assert!(left.is_ok(), "{:?}", left);
            prop_assert_eq!(left, right);
        }
    }
}
