/**
 * The list rule (the server's `check_list_base`, reject code `list_base_stale`): a change of a
 * `list` or `ref_list` by index (`list_insert` with an `index`, `list_remove`,
 * `list_move`, `list_set`) in an action whose base is below the version of a change to that same
 * list by another actor (another client, or server code) is refused: the index may name another
 * element now. A change to a list is any of those four ops on it, a `set` of it to an array (a
 * whole-list set) or the reference clearing of a `ref_list` (which updates carry as
 * `list_remove`s). The actor's own changes never make its later actions stale (it made them on
 * top). Whole-value sets of other kinds, dict ops and set ops are never stale.
 *
 * Pure functions; `rebase.ts` uses {@link staleListChange} to drop the local effect of pending
 * actions the server will refuse (or would, had they been sent when they were made).
 */

import type { Change, ListInsertChange, ListMoveChange, ListRemoveChange, ListSetChange } from "./protocol.js";

/** A list change by index: what the server checks against the list's history. */
export type ByIndexListChange = ListInsertChange | ListRemoveChange | ListMoveChange | ListSetChange;

/** Whether `c` changes a list by index: an append (`list_insert` without `index`) names no
 * position and is never stale. */
export function isByIndexListChange(c: Change): c is ByIndexListChange {
  if (c.op === "list_insert") return c.index !== undefined;
  return c.op === "list_remove" || c.op === "list_move" || c.op === "list_set";
}

/** Whether `c`, in an update, changes the list `obj.attr`: any list op on it (appends
 * included), or a whole-list `set`. */
export function changesList(c: Change, obj: string, attr: string): boolean {
  if (c.op === "set") return c.obj === obj && c.attr === attr && Array.isArray(c.value);
  const listOp = c.op === "list_insert" || c.op === "list_remove" || c.op === "list_move" || c.op === "list_set";
  return listOp && c.obj === obj && c.attr === attr;
}

/** Why a pending action is stale: the list and the first of its changes to blame. */
export interface StaleList {
  /** The list's object id. */
  readonly obj: string;
  /** The list attribute. */
  readonly attr: string;
  /** Index (in the action) of its first change by index to that list. */
  readonly change: number;
  /** The version of the other actor's change to the list. */
  readonly changed: number;
}

/**
 * Whether `update` makes a pending action of client `me` stale, and where: the action (its
 * changes, and `base`: the version sent as its base, or for an unsent action the confirmed
 * version its indexes were computed against) changes by index a list that the update, made by
 * another actor at a version above `base`, changed too. `null` when it does not: the update is
 * `me`'s own, not above `base`, or touches none of the lists the action changes by index.
 */
export function staleListChange(
  action: { readonly changes: readonly Change[]; readonly base: number },
  update: { readonly v: number; readonly origin: string; readonly changes: readonly Change[] },
  me: string | null,
): StaleList | null {
  if (update.origin === me || update.v <= action.base) return null;
  for (let i = 0; i < action.changes.length; i++) {
    const c = action.changes[i] as Change;
    if (!isByIndexListChange(c)) continue;
    if (update.changes.some((u) => changesList(u, c.obj, c.attr))) {
      return { obj: c.obj, attr: c.attr, change: i, changed: update.v };
    }
  }
  return null;
}

/** The reason of a refusal this client makes itself for a stale list change. */
export function staleListReason(s: StaleList): string {
  return `${s.obj}.${s.attr}: the list changed first (version ${s.changed}, by someone else): a change by index made before it may name another element now`;
}
