/**
 * The socket lifecycle, after y-websocket: connect, say `hello`, wait for `welcome`, dispatch
 * decoded messages to handlers keyed by their `t` (a `batch`'s one by one, in order, as if each
 * had come in a frame of its own), and on a drop reconnect with a capped, jittered exponential
 * backoff (100 ms doubling up to a cap). An optional silence watchdog reconnects a connection
 * that received nothing for too long.
 *
 * It knows nothing of documents: the `hello` (with its resume data) is built by a callback,
 * and what a `welcome` means is the handlers' business (`rebase.ts`). The WebSocket constructor
 * is injectable, so tests run in node with a fake socket.
 */

import type { Disposer } from "./emitter.js";
import { Emitter } from "./emitter.js";
import type { BatchedMessage, ClientMessage, HelloMessage, WelcomeMessage } from "./protocol.js";
import { CloseCode, DecodeError, decodeServerMessage, encodeClientMessage } from "./protocol.js";

/**
 * `connecting`: the first attempt, until `welcome`; `open`: welcomed; `reconnecting`: dropped,
 * waiting or trying again; `closed`: closed for good (by `close()` or a refusal).
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** A handler type checked bivariantly, so DOM and library sockets fit {@link WebSocketLike}. */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** What the connection needs of a WebSocket (the browser's fits). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ readonly data: unknown }> | null;
  onclose: Handler<{ readonly code: number; readonly reason: string }> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor (the browser's `WebSocket`, or a fake in tests). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The `readyState` of an open socket. */
const OPEN = 1;

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  /** `ws://HOST:PORT/ws/<room>`. */
  readonly url: string;
  /** Builds the `hello` of each attempt (resume data changes between attempts). */
  readonly hello: () => HelloMessage;
  /** Runs before each attempt opens its socket (e.g. fetches a fresh token); if it fails, the
   * connection gives up (`close` with `reconnectInMs: null`, code 4001 and the error). */
  readonly prepare?: () => Promise<void>;
  /** The WebSocket constructor; `globalThis.WebSocket` by default. */
  readonly WebSocket?: WebSocketConstructor;
  /** First reconnect delay before jitter (default 100 ms); doubles on each failed attempt. */
  readonly backoffInitialMs?: number;
  /** Cap of the reconnect delay (default 10 s). */
  readonly backoffMaxMs?: number;
  /** Random numbers in [0, 1) for the jitter (default `Math.random`). */
  readonly random?: () => number;
  /** Reconnect when nothing arrived for this long; 0 (default) turns the watchdog off.
   * Browsers answer server pings without telling scripts, so pick more than a quiet room's gap. */
  readonly silenceTimeoutMs?: number;
  /** Close codes after which the connection gives up (default {@link DEFAULT_FATAL_CLOSE_CODES}). */
  readonly fatalCloseCodes?: readonly number[];
}

/**
 * The close codes after which reconnecting cannot help, so the connection gives up: a bad
 * handshake, an unauthorized client, and a client built for other types than the server's.
 */
export const DEFAULT_FATAL_CLOSE_CODES: readonly number[] = [
  CloseCode.badHandshake,
  CloseCode.unauthorized,
  CloseCode.schemaMismatch,
];

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  /** The state changed. */
  state: { readonly state: ConnectionState; readonly previous: ConnectionState };
  /** The socket closed; `reconnectInMs` is `null` when the connection gave up. */
  close: { readonly code: number; readonly reason: string; readonly reconnectInMs: number | null };
  /** A frame could not be decoded (it was ignored). */
  decodeError: { readonly error: DecodeError; readonly text: string };
}

/** What handlers get: every server message but `batch`, whose messages are handled one by one. */
type HandledMessage = WelcomeMessage | BatchedMessage;

/** The `t` of a message handlers get. */
type HandledType = HandledMessage["t"];

type MessageOf<T extends HandledType> = Extract<HandledMessage, { t: T }>;

/** The reconnect delay before attempt `attempt` (0-based): capped doubling with jitter in
 * [half, full] of the step, so that clients dropped together do not return together. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (step / 2) * random());
}

/** One logical connection to a room, across socket drops; see the module docs. */
export class Connection extends Emitter<ConnectionEvents> {
  private readonly options: ConnectionOptions;
  private readonly handlers = new Map<HandledType, Set<(msg: HandledMessage) => void>>();
  private socket: WebSocketLike | null = null;
  private current: ConnectionState = "closed";
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private silenceTimer: ReturnType<typeof setTimeout> | null = null;
  private started = false;

  constructor(options: ConnectionOptions) {
    super();
    this.options = options;
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.current;
  }

  /**
   * Calls `fn` for every message of type `t` (after `welcome` for all but `welcome`), those
   * inside a `batch` included: each of them on its own, in order.
   */
  handle<T extends HandledType>(t: T, fn: (msg: MessageOf<T>) => void): Disposer {
    let set = this.handlers.get(t);
    if (set === undefined) this.handlers.set(t, (set = new Set()));
    const wrapped = fn as (msg: HandledMessage) => void;
    set.add(wrapped);
    return () => {
      set.delete(wrapped);
    };
  }

  /** Starts connecting (once; later calls do nothing until `close`). */
  connect(): void {
    if (this.started) return;
    this.started = true;
    this.attempts = 0;
    this.setState("connecting");
    this.open();
  }

  /** Sends a message if the connection is open (welcomed); returns whether it was sent. */
  send(msg: ClientMessage): boolean {
    const ws = this.socket;
    if (this.current !== "open" || ws === null || ws.readyState !== OPEN) return false;
    ws.send(encodeClientMessage(msg));
    return true;
  }

  /** Drops the current socket and connects again at once (e.g. to resync after a gap). */
  reconnect(): void {
    if (!this.started) return;
    this.dropSocket(1000, "reconnecting");
    this.clearTimers();
    this.setState("reconnecting");
    this.open();
  }

  /** Closes for good: no reconnect. */
  close(code = 1000, reason = "client closed"): void {
    this.started = false;
    this.clearTimers();
    this.dropSocket(code, reason);
    this.setState("closed");
  }

  // -------------------------------------------------------------------------------------------

  private open(): void {
    const prepare = this.options.prepare;
    if (prepare === undefined) {
      this.openSocket();
      return;
    }
    prepare().then(
      () => {
        if (this.started && this.socket === null) this.openSocket();
      },
      (e: unknown) => {
        this.started = false;
        this.clearTimers();
        const reason = `could not prepare the connection: ${e instanceof Error ? e.message : String(e)}`;
        this.dispatch("close", { code: CloseCode.unauthorized, reason, reconnectInMs: null });
        this.setState("closed");
      },
    );
  }

  private openSocket(): void {
    const Ctor = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (Ctor === undefined) throw new Error("no WebSocket available: pass one in the options");
    let ws: WebSocketLike;
    try {
      ws = new Ctor(this.options.url);
    } catch {
      this.scheduleReconnect(CloseCode.badHandshake, "could not create the socket");
      return;
    }
    this.socket = ws;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      this.armWatchdog();
      ws.send(encodeClientMessage(this.options.hello()));
    };
    ws.onmessage = (ev) => {
      if (this.socket !== ws) return;
      this.armWatchdog();
      if (typeof ev.data !== "string") {
        this.dispatch("decodeError", { error: new DecodeError("binary frames are not part of the protocol"), text: "" });
        return;
      }
      this.receive(ws, ev.data);
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      this.socket = null;
      this.scheduleReconnect(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // A close event follows; nothing to do here.
    };
  }

  private receive(ws: WebSocketLike, text: string): void {
    const msg = decodeServerMessage(text);
    if (msg instanceof DecodeError) {
      this.dispatch("decodeError", { error: msg, text });
      return;
    }
    if (msg.t !== "batch") {
      this.deliver(msg);
      return;
    }
    for (const m of msg.m) {
      // A handler may have dropped the socket (a resync, `close()`): the rest of the batch went
      // with it, as frames after it would have.
      if (this.socket !== ws) return;
      this.deliver(m);
    }
  }

  /** Runs the handlers of one message, as it arrived on the current socket. */
  private deliver(msg: HandledMessage): void {
    const previous = this.current;
    if (msg.t === "welcome") {
      // Open before the handlers run (they may send), announced after (the document is ready).
      this.attempts = 0;
      this.current = "open";
    } else if (previous !== "open") {
      return; // nothing but welcome is meaningful before it
    }
    for (const fn of [...(this.handlers.get(msg.t) ?? [])]) {
      try {
        fn(msg);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (msg.t === "welcome" && previous !== "open" && this.current === "open") {
      this.dispatch("state", { state: "open", previous });
    }
  }

  private scheduleReconnect(code: number, reason: string): void {
    this.clearTimers();
    const fatal = (this.options.fatalCloseCodes ?? DEFAULT_FATAL_CLOSE_CODES).includes(code);
    if (!this.started || fatal) {
      this.started = false;
      this.dispatch("close", { code, reason, reconnectInMs: null });
      this.setState("closed");
      return;
    }
    const delay = backoffDelayMs(
      this.attempts++,
      this.options.backoffInitialMs ?? 100,
      this.options.backoffMaxMs ?? 10_000,
      this.options.random ?? Math.random,
    );
    this.dispatch("close", { code, reason, reconnectInMs: delay });
    this.setState("reconnecting");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.started) this.open();
    }, delay);
  }

  private armWatchdog(): void {
    const ms = this.options.silenceTimeoutMs ?? 0;
    if (ms <= 0) return;
    if (this.silenceTimer !== null) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      this.silenceTimer = null;
      if (this.socket === null) return;
      this.dropSocket(CloseCode.idle, "silent too long");
      this.scheduleReconnect(CloseCode.idle, "silent too long");
    }, ms);
  }

  private dropSocket(code: number, reason: string): void {
    const ws = this.socket;
    this.socket = null;
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code, reason);
    } catch {
      // Closing a socket that never opened may throw in some implementations; it is gone anyway.
    }
  }

  private clearTimers(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.silenceTimer !== null) clearTimeout(this.silenceTimer);
    this.reconnectTimer = this.silenceTimer = null;
  }

  private setState(state: ConnectionState): void {
    const previous = this.current;
    if (previous === state) return;
    this.current = state;
    this.dispatch("state", { state, previous });
  }
}
