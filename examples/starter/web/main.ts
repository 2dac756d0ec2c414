/**
 * The notes page: joins the room named in the URL's hash (default `board`), shows every `Note`
 * of the board as a colored card with a text area bound two-way to its text, and lets anyone add
 * (double-click the board), drag, recolor and delete notes. Every change shows at once and is
 * confirmed or rolled back by the server (a refused change is reported in `#log`).
 */

import { bindInput, ObjectSyncClient } from "objectsync-client";
// Generated from the Rust types by `notes codegen ts --out web/schema.ts`: a misspelt type or
// attribute is a compile error here.
import { BoardObject, fingerprint, NoteObject, schema } from "./schema.js";

const board = byId("board");
const status = byId("status");
const log = byId("log");
const COLORS = ["yellow", "pink", "green", "blue"];

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/** A note: a card positioned by `x`/`y`, colored by `color`, its text area bound to `text`. */
class NoteView extends NoteObject {
  readonly card = document.createElement("div");
  override onStart(): void {
    const bar = document.createElement("div");
    bar.className = "bar";
    const recolor = button("color", () => this.color.set(COLORS[(COLORS.indexOf(this.color.value) + 1) % COLORS.length] ?? "yellow"));
    const remove = button("delete", () => this.delete());
    bar.append(recolor, remove);
    const text = document.createElement("textarea");
    this.card.dataset.id = this.id;
    this.card.append(bar, text);
    this.own(bindInput(this.text, text));
    const place = () => {
      this.card.className = `note ${this.color.value}`;
      this.card.style.left = `${this.x.value}px`;
      this.card.style.top = `${this.y.value}px`;
    };
    place();
    for (const topic of [this.color, this.x, this.y]) this.listen(topic, "changed", place);
    this.listenDom(bar, "pointerdown", (e) => this.drag(e as PointerEvent));
    board.append(this.card);
  }
  override onDestroy(): void {
    this.card.remove();
  }
  /** Moves the note with the pointer: each move is one change, shown at once. */
  private drag(start: PointerEvent): void {
    if (start.target instanceof HTMLButtonElement) return;
    const [x0, y0] = [this.x.value, this.y.value];
    const move = (e: PointerEvent) =>
      this.client.transaction(() => {
        this.x.set(Math.round(x0 + e.clientX - start.clientX));
        this.y.set(Math.round(y0 + e.clientY - start.clientY));
      });
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }
}

function button(label: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

const client = new ObjectSyncClient({ schema: { ...schema, Note: NoteView }, fingerprint });
client.on("state", ({ state }) => {
  document.body.dataset.state = state;
  status.textContent = state;
});
client.on("reject", ({ error }) => {
  log.textContent = `refused: ${error.reason}`;
});

board.addEventListener("dblclick", (e) => {
  const home = client.get("root")?.children.find((c) => c instanceof BoardObject);
  if (home === undefined || e.target !== board) return;
  client.create(NoteView, home, { attrs: { text: "", x: Math.max(0, e.offsetX - 90), y: Math.max(0, e.offsetY - 20) } });
});

const room = location.hash.slice(1) || "board";
const scheme = location.protocol === "https:" ? "wss" : "ws";
client.connect(`${scheme}://${location.host}/ws/${room}`).catch((e: unknown) => {
  log.textContent = `could not connect: ${e instanceof Error ? e.message : String(e)}`;
});
