import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SObject } from "./sobject.js";
import { must, world } from "./testing/world.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SObject", () => {
  it("runs owned disposers once, on destroy or earlier", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const n1 = must(a, "n1");
    const ran: string[] = [];
    const early = n1.own(() => ran.push("early"));
    n1.own(() => ran.push("late"));
    const target = new EventTarget();
    n1.listenDom(target, "poke", () => ran.push("poke"));
    n1.listen(a, "change", () => ran.push("client change"));
    early();
    early();
    target.dispatchEvent(new Event("poke"));
    must(a, "n2").string("title").set("before");
    must(b, "n1").delete();
    settle();
    target.dispatchEvent(new Event("poke"));
    must(a, "n2").string("title").set("after");
    expect(ran).toEqual(["early", "poke", "client change", "late"]);
    expect(n1.destroyed).toBe(true);
    expect(n1.parent).toBeNull();
    n1.own(() => ran.push("after destroy runs at once"));
    expect(ran.at(-1)).toBe("after destroy runs at once");
  });

  it("moves and deletes itself, and reads all attributes", async () => {
    const { join, settle, server } = world();
    const a = await join();
    const n2 = must(a, "n2");
    n2.moveTo(must(a, "n1"));
    expect(n2.parent?.id).toBe("n1");
    expect(n2.attrs()).toMatchObject({ title: "two", link: "n1" });
    expect(n2.attr("title")).toBe("two");
    settle();
    expect(server.tree.get("n2")?.parent).toBe("n1");
    must(a, "n1").delete();
    settle();
    expect(server.tree.has("n2")).toBe(false);
    expect(n2.destroyed).toBe(true);
    expect(n2).toBeInstanceOf(SObject);
  });
});
