import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ObjectSyncClient } from "./client.js";
import { CallError, ObjectSyncError, RejectedError } from "./errors.js";
import type { ActionHandle } from "./handle.js";
import type { HelloMessage, JsonValue } from "./protocol.js";
import { SObject } from "./sobject.js";
import { must } from "./testing/world.js";
import { Rng } from "./testing/random.js";
import { world } from "./testing/world.js";


beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("sync events", () => {
  it("report pending actions and the version, acks that change nothing visible included", async () => {
    const { join, settle } = world();
    const client = await join();
    const seen: { version: number | null; pending: number }[] = [];
    client.on("sync", (e) => seen.push({ version: e.version, pending: e.pending }));
    const before = client.version ?? 0;
    must(client, "n1").string("title").set("renamed");
    expect(seen.at(-1)).toEqual({ version: before, pending: 1 });
    settle();
    expect(seen.at(-1)).toEqual({ version: before + 1, pending: 0 });
    expect(client.version).toBe(before + 1);
  });
});

describe("connecting", () => {
  it("loads the document as SObjects and reports the state", async () => {
    const { join } = world();
    const client = new ObjectSyncClient();
    const states: string[] = [];
    const created: string[] = [];
    client.on("state", (e) => states.push(e.state));
    client.on("created", (e) => created.push(e.object.id));
    await join(client);
    expect(states).toEqual(["connecting", "open"]);
    expect(created).toEqual(["root", "g", "n1", "n2"]);
    expect(client.clientId).toBe("c1");
    const g = must(client, "g");
    expect(g.type).toBe("Graph");
    expect(g.parent).toBe(client.root);
    expect(g.children.map((c) => c.id)).toEqual(["n1", "n2"]);
    expect(must(client, "n1").string("title").value).toBe("one");
    expect(must(client, "n2").ref("link").target).toBe(client.get("n1"));
  });

  it("passes the token, and fails connect() when the server refuses the client", async () => {
    const { net, server } = world();
    const client = new ObjectSyncClient();
    const ready = client.connect("ws://test/ws/room", { WebSocket: net.WebSocket, token: "secret" });
    const outcome = ready.then(
      () => "connected",
      (e: unknown) => e,
    );
    net.deliverAll(2); // the socket opens and the hello goes out
    expect(server.received[0]?.[1]).toMatchObject({ t: "hello", protocol: 1, token: "secret", batch: true });
    net.last?.drop(4001, "unauthorized");
    net.deliverAll();
    const err = await outcome;
    expect(err).toBeInstanceOf(ObjectSyncError);
    expect(err).toMatchObject({ code: "closed", reason: "closed with 4001: unauthorized" });
    expect(client.state).toBe("closed");
    await expect(client.connect("ws://x", { WebSocket: net.WebSocket })).rejects.toMatchObject({ code: "already_connected" });
  });

  it("refuses edits before the document is loaded, and all edits when read-only", async () => {
    const client = new ObjectSyncClient();
    expect(() => client.transaction(() => {})).toThrow(ObjectSyncError);
    expect(() => client.root).toThrow(/not loaded/);
    const { join } = world({ readOnly: () => true });
    const ro = await join();
    expect(ro.readOnly).toBe(true);
    expect(() => must(ro, "n1").bool("done").toggle()).toThrow(expect.objectContaining({ code: "read_only" }));
  });
});

describe("edits", () => {
  it("apply locally at once; a single edit is its own action, a transaction one action", async () => {
    const { join, settle, actionsOf, server } = world();
    const client = await join();
    const n1 = must(client, "n1");
    n1.string("title").set("uno");
    expect(n1.string("title").value).toBe("uno");
    client.transaction(() => {
      n1.number("count").add(2);
      n1.dict("pos").setKey("x", 10);
      n1.list("items").move(0, 2);
      expect(n1.number("count").value).toBe(3); // reads see the transaction's own edits
    });
    settle();
    expect(actionsOf(client).map((a) => a.changes.length)).toEqual([1, 3]);
    expect(server.value("n1", "pos")).toEqual({ x: 10, y: 2 });
    expect(server.value("n1", "items")).toEqual(["b", "c", "a"]);
    expect(client.pendingCount).toBe(0);
  });

  it("a throwing transaction leaves nothing behind; an edit that cannot apply throws", async () => {
    const { join } = world();
    const client = await join();
    const n1 = must(client, "n1");
    expect(() =>
      client.transaction(() => {
        n1.string("title").set("x");
        client.create("Note", "g");
        throw new Error("changed my mind");
      }),
    ).toThrow("changed my mind");
    expect(n1.string("title").value).toBe("one");
    expect(must(client, "g").children.map((c) => c.id)).toEqual(["n1", "n2"]);
    expect(client.pendingCount).toBe(0);
    expect(() => n1.string("title").insert(99, "x")).toThrow(expect.objectContaining({ code: "out_of_range" }));
    expect(() => client.transaction((async () => {}) as () => void)).toThrow(expect.objectContaining({ code: "async_transaction" }));
  });

  it("creates objects with client-made ids, usable at once", async () => {
    const { join, settle, server } = world();
    const client = await join();
    let made: SObject | undefined;
    client.transaction(() => {
      made = client.create("Note", "g", { attrs: { title: "new" }, index: 0 });
      made.string("title").insert(3, "!");
    });
    const obj = made as SObject;
    expect(obj.id).toBe("c1:1");
    expect(obj.string("title").value).toBe("new!");
    expect(must(client, "g").children[0]).toBe(obj);
    settle();
    expect(server.value("c1:1", "title")).toBe("new!");
    expect(client.create("Note", obj).id).toBe("c1:2");
  });

  it("rolls back exactly on reject with a typed error; later actions stay applied", async () => {
    const { join, settle, server } = world({
      refuse: (c) => (c.op === "dict_set" && c.value === 99 ? { code: "invalid", reason: "n1.pos: x = 99 is outside the canvas" } : null),
    });
    const client = await join();
    const rejects: RejectedError[] = [];
    client.on("reject", (e) => rejects.push(e.error));
    const n1 = must(client, "n1");
    const titles: string[] = [];
    n1.string("title").on("changed", (e) => titles.push(e.value));
    const bad = client.transaction(() => {
      n1.string("title").set("moved");
      n1.dict("pos").setKey("x", 99);
    });
    const later = n1.list("items").push("d");
    const outcome = bad.confirmed().then(
      () => "confirmed",
      (e: unknown) => e,
    );
    expect(n1.dict("pos").get("x")).toBe(99);
    settle();
    expect(n1.string("title").value).toBe("one");
    expect(n1.dict("pos").value).toEqual({ x: 1, y: 2 });
    expect(n1.list("items").value).toEqual(["a", "b", "c", "d"]);
    expect(titles).toEqual(["moved", "one"]);
    expect(rejects).toHaveLength(1);
    expect(rejects[0]).toBeInstanceOf(RejectedError);
    expect(rejects[0]?.code).toBe("invalid");
    expect(rejects[0]?.reason).toMatch(/outside the canvas/);
    expect(rejects[0]?.change).toBe(1);
    const err = await outcome;
    expect(err).toBe(rejects[0]);
    await expect(later.confirmed()).resolves.toBeUndefined();
    expect(later.status).toBe("confirmed");
    expect(server.value("n1", "items")).toEqual(["a", "b", "c", "d"]);
  });
});

describe("list changes by index made before someone else's change to the list", () => {
  it("an unsent one is refused here (list_base_stale) through the reject event and its handle, and never sent", async () => {
    const { join, settle, net, server, actionsOf } = world();
    const a = await join();
    const b = await join();
    const rejects: RejectedError[] = [];
    a.on("reject", (e) => rejects.push(e.error));
    const items: JsonValue[][] = [];
    const list = must(a, "n1").list("items");
    list.on("changed", (e) => items.push([...e.value]));
    const body = must(a, "n1").string("body");
    body.insert(0, "x"); // sent
    body.insert(1, "y"); // waits for its ack
    const doomed = list.remove(0); // waits behind it (FIFO), made on the current version
    const outcome = doomed.confirmed().then(
      () => "confirmed",
      (e: unknown) => e,
    );
    expect(list.value).toEqual(["b", "c"]);
    must(b, "n1").list("items").remove(1); // b removes "b"
    const sockB = net.sockets.find((s) => s.session?.client?.id === b.clientId);
    while ((sockB?.toServer.length ?? 0) > 0) (sockB?.toServer.shift() as () => void)(); // b's edit reaches the room first
    settle();
    expect(rejects.map((e) => [e.code, e.action, e.change])).toEqual([["list_base_stale", doomed.id, 0]]);
    expect(rejects[0]?.reason).toMatch(/n1\.items: the list changed first/);
    expect(await outcome).toBe(rejects[0]);
    expect(doomed.status).toBe("rejected");
    expect(actionsOf(a).map((m) => m.id)).not.toContain(doomed.id);
    // "c" was never shown removed in place of "a": the view went from a's guess straight to b's change.
    expect(items).toEqual([["b", "c"], ["a", "c"]]);
    expect(list.value).toEqual(server.value("n1", "items"));
    expect(must(b, "n1").list("items").value).toEqual(["a", "c"]);
    expect(body.value).toBe("xy");
  });
});

describe("events", () => {
  it("topics report fine-grained events and one changed per batch, local or remote", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const n1 = must(a, "n1");
    const log: string[] = [];
    n1.string("title").on("textInsert", (e) => log.push(`ins ${e.pos} ${e.text} ${e.local}`));
    n1.string("title").on("textDelete", (e) => log.push(`del ${e.pos} ${e.len} ${e.text}`));
    n1.string("title").on("changed", (e) => log.push(`title=${e.value}`));
    n1.dict("pos").on("dictSet", (e) => log.push(`dictSet ${e.key}=${JSON.stringify(e.value)}`));
    n1.dict("pos").on("dictRemove", (e) => log.push(`dictRemove ${e.key}`));
    n1.list("items").on("listInsert", (e) => log.push(`listInsert ${e.index} ${JSON.stringify(e.value)}`));
    n1.list("items").on("listRemove", (e) => log.push(`listRemove ${e.index} ${JSON.stringify(e.value)}`));
    n1.list("items").on("listMove", (e) => log.push(`listMove ${e.from}->${e.to}`));
    n1.set("tags").on("setAdd", (e) => log.push(`setAdd ${String(e.value)}`));
    n1.set("tags").on("setRemove", (e) => log.push(`setRemove ${String(e.value)}`));
    n1.number("count").on("set", (e) => log.push(`count=${e.value}`));
    n1.event("ping").on("emit", (e) => log.push(`emit ${JSON.stringify(e.args)} from ${e.origin} ${e.local}`));

    n1.string("title").insert(3, "!");
    expect(log).toEqual(["ins 3 ! true", "title=one!"]);
    log.length = 0;
    settle(); // the ack changes nothing locally: no events
    expect(log).toEqual([]);

    const bn1 = must(b, "n1");
    b.transaction(() => {
      bn1.string("title").delete(0, 1);
      bn1.dict("pos").setKey("z", 3);
      bn1.dict("pos").removeKey("x");
      bn1.list("items").insert("first", 0);
      bn1.list("items").remove(3);
      bn1.list("items").move(0, 2);
      bn1.set("tags").add("blue");
      bn1.set("tags").remove("red");
      bn1.number("count").add(5);
      bn1.event("ping").emit({ n: 1 });
    });
    settle();
    expect(log).toEqual([
      "del 0 1 o",
      "title=ne!",
      "dictSet z=3",
      "dictRemove x",
      'listInsert 0 "first"',
      'listRemove 3 "c"',
      "listMove 0->2",
      "setAdd blue",
      "setRemove red",
      "count=6",
      'emit {"n":1} from c2 false',
    ]);
  });

  it("objects report children added, removed and moved, and their own destruction", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const g = must(a, "g");
    const log: string[] = [];
    g.on("childAdded", (e) => log.push(`added ${e.child.id}@${e.index}`));
    g.on("childRemoved", (e) => log.push(`removed ${e.child.id}@${e.index}`));
    g.on("childMoved", (e) => log.push(`moved ${e.child.id} ${e.from}->${e.to}`));
    must(a, "n2").on("destroyed", () => log.push("n2 destroyed"));
    a.on("created", (e) => log.push(`created ${e.object.id}`));
    a.on("destroyed", (e) => log.push(`destroyed ${e.object.id}`));

    b.create("Note", "g", { attrs: { title: "x" } });
    settle();
    must(b, "n1").moveTo("g", 2);
    settle();
    b.delete("n2");
    settle();
    expect(log).toEqual([
      "added c2:1@2",
      "created c2:1",
      "moved n1 0->2",
      "removed n2@0",
      "n2 destroyed",
      "destroyed n2",
    ]);
    expect(must(a, "g").children.map((c) => c.id)).toEqual(["c2:1", "n1"]);
    expect(a.get("n2")).toBeUndefined();
  });
});

describe("class registry", () => {
  class Note extends SObject {
    static log: string[] = [];
    domTarget = new EventTarget();
    get title() {
      return this.string("title");
    }
    override onStart(): void {
      Note.log.push(`start ${this.id} ${this.title.value} under ${this.parent?.id ?? "-"}`);
      this.listen(this.title, "changed", (e) => Note.log.push(`${this.id} title ${e.value}`));
      this.listenDom(this.domTarget, "click", () => Note.log.push(`${this.id} clicked`));
    }
    override onDestroy(): void {
      Note.log.push(`destroy ${this.id}`);
    }
  }

  it("instantiates registered classes, starts them when ready, and unsubscribes on destroy", async () => {
    Note.log = [];
    const { join, settle } = world();
    const client = new ObjectSyncClient({ classes: { Note } });
    const b = await join();
    await join(client);
    const n1 = must(client, "n1");
    expect(n1).toBeInstanceOf(Note);
    expect(must(client, "g")).not.toBeInstanceOf(Note);
    expect(Note.log).toEqual(["start n1 one under g", "start n2 two under g"]);
    const note = n1 as Note;
    note.domTarget.dispatchEvent(new Event("click"));
    must(b, "n1").string("title").set("renamed");
    settle();
    must(b, "g").delete();
    settle();
    note.domTarget.dispatchEvent(new Event("click")); // removed with the object
    expect(note.destroyed).toBe(true);
    expect(Note.log).toEqual([
      "start n1 one under g",
      "start n2 two under g",
      "n1 clicked",
      "n1 title renamed",
      "destroy n1",
      "destroy n2",
    ]);
  });

  it("fills registered defaults for local creations", async () => {
    const { join } = world();
    const client = new ObjectSyncClient();
    client.register("Note", Note, { defaults: { title: "untitled", count: 0 } });
    await join(client);
    Note.log = [];
    const n = client.create("Note", "g");
    expect(n).toBeInstanceOf(Note);
    expect(n.attrs()).toEqual({ title: "untitled", count: 0 });
    expect(Note.log).toEqual([`start ${n.id} untitled under g`]);
  });
});

describe("presence, calls, undo", () => {
  it("shares presence states and reports others leaving", async () => {
    const { join, settle, net } = world();
    const a = await join();
    const b = await join();
    const seen: [string, JsonValue][] = [];
    a.on("presence", (e) => seen.push([e.client, e.state]));
    b.setPresence({ name: "Bob" });
    settle();
    expect(a.presence.get("c2")).toEqual({ name: "Bob" });
    b.close();
    settle();
    expect(seen).toEqual([
      ["c2", { name: "Bob" }],
      ["c2", null],
    ]);
    expect(a.presence.size).toBe(0);
    const c = await join();
    expect(c.presence.size).toBe(0);
    c.setPresence({ name: "Cy" });
    net.last?.drop();
    settle(); // presence is sent again after the reconnect
    expect(a.presence.get("c3")).toEqual({ name: "Cy" });
  });

  it("calls services: results, typed errors, client-side timeouts", async () => {
    const { join, settle } = world({
      services: {
        layout: (args) => ({ moved: (args as { n: number }).n * 2 }),
        broken: () => {
          throw { code: "service_failed", reason: "it broke" };
        },
      },
    });
    const client = await join();
    const ok = client.call("layout", { n: 6 });
    const broken = client.call("broken").catch((e: unknown) => e);
    const missing = client.call("nope").catch((e: unknown) => e);
    settle();
    await expect(ok).resolves.toEqual({ moved: 12 });
    const e1 = await broken;
    expect(e1).toBeInstanceOf(CallError);
    expect(e1).toMatchObject({ code: "service_failed", reason: "it broke", service: "broken" });
    expect(await missing).toMatchObject({ code: "no_such_service" });
    const slow = client.call("layout", { n: 1 }, { timeoutMs: 50 }).catch((e: unknown) => e);
    vi.advanceTimersByTime(50); // never delivered: times out
    expect(await slow).toMatchObject({ code: "timeout" });
  });

  it("sends undo as an action id and applies the server's answer", async () => {
    const { join, settle, server } = world();
    const client = await join();
    const n1 = must(client, "n1");
    n1.string("title").set("changed");
    settle();
    const handle = client.undo(n1);
    expect(handle.status).toBe("pending");
    settle();
    expect(server.received.some(([, m]) => m.t === "undo" && m.id === handle.id && m.scope === "n1")).toBe(true);
    expect(n1.string("title").value).toBe("one");
    await expect(handle.confirmed()).resolves.toBeUndefined();
    const nothing = client.undo();
    settle();
    await expect(nothing.confirmed()).rejects.toMatchObject({ code: "nothing_to_undo" });
  });
});

describe("batches", () => {
  /**
   * `a` has two actions in flight (a title insert, then a drag the room refuses) when `b`'s edit
   * reaches the room too: `a` gets the ack of its first action, the reject of its second and
   * `b`'s update, in one `batch` frame when `batched`, in three frames otherwise. Returns what
   * `a` reported and ended with.
   */
  const burst = async (batched: boolean) => {
    const { join, settle, server, net } = world({
      refuse: (c) => (c.op === "dict_set" && c.value === 99 ? { code: "invalid", reason: "outside the canvas" } : null),
    });
    const a = await join();
    const b = await join();
    const frames: string[] = [];
    const sock = net.sockets.find((s) => s.session?.client?.id === a.clientId);
    const onmessage = sock?.onmessage;
    if (sock === undefined || onmessage === undefined || onmessage === null) throw new Error("no socket of a");
    sock.onmessage = (ev) => {
      frames.push(String(ev.data));
      onmessage(ev);
    };
    const n1 = must(a, "n1");
    const log: string[] = [];
    const handles: ActionHandle[] = [];
    const status = () => handles.map((h) => h.status).join(",");
    n1.string("title").on("textInsert", (e) => log.push(`insert ${e.pos} ${e.text} local=${e.local}`));
    n1.string("title").on("changed", (e) => log.push(`title ${e.value}`));
    n1.dict("pos").on("changed", (e) => log.push(`pos ${JSON.stringify(e.value)}`));
    n1.number("count").on("set", (e) => log.push(`count ${e.value}`));
    a.on("change", (e) => log.push(`change local=${e.local} [${status()}]`));
    a.on("reject", (e) => log.push(`reject ${e.error.code} [${status()}]`));
    a.on("sync", (e) => log.push(`sync v${e.version} pending ${e.pending} [${status()}]`));
    handles.push(n1.string("title").insert(3, "!"));
    handles.push(n1.dict("pos").setKey("x", 99));
    b.transaction(() => {
      must(b, "n1").string("title").insert(0, ">");
      must(b, "n1").number("count").add(1);
    });
    log.push("--- the room answers");
    if (batched) server.hold();
    for (const s of [sock, ...net.sockets.filter((s) => s !== sock)]) {
      while (s.toServer.length > 0) (s.toServer.shift() as () => void)();
    }
    if (batched) server.flush();
    settle();
    const kinds = frames.map((f) => {
      const msg = JSON.parse(f) as { t: string; m?: { t: string }[] };
      return msg.m === undefined ? msg.t : `${msg.t}[${msg.m.map((m) => m.t).join(",")}]`;
    });
    const end = {
      title: n1.string("title").value,
      pos: n1.dict("pos").value,
      count: n1.number("count").value,
      version: a.version,
      pending: a.pendingCount,
      status: status(),
    };
    return { log, frames: kinds, end };
  };

  it("handles a batch as its messages one by one: same state, acks, rejects and events", async () => {
    const separate = await burst(false);
    const batched = await burst(true);
    expect(separate.frames).toEqual(["update", "reject", "update"]);
    expect(batched.frames).toEqual(["batch[update,reject,update]"]);
    expect(batched.end).toEqual(separate.end);
    expect(separate.end).toEqual({ title: ">one!", pos: { x: 1, y: 2 }, count: 2, version: 2, pending: 0, status: "confirmed,rejected" });
    expect(batched.log).toEqual(separate.log);
    // One batch of events per message, the batch's as the separate frames': the ack (nothing to
    // show but the version), the reject (rolled back), the other client's update.
    expect(separate.log.slice(separate.log.indexOf("--- the room answers") + 1)).toEqual([
      "sync v1 pending 1 [confirmed,pending]",
      'pos {"x":1,"y":2}',
      "change local=false [confirmed,pending]",
      "reject invalid [confirmed,rejected]",
      "sync v1 pending 0 [confirmed,rejected]",
      "insert 0 > local=false",
      "title >one!",
      "count 2",
      "change local=false [confirmed,rejected]",
      "sync v2 pending 0 [confirmed,rejected]",
    ]);
  });
});

describe("reconnecting", () => {
  it("resumes with client, token and version, catches up, and re-sends pending actions once, in order", async () => {
    const { join, settle, server, net, actionsOf } = world();
    const a = await join();
    const b = await join();
    const n1 = must(a, "n1");
    n1.string("body").insert(0, "hello");
    settle();
    const versionBefore = a.version;
    // a's next edit is sent, then lost with the connection; more edits queue up offline while
    // b edits too.
    n1.string("body").insert(5, " world");
    net.sockets.find((s) => s.session?.client?.id === "c1")?.drop();
    net.deliverAll();
    expect(a.state).toBe("reconnecting");
    n1.dict("pos").setKey("x", 5);
    n1.string("body").insert(11, "!");
    must(b, "n1").string("body").insert(0, ">> ");
    must(b, "n1").dict("pos").setKey("y", 7);
    settle();
    const hellos = server.received.filter(([, m]) => m.t === "hello").map(([, m]) => m as unknown as HelloMessage);
    expect(hellos.at(-1)?.resume).toEqual({ client: "c1", resume_token: "tok-c1", version: versionBefore });
    expect(a.clientId).toBe("c1");
    expect(server.value("n1", "body")).toBe(">> hello world!");
    expect(n1.string("body").value).toBe(">> hello world!");
    expect(n1.dict("pos").value).toEqual({ x: 5, y: 7 });
    const sent = actionsOf(a).map((x) => x.id);
    expect(sent).toEqual([1, 2, 3, 4]); // the lost one sent again, each once, in order
  });

  it("does not apply twice an action whose ack was lost with the connection", async () => {
    const { join, settle, server, net } = world();
    const a = await join();
    must(a, "n1").number("count").add(10);
    const sock = net.last;
    net.deliverAll(1); // only the action reaches the server
    while (sock !== undefined && sock.toServer.length > 0) (sock.toServer.shift() as () => void)();
    expect(server.value("n1", "count")).toBe(11);
    sock?.drop(); // the update is lost
    settle();
    expect(server.value("n1", "count")).toBe(11);
    expect(must(a, "n1").number("count").value).toBe(11);
    expect(a.pendingCount).toBe(0);
  });

  it("reloads with a snapshot when the room can no longer resume it", async () => {
    const { join, settle, server, net } = world({ logMax: 1 });
    const a = await join();
    const b = await join();
    net.sockets[0]?.drop();
    net.deliverAll();
    must(b, "n1").string("title").set("b1");
    must(b, "n1").string("title").set("b2");
    must(a, "n1").bool("done").set(true); // made offline, never sent: re-sent after the reload
    settle();
    expect(must(a, "n1").string("title").value).toBe("b2");
    expect(server.value("n1", "done")).toBe(true);
    expect(a.clientId).toBe("c1");
  });

  it("resyncs on a version gap", async () => {
    const { join, settle, server, net } = world();
    const a = await join();
    const sock = net.last;
    server.serverChange([{ op: "set", obj: "n1", attr: "count", value: 5 }]);
    sock?.toClient.shift(); // update v1 lost without the connection noticing
    server.serverChange([{ op: "set", obj: "n1", attr: "count", value: 6 }]);
    settle();
    expect(net.sockets.length).toBe(2);
    expect(must(a, "n1").number("count").value).toBe(6);
    expect(a.version).toBe(2);
  });

  it("random edits by three clients with random drops converge (seeded)", async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const rng = new Rng(seed);
      const { join, settle, server, net } = world();
      const clients = [await join(), await join(), await join()];
      const rejects: string[] = [];
      for (const c of clients) c.on("reject", (e) => rejects.push(`${e.error.code}: ${e.error.reason}`));
      for (let step = 0; step < 120; step++) {
        const c = rng.pick(clients);
        const n1 = must(c, "n1");
        const r = step % 40 === 39 ? 0.6 : rng.next(); // at least a few drops per run
        if (r < 0.4) {
          const body = n1.string("body");
          const len = body.value.length;
          if (len > 0 && rng.chance(0.3)) body.delete(rng.int(len), 1);
          else body.insert(rng.int(len + 1), rng.pick(["a", "b", "c"]));
        } else if (r < 0.5) {
          n1.dict("pos").setKey(rng.pick(["x", "y"]), step);
        } else if (r < 0.55) {
          c.create("Note", "g", { attrs: { title: `s${step}` } });
        } else if (r < 0.58) {
          const mine = must(c, "g").children.filter((o) => o.id.startsWith(`${c.clientId}:`));
          if (mine.length > 0) rng.pick(mine).delete();
        } else if (r < 0.62 || step % 40 === 39) {
          const sock = rng.pick(net.sockets.filter((s) => s.readyState === 1));
          sock?.drop();
        } else if (r < 0.9) {
          for (let k = rng.int(4); k >= 0; k--) net.deliverRandom(rng);
        } else {
          vi.advanceTimersByTime(rng.int(400));
        }
      }
      settle();
      settle();
      expect(net.sockets.length, `seed ${seed}: connections dropped and came back`).toBeGreaterThan(3);
      expect(rejects, `seed ${seed}: nothing here conflicts`).toEqual([]);
      const expected = server.snapshot();
      for (const c of clients) {
        expect(c.state, `seed ${seed}`).toBe("open");
        expect(c.pendingCount, `seed ${seed}`).toBe(0);
        expect(c.root.children.length, `seed ${seed}`).toBe(1);
        const body = must(c, "n1").string("body").value;
        expect(body, `seed ${seed}`).toBe(server.value("n1", "body"));
        expect(must(c, "n1").dict("pos").value, `seed ${seed}`).toEqual(server.value("n1", "pos"));
        expect(must(c, "g").children.map((o) => o.id), `seed ${seed}`).toEqual(expected.children?.[0]?.children?.map((o) => o.id));
      }
    }
  });
});
