/**
 * What a document is made of on the wire (docs/protocol.md, "Changes" and "Snapshot shape"):
 * JSON values, object snapshots, and the change of every `op`, as a client asks for it and as an
 * `update` reports it. Types only, and {@link isAttrChange}; `decode-change.ts` decodes them.
 */

/** Any JSON value. Values read from the tree are frozen: treat them as read-only. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** One object with its attributes and subtree, as in snapshots and `create` changes. */
export interface NodeSnapshot {
  /** Object id. */
  id: string;
  /** Registered type name. */
  type: string;
  /** Every stored attribute by name (absent if the type has none). */
  attrs?: JsonObject;
  /** Children in order (absent if none). */
  children?: NodeSnapshot[];
}

/** The whole document at `version` (`welcome.snapshot`). */
export interface Snapshot {
  /** The version the snapshot shows. */
  version: number;
  /** The server's id counter (server code makes `s:<n>` ids). */
  next_server_id: number;
  /** The root object (`id: "root"`, type `Root`). */
  root: NodeSnapshot;
}

/** Create an object (and its given children) under `parent` at `index` (the end if absent). */
export interface CreateChange {
  op: "create";
  id: string;
  type: string;
  parent: string;
  index?: number;
  attrs?: JsonObject;
  children?: NodeSnapshot[];
}
/** Delete an object and its subtree. */
export interface DeleteChange {
  op: "delete";
  id: string;
}
/** Move an object under `parent` to final position `index` (the end if absent). */
export interface MoveChange {
  op: "move";
  id: string;
  parent: string;
  index?: number;
}
/** Replace an attribute's value (any stored kind). */
export interface SetChange {
  op: "set";
  obj: string;
  attr: string;
  value: JsonValue;
}
/** Add a number to an `int` or `float` attribute. */
export interface AddChange {
  op: "add";
  obj: string;
  attr: string;
  value: number;
}
/** Insert text at a UTF-16 position of a `string` attribute. */
export interface TextInsertChange {
  op: "text_insert";
  obj: string;
  attr: string;
  pos: number;
  text: string;
}
/** Delete `len` UTF-16 units at `pos` of a `string` attribute. */
export interface TextDeleteChange {
  op: "text_delete";
  obj: string;
  attr: string;
  pos: number;
  len: number;
}
/** Set one key of a `dict` or `ref_dict` attribute. */
export interface DictSetChange {
  op: "dict_set";
  obj: string;
  attr: string;
  key: string;
  value: JsonValue;
}
/** Remove one key of a `dict` or `ref_dict` attribute. */
export interface DictRemoveChange {
  op: "dict_remove";
  obj: string;
  attr: string;
  key: string;
}
/** Insert into a `list` or `ref_list` at `index` (the end if absent). */
export interface ListInsertChange {
  op: "list_insert";
  obj: string;
  attr: string;
  index?: number;
  value: JsonValue;
}
/** Remove the element at `index` of a `list` or `ref_list`. */
export interface ListRemoveChange {
  op: "list_remove";
  obj: string;
  attr: string;
  index: number;
}
/** Move an element of a `list` or `ref_list` from `from` to its final position `to`. */
export interface ListMoveChange {
  op: "list_move";
  obj: string;
  attr: string;
  from: number;
  to: number;
}
/** Replace the element at `index` of a `list` or `ref_list`. */
export interface ListSetChange {
  op: "list_set";
  obj: string;
  attr: string;
  index: number;
  value: JsonValue;
}
/** Add an element to a `set` (refused if present). */
export interface SetAddChange {
  op: "set_add";
  obj: string;
  attr: string;
  value: SetElement;
}
/** Remove an element from a `set` (refused if absent). */
export interface SetRemoveChange {
  op: "set_remove";
  obj: string;
  attr: string;
  value: SetElement;
}
/** Emit a one-shot event on an `event` attribute. */
export interface EmitChange {
  op: "emit";
  obj: string;
  attr: string;
  args?: JsonValue;
}

/** An element of a `set` topic: a string, an integer or a boolean. */
export type SetElement = string | number | boolean;

/** One change, as a client asks for it or as an `update` reports it. */
export type Change =
  | CreateChange
  | DeleteChange
  | MoveChange
  | SetChange
  | AddChange
  | TextInsertChange
  | TextDeleteChange
  | DictSetChange
  | DictRemoveChange
  | ListInsertChange
  | ListRemoveChange
  | ListMoveChange
  | ListSetChange
  | SetAddChange
  | SetRemoveChange
  | EmitChange;

/** Changes that name an attribute (`obj` + `attr`). */
export type AttrChange = Exclude<Change, CreateChange | DeleteChange | MoveChange>;

/** Whether a change targets an attribute (rather than the tree). */
export function isAttrChange(c: Change): c is AttrChange {
  return c.op !== "create" && c.op !== "delete" && c.op !== "move";
}
