/**
 * The graph's objects as views: a {@link NodeView} per `Node` (an absolutely positioned box
 * with a title `<input>` bound two-way to `title`, and its ports) and an {@link EdgeView} per
 * `Edge` (an SVG curve from one node's `out` port to another's `in` port). The client makes one
 * instance per object; `onStart` builds the DOM and subscribes, `onDestroy` removes it. What
 * the user does with the pointer is the editor's business ({@link GraphHost}).
 */

import type { JsonObject, ObjectSyncClient } from "../src/index.js";
import { bindInput } from "../src/index.js";
// Generated from the server's types by `objectsync codegen ts`: attribute getters are typed and
// checked by the compiler.
import { EdgeObject, NodeObject } from "../examples/generated/demo-types.js";
import type { Point } from "./geometry.js";
import { edgePath, inPort, insideCanvas, NODE, outPort, readPoint } from "./geometry.js";

/** What the views need from the editor that owns the page. */
export interface GraphHost {
  /** Where node elements go. */
  readonly nodeLayer: HTMLElement;
  /** Where edge elements go. */
  readonly edgeLayer: SVGGElement;
  /** A pointer went down on a node (not on a port). */
  nodePointerDown(node: NodeView, event: PointerEvent): void;
  /** A pointer went down on port `port` of a node. */
  portPointerDown(node: NodeView, port: string, event: PointerEvent): void;
  /** A pointer went down on an edge. */
  edgePointerDown(edge: EdgeView, event: PointerEvent): void;
}

const hosts = new WeakMap<ObjectSyncClient, GraphHost>();

/** Makes `host` the editor of the views of `client`'s objects. Call before connecting. */
export function setGraphHost(client: ObjectSyncClient, host: GraphHost): void {
  hosts.set(client, host);
}

function hostOf(client: ObjectSyncClient): GraphHost {
  const host = hosts.get(client);
  if (host === undefined) throw new Error("no graph host: call setGraphHost(client, editor) first");
  return host;
}

/** A view that can be selected. */
export interface Selectable {
  /** Shows or hides the selection. */
  setSelected(on: boolean): void;
}

/** A `Node`: a box at `pos`, colored by `color`, titled by `title`, with its `ports`. */
export class NodeView extends NodeObject implements Selectable {
  /** The node's element (`data-testid="node"`, `data-id`, `data-x`, `data-y`). */
  readonly el = document.createElement("div");
  private readonly titleInput = document.createElement("input");
  private readonly portRow = document.createElement("div");

  /** The position in the local view. */
  get position(): Point {
    return readPoint(this.pos.value);
  }

  override onStart(): void {
    const host = hostOf(this.client);
    const el = this.el;
    el.className = "node";
    el.dataset.testid = "node";
    el.dataset.id = this.id;
    el.style.width = `${NODE.width}px`;
    el.style.height = `${NODE.height}px`;

    const bar = document.createElement("div");
    bar.className = "node-bar";
    const input = this.titleInput;
    input.className = "node-title";
    input.dataset.testid = "node-title";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.maxLength = 200;
    input.setAttribute("aria-label", "node title");
    this.portRow.className = "node-ports";
    el.append(bar, input, this.portRow);

    this.own(bindInput(this.title, input));
    this.listen(this.pos, "changed", () => this.place());
    this.listen(this.color, "changed", () => this.paint());
    this.listen(this.ports, "changed", () => this.renderPorts());
    this.listenDom(el, "pointerdown", (e) => {
      if (e instanceof PointerEvent) host.nodePointerDown(this, e);
    });
    this.place();
    this.paint();
    this.renderPorts();
    host.nodeLayer.append(el);
  }

  override onDestroy(): void {
    this.el.remove();
  }

  /** Shows or hides the selection outline. */
  setSelected(on: boolean): void {
    this.el.classList.toggle("selected", on);
  }

  /** Plays the "the server refused that" animation (the node is back where the server has it). */
  flash(): void {
    this.el.classList.remove("refused");
    void this.el.offsetWidth; // restart the animation
    this.el.classList.add("refused");
  }

  /** Marks the node as being dragged. */
  setDragging(on: boolean): void {
    this.el.classList.toggle("dragging", on);
  }

  private place(): void {
    const p = this.position;
    this.el.style.left = `${p.x}px`;
    this.el.style.top = `${p.y}px`;
    this.el.dataset.x = String(p.x);
    this.el.dataset.y = String(p.y);
    // A position the server will refuse (shown while dragging, until the reject rolls it back).
    this.el.classList.toggle("outside", !insideCanvas(p));
  }

  private paint(): void {
    const color = this.color.value;
    // Only plain color notations reach the style; anything else falls back to the default.
    const safe = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|(rgb|hsl)a?\([0-9.,%\s/]+\))$/.test(color) ? color : "#4f7cff";
    this.el.style.setProperty("--node-color", safe);
  }

  private renderPorts(): void {
    const host = hostOf(this.client);
    const ports = this.ports.value.filter((p): p is string => typeof p === "string");
    this.portRow.replaceChildren();
    for (const name of ports) {
      const port = document.createElement("span");
      port.className = `port ${name === "in" ? "port-in" : "port-out"}`;
      port.dataset.port = name;
      port.dataset.testid = `port-${name}`;
      port.title = name === "in" ? "drop an edge here" : "drag from here to another node's input";
      const label = document.createElement("span");
      label.className = "port-label";
      label.textContent = name;
      port.append(label);
      port.addEventListener("pointerdown", (e) => host.portPointerDown(this, name, e));
      this.portRow.append(port);
    }
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An `Edge`: a curve from its `from` node's output to its `to` node's input. */
export class EdgeView extends EdgeObject implements Selectable {
  /** The edge's element (`data-testid="edge"`, `data-id`, `data-from`, `data-to`). */
  readonly g = document.createElementNS(SVG_NS, "g");
  private readonly hit = document.createElementNS(SVG_NS, "path");
  private readonly line = document.createElementNS(SVG_NS, "path");

  /** The id of the node it starts at (`null` once that node is gone). */
  get fromId(): string | null {
    return this.from.value;
  }

  /** The id of the node it ends at. */
  get toId(): string | null {
    return this.to.value;
  }

  override onStart(): void {
    const host = hostOf(this.client);
    this.g.setAttribute("class", "edge");
    this.g.dataset.testid = "edge";
    this.g.dataset.id = this.id;
    this.hit.setAttribute("class", "edge-hit");
    this.line.setAttribute("class", "edge-line");
    this.g.append(this.hit, this.line);
    this.listen(this.from, "changed", () => this.draw());
    this.listen(this.to, "changed", () => this.draw());
    this.listenDom(this.g, "pointerdown", (e) => {
      if (e instanceof PointerEvent) host.edgePointerDown(this, e);
    });
    this.draw();
    host.edgeLayer.append(this.g);
  }

  override onDestroy(): void {
    this.g.remove();
  }

  /** Shows or hides the selection. */
  setSelected(on: boolean): void {
    this.g.classList.toggle("selected", on);
  }

  /**
   * Redraws from the ends' positions now; hidden while an end is missing (a node deleted here
   * whose deletion the server has not confirmed yet: its reaction will delete the edge too).
   */
  draw(): void {
    const a = this.end("from");
    const b = this.end("to");
    this.g.dataset.from = this.fromId ?? "";
    this.g.dataset.to = this.toId ?? "";
    if (a === null || b === null) {
      this.g.style.display = "none";
      return;
    }
    this.g.style.display = "";
    const d = edgePath(outPort(a.position), inPort(b.position));
    if (this.line.getAttribute("d") !== d) {
      this.line.setAttribute("d", d);
      this.hit.setAttribute("d", d);
    }
  }

  private end(attr: "from" | "to"): NodeView | null {
    const t = (attr === "from" ? this.from : this.to).target;
    return t instanceof NodeView && !t.destroyed ? t : null;
  }
}

/** Attribute values of objects this client creates, until the server's full ones arrive. */
export const DEFAULTS: Readonly<Record<string, JsonObject>> = {
  Node: { title: "node", pos: { x: 100, y: 100 }, color: "#4f7cff", ports: ["in", "out"] },
  Edge: { from: null, to: null },
};
