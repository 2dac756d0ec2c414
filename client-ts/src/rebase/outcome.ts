/**
 * What the rebase keeps and answers: a {@link PendingAction} (one action of this client the
 * server has not answered) and the {@link Outcome} every call returns (net diffs, messages to
 * send, settled actions, delivered events, a resync). Types and their constructors only.
 */

import type { TreeDiff } from "../diff.js";
import type { StaleList } from "../list-stale.js";
import type { Change, ClientMessage, EmitChange } from "../protocol.js";
import type { ApplyError, Step } from "../tree.js";

/** One action of this client not yet answered by the server. */
export interface PendingAction {
  /** The action id (strictly increasing per client). */
  readonly id: number;
  /** A plain action, or an undo/redo request (whose effect only the server knows). */
  readonly kind: "action" | "undo" | "redo";
  /** The changes as they will be sent (text positions kept transformed). */
  changes: Change[];
  /** The undo/redo scope. */
  readonly scope: string | undefined;
  /** The base it was sent with; `null` while it waits to be sent. */
  sentBase: number | null;
  /** Whether it was ever sent (then the server may have processed it). */
  everSent: boolean;
  /** Its steps in the local view (empty when it did not apply there). */
  steps: Step[];
  /** Why it did not apply to the local view, if it did not (the server will likely refuse it). */
  localError: { readonly index: number; readonly error: ApplyError } | null;
  /** Left out of the local view: the server refuses it (a whole-string `set` by someone else
   * made its text stale, or see {@link staleList}). */
  doomed: boolean;
  /** The confirmed version when it was made: what its list indexes were computed against. */
  madeAt: number;
  /** Doomed by the list rule (`list_base_stale`): another actor changed this list since its
   * base. Its effect is gone from the local view and from later text edits already. */
  staleList: StaleList | null;
  /** The undo step it names (`ObjectSyncClient.beginUndoStep`), if any. */
  step?: string;
}

/** A pending action the server refused (or that was lost in a resync). */
export interface Rejection {
  readonly action: PendingAction;
  readonly code: string;
  readonly reason: string;
  readonly change: number | undefined;
}

/** What a call changed and asks for. */
export interface Outcome {
  /** Net changes of the local view, to report in order (usually zero or one). */
  diffs: TreeDiff[];
  /** Messages to send now, in order. */
  send: ClientMessage[];
  /** Actions the server applied (or accepted, for events). */
  acked: PendingAction[];
  /** Actions the server refused; their local effects are gone. */
  rejected: Rejection[];
  /** Events the server delivered, in room order, with who emitted them. */
  emits: { readonly origin: string; readonly change: EmitChange }[];
  /** The confirmed state cannot continue: resume from `version` (lost messages) or reload. */
  resync: "resume" | "reload" | null;
}

/** An outcome with nothing in it. */
export function emptyOutcome(): Outcome {
  return { diffs: [], send: [], acked: [], rejected: [], emits: [], resync: null };
}

/** A new pending action, not sent yet, made on confirmed version `madeAt`. */
export function newPendingAction(
  id: number,
  kind: PendingAction["kind"],
  changes: Change[],
  steps: Step[],
  scope: string | undefined,
  madeAt: number,
): PendingAction {
  return {
    id,
    kind,
    changes,
    scope,
    sentBase: null,
    everSent: false,
    steps,
    localError: null,
    doomed: false,
    madeAt,
    staleList: null,
  };
}
