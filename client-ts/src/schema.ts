/**
 * The typed schema: the static `typeName` and `attrs` that `objectsync codegen ts` puts on each
 * generated class, the types that turn them into typed `create` options, and the runtime check
 * the client runs on every change before applying and sending it (`SchemaIndex.check`).
 *
 * The check knows only what the schema says: whether a type exists, whether it has an attribute,
 * and whether a change fits the attribute's kind (the server's `TopicKind::conform` and
 * `Document::attr_op` kind rules). Everything else (ranges, keys, references, validators,
 * permissions) stays the server's to judge. No state, no I/O.
 */

import { ObjectSyncError, SchemaError } from "./errors.js";
import type { AttrChange, Change, JsonObject, JsonValue, NodeSnapshot, SetElement } from "./protocol.js";
import type { SObject, SObjectInit } from "./sobject.js";
import { isJsonObject } from "./values.js";

/** The kind of an attribute as the server names it on the wire (`TopicKind::name`). */
export type AttrKind = "string" | "int" | "float" | "bool" | "dict" | "list" | "set" | "event" | "ref" | "ref_list" | "ref_dict";

/** A JSON value that may be read-only all the way down (generated defaults are `as const`). */
export type ReadonlyJsonValue =
  | null
  | boolean
  | number
  | string
  | readonly ReadonlyJsonValue[]
  | { readonly [key: string]: ReadonlyJsonValue };

/** One attribute of a type: its kind, and the value the server gives it when a `create` leaves it out. */
export interface AttrSchema {
  /** The wire kind. */
  readonly kind: AttrKind;
  /** The default; absent for `event` attributes, which hold nothing. */
  readonly default?: ReadonlyJsonValue;
}

/** A type's attributes by name (a generated class's static `attrs`). */
export type AttrsSchema = { readonly [name: string]: AttrSchema };

/**
 * A class of one type as `objectsync codegen ts` generates it (or an application subclass of
 * one, which inherits the statics): instantiated for the type's objects.
 */
export interface SchemaClass<T extends SObject = SObject> {
  new (init: SObjectInit): T;
  /** The instances' prototype (every class has it): how the types name the instance type. */
  readonly prototype: T;
  /** The type name on the wire. */
  readonly typeName: string;
  /** Each attribute's kind and default. */
  readonly attrs: AttrsSchema;
}

/**
 * Every type of a room by type name (the generated `schema` export), each key its class's
 * `typeName`. Types the schema leaves out cannot be created through a client that has it.
 *
 * `Schema` itself, the default of `ObjectSyncClient<S>`, is the untyped case: any string is a
 * type name, any class a type's class, and attributes are any JSON (so no conditional type is
 * needed to tell the cases apart, and a typed client is assignable to `ObjectSyncClient`).
 */
export type Schema = { readonly [typeName: string]: SchemaClass };

/**
 * The value type of each kind, as `create` takes it. `dict` and `list` hold any JSON: the server
 * declares no element type for them, so neither can the schema.
 */
export interface KindValues {
  string: string;
  int: number;
  float: number;
  bool: boolean;
  dict: JsonObject;
  list: JsonValue[];
  set: SetElement[];
  /** Events hold nothing: `create` cannot give them. */
  event: never;
  ref: string | null;
  ref_list: string[];
  ref_dict: Record<string, string>;
}

/** The attributes a `create` of class `C` may give: any stored attribute, with its kind's value type. */
export type CreateAttrs<C extends SchemaClass> = {
  -readonly [K in keyof C["attrs"] as C["attrs"][K]["kind"] extends "event" ? never : K]?: KindValues[C["attrs"][K]["kind"]];
};

/** Options of a typed `ObjectSyncClient.create` of class `C`. */
export interface TypedCreateOptions<C extends SchemaClass> {
  /** Initial attributes, typed by the class's `attrs` (the server fills the rest with defaults). */
  readonly attrs?: CreateAttrs<C>;
  /** Position among the parent's children (the end if absent). */
  readonly index?: number;
  /**
   * Children to create inside it. Loosely typed: wire snapshots, whose types and attributes
   * are checked at run time only (against the schema, before sending).
   */
  readonly children?: NodeSnapshot[];
}

/**
 * The class `create` makes for `K`: `K` itself if it is a class, else the schema's class of type
 * name `K` (`SchemaClass` for an untyped client, whose `Schema` maps every name to it).
 */
export type ClassFor<S extends Schema, K> = K extends SchemaClass ? K : S[K & keyof S];

/** The built-in type of the root object: registered by every server, with no attributes. */
const ROOT_TYPE = "Root";
const NO_ATTRS: AttrsSchema = Object.freeze({});

/** A schema as the client checks against it: the attributes of each type by name. */
export class SchemaIndex {
  private readonly types = new Map<string, AttrsSchema>();

  /** Indexes `schema`; throws `invalid` if a key is not its class's `typeName`. */
  constructor(schema: Schema) {
    for (const [name, cls] of Object.entries(schema)) {
      if (cls.typeName !== name) {
        throw new ObjectSyncError("invalid", `schema key ${JSON.stringify(name)} holds the class of type ${JSON.stringify(cls.typeName)}`);
      }
      this.types.set(name, cls.attrs);
    }
  }

  /** The attributes of `type` (the root type's: none), or `undefined` if the schema lacks it. */
  attrsOf(type: string): AttrsSchema | undefined {
    return this.types.get(type) ?? (type === ROOT_TYPE ? NO_ATTRS : undefined);
  }

  /**
   * Why the server would refuse `change` for its kind, attribute or type, or `null` if the schema
   * sees nothing wrong. `typeOf` gives the type of an existing object; a change to an object it
   * does not know, or of a type the schema lacks (a schema older than the server), is left to
   * the server.
   */
  check(change: Change, typeOf: (id: string) => string | undefined): SchemaError | null {
    switch (change.op) {
      case "create":
        return this.checkNode(change.id, change.type, change.attrs, change.children, 0);
      case "delete":
      case "move":
        return null;
      default: {
        const type = typeOf(change.obj);
        const attrs = type === undefined ? undefined : this.attrsOf(type);
        if (type === undefined || attrs === undefined) return null;
        const a = attrOf(attrs, change.attr);
        if (a === undefined) return noSuchAttribute(change.obj, type, change.attr);
        const reason = opMismatch(a.kind, change);
        if (reason === null) return null;
        return wrongKind(change.obj, type, change.attr, a.kind, reason);
      }
    }
  }

  /** Checks a subtree to be created: its types exist, its attributes exist, hold no event and fit their kinds. */
  private checkNode(
    id: string,
    type: string,
    attrs: JsonObject | undefined,
    children: readonly NodeSnapshot[] | undefined,
    depth: number,
  ): SchemaError | null {
    const schema = this.attrsOf(type);
    if (schema === undefined) {
      return new SchemaError("no_such_type", `no SObject type named ${JSON.stringify(type)} is registered`, { obj: id, type });
    }
    for (const [name, value] of Object.entries(attrs ?? {})) {
      const a = attrOf(schema, name);
      if (a === undefined) return noSuchAttribute(id, type, name);
      const reason = a.kind === "event" ? "an event topic holds no value" : valueMismatch(a.kind, value);
      if (reason !== null) return wrongKind(id, type, name, a.kind, reason);
    }
    // Deeper subtrees are refused by the tree (`too_deep`); this bound only stops the recursion.
    if (depth > CHECK_DEPTH_MAX) return null;
    for (const c of children ?? []) {
      const bad = this.checkNode(c.id, c.type, c.attrs, c.children, depth + 1);
      if (bad !== null) return bad;
    }
    return null;
  }
}

/** The default values of the stored attributes in `attrs`, for objects created locally. */
export function defaultsOf(attrs: AttrsSchema): JsonObject {
  const out: JsonObject = {};
  for (const [name, a] of Object.entries(attrs)) {
    // Generated defaults are plain JSON literals; the tree freezes what it stores and never writes it.
    if (a.kind !== "event" && a.default !== undefined) out[name] = a.default as JsonValue;
  }
  return out;
}

/** How deep `create` children are checked (the server's `tree_depth_max` is 128). */
const CHECK_DEPTH_MAX = 128;

/** The attribute `name` of `attrs`, never a prototype's member (`constructor`, `__proto__`). */
function attrOf(attrs: AttrsSchema, name: string): AttrSchema | undefined {
  return Object.prototype.hasOwnProperty.call(attrs, name) ? attrs[name] : undefined;
}

function noSuchAttribute(obj: string, type: string, attr: string): SchemaError {
  return new SchemaError("no_such_attribute", `type ${type} has no attribute ${JSON.stringify(attr)} (object ${JSON.stringify(obj)})`, {
    obj,
    type,
    attr,
  });
}

function wrongKind(obj: string, type: string, attr: string, kind: AttrKind, reason: string): SchemaError {
  return new SchemaError("wrong_kind", `${obj}.${attr} is a ${kind} topic: ${reason}`, { obj, type, attr, kind });
}

/** Why an attribute change does not fit `kind` (the server's rules per change), or `null`. */
function opMismatch(kind: AttrKind, change: AttrChange): string | null {
  const only = (ok: boolean, what: string): string | null => (ok ? null : `${what} does not apply`);
  const isList = kind === "list" || kind === "ref_list";
  const isDict = kind === "dict" || kind === "ref_dict";
  const id = (v: JsonValue | undefined): string | null =>
    typeof v === "string" ? null : `expected an object id, got ${typeName(v)}`;
  switch (change.op) {
    case "set":
      return valueMismatch(kind, change.value);
    case "add":
      if (kind === "int") return isWireInt(change.value) ? null : `expected an integer to add, got ${typeName(change.value)}`;
      if (kind === "float") return isFiniteNumber(change.value) ? null : `expected a number to add, got ${typeName(change.value)}`;
      return "add applies to int and float topics";
    case "text_insert":
    case "text_delete":
      return kind === "string" ? null : "text edits apply to string topics";
    case "dict_set":
      return only(isDict, "a dict key set") ?? (kind === "ref_dict" ? id(change.value) : null);
    case "dict_remove":
      return only(isDict, "a dict key remove");
    case "list_insert":
    case "list_set":
      return only(isList, change.op === "list_insert" ? "a list insert" : "a list set") ?? (kind === "ref_list" ? id(change.value) : null);
    case "list_remove":
    case "list_move":
      return only(isList, change.op === "list_remove" ? "a list remove" : "a list move");
    case "set_add":
      if (kind !== "set") return "a set add does not apply";
      return isWireSetElement(change.value) ? null : `set elements are strings, integers or booleans, not ${typeName(change.value)}`;
    case "set_remove":
      return only(kind === "set", "a set remove");
    case "emit":
      return only(kind === "event", "emit");
  }
}

/** Why `value` is not a whole value of `kind` (the server's `TopicKind::conform`), or `null`. */
export function valueMismatch(kind: AttrKind, value: JsonValue | undefined): string | null {
  const expected = (what: string): string => `expected ${what}, got ${typeName(value)}`;
  switch (kind) {
    case "string":
      return typeof value === "string" ? null : expected("a string");
    case "int":
      return isWireInt(value) ? null : expected("an integer");
    case "float":
      return isFiniteNumber(value) ? null : expected("a finite number");
    case "bool":
      return typeof value === "boolean" ? null : expected("a boolean");
    case "dict":
      return isJsonObject(value) ? null : expected("a dict");
    case "list":
      return Array.isArray(value) ? null : expected("a list");
    case "set": {
      if (!Array.isArray(value)) return expected("a list of distinct scalars");
      const bad = value.find((v) => !isWireSetElement(v));
      if (bad !== undefined) return `set elements must be strings, integers or booleans, not ${typeName(bad)}`;
      const seen = new Set(value.map((v) => `${typeof v}:${String(v)}`));
      return seen.size === value.length ? null : "set elements must be distinct";
    }
    case "event":
      return "an event topic holds no value; emit to it instead";
    case "ref":
      return value === null || typeof value === "string" ? null : expected("an object id or null");
    case "ref_list":
      return Array.isArray(value) && value.every((v) => typeof v === "string") ? null : expected("a list of object ids");
    case "ref_dict":
      return isJsonObject(value) && Object.values(value).every((v) => typeof v === "string") ? null : expected("a dict of object ids");
  }
}

/** The server's `i64` range: what it reads as an integer (2^63 and above arrive as floats). */
const INT_LIMIT = 2 ** 63;

/** Whether the server reads `v` as an integer (`Value::Int`). */
function isWireInt(v: JsonValue | undefined): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= -INT_LIMIT && v < INT_LIMIT;
}

function isFiniteNumber(v: JsonValue | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Whether the server accepts `v` in a set: a string, an integer or a boolean. */
function isWireSetElement(v: JsonValue | undefined): boolean {
  return typeof v === "string" || typeof v === "boolean" || isWireInt(v);
}

/** The server's name for the type of a JSON value (`Value::type_name`), for reasons. */
function typeName(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return "null";
  if (typeof v === "number") return isWireInt(v) ? "int" : "float";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "string";
  return Array.isArray(v) ? "list" : "dict";
}
