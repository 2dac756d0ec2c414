/**
 * Reconnects against the real server through a TCP proxy that holds and cuts connections
 * mid-stream: the client must reconnect through it, resume as the same client (no snapshot),
 * count what the room applied while it was away as acknowledged, send the rest again exactly
 * once, and converge with everyone; the room must apply no action twice.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ObjectSyncClient } from "../client.js";
import { CallError } from "../errors.js";
import type { RunningServer } from "./harness.js";
import { Lab, RawObserver, startServer, TcpProxy, treeOf } from "./harness.js";

let server: RunningServer;
let proxy: TcpProxy;
let lab: Lab;

beforeAll(async () => {
  server = await startServer();
  proxy = await TcpProxy.start(server.port);
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

afterEach(() => {
  lab?.closeAll();
});

/** Types `text` at the end of `title`, one keystroke (one transaction) per character. */
function typeAtEnd(client: ObjectSyncClient, obj: string, text: string): void {
  const title = client.get(obj)?.string("title");
  if (title === undefined) throw new Error(`no ${obj}`);
  for (const ch of text) title.insert(title.value.length, ch);
}

/** The actions the client recorded as `label` sent: [socket serial, action id][]. */
function actionsSent(l: Lab, label: string): [number, number][] {
  return l.sent.filter((f) => f.client === label && f.msg.t === "action").map((f) => [f.socket, f.msg.id as number]);
}

/** Checks the observer's stream: versions without gaps, and no action of anyone twice. */
function expectCleanLog(o: RawObserver): void {
  expect(o.violations).toEqual([]);
  const updates = o.updates;
  const start = o.welcome?.version ?? 0;
  updates.forEach((u, i) => expect(u.v).toBe(start + i + 1));
  const seen = new Set<string>();
  for (const u of updates) {
    if (u.action === undefined) continue;
    const key = `${u.origin}/${u.action}`;
    expect(seen.has(key), `action ${key} applied twice`).toBe(false);
    seen.add(key);
  }
}

describe("reconnecting through a proxy that cuts connections", () => {
  it("resumes without loss or duplicates when acks are lost and when actions are lost", async () => {
    const l = (lab = new Lab());
    l.watch(proxy.activity);
    const room = "resume-1";
    const viaProxy = proxy.wsUrl(room);
    const observer = await l.observe(server.wsUrl(room));
    const a = await l.join(viaProxy, {}, {}, "A");
    const b = await l.join(server.wsUrl(room), {}, {}, "B");
    const idA = a.clientId;
    const readies: boolean[] = [];
    a.on("ready", (e) => readies.push(e.resumed));
    const rejects: string[] = [];
    for (const c of [a, b]) c.on("reject", ({ error }) => rejects.push(`${error.code}: ${error.reason}`));
    a.setPresence({ name: "A" });
    const node = a.create("Node", "graph", { attrs: { title: "", pos: { x: 100, y: 100 } } });
    await l.settled([a, b], 1);
    typeAtEnd(a, node.id, "abc");
    await l.settled([a, b]);

    // 1. Acks lost: the server applies "d" but a hears nothing; "ef" and a drag wait behind it.
    proxy.hold("down");
    typeAtEnd(a, node.id, "def");
    a.get(node.id)?.dict("pos").setKey("x", 300);
    await l.until("b sees d", () => b.get(node.id)?.string("title").value === "abcd");
    expect(a.pendingCount).toBe(3); // "d" (sent), "ef" (merged, waiting), the drag
    const beforeCut = actionsSent(l, "A");
    const dId = beforeCut.at(-1)?.[1] as number;
    proxy.dropAll();
    await l.settled([a, b]);
    expect(a.clientId).toBe(idA);
    expect(readies).toEqual([true]); // resumed: no snapshot
    // "d" was acknowledged by the catch-up, not sent again; "ef" and the drag went out once.
    const afterFirst = actionsSent(l, "A").slice(beforeCut.length);
    expect(afterFirst).toHaveLength(2);
    expect(new Set(afterFirst.map(([s]) => s)).size).toBe(1);
    expect(l.timesSent("A", dId)).toBe(1);

    // 2. Actions lost: "g" is held in the proxy and cut with the connection; "hi" and a color
    // change wait behind it. All must be sent again, once, after the resume.
    proxy.hold("up");
    typeAtEnd(a, node.id, "ghi");
    a.get(node.id)?.string("color").set("red");
    await l.until("g held in the proxy", () => proxy.heldBytes("up") > 0);
    const lostCall = a.call("slow", { ms: 2000 }).then(
      () => null,
      (e: unknown) => e,
    );
    const beforeSecondCut = actionsSent(l, "A");
    const lostId = beforeSecondCut.at(-1)?.[1] as number;
    proxy.dropAll();
    const callError = await lostCall;
    expect(callError).toBeInstanceOf(CallError);
    expect((callError as CallError).code).toBe("disconnected");
    await l.settled([a, b]);
    expect(readies).toEqual([true, true]);
    const resent = actionsSent(l, "A").slice(beforeSecondCut.length);
    expect(resent.map(([, id]) => id)[0]).toBe(lostId); // the lost action, again, first
    expect(new Set(resent.map(([, id]) => id)).size).toBe(resent.length); // each once
    expect(resent).toHaveLength(3);
    expect(l.timesSent("A", lostId)).toBe(2);

    // 3. Everyone agrees, with a newcomer too, and the room applied nothing twice.
    await l.until("observer caught up", () => observer.version === a.version);
    const fresh = await l.join(server.wsUrl(room));
    const expected = treeOf(fresh);
    expect(treeOf(a)).toEqual(expected);
    expect(treeOf(b)).toEqual(expected);
    const n = fresh.get(node.id);
    expect(n?.string("title").value).toBe("abcdefghi");
    expect(n?.dict("pos").value).toEqual({ x: 300, y: 100 });
    expect(n?.string("color").value).toBe("red");
    expect(rejects).toEqual([]);
    expect(l.resendViolations("A")).toEqual([]);
    expectCleanLog(observer);
    const ofA = observer.updates.filter((u) => u.origin === idA).map((u) => u.action as number);
    expect(ofA).toEqual([...ofA].sort((x, y) => x - y));
    // Presence is restored after each resume.
    await l.until("b sees a's presence again", () => b.presence.get(idA as string) !== undefined);
    expect(proxy.connections).toBeGreaterThanOrEqual(3);
  });

  it("keeps converging while connections are cut repeatedly under steady typing", async () => {
    const l = (lab = new Lab());
    l.watch(proxy.activity);
    const room = "resume-2";
    const observer = await l.observe(server.wsUrl(room));
    const a = await l.join(proxy.wsUrl(room), {}, {}, "A");
    const b = await l.join(proxy.wsUrl(room), {}, {}, "B");
    const c = await l.join(server.wsUrl(room), {}, {}, "C");
    const rejects: string[] = [];
    for (const x of [a, b, c]) x.on("reject", ({ error }) => rejects.push(`${error.code}: ${error.reason}`));
    const na = a.create("Node", "graph", { attrs: { title: "" } });
    const nb = b.create("Node", "graph", { attrs: { title: "" } });
    await l.settled([a, b, c], 2);
    const expectedA: string[] = [];
    const expectedB: string[] = [];
    const cuts = 6;
    const type = async (round: number, k: number) => {
      const sa = `${round}${k}`;
      const sb = `${String.fromCharCode(97 + round)}${k}`;
      typeAtEnd(a, na.id, sa);
      typeAtEnd(b, nb.id, sb);
      expectedA.push(sa);
      expectedB.push(sb);
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    for (let round = 0; round < cuts; round++) {
      for (let k = 0; k < 3; k++) await type(round, k);
      proxy.dropAll(); // mid-stream: frames of the last keystrokes are on their way
      for (let k = 3; k < 5; k++) await type(round, k); // typed while reconnecting
      await l.until(`round ${round}: both back`, () => a.state === "open" && b.state === "open" && proxy.open === 2);
    }
    await l.settled([a, b, c], 2, 20_000);
    expect(c.get(na.id)?.string("title").value).toBe(expectedA.join(""));
    expect(c.get(nb.id)?.string("title").value).toBe(expectedB.join(""));
    const fresh = await l.join(server.wsUrl(room));
    const expected = treeOf(fresh);
    for (const x of [a, b, c]) expect(treeOf(x)).toEqual(expected);
    expect(rejects).toEqual([]);
    expect(l.resendViolations("A")).toEqual([]);
    expect(l.resendViolations("B")).toEqual([]);
    await l.until("observer caught up", () => observer.version === c.version);
    expectCleanLog(observer);
  });
});
