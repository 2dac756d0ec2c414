/**
 * A client's service calls (`ObjectSyncClient.call`): each waits for its `result`, for its own
 * timeout, or for the end of the connection it went out on. A call made while no connection is
 * open goes with the next welcome. Knows no socket: the client passes a `send` that says whether
 * the message went out.
 */

import { CallError } from "../errors.js";
import type { CallMessage, JsonValue, ResultMessage } from "../protocol.js";

/** Sends a `call` if a connection is open; `false` if it did not go out. */
export type SendCall = (msg: CallMessage) => boolean;

interface PendingCall {
  readonly service: string;
  readonly args: JsonValue;
  readonly resolve: (v: JsonValue) => void;
  readonly reject: (e: CallError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** Whether it went out on the current connection (then only its `result` or the connection's
   * end settles it). */
  sent: boolean;
}

/** The calls waiting for their results, by call id. */
export class ServiceCalls {
  private counter = 0;
  private readonly calls = new Map<number, PendingCall>();

  /** Calls `service`: resolves with its `ok`, rejects with a {@link CallError} (`timeout` after
   * `timeoutMs`). */
  start(service: string, args: JsonValue, timeoutMs: number, send: SendCall): Promise<JsonValue> {
    return new Promise<JsonValue>((resolve, reject) => {
      const id = ++this.counter;
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new CallError("timeout", `${service} did not answer within ${timeoutMs} ms`, service));
      }, timeoutMs);
      const call: PendingCall = { service, args, resolve, reject, timer, sent: false };
      this.calls.set(id, call);
      call.sent = send({ t: "call", id, service, args });
    });
  }

  /** A welcome: the calls that have not gone out yet go now. */
  sendUnsent(send: SendCall): void {
    for (const [id, c] of this.calls) {
      if (!c.sent) c.sent = send({ t: "call", id, service: c.service, args: c.args });
    }
  }

  /** The connection dropped: calls that went out on it fail (`disconnected`), since their results
   * are lost; the others wait for the next connection. */
  failSent(): void {
    for (const [id, c] of this.calls) {
      if (!c.sent) continue;
      clearTimeout(c.timer);
      c.reject(new CallError("disconnected", "the connection dropped before the result arrived", c.service));
      this.calls.delete(id);
    }
  }

  /** A `result` settles its call (none, if it timed out already). */
  settle(r: ResultMessage): void {
    const c = this.calls.get(r.id);
    if (c === undefined) return;
    this.calls.delete(r.id);
    clearTimeout(c.timer);
    if (r.error !== undefined) c.reject(new CallError(r.error.code, r.error.reason, c.service));
    else c.resolve(r.ok);
  }

  /** The client closed: every call fails (`closed`). */
  closeAll(): void {
    for (const [id, c] of this.calls) {
      clearTimeout(c.timer);
      c.reject(new CallError("closed", "the client was closed", c.service));
      this.calls.delete(id);
    }
  }
}
