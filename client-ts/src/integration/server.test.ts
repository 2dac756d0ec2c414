/**
 * The client against the real server (`target/debug/objectsync serve --memory`): convergence of
 * several clients, reject flows, concurrent typing, whole-string sets followed by typing,
 * presence and services. Rooms are new per test; the demo room holds `graph` (Graph) and
 * `page` (Div) with `hello` (Text).
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ObjectSyncClient } from "../client.js";
import { CallError, RejectedError } from "../errors.js";
import type { JsonValue } from "../protocol.js";
import type { SObject } from "../sobject.js";
import { Rng } from "../testing/random.js";
import { deepEqual } from "../values.js";
import type { RunningServer } from "./harness.js";
import { Lab, startServer, treeOf } from "./harness.js";

let server: RunningServer;
let lab: Lab;
let roomCounter = 0;
const newRoom = (what: string) => `${what}-${++roomCounter}`;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
});

afterEach(() => {
  lab?.closeAll();
});

function setup(): Lab {
  lab = new Lab();
  return lab;
}

function must(client: ObjectSyncClient, id: string): SObject {
  const o = client.get(id);
  if (o === undefined) throw new Error(`${client.clientId} has no ${id}`);
  return o;
}

/** Rejects seen by a client, as [code, reason]. */
function rejectsOf(client: ObjectSyncClient): [string, string][] {
  const out: [string, string][] = [];
  client.on("reject", ({ error }) => out.push([error.code, error.reason]));
  return out;
}

describe("against the real server", () => {
  it("loads the demo room", async () => {
    const l = setup();
    const a = await l.join(server.wsUrl(newRoom("load")));
    expect(a.clientId).toMatch(/^[A-Za-z0-9]+$/);
    expect(must(a, "graph").type).toBe("Graph");
    expect(must(a, "graph").string("name").value).toBe("main");
    expect(must(a, "page").type).toBe("Div");
    const hello = must(a, "hello");
    expect(hello.parent?.id).toBe("page");
    expect(hello.string("text").value).toBe("Hello from ObjectSync");
    expect(hello.dict("style").value).toEqual({ color: "#222", "font-size": "24px" });
  });

  it("several clients editing at random converge to the tree a fresh client loads", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("converge"));
    // The client has no schema: defaults let list edits of nodes it just created apply locally.
    const defaults = {
      Node: { title: "node", pos: { x: 100, y: 100 }, color: "#4f7cff", ports: ["in", "out"] },
      Edge: { from: null, to: null },
    };
    const clients = [await l.join(url, {}, { defaults }), await l.join(url, {}, { defaults }), await l.join(url, {}, { defaults })];
    const rejects = clients.map(rejectsOf);
    const rng = new Rng(20240611);
    const colors = ["red", "green", "blue", "#123456"];
    const nodesOf = (c: ObjectSyncClient) => must(c, "graph").children.filter((o) => o.type === "Node");
    let made = 0;
    for (let step = 0; step < 240; step++) {
      const c = rng.pick(clients);
      const nodes = nodesOf(c);
      const r = rng.next();
      if (nodes.length < 3 || r < 0.12) {
        c.create("Node", "graph", { attrs: { title: `n${++made}`, pos: { x: rng.int(2001), y: rng.int(1201) } } });
      } else {
        const n = rng.pick(nodes);
        if (r < 0.35) {
          const title = n.string("title");
          // Never split a surrogate pair: positions between whole code points.
          const cps = [...title.value];
          const i = rng.int(cps.length + 1);
          const pos = cps.slice(0, i).join("").length;
          if (rng.chance(0.75) || i === cps.length) title.insert(pos, rng.pick(["a", "bc", "é", "\u{1F600}"]));
          else title.delete(pos, (cps[i] as string).length);
        } else if (r < 0.55) {
          c.transaction(() => {
            n.dict("pos").setKey("x", rng.int(2001));
            n.dict("pos").setKey("y", rng.int(1201));
          });
        } else if (r < 0.65) {
          n.string("color").set(rng.pick(colors));
        } else if (r < 0.72) {
          n.list("ports").push(`p${step}`);
        } else if (r < 0.86) {
          const other = rng.pick(nodes.filter((o) => o !== n));
          c.create("Edge", "graph", { attrs: { from: n.id, to: other.id } });
        } else if (r < 0.92 && nodes.length > 4) {
          n.delete();
        } else {
          const edges = must(c, "graph").children.filter((o) => o.type === "Edge");
          if (edges.length > 0) rng.pick(edges).delete();
        }
      }
      // Let frames cross: a few edits per turn of the event loop.
      if (step % 3 === 2) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await l.settled(clients, 1, 20_000);
    const fresh = await l.join(url);
    const expected = treeOf(fresh);
    expect(fresh.version).toBe(clients[0]?.version);
    for (const c of clients) expect(treeOf(c)).toEqual(expected);
    // Edges whose end was deleted deleted themselves.
    const ids = new Set(expected.children.flatMap((g) => g.children.map((o) => o.id)));
    for (const e of expected.children.flatMap((g) => g.children.filter((o) => o.type === "Edge"))) {
      expect(ids.has(String(e.attrs.from))).toBe(true);
      expect(ids.has(String(e.attrs.to))).toBe(true);
    }
    expect(expected.children.find((g) => g.id === "graph")?.children.length).toBeGreaterThan(3);
    // Only races with deletes may be refused, and pushes to ports based before someone else's
    // change to that list (list_base_stale: an append is a change by index too).
    for (const r of rejects.flat()) expect(["no_such_object", "dangling_ref", "list_base_stale"]).toContain(r[0]);
  });

  it("a drag outside the canvas is refused (invalid) and rolled back; later pending actions stay", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("reject"));
    const a = await l.join(url);
    const b = await l.join(url);
    const n = a.create("Node", "graph", { attrs: { title: "node", pos: { x: 100, y: 100 } } });
    await l.settled([a, b], 1);
    const pos = n.dict<number>("pos");
    const title = n.string("title");
    let atReject: { x: JsonValue | undefined; color: string; title: string; pending: number } | null = null;
    a.on("reject", () => {
      atReject = { x: pos.get("x"), color: n.string("color").value, title: title.value, pending: a.pendingCount };
    });
    const typed = title.insert(0, "Q"); // sent
    const drag = pos.setKey("x", 5000); // sent: another attribute
    const color = n.string("color").set("red"); // sent
    const more = title.insert(1, "R"); // waits for the ack of "Q"
    expect(pos.get("x")).toBe(5000);
    const err = await drag.confirmed().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RejectedError);
    const rejected = err as RejectedError;
    expect(rejected.code).toBe("invalid");
    expect(rejected.reason).toMatch(/x = 5000 is outside the canvas/);
    expect(rejected.change).toBe(0);
    // At the reject: the drag is gone, everything after it is still shown.
    // ("Q" was acknowledged before the reject: the server answers in order.)
    expect(atReject).toEqual({ x: 100, color: "red", title: "QRnode", pending: 2 });
    await Promise.all([typed.confirmed(), color.confirmed(), more.confirmed()]);
    await l.settled([a, b]);
    for (const c of [a, b]) {
      const m = must(c, n.id);
      expect(m.dict("pos").value).toEqual({ x: 100, y: 100 });
      expect(m.string("color").value).toBe("red");
      expect(m.string("title").value).toBe("QRnode");
    }
  });

  it("an edge from a node to itself is refused; an edge whose end is deleted deletes itself", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("edges"));
    const a = await l.join(url);
    const b = await l.join(url);
    const n1 = a.create("Node", "graph", { attrs: { title: "one" } });
    const n2 = a.create("Node", "graph", { attrs: { title: "two" } });
    const refused = new Promise<RejectedError>((resolve) => {
      const off = a.on("reject", ({ error }) => {
        off();
        resolve(error);
      });
    });
    const self = a.create("Edge", "graph", { attrs: { from: n1.id, to: n1.id } });
    let destroyed = false;
    self.on("destroyed", () => {
      destroyed = true;
    });
    const refusal = await refused;
    expect(refusal.code).toBe("invalid");
    expect(refusal.reason).toMatch(/an edge cannot connect a node to itself/);
    expect(destroyed).toBe(true);
    expect(a.get(self.id)).toBeUndefined();
    const edge = a.create("Edge", "graph", { attrs: { from: n1.id, to: n2.id } });
    await l.settled([a, b]);
    expect(must(b, edge.id).ref("to").value).toBe(n2.id);
    b.delete(n2.id);
    await l.settled([a, b]);
    for (const c of [a, b]) {
      expect(c.get(n2.id)).toBeUndefined();
      expect(c.get(edge.id)).toBeUndefined();
      expect(c.get(n1.id)?.string("title").value).toBe("one");
    }
  });

  it("two clients typing at the same place keep both texts, ordered by client id", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("typing"));
    const a = await l.join(url);
    const b = await l.join(url);
    const made = a.create("Node", "graph", { attrs: { title: "__" } });
    await l.settled([a, b], 1);
    const ta = made.string("title");
    const tb = must(b, made.id).string("title");
    // Same place, same moment: neither has seen the other's insert.
    ta.insert(1, "AAA");
    tb.insert(1, "bbb");
    await l.settled([a, b]);
    const first = (a.clientId as string) < (b.clientId as string);
    const expected = first ? "_AAAbbb_" : "_bbbAAA_";
    expect(ta.value).toBe(expected);
    expect(tb.value).toBe(expected);

    // Keystroke by keystroke, each at its own caret, frames crossing.
    ta.set("[]");
    await l.settled([a, b]);
    const wa = "hijkm"; // letters used once, so that each caret is found by its last letter
    const wb = "WXYZQ";
    for (let i = 0; i < wa.length; i++) {
      const caretA = i === 0 ? 1 : ta.value.indexOf(wa[i - 1] as string) + 1;
      ta.insert(caretA, wa[i] as string);
      const caretB = i === 0 ? 1 : tb.value.indexOf(wb[i - 1] as string) + 1;
      tb.insert(caretB, wb[i] as string);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await l.settled([a, b]);
    const both = first ? `[${wa}${wb}]` : `[${wb}${wa}]`;
    expect(ta.value).toBe(both);
    expect(tb.value).toBe(both);
    const fresh = await l.join(url);
    expect(must(fresh, made.id).string("title").value).toBe(both);
  });

  it("typing after a whole-string set in the same action is relative to the new text", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("set-then-type"));
    const a = await l.join(url);
    const b = await l.join(url);
    const made = a.create("Node", "graph", { attrs: { title: "hello" } });
    await l.settled([a, b], 1);
    const ta = made.string("title");
    const tb = must(b, made.id).string("title");
    const rejects = [...rejectsOf(a), ...rejectsOf(b)];
    // b inserts at 0 while a, not having seen it, replaces the text and types at its end.
    tb.insert(0, "XY");
    const handle = a.transaction(() => {
      ta.set("abc");
      ta.insert(3, "d");
    });
    await handle.confirmed();
    await l.settled([a, b]);
    expect(ta.value).toBe(tb.value);
    // Whichever came first, "d" stays right after "abc" (not shifted by b's insert).
    expect(ta.value).toMatch(/^(abcd|XYabcd)$/);
    expect(rejects).toEqual([]);

    // A set, then typing in a later action: the typing waits for the set's ack, else the
    // server would refuse it as based before the new text (text_base_too_old).
    ta.set("new");
    ta.insert(3, "!");
    ta.insert(4, "?");
    await l.settled([a, b]);
    expect(tb.value).toBe("new!?");
    expect(rejects).toEqual([]);
  });

  it("a whole-string set by someone else drops pending typing (refused as text_base_too_old or never sent)", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("set-wins"));
    const a = await l.join(url);
    const b = await l.join(url);
    const made = a.create("Node", "graph", { attrs: { title: "abc" } });
    await l.settled([a, b], 1);
    const rejectsA = rejectsOf(a);
    must(b, made.id).string("title").set("replaced"); // reaches the server first
    made.string("title").insert(3, "!"); // based before the set
    await l.settled([a, b]);
    expect(made.string("title").value).toBe("replaced");
    expect(must(b, made.id).string("title").value).toBe("replaced");
    for (const [code] of rejectsA) expect(code).toBe("text_base_too_old");
  });

  it("undo reverts this client's last change for everyone", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("undo"));
    const a = await l.join(url);
    const b = await l.join(url);
    const made = a.create("Node", "graph", { attrs: { pos: { x: 10, y: 10 } } });
    await l.settled([a, b], 1);
    made.dict("pos").setKey("x", 300);
    await l.settled([a, b]);
    expect(must(b, made.id).dict("pos").get("x")).toBe(300);
    await a.undo(made).confirmed();
    await l.settled([a, b]);
    expect(made.dict("pos").get("x")).toBe(10);
    expect(must(b, made.id).dict("pos").get("x")).toBe(10);
  });

  it("presence appears for others (and newcomers) and disappears when the client leaves", async () => {
    const l = setup();
    const url = server.wsUrl(newRoom("presence"));
    const a = await l.join(url);
    const b = await l.join(url);
    const seen: [string, JsonValue][] = [];
    b.on("presence", ({ client, state }) => seen.push([client, state]));
    const idA = a.clientId as string;
    a.setPresence({ name: "Ada", cursor: { x: 1, y: 2 } });
    await l.until("b sees a's presence", () => b.presence.has(idA));
    expect(b.presence.get(idA)).toEqual({ name: "Ada", cursor: { x: 1, y: 2 } });
    const c = await l.join(url);
    expect(c.presence.get(idA)).toEqual({ name: "Ada", cursor: { x: 1, y: 2 } });
    a.setPresence({ name: "Ada", cursor: { x: 5, y: 6 } });
    await l.until("c sees a's cursor move", () => deepEqual(c.presence.get(idA), { name: "Ada", cursor: { x: 5, y: 6 } }));
    a.close();
    await l.until("a's presence gone for b and c", () => !b.presence.has(idA) && !c.presence.has(idA));
    expect(seen.at(-1)).toEqual([idA, null]);
    expect(seen.filter(([id]) => id === idA).length).toBe(3);
  });

  it("services answer, fail and time out", async () => {
    const l = setup();
    const a = await l.join(server.wsUrl(newRoom("services")));
    expect(await a.call("echo", { n: 1, s: "x" })).toEqual({ client: a.clientId, args: { n: 1, s: "x" } });
    expect(await a.call("slow", { ms: 30 })).toBe(30);
    const missing = await a.call("nope", null).then(
      () => null,
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(CallError);
    expect((missing as CallError).code).toBe("no_such_service");
    expect((missing as CallError).reason).toContain("nope");
    // The client gives up first; the late result is ignored.
    const started = Date.now();
    const late = await a.call("slow", { ms: 1500 }, { timeoutMs: 100 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).toBeLessThan(1400);
    expect(late).toBeInstanceOf(CallError);
    expect((late as CallError).code).toBe("timeout");
    expect((late as CallError).service).toBe("slow");
    // Calls still match their results while the late one is outstanding on the server.
    const [x, y] = await Promise.all([a.call("echo", "x"), a.call("echo", "y")]);
    expect([x, y]).toEqual([
      { client: a.clientId, args: "x" },
      { client: a.clientId, args: "y" },
    ]);
  });
});
