/**
 * `ObjectSyncClient`: the public entry point. Wires a {@link Connection} to a {@link Rebase},
 * turns local-view diffs into `SObject` instances and events, and offers edits (optimistic,
 * rolled back exactly on reject), transactions, object creation, undo/redo, presence, events
 * and service calls.
 *
 * One batch of events per local action or server message: structural events, then attribute
 * events, then destroyed objects, then created objects (`onStart` last, parents first), then
 * the emitted events the server delivered.
 *
 * With a generated schema (`new ObjectSyncClient({ schema })`, see `schema.ts`) the client is
 * typed by it (`create` takes the schema's classes and type names, and attributes typed by
 * kind) and checks every change against it before applying or sending it.
 *
 * Its parts in `client/`: `options.ts` (the options and events, types only) and `calls.ts` (the
 * service calls waiting for their results).
 */

import { ServiceCalls } from "./client/calls.js";
import type { CallOptions, ClientEvents, ClientOptions, ConnectOptions, CreateOptionsLoose } from "./client/options.js";
import type { ConnectionState } from "./connection.js";
import { Connection } from "./connection.js";
import type { TreeDiff } from "./diff.js";
import { isEmptyDiff } from "./diff.js";
import { Emitter } from "./emitter.js";
import { CallError, ObjectSyncError, RejectedError } from "./errors.js";
import type { ActionHandle } from "./handle.js";
import { ActionRecord } from "./handle.js";
import type { Change, EmitChange, HelloMessage, JsonObject, JsonValue, UserInfo, WelcomeMessage } from "./protocol.js";
import { CloseCode, PROTOCOL_VERSION } from "./protocol.js";
import type { Outcome } from "./rebase.js";
import { Rebase } from "./rebase.js";
import type { ClassFor, Schema, SchemaClass, TypedCreateOptions } from "./schema.js";
import { defaultsOf, SchemaIndex } from "./schema.js";
import type { ObjectHost, SObjectClass } from "./sobject.js";
import { SObject } from "./sobject.js";
import { EventTopic, Topic } from "./topics.js";
import { ROOT_ID } from "./tree.js";

export type { CallOptions, ClientEvents, ClientOptions, ConnectOptions, CreateOptions } from "./client/options.js";

/** Bounds the search for a free object id (ids of this client are unique anyway). */
const ID_PROBE_MAX = 1_000_000;

/**
 * The client of one room; see the module docs. `S` is the schema it was given (typed `create`);
 * without one, any type name goes and `create` returns plain `SObject`s.
 */
export class ObjectSyncClient<S extends Schema = Schema> extends Emitter<ClientEvents> {
  private readonly rebase: Rebase;
  private connection: Connection | null = null;
  private readonly host: ObjectHost;
  private readonly objects = new Map<string, SObject>();
  /** Instances made on demand inside a transaction, not yet announced by a batch. */
  private readonly unannounced = new Set<string>();
  private readonly classes = new Map<string, SObjectClass>();
  private readonly defaults = new Map<string, JsonObject>();
  /** The schema every change is checked against before it is applied; `null` without one. */
  private readonly schema: SchemaIndex | null;
  /** The fingerprint of the types this client was built for, sent in `hello`. */
  private readonly fingerprint: string | undefined;
  private readonly records = new Map<number, ActionRecord>();
  private tx: ActionRecord | null = null;
  private token: string | undefined;
  /** Asked for a token before every connection attempt, when `connect` got a function. */
  private tokenSource: (() => string | Promise<string>) | null = null;
  private myIdentity: UserInfo | null = null;
  private readonly otherUsers = new Map<string, UserInfo>();
  private resumeToken: string | null = null;
  private forceReload = false;
  private objectCounter = 0;
  private isReadOnly = false;
  private readonly calls = new ServiceCalls();
  private myPresence: JsonValue = null;
  private readonly others = new Map<string, JsonValue>();
  private firstWelcome: { resolve: () => void; reject: (e: ObjectSyncError) => void } | null = null;

  constructor(options: ClientOptions<S> = {}) {
    super();
    this.schema = options.schema === undefined ? null : new SchemaIndex(options.schema);
    this.fingerprint = options.fingerprint;
    for (const [type, cls] of Object.entries(options.schema ?? {})) {
      this.classes.set(type, cls);
      this.defaults.set(type, defaultsOf(cls.attrs));
    }
    for (const [type, cls] of Object.entries(options.classes ?? {})) this.classes.set(type, cls);
    for (const [type, d] of Object.entries(options.defaults ?? {})) this.defaults.set(type, d);
    this.rebase = new Rebase({ defaults: (type) => this.defaults.get(type) });
    this.host = {
      readValue: (obj, attr) => this.rebase.local?.get(obj)?.attrs.get(attr),
      treeObject: (id) => this.rebase.local?.get(id),
      resolve: (id) => this.get(id),
      submit: (change) => this.submit(change),
      transaction: (fn) => this.transaction(fn),
    };
  }

  /**
   * Registers the class instantiated for objects of `type` (and optionally attribute defaults
   * for objects of that type created locally). Objects already there keep their instances.
   */
  register(type: string, cls: SObjectClass, options: { defaults?: JsonObject } = {}): this {
    this.classes.set(type, cls);
    if (options.defaults !== undefined) this.defaults.set(type, options.defaults);
    return this;
  }

  /**
   * Connects to `url` (`ws://HOST:PORT/ws/<room>`) and keeps the connection up (reconnecting
   * and resuming) until {@link close}. Resolves when the document is first loaded.
   */
  connect(url: string, options: ConnectOptions = {}): Promise<void> {
    if (this.connection !== null) return Promise.reject(new ObjectSyncError("already_connected", "connect() was already called"));
    if (typeof options.token === "function") this.tokenSource = options.token;
    else this.token = options.token;
    const source = this.tokenSource;
    const conn = new Connection({
      url,
      hello: () => this.hello(),
      // A fresh token for every attempt: a session closed because its token expired (4006)
      // comes back with a new one and resumes.
      ...(source !== null
        ? {
            prepare: async () => {
              this.token = await source();
            },
          }
        : {}),
      ...(options.WebSocket !== undefined ? { WebSocket: options.WebSocket } : {}),
      ...(options.backoffInitialMs !== undefined ? { backoffInitialMs: options.backoffInitialMs } : {}),
      ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
      ...(options.silenceTimeoutMs !== undefined ? { silenceTimeoutMs: options.silenceTimeoutMs } : {}),
      ...(options.random !== undefined ? { random: options.random } : {}),
    });
    this.connection = conn;
    conn.handle("welcome", (w) => this.onWelcome(w));
    conn.handle("update", (u) => this.process(this.rebase.onUpdate(u), false));
    conn.handle("events", (e) => this.process(this.rebase.onEvents(e), false));
    conn.handle("reject", (r) => this.process(this.rebase.onReject(r), false));
    conn.handle("presence", (p) => this.setOther(p.client, p.state, p.user ?? null));
    conn.handle("result", (r) => this.calls.settle(r));
    conn.handle("error", (e) => this.dispatch("error", { error: new ObjectSyncError(e.code, e.reason) }));
    conn.on("decodeError", (e) => this.dispatch("error", { error: new ObjectSyncError("bad_message", e.error.reason) }));
    let lastClose = "";
    conn.on("close", (e) => {
      lastClose = `closed with ${e.code}${e.reason === "" ? "" : `: ${e.reason}`}`;
      if (e.code === CloseCode.schemaMismatch) {
        this.dispatch("schema_mismatch", { fingerprint: this.fingerprint ?? "", reason: e.reason });
      }
    });
    conn.on("state", (e) => {
      if (e.previous === "open") this.onDisconnected();
      this.dispatch("state", e);
      if (e.state === "closed") {
        this.firstWelcome?.reject(new ObjectSyncError("closed", lastClose || "the connection was closed"));
        this.firstWelcome = null;
      }
    });
    const ready = new Promise<void>((resolve, reject) => {
      this.firstWelcome = { resolve, reject };
    });
    try {
      conn.connect();
    } catch (e) {
      this.connection = null;
      this.firstWelcome = null;
      return Promise.reject(e);
    }
    return ready;
  }

  /** Closes the connection for good. Pending calls fail with `closed`. */
  close(): void {
    this.calls.closeAll();
    this.connection?.close();
  }

  /** The connection state (`closed` before `connect`). */
  get state(): ConnectionState {
    return this.connection?.state ?? "closed";
  }

  /** Whether the document is loaded (edits are possible, online or not). */
  get ready(): boolean {
    return this.rebase.local !== null;
  }

  /** This client's id in the room (`null` before the first welcome). */
  get clientId(): string | null {
    return this.rebase.clientId;
  }

  /** Whether the server said this client may not change anything. */
  get readOnly(): boolean {
    return this.isReadOnly;
  }

  /** The version of the confirmed state (`null` before the first welcome). */
  get version(): number | null {
    return this.rebase.mirror?.version ?? null;
  }

  /** How many actions wait for the server's answer. */
  get pendingCount(): number {
    return this.rebase.pending.length;
  }

  /** The root object. Throws `not_ready` before the document is loaded. */
  get root(): SObject {
    const root = this.get(ROOT_ID);
    if (root === undefined) throw new ObjectSyncError("not_ready", "the document is not loaded yet");
    return root;
  }

  /** The object with `id` in the local view, if any. */
  get(id: string): SObject | undefined {
    const known = this.objects.get(id);
    if (known !== undefined) return known;
    // Made inside the open transaction: instantiate now so that it can be edited right away.
    const t = this.rebase.local?.get(id);
    if (t === undefined || this.tx === null) return undefined;
    const obj = this.instantiate(id, t.type);
    this.unannounced.add(id);
    return obj;
  }

  /** Other clients' presence states by client id. */
  get presence(): ReadonlyMap<string, JsonValue> {
    return new Map(this.others);
  }

  /** Who this client is, as the server's auth hook said (`null`: anonymous, or not connected yet). */
  get identity(): UserInfo | null {
    return this.myIdentity;
  }

  /**
   * Who the other clients with a presence are, by client id, as the server says (a client's own
   * presence state cannot change it): show names from here, not from the state.
   */
  get users(): ReadonlyMap<string, UserInfo> {
    return new Map(this.otherUsers);
  }

  /**
   * Runs `fn` (synchronously) and makes every edit in it one action, applied locally at once
   * and sent when the sending rule allows. If `fn` throws, its edits are undone and nothing is
   * sent. Nested transactions join the outer one.
   */
  transaction(fn: () => void): ActionHandle {
    if (this.tx !== null) {
      fn();
      return this.tx;
    }
    this.checkWritable();
    const record = new ActionRecord();
    this.rebase.begin();
    this.tx = record;
    try {
      const result: unknown = fn();
      if (typeof (result as { then?: unknown } | null)?.then === "function") {
        throw new ObjectSyncError("async_transaction", "a transaction must be synchronous: edits after an await are not part of it");
      }
    } catch (e) {
      this.tx = null;
      this.rebase.abort();
      this.forgetUnannounced();
      throw e;
    }
    this.tx = null;
    const { action, outcome } = this.rebase.commit();
    let handle = record;
    if (action === null) record.bind(null);
    else {
      const merged = this.records.get(action.id);
      if (merged !== undefined) handle = merged;
      else {
        record.bind(action.id);
        this.records.set(action.id, record);
      }
    }
    this.process(outcome, true);
    return handle;
  }

  /**
   * Creates an object under `parent` with a new id (`<clientId>:<n>`) and returns it at once (it
   * exists locally from now on; a reject removes it). `type` is a type name or a generated class
   * (or a subclass of one; its `typeName` is the type).
   *
   * With a schema, `type` must be one of its type names or classes, `attrs` is typed by that
   * class's `attrs` (a misspelt attribute or a value of the wrong kind does not compile; see
   * `KindValues`), and the object returned is an instance of it. Without one, any type name
   * compiles and a plain `SObject` is returned, and a class `type` is typed as with a schema and
   * registered (with its defaults) for its type unless a class is already. Throws `invalid` if
   * this client makes objects of a class `type` as instances of a class that is not a `type`.
   */
  create<K extends (keyof S & string) | S[keyof S]>(
    type: K,
    parent: SObject | string,
    options?: TypedCreateOptions<ClassFor<S, K>>,
  ): ClassFor<S, K>["prototype"];
  create(typeOrClass: string | SchemaClass, parent: SObject | string, options: CreateOptionsLoose = {}): SObject {
    this.checkWritable();
    const type = typeof typeOrClass === "string" ? typeOrClass : this.typeOfClass(typeOrClass);
    const local = this.rebase.local;
    let id = "";
    for (let i = 0; i < ID_PROBE_MAX; i++) {
      id = `${this.clientId ?? "local"}:${++this.objectCounter}`;
      if (local?.has(id) !== true) break;
    }
    const change: Change = { op: "create", id, type, parent: typeof parent === "string" ? parent : parent.id };
    if (options.index !== undefined) change.index = options.index;
    // Typed attributes are JSON of their kinds (`KindValues`), so the wire takes them as they are.
    if (options.attrs !== undefined) change.attrs = options.attrs as JsonObject;
    if (options.children !== undefined) change.children = options.children;
    let obj: SObject | undefined;
    this.transaction(() => {
      this.submit(change);
      obj = this.get(id);
    });
    if (obj === undefined) throw new ObjectSyncError("no_such_object", `${id} was not created`);
    return obj;
  }

  /** Deletes `obj` and its subtree. */
  delete(obj: SObject | string): ActionHandle {
    return this.submit({ op: "delete", id: typeof obj === "string" ? obj : obj.id });
  }

  /**
   * Starts an undo step: the edits made until the returned function is called are undone (and
   * redone) together, however long the step lasts: a drag held still, a gesture over several
   * objects. Without one, the server merges edits of the same objects closer than its merge
   * window (`undo_merge_window_ms`, 500 ms). Starting another step ends this one.
   *
   * ```ts
   * const endStep = client.beginUndoStep();
   * // ... every pointer move: node.pos.setKey("x", x) ...
   * endStep(); // on pointer up: one undo puts the node back where the drag started
   * ```
   */
  beginUndoStep(): () => void {
    return this.rebase.beginUndoStep();
  }

  /** Undoes this client's latest step under `scope` (anywhere if absent). */
  undo(scope?: SObject | string): ActionHandle {
    return this.undoRedo("undo", scope);
  }

  /** Redoes this client's latest undone step under `scope` (anywhere if absent). */
  redo(scope?: SObject | string): ActionHandle {
    return this.undoRedo("redo", scope);
  }

  /** Sets this client's presence state for the others (`null` clears it); kept across reconnects. */
  setPresence(state: JsonValue): void {
    this.myPresence = state;
    this.connection?.send({ t: "presence", state });
  }

  /** Calls a server service; rejects with a {@link CallError}. Waits for the connection if needed. */
  call(service: string, args: JsonValue = null, options: CallOptions = {}): Promise<JsonValue> {
    const timeoutMs = options.timeoutMs ?? 15_000;
    const connection = this.connection;
    if (connection === null) return Promise.reject(new CallError("not_ready", "connect() first", service));
    return this.calls.start(service, args, timeoutMs, (m) => connection.send(m));
  }

  // ----------------------------------------------------------------------------- internals

  private submit(change: Change): ActionHandle {
    const refused = this.schema?.check(change, (id) => this.rebase.local?.get(id)?.type) ?? null;
    if (refused !== null) throw refused;
    if (this.tx === null) return this.transaction(() => this.stage(change));
    this.stage(change);
    return this.tx;
  }

  /** Applies `change` to the local view inside the open transaction, or throws why it does not apply. */
  private stage(change: Change): void {
    const error = this.rebase.stage(change);
    if (error !== null) throw new ObjectSyncError(error.code, error.reason);
  }

  /**
   * The type name of `cls` for `create(cls)`, once sure the objects of that type are `cls`
   * instances (registering `cls` if no class is registered for it).
   */
  private typeOfClass(cls: SchemaClass): string {
    const type = cls.typeName;
    const registered = this.classes.get(type);
    if (registered === undefined) {
      // With a schema, every type it has is registered: the create's check refuses this one.
      if (this.schema === null) this.register(type, cls, { defaults: defaultsOf(cls.attrs) });
    } else if (registered !== cls && !(registered.prototype instanceof cls)) {
      throw new ObjectSyncError("invalid", `this client makes ${type} objects as ${registered.name}, not ${cls.name}`);
    }
    return type;
  }

  private undoRedo(kind: "undo" | "redo", scope: SObject | string | undefined): ActionHandle {
    this.checkWritable();
    if (this.tx !== null) throw new ObjectSyncError("invalid", `${kind} cannot be part of a transaction`);
    const { action, outcome } = this.rebase.requestUndo(kind, typeof scope === "object" ? scope.id : scope);
    const record = new ActionRecord();
    record.bind(action.id);
    this.records.set(action.id, record);
    this.process(outcome, true);
    return record;
  }

  private checkWritable(): void {
    if (this.rebase.local === null) throw new ObjectSyncError("not_ready", "the document is not loaded yet");
    if (this.isReadOnly) throw new ObjectSyncError("read_only", "this client may not change anything");
  }

  private hello(): HelloMessage {
    const msg: HelloMessage = { t: "hello", protocol: PROTOCOL_VERSION, batch: true, compact_snapshots: true };
    if (this.token !== undefined) msg.token = this.token;
    if (this.fingerprint !== undefined) msg.schema = this.fingerprint;
    const client = this.rebase.clientId;
    const version = this.rebase.resumeVersion();
    if (!this.forceReload && client !== null && this.resumeToken !== null && version !== null) {
      msg.resume = { client, resume_token: this.resumeToken, version };
    }
    this.forceReload = false;
    return msg;
  }

  private onWelcome(w: WelcomeMessage): void {
    this.resumeToken = w.resume_token;
    this.isReadOnly = w.read_only;
    this.myIdentity = w.identity ?? null;
    const outcome = this.rebase.onWelcome(w);
    if (outcome.resync !== null) {
      this.resync(outcome.resync);
      return;
    }
    this.process(outcome, false);
    // Presence: the welcome lists everyone else now.
    for (const id of [...this.others.keys()]) {
      if (!Object.prototype.hasOwnProperty.call(w.presence, id)) this.setOther(id, null, null);
    }
    for (const [id, state] of Object.entries(w.presence)) this.setOther(id, state, w.users?.[id] ?? null);
    if (this.myPresence !== null) this.connection?.send({ t: "presence", state: this.myPresence });
    this.calls.sendUnsent((m) => this.connection?.send(m) ?? false);
    this.dispatch("ready", {
      clientId: w.client,
      resumed: w.snapshot === undefined,
      undoSteps: w.undo_steps,
      redoSteps: w.redo_steps,
      identity: this.myIdentity,
    });
    this.firstWelcome?.resolve();
    this.firstWelcome = null;
  }

  private onDisconnected(): void {
    this.rebase.onDisconnect();
    this.calls.failSent();
  }

  private setOther(client: string, state: JsonValue, user: UserInfo | null): void {
    if (client === this.clientId) return;
    const had = this.others.has(client);
    if (state === null) {
      this.otherUsers.delete(client);
      if (!had) return;
      this.others.delete(client);
    } else {
      if (user === null) this.otherUsers.delete(client);
      else this.otherUsers.set(client, user);
      if (had && JSON.stringify(this.others.get(client)) === JSON.stringify(state)) return;
      this.others.set(client, state);
    }
    this.dispatch("presence", { client, state, user: state === null ? null : user });
  }

  private resync(kind: "resume" | "reload"): void {
    if (kind === "reload") this.forceReload = true;
    this.connection?.reconnect();
  }

  /** Reports an outcome: events, settled actions, messages to send. */
  private process(outcome: Outcome, local: boolean): void {
    for (const diff of outcome.diffs) this.report(diff, local);
    for (const a of outcome.acked) {
      this.records.get(a.id)?.confirm();
      this.records.delete(a.id);
    }
    for (const r of outcome.rejected) {
      const error = new RejectedError(r.code, r.reason, r.action.id, r.change, r.action.changes);
      this.records.get(r.action.id)?.reject(error);
      this.records.delete(r.action.id);
      this.dispatch("reject", { error });
    }
    if (this.records.size > 0) {
      // Actions that vanished (their edits were all absorbed by others') had no effect to wait for.
      const pending = new Set(this.rebase.pending.map((p) => p.id));
      for (const [id, rec] of this.records) {
        if (!pending.has(id)) {
          rec.confirm();
          this.records.delete(id);
        }
      }
    }
    for (const e of outcome.emits) this.deliverEmit(e.origin, e.change);
    for (const m of outcome.send) this.connection?.send(m);
    if (outcome.resync !== null) this.resync(outcome.resync);
    this.reportSync();
  }

  /** The last `sync` reported. */
  private lastSync: { version: number | null; pending: number } = { version: null, pending: 0 };

  /** Dispatches `sync` if the confirmed version or the pending count moved. */
  private reportSync(): void {
    const version = this.version;
    const pending = this.pendingCount;
    if (version === this.lastSync.version && pending === this.lastSync.pending) return;
    this.lastSync = { version, pending };
    this.dispatch("sync", { version, pending });
  }

  /** Turns one local-view diff into instances and events (see the module docs for the order). */
  private report(diff: TreeDiff, local: boolean): void {
    const tree = this.rebase.local;
    if (tree === null) return;
    if (isEmptyDiff(diff)) {
      this.forgetUnannounced();
      return;
    }
    const gone = new Map<string, SObject>();
    for (const d of diff.destroyed) {
      const obj = this.objects.get(d.id);
      if (obj === undefined) continue;
      gone.set(d.id, obj);
      this.objects.delete(d.id);
    }
    const created: SObject[] = [];
    for (const id of diff.created) {
      const t = tree.get(id);
      if (t === undefined) continue;
      const existing = this.objects.get(id);
      created.push(existing ?? this.instantiate(id, t.type));
      this.unannounced.delete(id);
    }
    const instance = (id: string | null) => (id === null ? null : (gone.get(id) ?? this.objects.get(id) ?? null));
    for (const cd of diff.children) {
      const parent = this.objects.get(cd.parent);
      if (parent === undefined) continue;
      for (const r of cd.removed) {
        const child = instance(r.id);
        if (child !== null) parent.dispatch("childRemoved", { child, index: r.index });
      }
      for (const a of cd.added) {
        const child = instance(a.id);
        if (child !== null) parent.dispatch("childAdded", { child, index: a.index });
      }
      for (const m of cd.moved) {
        const child = instance(m.id);
        if (child !== null) parent.dispatch("childMoved", { child, from: m.from, to: m.to });
      }
    }
    for (const r of diff.reparented) this.objects.get(r.id)?.dispatch("moved", { from: instance(r.from), to: instance(r.to) });
    for (const a of diff.attrs) {
      for (const t of this.objects.get(a.obj)?.topicsOf(a.attr) ?? []) {
        if (t instanceof Topic) t.deliver(a.events, local);
      }
    }
    for (const obj of gone.values()) {
      obj.destroy();
      this.dispatch("destroyed", { object: obj, local });
    }
    for (const obj of created) this.dispatch("created", { object: obj, local });
    for (const obj of created) obj.start();
    this.forgetUnannounced();
    this.dispatch("change", { local });
  }

  private deliverEmit(origin: string, change: EmitChange): void {
    for (const t of this.objects.get(change.obj)?.topicsOf(change.attr) ?? []) {
      if (t instanceof EventTopic) t.dispatch("emit", { args: change.args ?? null, origin, local: origin === this.clientId });
    }
  }

  private instantiate(id: string, type: string): SObject {
    const Cls = this.classes.get(type) ?? SObject;
    const obj = new Cls({ client: this, id, type, host: this.host });
    this.objects.set(id, obj);
    return obj;
  }

  /** Drops on-demand instances whose objects do not exist (an aborted transaction). */
  private forgetUnannounced(): void {
    for (const id of this.unannounced) {
      if (this.rebase.local?.has(id) === true && this.tx !== null) continue;
      const obj = this.objects.get(id);
      this.unannounced.delete(id);
      if (obj !== undefined && this.rebase.local?.has(id) !== true) {
        this.objects.delete(id);
        obj.destroy();
      }
    }
  }
}
