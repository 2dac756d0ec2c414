/**
 * The numbers and names of the wire: the protocol version, the error codes of `reject`, `error`
 * and `result.error`, and the WebSocket close codes the server uses. The codes, their meanings
 * and the server's default limits come from `generated.ts`, which `objectsync codegen
 * protocol-ts` writes from the server's own constants (never edited by hand); this module gives
 * them the names the client has always exported.
 */

import { CLOSE_CODES } from "./generated.js";
import type { ERROR_CODES } from "./generated.js";

export { CLOSE_CODE_MEANINGS, DEFAULT_LIMITS, ERROR_CODES } from "./generated.js";

/**
 * The protocol version this client speaks (`hello.protocol`). Written here, not generated: it is
 * the version of this client's messages; a test fails when the server's moves on.
 */
export const PROTOCOL_VERSION = 1;

/** Error codes of `reject.code`, `error.code` and `result.error.code` (docs/protocol.md). */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * WebSocket close codes the server uses, by name (docs/protocol.md, "Close codes"): the generated
 * names, and `tooLarge` and `tooManyBadMessages`, this client's earlier names of two of them.
 */
export const CloseCode = {
  ...CLOSE_CODES,
  /** 1009, the same as `tooBig`. */
  tooLarge: CLOSE_CODES.tooBig,
  /** 4004, the same as `tooManyErrors`. */
  tooManyBadMessages: CLOSE_CODES.tooManyErrors,
} as const;
