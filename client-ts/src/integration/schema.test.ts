/**
 * A deploy of new types against the real server: a client built for the cards preset's
 * version 1 types (its `fingerprint`) edits a room stored in a real SQLite directory; the
 * server is replaced by one with the version 2 types on the same port and data. The room is
 * migrated as it loads; the old client, reconnecting, is refused with close code 4009 and
 * raises `schema_mismatch` (and stops), while a client of the new types sees the migrated room.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ObjectSyncClient } from "../client.js";
import { CloseCode } from "../protocol.js";
import type { RunningServer } from "./harness.js";
import { Lab, SERVER_BIN, startBinary } from "./harness.js";

let dir = "";
const servers: RunningServer[] = [];

function serve(preset: string, bind = "127.0.0.1:0"): Promise<RunningServer> {
  return startBinary(SERVER_BIN, ["serve", "--preset", preset, "--bind", bind, "--data", dir, "--static", "/nonexistent"]).then((s) => {
    servers.push(s);
    return s;
  });
}

/** The fingerprint and schema version of the server's types, from `GET /types`. */
async function typesOf(server: RunningServer): Promise<{ fingerprint: string; schema_version: number }> {
  const res = await fetch(`http://${server.address}/types`);
  return (await res.json()) as { fingerprint: string; schema_version: number };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "objectsync-schema-"));
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("a client built for other types", () => {
  it("is refused with 4009 after a deploy, raises schema_mismatch and stops; a client of the new types sees the migrated room", { timeout: 30_000 }, async () => {
    const lab = new Lab();
    const v1 = await serve("cards-v1");
    const old = await typesOf(v1);
    expect(old.schema_version).toBe(1);
    expect(old.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    const client: ObjectSyncClient = await lab.join(v1.wsUrl("plan"), { backoffInitialMs: 20, backoffMaxMs: 200 }, { fingerprint: old.fingerprint }, "old");
    // Both creates in one action, confirmed (so stored) before the server stops.
    await client
      .transaction(() => {
        const board = client.create("Board", client.root, { attrs: { title: "Plan" } });
        client.create("Card", board, { attrs: { text: "hello", size: "12" } });
      })
      .confirmed();
    const mismatches: { fingerprint: string; reason: string }[] = [];
    client.on("schema_mismatch", (e) => mismatches.push(e));
    const closes: number[] = [];
    client.on("state", (e) => {
      if (e.state === "reconnecting" || e.state === "closed") closes.push(Date.now());
    });

    // The deploy: the same port and data directory, the types of version 2.
    await v1.stop();
    const v2 = await serve("cards-v2", v1.address);
    const now = await typesOf(v2);
    expect(now.schema_version).toBe(2);
    expect(now.fingerprint).not.toBe(old.fingerprint);

    await lab.until("the old client is told its types are gone", () => mismatches.length > 0 && client.state === "closed");
    expect(mismatches).toHaveLength(1);
    expect(mismatches[0]?.fingerprint).toBe(old.fingerprint);
    expect(mismatches[0]?.reason).toContain(now.fingerprint);
    expect(mismatches[0]?.reason).toContain("reload");
    const refusals = lab.received.filter((r) => r.client === "old" && r.msg.t === "welcome");
    expect(refusals).toHaveLength(1); // only the first, from the version 1 server
    expect(CloseCode.schemaMismatch).toBe(4009);

    // A client of the new types: the room as the migration made it.
    const fresh = await lab.join(v2.wsUrl("plan"), {}, { fingerprint: now.fingerprint }, "new");
    const cards = fresh.root.children.flatMap((b) => b.children).filter((o) => o.type === "Card");
    expect(cards).toHaveLength(1);
    expect(cards[0]?.attrs()).toEqual({ body: "hello", size: 12, weight: 0, count: 0, notes: [] });
    fresh.close();
  });
});
