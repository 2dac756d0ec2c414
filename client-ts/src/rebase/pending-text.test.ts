import { describe, expect, it } from "vitest";
import type { Change } from "../protocol.js";
import type { PendingAction } from "./outcome.js";
import { newPendingAction } from "./outcome.js";
import { dropTextEdits, mergesInto, mergeTyping, textBefore, transformPending, unseenEdits } from "./pending-text.js";
import { topicKey } from "./text-changes.js";

const ins = (pos: number, text: string): Change => ({ op: "text_insert", obj: "n", attr: "t", pos, text });
const del = (pos: number, len: number): Change => ({ op: "text_delete", obj: "n", attr: "t", pos, len });
const setTo = (value: string): Change => ({ op: "set", obj: "n", attr: "t", value });
const K = topicKey("n", "t");

function action(id: number, changes: Change[], sent = false): PendingAction {
  const p = newPendingAction(id, "action", changes, [], undefined, 0);
  if (sent) p.sentBase = 0;
  return p;
}

describe("pending text edits", () => {
  it("are transformed against incoming edits, which come back rewritten to apply after them", () => {
    const pending = [action(1, [ins(2, "ab")], true)];
    const net = transformPending(pending, K, [{ kind: "insert", pos: 0, text: "Z" }], false, 0);
    expect(pending[0]?.changes).toEqual([ins(3, "ab")]);
    expect(net).toEqual([{ kind: "insert", pos: 0, text: "Z" }]);
    expect(transformPending([action(1, [{ op: "set", obj: "n", attr: "x", value: 1 }])], K, [], false, 0)).toBeNull();
  });

  it("stop at a pending whole-string set: edits after it are relative to the new text", () => {
    const pending = [action(1, [ins(0, "a"), setTo("new"), ins(0, "b")])];
    const net = transformPending(pending, K, [{ kind: "insert", pos: 0, text: "Z" }], true, 0);
    expect(pending[0]?.changes).toEqual([ins(0, "a"), setTo("new"), ins(0, "b")]);
    expect(net).toEqual([]);
  });

  it("made on a replaced text are dropped from unsent actions (empty ones go) and doom sent ones", () => {
    const pending = [action(1, [ins(0, "a")], true), action(2, [ins(1, "b")]), action(3, [ins(2, "c"), del(0, 1)])];
    dropTextEdits(pending, K);
    expect(pending.map((p) => [p.id, p.doomed, p.changes.length])).toEqual([[1, true, 1]]);
  });

  it("read the text each action saw", () => {
    const pending = [action(1, [ins(0, "a")]), action(2, [setTo("xy"), ins(2, "z")]), action(3, [del(0, 1)])];
    expect(textBefore(pending, K, "", 0)).toBe("");
    expect(textBefore(pending, K, "", 1)).toBe("a");
    expect(textBefore(pending, K, "", 2)).toBe("xyz");
    expect(textBefore(pending, K, "", 3)).toBe("yz");
  });

  it("merge while typing into the newest unsent action on the same text", () => {
    const last = action(1, [ins(0, "a")]);
    expect(mergesInto(last, [ins(1, "b")], undefined)).toBe(true);
    expect(mergesInto(last, [ins(1, "b")], "drag-1"), "another undo step").toBe(false);
    mergeTyping(last, [ins(1, "b")], []);
    expect(last.changes).toEqual([ins(0, "ab")]);
    expect(mergesInto(action(1, [ins(0, "a")], true), [ins(1, "b")], undefined)).toBe(false);
    expect(mergesInto(last, [ins(1, "b"), setTo("s")], undefined)).toBe(false);
    expect(mergesInto(undefined, [ins(1, "b")], undefined)).toBe(false);
  });

  it("of an acknowledged action: only what the server did beyond the prediction is new", () => {
    const acked = action(1, [ins(0, "a")], true);
    const predicted = { set: null, edits: [{ kind: "insert", pos: 0, text: "a" }] } as const;
    const a = { kind: "insert", pos: 0, text: "a" } as const;
    const b = { kind: "insert", pos: 1, text: "b" } as const;
    expect(unseenEdits(acked, { ...predicted, edits: [...predicted.edits] }, [a], "")).toEqual({ edits: [], mispredicted: false });
    expect(unseenEdits(acked, { ...predicted, edits: [...predicted.edits] }, [a, b], "")).toEqual({ edits: [b], mispredicted: false });
    // Something else than predicted: the prediction undone, then what the server applied.
    expect(unseenEdits(acked, { ...predicted, edits: [...predicted.edits] }, [b], "q")).toEqual({
      edits: [{ kind: "delete", pos: 0, len: 1 }, b],
      mispredicted: true,
    });
  });
});
