/**
 * The flow editor's edits that are more than one call: adding a node clear of the others, and
 * duplicating a selection with the edges between its nodes (one action). No React here.
 */

import type { ObjectSyncClient } from "objectsync-client";
import type { XYPosition } from "@xyflow/react";
import type { GraphObject, schema } from "../../examples/generated/demo-types.js";
import { EdgeObject, NodeObject } from "../../examples/generated/demo-types.js";
import { NODE_SIZE } from "./node.js";

/** The server's canvas (the demo types' `CANVAS`): a node's corner must stay in 0..2000 x 0..1200. */
export const CANVAS = { width: 2000, height: 1200 } as const;
const COLORS = ["#4f7cff", "#2da44e", "#bf8700", "#cf222e", "#8250df", "#1b7c83"] as const;
/** Attempts at a free spot before taking the last one tried. */
const SPOT_TRIES_MAX = 64;
/** How far a duplicate lands from its original. */
const DUPLICATE_OFFSET = 40;

type Client = ObjectSyncClient<typeof schema>;

/** A node's position (its `pos`, numbers or 0). */
export function readPos(obj: NodeObject): XYPosition {
  const p = obj.pos.value;
  return { x: typeof p["x"] === "number" ? p["x"] : 0, y: typeof p["y"] === "number" ? p["y"] : 0 };
}

/** `p` rounded and inside the canvas. */
export function clampToCanvas(p: XYPosition): XYPosition {
  return { x: Math.min(CANVAS.width, Math.max(0, Math.round(p.x))), y: Math.min(CANVAS.height, Math.max(0, Math.round(p.y))) };
}

/** Adds a node centred near `center`, clear of the nodes at `taken` (a spiral out); its id. */
export function addNode(client: Client, graph: GraphObject, center: XYPosition, taken: readonly XYPosition[]): string {
  const origin = { x: center.x - NODE_SIZE.width / 2, y: center.y - NODE_SIZE.height / 2 };
  const busy = (s: XYPosition) => taken.some((p) => Math.abs(p.x - s.x) < NODE_SIZE.width && Math.abs(p.y - s.y) < NODE_SIZE.height);
  let spot = clampToCanvas(origin);
  for (let i = 1; i < SPOT_TRIES_MAX && busy(spot); i++) {
    const a = i * 0.9;
    spot = clampToCanvas({ x: origin.x + Math.cos(a) * 80 * Math.sqrt(i), y: origin.y + Math.sin(a) * 60 * Math.sqrt(i) });
  }
  const n = graph.children.filter((c) => c instanceof NodeObject).length + 1;
  const color = COLORS[n % COLORS.length] ?? COLORS[0];
  return client.create(NodeObject, graph, { attrs: { title: `Node ${n}`, pos: { x: spot.x, y: spot.y }, color } }).id;
}

/** Copies the nodes `ids` (and the edges between them) a little off, in one action; the copies' ids. */
export function duplicate(client: Client, graph: GraphObject, ids: readonly string[]): string[] {
  const copies = new Map<string, string>();
  client.transaction(() => {
    for (const id of ids) {
      const obj = client.get(id);
      if (!(obj instanceof NodeObject)) continue;
      const p = clampToCanvas({ x: readPos(obj).x + DUPLICATE_OFFSET, y: readPos(obj).y + DUPLICATE_OFFSET });
      const copy = client.create(NodeObject, graph, { attrs: { title: `${obj.title.value} copy`, pos: { x: p.x, y: p.y }, color: obj.color.value } });
      copies.set(id, copy.id);
    }
    for (const e of graph.children) {
      if (!(e instanceof EdgeObject)) continue;
      const from = copies.get(e.from.value ?? "");
      const to = copies.get(e.to.value ?? "");
      if (from !== undefined && to !== undefined) client.create(EdgeObject, graph, { attrs: { from, to } });
    }
  });
  return [...copies.values()];
}
