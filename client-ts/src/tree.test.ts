import { describe, expect, it } from "vitest";
import type { Change, JsonValue, NodeSnapshot } from "./protocol.js";
import { loadCorpus } from "./testing/corpus.js";
import { applyAllOk, graphDoc } from "./testing/fixtures.js";
import { ObjectTree, type Step } from "./tree.js";

describe("ObjectTree applies every change", () => {
  it("builds from a snapshot", () => {
    const t = new ObjectTree(graphDoc());
    expect(t.size).toBe(4);
    expect(t.get("g")?.children).toEqual(["n1", "n2"]);
    expect(t.get("n1")?.parent).toBe("g");
    expect(t.get("n1")?.attrs.get("pos")).toEqual({ x: 1, y: 2 });
    expect(Object.isFrozen(t.get("n1")?.attrs.get("pos"))).toBe(true);
  });

  it("creates, moves and deletes subtrees", () => {
    const t = new ObjectTree(graphDoc());
    applyAllOk(t, [
      { op: "create", id: "c:1", type: "Node", parent: "g", index: 1, attrs: { title: "new" }, children: [{ id: "c:2", type: "Port" }] },
    ]);
    expect(t.get("g")?.children).toEqual(["n1", "c:1", "n2"]);
    expect(t.get("c:2")?.parent).toBe("c:1");
    applyAllOk(t, [{ op: "move", id: "n2", parent: "g", index: 0 }]);
    expect(t.get("g")?.children).toEqual(["n2", "n1", "c:1"]);
    applyAllOk(t, [{ op: "move", id: "n1", parent: "c:1" }]);
    expect(t.get("c:1")?.children).toEqual(["c:2", "n1"]);
    applyAllOk(t, [{ op: "delete", id: "c:1" }]);
    expect(t.has("c:1") || t.has("c:2") || t.has("n1")).toBe(false);
    expect(t.get("g")?.children).toEqual(["n2"]);
  });

  it("edits every kind of value", () => {
    const t = new ObjectTree(graphDoc());
    applyAllOk(t, [
      { op: "set", obj: "n1", attr: "title", value: "uno" },
      { op: "text_insert", obj: "n1", attr: "title", pos: 3, text: "!" },
      { op: "text_delete", obj: "n1", attr: "title", pos: 0, len: 1 },
      { op: "add", obj: "n1", attr: "count", value: 2.5 },
      { op: "dict_set", obj: "n1", attr: "pos", key: "z", value: 3 },
      { op: "dict_remove", obj: "n1", attr: "pos", key: "x" },
      { op: "list_insert", obj: "n1", attr: "ports", value: "extra" },
      { op: "list_insert", obj: "n1", attr: "ports", index: 0, value: "first" },
      { op: "list_move", obj: "n1", attr: "ports", from: 0, to: 3 },
      { op: "list_remove", obj: "n1", attr: "ports", index: 0 },
      { op: "list_set", obj: "n1", attr: "ports", index: 0, value: 7 },
      { op: "set_add", obj: "n1", attr: "tags", value: true },
      { op: "set_add", obj: "n1", attr: "tags", value: -1 },
      { op: "set_add", obj: "n1", attr: "tags", value: "0" },
      { op: "set_remove", obj: "n1", attr: "tags", value: 3 },
      { op: "emit", obj: "n1", attr: "ping", args: 1 },
    ]);
    const a = t.get("n1")?.attrs;
    expect(a?.get("title")).toBe("no!");
    expect(a?.get("count")).toBe(3.5);
    expect(a?.get("pos")).toEqual({ y: 2, z: 3 });
    expect(a?.get("ports")).toEqual([7, "extra", "first"]);
    expect(a?.get("tags")).toEqual([false, true, -1, "0", "a"]);
  });

  it("refuses what does not fit, with the server's codes, changing nothing", () => {
    const t = new ObjectTree(graphDoc());
    const code = (c: Change) => t.apply(c, [])?.code;
    expect(code({ op: "delete", id: "root" })).toBe("root_immutable");
    expect(code({ op: "delete", id: "nope" })).toBe("no_such_object");
    expect(code({ op: "create", id: "n1", type: "Node", parent: "g" })).toBe("duplicate_id");
    expect(code({ op: "create", id: "x", type: "Node", parent: "g", index: 5 })).toBe("out_of_range");
    expect(code({ op: "move", id: "g", parent: "n1" })).toBe("cycle");
    expect(code({ op: "move", id: "n1", parent: "g", index: 2 })).toBe("out_of_range");
    expect(code({ op: "text_insert", obj: "n1", attr: "title", pos: 9, text: "x" })).toBe("out_of_range");
    expect(code({ op: "text_insert", obj: "n1", attr: "count", pos: 0, text: "x" })).toBe("wrong_kind");
    expect(code({ op: "dict_remove", obj: "n1", attr: "pos", key: "q" })).toBe("no_such_key");
    expect(code({ op: "list_remove", obj: "n1", attr: "ports", index: 2 })).toBe("out_of_range");
    expect(code({ op: "set_add", obj: "n1", attr: "tags", value: 3 })).toBe("set_element");
    expect(code({ op: "set_remove", obj: "n1", attr: "tags", value: 4 })).toBe("set_element");
    expect(code({ op: "emit", obj: "zz", attr: "e" })).toBe("no_such_object");
    const emoji = new ObjectTree({ id: "root", type: "Root", attrs: { s: "a\u{1F600}" } });
    expect(emoji.apply({ op: "text_insert", obj: "root", attr: "s", pos: 2, text: "x" }, [])?.code).toBe("splits_character");
    expect(t.snapshotOf("root")).toEqual(graphDoc());
  });

  it("applies a batch atomically and reverts steps exactly", () => {
    const t = new ObjectTree(graphDoc());
    const failed = t.applyAll(
      [
        { op: "set", obj: "n1", attr: "title", value: "x" },
        { op: "delete", id: "n2" },
        { op: "delete", id: "n2" },
      ],
      [],
    );
    expect(failed?.index).toBe(2);
    expect(t.snapshotOf("root")).toEqual(graphDoc());
    const steps = applyAllOk(t, [
      { op: "create", id: "c:1", type: "Node", parent: "n2" },
      { op: "move", id: "n1", parent: "c:1" },
      { op: "dict_set", obj: "n1", attr: "pos", key: "x", value: 9 },
      { op: "delete", id: "n2" },
      { op: "set", obj: "g", attr: "fresh", value: 1 },
    ]);
    t.revert(steps);
    expect(t.snapshotOf("root")).toEqual(graphDoc());
  });

  it("fills defaults for created objects without overriding given attributes", () => {
    const t = new ObjectTree(graphDoc(), (type) => (type === "Node" ? { title: "", pos: { x: 0, y: 0 } } : undefined));
    applyAllOk(t, [{ op: "create", id: "c:1", type: "Node", parent: "g", attrs: { title: "hi" } }]);
    expect(Object.fromEntries(t.get("c:1")?.attrs ?? [])).toEqual({ title: "hi", pos: { x: 0, y: 0 } });
  });
});

interface ChangesCorpus {
  snapshot: NodeSnapshot;
  cases: {
    name: string;
    changes: Change[];
    error?: string;
    values?: Record<string, Record<string, JsonValue>>;
    children?: Record<string, string[]>;
    absent?: string[];
  }[];
}

describe("the shared cases of tests/corpus/changes.json (the server and the Rust mirror run them too)", () => {
  it("apply each case's changes to the tree, or refuse them with the server's code", async () => {
    const corpus = (await loadCorpus("changes.json")) as ChangesCorpus;
    expect(corpus.cases.length).toBeGreaterThanOrEqual(20);
    for (const c of corpus.cases) {
      const tree = new ObjectTree(corpus.snapshot);
      const steps: Step[] = [];
      const failed = tree.applyAll(c.changes, steps);
      expect(failed?.error.code, c.name).toBe(c.error);
      if (c.error !== undefined) continue;
      for (const [obj, attrs] of Object.entries(c.values ?? {})) {
        for (const [attr, value] of Object.entries(attrs)) {
          expect(tree.get(obj)?.attrs.get(attr), `${c.name}: ${obj}.${attr}`).toEqual(value);
        }
      }
      for (const [id, children] of Object.entries(c.children ?? {})) {
        expect(tree.get(id)?.children, `${c.name}: children of ${id}`).toEqual(children);
      }
      for (const id of c.absent ?? []) expect(tree.has(id), `${c.name}: ${id} is gone`).toBe(false);
    }
  });
});
