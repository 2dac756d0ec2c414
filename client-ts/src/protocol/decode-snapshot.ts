/**
 * Decoding snapshots: the nested form (objects with `attrs` and `children`) and the compact one
 * (types listed once, objects as arrays of values), both into the nested {@link NodeSnapshot}.
 * Nesting is bounded, so hostile input cannot exhaust the stack.
 */

import type { JsonObject, NodeSnapshot, Snapshot } from "./changes.js";
import type { Obj } from "./readers.js";
import { field, Invalid, json, jsonObject, obj, str, uint } from "./readers.js";

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

export function children(o: Obj, path: string, depth: number): NodeSnapshot[] {
  const v = field(o, "children");
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Invalid(`${path}.children: expected an array`);
  return v.map((c: unknown, i) => node(c, `${path}.children[${i}]`, depth + 1));
}

export function snapshot(raw: unknown, path: string): Snapshot {
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
