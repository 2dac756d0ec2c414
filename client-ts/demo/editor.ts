/**
 * The editor: what the user does to the graph with the pointer and the keyboard, turned into
 * client edits. Dragging a node sends its `pos` at most once per animation frame (the pointer
 * moves faster); dragging from a port to another node's opposite port creates an `Edge`;
 * selecting and deleting, adding nodes. The server decides: a position outside its canvas or an
 * edge from a node to itself is refused, the client rolls it back, and the node flashes where
 * the server has it.
 */

import type { ObjectSyncClient, RejectedError, SObject } from "../src/index.js";
import { FrameTask } from "./frame.js";
import type { Point } from "./geometry.js";
import { clampToCanvas, edgePath, inPort, NODE, outPort } from "./geometry.js";
import type { GraphHost, Selectable } from "./views.js";
import { EdgeView, NodeView, setGraphHost } from "./views.js";

/** The id of the room's graph, which holds the nodes and edges (`src/presets/demo.rs`). */
export const GRAPH_ID = "graph";

/** Node colors offered by "Add node". */
export const PALETTE = ["#4f7cff", "#e5534b", "#2da44e", "#d4a72c", "#8250df", "#0e9aa7", "#db61a2"] as const;

/** The page elements the editor draws into. */
export interface EditorDom {
  /** The scrolling area around the canvas. */
  readonly viewport: HTMLElement;
  /** The layer whose top-left corner is the canvas's origin (world coordinates). */
  readonly world: HTMLElement;
  /** Where node elements go (inside `world`). */
  readonly nodeLayer: HTMLElement;
  /** Where edge elements go (an SVG group inside `world`). */
  readonly edgeLayer: SVGGElement;
  /** The curve shown while connecting. */
  readonly preview: SVGPathElement;
}

/** A node being dragged by one pointer. */
interface Drag {
  readonly node: NodeView;
  readonly pointerId: number;
  /** Pointer minus node position at the start (world coordinates). */
  readonly grab: Point;
  /** The pointer's latest client coordinates. */
  pointer: Point;
  /** The last position sent. */
  sent: Point;
  /** Released: flushed once more on the next frame, then forgotten. */
  ended: boolean;
  readonly stop: AbortController;
}

/** An edge being drawn from a port. */
interface Link {
  readonly node: NodeView;
  /** The port it started at: `out` (to an input) or `in` (from an output). */
  readonly port: "in" | "out";
  readonly pointerId: number;
  pointer: Point;
  /** The port element under the pointer that would take the edge. */
  target: HTMLElement | null;
  readonly stop: AbortController;
}

/** Pixels from the viewport's edge where dragging scrolls it. */
const AUTOSCROLL_EDGE = 28;
/** Most pixels scrolled per frame. */
const AUTOSCROLL_STEP = 18;
/** Least time between two position actions: one per frame at 60 Hz, every other frame at
 * 120 Hz (the server allows 200 messages per second per client, presence included). */
const SEND_INTERVAL_MIN_MS = 15;

/** See the module docs. */
export class Editor implements GraphHost {
  /** Where node views put their elements. */
  readonly nodeLayer: HTMLElement;
  /** Where edge views put their elements. */
  readonly edgeLayer: SVGGElement;
  private selected: (SObject & Selectable) | null = null;
  private readonly edges = new Set<EdgeView>();
  private drag: Drag | null = null;
  private link: Link | null = null;
  private readonly frame = new FrameTask((time) => this.onFrame(time));
  /** When the last position was sent (an animation frame's time). */
  private lastSentAt = -Infinity;
  private readonly listeners = new Set<() => void>();
  private nodeCounter = 0;

  /**
   * @param client the room's client (its views are made for this editor)
   * @param dom the page elements
   * @param report shows a message to the user (a local error)
   */
  constructor(
    private readonly client: ObjectSyncClient,
    private readonly dom: EditorDom,
    private readonly report: (message: string) => void,
  ) {
    this.nodeLayer = dom.nodeLayer;
    this.edgeLayer = dom.edgeLayer;
    setGraphHost(client, this);
    client.on("created", ({ object }) => {
      if (object instanceof EdgeView) this.edges.add(object);
    });
    client.on("destroyed", ({ object }) => {
      if (object instanceof EdgeView) this.edges.delete(object);
      if (object === this.selected) this.select(null);
      if (object === this.drag?.node) this.endDrag(false);
      if (object === this.link?.node) this.endLink();
    });
    // After every batch: ends may have moved, appeared or gone.
    client.on("change", () => {
      for (const e of this.edges) e.draw();
      this.changed();
    });
    client.on("reject", ({ error }) => this.flashRefused(error));
  }

  /** Calls `fn` whenever the graph or the selection changed (to refresh buttons and hints). */
  onChange(fn: () => void): void {
    this.listeners.add(fn);
  }

  /** The nodes of the graph in the local view. */
  get nodes(): NodeView[] {
    return (this.client.get(GRAPH_ID)?.children ?? []).filter((o): o is NodeView => o instanceof NodeView);
  }

  /** The selected node or edge. */
  get selection(): (SObject & Selectable) | null {
    return this.selected;
  }

  /** Selects `obj` (or nothing). */
  select(obj: (SObject & Selectable) | null): void {
    if (obj === this.selected) return;
    this.selected?.setSelected(false);
    this.selected = obj !== null && !obj.destroyed ? obj : null;
    this.selected?.setSelected(true);
    this.changed();
  }

  /** Adds a node in the visible part of the canvas, clear of the other nodes, and selects it. */
  addNode(): NodeView | null {
    const pos = this.freeSpot();
    const n = Math.max(this.nodes.length, this.nodeCounter) + 1;
    this.nodeCounter = n;
    const color = PALETTE[Math.floor(Math.random() * PALETTE.length)] ?? PALETTE[0];
    const node = this.attempt(() =>
      this.client.create("Node", GRAPH_ID, { attrs: { title: `Node ${n}`, pos: { x: pos.x, y: pos.y }, color } }),
    );
    if (node instanceof NodeView) {
      this.select(node);
      return node;
    }
    return null;
  }

  /** A position near the middle of the visible canvas where a node overlaps no other (the
   * nearest on a spiral of grid cells; the middle itself if the view is full). */
  private freeSpot(): Point {
    const v = this.dom.viewport;
    const r = v.getBoundingClientRect();
    const mid = this.worldPoint(r.left + v.clientWidth / 2, r.top + v.clientHeight / 2);
    const center = clampToCanvas({ x: Math.round(mid.x - NODE.width / 2), y: Math.round(mid.y - NODE.height / 2) });
    const others = this.nodes.map((n) => n.position);
    const gap = 24;
    const free = (p: Point) =>
      others.every((o) => Math.abs(o.x - p.x) >= NODE.width + gap || Math.abs(o.y - p.y) >= NODE.height + gap);
    const visible = (p: Point) => {
      const c = { x: p.x + NODE.width / 2 - mid.x, y: p.y + NODE.height / 2 - mid.y };
      return Math.abs(c.x) < v.clientWidth / 2 && Math.abs(c.y) < v.clientHeight / 2;
    };
    const stepX = NODE.width + gap;
    const stepY = NODE.height + gap;
    for (let ring = 0; ring <= 6; ring++) {
      for (let i = -ring; i <= ring; i++) {
        for (let j = -ring; j <= ring; j++) {
          if (Math.max(Math.abs(i), Math.abs(j)) !== ring) continue;
          const p = clampToCanvas({ x: center.x + i * stepX, y: center.y + j * stepY });
          if (free(p) && visible(p)) return p;
        }
      }
    }
    return center;
  }

  /** Deletes the selected node (its edges go with it, by the server's reaction) or edge. */
  deleteSelected(): void {
    const obj = this.selected;
    if (obj === null || obj.destroyed) return;
    this.select(null);
    this.attempt(() => obj.delete());
  }

  /** Converts client (viewport) coordinates to world coordinates. */
  worldPoint(clientX: number, clientY: number): Point {
    const r = this.dom.world.getBoundingClientRect();
    return { x: clientX - r.left, y: clientY - r.top };
  }

  /** Cancels a connection being drawn or deselects; returns whether anything happened. */
  escape(): boolean {
    if (this.link !== null) {
      this.endLink();
      return true;
    }
    if (this.selected !== null) {
      this.select(null);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------------------- GraphHost

  /** Selects the node and, unless the pointer is in its title, starts dragging it. */
  nodePointerDown(node: NodeView, e: PointerEvent): void {
    if (e.button !== 0 || this.drag !== null || this.link !== null) return;
    this.select(node);
    // In the title: the input gets the pointer (caret, selection); no drag.
    if (e.target instanceof Element && e.target.closest("input") !== null) return;
    e.preventDefault();
    blurActive();
    const w = this.worldPoint(e.clientX, e.clientY);
    const start = node.position;
    const stop = new AbortController();
    const drag: Drag = {
      node,
      pointerId: e.pointerId,
      grab: { x: w.x - start.x, y: w.y - start.y },
      pointer: { x: e.clientX, y: e.clientY },
      sent: start,
      ended: false,
      stop,
    };
    this.drag = drag;
    node.el.setPointerCapture(e.pointerId);
    node.setDragging(true);
    const el = node.el;
    this.track(el, drag, stop.signal, {
      up: (ev) => {
        drag.pointer = { x: ev.clientX, y: ev.clientY };
        this.endDrag(true);
      },
      cancel: () => this.endDrag(true),
      lostCapture: true,
    });
  }

  /** Starts drawing an edge from an `out` port (or to an `in` port). */
  portPointerDown(node: NodeView, port: string, e: PointerEvent): void {
    e.stopPropagation();
    if (e.button !== 0 || this.drag !== null || this.link !== null) return;
    if (port !== "in" && port !== "out") return;
    e.preventDefault();
    blurActive();
    this.select(node);
    const el = e.currentTarget instanceof HTMLElement ? e.currentTarget : node.el;
    const stop = new AbortController();
    const link: Link = { node, port, pointerId: e.pointerId, pointer: { x: e.clientX, y: e.clientY }, target: null, stop };
    this.link = link;
    el.setPointerCapture(e.pointerId);
    this.track(el, link, stop.signal, {
      up: (ev) => {
        const target = this.portAt(ev.clientX, ev.clientY);
        this.endLink();
        if (target === null || target.port === link.port) return;
        if (link.port === "out") this.connect(link.node, target.node);
        else this.connect(target.node, link.node);
      },
      cancel: () => this.endLink(),
      lostCapture: false,
    });
    this.frame.request();
  }

  /** Selects the edge. */
  edgePointerDown(edge: EdgeView, e: PointerEvent): void {
    if (e.button !== 0 || this.drag !== null || this.link !== null) return;
    e.preventDefault();
    blurActive();
    this.select(edge);
  }

  // ------------------------------------------------------------------------------ internals

  /** Follows one captured pointer on `el` until `signal` aborts: moves update `gesture.pointer`
   * and ask for a frame; `up` and `cancel` (and, if asked, losing the capture) end it. */
  private track(
    el: HTMLElement,
    gesture: { readonly pointerId: number; pointer: Point },
    signal: AbortSignal,
    end: { up: (ev: PointerEvent) => void; cancel: () => void; lostCapture: boolean },
  ): void {
    const on = { signal };
    const mine = (ev: PointerEvent) => ev.pointerId === gesture.pointerId;
    el.addEventListener(
      "pointermove",
      (ev) => {
        if (!mine(ev)) return;
        gesture.pointer = { x: ev.clientX, y: ev.clientY };
        this.frame.request();
      },
      on,
    );
    el.addEventListener("pointerup", (ev) => mine(ev) && end.up(ev), on);
    el.addEventListener("pointercancel", (ev) => mine(ev) && end.cancel(), on);
    if (end.lostCapture) el.addEventListener("lostpointercapture", (ev) => mine(ev) && end.cancel(), on);
  }

  /** Creates an edge, unless the same one exists. An edge to itself goes to the server, which
   * refuses it (that is the point of showing it). */
  private connect(from: NodeView, to: NodeView): void {
    const same = [...this.edges].find((e) => !e.destroyed && e.fromId === from.id && e.toId === to.id);
    if (same !== undefined) {
      this.select(same);
      return;
    }
    const edge = this.attempt(() => this.client.create("Edge", GRAPH_ID, { attrs: { from: from.id, to: to.id } }));
    if (edge instanceof EdgeView && !edge.destroyed) this.select(edge);
  }

  /** The port (and its node) under client point (x, y), if any. */
  private portAt(x: number, y: number): { node: NodeView; port: string; el: HTMLElement } | null {
    const hit = document.elementFromPoint(x, y);
    const portEl = hit?.closest<HTMLElement>("[data-port]") ?? null;
    const nodeEl = portEl?.closest<HTMLElement>('[data-testid="node"]') ?? null;
    const id = nodeEl?.dataset.id;
    if (portEl === null || id === undefined) return null;
    const node = this.client.get(id);
    const port = portEl.dataset.port;
    return node instanceof NodeView && port !== undefined ? { node, port, el: portEl } : null;
  }

  /** Once per animation frame while something moves: send the dragged node's position, draw
   * the connection preview, scroll near the viewport's edge. */
  private onFrame(time: number): void {
    const drag = this.drag;
    if (drag !== null) {
      if (time - this.lastSentAt < SEND_INTERVAL_MIN_MS) {
        this.frame.request(); // a fast display: send on the next frame
      } else {
        if (this.sendPosition(drag)) this.lastSentAt = time;
        if (drag.ended) {
          this.drag = null;
          drag.node.setDragging(false);
        }
      }
      if (!drag.ended && this.autoScroll(drag.pointer)) this.frame.request();
    }
    const link = this.link;
    if (link !== null) {
      this.drawPreview(link);
      if (this.autoScroll(link.pointer)) this.frame.request();
    }
  }

  /** Sends the node's new position if it moved (one action; the view follows at once);
   * whether it sent one. */
  private sendPosition(drag: Drag): boolean {
    if (drag.node.destroyed) return false;
    const w = this.worldPoint(drag.pointer.x, drag.pointer.y);
    const p = { x: Math.round(w.x - drag.grab.x), y: Math.round(w.y - drag.grab.y) };
    if (p.x === drag.sent.x && p.y === drag.sent.y) return false;
    drag.sent = p;
    this.attempt(() => drag.node.pos.set({ x: p.x, y: p.y }));
    return true;
  }

  /** Ends the drag; with `flush`, the last position is still sent, on the next frame. */
  private endDrag(flush: boolean): void {
    const drag = this.drag;
    if (drag === null || drag.ended) return;
    drag.ended = true;
    drag.stop.abort();
    if (drag.node.el.hasPointerCapture(drag.pointerId)) drag.node.el.releasePointerCapture(drag.pointerId);
    if (flush && !drag.node.destroyed) {
      this.frame.request();
      return;
    }
    this.drag = null;
    drag.node.setDragging(false);
  }

  private endLink(): void {
    const link = this.link;
    if (link === null) return;
    this.link = null;
    link.stop.abort();
    link.target?.classList.remove("drop-target");
    this.dom.preview.style.display = "none";
    this.dom.preview.removeAttribute("d");
  }

  private drawPreview(link: Link): void {
    const at = this.worldPoint(link.pointer.x, link.pointer.y);
    const target = this.portAt(link.pointer.x, link.pointer.y);
    const fits = target !== null && target.port !== link.port;
    const el = fits ? target.el : null;
    if (el !== link.target) {
      link.target?.classList.remove("drop-target");
      el?.classList.add("drop-target");
      link.target = el;
    }
    const pos = link.node.position;
    const d = link.port === "out" ? edgePath(outPort(pos), at) : edgePath(at, inPort(pos));
    this.dom.preview.setAttribute("d", d);
    this.dom.preview.style.display = "";
  }

  /** Scrolls the viewport when the pointer is near its edge; whether it scrolled. */
  private autoScroll(pointer: Point): boolean {
    const v = this.dom.viewport;
    const r = v.getBoundingClientRect();
    // Faster the nearer the edge; fastest at it or past it.
    const step = (dist: number) =>
      dist < AUTOSCROLL_EDGE ? Math.ceil((Math.min(AUTOSCROLL_EDGE, AUTOSCROLL_EDGE - dist) / AUTOSCROLL_EDGE) * AUTOSCROLL_STEP) : 0;
    const dx = step(r.right - pointer.x) - step(pointer.x - r.left);
    const dy = step(r.bottom - pointer.y) - step(pointer.y - r.top);
    if (dx === 0 && dy === 0) return false;
    const before = [v.scrollLeft, v.scrollTop];
    v.scrollBy(dx, dy);
    return v.scrollLeft !== before[0] || v.scrollTop !== before[1];
  }

  /** Flashes the nodes a refused action touched: they are back where the server has them. */
  private flashRefused(error: RejectedError): void {
    const ids = new Set<string>();
    for (const c of error.changes) {
      if ("obj" in c) ids.add(c.obj);
      if (c.op === "create" && c.type === "Edge") {
        const attrs = c.attrs ?? {};
        for (const end of [attrs.from, attrs.to]) if (typeof end === "string") ids.add(end);
      }
    }
    for (const id of ids) {
      const obj = this.client.get(id);
      if (obj instanceof NodeView) obj.flash();
    }
  }

  /** Runs a local edit; an error thrown at once (not loaded, read-only) is shown, not thrown. */
  private attempt<T>(fn: () => T): T | null {
    try {
      return fn();
    } catch (e) {
      this.report(e instanceof Error ? e.message : String(e));
      return null;
    }
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}

/** Takes the focus from a title input, so keys go to the editor again. */
function blurActive(): void {
  const a = document.activeElement;
  if (a instanceof HTMLElement && a !== document.body) a.blur();
}

