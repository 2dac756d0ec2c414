import { describe, expect, it } from "vitest";
import { encodeClientMessage } from "./messages.js";

describe("encodeClientMessage", () => {
  it("encodes client messages as JSON text", () => {
    const text = encodeClientMessage({ t: "hello", protocol: 1, resume: { client: "c5", resume_token: "r", version: 4 } });
    expect(JSON.parse(text)).toEqual({ t: "hello", protocol: 1, resume: { client: "c5", resume_token: "r", version: 4 } });
  });
});
