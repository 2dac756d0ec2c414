/**
 * objectsync-client: the browser client of ObjectSync (wire protocol v1).
 *
 * Start with {@link ObjectSyncClient}; bind attributes to the DOM with `bindings`; give the
 * client the `schema` that `objectsync codegen ts` generates for typed `create` and for changes
 * checked against their attributes' kinds before they are sent.
 */

export type { CallOptions, ClientEvents, ClientOptions, ConnectOptions, CreateOptions } from "./client.js";
export { ObjectSyncClient } from "./client.js";
export type { ConnectionEvents, ConnectionOptions, ConnectionState, WebSocketConstructor, WebSocketLike } from "./connection.js";
export { backoffDelayMs, Connection } from "./connection.js";
export type { Disposer } from "./emitter.js";
export { Emitter } from "./emitter.js";
export type { AnyErrorCode, SchemaErrorCode, SchemaErrorTarget } from "./errors.js";
export { CallError, ObjectSyncError, RejectedError, SchemaError } from "./errors.js";
export type { ActionHandle } from "./handle.js";
export type {
  AttrKind,
  AttrSchema,
  AttrsSchema,
  ClassFor,
  CreateAttrs,
  KindValues,
  ReadonlyJsonValue,
  Schema,
  SchemaClass,
  TypedCreateOptions,
} from "./schema.js";
export type { SObjectClass, SObjectEvents, SObjectInit } from "./sobject.js";
export { SObject } from "./sobject.js";
export type {
  BaseTopicEvents,
  ChangeInfo,
  DictTopicEvents,
  EventTopicEvents,
  ListTopicEvents,
  SetTopicEvents,
  StringTopicEvents,
} from "./topics.js";
export {
  BoolTopic,
  DictTopic,
  EventTopic,
  ListTopic,
  NumberTopic,
  RefDictTopic,
  RefListTopic,
  RefTopic,
  SetTopic,
  StringTopic,
  Topic,
} from "./topics.js";
export { bindClass, bindInput, bindStyle, bindText } from "./bindings.js";
export type * from "./protocol.js";
export {
  CLOSE_CODE_MEANINGS,
  CloseCode,
  DecodeError,
  DEFAULT_LIMITS,
  decodeChange,
  decodeServerMessage,
  encodeClientMessage,
  ERROR_CODES,
  PROTOCOL_VERSION,
} from "./protocol.js";
export type { TextEdit } from "./text.js";
export { applyEdit, applyEdits, diffText, transformOne, transformSeqs } from "./text.js";
export { Mirror } from "./mirror.js";
export type { MirrorResult } from "./mirror.js";
export type { TreeObject } from "./tree.js";
