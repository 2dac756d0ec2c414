/**
 * Wire protocol v1 (docs/protocol.md), the one module the rest of the client imports it from.
 * It re-exports the parts in `protocol/`, each one thing:
 *
 * - `changes.ts`: JSON values, snapshots and the change of every `op`;
 * - `messages.ts`: the client's and the server's messages, {@link encodeClientMessage};
 * - `codes.ts`: the protocol version, error codes and close codes;
 * - `decode.ts`: {@link decodeServerMessage} and {@link decodeChange} (built of `readers.ts`,
 *   `decode-snapshot.ts` and `decode-change.ts`).
 *
 * Only these modules know the JSON shape of the wire. They hold no state. Wire input is
 * `unknown` until the decoder has narrowed it; it never throws.
 */

export * from "./protocol/changes.js";
export * from "./protocol/codes.js";
export * from "./protocol/decode.js";
export * from "./protocol/messages.js";
