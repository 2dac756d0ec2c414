/**
 * The editor's custom React Flow node: a header in the node's color holding its title (the
 * whole header drags the node; double-click or the pencil renames it in place), an `in` handle
 * on the left and an `out` handle on the right, and an outline in the color of whoever else has
 * it selected. Title and color are read here with `useAttr`, so typing in one title re-renders
 * that node only.
 *
 * Cheap to draw by the thousand: the handles sit in the ports row (laid out, not positioned) and
 * a long title wraps instead of being cut, so nothing in a node is a layer of its own or clips.
 * Chromium's compositor works each frame through the painted runs of everything in view, and a
 * positioned or clipped part splits a node's run in several (the two together: 7.6 ms a frame of
 * that work down to 5.8 at 1,000 nodes on the benchmark's machine, `bench/flow.ts`).
 */

import type { NodeObject } from "../../examples/generated/demo-types.js";
import { bindInput } from "objectsync-client";
import { useAttr } from "objectsync-react";
import { useRemoteSelection } from "objectsync-react-flow";
import type { Node, NodeProps } from "@xyflow/react";
import { Handle, Position } from "@xyflow/react";
import type { CSSProperties, ReactNode } from "react";
import { memo, useEffect, useRef, useState } from "react";

/** The data of one node: its object (the component reads its attributes). */
export type GraphNodeData = { readonly obj: NodeObject };
/** A node of the editor. */
export type GraphNode = Node<GraphNodeData, "graph">;

/** Node size: the server checks the corner (`pos`), this is what is drawn. */
export const NODE_SIZE = { width: 176, height: 72 } as const;

/** The title in place: an input bound two-way to the `title` string (text edits, merged). */
function TitleInput({ obj, onDone }: { obj: NodeObject; onDone: () => void }): ReactNode {
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const input = ref.current;
    if (input === null) return;
    const off = bindInput(obj.title, input);
    input.focus();
    input.select();
    return off;
  }, [obj]);
  return (
    <input
      ref={ref}
      className="nodrag title-input"
      data-testid="node-title-input"
      aria-label="node title"
      maxLength={80}
      onBlur={onDone}
      onKeyDown={(e) => {
        if (e.key === "Enter" || e.key === "Escape") {
          e.preventDefault();
          onDone();
        }
        e.stopPropagation();
      }}
    />
  );
}

function GraphNodeView({ id, data, selected, dragging, positionAbsoluteX, positionAbsoluteY }: NodeProps<GraphNode>): ReactNode {
  const obj = data.obj;
  const title = useAttr(obj, "title");
  const color = useAttr(obj, "color");
  const others = useRemoteSelection(id);
  const [editing, setEditing] = useState(false);
  const outline = others[0]?.color;
  const style = { "--node-color": color, ...(outline === undefined ? {} : { "--remote-color": outline }) } as CSSProperties;
  return (
    <div
      className={`gnode${selected ? " selected" : ""}${dragging ? " dragging" : ""}${outline === undefined ? "" : " remote"}`}
      style={style}
      data-testid="node"
      data-id={id}
      data-x={Math.round(positionAbsoluteX)}
      data-y={Math.round(positionAbsoluteY)}
      title={others.length > 0 ? `selected by ${others.map((o) => o.name).join(", ")}` : undefined}
    >
      <div className="gnode-header" data-testid="node-header" onDoubleClick={() => setEditing(true)}>
        {editing ? (
          <TitleInput obj={obj} onDone={() => setEditing(false)} />
        ) : (
          <span className="gnode-title" data-testid="node-title">
            {title === "" ? "untitled" : title}
          </span>
        )}
        {!editing && (
          <button type="button" className="nodrag rename" data-testid="rename" title="Rename (or double-click the title)" onClick={() => setEditing(true)}>
            ✎
          </button>
        )}
      </div>
      <div className="gnode-ports">
        <Handle type="target" position={Position.Left} id="in" className="handle" data-testid="handle-in" />
        <span aria-hidden="true">in</span>
        <span aria-hidden="true">out</span>
        <Handle type="source" position={Position.Right} id="out" className="handle" data-testid="handle-out" />
      </div>
    </div>
  );
}

/** Memoized: React Flow re-renders a node when its node object changed, not when others did. */
export const GraphNodeComponent = memo(GraphNodeView);
