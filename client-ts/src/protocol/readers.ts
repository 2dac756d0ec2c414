/**
 * The small readers the decoders are built of: each narrows one field of parsed JSON (`unknown`)
 * to its type or throws {@link Invalid}, saying where. Only the entry points of `decode.ts` catch
 * it, so nothing here reaches a caller as an exception.
 */

import type { JsonObject, JsonValue, SetElement } from "./changes.js";

/** A decoding failure at a path; caught by the entry points of `decode.ts`. */
export class Invalid extends Error {
  messageType: string | undefined;
  constructor(message: string, messageType?: string) {
    super(message);
    this.messageType = messageType;
  }
}

/** A JSON object as parsed, its fields not yet read. */
export type Obj = { readonly [key: string]: unknown };

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function field(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

export function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new Invalid(`${path}: expected an object`);
  return v;
}

export function str(o: Obj, key: string, path: string): string {
  const v = field(o, key);
  if (typeof v !== "string") throw new Invalid(`${path}.${key}: expected a string`);
  return v;
}

export function optStr(o: Obj, key: string, path: string): string | undefined {
  return field(o, key) === undefined ? undefined : str(o, key, path);
}

/** A non-negative integer exactly representable in JavaScript. */
export function uint(o: Obj, key: string, path: string): number {
  const v = field(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new Invalid(`${path}.${key}: expected a non-negative integer`);
  }
  return v;
}

export function optUint(o: Obj, key: string, path: string): number | undefined {
  const v = field(o, key);
  return v === undefined || v === null ? undefined : uint(o, key, path);
}

export function int(o: Obj, key: string, path: string): number {
  const v = field(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new Invalid(`${path}.${key}: expected an integer`);
  }
  return v;
}

export function bool(o: Obj, key: string, path: string, dflt: boolean): boolean {
  const v = field(o, key);
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") throw new Invalid(`${path}.${key}: expected a boolean`);
  return v;
}

/** Whatever `JSON.parse` produced is JSON; this only narrows the static type. */
export function json(v: unknown, path: string): JsonValue {
  if (v === undefined) throw new Invalid(`${path}: missing value`);
  return v as JsonValue;
}

export function jsonObject(v: unknown, path: string): JsonObject {
  return obj(v, path) as JsonObject;
}

export function setElement(o: Obj, key: string, path: string): SetElement {
  const v = field(o, key);
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  throw new Invalid(`${path}.${key}: expected a string, an integer or a boolean`);
}

export function array(o: Obj, key: string, path: string): readonly unknown[] {
  const v = field(o, key);
  if (!Array.isArray(v)) throw new Invalid(`${path}.${key}: expected an array`);
  return v;
}

