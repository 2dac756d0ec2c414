/**
 * objectsync-react: React bindings for ObjectSync. An {@link ObjectSyncProvider} owns one client
 * and one connection per room (StrictMode's double mount included); the hooks read the local
 * view through `useSyncExternalStore`, each subscribed to the one thing it reads, so a change to
 * one attribute re-renders only the components that read it. Typed by the generated schema:
 * `useObject(id, NodeObject)`, `useAttr(node, "title")`, `useChildren(graph, NodeObject)`.
 */

export type { ObjectSyncProviderProps } from "./provider.js";
export { ObjectSyncProvider, useClient, useRoom } from "./provider.js";
export type { RoomOptions, Status } from "./room.js";
export { Room } from "./room.js";
export type { Call, ObjectClass, Other, TopicKeys, TopicValue, UndoRedo } from "./hooks.js";
export {
  useAttr,
  useCall,
  useChildren,
  useClientEvent,
  useEvent,
  useObject,
  useOthers,
  usePresence,
  useStatus,
  useTransaction,
  useUndoRedo,
} from "./hooks.js";
