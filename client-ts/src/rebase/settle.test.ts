import { describe, expect, it } from "vitest";
import type { Change } from "../protocol.js";
import type { PendingAction } from "./outcome.js";
import { newPendingAction } from "./outcome.js";
import { doomedRejection, processedWhileAway, settleOnReload } from "./settle.js";

const remove0: Change = { op: "list_remove", obj: "n", attr: "l", index: 0 };
const append: Change = { op: "list_insert", obj: "n", attr: "l", value: 1 };
const emit: Change = { op: "emit", obj: "n", attr: "e" };
const setX: Change = { op: "set", obj: "n", attr: "x", value: 1 };

function action(id: number, changes: Change[], sentBase: number | null = null, madeAt = 0): PendingAction {
  const p = newPendingAction(id, "action", changes, [], undefined, madeAt);
  p.sentBase = sentBase;
  p.everSent = sentBase !== null;
  return p;
}

describe("settling pending actions", () => {
  it("on a reload: processed ones go, sent ones of a lost identity and unsafe list changes are refused, oldest first", () => {
    const pending = [action(1, [setX], 3), action(2, [setX], 3), action(3, [remove0]), action(4, [append]), action(5, [remove0], null, 9)];
    const rejected = settleOnReload(pending, 1, true, 9);
    expect(rejected.map((r) => [r.action.id, r.code, r.change])).toEqual([
      [3, "list_base_stale", 0],
      [2, "resync", undefined],
    ]);
    expect(pending.map((p) => p.id)).toEqual([4, 5]);
  });

  it("after a resume: processed emits were accepted, other processed actions refused", () => {
    const pending = [action(1, [emit], 2), action(2, [setX], 2), action(3, [setX], 2)];
    const { stateless, refused } = processedWhileAway(pending, 2);
    expect(stateless.map((p) => p.id)).toEqual([1]);
    expect(refused.map((p) => p.id)).toEqual([2]);
  });

  it("a doomed action is refused as the server would: its text was replaced, or its list changed", () => {
    const p = action(1, [setX], 2);
    expect(doomedRejection(p).code).toBe("text_base_too_old");
    p.staleList = { obj: "n", attr: "l", change: 0, changed: 4 };
    expect(doomedRejection(p)).toMatchObject({ code: "list_base_stale", change: 0 });
    expect(doomedRejection(p).reason).toMatch(/^n\.l: the list changed first \(version 4/);
  });
});
