import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { must, world } from "./testing/world.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("topics", () => {
  it("read a value of another shape as the kind's empty value", async () => {
    const { join } = world();
    const c = await join();
    const n1 = must(c, "n1");
    expect(n1.string("count").value).toBe("");
    expect(n1.number("title").value).toBe(0);
    expect(n1.bool("title").value).toBe(false);
    expect(n1.dict("items").value).toEqual({});
    expect(n1.list("pos").value).toEqual([]);
    expect(n1.set("pos").value).toEqual([]);
    expect(n1.ref("count").value).toBeNull();
    expect(n1.string("missing").raw()).toBeUndefined();
    expect(Object.isFrozen(n1.dict("pos").value)).toBe(true);
  });

  it("are one instance per accessor and name", async () => {
    const { join } = world();
    const c = await join();
    const n1 = must(c, "n1");
    expect(n1.string("title")).toBe(n1.string("title"));
    expect(n1.string("title")).not.toBe(n1.string("body"));
  });

  it("edit every kind with typed helpers", async () => {
    const { join, settle, server } = world();
    const c = await join();
    const n1 = must(c, "n1");
    n1.string("title").replace(0, 3, "ONE");
    n1.number("count").set(4);
    n1.bool("done").toggle();
    n1.dict("pos").setKey("z", 1);
    n1.list("items").setAt(1, "B");
    n1.list("items").insert("0", 0);
    n1.set("tags").add("blue");
    n1.set("tags").set(["z", "a", 3, true]);
    n1.ref("link").point(must(c, "n2"));
    settle();
    expect(server.value("n1", "title")).toBe("ONE");
    expect(server.value("n1", "count")).toBe(4);
    expect(server.value("n1", "done")).toBe(true);
    expect(server.value("n1", "pos")).toEqual({ x: 1, y: 2, z: 1 });
    expect(server.value("n1", "items")).toEqual(["0", "a", "B", "c"]);
    expect(server.value("n1", "tags")).toEqual([true, 3, "a", "z"]); // sent in canonical order
    expect(n1.ref("link").target).toBe(must(c, "n2"));
    expect(n1.list("items").length).toBe(4);
    expect(n1.dict("pos").get("z")).toBe(1);
    expect(n1.dict("pos").keys().sort()).toEqual(["x", "y", "z"]);
    expect(n1.set("tags").has("a")).toBe(true);
  });

  it("resolve references to objects", async () => {
    const { join } = world();
    const c = await join();
    const n1 = must(c, "n1");
    n1.refList("items").set(["n2", "gone", "g"]);
    expect(n1.refList("items").targets().map((o) => o.id)).toEqual(["n2", "g"]);
    n1.refDict("pos").set({ a: "n2", b: "gone" });
    expect(n1.refDict("pos").target("a")?.id).toBe("n2");
    expect(n1.refDict("pos").target("b")).toBeUndefined();
  });
});
