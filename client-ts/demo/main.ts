/**
 * The node-graph demo, browser side. Joins room `?room=NAME` (default `demo`) on the server
 * that serves this page and shows its `graph`: nodes to add, drag, rename and delete, edges to
 * draw between them, undo/redo of one's own changes, and everyone else's cursor. The server is
 * the authority: what it refuses (a node dragged off its canvas, an edge from a node to itself)
 * is rolled back here and the status line says why.
 *
 * Built by `npm run build:demo` into `dist/` (served by `objectsync serve --static
 * client-ts/demo/dist`, which `bash scripts/run` does).
 */

import { ObjectSyncClient } from "../src/index.js";
import { fingerprint, schema } from "../examples/generated/demo-types.js";
import { Editor } from "./editor.js";
import { FrameTask, Throttle } from "./frame.js";
import type { Point } from "./geometry.js";
import { BOUNDS, CANVAS, MARGIN, PAGE } from "./geometry.js";
import { friendlyName, NAME_LEN_MAX, PeopleView, presenceOf } from "./presence.js";
import { EdgeView, NodeView } from "./views.js";

/** The element with `id`, which must exist and be a `T`. */
function byId<T extends Element>(id: string, type: abstract new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no #${id}`);
  return el;
}

const viewport = byId("viewport", HTMLElement);
const canvas = byId("canvas", HTMLElement);
const world = byId("world", HTMLElement);
const bounds = byId("bounds", HTMLElement);
const edgeSvg = byId("edges", SVGSVGElement);
const edgeLayer = byId("edge-list", SVGGElement);
const preview = byId("preview", SVGPathElement);
const nodeLayer = byId("nodes", HTMLElement);
const cursorLayer = byId("cursors", HTMLElement);
const hint = byId("hint", HTMLElement);
const people = byId("people", HTMLElement);
const addButton = byId("add", HTMLButtonElement);
const deleteButton = byId("delete", HTMLButtonElement);
const undoButton = byId("undo", HTMLButtonElement);
const redoButton = byId("redo", HTMLButtonElement);
const statusState = byId("status-state", HTMLElement);
const statusRoom = byId("status-room", HTMLElement);
const statusVersion = byId("status-version", HTMLElement);
const statusPending = byId("status-pending", HTMLElement);
const statusReject = byId("status-reject", HTMLElement);
const statusNote = byId("status-note", HTMLElement);

// ----------------------------------------------------------------------------- room and name

const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const params = new URLSearchParams(location.search);
const asked = params.get("room");
const room = asked !== null && ROOM_NAME.test(asked) ? asked : "demo";
const NAME_KEY = "objectsync-demo-name";
const name = pickName();

/** `?name=` if given, else the name this tab had before, else a new friendly one. */
function pickName(): string {
  const fromUrl = params.get("name")?.trim().slice(0, NAME_LEN_MAX);
  if (fromUrl !== undefined && fromUrl !== "") return fromUrl;
  try {
    const kept = sessionStorage.getItem(NAME_KEY);
    if (kept !== null && kept !== "") return kept;
    const fresh = friendlyName();
    sessionStorage.setItem(NAME_KEY, fresh);
    return fresh;
  } catch {
    return friendlyName(); // storage disabled
  }
}

// ---------------------------------------------------------------------------------- layout

canvas.style.width = `${PAGE.width}px`;
canvas.style.height = `${PAGE.height}px`;
world.style.left = `${MARGIN.left}px`;
world.style.top = `${MARGIN.top}px`;
bounds.style.width = `${BOUNDS.width}px`;
bounds.style.height = `${BOUNDS.height}px`;
bounds.dataset.size = `${CANVAS.width} × ${CANVAS.height}`;
edgeSvg.setAttribute("width", String(BOUNDS.width + MARGIN.right));
edgeSvg.setAttribute("height", String(BOUNDS.height + MARGIN.bottom));
statusRoom.textContent = room;
document.title = `ObjectSync demo: ${room}`;

// ---------------------------------------------------------------------------------- client

// The generated schema with the views in place of the generated classes: its defaults fill the
// objects this tab creates until the server's arrive, and every edit is checked against its
// attribute's kind before it is sent. The types' fingerprint goes in every `hello`: after a deploy
// of other types the server refuses this tab (`schema_mismatch`) instead of letting it write.
const client = new ObjectSyncClient({ schema: { ...schema, Node: NodeView, Edge: EdgeView }, fingerprint });
const status = new FrameTask(() => renderStatus());
const editor = new Editor(client, { viewport, world, nodeLayer, edgeLayer, preview }, (message) => note(message));
const peopleView = new PeopleView(cursorLayer, people, name);
let lastReject = "";
let lastNote = "";

// Version and pending count change with every update, acks of this tab's own actions included.
client.on("sync", () => status.request());

function renderStatus(): void {
  const state = client.state;
  document.body.dataset.state = state;
  statusState.textContent = state;
  statusVersion.textContent = client.version === null ? "–" : String(client.version);
  const pending = client.ready ? client.pendingCount : 0;
  statusPending.textContent = pending === 0 ? "all saved" : `${pending} pending`;
  statusReject.textContent = lastReject === "" ? "" : `last reject: ${lastReject}`;
  statusNote.textContent = lastNote;
  const writable = client.ready && !client.readOnly;
  addButton.disabled = !writable;
  undoButton.disabled = !writable;
  redoButton.disabled = !writable;
  deleteButton.disabled = !writable || editor.selection === null;
  hint.hidden = !client.ready || editor.nodes.length > 0;
}

function note(message: string): void {
  lastNote = message;
  status.request();
}

client.on("state", () => status.request());
/** Whether this tab changed anything since it joined (so a lost undo history is news). */
let editedSinceJoin = false;
client.on("ready", ({ undoSteps, redoSteps }) => {
  // Undo histories live in the room's memory: after it unloaded or the server restarted, the
  // server holds none for this tab. Say so rather than let Ctrl+Z silently do nothing.
  if (editedSinceJoin && undoSteps === 0 && redoSteps === 0) {
    note("undo history starts afresh: the room was reloaded (your changes are all kept)");
  }
  editedSinceJoin = false;
  status.request();
});
client.on("change", ({ local }) => {
  if (local) editedSinceJoin = true;
});
client.on("change", () => status.request());
client.on("reject", ({ error }) => {
  lastReject = `${error.code}: ${error.reason}`;
  status.request();
});
client.on("error", ({ error }) => note(`error: ${error.code}: ${error.reason}`));
client.on("schema_mismatch", () => note("a new version of this editor was deployed: reload the page"));
client.on("presence", ({ client: who, state }) => peopleView.update(who, state));
editor.onChange(() => status.request());

// -------------------------------------------------------------------------------- presence

const presence = new Throttle<Point | null>(50, (cursor) => client.setPresence(presenceOf(name, cursor)));
let pointer: Point | null = null;
client.setPresence(presenceOf(name, null));
viewport.addEventListener("pointermove", (e) => {
  pointer = { x: e.clientX, y: e.clientY };
  presence.push(editor.worldPoint(e.clientX, e.clientY));
});
viewport.addEventListener("pointerleave", () => {
  pointer = null;
  presence.push(null);
});
viewport.addEventListener(
  "scroll",
  () => {
    if (pointer !== null) presence.push(editor.worldPoint(pointer.x, pointer.y));
  },
  { passive: true },
);

// ------------------------------------------------------------------------- buttons and keys

/** Asks the server to undo or redo this tab's latest change (a refusal shows as a reject). */
function undoRedo(kind: "undo" | "redo"): void {
  try {
    if (kind === "undo") client.undo();
    else client.redo();
  } catch (e) {
    note(e instanceof Error ? e.message : String(e));
  }
}

addButton.addEventListener("click", () => editor.addNode());
deleteButton.addEventListener("click", () => editor.deleteSelected());
undoButton.addEventListener("click", () => undoRedo("undo"));
redoButton.addEventListener("click", () => undoRedo("redo"));
viewport.addEventListener("pointerdown", (e) => {
  // A click on the empty canvas deselects.
  if (e.target === viewport || e.target === canvas || e.target === bounds || e.target === edgeSvg) editor.select(null);
});

document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (mod && !e.altKey && (key === "z" || key === "y")) {
    // The server's undo, also in a title: it knows what this tab typed and what others did.
    e.preventDefault();
    undoRedo(key === "y" || e.shiftKey ? "redo" : "undo");
    return;
  }
  if (typing) {
    if (e.key === "Escape" || e.key === "Enter") (e.target as HTMLElement).blur();
    return;
  }
  if (e.key === "Delete" || e.key === "Backspace") {
    if (editor.selection !== null) {
      e.preventDefault();
      editor.deleteSelected();
    }
  } else if (e.key === "Escape") {
    if (editor.escape()) e.preventDefault();
  }
});

// --------------------------------------------------------------------------------- connect

if (asked !== null && asked !== room) note(`"${asked}" is not a room name (1-64 of A-Z a-z 0-9 _ - .): joined "${room}"`);
const scheme = location.protocol === "https:" ? "wss" : "ws";
client
  .connect(`${scheme}://${location.host}/ws/${room}`)
  .catch((e: unknown) => note(`could not connect: ${e instanceof Error ? e.message : String(e)}`));
renderStatus();
