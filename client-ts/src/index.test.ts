import { describe, expect, it } from "vitest";
import * as api from "./index.js";

describe("the package entry", () => {
  it("exports the public API", () => {
    for (const name of [
      "ObjectSyncClient",
      "SObject",
      "Connection",
      "Mirror",
      "StringTopic",
      "EventTopic",
      "ObjectSyncError",
      "RejectedError",
      "CallError",
      "bindText",
      "bindStyle",
      "bindClass",
      "bindInput",
      "decodeServerMessage",
      "transformSeqs",
    ]) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe("function");
    }
    expect(api.PROTOCOL_VERSION).toBe(1);
    expect(api.CloseCode.unauthorized).toBe(4001);
    expect(api.CLOSE_CODE_MEANINGS[api.CloseCode.storeFailed]).toMatch(/storage/);
    expect(api.ERROR_CODES.list_base_stale).toBeTypeOf("string");
    expect(api.DEFAULT_LIMITS.frame_bytes_max).toBe(1 << 20);
  });
});
