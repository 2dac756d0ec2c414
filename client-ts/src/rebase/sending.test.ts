import { describe, expect, it } from "vitest";
import type { Change } from "../protocol.js";
import type { PendingAction } from "./outcome.js";
import { newPendingAction } from "./outcome.js";
import { messageOf, sendable } from "./sending.js";

const ins = (attr: string, pos = 0, text = "x"): Change => ({ op: "text_insert", obj: "n", attr, pos, text });
const setTo = (attr: string, value: string | number): Change => ({ op: "set", obj: "n", attr, value });

/** Pending actions 1, 2, ... with these changes (`"undo"` for an undo); `sent` of them sent. */
function pending(sent: number, ...actions: (Change[] | "undo")[]): PendingAction[] {
  return actions.map((a, i) => {
    const p = a === "undo" ? newPendingAction(i + 1, "undo", [], [], undefined, 0) : newPendingAction(i + 1, "action", a, [], undefined, 0);
    if (i < sent) p.sentBase = 0;
    return p;
  });
}

const ids = (ps: readonly PendingAction[]) => ps.map((p) => p.id);

describe("the sending rule", () => {
  it("sends every unsent action when no attribute is held", () => {
    expect(ids(sendable(pending(0, [ins("a")], [ins("b")], [setTo("x", 1)])))).toEqual([1, 2, 3]);
  });

  it("holds text edits to an attribute with an unacknowledged text action, and everything behind them", () => {
    expect(ids(sendable(pending(1, [ins("a")], [ins("b")], [ins("a")], [ins("b")])))).toEqual([2]);
  });

  it("counts a whole-string set as holding its attribute; a later set waits for nothing", () => {
    expect(ids(sendable(pending(1, [setTo("a", "new")], [ins("a")])))).toEqual([]);
    expect(ids(sendable(pending(1, [setTo("a", "new")], [setTo("a", "newer")])))).toEqual([2]);
    // A number set holds nothing.
    expect(ids(sendable(pending(1, [setTo("a", 3)], [ins("a")])))).toEqual([2]);
  });

  it("lets text edits after a set in their own action go: they depend on no earlier version", () => {
    expect(ids(sendable(pending(1, [ins("a")], [setTo("a", "new"), ins("a")])))).toEqual([2]);
  });

  it("holds everything behind an unanswered undo, and sends an undo alone", () => {
    expect(ids(sendable(pending(1, "undo", [ins("b")])))).toEqual([]);
    expect(ids(sendable(pending(0, [ins("a")], "undo", [ins("b")])))).toEqual([1, 2]);
  });

  it("makes an action its message with the base and a copy of its changes; an undo its scope only if given", () => {
    const [a, u] = pending(0, [ins("a")], "undo") as [PendingAction, PendingAction];
    const m = messageOf(a, 7);
    expect(m).toEqual({ t: "action", id: 1, base: 7, changes: [ins("a")] });
    expect(m.t === "action" && m.changes !== a.changes).toBe(true);
    expect(messageOf(u, 7)).toEqual({ t: "undo", id: 2 });
    expect(messageOf(newPendingAction(3, "redo", [], [], "n1", 0), 7)).toEqual({ t: "redo", id: 3, scope: "n1" });
    a.step = "s1";
    expect(messageOf(a, 8)).toEqual({ t: "action", id: 1, base: 8, changes: [ins("a")], step: "s1" });
  });
});
