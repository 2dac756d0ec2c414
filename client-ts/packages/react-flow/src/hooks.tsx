/**
 * The React side of the binding: `useObjectSyncFlow` (a graph SObject as React Flow's controlled
 * props), the presence it shares (this page's selection; the pointer in flow coordinates, by
 * `useFlowPointer`), `useRemoteSelection` for custom nodes, `<Cursors/>` and `<ViewportLayer/>`.
 */

import type { ActionHandle, SObject } from "objectsync-client";
import type { Other } from "objectsync-react";
import { useClient, useOthers, useRoom } from "objectsync-react";
import type { Connection, Edge, EdgeChange, Node, NodeChange, XYPosition } from "@xyflow/react";
import type { ReactFlowState } from "@xyflow/react";
import { useReactFlow, useStore } from "@xyflow/react";
import type { CSSProperties, PointerEvent as ReactPointerEvent, ReactNode } from "react";
import { useCallback, useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import { createPortal } from "react-dom";
import type { FlowReject } from "./explain.js";
import type { FlowMapping, FlowStoreOptions } from "./store.js";
import type { Selector } from "./selections.js";
import { selectionIndex } from "./selections.js";
import { FlowStore } from "./store.js";

/** What a page of a flow shares through presence (the binding reads and writes these keys). */
export interface FlowPresence {
  /** The name to show by its cursor. */
  readonly name?: string;
  /** Its color (CSS). */
  readonly color?: string;
  /** The pointer in flow coordinates; `null` while it is off the diagram. */
  readonly cursor?: XYPosition | null;
  /** The ids of the nodes selected on that page. */
  readonly selection?: readonly string[];
}

/** What `useObjectSyncFlow` returns: spread the first six into `<ReactFlow>`. */
export interface ObjectSyncFlow<N extends Node = Node, E extends Edge = Edge> {
  readonly nodes: N[];
  readonly edges: E[];
  readonly onNodesChange: (changes: NodeChange<N>[]) => void;
  readonly onEdgesChange: (changes: EdgeChange<E>[]) => void;
  readonly onConnect: (connection: Connection) => void;
  readonly onDelete: (params: { nodes: N[]; edges: E[] }) => void;
  /** The last refusal, in words (no ids); `null` if none or dismissed. */
  readonly reject: FlowReject | null;
  readonly clearReject: () => void;
  /** The nodes selected on this page. */
  readonly selection: readonly string[];
  /** Selects exactly these nodes on this page. */
  readonly select: (ids: readonly string[]) => void;
  /** Deletes what is selected on this page (one action). */
  readonly deleteSelected: () => void;
  /** Undo and redo of this client's own changes in the graph. */
  readonly undo: () => ActionHandle | null;
  readonly redo: () => ActionHandle | null;
}

/** Options of `useObjectSyncFlow` beside the mapping. */
export interface ObjectSyncFlowOptions extends FlowStoreOptions {
  /** Share this page's selection through presence (`selection`; default true). */
  readonly shareSelection?: boolean;
}

const EMPTY = { nodes: [], edges: [], reject: null, selection: [] };
const noop = () => {};

/**
 * A graph SObject (`undefined` while it loads) as a controlled React Flow diagram; `mapping`
 * says which children are nodes and edges and how they map (see `FlowMapping`). The latest
 * mapping is used without remaking anything, so it may be an inline object.
 */
export function useObjectSyncFlow<NO extends SObject, EO extends SObject, N extends Node = Node, E extends Edge = Edge>(
  graph: SObject | null | undefined,
  mapping: FlowMapping<NO, EO, N, E>,
  options: ObjectSyncFlowOptions = {},
): ObjectSyncFlow<N, E> {
  const client = useClient();
  const room = useRoom();
  const store = useMemo(
    () => (graph === null || graph === undefined ? null : new FlowStore<NO, EO, N, E>(client, graph, mapping, options)),
    // The store is one graph's; mapping and options are read through it (updated below).
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [client, graph],
  );
  if (store !== null) store.mapping = mapping;
  useEffect(() => () => store?.dispose(), [store]);
  const snap = useSyncExternalStore(store?.subscribe ?? subscribeNothing, store?.getSnapshot ?? emptySnapshot, store?.getSnapshot ?? emptySnapshot);
  const share = options.shareSelection ?? true;
  useEffect(() => {
    if (!share) return;
    const mine = (room.presence ?? {}) as FlowPresence;
    const same = (mine.selection ?? []).length === snap.selection.length && snap.selection.every((s, i) => mine.selection?.[i] === s);
    if (!same) room.setPresence({ ...(mine as object), selection: [...snap.selection] } as never);
  }, [room, share, snap.selection]);
  return {
    nodes: snap.nodes as N[],
    edges: snap.edges as E[],
    onNodesChange: store?.onNodesChange ?? noop,
    onEdgesChange: store?.onEdgesChange ?? noop,
    onConnect: store?.onConnect ?? noop,
    onDelete: store?.onDelete ?? noop,
    reject: snap.reject,
    clearReject: useCallback(() => store?.clearReject(), [store]),
    selection: snap.selection,
    select: useCallback((ids: readonly string[]) => store?.select(ids), [store]),
    deleteSelected: useCallback(() => store?.deleteSelected(), [store]),
    undo: useCallback(() => store?.undo() ?? null, [store]),
    redo: useCallback(() => store?.redo() ?? null, [store]),
  };
}
const subscribeNothing = () => () => {};
const emptySnapshot = () => EMPTY;

/** How a pointer goes into this client's presence state (default: `{ cursor }`). */
export type PointerWriter = (cursor: XYPosition | null) => Record<string, unknown>;
const writeCursor: PointerWriter = (cursor) => ({ cursor });

/**
 * Shares the pointer in flow coordinates through presence, at most every `intervalMs` (the
 * server rate-limits what a client sends), merged into this client's state by `write` (another
 * shape for other pages of the room, e.g. `{ x, y }`). Spread the result on the element around
 * `<ReactFlow>` (it must be inside a `<ReactFlowProvider>`).
 */
export function useFlowPointer(
  intervalMs = 50,
  write: PointerWriter = writeCursor,
): {
  onPointerMove: (e: ReactPointerEvent) => void;
  onPointerLeave: () => void;
} {
  const flow = useReactFlow();
  const room = useRoom();
  const pending = useRef<{ cursor: XYPosition | null } | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastSentMs = useRef(0);
  const latestWrite = useRef(write);
  latestWrite.current = write;
  const send = useCallback(() => {
    timer.current = null;
    const p = pending.current;
    if (p === null) return;
    pending.current = null;
    lastSentMs.current = Date.now();
    const mine = (room.presence ?? {}) as object;
    room.setPresence({ ...mine, ...latestWrite.current(p.cursor) } as never);
  }, [room]);
  const push = useCallback(
    (cursor: XYPosition | null) => {
      pending.current = { cursor };
      if (timer.current !== null) return;
      const wait = Math.max(0, intervalMs - (Date.now() - lastSentMs.current));
      timer.current = setTimeout(send, wait);
    },
    [intervalMs, send],
  );
  useEffect(
    () => () => {
      if (timer.current !== null) clearTimeout(timer.current);
    },
    [],
  );
  const onPointerMove = useCallback(
    (e: ReactPointerEvent) => {
      const p = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      push({ x: Math.round(p.x), y: Math.round(p.y) });
    },
    [flow, push],
  );
  const onPointerLeave = useCallback(() => push(null), [push]);
  return { onPointerMove, onPointerLeave };
}

/**
 * The others who selected node `id` (for a custom node's outline): re-renders only when they
 * change, and costs nothing per node when someone's cursor moves (see `selections.ts`).
 */
export function useRemoteSelection(id: string): readonly Selector[] {
  const client = useClient();
  const index = selectionIndex(client);
  const subscribe = useCallback((fn: () => void) => index.subscribe(id, fn), [index, id]);
  const read = () => index.of(id);
  return useSyncExternalStore(subscribe, read, read);
}

function isPresence(p: unknown): p is FlowPresence {
  return typeof p === "object" && p !== null && !Array.isArray(p);
}

/** Props of {@link Cursors}. */
export interface CursorsProps {
  /** Draws one cursor (default: an arrow and the name in its color). */
  readonly render?: (other: Other<FlowPresence>, cursor: XYPosition) => ReactNode;
  /** A name for those without one (`user.name` from the server first). */
  readonly fallbackName?: (clientId: string) => string;
  /** Where another client's pointer is, from its presence (default: its `cursor`). */
  readonly read?: (presence: unknown) => XYPosition | null;
}

/** The default reader: `cursor` of a `FlowPresence`. */
function readCursor(presence: unknown): XYPosition | null {
  const c = isPresence(presence) ? presence.cursor : null;
  return c !== null && c !== undefined && typeof c.x === "number" && typeof c.y === "number" ? c : null;
}

const domNodeOf = (s: ReactFlowState) => s.domNode;

/**
 * Draws its children in flow coordinates (they follow zoom and pan), as React Flow's
 * `ViewportPortal` does, but finds the element to draw into once: `ViewportPortal` looks it up
 * (a `querySelector` over the whole diagram) on every change of React Flow's state, every node
 * moved included. Put it inside `<ReactFlow>`.
 */
export function ViewportLayer({ children }: { readonly children?: ReactNode }): ReactNode {
  const domNode = useStore(domNodeOf);
  const layer = useMemo(() => domNode?.querySelector<HTMLElement>(".react-flow__viewport-portal") ?? null, [domNode]);
  return layer === null ? null : createPortal(children, layer);
}

/**
 * The others' pointers where they are in the diagram (flow coordinates: they follow zoom and
 * pan). Put it inside `<ReactFlow>`.
 */
export function Cursors(props: CursorsProps): ReactNode {
  const others = useOthers<FlowPresence>();
  return (
    <ViewportLayer>
      {others.map((o) => {
        const p = isPresence(o.presence) ? o.presence : {};
        const cursor = (props.read ?? readCursor)(o.presence);
        if (cursor === null) return null;
        const name = o.user?.name ?? p.name ?? props.fallbackName?.(o.clientId) ?? "someone";
        return (
          <div
            key={o.clientId}
            className="objectsync-cursor"
            data-testid="cursor"
            data-client={o.clientId}
            data-x={cursor.x}
            data-y={cursor.y}
            style={cursorStyle(cursor)}
          >
            {props.render?.(o, cursor) ?? <DefaultCursor name={name} color={p.color ?? "#e5484d"} />}
          </div>
        );
      })}
    </ViewportLayer>
  );
}

function cursorStyle(p: XYPosition): CSSProperties {
  return { position: "absolute", transform: `translate(${p.x}px, ${p.y}px)`, pointerEvents: "none", zIndex: 1000 };
}

function DefaultCursor({ name, color }: { name: string; color: string }): ReactNode {
  return (
    <>
      <svg width="18" height="18" viewBox="0 0 18 18" style={{ display: "block" }}>
        <path d="M1 1 L1 15 L5 11 L8 17 L10.5 16 L7.5 10 L13 10 Z" fill={color} stroke="white" strokeWidth="1.2" />
      </svg>
      <span style={{ background: color, color: "white", font: "12px sans-serif", padding: "1px 6px", borderRadius: 8, whiteSpace: "nowrap" }}>{name}</span>
    </>
  );
}
