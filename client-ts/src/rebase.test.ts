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
      else if (m.t === "reject") o = this.rebase.onReject(m);
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
    return { t: "welcome", protocol: 1, client: "c1", resume_token: "r", version: 0, acked: 0, presence: {}, read_only: false, ...over };
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
