//! The shared cases of `tests/corpus/changes.json` (also run by `client-ts/src/tree.test.ts`):
//! each case's changes applied to the corpus's snapshot by the server's `Document` (as one
//! server transaction) give the case's tree or its reject code, and the Rust client's `Mirror`
//! (one change at a time) follows every accepted case to the server's tree.

use objectsync::client::Mirror;
use objectsync::model::{Actor, Change, DocSnapshot, Document, NodeSnapshot, Value};
use objectsync::presets::conformance;
use serde_json::Value as Json;
use std::sync::Arc;

const CORPUS: &str = include_str!("../corpus/changes.json");

struct Case {
    name: String,
    changes: Vec<Change>,
    error: Option<String>,
    values: Vec<(String, String, Value)>,
    children: Vec<(String, Vec<String>)>,
    absent: Vec<String>,
}

fn cases() -> (NodeSnapshot, Vec<Case>) {
    let corpus: Json = serde_json::from_str(CORPUS).expect("the corpus is JSON");
    let snapshot: NodeSnapshot = serde_json::from_value(corpus["snapshot"].clone()).expect("a snapshot");
    let strings = |v: &Json| -> Vec<String> {
        v.as_array().map(|a| a.iter().map(|s| s.as_str().expect("an id").to_owned()).collect()).unwrap_or_default()
    };
    let cases = corpus["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("a name").to_owned();
            let changes = serde_json::from_value(c["changes"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut values = Vec::new();
            for (obj, attrs) in c["values"].as_object().into_iter().flatten() {
                for (attr, v) in attrs.as_object().expect("attributes") {
                    let v: Value = serde_json::from_value(v.clone()).expect("a value");
                    values.push((obj.clone(), attr.clone(), v));
                }
            }
            let children =
                c["children"].as_object().into_iter().flatten().map(|(id, ids)| (id.clone(), strings(ids))).collect();
            Case {
                error: c["error"].as_str().map(str::to_owned),
                absent: strings(&c["absent"]),
                name,
                changes,
                values,
                children,
            }
        })
        .collect();
    (snapshot, cases)
}

fn document(root: &NodeSnapshot) -> Document {
    let snapshot = DocSnapshot { version: 0, next_server_id: 1, root: root.clone() };
    Document::from_snapshot(Arc::new(conformance::types()), Default::default(), snapshot)
        .expect("the corpus snapshot loads")
}

#[test]
fn the_server_applies_the_shared_cases() {
    let (root, cases) = cases();
    assert!(cases.len() >= 20, "the corpus has its cases");
    for case in cases {
        let mut doc = document(&root);
        let outcome = doc.apply(&Actor::Server, None, case.changes.clone()).map(|_| ()).map_err(|r| r.code());
        match &case.error {
            Some(code) => assert_eq!(outcome, Err(code.as_str()), "{}", case.name),
            None => assert_eq!(outcome, Ok(()), "{}", case.name),
        }
        if case.error.is_some() {
            continue;
        }
        let snapshot = doc.snapshot();
        let mirror = Mirror::from_snapshot(snapshot.clone());
        for (obj, attr, want) in &case.values {
            assert_eq!(mirror.value(obj, attr), Some(want), "{}: {obj}.{attr}", case.name);
        }
        for (id, want) in &case.children {
            let got: Vec<&str> =
                mirror.get(id).map(|n| n.children.iter().map(|c| c.as_str()).collect()).unwrap_or_default();
            assert_eq!(got, *want, "{}: children of {id}", case.name);
        }
        for id in &case.absent {
            assert!(mirror.get(id).is_none(), "{}: {id} is gone", case.name);
        }
    }
}

#[test]
fn the_rust_client_mirror_follows_the_shared_cases_as_the_server_does() {
    let (root, cases) = cases();
    for case in cases {
        let mut mirror = Mirror::from_snapshot(DocSnapshot { version: 0, next_server_id: 1, root: root.clone() });
        // The mirror follows what the server accepted: refused cases never reach it.
        if case.error.is_some() {
            continue;
        }
        case.changes.iter().try_for_each(|c| mirror.apply(c)).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut doc = document(&root);
        doc.apply(&Actor::Server, None, case.changes).unwrap_or_else(|r| panic!("{}: {r}", case.name));
        assert_eq!(mirror.to_snapshot(), doc.snapshot().root, "{}: the mirror and the server agree", case.name);
    }
}
