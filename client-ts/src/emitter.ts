/**
 * Typed event listeners. A listener that throws does not stop the others nor corrupt the
 * caller's state: the error is rethrown on a microtask, where it surfaces as an uncaught error.
 */

/** Undoes a subscription (or any registration); calling it twice is harmless. */
export type Disposer = () => void;

type Listener<E> = (event: E) => void;

/** Listeners keyed by event name; `Events` maps each name to its payload type. */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `fn` on every `type` event until the returned disposer is called. */
  on<K extends keyof Events>(type: K, fn: (event: Events[K]) => void): Disposer {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    // A wrapper, so that the same function registered twice is two subscriptions.
    const wrapped: Listener<Events[K]> = (e) => fn(e);
    set.add(wrapped as Listener<never>);
    return () => {
      set.delete(wrapped as Listener<never>);
    };
  }

  /** Calls `fn` on the next `type` event only. */
  once<K extends keyof Events>(type: K, fn: (event: Events[K]) => void): Disposer {
    const off = this.on(type, (e) => {
      off();
      fn(e);
    });
    return off;
  }

  /** Whether anyone listens to `type`. */
  hasListeners(type: keyof Events): boolean {
    return (this.listeners.get(type)?.size ?? 0) > 0;
  }

  /** Delivers an event to the current listeners of `type`. Used by the owner of the emitter. */
  dispatch<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.listeners.get(type);
    if (set === undefined || set.size === 0) return;
    for (const fn of [...set]) {
      if (!set.has(fn)) continue; // removed by an earlier listener of this same event
      try {
        (fn as Listener<Events[K]>)(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Removes every listener. */
  clear(): void {
    this.listeners.clear();
  }
}
