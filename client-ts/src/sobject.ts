/**
 * `SObject`: one object of the local view as the application sees it (id, type, parent,
 * children, typed topic accessors, structural events) and the base class of application classes
 * registered per type name. An instance lives from when its object appears to when it goes:
 * `onStart` runs once its attributes, parent and children are in place, `onDestroy` when it
 * goes, after which every listener registered through `listen`, `listenDom` or `own` is removed.
 */

import type { ObjectSyncClient } from "./client.js";
import type { Disposer } from "./emitter.js";
import { Emitter } from "./emitter.js";
import type { ActionHandle } from "./handle.js";
import type { Change, JsonObject, JsonValue, SetElement } from "./protocol.js";
import {
  BoolTopic,
  DictTopic,
  EventTopic,
  ListTopic,
  NumberTopic,
  RefDictTopic,
  RefListTopic,
  RefTopic,
  SetTopic,
  StringTopic,
} from "./topics.js";
import type { TreeObject } from "./tree.js";

/** @internal What objects and topics need from the client. */
export interface ObjectHost {
  readValue(obj: string, attr: string): JsonValue | undefined;
  treeObject(id: string): TreeObject | undefined;
  resolve(id: string): SObject | undefined;
  submit(change: Change): ActionHandle;
  transaction(fn: () => void): ActionHandle;
}

/** What the client hands an object's constructor; pass it on to `super(init)`. */
export interface SObjectInit {
  readonly client: ObjectSyncClient;
  readonly id: string;
  readonly type: string;
  /** @internal */
  readonly host: ObjectHost;
}

/** A class the client instantiates for objects of one type. */
export type SObjectClass = new (init: SObjectInit) => SObject;

/** Events of an {@link SObject}. */
export interface SObjectEvents {
  /** The object left the local view (deleted, or a local creation rolled back). */
  destroyed: { readonly object: SObject };
  /** A child arrived (created or moved here) at `index`. */
  childAdded: { readonly child: SObject; readonly index: number };
  /** A child left (deleted or moved elsewhere) from `index`. */
  childRemoved: { readonly child: SObject; readonly index: number };
  /** A child changed place among the children. */
  childMoved: { readonly child: SObject; readonly from: number; readonly to: number };
  /** This object moved under another parent. */
  moved: { readonly from: SObject | null; readonly to: SObject | null };
}

type AnyTopic = object;
type TopicKind = new (object: SObject, name: string, host: ObjectHost) => AnyTopic;

/** One object of the local view; see the module docs. */
export class SObject extends Emitter<SObjectEvents> {
  /** The object id. */
  readonly id: string;
  /** The registered type name. */
  readonly type: string;
  /** The client this object belongs to. */
  readonly client: ObjectSyncClient;
  private readonly host: ObjectHost;
  /** Topic instances by attribute, then by kind (one instance per accessor and name). */
  private readonly topics = new Map<string, Map<TopicKind, AnyTopic>>();
  private readonly disposers: Disposer[] = [];
  private isDestroyed = false;

  constructor(init: SObjectInit) {
    super();
    this.id = init.id;
    this.type = init.type;
    this.client = init.client;
    this.host = init.host;
  }

  /** Runs once the object is in place (attributes, parent, children). Override it. */
  onStart(): void {}

  /** Runs when the object goes, before its listeners are removed. Override it. */
  onDestroy(): void {}

  /** Whether the object has left the local view. */
  get destroyed(): boolean {
    return this.isDestroyed;
  }

  /** The parent (`null` for the root, or once destroyed). */
  get parent(): SObject | null {
    const p = this.host.treeObject(this.id)?.parent;
    return p === null || p === undefined ? null : (this.host.resolve(p) ?? null);
  }

  /** The children in order. */
  get children(): SObject[] {
    return (this.host.treeObject(this.id)?.children ?? []).flatMap((c) => this.host.resolve(c) ?? []);
  }

  /** The raw JSON value of attribute `name`. */
  attr(name: string): JsonValue | undefined {
    return this.host.readValue(this.id, name);
  }

  /** Every attribute as JSON. */
  attrs(): JsonObject {
    return Object.fromEntries(this.host.treeObject(this.id)?.attrs ?? []) as JsonObject;
  }

  /** A `string` attribute. */
  string(name: string): StringTopic {
    return this.topic(name, StringTopic);
  }
  /** An `int` or `float` attribute. */
  number(name: string): NumberTopic {
    return this.topic(name, NumberTopic);
  }
  /** A `bool` attribute. */
  bool(name: string): BoolTopic {
    return this.topic(name, BoolTopic);
  }
  /** A `dict` attribute. */
  dict<V extends JsonValue = JsonValue>(name: string): DictTopic<V> {
    return this.topic(name, DictTopic) as DictTopic<V>;
  }
  /** A `list` attribute. */
  list<V extends JsonValue = JsonValue>(name: string): ListTopic<V> {
    return this.topic(name, ListTopic) as ListTopic<V>;
  }
  /** A `set` attribute. */
  set<E extends SetElement = SetElement>(name: string): SetTopic<E> {
    return this.topic(name, SetTopic) as SetTopic<E>;
  }
  /** A `ref` attribute. */
  ref(name: string): RefTopic {
    return this.topic(name, RefTopic);
  }
  /** A `ref_list` attribute. */
  refList(name: string): RefListTopic {
    return this.topic(name, RefListTopic);
  }
  /** A `ref_dict` attribute. */
  refDict(name: string): RefDictTopic {
    return this.topic(name, RefDictTopic);
  }
  /** An `event` attribute. */
  event(name: string): EventTopic {
    return this.topic(name, EventTopic);
  }

  /** Deletes this object and its subtree. */
  delete(): ActionHandle {
    return this.host.submit({ op: "delete", id: this.id });
  }

  /** Moves this object under `parent` to final position `index` (the end if absent). */
  moveTo(parent: SObject | string, index?: number): ActionHandle {
    const c: Change = { op: "move", id: this.id, parent: typeof parent === "string" ? parent : parent.id };
    if (index !== undefined) c.index = index;
    return this.host.submit(c);
  }

  /**
   * Subscribes to `type` events of `source` (a topic, another object, the client) until this
   * object is destroyed or the returned disposer is called.
   */
  listen<Ev extends object, K extends keyof Ev>(source: Emitter<Ev>, type: K, fn: (event: Ev[K]) => void): Disposer {
    return this.own(source.on(type, fn));
  }

  /** Adds a DOM listener removed when this object is destroyed (or the disposer is called). */
  listenDom(target: EventTarget, type: string, fn: (event: Event) => void, options?: AddEventListenerOptions): Disposer {
    target.addEventListener(type, fn, options);
    return this.own(() => target.removeEventListener(type, fn, options));
  }

  /** Runs `dispose` when this object is destroyed; returns a disposer that runs it earlier. */
  own(dispose: Disposer): Disposer {
    if (this.isDestroyed) {
      dispose();
      return () => {};
    }
    let done = false;
    const once: Disposer = () => {
      if (done) return;
      done = true;
      const i = this.disposers.indexOf(once);
      if (i >= 0) this.disposers.splice(i, 1);
      dispose();
    };
    this.disposers.push(once);
    return once;
  }

  /** @internal Topics of attribute `name` that exist (to deliver events to). */
  topicsOf(name: string): AnyTopic[] {
    return [...(this.topics.get(name)?.values() ?? [])];
  }

  /** @internal Called by the client when the object leaves the local view. */
  destroy(): void {
    if (this.isDestroyed) return;
    this.isDestroyed = true;
    guarded(() => this.onDestroy());
    this.dispatch("destroyed", { object: this });
    for (const d of this.disposers.splice(0).reverse()) guarded(d);
    this.clear();
    for (const kinds of this.topics.values()) for (const t of kinds.values()) if (t instanceof Emitter) t.clear();
  }

  /** @internal Called by the client once the object is in place. */
  start(): void {
    if (!this.isDestroyed) guarded(() => this.onStart());
  }

  private topic<T extends AnyTopic>(name: string, Kind: new (object: SObject, name: string, host: ObjectHost) => T): T {
    let kinds = this.topics.get(name);
    if (kinds === undefined) this.topics.set(name, (kinds = new Map()));
    let t = kinds.get(Kind);
    if (t === undefined) kinds.set(Kind, (t = new Kind(this, name, this.host)));
    return t as T;
  }
}

/** Runs application code; an error surfaces as uncaught without breaking the caller. */
function guarded(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}
