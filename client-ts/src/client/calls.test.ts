import { afterEach, describe, expect, it, vi } from "vitest";
import { CallError } from "../errors.js";
import type { CallMessage } from "../protocol.js";
import { ServiceCalls } from "./calls.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A `send` that records what went out, and says `online`. */
function wire(online: boolean): { sent: CallMessage[]; send: (m: CallMessage) => boolean } {
  const sent: CallMessage[] = [];
  return { sent, send: (m) => (online ? (sent.push(m), true) : false) };
}

async function failure(p: Promise<unknown>): Promise<CallError> {
  const e: unknown = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof CallError)) throw new Error(`expected a CallError, got ${String(e)}`);
  return e;
}

describe("service calls", () => {
  it("resolve with their result's ok, or reject with its error", async () => {
    const calls = new ServiceCalls();
    const w = wire(true);
    const ok = calls.start("echo", { x: 1 }, 1000, w.send);
    const bad = calls.start("fail", null, 1000, w.send);
    expect(w.sent).toEqual([
      { t: "call", id: 1, service: "echo", args: { x: 1 } },
      { t: "call", id: 2, service: "fail", args: null },
    ]);
    calls.settle({ t: "result", id: 1, ok: "pong" });
    calls.settle({ t: "result", id: 2, error: { code: "service_failed", reason: "no" } });
    calls.settle({ t: "result", id: 9, ok: null }); // unknown: ignored
    expect(await ok).toBe("pong");
    const e = await failure(bad);
    expect([e.code, e.reason, e.service]).toEqual(["service_failed", "no", "fail"]);
  });

  it("made offline go out with the next welcome; a dropped connection fails only those that went out", async () => {
    const calls = new ServiceCalls();
    const offline = calls.start("a", null, 1000, wire(false).send);
    const w = wire(true);
    calls.sendUnsent(w.send);
    expect(w.sent).toEqual([{ t: "call", id: 1, service: "a", args: null }]);
    const later = calls.start("b", null, 1000, wire(false).send);
    calls.failSent();
    expect((await failure(offline)).code).toBe("disconnected");
    calls.closeAll();
    expect((await failure(later)).code).toBe("closed");
  });

  it("time out on their own", async () => {
    vi.useFakeTimers();
    const calls = new ServiceCalls();
    const p = calls.start("slow", null, 50, wire(true).send);
    vi.advanceTimersByTime(50);
    const e = await failure(p);
    expect([e.code, e.reason]).toEqual(["timeout", "slow did not answer within 50 ms"]);
  });
});
