import { describe, expect, it } from "vitest";
import type { SetElement } from "./protocol.js";
import {
  canonicalSet,
  compareCodePoints,
  deepEqual,
  deepFreeze,
  setPosition,
  withKey,
  withoutKey,
} from "./values.js";

describe("sets in canonical order", () => {
  it("sorts booleans, then integers, then strings, each ascending", () => {
    const s: SetElement[] = ["b", 10, true, "a", -3, false, 2];
    expect(canonicalSet(s)).toEqual([false, true, -3, 2, 10, "a", "b"]);
    expect(canonicalSet([1, 1, "x", "x"])).toEqual([1, "x"]);
  });

  it("orders strings by code point like the server's UTF-8 bytes", () => {
    // U+FF5E (one unit) is below U+1F600 (a surrogate pair starting 0xD83D) in code points,
    // though 0xFF5E > 0xD83D as UTF-16 units.
    expect(compareCodePoints("\uff5e", "\u{1F600}")).toBe(-1);
    expect(canonicalSet(["\u{1F600}", "\uff5e"])).toEqual(["\uff5e", "\u{1F600}"]);
    expect(compareCodePoints("ab", "abc")).toBe(-1);
    expect(compareCodePoints("ab", "ab")).toBe(0);
  });

  it("finds an element or where to insert it", () => {
    const set: SetElement[] = [false, 1, 5, "a"];
    expect(setPosition(set, 5)).toEqual({ found: true, index: 2 });
    expect(setPosition(set, 3)).toEqual({ found: false, index: 2 });
    expect(setPosition(set, true)).toEqual({ found: false, index: 1 });
    expect(setPosition(set, "b")).toEqual({ found: false, index: 4 });
  });
});

describe("values", () => {
  it("compares structurally", () => {
    expect(deepEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(deepEqual({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual([], {})).toBe(false);
    expect(deepEqual(undefined, null)).toBe(false);
  });

  it("freezes deeply and copies on write, __proto__ keys included", () => {
    const v = deepFreeze({ a: { b: [1] } });
    expect(Object.isFrozen(v.a)).toBe(true);
    expect(() => {
      (v.a.b as number[]).push(2);
    }).toThrow();
    const w = withKey(v, "__proto__", 1);
    expect(Object.keys(w)).toEqual(["a", "__proto__"]);
    expect(Object.getPrototypeOf(w)).toBe(Object.prototype);
    expect(withoutKey(w, "a")).toEqual(JSON.parse('{"__proto__":1}'));
    expect(v).toEqual({ a: { b: [1] } });
  });
});
