/**
 * Handles on local edits: every edit (or transaction) returns one, to learn when the server
 * applied it or why it refused it. The promise is made only when asked for, so fire-and-forget
 * edits never leave an unhandled rejection behind.
 */

import type { RejectedError } from "./errors.js";

/** The fate of one local action. */
export interface ActionHandle {
  /** The action id (`null` when the edit changed nothing and so sent nothing). */
  readonly id: number | null;
  /** `pending`, then `confirmed` (applied by the server) or `rejected`. */
  readonly status: "pending" | "confirmed" | "rejected";
  /** Resolves once the server applied the action; rejects with a {@link RejectedError}. */
  confirmed(): Promise<void>;
}

/** The shared state behind the handles of one action (typing merges several edits into it). */
export class ActionRecord implements ActionHandle {
  id: number | null = null;
  status: "pending" | "confirmed" | "rejected" = "pending";
  private error: RejectedError | null = null;
  private promise: Promise<void> | null = null;
  private settle: { resolve: () => void; reject: (e: RejectedError) => void } | null = null;

  /** Gives the record its action id; `null` (nothing to send) confirms it at once. */
  bind(id: number | null): void {
    this.id = id;
    if (id === null) this.confirm();
  }

  confirmed(): Promise<void> {
    if (this.promise === null) {
      if (this.status === "confirmed") this.promise = Promise.resolve();
      else if (this.status === "rejected") this.promise = Promise.reject(this.error);
      else {
        this.promise = new Promise<void>((resolve, reject) => {
          this.settle = { resolve, reject };
        });
      }
    }
    return this.promise;
  }

  /** The server applied it (or it vanished without effect, which is as good). */
  confirm(): void {
    if (this.status !== "pending") return;
    this.status = "confirmed";
    this.settle?.resolve();
  }

  /** The server refused it. */
  reject(error: RejectedError): void {
    if (this.status !== "pending") return;
    this.status = "rejected";
    this.error = error;
    this.settle?.reject(error);
  }
}
