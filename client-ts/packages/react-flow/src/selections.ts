/**
 * Who else selected what, once per client: one listener on the client's presence events keeps,
 * per node id, the others who have it selected, and tells only the ids whose list changed. A
 * presence change that moves a cursor and keeps the selection costs nothing per node, so a
 * thousand nodes each asking "who selected me?" cost nothing while someone drags.
 */

import type { JsonValue, ObjectSyncClient, UserInfo } from "objectsync-client";

/** Another client that has a node selected. */
export interface Selector {
  readonly clientId: string;
  /** Its name, as the server says (`user.name`) or else as its presence says. */
  readonly name: string;
  /** Its color, from its presence. */
  readonly color: string | undefined;
}

const NONE: readonly Selector[] = Object.freeze([]);

/** The index of one client; see the module docs. */
export class SelectionIndex {
  private readonly byClient = new Map<string, { ids: readonly string[]; who: Selector }>();
  private readonly byNode = new Map<string, readonly Selector[]>();
  private readonly listeners = new Map<string, Set<() => void>>();

  constructor(client: ObjectSyncClient) {
    for (const [id, state] of client.presence) this.update(id, state, client.users.get(id) ?? null);
    client.on("presence", (e) => this.update(e.client, e.state, e.user));
  }

  /** The others who have node `id` selected (the same array until that changes). */
  of(id: string): readonly Selector[] {
    return this.byNode.get(id) ?? NONE;
  }

  /** Calls `fn` when the list of node `id` changes. */
  subscribe(id: string, fn: () => void): () => void {
    let set = this.listeners.get(id);
    if (set === undefined) this.listeners.set(id, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(id);
    };
  }

  private update(client: string, state: JsonValue, user: UserInfo | null): void {
    const p = typeof state === "object" && state !== null && !Array.isArray(state) ? state : null;
    const raw = p?.["selection"];
    const ids = Array.isArray(raw) ? raw.filter((s): s is string => typeof s === "string") : [];
    const name = user?.name ?? (typeof p?.["name"] === "string" ? p["name"] : "someone");
    const color = typeof p?.["color"] === "string" ? p["color"] : undefined;
    const prev = this.byClient.get(client);
    const sameWho = prev !== undefined && prev.who.name === name && prev.who.color === color;
    if (sameWho && prev.ids.length === ids.length && prev.ids.every((id, i) => id === ids[i])) return;
    const who: Selector = sameWho ? prev.who : { clientId: client, name, color };
    if (ids.length === 0) this.byClient.delete(client);
    else this.byClient.set(client, { ids, who });
    const touched = new Set<string>([...(prev?.ids ?? []), ...ids]);
    for (const id of touched) {
      const list: Selector[] = [];
      for (const [, c] of [...this.byClient].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) if (c.ids.includes(id)) list.push(c.who);
      const old = this.byNode.get(id) ?? NONE;
      if (old.length === list.length && old.every((w, i) => w === list[i])) continue;
      if (list.length === 0) this.byNode.delete(id);
      else this.byNode.set(id, list);
      for (const fn of [...(this.listeners.get(id) ?? [])]) fn();
    }
  }
}

const indexes = new WeakMap<ObjectSyncClient, SelectionIndex>();

/** The selection index of `client` (made on first use). */
export function selectionIndex(client: ObjectSyncClient): SelectionIndex {
  let index = indexes.get(client);
  if (index === undefined) indexes.set(client, (index = new SelectionIndex(client)));
  return index;
}
