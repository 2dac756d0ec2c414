/**
 * Wire protocol v1 (docs/protocol.md): the types of every message and change, and the decoder
 * of server messages.
 *
 * This module is the only one that knows the JSON shape of the wire. It holds no state. Wire
 * input is `unknown` until {@link decodeServerMessage} has narrowed it; the decoder never throws,
 * ignores unknown fields (a later minor version may add some) and answers malformed input with a
 * {@link DecodeError} that says where it went wrong.
 */

/** The protocol version this client speaks (`hello.protocol`). */
export const PROTOCOL_VERSION = 1;

/** Any JSON value. Values read from the tree are frozen: treat them as read-only. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** One object with its attributes and subtree, as in snapshots and `create` changes. */
export interface NodeSnapshot {
  /** Object id. */
  id: string;
  /** Registered type name. */
  type: string;
  /** Every stored attribute by name (absent if the type has none). */
  attrs?: JsonObject;
  /** Children in order (absent if none). */
  children?: NodeSnapshot[];
}

/** The whole document at `version` (`welcome.snapshot`). */
export interface Snapshot {
  /** The version the snapshot shows. */
  version: number;
  /** The server's id counter (server code makes `s:<n>` ids). */
  next_server_id: number;
  /** The root object (`id: "root"`, type `Root`). */
  root: NodeSnapshot;
}

/** Create an object (and its given children) under `parent` at `index` (the end if absent). */
export interface CreateChange {
  op: "create";
  id: string;
  type: string;
  parent: string;
  index?: number;
  attrs?: JsonObject;
  children?: NodeSnapshot[];
}
/** Delete an object and its subtree. */
export interface DeleteChange {
  op: "delete";
  id: string;
}
/** Move an object under `parent` to final position `index` (the end if absent). */
export interface MoveChange {
  op: "move";
  id: string;
  parent: string;
  index?: number;
}
/** Replace an attribute's value (any stored kind). */
export interface SetChange {
  op: "set";
  obj: string;
  attr: string;
  value: JsonValue;
}
/** Add a number to an `int` or `float` attribute. */
export interface AddChange {
  op: "add";
  obj: string;
  attr: string;
  value: number;
}
/** Insert text at a UTF-16 position of a `string` attribute. */
export interface TextInsertChange {
  op: "text_insert";
  obj: string;
  attr: string;
  pos: number;
  text: string;
}
/** Delete `len` UTF-16 units at `pos` of a `string` attribute. */
export interface TextDeleteChange {
  op: "text_delete";
  obj: string;
  attr: string;
  pos: number;
  len: number;
}
/** Set one key of a `dict` or `ref_dict` attribute. */
export interface DictSetChange {
  op: "dict_set";
  obj: string;
  attr: string;
  key: string;
  value: JsonValue;
}
/** Remove one key of a `dict` or `ref_dict` attribute. */
export interface DictRemoveChange {
  op: "dict_remove";
  obj: string;
  attr: string;
  key: string;
}
/** Insert into a `list` or `ref_list` at `index` (the end if absent). */
export interface ListInsertChange {
  op: "list_insert";
  obj: string;
  attr: string;
  index?: number;
  value: JsonValue;
}
/** Remove the element at `index` of a `list` or `ref_list`. */
export interface ListRemoveChange {
  op: "list_remove";
  obj: string;
  attr: string;
  index: number;
}
/** Move an element of a `list` or `ref_list` from `from` to its final position `to`. */
export interface ListMoveChange {
  op: "list_move";
  obj: string;
  attr: string;
  from: number;
  to: number;
}
/** Replace the element at `index` of a `list` or `ref_list`. */
export interface ListSetChange {
  op: "list_set";
  obj: string;
  attr: string;
  index: number;
  value: JsonValue;
}
/** Add an element to a `set` (refused if present). */
export interface SetAddChange {
  op: "set_add";
  obj: string;
  attr: string;
  value: SetElement;
}
/** Remove an element from a `set` (refused if absent). */
export interface SetRemoveChange {
  op: "set_remove";
  obj: string;
  attr: string;
  value: SetElement;
}
/** Emit a one-shot event on an `event` attribute. */
export interface EmitChange {
  op: "emit";
  obj: string;
  attr: string;
  args?: JsonValue;
}

/** An element of a `set` topic: a string, an integer or a boolean. */
export type SetElement = string | number | boolean;

/** One change, as a client asks for it or as an `update` reports it. */
export type Change =
  | CreateChange
  | DeleteChange
  | MoveChange
  | SetChange
  | AddChange
  | TextInsertChange
  | TextDeleteChange
  | DictSetChange
  | DictRemoveChange
  | ListInsertChange
  | ListRemoveChange
  | ListMoveChange
  | ListSetChange
  | SetAddChange
  | SetRemoveChange
  | EmitChange;

/** Changes that name an attribute (`obj` + `attr`). */
export type AttrChange = Exclude<Change, CreateChange | DeleteChange | MoveChange>;

/** Whether a change targets an attribute (rather than the tree). */
export function isAttrChange(c: Change): c is AttrChange {
  return c.op !== "create" && c.op !== "delete" && c.op !== "move";
}

// ---------------------------------------------------------------------------------------------
// Client -> server

/** Resume data of a reconnecting client (`hello.resume`). */
export interface Resume {
  client: string;
  resume_token: string;
  version: number;
}
/** First message of a connection. */
export interface HelloMessage {
  t: "hello";
  protocol: number;
  token?: string;
  resume?: Resume;
  /** The client accepts `batch` frames (several server messages in one; see {@link BatchMessage}). */
  batch?: boolean;
  /** The client accepts snapshots in the compact form (decoded into the nested one here). */
  compact_snapshots?: boolean;
}
/** A batch of changes applied atomically, in order. */
export interface ActionMessage {
  t: "action";
  id: number;
  base: number;
  changes: Change[];
}
/** Undo (or redo) this client's latest step touching `scope` (anywhere if absent). */
export interface UndoRedoMessage {
  t: "undo" | "redo";
  id: number;
  scope?: string;
}
/** Sets this client's ephemeral presence state (`null` clears it). */
export interface SetPresenceMessage {
  t: "presence";
  state: JsonValue;
}
/** Calls a service registered on the server. */
export interface CallMessage {
  t: "call";
  id: number;
  service: string;
  args: JsonValue;
}
/** Every message a client sends. */
export type ClientMessage =
  | HelloMessage
  | ActionMessage
  | UndoRedoMessage
  | SetPresenceMessage
  | CallMessage;

/** Encodes a client message as the text of one frame. */
export function encodeClientMessage(msg: ClientMessage): string {
  return JSON.stringify(msg);
}

// ---------------------------------------------------------------------------------------------
// Server -> client

/** The server's answer to `hello`. */
export interface WelcomeMessage {
  t: "welcome";
  protocol: number;
  /** This connection's client id. */
  client: string;
  /** Keep it to resume as the same client later. */
  resume_token: string;
  /** The room's version now. */
  version: number;
  /** The highest action id of this client the room has processed (0 if none). */
  acked: number;
  /** Present when the client must (re)load the whole tree. */
  snapshot?: Snapshot;
  /** Every other client's presence state, by client id. */
  presence: Record<string, JsonValue>;
  /** Whether this client may not change anything. */
  read_only: boolean;
  /** Undo steps the room holds for this client (0 after the room unloaded or the server
   * restarted: undo histories live in the room's memory). */
  undo_steps: number;
  /** Redo steps the room holds for this client. */
  redo_steps: number;
}
/** One accepted state transition (version `v`). */
export interface UpdateMessage {
  t: "update";
  v: number;
  /** The client id that caused it, `"server"` for server code. */
  origin: string;
  /** The origin's action id (absent for server code). */
  action?: number;
  changes: Change[];
}
/** An accepted action that only emitted events (takes no version). */
export interface EventsMessage {
  t: "events";
  v: number;
  origin: string;
  action?: number;
  changes: Change[];
}
/** Sent only to the sender: action `action` changed nothing. */
export interface RejectMessage {
  t: "reject";
  action: number;
  code: string;
  reason: string;
  /** Index of the failing change, when one is to blame. */
  change?: number;
}
/** Another client's presence changed; `null` when it cleared it or left. */
export interface PresenceMessage {
  t: "presence";
  client: string;
  state: JsonValue;
}
/** A service error (`result.error`). */
export interface WireError {
  code: string;
  reason: string;
}
/** The answer to a `call`: either `ok` or `error`. */
export type ResultMessage =
  | { t: "result"; id: number; ok: JsonValue; error?: undefined }
  | { t: "result"; id: number; ok?: undefined; error: WireError };
/** A message could not be understood; nothing was applied. */
export interface ErrorMessage {
  t: "error";
  code: string;
  reason: string;
}
/** A message a `batch` may carry: any server message but `welcome` and `batch`. */
export type BatchedMessage =
  | UpdateMessage
  | EventsMessage
  | RejectMessage
  | PresenceMessage
  | ResultMessage
  | ErrorMessage;
/**
 * Several server messages in one frame, only to clients whose `hello` said `batch: true`: to be
 * handled exactly as if they had arrived one by one, in order.
 */
export interface BatchMessage {
  t: "batch";
  /** The messages, in order. */
  m: BatchedMessage[];
}
/** Every message the server sends. */
export type ServerMessage = WelcomeMessage | BatchedMessage | BatchMessage;

/** The `t` of a server message. */
export type ServerMessageType = ServerMessage["t"];

/** Error codes of `reject.code`, `error.code` and `result.error.code` (docs/protocol.md). */
export type ErrorCode =
  | "no_such_object"
  | "no_such_attribute"
  | "no_such_type"
  | "wrong_kind"
  | "duplicate_id"
  | "bad_id"
  | "out_of_range"
  | "splits_character"
  | "no_such_key"
  | "set_element"
  | "overflow"
  | "dangling_ref"
  | "cycle"
  | "root_immutable"
  | "too_deep"
  | "too_many_changes"
  | "reaction_depth"
  | "too_large"
  | "invalid"
  | "denied"
  | "read_only"
  | "bad_base"
  | "text_base_too_old"
  | "text_base_stale"
  | "list_base_stale"
  | "list_base_too_old"
  | "empty_action"
  | "duplicate_action"
  | "nothing_to_undo"
  | "undo_conflict"
  | "custom"
  | "bad_message"
  | "unknown_message"
  | "rate_limited"
  | "no_such_service"
  | "timeout"
  | "service_failed";

/** WebSocket close codes the server uses (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooLarge: 1009,
  badHandshake: 4000,
  unauthorized: 4001,
  roomUnavailable: 4002,
  tooSlow: 4003,
  tooManyBadMessages: 4004,
  idle: 4005,
} as const;

/** Why a frame could not be decoded. Returned, never thrown. */
export class DecodeError {
  /** Where and what: e.g. `update.changes[2].pos: expected a non-negative integer`. */
  readonly reason: string;
  /** The `t` of the message when it was readable (an unknown one included). */
  readonly messageType: string | undefined;
  constructor(reason: string, messageType?: string) {
    this.reason = reason;
    this.messageType = messageType;
  }
}

/**
 * Decodes the text of one server frame. Never throws: malformed JSON, a missing or mistyped
 * field, an unknown `t` or an unknown change `op` give a {@link DecodeError}. Unknown fields are
 * ignored. A `batch` is all or nothing: each of its messages is decoded as a frame of its own
 * would be, and a malformed one, a `welcome` or a nested `batch` make the whole frame an error
 * (its reason names the message, e.g. `batch.m[3].changes[0].pos: ...`).
 */
export function decodeServerMessage(text: string): ServerMessage | DecodeError {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return new DecodeError(`malformed JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return decodeMessage(raw);
  } catch (e) {
    if (e instanceof Invalid) return new DecodeError(e.message, e.messageType);
    // Only reachable through a bug in the decoder; still never throw on input.
    return new DecodeError(`decoder failure: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Decodes one change from parsed JSON (`path` names it in errors). */
export function decodeChange(raw: unknown, path = "change"): Change | DecodeError {
  try {
    return change(raw, path);
  } catch (e) {
    if (e instanceof Invalid) return new DecodeError(e.message);
    return new DecodeError(`decoder failure: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder internals: small readers that throw `Invalid`, caught at the two entry points above.

class Invalid extends Error {
  messageType: string | undefined;
  constructor(message: string, messageType?: string) {
    super(message);
    this.messageType = messageType;
  }
}

type Obj = { readonly [key: string]: unknown };

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function field(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new Invalid(`${path}: expected an object`);
  return v;
}

function str(o: Obj, key: string, path: string): string {
  const v = field(o, key);
  if (typeof v !== "string") throw new Invalid(`${path}.${key}: expected a string`);
  return v;
}

function optStr(o: Obj, key: string, path: string): string | undefined {
  return field(o, key) === undefined ? undefined : str(o, key, path);
}

/** A non-negative integer exactly representable in JavaScript. */
function uint(o: Obj, key: string, path: string): number {
  const v = field(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new Invalid(`${path}.${key}: expected a non-negative integer`);
  }
  return v;
}

function optUint(o: Obj, key: string, path: string): number | undefined {
  const v = field(o, key);
  return v === undefined || v === null ? undefined : uint(o, key, path);
}

function int(o: Obj, key: string, path: string): number {
  const v = field(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new Invalid(`${path}.${key}: expected an integer`);
  }
  return v;
}

function bool(o: Obj, key: string, path: string, dflt: boolean): boolean {
  const v = field(o, key);
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") throw new Invalid(`${path}.${key}: expected a boolean`);
  return v;
}

/** Whatever `JSON.parse` produced is JSON; this only narrows the static type. */
function json(v: unknown, path: string): JsonValue {
  if (v === undefined) throw new Invalid(`${path}: missing value`);
  return v as JsonValue;
}

function jsonObject(v: unknown, path: string): JsonObject {
  return obj(v, path) as JsonObject;
}

function setElement(o: Obj, key: string, path: string): SetElement {
  const v = field(o, key);
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  throw new Invalid(`${path}.${key}: expected a string, an integer or a boolean`);
}

function array(o: Obj, key: string, path: string): readonly unknown[] {
  const v = field(o, key);
  if (!Array.isArray(v)) throw new Invalid(`${path}.${key}: expected an array`);
  return v;
}

/** Snapshots nest; this bound keeps hostile input from exhausting the stack. */
const NODE_DEPTH_MAX = 256;

function node(raw: unknown, path: string, depth: number): NodeSnapshot {
  if (depth > NODE_DEPTH_MAX) throw new Invalid(`${path}: nested deeper than ${NODE_DEPTH_MAX}`);
  const o = obj(raw, path);
  const n: NodeSnapshot = { id: str(o, "id", path), type: str(o, "type", path) };
  const attrs = field(o, "attrs");
  if (attrs !== undefined && attrs !== null) n.attrs = jsonObject(attrs, `${path}.attrs`);
  n.children = children(o, path, depth);
  if (n.children.length === 0) delete n.children;
  return n;
}

function children(o: Obj, path: string, depth: number): NodeSnapshot[] {
  const v = field(o, "children");
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Invalid(`${path}.children: expected an array`);
  return v.map((c: unknown, i) => node(c, `${path}.children[${i}]`, depth + 1));
}

function snapshot(raw: unknown, path: string): Snapshot {
  const o = obj(raw, path);
  const types = field(o, "types");
  const root = field(o, "root");
  return {
    version: uint(o, "version", path),
    next_server_id: uint(o, "next_server_id", path),
    root:
      types === undefined
        ? node(root, `${path}.root`, 0)
        : compactNode(root, compactTypes(types, `${path}.types`), `${path}.root`, 0),
  };
}

/** A compact snapshot's types: name and attribute names, by index. */
interface CompactType {
  name: string;
  attrs: string[];
}

function compactTypes(raw: unknown, path: string): CompactType[] {
  if (!Array.isArray(raw)) throw new Invalid(`${path}: expected an array`);
  return raw.map((t: unknown, i) => {
    const p = `${path}[${i}]`;
    if (!Array.isArray(t) || t.length !== 2) throw new Invalid(`${p}: expected [name, [attribute names]]`);
    const [name, attrs] = t as [unknown, unknown];
    if (typeof name !== "string") throw new Invalid(`${p}[0]: expected a string`);
    if (!Array.isArray(attrs) || !attrs.every((a) => typeof a === "string")) {
      throw new Invalid(`${p}[1]: expected an array of strings`);
    }
    return { name, attrs: attrs as string[] };
  });
}

/** `[id, type index, values, children?]` of the compact form, as the nested NodeSnapshot. */
function compactNode(raw: unknown, types: CompactType[], path: string, depth: number): NodeSnapshot {
  if (depth > NODE_DEPTH_MAX) throw new Invalid(`${path}: nested deeper than ${NODE_DEPTH_MAX}`);
  if (!Array.isArray(raw) || raw.length < 3 || raw.length > 4) {
    throw new Invalid(`${path}: expected [id, type index, values, children?]`);
  }
  const [id, t, values, kids] = raw as [unknown, unknown, unknown, unknown];
  if (typeof id !== "string") throw new Invalid(`${path}[0]: expected a string`);
  const type = typeof t === "number" ? types[t] : undefined;
  if (type === undefined) throw new Invalid(`${path}[1]: no type at index ${String(t)}`);
  if (!Array.isArray(values) || values.length !== type.attrs.length) {
    throw new Invalid(`${path}[2]: expected ${type.attrs.length} attribute values`);
  }
  const n: NodeSnapshot = { id, type: type.name };
  if (type.attrs.length > 0) {
    const attrs: JsonObject = {};
    type.attrs.forEach((name, i) => {
      // defineProperty: a name like "__proto__" stays data, as JSON.parse would keep it.
      const value = json(values[i], `${path}[2][${i}]`);
      Object.defineProperty(attrs, name, { value, enumerable: true, writable: true, configurable: true });
    });
    n.attrs = attrs;
  }
  if (kids !== undefined) {
    if (!Array.isArray(kids)) throw new Invalid(`${path}[3]: expected an array`);
    if (kids.length > 0) n.children = kids.map((c: unknown, i) => compactNode(c, types, `${path}[3][${i}]`, depth + 1));
  }
  return n;
}

function change(raw: unknown, path: string): Change {
  const o = obj(raw, path);
  const op = str(o, "op", path);
  switch (op) {
    case "create": {
      const c: CreateChange = {
        op,
        id: str(o, "id", path),
        type: str(o, "type", path),
        parent: str(o, "parent", path),
      };
      const index = optUint(o, "index", path);
      if (index !== undefined) c.index = index;
      const attrs = field(o, "attrs");
      if (attrs !== undefined && attrs !== null) c.attrs = jsonObject(attrs, `${path}.attrs`);
      const kids = children(o, path, 1);
      if (kids.length > 0) c.children = kids;
      return c;
    }
    case "delete":
      return { op, id: str(o, "id", path) };
    case "move": {
      const c: MoveChange = { op, id: str(o, "id", path), parent: str(o, "parent", path) };
      const index = optUint(o, "index", path);
      if (index !== undefined) c.index = index;
      return c;
    }
    case "set":
      return { op, ...target(o, path), value: json(field(o, "value"), `${path}.value`) };
    case "add": {
      const v = field(o, "value");
      if (typeof v !== "number") throw new Invalid(`${path}.value: expected a number`);
      return { op, ...target(o, path), value: v };
    }
    case "text_insert":
      return { op, ...target(o, path), pos: uint(o, "pos", path), text: str(o, "text", path) };
    case "text_delete":
      return { op, ...target(o, path), pos: uint(o, "pos", path), len: uint(o, "len", path) };
    case "dict_set":
      return {
        op,
        ...target(o, path),
        key: str(o, "key", path),
        value: json(field(o, "value"), `${path}.value`),
      };
    case "dict_remove":
      return { op, ...target(o, path), key: str(o, "key", path) };
    case "list_insert": {
      const c: ListInsertChange = {
        op,
        ...target(o, path),
        value: json(field(o, "value"), `${path}.value`),
      };
      const index = optUint(o, "index", path);
      if (index !== undefined) c.index = index;
      return c;
    }
    case "list_remove":
      return { op, ...target(o, path), index: uint(o, "index", path) };
    case "list_move":
      return { op, ...target(o, path), from: uint(o, "from", path), to: uint(o, "to", path) };
    case "list_set":
      return {
        op,
        ...target(o, path),
        index: uint(o, "index", path),
        value: json(field(o, "value"), `${path}.value`),
      };
    case "set_add":
    case "set_remove":
      return { op, ...target(o, path), value: setElement(o, "value", path) };
    case "emit": {
      const c: EmitChange = { op, ...target(o, path) };
      const args = field(o, "args");
      if (args !== undefined) c.args = json(args, `${path}.args`);
      return c;
    }
    default:
      throw new Invalid(`${path}.op: unknown change "${op}"`);
  }
}

function target(o: Obj, path: string): { obj: string; attr: string } {
  return { obj: str(o, "obj", path), attr: str(o, "attr", path) };
}

function changes(o: Obj, path: string): Change[] {
  return array(o, "changes", path).map((c, i) => change(c, `${path}.changes[${i}]`));
}

function decodeMessage(raw: unknown): ServerMessage {
  const o = obj(raw, "message");
  const t = field(o, "t");
  if (typeof t !== "string") throw new Invalid(`message.t: expected a string`);
  try {
    switch (t) {
      case "welcome":
        return welcome(o, t);
      case "batch":
        return batch(o, t);
      default:
        return decodeTyped(o, t, t, "message");
    }
  } catch (e) {
    // The frame's `t`, also when a message inside a batch is to blame.
    if (e instanceof Invalid) e.messageType = t;
    throw e;
  }
}

/** A batch's messages, each decoded as a standalone one; a `welcome` or `batch` among them is
 * refused (the server never sends one there). */
function batch(o: Obj, p: string): BatchMessage {
  const m = array(o, "m", p).map((raw, i): BatchedMessage => {
    const at = `${p}.m[${i}]`;
    const inner = obj(raw, at);
    const t = field(inner, "t");
    if (typeof t !== "string") throw new Invalid(`${at}.t: expected a string`);
    if (t === "welcome" || t === "batch") throw new Invalid(`${at}.t: a batch cannot contain a ${t}`);
    return decodeTyped(inner, t, at, at);
  });
  return { t: "batch", m };
}

function welcome(o: Obj, p: string): WelcomeMessage {
  const presence: Record<string, JsonValue> = {};
  const rawPresence = field(o, "presence");
  if (rawPresence !== undefined && rawPresence !== null) {
    for (const [client, state] of Object.entries(obj(rawPresence, `${p}.presence`))) {
      Object.defineProperty(presence, client, {
        value: json(state, `${p}.presence.${client}`),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const m: WelcomeMessage = {
    t: "welcome",
    protocol: uint(o, "protocol", p),
    client: str(o, "client", p),
    resume_token: str(o, "resume_token", p),
    version: uint(o, "version", p),
    acked: uint(o, "acked", p),
    presence,
    read_only: bool(o, "read_only", p, false),
    undo_steps: field(o, "undo_steps") === undefined ? 0 : uint(o, "undo_steps", p),
    redo_steps: field(o, "redo_steps") === undefined ? 0 : uint(o, "redo_steps", p),
  };
  const snap = field(o, "snapshot");
  if (snap !== undefined && snap !== null) m.snapshot = snapshot(snap, `${p}.snapshot`);
  return m;
}

/** Every message but `welcome` and `batch`; `p` prefixes field paths, `at` names the message
 * (`message` for a frame, `batch.m[i]` inside a batch). */
function decodeTyped(o: Obj, t: string, p: string, at: string): BatchedMessage {
  switch (t) {
    case "update":
    case "events": {
      const m: UpdateMessage | EventsMessage = {
        t,
        v: uint(o, "v", p),
        origin: str(o, "origin", p),
        changes: changes(o, p),
      };
      const action = optUint(o, "action", p);
      if (action !== undefined) m.action = action;
      return m;
    }
    case "reject": {
      const m: RejectMessage = {
        t,
        action: uint(o, "action", p),
        code: str(o, "code", p),
        reason: optStr(o, "reason", p) ?? "",
      };
      const c = optUint(o, "change", p);
      if (c !== undefined) m.change = c;
      return m;
    }
    case "presence": {
      const state = field(o, "state");
      return { t, client: str(o, "client", p), state: state === undefined ? null : json(state, p) };
    }
    case "result": {
      const id = int(o, "id", p);
      const err = field(o, "error");
      if (err !== undefined && err !== null) {
        const e = obj(err, `${p}.error`);
        return {
          t,
          id,
          error: { code: str(e, "code", `${p}.error`), reason: optStr(e, "reason", p) ?? "" },
        };
      }
      if (!Object.prototype.hasOwnProperty.call(o, "ok")) {
        throw new Invalid(`${p}: expected field "ok" or "error"`);
      }
      return { t, id, ok: json(field(o, "ok"), `${p}.ok`) };
    }
    case "error":
      return { t, code: str(o, "code", p), reason: optStr(o, "reason", p) ?? "" };
    default:
      throw new Invalid(`${at}.t: unknown message type "${t}"`);
  }
}
