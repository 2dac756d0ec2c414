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
 * relative to the new text: they wait for nothing and are never transformed (as on the server). An unanswered undo
 * or redo holds everything behind it (its effect is unknown until the server answers). Actions
 * are sent with `base` = the confirmed version at send time.
 *
 * List rule (`list-stale.ts`, the server's `list_base_stale`): a confirmed update by another
 * actor that changes a list dooms every pending action changing that list by index whose base
 * (or, unsent, the confirmed version it was made on) is below the update's version: its local
 * effect goes at once (later text edits shift as if it had never been made); an unsent one is
 * refused here and never sent, a sent one waits for the server's reject.
 */

import type { TreeDiff } from "./diff.js";
import { diffBatch } from "./diff.js";
import type { StaleList } from "./list-stale.js";
import { isByIndexListChange, staleListChange, staleListReason } from "./list-stale.js";
import { Mirror } from "./mirror.js";
import type {
  AttrChange,
  Change,
  ClientMessage,
  EmitChange,
  EventsMessage,
  NodeSnapshot,
  RejectMessage,
  UpdateMessage,
  WelcomeMessage,
} from "./protocol.js";
import type { TextEdit } from "./text.js";
import { applyEdits, coalesce, goesFirst, invertEdits, transformSeqs } from "./text.js";
import type { ApplyError, DefaultsProvider, Step } from "./tree.js";
import { ObjectTree, ROOT_ID } from "./tree.js";

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

function emptyOutcome(): Outcome {
  return { diffs: [], send: [], acked: [], rejected: [], emits: [], resync: null };
}

/** The tie key of an update's origin (server code orders first). */
export function tieKey(origin: string): string {
  return origin === "server" ? "" : origin;
}

type TopicKey = string;
const topicKey = (obj: string, attr: string): TopicKey => `${obj}\u0000${attr}`;
const splitTopic = (k: TopicKey): [string, string] => {
  const i = k.indexOf("\u0000");
  return [k.slice(0, i), k.slice(i + 1)];
};

function textEditOf(c: Change): TextEdit | null {
  if (c.op === "text_insert") return { kind: "insert", pos: c.pos, text: c.text };
  if (c.op === "text_delete") return { kind: "delete", pos: c.pos, len: c.len };
  return null;
}

function changeOfEdit(obj: string, attr: string, e: TextEdit): AttrChange {
  return e.kind === "insert"
    ? { op: "text_insert", obj, attr, pos: e.pos, text: e.text }
    : { op: "text_delete", obj, attr, pos: e.pos, len: e.len };
}

/** Text edits of `changes` grouped by topic, in order. */
function textEditsByTopic(changes: readonly Change[]): Map<TopicKey, TextEdit[]> {
  const out = new Map<TopicKey, TextEdit[]>();
  for (const c of changes) {
    const e = textEditOf(c);
    if (e === null || !("obj" in c)) continue;
    const k = topicKey(c.obj, c.attr);
    const list = out.get(k);
    if (list === undefined) out.set(k, [e]);
    else list.push(e);
  }
  return out;
}

/**
 * Topics an action holds while unacknowledged: those it edits as text, and those it sets to a
 * whole string (the server starts a new text history there: an edit based before that version
 * is refused with `text_base_too_old`, so later text edits must wait for the ack).
 */
function textTopics(changes: readonly Change[]): Set<TopicKey> {
  const out = new Set(textEditsByTopic(changes).keys());
  for (const c of changes) if (c.op === "set" && isStringSet(c)) out.add(topicKey(c.obj, c.attr));
  return out;
}

/**
 * Topics whose held state an action must wait for: those it edits as text before setting them
 * in the same action. A whole-string `set`, and edits after it, depend on no earlier version.
 */
function waitingTopics(changes: readonly Change[]): Set<TopicKey> {
  const out = new Set<TopicKey>();
  const reset = new Set<TopicKey>();
  for (const c of changes) {
    if (c.op !== "set" && c.op !== "text_insert" && c.op !== "text_delete") continue;
    const k = topicKey(c.obj, c.attr);
    if (c.op === "set") {
      if (isStringSet(c)) reset.add(k);
    } else if (!reset.has(k)) out.add(k);
  }
  return out;
}

/** Whether `c` is a text edit of topic `obj.attr`. */
function isTextEditOf(c: Change, obj: string, attr: string): boolean {
  return (c.op === "text_insert" || c.op === "text_delete") && c.obj === obj && c.attr === attr;
}

/** Whether `c` sets a whole string (a `set` with a string value). */
function isStringSet(c: Change): boolean {
  return c.op === "set" && typeof c.value === "string";
}

/** The index of the first whole-string `set` of topic `obj.attr` in `changes`, or -1. Text edits
 * after it in the same action are relative to the new text: the server transforms them against
 * nothing (it resets its view of the topic on a set), and so does this client. */
function firstSetIndex(changes: readonly Change[], obj: string, attr: string): number {
  return changes.findIndex((c) => c.op === "set" && isStringSet(c) && c.obj === obj && c.attr === attr);
}

/** Per topic of `changes`: the value of its last whole-string `set` (`null` if none) and the
 * text edits after that set, in order (all of them if there is no set). */
function textAfterLastSet(changes: readonly Change[]): Map<TopicKey, { set: string | null; edits: TextEdit[] }> {
  const out = new Map<TopicKey, { set: string | null; edits: TextEdit[] }>();
  for (const c of changes) {
    if (c.op !== "set" && c.op !== "text_insert" && c.op !== "text_delete") continue;
    const k = topicKey(c.obj, c.attr);
    if (c.op === "set") {
      if (typeof c.value === "string") out.set(k, { set: c.value, edits: [] });
      continue;
    }
    const e = textEditOf(c) as TextEdit;
    const entry = out.get(k);
    if (entry === undefined) out.set(k, { set: null, edits: [e] });
    else entry.edits.push(e);
  }
  return out;
}

function sameEdit(a: TextEdit, b: TextEdit): boolean {
  return a.kind === "insert"
    ? b.kind === "insert" && a.pos === b.pos && a.text === b.text
    : b.kind === "delete" && a.pos === b.pos && a.len === b.len;
}

/** The one topic text-only changes edit, or `null` if they are not text-only on one topic. */
function typingTopic(changes: readonly Change[]): TopicKey | null {
  if (changes.length === 0) return null;
  let topic: TopicKey | null = null;
  for (const c of changes) {
    if (c.op !== "text_insert" && c.op !== "text_delete") return null;
    const k = topicKey(c.obj, c.attr);
    if (topic !== null && topic !== k) return null;
    topic = k;
  }
  return topic;
}

/** Pending actions over a confirmed mirror; see the module docs. */
export class Rebase {
  private mirrorState: Mirror | null = null;
  private localTree: ObjectTree | null = null;
  private readonly pendingActions: PendingAction[] = [];
  private readonly defaults: DefaultsProvider | undefined;
  private lastActionId = 0;
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
    const topic = typingTopic(tx.changes);
    let action: PendingAction;
    if (
      last !== undefined &&
      topic !== null &&
      last.kind === "action" &&
      last.sentBase === null &&
      !last.doomed &&
      last.localError === null &&
      typingTopic(last.changes) === topic
    ) {
      // Typing while the previous keystrokes wait: one action per round trip.
      const [obj, attr] = splitTopic(topic);
      const edits = [...last.changes, ...tx.changes].map((c) => textEditOf(c) as TextEdit);
      last.changes = coalesce(edits).map((e) => changeOfEdit(obj, attr, e));
      last.steps.push(...tx.steps);
      action = last;
    } else {
      action = {
        id: ++this.lastActionId,
        kind: "action",
        changes: tx.changes,
        scope: undefined,
        sentBase: null,
        everSent: false,
        steps: tx.steps,
        localError: null,
        doomed: false,
        madeAt: this.mirrorState?.version ?? 0,
        staleList: null,
      };
      this.pendingActions.push(action);
    }
    outcome.send = this.flush();
    return { action, outcome };
  }

  /** Queues an undo or redo of this client's latest step (under `scope`, if given). */
  requestUndo(kind: "undo" | "redo", scope?: string): { action: PendingAction; outcome: Outcome } {
    this.mustLocal();
    const action: PendingAction = {
      id: ++this.lastActionId,
      kind,
      changes: [],
      scope,
      sentBase: null,
      everSent: false,
      steps: [],
      localError: null,
      doomed: false,
      madeAt: this.mirrorState?.version ?? 0,
      staleList: null,
    };
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
      outcome.diffs.push(
        this.rebuild((local) => {
          this.mirrorState = Mirror.fromSnapshot(snapshot);
          local.replaceAll(snapshot.root);
          for (let i = this.pendingActions.length - 1; i >= 0; i--) {
            const p = this.pendingActions[i] as PendingAction;
            if (p.id <= w.acked) {
              // Applied ones are in the snapshot; refused ones are gone anyway.
              this.pendingActions.splice(i, 1);
            } else if (renamed && p.everSent) {
              // A new identity cannot tell what the old one's sent actions did: dropped
              // rather than risk applying them twice.
              this.pendingActions.splice(i, 1);
              outcome.rejected.unshift({
                action: p,
                code: "resync",
                reason: "the session could not be resumed; the server may or may not have applied it",
                change: undefined,
              });
            }
          }
          // A snapshot does not say who changed a list since a pending change by index was made
          // on it: the index may name another element now. Refused here, as the server would
          // refuse it had it seen it in time (`list_base_stale`), rather than sent on a guess.
          for (let i = this.pendingActions.length - 1; i >= 0; i--) {
            const p = this.pendingActions[i] as PendingAction;
            const by = p.kind === "action" ? p.changes.findIndex(isByIndexListChange) : -1;
            if (by >= 0 && !p.doomed && (p.sentBase ?? p.madeAt) < snapshot.version) {
              this.pendingActions.splice(i, 1);
              outcome.rejected.unshift({
                action: p,
                code: "list_base_stale",
                reason: "the room was reloaded from a snapshot: the list may have changed since this change was made",
                change: by,
              });
            }
          }
          this.settleDoomed(outcome);
          for (const p of this.pendingActions) p.sentBase = null;
          return [];
        }),
      );
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
    const diff = this.rebuild((local) => {
      const hints: Hint[] = [];
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
      const ownSets = acked === null ? new Map<TopicKey, { set: string | null; edits: TextEdit[] }>() : textAfterLastSet(acked.changes);
      const replacedByOthers = new Set<TopicKey>();
      for (const [k, a] of applied) if (a.set !== null && (ownSets.get(k)?.set ?? null) === null) replacedByOthers.add(k);
      if (acked !== null) {
        this.pendingActions.splice(ackIndex, 1);
        for (const [k, a] of applied) {
          if (replacedByOthers.has(k)) continue;
          const mine = ownSets.get(k);
          const predicted = mine?.edits ?? [];
          let extra: TextEdit[];
          if (acked.staleList !== null) {
            // Accepted although thought stale: later edits were shifted as if it had never been
            // made, so all of its edits are new to them.
            this.mispredictions++;
            extra = a.edits;
          } else if (predicted.length <= a.edits.length && predicted.every((e, i) => sameEdit(e, a.edits[i] as TextEdit))) {
            extra = a.edits.slice(predicted.length);
          } else {
            // The server did something else than predicted: undo the prediction, then redo it.
            this.mispredictions++;
            const inverse = invertEdits(mine?.set ?? before.get(k) ?? "", predicted);
            extra = inverse === null ? a.edits : [...inverse, ...a.edits];
          }
          if (extra.length > 0) this.transformPending(k, extra, false, ackIndex);
        }
      } else {
        const mineFirst = goesFirst(this.me ?? "", tieKey(u.origin));
        for (const [k, a] of applied) {
          if (replacedByOthers.has(k)) continue;
          const net = this.transformPending(k, a.edits, mineFirst, 0);
          const [obj, attr] = splitTopic(k);
          if (net !== null) hints.push({ obj, attr, changes: net.map((e) => changeOfEdit(obj, attr, e)) });
        }
      }
      for (const k of replacedByOthers) this.dropTextEdits(k);
      return hints;
    });
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

  /** Removes pending action `i` (reverted already) and shifts later text edits as if it had
   * never been made (done already for an action doomed by the list rule). */
  private removeAt(i: number): void {
    const action = this.pendingActions[i];
    if (action === undefined) return;
    if (action.staleList === null) this.forgetEffects(action);
    const at = this.pendingActions.indexOf(action);
    if (at >= 0) this.pendingActions.splice(at, 1);
  }

  /** Shifts the text edits of the pending actions after `action` (reverted already) as if it
   * had never been made. Call inside `rebuild`. */
  private forgetEffects(action: PendingAction): void {
    if (action.kind !== "action") return;
    const local = this.mustLocal();
    for (const k of textTopics(action.changes)) {
      const i = this.pendingActions.indexOf(action);
      if (i < 0) return;
      const [obj, attr] = splitTopic(k);
      if (firstSetIndex(action.changes, obj, attr) >= 0) {
        // Later edits to this text were made on a value that never existed: drop them.
        this.dropTextEdits(k, i + 1);
        continue;
      }
      const edits = textEditsByTopic(action.changes).get(k) ?? [];
      const text = local.get(obj)?.attrs.get(attr);
      const inverse = typeof text === "string" ? invertEdits(this.textBefore(k, text, i), edits) : null;
      if (inverse !== null) this.transformPending(k, inverse, true, i + 1);
    }
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
        outcome.rejected.push({ action: p, code: "list_base_stale", reason: staleListReason(s), change: s.change });
      } else {
        this.forgetEffects(p);
        p.staleList = s;
        p.doomed = true;
      }
    }
  }

  /** The text of topic `k` as pending action `i` saw it: confirmed plus earlier pending edits. */
  private textBefore(k: TopicKey, confirmed: string, i: number): string {
    let s = confirmed;
    for (const p of this.pendingActions.slice(0, i)) {
      if (p.kind !== "action" || p.doomed || p.localError !== null) continue;
      const t = textAfterLastSet(p.changes).get(k);
      if (t !== undefined) s = applyEdits(t.set ?? s, t.edits) ?? s;
    }
    return s;
  }

  /**
   * Transforms the text edits on topic `k` of pending actions from index `from` on against
   * `incoming` (made on the same text as the first of them). Returns `incoming` rewritten to
   * apply after them (the net change of the local view), or `null` if no pending edit was there.
   *
   * A pending whole-string `set` of the topic ends the transform: the edits before it in its
   * action are transformed, those after it (and in later actions) are relative to the new text
   * and stay as they are, as the server treats them; `incoming` is then overwritten (`[]`).
   */
  private transformPending(k: TopicKey, incoming: readonly TextEdit[], mineFirst: boolean, from: number): TextEdit[] | null {
    const [obj, attr] = splitTopic(k);
    let theirs: TextEdit[] = incoming.slice();
    let touched = false;
    for (let i = from; i < this.pendingActions.length; i++) {
      const p = this.pendingActions[i] as PendingAction;
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
    this.dropEmptyUnsent();
    return theirs;
  }

  /**
   * Drops the text edits on topic `k` that depend on a text that was replaced (a remote `set`,
   * see `onUpdate`, or a refused own `set`) from pending actions from index `from` on: unsent
   * ones lose those edits, sent ones are doomed (the server refuses them). Edits after a pending
   * `set` of the topic (in its action or later ones) are relative to that set and stay.
   */
  private dropTextEdits(k: TopicKey, from = 0): void {
    const [obj, attr] = splitTopic(k);
    for (const p of this.pendingActions.slice(from)) {
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
    this.dropEmptyUnsent();
  }

  /** Unsent actions whose changes all vanished are dropped (they would be `empty_action`). */
  private dropEmptyUnsent(): void {
    for (let i = this.pendingActions.length - 1; i >= 0; i--) {
      const p = this.pendingActions[i] as PendingAction;
      if (p.kind === "action" && p.sentBase === null && p.changes.length === 0) this.pendingActions.splice(i, 1);
    }
  }

  /** The resume catch-up reached the welcome's version: settle what the server processed
   * while away, then send the rest again. */
  private finishCatchUp(outcome: Outcome): void {
    const catchUp = this.catchUp;
    if (catchUp === null) return;
    this.catchUp = null;
    // Processed actions that change no state (emits only, or edits absorbed by others') are
    // answered with `events`, which a catch-up does not replay: missing there is no refusal.
    const stateless = (p: PendingAction) => p.kind === "action" && p.changes.every((c) => c.op === "emit");
    for (const p of this.pendingActions.filter((p) => p.id <= catchUp.acked && stateless(p))) {
      this.pendingActions.splice(this.pendingActions.indexOf(p), 1);
      outcome.acked.push(p);
    }
    const refused = this.pendingActions.filter((p) => p.id <= catchUp.acked);
    if (refused.length > 0 || this.pendingActions.some((p) => p.doomed)) {
      outcome.diffs.push(
        this.rebuild(() => {
          // Pending with id <= acked and no update in the catch-up were rejected.
          for (const action of refused) {
            this.removeAt(this.pendingActions.indexOf(action));
            outcome.rejected.push({
              action,
              code: "rejected",
              reason: "refused while disconnected (the server does not repeat the reason)",
              change: undefined,
            });
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
      const s = p.staleList;
      outcome.rejected.push(
        s !== null
          ? { action: p, code: "list_base_stale", reason: staleListReason(s), change: s.change }
          : {
              action: p,
              code: "text_base_too_old",
              reason: "the text was replaced by someone else before this edit reached the server",
              change: undefined,
            },
      );
    }
  }

  /** Sends what the sending rule allows, oldest first; returns the messages. */
  private flush(): ClientMessage[] {
    const mirror = this.mirrorState;
    if (!this.online || mirror === null || this.tx !== null) return [];
    this.dropEmptyUnsent(); // e.g. a delete absorbed by others' deletes, waiting to be re-sent
    const out: ClientMessage[] = [];
    const busy = new Set<TopicKey>();
    for (const p of this.pendingActions) {
      if (p.sentBase !== null) {
        if (p.kind !== "action") return out; // an unanswered undo holds everything behind it
        for (const k of textTopics(p.changes)) busy.add(k);
        continue;
      }
      if (p.kind !== "action") {
        p.sentBase = mirror.version;
        p.everSent = true;
        const msg: ClientMessage = { t: p.kind, id: p.id };
        if (p.scope !== undefined) msg.scope = p.scope;
        out.push(msg);
        return out;
      }
      if ([...waitingTopics(p.changes)].some((k) => busy.has(k))) return out; // FIFO: everything behind waits too
      p.sentBase = mirror.version;
      p.everSent = true;
      out.push({ t: "action", id: p.id, base: mirror.version, changes: p.changes.slice() });
      for (const k of textTopics(p.changes)) busy.add(k);
    }
    return out;
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
