/**
 * Signed tokens against the real server (`objectsync serve --jwt-hs256-secret-file`): the client
 * asks its `token` callback before every connection attempt, so when a token expires
 * mid-session (close 4006) it comes back with a fresh one and resumes as the same client, with
 * the edits it made while away delivered; the others see who it is in presence.
 */

import { createHmac } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ObjectSyncClient } from "../client.js";
import type { RunningServer } from "./harness.js";
import { Lab, SERVER_BIN, startBinary } from "./harness.js";

const SECRET = "a test secret that is long enough for HS256";

/** An HS256 JWT of `claims`. */
function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}
const now = () => Math.floor(Date.now() / 1000);

let dir = "";
let server: RunningServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "objectsync-jwt-"));
  await writeFile(join(dir, "secret"), `${SECRET}\n`);
  server = await startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--jwt-hs256-secret-file", join(dir, "secret")]);
});

afterAll(async () => {
  await server?.stop();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

describe("tokens that expire", () => {
  it("a session closed by its token's expiry (4006) gets a fresh token from the callback and resumes without loss", { timeout: 30_000 }, async () => {
    const lab = new Lab();
    const issued: number[] = [];
    const token = () => {
      // The first token lives 2 s; the next ones a while.
      const exp = now() + (issued.length === 0 ? 2 : 600);
      issued.push(exp);
      return Promise.resolve(jwt({ sub: "ivy", name: "Ivy", exp }));
    };
    const closes: number[] = [];
    const ivy: ObjectSyncClient = await lab.join(server.wsUrl("jwt"), { token });
    ivy.on("state", (e) => {
      if (e.state === "reconnecting") closes.push(Date.now());
    });
    const readies: boolean[] = [];
    ivy.on("ready", (e) => readies.push(e.resumed));
    expect(ivy.identity).toEqual({ id: "ivy", name: "Ivy" });
    const firstId = ivy.clientId;
    const watcher = await lab.join(server.wsUrl("jwt"), { token: jwt({ sub: "wes", exp: now() + 600 }) });
    ivy.setPresence({ cursor: [1, 2], name: "not Ivy" });
    await lab.until("wes sees who ivy is", () => watcher.users.get(firstId ?? "")?.id === "ivy");
    // Ivy edits until her token runs out, and on through the reconnect.
    const graph = ivy.get("graph");
    if (graph === undefined) throw new Error("no graph");
    let n = 0;
    const editing = setInterval(() => graph.string("name").set(`edit ${++n}`), 150);
    try {
      await lab.until("the expiry closes ivy's session", () => closes.length > 0, 10_000);
    } finally {
      clearInterval(editing);
    }
    // An edit made while away is kept and sent after the resume.
    const last = `edit ${++n} (while away)`;
    graph.string("name").set(last);
    await lab.until("ivy resumed with a fresh token", () => readies.length > 0 && ivy.state === "open");
    // Closed by the expiry: not before the first token's `exp`.
    expect(closes[0]).toBeGreaterThanOrEqual((issued[0] as number) * 1000 - 50);
    expect(readies).toEqual([true]);
    expect(ivy.clientId).toBe(firstId);
    expect(issued.length).toBeGreaterThanOrEqual(2);
    await lab.until("the edit made while away reaches wes", () => watcher.get("graph")?.string("name").value === last);
    await lab.until("ivy's edits are all confirmed", () => ivy.pendingCount === 0);
    ivy.close();
    watcher.close();
  });
});
