import { describe, expect, it } from "vitest";
import { CallError, ObjectSyncError, RejectedError } from "./errors.js";

describe("errors", () => {
  it("carry code, reason and where, and can be told apart", () => {
    const r = new RejectedError("root_immutable", "the root object cannot be deleted", 2, 0, [{ op: "delete", id: "root" }]);
    expect(r).toBeInstanceOf(ObjectSyncError);
    expect(r).toBeInstanceOf(Error);
    expect(r.message).toBe("root_immutable: the root object cannot be deleted");
    expect([r.name, r.action, r.change, r.changes.length]).toEqual(["RejectedError", 2, 0, 1]);
    const c = new CallError("timeout", "slow", "layout");
    expect(c).toBeInstanceOf(ObjectSyncError);
    expect(c).not.toBeInstanceOf(RejectedError);
    expect([c.name, c.code, c.service]).toEqual(["CallError", "timeout", "layout"]);
  });
});
