//! The codec's tests: decoding every client message and refusing bad ones, encoding, the store's
//! change records, reading deep JSON.

use super::server_messages::{json_depth, UpdateParts};
use super::*;
use crate::model::{AppliedChange, Value};

fn some_changes() -> Vec<AppliedChange> {
    vec![
        AppliedChange::Set { obj: "n".into(), attr: "title".into(), old: Value::Null, new: "a \"quoted\" é".into() },
        AppliedChange::Set { obj: "m".into(), attr: "count".into(), old: Value::Int(1), new: Value::Int(2) },
    ]
}

#[test]
fn an_update_around_encoded_changes_is_the_update_encoded_at_once() {
    let changes = some_changes();
    let text = encode_changes(&changes);
    for (origin, action, events_only) in [("server", None, false), ("c1", Some(7), false), ("c1", Some(8), true)] {
        assert_eq!(
            encode_update_of(3, origin, action, &text, events_only),
            encode_update(3, origin, action, &changes, events_only)
        );
    }
    assert_eq!(decode_changes(&text).map(|c| c.len()), Ok(2));
}

#[test]
fn an_update_splits_into_the_parts_the_store_keeps_and_back() {
    let changes = some_changes();
    let frame = encode_update(9, "c1", Some(4), &changes, false);
    let parts = split_update(&frame).expect("splits");
    assert_eq!(
        parts,
        UpdateParts { v: 9, origin: Some("c1".into()), action: Some(4), changes: encode_changes(&changes) }
    );
    let server = split_update(&encode_update(2, "server", None, &[], false)).expect("splits");
    assert_eq!((server.origin, server.action, server.changes.as_str()), (None, None, "[]"));
    assert!(split_update(&encode_update(2, "c1", None, &changes, true)).is_err(), "events are not logged");
    let reordered = r#"{"t":"update","changes":[],"v":2,"origin":"server"}"#;
    assert!(split_update(reordered).is_err());
    assert!(split_update(r#"{"t":"update","v":2"#).is_err());
}

#[test]
fn unknown_type_and_bad_message_are_told_apart() {
    assert_eq!(decode_client(r#"{"t":"frobnicate"}"#).map_err(|e| e.code()), Err("unknown_message"));
    assert_eq!(decode_client(r#"{"t":"action","id":1}"#).map_err(|e| e.code()), Err("bad_message"));
    assert_eq!(decode_client("not json").map_err(|e| e.code()), Err("bad_message"));
    assert_eq!(
        decode_client(r#"{"t":"action","id":"x","base":0,"changes":[]}"#).map_err(|e| e.code()),
        Err("bad_message")
    );
}

#[test]
fn json_depth_counts_nesting_outside_strings() {
    assert_eq!(json_depth(br#"1"#), 0);
    assert_eq!(json_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
    assert_eq!(json_depth(br#"["[[[{", "\"[[", []]"#), 2);
    let deep = format!("{}{}", "[".repeat(600), "]".repeat(600));
    assert!(serde_json::from_str::<Value>(&deep).is_err(), "serde_json alone stops at 128");
    assert_eq!(decode_trusted::<Value>(&deep).map(|v| v.depth()), Ok(600));
    let too_deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let e = decode_trusted::<Value>(&too_deep).map(|_| ()).unwrap_err();
    assert!(e.contains("2000 levels"), "{e}");
    assert!(decode_trusted::<Value>("[1] trailing").is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let m = decode_client(r#"{"t":"hello","protocol":1,"future":true}"#);
    assert_eq!(
        m,
        Ok(ClientMessage::Hello {
            protocol: 1,
            token: None,
            resume: None,
            batch: false,
            compact_snapshots: false,
            schema: None
        })
    );
    let m = decode_client(r#"{"t":"action","id":1,"base":0,"changes":[{"op":"delete","id":"x","later":1}]}"#);
    assert!(m.is_ok(), "{m:?}");
}

#[test]
fn client_messages_round_trip() {
    let msgs = [
        r#"{"t":"hello","protocol":1,"token":"k","resume":{"client":"c1","resume_token":"r","version":4}}"#,
        r#"{"t":"action","id":3,"base":2,"changes":[{"op":"text_insert","obj":"n","attr":"title","pos":1,"text":"😀"}]}"#,
        r#"{"t":"undo","id":4,"scope":"n"}"#,
        r#"{"t":"presence","state":{"x":1}}"#,
        r#"{"t":"call","id":9,"service":"s","args":[1]}"#,
    ];
    for text in msgs {
        let m = decode_client(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(decode_client(&encode_client(&m)), Ok(m));
    }
}

#[test]
fn a_batch_holds_messages_in_order() {
    let a = encode_presence("c1", None, &Value::Null);
    let b = encode_error("bad_message", "x");
    let batch = encode_batch([a.as_str(), b.as_str()].into_iter());
    match decode_server(&batch) {
        Ok(ServerMessage::Batch { m }) => {
            assert!(matches!(m.as_slice(), [ServerMessage::Presence { .. }, ServerMessage::Error { .. }]), "{m:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_messages_decode() {
    let update = encode_update(
        5,
        "c1",
        Some(2),
        &[AppliedChange::Set { obj: "n".into(), attr: "title".into(), old: Value::Null, new: "x".into() }],
        false,
    );
    assert_eq!(
        update,
        r#"{"t":"update","v":5,"origin":"c1","action":2,"changes":[{"op":"set","obj":"n","attr":"title","value":"x"}]}"#
    );
    assert!(matches!(decode_server(&update), Ok(ServerMessage::Update { v: 5, .. })));
    let result = encode_result(3, Err(("timeout", "too slow")));
    assert!(matches!(decode_server(&result), Ok(ServerMessage::Result { id: 3, error: Some(_), .. })));
}
