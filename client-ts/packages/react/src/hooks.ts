/**
 * The hooks: each one subscribes, through `useSyncExternalStore`, to the one emitter that says
 * when its value changes (a topic, an object's children, the client's presence or status), so a
 * change re-renders only the components that read what changed. Every snapshot keeps its
 * identity until its value changes (compared structurally for JSON), as `useSyncExternalStore`
 * requires and React's concurrent rendering relies on.
 */

import type {
  ActionHandle,
  CallOptions,
  ClientEvents,
  EventTopicEvents,
  JsonValue,
  SObject,
  UserInfo,
} from "objectsync-client";
import { EventTopic, Topic } from "objectsync-client";
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { useClient, useRoom } from "./provider.js";
import type { Status } from "./room.js";

/** A topic of any kind (what `obj.string(name)`, `obj.dict(name)` or a generated getter returns). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTopic = Topic<any, any>;
/** The value type of a topic. */
export type TopicValue<T> = T extends Topic<infer V, infer _E> ? V : never;
/** The names of `O`'s properties that are topics (a generated class's attribute getters). */
export type TopicKeys<O> = { [K in keyof O]: O[K] extends AnyTopic ? K : never }[keyof O] & string;
/** A class to narrow objects by (a generated class or a subclass of it). */
export type ObjectClass<T extends SObject> = abstract new (...args: never[]) => T;

/** JSON compared by value, anything else by identity. */
function same(a: unknown, b: unknown, depth = 0): boolean {
  if (Object.is(a, b)) return true;
  if (depth > 64 || typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i], depth + 1));
  if (Object.getPrototypeOf(a) !== Object.prototype && Object.getPrototypeOf(a) !== null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1));
}

/**
 * A snapshot reader that returns its previous result while the input (by `same`) and so the
 * output has not changed: stable identities for `useSyncExternalStore`.
 */
function useStable<T>(read: () => T): () => T {
  const last = useRef<{ value: T } | null>(null);
  return () => {
    const next = read();
    const prev = last.current;
    if (prev !== null && same(prev.value, next)) return prev.value;
    last.current = { value: next };
    return next;
  };
}

const noSubscribe = () => () => {};

// --------------------------------------------------------------------------------- status

/** The connection and the room's version (`Status`); with `select`, only what it picks. */
export function useStatus(): Status;
export function useStatus<T>(select: (status: Status) => T): T;
export function useStatus<T>(select?: (status: Status) => T): Status | T {
  const room = useRoom();
  const read = useStable(() => (select === undefined ? room.getStatus() : select(room.getStatus())));
  return useSyncExternalStore((fn) => room.onStatus(fn), read, read);
}

// -------------------------------------------------------------------------------- objects

/**
 * The object `id` of the local view (`undefined` while it does not exist), re-rendering when it
 * appears or goes. With `Type`, `undefined` also when it is not a `Type`.
 */
export function useObject<T extends SObject = SObject>(id: string | null | undefined, Type?: ObjectClass<T>): T | undefined {
  const client = useClient();
  const subscribe = useCallback(
    (fn: () => void) => {
      if (id === null || id === undefined) return () => {};
      const mine = (e: { object: SObject }) => {
        if (e.object.id === id) fn();
      };
      const offs = [client.on("created", mine), client.on("destroyed", mine), client.on("ready", fn)];
      return () => offs.forEach((off) => off());
    },
    [client, id],
  );
  const read = () => {
    if (id === null || id === undefined) return undefined;
    const obj = client.get(id);
    if (obj === undefined || obj.destroyed) return undefined;
    return Type === undefined || obj instanceof Type ? (obj as T) : undefined;
  };
  return useSyncExternalStore(subscribe, read, read);
}

/**
 * The value of one attribute: `useAttr(topic)` or `useAttr(obj, "name")` (a generated getter's
 * name: typed by the schema), re-rendering only when that attribute changes, or with `select`
 * only when what it picks changes. `undefined` while the object is.
 */
export function useAttr<T extends AnyTopic>(topic: T): TopicValue<T>;
export function useAttr<T extends AnyTopic, R>(topic: T, select: (value: TopicValue<T>) => R): R;
export function useAttr<T extends AnyTopic>(topic: T | null | undefined): TopicValue<T> | undefined;
export function useAttr<T extends AnyTopic, R>(topic: T | null | undefined, select: (value: TopicValue<T>) => R): R | undefined;
export function useAttr<O extends SObject, K extends TopicKeys<O>>(obj: O, name: K): TopicValue<O[K]>;
export function useAttr<O extends SObject, K extends TopicKeys<O>, R>(obj: O, name: K, select: (value: TopicValue<O[K]>) => R): R;
export function useAttr<O extends SObject, K extends TopicKeys<O>>(obj: O | null | undefined, name: K): TopicValue<O[K]> | undefined;
export function useAttr<O extends SObject, K extends TopicKeys<O>, R>(
  obj: O | null | undefined,
  name: K,
  select: (value: TopicValue<O[K]>) => R,
): R | undefined;
export function useAttr(
  source: AnyTopic | SObject | null | undefined,
  nameOrSelect?: string | ((value: unknown) => unknown),
  maybeSelect?: (value: unknown) => unknown,
): unknown {
  const topic = topicOf(source, nameOrSelect);
  const select = typeof nameOrSelect === "function" ? nameOrSelect : maybeSelect;
  const subscribe = useCallback((fn: () => void) => (topic === null ? () => {} : topic.on("changed", fn)), [topic]);
  const read = useStable(() => {
    if (topic === null || topic.object.destroyed) return undefined;
    const value: unknown = topic.value;
    return select === undefined ? value : select(value);
  });
  return useSyncExternalStore(topic === null ? noSubscribe : subscribe, read, read);
}

function topicOf(source: AnyTopic | SObject | null | undefined, name: unknown): AnyTopic | null {
  if (source === null || source === undefined) return null;
  if (source instanceof Topic) return source;
  if (typeof name !== "string") throw new TypeError("useAttr(obj, name): give the attribute's name");
  const t: unknown = (source as unknown as Record<string, unknown>)[name];
  if (t instanceof Topic) return t as AnyTopic;
  throw new TypeError(`useAttr: ${source.type} has no attribute getter ${name}; pass a topic (obj.string("${name}"), ...)`);
}

/**
 * The children of `obj` in order (of class `Type` only, or of type name `Type`), re-rendering
 * when one comes, goes or moves: not when a child's attributes change (those are the child's
 * components' to read).
 */
export function useChildren<T extends SObject = SObject>(obj: SObject | null | undefined, Type?: ObjectClass<T> | string): readonly T[] {
  const subscribe = useCallback(
    (fn: () => void) => {
      if (obj === null || obj === undefined) return () => {};
      const offs = [obj.on("childAdded", fn), obj.on("childRemoved", fn), obj.on("childMoved", fn), obj.on("destroyed", fn)];
      return () => offs.forEach((off) => off());
    },
    [obj],
  );
  const last = useRef<readonly T[]>(EMPTY);
  const read = () => {
    const all = obj === null || obj === undefined || obj.destroyed ? [] : obj.children;
    const next = (Type === undefined ? all : all.filter((c) => (typeof Type === "string" ? c.type === Type : c instanceof Type))) as T[];
    const prev = last.current;
    if (prev.length === next.length && prev.every((c, i) => c === next[i])) return prev;
    last.current = next;
    return next;
  };
  return useSyncExternalStore(subscribe, read, read);
}
const EMPTY: readonly never[] = Object.freeze([]);

// ---------------------------------------------------------------------------------- edits

/** `transaction(fn)`: every edit made in `fn` is one action (one undo step). Stable. */
export function useTransaction(): (fn: () => void) => ActionHandle {
  const client = useClient();
  return useCallback((fn: () => void) => client.transaction(fn), [client]);
}

/** Undo and redo of this client's own changes (under `scope`, anywhere if absent). */
export interface UndoRedo {
  /** Undoes this client's latest step; the server refuses with `nothing_to_undo` if there is none. */
  undo(): ActionHandle;
  /** Redoes the latest undone step. */
  redo(): ActionHandle;
  /** Steps the server held for this client when it (re)joined; `null` before. */
  readonly undoStepsAtJoin: number | null;
}

/** Undo and redo of this client's own changes (under `scope`: an object or its id). */
export function useUndoRedo(scope?: SObject | string): UndoRedo {
  const client = useClient();
  const scopeId = typeof scope === "object" ? scope.id : scope;
  const [steps, setSteps] = useState<number | null>(null);
  useEffect(() => client.on("ready", (e) => setSteps(e.undoSteps)), [client]);
  const undo = useCallback(() => client.undo(scopeId), [client, scopeId]);
  const redo = useCallback(() => client.redo(scopeId), [client, scopeId]);
  return { undo, redo, undoStepsAtJoin: steps };
}

// ------------------------------------------------------------------------------- presence

/**
 * This client's presence state and its setter (a value, or a function of the current one;
 * `null` clears it). Kept across reconnects.
 */
export function usePresence<P extends JsonValue = JsonValue>(): [P | null, (next: P | null | ((current: P | null) => P | null)) => void] {
  const room = useRoom();
  const read = () => room.presence as P | null;
  const state = useSyncExternalStore((fn) => room.onPresence(fn), read, read);
  const set = useCallback(
    (next: P | null | ((current: P | null) => P | null)) => {
      room.setPresence(typeof next === "function" ? next(room.presence as P | null) : next);
    },
    [room],
  );
  return [state, set];
}

/** Another client as presence shows it. */
export interface Other<P = JsonValue> {
  /** Its client id in the room. */
  readonly clientId: string;
  /** Its presence state (anything it set: do not trust it for who it is). */
  readonly presence: P;
  /** Who it is, as the server's auth hook said (`null` when anonymous). */
  readonly user: UserInfo | null;
}

/**
 * The other clients with a presence, by client id order; with `select`, only what it picks
 * (re-rendering only when that changes, e.g. `others => others.length`).
 */
export function useOthers<P = JsonValue>(): readonly Other<P>[];
export function useOthers<P, R>(select: (others: readonly Other<P>[]) => R): R;
export function useOthers<P, R>(select?: (others: readonly Other<P>[]) => R): readonly Other<P>[] | R {
  const client = useClient();
  const subscribe = useCallback(
    (fn: () => void) => {
      const offs = [client.on("presence", fn), client.on("ready", fn)];
      return () => offs.forEach((off) => off());
    },
    [client],
  );
  const read = useStable(() => {
    const users = client.users;
    const others = [...client.presence]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([clientId, presence]) => ({ clientId, presence: presence as P, user: users.get(clientId) ?? null }));
    return select === undefined ? others : select(others);
  });
  return useSyncExternalStore(subscribe, read, read);
}

// --------------------------------------------------------------------------------- events

/**
 * Calls `handler` on every event of an `event` attribute (`topic`, or `obj`'s `name`) as the
 * server delivers it; the latest `handler` is called, without resubscribing.
 */
export function useEvent(topic: EventTopic | null | undefined, handler: (event: EventTopicEvents["emit"]) => void): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => (topic === null || topic === undefined ? undefined : topic.on("emit", (e) => latest.current(e))), [topic]);
}

/** Calls `handler` on every `type` event of the client (`reject`, `ready`, `state`...). */
export function useClientEvent<K extends keyof ClientEvents>(type: K, handler: (event: ClientEvents[K]) => void): void {
  const client = useClient();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => client.on(type, (e) => latest.current(e)), [client, type]);
}

// ---------------------------------------------------------------------------------- calls

/** A service call's state and the function that makes it. */
export interface Call {
  /** Calls the service; resolves with its result, rejects with a `CallError`. */
  call(args?: JsonValue, options?: CallOptions): Promise<JsonValue>;
  /** Whether a call made here is waiting for its result. */
  readonly pending: boolean;
  /** The latest result (`undefined` before one). */
  readonly result: JsonValue | undefined;
  /** The latest failure (`null` after a success). */
  readonly error: Error | null;
}

/** Calls the server's `service`; see {@link Call}. The state is the latest call's. */
export function useCall(service: string): Call {
  const client = useClient();
  const [state, setState] = useState<{ pending: boolean; result: JsonValue | undefined; error: Error | null }>({
    pending: false,
    result: undefined,
    error: null,
  });
  const seq = useRef(0);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const call = useCallback(
    (args: JsonValue = null, options?: CallOptions) => {
      const n = ++seq.current;
      setState((s) => ({ ...s, pending: true }));
      const p = client.call(service, args, options);
      p.then(
        (result) => {
          if (mounted.current && n === seq.current) setState({ pending: false, result, error: null });
        },
        (error: Error) => {
          if (mounted.current && n === seq.current) setState((s) => ({ pending: false, result: s.result, error }));
        },
      );
      return p;
    },
    [client, service],
  );
  return { call, ...state };
}
