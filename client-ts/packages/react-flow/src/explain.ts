/**
 * Refusals in words a user can read: the server's reason for a rule of the application
 * (`invalid`: its validator's own sentence), a sentence per protocol code for the others, and
 * never an object id (ids are for programs: `c3:17` tells a person nothing).
 */

import type { ObjectSyncError } from "objectsync-client";

/** What the UI shows of a refused change. */
export interface FlowReject {
  /** The server's (or the client's) code: `invalid`, `no_such_object`, `read_only`... */
  readonly code: string;
  /** The reason as the server gave it (may name ids: for logs). */
  readonly reason: string;
  /** The reason for a person: no ids. */
  readonly message: string;
  /** What was refused: a drag, a connection, a deletion or another edit. */
  readonly what: "drag" | "connect" | "delete" | "edit";
}

/** Sentences for the codes whose server reason is written for programs. */
const MESSAGES: Readonly<Record<string, string>> = {
  no_such_object: "someone else deleted it first",
  read_only: "this room is read-only for you",
  permission_denied: "you may not change this",
  nothing_to_undo: "there is nothing of yours left to undo",
  nothing_to_redo: "there is nothing to redo",
  undo_conflict: "someone else changed it since, so it cannot be undone",
  list_base_stale: "someone else changed it at the same time; try again",
  rate_limited: "too many changes at once; slow down",
  not_ready: "not connected yet",
};

/** Ids as clients make them (`<client>:<n>`), with the attribute the server may name after one. */
const ID = /\b[\w-]+:\d+\b(?:\.\w+)?/g;
/** The server's "where" before its reason: `<id>.<attr>: ` or `<id>: `. */
const WHERE = /\b[\w-]+:\d+\b(?:\.\w+)?:\s+/g;

/** A reason without ids: the "where" prefixes go, any other id reads "it". */
export function withoutIds(reason: string): string {
  return reason.replace(WHERE, "").replace(ID, "it").replace(/\s+/g, " ").trim();
}

/** The person's sentence for a refusal of `what`. */
export function explain(error: ObjectSyncError, what: FlowReject["what"]): FlowReject {
  const known = MESSAGES[error.code];
  const verb = what === "drag" ? "Move refused" : what === "connect" ? "Connection refused" : what === "delete" ? "Delete refused" : "Refused";
  const detail = known ?? withoutIds(error.reason);
  return { code: error.code, reason: error.reason, message: `${verb}: ${detail.length > 0 ? detail : error.code}`, what };
}
