/**
 * Typed errors of the client. `code` is the server's code (docs/protocol.md, Error codes) or a
 * client-side one (`not_ready`, `read_only`, `disconnected`, `timeout`, `closed`, `resync`,
 * `rejected`, `async_transaction`).
 */

import type { Change, ErrorCode } from "./protocol.js";

/** A code of the protocol, or another string (a later server may add codes). */
export type AnyErrorCode = ErrorCode | (string & {});

/** Base class of every error this client raises or reports. */
export class ObjectSyncError extends Error {
  /** Machine-readable code. */
  readonly code: AnyErrorCode;
  /** Human-readable reason (the server's, when it gave one). */
  readonly reason: string;
  constructor(code: AnyErrorCode, reason: string) {
    super(`${code}: ${reason}`);
    this.name = "ObjectSyncError";
    this.code = code;
    this.reason = reason;
  }
}

/** The server refused an action (or undo/redo): its local effects were rolled back. */
export class RejectedError extends ObjectSyncError {
  /** The action id. */
  readonly action: number;
  /** Index of the failing change, when one is to blame. */
  readonly change: number | undefined;
  /** The changes of the action as last sent. */
  readonly changes: readonly Change[];
  constructor(code: AnyErrorCode, reason: string, action: number, change: number | undefined, changes: readonly Change[]) {
    super(code, reason);
    this.name = "RejectedError";
    this.action = action;
    this.change = change;
    this.changes = changes;
  }
}

/** A service call failed: refused by the server, timed out, or lost with the connection. */
export class CallError extends ObjectSyncError {
  /** The service called. */
  readonly service: string;
  constructor(code: AnyErrorCode, reason: string, service: string) {
    super(code, reason);
    this.name = "CallError";
    this.service = service;
  }
}
