import { describe, expect, it } from "vitest";
import { Mirror } from "./mirror.js";
import type { Snapshot } from "./protocol.js";

const snapshot: Snapshot = {
  version: 41,
  next_server_id: 12,
  root: {
    id: "root",
    type: "Root",
    children: [
      {
        id: "g",
        type: "Graph",
        attrs: { name: "main" },
        children: [{ id: "s:1", type: "Node", attrs: { pos: { x: 1, y: 2 }, ports: ["in", "out"], title: "node-1" } }],
      },
    ],
  },
};

describe("Mirror", () => {
  it("is the snapshot at its version", () => {
    const m = Mirror.fromSnapshot(snapshot);
    expect(m.version).toBe(41);
    expect(m.nextServerId).toBe(12);
    expect(m.get("s:1")?.attrs.get("title")).toBe("node-1");
    expect(m.tree.snapshotOf("root")).toEqual(snapshot.root);
  });

  it("applies updates in version order", () => {
    const m = Mirror.fromSnapshot(snapshot);
    const r = m.applyUpdate({ v: 42, changes: [{ op: "dict_set", obj: "s:1", attr: "pos", key: "x", value: 120 }] });
    expect(r.kind).toBe("applied");
    expect(m.version).toBe(42);
    expect(m.get("s:1")?.attrs.get("pos")).toEqual({ x: 120, y: 2 });
    m.applyUpdate({ v: 43, changes: [{ op: "delete", id: "g" }] });
    expect(m.get("s:1")).toBeUndefined();
    expect(m.get("root")?.children).toEqual([]);
  });

  it("reports a gap and applies nothing", () => {
    const m = Mirror.fromSnapshot(snapshot);
    expect(m.applyUpdate({ v: 44, changes: [{ op: "delete", id: "g" }] })).toEqual({ kind: "gap", expected: 42, got: 44 });
    expect(m.version).toBe(41);
    expect(m.get("g")).toBeDefined();
  });

  it("ignores an update it already has", () => {
    const m = Mirror.fromSnapshot(snapshot);
    expect(m.applyUpdate({ v: 41, changes: [{ op: "delete", id: "g" }] })).toEqual({ kind: "duplicate" });
    expect(m.get("g")).toBeDefined();
  });

  it("reports an update that does not apply as divergence, atomically", () => {
    const m = Mirror.fromSnapshot(snapshot);
    const r = m.applyUpdate({
      v: 42,
      changes: [
        { op: "set", obj: "g", attr: "name", value: "other" },
        { op: "list_remove", obj: "s:1", attr: "ports", index: 5 },
      ],
    });
    expect(r.kind).toBe("diverged");
    if (r.kind === "diverged") {
      expect(r.index).toBe(1);
      expect(r.error.code).toBe("out_of_range");
    }
    expect(m.version).toBe(41);
    expect(m.get("g")?.attrs.get("name")).toBe("main");
  });
});
