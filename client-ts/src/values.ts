/**
 * Plain JSON values as the tree stores them: immutable (frozen, replaced on change, never
 * edited in place), compared structurally, sets kept in the server's canonical order.
 */

import type { JsonObject, JsonValue, SetElement } from "./protocol.js";

/** Values nest at most this deep (the server's `value_depth_max` is 32); bounds recursion. */
const VALUE_DEPTH_MAX = 64;

/** Freezes `v` and everything in it, so readers cannot change the tree behind its back. */
export function deepFreeze<T extends JsonValue>(v: T, depth = 0): T {
  if (typeof v !== "object" || v === null || Object.isFrozen(v) || depth > VALUE_DEPTH_MAX) return v;
  if (Array.isArray(v)) {
    for (const e of v) deepFreeze(e, depth + 1);
  } else {
    for (const e of Object.values(v)) deepFreeze(e, depth + 1);
  }
  return Object.freeze(v);
}

/** Structural equality of JSON values (object key order does not matter). */
export function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (depth > VALUE_DEPTH_MAX) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((e, i) => deepEqual(e, b[i], depth + 1));
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => hasKey(b, k) && deepEqual(a[k], b[k], depth + 1));
}

/** Whether `o` has its own key `k` (never the prototype's). */
export function hasKey(o: JsonObject, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** A copy of `o` with `key` set to `value`; safe for any key, `__proto__` included. */
export function withKey(o: JsonObject, key: string, value: JsonValue): JsonObject {
  const out: JsonObject = { ...o };
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return Object.freeze(out);
}

/** A copy of `o` without `key`. */
export function withoutKey(o: JsonObject, key: string): JsonObject {
  const out: JsonObject = { ...o };
  delete out[key];
  return Object.freeze(out);
}

/** Whether `v` is a JSON object (not an array, not null). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Whether `v` can be a set element: a string, an integer or a boolean. */
export function isSetElement(v: JsonValue | undefined): v is SetElement {
  return typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isSafeInteger(v));
}

function rank(v: SetElement): number {
  return typeof v === "boolean" ? 0 : typeof v === "number" ? 1 : 2;
}

/** Compares strings by Unicode code point, as the server compares UTF-8 bytes. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) ?? 0;
    const y = b.codePointAt(i) ?? 0;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** The canonical order of set elements: booleans, then integers, then strings, each ascending. */
export function compareSetElements(a: SetElement, b: SetElement): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === "string" && typeof b === "string") return compareCodePoints(a, b);
  const na = Number(a);
  const nb = Number(b);
  return na === nb ? 0 : na < nb ? -1 : 1;
}

/** Where `v` is in the canonically ordered `set`: `found`, or the index to insert it at. */
export function setPosition(set: readonly SetElement[], v: SetElement): { found: boolean; index: number } {
  let lo = 0;
  let hi = set.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareSetElements(set[mid] as SetElement, v);
    if (c === 0) return { found: true, index: mid };
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return { found: false, index: lo };
}

/** `values` deduplicated and sorted canonically (a whole-set `set` from anyone). */
export function canonicalSet(values: readonly SetElement[]): SetElement[] {
  const sorted = [...values].sort(compareSetElements);
  return sorted.filter((v, i) => i === 0 || compareSetElements(sorted[i - 1] as SetElement, v) !== 0);
}

/** Freezes a fresh array and keeps its JSON type (frozen values are never written to). */
export function frozenArray<T extends JsonValue>(a: T[]): T[] {
  Object.freeze(a);
  return a;
}
