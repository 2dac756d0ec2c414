/**
 * The DOM example, browser side: joins room `dom` on the server that serves this page, renders
 * the room's `Div` objects (`page`) and their `Text` children (`hello`) with the client's DOM
 * bindings (`bindText` for the text, `bindStyle` for the style dicts), binds an `<input>`
 * two-way to `hello.text` with `bindInput`, and toggles `hello.style["font-weight"]` with a
 * button. The Rust example `dom_text` changes the text and its color every second.
 *
 * Built by `npm run build:examples` into `dist/` (served by
 * `target/debug/examples/dom_text --static client-ts/examples/dom/dist`).
 */

import { bindInput, bindStyle, bindText, ObjectSyncClient, SObject } from "../../src/index.js";
// Generated from the server's types by `objectsync codegen ts`: a misspelt attribute is a
// compile error here.
import { DivObject, fingerprint, schema, TextObject } from "../generated/demo-types.js";

/** Where root-level views go. */
const app = byId("app", HTMLElement);
const input = byId("edit", HTMLInputElement);
const bold = byId("bold", HTMLButtonElement);
const status = byId("status", HTMLElement);
const log = byId("log", HTMLElement);

/** The element with `id`, which must exist and be a `T`. */
function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no #${id}`);
  return el;
}

/** The element each rendered object shows as. */
const elements = new WeakMap<SObject, HTMLElement>();

/** Puts `el` under its object's parent's element (or `#app` under the root), in child order. */
function mount(obj: SObject, el: HTMLElement): void {
  elements.set(obj, el);
  const parent = obj.parent;
  const container = parent === null ? null : (elements.get(parent) ?? (parent.id === "root" ? app : null));
  if (container === null) return;
  const siblings = parent?.children ?? [];
  const after = siblings.slice(siblings.indexOf(obj) + 1);
  const next = after.map((s) => elements.get(s)).find((e) => e !== undefined && e.parentNode === container);
  container.insertBefore(el, next ?? null);
}

/** A `Div`: a `<div>` styled by its `style` dict, holding its children's elements. */
class DivView extends DivObject {
  readonly el = document.createElement("div");
  override onStart(): void {
    this.el.dataset.id = this.id;
    this.own(bindStyle(this.style, this.el));
    mount(this, this.el);
  }
  override onDestroy(): void {
    this.el.remove();
  }
}

/** A `Text`: a `<span>` showing `text`, styled by `style`. */
class TextView extends TextObject {
  readonly el = document.createElement("span");
  override onStart(): void {
    this.el.id = this.id;
    this.own(bindText(this.text, this.el));
    this.own(bindStyle(this.style, this.el));
    mount(this, this.el);
  }
  override onDestroy(): void {
    this.el.remove();
  }
}

// The generated schema with the views in place of the generated classes: the client makes
// `Div` and `Text` objects as views, types `create` by it, and checks every edit against its
// attribute's kind before sending it. The fingerprint of the types goes in every `hello`.
const client = new ObjectSyncClient({ schema: { ...schema, Div: DivView, Text: TextView }, fingerprint });

client.on("state", ({ state }) => {
  document.body.dataset.state = state;
  status.textContent = state;
});
client.on("reject", ({ error }) => {
  log.textContent = `refused: ${error.code}: ${error.reason}`;
});
client.on("error", ({ error }) => {
  log.textContent = `error: ${error.code}: ${error.reason}`;
});
// The server's types are no longer this page's (a new version was deployed): it stopped.
client.on("schema_mismatch", () => {
  log.textContent = "a new version of this app was deployed: reload the page";
});

/** Binds the input and the button to `hello` once (the document stays loaded across reconnects). */
let bound = false;
client.on("ready", () => {
  const hello = client.get("hello");
  if (bound || !(hello instanceof TextView)) return;
  bound = true;
  hello.own(bindInput(hello.text, input));
  const style = hello.style;
  bold.addEventListener("click", () => {
    if (style.get("font-weight") === "bold") style.removeKey("font-weight");
    else style.setKey("font-weight", "bold");
  });
  input.disabled = false;
  bold.disabled = false;
});

const scheme = location.protocol === "https:" ? "wss" : "ws";
client.connect(`${scheme}://${location.host}/ws/dom`).catch((e: unknown) => {
  log.textContent = `could not connect: ${e instanceof Error ? e.message : String(e)}`;
});
