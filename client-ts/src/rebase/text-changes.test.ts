import { describe, expect, it } from "vitest";
import type { Change } from "../protocol.js";
import { firstSetIndex, splitTopic, textAfterLastSet, textTopics, topicKey, typingTopic, waitingTopics } from "./text-changes.js";

const ins = (attr: string, pos = 0, text = "x"): Change => ({ op: "text_insert", obj: "n", attr, pos, text });
const del = (attr: string, pos = 0, len = 1): Change => ({ op: "text_delete", obj: "n", attr, pos, len });
const setTo = (attr: string, value: string | number): Change => ({ op: "set", obj: "n", attr, value });
const k = (attr: string) => topicKey("n", attr);

describe("what changes do to text", () => {
  it("a topic key splits back into object and attribute", () => {
    expect(splitTopic(topicKey("s:1", "a:b"))).toEqual(["s:1", "a:b"]);
  });

  it("an action holds the topics it edits as text or sets to a string", () => {
    expect(textTopics([ins("a"), setTo("b", "s"), setTo("c", 1)])).toEqual(new Set([k("a"), k("b")]));
  });

  it("an action waits only on topics it edits before setting them", () => {
    expect(waitingTopics([ins("a"), setTo("b", "s"), ins("b"), setTo("a", "t")])).toEqual(new Set([k("a")]));
    expect(firstSetIndex([ins("a"), setTo("a", 3), setTo("a", "t")], "n", "a")).toBe(2);
  });

  it("the edits after a topic's last whole-string set, per topic", () => {
    const t = textAfterLastSet([ins("a", 0, "q"), setTo("a", "new"), ins("a", 3, "!"), del("b")]);
    expect(t.get(k("a"))).toEqual({ set: "new", edits: [{ kind: "insert", pos: 3, text: "!" }] });
    expect(t.get(k("b"))).toEqual({ set: null, edits: [{ kind: "delete", pos: 0, len: 1 }] });
  });

  it("typing is text edits only, on one topic", () => {
    expect(typingTopic([ins("a"), del("a")])).toBe(k("a"));
    expect(typingTopic([ins("a"), ins("b")])).toBeNull();
    expect(typingTopic([ins("a"), setTo("a", "s")])).toBeNull();
    expect(typingTopic([])).toBeNull();
  });
});
