// @vitest-environment jsdom
/**
 * The provider and hooks against the simulated room (`src/testing/`): one connection under
 * StrictMode, re-renders only where something read changed (counted), children, presence,
 * events, calls, reconnects and refusals rolled back.
 */

import type { JsonValue, SObjectClass, StringTopic } from "objectsync-client";
import { SObject } from "objectsync-client";
import { act, cleanup, render, screen } from "@testing-library/react";
import { StrictMode } from "react";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { must, world } from "../../../src/testing/world.js";
import {
  ObjectSyncProvider,
  useAttr,
  useCall,
  useChildren,
  useClient,
  useEvent,
  useObject,
  useOthers,
  usePresence,
  useStatus,
  useTransaction,
  useUndoRedo,
} from "./index.js";

type World = ReturnType<typeof world>;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

/** Renders `ui` under a provider connected to `w`'s room, and lets everything settle. */
function mount(w: World, ui: ReactNode, strict = false, classes: Record<string, SObjectClass> = {}) {
  const tree = (
    <ObjectSyncProvider url="ws://test/ws/room" connect={{ WebSocket: w.net.WebSocket, random: () => 0 }} client={{ classes }}>
      {ui}
    </ObjectSyncProvider>
  );
  const result = render(strict ? <StrictMode>{tree}</StrictMode> : tree);
  act(() => w.settle());
  return result;
}

/** Counts renders per key. */
function counter() {
  const counts = new Map<string, number>();
  return {
    hit(key: string) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    },
    of(key: string) {
      return counts.get(key) ?? 0;
    },
  };
}

function State() {
  const state = useStatus((s) => (s.ready ? `${s.state} v${s.version}` : s.state));
  return <p data-testid="state">{state}</p>;
}

describe("provider", () => {
  it("opens one connection under StrictMode's double mount, and closes it on unmount", () => {
    const w = world();
    const { unmount } = mount(w, <State />, true);
    expect(w.net.sockets.length).toBe(1);
    expect(screen.getByTestId("state").textContent).toBe("open v0");
    unmount();
    act(() => w.settle());
    expect(w.net.sockets.length).toBe(1);
    expect(w.net.sockets[0]?.readyState).toBe(3);
  });

  it("reconnects after a drop and resumes: the view keeps its objects, later edits arrive", async () => {
    const w = world();
    function Title() {
      const n1 = useObject("n1");
      return <p data-testid="title">{useAttr(n1?.string("title"))}</p>;
    }
    mount(w, <><State /><Title /></>);
    expect(screen.getByTestId("title").textContent).toBe("one");
    act(() => w.net.last?.drop());
    act(() => w.settle());
    expect(w.net.sockets.length).toBe(2);
    expect(screen.getByTestId("state").textContent).toBe("open v0");
    const other = await w.join();
    act(() => {
      must(other, "n1").string("title").set("after");
      w.settle();
    });
    expect(screen.getByTestId("title").textContent).toBe("after");
    expect(screen.getByTestId("state").textContent).toBe("open v1");
  });

  it("a new url is a new room: the old connection closes, the new one opens", () => {
    const w = world();
    const other = world();
    const props = (net: World["net"], url: string) => ({ url, connect: { WebSocket: net.WebSocket, random: () => 0 } });
    const { rerender } = render(
      <ObjectSyncProvider {...props(w.net, "ws://test/ws/one")}>
        <State />
      </ObjectSyncProvider>,
    );
    act(() => w.settle());
    expect(screen.getByTestId("state").textContent).toBe("open v0");
    rerender(
      <ObjectSyncProvider {...props(other.net, "ws://test/ws/two")}>
        <State />
      </ObjectSyncProvider>,
    );
    act(() => {
      w.settle();
      other.settle();
    });
    expect(w.net.sockets[0]?.readyState).toBe(3);
    expect(other.net.sockets.length).toBe(1);
    expect(other.net.sockets[0]?.url).toBe("ws://test/ws/two");
    expect(screen.getByTestId("state").textContent).toBe("open v0");
  });

  it("throws a clear error outside a provider", () => {
    function Lost() {
      useClient();
      return null;
    }
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => render(<Lost />)).toThrow(/ObjectSyncProvider/);
  });
});

describe("re-renders only what read what changed", () => {
  it("an attribute change re-renders the components reading it, not the others", async () => {
    const w = world();
    const renders = counter();
    function Title({ id }: { id: string }) {
      const obj = useObject(id);
      const title = useAttr(obj?.string("title"));
      renders.hit(id);
      return <p data-testid={`title-${id}`}>{title}</p>;
    }
    function X({ id }: { id: string }) {
      const x = useAttr(useObject(id)?.dict("pos"), (p) => p["x"]);
      renders.hit(`x-${id}`);
      return <p data-testid={`x-${id}`}>{String(x)}</p>;
    }
    function List() {
      const children = useChildren(useObject("g"));
      renders.hit("list");
      return <p data-testid="list">{children.map((c) => c.id).join(",")}</p>;
    }
    mount(w, <><Title id="n1" /><Title id="n2" /><X id="n1" /><List /></>);
    const before = { n1: renders.of("n1"), n2: renders.of("n2"), x: renders.of("x-n1"), list: renders.of("list") };
    const other = await w.join();

    act(() => {
      must(other, "n1").string("title").set("uno");
      w.settle();
    });
    expect(screen.getByTestId("title-n1").textContent).toBe("uno");
    expect(renders.of("n1")).toBe(before.n1 + 1);
    expect(renders.of("n2")).toBe(before.n2);
    expect(renders.of("x-n1")).toBe(before.x);
    expect(renders.of("list")).toBe(before.list);

    // The selector picks x: a change of y alone re-renders nothing.
    act(() => {
      must(other, "n1").dict("pos").setKey("y", 50);
      w.settle();
    });
    expect(renders.of("x-n1")).toBe(before.x);
    act(() => {
      must(other, "n1").dict("pos").setKey("x", 7);
      w.settle();
    });
    expect(screen.getByTestId("x-n1").textContent).toBe("7");
    expect(renders.of("x-n1")).toBe(before.x + 1);
    expect(renders.of("n1")).toBe(before.n1 + 1);
    expect(renders.of("list")).toBe(before.list);
  });

  it("a local edit shows at once and re-renders once; typed useAttr(obj, name) reads a generated getter", () => {
    const w = world();
    const renders = counter();
    function Edit() {
      const n1 = useObject("n1", NoteView);
      const transaction = useTransaction();
      const title = useAttr(n1, "title");
      renders.hit("edit");
      return (
        <button data-testid="edit" onClick={() => transaction(() => n1?.string("title").set(`${title ?? ""}!`))}>
          {title}
        </button>
      );
    }
    mount(w, <Edit />, false, { Note: NoteView });
    const before = renders.of("edit");
    act(() => screen.getByTestId("edit").click());
    expect(screen.getByTestId("edit").textContent).toBe("one!");
    expect(renders.of("edit")).toBe(before + 1);
    act(() => w.settle());
    // The ack matched the prediction: nothing to re-render.
    expect(renders.of("edit")).toBe(before + 1);
    expect(w.server.value("n1", "title")).toBe("one!");
  });

  it("useChildren re-renders on a new child, not on a child's attribute; narrows by type", async () => {
    const w = world();
    const renders = counter();
    function List() {
      const children = useChildren(useObject("g"), "Note");
      renders.hit("list");
      return <p data-testid="list">{children.map((c) => c.id).join(",")}</p>;
    }
    mount(w, <List />);
    const other = await w.join();
    const before = renders.of("list");
    act(() => {
      must(other, "n2").string("title").set("deux");
      w.settle();
    });
    expect(renders.of("list")).toBe(before);
    act(() => {
      other.create("Note", "g", { attrs: { title: "three" } });
      other.create("Other", "g");
      w.settle();
    });
    expect(screen.getByTestId("list").textContent).toBe("n1,n2,c2:1");
    act(() => {
      must(other, "n1").delete();
      w.settle();
    });
    expect(screen.getByTestId("list").textContent).toBe("n2,c2:1");
  });
});

/** A class for `Note` objects with a typed getter, as a generated class has one. */
class NoteView extends SObject {
  get title(): StringTopic {
    return this.string("title");
  }
}

describe("refusals", () => {
  it("a refused edit shows at once, then rolls back, and the status says why", () => {
    const w = world({
      refuse: (c) => (c.op === "set" && c.value === "bad" ? { code: "invalid", reason: "no bad titles" } : null),
    });
    function Title() {
      const n1 = useObject("n1");
      const title = useAttr(n1?.string("title"));
      const reject = useStatus((s) => s.lastReject?.reason ?? "");
      return (
        <>
          <button data-testid="title" onClick={() => n1?.string("title").set("bad")}>
            {title}
          </button>
          <p data-testid="reject">{reject}</p>
        </>
      );
    }
    mount(w, <Title />);
    act(() => screen.getByTestId("title").click());
    expect(screen.getByTestId("title").textContent).toBe("bad");
    act(() => w.settle());
    expect(screen.getByTestId("title").textContent).toBe("one");
    expect(screen.getByTestId("reject").textContent).toBe("no bad titles");
  });

  it("undo goes through the server, scoped, and comes back with its update", () => {
    const w = world();
    function Undo() {
      const n1 = useObject("n1");
      const title = useAttr(n1?.string("title"));
      const { undo } = useUndoRedo("g");
      return (
        <>
          <button data-testid="set" onClick={() => n1?.string("title").set("changed")}>
            {title}
          </button>
          <button data-testid="undo" onClick={() => undo()} />
        </>
      );
    }
    mount(w, <Undo />);
    act(() => screen.getByTestId("set").click());
    act(() => w.settle());
    expect(screen.getByTestId("set").textContent).toBe("changed");
    act(() => screen.getByTestId("undo").click());
    act(() => w.settle());
    expect(screen.getByTestId("set").textContent).toBe("one");
    expect(w.server.received.some(([, m]) => m.t === "undo" && m["scope"] === "g")).toBe(true);
  });
});

describe("presence, events and calls", () => {
  it("usePresence sends this client's state; useOthers shows the others' and re-renders only on theirs", async () => {
    const w = world();
    const renders = counter();
    function Me() {
      const [me, setMe] = usePresence<{ name: string }>();
      return (
        <button data-testid="me" onClick={() => setMe({ name: "Ada" })}>
          {me?.name ?? "-"}
        </button>
      );
    }
    function Count() {
      const n = useOthers((others) => others.length);
      renders.hit("count");
      return <p data-testid="count">{n}</p>;
    }
    function Names() {
      const others = useOthers<{ name?: string }>();
      return <p data-testid="names">{others.map((o) => o.presence.name).join(",")}</p>;
    }
    mount(w, <><Me /><Count /><Names /></>);
    const other = await w.join();
    act(() => screen.getByTestId("me").click());
    act(() => w.settle());
    expect(screen.getByTestId("me").textContent).toBe("Ada");
    expect(other.presence.get("c1")).toEqual({ name: "Ada" });
    act(() => {
      other.setPresence({ name: "Grace" });
      w.settle();
    });
    expect(screen.getByTestId("names").textContent).toBe("Grace");
    const before = renders.of("count");
    act(() => {
      other.setPresence({ name: "Grace Hopper" });
      w.settle();
    });
    expect(screen.getByTestId("names").textContent).toBe("Grace Hopper");
    expect(renders.of("count")).toBe(before);
  });

  it("useEvent hears emits as the server delivers them; useCall returns a service's answer", async () => {
    const w = world({ services: { double: (args) => (typeof args === "number" ? args * 2 : null) } });
    const heard: JsonValue[] = [];
    function Ping() {
      const n1 = useObject("n1");
      useEvent(n1?.event("ping"), (e) => heard.push(e.args));
      const { call, result, pending } = useCall("double");
      return (
        <>
          <button data-testid="emit" onClick={() => n1?.event("ping").emit({ hi: 1 })} />
          <button data-testid="call" onClick={() => void call(21)}>
            {pending ? "..." : String(result)}
          </button>
        </>
      );
    }
    mount(w, <Ping />);
    act(() => screen.getByTestId("emit").click());
    expect(heard).toEqual([]);
    act(() => w.settle());
    expect(heard).toEqual([{ hi: 1 }]);
    act(() => screen.getByTestId("call").click());
    expect(screen.getByTestId("call").textContent).toBe("...");
    await act(async () => {
      w.settle();
      await Promise.resolve();
    });
    expect(screen.getByTestId("call").textContent).toBe("42");
  });
});

describe("the workspace", () => {
  it("resolves objectsync-client to the sources the simulated room uses (one SObject class)", async () => {
    const src = await import("../../../src/index.js");
    expect(SObject).toBe(src.SObject);
  });
});
