/**
 * Events from one batch of tree steps: compares how every touched object looked before the
 * batch with how it looks after, so that a batch that reverted pending actions, applied a server
 * update and replayed them reports only the net effect (nothing at all for an ack that matched
 * the prediction).
 *
 * Fine-grained attribute events come from the changes the batch applied to the attribute when
 * they replay from the old value to the new one; otherwise they are derived from the two values
 * (a text diff, a key diff, ...). No DOM.
 */

import type { AttrChange, JsonValue, SetElement } from "./protocol.js";
import { diffText } from "./text.js";
import type { BatchRecord, ObjectBefore, ObjectTree } from "./tree.js";
import { nextAttrValue, TREE_DEPTH_MAX } from "./tree.js";
import { compareSetElements, deepEqual, hasKey, isJsonObject, isSetElement } from "./values.js";

/** A fine-grained change of one attribute, as topics report it. */
export type AttrEvent =
  | { readonly type: "set"; readonly value: JsonValue | undefined }
  | { readonly type: "textInsert"; readonly pos: number; readonly text: string }
  | { readonly type: "textDelete"; readonly pos: number; readonly len: number; readonly text: string }
  | { readonly type: "dictSet"; readonly key: string; readonly value: JsonValue }
  | { readonly type: "dictRemove"; readonly key: string }
  | { readonly type: "listInsert"; readonly index: number; readonly value: JsonValue }
  | { readonly type: "listRemove"; readonly index: number; readonly value: JsonValue }
  | { readonly type: "listMove"; readonly from: number; readonly to: number }
  | { readonly type: "listSet"; readonly index: number; readonly value: JsonValue }
  | { readonly type: "setAdd"; readonly value: SetElement }
  | { readonly type: "setRemove"; readonly value: SetElement };

/** The net changes of one attribute in a batch. */
export interface AttrDiff {
  readonly obj: string;
  readonly attr: string;
  /** Events in order; applying them to the old value gives `value`. */
  readonly events: readonly AttrEvent[];
  /** The value after the batch (`undefined`: the attribute is gone). */
  readonly value: JsonValue | undefined;
}

/** The net changes of one object's children list in a batch. */
export interface ChildrenDiff {
  readonly parent: string;
  /** Children that left (by deletion or a move elsewhere), with their old index. */
  readonly removed: readonly { readonly id: string; readonly index: number }[];
  /** Children that arrived (created or moved here), with their new index. */
  readonly added: readonly { readonly id: string; readonly index: number }[];
  /** Children that stayed but changed place, old and new index. */
  readonly moved: readonly { readonly id: string; readonly from: number; readonly to: number }[];
}

/** Everything a batch changed. */
export interface TreeDiff {
  /** New objects, parents before children. */
  readonly created: readonly string[];
  /** Gone objects with their last type, children before parents. */
  readonly destroyed: readonly { readonly id: string; readonly type: string }[];
  /** Objects still there whose parent changed. */
  readonly reparented: readonly { readonly id: string; readonly from: string | null; readonly to: string | null }[];
  readonly children: readonly ChildrenDiff[];
  readonly attrs: readonly AttrDiff[];
}

/** Whether a diff reports nothing. */
export function isEmptyDiff(d: TreeDiff): boolean {
  return (
    d.created.length === 0 &&
    d.destroyed.length === 0 &&
    d.reparented.length === 0 &&
    d.children.length === 0 &&
    d.attrs.length === 0
  );
}

/** Computes the net diff of a batch recorded on `tree` (call right after `endBatch`). */
export function diffBatch(tree: ObjectTree, record: BatchRecord): TreeDiff {
  const kept: string[] = [];
  const createdSet = new Set<string>();
  const destroyedSet = new Set<string>();
  for (const [id, before] of record.before) {
    const after = tree.get(id);
    if (before === null && after === undefined) continue;
    if (before !== null && after !== undefined && before.type === after.type) kept.push(id);
    else {
      if (before !== null) destroyedSet.add(id);
      if (after !== undefined) createdSet.add(id);
    }
  }

  const children: ChildrenDiff[] = [];
  const reparented: { id: string; from: string | null; to: string | null }[] = [];
  const attrs: AttrDiff[] = [];
  for (const id of kept) {
    const before = record.before.get(id) as ObjectBefore;
    const after = tree.get(id);
    if (after === undefined) continue;
    if (before.parent !== after.parent) reparented.push({ id, from: before.parent, to: after.parent });
    const cd = diffChildren(id, before.children, after.children);
    if (cd !== null) children.push(cd);
    const names = new Set([...before.attrs.keys(), ...after.attrs.keys()]);
    const trails = record.trails.get(id);
    for (const attr of names) {
      const old = before.attrs.get(attr);
      const now = after.attrs.get(attr);
      if (old === now || deepEqual(old, now)) continue;
      const trail = trails?.get(attr);
      const events =
        (trail?.clean === true ? eventsFromChanges(old, now, trail.changes) : null) ??
        eventsFromValues(old, now, trail?.changes ?? []);
      attrs.push({ obj: id, attr, events, value: now });
    }
  }

  return {
    created: orderCreated(tree, createdSet),
    destroyed: orderDestroyed(record.before, destroyedSet),
    reparented,
    children,
    attrs,
  };
}

/** Events from the changes the batch applied, if they lead from `old` to `now`. */
function eventsFromChanges(
  old: JsonValue | undefined,
  now: JsonValue | undefined,
  changes: readonly AttrChange[],
): AttrEvent[] | null {
  const events: AttrEvent[] = [];
  let cur = old;
  for (const c of changes) {
    const next = nextAttrValue(cur, c);
    if ("code" in next) return null;
    switch (c.op) {
      case "set":
      case "add":
        events.push({ type: "set", value: next.value });
        break;
      case "text_insert":
        events.push({ type: "textInsert", pos: c.pos, text: c.text });
        break;
      case "text_delete":
        events.push({ type: "textDelete", pos: c.pos, len: c.len, text: String(cur).slice(c.pos, c.pos + c.len) });
        break;
      case "dict_set":
        events.push({ type: "dictSet", key: c.key, value: c.value });
        break;
      case "dict_remove":
        events.push({ type: "dictRemove", key: c.key });
        break;
      case "list_insert":
        events.push({ type: "listInsert", index: c.index ?? (cur as JsonValue[]).length, value: c.value });
        break;
      case "list_remove":
        events.push({ type: "listRemove", index: c.index, value: (cur as JsonValue[])[c.index] as JsonValue });
        break;
      case "list_move":
        events.push({ type: "listMove", from: c.from, to: c.to });
        break;
      case "list_set":
        events.push({ type: "listSet", index: c.index, value: c.value });
        break;
      case "set_add":
        events.push({ type: "setAdd", value: c.value });
        break;
      case "set_remove":
        events.push({ type: "setRemove", value: c.value });
        break;
      case "emit":
        break;
    }
    cur = next.value;
  }
  return deepEqual(cur, now) ? events : null;
}

/** Events derived from the old and new values; `hints` tell a set from a list. */
export function eventsFromValues(
  old: JsonValue | undefined,
  now: JsonValue | undefined,
  hints: readonly AttrChange[],
): AttrEvent[] {
  if (typeof old === "string" && typeof now === "string") {
    return diffText(old, now).map((e) =>
      e.kind === "insert"
        ? { type: "textInsert", pos: e.pos, text: e.text }
        : { type: "textDelete", pos: e.pos, len: e.len, text: old.slice(e.pos, e.pos + e.len) },
    );
  }
  if (isJsonObject(old) && isJsonObject(now) && hints.some((h) => h.op.startsWith("dict_"))) {
    const out: AttrEvent[] = [];
    for (const k of Object.keys(old)) if (!hasKey(now, k)) out.push({ type: "dictRemove", key: k });
    for (const [k, v] of Object.entries(now)) {
      if (!hasKey(old, k) || !deepEqual(old[k], v)) out.push({ type: "dictSet", key: k, value: v });
    }
    return out;
  }
  if (Array.isArray(old) && Array.isArray(now)) {
    if (hints.some((h) => h.op === "set_add" || h.op === "set_remove") && old.every(isSetElement) && now.every(isSetElement)) {
      return diffSets(old as SetElement[], now as SetElement[]);
    }
    if (hints.some((h) => h.op.startsWith("list_"))) return diffLists(old, now);
  }
  return [{ type: "set", value: now }];
}

function diffSets(old: readonly SetElement[], now: readonly SetElement[]): AttrEvent[] {
  const out: AttrEvent[] = [];
  const has = (set: readonly SetElement[], v: SetElement) => set.some((e) => compareSetElements(e, v) === 0);
  for (const v of old) if (!has(now, v)) out.push({ type: "setRemove", value: v });
  for (const v of now) if (!has(old, v)) out.push({ type: "setAdd", value: v });
  return out;
}

function diffLists(old: readonly JsonValue[], now: readonly JsonValue[]): AttrEvent[] {
  let prefix = 0;
  const max = Math.min(old.length, now.length);
  while (prefix < max && deepEqual(old[prefix], now[prefix])) prefix++;
  let suffix = 0;
  while (suffix < max - prefix && deepEqual(old[old.length - 1 - suffix], now[now.length - 1 - suffix])) suffix++;
  const out: AttrEvent[] = [];
  for (let i = old.length - suffix - 1; i >= prefix; i--) {
    out.push({ type: "listRemove", index: i, value: old[i] as JsonValue });
  }
  for (let i = prefix; i < now.length - suffix; i++) out.push({ type: "listInsert", index: i, value: now[i] as JsonValue });
  return out;
}

/** Removed, added and moved children; `null` when the list is unchanged. */
function diffChildren(parent: string, before: readonly string[], after: readonly string[]): ChildrenDiff | null {
  if (before.length === after.length && before.every((c, i) => c === after[i])) return null;
  const afterIndex = new Map(after.map((c, i) => [c, i]));
  const beforeIndex = new Map(before.map((c, i) => [c, i]));
  const removed = before.flatMap((id, index) => (afterIndex.has(id) ? [] : [{ id, index }]));
  const added = after.flatMap((id, index) => (beforeIndex.has(id) ? [] : [{ id, index }]));
  // Children in both lists: those off the longest run kept in order are the ones that moved.
  const common = after.filter((c) => beforeIndex.has(c));
  const stay = longestIncreasing(common.map((c) => beforeIndex.get(c) as number));
  const moved = common.flatMap((id, k) =>
    stay.has(k) ? [] : [{ id, from: beforeIndex.get(id) as number, to: afterIndex.get(id) as number }],
  );
  return { parent, removed, added, moved };
}

/** Indexes (into `xs`) of one longest strictly increasing subsequence. O(n log n). */
function longestIncreasing(xs: readonly number[]): Set<number> {
  const tails: number[] = []; // index into xs of the smallest tail of each length
  const prev: number[] = new Array<number>(xs.length).fill(-1);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((xs[tails[mid] as number] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) prev[i] = tails[lo - 1] as number;
    tails[lo] = i;
  }
  const out = new Set<number>();
  let k = tails.length > 0 ? (tails[tails.length - 1] as number) : -1;
  for (let guard = 0; k >= 0 && guard <= xs.length; guard++) {
    out.add(k);
    k = prev[k] as number;
  }
  return out;
}

function orderCreated(tree: ObjectTree, created: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const visit = (id: string, depth: number) => {
    if (depth > TREE_DEPTH_MAX + 1) return;
    out.push(id);
    for (const c of tree.get(id)?.children ?? []) if (created.has(c)) visit(c, depth + 1);
  };
  for (const id of created) {
    const parent = tree.get(id)?.parent ?? null;
    if (parent === null || !created.has(parent)) visit(id, 0);
  }
  return out;
}

function orderDestroyed(
  before: ReadonlyMap<string, ObjectBefore | null>,
  destroyed: ReadonlySet<string>,
): { id: string; type: string }[] {
  const out: { id: string; type: string }[] = [];
  const visit = (id: string, depth: number) => {
    const b = before.get(id);
    if (b === null || b === undefined || depth > TREE_DEPTH_MAX + 1) return;
    for (const c of b.children) if (destroyed.has(c)) visit(c, depth + 1);
    out.push({ id, type: b.type });
  };
  for (const id of destroyed) {
    const parent = before.get(id)?.parent ?? null;
    if (parent === null || !destroyed.has(parent)) visit(id, 0);
  }
  return out;
}
