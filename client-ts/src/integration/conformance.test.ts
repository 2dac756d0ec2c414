/**
 * Conformance of the real server (`target/debug/objectsync serve --memory`, and servers with small
 * limits set by `serve --limit NAME=VALUE`) to
 * `docs/protocol.md`, on the raw wire (the `ws` package and, for frames `ws` will not write, a
 * bare TCP socket). Written from the protocol page alone: every `it` quotes the sentence it
 * checks. The demo rooms (src/presets/demo.rs) hold `graph` (Graph: `name`), `page` (Div: `style`) with
 * `hello` (Text: `text`, `style`); Node has `title`, `pos` (x 0..2000, y 0..1200), `color`,
 * `ports`; Edge has refs `from`, `to`; services are `echo`, `fail` and `slow`.
 *
 * Tests wait on messages (a predicate on the next messages, with a deadline), never on sleeps.
 * A test that fails here means the server and the page disagree: fix one of them, do not
 * weaken the test.
 */

import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RunningServer } from "./harness.js";
import { SERVER_BIN, startBinary, TcpProxy } from "./harness.js";

// ------------------------------------------------------------------------------ wire types

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface NestedNode {
  id: string;
  type: string;
  attrs?: JsonObject;
  children?: NestedNode[];
}
interface NestedSnapshot {
  version: number;
  next_server_id: number;
  root: NestedNode;
}
type CompactNode = [string, number, Json[]] | [string, number, Json[], CompactNode[]];
interface CompactSnapshot {
  version: number;
  next_server_id: number;
  types: [string, string[]][];
  root: CompactNode;
}
type ChangeJson = { op: string; [key: string]: Json };

interface WelcomeMsg {
  t: "welcome";
  protocol: number;
  client: string;
  resume_token: string;
  version: number;
  acked: number;
  snapshot?: NestedSnapshot | CompactSnapshot;
  presence: { [client: string]: Json };
  read_only?: boolean;
  undo_steps?: number;
  redo_steps?: number;
}
interface UpdateMsg {
  t: "update";
  v: number;
  origin: string;
  action?: number;
  changes: ChangeJson[];
}
interface EventsMsg {
  t: "events";
  v: number;
  origin: string;
  action?: number;
  changes: ChangeJson[];
}
interface RejectMsg {
  t: "reject";
  action: number;
  code: string;
  reason: string;
  change?: number;
}
interface PresenceMsg {
  t: "presence";
  client: string;
  state: Json;
}
interface ResultMsg {
  t: "result";
  id: number;
  ok?: Json;
  error?: { code: string; reason: string };
}
interface ErrorMsg {
  t: "error";
  code: string;
  reason: string;
}
interface BatchMsg {
  t: "batch";
  m: ServerMsg[];
}
type ServerMsg = WelcomeMsg | UpdateMsg | EventsMsg | RejectMsg | PresenceMsg | ResultMsg | ErrorMsg | BatchMsg;
type Flat = Exclude<ServerMsg, BatchMsg>;

// ---------------------------------------------------------------------------- predicates

const isUpdate =
  (action?: number, origin?: string) =>
  (m: Flat): m is UpdateMsg =>
    m.t === "update" && (action === undefined || m.action === action) && (origin === undefined || m.origin === origin);
const isReject =
  (action?: number) =>
  (m: Flat): m is RejectMsg =>
    m.t === "reject" && (action === undefined || m.action === action);
const isPresence =
  (client?: string) =>
  (m: Flat): m is PresenceMsg =>
    m.t === "presence" && (client === undefined || m.client === client);
const isResult =
  (id: number) =>
  (m: Flat): m is ResultMsg =>
    m.t === "result" && m.id === id;
const isError =
  (code?: string) =>
  (m: Flat): m is ErrorMsg =>
    m.t === "error" && (code === undefined || m.code === code);
const isWelcome = (m: Flat): m is WelcomeMsg => m.t === "welcome";

function isNested(s: NestedSnapshot | CompactSnapshot | undefined): s is NestedSnapshot {
  return s !== undefined && !("types" in s);
}
function isCompact(s: NestedSnapshot | CompactSnapshot | undefined): s is CompactSnapshot {
  return s !== undefined && "types" in s;
}

// ------------------------------------------------------------------------------ connection

interface Received {
  /** The frame it came in (one frame holds several messages when it is a `batch`). */
  readonly frame: number;
  /** Whether it came inside a `batch`. */
  readonly inBatch: boolean;
  readonly msg: Flat;
}

interface Closed {
  readonly code: number;
  readonly reason: string;
}

const DEFAULT_WAIT_MS = 5_000;

/** One raw WebSocket to the server: records every frame, and waits for messages. */
class Conn {
  readonly ws: WebSocket;
  /** Every text frame as received. */
  readonly frames: string[] = [];
  /** Every message, the messages of a `batch` one by one. */
  readonly received: Received[] = [];
  /** Frames that break "one text frame holding one JSON object with a string field t". */
  readonly violations: string[] = [];
  closed: Closed | null = null;
  httpStatus: number | null = null;
  pings = 0;
  private cursor = 0;
  private readonly wakers = new Set<() => void>();
  readonly opened: Promise<void>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, options);
    all.push(this);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("close", () => reject(new Error(`closed before open (HTTP ${this.httpStatus})`)));
    });
    this.opened.catch(() => undefined);
    this.ws.on("unexpected-response", (_req, res) => {
      this.httpStatus = res.statusCode ?? null;
      res.resume();
      this.ws.terminate();
    });
    this.ws.on("ping", () => {
      this.pings++;
      this.wake();
    });
    this.ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (isBinary) {
        this.violations.push("a binary frame");
        return;
      }
      const text = data.toString();
      const frame = this.frames.push(text) - 1;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        this.violations.push(`not JSON: ${text.slice(0, 80)}`);
        return;
      }
      if (!isMessage(parsed)) {
        this.violations.push(`no string "t": ${text.slice(0, 80)}`);
        return;
      }
      if (parsed.t === "batch") {
        for (const m of parsed.m) {
          if (m.t === "batch" || m.t === "welcome") this.violations.push(`a batch holds a ${m.t}`);
          else this.received.push({ frame, inBatch: true, msg: m });
        }
      } else {
        this.received.push({ frame, inBatch: false, msg: parsed });
      }
      this.wake();
    });
    this.ws.on("close", (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    this.ws.on("error", () => {
      // A close event follows.
    });
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Resolves when `check` holds (looked at after every event); rejects after `timeoutMs`. */
  until(what: string, check: () => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const look = () => {
        let done: boolean;
        try {
          done = check();
        } catch (e) {
          this.wakers.delete(look);
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (!done) return;
        this.wakers.delete(look);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.wakers.delete(look);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last messages: ${this.tail()}`));
      }, timeoutMs);
      this.wakers.add(look);
      look();
    });
  }

  /** The next message (after the last one `next` returned) matching `pred`. */
  async next<M extends Flat>(pred: (m: Flat) => m is M, what: string, timeoutMs = DEFAULT_WAIT_MS): Promise<M> {
    let found: M | null = null;
    await this.until(
      what,
      () => {
        for (let i = this.cursor; i < this.received.length; i++) {
          const r = this.received[i] as Received;
          if (pred(r.msg)) {
            this.cursor = i + 1;
            found = r.msg;
            return true;
          }
        }
        if (this.closed !== null) throw new Error(`closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}; last messages: ${this.tail()}`);
        return false;
      },
      timeoutMs,
    );
    if (found === null) throw new Error(`no ${what}`);
    return found;
  }

  /** Every message received so far matching `pred`. */
  all<M extends Flat>(pred: (m: Flat) => m is M): M[] {
    return this.received.map((r) => r.msg).filter(pred);
  }

  /** Resolves with the close code and reason. */
  async waitClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<Closed> {
    await this.until("the socket to close", () => this.closed !== null, timeoutMs);
    return this.closed as unknown as Closed;
  }

  send(msg: JsonObject): void {
    this.ws.send(JSON.stringify(msg));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  private tail(): string {
    return this.frames
      .slice(-4)
      .map((f) => f.slice(0, 160))
      .join(" | ");
  }
}

function isMessage(v: unknown): v is ServerMsg {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as { t?: unknown }).t === "string";
}

/** Connections opened by the current test (closed, and checked for violations, after it). */
let all: Conn[] = [];

let server: RunningServer;
let roomCounter = 0;
const newRoom = (what: string) => `${what}-${++roomCounter}`;
const url = (room: string) => server.wsUrl(room);

/** Opens a socket, says `hello` (with `extra` fields) and waits for the welcome. */
async function join(room: string, extra: JsonObject = {}): Promise<{ c: Conn; w: WelcomeMsg }> {
  const c = new Conn(url(room));
  await c.opened;
  c.send({ t: "hello", protocol: 1, ...extra });
  const w = await c.next(isWelcome, "welcome");
  return { c, w };
}

/** A sentinel: an empty action, answered (to the sender only) `reject` `empty_action`, in order
 * with the room's other messages. */
async function roundTrip(c: Conn, id: number, base: number): Promise<void> {
  c.send({ t: "action", id, base, changes: [] });
  await c.next(isReject(id), `the reject of sentinel action ${id}`);
}

function nested(w: WelcomeMsg): NestedSnapshot {
  if (!isNested(w.snapshot)) throw new Error(`welcome without a nested snapshot: ${JSON.stringify(w).slice(0, 200)}`);
  return w.snapshot;
}

function findNode(n: NestedNode, id: string): NestedNode | undefined {
  if (n.id === id) return n;
  for (const c of n.children ?? []) {
    const f = findNode(c, id);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** The text of hello.text / any string attribute in a fresh client's snapshot. */
async function freshValue(room: string, obj: string, attr: string): Promise<Json | undefined> {
  const { c, w } = await join(room);
  const v = findNode(nested(w).root, obj)?.attrs?.[attr];
  c.close();
  return v;
}

beforeAll(async () => {
  server = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent"]);
});

afterAll(async () => {
  await server?.stop();
});

afterEach(() => {
  const violations = all.flatMap((c) => c.violations);
  for (const c of all) c.close();
  all = [];
  // "Every message is one **text** frame holding one JSON object with a string field `"t"`."
  expect(violations).toEqual([]);
});

// ================================================================================= transport

describe("Transport", () => {
  it("room names: 1-64 characters from A-Z a-z 0-9 _ - . are accepted", async () => {
    // "`<room>` is 1-64 characters from `A-Z a-z 0-9 _ - .`"
    for (const room of ["a", "x".repeat(64), "Az09_-.mixed"]) {
      const { w } = await join(room);
      expect(w.t).toBe("welcome");
    }
  });

  it("room names: anything else is answered 404 before the upgrade", async () => {
    // "anything else is answered `404` before the upgrade."
    for (const room of ["bad!name", "x".repeat(65), "a%20b", "%C3%A9t%C3%A9", "a+b", "a~b"]) {
      const c = new Conn(url(room));
      await c.opened.catch(() => undefined);
      await c.until(`an HTTP answer for ${room}`, () => c.httpStatus !== null || c.closed !== null);
      expect({ room, status: c.httpStatus }).toEqual({ room, status: 404 });
    }
  });

  it("room names: a bad room name is 404 for a plain HTTP request too; a plain GET of a room is not upgraded", async () => {
    // "anything else is answered `404` before the upgrade." (The page says nothing of a valid
    // room asked without an upgrade; it must at least not be upgraded nor answered 2xx.)
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: server.port, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
      });
    expect(await get("/ws/bad!name")).toBe(404);
    expect(await get(`/ws/${"x".repeat(65)}`)).toBe(404);
    const plain = await get("/ws/plain-room");
    expect(plain).toBeGreaterThanOrEqual(400);
    expect(plain).toBeLessThan(500);
  });

  it("unknown fields are ignored (hello, action, change)", async () => {
    // "Unknown fields are ignored by both sides (so either can add fields in a later minor version)"
    const room = newRoom("unknown-fields");
    const { c, w } = await join(room, { future_field: { nested: true } });
    c.send({ t: "action", id: 1, base: w.version, later: 1, changes: [{ op: "set", obj: "graph", attr: "name", value: "x", extra: [1] }] });
    const u = await c.next(isUpdate(1), "the update of action 1");
    expect(u.changes).toEqual([{ op: "set", obj: "graph", attr: "name", value: "x" }]);
  });

  it('an unknown "t" is answered with error unknown_message', async () => {
    // "an unknown `"t"` is answered with `error`." / "`unknown_message` | (`error`) an unknown `t`"
    const { c } = await join(newRoom("unknown-t"));
    c.send({ t: "frobnicate", x: 1 });
    const e = await c.next(isError(), "an error");
    expect(e.code).toBe("unknown_message");
    expect(typeof e.reason).toBe("string");
    expect(c.closed).toBeNull();
  });

  it("binary frames are a protocol error (after hello): answered, not silently ignored", async () => {
    // "Binary frames are a protocol error." (The page names no consequence: the server must at
    // least answer with an `error` or close the socket.)
    const { c } = await join(newRoom("binary"));
    c.sendRaw(Buffer.from(JSON.stringify({ t: "presence", state: 1 })), true);
    await c.until("an error or a close", () => c.all(isError()).length > 0 || c.closed !== null);
    if (c.closed === null) expect(c.all(isError())[0]?.code).toBe("bad_message");
  });

  it("a binary first frame is not a valid hello: close 4000", async () => {
    // "4000 | bad handshake: first message not a valid `hello`"
    const c = new Conn(url(newRoom("binary-hello")));
    await c.opened;
    c.sendRaw(Buffer.from(JSON.stringify({ t: "hello", protocol: 1 })), true);
    expect((await c.waitClosed()).code).toBe(4000);
    expect(c.all(isWelcome)).toEqual([]);
  });

  it("the first message must be hello; nothing else is accepted before it (close 4000)", async () => {
    // "The first message of a client must be `hello`. The server answers `welcome` (or closes the
    // socket with a close code, below). Nothing else is accepted before `hello`."
    const room = newRoom("before-hello");
    for (const first of [
      JSON.stringify({ t: "presence", state: { a: 1 } }),
      JSON.stringify({ t: "action", id: 1, base: 0, changes: [{ op: "set", obj: "graph", attr: "name", value: "x" }] }),
      "not json",
      JSON.stringify({ t: "hello" }),
      JSON.stringify({ t: "hello", protocol: "1" }),
    ]) {
      const c = new Conn(url(room));
      await c.opened;
      c.sendRaw(first);
      const closed = await c.waitClosed();
      expect({ first, code: closed.code }).toEqual({ first, code: 4000 });
      expect(c.all(isWelcome)).toEqual([]);
    }
    // ...and nothing of it was applied.
    const { w } = await join(room);
    expect(findNode(nested(w).root, "graph")?.attrs?.name).toBe("main");
  });

  it("protocol must be 1: another version is closed with 4000", async () => {
    // "`protocol` | int | must be `1`" / "4000 | ... or an unsupported protocol"
    const c = new Conn(url(newRoom("protocol-2")));
    await c.opened;
    c.send({ t: "hello", protocol: 2 });
    const closed = await c.waitClosed();
    expect(closed.code).toBe(4000);
    expect(closed.reason.length).toBeGreaterThan(0); // "The close reason (text) says more."
  });

  it("a token is accepted in hello (passed to the auth hook; the demo has none)", async () => {
    // "`token` | string, optional | passed to the server's auth hook"
    const { w } = await join(newRoom("token"), { token: "secret" });
    expect(w.t).toBe("welcome");
    expect(w.read_only === undefined || w.read_only === false).toBe(true);
  });
});

// =================================================================== identifiers and numbers

describe("Identifiers and numbers", () => {
  it("client ids are assigned in welcome and unique within the room", async () => {
    // "**client id**: assigned by the server in `welcome` (e.g. `"c1a2b3c4d5"`), unique within the room."
    const room = newRoom("ids");
    const ids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { w } = await join(room);
      expect(typeof w.client).toBe("string");
      expect(w.client.length).toBeGreaterThan(0);
      ids.add(w.client);
    }
    expect(ids.size).toBe(6);
  });

  it("object ids a client creates must start with `<client id>:`; the client picks the rest", async () => {
    // "Objects a client creates must have ids starting with `<client id>:`, e.g. `"c1a2b3c4d5:17"`;
    // the client picks the rest (a counter is enough)." / "`bad_id` | ... lacks the client's prefix"
    const room = newRoom("prefix");
    const { c, w } = await join(room);
    const { w: other } = await join(room);
    c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "create", id: `${w.client}:17`, type: "Node", parent: "graph" }] });
    await c.next(isUpdate(1), "the update of action 1");
    for (const [id, bad] of [
      [2, "n1"],
      [3, `${other.client}:1`],
      [4, `${w.client}-1`],
    ] as const) {
      c.send({ t: "action", id, base: w.version + 1, changes: [{ op: "create", id: bad, type: "Node", parent: "graph" }] });
      const r = await c.next(isReject(id), `the reject of ${bad}`);
      expect(r.code).toBe("bad_id");
      expect(r.change).toBe(0);
    }
  });

  it("object id rules: ASCII letters, digits and : _ - . ~, at most 128 bytes", async () => {
    // "Object id rules: ASCII letters, digits and `: _ - . ~`, at most 128 bytes."
    const { c, w } = await join(newRoom("id-rules"));
    const prefix = `${w.client}:`;
    const ok128 = prefix + "a".repeat(128 - prefix.length);
    const good = [`${prefix}Az09:_-.~`, ok128];
    let id = 0;
    let v = w.version;
    for (const oid of good) {
      c.send({ t: "action", id: ++id, base: v, changes: [{ op: "create", id: oid, type: "Node", parent: "graph" }] });
      const u = await c.next(isUpdate(id), `the update creating ${oid}`);
      v = u.v;
    }
    for (const oid of [`${ok128}a`, `${prefix}a/b`, `${prefix}a b`, `${prefix}é`, `${prefix}a@b`]) {
      c.send({ t: "action", id: ++id, base: v, changes: [{ op: "create", id: oid, type: "Node", parent: "graph" }] });
      const r = await c.next(isReject(id), `the reject of ${oid}`);
      expect({ oid, code: r.code }).toEqual({ oid, code: "bad_id" });
    }
  });

  it("version: a new room's build by the room-create hook is version 1", async () => {
    // "**version**: the room's count of state transitions; an integer. A new room starts at 0;
    // when the server's room-create hook builds its first tree (as the demo's does), that build
    // is the first transition, version 1."
    const { w } = await join(newRoom("fresh-version"));
    expect(w.version).toBe(1);
    const snapshot = w.snapshot as NestedSnapshot;
    expect(snapshot.version).toBe(1);
  });

  it("version: every update carries the version it creates, exactly one more than the previous one, to every client", async () => {
    // "Every `update` carries the version it creates, exactly one more than the previous one."
    // "sent to **every** client of the room, the sender included, in version order with no gap."
    const room = newRoom("versions");
    const clients = [await join(room), await join(room), await join(room)];
    const start = clients[0]?.w.version ?? 0;
    const per = 20;
    for (const [i, { c, w }] of clients.entries()) {
      for (let k = 1; k <= per; k++) c.send({ t: "action", id: k, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: `c${i}-${k}` }] });
    }
    const total = per * clients.length;
    for (const { c } of clients) {
      await c.until(`${total} updates`, () => c.all(isUpdate()).length >= total, 20_000);
      const vs = c.all(isUpdate()).map((u) => u.v);
      expect(vs).toEqual(Array.from({ length: total }, (_, i) => start + 1 + i));
    }
  });

  it("action ids: strictly increasing per client, gaps allowed; not above the last processed is duplicate_action", async () => {
    // "**action id**: chosen by the client, a positive integer, **strictly increasing** per client
    // (1, 2, 3, ...; gaps are allowed)." / "`duplicate_action` | an action id not above the last one processed"
    const { c, w } = await join(newRoom("action-ids"));
    const set = (id: number, value: string) => c.send({ t: "action", id, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value }] });
    set(1, "a");
    await c.next(isUpdate(1), "update 1");
    set(5, "b"); // a gap
    await c.next(isUpdate(5), "update 5");
    set(5, "c");
    expect((await c.next(isReject(5), "reject of a repeated 5")).code).toBe("duplicate_action");
    set(3, "d");
    expect((await c.next(isReject(3), "reject of 3 after 5")).code).toBe("duplicate_action");
    set(6, "e");
    await c.next(isUpdate(6), "update 6");
  });

  it("action ids: applied at most once across reconnects", async () => {
    // "Used to match acks and rejects, and to apply an action at most once across reconnects."
    const room = newRoom("once");
    const { c, w } = await join(room);
    c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "dict_set", obj: "page", attr: "style", key: "n", value: 1 }] });
    const u = await c.next(isUpdate(1), "update 1");
    c.close();
    await c.waitClosed();
    const again = await join(room, { resume: { client: w.client, resume_token: w.resume_token, version: u.v } });
    again.c.send({ t: "action", id: 1, base: u.v, changes: [{ op: "dict_set", obj: "page", attr: "style", key: "n", value: 2 }] });
    expect((await again.c.next(isReject(1), "reject of the resent action")).code).toBe("duplicate_action");
  });

  it("integers: the server holds 64-bit integers (values beyond 2^53 come back exactly)", async () => {
    // "Integers are exact up to 2^53 in JavaScript; the server holds 64-bit integers."
    const { c, w } = await join(newRoom("int64"));
    const big = "9007199254740993"; // 2^53 + 1
    c.sendRaw(`{"t":"action","id":1,"base":${w.version},"changes":[{"op":"dict_set","obj":"page","attr":"style","key":"big","value":${big}}]}`);
    await c.next(isUpdate(1), "update 1");
    const frame = c.frames.find((f) => f.includes('"update"')) ?? "";
    expect(frame).toContain(`"value":${big}`);
  });

  it("JSON objects the server sends have their keys in sorted order (dict values, presence states, attributes)", async () => {
    // "JSON objects the server sends (dict values, presence states, attributes) have their keys in
    // sorted order, whatever order they were sent in"
    const room = newRoom("sorted");
    const { c, w } = await join(room);
    const { c: other } = await join(room);
    c.sendRaw(`{"t":"action","id":1,"base":${w.version},"changes":[{"op":"set","obj":"page","attr":"style","value":{"z":1,"b":{"y":1,"a":2},"a":3}}]}`);
    await c.next(isUpdate(1), "update 1");
    expect(c.frames.find((f) => f.includes('"update"'))).toContain('"value":{"a":3,"b":{"a":2,"y":1},"z":1}');
    c.sendRaw('{"t":"presence","state":{"zz":1,"aa":{"q":1,"c":2}}}');
    await other.next(isPresence(w.client), "the presence");
    expect(other.frames.find((f) => f.includes('"presence","client"'))).toContain('"state":{"aa":{"c":2,"q":1},"zz":1}');
    const fresh = await join(room);
    const frame = fresh.c.frames[0] ?? "";
    expect(frame).toContain('"style":{"a":3,"b":{"a":2,"y":1},"z":1}');
    // attributes of an object in sorted order
    expect(frame.indexOf('"style"', frame.indexOf('"id":"hello"'))).toBeLessThan(frame.indexOf('"text"', frame.indexOf('"id":"hello"')));
  });
});

// ==================================================================== hello / welcome / resume

describe("welcome", () => {
  it("welcome fields of a new client: protocol, client, resume_token, version, acked 0, snapshot, presence", async () => {
    // "`client` | this connection's client id" / "`resume_token` | keep it to resume" /
    // "`version` | the room's version now" / "`acked` | ... 0 if none" / "`snapshot` | present when
    // the client must (re)load the whole tree: the document at `version`" / "`presence` | every
    // other client's presence state, by client id"
    const { c, w } = await join(newRoom("welcome"));
    expect(w.protocol).toBe(1);
    expect(typeof w.client).toBe("string");
    expect(typeof w.resume_token).toBe("string");
    expect(w.resume_token.length).toBeGreaterThan(0);
    expect(Number.isInteger(w.version)).toBe(true);
    expect(w.acked).toBe(0);
    expect(nested(w).version).toBe(w.version);
    expect(w.presence).toEqual({});
    // key order of the example
    const frame = c.frames[0] ?? "";
    const order = ["t", "protocol", "client", "resume_token", "version", "acked", "snapshot", "presence"].map((k) => frame.indexOf(`"${k}":`));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it("snapshot shape (nested): id, type, attrs (every stored attribute; absent if none), children (absent if none)", async () => {
    // "A node: `id`, `type`, `attrs` (every stored attribute; absent if the type has none),
    // `children` (absent if none)."
    const room = newRoom("nested");
    const { c, w } = await join(room);
    c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "create", id: `${w.client}:n`, type: "Node", parent: "graph", attrs: { title: "t" } }] });
    await c.next(isUpdate(1), "update 1");
    const { w: fresh } = await join(room);
    const s = nested(fresh);
    expect(s.version).toBe(fresh.version);
    expect(typeof s.next_server_id).toBe("number");
    expect(s.root.id).toBe("root");
    expect(s.root.type).toBe("Root");
    expect("attrs" in s.root).toBe(false);
    const graph = findNode(s.root, "graph");
    expect(graph?.attrs).toEqual({ name: "main" });
    const node = findNode(s.root, `${w.client}:n`);
    expect(node?.type).toBe("Node");
    expect(Object.keys(node?.attrs ?? {}).sort()).toEqual(["color", "ports", "pos", "title"]);
    expect(node !== undefined && "children" in node).toBe(false);
    expect(findNode(s.root, "hello")?.attrs).toEqual({ style: { color: "#222", "font-size": "24px" }, text: "Hello from ObjectSync" });
  });

  it("compact snapshots only when asked; types before root; values one per attribute name in order; children absent for leaves; same tree", async () => {
    // "**Compact form** (only to clients whose `hello` said `"compact_snapshots":true`)" /
    // "`types` comes before `root` and lists every type the room knows as `[name, [attribute names]]`;
    // a type's position in it is its index. An object is `[id, type index, values, children]`:
    // `values` holds exactly one value per attribute name of its type, in that order ...; `children`
    // is absent for an object without children." / "Both forms describe the same tree"
    const room = newRoom("compact");
    const { c: cc, w: cw } = await join(room, { compact_snapshots: true });
    const { w: nw } = await join(room);
    expect(cw.version).toBe(nw.version);
    if (!isCompact(cw.snapshot)) throw new Error(`not compact: ${JSON.stringify(cw.snapshot).slice(0, 200)}`);
    const frame = cc.frames[0] ?? "";
    expect(frame.indexOf('"types"')).toBeGreaterThan(0);
    expect(frame.indexOf('"types"')).toBeLessThan(frame.indexOf('"root"'));
    const types = cw.snapshot.types;
    expect(types.map((t) => t[0]).sort()).toEqual(["Div", "Edge", "Graph", "Node", "Root", "Text"]);
    const toNested = (o: CompactNode): NestedNode => {
      const [id, ti, values, children] = o;
      const t = types[ti];
      if (t === undefined) throw new Error(`no type ${ti}`);
      expect(values.length).toBe(t[1].length);
      if (children !== undefined) expect(children.length).toBeGreaterThan(0);
      const n: NestedNode = { id, type: t[0] };
      if (t[1].length > 0) n.attrs = Object.fromEntries(t[1].map((name, i) => [name, values[i] ?? null]));
      if (children !== undefined) n.children = children.map(toNested);
      return n;
    };
    expect({ ...cw.snapshot, types: undefined, root: toNested(cw.snapshot.root) }).toEqual({ ...nested(nw), types: undefined });
    expect(isNested(nw.snapshot)).toBe(true);
  });

  it("welcome.presence: every other client's presence state, by client id", async () => {
    // "`presence` | every other client's presence state, by client id"
    // "{"t":"welcome",...,"presence":{"c9z8y7x6w5":{"name":"Bob"}}}"
    const room = newRoom("welcome-presence");
    const a = await join(room);
    const b = await join(room);
    const watcher = await join(room);
    a.c.send({ t: "presence", state: { name: "Ada" } });
    b.c.send({ t: "presence", state: { name: "Bob", cursor: { x: 1, y: 2 } } });
    await watcher.c.next(isPresence(a.w.client), "Ada's presence");
    await watcher.c.next(isPresence(b.w.client), "Bob's presence");
    const c = await join(room);
    expect(c.w.presence).toEqual({ [a.w.client]: { name: "Ada" }, [b.w.client]: { name: "Bob", cursor: { x: 1, y: 2 } } });
  });

  it("resume: same client, no snapshot, acked, then the updates from resume.version + 1 up to version, the same messages other clients got", async () => {
    // "`client` | this connection's client id (the same as before when resuming succeeded)" /
    // "Without `snapshot` (a successful resume) the server sends next, in order, the `update`
    // messages from the client's `resume.version + 1` up to `version` — the same messages other
    // clients got — and then live traffic."
    const room = newRoom("resume");
    const a = await join(room);
    const b = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "a1" }] });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.close();
    await a.c.waitClosed();
    for (let k = 1; k <= 3; k++) b.c.send({ t: "action", id: k, base: u1.v, changes: [{ op: "set", obj: "graph", attr: "name", value: `b${k}` }] });
    await b.c.next(isUpdate(3, b.w.client), "b's update 3");
    const bFrames = b.c.frames.filter((f) => f.includes('"t":"update"') && f.includes(`"origin":"${b.w.client}"`));
    const r = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: u1.v } });
    expect(r.w.client).toBe(a.w.client);
    expect(r.w.snapshot).toBeUndefined();
    expect(r.w.acked).toBe(1);
    expect(r.w.version).toBe(u1.v + 3);
    const catchup = await r.c.until("3 catch-up updates", () => r.c.all(isUpdate()).length >= 3).then(() => r.c.all(isUpdate()));
    expect(catchup.map((u) => u.v)).toEqual([u1.v + 1, u1.v + 2, u1.v + 3]);
    expect(r.c.frames.slice(1, 4)).toEqual(bFrames);
    // ...and then live traffic
    b.c.send({ t: "action", id: 4, base: r.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "live" }] });
    expect((await r.c.next(isUpdate(4, b.w.client), "live update")).v).toBe(r.w.version + 1);
  });

  it("welcome.undo_steps / redo_steps: what the room still holds of this client's undo history", async () => {
    // "`undo_steps`, `redo_steps` | how many undo and redo steps the room holds for this client
    // (absent: 0)"
    const room = newRoom("undo-steps");
    const a = await join(room);
    expect([a.w.undo_steps, a.w.redo_steps]).toEqual([undefined, undefined]);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "one" }] });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "dict_set", obj: "page", attr: "style", key: "color", value: "red" }] });
    const u2 = await a.c.next(isUpdate(2), "update 2");
    a.c.send({ t: "undo", id: 3 });
    const u3 = await a.c.next(isUpdate(3), "the undo");
    a.c.close();
    await a.c.waitClosed();
    const b = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: u3.v } });
    expect([b.w.undo_steps, b.w.redo_steps]).toEqual([1, 1]);
    expect(u2.v).toBeLessThan(u3.v);
  });

  it("resume: a resume at the room's version gets no snapshot and no catch-up", async () => {
    // "Without `snapshot` (a successful resume) the server sends next ... the `update` messages from
    // the client's `resume.version + 1` up to `version`"
    const room = newRoom("resume-now");
    const a = await join(room);
    a.c.close();
    await a.c.waitClosed();
    const r = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: a.w.version } });
    expect(r.w.client).toBe(a.w.client);
    expect(r.w.snapshot).toBeUndefined();
    expect(r.w.version).toBe(a.w.version);
    await roundTrip(r.c, 1, r.w.version);
    expect(r.c.all(isUpdate())).toEqual([]);
  });

  it("resume with the old socket still open: the new connection gets the catch-up and then live traffic, and can act", async () => {
    // "Without `snapshot` (a successful resume) the server sends next, in order, the `update`
    // messages ... and then live traffic." (The page does not require the old socket to be gone.)
    const room = newRoom("resume-open");
    const a = await join(room);
    const b = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "a1" }] });
    await a.c.next(isUpdate(1), "update 1");
    const r = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: a.w.version } });
    expect(r.w.client).toBe(a.w.client);
    expect(r.w.snapshot).toBeUndefined();
    expect(r.w.acked).toBe(1);
    expect((await r.c.next(isUpdate(1, a.w.client), "the catch-up update 1")).v).toBe(a.w.version + 1);
    // live traffic reaches the new connection, even after the old one has gone
    await a.c.waitClosed().catch(() => undefined);
    a.c.close();
    b.c.send({ t: "action", id: 1, base: r.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "b1" }] });
    await b.c.next(isUpdate(1, b.w.client), "b's own update");
    await r.c.next(isUpdate(1, b.w.client), "b's update on the resumed connection");
    // and the resumed client can act
    r.c.send({ t: "action", id: 2, base: r.w.version + 1, changes: [{ op: "set", obj: "graph", attr: "name", value: "a2" }] });
    await r.c.next(isUpdate(2, a.w.client), "the resumed client's update 2");
    await b.c.next(isUpdate(2, a.w.client), "the resumed client's update 2, seen by b");
  });

  it("resume: pending actions with id <= acked were processed while away; rejected ones are not repeated", async () => {
    // "After a resume, the client's pending actions with `id <= acked` were processed while it was
    // away: those with an `update` in the catch-up were applied; the others were rejected (reason
    // not repeated)."
    const room = newRoom("resume-pending");
    const proxy = await TcpProxy.start(server.port);
    try {
      const a = new Conn(proxy.wsUrl(room));
      await a.opened;
      a.send({ t: "hello", protocol: 1 });
      const aw = await a.next(isWelcome, "a's welcome");
      const b = await join(room);
      proxy.hold("down"); // a hears nothing more
      a.send({ t: "action", id: 1, base: aw.version, changes: [{ op: "delete", id: "root" }] });
      a.send({ t: "action", id: 2, base: aw.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "a2" }] });
      await b.c.next(isUpdate(2, aw.client), "a's update 2, seen by b");
      proxy.dropAll();
      await a.waitClosed();
      const r = await join(room, { resume: { client: aw.client, resume_token: aw.resume_token, version: aw.version } });
      expect(r.w.snapshot).toBeUndefined();
      expect(r.w.acked).toBe(2);
      expect((await r.c.next(isUpdate(2, aw.client), "catch-up update of action 2")).v).toBe(aw.version + 1);
      await roundTrip(r.c, 3, r.w.version);
      expect(r.c.all(isReject(1))).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("acked counts rejected actions too, whatever refused them (too_many_changes included)", async () => {
    // "`acked` | the highest action id of this client the room has processed (applied or rejected)"
    const room = newRoom("acked-rejected");
    const a = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "delete", id: "root" }] });
    expect((await a.c.next(isReject(1), "reject 1")).code).toBe("root_immutable");
    const many = Array.from({ length: 1001 }, (_, i) => ({ op: "dict_set", obj: "page", attr: "style", key: `k${i}`, value: i }));
    a.c.send({ t: "action", id: 2, base: a.w.version, changes: many });
    expect((await a.c.next(isReject(2), "reject 2")).code).toBe("too_many_changes");
    a.c.close();
    await a.c.waitClosed();
    const r = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: a.w.version } });
    expect(r.w.acked).toBe(2);
  });

  it("an action id rejected for too_many_changes is processed: it cannot be used again", async () => {
    // "`duplicate_action` | an action id not above the last one processed" with "processed
    // (applied or rejected)"
    const a = await join(newRoom("too-many-then-same-id"));
    const many = Array.from({ length: 1001 }, (_, i) => ({ op: "dict_set", obj: "page", attr: "style", key: `k${i}`, value: i }));
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: many });
    expect((await a.c.next(isReject(1), "reject 1")).code).toBe("too_many_changes");
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "again" }] });
    const answer = await a.c.next((m: Flat): m is RejectMsg | UpdateMsg => (m.t === "reject" || m.t === "update") && m.action === 1, "the answer to the reused id");
    expect(answer.t === "reject" ? answer.code : "applied").toBe("duplicate_action");
  });

  it("a failed resume (bad token) is a new client with a snapshot", async () => {
    // "`client` | this connection's client id (the same as before when resuming succeeded)" /
    // "`snapshot` | present when the client must (re)load the whole tree"
    const room = newRoom("bad-token");
    const a = await join(room);
    a.c.close();
    await a.c.waitClosed();
    const r = await join(room, { resume: { client: a.w.client, resume_token: "not-the-token", version: a.w.version } });
    expect(r.w.client).not.toBe(a.w.client);
    expect(r.w.snapshot).toBeDefined();
    expect(r.w.acked).toBe(0);
  });

  it("resume window: the last 10,000 updates are kept for resume (9,900 behind is a catch-up, not a snapshot)", { timeout: 120_000 }, async () => {
    // "`room_log_versions_max` | the last 10,000 updates are kept for resume" with "Without
    // `snapshot` (a successful resume) the server sends next, in order, the `update` messages from
    // the client's `resume.version + 1` up to `version`"
    const room = newRoom("window");
    const a = await join(room);
    a.c.close();
    await a.c.waitClosed();
    const writers: { c: Conn; w: WelcomeMsg }[] = [];
    for (let i = 0; i < 25; i++) writers.push(await join(room, { batch: true }));
    const per = 396; // below the burst of 400: no rate limiting
    for (const { c, w } of writers) {
      for (let k = 1; k <= per; k++) c.send({ t: "action", id: k, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: `${k}` }] });
    }
    const total = per * writers.length;
    for (const { c } of writers) await c.until(`${total} updates`, () => c.received.length >= total + 1, 100_000);
    for (const { c } of writers) c.close();
    const r = await join(room, { resume: { client: a.w.client, resume_token: a.w.resume_token, version: a.w.version } });
    expect(r.w.version).toBe(a.w.version + total);
    expect(r.w.snapshot).toBeUndefined();
    await r.c.until(`${total} catch-up updates`, () => r.c.all(isUpdate()).length >= total, 30_000);
    expect(r.c.all(isUpdate()).map((u) => u.v)).toEqual(Array.from({ length: total }, (_, i) => a.w.version + 1 + i));
  });
});

// ======================================================================= actions and rejects

describe("action, update, reject", () => {
  it("an update goes to every client, the sender included; origin and action identify it", async () => {
    // "One accepted state transition, sent to **every** client of the room, the sender included" /
    // "`origin` is the client id that caused it ...; `action` is that client's action id"
    const room = newRoom("update");
    const a = await join(room);
    const b = await join(room);
    const change = { op: "dict_set", obj: "page", attr: "style", key: "x", value: 120 };
    a.c.send({ t: "action", id: 7, base: a.w.version, changes: [change] });
    const ua = await a.c.next(isUpdate(7), "a's update");
    const ub = await b.c.next(isUpdate(7), "b's update");
    expect(ua).toEqual({ t: "update", v: a.w.version + 1, origin: a.w.client, action: 7, changes: [change] });
    expect(ub).toEqual(ua);
  });

  it("a reject goes only to the sender, with action, code, reason and the failing change's index", async () => {
    // "Sent only to the sender: action (or undo/redo) `action` changed nothing. `change` is the
    // index of the failing change when one is to blame."
    const room = newRoom("reject");
    const a = await join(room);
    const b = await join(room);
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "set", obj: "graph", attr: "name", value: "fine" },
        { op: "set", obj: "nope", attr: "name", value: "x" },
      ],
    });
    const r = await a.c.next(isReject(1), "reject 1");
    expect(r.code).toBe("no_such_object");
    expect(typeof r.reason).toBe("string");
    expect(r.change).toBe(1);
    // nothing changed, and b heard nothing of it
    await roundTrip(b.c, 1, b.w.version);
    expect(b.c.all(isReject(1)).filter((m) => m.code !== "empty_action")).toEqual([]);
    expect(b.c.all(isUpdate())).toEqual([]);
    expect(await freshValue(room, "graph", "name")).toBe("main");
  });

  it("the changes of an action are applied atomically, in order", async () => {
    // "`changes` | array | 1 to `action_changes_max` changes (below), applied atomically in order"
    const room = newRoom("atomic");
    const a = await join(room);
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "set", obj: "graph", attr: "name", value: "first" },
        { op: "text_insert", obj: "graph", attr: "name", pos: 5, text: "!" },
      ],
    });
    const u = await a.c.next(isUpdate(1), "update 1");
    expect(u.changes).toEqual([
      { op: "set", obj: "graph", attr: "name", value: "first" },
      { op: "text_insert", obj: "graph", attr: "name", pos: 5, text: "!" },
    ]);
    a.c.send({
      t: "action",
      id: 2,
      base: u.v,
      changes: [
        { op: "set", obj: "graph", attr: "name", value: "second" },
        { op: "delete", id: "root" },
      ],
    });
    expect((await a.c.next(isReject(2), "reject 2")).change).toBe(1);
    expect(await freshValue(room, "graph", "name")).toBe("first!");
  });

  it("action_changes_max: 1,000 changes are accepted; 1,001 are refused with too_many_changes", async () => {
    // "`action_changes_max` | 1,000 changes per action" / "`too_many_changes` ... | a limit was hit"
    const a = await join(newRoom("changes-max"));
    const changes = (n: number) => Array.from({ length: n }, (_, i) => ({ op: "dict_set", obj: "page", attr: "style", key: `k${i}`, value: i }));
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: changes(1000) });
    expect((await a.c.next(isUpdate(1), "update 1", 15_000)).changes.length).toBe(1000);
    a.c.send({ t: "action", id: 2, base: a.w.version, changes: changes(1001) });
    expect((await a.c.next(isReject(2), "reject 2")).code).toBe("too_many_changes");
  });

  it("empty_action: no changes", async () => {
    // "`empty_action` | no changes"
    const a = await join(newRoom("empty"));
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [] });
    expect((await a.c.next(isReject(1), "reject 1")).code).toBe("empty_action");
  });

  it("bad_base: base is ahead of the room", async () => {
    // "`bad_base` | `base` is ahead of the room"
    const a = await join(newRoom("bad-base"));
    a.c.send({ t: "action", id: 1, base: a.w.version + 5, changes: [{ op: "set", obj: "graph", attr: "name", value: "x" }] });
    expect((await a.c.next(isReject(1), "reject 1")).code).toBe("bad_base");
  });

  it("reject codes for names that do not resolve, wrong kinds, ids, ranges, references and the tree", async () => {
    // Error codes table: "`no_such_object`, `no_such_attribute`, `no_such_type` | a name does not
    // resolve" / "`wrong_kind` | the change or value does not fit the attribute's kind" /
    // "`duplicate_id`, `bad_id`" / "`out_of_range`, `splits_character`, `no_such_key`" /
    // "`dangling_ref`" / "`cycle`, `root_immutable`" / "`invalid` | a validator of the type refused
    // the value"
    const room = newRoom("codes");
    const a = await join(room);
    const me = a.w.client;
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "create", id: `${me}:n1`, type: "Node", parent: "graph" },
        { op: "create", id: `${me}:n2`, type: "Node", parent: "graph" },
      ],
    });
    const base = (await a.c.next(isUpdate(1), "update 1")).v;
    const cases: [string, ChangeJson][] = [
      ["no_such_object", { op: "set", obj: "nope", attr: "name", value: "x" }],
      ["no_such_attribute", { op: "set", obj: "graph", attr: "nope", value: "x" }],
      ["no_such_type", { op: "create", id: `${me}:t`, type: "Nope", parent: "graph" }],
      ["wrong_kind", { op: "set", obj: "graph", attr: "name", value: 5 }],
      ["wrong_kind", { op: "add", obj: "graph", attr: "name", value: 1 }],
      ["wrong_kind", { op: "text_insert", obj: "page", attr: "style", pos: 0, text: "x" }],
      ["wrong_kind", { op: "list_insert", obj: "page", attr: "style", value: 1 }],
      ["wrong_kind", { op: "set_add", obj: `${me}:n1`, attr: "ports", value: "x" }],
      ["wrong_kind", { op: "emit", obj: "graph", attr: "name" }],
      ["duplicate_id", { op: "create", id: `${me}:n1`, type: "Node", parent: "graph" }],
      ["bad_id", { op: "create", id: "n3", type: "Node", parent: "graph" }],
      ["out_of_range", { op: "list_remove", obj: `${me}:n1`, attr: "ports", index: 9 }],
      ["out_of_range", { op: "text_insert", obj: "graph", attr: "name", pos: 99, text: "x" }],
      ["out_of_range", { op: "create", id: `${me}:n4`, type: "Node", parent: "graph", index: 99 }],
      ["no_such_key", { op: "dict_remove", obj: "page", attr: "style", key: "nope" }],
      ["dangling_ref", { op: "create", id: `${me}:e`, type: "Edge", parent: "graph", attrs: { from: "nope", to: `${me}:n1` } }],
      ["cycle", { op: "move", id: "page", parent: "hello" }],
      ["root_immutable", { op: "delete", id: "root" }],
      ["root_immutable", { op: "move", id: "root", parent: "graph" }],
      ["invalid", { op: "dict_set", obj: `${me}:n1`, attr: "pos", key: "x", value: 5000 }],
      ["invalid", { op: "create", id: `${me}:e2`, type: "Edge", parent: "graph", attrs: { from: `${me}:n1`, to: `${me}:n1` } }],
    ];
    let id = 1;
    for (const [code, change] of cases) {
      a.c.send({ t: "action", id: ++id, base, changes: [change] });
      const r = await a.c.next(isReject(id), `the reject of ${JSON.stringify(change)}`);
      expect({ change, code: r.code, index: r.change }).toEqual({ change, code, index: 0 });
    }
  });

  it("the session example: root_immutable with its reason, change 0", async () => {
    // "S: {"t":"reject","action":2,"code":"root_immutable","reason":"the root object cannot be deleted","change":0}"
    const a = await join(newRoom("example-reject"));
    a.c.send({ t: "action", id: 2, base: a.w.version, changes: [{ op: "delete", id: "root" }] });
    expect(await a.c.next(isReject(2), "reject 2")).toEqual({ t: "reject", action: 2, code: "root_immutable", reason: "the root object cannot be deleted", change: 0 });
  });

  it("in updates: create with every stored attribute and index; move and list_insert with index; text_delete with len", async () => {
    // "In `update`s the server writes `create` with every stored attribute and `index`, `move` and
    // `list_insert` with `index`, and `text_delete` with `len`."
    const a = await join(newRoom("written"));
    const me = a.w.client;
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "create", id: `${me}:n`, type: "Node", parent: "graph", attrs: { title: "abc" } }] });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    const create = u1.changes[0];
    expect(create?.op).toBe("create");
    expect(create?.index).toBe(0);
    expect(create?.parent).toBe("graph");
    expect(Object.keys((create?.attrs ?? {}) as JsonObject).sort()).toEqual(["color", "ports", "pos", "title"]);
    a.c.send({
      t: "action",
      id: 2,
      base: u1.v,
      changes: [
        { op: "list_insert", obj: `${me}:n`, attr: "ports", value: "extra" },
        { op: "move", id: `${me}:n`, parent: "page" },
        { op: "text_delete", obj: `${me}:n`, attr: "title", pos: 0, len: 2 },
      ],
    });
    const u2 = await a.c.next(isUpdate(2), "update 2");
    expect(u2.changes).toEqual([
      { op: "list_insert", obj: `${me}:n`, attr: "ports", index: 2, value: "extra" },
      { op: "move", id: `${me}:n`, parent: "page", index: 1 },
      { op: "text_delete", obj: `${me}:n`, attr: "title", pos: 0, len: 2 },
    ]);
  });

  it("create with index and children; move to a final position; list and dict ops", async () => {
    // "`create` | `id`, `type`, `parent`, `index?`, `attrs?` (name -> value), `children?` (nested
    // nodes: `id`, `type`, `attrs?`, `children?`)" / "`move` | `id`, `parent`, `index?` (final
    // position under the new parent)" / list_* and dict_* rows
    const room = newRoom("ops");
    const a = await join(room);
    const me = a.w.client;
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "create", id: `${me}:d`, type: "Div", parent: "page", index: 0, children: [{ id: `${me}:t`, type: "Text", attrs: { text: "hi" } }] },
        { op: "move", id: "hello", parent: "page", index: 0 },
        { op: "create", id: `${me}:n`, type: "Node", parent: "graph" },
        { op: "list_insert", obj: `${me}:n`, attr: "ports", index: 0, value: "first" },
        { op: "list_move", obj: `${me}:n`, attr: "ports", from: 0, to: 2 },
        { op: "list_set", obj: `${me}:n`, attr: "ports", index: 0, value: "IN" },
        { op: "list_remove", obj: `${me}:n`, attr: "ports", index: 1 },
        { op: "dict_set", obj: "page", attr: "style", key: "margin", value: "0" },
        { op: "dict_remove", obj: "page", attr: "style", key: "padding" },
      ],
    });
    await a.c.next(isUpdate(1), "update 1");
    const { w } = await join(room);
    const page = findNode(nested(w).root, "page");
    expect(page?.children?.map((c) => c.id)).toEqual(["hello", `${me}:d`]);
    expect(page?.children?.[1]?.children?.[0]).toEqual({ id: `${me}:t`, type: "Text", attrs: { style: {}, text: "hi" } });
    expect(page?.attrs).toEqual({ style: { margin: "0" } });
    expect(findNode(nested(w).root, `${me}:n`)?.attrs?.ports).toEqual(["IN", "first"]);
  });

  it("delete: references into the subtree are cleared first, as separate steps; reactions are added", async () => {
    // "`delete` | `id` | deletes the subtree; references into it are cleared first (as separate
    // steps)" / "`changes` are the steps actually applied ...: reactions and reference clearing added."
    const a = await join(newRoom("delete-refs"));
    const me = a.w.client;
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "create", id: `${me}:n1`, type: "Node", parent: "graph" },
        { op: "create", id: `${me}:n2`, type: "Node", parent: "graph" },
        { op: "create", id: `${me}:e`, type: "Edge", parent: "graph", attrs: { from: `${me}:n1`, to: `${me}:n2` } },
      ],
    });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "delete", id: `${me}:n1` }] });
    const u2 = await a.c.next(isUpdate(2), "update 2");
    const clear = u2.changes.findIndex((c) => c.op === "set" && c.obj === `${me}:e` && c.attr === "from" && c.value === null);
    const del = u2.changes.findIndex((c) => c.op === "delete" && c.id === `${me}:n1`);
    expect(clear).toBeGreaterThanOrEqual(0);
    expect(del).toBeGreaterThan(clear);
    // the demo's reaction: an edge that lost an end deletes itself
    expect(u2.changes.some((c) => c.op === "delete" && c.id === `${me}:e`)).toBe(true);
  });

  it("Text: positions count UTF-16 code units; a position inside a surrogate pair is splits_character", async () => {
    // "Positions in text count UTF-16 code units; indexes are 0-based; an absent `index` means
    // "at the end"." / "`splits_character`"
    const room = newRoom("utf16");
    const a = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "😀" }] });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 1, text: "x" }] });
    expect((await a.c.next(isReject(2), "reject 2")).code).toBe("splits_character");
    a.c.send({ t: "action", id: 3, base: u1.v, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 2, text: "x" }] });
    await a.c.next(isUpdate(3), "update 3");
    expect(await freshValue(room, "hello", "text")).toBe("😀xHello from ObjectSync");
  });

  it("Text: an edit is transformed against other clients' edits since base", async () => {
    // "A text edit in an action is interpreted against `base` plus the client's own earlier changes
    // in that action; the server transforms it against the edits other clients made since `base`."
    const room = newRoom("transform");
    const a = await join(room);
    const b = await join(room);
    b.c.send({ t: "action", id: 1, base: b.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "XX" }] });
    await a.c.next(isUpdate(1, b.w.client), "b's insert");
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 5, text: "Y" }] });
    const u = await a.c.next(isUpdate(1, a.w.client), "a's insert");
    expect(u.changes).toEqual([{ op: "text_insert", obj: "hello", attr: "text", pos: 7, text: "Y" }]);
    expect(await freshValue(room, "hello", "text")).toBe("XXHelloY from ObjectSync");
  });

  it("Text: concurrent inserts at one position are ordered by client id", async () => {
    // "Concurrent inserts at one position are ordered by client id (the server, `""`, first)."
    const room = newRoom("tie");
    const a = await join(room);
    const b = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "A" }] });
    b.c.send({ t: "action", id: 1, base: b.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "B" }] });
    await a.c.until("both inserts", () => a.c.all(isUpdate(1, b.w.client)).length === 1 && a.c.all(isUpdate(1, a.w.client)).length === 1);
    const first = a.w.client < b.w.client ? "AB" : "BA";
    expect(await freshValue(room, "hello", "text")).toBe(`${first}Hello from ObjectSync`);
  });

  it("Text: an edit based before the client's own previous edit is text_base_stale", async () => {
    // "An edit based before the client's own previous edit to that attribute is rejected with
    // `text_base_stale`"
    const a = await join(newRoom("stale"));
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "a" }] });
    await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "b" }] });
    expect((await a.c.next(isReject(2), "reject 2")).code).toBe("text_base_stale");
  });

  it("Text: an edit based before a whole-string set (by anyone) is text_base_too_old", async () => {
    // "an edit based before a whole-string `set` (by anyone) is rejected with `text_base_too_old`"
    const room = newRoom("too-old");
    const a = await join(room);
    const b = await join(room);
    b.c.send({ t: "action", id: 1, base: b.w.version, changes: [{ op: "set", obj: "hello", attr: "text", value: "replaced" }] });
    await a.c.next(isUpdate(1, b.w.client), "b's set");
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "x" }] });
    expect((await a.c.next(isReject(1), "a's reject")).code).toBe("text_base_too_old");
  });

  it("Text: edits following a set in the same action are relative to the new text and not transformed", async () => {
    // "Text edits that follow a `set` of the same attribute **in the same action** are relative to
    // the new text and are not transformed."
    const room = newRoom("set-then-edit");
    const a = await join(room);
    const b = await join(room);
    b.c.send({ t: "action", id: 1, base: b.w.version, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "BBBB" }] });
    await a.c.next(isUpdate(1, b.w.client), "b's insert");
    a.c.send({
      t: "action",
      id: 1,
      base: a.w.version,
      changes: [
        { op: "set", obj: "hello", attr: "text", value: "abc" },
        { op: "text_insert", obj: "hello", attr: "text", pos: 3, text: "d" },
      ],
    });
    const u = await a.c.next(isUpdate(1, a.w.client), "a's update");
    expect(u.changes[1]).toEqual({ op: "text_insert", obj: "hello", attr: "text", pos: 3, text: "d" });
    expect(await freshValue(room, "hello", "text")).toBe("abcd");
  });
});

// ============================================================================== undo / redo

describe("undo / redo", () => {
  const setName = (c: Conn, id: number, base: number, value: string) => c.send({ t: "action", id, base, changes: [{ op: "set", obj: "graph", attr: "name", value }] });

  it("undo is answered with an update tagged with its id; redo re-applies", async () => {
    // "`id` is an action id (same sequence as actions); the answer is an `update` tagged with it,
    // or a `reject`."
    const room = newRoom("undo");
    const a = await join(room);
    setName(a.c, 1, a.w.version, "one");
    await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "undo", id: 2 });
    await a.c.next(isUpdate(2), "the undo's update");
    expect(await freshValue(room, "graph", "name")).toBe("main");
    a.c.send({ t: "redo", id: 3 });
    await a.c.next(isUpdate(3), "the redo's update");
    expect(await freshValue(room, "graph", "name")).toBe("one");
  });

  it("actions naming one step are one undo step however far apart; a step over 64 bytes is bad_message", async () => {
    // "`step` | ... this client's consecutive actions naming the same `step` are one undo step
    // however far apart they come and whatever they change" / "An action naming no `step` never
    // merges into a named one"
    const room = newRoom("undo-step");
    const a = await join(room);
    const act = (id: number, base: number, value: string, step?: string) =>
      a.c.send({ t: "action", id, base, changes: [{ op: "set", obj: "graph", attr: "name", value }], ...(step === undefined ? {} : { step }) });
    act(1, a.w.version, "one", "rename");
    const u1 = await a.c.next(isUpdate(1), "update 1");
    await new Promise((r) => setTimeout(r, 650)); // past undo_merge_window_ms (500)
    act(2, u1.v, "two", "rename");
    const u2 = await a.c.next(isUpdate(2), "update 2");
    act(3, u2.v, "three"); // no step, at once: a step of its own
    await a.c.next(isUpdate(3), "update 3");
    a.c.send({ t: "undo", id: 4 });
    await a.c.next(isUpdate(4), "the first undo");
    expect(await freshValue(room, "graph", "name")).toBe("two");
    a.c.send({ t: "undo", id: 5 });
    await a.c.next(isUpdate(5), "the second undo: both named actions");
    expect(await freshValue(room, "graph", "name")).toBe("main");
    a.c.send({ t: "undo", id: 6 });
    expect((await a.c.next(isReject(6), "nothing left")).code).toBe("nothing_to_undo");
    act(7, u2.v + 3, "long", "x".repeat(65));
    expect((await a.c.next(isError(), "a step too long")).code).toBe("bad_message");
  });

  it("undo undoes this client's latest undo step (not the one before it)", async () => {
    // "Undo (redo) this client's latest undo step that touched object `scope` or anything under
    // it; without `scope`, its latest step anywhere. A step is one action, or several of this
    // client's actions on the same objects less than `undo_merge_window_ms` apart (a drag)."
    // The two actions touch different objects: two steps.
    const room = newRoom("undo-latest");
    const a = await join(room);
    setName(a.c, 1, a.w.version, "one");
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "dict_set", obj: "page", attr: "style", key: "color", value: "red" }] });
    await a.c.next(isUpdate(2), "update 2");
    a.c.send({ t: "undo", id: 3 });
    await a.c.next(isUpdate(3), "the undo's update");
    expect(await freshValue(room, "graph", "name")).toBe("one");
    expect(await freshValue(room, "page", "style")).toEqual({ padding: "16px" });
  });

  it("undo with scope undoes the latest change under that object", async () => {
    // "Undo (redo) this client's latest change that touched object `scope` or anything under it"
    const room = newRoom("undo-scope");
    const a = await join(room);
    setName(a.c, 1, a.w.version, "one");
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "set", obj: "hello", attr: "text", value: "changed" }] });
    await a.c.next(isUpdate(2), "update 2");
    a.c.send({ t: "undo", id: 3, scope: "graph" });
    await a.c.next(isUpdate(3), "the scoped undo");
    expect(await freshValue(room, "graph", "name")).toBe("main");
    expect(await freshValue(room, "hello", "text")).toBe("changed");
    // scope "page" holds "hello": a change under it counts
    a.c.send({ t: "undo", id: 4, scope: "page" });
    await a.c.next(isUpdate(4), "the undo under page");
    expect(await freshValue(room, "hello", "text")).toBe("Hello from ObjectSync");
  });

  it("undo only undoes this client's changes; nothing_to_undo otherwise", async () => {
    // "Undo (redo) this client's latest change" / "`nothing_to_undo`, `undo_conflict` | undo/redo
    // found nothing, or the state moved on"
    const room = newRoom("undo-own");
    const a = await join(room);
    const b = await join(room);
    setName(a.c, 1, a.w.version, "a");
    await b.c.next(isUpdate(1, a.w.client), "a's update");
    b.c.send({ t: "undo", id: 1 });
    expect((await b.c.next(isReject(1), "b's reject")).code).toBe("nothing_to_undo");
    b.c.send({ t: "redo", id: 2 });
    expect((await b.c.next(isReject(2), "b's redo reject")).code).toBe("nothing_to_undo");
  });

  it("undo ids share the action id sequence", async () => {
    // "`id` is an action id (same sequence as actions)"
    const a = await join(newRoom("undo-ids"));
    setName(a.c, 5, a.w.version, "x");
    await a.c.next(isUpdate(5), "update 5");
    a.c.send({ t: "undo", id: 5 });
    expect((await a.c.next(isReject(5), "reject of undo 5")).code).toBe("duplicate_action");
  });

  it("undo_conflict: the state moved on", async () => {
    // "`nothing_to_undo`, `undo_conflict` | undo/redo found nothing, or the state moved on"
    const room = newRoom("undo-conflict");
    const a = await join(room);
    const b = await join(room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "create", id: `${a.w.client}:n`, type: "Node", parent: "graph" }] });
    const u1 = await a.c.next(isUpdate(1), "update 1");
    a.c.send({ t: "action", id: 2, base: u1.v, changes: [{ op: "set", obj: `${a.w.client}:n`, attr: "title", value: "mine" }] });
    const u2 = await a.c.next(isUpdate(2), "update 2");
    b.c.send({ t: "action", id: 1, base: u2.v, changes: [{ op: "delete", id: `${a.w.client}:n` }] });
    await a.c.next(isUpdate(1, b.w.client), "b's delete");
    a.c.send({ t: "undo", id: 3, scope: "graph" });
    const r = await a.c.next((m: Flat): m is RejectMsg | UpdateMsg => (m.t === "reject" || m.t === "update") && m.action === 3, "the undo's answer");
    expect(r.t === "reject" ? r.code : "applied").toBe("undo_conflict");
  });
});

// ================================================================================= presence

describe("presence", () => {
  it("presence is broadcast to the others as {t, client, state}; null clears it", async () => {
    // "Sets this client's ephemeral state (any JSON ...; `null` clears it). Broadcast to the room" /
    // "`{"t":"presence","client":"c9z8y7x6w5","state":{"name":"Bob"}}` Another client's presence
    // changed; `state: null` means it cleared it or left."
    const room = newRoom("presence");
    const a = await join(room);
    const b = await join(room);
    const state = { name: "Ada", cursor: { x: 10, y: 20 } };
    a.c.send({ t: "presence", state });
    expect(await b.c.next(isPresence(a.w.client), "a's presence")).toEqual({ t: "presence", client: a.w.client, state });
    for (const value of [[1, "two", null], "just a string", 42, true]) {
      a.c.send({ t: "presence", state: value });
      expect((await b.c.next(isPresence(a.w.client), "a's presence")).state).toEqual(value);
    }
    a.c.send({ t: "presence", state: null });
    expect((await b.c.next(isPresence(a.w.client), "a's clear")).state).toBeNull();
    const c = await join(room);
    expect(c.w.presence).toEqual({});
  });

  it("presence of a client that leaves becomes null for the others; it is never stored", async () => {
    // "`state: null` means it cleared it or left." / "Broadcast to the room, never stored."
    const room = newRoom("presence-leave");
    const a = await join(room);
    const b = await join(room);
    a.c.send({ t: "presence", state: { name: "Ada" } });
    await b.c.next(isPresence(a.w.client), "a's presence");
    a.c.close();
    expect((await b.c.next(isPresence(a.w.client), "a's presence gone")).state).toBeNull();
    const c = await join(room);
    expect(c.w.presence).toEqual({});
  });

  it("presence_bytes_max: a state of 4 KiB serialized is broadcast; a larger one is not", async () => {
    // "at most `presence_bytes_max` bytes serialized" / "`presence_bytes_max` | 4 KiB"
    const room = newRoom("presence-max");
    const a = await join(room);
    const b = await join(room);
    const exact = { s: "x".repeat(4096 - JSON.stringify({ s: "" }).length) };
    expect(JSON.stringify(exact).length).toBe(4096);
    a.c.send({ t: "presence", state: exact });
    expect((await b.c.next(isPresence(a.w.client), "the 4 KiB presence")).state).toEqual(exact);
    a.c.send({ t: "presence", state: { s: `${exact.s}y` } });
    a.c.send({ t: "presence", state: "after" });
    expect((await b.c.next(isPresence(a.w.client), "the next presence")).state).toBe("after");
  });
});

// ============================================================================== call / result

describe("call / result", () => {
  it("echo: result with the call's id and ok (the caller's id and the arguments)", async () => {
    // "Calls a service registered in Rust. `id` is chosen by the client to match the `result`" /
    // "`{"t":"result","id":3,"ok":{...}}`"
    const a = await join(newRoom("echo"));
    a.c.send({ t: "call", id: 3, service: "echo", args: { spacing: 20 } });
    expect(await a.c.next(isResult(3), "result 3")).toEqual({ t: "result", id: 3, ok: { client: a.w.client, args: { spacing: 20 } } });
  });

  it("call ids are independent of action ids", async () => {
    // "(any integer; independent of action ids)"
    const a = await join(newRoom("call-ids"));
    a.c.send({ t: "action", id: 5, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "x" }] });
    await a.c.next(isUpdate(5), "update 5");
    a.c.send({ t: "call", id: 1, service: "echo", args: null });
    expect((await a.c.next(isResult(1), "result 1")).ok).toEqual({ client: a.w.client, args: null });
    a.c.send({ t: "call", id: 1, service: "echo", args: 2 });
    expect((await a.c.next(isResult(1), "result 1 again")).ok).toEqual({ client: a.w.client, args: 2 });
    a.c.send({ t: "action", id: 6, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "y" }] });
    await a.c.next(isUpdate(6), "update 6");
  });

  it("call ids are integers from 0 to 2^53 - 1; others are refused", async () => {
    // "`id` is chosen by the client to match the `result`: an integer from 0 to 2^53 - 1,
    // independent of action ids. A larger one is answered with a `result` whose error is
    // `bad_id`; a negative or fractional one is a `bad_message` error."
    const a = await join(newRoom("call-ids"));
    a.c.send({ t: "call", id: 0, service: "echo", args: 0 });
    expect((await a.c.next(isResult(0), "result 0")).ok).toEqual({ client: a.w.client, args: 0 });
    a.c.send({ t: "call", id: Number.MAX_SAFE_INTEGER, service: "echo", args: 1 });
    expect((await a.c.next(isResult(Number.MAX_SAFE_INTEGER), "result 2^53-1")).ok).toEqual({ client: a.w.client, args: 1 });
    a.c.sendRaw('{"t":"call","id":9007199254740992,"service":"echo","args":2}');
    const big = await a.c.next((m: Flat): m is ResultMsg => m.t === "result" && m.id >= 2 ** 53, "result 2^53");
    expect(big.error?.code).toBe("bad_id");
    a.c.send({ t: "call", id: -7, service: "echo", args: -7 });
    expect((await a.c.next(isError("bad_message"), "the answer to call -7")).code).toBe("bad_message");
  });

  it("result.error codes: no_such_service, service_failed", async () => {
    // "`no_such_service`, `timeout`, `service_failed` | (`result.error`)"
    const a = await join(newRoom("call-errors"));
    a.c.send({ t: "call", id: 1, service: "layout", args: {} });
    const r1 = await a.c.next(isResult(1), "result 1");
    expect(r1.error?.code).toBe("no_such_service");
    expect(typeof r1.error?.reason).toBe("string");
    expect(r1.ok).toBeUndefined();
    a.c.send({ t: "call", id: 2, service: "fail", args: "because" });
    expect((await a.c.next(isResult(2), "result 2")).error).toEqual({ code: "service_failed", reason: "because" });
    a.c.send({ t: "call", id: 3, service: "slow", args: { ms: 20 } });
    expect((await a.c.next(isResult(3), "result 3")).ok).toBe(20);
  });
});

// =============================================================== errors, limits, close codes

describe("error messages and close codes", () => {
  it("malformed JSON, missing or wrong fields: error bad_message; nothing applied; the connection stays open", async () => {
    // "A message could not be understood; nothing was applied. The connection stays open" /
    // "`bad_message` | (`error`) malformed JSON, missing or wrong fields"
    const room = newRoom("bad-message");
    const a = await join(room);
    for (const text of [
      "not json",
      "[1,2]",
      '{"no_t":1}',
      '{"t":5}',
      '{"t":"action","id":1,"base":0}',
      '{"t":"action","id":"x","base":0,"changes":[{"op":"set","obj":"graph","attr":"name","value":"x"}]}',
      '{"t":"action","id":1,"base":0,"changes":[{"op":"frobnicate","obj":"graph"}]}',
      '{"t":"call","service":"echo"}',
    ]) {
      a.c.sendRaw(text);
      const e = await a.c.next(isError(), `the error for ${text}`);
      expect({ text, code: e.code }).toEqual({ text, code: "bad_message" });
    }
    expect(a.c.closed).toBeNull();
    expect(await freshValue(room, "graph", "name")).toBe("main");
  });

  it("errors_max: after 10 bad messages the server closes with 4004", async () => {
    // "after `errors_max` such errors the server closes it (close code 4004)" / "`errors_max` | 10
    // bad messages per connection" / "4004 | too many bad messages"
    const a = await join(newRoom("errors-max"));
    for (let i = 0; i < 11; i++) a.c.sendRaw(`not json ${i}`);
    const closed = await a.c.waitClosed();
    expect(closed.code).toBe(4004);
    expect(a.c.all(isError("bad_message")).length).toBeGreaterThanOrEqual(10);
  });

  it("frame_bytes_max: a frame of 1 MiB is read; a larger one is closed with 1009", async () => {
    // "1009 | a frame larger than `frame_bytes_max`" / "`frame_bytes_max` | 1 MiB"
    const a = await join(newRoom("frame-max"));
    const head = '{"t":"frobnicate","pad":"';
    const tail = '"}';
    a.c.sendRaw(head + "x".repeat(1024 * 1024 - head.length - tail.length) + tail);
    expect((await a.c.next(isError(), "the error for the 1 MiB message", 15_000)).code).toBe("unknown_message");
    a.c.sendRaw(head + "x".repeat(1024 * 1024 + 1 - head.length - tail.length) + tail);
    expect((await a.c.waitClosed(15_000)).code).toBe(1009);
  });

  it("messages_per_second_max: a burst above 400 gets rate_limited errors (the messages are dropped)", async () => {
    // "`rate_limited` | (`error`) too many messages per second; the message was dropped" /
    // "`messages_per_second_max` | 200 per client (bursts up to 400)"
    const room = newRoom("rate");
    const a = await join(room);
    const b = await join(room);
    const n = 450;
    for (let i = 0; i < n; i++) a.c.send({ t: "presence", state: i });
    await a.c.until("a rate_limited error", () => a.c.all(isError("rate_limited")).length > 0 || a.c.closed !== null, 15_000);
    expect(a.c.all(isError("rate_limited")).length).toBeGreaterThan(0);
    // the first 400 (the burst) went through
    await b.c.until("400 presences", () => b.c.all(isPresence(a.w.client)).length >= 400, 15_000);
  });

  it("rate-limited messages count as bad messages: a flood past errors_max is closed with 4004", { timeout: 30_000 }, async () => {
    // "4004 | too many bad or rate-limited messages (`errors_max`)" / "A message over the rate
    // is dropped and answered with `error` `rate_limited`; it counts towards `errors_max`."
    const a = await join(newRoom("rate-then-4004"));
    const n = 450;
    for (let i = 1; i <= n; i++) a.c.send({ t: "call", id: i, service: "echo", args: i });
    await a.c.until("a close", () => a.c.closed !== null, 20_000);
    expect(a.c.closed?.code).toBe(4004);
    expect(a.c.all(isError("rate_limited")).length).toBeGreaterThan(0);
  });

  it("1000: a client's normal close is answered with a normal close", async () => {
    // "1000 | normal close"
    const a = await join(newRoom("normal-close"));
    a.c.ws.close(1000, "done");
    expect((await a.c.waitClosed()).code).toBe(1000);
  });

  it("the server sends WebSocket pings", { timeout: 30_000 }, async () => {
    // "The server sends WebSocket pings; a client must answer pongs" / "`ping_interval_ms` | a WebSocket ping every 10 s"
    const a = await join(newRoom("pings"));
    await a.c.until("a ping", () => a.c.pings > 0, 15_000);
  });

  it("hello_timeout and http_header_timeout: 10 s to say hello (else 4000), 10 s to send a request head (else closed)", { timeout: 40_000 }, async () => {
    // "The first message of a client must be `hello`, within `hello_timeout` (10 s)" /
    // "A connection must send its whole request head within `http_header_timeout` (10 s), else
    // it is closed."
    const silent = new Conn(url(newRoom("no-hello")));
    await silent.opened;
    const stalled = new Promise<string>((resolve) => {
      const tcp = net.connect(server.port, "127.0.0.1", () => tcp.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
      let answer = "";
      tcp.on("data", (d) => (answer += d.toString()));
      tcp.on("close", () => resolve(answer));
      tcp.on("error", () => undefined);
    });
    const [closed, answer] = await Promise.all([silent.waitClosed(30_000), stalled]);
    expect(closed.code).toBe(4000);
    expect(answer.startsWith("HTTP/1.1 200")).toBe(false);
  });

  it("outbound_queue_bytes_max: a client that lets 16 MiB pile up is cut off, however few messages that is", { timeout: 40_000 }, async () => {
    // "`outbound_queue_bytes_max` | 16 MiB (16,777,216 bytes) waiting per client ... | close 4003"
    // The client stops reading, so its close frame may never reach it: the metric says it.
    const metric = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: server.port, path: "/metrics" }, (res) => {
          let body = "";
          res.on("data", (d) => (body += d.toString()));
          res.on("end", () => resolve(Number(/^objectsync_slow_disconnects_total (\d+)/m.exec(body)?.[1] ?? "0")));
        });
        req.on("error", reject);
      });
    const before = await metric();
    const a = await join(newRoom("bytes-cut"));
    a.c.ws.pause();
    const args = "y".repeat(256 * 1024);
    // 100 results of 256 KiB (25 MiB): far fewer messages than outbound_queue_len_max.
    for (let i = 1; i <= 100; i++) a.c.send({ t: "call", id: i, service: "echo", args });
    const deadline = Date.now() + 30_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      after = await metric();
    }
    expect(after).toBeGreaterThan(before);
    // Others are served.
    const b = await join(newRoom("bytes-cut-other"));
    b.c.send({ t: "call", id: 1, service: "echo", args: 1 });
    expect((await b.c.next(isResult(1), "result 1")).ok).toEqual({ client: b.w.client, args: 1 });
  });

  it("4005: a connection silent for idle_timeout (not even pongs) is closed", { timeout: 60_000 }, async () => {
    // "A connection silent for `idle_timeout` is closed." / "4005 | idle: no traffic (not even pongs)
    // for `idle_timeout`" / "`idle_timeout` | 30 s"
    const c = new Conn(url(newRoom("idle")), { autoPong: false });
    await c.opened;
    const start = Date.now();
    c.send({ t: "hello", protocol: 1 });
    await c.next(isWelcome, "welcome");
    const closed = await c.waitClosed(50_000);
    expect(closed.code).toBe(4005);
    expect(Date.now() - start).toBeGreaterThanOrEqual(29_000);
  });
});

// ==================================================================================== batch

describe("batch", () => {
  it("batch: only to clients that asked; several messages in one frame, handled as if one by one; never a batch or welcome inside", async () => {
    // "Only to clients whose `hello` said `"batch":true`: several messages in one frame, to be
    // handled exactly as if they had arrived one by one, in order. The server sends one when it had
    // several messages for everyone ready at once (a burst) ... A `batch` never contains a `batch`
    // or a `welcome`."
    const room = newRoom("batch");
    const batched = await join(room, { batch: true });
    const plain = await join(room);
    const writers = [await join(room), await join(room)];
    const per = 150;
    for (const { c, w } of writers) for (let k = 1; k <= per; k++) c.send({ t: "action", id: k, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: `${k}` }] });
    const total = per * writers.length;
    await batched.c.until(`${total} updates`, () => batched.c.all(isUpdate()).length >= total, 20_000);
    await plain.c.until(`${total} updates`, () => plain.c.all(isUpdate()).length >= total, 20_000);
    expect(plain.c.frames.some((f) => f.startsWith('{"t":"batch"'))).toBe(false);
    expect(plain.c.received.some((r) => r.inBatch)).toBe(false);
    expect(batched.c.received.some((r) => r.inBatch)).toBe(true);
    // the same messages in the same order
    expect(batched.c.all(isUpdate())).toEqual(plain.c.all(isUpdate()));
    const vs = batched.c.all(isUpdate()).map((u) => u.v);
    expect(vs).toEqual(Array.from({ length: total }, (_, i) => batched.w.version + 1 + i));
  });
});

// ======================================================================= RFC 6455 close codes

describe("RFC 6455 (the transport is a WebSocket)", () => {
  /** A bare WebSocket over TCP: writes any frame, reads the server's close code. */
  async function rawSocket(room: string): Promise<{ send(frame: Buffer): void; closeCode(): Promise<number | null> }> {
    const socket = net.connect(server.port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let code: number | null | undefined;
    let wake: (() => void) | null = null;
    let welcomed = false;
    const parse = () => {
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buf.subarray(0, end).toString("latin1").startsWith("HTTP/1.1 101")) throw new Error(`no upgrade: ${buf.toString("latin1").slice(0, 80)}`);
        buf = buf.subarray(end + 4);
        upgraded = true;
      }
      for (;;) {
        if (buf.length < 2) return;
        const opcode = (buf[0] as number) & 0x0f;
        let len = (buf[1] as number) & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 8) code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        if (opcode === 1 && payload.toString().includes('"welcome"')) welcomed = true;
      }
    };
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      try {
        parse();
      } catch {
        code = null;
        socket.destroy();
      }
      wake?.();
    });
    socket.on("close", () => {
      if (code === undefined) code = null;
      wake?.();
    });
    socket.on("error", () => undefined);
    const waitFor = (check: () => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), DEFAULT_WAIT_MS);
        wake = () => {
          if (check()) {
            clearTimeout(timer);
            wake = null;
            resolve();
          }
        };
        wake();
      });
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(`GET /ws/${room} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    const frame = (opcode: number, payload: Buffer, masked = true, rsv = 0): Buffer => {
      const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
      const body = masked ? Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number))) : payload;
      return Buffer.concat([Buffer.from([0x80 | rsv | opcode, (masked ? 0x80 : 0) | payload.length]), masked ? mask : Buffer.alloc(0), body]);
    };
    socket.write(frame(1, Buffer.from(JSON.stringify({ t: "hello", protocol: 1 }))));
    await waitFor(() => welcomed, "welcome");
    return {
      send: (f) => socket.write(f),
      closeCode: async () => {
        await waitFor(() => code !== undefined, "a close frame");
        socket.destroy();
        return code ?? null;
      },
    };
  }
  const masked = (opcode: number, payload: Buffer, rsv = 0): Buffer => {
    const mask = Buffer.from([1, 2, 3, 4]);
    return Buffer.concat([Buffer.from([0x80 | rsv | opcode, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)))]);
  };

  it("an unsupported Sec-WebSocket-Version is answered 426 with the supported version", async () => {
    // RFC 6455 §4.4: "If this version does not match a version understood by the server, the server
    // MUST abort the WebSocket handshake ... and send back an appropriate HTTP error code (such as
    // 426 Upgrade Required) and a |Sec-WebSocket-Version| header field indicating the version(s)
    // the server is capable of understanding."
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(
        {
          host: "127.0.0.1",
          port: server.port,
          path: "/ws/version-12",
          headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "12", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
        },
        (r) => {
          r.resume();
          resolve(r);
        },
      );
      req.on("error", reject);
    });
    expect(res.statusCode).toBe(426);
    expect(res.headers["sec-websocket-version"]).toBe("13");
  });

  it("a text frame that is not valid UTF-8 is closed with 1007", async () => {
    // RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
    // byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
    // Connection_" and §7.4.1: "1007 indicates that an endpoint is terminating the connection
    // because it has received data within a message that was not consistent with the type of the
    // message (e.g., non-UTF-8 [RFC3629] data within a text message)."
    const s = await rawSocket(newRoom("utf8"));
    s.send(masked(1, Buffer.from([0x22, 0xc3, 0x28, 0x22])));
    expect(await s.closeCode()).toBe(1007);
  });

  it("a protocol violation (an unmasked client frame, a reserved bit, a reserved opcode) is closed with 1002", async () => {
    // RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame that is not
    // masked. In this case, a server MAY send a Close frame with a status code of 1002 (protocol
    // error)" / §7.4.1: "1002 indicates that an endpoint is terminating the connection due to a
    // protocol error."
    const unmasked = await rawSocket(newRoom("unmasked"));
    unmasked.send(Buffer.concat([Buffer.from([0x81, 2]), Buffer.from("{}")]));
    const rsv = await rawSocket(newRoom("rsv"));
    rsv.send(masked(1, Buffer.from("{}"), 0x40));
    const opcode = await rawSocket(newRoom("opcode"));
    opcode.send(masked(3, Buffer.from("{}")));
    expect([await unmasked.closeCode(), await rsv.closeCode(), await opcode.closeCode()]).toEqual([1002, 1002, 1002]);
  });
});

// ================================================= a second server: service timeout, shutdown

describe("a server with a short service timeout, then shut down", () => {
  let short: RunningServer;
  beforeAll(async () => {
    short = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--service-timeout-ms", "200"]);
  });
  afterAll(async () => {
    await short?.stop();
  });

  it("result.error timeout when a service does not answer within service_timeout", async () => {
    // "`{"t":"result","id":3,"error":{"code":"timeout","reason":"service layout did not answer
    // within 10000 ms"}}`" / "`service_timeout` | 10 s" (here set to 200 ms)
    const c = new Conn(short.wsUrl("timeout"));
    await c.opened;
    c.send({ t: "hello", protocol: 1 });
    await c.next(isWelcome, "welcome");
    c.send({ t: "call", id: 3, service: "slow", args: { ms: 2000 } });
    const r = await c.next(isResult(3), "result 3");
    expect(r.error?.code).toBe("timeout");
    expect(r.ok).toBeUndefined();
  });

  it("1001: the server is shutting down", async () => {
    // "1001 | the server is shutting down (reconnect later)"
    const c = new Conn(short.wsUrl("shutdown"));
    await c.opened;
    c.send({ t: "hello", protocol: 1 });
    await c.next(isWelcome, "welcome");
    const stopped = short.stop();
    expect((await c.waitClosed(10_000)).code).toBe(1001);
    await stopped;
  });
});

// ================================================== document limits at their defaults

describe("document limits at their defaults (docs/protocol.md, Per document)", () => {
  it("tree_depth_max: 128 levels below the root are accepted, the 129th is too_deep", async () => {
    // "`tree_depth_max` | 128 levels below the root | `reject` `too_deep`"
    const { c, w } = await join(newRoom("tree-depth"));
    // `page` is at depth 1: a chain of 127 objects under it reaches depth 128.
    const changes: ChangeJson[] = [];
    let parent = "page";
    for (let i = 1; i <= 127; i++) {
      changes.push({ op: "create", id: `${w.client}:${i}`, type: "Div", parent });
      parent = `${w.client}:${i}`;
    }
    c.send({ t: "action", id: 1, base: w.version, changes });
    const u = await c.next(isUpdate(1), "the chain of 127");
    c.send({ t: "action", id: 2, base: u.v, changes: [{ op: "create", id: `${w.client}:128`, type: "Div", parent }] });
    expect((await c.next(isReject(2), "one level more")).code).toBe("too_deep");
  });

  it("value_depth_max: 32 nested dicts are accepted, 33 are too_large", async () => {
    // "`value_depth_max` | 32 nested lists/dicts in one value | `reject` `too_large`"
    const { c, w } = await join(newRoom("value-depth"));
    const nest = (levels: number): JsonObject => {
      let v: JsonObject = {};
      for (let i = 1; i < levels; i++) v = { k: v };
      return v;
    };
    c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "set", obj: "page", attr: "style", value: nest(32) }] });
    await c.next(isUpdate(1), "32 levels");
    c.send({ t: "action", id: 2, base: w.version, changes: [{ op: "set", obj: "page", attr: "style", value: nest(33) }] });
    expect((await c.next(isReject(2), "33 levels")).code).toBe("too_large");
  });
});

// ============================================ servers with small limits (`serve --limit NAME=VALUE`)

describe("limits set with serve --limit", () => {
  /** A server of the demo preset with these `--limit NAME=VALUE` settings (and `extra` args). */
  async function limited(limits: string[], extra: string[] = ["--memory"]): Promise<RunningServer> {
    return startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--static", "/nonexistent", ...extra, ...limits.flatMap((l) => ["--limit", l])]);
  }
  async function joinAt(s: RunningServer, room: string, extra: JsonObject = {}): Promise<{ c: Conn; w: WelcomeMsg }> {
    const c = new Conn(s.wsUrl(room));
    await c.opened;
    c.send({ t: "hello", protocol: 1, ...extra });
    const w = await c.next(isWelcome, "welcome");
    return { c, w };
  }
  /** Opens a socket and says hello; resolves with the close (the server refused the client). */
  async function refusedAt(s: RunningServer, room: string): Promise<Closed> {
    const c = new Conn(s.wsUrl(room));
    await c.opened;
    c.send({ t: "hello", protocol: 1 });
    return c.waitClosed();
  }
  function metricAt(s: RunningServer, name: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: s.port, path: "/metrics" }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d.toString()));
        res.on("end", () => resolve(Number(new RegExp(`^objectsync_${name} (\\d+)`, "m").exec(body)?.[1] ?? "0")));
      });
      req.on("error", reject);
    });
  }

  it("a limit that cannot work is refused at start, naming it", async () => {
    await expect(limited(["room_inbox_len_max=0"])).rejects.toThrow(/room_inbox_len_max/);
    await expect(limited(["clients_maxx=3"])).rejects.toThrow(/unknown limit/);
  });

  it("clients_per_room_max: past it a client is closed with 4002; other rooms are served", async () => {
    // "`clients_per_room_max` | 1,000 | close 4002" (here 2)
    const s = await limited(["clients_per_room_max=2", "room_known_clients_max=2"]);
    try {
      await joinAt(s, "full");
      await joinAt(s, "full");
      expect((await refusedAt(s, "full")).code).toBe(4002);
      const other = await joinAt(s, "other");
      expect(other.w.t).toBe("welcome");
    } finally {
      await s.stop();
    }
  });

  it("clients_max: past it a client is closed with 4002, in any room; a freed place is taken again", async () => {
    // "`clients_max` | 20,000 per server | close 4002" (here 3)
    const s = await limited(["clients_max=3"]);
    try {
      const first = await joinAt(s, "a");
      await joinAt(s, "b");
      await joinAt(s, "c");
      expect((await refusedAt(s, "d")).code).toBe(4002);
      first.c.ws.close(1000);
      await first.c.waitClosed();
      const deadline = Date.now() + 10_000;
      let joined: WelcomeMsg | null = null;
      while (joined === null && Date.now() < deadline) {
        const c = new Conn(s.wsUrl("d"));
        await c.opened;
        c.send({ t: "hello", protocol: 1 });
        await c.until("a welcome or a close", () => c.closed !== null || c.received.some((r) => r.msg.t === "welcome"));
        joined = c.closed === null ? await c.next(isWelcome, "welcome") : null;
      }
      expect(joined?.t).toBe("welcome");
    } finally {
      await s.stop();
    }
  });

  it("rooms_max: past it a client of another room is closed with 4002; loaded rooms are served", async () => {
    // "`rooms_max` | 10,000 loaded at once | close 4002" (here 2)
    const s = await limited(["rooms_max=2"]);
    try {
      const a = await joinAt(s, "one");
      await joinAt(s, "two");
      expect((await refusedAt(s, "three")).code).toBe(4002);
      a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "still here" }] });
      expect((await a.c.next(isUpdate(1), "update 1")).changes[0]?.value).toBe("still here");
      expect((await joinAt(s, "one")).w.t).toBe("welcome");
    } finally {
      await s.stop();
    }
  });

  it("room_known_clients_max: the oldest disconnected client is forgotten, its resume is a new client", async () => {
    // "a room remembers at most `room_known_clients_max` ... clients, forgetting the disconnected
    // ones that acted longest ago ... a new client (a new id and a snapshot)" (here 2)
    const s = await limited(["room_known_clients_max=2", "clients_per_room_max=2"]);
    try {
      const ids: { client: string; resume_token: string; version: number }[] = [];
      for (let k = 0; k < 3; k++) {
        const { c, w } = await joinAt(s, "known");
        c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: `by ${k}` }] });
        const u = await c.next(isUpdate(1), "update 1");
        ids.push({ client: w.client, resume_token: w.resume_token, version: u.v });
        c.ws.close(1000);
        await c.waitClosed();
      }
      const [oldest, , newest] = ids as [(typeof ids)[0], (typeof ids)[0], (typeof ids)[0]];
      const forgotten = await joinAt(s, "known", { resume: oldest });
      expect(forgotten.w.client).not.toBe(oldest.client);
      expect(forgotten.w.snapshot).toBeDefined();
      forgotten.c.close();
      const kept = await joinAt(s, "known", { resume: newest });
      expect(kept.w.client).toBe(newest.client);
      expect(kept.w.acked).toBe(1);
    } finally {
      await s.stop();
    }
  });

  it("outbound_bytes_max: the client whose message would take the server past it is cut off (4003), well below its own queue's bound", { timeout: 40_000 }, async () => {
    // "`outbound_bytes_max` | 1 GiB waiting for all clients of the server together | close 4003
    // (the client whose message would go over)" (here 2 MiB; each client's own bound stays 16 MiB)
    const s = await limited(["outbound_bytes_max=2MiB"]);
    try {
      const a = await joinAt(s, "global");
      a.c.ws.pause();
      const args = "y".repeat(256 * 1024);
      // 60 results of 256 KiB (15 MiB, below this client's own bound of 16 MiB even before the
      // socket buffers take their part).
      for (let i = 1; i <= 60; i++) a.c.send({ t: "call", id: i, service: "echo", args });
      const deadline = Date.now() + 30_000;
      while ((await metricAt(s, "slow_disconnects_total")) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await metricAt(s, "slow_disconnects_total")).toBe(1);
      const b = await joinAt(s, "global-other");
      b.c.send({ t: "call", id: 1, service: "echo", args: 1 });
      expect((await b.c.next(isResult(1), "result 1")).ok).toEqual({ client: b.w.client, args: 1 });
    } finally {
      await s.stop();
    }
  });

  it("room_inbox_bytes_max: a client that sends more than the inbox holds waits, nothing is dropped, and a message larger than the bound passes", { timeout: 30_000 }, async () => {
    // "`room_inbox_bytes_max` | ... | senders wait (the session stops reading)" (here 16 KiB)
    const s = await limited(["room_inbox_bytes_max=16KiB"]);
    try {
      const a = await joinAt(s, "inbox");
      const n = 60;
      for (let i = 1; i <= n; i++) {
        const value = (i % 10 === 0 ? "z".repeat(64 * 1024) : "w".repeat(4 * 1024)) + i;
        a.c.send({ t: "action", id: i, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value }] });
      }
      await a.c.until(`${n} updates`, () => a.c.all(isUpdate()).length >= n, 20_000);
      expect(a.c.all(isUpdate()).map((u) => u.action)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(a.c.all(isReject())).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it("room_held_bytes_max: with a real SQLite store, a room over it waits for the disk and then acknowledges everything, durably", { timeout: 40_000 }, async () => {
    // "`room_held_bytes_max` | ... messages waiting for the store ... | the room waits" (here 8 KiB)
    const data = fs.mkdtempSync(path.join(os.tmpdir(), "objectsync-held-"));
    try {
      let s = await limited(["room_held_bytes_max=8KiB"], ["--data", data]);
      const a = await joinAt(s, "held");
      const n = 80;
      for (let i = 1; i <= n; i++) {
        const value = (i % 20 === 0 ? "h".repeat(32 * 1024) : "g".repeat(2 * 1024)) + i;
        a.c.send({ t: "action", id: i, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value }] });
      }
      await a.c.until(`${n} updates`, () => a.c.all(isUpdate()).length >= n, 30_000);
      expect(a.c.all(isReject())).toEqual([]);
      const last = a.c.all(isUpdate()).at(-1) as UpdateMsg;
      expect(last.action).toBe(n);
      await s.stop();
      s = await limited([], ["--data", data]);
      try {
        const b = await joinAt(s, "held");
        expect(b.w.version).toBe(last.v);
        const name = findNode(nested(b.w).root, "graph")?.attrs?.name as string;
        expect([name.length, name.slice(-3)]).toEqual([32 * 1024 + 2, "h80"]);
      } finally {
        await s.stop();
      }
    } finally {
      fs.rmSync(data, { recursive: true, force: true });
    }
  });

  it("string_len_max: a string of the limit's bytes is accepted, one byte more is too_large", async () => {
    // "`string_len_max` | 1 MiB (1,048,576 bytes) per string | `reject` `too_large`" (here 1 KiB)
    const s = await limited(["string_len_max=1KiB"]);
    try {
      const { c, w } = await joinAt(s, "strings");
      c.send({ t: "action", id: 1, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "é".repeat(512) }] });
      await c.next(isUpdate(1), "update 1");
      c.send({ t: "action", id: 2, base: w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "x".repeat(1025) }] });
      expect((await c.next(isReject(2), "reject 2")).code).toBe("too_large");
    } finally {
      await s.stop();
    }
  });

  it("objects_max: creating past the room's object limit is too_large", async () => {
    // "`objects_max` | 2,000,000 objects per room | `reject` `too_large`" (here the room's objects + 2)
    const probe = await limited([]);
    let count = 0;
    try {
      const { w } = await joinAt(probe, "objects");
      const countAll = (n: NestedNode): number => 1 + (n.children ?? []).reduce((a, c) => a + countAll(c), 0);
      count = countAll(nested(w).root);
    } finally {
      await probe.stop();
    }
    const s = await limited([`objects_max=${count + 2}`]);
    try {
      const { c, w } = await joinAt(s, "objects");
      const create = (id: number) => c.send({ t: "action", id, base: w.version, changes: [{ op: "create", id: `${w.client}:${id}`, type: "Div", parent: "page" }] });
      create(1);
      create(2);
      create(3);
      await c.next(isUpdate(2), "update 2");
      expect((await c.next(isReject(3), "reject 3")).code).toBe("too_large");
    } finally {
      await s.stop();
    }
  });

  it("text_history_len_max and text_history_versions_max: a text edit based too far back is text_base_too_old, a recent one is transformed", async () => {
    // "`text_history_len_max` | 512 edits kept per string attribute | `reject` `text_base_too_old`"
    // / "`text_history_versions_max` | 10,000 versions" (here 4 edits and 8 versions)
    const s = await limited(["text_history_len_max=4", "text_history_versions_max=8"]);
    try {
      const a = await joinAt(s, "text-history");
      const b = await joinAt(s, "text-history");
      let v = a.w.version;
      const edit = async (who: { c: Conn; w: WelcomeMsg }, id: number, base: number) => {
        who.c.send({ t: "action", id, base, changes: [{ op: "text_insert", obj: "hello", attr: "text", pos: 0, text: "a" }] });
        const mine = (m: Flat): m is UpdateMsg | RejectMsg => (m.t === "update" && m.origin === who.w.client && m.action === id) || (m.t === "reject" && m.action === id);
        return who.c.next(mine, `the answer to ${id}`);
      };
      // Three edits by a: b's edit based before them is transformed past them.
      for (let i = 1; i <= 3; i++) v = ((await edit(a, i, v)) as UpdateMsg).v;
      expect((await edit(b, 1, b.w.version)).t).toBe("update");
      // Two more (five past b's base; four kept): too old.
      for (let i = 4; i <= 5; i++) v = ((await edit(a, i, v)) as UpdateMsg).v;
      const tooOld = await edit(b, 2, b.w.version);
      expect(tooOld.t === "reject" && tooOld.code).toBe("text_base_too_old");
      // Versions: after 9 versions of other changes, an edit based before them is too old even
      // though the text has had no edit since.
      const base = v;
      for (let i = 6; i <= 14; i++) {
        a.c.send({ t: "action", id: i, base: v, changes: [{ op: "set", obj: "graph", attr: "name", value: `${i}` }] });
        v = (await a.c.next(isUpdate(i), `update ${i}`)).v;
      }
      const stale = await edit(b, 3, base);
      expect(stale.t === "reject" && stale.code).toBe("text_base_too_old");
    } finally {
      await s.stop();
    }
  });

  it("undo_steps_max: a client keeps its last steps only", async () => {
    // "`undo_steps_max` | 200 undo steps per client | oldest steps dropped" (here 3)
    const s = await limited(["undo_steps_max=3", "undo_merge_window_ms=0"]);
    try {
      const { c, w } = await joinAt(s, "undo-steps");
      let v = w.version;
      for (let i = 1; i <= 5; i++) {
        c.send({ t: "action", id: i, base: v, changes: [{ op: "set", obj: "graph", attr: "name", value: `${i}` }] });
        v = (await c.next(isUpdate(i), `update ${i}`)).v;
      }
      const answers: string[] = [];
      for (let id = 6; id <= 10; id++) {
        c.send({ t: "undo", id });
        const m = await c.next((x: Flat): x is UpdateMsg | RejectMsg => (x.t === "update" || x.t === "reject") && x.action === id, `undo ${id}`);
        answers.push(m.t === "update" ? "undone" : m.code);
      }
      expect(answers).toEqual(["undone", "undone", "undone", "nothing_to_undo", "nothing_to_undo"]);
    } finally {
      await s.stop();
    }
  });

  it("room_log_versions_max and room_log_bytes_max: a resume within the window gets a catch-up, past it a snapshot", async () => {
    // "The room keeps its last `room_log_versions_max` (10,000) updates, at most
    // `room_log_bytes_max` (64 MiB) of them ... older resumes get a snapshot" (here 5 and 64 KiB)
    const s = await limited(["room_log_versions_max=5", "room_log_bytes_max=64KiB"]);
    try {
      const writer = await joinAt(s, "window");
      let v = writer.w.version;
      const write = async (n: number, size: number) => {
        for (let i = 0; i < n; i++) {
          const id = v + 1000;
          writer.c.send({ t: "action", id, base: v, changes: [{ op: "set", obj: "graph", attr: "name", value: "n".repeat(size) }] });
          v = (await writer.c.next(isUpdate(id), `update ${id}`)).v;
        }
      };
      const away = await joinAt(s, "window");
      const at = away.w.version;
      away.c.ws.close(1000);
      await away.c.waitClosed();
      const resume = (version: number) => ({ resume: { client: away.w.client, resume_token: away.w.resume_token, version } });
      await write(3, 10);
      const within = await joinAt(s, "window", resume(at));
      expect(within.w.snapshot).toBeUndefined();
      within.c.close();
      const at2 = v;
      await write(6, 10);
      const pastVersions = await joinAt(s, "window", resume(at2));
      expect(pastVersions.w.snapshot).toBeDefined();
      pastVersions.c.close();
      const at3 = v;
      await write(4, 20_000);
      const pastBytes = await joinAt(s, "window", resume(at3));
      expect(pastBytes.w.snapshot).toBeDefined();
    } finally {
      await s.stop();
    }
  });

  it("ping_interval_ms: the server pings at its interval", async () => {
    // "`ping_interval_ms` | a WebSocket ping every 10 s" (here every 100 ms)
    const s = await limited(["ping_interval_ms=100"]);
    try {
      const { c } = await joinAt(s, "pings");
      await c.until("three pings", () => c.pings >= 3, 5_000);
    } finally {
      await s.stop();
    }
  });

  it("room_unload_grace_ms: a room with no clients is unloaded after the grace, and loads again with its state", async () => {
    // "`room_unload_grace_ms` | 30 s with no clients and no commands | the room is saved and unloaded" (here 100 ms)
    const data = fs.mkdtempSync(path.join(os.tmpdir(), "objectsync-unload-"));
    const s = await limited(["room_unload_grace_ms=100"], ["--data", data]);
    try {
      const a = await joinAt(s, "unloads");
      a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "set", obj: "graph", attr: "name", value: "kept" }] });
      await a.c.next(isUpdate(1), "update 1");
      expect(await metricAt(s, "rooms")).toBe(1);
      a.c.ws.close(1000);
      await a.c.waitClosed();
      const deadline = Date.now() + 10_000;
      while ((await metricAt(s, "rooms")) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await metricAt(s, "rooms")).toBe(0);
      const b = await joinAt(s, "unloads");
      expect(findNode(nested(b.w).root, "graph")?.attrs?.name).toBe("kept");
    } finally {
      await s.stop();
      fs.rmSync(data, { recursive: true, force: true });
    }
  });

  describe("undo in bytes (docs/model.md, Undo)", () => {
    /** Counts this client's undo steps by undoing until `nothing_to_undo`. */
    async function undoAll(c: Conn, firstId: number): Promise<number> {
      for (let id = firstId; id < firstId + 100; id++) {
        c.send({ t: "undo", id });
        const answer = await c.next((m: Flat): m is UpdateMsg | RejectMsg => (m.t === "update" && m.action === id) || (m.t === "reject" && m.action === id), `the answer to undo ${id}`);
        if (answer.t === "reject") {
          expect(answer.code).toBe("nothing_to_undo");
          return id - firstId;
        }
      }
      throw new Error("more than 100 undo steps");
    }
    async function setName(c: Conn, id: number, base: number, value: string): Promise<number> {
      c.send({ t: "action", id, base, changes: [{ op: "set", obj: "graph", attr: "name", value }] });
      return (await c.next(isUpdate(id), `update ${id}`)).v;
    }

    it("undo_step_bytes_max: edits in one merge window stop merging at the bound", async () => {
      // "a step stops growing by merging at `undo_step_bytes_max`" (here 64 KiB; 8 edits of 20 KB
      // within the 500 ms window would otherwise be one step)
      const s = await limited(["undo_step_bytes_max=64KiB"]);
      try {
        const { c, w } = await joinAt(s, "step");
        let v = w.version;
        for (let i = 1; i <= 8; i++) v = await setName(c, i, v, `${i}`.repeat(20_000));
        const steps = await undoAll(c, 100);
        expect(steps).toBeGreaterThan(1);
        expect(steps).toBeLessThan(8);
      } finally {
        await s.stop();
      }
    });

    it("undo_client_bytes_max: a client's oldest steps are dropped past the bound, the newest kept", async () => {
      // "a client's history holds at most `undo_client_bytes_max` (... oldest steps dropped first)"
      // (here 200 KiB, steps of about 100 KB made apart with undo_merge_window_ms 0)
      const s = await limited(["undo_client_bytes_max=200KiB", "undo_merge_window_ms=0"]);
      try {
        const { c, w } = await joinAt(s, "client-bytes");
        let v = w.version;
        for (let i = 1; i <= 6; i++) v = await setName(c, i, v, `${i}`.repeat(50_000));
        const steps = await undoAll(c, 100);
        expect(steps).toBeGreaterThanOrEqual(1);
        expect(steps).toBeLessThan(6);
        // The newest steps were kept: undoing them went back to an edit of this client.
        const check = await joinAt(s, "client-bytes");
        const name = findNode(nested(check.w).root, "graph")?.attrs?.name as string;
        expect(name.length === 50_000 && Number(name[0]) === 6 - steps).toBe(true);
      } finally {
        await s.stop();
      }
    });

    it("undo_room_bytes_max: past it the histories of clients that left go first", async () => {
      // "a room's histories together at most `undo_room_bytes_max`: past it the histories of
      // clients that left go first" (here 300 KiB)
      const s = await limited(["undo_room_bytes_max=300KiB", "undo_merge_window_ms=0"]);
      try {
        const gone = await joinAt(s, "room-bytes");
        let v = await setName(gone.c, 1, gone.w.version, "a".repeat(50_000));
        v = await setName(gone.c, 2, v, "b".repeat(50_000));
        gone.c.ws.close(1000);
        await gone.c.waitClosed();
        const stays = await joinAt(s, "room-bytes");
        v = stays.w.version;
        for (let i = 1; i <= 2; i++) v = await setName(stays.c, i, v, `${i}`.repeat(50_000));
        // The one who left comes back: its history is gone, the one who stayed keeps its own.
        const back = await joinAt(s, "room-bytes", { resume: { client: gone.w.client, resume_token: gone.w.resume_token, version: v } });
        expect(back.w.client).toBe(gone.w.client);
        expect(back.w.undo_steps ?? 0).toBe(0);
        expect(await undoAll(stays.c, 100)).toBe(2);
      } finally {
        await s.stop();
      }
    });
  });
});

// ============================== the conformance preset: every kind and every hook of the server

describe("objectsync serve --preset conformance", () => {
  let conf: RunningServer;
  let rooms = 0;
  beforeAll(async () => {
    conf = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--preset", "conformance"]);
  });
  afterAll(async () => {
    await conf?.stop();
  });
  async function joinConf(extra: JsonObject = {}, room = `conf-${++rooms}`): Promise<{ c: Conn; w: WelcomeMsg; room: string }> {
    const c = new Conn(conf.wsUrl(room));
    await c.opened;
    c.send({ t: "hello", protocol: 1, ...extra });
    const w = await c.next(isWelcome, "welcome");
    return { c, w, room };
  }
  const isEvents =
    (action: number) =>
    (m: Flat): m is EventsMsg =>
      m.t === "events" && m.action === action;

  it("GET /types gives every attribute's kind and default", async () => {
    // "`GET /types` answers the room's SObject types as JSON: every type with its attributes,
    // each with its `kind` and `default`"
    const res = await fetch(`http://${new URL(conf.wsUrl("x")).host}/types`);
    const body = (await res.json()) as { types: { name: string; attrs: { name: string; kind: string; default: Json }[] }[] };
    const item = body.types.find((t) => t.name === "Item");
    const kinds = Object.fromEntries((item?.attrs ?? []).map((a) => [a.name, a.kind]));
    expect(kinds).toEqual({
      label: "string", count: "int", weight: "float", done: "bool", meta: "dict", tags: "list",
      flags: "set", ping: "event", link: "ref", links: "ref_list", named: "ref_dict",
    });
    expect(item?.attrs.find((a) => a.name === "weight")?.default).toBe(1.5);
  });

  it("add, set_add/set_remove, ref, ref_list, ref_dict changes are applied and broadcast", async () => {
    // The Changes table: `add` (int, float), `set_add`/`set_remove` (set), `set` of a `ref`,
    // `list_insert` on a `ref_list`, `dict_set` on a `ref_dict`.
    const a = await joinConf();
    const b = await joinConf({}, a.room);
    const changes: ChangeJson[] = [
      { op: "add", obj: "item", attr: "count", value: 5 },
      { op: "add", obj: "item", attr: "weight", value: 0.25 },
      { op: "set_add", obj: "item", attr: "flags", value: "x" },
      { op: "set_add", obj: "item", attr: "flags", value: 3 },
      { op: "set_remove", obj: "item", attr: "flags", value: "x" },
      { op: "set", obj: "item", attr: "link", value: "target" },
      { op: "list_insert", obj: "item", attr: "links", value: "target" },
      { op: "dict_set", obj: "item", attr: "named", key: "t", value: "target" },
      { op: "set", obj: "item", attr: "done", value: true },
    ];
    a.c.send({ t: "action", id: 1, base: a.w.version, changes });
    const u = await b.c.next(isUpdate(1, a.w.client), "the update at b");
    expect(u.changes.map((c) => c.op)).toEqual(changes.map((c) => c.op));
    const fresh = await joinConf({}, a.room);
    const item = findNode(nested(fresh.w).root, "item")?.attrs ?? {};
    expect([item.count, item.weight, item.flags, item.link, item.links, item.named, item.done]).toEqual([5, 1.75, [3], "target", ["target"], { t: "target" }, true]);
    // Deleting the target clears every reference to it, as separate steps in the same update.
    a.c.send({ t: "action", id: 2, base: u.v, changes: [{ op: "delete", id: "target" }] });
    const d = await b.c.next(isUpdate(2, a.w.client), "the delete at b");
    expect(d.changes.map((c) => c.op)).toEqual(["set", "list_remove", "dict_remove", "delete"]);
  });

  it("emit: an `events` message to everyone, no version, never replayed", async () => {
    // "`events` ... An accepted action that only emitted events: delivered to every client in
    // order with updates, but it changes no state and takes no version"
    const a = await joinConf();
    const b = await joinConf({}, a.room);
    a.c.send({ t: "action", id: 1, base: a.w.version, changes: [{ op: "emit", obj: "item", attr: "ping", args: { n: 1 } }] });
    const e = await b.c.next(isEvents(1), "the events at b");
    expect([e.v, e.origin, e.changes[0]?.op]).toEqual([a.w.version, a.w.client, "emit"]);
    const fresh = await joinConf({}, a.room);
    expect(fresh.w.version).toBe(a.w.version);
  });

  it("invalid (a validator), custom (server code), denied (the permission rule), dangling_ref", async () => {
    // Error codes: "`invalid` | a validator of the type refused the value", "`custom` | server
    // code refused with its own reason", "`denied` | the permission hook refused this client
    // the change", "`dangling_ref` | a reference names an object that does not exist"
    const a = await joinConf();
    const cases: [ChangeJson, string][] = [
      [{ op: "set", obj: "item", attr: "count", value: -1 }, "invalid"],
      [{ op: "set", obj: "item", attr: "label", value: "forbidden" }, "custom"],
      [{ op: "set", obj: "owned-item", attr: "label", value: "mine" }, "denied"],
      [{ op: "create", id: `${a.w.client}:1`, type: "Item", parent: "lane-owned" }, "denied"],
      [{ op: "set", obj: "item", attr: "link", value: "ghost" }, "dangling_ref"],
    ];
    let id = 0;
    for (const [change, code] of cases) {
      a.c.send({ t: "action", id: ++id, base: a.w.version, changes: [change] });
      expect((await a.c.next(isReject(id), `reject ${id}`)).code).toBe(code);
    }
    // Inside the open lane the same client may create.
    a.c.send({ t: "action", id: ++id, base: a.w.version, changes: [{ op: "create", id: `${a.w.client}:2`, type: "Item", parent: "lane-open" }] });
    await a.c.next(isUpdate(id), "the create in the open lane");
  });

  it("read_only: a welcome says so and every action is refused with read_only", async () => {
    // "`read_only` | `true` if this client may not change anything (its actions get `reject`
    // with code `read_only`)"
    const r = await joinConf({ token: "readonly" });
    expect(r.w.read_only).toBe(true);
    r.c.send({ t: "action", id: 1, base: r.w.version, changes: [{ op: "set", obj: "item", attr: "done", value: true }] });
    expect((await r.c.next(isReject(1), "reject 1")).code).toBe("read_only");
    // It still receives what others do.
    const w = await joinConf({}, r.room);
    w.c.send({ t: "action", id: 1, base: w.w.version, changes: [{ op: "set", obj: "item", attr: "done", value: true }] });
    await r.c.next(isUpdate(1, w.w.client), "the writer's update");
  });

  it("4001: the auth hook refused", async () => {
    // "4001 | unauthorized (the auth hook refused)"
    const c = new Conn(conf.wsUrl("conf-refused"));
    await c.opened;
    c.send({ t: "hello", protocol: 1, token: "refuse" });
    const closed = await c.waitClosed(10_000);
    expect(closed.code).toBe(4001);
    expect(closed.reason).toContain("refused");
  });

  it("server code's changes come as updates with origin server and no action", async () => {
    // "`origin` is the client id that caused it (`"server"` for server code); `action` is that
    // client's action id (absent for server code)"
    const a = await joinConf();
    a.c.send({ t: "call", id: 1, service: "tick" });
    const u = await a.c.next(isUpdate(undefined, "server"), "the server's update");
    expect(u.action).toBeUndefined();
    expect(u.v).toBe(a.w.version + 1);
    expect((await a.c.next(isResult(1), "result 1")).ok).toBe(1);
  });
});

// ============================================================== who is connecting (identity)

describe("identity, origins and places (--preset conformance, token user:NAME)", () => {
  let srv: RunningServer;
  let rooms = 0;
  beforeAll(async () => {
    srv = await startBinary(SERVER_BIN, [
      "serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--preset", "conformance",
      "--limit", "connections_per_address_max=6", "--limit", "connections_per_user_max=2",
    ]);
  });
  afterAll(async () => {
    await srv?.stop();
  });
  async function joinAs(token: string | null, room: string, options: WebSocket.ClientOptions = {}): Promise<{ c: Conn; w: WelcomeMsg }> {
    const c = new Conn(srv.wsUrl(room), options);
    await c.opened;
    c.send({ t: "hello", protocol: 1, ...(token === null ? {} : { token }) });
    return { c, w: await c.next(isWelcome, "welcome") };
  }

  it("connections_per_address_max: past it a connection is closed with 4007 before hello; another address connects", async () => {
    // "`connections_per_address_max` | ... counted before `hello` | close 4007" (here 6)
    // First in this block: no earlier socket of this server holds a place.
    const room = `address-cap-${++rooms}`;
    const held: Conn[] = [];
    for (let i = 0; i < 6; i++) {
      const c = new Conn(srv.wsUrl(room));
      await c.opened;
      held.push(c);
    }
    const over = new Conn(srv.wsUrl(room));
    await over.opened;
    expect((await over.waitClosed()).code).toBe(4007);
    const other = await joinAs(null, room, { localAddress: "127.0.0.2" });
    expect(other.w.t).toBe("welcome");
    other.c.close();
    for (const c of held) c.close();
  });

  it("welcome.identity says who the client is; presence and welcome.users carry the server's word, not the client's", async () => {
    // "`identity` | who this client is, as the server's auth hook said" / "`user` is the
    // client's identity ... the server's word, which the client's own `state` cannot change"
    const room = `who-${++rooms}`;
    const ann = await joinAs("user:ann", room);
    expect((ann.w as WelcomeMsg & { identity?: Json }).identity).toEqual({ id: "ann", name: "User ann" });
    const anon = await joinAs(null, room);
    expect((anon.w as WelcomeMsg & { identity?: Json }).identity).toBeUndefined();
    ann.c.send({ t: "presence", state: { name: "Someone Else", user: "root" } });
    const p = (await anon.c.next(isPresence(ann.w.client), "ann's presence")) as PresenceMsg & { user?: Json };
    expect(p.user).toEqual({ id: "ann", name: "User ann" });
    expect(p.state).toEqual({ name: "Someone Else", user: "root" });
    const late = await joinAs(null, room);
    expect((late.w as WelcomeMsg & { users?: Record<string, Json> }).users?.[ann.w.client]).toEqual({ id: "ann", name: "User ann" });
    ann.c.send({ t: "call", id: 1, service: "whoami", args: null });
    expect((await ann.c.next(isResult(1), "whoami")).ok).toBe("ann");
    for (const x of [ann, anon, late]) x.c.close();
  });

  it("the permission hook sees the identity: user nobody may edit inside lane-owned on both its connections; others are denied", async () => {
    // "any change inside `lane-owned` is refused `denied` (the permission rule) except by the user
    // `nobody` (token `user:nobody`, on any of its connections)"
    const room = `owner-${++rooms}`;
    const set = (c: Conn, id: number, base: number, value: string) =>
      c.send({ t: "action", id, base, changes: [{ op: "set", obj: "owned-item", attr: "label", value }] });
    const first = await joinAs("user:nobody", room);
    const second = await joinAs("user:nobody", room);
    const other = await joinAs("user:eve", room);
    set(first.c, 1, first.w.version, "by nobody");
    const u = await first.c.next(isUpdate(1, first.w.client), "nobody's first edit");
    set(second.c, 1, u.v, "by nobody, other tab");
    // Not isUpdate(1) alone: first's update (also action 1) reaches second as well.
    await second.c.next(isUpdate(1, second.w.client), "nobody's second connection");
    set(other.c, 1, u.v + 1, "by eve");
    expect((await other.c.next(isReject(1), "eve's edit")).code).toBe("denied");
    for (const x of [first, second, other]) x.c.close();
  });

  it("a resume with another identity is a new client; the same identity resumes", async () => {
    // "a client's resume is refused if the identity changed" (docs: a resume by another user is a new client)
    const room = `resume-${++rooms}`;
    const ann = await joinAs("user:ann", room);
    ann.c.close();
    const resume = { client: ann.w.client, resume_token: ann.w.resume_token, version: ann.w.version };
    const c = new Conn(srv.wsUrl(room));
    await c.opened;
    c.send({ t: "hello", protocol: 1, token: "user:bob", resume });
    const bob = await c.next(isWelcome, "bob's welcome");
    expect(bob.client).not.toBe(ann.w.client);
    c.close();
    const d = new Conn(srv.wsUrl(room));
    await d.opened;
    d.send({ t: "hello", protocol: 1, token: "user:ann", resume });
    expect((await d.next(isWelcome, "ann's welcome")).client).toBe(ann.w.client);
    d.close();
  });

  it("a cross-origin browser upgrade is answered 403; the server's own origin and no Origin are let in", async () => {
    // "A browser's upgrade whose `Origin` is not the server's own ... is answered `403`"
    const evil = new Conn(srv.wsUrl(`origin-${++rooms}`), { headers: { Origin: "http://evil.example" } });
    await evil.until("a refusal", () => evil.closed !== null);
    expect(evil.httpStatus).toBe(403);
    const own = await joinAs(null, `origin-${++rooms}`, { headers: { Origin: `http://${srv.address}` } });
    expect(own.w.t).toBe("welcome");
    own.c.close();
  });

  it("connections_per_user_max: a user's third connection is closed with 4007, another user's is not", async () => {
    // "`connections_per_user_max` | ... (here 2) | close 4007"
    const room = `user-cap-${++rooms}`;
    const one = await joinAs("user:cat", room);
    const two = await joinAs("user:cat", room);
    const third = new Conn(srv.wsUrl(room));
    await third.opened;
    third.send({ t: "hello", protocol: 1, token: "user:cat" });
    expect((await third.waitClosed()).code).toBe(4007);
    const dog = await joinAs("user:dog", room);
    expect(dog.w.t).toBe("welcome");
    for (const x of [one, two, dog]) x.c.close();
  });

});
