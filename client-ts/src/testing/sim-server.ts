/**
 * A simulated ObjectSync room for tests: speaks wire protocol v1 (hello/welcome with resume,
 * action -> update/events/reject, presence, call, undo/redo) and transforms text edits exactly
 * as the Rust server does (`src/model/tx.rs` `transform_request`: each edit of an action is
 * transformed against the edits other actors made to that topic since the action's base, ties
 * by actor id, the server's `""` first; after a whole-string `set` of the topic in the same
 * action, later edits are relative to the new text and are not transformed), and refuses list
 * changes by index based before another actor's change to that list (`list_base_stale`, as
 * `check_list_base` does). State lives in an `ObjectTree`. Test-only; transport
 * agnostic (a session sends text through a callback). Between `hold()` and `flush()` it sends a
 * burst as the Rust server does: one `batch` frame per client whose `hello` accepted batches.
 */

import type {
  ActionMessage,
  BatchedMessage,
  Change,
  JsonValue,
  NodeSnapshot,
  ServerMessage,
  TextDeleteChange,
  TextInsertChange,
  UpdateMessage,
} from "../protocol.js";
import { changesList, isByIndexListChange } from "../list-stale.js";
import type { TextEdit } from "../text.js";
import { transformSeqs } from "../text.js";
import type { Step } from "../tree.js";
import { ObjectTree, ROOT_ID } from "../tree.js";

interface TextEntry {
  version: number;
  client: string | null;
  tie: string;
  edit: TextEdit;
}

interface TextHistory {
  floor: number;
  entries: TextEntry[];
}

interface ClientRecord {
  id: string;
  token: string;
  lastAction: number;
  session: ServerSession | null;
  undo: Step[][];
  /** The step name (`action.step`) of the latest undo entry, if it had one. */
  undoStep: string | undefined;
}

/** A service: returns a value, or throws `{ code, reason }`. */
export type Service = (args: JsonValue, client: string) => JsonValue;

/** Options of the simulated room. */
export interface SimServerOptions {
  /** The starting document (a root with nothing by default). */
  root?: NodeSnapshot;
  /** Updates kept for resume; older resumes get a snapshot. */
  logMax?: number;
  /** Services callable with `call`. */
  services?: Record<string, Service>;
  /** Client ids that get `read_only`. */
  readOnly?: (clientId: string) => boolean;
  /** A validator: refuse a change with `{ code, reason }` (as a type's validator would). */
  refuse?: (change: Change, clientId: string) => { code: string; reason: string } | null;
}

/** One connection's server end. */
export class ServerSession {
  client: ClientRecord | null = null;
  closed = false;
  /** Whether the client's `hello` said `batch: true`. */
  batch = false;
  constructor(
    private readonly server: SimServer,
    readonly send: (text: string) => void,
  ) {}
  /** A text frame from the client. */
  receive(text: string): void {
    if (!this.closed) this.server.handle(this, text);
  }
  /** The connection is gone. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.disconnected(this);
  }
}

/** The simulated room; see the module docs. */
export class SimServer {
  readonly tree: ObjectTree;
  version = 0;
  readonly log: UpdateMessage[] = [];
  /** Every message received, for assertions: [client id, message]. */
  readonly received: [string | null, { t: string } & Record<string, unknown>][] = [];
  private readonly texts = new Map<string, TextHistory>();
  /** Per list topic: the versions it changed at and by whom (`null`: server code). */
  private readonly lists = new Map<string, { version: number; client: string | null }[]>();
  private readonly clients = new Map<string, ClientRecord>();
  private readonly presence = new Map<string, JsonValue>();
  private nextClient = 1;
  private readonly logMax: number;
  private readonly services: Record<string, Service>;
  private readonly readOnly: (clientId: string) => boolean;
  private readonly refuse: (change: Change, clientId: string) => { code: string; reason: string } | null;
  /** Messages held per session between {@link hold} and {@link flush}. */
  private held: Map<ServerSession, BatchedMessage[]> | null = null;

  constructor(options: SimServerOptions = {}) {
    this.tree = new ObjectTree(options.root ?? { id: ROOT_ID, type: "Root" });
    this.logMax = options.logMax ?? 10_000;
    this.services = options.services ?? {};
    this.readOnly = options.readOnly ?? (() => false);
    this.refuse = options.refuse ?? (() => null);
  }

  /** A new connection; `send` delivers server frames to the client. */
  connect(send: (text: string) => void): ServerSession {
    return new ServerSession(this, send);
  }

  /** The document as a snapshot node. */
  snapshot(): NodeSnapshot {
    return this.tree.snapshotOf(ROOT_ID) as NodeSnapshot;
  }

  /** The value of one attribute. */
  value(obj: string, attr: string): JsonValue | undefined {
    return this.tree.get(obj)?.attrs.get(attr);
  }

  /**
   * Holds what the room sends to clients that accept batches until {@link flush} (a burst);
   * the others get their messages at once, as always.
   */
  hold(): void {
    this.held ??= new Map();
  }

  /** Sends the held messages, each session's in one `batch` (a lone one as itself), and stops
   * holding. */
  flush(): void {
    const held = this.held;
    this.held = null;
    for (const [session, m] of held ?? []) {
      if (!session.closed) session.send(JSON.stringify(m.length === 1 ? m[0] : { t: "batch", m }));
    }
  }

  /** Changes made by server code (origin "server", tie ""). */
  serverChange(changes: Change[]): UpdateMessage {
    const steps: Step[] = [];
    const failed = this.tree.applyAll(changes, steps);
    if (failed !== null) throw new Error(`server change failed: ${failed.error.reason}`);
    this.version++;
    for (const c of changes) this.logText(c, null, "");
    const wire = steps.flatMap(wireChange);
    this.logLists(wire, null);
    const msg: UpdateMessage = { t: "update", v: this.version, origin: "server", changes: wire };
    this.publish(msg);
    return msg;
  }

  /** @internal */
  handle(session: ServerSession, text: string): void {
    const msg = JSON.parse(text) as { t: string } & Record<string, unknown>;
    this.received.push([session.client?.id ?? null, msg]);
    if (session.client === null) {
      if (msg.t !== "hello") throw new Error(`first message must be hello, got ${msg.t}`);
      this.hello(session, msg as { t: "hello"; resume?: { client: string; resume_token: string; version: number }; batch?: boolean });
      return;
    }
    const client = session.client;
    switch (msg.t) {
      case "action":
        this.action(client, msg as unknown as ActionMessage);
        break;
      case "undo":
      case "redo":
        this.undo(client, msg as unknown as { t: "undo" | "redo"; id: number });
        break;
      case "presence": {
        const state = (msg as unknown as { state: JsonValue }).state;
        if (state === null) this.presence.delete(client.id);
        else this.presence.set(client.id, state);
        this.broadcast({ t: "presence", client: client.id, state }, client.id);
        break;
      }
      case "call": {
        const m = msg as unknown as { id: number; service: string; args: JsonValue };
        const service = this.services[m.service];
        if (service === undefined) {
          this.sendTo(client, { t: "result", id: m.id, error: { code: "no_such_service", reason: `no service ${m.service}` } });
          break;
        }
        try {
          this.sendTo(client, { t: "result", id: m.id, ok: service(m.args, client.id) });
        } catch (e) {
          const err = e as { code?: string; reason?: string };
          this.sendTo(client, { t: "result", id: m.id, error: { code: err.code ?? "service_failed", reason: err.reason ?? String(e) } });
        }
        break;
      }
      default:
        this.sendTo(client, { t: "error", code: "unknown_message", reason: `unknown message ${msg.t}` });
    }
  }

  /** @internal */
  disconnected(session: ServerSession): void {
    const client = session.client;
    if (client === null || client.session !== session) return;
    client.session = null;
    if (this.presence.delete(client.id)) this.broadcast({ t: "presence", client: client.id, state: null }, client.id);
  }

  private hello(session: ServerSession, msg: { resume?: { client: string; resume_token: string; version: number }; batch?: boolean }): void {
    session.batch = msg.batch === true;
    const r = msg.resume;
    const known = r === undefined ? undefined : this.clients.get(r.client);
    const floor = this.version - this.log.length;
    let client: ClientRecord;
    let resumed = false;
    if (r !== undefined && known !== undefined && known.token === r.resume_token) {
      client = known;
      resumed = r.version >= floor && r.version <= this.version;
    } else {
      const id = `c${this.nextClient++}`;
      client = { id, token: `tok-${id}`, lastAction: 0, session: null, undo: [], undoStep: undefined };
      this.clients.set(id, client);
    }
    client.session?.close();
    client.session = session;
    session.client = client;
    const presence: Record<string, JsonValue> = {};
    for (const [id, state] of this.presence) if (id !== client.id) presence[id] = state;
    const welcome: ServerMessage = {
      t: "welcome",
      protocol: 1,
      client: client.id,
      resume_token: client.token,
      version: this.version,
      acked: client.lastAction,
      presence,
      read_only: this.readOnly(client.id),
      // The simulated server keeps no undo history.
      undo_steps: 0,
      redo_steps: 0,
    };
    if (!resumed) welcome.snapshot = { version: this.version, next_server_id: 1, root: this.snapshot() };
    session.send(JSON.stringify(welcome));
    if (resumed && r !== undefined) {
      for (const u of this.log) if (u.v > r.version) session.send(JSON.stringify(u));
    }
  }

  private action(client: ClientRecord, msg: ActionMessage): void {
    const reject = (code: string, reason: string, change?: number) => {
      const m: ServerMessage = { t: "reject", action: msg.id, code, reason };
      if (change !== undefined) m.change = change;
      this.sendTo(client, m);
    };
    if (msg.id <= client.lastAction) return reject("duplicate_action", `action ${msg.id} <= ${client.lastAction}`);
    client.lastAction = msg.id;
    if (this.readOnly(client.id)) return reject("read_only", "read only");
    if (msg.changes.length === 0) return reject("empty_action", "no changes");
    if (msg.base > this.version) return reject("bad_base", `base ${msg.base} > ${this.version}`);
    const steps: Step[] = [];
    const applied: Change[] = [];
    const views = new Map<string, [TextEdit, string][]>();
    const textLog: [Change, TextEdit | null][] = [];
    const fail = (code: string, reason: string, index: number) => {
      this.tree.revert(steps);
      reject(code, reason, index);
    };
    for (let i = 0; i < msg.changes.length; i++) {
      const c = msg.changes[i] as Change;
      if (c.op === "create" && !c.id.startsWith(`${client.id}:`)) return fail("bad_id", `${c.id} lacks ${client.id}:`, i);
      const refused = this.refuse(c, client.id);
      if (refused !== null) return fail(refused.code, refused.reason, i);
      if (isByIndexListChange(c)) {
        const changed = (this.lists.get(`${c.obj}\u0000${c.attr}`) ?? []).find((e) => e.version > msg.base && e.client !== client.id);
        if (changed !== undefined) return fail("list_base_stale", `${c.obj}.${c.attr} changed at ${changed.version}, after base ${msg.base}`, i);
      }
      if (c.op === "text_insert" || c.op === "text_delete") {
        const err = this.applyTextEdit(client.id, msg.base, c, { steps, applied, views, textLog });
        if (err !== null) return fail(err.code, err.reason, i);
        continue;
      }
      const err = this.tree.apply(c, steps);
      if (err !== null) return fail(err.code, err.reason, i);
      applied.push(c);
      if (c.op === "set") {
        textLog.push([c, null]);
        // Later edits in this action are relative to the new text: nothing to transform
        // (the server resets its view of the topic on a whole-string set).
        if (typeof c.value === "string") views.set(`${c.obj}\u0000${c.attr}`, []);
      }
    }
    if (steps.every((s) => s.op === "emit")) {
      this.publish({ t: "events", v: this.version, origin: client.id, action: msg.id, changes: applied });
      return;
    }
    this.version++;
    for (const [c, e] of textLog) this.logText(c, client.id, client.id, e);
    // Actions naming the client's latest step merge into it (the server's rule; the time
    // window for unnamed actions is not simulated: each is a step of its own).
    const recorded = steps.filter((s) => s.op !== "emit");
    const latest = client.undo[client.undo.length - 1];
    if (msg.step !== undefined && msg.step === client.undoStep && latest !== undefined) latest.push(...recorded);
    else client.undo.push(recorded);
    client.undoStep = msg.step;
    const wire = steps.flatMap(wireChange);
    this.logLists(wire, client.id);
    this.publish({ t: "update", v: this.version, origin: client.id, action: msg.id, changes: wire });
  }

  /**
   * Applies a client's text edit made at `base`, transformed against the edits of others since
   * (as the server's `transform_request`; `run.views` keeps each topic's transformed view for the
   * rest of the action); why not, if it does not apply.
   */
  private applyTextEdit(
    clientId: string,
    base: number,
    c: TextInsertChange | TextDeleteChange,
    run: { steps: Step[]; applied: Change[]; views: Map<string, [TextEdit, string][]>; textLog: [Change, TextEdit | null][] },
  ): { code: string; reason: string } | null {
    const key = `${c.obj}\u0000${c.attr}`;
    let view = run.views.get(key);
    if (view === undefined) {
      const h = this.texts.get(key) ?? { floor: 0, entries: [] };
      if (base < h.floor && base < this.version) return { code: "text_base_too_old", reason: "history too short" };
      view = [];
      for (const e of h.entries) {
        if (e.version <= base) continue;
        if (e.client === clientId) return { code: "text_base_stale", reason: "own edit since base" };
        view.push([e.edit, e.tie]);
      }
      run.views.set(key, view);
    }
    let edits: TextEdit[] = [c.op === "text_insert" ? { kind: "insert", pos: c.pos, text: c.text } : { kind: "delete", pos: c.pos, len: c.len }];
    const rewritten: [TextEdit, string][] = [];
    for (const [other, tie] of view) {
      const [mine, theirs] = transformSeqs(edits, [other], clientId < tie);
      edits = mine;
      for (const t of theirs) rewritten.push([t, tie]);
    }
    run.views.set(key, rewritten);
    for (const e of edits) {
      const tc: Change =
        e.kind === "insert"
          ? { op: "text_insert", obj: c.obj, attr: c.attr, pos: e.pos, text: e.text }
          : { op: "text_delete", obj: c.obj, attr: c.attr, pos: e.pos, len: e.len };
      const err = this.tree.apply(tc, run.steps);
      if (err !== null) return err;
      run.applied.push(tc);
      run.textLog.push([tc, e]);
    }
    return null;
  }

  /** A simple undo: the inverse of the client's latest transition (no text transposition). */
  private undo(client: ClientRecord, msg: { t: "undo" | "redo"; id: number }): void {
    client.lastAction = Math.max(client.lastAction, msg.id);
    const last = msg.t === "undo" ? client.undo.pop() : undefined;
    client.undoStep = undefined;
    if (last === undefined) {
      this.sendTo(client, { t: "reject", action: msg.id, code: "nothing_to_undo", reason: "nothing to undo" });
      return;
    }
    const inverse = inverseChanges(last);
    const steps: Step[] = [];
    const failed = this.tree.applyAll(inverse, steps);
    if (failed !== null) {
      this.sendTo(client, { t: "reject", action: msg.id, code: "undo_conflict", reason: failed.error.reason });
      return;
    }
    this.version++;
    for (const c of inverse) this.logText(c, client.id, client.id);
    const wire = steps.flatMap(wireChange);
    this.logLists(wire, client.id);
    this.publish({ t: "update", v: this.version, origin: client.id, action: msg.id, changes: wire });
  }

  private logText(c: Change, client: string | null, tie: string, edit?: TextEdit | null): void {
    if (c.op !== "set" && c.op !== "text_insert" && c.op !== "text_delete") return;
    const key = `${c.obj}\u0000${c.attr}`;
    let h = this.texts.get(key);
    if (h === undefined) this.texts.set(key, (h = { floor: 0, entries: [] }));
    if (c.op === "set") {
      h.entries = [];
      h.floor = this.version;
      return;
    }
    const e: TextEdit = edit ?? (c.op === "text_insert" ? { kind: "insert", pos: c.pos, text: c.text } : { kind: "delete", pos: c.pos, len: c.len });
    h.entries.push({ version: this.version, client, tie, edit: e });
  }

  /** Records the lists an update (version `this.version`) changed, and by whom. */
  private logLists(changes: readonly Change[], client: string | null): void {
    for (const c of changes) {
      if (c.op !== "set" && !isByIndexListChange(c)) continue;
      if (!changesList(c, c.obj, c.attr)) continue;
      const key = `${c.obj}\u0000${c.attr}`;
      let h = this.lists.get(key);
      if (h === undefined) this.lists.set(key, (h = []));
      if (h.at(-1)?.version !== this.version) h.push({ version: this.version, client });
    }
  }

  private publish(msg: BatchedMessage): void {
    if (msg.t === "update") {
      this.log.push(msg);
      if (this.log.length > this.logMax) this.log.shift();
    }
    this.broadcast(msg, null);
  }

  private broadcast(msg: BatchedMessage, except: string | null): void {
    for (const c of this.clients.values()) if (c.id !== except && c.session !== null) this.deliver(c.session, msg);
  }

  private sendTo(client: ClientRecord, msg: BatchedMessage): void {
    if (client.session !== null) this.deliver(client.session, msg);
  }

  /** Sends `msg` now, or holds it for the next batch (see {@link hold}). */
  private deliver(session: ServerSession, msg: BatchedMessage): void {
    const held = this.held;
    if (held === null || !session.batch) {
      session.send(JSON.stringify(msg));
      return;
    }
    let m = held.get(session);
    if (m === undefined) held.set(session, (m = []));
    m.push(msg);
  }
}

/** The wire form of an applied step (what `update.changes` carries). */
function wireChange(s: Step): Change[] {
  switch (s.op) {
    case "create": {
      const c: Change = { op: "create", id: s.node.id, type: s.node.type, parent: s.parent, index: s.index };
      if (s.node.attrs !== undefined) c.attrs = s.node.attrs;
      if (s.node.children !== undefined) c.children = s.node.children;
      return [c];
    }
    case "delete":
      return [{ op: "delete", id: s.node.id }];
    case "move":
      return [{ op: "move", id: s.id, parent: s.toParent, index: s.toIndex }];
    case "attr":
      if (s.change.op === "list_insert" && s.change.index === undefined && Array.isArray(s.old)) {
        return [{ ...s.change, index: s.old.length }];
      }
      return [s.change];
    case "emit":
      return [s.change];
  }
}

function inverseChanges(steps: readonly Step[]): Change[] {
  const out: Change[] = [];
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i] as Step;
    switch (s.op) {
      case "create":
        out.push({ op: "delete", id: s.node.id });
        break;
      case "delete": {
        const c: Change = { op: "create", id: s.node.id, type: s.node.type, parent: s.parent, index: s.index };
        if (s.node.attrs !== undefined) c.attrs = s.node.attrs;
        if (s.node.children !== undefined) c.children = s.node.children;
        out.push(c);
        break;
      }
      case "move":
        out.push({ op: "move", id: s.id, parent: s.fromParent, index: s.fromIndex });
        break;
      case "attr":
        out.push({ op: "set", obj: s.obj, attr: s.attr, value: s.old ?? null });
        break;
      case "emit":
        break;
    }
  }
  return out;
}
