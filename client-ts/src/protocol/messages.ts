/**
 * The messages of wire protocol v1 (docs/protocol.md, "Client -> server" and "Server -> client"): every one a client sends, with
 * {@link encodeClientMessage}, and every one the server sends (decoded by `decode.ts`).
 */

import type { Change, JsonValue, Snapshot } from "./changes.js";

// ---------------------------------------------------------------------------------------------
// Client -> server

/** Resume data of a reconnecting client (`hello.resume`). */
export interface Resume {
  client: string;
  resume_token: string;
  version: number;
}
/** First message of a connection. */
export interface HelloMessage {
  t: "hello";
  protocol: number;
  token?: string;
  resume?: Resume;
  /** The client accepts `batch` frames (several server messages in one; see {@link BatchMessage}). */
  batch?: boolean;
  /** The client accepts snapshots in the compact form (decoded into the nested one here). */
  compact_snapshots?: boolean;
  /**
   * The fingerprint of the types the client was built for (the generated `fingerprint`): a
   * server with other types closes with 4009 (`schemaMismatch`).
   */
  schema?: string;
}
/** A batch of changes applied atomically, in order. */
export interface ActionMessage {
  t: "action";
  id: number;
  base: number;
  changes: Change[];
  /** The undo step it belongs to: this client's actions naming one step undo together. */
  step?: string;
}
/** Undo (or redo) this client's latest step touching `scope` (anywhere if absent). */
export interface UndoRedoMessage {
  t: "undo" | "redo";
  id: number;
  scope?: string;
}
/** Sets this client's ephemeral presence state (`null` clears it). */
export interface SetPresenceMessage {
  t: "presence";
  state: JsonValue;
}
/** Calls a service registered on the server. */
export interface CallMessage {
  t: "call";
  id: number;
  service: string;
  args: JsonValue;
}
/** Every message a client sends. */
export type ClientMessage =
  | HelloMessage
  | ActionMessage
  | UndoRedoMessage
  | SetPresenceMessage
  | CallMessage;

/** Encodes a client message as the text of one frame. */
export function encodeClientMessage(msg: ClientMessage): string {
  return JSON.stringify(msg);
}

// ---------------------------------------------------------------------------------------------
// Server -> client

/** The server's answer to `hello`. */
export interface WelcomeMessage {
  t: "welcome";
  protocol: number;
  /** This connection's client id. */
  client: string;
  /** Keep it to resume as the same client later. */
  resume_token: string;
  /** The room's version now. */
  version: number;
  /** The highest action id of this client the room has processed (0 if none). */
  acked: number;
  /** Present when the client must (re)load the whole tree. */
  snapshot?: Snapshot;
  /** Every other client's presence state, by client id. */
  presence: Record<string, JsonValue>;
  /** Whether this client may not change anything. */
  read_only: boolean;
  /** Undo steps the room holds for this client (0 after the room unloaded or the server
   * restarted: undo histories live in the room's memory). */
  undo_steps: number;
  /** Redo steps the room holds for this client. */
  redo_steps: number;
  /** Who this client is, as the server's auth hook said (absent: anonymous). */
  identity?: UserInfo;
  /** Who the clients in `presence` are, for those with an identity. */
  users?: Record<string, UserInfo>;
}
/** A client's identity as the server tells it: the user id, and a name and roles if any. */
export interface UserInfo {
  id: string;
  name?: string;
  roles?: string[];
}
/** One accepted state transition (version `v`). */
export interface UpdateMessage {
  t: "update";
  v: number;
  /** The client id that caused it, `"server"` for server code. */
  origin: string;
  /** The origin's action id (absent for server code). */
  action?: number;
  changes: Change[];
}
/** An accepted action that only emitted events (takes no version). */
export interface EventsMessage {
  t: "events";
  v: number;
  origin: string;
  action?: number;
  changes: Change[];
}
/** Sent only to the sender: action `action` changed nothing. */
export interface RejectMessage {
  t: "reject";
  action: number;
  code: string;
  reason: string;
  /** Index of the failing change, when one is to blame. */
  change?: number;
}
/** Another client's presence changed; `null` when it cleared it or left. */
export interface PresenceMessage {
  t: "presence";
  client: string;
  /** Who the client is: the server's word, which its own `state` cannot change (absent: anonymous). */
  user?: UserInfo;
  state: JsonValue;
}
/** A service error (`result.error`). */
export interface WireError {
  code: string;
  reason: string;
}
/** The answer to a `call`: either `ok` or `error`. */
export type ResultMessage =
  | { t: "result"; id: number; ok: JsonValue; error?: undefined }
  | { t: "result"; id: number; ok?: undefined; error: WireError };
/** A message could not be understood; nothing was applied. */
export interface ErrorMessage {
  t: "error";
  code: string;
  reason: string;
}
/** A message a `batch` may carry: any server message but `welcome` and `batch`. */
export type BatchedMessage =
  | UpdateMessage
  | EventsMessage
  | RejectMessage
  | PresenceMessage
  | ResultMessage
  | ErrorMessage;
/**
 * Several server messages in one frame, only to clients whose `hello` said `batch: true`: to be
 * handled exactly as if they had arrived one by one, in order.
 */
export interface BatchMessage {
  t: "batch";
  /** The messages, in order. */
  m: BatchedMessage[];
}
/** Every message the server sends. */
export type ServerMessage = WelcomeMessage | BatchedMessage | BatchMessage;

/** The `t` of a server message. */
export type ServerMessageType = ServerMessage["t"];
