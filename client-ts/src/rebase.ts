/**
 * Optimistic local state: the confirmed mirror plus this client's pending actions replayed on
 * top of it (the local view users read and edit). Sans I/O: every method returns an
 * {@link Outcome} saying what changed locally, what to send and which actions were settled.
 *
 * On each server message the local view is rebuilt: pending actions are reverted, the update is
 * applied, pending actions are replayed (after Replicache: unacknowledged mutations replay in
 * order on the newest confirmed state). Text edits in pending actions are transformed against
 * incoming text edits with the server's rules, so that what this client sends is what the
 * server would have transformed it to.
 *
 * Sending rule (docs/protocol.md, Text): at most one unacknowledged action with text edits per
 * attribute (a whole-string `set` counts too: text edits based before it are refused). Later
 * actions with text edits there wait, and everything behind them, in FIFO order; consecutive
 * text-only edits to that attribute merge into the waiting action, so typing costs one action
 * per round trip. Text edits that follow a `set` of the same attribute in their own action are
 * relative to the new text: they wait for nothing and are never transformed (as on the server).
 * An unanswered undo or redo holds everything behind it (its effect is unknown until the server
 * answers). Actions are sent with `base` = the confirmed version at send time.
 *
 * List rule (`list-stale.ts`, the server's `list_base_stale`): a confirmed update by another
 * actor that changes a list dooms every pending action changing that list by index whose base
 * (or, unsent, the confirmed version it was made on) is below the update's version: its local
 * effect goes at once (later text edits shift as if it had never been made); an unsent one is
 * refused here and never sent, a sent one waits for the server's reject.
 *
 * The parts, each in `rebase/`: `outcome.ts` (pending actions and outcomes), `text-changes.ts`
 * (what changes do to text), `pending-text.ts` (pending text edits transformed, shifted, dropped,
 * merged), `sending.ts` (the sending rule), `settle.ts` (what a welcome or a resume settles).
 */

import type { TreeDiff } from "./diff.js";
import { diffBatch } from "./diff.js";
import type { StaleList } from "./list-stale.js";
import { staleListChange } from "./list-stale.js";
import { Mirror } from "./mirror.js";
import type {
  AttrChange,
  Change,
  ClientMessage,
  EventsMessage,
  NodeSnapshot,
  RejectMessage,
  Snapshot,
  UpdateMessage,
  WelcomeMessage,
} from "./protocol.js";
import type { Outcome, PendingAction } from "./rebase/outcome.js";
import { emptyOutcome, newPendingAction } from "./rebase/outcome.js";
import {
  dropEmptyUnsent,
  dropTextEdits,
  forgetEffects,
  mergesInto,
  mergeTyping,
  transformPending,
  unseenEdits,
} from "./rebase/pending-text.js";
import { messageOf, sendable } from "./rebase/sending.js";
import { doomedRejection, processedWhileAway, refusedWhileAway, settleOnReload, staleListRejection } from "./rebase/settle.js";
import type { TextAfterSet, TopicKey } from "./rebase/text-changes.js";
import { changeOfEdit, splitTopic, textAfterLastSet } from "./rebase/text-changes.js";
import { goesFirst } from "./text.js";
import type { ApplyError, DefaultsProvider, Step } from "./tree.js";
import { ObjectTree, ROOT_ID } from "./tree.js";

export type { Outcome, PendingAction, Rejection } from "./rebase/outcome.js";

/** The tie key of an update's origin (server code orders first). */
export function tieKey(origin: string): string {
  return origin === "server" ? "" : origin;
}

/** Pending actions over a confirmed mirror; see the module docs. */
export class Rebase {
  private mirrorState: Mirror | null = null;
  private localTree: ObjectTree | null = null;
  private readonly pendingActions: PendingAction[] = [];
  private readonly defaults: DefaultsProvider | undefined;
  private lastActionId = 0;
  /** The undo step that actions made now name ({@link beginUndoStep}), or `null`. */
  private undoStep: string | null = null;
  private undoSteps = 0;
  private me: string | null = null;
  /** Sending allowed: welcomed and caught up. */
  private online = false;
  /** During a resume catch-up: the version to reach and the `acked` the welcome gave. */
  private catchUp: { readonly version: number; readonly acked: number } | null = null;
  private tx: { steps: Step[]; changes: Change[] } | null = null;
  private mispredictions = 0;

  constructor(options: { defaults?: DefaultsProvider } = {}) {
    this.defaults = options.defaults;
  }

  /** The confirmed state (`null` before the first welcome). */
  get mirror(): Mirror | null {
    return this.mirrorState;
  }

  /** The local view: confirmed plus pending (`null` before the first welcome). */
  get local(): ObjectTree | null {
    return this.localTree;
  }

  /** Pending actions, oldest first. */
  get pending(): readonly PendingAction[] {
    return this.pendingActions;
  }

  /** This client's id (`null` before the first welcome). */
  get clientId(): string | null {
    return this.me;
  }

  /** Whether actions are being sent (welcomed and caught up). */
  get isOnline(): boolean {
    return this.online;
  }

  /**
   * How many acknowledged actions had text edits applied differently from this client's
   * prediction (a server reaction editing the same string, or a transform mismatch: 0 expected).
   */
  get mispredicted(): number {
    return this.mispredictions;
  }

  /** Whether a transaction is open. */
  get inTransaction(): boolean {
    return this.tx !== null;
  }

  /** The resume data for a reconnecting `hello`, or `null` if there is nothing to resume. */
  resumeVersion(): number | null {
    return this.mirrorState?.version ?? null;
  }

  /** The connection dropped: stop sending; pending actions stay and are re-sent later. */
  onDisconnect(): void {
    this.online = false;
    this.catchUp = null;
  }

  // --------------------------------------------------------------------------- local edits

  /** Opens a transaction: following {@link stage} calls form one action. */
  begin(): void {
    const local = this.mustLocal();
    if (this.tx !== null) throw new Error("a transaction is already open");
    local.beginBatch();
    this.tx = { steps: [], changes: [] };
  }

  /** Applies one change to the local view inside the open transaction; on error nothing changed. */
  stage(change: Change): ApplyError | null {
    const tx = this.tx;
    if (tx === null) throw new Error("no transaction is open");
    const error = this.mustLocal().apply(change, tx.steps);
    if (error === null) tx.changes.push(change);
    return error;
  }

  /** Drops the open transaction, reverting its local effects. */
  abort(): void {
    const tx = this.tx;
    if (tx === null) return;
    this.tx = null;
    const local = this.mustLocal();
    local.revert(tx.steps);
    local.endBatch();
  }

  /**
   * Closes the open transaction: its changes become one pending action (or merge into the
   * waiting one, for typing). Returns the action (`null` if the transaction changed nothing).
   */
  commit(): { action: PendingAction | null; outcome: Outcome } {
    const tx = this.tx;
    if (tx === null) throw new Error("no transaction is open");
    this.tx = null;
    const local = this.mustLocal();
    const outcome = emptyOutcome();
    outcome.diffs.push(diffBatch(local, local.endBatch()));
    if (tx.changes.length === 0) return { action: null, outcome };
    const last = this.pendingActions[this.pendingActions.length - 1];
    let action: PendingAction;
    const step = this.undoStep ?? undefined;
    if (mergesInto(last, tx.changes, step)) {
      mergeTyping(last, tx.changes, tx.steps);
      action = last;
    } else {
      action = newPendingAction(++this.lastActionId, "action", tx.changes, tx.steps, undefined, this.mirrorState?.version ?? 0);
      if (step !== undefined) action.step = step;
      this.pendingActions.push(action);
    }
    outcome.send = this.flush();
    return { action, outcome };
  }

  /**
   * Starts an undo step: every action made until the returned function is called names it, so
   * the server undoes them together however long the step lasts (a drag held still, a gesture
   * over several objects). Starting another step ends this one; ending twice does nothing.
   */
  beginUndoStep(): () => void {
    const step = `s${++this.undoSteps}`;
    this.undoStep = step;
    return () => {
      if (this.undoStep === step) this.undoStep = null;
    };
  }

  /** Queues an undo or redo of this client's latest step (under `scope`, if given). */
  requestUndo(kind: "undo" | "redo", scope?: string): { action: PendingAction; outcome: Outcome } {
    this.mustLocal();
    const action = newPendingAction(++this.lastActionId, kind, [], [], scope, this.mirrorState?.version ?? 0);
    this.pendingActions.push(action);
    const outcome = emptyOutcome();
    outcome.send = this.flush();
    return { action, outcome };
  }

  // ------------------------------------------------------------------------ server messages

  /** Handles `welcome` (docs/protocol.md): reload from a snapshot, or start a resume catch-up. */
  onWelcome(w: WelcomeMessage): Outcome {
    this.assertNoTransaction();
    const outcome = emptyOutcome();
    const previous = this.me;
    this.me = w.client;
    if (w.snapshot === undefined) {
      if (this.mirrorState === null || previous !== w.client) {
        // Nothing to resume onto: only a snapshot can help.
        outcome.resync = "reload";
        return outcome;
      }
      this.catchUp = { version: w.version, acked: w.acked };
      if (this.mirrorState.version >= w.version) this.finishCatchUp(outcome);
      return outcome;
    }
    const snapshot = w.snapshot;
    this.catchUp = null;
    if (this.localTree === null) {
      this.mirrorState = Mirror.fromSnapshot(snapshot);
      this.localTree = new ObjectTree(snapshot.root, this.defaults);
      outcome.diffs.push(loadDiff(this.localTree));
    } else {
      const renamed = previous !== null && previous !== w.client;
      outcome.diffs.push(this.rebuild((local) => this.reload(local, snapshot, w.acked, renamed, outcome)));
    }
    this.online = true;
    outcome.send = this.flush();
    return outcome;
  }

  /** Handles `update`: advance the mirror, settle an own action, transform and replay. */
  onUpdate(u: UpdateMessage): Outcome {
    this.assertNoTransaction();
    const outcome = emptyOutcome();
    const mirror = this.mirrorState;
    if (mirror === null) return outcome;
    const result = mirror.applyUpdate(u);
    if (result.kind === "duplicate") return outcome;
    if (result.kind === "gap") {
      outcome.resync = "resume";
      return outcome;
    }
    if (result.kind === "diverged") {
      outcome.resync = "reload";
      return outcome;
    }
    const acked =
      u.origin === this.me && u.action !== undefined ? (this.pendingActions.find((p) => p.id === u.action) ?? null) : null;
    const diff = this.rebuild((local) => this.applyConfirmed(local, mirror, u, acked, outcome));
    outcome.diffs.push(diff);
    if (acked !== null) outcome.acked.push(acked);
    for (const c of u.changes) if (c.op === "emit") outcome.emits.push({ origin: u.origin, change: c });
    if (this.catchUp !== null && mirror.version >= this.catchUp.version) this.finishCatchUp(outcome);
    outcome.send.push(...this.flush());
    return outcome;
  }

  /** Handles `events`: deliver them; settle an own emit-only action. */
  onEvents(e: EventsMessage): Outcome {
    this.assertNoTransaction();
    const outcome = emptyOutcome();
    const mirror = this.mirrorState;
    if (mirror === null) return outcome;
    if (e.v > mirror.version) {
      outcome.resync = "resume";
      return outcome;
    }
    if (e.origin === this.me && e.action !== undefined) {
      const i = this.pendingActions.findIndex((p) => p.id === e.action);
      if (i >= 0) {
        // It changed no state, so the local view stays as it is.
        const [p] = this.pendingActions.splice(i, 1);
        if (p !== undefined) outcome.acked.push(p);
      }
    }
    for (const c of e.changes) if (c.op === "emit") outcome.emits.push({ origin: e.origin, change: c });
    outcome.send = this.flush();
    return outcome;
  }

  /** Handles `reject`: remove exactly that action; later ones stay, text shifted to match. */
  onReject(r: RejectMessage): Outcome {
    this.assertNoTransaction();
    const outcome = emptyOutcome();
    const i = this.pendingActions.findIndex((p) => p.id === r.action);
    if (i < 0) return outcome;
    const action = this.pendingActions[i] as PendingAction;
    outcome.diffs.push(
      this.rebuild(() => {
        this.removeAt(i);
        return [];
      }),
    );
    outcome.rejected.push({ action, code: r.code, reason: r.reason, change: r.change });
    outcome.send = this.flush();
    return outcome;
  }

  // ------------------------------------------------------------------------------ internals

  /** Reverts pending actions, runs `mutate` on the bare confirmed state, replays them, and
   * returns the net diff (`mutate` may give better event candidates for some attributes). */
  private rebuild(mutate: (local: ObjectTree) => Hint[]): TreeDiff {
    const local = this.mustLocal();
    local.beginBatch();
    for (let i = this.pendingActions.length - 1; i >= 0; i--) {
      const p = this.pendingActions[i] as PendingAction;
      local.revert(p.steps);
      p.steps = [];
    }
    const hints = mutate(local);
    for (const p of this.pendingActions) {
      if (p.kind !== "action" || p.doomed) continue;
      p.localError = local.applyAll(p.changes, p.steps);
    }
    for (const h of hints) local.hintTrail(h.obj, h.attr, h.changes);
    return diffBatch(local, local.endBatch());
  }

  /** Inside `rebuild` for a welcome with a snapshot: the confirmed state becomes the snapshot;
   * what it settles goes (see `settleOnReload`), doomed actions are refused, the rest is unsent. */
  private reload(local: ObjectTree, snapshot: Snapshot, acked: number, renamed: boolean, outcome: Outcome): Hint[] {
    this.mirrorState = Mirror.fromSnapshot(snapshot);
    local.replaceAll(snapshot.root);
    outcome.rejected.unshift(...settleOnReload(this.pendingActions, acked, renamed, snapshot.version));
    this.settleDoomed(outcome);
    for (const p of this.pendingActions) p.sentBase = null;
    return [];
  }

  /**
   * Inside `rebuild` for an update: dooms stale list changes, applies `u` to the bare confirmed
   * state, settles `acked` (this client's action `u` answers, if any) and transforms pending
   * text edits against what `u` did to text. Returns event hints for the net text changes.
   */
  private applyConfirmed(local: ObjectTree, mirror: Mirror, u: UpdateMessage, acked: PendingAction | null, outcome: Outcome): Hint[] {
    // Pending list changes by index that another actor's change to the list made stale go
    // first, on the state their changes were made on (before the update).
    this.doomStaleLists(u, outcome);
    const ackIndex = acked === null ? -1 : this.pendingActions.indexOf(acked);
    const applied = textAfterLastSet(u.changes);
    // How the text looked before the update, for undoing a misprediction.
    const before = new Map<TopicKey, string>();
    for (const k of applied.keys()) {
      const [obj, attr] = splitTopic(k);
      const v = local.get(obj)?.attrs.get(attr);
      if (typeof v === "string") before.set(k, v);
    }
    if (local.applyAll(u.changes, []) !== null) {
      // The local view drifted from the mirror (it must equal it here): start it over.
      local.replaceAll(rootSnapshot(mirror));
    }
    // A whole-string `set` by someone else starts a new text history: the server refuses
    // text edits based before it, so they are dropped here too (below). Pending edits after
    // an own `set` in the same action are relative to the new text and stay.
    const ownSets = acked === null ? new Map<TopicKey, TextAfterSet>() : textAfterLastSet(acked.changes);
    const replacedByOthers = new Set<TopicKey>();
    for (const [k, a] of applied) if (a.set !== null && (ownSets.get(k)?.set ?? null) === null) replacedByOthers.add(k);
    let hints: Hint[] = [];
    if (acked !== null) {
      this.pendingActions.splice(ackIndex, 1);
      this.transformAfterOwn(acked, ackIndex, applied, ownSets, before, replacedByOthers);
    } else {
      hints = this.transformAfterOthers(u.origin, applied, replacedByOthers);
    }
    for (const k of replacedByOthers) dropTextEdits(this.pendingActions, k);
    return hints;
  }

  /** Pending text edits after own acknowledged action `acked` (at `ackIndex`, removed already)
   * meet what the server applied of it that they had not seen (see `unseenEdits`). */
  private transformAfterOwn(
    acked: PendingAction,
    ackIndex: number,
    applied: ReadonlyMap<TopicKey, TextAfterSet>,
    ownSets: ReadonlyMap<TopicKey, TextAfterSet>,
    before: ReadonlyMap<TopicKey, string>,
    replaced: ReadonlySet<TopicKey>,
  ): void {
    for (const [k, a] of applied) {
      if (replaced.has(k)) continue;
      const { edits, mispredicted } = unseenEdits(acked, ownSets.get(k), a.edits, before.get(k));
      if (mispredicted) this.mispredictions++;
      if (edits.length > 0) transformPending(this.pendingActions, k, edits, false, ackIndex);
    }
  }

  /** Pending text edits meet another actor's (`origin`'s); returns the net text changes of the
   * local view as event hints. */
  private transformAfterOthers(origin: string, applied: ReadonlyMap<TopicKey, TextAfterSet>, replaced: ReadonlySet<TopicKey>): Hint[] {
    const hints: Hint[] = [];
    const mineFirst = goesFirst(this.me ?? "", tieKey(origin));
    for (const [k, a] of applied) {
      if (replaced.has(k)) continue;
      const net = transformPending(this.pendingActions, k, a.edits, mineFirst, 0);
      const [obj, attr] = splitTopic(k);
      if (net !== null) hints.push({ obj, attr, changes: net.map((e) => changeOfEdit(obj, attr, e)) });
    }
    return hints;
  }

  /** Removes pending action `i` (reverted already) and shifts later text edits as if it had
   * never been made (done already for an action doomed by the list rule). Call inside `rebuild`. */
  private removeAt(i: number): void {
    const action = this.pendingActions[i];
    if (action === undefined) return;
    if (action.staleList === null) forgetEffects(this.pendingActions, action, this.mustLocal());
    const at = this.pendingActions.indexOf(action);
    if (at >= 0) this.pendingActions.splice(at, 1);
  }

  /**
   * The list rule: pending actions that change by index a list that `u` (another actor's
   * update) changed, based below `u.v`, are doomed (see `list-stale.ts`). Their local effect
   * goes, and later text edits shift as if they had never been made; unsent ones are refused
   * here (`list_base_stale`) and never sent, sent ones wait for the server's reject. Call inside
   * `rebuild`, before `u` applies (pending changes are relative to the state before it).
   */
  private doomStaleLists(u: UpdateMessage, outcome: Outcome): void {
    if (u.origin === this.me) return;
    const stale: [PendingAction, StaleList][] = [];
    for (const p of this.pendingActions) {
      if (p.kind !== "action" || p.doomed) continue;
      const s = staleListChange({ changes: p.changes, base: p.sentBase ?? p.madeAt }, u, this.me);
      if (s !== null) stale.push([p, s]);
    }
    for (const [p, s] of stale) {
      const i = this.pendingActions.indexOf(p);
      if (i < 0) continue;
      if (p.sentBase === null) {
        this.removeAt(i);
        p.staleList = s;
        outcome.rejected.push(staleListRejection(p, s));
      } else {
        forgetEffects(this.pendingActions, p, this.mustLocal());
        p.staleList = s;
        p.doomed = true;
      }
    }
  }

  /** The resume catch-up reached the welcome's version: settle what the server processed
   * while away, then send the rest again. */
  private finishCatchUp(outcome: Outcome): void {
    const catchUp = this.catchUp;
    if (catchUp === null) return;
    this.catchUp = null;
    const { stateless, refused } = processedWhileAway(this.pendingActions, catchUp.acked);
    for (const p of stateless) {
      this.pendingActions.splice(this.pendingActions.indexOf(p), 1);
      outcome.acked.push(p);
    }
    if (refused.length > 0 || this.pendingActions.some((p) => p.doomed)) {
      outcome.diffs.push(
        this.rebuild(() => {
          for (const action of refused) {
            this.removeAt(this.pendingActions.indexOf(action));
            outcome.rejected.push(refusedWhileAway(action));
          }
          this.settleDoomed(outcome);
          return [];
        }),
      );
    }
    for (const p of this.pendingActions) p.sentBase = null;
    this.online = true;
    outcome.send.push(...this.flush());
  }

  /** Doomed actions the server never saw are refused here, as the server would. Call inside
   * `rebuild`. */
  private settleDoomed(outcome: Outcome): void {
    for (let i = this.pendingActions.length - 1; i >= 0; i--) {
      const p = this.pendingActions[i] as PendingAction;
      if (!p.doomed) continue;
      this.removeAt(i);
      outcome.rejected.push(doomedRejection(p));
    }
  }

  /** Sends what the sending rule allows (`sending.ts`), oldest first; returns the messages. */
  private flush(): ClientMessage[] {
    const mirror = this.mirrorState;
    if (!this.online || mirror === null || this.tx !== null) return [];
    dropEmptyUnsent(this.pendingActions); // e.g. a delete absorbed by others' deletes, waiting to be re-sent
    return sendable(this.pendingActions).map((p) => {
      p.sentBase = mirror.version;
      p.everSent = true;
      return messageOf(p, mirror.version);
    });
  }

  private mustLocal(): ObjectTree {
    if (this.localTree === null) throw new Error("not connected yet: no document");
    return this.localTree;
  }

  private assertNoTransaction(): void {
    if (this.tx !== null) throw new Error("a server message arrived inside a transaction (transactions must be synchronous)");
  }
}

/** A better event candidate for one attribute (see `ObjectTree.hintTrail`). */
interface Hint {
  readonly obj: string;
  readonly attr: string;
  readonly changes: AttrChange[];
}

function rootSnapshot(mirror: Mirror): NodeSnapshot {
  const root = mirror.tree.snapshotOf(ROOT_ID);
  if (root === undefined) throw new Error("Mirror invariant: no root");
  return root;
}

/** The diff of a first load: every object is new. */
function loadDiff(tree: ObjectTree): TreeDiff {
  const created: string[] = [];
  const stack = [ROOT_ID];
  for (let guard = 0; stack.length > 0 && guard <= tree.size; guard++) {
    const id = stack.pop() as string;
    created.push(id);
    const children = tree.get(id)?.children ?? [];
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as string);
  }
  return { created, destroyed: [], reparented: [], children: [], attrs: [] };
}
