/**
 * Pending actions that a welcome or a resume settles without an answer of their own, and the
 * {@link Rejection} each refusal becomes: ones a snapshot already holds, ones sent under an
 * identity the room no longer knows, list changes by index a snapshot makes unsafe, ones the
 * room processed while this client was away, doomed ones the server never saw. Pure decisions
 * over the pending list (which the reload helper changes in place); the rebase applies them.
 */

import type { StaleList } from "../list-stale.js";
import { isByIndexListChange, staleListReason } from "../list-stale.js";
import type { PendingAction, Rejection } from "./outcome.js";

/**
 * On a reload from a snapshot (version `version`, `acked` the room's last processed action id
 * of this client): drops pending actions the snapshot holds or refused (id up to `acked`), and
 * refuses, removing them, those sent under a lost identity (`renamed`) and those changing a list
 * by index made before the snapshot. Returns the refusals, oldest first.
 */
export function settleOnReload(pending: PendingAction[], acked: number, renamed: boolean, version: number): Rejection[] {
  const rejected: Rejection[] = [];
  for (let i = pending.length - 1; i >= 0; i--) {
    const p = pending[i] as PendingAction;
    if (p.id <= acked) {
      // Applied ones are in the snapshot; refused ones are gone anyway.
      pending.splice(i, 1);
    } else if (renamed && p.everSent) {
      // A new identity cannot tell what the old one's sent actions did: dropped rather than
      // risk applying them twice.
      pending.splice(i, 1);
      rejected.unshift({
        action: p,
        code: "resync",
        reason: "the session could not be resumed; the server may or may not have applied it",
        change: undefined,
      });
    }
  }
  // A snapshot does not say who changed a list since a pending change by index was made on it:
  // the index may name another element now. Refused here, as the server would refuse it had it
  // seen it in time (`list_base_stale`), rather than sent on a guess.
  const stale: Rejection[] = [];
  for (let i = pending.length - 1; i >= 0; i--) {
    const p = pending[i] as PendingAction;
    const by = p.kind === "action" ? p.changes.findIndex(isByIndexListChange) : -1;
    if (by >= 0 && !p.doomed && (p.sentBase ?? p.madeAt) < version) {
      pending.splice(i, 1);
      stale.unshift({
        action: p,
        code: "list_base_stale",
        reason: "the room was reloaded from a snapshot: the list may have changed since this change was made",
        change: by,
      });
    }
  }
  return [...stale, ...rejected];
}

/**
 * At the end of a resume catch-up, the pending actions the room processed while away (id up to
 * `acked`) that no update in the catch-up answered: `stateless` ones (emits only: answered with
 * `events`, which a catch-up does not replay) were accepted, the others were refused.
 */
export function processedWhileAway(
  pending: readonly PendingAction[],
  acked: number,
): { stateless: PendingAction[]; refused: PendingAction[] } {
  const stateless = (p: PendingAction) => p.kind === "action" && p.changes.every((c) => c.op === "emit");
  const processed = pending.filter((p) => p.id <= acked);
  return { stateless: processed.filter(stateless), refused: processed.filter((p) => !stateless(p)) };
}

/** The refusal of an action the room processed while this client was away. */
export function refusedWhileAway(action: PendingAction): Rejection {
  return {
    action,
    code: "rejected",
    reason: "refused while disconnected (the server does not repeat the reason)",
    change: undefined,
  };
}

/** The refusal of an unsent action the list rule doomed (`list_base_stale`). */
export function staleListRejection(action: PendingAction, s: StaleList): Rejection {
  return { action, code: "list_base_stale", reason: staleListReason(s), change: s.change };
}

/** The refusal of a doomed action the server never saw, as the server would refuse it. */
export function doomedRejection(action: PendingAction): Rejection {
  const s = action.staleList;
  if (s !== null) return staleListRejection(action, s);
  return {
    action,
    code: "text_base_too_old",
    reason: "the text was replaced by someone else before this edit reached the server",
    change: undefined,
  };
}
