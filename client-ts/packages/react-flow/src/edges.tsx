/**
 * Edges drawn in one layer: `<EdgeLayer/>` is one `<canvas>` under the diagram, and an edge type
 * made by `layeredEdge` draws its line (and arrowhead) there instead of in the `<svg>` React Flow
 * gives every edge. The edge stays React Flow's: selection, deletion, its events and the
 * invisible wider path that takes the pointer stay in its `<svg>`; only the visible line moves.
 *
 * Why: Chromium sorts what it painted into compositor layers again at every frame in which
 * anything moved (the trace's `Layerize`), and the work grows with every visible SVG shape in
 * view, in one `<svg>` or in many: 200 edge lines in view were about 3 ms of a frame on the
 * benchmark's machine (`client-ts/bench/flow.ts`), a canvas is one layer whatever it holds.
 * The canvas is drawn again at the next animation frame after an edge in view changed or the
 * view moved, and only then.
 *
 * The lines follow zoom and pan and are drawn in screen pixels (sharp at every zoom). A line
 * has the layer's stroke, or the edge's `style.stroke` and `style.strokeWidth`; a selected edge
 * the layer's selected stroke. An edge with a `markerEnd` gets a closed arrowhead at its target.
 * What the canvas does not draw: labels, `animated` dashes, other markers (use React Flow's own
 * edge types for edges that need them; both kinds can be in one diagram).
 */

import type { EdgeProps, ReactFlowState } from "@xyflow/react";
import { getBezierPath, getSmoothStepPath, getStraightPath, Position, useStore, useStoreApi } from "@xyflow/react";
import type { CSSProperties, ReactNode } from "react";
import { memo, useEffect, useLayoutEffect, useMemo, useRef } from "react";
import { createPortal } from "react-dom";

/** One line the layer draws. */
interface Line {
  readonly path: Path2D;
  readonly selected: boolean;
  readonly stroke: string | null;
  readonly width: number | null;
  /** The arrowhead's tip and the direction it points, or `null`. */
  readonly arrow: { readonly x: number; readonly y: number; readonly dx: number; readonly dy: number } | null;
}

/** One diagram's lines, and the layer drawing them (`redraw`), by edge id. */
class LineSet {
  readonly lines = new Map<string, Line>();
  redraw: (() => void) | null = null;

  set(id: string, line: Line): void {
    this.lines.set(id, line);
    this.redraw?.();
  }

  delete(id: string): void {
    if (this.lines.delete(id)) this.redraw?.();
  }
}

/** The lines of each diagram, by its root element (a diagram is one React Flow instance). */
const sets = new WeakMap<HTMLElement, LineSet>();

function setOf(root: HTMLElement): LineSet {
  let s = sets.get(root);
  if (s === undefined) {
    s = new LineSet();
    sets.set(root, s);
  }
  return s;
}

const domNodeOf = (s: ReactFlowState) => s.domNode;

/** Props of {@link EdgeLayer}. */
export interface EdgeLayerProps {
  /** The lines' color (CSS), unless an edge's `style.stroke` says otherwise. Default `#b1b1b7`. */
  readonly stroke?: string;
  /** The lines' width in flow pixels (scaled by the zoom). Default 1. */
  readonly strokeWidth?: number;
  /** A selected edge's color. Default `#555`. */
  readonly selectedStroke?: string;
  /** A selected edge's width. Default the width plus 1. */
  readonly selectedStrokeWidth?: number;
}

const CANVAS_STYLE: CSSProperties = { position: "absolute", left: 0, top: 0, width: "100%", height: "100%", zIndex: 1, pointerEvents: "none" };

/** An arrowhead's length and half width, in flow pixels per pixel of line width (React Flow's closed arrow). */
const ARROW = { length: 4.5, halfWidth: 3.6 } as const;

/**
 * The one `<canvas>` the edges of `layeredEdge` types draw their lines on, under the nodes. Put
 * it inside `<ReactFlow>`, once per diagram.
 */
export function EdgeLayer(props: EdgeLayerProps): ReactNode {
  const root = useStore(domNodeOf) ?? null;
  const store = useStoreApi();
  const canvas = useRef<HTMLCanvasElement>(null);
  const look = useRef(props);
  look.current = props;
  const pane = useMemo(() => root?.querySelector<HTMLElement>(".react-flow__pane") ?? null, [root]);
  useEffect(() => {
    if (root === null) return;
    const set = setOf(root);
    let pending: number | null = null;
    let drawn: { transform: unknown; width: number; height: number } | null = null;
    let linesChanged = true;
    const draw = () => {
      pending = null;
      const el = canvas.current;
      const s = store.getState();
      if (el === null) return;
      if (!linesChanged && drawn !== null && drawn.transform === s.transform && drawn.width === s.width && drawn.height === s.height) return;
      linesChanged = false;
      drawn = { transform: s.transform, width: s.width, height: s.height };
      drawLines(el, set, s, look.current);
    };
    const schedule = () => {
      pending ??= requestAnimationFrame(draw);
    };
    set.redraw = () => {
      linesChanged = true;
      schedule();
    };
    schedule();
    // The view: drawn again when it moved (the lines are in screen pixels).
    const off = store.subscribe((s, prev) => {
      if (s.transform !== prev.transform || s.width !== prev.width || s.height !== prev.height) schedule();
    });
    return () => {
      off();
      set.redraw = null;
      if (pending !== null) cancelAnimationFrame(pending);
    };
  }, [root, store]);
  if (pane === null) return null;
  return createPortal(<canvas ref={canvas} className="objectsync-edge-layer" data-testid="edge-layer" style={CANVAS_STYLE} aria-hidden="true" />, pane);
}

function drawLines(canvas: HTMLCanvasElement, set: LineSet, s: ReactFlowState, look: EdgeLayerProps): void {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(s.width * ratio));
  const h = Math.max(1, Math.round(s.height * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  if (ctx === null) return;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const [tx, ty, zoom] = s.transform;
  ctx.setTransform(ratio * zoom, 0, 0, ratio * zoom, ratio * tx, ratio * ty);
  ctx.lineJoin = "round";
  const stroke = look.stroke ?? "#b1b1b7";
  const width = look.strokeWidth ?? 1;
  const selectedStroke = look.selectedStroke ?? "#555";
  const selectedWidth = look.selectedStrokeWidth ?? width + 1;
  // Unselected first, selected on top; one style change per look.
  for (const selected of [false, true]) {
    const byLook = new Map<string, { color: string; lineWidth: number; lines: Line[] }>();
    for (const line of set.lines.values()) {
      if (line.selected !== selected) continue;
      const color = selected ? selectedStroke : (line.stroke ?? stroke);
      const lineWidth = selected ? selectedWidth : (line.width ?? width);
      const key = `${color}|${lineWidth}`;
      let look = byLook.get(key);
      if (look === undefined) byLook.set(key, (look = { color, lineWidth, lines: [] }));
      look.lines.push(line);
    }
    for (const { color, lineWidth, lines } of byLook.values()) {
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = lineWidth;
      for (const line of lines) ctx.stroke(line.path);
      ctx.beginPath();
      for (const line of lines) if (line.arrow !== null) arrowHead(ctx, line.arrow, lineWidth);
      ctx.fill();
    }
  }
}

function arrowHead(ctx: CanvasRenderingContext2D, a: NonNullable<Line["arrow"]>, lineWidth: number): void {
  const len = ARROW.length * Math.max(1, lineWidth);
  const half = ARROW.halfWidth * Math.max(1, lineWidth);
  const bx = a.x - a.dx * len;
  const by = a.y - a.dy * len;
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(bx - a.dy * half, by + a.dx * half);
  ctx.lineTo(bx + a.dy * half, by - a.dx * half);
  ctx.closePath();
}

/** The path (an SVG `d`) of an edge, from where React Flow put its ends. */
export type EdgePath = (props: EdgeProps) => string;

/** React Flow's `default` path. */
export const bezierPath: EdgePath = (p) => getBezierPath(p)[0];
/** React Flow's `smoothstep` path. */
export const smoothStepPath: EdgePath = (p) => getSmoothStepPath(p)[0];
/** React Flow's `straight` path. */
export const straightPath: EdgePath = (p) => getStraightPath(p)[0];

/** An edge component of `layeredEdge` (a function of React Flow's `EdgeProps`, for `edgeTypes`). */
export type LayeredEdgeComponent = (props: EdgeProps) => ReactNode;

/** The invisible path that takes the pointer: React Flow's default width. */
const INTERACTION_WIDTH = 20;

/** Where an arrowhead at a handle on this side of its node points. */
const INTO: Record<Position, { dx: number; dy: number }> = {
  [Position.Left]: { dx: 1, dy: 0 },
  [Position.Right]: { dx: -1, dy: 0 },
  [Position.Top]: { dx: 0, dy: 1 },
  [Position.Bottom]: { dx: 0, dy: -1 },
};

/** This diagram's lines; `null` outside a diagram. */
function useLineSet(): LineSet | null {
  const root = useStore(domNodeOf);
  return root === null || root === undefined ? null : setOf(root);
}

/**
 * An edge type (for `<ReactFlow edgeTypes>`) that draws its line, along `path`, on the
 * diagram's `<EdgeLayer/>`, and keeps in React Flow's own `<svg>` only the invisible path that
 * takes the pointer (`interactionWidth`, default 20). Without an `<EdgeLayer/>` in the diagram
 * no line is drawn.
 */
export function layeredEdge(path: EdgePath): LayeredEdgeComponent {
  function LayeredEdge(props: EdgeProps): ReactNode {
    const set = useLineSet();
    const d = path(props);
    const { id, selected, style, markerEnd, targetX, targetY, targetPosition } = props;
    const stroke = typeof style?.stroke === "string" ? style.stroke : null;
    const width = typeof style?.strokeWidth === "number" ? style.strokeWidth : null;
    const into = INTO[targetPosition];
    useLayoutEffect(() => {
      // No canvas to draw on (a server render, a test without one): nothing to register.
      if (set === null || typeof Path2D !== "function") return;
      const arrow = markerEnd === undefined || markerEnd === "" ? null : { x: targetX, y: targetY, ...into };
      set.set(id, { path: new Path2D(d), selected: selected === true, stroke, width, arrow });
    }, [set, id, d, selected, stroke, width, markerEnd, targetX, targetY, into]);
    useLayoutEffect(() => (set === null ? undefined : () => set.delete(id)), [set, id]);
    const hit = props.interactionWidth ?? INTERACTION_WIDTH;
    return hit > 0 ? <path d={d} fill="none" strokeOpacity={0} strokeWidth={hit} className="react-flow__edge-interaction" data-edge={id} /> : null;
  }
  return memo(LayeredEdge);
}
