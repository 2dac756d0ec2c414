/**
 * A test room: a simulated server, a fake network and helpers to join clients and let
 * everything settle (frames delivered, reconnect timers fired). Test-only; needs fake timers.
 */

import { vi } from "vitest";
import { ObjectSyncClient } from "../client.js";
import type { ActionMessage, NodeSnapshot } from "../protocol.js";
import type { SObject } from "../sobject.js";
import { FakeNetwork } from "./fake-network.js";
import type { SimServerOptions } from "./sim-server.js";
import { SimServer } from "./sim-server.js";

/** A graph with two notes, attributes of most kinds. */
export const ROOT: NodeSnapshot = {
  id: "root",
  type: "Root",
  children: [
    {
      id: "g",
      type: "Graph",
      attrs: { name: "main" },
      children: [
        {
          id: "n1",
          type: "Note",
          attrs: { title: "one", body: "", pos: { x: 1, y: 2 }, items: ["a", "b", "c"], tags: ["red"], count: 1, done: false, link: null },
        },
        { id: "n2", type: "Note", attrs: { title: "two", body: "", pos: {}, items: [], tags: [], count: 0, done: false, link: "n1" } },
      ],
    },
  ],
};

/** A simulated room on a fake network, with helpers. */
export function world(options: SimServerOptions = {}) {
  const server = new SimServer({ root: structuredClone(ROOT), ...options });
  const net = new FakeNetwork(server);
  /** Delivers everything and lets reconnect timers fire, until quiet. */
  const settle = () => {
    for (let i = 0; i < 50; i++) {
      const n = net.deliverAll();
      vi.advanceTimersByTime(20_000);
      if (n === 0 && net.deliverAll() === 0) return;
    }
  };
  const join = async (client = new ObjectSyncClient()) => {
    const ready = client.connect("ws://test/ws/room", { WebSocket: net.WebSocket, random: () => 0 });
    settle();
    await ready;
    return client;
  };
  const actionsOf = (client: ObjectSyncClient) =>
    server.received.filter(([c, m]) => c === client.clientId && m.t === "action").map(([, m]) => m as unknown as ActionMessage);
  return { server, net, settle, join, actionsOf };
}


/** The object `id` of `client`, which must exist. */
export function must(client: ObjectSyncClient, id: string): SObject {
  const o = client.get(id);
  if (o === undefined) throw new Error(`no ${id}`);
  return o;
}
