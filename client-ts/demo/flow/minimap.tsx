/**
 * The editor's minimap: every node a rectangle in its color on one `<canvas>`, the part in view
 * clear and the rest veiled; drag in it to pan, the wheel over it to zoom. It does what React
 * Flow's `<MiniMap pannable zoomable>` does, cheaper by the thousand: that one is an SVG with a
 * React component and a store subscription per node, so every node moved ran a thousand
 * selectors and repainted a thousand SVG rectangles (about 3 ms a frame at 1,000 nodes on the
 * benchmark's machine, `bench/flow.ts`). This one reads React Flow's state without rendering and
 * draws at the next animation frame when the view changed, and at most every
 * `NODES_EVERY_MS` when only nodes did (a node dragged would otherwise draw the thousand
 * again at every frame).
 */

import type { ReactFlowState } from "@xyflow/react";
import { Panel, useReactFlow, useStoreApi } from "@xyflow/react";
import type { PointerEvent as ReactPointerEvent, ReactNode, WheelEvent as ReactWheelEvent } from "react";
import { useEffect, useRef } from "react";
import type { GraphNode } from "./node.js";
import { NODE_SIZE } from "./node.js";

/** The minimap's size (CSS px), as React Flow's (`flow.css` draws it smaller in narrow windows). */
const SIZE = { width: 200, height: 150 } as const;
/** Room around the nodes and the view (flow px). */
const MARGIN = 40;
/** Zoom per wheel pixel, as React Flow's minimap (`zoomStep` 1). */
const ZOOM_PER_PIXEL = 0.002;
const VEIL = "rgba(240, 240, 240, 0.6)";
/** Least time between two draws for nodes moved (a minimap pixel is several flow pixels). */
const NODES_EVERY_MS = 100;

/** Where the minimap shows the flow: flow point `(x, y)` is at `((x - left) * scale, (y - top) * scale)`. */
interface Frame {
  readonly left: number;
  readonly top: number;
  readonly scale: number;
}

/** The view (flow coordinates) of React Flow's state. */
function viewOf(s: ReactFlowState<GraphNode>): { x: number; y: number; width: number; height: number } {
  const [tx, ty, zoom] = s.transform;
  return { x: -tx / zoom, y: -ty / zoom, width: s.width / zoom, height: s.height / zoom };
}

/** Draws the nodes and the view of `s` on `canvas`; the frame it used. */
function draw(canvas: HTMLCanvasElement, s: ReactFlowState<GraphNode>, color: (n: GraphNode) => string): Frame {
  const view = viewOf(s);
  let minX = view.x;
  let minY = view.y;
  let maxX = view.x + view.width;
  let maxY = view.y + view.height;
  for (const n of s.nodeLookup.values()) {
    if (n.hidden === true) continue;
    const p = n.internals.positionAbsolute;
    minX = Math.min(minX, p.x);
    minY = Math.min(minY, p.y);
    maxX = Math.max(maxX, p.x + (n.measured.width ?? NODE_SIZE.width));
    maxY = Math.max(maxY, p.y + (n.measured.height ?? NODE_SIZE.height));
  }
  const scale = Math.min(SIZE.width / (maxX - minX + 2 * MARGIN), SIZE.height / (maxY - minY + 2 * MARGIN));
  // Centred: the spare room split on both sides.
  const left = minX - MARGIN - (SIZE.width / scale - (maxX - minX + 2 * MARGIN)) / 2;
  const top = minY - MARGIN - (SIZE.height / scale - (maxY - minY + 2 * MARGIN)) / 2;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== SIZE.width * ratio) {
    canvas.width = SIZE.width * ratio;
    canvas.height = SIZE.height * ratio;
  }
  const ctx = canvas.getContext("2d");
  if (ctx === null) return { left, top, scale };
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, SIZE.width, SIZE.height);
  // One fill per color, not per node.
  const byColor = new Map<string, number[]>();
  for (const n of s.nodeLookup.values()) {
    if (n.hidden === true) continue;
    const c = color(n.internals.userNode);
    const list = byColor.get(c) ?? byColor.set(c, []).get(c);
    const p = n.internals.positionAbsolute;
    list?.push(p.x, p.y, n.measured.width ?? NODE_SIZE.width, n.measured.height ?? NODE_SIZE.height);
  }
  for (const [c, r] of byColor) {
    ctx.fillStyle = c;
    ctx.beginPath();
    for (let i = 0; i + 3 < r.length; i += 4) ctx.rect(((r[i] as number) - left) * scale, ((r[i + 1] as number) - top) * scale, (r[i + 2] as number) * scale, (r[i + 3] as number) * scale);
    ctx.fill();
  }
  // The veil: everything but the view.
  ctx.fillStyle = VEIL;
  ctx.beginPath();
  ctx.rect(0, 0, SIZE.width, SIZE.height);
  ctx.rect((view.x - left) * scale, (view.y - top) * scale, view.width * scale, view.height * scale);
  ctx.fill("evenodd");
  return { left, top, scale };
}

/** Props of {@link CanvasMiniMap}. */
export interface CanvasMiniMapProps {
  /** A node's color (called for every node at every draw: keep it cheap). */
  readonly nodeColor: (node: GraphNode) => string;
}

/** The minimap (see the module docs); inside `<ReactFlow>`. */
export function CanvasMiniMap({ nodeColor }: CanvasMiniMapProps): ReactNode {
  const store = useStoreApi<GraphNode>();
  const rf = useReactFlow<GraphNode>();
  const canvas = useRef<HTMLCanvasElement>(null);
  const frame = useRef<Frame>({ left: 0, top: 0, scale: 1 });
  const color = useRef(nodeColor);
  color.current = nodeColor;
  useEffect(() => {
    let drawn: { nodes: unknown; transform: unknown; width: number; height: number } | null = null;
    let drawnAt = -Infinity;
    let pending: number | null = null;
    let later: ReturnType<typeof setTimeout> | null = null;
    const redraw = () => {
      pending = null;
      const s = store.getState();
      const el = canvas.current;
      if (el === null) return;
      if (drawn !== null && drawn.nodes === s.nodes && drawn.transform === s.transform && drawn.width === s.width && drawn.height === s.height) return;
      drawn = { nodes: s.nodes, transform: s.transform, width: s.width, height: s.height };
      drawnAt = performance.now();
      frame.current = draw(el, s, color.current);
    };
    const schedule = () => {
      pending ??= requestAnimationFrame(redraw);
    };
    const onChange = () => {
      const s = store.getState();
      const viewMoved = drawn === null || drawn.transform !== s.transform || drawn.width !== s.width || drawn.height !== s.height;
      const wait = drawnAt + NODES_EVERY_MS - performance.now();
      if (viewMoved || wait <= 0) schedule();
      else later ??= setTimeout(() => {
        later = null;
        schedule();
      }, wait);
    };
    schedule();
    const off = store.subscribe(onChange);
    return () => {
      off();
      if (pending !== null) cancelAnimationFrame(pending);
      if (later !== null) clearTimeout(later);
    };
  }, [store]);
  const onPointerDown = (e: ReactPointerEvent<HTMLCanvasElement>) => {
    const el = e.currentTarget;
    el.setPointerCapture(e.pointerId);
    let last = { x: e.clientX, y: e.clientY };
    const move = (ev: PointerEvent) => {
      // The view follows the pointer: a minimap pixel is 1 / scale flow pixels (the canvas may
      // be drawn smaller than it is: narrow windows).
      const { x, y, zoom } = rf.getViewport();
      const k = zoom / (frame.current.scale * (el.clientWidth / SIZE.width));
      void rf.setViewport({ x: x - (ev.clientX - last.x) * k, y: y - (ev.clientY - last.y) * k, zoom });
      last = { x: ev.clientX, y: ev.clientY };
    };
    const up = () => {
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
      el.removeEventListener("pointercancel", up);
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
    el.addEventListener("pointercancel", up);
  };
  const onWheel = (e: ReactWheelEvent<HTMLCanvasElement>) => {
    // Zoom about the view's centre, within React Flow's limits.
    const s = store.getState();
    const { x, y, zoom } = rf.getViewport();
    const next = Math.min(s.maxZoom, Math.max(s.minZoom, zoom * Math.pow(2, -e.deltaY * ZOOM_PER_PIXEL)));
    const cx = s.width / 2;
    const cy = s.height / 2;
    void rf.setViewport({ x: cx - ((cx - x) * next) / zoom, y: cy - ((cy - y) * next) / zoom, zoom: next });
  };
  return (
    <Panel position="bottom-right" className="react-flow__minimap minimap" data-testid="minimap">
      <canvas ref={canvas} className="nopan nowheel" onPointerDown={onPointerDown} onWheel={onWheel} aria-label="minimap: drag to pan, wheel to zoom" />
    </Panel>
  );
}
