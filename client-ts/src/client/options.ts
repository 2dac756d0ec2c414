/**
 * The options and events of `ObjectSyncClient` (types only): how it connects, what it is given
 * (schema, classes, defaults), what `create` and `call` take, and every event it dispatches.
 */

import type { ConnectionState, WebSocketConstructor } from "../connection.js";
import type { ObjectSyncError, RejectedError } from "../errors.js";
import type { JsonObject, JsonValue, NodeSnapshot, UserInfo } from "../protocol.js";
import type { Schema } from "../schema.js";
import type { SObject, SObjectClass } from "../sobject.js";

/** Options of `ObjectSyncClient.connect`. */
export interface ConnectOptions {
  /**
   * Passed to the server's auth hook (`hello.token`). A function is asked before every
   * connection attempt (it may fetch a fresh signed token from the application's backend), so a
   * session closed because its token expired (close 4006) reconnects with a new one and resumes
   * without losing anything. If it throws, the client stops (`closed`).
   */
  readonly token?: string | (() => string | Promise<string>);
  /** The WebSocket constructor (default `globalThis.WebSocket`). */
  readonly WebSocket?: WebSocketConstructor;
  /** First reconnect delay (default 100 ms, doubling). */
  readonly backoffInitialMs?: number;
  /** Reconnect delay cap (default 10 s). */
  readonly backoffMaxMs?: number;
  /** Reconnect after this long without any message; 0 (default) disables. */
  readonly silenceTimeoutMs?: number;
  /** Random numbers for the backoff jitter (default `Math.random`). */
  readonly random?: () => number;
}

/** Options of the client. */
export interface ClientOptions<S extends Schema = Schema> {
  /**
   * The room's types (the `schema` export of `objectsync codegen ts`, or a copy with some
   * classes replaced by subclasses): types the client (`create` by class or by type name, with
   * typed attributes), makes each type's objects instances of its class, fills each type's
   * defaults into objects created locally, and checks every change against the attribute's
   * kind before sending it (throwing a `SchemaError`).
   */
  readonly schema?: S;
  /**
   * The fingerprint of the types this client was built for (the `fingerprint` export of
   * `objectsync codegen ts`), sent in every `hello`. A server whose types differ (a new version
   * of the application was deployed) refuses the connection with close code 4009: the client
   * raises `schema_mismatch` and stops reconnecting, so the app can reload. Without it the
   * server does not check.
   */
  readonly fingerprint?: string;
  /** Classes to instantiate per type name (see `ObjectSyncClient.register`); these win over the schema's. */
  readonly classes?: Readonly<Record<string, SObjectClass>>;
  /** Attribute values per type for objects created locally, until the server's arrive; these win over the schema's. */
  readonly defaults?: Readonly<Record<string, JsonObject>>;
}

/**
 * Options of `ObjectSyncClient.create` as JSON, whatever the type (what an untyped client's
 * `create` accepts; with a schema, `create` takes `TypedCreateOptions` of the type's class).
 */
export interface CreateOptions {
  /** Initial attributes (the server fills the rest with the type's defaults). */
  readonly attrs?: JsonObject;
  /** Position among the parent's children (the end if absent). */
  readonly index?: number;
  /** Children to create inside it. */
  readonly children?: NodeSnapshot[];
}

/** What every variant of `create`'s options has in common (typed or not). */
export interface CreateOptionsLoose {
  readonly attrs?: object;
  readonly index?: number;
  readonly children?: NodeSnapshot[];
}

/** Options of `ObjectSyncClient.call`. */
export interface CallOptions {
  /** Give up after this long (default 15 s; the server's own limit is 10 s). */
  readonly timeoutMs?: number;
}

/** Events of the client. */
export interface ClientEvents {
  /** The connection state changed. */
  state: { readonly state: ConnectionState; readonly previous: ConnectionState };
  /**
   * A `welcome` was handled: the document is loaded (or resumed). `undoSteps` / `redoSteps`:
   * what the server still holds of this client's undo history (0 after the room unloaded or the
   * server restarted; the document itself is intact), e.g. to tell the user undo starts afresh.
   */
  ready: {
    readonly clientId: string;
    readonly resumed: boolean;
    readonly undoSteps: number;
    readonly redoSteps: number;
    /** Who this client is, as the server's auth hook said (`null`: anonymous). */
    readonly identity: UserInfo | null;
  };
  /** An object appeared in the local view. */
  created: { readonly object: SObject; readonly local: boolean };
  /** An object left the local view. */
  destroyed: { readonly object: SObject; readonly local: boolean };
  /** The server refused an action of this client; its effects were rolled back. */
  reject: { readonly error: RejectedError };
  /**
   * Another client's presence changed (`null`: cleared or left). `user`: who it is, as the server
   * says (`null` for an anonymous client, or when it left).
   */
  presence: { readonly client: string; readonly state: JsonValue; readonly user: UserInfo | null };
  /** The server reported an error, or sent something this client could not read. */
  error: { readonly error: ObjectSyncError };
  /** A batch of local-view changes was reported (after all its other events). */
  change: { readonly local: boolean };
  /**
   * The confirmed version or the number of pending actions changed — also when an own action
   * was acknowledged exactly as predicted (which changes nothing visible), e.g. for a status line.
   */
  sync: { readonly version: number | null; readonly pending: number };
  /**
   * The server's types are not the ones this client was built for (`fingerprint`; close code
   * 4009): a new version of the application was deployed. The client has stopped; reload the
   * page (or the bundle) to get the new one. `reason` is the server's, with both fingerprints.
   */
  schema_mismatch: { readonly fingerprint: string; readonly reason: string };
}
