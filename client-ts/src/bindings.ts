/**
 * DOM bindings: one updater per bound attribute, writing straight to the node on the topic's
 * events (no virtual DOM, no framework). Each returns a disposer; a binding also ends when its
 * object is destroyed.
 */

import type { Disposer } from "./emitter.js";
import type { JsonValue } from "./protocol.js";
import type { BoolTopic, DictTopic, StringTopic } from "./topics.js";
import { diffText } from "./text.js";

/** Runs every disposer once, newest first. */
function all(disposers: Disposer[]): Disposer {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const d of disposers.reverse()) d();
  };
}

/** Disposes when the topic's object is destroyed too. */
function untilDestroyed(topic: { readonly object: { on(type: "destroyed", fn: () => void): Disposer } }, parts: Disposer[]): Disposer {
  const dispose = all(parts);
  parts.push(topic.object.on("destroyed", dispose));
  return dispose;
}

/** Shows a string attribute as the text of `node` (a Text node's data, or an element's text). */
export function bindText(topic: StringTopic, node: Node): Disposer {
  const write = (value: string) => {
    if (node.nodeType === 3 /* TEXT_NODE */) {
      if ((node as Text).data !== value) (node as Text).data = value;
    } else if (node.textContent !== value) {
      node.textContent = value;
    }
  };
  write(topic.value);
  return untilDestroyed(topic, [topic.on("changed", (e) => write(e.value))]);
}

/** CSS property name of a dict key: `backgroundColor` and `background-color` both work. */
function cssName(key: string): string {
  return key.startsWith("--") ? key : key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function cssValue(v: JsonValue | undefined): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

/** Mirrors a dict attribute on `el.style`: a key set sets the property, a key removed removes it. */
export function bindStyle(topic: DictTopic, el: ElementCSSInlineStyle): Disposer {
  const applied = new Set<string>();
  const put = (key: string, value: JsonValue | undefined) => {
    const v = cssValue(value);
    if (v === null) {
      el.style.removeProperty(cssName(key));
      applied.delete(key);
    } else {
      el.style.setProperty(cssName(key), v);
      applied.add(key);
    }
  };
  const putAll = (value: Readonly<Record<string, JsonValue>>) => {
    for (const k of [...applied]) if (!Object.prototype.hasOwnProperty.call(value, k)) put(k, undefined);
    for (const [k, v] of Object.entries(value)) put(k, v);
  };
  putAll(topic.value);
  return untilDestroyed(topic, [
    topic.on("dictSet", (e) => put(e.key, e.value)),
    topic.on("dictRemove", (e) => put(e.key, undefined)),
    topic.on("set", (e) => putAll(e.value)),
  ]);
}

/** Sets `className` on `el` while a bool attribute is true. */
export function bindClass(topic: BoolTopic, el: Element, className: string): Disposer {
  el.classList.toggle(className, topic.value);
  return untilDestroyed(topic, [topic.on("changed", (e) => el.classList.toggle(className, e.value))]);
}

/** Where position `p` goes after an insert at `pos` of `n` units: positions at or after it
 * that are not before it move; a caret exactly at the insert stays before the new text. */
function mapInsert(p: number, pos: number, n: number): number {
  return p > pos ? p + n : p;
}

function mapDelete(p: number, pos: number, n: number): number {
  if (p <= pos) return p;
  return p >= pos + n ? p - n : pos;
}

/**
 * Two-way binding of a string attribute and an `<input>` or `<textarea>`: what the user types
 * becomes text inserts and deletes (one action per round trip while typing), and edits from
 * elsewhere update the field keeping the caret and selection where they were in the text.
 */
export function bindInput(topic: StringTopic, input: HTMLInputElement | HTMLTextAreaElement): Disposer {
  let composing = false;
  /** Selection carried through the fine-grained events of one batch. */
  let sel: { start: number; end: number } | null = null;
  input.value = topic.value;

  const fromInput = () => {
    if (composing) return;
    const before = topic.value;
    const after = input.value;
    if (before === after) return;
    const edits = diffText(before, after, input.selectionEnd ?? undefined);
    try {
      topic.object.client.transaction(() => {
        for (const e of edits) {
          if (e.kind === "delete") topic.delete(e.pos, e.len);
          else topic.insert(e.pos, e.text);
        }
      });
    } catch {
      // Refused locally (read-only, not loaded): show the attribute as it is.
      input.value = topic.value;
    }
  };

  const track = () => {
    if (sel === null) sel = { start: input.selectionStart ?? 0, end: input.selectionEnd ?? 0 };
    return sel;
  };

  const onCompositionStart = () => {
    composing = true;
  };
  const onCompositionEnd = () => {
    composing = false;
    fromInput();
  };
  input.addEventListener("input", fromInput);
  input.addEventListener("compositionstart", onCompositionStart);
  input.addEventListener("compositionend", onCompositionEnd);

  return untilDestroyed(topic, [
    () => {
      input.removeEventListener("input", fromInput);
      input.removeEventListener("compositionstart", onCompositionStart);
      input.removeEventListener("compositionend", onCompositionEnd);
    },
    topic.on("textInsert", (e) => {
      if (input.value === topic.value) return; // the user's own typing, already shown
      const s = track();
      s.start = mapInsert(s.start, e.pos, e.text.length);
      s.end = mapInsert(s.end, e.pos, e.text.length);
    }),
    topic.on("textDelete", (e) => {
      if (input.value === topic.value) return;
      const s = track();
      s.start = mapDelete(s.start, e.pos, e.len);
      s.end = mapDelete(s.end, e.pos, e.len);
    }),
    topic.on("changed", (e) => {
      const s = sel ?? { start: input.selectionStart ?? 0, end: input.selectionEnd ?? 0 };
      sel = null;
      if (input.value === e.value) return;
      const direction = input.selectionDirection ?? "none";
      input.value = e.value;
      const len = e.value.length;
      input.setSelectionRange(Math.min(s.start, len), Math.min(s.end, len), direction);
    }),
  ]);
}
