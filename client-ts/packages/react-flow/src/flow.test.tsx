// @vitest-environment jsdom
/**
 * `useObjectSyncFlow` against the simulated room, driven as React Flow drives it (the handlers
 * called with React Flow's change objects): mapping and identities, drags coalesced per frame,
 * a refused drag back at its start with the reason in words, connections and deletions through
 * the server, selection local and shared through presence, one connection under StrictMode.
 */

import type { ActionMessage, Change, JsonObject, NodeSnapshot, SObject } from "objectsync-client";
import { ObjectSyncProvider } from "objectsync-react";
import type { Edge, Node } from "@xyflow/react";
import { act, cleanup, render } from "@testing-library/react";
import { StrictMode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { world } from "../../../src/testing/world.js";
import { useObject } from "objectsync-react";
import type { FlowMapping, FrameScheduler, ObjectSyncFlow } from "./index.js";
import { useObjectSyncFlow, useRemoteSelection } from "./index.js";

type W = ReturnType<typeof world>;

const ROOT: NodeSnapshot = {
  id: "root",
  type: "Root",
  children: [
    {
      id: "g",
      type: "Graph",
      attrs: { name: "main" },
      children: [
        { id: "a", type: "Node", attrs: { title: "A", pos: { x: 10, y: 20 } } },
        { id: "b", type: "Node", attrs: { title: "B", pos: { x: 300, y: 20 } } },
        { id: "e1", type: "Edge", attrs: { from: "a", to: "b" } },
      ],
    },
  ],
};

/** The demo types' rules (`objectsync::demo`): positions inside 0..2000 x 0..1200, no self edges. */
function refuse(c: Change): { code: string; reason: string } | null {
  if (c.op === "set" && c.attr === "pos") {
    const p = c.value as { x: number; y: number };
    if (p.x < 0 || p.x > 2000) return { code: "invalid", reason: `x = ${p.x} is outside the canvas (0..2000)` };
  }
  if (c.op === "create" && c.type === "Edge" && c.attrs?.["from"] === c.attrs?.["to"]) {
    return { code: "invalid", reason: `${c.id}.to: an edge cannot connect a node to itself` };
  }
  return null;
}

const mapping: FlowMapping = {
  nodeType: "Node",
  edgeType: "Edge",
  watch: ["title", "pos"],
  toNode: (obj: SObject) => {
    const pos = obj.dict("pos").value as { x?: number; y?: number };
    return { id: obj.id, position: { x: pos.x ?? 0, y: pos.y ?? 0 }, data: { title: obj.string("title").value } };
  },
  toEdge: (obj: SObject) => {
    const source = obj.ref("from").value;
    const target = obj.ref("to").value;
    return source === null || target === null ? null : { id: obj.id, source, target };
  },
  setPosition: (obj, p) => void obj.dict("pos").set({ x: p.x, y: p.y } as JsonObject),
  connect: (graph, c) => void graph.client.create("Edge", graph, { attrs: { from: c.source, to: c.target } }),
};

/** Frames run when the test says. */
function manualFrames(): FrameScheduler & { run(): void } {
  let queue: (() => void)[] = [];
  return {
    request: (fn) => {
      queue.push(fn);
      return fn;
    },
    cancel: (h) => {
      queue = queue.filter((f) => f !== h);
    },
    run: () => {
      const q = queue;
      queue = [];
      q.forEach((f) => f());
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

function setup(strict = false) {
  const w: W = world({ root: structuredClone(ROOT), refuse });
  const frames = manualFrames();
  const flow: { current: ObjectSyncFlow<Node, Edge> | null } = { current: null };
  let renders = 0;
  function Probe() {
    const graph = useObject("g");
    flow.current = useObjectSyncFlow(graph, mapping, { frames, sendIntervalMinMs: 0 });
    renders++;
    return null;
  }
  const tree = (
    <ObjectSyncProvider url="ws://test/ws/room" connect={{ WebSocket: w.net.WebSocket, random: () => 0 }}>
      <Probe />
    </ObjectSyncProvider>
  );
  render(strict ? <StrictMode>{tree}</StrictMode> : tree);
  act(() => w.settle());
  const f = () => {
    if (flow.current === null) throw new Error("not rendered");
    return flow.current;
  };
  const node = (id: string) => f().nodes.find((n) => n.id === id);
  const actions = () => w.server.received.filter(([, m]) => m.t === "action").map(([, m]) => m as unknown as ActionMessage);
  return { w, frames, f, node, actions, renders: () => renders };
}

describe("useObjectSyncFlow", () => {
  it("maps nodes and edges; a remote change re-makes only the node it changed", async () => {
    const { w, f, node } = setup();
    expect(f().nodes.map((n) => [n.id, n.position])).toEqual([
      ["a", { x: 10, y: 20 }],
      ["b", { x: 300, y: 20 }],
    ]);
    expect(f().edges.map((e) => [e.id, e.source, e.target])).toEqual([["e1", "a", "b"]]);
    const [a0, b0] = [node("a"), node("b")];
    const other = await w.join();
    act(() => {
      other.get("a")?.string("title").set("Alpha");
      w.settle();
    });
    expect(node("a")?.data).toEqual({ title: "Alpha" });
    expect(node("a")).not.toBe(a0);
    expect(node("b")).toBe(b0);
  });

  it("a drag shows the last move of each frame at that frame and sends one action per frame; the last position is the server's", () => {
    const { w, frames, f, node, actions, renders } = setup();
    const before = actions().length;
    const rendersBefore = renders();
    act(() => {
      f().onNodesChange([{ type: "position", id: "a", position: { x: 20, y: 20 }, dragging: true }]);
      f().onNodesChange([{ type: "position", id: "a", position: { x: 30, y: 25 }, dragging: true }]);
    });
    // Nothing rendered before the frame; then once, with the frame's last position.
    expect(renders()).toBe(rendersBefore);
    expect(node("a")?.position).toEqual({ x: 10, y: 20 });
    act(() => frames.run());
    expect(renders()).toBe(rendersBefore + 1);
    expect(node("a")?.position).toEqual({ x: 30, y: 25 });
    expect(node("a")?.dragging).toBe(true);
    // The server's answer to the frame's action changes the document, not what React Flow shows: same node.
    const shown = node("a");
    act(() => w.settle());
    expect(node("a")).toBe(shown);
    act(() => {
      f().onNodesChange([{ type: "position", id: "a", position: { x: 40, y: 30 }, dragging: true }]);
      f().onNodesChange([{ type: "position", id: "a", position: { x: 50, y: 35 }, dragging: true }]);
      frames.run();
      f().onNodesChange([{ type: "position", id: "a", position: { x: 55, y: 35 }, dragging: false }]);
    });
    act(() => w.settle());
    const sent = actions().slice(before);
    expect(sent.map((m) => m.changes.map((c) => (c.op === "set" ? c.value : null)))).toEqual([[{ x: 30, y: 25 }], [{ x: 50, y: 35 }], [{ x: 55, y: 35 }]]);
    expect(w.server.value("a", "pos")).toEqual({ x: 55, y: 35 });
    expect(node("a")?.position).toEqual({ x: 55, y: 35 });
    expect(node("a")?.dragging).toBe(false);
    expect(f().reject).toBeNull();
  });

  it("a drag is one undo step however long it is held still: its actions name one step, the next drag another", () => {
    const { w, frames, f, actions } = setup();
    const before = actions().length;
    const drag = (x: number, dragging: boolean) =>
      act(() => {
        f().onNodesChange([{ type: "position", id: "a", position: { x, y: 50 }, dragging }]);
        frames.run();
        w.settle();
      });
    drag(40, true);
    // Held still for longer than the server's merge window: nothing needs to be sent.
    act(() => {
      vi.advanceTimersByTime(2_000);
      w.settle();
    });
    expect(actions().length).toBe(before + 1);
    drag(45, true);
    drag(50, false);
    drag(70, true);
    drag(80, false);
    const steps = actions().slice(before).map((m) => m.step);
    expect(steps).toHaveLength(5);
    expect(steps[0]).toBeDefined();
    expect(steps.slice(0, 3)).toEqual([steps[0], steps[0], steps[0]]);
    expect(steps[3]).toBeDefined();
    expect(steps.slice(3)).toEqual([steps[3], steps[3]]);
    expect(steps[3]).not.toBe(steps[0]);
    act(() => {
      f().undo();
      w.settle();
    });
    expect(w.server.value("a", "pos")).toEqual({ x: 50, y: 50 });
    act(() => {
      f().undo();
      w.settle();
    });
    expect(w.server.value("a", "pos"), "the whole first drag at once").toEqual({ x: 10, y: 20 });
  });

  it("a drag across a dropped connection lands where it ended, once the client resumed", () => {
    const { w, frames, f, node } = setup();
    act(() => {
      f().onNodesChange([{ type: "position", id: "a", position: { x: 60, y: 20 }, dragging: true }]);
      frames.run();
      w.net.last?.drop();
      f().onNodesChange([{ type: "position", id: "a", position: { x: 90, y: 40 }, dragging: true }]);
      frames.run();
      f().onNodesChange([{ type: "position", id: "a", position: { x: 95, y: 45 }, dragging: false }]);
    });
    expect(node("a")?.position).toEqual({ x: 95, y: 45 });
    act(() => w.settle());
    expect(w.net.sockets.length).toBe(2);
    expect(w.server.value("a", "pos")).toEqual({ x: 95, y: 45 });
    expect(node("a")?.position).toEqual({ x: 95, y: 45 });
    expect(f().reject).toBeNull();
  });

  it("a drag the server refuses goes back to where it started, with the reason in words", () => {
    const { w, frames, f, node } = setup();
    act(() => {
      f().onNodesChange([{ type: "position", id: "a", position: { x: 900, y: 20 }, dragging: true }]);
      frames.run();
      f().onNodesChange([{ type: "position", id: "a", position: { x: 2500, y: 20 }, dragging: true }]);
      frames.run();
    });
    act(() => w.settle());
    // Still dragging: the node stays under the pointer.
    expect(node("a")?.position).toEqual({ x: 2500, y: 20 });
    act(() => f().onNodesChange([{ type: "position", id: "a", position: { x: 2500, y: 20 }, dragging: false }]));
    act(() => w.settle());
    expect(w.server.value("a", "pos")).toEqual({ x: 10, y: 20 });
    expect(node("a")?.position).toEqual({ x: 10, y: 20 });
    expect(f().reject?.what).toBe("drag");
    expect(f().reject?.message).toBe("Move refused: x = 2500 is outside the canvas (0..2000)");
    act(() => f().clearReject());
    expect(f().reject).toBeNull();
  });

  it("connects through the server; a self edge is refused and rolled back, the reason without ids", () => {
    const { w, f } = setup();
    act(() => f().onConnect({ source: "b", target: "a", sourceHandle: null, targetHandle: null }));
    expect(f().edges.length).toBe(2);
    act(() => w.settle());
    expect(w.server.tree.get("g")?.children.length).toBe(4);
    act(() => f().onConnect({ source: "a", target: "a", sourceHandle: null, targetHandle: null }));
    act(() => w.settle());
    expect(f().edges.length).toBe(2);
    expect(f().reject?.message).toBe("Connection refused: an edge cannot connect a node to itself");
    expect(f().reject?.message).not.toMatch(/c1:/);
  });

  it("deletes nodes and edges in one action; selection stays local and goes out as presence", async () => {
    const { w, f, actions } = setup();
    const other = await w.join();
    const before = actions().length;
    act(() => f().onNodesChange([{ type: "select", id: "a", selected: true }]));
    act(() => w.settle());
    expect(f().nodes.find((n) => n.id === "a")?.selected).toBe(true);
    expect(f().selection).toEqual(["a"]);
    expect(actions().length).toBe(before);
    expect(other.presence.get("c1")).toEqual({ selection: ["a"] });
    act(() => f().deleteSelected());
    act(() => w.settle());
    const sent = actions().slice(before);
    expect(sent.length).toBe(1);
    expect(sent[0]?.changes).toEqual([{ op: "delete", id: "a" }]);
    expect(f().nodes.map((n) => n.id)).toEqual(["b"]);
    // The edge lost its end: left out (the real server's reaction deletes it).
    expect(f().edges).toEqual([]);
    expect(other.presence.get("c1")).toEqual({ selection: [] });
    act(() => f().onDelete({ nodes: [{ id: "b", position: { x: 0, y: 0 }, data: {} }], edges: [{ id: "e1", source: "a", target: "b" }] }));
    act(() => w.settle());
    expect(actions().at(-1)?.changes).toEqual([
      { op: "delete", id: "e1" },
      { op: "delete", id: "b" },
    ]);
    expect(w.server.tree.get("g")?.children).toEqual([]);
  });

  it("keeps one connection under StrictMode, and undo goes to the server scoped to the graph", () => {
    const { w, f } = setup(true);
    expect(w.net.sockets.length).toBe(1);
    act(() => f().onConnect({ source: "b", target: "a", sourceHandle: null, targetHandle: null }));
    act(() => w.settle());
    act(() => void f().undo());
    act(() => w.settle());
    expect(w.server.received.some(([, m]) => m.t === "undo" && m["scope"] === "g")).toBe(true);
    expect(f().edges.length).toBe(1);
  });
});

describe("useRemoteSelection", () => {
  it("tells a node who else selected it, and a moving cursor re-renders no node", async () => {
    const w: W = world({ root: structuredClone(ROOT), refuse });
    const renders = new Map<string, number>();
    const shown = new Map<string, string>();
    function Outline({ id }: { id: string }) {
      const who = useRemoteSelection(id);
      renders.set(id, (renders.get(id) ?? 0) + 1);
      shown.set(id, who.map((o) => `${o.name}/${o.color ?? ""}`).join(","));
      return null;
    }
    render(
      <ObjectSyncProvider url="ws://test/ws/room" connect={{ WebSocket: w.net.WebSocket, random: () => 0 }}>
        <Outline id="a" />
        <Outline id="b" />
      </ObjectSyncProvider>,
    );
    act(() => w.settle());
    const other = await w.join();
    act(() => {
      other.setPresence({ name: "Grace", color: "red", selection: ["a"], cursor: { x: 1, y: 1 } });
      w.settle();
    });
    expect(shown.get("a")).toBe("Grace/red");
    expect(shown.get("b")).toBe("");
    const before = { a: renders.get("a") ?? 0, b: renders.get("b") ?? 0 };
    act(() => {
      for (let i = 2; i < 12; i++) other.setPresence({ name: "Grace", color: "red", selection: ["a"], cursor: { x: i, y: i } });
      w.settle();
    });
    expect({ a: renders.get("a"), b: renders.get("b") }).toEqual(before);
    act(() => {
      other.setPresence({ name: "Grace", color: "red", selection: ["b"], cursor: null });
      w.settle();
    });
    expect(shown.get("a")).toBe("");
    expect(shown.get("b")).toBe("Grace/red");
    act(() => {
      other.close();
      w.settle();
    });
    expect(shown.get("b")).toBe("");
  });
});
