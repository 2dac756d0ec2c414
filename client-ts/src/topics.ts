/**
 * Topics: typed views of one attribute of one object, read from the local view, edited through
 * the client (each edit is an action, or part of the open transaction) and reporting
 * fine-grained events plus a coarse `changed` once per batch.
 *
 * A topic does not know the schema: the accessor a program picks (`obj.string("title")`, or a
 * generated getter) says what the attribute is. A value of another shape reads as the kind's
 * empty value. A client given a schema checks each edit against the attribute's kind before it
 * is applied or sent (`schema.ts`).
 */

import type { AttrEvent } from "./diff.js";
import { Emitter } from "./emitter.js";
import type { ActionHandle } from "./handle.js";
import type { Change, JsonObject, JsonValue, SetElement } from "./protocol.js";
import type { ObjectHost, SObject } from "./sobject.js";
import { canonicalSet, hasKey, isJsonObject, isSetElement } from "./values.js";

/** Whether a change came from this client's own edit (applied at once, before the server). */
export interface ChangeInfo {
  /** `true` for this client's own edit as it is made; `false` for what server messages brought. */
  readonly local: boolean;
}

/** Events every topic has. */
export interface BaseTopicEvents<V> {
  /** The whole value was replaced. */
  set: { readonly value: V } & ChangeInfo;
  /** Once per batch after the fine-grained events: the value now. */
  changed: { readonly value: V } & ChangeInfo;
}

/** Events of a {@link StringTopic}. */
export interface StringTopicEvents extends BaseTopicEvents<string> {
  textInsert: { readonly pos: number; readonly text: string } & ChangeInfo;
  textDelete: { readonly pos: number; readonly len: number; readonly text: string } & ChangeInfo;
}

/** Events of a {@link DictTopic}. */
export interface DictTopicEvents<V extends JsonValue> extends BaseTopicEvents<Readonly<Record<string, V>>> {
  dictSet: { readonly key: string; readonly value: V } & ChangeInfo;
  dictRemove: { readonly key: string } & ChangeInfo;
}

/** Events of a {@link ListTopic}. */
export interface ListTopicEvents<V extends JsonValue> extends BaseTopicEvents<readonly V[]> {
  listInsert: { readonly index: number; readonly value: V } & ChangeInfo;
  listRemove: { readonly index: number; readonly value: V } & ChangeInfo;
  listMove: { readonly from: number; readonly to: number } & ChangeInfo;
  listSet: { readonly index: number; readonly value: V } & ChangeInfo;
}

/** Events of a {@link SetTopic}. */
export interface SetTopicEvents<E extends SetElement> extends BaseTopicEvents<readonly E[]> {
  setAdd: { readonly value: E } & ChangeInfo;
  setRemove: { readonly value: E } & ChangeInfo;
}

/** Events of an {@link EventTopic}. */
export interface EventTopicEvents {
  /** Someone (this client included, `local`) emitted; delivered in room order by the server. */
  emit: { readonly args: JsonValue; readonly origin: string } & ChangeInfo;
}

/** A typed view of one attribute. */
export abstract class Topic<V, E extends BaseTopicEvents<V>> extends Emitter<E> {
  /** The object. */
  readonly object: SObject;
  /** The attribute name. */
  readonly name: string;
  /** @internal */
  protected readonly host: ObjectHost;
  /** Fine-grained event types this topic reports. */
  private readonly reported: ReadonlySet<string>;

  constructor(object: SObject, name: string, host: ObjectHost, reported: readonly (keyof E & string)[]) {
    super();
    this.object = object;
    this.name = name;
    this.host = host;
    this.reported = new Set(reported);
  }

  /** The current value (of the local view: confirmed plus this client's pending edits). */
  get value(): V {
    return this.coerce(this.raw());
  }

  /** The stored JSON value, whatever its shape (`undefined` if absent). */
  raw(): JsonValue | undefined {
    return this.host.readValue(this.object.id, this.name);
  }

  /** Replaces the whole value. */
  set(value: V): ActionHandle {
    return this.submit({ op: "set", obj: this.object.id, attr: this.name, value: this.toJson(value) });
  }

  /** @internal Delivers one batch of changes of this attribute. */
  deliver(events: readonly AttrEvent[], local: boolean): void {
    const target = this as unknown as Emitter<Record<string, object>>;
    for (const ev of events) {
      if (!this.reported.has(ev.type)) continue;
      const { type, ...rest } = ev;
      const payload = type === "set" ? { value: this.coerce(ev.value as JsonValue | undefined) } : rest;
      target.dispatch(type, { ...payload, local });
    }
    target.dispatch("changed", { value: this.value, local });
  }

  /** The value as this kind reads it. */
  protected abstract coerce(raw: JsonValue | undefined): V;

  /** The value as JSON for the wire. */
  protected abstract toJson(value: V): JsonValue;

  protected submit(change: Change): ActionHandle {
    return this.host.submit(change);
  }

  protected where(): { obj: string; attr: string } {
    return { obj: this.object.id, attr: this.name };
  }
}

/** A `string` attribute: whole-value `set` and UTF-16 text edits. */
export class StringTopic extends Topic<string, StringTopicEvents> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set", "textInsert", "textDelete"]);
  }
  /** Inserts `text` at UTF-16 position `pos`. */
  insert(pos: number, text: string): ActionHandle {
    return this.submit({ op: "text_insert", ...this.where(), pos, text });
  }
  /** Deletes `len` UTF-16 units at `pos`. */
  delete(pos: number, len: number): ActionHandle {
    return this.submit({ op: "text_delete", ...this.where(), pos, len });
  }
  /** Replaces `len` units at `pos` by `text` (one action). */
  replace(pos: number, len: number, text: string): ActionHandle {
    return this.host.transaction(() => {
      if (len > 0) this.delete(pos, len);
      if (text.length > 0) this.insert(pos, text);
    });
  }
  protected coerce(raw: JsonValue | undefined): string {
    return typeof raw === "string" ? raw : "";
  }
  protected toJson(value: string): JsonValue {
    return value;
  }
}

/** An `int` or `float` attribute. */
export class NumberTopic extends Topic<number, BaseTopicEvents<number>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set"]);
  }
  /** Adds `delta` (commutes with others' adds, unlike `set`). */
  add(delta: number): ActionHandle {
    return this.submit({ op: "add", ...this.where(), value: delta });
  }
  protected coerce(raw: JsonValue | undefined): number {
    return typeof raw === "number" ? raw : 0;
  }
  protected toJson(value: number): JsonValue {
    return value;
  }
}

/** A `bool` attribute. */
export class BoolTopic extends Topic<boolean, BaseTopicEvents<boolean>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set"]);
  }
  /** Sets the opposite of the current value. */
  toggle(): ActionHandle {
    return this.set(!this.value);
  }
  protected coerce(raw: JsonValue | undefined): boolean {
    return raw === true;
  }
  protected toJson(value: boolean): JsonValue {
    return value;
  }
}

const EMPTY_DICT: Readonly<Record<string, never>> = Object.freeze({});
const EMPTY_LIST: readonly never[] = Object.freeze([]);

/** A `dict` attribute: string keys to JSON values. */
export class DictTopic<V extends JsonValue = JsonValue> extends Topic<Readonly<Record<string, V>>, DictTopicEvents<V>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set", "dictSet", "dictRemove"]);
  }
  /** The value of `key`. */
  get(key: string): V | undefined {
    const d = this.value;
    return hasKey(d as JsonObject, key) ? d[key] : undefined;
  }
  /** Whether `key` is set. */
  has(key: string): boolean {
    return hasKey(this.value as JsonObject, key);
  }
  /** The keys. */
  keys(): string[] {
    return Object.keys(this.value);
  }
  /** Sets one key. */
  setKey(key: string, value: V): ActionHandle {
    return this.submit({ op: "dict_set", ...this.where(), key, value });
  }
  /** Removes one key (refused if absent). */
  removeKey(key: string): ActionHandle {
    return this.submit({ op: "dict_remove", ...this.where(), key });
  }
  protected coerce(raw: JsonValue | undefined): Readonly<Record<string, V>> {
    return isJsonObject(raw) ? (raw as Readonly<Record<string, V>>) : EMPTY_DICT;
  }
  protected toJson(value: Readonly<Record<string, V>>): JsonValue {
    return { ...value } as JsonObject;
  }
}

/** A `list` attribute. */
export class ListTopic<V extends JsonValue = JsonValue> extends Topic<readonly V[], ListTopicEvents<V>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set", "listInsert", "listRemove", "listMove", "listSet"]);
  }
  /** Number of elements. */
  get length(): number {
    return this.value.length;
  }
  /** The element at `index`. */
  at(index: number): V | undefined {
    return this.value[index];
  }
  /** Inserts `value` at `index` (the end if absent). */
  insert(value: V, index?: number): ActionHandle {
    const c: Change = { op: "list_insert", ...this.where(), value };
    if (index !== undefined) c.index = index;
    return this.submit(c);
  }
  /** Appends `value`. */
  push(value: V): ActionHandle {
    return this.insert(value);
  }
  /** Removes the element at `index`. */
  remove(index: number): ActionHandle {
    return this.submit({ op: "list_remove", ...this.where(), index });
  }
  /** Moves the element at `from` to final position `to`. */
  move(from: number, to: number): ActionHandle {
    return this.submit({ op: "list_move", ...this.where(), from, to });
  }
  /** Replaces the element at `index`. */
  setAt(index: number, value: V): ActionHandle {
    return this.submit({ op: "list_set", ...this.where(), index, value });
  }
  protected coerce(raw: JsonValue | undefined): readonly V[] {
    return Array.isArray(raw) ? (raw as readonly JsonValue[] as readonly V[]) : EMPTY_LIST;
  }
  protected toJson(value: readonly V[]): JsonValue {
    return [...value];
  }
}

/** A `set` attribute: distinct strings, integers or booleans in canonical order. */
export class SetTopic<E extends SetElement = SetElement> extends Topic<readonly E[], SetTopicEvents<E>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set", "setAdd", "setRemove"]);
  }
  /** Whether `value` is in the set. */
  has(value: E): boolean {
    return this.value.some((v) => v === value);
  }
  /** Adds `value` (refused if present). */
  add(value: E): ActionHandle {
    return this.submit({ op: "set_add", ...this.where(), value });
  }
  /** Removes `value` (refused if absent). */
  remove(value: E): ActionHandle {
    return this.submit({ op: "set_remove", ...this.where(), value });
  }
  protected coerce(raw: JsonValue | undefined): readonly E[] {
    return Array.isArray(raw) && raw.every(isSetElement) ? (raw as unknown as readonly E[]) : EMPTY_LIST;
  }
  protected toJson(value: readonly E[]): JsonValue {
    return canonicalSet(value);
  }
}

/** A `ref` attribute: an object id or null. */
export class RefTopic extends Topic<string | null, BaseTopicEvents<string | null>> {
  constructor(object: SObject, name: string, host: ObjectHost) {
    super(object, name, host, ["set"]);
  }
  /** The object referred to, if it exists in the local view. */
  get target(): SObject | null {
    const id = this.value;
    return id === null ? null : (this.host.resolve(id) ?? null);
  }
  /** Points at `target` (an object or its id), or nowhere. */
  point(target: SObject | string | null): ActionHandle {
    return this.set(typeof target === "string" || target === null ? target : target.id);
  }
  protected coerce(raw: JsonValue | undefined): string | null {
    return typeof raw === "string" ? raw : null;
  }
  protected toJson(value: string | null): JsonValue {
    return value;
  }
}

/** A `ref_list` attribute: a list of object ids. */
export class RefListTopic extends ListTopic<string> {
  /** The objects referred to that exist in the local view, in order. */
  targets(): SObject[] {
    return this.value.flatMap((id) => this.host.resolve(id) ?? []);
  }
}

/** A `ref_dict` attribute: keys to object ids. */
export class RefDictTopic extends DictTopic<string> {
  /** The object `key` refers to, if it exists in the local view. */
  target(key: string): SObject | undefined {
    const id = this.get(key);
    return id === undefined ? undefined : this.host.resolve(id);
  }
}

/** An `event` attribute: holds nothing, carries one-shot events. */
export class EventTopic extends Emitter<EventTopicEvents> {
  readonly object: SObject;
  readonly name: string;
  private readonly host: ObjectHost;
  constructor(object: SObject, name: string, host: ObjectHost) {
    super();
    this.object = object;
    this.name = name;
    this.host = host;
  }
  /** Emits an event to every client of the room (this one included, when the server delivers it). */
  emit(args: JsonValue = null): ActionHandle {
    return this.host.submit({ op: "emit", obj: this.object.id, attr: this.name, args });
  }
}
