/**
 * The sending rule (docs/protocol.md, Text) as a pure decision: which pending actions may go to
 * the server now, and the message each one is.
 *
 * At most one unacknowledged action with text edits per attribute (a whole-string `set` counts
 * too: text edits based before it are refused). An action that edits such an attribute as text
 * before setting it waits, and so does everything behind it (FIFO). An unanswered undo or redo
 * holds everything behind it, since its effect is unknown until the server answers, and goes
 * alone.
 */

import type { ClientMessage } from "../protocol.js";
import type { PendingAction } from "./outcome.js";
import type { TopicKey } from "./text-changes.js";
import { textTopics, waitingTopics } from "./text-changes.js";

/** The unsent actions of `pending` (oldest first) that the rule lets go now, in order. */
export function sendable(pending: readonly PendingAction[]): PendingAction[] {
  const out: PendingAction[] = [];
  const busy = new Set<TopicKey>();
  for (const p of pending) {
    if (p.sentBase !== null) {
      if (p.kind !== "action") return out; // an unanswered undo holds everything behind it
      for (const k of textTopics(p.changes)) busy.add(k);
      continue;
    }
    if (p.kind !== "action") {
      out.push(p); // an undo goes, and holds everything behind it
      return out;
    }
    if ([...waitingTopics(p.changes)].some((k) => busy.has(k))) return out; // FIFO: everything behind waits too
    out.push(p);
    for (const k of textTopics(p.changes)) busy.add(k);
  }
  return out;
}

/** The message that sends `p` with `base`, the confirmed version now. */
export function messageOf(p: PendingAction, base: number): ClientMessage {
  if (p.kind === "action") {
    const msg: ClientMessage = { t: "action", id: p.id, base, changes: p.changes.slice() };
    if (p.step !== undefined) msg.step = p.step;
    return msg;
  }
  const msg: ClientMessage = { t: p.kind, id: p.id };
  if (p.scope !== undefined) msg.scope = p.scope;
  return msg;
}
