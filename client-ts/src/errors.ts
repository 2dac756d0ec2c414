/**
 * Typed errors of the client. `code` is the server's code (docs/protocol.md, Error codes) or a
 * client-side one (`not_ready`, `read_only`, `disconnected`, `timeout`, `closed`, `resync`,
 * `rejected`, `async_transaction`). A {@link SchemaError} is the client's own refusal of a change,
 * with the code the server would have answered.
 */

import type { Change, ErrorCode } from "./protocol.js";
import type { AttrKind } from "./schema.js";

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

/** The codes a {@link SchemaError} carries: the server's for the same refusals. */
export type SchemaErrorCode = "no_such_type" | "no_such_attribute" | "wrong_kind";

/** Where a {@link SchemaError} points. */
export interface SchemaErrorTarget {
  /** The object changed or created. */
  readonly obj: string;
  /** Its type name. */
  readonly type: string;
  /** The attribute, unless the type itself is unknown. */
  readonly attr?: string;
  /** The attribute's kind, for `wrong_kind`. */
  readonly kind?: AttrKind;
}

/**
 * The client's schema refused a change before it was applied or sent, as the server would have:
 * a type the schema does not have (`no_such_type`), an attribute the object's type does not have
 * (`no_such_attribute`), or a change that does not fit the attribute's kind (`wrong_kind`).
 * Thrown by the edit (or `create`) that made the change; a transaction it was part of is undone.
 */
export class SchemaError extends ObjectSyncError {
  declare readonly code: SchemaErrorCode;
  /** The object changed or created. */
  readonly obj: string;
  /** Its type name. */
  readonly type: string;
  /** The attribute, unless the type itself is unknown. */
  readonly attr: string | undefined;
  /** The attribute's kind, for `wrong_kind`. */
  readonly kind: AttrKind | undefined;
  constructor(code: SchemaErrorCode, reason: string, target: SchemaErrorTarget) {
    super(code, reason);
    this.name = "SchemaError";
    this.obj = target.obj;
    this.type = target.type;
    this.attr = target.attr;
    this.kind = target.kind;
  }
}
