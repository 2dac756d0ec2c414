/**
 * The client over `wss://` against the real server with `serve --tls-cert/--tls-key`: a
 * self-signed certificate made here with the openssl command line, trusted through a `ws`
 * WebSocket subclass given `{ ca }` (the client's `WebSocket` option), so nothing global (no
 * `NODE_TLS_REJECT_UNAUTHORIZED`, no `NODE_EXTRA_CA_CERTS`) changes. The harness's `startBinary`
 * expects `http://`, so this file starts the binary itself and reads `listening on https://`.
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ObjectSyncClient } from "../client.js";
import type { WebSocketConstructor } from "../connection.js";
import { SERVER_BIN } from "./harness.js";

/** Every wait here gives up after this long. */
const DEADLINE_MS = 15_000;

interface TlsServer {
  readonly address: string;
  readonly child: ChildProcess;
  stderr(): string;
}

let dir = "";
let ca = "";
let server: TlsServer;
const clients: ObjectSyncClient[] = [];

/** A self-signed P-256 certificate for 127.0.0.1 (the command operators are told to try). */
function makeCertificate(into: string): { cert: string; key: string } {
  const cert = join(into, "cert.pem");
  const key = join(into, "key.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
      "-keyout", key, "-out", cert,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return { cert, key };
}

/** Starts the binary over TLS; resolves on its `listening on https://ADDR` line. */
function startTls(cert: string, key: string): Promise<TlsServer> {
  if (!existsSync(SERVER_BIN)) return Promise.reject(new Error(`no server binary at ${SERVER_BIN}: cargo build --features presets --bin objectsync`));
  const args = ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent", "--tls-cert", cert, "--tls-key", key];
  const child = spawn(SERVER_BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr = (stderr + d).slice(-64 * 1024);
  });
  return new Promise<TlsServer>((resolve, reject) => {
    let stdout = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${SERVER_BIN} ${args.join(" ")}: ${why}\n--- stderr ---\n${stderr}`));
    };
    const timer = setTimeout(() => fail("no listening line"), DEADLINE_MS);
    child.once("exit", (code) => fail(`exited early with ${code}`));
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => {
      stdout += d;
      const nl = stdout.indexOf("\n");
      if (nl < 0) return;
      const line = stdout.slice(0, nl).trim();
      const m = /^listening on https:\/\/(127\.0\.0\.1:\d+)$/.exec(line);
      if (m === null) return fail(`first stdout line is ${JSON.stringify(line)}, expected "listening on https://127.0.0.1:PORT"`);
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({ address: m[1] as string, child, stderr: () => stderr });
    });
  });
}

/** A `ws` WebSocket that trusts `ca` (and only for the sockets it makes). */
function trusting(ca: string): WebSocketConstructor {
  return class TrustingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { ca });
    }
  };
}

async function joinRoom(room: string): Promise<ObjectSyncClient> {
  const client = new ObjectSyncClient();
  clients.push(client);
  await client.connect(`wss://${server.address}/ws/${room}`, { WebSocket: trusting(ca), backoffInitialMs: 20, backoffMaxMs: 200 });
  return client;
}

/** Resolves once `client` has `id` (or fails after the deadline). */
function seen(client: ObjectSyncClient, id: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (client.get(id) !== undefined) return resolve();
    const timer = setTimeout(() => reject(new Error(`${client.clientId} never saw ${id}`)), DEADLINE_MS);
    const off = client.on("created", ({ object }) => {
      if (object.id !== id) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "objectsync-tls-"));
  const { cert, key } = makeCertificate(dir);
  ca = readFileSync(cert, "utf8");
  server = await startTls(cert, key);
});

afterAll(async () => {
  for (const c of clients) c.close();
  if (server !== undefined && server.child.exitCode === null) {
    const exited = new Promise((done) => server.child.once("exit", done));
    server.child.kill("SIGTERM");
    await exited;
  }
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

describe("over TLS", () => {
  it("joins over wss, creates an object and sees it confirmed and replicated", async () => {
    const a = await joinRoom("tls");
    const b = await joinRoom("tls");
    let id = "";
    const handle = a.transaction(() => {
      id = a.create("Node", "graph", { attrs: { title: "over tls", pos: { x: 1, y: 2 } } }).id;
    });
    await handle.confirmed();
    expect(handle.status).toBe("confirmed");
    await seen(b, id);
    expect(b.get(id)?.string("title").value).toBe("over tls");
  });

  it("a socket that does not trust the certificate fails its handshake; the server keeps serving", async () => {
    const untrusting = new WebSocket(`wss://${server.address}/ws/tls`);
    const why = await new Promise<string>((resolve) => {
      untrusting.once("error", (e: Error) => resolve(e.message));
      untrusting.once("open", () => resolve("opened"));
    });
    expect(why).toMatch(/self[- ]signed certificate/);
    const c = await joinRoom("tls");
    expect(c.ready).toBe(true);
    expect(server.child.exitCode).toBeNull();
  });
});
