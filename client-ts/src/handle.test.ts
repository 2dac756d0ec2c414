import { describe, expect, it } from "vitest";
import { RejectedError } from "./errors.js";
import { ActionRecord } from "./handle.js";

describe("ActionRecord", () => {
  it("resolves once confirmed, whenever the promise is asked for", async () => {
    const early = new ActionRecord();
    early.bind(4);
    const p = early.confirmed();
    early.confirm();
    await expect(p).resolves.toBeUndefined();
    const late = new ActionRecord();
    late.bind(5);
    late.confirm();
    await expect(late.confirmed()).resolves.toBeUndefined();
    expect(late.status).toBe("confirmed");
  });

  it("rejects with the RejectedError, and settles only once", async () => {
    const r = new ActionRecord();
    r.bind(7);
    const err = new RejectedError("invalid", "no", 7, 0, []);
    r.reject(err);
    r.confirm();
    expect(r.status).toBe("rejected");
    await expect(r.confirmed()).rejects.toBe(err);
  });

  it("is confirmed at once when there was nothing to send", async () => {
    const r = new ActionRecord();
    r.bind(null);
    expect(r.status).toBe("confirmed");
    await expect(r.confirmed()).resolves.toBeUndefined();
  });
});
