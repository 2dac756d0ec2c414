import { afterEach, describe, expect, it, vi } from "vitest";
import { Emitter } from "./emitter.js";

interface Events {
  ping: { n: number };
  other: { s: string };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Emitter", () => {
  it("delivers to listeners of the type until disposed", () => {
    const e = new Emitter<Events>();
    const got: number[] = [];
    const off = e.on("ping", (p) => got.push(p.n));
    e.on("other", () => got.push(-1));
    e.dispatch("ping", { n: 1 });
    off();
    off();
    e.dispatch("ping", { n: 2 });
    expect(got).toEqual([1]);
    expect(e.hasListeners("ping")).toBe(false);
    expect(e.hasListeners("other")).toBe(true);
  });

  it("counts the same function registered twice as two subscriptions; once fires once", () => {
    const e = new Emitter<Events>();
    const got: number[] = [];
    const fn = (p: { n: number }) => got.push(p.n);
    e.on("ping", fn);
    const off2 = e.on("ping", fn);
    e.once("ping", (p) => got.push(p.n * 10));
    e.dispatch("ping", { n: 1 });
    off2();
    e.dispatch("ping", { n: 2 });
    expect(got).toEqual([1, 1, 10, 2]);
  });

  it("skips listeners removed during a dispatch, and a throwing listener does not stop the others", async () => {
    const e = new Emitter<Events>();
    const got: string[] = [];
    let offB = () => {};
    e.on("ping", () => {
      got.push("a");
      offB();
    });
    offB = e.on("ping", () => got.push("b"));
    e.on("ping", () => {
      throw new Error("listener bug");
    });
    e.on("ping", () => got.push("c"));
    const errors: unknown[] = [];
    const original = globalThis.queueMicrotask;
    globalThis.queueMicrotask = (fn) => {
      try {
        fn();
      } catch (err) {
        errors.push(err);
      }
    };
    try {
      e.dispatch("ping", { n: 0 });
    } finally {
      globalThis.queueMicrotask = original;
    }
    expect(got).toEqual(["a", "c"]);
    expect(errors).toHaveLength(1);
  });
});
