/**
 * Fake WebSockets linked to a {@link SimServer}, with every frame and event queued until the
 * test delivers it: `deliverAll()` for a quiet network, `deliverRandom(rng)` for seeded
 * interleavings (order is kept per socket and direction, as TCP does), `drop()` for a lost
 * connection. Test-only.
 */

import type { WebSocketConstructor, WebSocketLike } from "../connection.js";
import type { Rng } from "./random.js";
import type { ServerSession, SimServer } from "./sim-server.js";

type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** One fake socket: the client end of a link to the simulated server. */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: Handler<unknown> | null = null;
  onmessage: Handler<{ readonly data: unknown }> | null = null;
  onclose: Handler<{ readonly code: number; readonly reason: string }> | null = null;
  onerror: Handler<unknown> | null = null;
  /** Frames and events on their way, per direction. */
  readonly toServer: (() => void)[] = [];
  readonly toClient: (() => void)[] = [];
  /** Every frame the client sent, decoded. */
  readonly sent: { t: string }[] = [];
  session: ServerSession | null = null;

  constructor(
    readonly url: string,
    net: FakeNetwork,
  ) {
    net.sockets.push(this);
    if (net.refuse > 0) {
      net.refuse--;
      this.toClient.push(() => this.finish(1006, "refused"));
      return;
    }
    this.toClient.push(() => {
      if (this.readyState !== 0) return;
      this.readyState = 1;
      this.session = net.server.connect((text) => {
        this.toClient.push(() => {
          if (this.readyState === 1) this.onmessage?.({ data: text });
        });
      });
      this.onopen?.({});
    });
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data) as { t: string });
    this.toServer.push(() => this.session?.receive(data));
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.toServer.push(() => this.session?.close());
    this.toClient.push(() => this.finish(code, reason));
  }

  /** The server (or the network) drops the connection now; queued frames are lost. */
  drop(code = 1006, reason = "dropped"): void {
    this.toServer.length = 0;
    this.toClient.length = 0;
    this.session?.close();
    this.toClient.push(() => this.finish(code, reason));
  }

  private finish(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.session?.close();
    this.onclose?.({ code, reason });
  }
}

/** The fake network: a socket constructor bound to one simulated server. */
export class FakeNetwork {
  readonly sockets: FakeSocket[] = [];
  /** How many next connection attempts fail. */
  refuse = 0;
  /** Pass as the client's `WebSocket` option. */
  readonly WebSocket: WebSocketConstructor;

  constructor(readonly server: SimServer) {
    const net = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string) {
        super(url, net);
      }
    };
  }

  /** The latest socket. */
  get last(): FakeSocket | undefined {
    return this.sockets[this.sockets.length - 1];
  }

  private queues(): (() => void)[][] {
    return this.sockets.flatMap((s) => [s.toServer, s.toClient]).filter((q) => q.length > 0);
  }

  /** Delivers queued frames and events until none are left (at most `max`). */
  deliverAll(max = 10_000): number {
    let n = 0;
    for (; n < max; n++) {
      const q = this.queues()[0];
      if (q === undefined) break;
      (q.shift() as () => void)();
    }
    return n;
  }

  /** Delivers one queued item from a random socket and direction; `false` if none. */
  deliverRandom(rng: Rng): boolean {
    const qs = this.queues();
    if (qs.length === 0) return false;
    (rng.pick(qs).shift() as () => void)();
    return true;
  }
}
