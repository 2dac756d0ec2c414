import { describe, expect, it } from "vitest";
import type { TreeDiff } from "./diff.js";
import type { ActionMessage, Change, ClientMessage, JsonValue, NodeSnapshot, WelcomeMessage } from "./protocol.js";
import { DecodeError, decodeServerMessage } from "./protocol.js";
import type { Outcome, Rejection } from "./rebase.js";
import { Rebase } from "./rebase.js";
import { Rng } from "./testing/random.js";
import type { ServerSession } from "./testing/sim-server.js";
import { SimServer } from "./testing/sim-server.js";

const ROOT: NodeSnapshot = {
  id: "root",
  type: "Root",
  children: [{ id: "n", type: "Note", attrs: { text: "", title: "hello", pos: { x: 0 }, tags: [] } }],
};

/** One client: a Rebase wired to a simulated room through explicit in/out queues. */
class Peer {
  readonly rebase = new Rebase();
  readonly inbox: string[] = [];
  readonly outbox: ClientMessage[] = [];
  readonly rejected: Rejection[] = [];
  /** Per server `reject`, in order: [code, whether the action was doomed here already]. */
  readonly serverRejects: [string, boolean][] = [];
  readonly diffs: TreeDiff[] = [];
  resyncs: string[] = [];
  session: ServerSession;
  constructor(readonly server: SimServer) {
    this.session = server.connect((t) => this.inbox.push(t));
    this.outbox.push({ t: "hello", protocol: 1 });
  }
  /** Delivers up to `n` client -> server messages. */
  up(n = Infinity): void {
    for (let i = 0; i < n && this.outbox.length > 0; i++) this.session.receive(JSON.stringify(this.outbox.shift()));
  }
  /** Delivers up to `n` server -> client messages. */
  down(n = Infinity): void {
    for (let i = 0; i < n && this.inbox.length > 0; i++) {
      const m = decodeServerMessage(this.inbox.shift() as string);
      if (m instanceof DecodeError) throw new Error(m.reason);
      let o: Outcome | null = null;
      if (m.t === "welcome") o = this.rebase.onWelcome(m);
      else if (m.t === "update") o = this.rebase.onUpdate(m);
      else if (m.t === "events") o = this.rebase.onEvents(m);
      else if (m.t === "reject") {
        this.serverRejects.push([m.code, this.rebase.pending.find((p) => p.id === m.action)?.doomed ?? false]);
        o = this.rebase.onReject(m);
      }
      if (o !== null) this.take(o);
    }
  }
  take(o: Outcome): void {
    this.outbox.push(...o.send);
    this.rejected.push(...o.rejected);
    this.diffs.push(...o.diffs);
    if (o.resync !== null) this.resyncs.push(o.resync);
  }
  /** Both directions until quiet. */
  sync(): void {
    for (let guard = 0; guard < 1000 && (this.outbox.length > 0 || this.inbox.length > 0); guard++) {
      this.up();
      this.down();
    }
  }
  edit(...changes: Change[]): void {
    this.rebase.begin();
    for (const c of changes) {
      const err = this.rebase.stage(c);
      if (err !== null) throw new Error(err.reason);
    }
    this.take(this.rebase.commit().outcome);
  }
  insert(pos: number, text: string, attr = "text"): void {
    this.edit({ op: "text_insert", obj: "n", attr, pos, text });
  }
  remove(pos: number, len: number, attr = "text"): void {
    this.edit({ op: "text_delete", obj: "n", attr, pos, len });
  }
  value(attr: string, obj = "n"): JsonValue | undefined {
    return this.rebase.local?.get(obj)?.attrs.get(attr);
  }
  confirmed(attr: string, obj = "n"): JsonValue | undefined {
    return this.rebase.mirror?.get(obj)?.attrs.get(attr);
  }
  sentActions(): ActionMessage[] {
    return this.server.received.filter(([c, m]) => c === this.rebase.clientId && m.t === "action").map(([, m]) => m as unknown as ActionMessage);
  }
}

function room(): SimServer {
  return new SimServer({ root: ROOT });
}

describe("local edits", () => {
  it("apply at once, are sent with base = confirmed version, and an ack changes nothing locally", () => {
    const server = room();
    server.serverChange([{ op: "set", obj: "n", attr: "title", value: "v1" }]);
    const p = new Peer(server);
    p.sync();
    p.edit({ op: "set", obj: "n", attr: "title", value: "mine" });
    expect(p.value("title")).toBe("mine");
    expect(p.confirmed("title")).toBe("v1");
    expect(p.outbox).toEqual([{ t: "action", id: 1, base: 1, changes: [{ op: "set", obj: "n", attr: "title", value: "mine" }] }]);
    const before = p.diffs.length;
    p.sync();
    expect(p.rebase.pending).toHaveLength(0);
    expect(p.confirmed("title")).toBe("mine");
    expect(p.diffs.slice(before).every((d) => d.attrs.length === 0 && d.created.length === 0)).toBe(true);
  });

  it("send one text action per attribute at a time; typing meanwhile merges into one waiting action", () => {
    const p = new Peer(room());
    p.sync();
    p.insert(0, "a");
    p.insert(1, "b");
    p.insert(2, "c");
    p.edit({ op: "set", obj: "n", attr: "title", value: "t" }); // waits behind, FIFO
    p.insert(3, "d"); // not merged: the last waiting action is not typing
    expect(p.outbox).toHaveLength(1);
    expect(p.rebase.pending.map((a) => a.changes)).toEqual([
      [{ op: "text_insert", obj: "n", attr: "text", pos: 0, text: "a" }],
      [{ op: "text_insert", obj: "n", attr: "text", pos: 1, text: "bc" }],
      [{ op: "set", obj: "n", attr: "title", value: "t" }],
      [{ op: "text_insert", obj: "n", attr: "text", pos: 3, text: "d" }],
    ]);
    expect(p.value("text")).toBe("abcd");
    p.up();
    p.down(); // ack of "a": "bc" and the set go out (the set is on another attribute)
    expect(p.outbox.map((m) => (m.t === "action" ? [m.id, m.base] : null))).toEqual([
      [2, 1],
      [3, 1],
    ]);
    p.sync();
    expect(p.server.value("n", "text")).toBe("abcd");
    expect(p.server.value("n", "title")).toBe("t");
    expect(p.rebase.pending).toHaveLength(0);
  });

  it("a transaction is one action; an aborted one leaves nothing", () => {
    const p = new Peer(room());
    p.sync();
    p.rebase.begin();
    p.rebase.stage({ op: "set", obj: "n", attr: "title", value: "x" });
    expect(p.value("title")).toBe("x");
    p.rebase.abort();
    expect(p.value("title")).toBe("hello");
    p.edit({ op: "set", obj: "n", attr: "title", value: "y" }, { op: "dict_set", obj: "n", attr: "pos", key: "x", value: 3 });
    expect(p.outbox).toHaveLength(1);
    p.sync();
    expect(p.server.value("n", "pos")).toEqual({ x: 3 });
  });
});

describe("server answers", () => {
  it("a reject removes exactly that action; later pending actions stay applied", () => {
    const p = new Peer(room());
    p.sync();
    p.insert(0, "abc"); // 1, sent
    p.edit({ op: "set", obj: "n", attr: "title", value: "T" }); // 2, another attribute: sent
    p.insert(3, "d"); // 3, waits
    p.insert(4, "e"); // merges into 3
    expect(p.value("text")).toBe("abcde");
    expect(p.outbox.map((m) => m.t === "action" && m.id)).toEqual([1, 2]);
    p.outbox.shift(); // action 1 never reaches this server: only the reject below matters
    const o = p.rebase.onReject({ t: "reject", action: 1, code: "invalid", reason: "no abc", change: 0 });
    p.take(o);
    expect(o.rejected.map((r) => [r.action.id, r.code, r.reason])).toEqual([[1, "invalid", "no abc"]]);
    expect(p.value("text")).toBe("de");
    expect(p.value("title")).toBe("T");
    expect(p.rebase.pending.map((a) => a.id)).toEqual([2, 3]);
    expect(p.rebase.pending[1]?.changes).toEqual([{ op: "text_insert", obj: "n", attr: "text", pos: 0, text: "de" }]);
    // The local view reported exactly the rollback.
    expect(o.diffs[0]?.attrs).toEqual([{ obj: "n", attr: "text", events: [{ type: "textDelete", pos: 0, len: 3, text: "abc" }], value: "de" }]);
    // The rest goes out and lands.
    p.sync();
    expect(p.sentActions().map((a) => a.id)).toEqual([2, 3]);
    expect(p.server.value("n", "text")).toBe("de");
  });

  it("a real server reject rolls back and reports code and change index", () => {
    const p = new Peer(room());
    p.sync();
    p.edit({ op: "create", id: `${p.rebase.clientId}:1`, type: "Note", parent: "n" }, { op: "create", id: "stolen:1", type: "Note", parent: "n" });
    expect(p.rebase.local?.has(`${p.rebase.clientId}:1`)).toBe(true);
    p.sync();
    expect(p.rejected.map((r) => [r.code, r.change])).toEqual([["bad_id", 1]]);
    expect(p.rebase.local?.has(`${p.rebase.clientId}:1`)).toBe(false);
    expect(p.diffs.at(-1)?.destroyed.map((d) => d.id).sort()).toEqual(["c1:1", "stolen:1"]);
  });

  it("interleaves local edits with remote updates, keeping local positions right", () => {
    const server = room();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.insert(0, "hello world");
    a.sync();
    b.sync();
    // b edits while a's edits are in flight; a keeps typing before b's edit arrives.
    b.insert(0, ">> ");
    b.up();
    a.insert(5, ",");
    a.up();
    a.insert(12, "!"); // waits
    a.down(); // b's insert arrives, then a's own ack
    expect(a.value("text")).toBe(">> hello, world!");
    expect(a.rebase.pending.at(-1)?.changes).toEqual([{ op: "text_insert", obj: "n", attr: "text", pos: 15, text: "!" }]);
    a.sync();
    b.sync();
    expect(server.value("n", "text")).toBe(">> hello, world!");
    expect(b.value("text")).toBe(">> hello, world!");
    // b's view saw the remote insert as one fine-grained event.
    expect(b.diffs.flatMap((d) => d.attrs.flatMap((x) => x.events))).toContainEqual({ type: "textInsert", pos: 15, text: "!" });
  });

  it("two clients typing at the same place converge (ties by client id)", () => {
    const server = room();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.insert(0, "ab");
    a.sync();
    b.sync();
    // Both type at position 1, several keystrokes each, messages crossing.
    for (const ch of ["1", "2", "3"]) {
      a.insert(1 + "123".indexOf(ch), ch);
      b.insert(1 + "123".indexOf(ch), ch.replace(/\d/, (d) => "xyz"[Number(d) - 1] as string));
    }
    b.up();
    a.up();
    a.sync();
    b.sync();
    a.sync();
    const text = server.value("n", "text");
    expect(a.value("text")).toBe(text);
    expect(b.value("text")).toBe(text);
    // c1 < c2: a's text goes first at the shared position.
    expect(text).toBe("a123xyzb");
    expect([...a.rejected, ...b.rejected]).toEqual([]);
    expect(a.rebase.mispredicted + b.rebase.mispredicted).toBe(0);
  });

  it("a remote whole-string set drops pending text edits to it", () => {
    const server = room();
    const a = new Peer(server);
    a.sync();
    a.insert(0, "abc");
    a.insert(3, "d"); // waits
    server.serverChange([{ op: "set", obj: "n", attr: "text", value: "new" }]);
    a.up(); // action 1 reaches the server after the set: its base is too old
    a.sync();
    expect(a.value("text")).toBe("new");
    expect(a.rejected.map((r) => r.code)).toEqual(["text_base_too_old"]);
    expect(server.value("n", "text")).toBe("new");
    expect(a.rebase.pending).toHaveLength(0);
  });

  it("text edits after an own whole-string set in the same action are not transformed", () => {
    const server = room();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.insert(0, "hello");
    a.sync();
    b.sync();
    a.insert(5, "!"); // action 2: sent, in flight
    a.insert(6, "?"); // action 3: waits for 2
    const setThenType = [
      { op: "set", obj: "n", attr: "text", value: "abc" },
      { op: "text_insert", obj: "n", attr: "text", pos: 3, text: "d" },
    ] satisfies Change[];
    a.edit(...setThenType); // action 4: waits behind 3 (FIFO)
    expect(a.value("text")).toBe("abcd");
    b.insert(0, "XY");
    b.up(); // b's insert lands first
    a.up();
    a.down(); // b's insert, then the ack of 2: actions 3 and 4 go out
    // The insert after the set is relative to "abc": b's concurrent insert does not move it.
    expect(a.outbox).toEqual([
      { t: "action", id: 3, base: 3, changes: [{ op: "text_insert", obj: "n", attr: "text", pos: 8, text: "?" }] },
      { t: "action", id: 4, base: 3, changes: setThenType },
    ]);
    a.sync();
    b.sync();
    expect(server.value("n", "text")).toBe("abcd");
    expect(b.value("text")).toBe("abcd");
    expect(a.value("text")).toBe("abcd");
    expect([...a.rejected, ...b.rejected]).toEqual([]);
    expect(a.rebase.mispredicted).toBe(0);
  });

  it("the simulated server does not transform edits after a set in the same action either", () => {
    const server = room();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    b.insert(0, "XY");
    b.up(); // v1: "XY", which a has not seen
    // Sent directly with base 0, as a client that had not heard of b's insert would.
    a.session.receive(JSON.stringify({
      t: "action",
      id: 1,
      base: 0,
      changes: [
        { op: "set", obj: "n", attr: "text", value: "abc" },
        { op: "text_insert", obj: "n", attr: "text", pos: 3, text: "d" },
      ],
    }));
    expect(server.value("n", "text")).toBe("abcd");
    a.sync();
    expect(a.rejected).toEqual([]);
    expect(a.value("text")).toBe("abcd");
  });

  it("a remote whole-string set keeps pending edits that follow an own set in their action", () => {
    const server = room();
    const a = new Peer(server);
    a.sync();
    a.insert(0, "hello");
    a.sync();
    a.insert(5, "!"); // action 2: sent
    a.edit({ op: "set", obj: "n", attr: "text", value: "abc" }, { op: "text_insert", obj: "n", attr: "text", pos: 3, text: "d" });
    a.insert(4, "e"); // action 4: relative to "abcd", waits
    server.serverChange([{ op: "set", obj: "n", attr: "text", value: "server" }]);
    a.down(); // the server's set arrives first: action 2 is doomed; 3 and 4 stay
    expect(a.rebase.pending.map((p) => [p.id, p.doomed])).toEqual([
      [2, true],
      [3, false],
      [4, false],
    ]);
    expect(a.value("text")).toBe("abcde");
    a.sync();
    expect(a.rejected.map((r) => [r.action.id, r.code])).toEqual([[2, "text_base_too_old"]]);
    expect(server.value("n", "text")).toBe("abcde");
    expect(a.value("text")).toBe("abcde");
  });

  it("a text edit after a whole-string set in an earlier action waits for its ack", () => {
    const p = new Peer(room());
    p.sync();
    p.edit({ op: "set", obj: "n", attr: "text", value: "abc" }); // sent
    p.insert(3, "d"); // based on the set: the server would refuse it before the set's version
    expect(p.outbox.map((m) => m.t === "action" && m.id)).toEqual([1]);
    p.sync();
    expect(p.sentActions().map((m) => [m.id, m.base])).toEqual([
      [1, 0],
      [2, 1],
    ]);
    expect(p.server.value("n", "text")).toBe("abcd");
    expect(p.rejected).toEqual([]);
  });

  it("whole-string sets are not held back by earlier sets or text edits of the same attribute", () => {
    const p = new Peer(room());
    p.sync();
    p.insert(0, "a"); // 1: sent
    p.edit({ op: "set", obj: "n", attr: "text", value: "x" }); // 2: needs no earlier version
    p.edit({ op: "set", obj: "n", attr: "text", value: "y" }, { op: "text_insert", obj: "n", attr: "text", pos: 1, text: "!" }); // 3
    p.insert(2, "?"); // 4: based on 3's text: waits
    expect(p.outbox.map((m) => m.t === "action" && m.id)).toEqual([1, 2, 3]);
    p.sync();
    expect(p.server.value("n", "text")).toBe("y!?");
    expect(p.rejected).toEqual([]);
  });

  it("a refused own whole-string set drops the edits made on its text", () => {
    const server = new SimServer({
      root: ROOT,
      refuse: (c) => (c.op === "set" && c.value === "bad" ? { code: "invalid", reason: "no bad text" } : null),
    });
    const p = new Peer(server);
    p.sync();
    p.insert(0, "ok");
    p.sync();
    p.edit({ op: "set", obj: "n", attr: "text", value: "bad" });
    p.insert(3, "!"); // made on "bad"
    p.edit({ op: "set", obj: "n", attr: "title", value: "kept" });
    expect(p.value("text")).toBe("bad!");
    p.sync();
    expect(p.rejected.map((r) => [r.action.id, r.code])).toEqual([[2, "invalid"]]);
    expect(p.value("text")).toBe("ok");
    expect(server.value("n", "text")).toBe("ok");
    expect(server.value("n", "title")).toBe("kept");
    expect(p.sentActions().map((m) => m.id)).toEqual([1, 2, 4]);
  });

  it("detects a version gap and asks to resume", () => {
    const p = new Peer(room());
    p.sync();
    const o = p.rebase.onUpdate({ t: "update", v: 5, origin: "server", changes: [{ op: "set", obj: "n", attr: "title", value: "x" }] });
    expect(o.resync).toBe("resume");
    expect(p.value("title")).toBe("hello");
    expect(p.rebase.onUpdate({ t: "update", v: 0, origin: "server", changes: [] }).resync).toBeNull();
  });

  it("events ack an emit-only action and are reported in order", () => {
    const p = new Peer(room());
    p.sync();
    p.edit({ op: "emit", obj: "n", attr: "ping", args: { n: 1 } });
    p.up();
    const msg = decodeServerMessage(p.inbox.shift() as string);
    if (msg instanceof DecodeError || msg.t !== "events") throw new Error("events expected");
    const o = p.rebase.onEvents(msg);
    expect(o.acked.map((a) => a.id)).toEqual([1]);
    expect(o.emits).toEqual([{ origin: p.rebase.clientId, change: { op: "emit", obj: "n", attr: "ping", args: { n: 1 } } }]);
  });
});

describe("welcome", () => {
  function welcome(over: Partial<WelcomeMessage>): WelcomeMessage {
    return { t: "welcome", protocol: 1, client: "c1", resume_token: "r", version: 0, acked: 0, presence: {}, read_only: false, undo_steps: 0, redo_steps: 0, ...over };
  }

  it("with a snapshot: reloads and drops pending actions the room has processed", () => {
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 0, next_server_id: 1, root: ROOT } }));
    for (const v of ["a", "b", "c"]) {
      r.begin();
      r.stage({ op: "set", obj: "n", attr: "title", value: v });
      r.commit();
    }
    r.onDisconnect();
    const root = structuredClone(ROOT);
    (root.children?.[0]?.attrs as Record<string, JsonValue>).title = "b"; // 1 and 2 were applied
    const o = r.onWelcome(welcome({ version: 7, acked: 2, snapshot: { version: 7, next_server_id: 1, root } }));
    expect(r.pending.map((a) => a.id)).toEqual([3]);
    expect(o.send).toEqual([{ t: "action", id: 3, base: 7, changes: [{ op: "set", obj: "n", attr: "title", value: "c" }] }]);
    expect(r.local?.get("n")?.attrs.get("title")).toBe("c");
    expect(r.mirror?.get("n")?.attrs.get("title")).toBe("b");
  });

  it("resuming: catch-up updates ack; unacknowledged ones up to acked were refused; the rest is sent again", () => {
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 0, next_server_id: 1, root: ROOT } }));
    const sets = ["a", "b", "c"].map((v) => {
      r.begin();
      r.stage({ op: "dict_set", obj: "n", attr: "pos", key: v, value: 1 });
      return r.commit().outcome.send;
    });
    expect(sets.flat().map((m) => m.t)).toEqual(["action", "action", "action"]);
    r.onDisconnect();
    // The room processed 1 (applied, v1) and 2 (refused); 3 never arrived.
    let o = r.onWelcome(welcome({ version: 2, acked: 2 }));
    expect(o.send).toEqual([]);
    o = r.onUpdate({ t: "update", v: 1, origin: "c1", action: 1, changes: [{ op: "dict_set", obj: "n", attr: "pos", key: "a", value: 1 }] });
    expect(o.acked.map((a) => a.id)).toEqual([1]);
    expect(o.send).toEqual([]);
    o = r.onUpdate({ t: "update", v: 2, origin: "c9", action: 4, changes: [{ op: "set", obj: "n", attr: "title", value: "other" }] });
    expect(o.rejected.map((x) => [x.action.id, x.code])).toEqual([[2, "rejected"]]);
    expect(o.send).toEqual([{ t: "action", id: 3, base: 2, changes: [{ op: "dict_set", obj: "n", attr: "pos", key: "c", value: 1 }] }]);
    expect(r.local?.get("n")?.attrs.get("pos")).toEqual({ x: 0, a: 1, c: 1 });
  });

  it("resuming: a processed action that changed no state is not reported as refused", () => {
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 0, next_server_id: 1, root: ROOT } }));
    r.begin();
    r.stage({ op: "emit", obj: "n", attr: "ping" });
    r.commit();
    r.onDisconnect();
    const o = r.onWelcome(welcome({ version: 0, acked: 1 })); // its `events` answer was lost
    expect(o.acked.map((a) => a.id)).toEqual([1]);
    expect(o.rejected).toEqual([]);
    expect(r.pending).toHaveLength(0);
  });

  it("never sends an action whose edits were all absorbed by others'", () => {
    const server = room();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.insert(0, "abcdef");
    a.sync();
    b.sync();
    a.remove(1, 2); // sent
    a.remove(1, 1); // waits: deletes "d"
    b.remove(0, 5); // deletes "abcde", reaches the server first
    b.up();
    a.down(); // a hears b's delete: its waiting delete is absorbed
    expect(a.rebase.pending.map((p) => p.changes.length)).toEqual([0]);
    a.sync();
    b.sync();
    expect(server.value("n", "text")).toBe("f");
    expect(a.sentActions().every((m) => m.changes.length > 0)).toBe(true);
    expect([...a.rejected, ...b.rejected]).toEqual([]);
  });

  it("without a snapshot and nothing to resume onto, asks for a reload", () => {
    expect(new Rebase().onWelcome(welcome({})).resync).toBe("reload");
  });
});

describe("randomized convergence with a simulated server", () => {
  it("with whole-string sets (also followed by typing in one action), clients converge (seeded)", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed * 7919);
      const server = room();
      const peers = [new Peer(server), new Peer(server), new Peer(server)];
      for (const p of peers) p.sync();
      for (let step = 0; step < 80; step++) {
        const p = rng.pick(peers);
        const r = rng.next();
        const text = String(p.value("text"));
        if (r < 0.4) {
          p.insert(rng.int(text.length + 1), rng.pick(["x", "yz", "é"]));
        } else if (r < 0.5 && text.length > 0) {
          const from = rng.int(text.length);
          p.remove(from, Math.min(1 + rng.int(2), text.length - from));
        } else if (r < 0.56) {
          p.edit({ op: "set", obj: "n", attr: "text", value: `s${step}` });
        } else if (r < 0.62) {
          const v = `t${step}`;
          p.edit({ op: "set", obj: "n", attr: "text", value: v }, { op: "text_insert", obj: "n", attr: "text", pos: rng.int(v.length + 1), text: "!" });
        } else if (r < 0.8) {
          p.up(rng.int(2) + 1);
        } else {
          p.down(rng.int(3) + 1);
        }
      }
      for (let k = 0; k < 5; k++) for (const p of peers) p.sync();
      const text = server.value("n", "text");
      for (const p of peers) {
        expect(p.value("text"), `seed ${seed}`).toBe(text);
        expect(p.rebase.pending, `seed ${seed}`).toHaveLength(0);
        // Only edits overtaken by someone else's set may be refused, and nothing mispredicted.
        expect(new Set(p.rejected.map((x) => x.code)), `seed ${seed}`).toEqual(new Set(p.rejected.length > 0 ? ["text_base_too_old"] : []));
        expect(p.rebase.mispredicted, `seed ${seed}`).toBe(0);
      }
    }
  });

  it("three clients editing text and a dict with random delivery all converge (seeded)", () => {
    const rounds = 60;
    for (let seed = 1; seed <= rounds; seed++) {
      const rng = new Rng(seed);
      const server = room();
      const peers = [new Peer(server), new Peer(server), new Peer(server)];
      for (const p of peers) p.sync();
      for (let step = 0; step < 80; step++) {
        const p = rng.pick(peers);
        const r = rng.next();
        if (r < 0.45) {
          const text = String(p.value("text"));
          let pos = rng.int(text.length + 1);
          if (/[\udc00-\udfff]/.test(text[pos] ?? "")) pos--; // never inside an emoji
          if (rng.chance(0.7) || text.length === 0) p.insert(pos, rng.pick(["x", "yz", "\u{1F600}", "é"]));
          else {
            const safe = (i: number) => !/[\udc00-\udfff]/.test(text[i] ?? "");
            const from = safe(pos) ? pos : pos - 1;
            let len = Math.min(rng.int(3) + 1, text.length - from);
            if (!safe(from + len)) len++;
            if (len > 0 && from + len <= text.length) p.remove(from, len);
          }
        } else if (r < 0.55) {
          p.edit({ op: "dict_set", obj: "n", attr: "pos", key: rng.pick(["x", "y"]), value: step });
        } else if (r < 0.8) {
          p.up(rng.int(2) + 1);
        } else {
          p.down(rng.int(3) + 1);
        }
      }
      for (let k = 0; k < 5; k++) for (const p of peers) p.sync();
      const text = server.value("n", "text");
      for (const p of peers) {
        expect(p.value("text"), `seed ${seed}`).toBe(text);
        expect(p.value("pos"), `seed ${seed}`).toEqual(server.value("n", "pos"));
        expect(p.rejected, `seed ${seed}`).toEqual([]);
        expect(p.rebase.pending, `seed ${seed}`).toHaveLength(0);
        // Every acknowledged edit landed exactly where this client predicted.
        expect(p.rebase.mispredicted, `seed ${seed}`).toBe(0);
      }
    }
  });
});

describe("list changes by index (list_base_stale)", () => {
  const LIST_ROOT: NodeSnapshot = {
    id: "root",
    type: "Root",
    children: [
      { id: "n", type: "Node", attrs: { text: "", title: "t", ports: ["p0", "p1", "p2"], pos: { x: 0 }, labels: [], refs: ["t1", "t2", "t3"] } },
      { id: "t1", type: "Target" },
      { id: "t2", type: "Target" },
      { id: "t3", type: "Target" },
    ],
  };
  const remove0 = { op: "list_remove", obj: "n", attr: "ports", index: 0 } satisfies Change;
  const listRoom = () => new SimServer({ root: structuredClone(LIST_ROOT) });
  /** Every value of `attr` a peer's reported diffs carried. */
  const reported = (p: Peer, attr: string) => p.diffs.flatMap((d) => d.attrs.filter((a) => a.attr === attr).map((a) => a.value));
  function welcome(over: Partial<WelcomeMessage>): WelcomeMessage {
    return { t: "welcome", protocol: 1, client: "c1", resume_token: "r", version: 3, acked: 0, presence: {}, read_only: false, undo_steps: 0, redo_steps: 0, ...over };
  }
  function commit(r: Rebase, ...changes: Change[]): ClientMessage[] {
    r.begin();
    for (const c of changes) {
      const err = r.stage(c);
      if (err !== null) throw new Error(err.reason);
    }
    return r.commit().outcome.send;
  }

  it("two clients remove index 0 of [p0, p1, p2] from the same base: the loser's view never shows [p2]", () => {
    const server = listRoom();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.edit(remove0);
    b.edit(remove0);
    expect([a.outbox, b.outbox]).toEqual([
      [{ t: "action", id: 1, base: 0, changes: [remove0] }],
      [{ t: "action", id: 1, base: 0, changes: [remove0] }],
    ]);
    a.up(); // a's remove lands first (v1)
    b.up(); // b's, based on 0, is refused: p0 is gone, index 0 is p1 now
    const seen: JsonValue[] = [b.value("ports") ?? null];
    expect(b.inbox).toHaveLength(2); // a's update, then b's reject
    b.down(1);
    seen.push(b.value("ports") ?? null);
    // Doomed by a's change: out of the local view, waiting for the server's reject.
    expect(b.rebase.pending.map((p) => [p.id, p.doomed, p.staleList])).toEqual([[1, true, { obj: "n", attr: "ports", change: 0, changed: 1 }]]);
    b.down(1);
    seen.push(b.value("ports") ?? null);
    expect(seen).toEqual([
      ["p1", "p2"],
      ["p1", "p2"],
      ["p1", "p2"],
    ]);
    expect(reported(b, "ports")).not.toContainEqual(["p2"]);
    expect(b.rejected.map((r) => [r.action.id, r.code])).toEqual([[1, "list_base_stale"]]);
    a.sync();
    b.sync();
    expect(server.value("n", "ports")).toEqual(["p1", "p2"]);
    expect(a.value("ports")).toEqual(["p1", "p2"]);
    expect(b.value("ports")).toEqual(["p1", "p2"]);
    expect(a.rejected).toEqual([]);
    expect(b.rebase.pending).toHaveLength(0);
  });

  it("a doomed unsent action is refused here and never sent; later text edits shift as if it had never been made", () => {
    const server = listRoom();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.insert(0, "ab"); // 1: sent
    a.insert(2, "c"); // 2: waits for 1
    a.edit({ op: "text_insert", obj: "n", attr: "text", pos: 3, text: "X" }, remove0); // 3: waits (FIFO), made on v0
    a.insert(4, "!"); // 4: made on "abcX"
    expect(a.value("ports")).toEqual(["p1", "p2"]);
    expect(a.value("text")).toBe("abcX!");
    b.edit({ op: "list_remove", obj: "n", attr: "ports", index: 1 }); // removes p1
    b.up(); // v1
    a.down(); // b's change arrives before action 3 could be sent
    expect(a.rejected.map((r) => [r.action.id, r.code, r.change])).toEqual([[3, "list_base_stale", 1]]);
    expect(a.rejected[0]?.reason).toMatch(/n\.ports: the list changed first/);
    // Never p2 removed by a's stale index 0: only b's removal shows.
    expect(a.value("ports")).toEqual(["p0", "p2"]);
    expect(reported(a, "ports")).not.toContainEqual(["p2"]);
    expect(a.value("text")).toBe("abc!");
    expect(a.rebase.pending.map((p) => p.id)).toEqual([1, 2, 4]);
    a.sync();
    b.sync();
    expect(a.sentActions().map((m) => m.id)).toEqual([1, 2, 4]);
    expect(server.value("n", "text")).toBe("abc!");
    expect(server.value("n", "ports")).toEqual(["p0", "p2"]);
    expect(a.value("text")).toBe("abc!");
    expect(a.value("ports")).toEqual(["p0", "p2"]);
    expect(a.rejected).toHaveLength(1);
    expect(a.rebase.mispredicted).toBe(0);
  });

  it("the client's own earlier change does not doom its later one", () => {
    const server = listRoom();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.edit(remove0); // 1: removes p0
    a.edit(remove0); // 2: made on top of 1, removes p1; both sent with base 0
    a.edit({ op: "list_insert", obj: "n", attr: "ports", value: "mine" }); // 3: an append, base 0 too
    expect(a.outbox.map((m) => (m.t === "action" ? m.base : null))).toEqual([0, 0, 0]);
    b.edit({ op: "set", obj: "n", attr: "title", value: "other" }); // someone else's change, not to the list
    b.up();
    a.sync();
    b.sync();
    expect(a.rejected).toEqual([]);
    expect(server.value("n", "ports")).toEqual(["p2", "mine"]);
    expect(a.value("ports")).toEqual(["p2", "mine"]);
    expect(b.value("ports")).toEqual(["p2", "mine"]);
    expect(reported(a, "ports")).toEqual([["p1", "p2"], ["p2"], ["p2", "mine"]]);
  });

  it("pending dict ops, set ops and whole-value sets are never doomed by another client's list change", () => {
    const server = listRoom();
    const a = new Peer(server);
    const b = new Peer(server);
    a.sync();
    b.sync();
    a.edit({ op: "dict_set", obj: "n", attr: "pos", key: "x", value: 5 });
    a.edit({ op: "dict_remove", obj: "n", attr: "pos", key: "x" }, { op: "dict_set", obj: "n", attr: "pos", key: "y", value: 1 });
    a.edit({ op: "set_add", obj: "n", attr: "labels", value: "red" });
    a.edit({ op: "set", obj: "n", attr: "title", value: "mine" });
    a.edit({ op: "set", obj: "n", attr: "refs", value: ["t3"] }); // a whole-list set: no index to go stale
    b.edit(remove0, { op: "set", obj: "n", attr: "refs", value: ["t1"] }, { op: "set_add", obj: "n", attr: "labels", value: "blue" });
    b.up(); // b's changes to both lists land first
    a.down();
    expect(a.rebase.pending.map((p) => p.doomed)).toEqual([false, false, false, false, false]);
    a.sync();
    b.sync();
    expect(a.rejected).toEqual([]);
    expect(server.value("n", "refs")).toEqual(["t3"]);
    expect(server.value("n", "labels")).toEqual(["blue", "red"]);
    expect(server.value("n", "pos")).toEqual({ y: 1 });
    for (const p of [a, b]) {
      for (const attr of ["ports", "refs", "labels", "pos", "title"]) expect(p.value(attr), attr).toEqual(server.value("n", attr));
    }
  });

  it("a ref_list cleared by another client's delete dooms a sent change by index to it; the server's reject ends it", () => {
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 3, next_server_id: 1, root: LIST_ROOT } }));
    const move = { op: "list_move", obj: "n", attr: "refs", from: 1, to: 0 } satisfies Change;
    expect(commit(r, move)).toEqual([{ t: "action", id: 1, base: 3, changes: [move] }]);
    expect(r.local?.get("n")?.attrs.get("refs")).toEqual(["t2", "t1", "t3"]);
    // Another client deletes t1: the server clears the reference (a list_remove in its update).
    const o = r.onUpdate({
      t: "update",
      v: 4,
      origin: "c9",
      action: 7,
      changes: [
        { op: "delete", id: "t1" },
        { op: "list_remove", obj: "n", attr: "refs", index: 0 },
      ],
    });
    // Not the move replayed on [t2, t3] (which would take t3 to the front).
    expect(r.local?.get("n")?.attrs.get("refs")).toEqual(["t2", "t3"]);
    expect(o.diffs.flatMap((d) => d.attrs.filter((a) => a.attr === "refs").map((a) => a.value))).toEqual([["t2", "t3"]]);
    expect(o.rejected).toEqual([]); // sent: the server's reject will say it
    expect(o.send).toEqual([]);
    expect(r.pending.map((p) => [p.id, p.doomed, p.staleList])).toEqual([[1, true, { obj: "n", attr: "refs", change: 0, changed: 4 }]]);
    const rej = r.onReject({ t: "reject", action: 1, code: "list_base_stale", reason: "n.refs: based on 3, before the list changed at 4", change: 0 });
    expect(rej.rejected.map((x) => [x.action.id, x.code, x.reason, x.change])).toEqual([
      [1, "list_base_stale", "n.refs: based on 3, before the list changed at 4", 0],
    ]);
    expect(rej.diffs.every((d) => d.attrs.length === 0)).toBe(true);
    expect(r.pending).toHaveLength(0);
    expect(r.local?.get("n")?.attrs.get("refs")).toEqual(["t2", "t3"]);
  });

  it("resuming: doomed actions the server never saw are refused here, as it would; the rest is sent again", () => {
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 3, next_server_id: 1, root: LIST_ROOT } }));
    expect(commit(r, { op: "list_move", obj: "n", attr: "refs", from: 1, to: 0 })).toHaveLength(1); // 1: sent, lost
    r.onDisconnect();
    expect(commit(r, { op: "list_set", obj: "n", attr: "refs", index: 0, value: "t3" })).toEqual([]); // 2: offline
    expect(commit(r, { op: "dict_set", obj: "n", attr: "pos", key: "x", value: 1 })).toEqual([]); // 3: offline
    expect(r.local?.get("n")?.attrs.get("refs")).toEqual(["t3", "t1", "t3"]);
    expect(r.onWelcome(welcome({ version: 4, acked: 0 })).send).toEqual([]);
    const o = r.onUpdate({ t: "update", v: 4, origin: "server", changes: [{ op: "list_remove", obj: "n", attr: "refs", index: 0 }] });
    expect(o.rejected.map((x) => [x.action.id, x.code])).toEqual([
      [2, "list_base_stale"],
      [1, "list_base_stale"],
    ]);
    expect(o.send).toEqual([{ t: "action", id: 3, base: 4, changes: [{ op: "dict_set", obj: "n", attr: "pos", key: "x", value: 1 }] }]);
    expect(r.local?.get("n")?.attrs.get("refs")).toEqual(["t2", "t3"]);
    expect(r.local?.get("n")?.attrs.get("pos")).toEqual({ x: 1 });
  });
});

describe("list changes by index after a reload from a snapshot", () => {
  it("a pending change by index made before the snapshot is refused here, not sent on a guess; appends and other changes are sent", () => {
    const root: NodeSnapshot = { id: "root", type: "Root", children: [{ id: "n", type: "Node", attrs: { ports: ["p0", "p1", "p2"], pos: { x: 0 } } }] };
    const welcome = (over: Partial<WelcomeMessage>): WelcomeMessage => ({
      t: "welcome", protocol: 1, client: "c1", resume_token: "r", version: 3, acked: 0, presence: {}, read_only: false, undo_steps: 0, redo_steps: 0, ...over,
    });
    const r = new Rebase();
    r.onWelcome(welcome({ snapshot: { version: 3, next_server_id: 1, root } }));
    r.onDisconnect();
    for (const c of [
      { op: "list_remove", obj: "n", attr: "ports", index: 0 },
      { op: "list_insert", obj: "n", attr: "ports", value: "end" },
      { op: "dict_set", obj: "n", attr: "pos", key: "x", value: 1 },
    ] satisfies Change[]) {
      r.begin();
      expect(r.stage(c)).toBeNull();
      r.commit();
    }
    // Someone removed p1 while this client was away; the snapshot does not say who.
    const later: NodeSnapshot = { id: "root", type: "Root", children: [{ id: "n", type: "Node", attrs: { ports: ["p0", "p2"], pos: { x: 0 } } }] };
    const o = r.onWelcome(welcome({ version: 9, snapshot: { version: 9, next_server_id: 1, root: later } }));
    expect(o.rejected.map((x) => [x.action.id, x.code])).toEqual([[1, "list_base_stale"]]);
    expect(o.send.map((m) => (m.t === "action" ? m.changes.map((c) => c.op) : []))).toEqual([["list_insert"], ["dict_set"]]);
    expect(r.local?.get("n")?.attrs.get("ports")).toEqual(["p0", "p2", "end"]);
  });
});

describe("randomized list edits by index with a simulated server", () => {
  it("three clients removing, moving, setting and inserting by index converge; every stale one is caught before its reject (seeded)", () => {
    const root: NodeSnapshot = {
      id: "root",
      type: "Root",
      children: [{ id: "n", type: "Node", attrs: { text: "", ports: ["e0", "e1", "e2", "e3", "e4", "e5"] } }],
    };
    let stale = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed * 104729);
      const server = new SimServer({ root: structuredClone(root) });
      const peers = [new Peer(server), new Peer(server), new Peer(server)];
      for (const p of peers) p.sync();
      for (let step = 0; step < 100; step++) {
        const p = rng.pick(peers);
        const r = rng.next();
        const ports = p.value("ports");
        const len = Array.isArray(ports) ? ports.length : 0;
        const at = (n: number) => rng.int(n);
        const where = { obj: "n", attr: "ports" } as const;
        if (r < 0.12 || (r < 0.55 && len === 0)) p.edit({ op: "list_insert", ...where, index: at(len + 1), value: `s${step}` });
        else if (r < 0.18) p.edit({ op: "list_insert", ...where, value: `a${step}` });
        else if (r < 0.3) p.edit({ op: "list_remove", ...where, index: at(len) });
        else if (r < 0.38) p.edit({ op: "list_move", ...where, from: at(len), to: at(len) });
        else if (r < 0.46) p.edit({ op: "list_set", ...where, index: at(len), value: `x${step}` });
        else if (r < 0.5) p.edit({ op: "set", ...where, value: [`w${step}`, "w"] });
        else if (r < 0.55) {
          // A transaction with text too: its local effect goes with it when it is doomed.
          const text = String(p.value("text"));
          p.edit({ op: "text_insert", obj: "n", attr: "text", pos: at(text.length + 1), text: "t" }, { op: "list_remove", ...where, index: at(len) });
        } else if (r < 0.62) {
          const text = String(p.value("text"));
          p.insert(at(text.length + 1), rng.pick(["y", "zz"]));
        } else if (r < 0.8) p.up(rng.int(2) + 1);
        else p.down(rng.int(3) + 1);
      }
      for (let k = 0; k < 5; k++) for (const p of peers) p.sync();
      for (const p of peers) {
        expect(p.value("ports"), `seed ${seed}`).toEqual(server.value("n", "ports"));
        expect(p.value("text"), `seed ${seed}`).toBe(server.value("n", "text"));
        expect(p.rebase.pending, `seed ${seed}`).toHaveLength(0);
        expect(new Set(p.rejected.map((x) => x.code)), `seed ${seed}`).toEqual(new Set(p.rejected.length > 0 ? ["list_base_stale"] : []));
        // The server never refused a stale list change this client still showed.
        expect(p.serverRejects.filter(([code, doomed]) => code === "list_base_stale" && !doomed), `seed ${seed}`).toEqual([]);
        expect(p.rebase.mispredicted, `seed ${seed}`).toBe(0);
        stale += p.rejected.length;
      }
    }
    expect(stale).toBeGreaterThan(20);
  });
});
