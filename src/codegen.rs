//! TypeScript for clients, generated from the server's own definitions.
//!
//! `objectsync codegen ts` ([`typescript`]): declarations for the registered SObject types: one
//! class per type with a typed getter per attribute, so a misspelt attribute is a compile error
//! in the front end, and a static runtime schema on each class (`typeName`, and `attrs`: every
//! attribute's wire kind and default). The `schema` export maps type names to those classes; the
//! client takes it once (`new ObjectSyncClient({ schema })`) to type `create` and to check each
//! change against the attribute's kind before sending it. `classes`, `defaults` and `TypeName`
//! stay for untyped use.
//!
//! `objectsync codegen protocol-ts` ([`protocol_typescript`]): the wire's constants, so that the
//! TypeScript client writes none of them by hand: the close codes of [`close`], every error code
//! the server sends ([`ModelError::CODES`], [`ProtocolError`]'s and the session's and room's
//! own) with its meaning, and the default limits a client runs into. The client keeps the output
//! in `client-ts/src/protocol/generated.ts`; a test there fails when it is stale.

use crate::limits::{ModelLimits, ServerLimits};
use crate::model::{AttrInfo, ModelError, TopicKind, TypeRegistry, ROOT_TYPE};
use crate::protocol::{self, close, ProtocolError};
use std::fmt::Write;

/// Members of the client's `SObject` a generated getter must not shadow.
const RESERVED: &[&str] = &[
    "id",
    "type",
    "parent",
    "children",
    "attr",
    "attrs",
    "string",
    "number",
    "bool",
    "dict",
    "list",
    "set",
    "ref",
    "refList",
    "refDict",
    "event",
    "delete",
    "moveTo",
    "onStart",
    "onDestroy",
    "listen",
    "listenDom",
    "own",
    "on",
    "off",
    "once",
    "emit",
    "constructor",
    "typeName",
];

fn topic_class(kind: TopicKind) -> (&'static str, &'static str) {
    match kind {
        TopicKind::String => ("StringTopic", "string"),
        TopicKind::Int | TopicKind::Float => ("NumberTopic", "number"),
        TopicKind::Bool => ("BoolTopic", "bool"),
        TopicKind::Dict => ("DictTopic", "dict"),
        TopicKind::List => ("ListTopic", "list"),
        TopicKind::Set => ("SetTopic", "set"),
        TopicKind::Event => ("EventTopic", "event"),
        TopicKind::Ref => ("RefTopic", "ref"),
        TopicKind::RefList => ("RefListTopic", "refList"),
        TopicKind::RefDict => ("RefDictTopic", "refDict"),
    }
}

/// A getter name for attribute `name`: itself if it is a plain identifier that shadows
/// nothing, else `attr_<name>` with other characters replaced.
fn getter(name: &str) -> String {
    let plain =
        name.chars().enumerate().all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if plain && !RESERVED.contains(&name) {
        return name.to_owned();
    }
    let cleaned: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("attr_{cleaned}")
}

fn class_name(type_name: &str) -> String {
    let cleaned: String = type_name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{cleaned}Object")
}

/// A JavaScript string literal for `s` (JSON's escaping is valid JavaScript).
fn js_string(s: &str) -> String {
    serde_json::to_string(s).expect("invariant: a string always serializes to JSON")
}

/// A value as a JSON literal. A `Value` always serializes to JSON: its keys are strings, and
/// serde_json writes any float (a non-finite one as `null`).
fn json_literal(v: &crate::model::Value) -> String {
    serde_json::to_string(v).expect("invariant: a Value always serializes to JSON")
}

/// A JavaScript property key for `name`: bare if it is an identifier, else a string literal.
fn js_key(name: &str) -> String {
    let ident = !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c == '$' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if ident {
        name.to_owned()
    } else {
        js_string(name)
    }
}

/// The entry of one attribute in a class's static `attrs`: its wire kind and, unless it is an
/// event (which holds nothing), its default as a JSON literal.
fn attr_entry(a: &AttrInfo<'_>) -> String {
    let kind = js_string(a.kind.name());
    if a.kind == TopicKind::Event {
        return format!("{}: {{ kind: {kind} }},", js_key(a.name));
    }
    let default = json_literal(a.default);
    format!("{}: {{ kind: {kind}, default: {default} }},", js_key(a.name))
}

/// The TypeScript module declaring `types`, importing the client from `import_from`.
pub fn typescript(types: &TypeRegistry, import_from: &str) -> String {
    let described = types.describe_with_defaults();
    let described: Vec<_> = described.iter().filter(|(n, _)| *n != ROOT_TYPE).collect();
    let mut kinds: Vec<&str> =
        described.iter().flat_map(|(_, attrs)| attrs.iter().map(|a| topic_class(a.kind).0)).collect();
    kinds.sort();
    kinds.dedup();
    let import_from = js_string(import_from);
    let mut out = String::new();
    let _ = writeln!(out, "// Generated by `objectsync codegen ts` from the server's registered SObject types.");
    let _ = writeln!(out, "// Do not edit: run the command again after changing the types.");
    let _ = writeln!(out, "import {{ SObject }} from {import_from};");
    if !kinds.is_empty() {
        let _ = writeln!(out, "import type {{ {} }} from {import_from};", kinds.join(", "));
    }
    for (type_name, attrs) in &described {
        write_class(&mut out, type_name, attrs);
    }
    write_maps(&mut out, &described, types);
    out
}

/// One type's class: its wire name, its attributes' kinds and defaults, a getter per attribute.
fn write_class(out: &mut String, type_name: &str, attrs: &[AttrInfo<'_>]) {
    let _ = writeln!(out);
    let list: Vec<String> = attrs.iter().map(|a| format!("{} ({})", a.name, a.kind)).collect();
    let _ = writeln!(
        out,
        "/** `{type_name}`: {}. */",
        if list.is_empty() { "no attributes".into() } else { list.join(", ") }
    );
    let _ = writeln!(out, "export class {} extends SObject {{", class_name(type_name));
    let _ = writeln!(out, "  /** The type name on the wire. */");
    let _ = writeln!(out, "  static readonly typeName = {};", js_string(type_name));
    let _ = writeln!(
        out,
        "  /** Each attribute's wire kind and default: what `create` accepts and the client checks edits against. */"
    );
    if attrs.is_empty() {
        let _ = writeln!(out, "  static readonly attrs = {{}} as const;");
    } else {
        let _ = writeln!(out, "  static readonly attrs = {{");
        for a in attrs {
            let _ = writeln!(out, "    {}", attr_entry(a));
        }
        let _ = writeln!(out, "  }} as const;");
    }
    for a in attrs {
        let (name, kind) = (a.name, a.kind);
        let (class, accessor) = topic_class(kind);
        let note = match kind {
            // The server's `Dict` and `List` hold any JSON: there is no element type to give.
            TopicKind::Dict => ": its values are any JSON (the server declares no value type)",
            TopicKind::List => ": its elements are any JSON (the server declares no element type)",
            _ => "",
        };
        let _ = writeln!(out, "  /** `{name}` ({kind}){note}. */");
        let _ = writeln!(out, "  get {}(): {class} {{", getter(name));
        let _ = writeln!(out, "    return this.{accessor}({});", js_string(name));
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");
}

/// The maps over every type: `schema` (and `classes`), `defaults`, and the `TypeName` union.
fn write_maps(out: &mut String, described: &[&(&str, Vec<AttrInfo<'_>>)], types: &TypeRegistry) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "/** The schema version of these types and their fingerprint: give `fingerprint` to `ObjectSyncClient` (its `hello` \
         sends it), and a server with other types refuses the client with close code 4009 (the `schema_mismatch` event). */"
    );
    let _ = writeln!(out, "export const schemaVersion = {};", types.schema_version());
    let _ = writeln!(out, "export const fingerprint = {};", js_string(types.fingerprint()));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "/** Each type's generated class by type name: the client's typed schema (`new ObjectSyncClient({{ schema }})`). */"
    );
    let _ = writeln!(out, "export const schema = {{");
    for (type_name, _) in described {
        let _ = writeln!(out, "  {}: {},", js_key(type_name), class_name(type_name));
    }
    let _ = writeln!(out, "}} as const;");
    let _ = writeln!(out);
    let _ = writeln!(out, "/** The same map as `schema`, for the untyped `classes` option of `ObjectSyncClient`. */");
    let _ = writeln!(out, "export const classes = schema;");
    let _ = writeln!(out);
    let _ = writeln!(out, "/** Each type's attribute defaults (for `register(type, cls, {{ defaults }})`). */");
    let _ = writeln!(out, "export const defaults = {{");
    for (type_name, attrs) in described {
        let fields: Vec<String> = attrs
            .iter()
            .filter(|a| a.kind != TopicKind::Event)
            .map(|a| format!("{}: {}", js_string(a.name), json_literal(a.default)))
            .collect();
        let _ = writeln!(out, "  {}: {{ {} }},", js_string(type_name), fields.join(", "));
    }
    let _ = writeln!(out, "}} as const;");
    let _ = writeln!(out);
    let _ = writeln!(out, "/** The registered type names. */");
    let names: Vec<String> = described.iter().map(|(n, _)| js_string(n)).collect();
    let _ =
        writeln!(out, "export type TypeName = {};", if names.is_empty() { "never".into() } else { names.join(" | ") });
}

/// The close codes of [`close`] by their Rust names (camelCase in TypeScript), each with what it
/// means to a client.
const CLOSE_CODES: &[(&str, u16, &str)] = &[
    ("NORMAL", close::NORMAL, "normal close (also: replaced by a newer connection of the same client)"),
    ("GOING_AWAY", close::GOING_AWAY, "the server is shutting down; reconnect later"),
    ("PROTOCOL_ERROR", close::PROTOCOL_ERROR, "a WebSocket protocol violation (RFC 6455)"),
    ("INVALID_DATA", close::INVALID_DATA, "a text message that is not valid UTF-8"),
    ("TOO_BIG", close::TOO_BIG, "a message larger than frame_bytes_max"),
    (
        "STORE_FAILED",
        close::STORE_FAILED,
        "the room's storage failed: updates not yet acknowledged are lost; reconnect later",
    ),
    ("BAD_HANDSHAKE", close::BAD_HANDSHAKE, "the first message was not a valid hello, or an unsupported protocol"),
    ("UNAUTHORIZED", close::UNAUTHORIZED, "the auth hook refused"),
    ("ROOM_UNAVAILABLE", close::ROOM_UNAVAILABLE, "refused by the room hook, or a room or client limit reached"),
    ("TOO_SLOW", close::TOO_SLOW, "the client did not read fast enough (its outbound queue filled); resume"),
    ("TOO_MANY_ERRORS", close::TOO_MANY_ERRORS, "more than errors_max bad or rate-limited messages"),
    ("IDLE", close::IDLE, "no traffic, not even pongs, for idle_timeout_ms"),
    ("TOKEN_EXPIRED", close::TOKEN_EXPIRED, "the grant expired (a token's exp): get a new token and resume; nothing is lost"),
    (
        "TOO_MANY_CONNECTIONS",
        close::TOO_MANY_CONNECTIONS,
        "too many connections from this address or of this user (connections_per_address_max, connections_per_user_max)",
    ),
    (
        "ROOM_MOVED",
        close::ROOM_MOVED,
        "in a cluster, the link to the node holding the room was interrupted; nothing acknowledged is lost: resume",
    ),
    (
        "SCHEMA_MISMATCH",
        close::SCHEMA_MISMATCH,
        "the client was built for other types than the server's (hello.schema): reload it rather than reconnect",
    ),
];

/// The codes the session and the room send besides the model's and the decoder's, each with the
/// message that carries it. A code the model has too gets this meaning after the model's.
const SESSION_CODES: &[(&str, &str)] = &[
    ("bad_id", "(reject, result) an action or call id above 2^53 - 1"),
    ("too_large", "(error) a presence state over presence_bytes_max"),
    ("read_only", "(reject) this client may not change anything"),
    ("duplicate_action", "(reject) an action id not above the last one processed"),
    ("rate_limited", "(error) too many messages per second: the message was dropped (it counts towards errors_max)"),
    ("no_such_service", "(result) no service of this name"),
    ("timeout", "(result) the service did not answer within service_timeout_ms"),
    ("service_failed", "(result) the service returned an error"),
];

/// The decoder's codes ([`ProtocolError::code`]) with their meanings. The match has no wildcard:
/// a new variant does not compile until it has a meaning here.
fn protocol_error_codes() -> Vec<(&'static str, &'static str)> {
    let meaning = |e: &ProtocolError| match e {
        ProtocolError::BadMessage { .. } => "(error) malformed JSON, missing or wrong fields",
        ProtocolError::UnknownMessage { .. } => "(error) an unknown message type `t`",
    };
    [ProtocolError::BadMessage { reason: String::new() }, ProtocolError::UnknownMessage { t: String::new() }]
        .iter()
        .map(|e| (e.code(), meaning(e)))
        .collect()
}

/// Every code the server sends in `reject.code`, `error.code` and `result.error.code`, once, with
/// its meaning: the model's, then the decoder's, then the session's (joined to a model code's
/// meaning when both send it).
fn error_codes() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = ModelError::CODES.iter().map(|&(c, m)| (c, m.to_owned())).collect();
    for (code, meaning) in protocol_error_codes().into_iter().chain(SESSION_CODES.iter().copied()) {
        match out.iter_mut().find(|(c, _)| *c == code) {
            Some((_, m)) => *m = format!("{m}; {meaning}"),
            None => out.push((code, meaning.to_owned())),
        }
    }
    out
}

/// The default limits a client runs into, by their names in `src/limits.rs`, each with what
/// happens past it (the server's `action_changes_max`: the one a client's action meets first).
fn client_limits() -> Vec<(&'static str, u64, &'static str)> {
    let (s, m) = (ServerLimits::default(), ModelLimits::default());
    let n = |v: usize| v as u64;
    vec![
        ("frame_bytes_max", n(s.frame_bytes_max), "Bytes in one WebSocket message (close 1009 past it)."),
        ("action_changes_max", n(s.action_changes_max), "Changes in one action (reject `too_many_changes`)."),
        (
            "messages_per_second_max",
            u64::from(s.messages_per_second_max),
            "Messages per second per client, sustained (error `rate_limited`).",
        ),
        (
            "message_burst_max",
            u64::from(s.message_burst_max),
            "Messages a client may send at once, above that rate (the size of its token bucket).",
        ),
        ("errors_max", u64::from(s.errors_max), "Bad or rate-limited messages per connection (close 4004 past it)."),
        ("presence_bytes_max", n(s.presence_bytes_max), "Serialized bytes of one presence state (error `too_large`)."),
        ("hello_timeout_ms", s.hello_timeout_ms, "Time a new connection has to send `hello`."),
        ("idle_timeout_ms", s.idle_timeout_ms, "A connection silent this long, not even pongs, is closed (4005)."),
        ("ping_interval_ms", s.ping_interval_ms, "How often the server pings."),
        ("service_timeout_ms", s.service_timeout_ms, "Time a service has to answer (result error `timeout`)."),
        ("id_len_max", n(m.id_len_max), "Bytes in one object id (reject `bad_id`)."),
        ("string_len_max", n(m.string_len_max), "Bytes in one string value (reject `too_large`)."),
        ("tree_depth_max", n(m.tree_depth_max), "Levels of the tree below the root (reject `too_deep`)."),
        ("value_depth_max", n(m.value_depth_max), "Nested lists and dicts in one value (reject `too_large`)."),
        ("id_max", protocol::ID_MAX, "The largest action or call id, 2^53 - 1 (reject or result `bad_id`)."),
    ]
}

/// `GOING_AWAY` as `goingAway`.
fn camel_case(rust_name: &str) -> String {
    let mut out = String::new();
    for (i, word) in rust_name.split('_').enumerate() {
        let word = word.to_ascii_lowercase();
        let mut chars = word.chars();
        match chars.next() {
            Some(first) if i > 0 => out.extend(first.to_uppercase().chain(chars)),
            _ => out.push_str(&word),
        }
    }
    out
}

/// What opens the generated module.
const PROTOCOL_HEADER: &str = "\
// Generated by `objectsync codegen protocol-ts` from the server's wire constants: the close
// codes of `protocol::close`, the error codes (`ModelError::CODES`, `ProtocolError`, the
// session's and the room's) and the default limits a client runs into (`src/limits.rs`).
// Do not edit: run `objectsync codegen protocol-ts --out client-ts/src/protocol/generated.ts`.
";

/// The TypeScript module of the wire's constants (`objectsync codegen protocol-ts`): the protocol
/// version, the close codes by name and their meanings by number, every error code with its
/// meaning, and the default limits a client runs into.
pub fn protocol_typescript() -> String {
    let mut out = String::from(PROTOCOL_HEADER);
    let _ = writeln!(out);
    let _ = writeln!(out, "/** The protocol version the server speaks (`hello.protocol`). */");
    let _ = writeln!(out, "export const PROTOCOL_VERSION = {};", protocol::PROTOCOL_VERSION);
    write_close_codes(&mut out);
    write_error_codes(&mut out);
    write_limits(&mut out);
    out
}

/// `CLOSE_CODES` (name to number, the meaning in each doc comment) and `CLOSE_CODE_MEANINGS`
/// (number to meaning), in the order of the numbers.
fn write_close_codes(out: &mut String) {
    let mut closes: Vec<&(&str, u16, &str)> = CLOSE_CODES.iter().collect();
    closes.sort_by_key(|(_, code, _)| *code);
    let _ = writeln!(out);
    let _ =
        writeln!(out, "/** The WebSocket close codes the server uses, by name (docs/protocol.md, \"Close codes\"). */");
    let _ = writeln!(out, "export const CLOSE_CODES = {{");
    for (name, code, meaning) in &closes {
        let _ = writeln!(out, "  /** {code}: {meaning}. */");
        let _ = writeln!(out, "  {}: {code},", camel_case(name));
    }
    let _ = writeln!(out, "}} as const;");
    let _ = writeln!(out);
    let _ = writeln!(out, "/** What each close code of {{@link CLOSE_CODES}} means, by number. */");
    let _ = writeln!(out, "export const CLOSE_CODE_MEANINGS: {{ readonly [code: number]: string }} = {{");
    for (_, code, meaning) in &closes {
        let _ = writeln!(out, "  {code}: {},", js_string(meaning));
    }
    let _ = writeln!(out, "}};");
}

/// `ERROR_CODES`: code to meaning.
fn write_error_codes(out: &mut String) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "/** Every code the server sends in `reject.code`, `error.code` and `result.error.code`, with what it means. */"
    );
    let _ = writeln!(out, "export const ERROR_CODES = {{");
    for (code, meaning) in error_codes() {
        let _ = writeln!(out, "  {}: {},", js_key(code), js_string(&meaning));
    }
    let _ = writeln!(out, "}} as const;");
}

/// `DEFAULT_LIMITS`: name to default, the meaning in each doc comment.
fn write_limits(out: &mut String) {
    let _ = writeln!(out);
    let _ = writeln!(out, "/** The server's default limits a client runs into (a server may configure others). */");
    let _ = writeln!(out, "export const DEFAULT_LIMITS = {{");
    for (name, value, meaning) in client_limits() {
        let _ = writeln!(out, "  /** {meaning} */");
        let _ = writeln!(out, "  {name}: {value},");
    }
    let _ = writeln!(out, "}} as const;");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttrSpec;

    #[test]
    fn declares_a_class_per_type_with_typed_getters() {
        let ts = typescript(&crate::presets::demo::types(), "objectsync-client");
        assert!(ts.contains("export class NodeObject extends SObject {"), "{ts}");
        assert!(ts.contains("  get title(): StringTopic {\n    return this.string(\"title\");"), "{ts}");
        assert!(ts.contains("  get pos(): DictTopic {"), "{ts}");
        assert!(ts.contains("  get from(): RefTopic {"), "{ts}");
        assert!(ts.contains(r#""Node": { "title": "node", "#), "{ts}");
        assert!(ts.contains(r#"export type TypeName = "Graph" | "Node" | "Edge" | "Div" | "Text";"#), "{ts}");
        assert!(!ts.contains("class RootObject"));
    }

    #[test]
    fn each_class_carries_its_kinds_and_defaults() {
        let ts = typescript(&crate::presets::demo::types(), "objectsync-client");
        let node = concat!(
            "  static readonly typeName = \"Node\";\n",
            "  /** Each attribute's wire kind and default: what `create` accepts and the client checks edits against. */\n",
            "  static readonly attrs = {\n",
            "    title: { kind: \"string\", default: \"node\" },\n",
            "    pos: { kind: \"dict\", default: {\"x\":100,\"y\":100} },\n",
            "    color: { kind: \"string\", default: \"#4f7cff\" },\n",
            "    ports: { kind: \"list\", default: [\"in\",\"out\"] },\n",
            "  } as const;\n",
        );
        assert!(ts.contains(node), "{ts}");
        assert!(ts.contains("    from: { kind: \"ref\", default: null },\n"), "{ts}");
        assert!(
            ts.contains("  /** `pos` (dict): its values are any JSON (the server declares no value type). */"),
            "{ts}"
        );
        let schema = "export const schema = {\n  Graph: GraphObject,\n  Node: NodeObject,\n  Edge: EdgeObject,\n  \
                      Div: DivObject,\n  Text: TextObject,\n} as const;\n";
        assert!(ts.contains(schema), "{ts}");
        assert!(ts.contains("export const classes = schema;"), "{ts}");
        let fingerprint = format!("export const fingerprint = \"{}\";\n", crate::presets::demo::types().fingerprint());
        assert!(ts.contains(&fingerprint) && ts.contains("export const schemaVersion = 1;\n"), "{ts}");
    }

    #[test]
    fn every_kind_is_named_as_on_the_wire() {
        let mut types = TypeRegistry::new();
        let kinds = [
            ("s", TopicKind::String),
            ("i", TopicKind::Int),
            ("f", TopicKind::Float),
            ("b", TopicKind::Bool),
            ("d", TopicKind::Dict),
            ("l", TopicKind::List),
            ("set_", TopicKind::Set),
            ("ping", TopicKind::Event),
            ("r", TopicKind::Ref),
            ("rl", TopicKind::RefList),
            ("rd", TopicKind::RefDict),
            ("font-size", TopicKind::Int),
        ];
        types.define("All", kinds.iter().map(|&(name, kind)| AttrSpec::new(name, kind, None)).collect());
        types.define("Empty", Vec::new());
        let ts = typescript(&types, "objectsync-client");
        for (name, kind) in kinds.iter().filter(|(_, k)| *k != TopicKind::Event) {
            let default = serde_json::to_string(&kind.empty_value()).unwrap_or_default();
            let entry = format!("    {}: {{ kind: \"{}\", default: {default} }},\n", js_key(name), kind.name());
            assert!(ts.contains(&entry), "{entry} in {ts}");
        }
        // Events hold nothing, so they have no default (and `create` cannot give them).
        assert!(ts.contains("    ping: { kind: \"event\" },\n"), "{ts}");
        assert!(ts.contains("    rl: { kind: \"ref_list\", default: [] },\n"), "{ts}");
        assert!(ts.contains("    \"font-size\": { kind: \"int\", default: 0 },\n"), "{ts}");
        assert!(ts.contains("  get attr_font_size(): NumberTopic {\n    return this.number(\"font-size\");"), "{ts}");
        assert!(ts.contains("  static readonly attrs = {} as const;"), "{ts}");
        assert!(ts.contains("\"All\": { \"s\": \"\", \"i\": 0, "), "{ts}");
    }

    #[test]
    fn names_that_would_shadow_the_client_are_prefixed() {
        assert_eq!(getter("parent"), "attr_parent");
        assert_eq!(getter("font-size"), "attr_font_size");
        assert_eq!(getter("x1"), "x1");
    }

    #[test]
    fn keys_are_bare_only_when_they_are_identifiers() {
        assert_eq!(js_key("title"), "title");
        assert_eq!(js_key("$x_1"), "$x_1");
        assert_eq!(js_key("font-size"), "\"font-size\"");
        assert_eq!(js_key("1x"), "\"1x\"");
        assert_eq!(js_key(""), "\"\"");
        assert_eq!(js_string("a\"b\u{2028}"), "\"a\\\"b\u{2028}\"");
    }
    /// The `pub const NAME: u16 = N;` lines of `pub mod close` in src/protocol/mod.rs.
    fn close_consts_in_source() -> Vec<(String, u16)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/protocol/mod.rs");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let start = text.find("pub mod close {").expect("src/protocol/mod.rs has `pub mod close {`");
        let body = &text[start..start + text[start..].find("\n}").expect("the end of `pub mod close`")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .map(|l| {
                let (name, rest) = l.split_once(": u16 = ").unwrap_or_else(|| panic!("a close code of u16: {l}"));
                (name.to_owned(), rest.trim_end_matches(';').parse().unwrap_or_else(|e| panic!("{l}: {e}")))
            })
            .collect()
    }

    #[test]
    fn the_close_codes_are_those_of_protocol_close() {
        let mut table: Vec<(String, u16)> = CLOSE_CODES.iter().map(|(n, c, _)| ((*n).to_owned(), *c)).collect();
        let mut source = close_consts_in_source();
        table.sort();
        source.sort();
        assert_eq!(table, source, "CLOSE_CODES must list every constant of protocol::close, by its name");
    }

    #[test]
    fn the_error_codes_are_those_of_the_protocol_doc() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
        let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let start = doc.find("## Error codes").expect("docs/protocol.md has an Error codes section");
        let section = &doc[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let mut documented: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| l.split('|').nth(1).unwrap_or("").split('`').skip(1).step_by(2))
            .collect();
        let mut generated: Vec<&str> = error_codes().iter().map(|(c, _)| *c).collect();
        documented.sort_unstable();
        generated.sort_unstable();
        assert_eq!(generated, documented, "the error codes generated and those of docs/protocol.md");
    }

    #[test]
    fn protocol_constants_for_typescript() {
        let ts = protocol_typescript();
        assert!(ts.contains("export const PROTOCOL_VERSION = 1;\n"), "{ts}");
        assert!(ts.contains("  /** 1011: the room's storage failed: updates not yet acknowledged are lost; reconnect later. */\n  storeFailed: 1011,\n"), "{ts}");
        assert!(ts.contains("  goingAway: 1001,\n"), "{ts}");
        assert!(ts.contains("  tooManyErrors: 4004,\n"), "{ts}");
        assert!(ts.contains("  4001: \"the auth hook refused\",\n"), "{ts}");
        assert!(
            ts.contains("  no_such_object: \"no object has this id (it never existed, or was deleted)\",\n"),
            "{ts}"
        );
        assert!(ts.contains("  bad_id: \"the object id is malformed or not the actor's to make (it lacks the client's prefix); (reject, result) an action or call id above 2^53 - 1\",\n"), "{ts}");
        assert!(ts.contains("  bad_message: \"(error) malformed JSON, missing or wrong fields\",\n"), "{ts}");
        assert!(ts.contains("  frame_bytes_max: 1048576,\n"), "{ts}");
        assert!(ts.contains("  id_max: 9007199254740991,\n"), "{ts}");
        assert_eq!(ts.matches("\n  /** 1").count() + ts.matches("\n  /** 4").count(), CLOSE_CODES.len());
        let comments = CLOSE_CODES.iter().map(|(_, _, m)| *m).chain(client_limits().into_iter().map(|(_, _, m)| m));
        for text in comments {
            assert!(!text.contains("*/") && !text.contains('\n'), "{text} breaks a doc comment");
        }
        for (name, value, _) in client_limits() {
            assert!(value <= crate::model::JSON_SAFE_INT_MAX, "{name} = {value} is not exact in JavaScript");
        }
    }

    #[test]
    fn rust_names_become_camel_case() {
        assert_eq!(camel_case("NORMAL"), "normal");
        assert_eq!(camel_case("GOING_AWAY"), "goingAway");
        assert_eq!(camel_case("TOO_MANY_ERRORS"), "tooManyErrors");
    }
}
