/**
 * The numbers and names of the wire: the protocol version, the error codes of `reject`, `error`
 * and `result.error`, and the WebSocket close codes the server uses.
 */

/** The protocol version this client speaks (`hello.protocol`). */
export const PROTOCOL_VERSION = 1;

/** Error codes of `reject.code`, `error.code` and `result.error.code` (docs/protocol.md). */
export type ErrorCode =
  | "no_such_object"
  | "no_such_attribute"
  | "no_such_type"
  | "wrong_kind"
  | "duplicate_id"
  | "bad_id"
  | "out_of_range"
  | "splits_character"
  | "no_such_key"
  | "set_element"
  | "overflow"
  | "dangling_ref"
  | "cycle"
  | "root_immutable"
  | "too_deep"
  | "too_many_changes"
  | "reaction_depth"
  | "too_large"
  | "invalid"
  | "denied"
  | "read_only"
  | "bad_base"
  | "text_base_too_old"
  | "text_base_stale"
  | "list_base_stale"
  | "list_base_too_old"
  | "empty_action"
  | "duplicate_action"
  | "nothing_to_undo"
  | "undo_conflict"
  | "custom"
  | "bad_message"
  | "unknown_message"
  | "rate_limited"
  | "no_such_service"
  | "timeout"
  | "service_failed";

/** WebSocket close codes the server uses (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooLarge: 1009,
  badHandshake: 4000,
  unauthorized: 4001,
  roomUnavailable: 4002,
  tooSlow: 4003,
  tooManyBadMessages: 4004,
  idle: 4005,
} as const;

