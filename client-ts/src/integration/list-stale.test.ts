/**
 * The list rule against the real server (`list_base_stale`): a list change by index based
 * before another client's change to that list is refused, and the client never shows it applied
 * to the changed list (it drops its effect as soon as the other change arrives, and refuses it
 * itself when it had not sent it yet). The demo's `Node` has a `ports` list; the conformance
 * preset's `Item` has a `links` ref_list (references are cleared when their target is deleted).
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ObjectSyncClient } from "../client.js";
import { RejectedError } from "../errors.js";
import type { ActionHandle } from "../handle.js";
import type { JsonValue } from "../protocol.js";
import type { SObject } from "../sobject.js";
import type { RunningServer } from "./harness.js";
import { Lab, SERVER_BIN, startBinary, TcpProxy, treeOf } from "./harness.js";

let server: RunningServer;
let proxy: TcpProxy;
let conf: RunningServer;
let confProxy: TcpProxy;
let lab: Lab;
let roomCounter = 0;
const newRoom = (what: string) => `${what}-${++roomCounter}`;

beforeAll(async () => {
  server = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent"]);
  proxy = await TcpProxy.start(server.port);
  conf = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--preset", "conformance"]);
  confProxy = await TcpProxy.start(conf.port);
});

afterAll(async () => {
  await proxy?.close();
  await confProxy?.close();
  await server?.stop();
  await conf?.stop();
});

afterEach(() => {
  lab?.closeAll();
});

function must(client: ObjectSyncClient, id: string): SObject {
  const o = client.get(id);
  if (o === undefined) throw new Error(`${client.clientId} has no ${id}`);
  return o;
}

/** Every value `ports` of node `id` took in `client`'s local view, starting with the current one. */
function portsSeen(client: ObjectSyncClient, id: string): JsonValue[][] {
  const ports = must(client, id).list("ports");
  const seen: JsonValue[][] = [[...ports.value]];
  ports.on("changed", (e) => seen.push([...e.value]));
  return seen;
}

/** How a handle ended: `confirmed` or the reject's code. */
function fate(h: ActionHandle): Promise<string> {
  return h.confirmed().then(
    () => "confirmed",
    (e: unknown) => (e instanceof RejectedError ? e.code : `unexpected: ${String(e)}`),
  );
}

describe("list changes by index against the real server", () => {
  it("two clients remove index 0 from the same version: one is refused as list_base_stale, p1 and p2 stay", async () => {
    const l = (lab = new Lab());
    const url = server.wsUrl(newRoom("list-remove"));
    const a = await l.join(url, {}, {}, "a");
    const b = await l.join(url, {}, {}, "b");
    const node = a.create("Node", "graph", { attrs: { title: "ports", pos: { x: 100, y: 100 }, ports: ["p0", "p1", "p2"] } });
    await l.settled([a, b], 1);
    const base = a.version;
    expect(b.version).toBe(base);
    const seenA = portsSeen(a, node.id);
    const seenB = portsSeen(b, node.id);
    // Both in the same turn: neither has heard of the other's, both based on `base`.
    const ra = node.list("ports").remove(0);
    const rb = must(b, node.id).list("ports").remove(0);
    const sent = l.sent.filter((f) => f.msg.t === "action" && f.msg.id === ra.id && f.client === "a");
    const sentB = l.sent.filter((f) => f.msg.t === "action" && f.msg.id === rb.id && f.client === "b");
    expect([...sent, ...sentB].map((f) => f.msg.base)).toEqual([base, base]);
    const fates = await Promise.all([fate(ra), fate(rb)]);
    expect([...fates].sort()).toEqual(["confirmed", "list_base_stale"]);
    await l.settled([a, b], (base ?? 0) + 1);
    const fresh = await l.join(url, {}, {}, "fresh");
    const expected = treeOf(fresh);
    expect(treeOf(a)).toEqual(expected);
    expect(treeOf(b)).toEqual(expected);
    expect(must(fresh, node.id).list("ports").value).toEqual(["p1", "p2"]);
    expect(fresh.version).toBe((base ?? 0) + 1);
    // Neither view ever showed a neighbour removed.
    for (const seen of [seenA, seenB]) {
      expect(seen).not.toContainEqual(["p2"]);
      expect(seen.at(-1)).toEqual(["p1", "p2"]);
    }
  });

  it("an unsent change by index made before another client's change to the list is refused by the client and never sent", async () => {
    const l = (lab = new Lab());
    l.watch(proxy.activity);
    const room = newRoom("list-unsent");
    const a = await l.join(proxy.wsUrl(room), {}, {}, "a");
    const b = await l.join(server.wsUrl(room), {}, {}, "b");
    const node = a.create("Node", "graph", { attrs: { title: "t", pos: { x: 100, y: 100 }, ports: ["p0", "p1", "p2"] } });
    await l.settled([a, b], 1);
    const seenA = portsSeen(a, node.id);
    const rejectsA: RejectedError[] = [];
    a.on("reject", ({ error }) => rejectsA.push(error));
    proxy.hold("up"); // a's frames wait in the proxy: the room hears b first
    const title = node.string("title");
    const typed = title.insert(1, "1"); // sent (held)
    const more = title.insert(2, "2"); // waits for the ack of "1"
    const doomed = node.list("ports").remove(0); // waits behind it (FIFO), made on this version
    const doomedFate = fate(doomed);
    expect(node.list("ports").value).toEqual(["p1", "p2"]);
    const byB = must(b, node.id).list("ports").remove(1); // removes p1
    await byB.confirmed();
    // a hears b's change before it could send its own: it refuses it itself, at once.
    await l.until("a refuses its stale remove itself", () => doomed.status !== "pending");
    expect(await doomedFate).toBe("list_base_stale");
    expect(rejectsA.map((e) => [e.code, e.action])).toEqual([["list_base_stale", doomed.id]]);
    expect(rejectsA[0]?.reason).toMatch(/ports: the list changed first/);
    expect(node.list("ports").value).toEqual(["p0", "p2"]);
    proxy.release("up");
    await Promise.all([typed.confirmed(), more.confirmed()]);
    await l.settled([a, b]);
    expect(l.sent.filter((f) => f.client === "a" && f.msg.t === "action" && f.msg.id === doomed.id)).toEqual([]);
    const fresh = await l.join(server.wsUrl(room), {}, {}, "fresh");
    const expected = treeOf(fresh);
    expect(treeOf(a)).toEqual(expected);
    expect(treeOf(b)).toEqual(expected);
    expect(must(fresh, node.id).list("ports").value).toEqual(["p0", "p2"]);
    expect(must(fresh, node.id).string("title").value).toBe("t12");
    // a's view: its guess, then b's change; never p2 removed in place of p0.
    expect(seenA).toEqual([
      ["p0", "p1", "p2"],
      ["p1", "p2"],
      ["p0", "p2"],
    ]);
  });

  it("a ref_list cleared by another client's delete dooms a sent move by index: never shown applied, refused by the server", async () => {
    const l = (lab = new Lab());
    l.watch(confProxy.activity);
    const room = newRoom("ref-list");
    const a = await l.join(confProxy.wsUrl(room), {}, {}, "a");
    const b = await l.join(conf.wsUrl(room), {}, {}, "b");
    let holder: SObject | undefined;
    const ids: string[] = [];
    a.transaction(() => {
      for (const label of ["t1", "t2", "t3"]) ids.push(a.create("Item", "board", { attrs: { label } }).id);
      holder = a.create("Item", "board", { attrs: { label: "holder", links: [...ids] } });
    });
    if (holder === undefined) throw new Error("no holder");
    const [t1, t2, t3] = ids as [string, string, string];
    await l.settled([a, b], 1);
    const links = holder.refList("links");
    const seen: JsonValue[][] = [[...links.value]];
    links.on("changed", (e) => seen.push([...e.value]));
    confProxy.hold("up"); // a's move waits in the proxy: the room hears b's delete first
    const move = links.move(1, 0); // sent (held): [t2, t1, t3]
    expect(links.value).toEqual([t2, t1, t3]);
    const moveFate = fate(move);
    const del = b.delete(t1);
    await del.confirmed();
    await l.until("a hears b's delete", () => a.get(t1) === undefined);
    // The server cleared the reference at index 0; a's move (based before) is left out at once:
    // not replayed on [t2, t3], where it would move t3.
    expect(links.value).toEqual([t2, t3]);
    expect(move.status).toBe("pending");
    confProxy.release("up");
    expect(await moveFate).toBe("list_base_stale");
    await l.settled([a, b]);
    const fresh = await l.join(conf.wsUrl(room), {}, {}, "fresh");
    const expected = treeOf(fresh);
    expect(treeOf(a)).toEqual(expected);
    expect(treeOf(b)).toEqual(expected);
    expect(must(fresh, holder.id).refList("links").value).toEqual([t2, t3]);
    expect(seen).toEqual([
      [t1, t2, t3],
      [t2, t1, t3],
      [t2, t3],
    ]);
  });
});
