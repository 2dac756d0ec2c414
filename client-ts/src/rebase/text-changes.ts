/**
 * What a list of changes does to text, read without any state: which attributes it edits as
 * text or sets to a whole string, the edits per attribute (after its last whole-string `set`),
 * whether it is typing on one attribute. Pure functions; the rebase and the sending rule are
 * built on them.
 */

import type { AttrChange, Change } from "../protocol.js";
import type { TextEdit } from "../text.js";

/** An attribute of an object, `obj` and `attr` in one string (a map key). */
export type TopicKey = string;
/** The key of attribute `attr` of object `obj`. */
export const topicKey = (obj: string, attr: string): TopicKey => `${obj}\u0000${attr}`;
/** `obj` and `attr` of a {@link TopicKey}. */
export const splitTopic = (k: TopicKey): [string, string] => {
  const i = k.indexOf("\u0000");
  return [k.slice(0, i), k.slice(i + 1)];
};

/** The text edit a change makes, or `null` if it is not a text edit. */
export function textEditOf(c: Change): TextEdit | null {
  if (c.op === "text_insert") return { kind: "insert", pos: c.pos, text: c.text };
  if (c.op === "text_delete") return { kind: "delete", pos: c.pos, len: c.len };
  return null;
}

/** The change that makes text edit `e` on `obj.attr`. */
export function changeOfEdit(obj: string, attr: string, e: TextEdit): AttrChange {
  return e.kind === "insert"
    ? { op: "text_insert", obj, attr, pos: e.pos, text: e.text }
    : { op: "text_delete", obj, attr, pos: e.pos, len: e.len };
}

/** Text edits of `changes` grouped by topic, in order. */
export function textEditsByTopic(changes: readonly Change[]): Map<TopicKey, TextEdit[]> {
  const out = new Map<TopicKey, TextEdit[]>();
  for (const c of changes) {
    const e = textEditOf(c);
    if (e === null || !("obj" in c)) continue;
    const k = topicKey(c.obj, c.attr);
    const list = out.get(k);
    if (list === undefined) out.set(k, [e]);
    else list.push(e);
  }
  return out;
}

/**
 * Topics an action holds while unacknowledged: those it edits as text, and those it sets to a
 * whole string (the server starts a new text history there: an edit based before that version
 * is refused with `text_base_too_old`, so later text edits must wait for the ack).
 */
export function textTopics(changes: readonly Change[]): Set<TopicKey> {
  const out = new Set(textEditsByTopic(changes).keys());
  for (const c of changes) if (c.op === "set" && isStringSet(c)) out.add(topicKey(c.obj, c.attr));
  return out;
}

/**
 * Topics whose held state an action must wait for: those it edits as text before setting them
 * in the same action. A whole-string `set`, and edits after it, depend on no earlier version.
 */
export function waitingTopics(changes: readonly Change[]): Set<TopicKey> {
  const out = new Set<TopicKey>();
  const reset = new Set<TopicKey>();
  for (const c of changes) {
    if (c.op !== "set" && c.op !== "text_insert" && c.op !== "text_delete") continue;
    const k = topicKey(c.obj, c.attr);
    if (c.op === "set") {
      if (isStringSet(c)) reset.add(k);
    } else if (!reset.has(k)) out.add(k);
  }
  return out;
}

/** Whether `c` is a text edit of topic `obj.attr`. */
export function isTextEditOf(c: Change, obj: string, attr: string): boolean {
  return (c.op === "text_insert" || c.op === "text_delete") && c.obj === obj && c.attr === attr;
}

/** Whether `c` sets a whole string (a `set` with a string value). */
export function isStringSet(c: Change): boolean {
  return c.op === "set" && typeof c.value === "string";
}

/** The index of the first whole-string `set` of topic `obj.attr` in `changes`, or -1. Text edits
 * after it in the same action are relative to the new text: the server transforms them against
 * nothing (it resets its view of the topic on a set), and so does this client. */
export function firstSetIndex(changes: readonly Change[], obj: string, attr: string): number {
  return changes.findIndex((c) => c.op === "set" && isStringSet(c) && c.obj === obj && c.attr === attr);
}

/** A topic's last whole-string `set` in some changes (`null` if none) and the text edits after it. */
export interface TextAfterSet {
  set: string | null;
  edits: TextEdit[];
}

/** Per topic of `changes`: the value of its last whole-string `set` (`null` if none) and the
 * text edits after that set, in order (all of them if there is no set). */
export function textAfterLastSet(changes: readonly Change[]): Map<TopicKey, TextAfterSet> {
  const out = new Map<TopicKey, TextAfterSet>();
  for (const c of changes) {
    if (c.op !== "set" && c.op !== "text_insert" && c.op !== "text_delete") continue;
    const k = topicKey(c.obj, c.attr);
    if (c.op === "set") {
      if (typeof c.value === "string") out.set(k, { set: c.value, edits: [] });
      continue;
    }
    const e = textEditOf(c) as TextEdit;
    const entry = out.get(k);
    if (entry === undefined) out.set(k, { set: null, edits: [e] });
    else entry.edits.push(e);
  }
  return out;
}

/** Whether two text edits are the same edit. */
export function sameEdit(a: TextEdit, b: TextEdit): boolean {
  return a.kind === "insert"
    ? b.kind === "insert" && a.pos === b.pos && a.text === b.text
    : b.kind === "delete" && a.pos === b.pos && a.len === b.len;
}

/** The one topic text-only changes edit, or `null` if they are not text-only on one topic. */
export function typingTopic(changes: readonly Change[]): TopicKey | null {
  if (changes.length === 0) return null;
  let topic: TopicKey | null = null;
  for (const c of changes) {
    if (c.op !== "text_insert" && c.op !== "text_delete") return null;
    const k = topicKey(c.obj, c.attr);
    if (topic !== null && topic !== k) return null;
    topic = k;
  }
  return topic;
}
