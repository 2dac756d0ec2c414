import { describe, expect, it } from "vitest";
import { CLOSE_CODE_MEANINGS, CloseCode, ERROR_CODES, PROTOCOL_VERSION } from "./codes.js";
import type { ErrorCode } from "./codes.js";
import * as generated from "./generated.js";

describe("the wire's codes", () => {
  it("keep every close code name the client exported, with its number", () => {
    expect(CloseCode).toMatchObject({
      normal: 1000,
      goingAway: 1001,
      tooLarge: 1009,
      badHandshake: 4000,
      unauthorized: 4001,
      roomUnavailable: 4002,
      tooSlow: 4003,
      tooManyBadMessages: 4004,
      idle: 4005,
    });
  });

  it("include the server's storage failure, 1011, with its meaning", () => {
    expect(CloseCode.storeFailed).toBe(1011);
    expect(CLOSE_CODE_MEANINGS[1011]).toMatch(/storage failed/);
    for (const code of Object.values(CloseCode)) expect(CLOSE_CODE_MEANINGS[code], String(code)).toBeTypeOf("string");
  });

  it("type every error code the server sends, each with a meaning", () => {
    const codes: ErrorCode[] = ["list_base_stale", "rate_limited", "service_failed"];
    for (const c of codes) expect(ERROR_CODES[c]).not.toBe("");
  });

  it("speak the server's protocol version", () => {
    expect(PROTOCOL_VERSION, "the server speaks another protocol: update this client's messages and PROTOCOL_VERSION").toBe(
      generated.PROTOCOL_VERSION,
    );
  });
});
