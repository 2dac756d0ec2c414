/**
 * The decoder of server frames, {@link decodeServerMessage}, and of a change alone,
 * {@link decodeChange}: wire input is `unknown` until they have narrowed it. They never throw,
 * ignore unknown fields (a later minor version may add some) and answer malformed input with a
 * {@link DecodeError} that says where it went wrong.
 */

import type { Change, JsonValue } from "./changes.js";
import { change, changes } from "./decode-change.js";
import { snapshot } from "./decode-snapshot.js";
import type {
  BatchedMessage,
  BatchMessage,
  EventsMessage,
  PresenceMessage,
  RejectMessage,
  ServerMessage,
  UpdateMessage,
  UserInfo,
  WelcomeMessage,
} from "./messages.js";
import type { Obj } from "./readers.js";
import { array, bool, field, int, Invalid, json, obj, optStr, optUint, str, uint } from "./readers.js";

/** Why a frame could not be decoded. Returned, never thrown. */
export class DecodeError {
  /** Where and what: e.g. `update.changes[2].pos: expected a non-negative integer`. */
  readonly reason: string;
  /** The `t` of the message when it was readable (an unknown one included). */
  readonly messageType: string | undefined;
  constructor(reason: string, messageType?: string) {
    this.reason = reason;
    this.messageType = messageType;
  }
}

/**
 * Decodes the text of one server frame. Never throws: malformed JSON, a missing or mistyped
 * field, an unknown `t` or an unknown change `op` give a {@link DecodeError}. Unknown fields are
 * ignored. A `batch` is all or nothing: each of its messages is decoded as a frame of its own
 * would be, and a malformed one, a `welcome` or a nested `batch` make the whole frame an error
 * (its reason names the message, e.g. `batch.m[3].changes[0].pos: ...`).
 */
export function decodeServerMessage(text: string): ServerMessage | DecodeError {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return new DecodeError(`malformed JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return decodeMessage(raw);
  } catch (e) {
    if (e instanceof Invalid) return new DecodeError(e.message, e.messageType);
    // Only reachable through a bug in the decoder; still never throw on input.
    return new DecodeError(`decoder failure: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Decodes one change from parsed JSON (`path` names it in errors). */
export function decodeChange(raw: unknown, path = "change"): Change | DecodeError {
  try {
    return change(raw, path);
  } catch (e) {
    if (e instanceof Invalid) return new DecodeError(e.message);
    return new DecodeError(`decoder failure: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function decodeMessage(raw: unknown): ServerMessage {
  const o = obj(raw, "message");
  const t = field(o, "t");
  if (typeof t !== "string") throw new Invalid(`message.t: expected a string`);
  try {
    switch (t) {
      case "welcome":
        return welcome(o, t);
      case "batch":
        return batch(o, t);
      default:
        return decodeTyped(o, t, t, "message");
    }
  } catch (e) {
    // The frame's `t`, also when a message inside a batch is to blame.
    if (e instanceof Invalid) e.messageType = t;
    throw e;
  }
}

/** A batch's messages, each decoded as a standalone one; a `welcome` or `batch` among them is
 * refused (the server never sends one there). */
function batch(o: Obj, p: string): BatchMessage {
  const m = array(o, "m", p).map((raw, i): BatchedMessage => {
    const at = `${p}.m[${i}]`;
    const inner = obj(raw, at);
    const t = field(inner, "t");
    if (typeof t !== "string") throw new Invalid(`${at}.t: expected a string`);
    if (t === "welcome" || t === "batch") throw new Invalid(`${at}.t: a batch cannot contain a ${t}`);
    return decodeTyped(inner, t, at, at);
  });
  return { t: "batch", m };
}

function welcome(o: Obj, p: string): WelcomeMessage {
  const presence: Record<string, JsonValue> = {};
  const rawPresence = field(o, "presence");
  if (rawPresence !== undefined && rawPresence !== null) {
    for (const [client, state] of Object.entries(obj(rawPresence, `${p}.presence`))) {
      Object.defineProperty(presence, client, {
        value: json(state, `${p}.presence.${client}`),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const m: WelcomeMessage = {
    t: "welcome",
    protocol: uint(o, "protocol", p),
    client: str(o, "client", p),
    resume_token: str(o, "resume_token", p),
    version: uint(o, "version", p),
    acked: uint(o, "acked", p),
    presence,
    read_only: bool(o, "read_only", p, false),
    undo_steps: field(o, "undo_steps") === undefined ? 0 : uint(o, "undo_steps", p),
    redo_steps: field(o, "redo_steps") === undefined ? 0 : uint(o, "redo_steps", p),
  };
  const snap = field(o, "snapshot");
  if (snap !== undefined && snap !== null) m.snapshot = snapshot(snap, `${p}.snapshot`);
  const identity = field(o, "identity");
  if (identity !== undefined && identity !== null) m.identity = userInfo(identity, `${p}.identity`);
  const users = field(o, "users");
  if (users !== undefined && users !== null) {
    const byClient: Record<string, UserInfo> = {};
    for (const [client, u] of Object.entries(obj(users, `${p}.users`))) {
      Object.defineProperty(byClient, client, { value: userInfo(u, `${p}.users.${client}`), enumerable: true, writable: true, configurable: true });
    }
    m.users = byClient;
  }
  return m;
}

/** `{"id": ..., "name"?: ..., "roles"?: [...]}`. */
function userInfo(v: unknown, p: string): UserInfo {
  const o = obj(v, p);
  const u: UserInfo = { id: str(o, "id", p) };
  const name = optStr(o, "name", p);
  if (name !== undefined) u.name = name;
  if (field(o, "roles") !== undefined) {
    u.roles = array(o, "roles", p).map((r, i) => {
      if (typeof r !== "string") throw new Invalid(`${p}.roles[${i}]: expected a string`);
      return r;
    });
  }
  return u;
}

/** Every message but `welcome` and `batch`; `p` prefixes field paths, `at` names the message
 * (`message` for a frame, `batch.m[i]` inside a batch). */
function decodeTyped(o: Obj, t: string, p: string, at: string): BatchedMessage {
  switch (t) {
    case "update":
    case "events": {
      const m: UpdateMessage | EventsMessage = {
        t,
        v: uint(o, "v", p),
        origin: str(o, "origin", p),
        changes: changes(o, p),
      };
      const action = optUint(o, "action", p);
      if (action !== undefined) m.action = action;
      return m;
    }
    case "reject": {
      const m: RejectMessage = {
        t,
        action: uint(o, "action", p),
        code: str(o, "code", p),
        reason: optStr(o, "reason", p) ?? "",
      };
      const c = optUint(o, "change", p);
      if (c !== undefined) m.change = c;
      return m;
    }
    case "presence": {
      const state = field(o, "state");
      const m: PresenceMessage = { t, client: str(o, "client", p), state: state === undefined ? null : json(state, p) };
      const user = field(o, "user");
      if (user !== undefined && user !== null) m.user = userInfo(user, `${p}.user`);
      return m;
    }
    case "result": {
      const id = int(o, "id", p);
      const err = field(o, "error");
      if (err !== undefined && err !== null) {
        const e = obj(err, `${p}.error`);
        return {
          t,
          id,
          error: { code: str(e, "code", `${p}.error`), reason: optStr(e, "reason", p) ?? "" },
        };
      }
      if (!Object.prototype.hasOwnProperty.call(o, "ok")) {
        throw new Invalid(`${p}: expected field "ok" or "error"`);
      }
      return { t, id, ok: json(field(o, "ok"), `${p}.ok`) };
    }
    case "error":
      return { t, code: str(o, "code", p), reason: optStr(o, "reason", p) ?? "" };
    default:
      throw new Invalid(`${at}.t: unknown message type "${t}"`);
  }
}
