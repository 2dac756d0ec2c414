/**
 * Test harness for checks against the real Rust server (Node only, test-only): starts the
 * `objectsync` binary (or the `dom_text` example) on a free port, a TCP proxy whose sockets a
 * test can hold and cut, clients on the `ws` package with every frame observed, a raw protocol
 * observer, and `until`, which waits on events (frames, client events) with a deadline.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import type { ClientOptions, ConnectOptions } from "../client.js";
import { ObjectSyncClient } from "../client.js";
import type { WebSocketConstructor } from "../connection.js";
import type { Disposer } from "../emitter.js";
import type { BatchMessage, JsonValue, ServerMessage } from "../protocol.js";
import { DecodeError, decodeServerMessage } from "../protocol.js";
import type { SObject } from "../sobject.js";

/** The repository root (where `target/` is). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The server binary (`OBJECTSYNC_BIN` overrides). */
export const SERVER_BIN = process.env.OBJECTSYNC_BIN ?? `${REPO_ROOT}target/debug/objectsync`;
/** The DOM example's server binary (`OBJECTSYNC_DOM_BIN` overrides). */
export const DOM_EXAMPLE_BIN = process.env.OBJECTSYNC_DOM_BIN ?? `${REPO_ROOT}target/debug/examples/dom_text`;

/** Debian's Chromium (playwright-core never downloads a browser). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Launch options for headless Chromium on this machine: no sandbox as root, and none of the
 * background traffic the closed network would refuse. */
export const CHROMIUM_LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  timeout: 30_000,
} as const;

/** Fails clearly when Chromium is not installed. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
}

const BUILD_HINT = `build it first: (cd ${REPO_ROOT} && cargo build --features presets --bin objectsync --example dom_text)`;

/** A listener list without payloads: something happened, look again. */
export class Signal {
  private readonly listeners = new Set<() => void>();
  /** Calls `fn` on every emit until the disposer is called. */
  on(fn: () => void): Disposer {
    const wrapped = () => fn();
    this.listeners.add(wrapped);
    return () => {
      this.listeners.delete(wrapped);
    };
  }
  /** Calls every listener. */
  emit(): void {
    for (const fn of [...this.listeners]) fn();
  }
}

// --------------------------------------------------------------------------------- processes

/** A server process listening on a loopback port. */
export interface RunningServer {
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /** The port. */
  readonly port: number;
  /** `ws://ADDRESS/ws/<room>`. */
  wsUrl(room: string): string;
  /** What the process wrote to stderr (its logs), the last 64 KiB. */
  stderr(): string;
  /** Stops the process (SIGTERM, then SIGKILL after 3 s); resolves when it exited. */
  stop(): Promise<void>;
}

const STDERR_KEEP = 64 * 1024;

/**
 * Starts `bin args...` and resolves once it printed `listening on http://ADDR` as its first
 * stdout line. Fails clearly if the binary is missing, exits early or stays silent for
 * `timeoutMs`.
 */
export function startBinary(bin: string, args: readonly string[], timeoutMs = 15_000): Promise<RunningServer> {
  if (!existsSync(bin)) {
    return Promise.reject(new Error(`the server binary ${bin} does not exist: ${BUILD_HINT}`));
  }
  return new Promise<RunningServer>((resolve, reject) => {
    const child: ChildProcess = spawn(bin, [...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "objectsync=info" },
    });
    let stderr = "";
    let stdout = "";
    let settled = false;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited;
      clearTimeout(timer);
    };
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop();
      reject(new Error(`${bin} ${args.join(" ")}: ${why}\n--- stderr ---\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no "listening on" line within ${timeoutMs} ms`), timeoutMs);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      stderr = (stderr + d).slice(-STDERR_KEEP);
    });
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => {
      if (settled) return;
      stdout += d;
      const nl = stdout.indexOf("\n");
      if (nl < 0) return;
      const line = stdout.slice(0, nl).trim();
      const m = /^listening on http:\/\/(127\.0\.0\.1:(\d+))$/.exec(line);
      if (m === null) {
        fail(`first stdout line is ${JSON.stringify(line)}, expected "listening on http://127.0.0.1:PORT"`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      const address = m[1] as string;
      resolve({
        address,
        port: Number(m[2]),
        wsUrl: (room) => `ws://${address}/ws/${room}`,
        stderr: () => stderr,
        stop,
      });
    });
    child.once("error", (e) => fail(`could not start: ${e.message}`));
    child.once("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}

/** Starts the ObjectSync server with in-memory rooms on a free loopback port. */
export function startServer(): Promise<RunningServer> {
  return startBinary(SERVER_BIN, ["serve", "--bind", "127.0.0.1:0", "--memory", "--static", "/nonexistent"]);
}

// -------------------------------------------------------------------------------------- proxy

type Direction = "up" | "down";

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly held: Record<Direction, Buffer[]>;
  readonly holding: Record<Direction, boolean>;
}

/**
 * A TCP proxy in front of a server: `hold` stops forwarding one direction of the current
 * connections (bytes are kept, then lost with the connection), `dropAll` destroys every
 * connection at once, as a network failure or a dying server would.
 */
export class TcpProxy {
  /** Fires on every connection, byte chunk and close. */
  readonly activity = new Signal();
  private readonly pairs = new Set<Pair>();
  private readonly server: net.Server;
  private accepted = 0;
  private listeningPort = 0;

  private constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** Starts a proxy to `127.0.0.1:targetPort` on a free loopback port. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once("error", reject);
      proxy.server.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = proxy.server.address();
    if (addr === null || typeof addr === "string") throw new Error("the proxy has no port");
    proxy.listeningPort = addr.port;
    return proxy;
  }

  /** The proxy's port. */
  get port(): number {
    return this.listeningPort;
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    const pair: Pair = { client, upstream, held: { up: [], down: [] }, holding: { up: false, down: false } };
    this.pairs.add(pair);
    this.accepted++;
    const forward = (from: net.Socket, to: net.Socket, dir: Direction) => {
      from.on("data", (chunk: Buffer) => {
        if (pair.holding[dir]) pair.held[dir].push(chunk);
        else to.write(chunk);
        this.activity.emit();
      });
    };
    forward(client, upstream, "up");
    forward(upstream, client, "down");
    const end = () => {
      client.destroy();
      upstream.destroy();
      if (this.pairs.delete(pair)) this.activity.emit();
    };
    for (const s of [client, upstream]) {
      s.on("error", end);
      s.on("close", end);
    }
    this.activity.emit();
  }

  /** `ws://127.0.0.1:PORT/ws/<room>` through the proxy. */
  wsUrl(room: string): string {
    return `ws://127.0.0.1:${this.port}/ws/${room}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.accepted;
  }

  /** Connections open now. */
  get open(): number {
    return this.pairs.size;
  }

  /** Stops forwarding `dir` (`up`: client to server) on the connections open now. */
  hold(dir: Direction): void {
    for (const p of this.pairs) p.holding[dir] = true;
  }

  /** Forwards, in order, what {@link hold} kept in direction `dir` on the open connections, and
   * stops holding it there. */
  release(dir: Direction): void {
    for (const p of this.pairs) {
      p.holding[dir] = false;
      const to = dir === "up" ? p.upstream : p.client;
      for (const chunk of p.held[dir].splice(0)) to.write(chunk);
    }
    this.activity.emit();
  }

  /** Bytes held in direction `dir` on the open connections. */
  heldBytes(dir: Direction): number {
    let n = 0;
    for (const p of this.pairs) for (const b of p.held[dir]) n += b.length;
    return n;
  }

  /** Destroys every open connection (held bytes are lost). */
  dropAll(): void {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream.destroy();
      this.pairs.delete(p);
    }
    this.activity.emit();
  }

  /** Drops everything and stops listening. */
  close(): Promise<void> {
    this.dropAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// ------------------------------------------------------------------------------------ clients

/** One frame a client sent, with the serial number of its socket and the client's label. */
export interface SentFrame {
  readonly socket: number;
  readonly client: string;
  readonly url: string;
  readonly msg: { readonly t: string; readonly id?: number } & Record<string, unknown>;
}

/** One message a client received (those of a `batch` frame one by one, in order). */
export interface ReceivedFrame {
  readonly socket: number;
  readonly client: string;
  readonly msg: Exclude<ServerMessage, BatchMessage>;
}

/**
 * Clients on the `ws` package whose sockets report every frame and state change, and `until`
 * to wait for a condition with a deadline. Call `closeAll` at the end.
 */
export class Lab {
  /** Fires (on a later macrotask, after the client handled it) on every socket event. */
  readonly activity = new Signal();
  /** Every frame the clients sent. */
  readonly sent: SentFrame[] = [];
  /** Every message the clients received (a batch's one by one). */
  readonly received: ReceivedFrame[] = [];
  private readonly clients: ObjectSyncClient[] = [];
  private readonly observers: RawObserver[] = [];
  private readonly sources: Signal[] = [];
  private serial = 0;

  /** A WebSocket constructor (for the client's `WebSocket` option) whose sockets record their
   * frames under `label` and wake {@link until}. */
  socketClass(label: string): WebSocketConstructor {
    const lab = this;
    return class ObservedWebSocket extends WebSocket {
      constructor(url: string) {
        super(url);
        const socket = ++lab.serial;
        const poke = () => setImmediate(() => lab.activity.emit());
        // Registered before the client's handlers, so they run first: report on a later turn.
        for (const type of ["open", "message", "close", "error"] as const) this.addEventListener(type, poke);
        this.addEventListener("message", (ev) => {
          const msg = typeof ev.data === "string" ? decodeServerMessage(ev.data) : null;
          if (msg === null || msg instanceof DecodeError) return;
          for (const m of msg.t === "batch" ? msg.m : [msg]) lab.received.push({ socket, client: label, msg: m });
        });
        const send = this.send.bind(this);
        this.send = ((data: string) => {
          lab.sent.push({ socket, client: label, url, msg: JSON.parse(data) as SentFrame["msg"] });
          send(data);
        }) as WebSocket["send"];
      }
    };
  }

  /** Also wake `until` on this signal (e.g. a proxy's activity). */
  watch(signal: Signal): void {
    this.sources.push(signal);
  }

  /**
   * A client connected to `url` (fast reconnects), its frames recorded under `label`
   * (default `client<N>`); resolves once the document is loaded.
   */
  async join(url: string, options: ConnectOptions = {}, clientOptions: ClientOptions = {}, label?: string): Promise<ObjectSyncClient> {
    const client = new ObjectSyncClient(clientOptions);
    this.clients.push(client);
    const WebSocketClass = this.socketClass(label ?? `client${this.clients.length}`);
    await client.connect(url, { WebSocket: WebSocketClass, backoffInitialMs: 20, backoffMaxMs: 200, ...options });
    return client;
  }

  /**
   * Checks the resend rule for the client recorded as `label`: on each socket, an action is
   * sent at most once and only if the room had not processed it (its id is above the `acked`
   * of that socket's welcome), and the room never answered `duplicate_action`.
   */
  resendViolations(label: string): string[] {
    const problems: string[] = [];
    const acked = new Map<number, number>();
    for (const f of this.received) {
      if (f.client !== label) continue;
      if (f.msg.t === "welcome") acked.set(f.socket, f.msg.acked);
      if (f.msg.t === "reject" && f.msg.code === "duplicate_action") problems.push(`socket ${f.socket}: duplicate_action for ${f.msg.action}`);
    }
    const seen = new Set<string>();
    for (const f of this.sent) {
      if (f.client !== label || f.msg.t !== "action") continue;
      const id = f.msg.id as number;
      const floor = acked.get(f.socket);
      if (floor === undefined) problems.push(`socket ${f.socket}: action ${id} sent before any welcome`);
      else if (id <= floor) problems.push(`socket ${f.socket}: action ${id} sent again though the welcome acked ${floor}`);
      const key = `${f.socket}/${id}`;
      if (seen.has(key)) problems.push(`socket ${f.socket}: action ${id} sent twice`);
      seen.add(key);
    }
    return problems;
  }

  /** How many distinct sockets sent action `id` of the client recorded as `label`. */
  timesSent(label: string, id: number): number {
    return new Set(this.sent.filter((f) => f.client === label && f.msg.t === "action" && f.msg.id === id).map((f) => f.socket)).size;
  }

  /** A raw protocol observer of `url` (see {@link RawObserver}). */
  async observe(url: string): Promise<RawObserver> {
    const o = new RawObserver(url);
    this.observers.push(o);
    this.watch(o.activity);
    await this.until(`observer of ${url} welcomed`, () => o.welcome !== null || o.closed !== null);
    if (o.welcome === null) throw new Error(`observer of ${url} closed: ${o.closed}`);
    return o;
  }

  /**
   * Resolves once `check()` holds, looking again after every socket event, client event and
   * watched signal; rejects after `timeoutMs` naming `what`.
   */
  until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const offs: Disposer[] = [];
      let done = false;
      const finish = (err: Error | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const off of offs) off();
        if (err === null) resolve();
        else reject(err);
      };
      const look = () => {
        try {
          if (check()) finish(null);
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
        }
      };
      const timer = setTimeout(() => {
        let state = "";
        try {
          state = this.clients.map((c) => `${c.clientId}: ${c.state}, v${c.version}, ${c.pendingCount} pending`).join("; ");
        } catch {
          state = "(unknown)";
        }
        finish(new Error(`timed out after ${timeoutMs} ms waiting for: ${what} [clients: ${state}]`));
      }, timeoutMs);
      offs.push(this.activity.on(look));
      for (const s of this.sources) offs.push(s.on(look));
      for (const c of this.clients) {
        offs.push(c.on("change", look), c.on("state", look), c.on("presence", look), c.on("reject", look));
      }
      look();
    });
  }

  /** Resolves once every client in `clients` is open, has nothing pending and all are at one
   * version, at least `minVersion`. */
  settled(clients: readonly ObjectSyncClient[], minVersion = 0, timeoutMs = 10_000): Promise<void> {
    return this.until(
      `${clients.length} clients settled at one version`,
      () => {
        const v = clients[0]?.version ?? null;
        return (
          v !== null &&
          v >= minVersion &&
          clients.every((c) => c.state === "open" && c.pendingCount === 0 && c.version === v)
        );
      },
      timeoutMs,
    );
  }

  /** Closes every client and observer made here. */
  closeAll(): void {
    for (const c of this.clients) c.close();
    for (const o of this.observers) o.close();
  }
}

/** A client's local view as plain JSON, for comparing clients (children in order). */
export interface TreeJson {
  readonly id: string;
  readonly type: string;
  readonly attrs: Record<string, JsonValue>;
  readonly children: TreeJson[];
}

/** The whole local view of `client` (bounded by `max` objects). */
export function treeOf(client: ObjectSyncClient, max = 100_000): TreeJson {
  let count = 0;
  const walk = (o: SObject): TreeJson => {
    if (++count > max) throw new Error(`more than ${max} objects`);
    return { id: o.id, type: o.type, attrs: { ...o.attrs() }, children: o.children.map(walk) };
  };
  return walk(client.root);
}

// ----------------------------------------------------------------------------- raw observer

/**
 * A bare protocol client (no rebase, no client library): says `hello`, then records every
 * server message, so tests can check the room's own stream (update versions, origins and
 * action ids) independently of the client under test.
 */
export class RawObserver {
  /** Fires after every message and on close. */
  readonly activity = new Signal();
  /** Every decoded server message, in order. */
  readonly messages: ServerMessage[] = [];
  /** The welcome, once received. */
  welcome: Extract<ServerMessage, { t: "welcome" }> | null = null;
  /** The close code and reason, once closed. */
  closed: string | null = null;
  /** Frames that broke the protocol (binary, undecodable). */
  readonly violations: string[] = [];
  private readonly ws: WebSocket;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on("open", () => this.ws.send(JSON.stringify({ t: "hello", protocol: 1 })));
    this.ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (isBinary) {
        this.violations.push("a binary frame");
        return;
      }
      const msg = decodeServerMessage(data.toString());
      if (msg instanceof DecodeError) {
        this.violations.push(`undecodable: ${msg.reason}`);
        return;
      }
      this.messages.push(msg);
      if (msg.t === "welcome") this.welcome = msg;
      this.activity.emit();
    });
    this.ws.on("close", (code: number, reason: Buffer) => {
      this.closed = `${code} ${reason.toString()}`;
      this.activity.emit();
    });
    this.ws.on("error", () => {
      // A close event follows.
    });
  }

  /** The `update` messages received, in order. */
  get updates(): Extract<ServerMessage, { t: "update" }>[] {
    return this.messages.filter((m): m is Extract<ServerMessage, { t: "update" }> => m.t === "update");
  }

  /** The room version this observer has seen. */
  get version(): number {
    return this.updates.at(-1)?.v ?? this.welcome?.version ?? -1;
  }

  /** Closes the socket. */
  close(): void {
    this.ws.close();
  }
}
