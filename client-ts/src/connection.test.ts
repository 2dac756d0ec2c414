import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConnectionState } from "./connection.js";
import { backoffDelayMs, Connection } from "./connection.js";
import type { HelloMessage, UpdateMessage } from "./protocol.js";
import { FakeNetwork } from "./testing/fake-network.js";
import { SimServer } from "./testing/sim-server.js";

function setup(options: { silenceTimeoutMs?: number; hello?: () => HelloMessage } = {}) {
  const server = new SimServer({ root: { id: "root", type: "Root", attrs: { n: 0 } } });
  const net = new FakeNetwork(server);
  const states: ConnectionState[] = [];
  let hellos = 0;
  const conn = new Connection({
    url: "ws://test/ws/room",
    WebSocket: net.WebSocket,
    hello:
      options.hello ??
      (() => {
        hellos++;
        return { t: "hello", protocol: 1 };
      }),
    random: () => 1, // no jitter: the full step
    backoffInitialMs: 100,
    backoffMaxMs: 1000,
    silenceTimeoutMs: options.silenceTimeoutMs ?? 0,
  });
  conn.on("state", (e) => states.push(e.state));
  return { server, net, conn, states, hellos: () => hellos };
}

describe("backoffDelayMs", () => {
  it("doubles from the initial delay up to the cap, jittered between half and full", () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelayMs(0, 100, 1000, () => 0)).toBe(50);
    expect(backoffDelayMs(2, 100, 1000, () => 0.5)).toBe(300);
    expect(backoffDelayMs(500, 100, 1000, () => 1)).toBe(1000);
  });
});

describe("Connection", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("says hello on open and is open once welcomed", () => {
    const { net, conn, states } = setup();
    const welcomes: string[] = [];
    conn.handle("welcome", (w) => welcomes.push(w.client));
    conn.connect();
    expect(conn.state).toBe("connecting");
    expect(conn.send({ t: "presence", state: 1 })).toBe(false);
    net.deliverAll();
    expect(net.last?.sent[0]).toEqual({ t: "hello", protocol: 1 });
    expect(welcomes).toEqual(["c1"]);
    expect(states).toEqual(["connecting", "open"]);
    expect(conn.send({ t: "presence", state: 1 })).toBe(true);
  });

  it("runs prepare before each attempt, and gives up with the reason when it fails", async () => {
    const server = new SimServer({ root: { id: "root", type: "Root", attrs: {} } });
    const net = new FakeNetwork(server);
    let prepared = 0;
    const ok = new Connection({
      url: "ws://test/ws/room",
      WebSocket: net.WebSocket,
      hello: () => ({ t: "hello", protocol: 1, token: `t${prepared}` }),
      prepare: () => {
        prepared++;
        return Promise.resolve();
      },
    });
    ok.connect();
    expect(net.last).toBeUndefined();
    await vi.runAllTimersAsync();
    net.deliverAll();
    expect(prepared).toBe(1);
    expect(net.last?.sent[0]).toEqual({ t: "hello", protocol: 1, token: "t1" });
    expect(ok.state).toBe("open");
    const closes: { code: number; reason: string; reconnectInMs: number | null }[] = [];
    const failing = new Connection({ url: "ws://test/ws/room", WebSocket: net.WebSocket, hello: () => ({ t: "hello", protocol: 1 }), prepare: () => Promise.reject(new Error("no token")) });
    failing.on("close", (e) => closes.push(e));
    failing.connect();
    await vi.runAllTimersAsync();
    expect(closes).toEqual([{ code: 4001, reason: "could not prepare the connection: no token", reconnectInMs: null }]);
    expect(failing.state).toBe("closed");
  });

  it("dispatches decoded messages to the handlers of their type, and reports bad frames", () => {
    const { server, net, conn } = setup();
    const updates: UpdateMessage[] = [];
    const errors: string[] = [];
    const off = conn.handle("update", (u) => updates.push(u));
    conn.on("decodeError", (e) => errors.push(e.error.reason));
    conn.connect();
    net.deliverAll();
    server.serverChange([{ op: "set", obj: "root", attr: "n", value: 1 }]);
    net.deliverAll();
    expect(updates.map((u) => u.v)).toEqual([1]);
    net.last?.onmessage?.({ data: "{not json" });
    net.last?.onmessage?.({ data: new Uint8Array([1]) });
    expect(errors).toHaveLength(2);
    expect(errors[1]).toMatch(/binary/);
    off();
    server.serverChange([{ op: "set", obj: "root", attr: "n", value: 2 }]);
    net.deliverAll();
    expect(updates).toHaveLength(1);
  });

  it("handles a batch's messages one by one, in order, and refuses a bad batch whole", () => {
    const { net, conn } = setup();
    const seen: string[] = [];
    const errors: string[] = [];
    conn.handle("update", (u) => seen.push(`update ${u.v}`));
    conn.handle("presence", (p) => seen.push(`presence ${p.client}`));
    conn.handle("reject", (r) => seen.push(`reject ${r.action}`));
    conn.on("decodeError", (e) => errors.push(e.error.reason));
    conn.connect();
    net.deliverAll(1); // open: the hello goes out, no welcome yet
    const update = (v: number) => ({ t: "update", v, origin: "server", changes: [] });
    const frame = (...m: unknown[]) => ({ data: JSON.stringify({ t: "batch", m }) });
    net.last?.onmessage?.(frame(update(1))); // before the welcome: ignored, as its messages alone would be
    net.deliverAll();
    net.last?.onmessage?.(frame(update(1), { t: "presence", client: "c9", state: 1 }, { t: "reject", action: 3, code: "invalid" }, update(2)));
    net.last?.onmessage?.(frame(update(3), { t: "update", v: 4 }));
    expect(seen).toEqual(["update 1", "presence c9", "reject 3", "update 2"]);
    expect(errors).toEqual(["batch.m[1].origin: expected a string"]);
  });

  it("drops the rest of a batch when a handler drops the socket, as it drops later frames", () => {
    const { net, conn } = setup();
    const seen: number[] = [];
    conn.handle("update", (u) => {
      seen.push(u.v);
      if (u.v === 2) conn.reconnect(); // e.g. a gap: resync
    });
    conn.connect();
    net.deliverAll();
    const first = net.last;
    const update = (v: number) => ({ t: "update", v, origin: "server", changes: [] });
    first?.onmessage?.({ data: JSON.stringify({ t: "batch", m: [update(1), update(2), update(3)] }) });
    expect(seen).toEqual([1, 2]);
    expect(net.last).not.toBe(first);
    expect(conn.state).toBe("reconnecting");
  });

  it("reconnects after a drop with doubling delays, capped, reset by a welcome", () => {
    const { net, conn, states, hellos } = setup();
    const delays: (number | null)[] = [];
    conn.on("close", (e) => delays.push(e.reconnectInMs));
    conn.connect();
    net.deliverAll();
    net.refuse = 5;
    net.last?.drop();
    for (let i = 0; i < 6; i++) {
      net.deliverAll();
      vi.advanceTimersByTime(delays.at(-1) ?? 0);
    }
    net.deliverAll();
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(conn.state).toBe("open");
    expect(hellos()).toBe(2);
    expect(states).toEqual(["connecting", "open", "reconnecting", "open"]);
    net.last?.drop();
    net.deliverAll();
    expect(delays.at(-1)).toBe(100);
  });

  it("does not connect before the delay has passed", () => {
    const { net, conn } = setup();
    conn.connect();
    net.deliverAll();
    net.last?.drop();
    net.deliverAll();
    const count = net.sockets.length;
    vi.advanceTimersByTime(99);
    expect(net.sockets.length).toBe(count);
    vi.advanceTimersByTime(1);
    expect(net.sockets.length).toBe(count + 1);
  });

  it("gives up on a refusal close code and after close()", () => {
    const { net, conn, states } = setup();
    conn.connect();
    net.deliverAll();
    net.last?.drop(4001, "unauthorized");
    net.deliverAll();
    expect(conn.state).toBe("closed");
    vi.advanceTimersByTime(60_000);
    expect(net.sockets).toHaveLength(1);

    const second = setup();
    second.conn.connect();
    second.net.deliverAll();
    second.conn.close();
    second.net.deliverAll();
    vi.advanceTimersByTime(60_000);
    expect(second.net.sockets).toHaveLength(1);
    expect(second.states).toEqual(["connecting", "open", "closed"]);
    expect(states.at(-1)).toBe("closed");
  });

  it("builds a fresh hello for every attempt", () => {
    let n = 0;
    const { net, conn } = setup({ hello: () => ({ t: "hello", protocol: 1, token: `t${++n}` }) });
    conn.connect();
    net.deliverAll();
    conn.reconnect();
    net.deliverAll();
    expect(net.sockets.map((s) => (s.sent[0] as HelloMessage | undefined)?.token)).toEqual(["t1", "t2"]);
    expect(conn.state).toBe("open");
  });

  it("reconnects a connection silent for too long", () => {
    const { net, conn } = setup({ silenceTimeoutMs: 5000 });
    conn.connect();
    net.deliverAll();
    vi.advanceTimersByTime(4999);
    expect(net.sockets).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(conn.state).toBe("reconnecting");
    vi.advanceTimersByTime(100);
    net.deliverAll();
    expect(net.sockets).toHaveLength(2);
    expect(conn.state).toBe("open");
  });
});
