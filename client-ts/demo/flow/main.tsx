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
import type { FlowMapping, FlowPresence, ObjectSyncFlow } from "objectsync-react-flow";
import { Cursors, explain, useFlowPointer, useObjectSyncFlow, ViewportLayer } from "objectsync-react-flow";
import type { Edge, XYPosition } from "@xyflow/react";
import { Background, ConnectionLineType, Controls, MarkerType, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import type { ReactNode } from "react";
import { StrictMode, useCallback, useEffect, useMemo } from "react";
import { createRoot } from "react-dom/client";
import { colorFor, friendlyName, NAME_LEN_MAX } from "../presence.js";
import { addNode, CANVAS, duplicate, readPos } from "./actions.js";
import { CanvasMiniMap } from "./minimap.js";
import type { GraphNode } from "./node.js";
import { GraphNodeComponent, NODE_SIZE } from "./node.js";

const nodeTypes = { graph: GraphNodeComponent };
const ARROW = { type: MarkerType.ArrowClosed, width: 18, height: 18 } as const;

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
    return { id: obj.id, source, target, sourceHandle: "out", targetHandle: "in", type: "smoothstep", markerEnd: ARROW, domAttributes };
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
  }, [client, graph, rf, flow]);
  const copy = useCallback(() => {
    if (graph !== undefined && flow.selection.length > 0) flow.select(duplicate(client, graph, flow.selection));
  }, [client, graph, flow]);
  useEditorKeys(flow, copy);
  return (
    <div className="app">
      <Toolbar canEdit={canEdit} flow={flow} onAdd={add} onDuplicate={copy} onFit={() => void rf.fitView({ padding: 0.2 })} />
      <div className="stage" data-testid="stage" {...pointer}>
        <ReactFlow<GraphNode, Edge>
          nodes={flow.nodes}
          edges={flow.edges}
          onNodesChange={flow.onNodesChange}
          onEdgesChange={flow.onEdgesChange}
          onConnect={flow.onConnect}
          onDelete={flow.onDelete}
          nodeTypes={nodeTypes}
          deleteKeyCode={["Delete", "Backspace"]}
          multiSelectionKeyCode={["Shift", "Control", "Meta"]}
          selectionKeyCode="Shift"
          connectionLineType={ConnectionLineType.SmoothStep}
          // Large graphs: only what is in view is in the DOM (React Flow's advice past a few hundred nodes).
          onlyRenderVisibleElements
          nodesDraggable={canEdit}
          nodesConnectable={canEdit}
          minZoom={0.1}
          maxZoom={2.5}
          defaultViewport={{ x: 40, y: 40, zoom: 1 }}
        >
          <CanvasBounds />
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
        <Refusal flow={flow} />
      </div>
      <StatusLine nodes={flow.nodes.length} edges={flow.edges.length} />
    </div>
  );
}

/** Keys for undo, redo and duplicate (React Flow handles Delete, Backspace and selection). */
function useEditorKeys(flow: ObjectSyncFlow<GraphNode, Edge>, duplicateSelection: () => void): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target;
      if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
      if (!(e.ctrlKey || e.metaKey)) return;
      const key = e.key.toLowerCase();
      if (key === "z" && !e.shiftKey) flow.undo();
      else if ((key === "z" && e.shiftKey) || key === "y") flow.redo();
      else if (key === "d") duplicateSelection();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [flow, duplicateSelection]);
}

interface ToolbarProps {
  readonly canEdit: boolean;
  readonly flow: ObjectSyncFlow<GraphNode, Edge>;
  readonly onAdd: () => void;
  readonly onDuplicate: () => void;
  readonly onFit: () => void;
}

/** One line down to 700 px: add, duplicate, delete, undo, redo, fit, people, the other editor. */
function Toolbar({ canEdit, flow, onAdd, onDuplicate, onFit }: ToolbarProps): ReactNode {
  return (
    <header className="toolbar" data-testid="toolbar">
      <h1>
        ObjectSync <span>flow</span>
      </h1>
      <button type="button" className="primary" data-testid="add-node" onClick={onAdd} disabled={!canEdit}>
        + Node
      </button>
      <button type="button" data-testid="duplicate" title="Duplicate the selection (Ctrl+D)" onClick={onDuplicate} disabled={!canEdit || flow.selection.length === 0}>
        Duplicate
      </button>
      <button type="button" data-testid="delete" title="Delete the selection (Del)" onClick={flow.deleteSelected} disabled={!canEdit}>
        Delete
      </button>
      <span className="sep" aria-hidden="true" />
      <button type="button" data-testid="undo" title="Undo your last change (Ctrl+Z)" onClick={() => flow.undo()} disabled={!canEdit}>
        Undo
      </button>
      <button type="button" data-testid="redo" title="Redo (Ctrl+Shift+Z)" onClick={() => flow.redo()} disabled={!canEdit}>
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
}

/** The last refusal in words (the binding's, or any other the client heard), until dismissed. */
function Refusal({ flow }: { flow: ObjectSyncFlow<GraphNode, Edge> }): ReactNode {
  const roomHandle = useRoom();
  const other = useStatus((s) => s.lastReject);
  const message = flow.reject?.message ?? (other === null ? null : explain(other, "edit").message);
  if (message === null) return null;
  const dismiss = () => {
    flow.clearReject();
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
}

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

function StatusLine({ nodes, edges }: { nodes: number; edges: number }): ReactNode {
  const status = useStatus();
  return (
    <footer className="status" data-testid="status">
      <span className={`dot ${status.state}`} aria-hidden="true" />
      <span data-testid="status-state">{status.state}</span>
      <span>
        room <code data-testid="status-room">{room}</code>
      </span>
      <span>
        version <code data-testid="status-version">{status.version ?? "–"}</code>
      </span>
      <span data-testid="status-pending">{status.pending === 0 ? "saved" : `${status.pending} pending`}</span>
      <span data-testid="status-count">
        {nodes} nodes, {edges} edges
      </span>
    </footer>
  );
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
