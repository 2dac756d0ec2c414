/**
 * The text edits of pending actions, kept as the server would transform them: transformed
 * against incoming edits, shifted as if a removed action had never been made, dropped when the
 * text they were made on was replaced, merged while typing. Functions over the pending list
 * (oldest first), which they change in place; they know no mirror, socket or clock.
 */

import type { Change } from "../protocol.js";
import type { TextEdit } from "../text.js";
import { applyEdits, coalesce, invertEdits, transformSeqs } from "../text.js";
import type { ObjectTree, Step } from "../tree.js";
import type { PendingAction } from "./outcome.js";
import type { TextAfterSet, TopicKey } from "./text-changes.js";
import {
  changeOfEdit,
  firstSetIndex,
  isTextEditOf,
  sameEdit,
  splitTopic,
  textAfterLastSet,
  textEditOf,
  textEditsByTopic,
  textTopics,
  typingTopic,
} from "./text-changes.js";

/**
 * Transforms the text edits on topic `k` of pending actions from index `from` on against
 * `incoming` (made on the same text as the first of them). Returns `incoming` rewritten to
 * apply after them (the net change of the local view), or `null` if no pending edit was there.
 *
 * A pending whole-string `set` of the topic ends the transform: the edits before it in its
 * action are transformed, those after it (and in later actions) are relative to the new text
 * and stay as they are, as the server treats them; `incoming` is then overwritten (`[]`).
 */
export function transformPending(
  pending: PendingAction[],
  k: TopicKey,
  incoming: readonly TextEdit[],
  mineFirst: boolean,
  from: number,
): TextEdit[] | null {
  const [obj, attr] = splitTopic(k);
  let theirs: TextEdit[] = incoming.slice();
  let touched = false;
  for (let i = from; i < pending.length; i++) {
    const p = pending[i] as PendingAction;
    if (p.kind !== "action" || p.doomed) continue;
    const reset = firstSetIndex(p.changes, obj, attr);
    const end = reset < 0 ? p.changes.length : reset;
    const at: number[] = [];
    p.changes.forEach((c, j) => {
      if (j < end && isTextEditOf(c, obj, attr)) at.push(j);
    });
    if (at.length > 0) {
      touched = true;
      const mine = at.map((j) => textEditOf(p.changes[j] as Change) as TextEdit);
      const [mine2, theirs2] = transformSeqs(mine, theirs, mineFirst);
      theirs = theirs2;
      const rewritten = mine2.map((e) => changeOfEdit(obj, attr, e));
      const first = at[0] as number;
      const skip = new Set(at);
      p.changes = p.changes.flatMap((c, j) => (j === first ? rewritten : skip.has(j) ? [] : [c]));
    }
    if (reset >= 0) {
      touched = true;
      theirs = [];
      break;
    }
  }
  if (!touched) return null;
  dropEmptyUnsent(pending);
  return theirs;
}

/**
 * Drops the text edits on topic `k` that depend on a text that was replaced (a remote `set`,
 * or a refused own `set`) from pending actions from index `from` on: unsent ones lose those
 * edits, sent ones are doomed (the server refuses them). Edits after a pending `set` of the
 * topic (in its action or later ones) are relative to that set and stay.
 */
export function dropTextEdits(pending: PendingAction[], k: TopicKey, from = 0): void {
  const [obj, attr] = splitTopic(k);
  for (const p of pending.slice(from)) {
    if (p.kind !== "action") continue;
    const reset = firstSetIndex(p.changes, obj, attr);
    const end = reset < 0 ? p.changes.length : reset;
    const hit = (c: Change, j: number) => j < end && isTextEditOf(c, obj, attr);
    if (p.changes.some(hit)) {
      if (p.sentBase !== null) p.doomed = true;
      else p.changes = p.changes.filter((c, j) => !hit(c, j));
    }
    // Edits after a set that will happen are relative to it; a doomed set never happens.
    if (reset >= 0 && !p.doomed) break;
  }
  dropEmptyUnsent(pending);
}

/** Unsent actions whose changes all vanished are dropped (they would be `empty_action`). */
export function dropEmptyUnsent(pending: PendingAction[]): void {
  for (let i = pending.length - 1; i >= 0; i--) {
    const p = pending[i] as PendingAction;
    if (p.kind === "action" && p.sentBase === null && p.changes.length === 0) pending.splice(i, 1);
  }
}

/** The text of topic `k` as pending action `i` saw it: `confirmed` plus earlier pending edits. */
export function textBefore(pending: readonly PendingAction[], k: TopicKey, confirmed: string, i: number): string {
  let s = confirmed;
  for (const p of pending.slice(0, i)) {
    if (p.kind !== "action" || p.doomed || p.localError !== null) continue;
    const t = textAfterLastSet(p.changes).get(k);
    if (t !== undefined) s = applyEdits(t.set ?? s, t.edits) ?? s;
  }
  return s;
}

/**
 * Shifts the text edits of the pending actions after `action` as if it had never been made
 * (`local`: the confirmed state, pending actions reverted, so inside the rebase's rebuild).
 * Later edits to a text that `action` set were made on a value that never existed: dropped.
 */
export function forgetEffects(pending: PendingAction[], action: PendingAction, local: ObjectTree): void {
  if (action.kind !== "action") return;
  for (const k of textTopics(action.changes)) {
    const i = pending.indexOf(action);
    if (i < 0) return;
    const [obj, attr] = splitTopic(k);
    if (firstSetIndex(action.changes, obj, attr) >= 0) {
      dropTextEdits(pending, k, i + 1);
      continue;
    }
    const edits = textEditsByTopic(action.changes).get(k) ?? [];
    const text = local.get(obj)?.attrs.get(attr);
    const inverse = typeof text === "string" ? invertEdits(textBefore(pending, k, text, i), edits) : null;
    if (inverse !== null) transformPending(pending, k, inverse, true, i + 1);
  }
}

/**
 * Typing while the previous keystrokes wait: whether `changes` (text-only, on one topic) merge
 * into `last`, the newest pending action (unsent, sound, typing on the same topic, in the same
 * undo `step`), so that typing costs one action per round trip.
 */
export function mergesInto(
  last: PendingAction | undefined,
  changes: readonly Change[],
  step: string | undefined,
): last is PendingAction {
  const topic = typingTopic(changes);
  return (
    last !== undefined &&
    topic !== null &&
    last.kind === "action" &&
    last.sentBase === null &&
    !last.doomed &&
    last.localError === null &&
    typingTopic(last.changes) === topic &&
    last.step === step
  );
}

/** Merges typing `changes` (with their local `steps`) into `last` (see {@link mergesInto}). */
export function mergeTyping(last: PendingAction, changes: readonly Change[], steps: readonly Step[]): void {
  const [obj, attr] = splitTopic(typingTopic(changes) as TopicKey);
  const edits = [...last.changes, ...changes].map((c) => textEditOf(c) as TextEdit);
  last.changes = coalesce(edits).map((e) => changeOfEdit(obj, attr, e));
  last.steps.push(...steps);
}

/**
 * The edits of an own acknowledged action on one topic that later pending edits have not seen
 * yet: those the server applied beyond the prediction (`mine`: what this client predicted), or,
 * when it did something else, the prediction undone and then everything it applied
 * (`mispredicted`). An action thought stale by the list rule was taken out of later edits
 * already, so all its edits are new to them. `before`: the text before the update.
 */
export function unseenEdits(
  acked: PendingAction,
  mine: TextAfterSet | undefined,
  applied: readonly TextEdit[],
  before: string | undefined,
): { edits: TextEdit[]; mispredicted: boolean } {
  const predicted = mine?.edits ?? [];
  if (acked.staleList !== null) return { edits: applied.slice(), mispredicted: true };
  if (predicted.length <= applied.length && predicted.every((e, i) => sameEdit(e, applied[i] as TextEdit))) {
    return { edits: applied.slice(predicted.length), mispredicted: false };
  }
  const inverse = invertEdits(mine?.set ?? before ?? "", predicted);
  return { edits: inverse === null ? applied.slice() : [...inverse, ...applied], mispredicted: true };
}
