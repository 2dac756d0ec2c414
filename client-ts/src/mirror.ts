/**
 * The confirmed tree: the room's document at version `v` exactly as the server has it, built
 * from a snapshot and advanced by `update`s in version order. It never holds local guesses
 * (`rebase.ts` keeps those) and never touches the DOM.
 *
 * An update that does not follow the version is not applied: an older one is a duplicate, a
 * newer one means messages were lost (the caller resyncs by resuming from `version`). An update
 * that does not apply to the tree means the mirror diverged (the caller reloads a snapshot).
 */

import type { Change, Snapshot } from "./protocol.js";
import type { ApplyError, Step, TreeObject } from "./tree.js";
import { ObjectTree } from "./tree.js";

/** What happened to an update offered to the mirror. */
export type MirrorResult =
  | { readonly kind: "applied"; readonly steps: readonly Step[] }
  /** `v` is not above the mirror's version: already applied, ignored. */
  | { readonly kind: "duplicate" }
  /** Versions `expected`..`got - 1` are missing: resync from `expected - 1`. */
  | { readonly kind: "gap"; readonly expected: number; readonly got: number }
  /** The update does not apply to the confirmed tree: reload a snapshot. */
  | { readonly kind: "diverged"; readonly index: number; readonly error: ApplyError };

/** The confirmed tree at `version`. */
export class Mirror {
  /** The tree (read it, never change it). */
  readonly tree: ObjectTree;
  private currentVersion: number;
  /** The server's id counter at the snapshot (informative; server code makes `s:<n>` ids). */
  readonly nextServerId: number;

  private constructor(tree: ObjectTree, version: number, nextServerId: number) {
    this.tree = tree;
    this.currentVersion = version;
    this.nextServerId = nextServerId;
  }

  /** The mirror of a snapshot. */
  static fromSnapshot(snapshot: Snapshot): Mirror {
    return new Mirror(new ObjectTree(snapshot.root), snapshot.version, snapshot.next_server_id);
  }

  /** The version of the confirmed state. */
  get version(): number {
    return this.currentVersion;
  }

  /** The confirmed object with `id`. */
  get(id: string): TreeObject | undefined {
    return this.tree.get(id);
  }

  /** Applies update `v` if it is the next version (see {@link MirrorResult}). */
  applyUpdate(update: { readonly v: number; readonly changes: readonly Change[] }): MirrorResult {
    if (update.v <= this.currentVersion) return { kind: "duplicate" };
    if (update.v !== this.currentVersion + 1) {
      return { kind: "gap", expected: this.currentVersion + 1, got: update.v };
    }
    const steps: Step[] = [];
    const failed = this.tree.applyAll(update.changes, steps);
    if (failed !== null) return { kind: "diverged", index: failed.index, error: failed.error };
    this.currentVersion = update.v;
    return { kind: "applied", steps };
  }
}
