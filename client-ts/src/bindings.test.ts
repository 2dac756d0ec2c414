// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bindClass, bindInput, bindStyle, bindText } from "./bindings.js";
import { must, world } from "./testing/world.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  document.body.innerHTML = "";
});

/** Types into `input` as a browser would: new value, caret, then an `input` event. */
function type(input: HTMLInputElement | HTMLTextAreaElement, value: string, caret: number): void {
  input.value = value;
  input.setSelectionRange(caret, caret);
  input.dispatchEvent(new Event("input"));
}

describe("bindText", () => {
  it("shows a string attribute and follows its changes until disposed", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const span = document.createElement("span");
    const text = document.createTextNode("");
    const dispose = bindText(must(a, "n1").string("title"), span);
    bindText(must(a, "n1").string("title"), text);
    expect(span.textContent).toBe("one");
    expect(text.data).toBe("one");
    must(b, "n1").string("title").insert(3, "!");
    settle();
    expect(span.textContent).toBe("one!");
    expect(text.data).toBe("one!");
    dispose();
    must(a, "n1").string("title").set("local");
    expect(span.textContent).toBe("one!");
    expect(text.data).toBe("local");
  });

  it("ends when the object is destroyed", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const topic = must(a, "n1").string("title");
    const span = document.createElement("span");
    bindText(topic, span);
    expect(topic.hasListeners("changed")).toBe(true);
    must(b, "n1").delete();
    settle();
    expect(topic.hasListeners("changed")).toBe(false);
    expect(span.textContent).toBe("one");
  });
});

describe("bindStyle and bindClass", () => {
  it("sets style properties per key and removes them with the key", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const div = document.createElement("div");
    const style = must(b, "n2").dict("pos");
    style.setKey("backgroundColor", "red");
    settle();
    bindStyle(must(a, "n2").dict("pos"), div);
    expect(div.style.getPropertyValue("background-color")).toBe("red");
    style.setKey("width", "10px");
    settle();
    expect(div.style.width).toBe("10px");
    style.removeKey("backgroundColor");
    settle();
    expect(div.style.getPropertyValue("background-color")).toBe("");
    expect(div.style.width).toBe("10px");
    style.set({ height: "5px" });
    settle();
    expect(div.style.width).toBe("");
    expect(div.style.height).toBe("5px");
  });

  it("toggles a class with a bool attribute", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const div = document.createElement("div");
    const dispose = bindClass(must(a, "n1").bool("done"), div, "done");
    expect(div.classList.contains("done")).toBe(false);
    must(b, "n1").bool("done").set(true);
    settle();
    expect(div.classList.contains("done")).toBe(true);
    must(a, "n1").bool("done").toggle();
    expect(div.classList.contains("done")).toBe(false);
    dispose();
    must(a, "n1").bool("done").toggle();
    expect(div.classList.contains("done")).toBe(false);
  });
});

describe("bindInput", () => {
  it("turns typing into text edits, one action per round trip", async () => {
    const { join, settle, server, actionsOf } = world();
    const a = await join();
    const input = document.createElement("input");
    document.body.append(input);
    bindInput(must(a, "n1").string("title"), input);
    expect(input.value).toBe("one");
    type(input, "one ", 4);
    type(input, "one t", 5);
    type(input, "one tw", 6);
    type(input, "one two", 7);
    type(input, "ne two", 0); // a delete at the start
    expect(must(a, "n1").string("title").value).toBe("ne two");
    settle();
    expect(server.value("n1", "title")).toBe("ne two");
    // " " went alone; "two" and the delete waited and went together.
    expect(actionsOf(a).map((x) => x.changes.length)).toEqual([1, 2]);
    expect(actionsOf(a)[1]?.changes).toEqual([
      { op: "text_insert", obj: "n1", attr: "title", pos: 4, text: "two" },
      { op: "text_delete", obj: "n1", attr: "title", pos: 0, len: 1 },
    ]);
  });

  it("keeps the caret in place when remote edits land before or after it", async () => {
    const { join, settle } = world();
    const a = await join();
    const b = await join();
    const area = document.createElement("textarea");
    document.body.append(area);
    bindInput(must(a, "n1").string("title"), area);
    area.focus();
    area.setSelectionRange(2, 2); // o n | e
    const remote = must(b, "n1").string("title");
    remote.insert(0, ">> ");
    settle();
    expect(area.value).toBe(">> one");
    expect([area.selectionStart, area.selectionEnd]).toEqual([5, 5]);
    remote.insert(6, "!!");
    settle();
    expect(area.value).toBe(">> one!!");
    expect([area.selectionStart, area.selectionEnd]).toEqual([5, 5]);
    remote.delete(0, 3);
    settle();
    expect([area.selectionStart, area.selectionEnd]).toEqual([2, 2]);
    area.setSelectionRange(1, 4); // a selection across a remote delete shrinks
    remote.delete(2, 3);
    settle();
    expect(area.value).toBe("on");
    expect([area.selectionStart, area.selectionEnd]).toEqual([1, 2]);
  });

  it("shifts the caret over a remote edit that arrives while the user's own typing is unacknowledged", async () => {
    const { join, settle, net } = world();
    const a = await join();
    const b = await join();
    const [sockA, sockB] = net.sockets;
    const pump = (queue: (() => void)[]) => {
      for (let i = 0; i < 100 && queue.length > 0; i++) (queue.shift() as () => void)();
    };
    const input = document.createElement("input");
    document.body.append(input);
    bindInput(must(a, "n1").string("title"), input);
    type(input, "one!", 4); // sent, not yet at the server
    type(input, "one!?", 5); // waits behind it
    must(b, "n1").string("title").insert(0, "b:");
    pump(sockB?.toServer ?? []); // b's edit reaches the server first
    pump(sockA?.toClient ?? []); // and a hears of it before its own ack
    expect(input.value).toBe("b:one!?");
    expect([input.selectionStart, input.selectionEnd]).toEqual([7, 7]);
    settle();
    expect(input.value).toBe("b:one!?");
    expect(must(b, "n1").string("title").value).toBe("b:one!?");
  });

  it("merges concurrent typing in one field (two clients converge)", async () => {
    const { join, settle, server } = world();
    const a = await join();
    const b = await join();
    const ia = document.createElement("input");
    const ib = document.createElement("input");
    bindInput(must(a, "n1").string("title"), ia);
    bindInput(must(b, "n1").string("title"), ib);
    type(ia, "oXne", 2);
    type(ib, "onYe", 3);
    type(ia, "oXXne", 3);
    settle();
    expect(server.value("n1", "title")).toBe("oXXnYe");
    expect(ia.value).toBe("oXXnYe");
    expect(ib.value).toBe("oXXnYe");
  });

  it("removes its listeners when disposed", async () => {
    const { join } = world();
    const a = await join();
    const input = document.createElement("input");
    const dispose = bindInput(must(a, "n1").string("title"), input);
    dispose();
    type(input, "changed", 7);
    expect(must(a, "n1").string("title").value).toBe("one");
    must(a, "n1").string("title").set("x");
    expect(input.value).toBe("changed");
  });
});
