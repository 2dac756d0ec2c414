/**
 * objectsync-react-flow: a graph SObject as a controlled React Flow (`@xyflow/react` 12)
 * diagram with the server as the authority. `useObjectSyncFlow(graph, mapping)` gives `nodes`,
 * `edges` and the handlers React Flow expects; drags stream as optimistic edits (one action per
 * animation frame, one undo step per drag), selection stays on the page (shared through
 * presence), connections and deletions are actions the server may refuse, and a refused drag
 * returns to where it started, with the reason in words (`reject`). `<Cursors/>` draws the
 * others' pointers in flow coordinates (`useFlowPointer` shares this page's). `<EdgeLayer/>` and
 * `layeredEdge` draw a large diagram's edges in one `<svg>`.
 */

export type { EdgeLayerProps, EdgePath, LayeredEdgeComponent } from "./edges.js";
export { bezierPath, EdgeLayer, layeredEdge, smoothStepPath, straightPath } from "./edges.js";
export type { FlowReject } from "./explain.js";
export { explain, withoutIds } from "./explain.js";
export type { EdgeInput, FlowMapping, FlowSnapshot, FlowStoreOptions, FrameScheduler, NodeInput, ObjectClass } from "./store.js";
export { FlowStore } from "./store.js";
export type { Selector } from "./selections.js";
export { SelectionIndex, selectionIndex } from "./selections.js";
export type { CursorsProps, FlowPresence, ObjectSyncFlow, ObjectSyncFlowOptions, PointerWriter } from "./hooks.js";
export { Cursors, useFlowPointer, useObjectSyncFlow, useRemoteSelection, ViewportLayer } from "./hooks.js";
