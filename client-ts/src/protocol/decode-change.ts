/**
 * Decoding one change (docs/protocol.md, "Changes") from parsed JSON: one decoder per `op`, in a
 * table typed so that every `op` of {@link Change} has one and each returns its own change. An
 * unknown `op` is refused.
 */

import type { Change, CreateChange, EmitChange, JsonValue, ListInsertChange, MoveChange } from "./changes.js";
import { children } from "./decode-snapshot.js";
import type { Obj } from "./readers.js";
import { array, field, Invalid, json, jsonObject, obj, optUint, setElement, str, uint } from "./readers.js";

/** One change at `path` (which names it in errors). */
export function change(raw: unknown, path: string): Change {
  const o = obj(raw, path);
  const op = str(o, "op", path);
  // An own property only: an `op` such as "constructor" is unknown, not Object's.
  if (!Object.prototype.hasOwnProperty.call(DECODERS, op)) throw new Invalid(`${path}.op: unknown change "${op}"`);
  return DECODERS[op as Change["op"]](o, path);
}

/** The `changes` array of a message. */
export function changes(o: Obj, path: string): Change[] {
  return array(o, "changes", path).map((c, i) => change(c, `${path}.changes[${i}]`));
}

type Decoders = { readonly [Op in Change["op"]]: (o: Obj, path: string) => Extract<Change, { op: Op }> };

const DECODERS: Decoders = {
  create: createChange,
  delete: (o, p) => ({ op: "delete", id: str(o, "id", p) }),
  move: moveChange,
  set: (o, p) => ({ op: "set", ...target(o, p), value: value(o, p) }),
  add: (o, p) => {
    const v = field(o, "value");
    if (typeof v !== "number") throw new Invalid(`${p}.value: expected a number`);
    return { op: "add", ...target(o, p), value: v };
  },
  text_insert: (o, p) => ({ op: "text_insert", ...target(o, p), pos: uint(o, "pos", p), text: str(o, "text", p) }),
  text_delete: (o, p) => ({ op: "text_delete", ...target(o, p), pos: uint(o, "pos", p), len: uint(o, "len", p) }),
  dict_set: (o, p) => ({ op: "dict_set", ...target(o, p), key: str(o, "key", p), value: value(o, p) }),
  dict_remove: (o, p) => ({ op: "dict_remove", ...target(o, p), key: str(o, "key", p) }),
  list_insert: listInsertChange,
  list_remove: (o, p) => ({ op: "list_remove", ...target(o, p), index: uint(o, "index", p) }),
  list_move: (o, p) => ({ op: "list_move", ...target(o, p), from: uint(o, "from", p), to: uint(o, "to", p) }),
  list_set: (o, p) => ({ op: "list_set", ...target(o, p), index: uint(o, "index", p), value: value(o, p) }),
  set_add: (o, p) => ({ op: "set_add", ...target(o, p), value: setElement(o, "value", p) }),
  set_remove: (o, p) => ({ op: "set_remove", ...target(o, p), value: setElement(o, "value", p) }),
  emit: emitChange,
};

function createChange(o: Obj, path: string): CreateChange {
  const c: CreateChange = {
    op: "create",
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

function moveChange(o: Obj, path: string): MoveChange {
  const c: MoveChange = { op: "move", id: str(o, "id", path), parent: str(o, "parent", path) };
  const index = optUint(o, "index", path);
  if (index !== undefined) c.index = index;
  return c;
}

function listInsertChange(o: Obj, path: string): ListInsertChange {
  const c: ListInsertChange = { op: "list_insert", ...target(o, path), value: value(o, path) };
  const index = optUint(o, "index", path);
  if (index !== undefined) c.index = index;
  return c;
}

function emitChange(o: Obj, path: string): EmitChange {
  const c: EmitChange = { op: "emit", ...target(o, path) };
  const args = field(o, "args");
  if (args !== undefined) c.args = json(args, `${path}.args`);
  return c;
}

function target(o: Obj, path: string): { obj: string; attr: string } {
  return { obj: str(o, "obj", path), attr: str(o, "attr", path) };
}

/** The `value` field, any JSON (present). */
function value(o: Obj, path: string): JsonValue {
  return json(field(o, "value"), `${path}.value`);
}
