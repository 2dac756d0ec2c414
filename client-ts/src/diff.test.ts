import { describe, expect, it } from "vitest";
import { diffBatch, eventsFromValues, isEmptyDiff } from "./diff.js";
import { applyAllOk, graphDoc } from "./testing/fixtures.js";
import { ObjectTree } from "./tree.js";

describe("diffBatch reports net changes", () => {
  it("gives fine-grained events from the applied changes", () => {
    const t = new ObjectTree(graphDoc());
    t.beginBatch();
    applyAllOk(t, [
      { op: "text_insert", obj: "n1", attr: "title", pos: 3, text: "!" },
      { op: "dict_set", obj: "n1", attr: "pos", key: "x", value: 5 },
      { op: "list_move", obj: "n1", attr: "ports", from: 0, to: 1 },
      { op: "set_add", obj: "n1", attr: "tags", value: 9 },
      { op: "create", id: "c:1", type: "Node", parent: "g", index: 0, children: [{ id: "c:2", type: "Port" }] },
      { op: "move", id: "n2", parent: "c:1" },
      { op: "delete", id: "n1" },
    ]);
    const d = diffBatch(t, t.endBatch());
    expect(d.created).toEqual(["c:1", "c:2"]);
    expect(d.destroyed).toEqual([{ id: "n1", type: "Node" }]);
    expect(d.reparented).toEqual([{ id: "n2", from: "g", to: "c:1" }]);
    expect(d.children).toContainEqual({
      parent: "g",
      removed: [
        { id: "n1", index: 0 },
        { id: "n2", index: 1 },
      ],
      added: [{ id: "c:1", index: 0 }],
      moved: [],
    });
    // n1 is gone: its attribute changes are not reported.
    expect(d.attrs).toEqual([]);
  });

  it("derives events from values when the steps do not tell the story", () => {
    const t = new ObjectTree(graphDoc());
    const first = applyAllOk(t, [{ op: "text_insert", obj: "n1", attr: "title", pos: 0, text: "my " }]);
    t.beginBatch();
    t.revert(first); // as rebase does before replaying
    applyAllOk(t, [
      { op: "text_insert", obj: "n1", attr: "title", pos: 3, text: "!" },
      { op: "text_insert", obj: "n1", attr: "title", pos: 0, text: "my " },
      { op: "dict_set", obj: "n1", attr: "pos", key: "x", value: 5 },
    ]);
    const d = diffBatch(t, t.endBatch());
    expect(d.attrs).toEqual([
      { obj: "n1", attr: "title", events: [{ type: "textInsert", pos: 6, text: "!" }], value: "my one!" },
      { obj: "n1", attr: "pos", events: [{ type: "dictSet", key: "x", value: 5 }], value: { x: 5, y: 2 } },
    ]);
  });

  it("reports nothing when a batch ends where it started", () => {
    const t = new ObjectTree(graphDoc());
    const steps = applyAllOk(t, [{ op: "create", id: "c:1", type: "Node", parent: "g", attrs: { t: "a" } }]);
    t.beginBatch();
    t.revert(steps);
    applyAllOk(t, [{ op: "create", id: "c:1", type: "Node", parent: "g", attrs: { t: "a" } }]);
    expect(isEmptyDiff(diffBatch(t, t.endBatch()))).toBe(true);
  });

  it("reports children moved within a parent", () => {
    const t = new ObjectTree({
      id: "root",
      type: "Root",
      children: ["a", "b", "c", "d"].map((id) => ({ id, type: "T" })),
    });
    t.beginBatch();
    applyAllOk(t, [
      { op: "move", id: "a", parent: "root", index: 3 },
      { op: "move", id: "c", parent: "root", index: 0 },
    ]);
    const d = diffBatch(t, t.endBatch());
    expect(t.get("root")?.children).toEqual(["c", "b", "d", "a"]);
    expect(d.children).toHaveLength(1);
    const moved = d.children[0]?.moved ?? [];
    // A longest kept run is b, d: a and c moved.
    expect(moved.map((m) => m.id).sort()).toEqual(["a", "c"]);
    expect(moved).toContainEqual({ id: "a", from: 0, to: 3 });
  });

  it("tells a list from a set from a dict by the changes made", () => {
    const t = new ObjectTree(graphDoc());
    const s1 = applyAllOk(t, [{ op: "set_add", obj: "n1", attr: "tags", value: 1 }]);
    const s2 = applyAllOk(t, [{ op: "list_insert", obj: "n1", attr: "ports", index: 1, value: "mid" }]);
    t.beginBatch();
    t.revert([...s1, ...s2]);
    applyAllOk(t, [{ op: "set_remove", obj: "n1", attr: "tags", value: "a" }]);
    applyAllOk(t, [{ op: "list_remove", obj: "n1", attr: "ports", index: 0 }]);
    const d = diffBatch(t, t.endBatch());
    // Net of the batch: the reverted add and the new remove.
    expect(d.attrs.find((a) => a.attr === "tags")?.events).toEqual([
      { type: "setRemove", value: 1 },
      { type: "setRemove", value: "a" },
    ]);
    expect(d.attrs.find((a) => a.attr === "ports")?.events).toEqual([
      { type: "listRemove", index: 1, value: "mid" },
      { type: "listRemove", index: 0, value: "in" },
    ]);
  });
});

describe("eventsFromValues", () => {
  it("derives text, dict and list events, and falls back to a set", () => {
    expect(eventsFromValues("hello", "help", [])).toEqual([
      { type: "textDelete", pos: 3, len: 2, text: "lo" },
      { type: "textInsert", pos: 3, text: "p" },
    ]);
    const dictHint = [{ op: "dict_set", obj: "o", attr: "a", key: "k", value: 1 } as const];
    expect(eventsFromValues({ a: 1, b: 2 }, { b: 3, c: 4 }, dictHint)).toEqual([
      { type: "dictRemove", key: "a" },
      { type: "dictSet", key: "b", value: 3 },
      { type: "dictSet", key: "c", value: 4 },
    ]);
    const listHint = [{ op: "list_remove", obj: "o", attr: "a", index: 0 } as const];
    expect(eventsFromValues([1, 2, 3, 4], [1, 9, 4], listHint)).toEqual([
      { type: "listRemove", index: 2, value: 3 },
      { type: "listRemove", index: 1, value: 2 },
      { type: "listInsert", index: 1, value: 9 },
    ]);
    expect(eventsFromValues([1, 2], [3], [])).toEqual([{ type: "set", value: [3] }]);
    expect(eventsFromValues(1, 2, [])).toEqual([{ type: "set", value: 2 }]);
  });
});
