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

/** An object rendered as one element. */
abstract class View extends SObject {
  /** Its element (made once, kept while the object lives). */
  abstract readonly el: HTMLElement;

  /** Puts the element under its parent's element (or `#app` under the root), in child order. */
  protected mount(): void {
    const parent = this.parent;
    const container = parent instanceof View ? parent.el : parent?.id === "root" ? app : null;
    if (container === null) return;
    const siblings = parent?.children ?? [];
    const after = siblings.slice(siblings.indexOf(this) + 1);
    const next = after.find((s): s is View => s instanceof View && s.el.parentNode === container);
    container.insertBefore(this.el, next?.el ?? null);
  }

  override onDestroy(): void {
    this.el.remove();
  }
}

/** A `Div`: a `<div>` styled by its `style` dict, holding its children's elements. */
class DivView extends View {
  readonly el = document.createElement("div");
  override onStart(): void {
    this.el.dataset.id = this.id;
    this.own(bindStyle(this.dict("style"), this.el));
    this.mount();
  }
}

/** A `Text`: a `<span>` showing `text`, styled by `style`. */
class TextView extends View {
  readonly el = document.createElement("span");
  override onStart(): void {
    this.el.id = this.id;
    this.own(bindText(this.string("text"), this.el));
    this.own(bindStyle(this.dict("style"), this.el));
    this.mount();
  }
}

const client = new ObjectSyncClient({ classes: { Div: DivView, Text: TextView } });

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

/** Binds the input and the button to `hello` once (the document stays loaded across reconnects). */
let bound = false;
client.on("ready", () => {
  const hello = client.get("hello");
  if (bound || hello === undefined) return;
  bound = true;
  hello.own(bindInput(hello.string("text"), input));
  const style = hello.dict("style");
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
