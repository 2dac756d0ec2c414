/**
 * `ObjectSyncProvider`: gives the components under it one {@link Room} (one client, one
 * connection). It makes the room once per `url` (React keeps it across StrictMode's double
 * mount, and the room's retain/release keeps the connection) or takes a client the application
 * made. It owns nothing else: the hooks subscribe to the client directly.
 */

import type { ObjectSyncClient, Schema } from "objectsync-client";
import type { ReactNode } from "react";
import { createContext, useContext, useEffect, useState } from "react";
import type { RoomOptions } from "./room.js";
import { Room } from "./room.js";

const RoomContext = createContext<Room | null>(null);

/** Props of {@link ObjectSyncProvider}. */
export type ObjectSyncProviderProps<S extends Schema = Schema> = RoomOptions<S> & {
  /** A client the application made (not connected yet): the provider connects and closes it. */
  readonly clientInstance?: ObjectSyncClient<S>;
  readonly children?: ReactNode;
};

/** Gives its subtree one room; see the module docs. */
export function ObjectSyncProvider<S extends Schema = Schema>(props: ObjectSyncProviderProps<S>): ReactNode {
  const { url, children } = props;
  // Made during render, without side effects (connecting is the effect's): a render React
  // throws away leaves an unconnected client behind, nothing else.
  const [room, setRoom] = useState(() => new Room<S>(props, props.clientInstance));
  const [madeFor, setMadeFor] = useState(url);
  let current = room;
  if (madeFor !== url) {
    // A new url is a new room (the old one is released by its effect's cleanup).
    current = new Room<S>(props);
    setMadeFor(url);
    setRoom(current);
  }
  useEffect(() => {
    if (room.closed) {
      // Unmounted and shown again after the close (an offscreen subtree): a new client.
      setRoom(new Room<S>(props));
      return;
    }
    room.retain();
    return () => room.release();
    // Only the room matters: the props it was made from are read once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [room]);
  return <RoomContext.Provider value={current as Room}>{children}</RoomContext.Provider>;
}

/** The room of the nearest provider; throws outside one. */
export function useRoom<S extends Schema = Schema>(): Room<S> {
  const room = useContext(RoomContext);
  if (room === null) throw new Error("objectsync-react: this hook needs an <ObjectSyncProvider> above it");
  return room as unknown as Room<S>;
}

/** The client of the nearest provider, typed by the schema `S` it was given. */
export function useClient<S extends Schema = Schema>(): ObjectSyncClient<S> {
  return useRoom<S>().client;
}
