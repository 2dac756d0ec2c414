/**
 * Geometry of the node-graph demo: the canvas the server allows nodes in, the size of a node,
 * where its ports are, and the curve of an edge. Positions are the server's `Node.pos` (the
 * node's top-left corner); everything on the page is drawn in these "world" coordinates, inside
 * a layer whose origin is the canvas's top-left corner.
 */

import type { JsonValue } from "../src/index.js";

/** A point in world coordinates (pixels; the server's `pos`). */
export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Where the server accepts a node's corner: `0 <= x <= 2000`, `0 <= y <= 1200` (`src/presets/demo.rs`). */
export const CANVAS = { width: 2000, height: 1200 } as const;

/** A node's box on the page (fixed, so edges can be drawn from positions alone). */
export const NODE = { width: 168, height: 76 } as const;

/** Vertical offset of the ports' centers from a node's top. */
export const PORT_Y = 54;

/** Room around the allowed area on the page, so a node can be dragged past its edge. */
export const MARGIN = { left: 40, top: 40, right: 420, bottom: 360 } as const;

/** The area a whole node stays inside when its corner is valid. */
export const BOUNDS = { width: CANVAS.width + NODE.width, height: CANVAS.height + NODE.height } as const;

/** The page's scrollable canvas size. */
export const PAGE = {
  width: MARGIN.left + BOUNDS.width + MARGIN.right,
  height: MARGIN.top + BOUNDS.height + MARGIN.bottom,
} as const;

/** Whether the server accepts `p` as a node position. */
export function insideCanvas(p: Point): boolean {
  return p.x >= 0 && p.x <= CANVAS.width && p.y >= 0 && p.y <= CANVAS.height;
}

/** The nearest position the server accepts. */
export function clampToCanvas(p: Point): Point {
  return {
    x: Math.min(CANVAS.width, Math.max(0, p.x)),
    y: Math.min(CANVAS.height, Math.max(0, p.y)),
  };
}

/** Reads a `pos` dict; a missing or non-numeric coordinate reads as 0. */
export function readPoint(value: Readonly<Record<string, JsonValue>>): Point {
  const x = value.x;
  const y = value.y;
  return { x: typeof x === "number" ? x : 0, y: typeof y === "number" ? y : 0 };
}

/** Where edges leave a node at `pos` (its `out` port, right side). */
export function outPort(pos: Point): Point {
  return { x: pos.x + NODE.width, y: pos.y + PORT_Y };
}

/** Where edges enter a node at `pos` (its `in` port, left side). */
export function inPort(pos: Point): Point {
  return { x: pos.x, y: pos.y + PORT_Y };
}

/** An SVG path from an output at `a` to an input at `b`: a horizontal S curve. */
export function edgePath(a: Point, b: Point): string {
  const bend = Math.max(40, Math.min(160, Math.abs(b.x - a.x) / 2 + Math.abs(b.y - a.y) / 4));
  const r = (n: number) => Math.round(n * 10) / 10;
  return `M ${r(a.x)} ${r(a.y)} C ${r(a.x + bend)} ${r(a.y)}, ${r(b.x - bend)} ${r(b.y)}, ${r(b.x)} ${r(b.y)}`;
}
