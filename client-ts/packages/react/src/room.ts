/**
 * `Room`: one client and its one connection, shared by every component under a provider. It
 * connects when the first component retains it and closes a tick after the last one releases
 * it, so React StrictMode's mount, unmount and mount again (all in one commit) keeps the same
 * connection instead of opening a second one. It also keeps what the client does not: this
 * client's own presence state and the status snapshot, each with a stable identity until it
 * changes (what `useSyncExternalStore` needs). No React here.
 */

import type { ClientOptions, ConnectOptions, JsonValue, ObjectSyncClient, RejectedError, Schema } from "objectsync-client";
import { ObjectSyncClient as Client } from "objectsync-client";

/** Where a room's client connects, and how. */
export interface RoomOptions<S extends Schema = Schema> {
  /** `ws://HOST:PORT/ws/<room>`. */
  readonly url: string;
  /** Passed to `connect` (token, WebSocket constructor, backoff). */
  readonly connect?: ConnectOptions;
  /** Passed to the client (`schema`, `classes`, `defaults`). */
  readonly client?: ClientOptions<S>;
}

/** What `useStatus` reads: the connection and the room's version, as one snapshot. */
export interface Status {
  /** The connection state. */
  readonly state: ObjectSyncClient["state"];
  /** Whether the document is loaded (edits are possible, online or not). */
  readonly ready: boolean;
  /** This client's id in the room (`null` before the first welcome). */
  readonly clientId: string | null;
  /** The confirmed version (`null` before the first welcome). */
  readonly version: number | null;
  /** Actions waiting for the server's answer. */
  readonly pending: number;
  /** Whether the server said this client may not change anything. */
  readonly readOnly: boolean;
  /** The last action the server refused (already rolled back), `null` if none. */
  readonly lastReject: RejectedError | null;
}

type Listener = () => void;

/** Delay before a released room closes: a retain within it (StrictMode's remount) keeps it. */
const CLOSE_DELAY_MS = 0;

/** One client, one connection; see the module docs. */
export class Room<S extends Schema = Schema> {
  readonly client: ObjectSyncClient<S>;
  private readonly url: string;
  private readonly connectOptions: ConnectOptions;
  private retained = 0;
  private connected = false;
  private closeTimer: ReturnType<typeof setTimeout> | null = null;
  private isClosed = false;
  /** The error of the first connection attempt, if it failed (`connect` rejected). */
  connectError: unknown = null;
  private myPresence: JsonValue = null;
  private readonly presenceListeners = new Set<Listener>();
  private status: Status;
  private readonly statusListeners = new Set<Listener>();
  private lastReject: RejectedError | null = null;

  constructor(options: RoomOptions<S>, client?: ObjectSyncClient<S>) {
    this.url = options.url;
    this.connectOptions = options.connect ?? {};
    this.client = client ?? new Client<S>(options.client ?? {});
    this.status = this.readStatus();
    const refresh = () => this.refreshStatus();
    this.client.on("state", refresh);
    this.client.on("sync", refresh);
    this.client.on("ready", refresh);
    this.client.on("reject", ({ error }) => {
      this.lastReject = error;
      refresh();
    });
  }

  /** Whether the room closed for good (a retain after that needs a new room). */
  get closed(): boolean {
    return this.isClosed;
  }

  /** A component uses the room: connects the first time, cancels a pending close. */
  retain(): void {
    if (this.isClosed) throw new Error("this room is closed; make a new one");
    this.retained++;
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    if (this.connected) return;
    this.connected = true;
    // The promise settles with the first welcome; a failure shows in `state` too.
    this.client.connect(this.url, this.connectOptions).catch((e: unknown) => {
      this.connectError = e;
    });
  }

  /** A component is done with the room: the last one closes it, a tick later. */
  release(): void {
    this.retained = Math.max(0, this.retained - 1);
    if (this.retained > 0 || this.closeTimer !== null) return;
    this.closeTimer = setTimeout(() => {
      this.closeTimer = null;
      if (this.retained > 0) return;
      this.isClosed = true;
      this.client.close();
    }, CLOSE_DELAY_MS);
  }

  // ----------------------------------------------------------------------------- presence

  /** This client's presence state as last set here. */
  get presence(): JsonValue {
    return this.myPresence;
  }

  /** Sets this client's presence state (sent to the others; kept across reconnects). */
  setPresence(state: JsonValue): void {
    this.myPresence = state;
    this.client.setPresence(state);
    for (const l of [...this.presenceListeners]) l();
  }

  /** Calls `fn` when this client's own presence state changes. */
  onPresence(fn: Listener): () => void {
    this.presenceListeners.add(fn);
    return () => this.presenceListeners.delete(fn);
  }

  // ------------------------------------------------------------------------------- status

  /** The status now (the same object until something in it changes). */
  getStatus(): Status {
    return this.status;
  }

  /** Calls `fn` when the status changes. */
  onStatus(fn: Listener): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** Forgets the last refusal (a UI dismissed it). */
  clearReject(): void {
    this.lastReject = null;
    this.refreshStatus();
  }

  private readStatus(): Status {
    const c = this.client;
    return {
      state: c.state,
      ready: c.ready,
      clientId: c.clientId,
      version: c.version,
      pending: c.pendingCount,
      readOnly: c.readOnly,
      lastReject: this.lastReject,
    };
  }

  private refreshStatus(): void {
    const next = this.readStatus();
    const prev = this.status;
    const same = (Object.keys(next) as (keyof Status)[]).every((k) => Object.is(next[k], prev[k]));
    if (same) return;
    this.status = next;
    for (const l of [...this.statusListeners]) l();
  }
}
