/**
 * The flow editor: the demo's node graph (room `?room=NAME`, default `demo`, the same rooms as
 * the vanilla editor at `/`) on React Flow through `objectsync-react` and
 * `objectsync-react-flow`. Zoom and pan, minimap, multi-select (Shift/Ctrl/Cmd-click) and box
 * select (Shift-drag), delete (Del, Backspace or the button), duplicate (Ctrl+D), connect by
 * dragging from a node's `out` handle to another's `in`, rename in place, the others' cursors,
 * selections and names, undo/redo of one's own changes, and the server's refusals in words.
 *
 * Built by `npm run build:demo` into `demo/dist/flow/`, served at `/flow/` by `bash scripts/run`.
 */

import "@xyflow/react/dist/style.css";
import type { JsonObject } from "objectsync-client";
import { EdgeObject, GraphObject, NodeObject, schema } from "../../examples/generated/demo-types.js";
import { ObjectSyncProvider, useClient, useObject, useOthers, useRoom, useStatus } from "objectsync-react";
import type { FlowMapping, FlowPresence, FlowReject } from "objectsync-react-flow";
import { Cursors, EdgeLayer, explain, layeredEdge, smoothStepPath, useFlowPointer, useObjectSyncFlow, ViewportLayer } from "objectsync-react-flow";
import type { Edge, XYPosition } from "@xyflow/react";
import { Background, ConnectionLineType, Controls, MarkerType, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import type { ReactNode } from "react";
import { memo, StrictMode, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { colorFor, friendlyName, NAME_LEN_MAX } from "../presence.js";
import { addNode, CANVAS, duplicate, readPos } from "./actions.js";
import { CanvasMiniMap } from "./minimap.js";
import type { GraphNode } from "./node.js";
import { GraphNodeComponent, NODE_SIZE } from "./node.js";

const nodeTypes = { graph: GraphNodeComponent };
// Every line on one canvas (EdgeLayer): Chromium sorts what is painted into layers at every frame, and the edges' SVG lines were the largest part of that.
const edgeTypes = { graph: layeredEdge(smoothStepPath) };
/** The edges' colors (readable when they run backwards: smoothstep routes around the nodes). */
const EDGE_STROKE = "#57606a";
const SELECTED_STROKE = "#1f6feb";
const ARROW = { type: MarkerType.ArrowClosed, width: 18, height: 18 } as const;
// Props of <ReactFlow> made once: a new array at every render makes React Flow listen to the keys again.
const DELETE_KEYS = ["Delete", "Backspace"];
const MULTI_SELECT_KEYS = ["Shift", "Control", "Meta"];
const DEFAULT_VIEWPORT = { x: 40, y: 40, zoom: 1 } as const;

// ----------------------------------------------------------------------------- room and name

const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const params = new URLSearchParams(location.search);
const asked = params.get("room");
const room = asked !== null && ROOM_NAME.test(asked) ? asked : "demo";
const NAME_KEY = "objectsync-demo-name";
const name = pickName();
const myColor = colorFor(name);

function pickName(): string {
  const given = params.get("name")?.trim().slice(0, NAME_LEN_MAX);
  if (given !== undefined && given !== "") return given;
  const kept = sessionStorage.getItem(NAME_KEY);
  if (kept !== null && kept !== "") return kept;
  const made = friendlyName();
  sessionStorage.setItem(NAME_KEY, made);
  return made;
}

// ------------------------------------------------------------------------------------ mapping


/** The demo's types as React Flow: `Node`s with the custom node, `Edge`s from `out` to `in`. */
const mapping: FlowMapping<NodeObject, EdgeObject, GraphNode, Edge> = {
  nodeType: NodeObject,
  edgeType: EdgeObject,
  // Title and color are read by the node component itself (useAttr): only a move re-maps.
  watch: ["pos"],
  toNode: (obj) => ({ id: obj.id, type: "graph", position: readPos(obj), data: { obj } }),
  toEdge: (obj) => {
    const source = obj.from.value;
    const target = obj.to.value;
    if (source === null || target === null) return null;
    // Ends on the element for tests and tools (React Flow's own `data-testid` is `rf__edge-<id>`).
    const domAttributes = { "data-from": source, "data-to": target } as Edge["domAttributes"];
    return { id: obj.id, source, target, sourceHandle: "out", targetHandle: "in", type: "graph", markerEnd: ARROW, domAttributes };
  },
  setPosition: (obj, p) => void obj.pos.set({ x: Math.round(p.x), y: Math.round(p.y) } as JsonObject),
  connect: (graph, c) => void graph.client.create(EdgeObject, graph, { attrs: { from: c.source, to: c.target } }),
};

/**
 * The pointer in presence for both editors of a room: `cursor` for this one, `x`/`y` for the
 * vanilla editor (the same coordinates: a node's `pos`).
 */
function writePointer(cursor: XYPosition | null): Record<string, unknown> {
  return { cursor, x: cursor?.x, y: cursor?.y };
}

/** Another page's pointer: this editor's `cursor`, or the vanilla editor's `x`/`y`. */
function readPointer(presence: unknown): XYPosition | null {
  if (typeof presence !== "object" || presence === null) return null;
  const p = presence as { cursor?: { x?: unknown; y?: unknown } | null; x?: unknown; y?: unknown };
  const c = p.cursor ?? { x: p.x, y: p.y };
  return typeof c.x === "number" && typeof c.y === "number" ? { x: c.x, y: c.y } : null;
}

/** A node's color in the minimap. */
function minimapColor(n: GraphNode): string {
  return n.data.obj.color.value || "#4f7cff";
}


// ------------------------------------------------------------------------------------- editor

function Editor(): ReactNode {
  const client = useClient<typeof schema>();
  const roomHandle = useRoom();
  const graph = useObject("graph", GraphObject);
  const flow = useObjectSyncFlow(graph, mapping);
  const rf = useReactFlow<GraphNode, Edge>();
  const pointer = useFlowPointer(50, writePointer);
  const state = useStatus((s) => s.state);
  const ready = useStatus((s) => s.ready);
  const readOnly = useStatus((s) => s.readOnly);
  useEffect(() => {
    document.body.dataset.state = state;
  }, [state]);
  useEffect(() => {
    const mine = (roomHandle.presence ?? {}) as object;
    roomHandle.setPresence({ ...mine, name, color: myColor } as never);
  }, [roomHandle]);
  const canEdit = ready && !readOnly && graph !== undefined;
  const add = useCallback(() => {
    if (graph === undefined) return;
    const stage = document.querySelector(".stage")?.getBoundingClientRect();
    const center = rf.screenToFlowPosition({ x: (stage?.left ?? 0) + (stage?.width ?? 800) / 2, y: (stage?.top ?? 0) + (stage?.height ?? 600) / 2 });
    flow.select([addNode(client, graph, center, rf.getNodes().map((n) => n.position))]);
  }, [client, graph, rf, flow.select]);
  const { selection, select, undo, redo, deleteSelected, reject, clearReject } = flow;
  const copy = useCallback(() => {
    if (graph !== undefined && selection.length > 0) select(duplicate(client, graph, selection));
  }, [client, graph, selection, select]);
  const fit = useCallback(() => void rf.fitView({ padding: 0.2 }), [rf]);
  useEditorKeys(undo, redo, copy);
  return (
    <div className="app">
      <Toolbar canEdit={canEdit} hasSelection={selection.length > 0} onAdd={add} onDuplicate={copy} onDelete={deleteSelected} onUndo={undo} onRedo={redo} onFit={fit} />
      <div className="stage" data-testid="stage" {...pointer}>
        <ReactFlow<GraphNode, Edge>
          nodes={flow.nodes}
          edges={flow.edges}
          onNodesChange={flow.onNodesChange}
          onEdgesChange={flow.onEdgesChange}
          onConnect={flow.onConnect}
          onDelete={flow.onDelete}
          nodeTypes={nodeTypes}
          edgeTypes={edgeTypes}
          deleteKeyCode={DELETE_KEYS}
          multiSelectionKeyCode={MULTI_SELECT_KEYS}
          selectionKeyCode="Shift"
          connectionLineType={ConnectionLineType.SmoothStep}
          // Large graphs: only what is in view is in the DOM (React Flow's advice past a few hundred nodes).
          onlyRenderVisibleElements
          nodesDraggable={canEdit}
          nodesConnectable={canEdit}
          minZoom={0.1}
          maxZoom={2.5}
          defaultViewport={DEFAULT_VIEWPORT}
        >
          <CanvasBounds />
          <EdgeLayer stroke={EDGE_STROKE} strokeWidth={2} selectedStroke={SELECTED_STROKE} selectedStrokeWidth={3} />
          <Background gap={24} />
          <CanvasMiniMap nodeColor={minimapColor} />
          <Controls showInteractive={false} />
          <Cursors read={readPointer} />
        </ReactFlow>
        {flow.nodes.length === 0 && ready && (
          <p className="hint" data-testid="hint">
            Add a node, then open this page in a second window: drag nodes by their header, double-click a title to rename it, drag from a node's <b>out</b> handle to another's <b>in</b> to connect them.
          </p>
        )}
        <Refusal reject={reject} clearReject={clearReject} />
      </div>
      <StatusLine nodes={flow.nodes.length} edges={flow.edges.length} />
    </div>
  );
}

/** Keys for undo, redo and duplicate (React Flow handles Delete, Backspace and selection). */
function useEditorKeys(undo: () => unknown, redo: () => unknown, duplicateSelection: () => void): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target;
      if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const key = e.key.toLowerCase();
      if (key === "z" && !e.shiftKey) undo();
      else if ((key === "z" && e.shiftKey) || key === "y") redo();
      else if (key === "d") duplicateSelection();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo, duplicateSelection]);
}

interface ToolbarProps {
  readonly canEdit: boolean;
  readonly hasSelection: boolean;
  readonly onAdd: () => void;
  readonly onDuplicate: () => void;
  readonly onDelete: () => void;
  readonly onUndo: () => unknown;
  readonly onRedo: () => unknown;
  readonly onFit: () => void;
}

/**
 * One line down to 700 px: add, duplicate, delete, undo, redo, fit, people, the other editor.
 * Memoized, as the status line and the refusal are: the editor renders at every frame of a
 * drag, these only when what they show changed.
 */
const Toolbar = memo(function Toolbar({ canEdit, hasSelection, onAdd, onDuplicate, onDelete, onUndo, onRedo, onFit }: ToolbarProps): ReactNode {
  return (
    <header className="toolbar" data-testid="toolbar">
      <h1>
        ObjectSync <span>flow</span>
      </h1>
      <button type="button" className="primary" data-testid="add-node" onClick={onAdd} disabled={!canEdit}>
        + Node
      </button>
      <button type="button" data-testid="duplicate" title="Duplicate the selection (Ctrl+D)" onClick={onDuplicate} disabled={!canEdit || !hasSelection}>
        Duplicate
      </button>
      <button type="button" data-testid="delete" title="Delete the selection (Del)" onClick={onDelete} disabled={!canEdit}>
        Delete
      </button>
      <span className="sep" aria-hidden="true" />
      <button type="button" data-testid="undo" title="Undo your last change (Ctrl+Z)" onClick={() => onUndo()} disabled={!canEdit}>
        Undo
      </button>
      <button type="button" data-testid="redo" title="Redo (Ctrl+Shift+Z)" onClick={() => onRedo()} disabled={!canEdit}>
        Redo
      </button>
      <button type="button" data-testid="fit" title="Show the whole graph" onClick={onFit}>
        Fit
      </button>
      <People />
      <nav className="links">
        <a href="../">vanilla</a>
      </nav>
    </header>
  );
});

/** The last refusal in words (the binding's, or any other the client heard), until dismissed. */
const Refusal = memo(function Refusal({ reject, clearReject }: { reject: FlowReject | null; clearReject: () => void }): ReactNode {
  const roomHandle = useRoom();
  const other = useStatus((s) => s.lastReject);
  const message = reject?.message ?? (other === null ? null : explain(other, "edit").message);
  if (message === null) return null;
  const dismiss = () => {
    clearReject();
    roomHandle.clearReject();
  };
  return (
    <div className="reject" role="alert" data-testid="reject">
      <span>{message}</span>
      <button type="button" aria-label="dismiss" onClick={dismiss}>
        ×
      </button>
    </div>
  );
});

/** The area the server accepts (a node's corner inside), drawn in flow coordinates. */
function CanvasBounds(): ReactNode {
  return (
    <ViewportLayer>
      <div className="bounds" style={{ width: CANVAS.width + NODE_SIZE.width, height: CANVAS.height + NODE_SIZE.height }} aria-hidden="true">
        <span>
          canvas {CANVAS.width} × {CANVAS.height}: the server refuses nodes outside
        </span>
      </div>
    </ViewportLayer>
  );
}

/** A chip per person (me first), in their color. */
function People(): ReactNode {
  const others = useOthers<FlowPresence>();
  return (
    <div className="people" data-testid="people" aria-label="people in this room">
      <span className="person me" data-testid="me" style={{ background: myColor }} title={`${name} (you)`}>
        {initials(name)}
      </span>
      {others.map((o) => {
        const who = o.user?.name ?? o.presence.name ?? "someone";
        return (
          <span key={o.clientId} className="person" data-testid="person" data-client={o.clientId} style={{ background: o.presence.color ?? "#888" }} title={who}>
            {initials(who)}
          </span>
        );
      })}
    </div>
  );
}

function initials(who: string): string {
  const parts = who.split(/\s+/).filter((p) => p !== "");
  return parts.map((p) => p[0] ?? "").join("").slice(0, 2).toUpperCase() || "?";
}

/** How often the status line's figures change on screen at most (a drag changes them at every frame). */
const STATUS_EVERY_MS = 250;

const StatusLine = memo(function StatusLine({ nodes, edges }: { nodes: number; edges: number }): ReactNode {
  const state = useStatus((s) => s.state);
  // The version and the pending count change with every message while something moves: shown
  // at most four times a second, so the status line is not laid out and painted at every frame.
  const version = useThrottled(useStatus((s) => s.version), STATUS_EVERY_MS);
  const pending = useThrottled(useStatus((s) => s.pending), STATUS_EVERY_MS);
  return (
    <footer className="status" data-testid="status">
      <span className={`dot ${state}`} aria-hidden="true" />
      <span data-testid="status-state">{state}</span>
      <span>
        room <code data-testid="status-room">{room}</code>
      </span>
      <span>
        version <code data-testid="status-version">{version ?? "–"}</code>
      </span>
      <span data-testid="status-pending">{pending === 0 ? "saved" : `${pending} pending`}</span>
      <span data-testid="status-count">
        {nodes} nodes, {edges} edges
      </span>
    </footer>
  );
});

/** `value`, changing at most every `ms`: a change within `ms` of the last shows when they are up. */
function useThrottled<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value);
  const shownAt = useRef(0);
  useEffect(() => {
    if (Object.is(value, shown)) return;
    const show = () => {
      shownAt.current = performance.now();
      setShown(value);
    };
    const wait = shownAt.current + ms - performance.now();
    if (wait <= 0) {
      show();
      return;
    }
    const timer = setTimeout(show, wait);
    return () => clearTimeout(timer);
  }, [value, shown, ms]);
  return shown;
}

function App(): ReactNode {
  const url = useMemo(() => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/${room}`, []);
  return (
    <ObjectSyncProvider url={url} client={{ schema }}>
      <ReactFlowProvider>
        <Editor />
      </ReactFlowProvider>
    </ObjectSyncProvider>
  );
}

const root = document.getElementById("app");
if (root === null) throw new Error("the page has no #app");
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
