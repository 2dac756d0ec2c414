/**
 * The SObject tree as plain data: objects by id with type, parent, ordered children and
 * attribute values. Applies changes (one primitive step each, recording what it replaced so the
 * step can be reverted exactly), and records, per batch, how every object it touched looked
 * before, so that `diff.ts` can derive events.
 *
 * The client knows no schema: it cannot tell a `ref` from a `string`, so reference clearing on
 * delete and attribute defaults come from the server (`update` carries both); locally created
 * objects take their defaults from the optional `defaults` provider. No DOM, no I/O.
 */

import type {
  AttrChange,
  Change,
  EmitChange,
  JsonObject,
  JsonValue,
  ListInsertChange,
  ListMoveChange,
  ListRemoveChange,
  ListSetChange,
  NodeSnapshot,
  SetAddChange,
  SetElement,
  SetRemoveChange,
  TextDeleteChange,
  TextInsertChange,
} from "./protocol.js";
import { checkEdit } from "./text.js";
import {
  deepFreeze,
  frozenArray,
  hasKey,
  isJsonObject,
  isSetElement,
  setPosition,
  withKey,
  withoutKey,
} from "./values.js";

/** The id of the root object. */
export const ROOT_ID = "root";

/** The tree depth the server allows (`tree_depth_max`); bounds every walk up the tree. */
export const TREE_DEPTH_MAX = 128;

/** One object of the tree. Read it, never write it: the tree owns it. */
export interface TreeObject {
  /** Object id. */
  readonly id: string;
  /** Registered type name. */
  readonly type: string;
  /** The parent's id; `null` for the root. */
  readonly parent: string | null;
  /** Children ids in order. */
  readonly children: readonly string[];
  /** Attribute values by name (frozen JSON). */
  readonly attrs: ReadonlyMap<string, JsonValue>;
}

interface MutableObject {
  readonly id: string;
  readonly type: string;
  parent: string | null;
  children: string[];
  attrs: Map<string, JsonValue>;
}

/** Why a change does not apply; `code` is the server's reject code for the same refusal. */
export interface ApplyError {
  readonly code:
    | "no_such_object"
    | "duplicate_id"
    | "root_immutable"
    | "cycle"
    | "too_deep"
    | "out_of_range"
    | "splits_character"
    | "wrong_kind"
    | "no_such_key"
    | "set_element";
  readonly reason: string;
}

/** One primitive step as the tree applied it, with what it replaced. */
export type Step =
  | { readonly op: "create"; readonly parent: string; readonly index: number; readonly node: NodeSnapshot }
  | { readonly op: "delete"; readonly parent: string; readonly index: number; readonly node: NodeSnapshot }
  | {
      readonly op: "move";
      readonly id: string;
      readonly fromParent: string;
      readonly fromIndex: number;
      readonly toParent: string;
      readonly toIndex: number;
    }
  | {
      readonly op: "attr";
      readonly obj: string;
      readonly attr: string;
      readonly old: JsonValue | undefined;
      readonly value: JsonValue | undefined;
      readonly change: AttrChange;
    }
  | { readonly op: "emit"; readonly change: EmitChange };

/** How a touched object looked when a batch began (`null`: it did not exist). */
export interface ObjectBefore {
  readonly type: string;
  readonly parent: string | null;
  readonly children: readonly string[];
  readonly attrs: ReadonlyMap<string, JsonValue>;
}

/** The attribute changes a batch applied to one attribute, in order. */
export interface AttrTrail {
  /** The forward changes, in order. */
  changes: AttrChange[];
  /** `false` once a reverted step touched the attribute: `changes` no longer tell the story. */
  clean: boolean;
}

/** What a batch touched: state before it, and the changes it made per attribute. */
export interface BatchRecord {
  readonly before: ReadonlyMap<string, ObjectBefore | null>;
  readonly trails: ReadonlyMap<string, ReadonlyMap<string, AttrTrail>>;
}

/** Attribute values a type starts with, for objects created locally (the server sends its own). */
export type DefaultsProvider = (type: string) => JsonObject | undefined;

/** The new value of an attribute after `change`, or why it does not apply. Pure. */
export function nextAttrValue(
  current: JsonValue | undefined,
  change: AttrChange,
): { value: JsonValue | undefined } | ApplyError {
  const where = `${change.obj}.${change.attr}`;
  const wrong = (what: string): ApplyError => ({ code: "wrong_kind", reason: `${where}: ${change.op} needs ${what}` });
  switch (change.op) {
    case "set":
      return { value: change.value };
    case "add":
      if (typeof current !== "number") return wrong("a number");
      return { value: current + change.value };
    case "text_insert":
    case "text_delete":
      if (typeof current !== "string") return wrong("a string");
      return nextText(current, change, where);
    case "dict_set":
      if (!isJsonObject(current)) return wrong("a dict");
      return { value: withKey(current, change.key, change.value) };
    case "dict_remove":
      if (!isJsonObject(current)) return wrong("a dict");
      if (!hasKey(current, change.key)) return { code: "no_such_key", reason: `${where}: no key "${change.key}"` };
      return { value: withoutKey(current, change.key) };
    case "list_insert":
    case "list_remove":
    case "list_move":
    case "list_set":
      if (!Array.isArray(current)) return wrong("a list");
      return nextList(current, change, where);
    case "set_add":
    case "set_remove":
      if (!Array.isArray(current) || !current.every(isSetElement)) return wrong("a set");
      return nextSet(current as readonly SetElement[], change, where);
    case "emit":
      return { value: current };
  }
}

/** A text edit applied to `current`. */
function nextText(current: string, change: TextInsertChange | TextDeleteChange, where: string): { value: string } | ApplyError {
  const edit =
    change.op === "text_insert"
      ? ({ kind: "insert", pos: change.pos, text: change.text } as const)
      : ({ kind: "delete", pos: change.pos, len: change.len } as const);
  const bad = checkEdit(current, edit);
  if (bad !== null) {
    return { code: bad, reason: `${where}: ${change.op} at ${change.pos} does not fit a text of ${current.length} units` };
  }
  return {
    value:
      edit.kind === "insert"
        ? current.slice(0, edit.pos) + edit.text + current.slice(edit.pos)
        : current.slice(0, edit.pos) + current.slice(edit.pos + edit.len),
  };
}

/** A list change by index applied to `current`. */
function nextList(
  current: readonly JsonValue[],
  change: ListInsertChange | ListRemoveChange | ListMoveChange | ListSetChange,
  where: string,
): { value: JsonValue } | ApplyError {
  const range = (i: number, len: number): ApplyError => ({
    code: "out_of_range",
    reason: `${where}: index ${i} is out of range (length ${len})`,
  });
  switch (change.op) {
    case "list_insert": {
      const i = change.index ?? current.length;
      if (i > current.length) return range(i, current.length);
      return { value: frozenArray([...current.slice(0, i), change.value, ...current.slice(i)]) };
    }
    case "list_remove":
      if (change.index >= current.length) return range(change.index, current.length);
      return { value: frozenArray(current.filter((_, i) => i !== change.index)) };
    case "list_move": {
      if (change.from >= current.length) return range(change.from, current.length);
      if (change.to >= current.length) return range(change.to, current.length);
      const out = current.slice();
      const [moved] = out.splice(change.from, 1);
      out.splice(change.to, 0, moved as JsonValue);
      return { value: frozenArray(out) };
    }
    case "list_set": {
      if (change.index >= current.length) return range(change.index, current.length);
      const out = current.slice();
      out[change.index] = change.value;
      return { value: frozenArray(out) };
    }
  }
}

/** A set element added to or removed from `set` (kept in canonical order). */
function nextSet(set: readonly SetElement[], change: SetAddChange | SetRemoveChange, where: string): { value: JsonValue } | ApplyError {
  // As the server refuses it (a value of the wrong kind for a set's element).
  if (!isSetElement(change.value as JsonValue)) {
    return { code: "wrong_kind", reason: `${where}: a set holds strings, integers and booleans, not ${JSON.stringify(change.value)}` };
  }
  const at = setPosition(set, change.value);
  if (change.op === "set_add") {
    if (at.found) return { code: "set_element", reason: `${where}: ${JSON.stringify(change.value)} is already in the set` };
    return { value: frozenArray([...set.slice(0, at.index), change.value, ...set.slice(at.index)]) };
  }
  if (!at.found) return { code: "set_element", reason: `${where}: ${JSON.stringify(change.value)} is not in the set` };
  return { value: frozenArray(set.filter((_, i) => i !== at.index)) };
}

/** The tree of objects; see the module docs. */
export class ObjectTree {
  private readonly objects = new Map<string, MutableObject>();
  private readonly defaults: DefaultsProvider | undefined;
  private batch: {
    before: Map<string, ObjectBefore | null>;
    trails: Map<string, Map<string, AttrTrail>>;
  } | null = null;

  /** Builds the tree from a snapshot's root node. */
  constructor(root: NodeSnapshot, defaults?: DefaultsProvider) {
    this.defaults = defaults;
    this.insertNode(root, null, 0);
  }

  /** The object with `id`, if it exists. */
  get(id: string): TreeObject | undefined {
    return this.objects.get(id);
  }

  /** Whether an object with `id` exists. */
  has(id: string): boolean {
    return this.objects.has(id);
  }

  /** The root object. */
  get root(): TreeObject {
    return this.objects.get(ROOT_ID) as TreeObject;
  }

  /** Number of objects. */
  get size(): number {
    return this.objects.size;
  }

  /** Whether `id` is `ancestor` or lies under it. */
  isWithin(id: string, ancestor: string): boolean {
    let cur: string | null = id;
    for (let i = 0; cur !== null && i <= TREE_DEPTH_MAX + 1; i++) {
      if (cur === ancestor) return true;
      cur = this.objects.get(cur)?.parent ?? null;
    }
    return false;
  }

  /** The subtree under `id` as a snapshot node (attributes included). */
  snapshotOf(id: string): NodeSnapshot | undefined {
    const o = this.objects.get(id);
    if (o === undefined) return undefined;
    const node: NodeSnapshot = { id: o.id, type: o.type };
    if (o.attrs.size > 0) node.attrs = Object.fromEntries(o.attrs) as JsonObject;
    if (o.children.length > 0) node.children = o.children.map((c) => this.snapshotOf(c) as NodeSnapshot);
    return node;
  }

  /**
   * Applies one change, appending its steps to `out`; on error nothing changed. An emit changes
   * nothing: it is checked (the object must exist) and recorded as a step, never as an event
   * (events are reported when the server delivers them).
   */
  apply(change: Change, out: Step[]): ApplyError | null {
    switch (change.op) {
      case "create":
        return this.applyCreate(change.id, change.type, change.parent, change.index, change.attrs, change.children, out);
      case "delete": {
        const o = this.objects.get(change.id);
        if (o === undefined) return noObject(change.id);
        if (o.parent === null) return { code: "root_immutable", reason: "the root object cannot be deleted" };
        const step: Step = {
          op: "delete",
          parent: o.parent,
          index: this.mustGet(o.parent).children.indexOf(o.id),
          node: this.snapshotOf(o.id) as NodeSnapshot,
        };
        this.run(step);
        out.push(step);
        return null;
      }
      case "move": {
        const o = this.objects.get(change.id);
        if (o === undefined) return noObject(change.id);
        if (o.parent === null) return { code: "root_immutable", reason: "the root object cannot be moved" };
        const to = this.objects.get(change.parent);
        if (to === undefined) return noObject(change.parent);
        if (this.isWithin(to.id, o.id)) {
          return { code: "cycle", reason: `${o.id} cannot move under itself (${to.id})` };
        }
        const from = this.mustGet(o.parent);
        const fromIndex = from.children.indexOf(o.id);
        const len = to.children.length - (from === to ? 1 : 0);
        const toIndex = change.index ?? len;
        if (toIndex > len) return { code: "out_of_range", reason: `${to.id}: child index ${toIndex} > ${len}` };
        const step: Step = { op: "move", id: o.id, fromParent: from.id, fromIndex, toParent: to.id, toIndex };
        this.run(step);
        out.push(step);
        return null;
      }
      case "emit": {
        if (!this.objects.has(change.obj)) return noObject(change.obj);
        out.push({ op: "emit", change });
        return null;
      }
      default: {
        const o = this.objects.get(change.obj);
        if (o === undefined) return noObject(change.obj);
        const old = o.attrs.get(change.attr);
        const next = nextAttrValue(old, change);
        if ("code" in next) return next;
        const value = next.value === undefined ? undefined : deepFreeze(next.value);
        const step: Step = { op: "attr", obj: o.id, attr: change.attr, old, value, change };
        this.run(step);
        out.push(step);
        return null;
      }
    }
  }

  /**
   * Applies `changes` atomically: all, or (on the first error) none. Returns the failing change's
   * index and error, or `null` with the steps appended to `out`.
   */
  applyAll(changes: readonly Change[], out: Step[]): { index: number; error: ApplyError } | null {
    const mine: Step[] = [];
    for (let i = 0; i < changes.length; i++) {
      const error = this.apply(changes[i] as Change, mine);
      if (error !== null) {
        this.revert(mine);
        return { index: i, error };
      }
    }
    out.push(...mine);
    return null;
  }

  /** Reverts `steps` (applied last to first). They must be the latest steps applied. */
  revert(steps: readonly Step[]): void {
    for (let i = steps.length - 1; i >= 0; i--) {
      const s = steps[i] as Step;
      switch (s.op) {
        case "create":
          this.run({ op: "delete", parent: s.parent, index: s.index, node: s.node });
          break;
        case "delete":
          this.run({ op: "create", parent: s.parent, index: s.index, node: s.node });
          break;
        case "move":
          this.run({
            op: "move",
            id: s.id,
            fromParent: s.toParent,
            fromIndex: s.toIndex,
            toParent: s.fromParent,
            toIndex: s.fromIndex,
          });
          break;
        case "attr": {
          this.touch(s.obj);
          this.trail(s.obj, s.attr).clean = false;
          const o = this.mustGet(s.obj);
          if (s.old === undefined) o.attrs.delete(s.attr);
          else o.attrs.set(s.attr, s.old);
          break;
        }
        case "emit":
          break;
      }
    }
  }

  /**
   * Replaces the whole tree with `root` (a reloaded snapshot). Inside a batch, objects that
   * exist before and after with the same type count as kept, so the diff shows only what changed.
   */
  replaceAll(root: NodeSnapshot): void {
    for (const id of this.objects.keys()) this.touch(id);
    this.touchSubtree(root, 0);
    this.objects.clear();
    this.insertNode(root, null, 0);
  }

  /** Starts recording what the following steps touch (see {@link BatchRecord}). */
  beginBatch(): void {
    this.batch = { before: new Map(), trails: new Map() };
  }

  /** Stops recording and returns the record (empty if no batch was open). */
  endBatch(): BatchRecord {
    const b = this.batch ?? { before: new Map(), trails: new Map() };
    this.batch = null;
    return b;
  }

  /** Replaces the candidate changes of one attribute in the open batch (a caller that knows
   * the net edit better, e.g. transformed remote text). */
  hintTrail(obj: string, attr: string, changes: AttrChange[]): void {
    if (this.batch === null) return;
    this.touch(obj);
    const t = this.trail(obj, attr);
    t.changes = changes;
    t.clean = true;
  }

  // -------------------------------------------------------------------------------------------

  private applyCreate(
    id: string,
    type: string,
    parent: string,
    index: number | undefined,
    attrs: JsonObject | undefined,
    children: readonly NodeSnapshot[] | undefined,
    out: Step[],
  ): ApplyError | null {
    const p = this.objects.get(parent);
    if (p === undefined) return noObject(parent);
    const i = index ?? p.children.length;
    if (i > p.children.length) return { code: "out_of_range", reason: `${parent}: child index ${i} > ${p.children.length}` };
    const node: NodeSnapshot = { id, type };
    const withDefaults = { ...(this.defaults?.(type) ?? {}), ...(attrs ?? {}) };
    if (Object.keys(withDefaults).length > 0) node.attrs = withDefaults;
    if (children !== undefined && children.length > 0) node.children = [...children];
    const ids: string[] = [];
    if (!collectIds(node, ids, 0)) return { code: "too_deep", reason: `${id}: subtree nested too deep` };
    for (const cid of ids) {
      if (this.objects.has(cid)) return { code: "duplicate_id", reason: `${cid} already exists` };
    }
    if (new Set(ids).size !== ids.length) return { code: "duplicate_id", reason: `${id}: an id repeats in the subtree` };
    const step: Step = { op: "create", parent, index: i, node };
    this.run(step);
    out.push(step);
    return null;
  }

  /** Executes a structural or attribute step forward (also used to revert). */
  private run(step: Step): void {
    switch (step.op) {
      case "create": {
        this.touch(step.parent);
        this.touchSubtree(step.node, 0);
        this.insertNode(step.node, step.parent, step.index);
        break;
      }
      case "delete": {
        this.touch(step.parent);
        this.touchSubtree(step.node, 0);
        const p = this.mustGet(step.parent);
        p.children.splice(step.index, 1);
        this.removeSubtree(step.node.id);
        break;
      }
      case "move": {
        this.touch(step.id);
        this.touch(step.fromParent);
        this.touch(step.toParent);
        const o = this.mustGet(step.id);
        this.mustGet(step.fromParent).children.splice(step.fromIndex, 1);
        this.mustGet(step.toParent).children.splice(step.toIndex, 0, o.id);
        o.parent = step.toParent;
        break;
      }
      case "attr": {
        this.touch(step.obj);
        this.trail(step.obj, step.attr).changes.push(step.change);
        const o = this.mustGet(step.obj);
        if (step.value === undefined) o.attrs.delete(step.attr);
        else o.attrs.set(step.attr, step.value);
        break;
      }
      case "emit":
        break;
    }
  }

  private insertNode(node: NodeSnapshot, parent: string | null, index: number): void {
    const attrs = new Map<string, JsonValue>();
    for (const [k, v] of Object.entries(node.attrs ?? {})) attrs.set(k, deepFreeze(v));
    const o: MutableObject = { id: node.id, type: node.type, parent, children: [], attrs };
    this.objects.set(node.id, o);
    if (parent !== null) this.mustGet(parent).children.splice(index, 0, node.id);
    (node.children ?? []).forEach((c, i) => this.insertNode(c, node.id, i));
  }

  private removeSubtree(id: string): void {
    const stack = [id];
    for (let guard = 0; stack.length > 0 && guard <= this.objects.size; guard++) {
      const cur = stack.pop() as string;
      const o = this.objects.get(cur);
      if (o === undefined) continue;
      stack.push(...o.children);
      this.objects.delete(cur);
    }
  }

  private mustGet(id: string): MutableObject {
    const o = this.objects.get(id);
    if (o === undefined) throw new Error(`ObjectTree invariant: ${id} is missing`);
    return o;
  }

  private touch(id: string): void {
    const b = this.batch;
    if (b === null || b.before.has(id)) return;
    const o = this.objects.get(id);
    b.before.set(
      id,
      o === undefined ? null : { type: o.type, parent: o.parent, children: o.children.slice(), attrs: new Map(o.attrs) },
    );
  }

  private touchSubtree(node: NodeSnapshot, depth: number): void {
    if (this.batch === null || depth > TREE_DEPTH_MAX) return;
    this.touch(node.id);
    for (const c of node.children ?? []) this.touchSubtree(c, depth + 1);
  }

  private trail(obj: string, attr: string): AttrTrail {
    const b = this.batch;
    if (b === null) return { changes: [], clean: false };
    let m = b.trails.get(obj);
    if (m === undefined) b.trails.set(obj, (m = new Map()));
    let t = m.get(attr);
    if (t === undefined) m.set(attr, (t = { changes: [], clean: true }));
    return t;
  }
}

function noObject(id: string): ApplyError {
  return { code: "no_such_object", reason: `no object ${id}` };
}

function collectIds(node: NodeSnapshot, out: string[], depth: number): boolean {
  if (depth > TREE_DEPTH_MAX) return false;
  out.push(node.id);
  return (node.children ?? []).every((c) => collectIds(c, out, depth + 1));
}
