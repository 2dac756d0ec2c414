/**
 * `FlowStore`: one graph SObject as the controlled `nodes` and `edges` of React Flow, and the
 * handlers React Flow calls. The document is the client's local view (confirmed state plus this
 * client's pending edits); on top of it the store keeps what is this page's alone: selection,
 * measured sizes and the positions of nodes being dragged.
 *
 * - Mapping: the application's `toNode`/`toEdge` turn its SObjects into React Flow objects. An
 *   object is mapped again only when one of its watched attributes changed, and an output node
 *   keeps its identity until something in it changed, so React Flow re-renders only those nodes.
 * - Drags: the positions React Flow reports show at the next animation frame (the override:
 *   one render of the diagram per frame however many pointer moves came in it, a drag's start
 *   and end at once), and the positions of one frame go out as one action. A drag is one undo step however long it lasts: its
 *   actions name one step (`ObjectSyncClient.beginUndoStep`, the action's `step` on the wire),
 *   from the first moved node to the last one dropped. When the drag ends and any of its
 *   actions was refused, the nodes go back to where the drag started.
 * - Connections and deletions are actions (one each); the server decides, a refusal is rolled
 *   back by the client and kept here as {@link FlowReject} (in words, without ids).
 *
 * Listens to the client only while subscribed (so a store React throws away holds nothing).
 */

import type { ActionHandle, Disposer, ObjectSyncClient, ObjectSyncError, RejectedError, SObject } from "objectsync-client";
import type { Connection, Edge, EdgeChange, Node, NodeChange, XYPosition } from "@xyflow/react";
import type { FlowReject } from "./explain.js";
import { explain } from "./explain.js";

/** A class to recognize objects by (a generated class or a subclass). */
export type ObjectClass<T extends SObject> = abstract new (...args: never[]) => T;

/** What the application's `toNode` returns: the binding adds selection, size and drag state. */
export type NodeInput<N extends Node> = Omit<N, "selected" | "dragging" | "measured">;
/** What the application's `toEdge` returns: the binding adds selection. */
export type EdgeInput<E extends Edge> = Omit<E, "selected">;

/** How the graph's objects map to React Flow, given by the application. */
export interface FlowMapping<NO extends SObject = SObject, EO extends SObject = SObject, N extends Node = Node, E extends Edge = Edge> {
  /** Which children of the graph are nodes: a class (with `instanceof`) or a type name. */
  readonly nodeType: ObjectClass<NO> | string;
  /** Which children of the graph are edges. */
  readonly edgeType: ObjectClass<EO> | string;
  /** A node object as a React Flow node (`id`, `position`, `data`, `type`...). */
  toNode(obj: NO): NodeInput<N>;
  /** An edge object as a React Flow edge (`id`, `source`, `target`...); `null` leaves it out. */
  toEdge(obj: EO): EdgeInput<E> | null;
  /** Writes a node's position (called inside a transaction). */
  setPosition(obj: NO, position: XYPosition): void;
  /** Makes the edge of a new connection under `graph` (called inside a transaction). */
  connect(graph: SObject, connection: Connection): void;
  /**
   * The attributes whose changes map an object again. Default: the attributes of its class's
   * generated schema (`static attrs`); without one, every object is mapped again on every
   * change (correct, slower).
   */
  readonly watch?: readonly string[];
}

/** The store's snapshot: what React Flow renders. */
export interface FlowSnapshot<N extends Node = Node, E extends Edge = Edge> {
  readonly nodes: N[];
  readonly edges: E[];
  /** The last refusal (in words), `null` if none or dismissed. */
  readonly reject: FlowReject | null;
  /** The ids of the nodes selected on this page. */
  readonly selection: readonly string[];
}

/** When to run the frame's work (`requestAnimationFrame` in a browser). */
export interface FrameScheduler {
  request(fn: () => void): unknown;
  cancel(handle: unknown): void;
}

/** Options beside the mapping. */
export interface FlowStoreOptions {
  readonly frames?: FrameScheduler;
  /**
   * Least time between two drag actions (default 15 ms: every frame at 60 Hz, every other one at
   * 120 Hz; the server allows 200 messages per second per client, presence included).
   */
  readonly sendIntervalMinMs?: number;
}

const SEND_INTERVAL_MIN_MS = 15;

interface Entry {
  readonly obj: SObject;
  readonly kind: "node" | "edge";
  /** Mapped again at the next snapshot. */
  stale: boolean;
  base: NodeInput<Node> | EdgeInput<Edge> | null;
  out: Node | Edge | null;
  offs: Disposer[];
}

interface Drag {
  readonly id: string;
  readonly start: XYPosition;
  latest: XYPosition;
  sent: XYPosition | null;
  refused: ObjectSyncError | null;
  ended: boolean;
  /** Actions not answered yet. */
  pending: number;
}

function defaultFrames(): FrameScheduler {
  if (typeof requestAnimationFrame === "function") {
    return { request: (fn) => requestAnimationFrame(fn), cancel: (h) => cancelAnimationFrame(h as number) };
  }
  return { request: (fn) => setTimeout(fn, 16), cancel: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };
}

/** Top-level keys the same, a nested plain object compared one level down. */
function sameShallow(a: object | null, b: object | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const va: unknown = (a as Record<string, unknown>)[k];
    const vb: unknown = (b as Record<string, unknown>)[k];
    if (Object.is(va, vb)) continue;
    if (typeof va !== "object" || typeof vb !== "object" || va === null || vb === null || Array.isArray(va) !== Array.isArray(vb)) return false;
    const ia = Object.keys(va);
    if (ia.length !== Object.keys(vb).length) return false;
    if (!ia.every((i) => Object.is((va as Record<string, unknown>)[i], (vb as Record<string, unknown>)[i]))) return false;
  }
  return true;
}

/** One graph as React Flow's controlled state; see the module docs. */
export class FlowStore<NO extends SObject = SObject, EO extends SObject = SObject, N extends Node = Node, E extends Edge = Edge> {
  mapping: FlowMapping<NO, EO, N, E>;
  private readonly entries = new Map<string, Entry>();
  private order: string[] = [];
  private structureStale = true;
  private everythingStale = false;
  private snapshot: FlowSnapshot<N, E> = { nodes: [], edges: [], reject: null, selection: [] };
  private dirty = true;
  private readonly listeners = new Set<() => void>();
  private offs: Disposer[] = [];
  private readonly selectedNodes = new Set<string>();
  private readonly selectedEdges = new Set<string>();
  private readonly measured = new Map<string, { width: number; height: number }>();
  private readonly drags = new Map<string, Drag>();
  private frame: unknown = null;
  /** Drag moves wait to be shown at the next frame. */
  private showAtFrame = false;
  /** Ends the undo step the drags in progress share; `null` when none is. */
  private endUndoStep: (() => void) | null = null;
  private readonly frames: FrameScheduler;
  private readonly sendIntervalMinMs: number;
  private lastSendMs = -Infinity;
  private lastReject: FlowReject | null = null;
  /** This store's actions waiting for the server, with what they were and the drags they carry. */
  private readonly tracked = new Map<ActionHandle, { what: FlowReject["what"]; drags: Drag[] }>();

  constructor(
    readonly client: ObjectSyncClient,
    readonly graph: SObject,
    mapping: FlowMapping<NO, EO, N, E>,
    options: FlowStoreOptions = {},
  ) {
    this.mapping = mapping;
    this.frames = options.frames ?? defaultFrames();
    this.sendIntervalMinMs = options.sendIntervalMinMs ?? SEND_INTERVAL_MIN_MS;
  }

  // --------------------------------------------------------------------------- subscription

  /** Calls `fn` when the snapshot changes; listens to the client while anyone is subscribed. */
  subscribe = (fn: () => void): (() => void) => {
    if (this.listeners.size === 0) this.attach();
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.detach();
    };
  };

  /** What React Flow renders now (the same object until something changed). */
  getSnapshot = (): FlowSnapshot<N, E> => {
    if (this.dirty) this.rebuild();
    return this.snapshot;
  };

  private attach(): void {
    const g = this.graph;
    const structural = () => {
      this.structureStale = true;
      this.dirty = true;
    };
    this.offs = [
      g.on("childAdded", structural),
      g.on("childRemoved", structural),
      g.on("childMoved", structural),
      g.on("destroyed", structural),
      this.client.on("change", () => {
        if (this.everythingStale) for (const e of this.entries.values()) e.stale = true;
        if (this.dirty || this.everythingStale) this.emit();
      }),
      this.client.on("sync", () => this.settleActions()),
      this.client.on("reject", ({ error }) => this.onReject(error)),
    ];
    this.structureStale = true;
    for (const e of this.entries.values()) e.stale = true;
    this.dirty = true;
  }

  private detach(): void {
    for (const off of this.offs.splice(0)) off();
    for (const e of this.entries.values()) for (const off of e.offs.splice(0)) off();
    this.entries.clear();
    this.order = [];
    this.stopFrames();
  }

  /** Stops everything (the component is gone). */
  dispose(): void {
    this.listeners.clear();
    this.detach();
  }

  private emit(): void {
    this.dirty = true;
    this.showAtFrame = false;
    for (const fn of [...this.listeners]) fn();
  }

  // ------------------------------------------------------------------------------- mapping

  private kindOf(obj: SObject): "node" | "edge" | null {
    const is = (t: ObjectClass<SObject> | string) => (typeof t === "string" ? obj.type === t : obj instanceof t);
    if (is(this.mapping.nodeType as ObjectClass<SObject> | string)) return "node";
    if (is(this.mapping.edgeType as ObjectClass<SObject> | string)) return "edge";
    return null;
  }

  /** The attributes to watch on `obj`; `null`: unknown (every change maps it again). */
  private watchOf(obj: SObject): readonly string[] | null {
    if (this.mapping.watch !== undefined) return this.mapping.watch;
    const attrs = (obj.constructor as { attrs?: unknown }).attrs;
    return typeof attrs === "object" && attrs !== null ? Object.keys(attrs) : null;
  }

  private syncStructure(): void {
    this.structureStale = false;
    const children = this.graph.destroyed ? [] : this.graph.children;
    const seen = new Set<string>();
    const order: string[] = [];
    for (const obj of children) {
      const kind = this.kindOf(obj);
      if (kind === null) continue;
      seen.add(obj.id);
      order.push(obj.id);
      if (this.entries.get(obj.id)?.obj === obj) continue;
      this.entries.get(obj.id)?.offs.forEach((off) => off());
      const entry: Entry = { obj, kind, stale: true, base: null, out: null, offs: [] };
      const watch = this.watchOf(obj);
      if (watch === null) this.everythingStale = true;
      else {
        const mark = () => {
          entry.stale = true;
          this.dirty = true;
        };
        // Any topic of an attribute hears its "changed", whatever its kind.
        for (const attr of watch) entry.offs.push(obj.string(attr).on("changed", mark));
      }
      this.entries.set(obj.id, entry);
    }
    for (const [id, e] of this.entries) {
      if (seen.has(id)) continue;
      e.offs.forEach((off) => off());
      this.entries.delete(id);
      this.selectedNodes.delete(id);
      this.selectedEdges.delete(id);
      this.measured.delete(id);
      this.drags.delete(id);
    }
    this.order = order;
  }

  private rebuild(): void {
    this.dirty = false;
    if (this.structureStale) this.syncStructure();
    const nodes: N[] = [];
    const edges: E[] = [];
    const nodeIds = new Set<string>();
    for (const id of this.order) {
      const e = this.entries.get(id);
      if (e?.kind === "node") nodeIds.add(id);
    }
    for (const id of this.order) {
      const e = this.entries.get(id);
      if (e === undefined) continue;
      if (e.stale) {
        e.stale = false;
        const base = e.kind === "node" ? this.mapping.toNode(e.obj as NO) : this.mapping.toEdge(e.obj as EO);
        if (!sameShallow(base, e.base)) e.base = base;
      }
      if (e.base === null) continue;
      if (e.kind === "node") nodes.push(this.nodeOut(e));
      else {
        const edge = e.base as EdgeInput<E>;
        if (nodeIds.has(edge.source) && nodeIds.has(edge.target)) edges.push(this.edgeOut(e));
      }
    }
    const prev = this.snapshot;
    const selection = [...this.selectedNodes].sort();
    this.snapshot = {
      nodes: sameList(prev.nodes, nodes) ? prev.nodes : nodes,
      edges: sameList(prev.edges, edges) ? prev.edges : edges,
      reject: this.lastReject,
      selection: prev.selection.length === selection.length && prev.selection.every((s, i) => s === selection[i]) ? prev.selection : selection,
    };
    if (
      this.snapshot.nodes === prev.nodes &&
      this.snapshot.edges === prev.edges &&
      this.snapshot.reject === prev.reject &&
      this.snapshot.selection === prev.selection
    ) {
      this.snapshot = prev;
    }
  }

  private nodeOut(e: Entry): N {
    const base = e.base as NodeInput<N>;
    const drag = this.drags.get(e.obj.id);
    const position = drag !== undefined && !drag.ended ? drag.latest : base.position;
    const selected = this.selectedNodes.has(e.obj.id);
    const measured = this.measured.get(e.obj.id);
    const dragging = drag !== undefined && !drag.ended;
    const prev = e.out as N | null;
    const prevBase = (prev as unknown as { __base?: NodeInput<N> } | null)?.__base;
    if (
      prev !== null &&
      prev.position === position &&
      (prev.selected ?? false) === selected &&
      prev.measured === measured &&
      (prev.dragging ?? false) === dragging &&
      // While dragged, the node's own position edits come back changing only what the override
      // already shows: the same node, so React Flow is not updated twice per frame.
      (prevBase === base || (dragging && prevBase !== undefined && sameShallow({ ...prevBase, position: null }, { ...base, position: null })))
    ) {
      return prev;
    }
    const out = { ...base, position, selected, dragging } as unknown as N;
    if (measured !== undefined) out.measured = measured;
    Object.defineProperty(out, "__base", { value: base, enumerable: false });
    e.out = out;
    return out;
  }

  private edgeOut(e: Entry): E {
    const base = e.base as EdgeInput<E>;
    const selected = this.selectedEdges.has(e.obj.id);
    const prev = e.out as E | null;
    if (prev !== null && (prev.selected ?? false) === selected && (prev as unknown as { __base?: unknown }).__base === base) return prev;
    const out = { ...base, selected } as unknown as E;
    Object.defineProperty(out, "__base", { value: base, enumerable: false });
    e.out = out;
    return out;
  }

  // ------------------------------------------------------------------------------ handlers

  /** React Flow's `onNodesChange`: selection, sizes and drags (removals go by `onDelete`). */
  onNodesChange = (changes: NodeChange<N>[]): void => {
    let changed = false;
    let moved = false;
    for (const c of changes) {
      switch (c.type) {
        case "select":
          if (c.selected ? !this.selectedNodes.has(c.id) : this.selectedNodes.has(c.id)) {
            if (c.selected) this.selectedNodes.add(c.id);
            else this.selectedNodes.delete(c.id);
            changed = true;
          }
          break;
        case "dimensions":
          if (c.dimensions !== undefined) {
            const m = this.measured.get(c.id);
            if (m === undefined || m.width !== c.dimensions.width || m.height !== c.dimensions.height) {
              this.measured.set(c.id, { width: c.dimensions.width, height: c.dimensions.height });
              changed = true;
            }
          }
          break;
        case "position":
          // A move while dragging shows at the frame; the drop at once.
          if (this.onPosition(c.id, c.position, c.dragging)) {
            if (c.dragging === true) moved = true;
            else changed = true;
          }
          break;
        default:
          break;
      }
    }
    if (changed) this.emit();
    else if (moved) {
      this.dirty = true;
      this.showAtFrame = true;
      this.scheduleFrame();
    }
  };

  /** React Flow's `onEdgesChange`: selection (removals go by `onDelete`). */
  onEdgesChange = (changes: EdgeChange<E>[]): void => {
    let changed = false;
    for (const c of changes) {
      if (c.type !== "select") continue;
      if (c.selected ? this.selectedEdges.has(c.id) : !this.selectedEdges.has(c.id)) continue;
      if (c.selected) this.selectedEdges.add(c.id);
      else this.selectedEdges.delete(c.id);
      changed = true;
    }
    if (changed) this.emit();
  };

  /** React Flow's `onConnect`: one action making the edge; the server may refuse it. */
  onConnect = (connection: Connection): void => {
    this.act("connect", () => this.mapping.connect(this.graph, connection));
  };

  /** React Flow's `onDelete`: the edges, then the nodes, in one action (one undo step). */
  onDelete = ({ nodes, edges }: { nodes: readonly Node[]; edges: readonly Edge[] }): void => {
    const ids = [...edges.map((e) => e.id), ...nodes.map((n) => n.id)].filter((id) => this.entries.has(id));
    if (ids.length === 0) return;
    this.act("delete", () => {
      for (const id of ids) if (this.client.get(id) !== undefined) this.client.delete(id);
    });
  };

  /** Deletes the nodes and edges selected on this page (a toolbar's button). */
  deleteSelected(): void {
    const edges = [...this.selectedEdges].map((id) => ({ id }) as Edge);
    const nodes = [...this.selectedNodes].map((id) => ({ id }) as Node);
    this.onDelete({ nodes, edges });
  }

  /** Selects exactly `ids` (nodes) on this page, e.g. what was just pasted. */
  select(ids: readonly string[]): void {
    this.selectedNodes.clear();
    this.selectedEdges.clear();
    for (const id of ids) this.selectedNodes.add(id);
    this.emit();
  }

  /** Undoes this client's latest step in the graph. */
  undo(): ActionHandle | null {
    return this.act("edit", () => this.client.undo(this.graph), true);
  }

  /** Redoes this client's latest undone step in the graph. */
  redo(): ActionHandle | null {
    return this.act("edit", () => this.client.redo(this.graph), true);
  }

  /** Forgets the last refusal (the UI dismissed it). */
  clearReject(): void {
    if (this.lastReject === null) return;
    this.lastReject = null;
    this.emit();
  }

  /**
   * Runs an edit, keeping a local refusal (a schema or state error thrown at once) as a reject;
   * the server's answer is followed synchronously ({@link settleActions}).
   */
  private act(what: FlowReject["what"], fn: () => ActionHandle | void, direct = false, drags: Drag[] = []): ActionHandle | null {
    try {
      const handle = direct ? (fn() as ActionHandle) : this.client.transaction(() => void fn());
      if (handle.status === "pending") this.tracked.set(handle, { what, drags });
      else for (const d of drags) d.pending--;
      return handle;
    } catch (e) {
      for (const d of drags) d.pending--;
      if (!isSyncError(e)) throw e;
      for (const d of drags) d.refused ??= e;
      this.setReject(explain(e, what));
      return null;
    }
  }

  /** The tracked actions the server answered: refusals kept, drags settled. */
  private settleActions(): void {
    for (const [handle, t] of this.tracked) {
      if (handle.status === "pending") continue;
      this.tracked.delete(handle);
      for (const d of t.drags) {
        d.pending--;
        if (d.ended) this.settleDrag(d);
      }
    }
  }

  private setReject(r: FlowReject): void {
    this.lastReject = r;
    this.emit();
  }

  /** A refusal seen by the client: an action of this store's is explained; a drag's marks it. */
  private onReject(error: RejectedError): void {
    for (const [handle, t] of this.tracked) {
      if (handle.id !== error.action) continue;
      for (const d of t.drags) d.refused ??= error;
      if (t.drags.length === 0) this.setReject(explain(error, t.what));
    }
    for (const c of error.changes) {
      const drag = "obj" in c ? this.drags.get(c.obj) : undefined;
      if (drag !== undefined && drag.refused === null) drag.refused = error;
    }
    this.settleActions();
  }

  // --------------------------------------------------------------------------------- drags

  private onPosition(id: string, position: XYPosition | undefined, dragging: boolean | undefined): boolean {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.kind !== "node") return false;
    let drag = this.drags.get(id);
    if (drag === undefined || drag.ended) {
      if (dragging !== true && position === undefined) return false;
      const start = (entry.base as NodeInput<N> | null)?.position ?? { x: 0, y: 0 };
      drag = { id, start, latest: position ?? start, sent: null, refused: null, ended: false, pending: 0 };
      this.drags.set(id, drag);
      // Every node dragged until the last one is dropped: one undo step.
      this.endUndoStep ??= this.client.beginUndoStep();
    }
    if (position !== undefined) drag.latest = { x: position.x, y: position.y };
    if (dragging === false) {
      drag.ended = true;
      this.flush();
      this.settleDrag(drag);
    } else this.scheduleFrame();
    return true;
  }

  private scheduleFrame(): void {
    if (this.frame === null) {
      this.frame = this.frames.request(() => {
        this.frame = null;
        // A fast display: wait for a later frame rather than send more than the server takes.
        if (Date.now() - this.lastSendMs < this.sendIntervalMinMs) this.scheduleFrame();
        else this.flush();
        if (this.showAtFrame) this.emit();
      });
    }
  }

  private stopFrames(): void {
    if (this.frame !== null) this.frames.cancel(this.frame);
    this.frame = null;
    this.showAtFrame = false;
    this.endDragStep();
  }

  /** The drags' undo step ends (nothing more is sent in it). */
  private endDragStep(): void {
    this.endUndoStep?.();
    this.endUndoStep = null;
  }

  /** Sends the positions of this frame, one action for every node moved (at once at a drag's end). */
  private flush(): void {
    if (this.frame !== null) {
      this.frames.cancel(this.frame);
      this.frame = null;
    }
    const moved = [...this.drags.values()].filter((d) => d.sent === null || d.sent.x !== d.latest.x || d.sent.y !== d.latest.y);
    this.send(moved, (d) => d.latest);
    // The last dragged node dropped, its last position sent: the step is complete.
    if (![...this.drags.values()].some((d) => !d.ended)) this.endDragStep();
  }

  private send(drags: Drag[], at: (d: Drag) => XYPosition): void {
    if (drags.length === 0) return;
    this.lastSendMs = Date.now();
    for (const d of drags) d.pending++;
    this.act(
      "drag",
      () => {
        for (const d of drags) {
          const obj = this.entries.get(d.id)?.obj;
          if (obj === undefined || obj.destroyed) continue;
          const p = at(d);
          this.mapping.setPosition(obj as NO, p);
          d.sent = p;
        }
      },
      false,
      drags,
    );
  }

  /** An ended drag whose actions are all answered: if any was refused, back to the start. */
  private settleDrag(d: Drag): void {
    if (d.pending > 0 || !d.ended || this.drags.get(d.id) !== d) return;
    this.drags.delete(d.id);
    if (d.refused !== null) {
      const obj = this.entries.get(d.id)?.obj;
      if (obj !== undefined && !obj.destroyed) {
        const start = d.start;
        this.act("drag", () => this.mapping.setPosition(obj as NO, start));
      }
      this.setReject(explain(d.refused, "drag"));
    }
    this.emit();
  }
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isSyncError(e: unknown): e is ObjectSyncError {
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" && typeof (e as { reason?: unknown }).reason === "string";
}
