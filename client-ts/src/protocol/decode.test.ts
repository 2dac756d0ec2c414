import { describe, expect, it } from "vitest";
import { Rng } from "../testing/random.js";
import type { ServerMessage } from "./messages.js";
import { DecodeError, decodeChange, decodeServerMessage } from "./decode.js";

function ok(text: string): ServerMessage {
  const m = decodeServerMessage(text);
  if (m instanceof DecodeError) throw new Error(`unexpected decode error: ${m.reason}`);
  return m;
}

function bad(text: string): DecodeError {
  const m = decodeServerMessage(text);
  if (!(m instanceof DecodeError)) throw new Error(`expected a decode error for ${text}`);
  return m;
}

describe("decodeServerMessage", () => {
  it("decodes the welcome of docs/protocol.md, snapshot and presence included", () => {
    const m = ok(
      JSON.stringify({
        t: "welcome",
        protocol: 1,
        client: "c1a2b3c4d5",
        resume_token: "Xy",
        version: 41,
        acked: 6,
        snapshot: {
          version: 41,
          next_server_id: 12,
          root: {
            id: "root",
            type: "Root",
            children: [
              {
                id: "g",
                type: "Graph",
                attrs: { name: "main" },
                children: [{ id: "s:1", type: "Node", attrs: { pos: { x: 1, y: 2 }, ports: ["in", "out"] } }],
              },
            ],
          },
        },
        presence: { c9z8y7x6w5: { name: "Bob" } },
      }),
    );
    expect(m.t).toBe("welcome");
    if (m.t !== "welcome") return;
    expect(m.client).toBe("c1a2b3c4d5");
    expect(m.acked).toBe(6);
    expect(m.read_only).toBe(false);
    expect(m.presence).toEqual({ c9z8y7x6w5: { name: "Bob" } });
    expect(m.snapshot?.root.children?.[0]?.children?.[0]?.attrs).toEqual({ pos: { x: 1, y: 2 }, ports: ["in", "out"] });
    expect([m.undo_steps, m.redo_steps]).toEqual([0, 0]);
  });

  it("decodes the undo and redo steps a welcome says the room still holds", () => {
    const m = ok(JSON.stringify({ t: "welcome", protocol: 1, client: "c", resume_token: "r", version: 3, acked: 2, presence: {}, undo_steps: 2, redo_steps: 1 }));
    expect(m.t === "welcome" ? [m.undo_steps, m.redo_steps] : null).toEqual([2, 1]);
    expect(decodeServerMessage(JSON.stringify({ t: "welcome", protocol: 1, client: "c", resume_token: "r", version: 3, acked: 0, presence: {}, undo_steps: -1 }))).toBeInstanceOf(DecodeError);
  });

  it("decodes who the client and the others are: welcome.identity, welcome.users, presence.user", () => {
    const w = ok(
      JSON.stringify({ t: "welcome", protocol: 1, client: "c1", resume_token: "r", version: 3, acked: 0, presence: { c2: { x: 1 } }, identity: { id: "ann", name: "Ann", roles: ["admin"] }, users: { c2: { id: "bob" } } }),
    );
    expect(w.t === "welcome" ? [w.identity, w.users] : null).toEqual([{ id: "ann", name: "Ann", roles: ["admin"] }, { c2: { id: "bob" } }]);
    const p = ok(JSON.stringify({ t: "presence", client: "c2", user: { id: "bob", name: "Bob" }, state: { x: 2 } }));
    expect(p.t === "presence" ? p.user : null).toEqual({ id: "bob", name: "Bob" });
    const anon = ok(JSON.stringify({ t: "presence", client: "c3", state: null }));
    expect(anon.t === "presence" ? anon.user : "?").toBeUndefined();
    expect(decodeServerMessage(JSON.stringify({ t: "presence", client: "c2", user: { name: "no id" }, state: null }))).toBeInstanceOf(DecodeError);
    expect(decodeServerMessage(JSON.stringify({ t: "presence", client: "c2", user: { id: "x", roles: [1] }, state: null }))).toBeInstanceOf(DecodeError);
  });

  it("decodes the compact snapshot form into the same tree as the nested one", () => {
    const welcome = (snapshot: unknown) =>
      ok(JSON.stringify({ t: "welcome", protocol: 1, client: "c", resume_token: "r", version: 41, acked: 0, snapshot }));
    const nested = welcome({
      version: 41,
      next_server_id: 12,
      root: {
        id: "root",
        type: "Root",
        children: [
          {
            id: "g",
            type: "Graph",
            attrs: { name: "main" },
            children: [{ id: "s:1", type: "Node", attrs: { pos: { x: 1, y: 2 }, ports: ["in", "out"], title: "n" } }],
          },
        ],
      },
    });
    const compact = welcome({
      version: 41,
      next_server_id: 12,
      types: [
        ["Root", []],
        ["Graph", ["name"]],
        ["Node", ["pos", "ports", "title"]],
      ],
      root: ["root", 0, [], [["g", 1, ["main"], [["s:1", 2, [{ x: 1, y: 2 }, ["in", "out"], "n"]]]]]],
    });
    expect(compact).toEqual(nested);
  });

  it("refuses a malformed compact snapshot with the path of the fault", () => {
    const types = '"types":[["Root",[]],["Node",["a","b"]]]';
    const w = (snap: string) =>
      `{"t":"welcome","protocol":1,"client":"c","resume_token":"r","version":1,"acked":0,"snapshot":{"version":1,"next_server_id":1,${snap}}}`;
    expect(bad(w(`${types},"root":["root",0,[],[["n",7,[]]]]`)).reason).toMatch(/root\[3\]\[0\]\[1\]: no type at index 7/);
    expect(bad(w(`${types},"root":["root",0,[],[["n",1,[1]]]]`)).reason).toMatch(/expected 2 attribute values/);
    expect(bad(w(`${types},"root":["root",0,[],[],5]`)).reason).toMatch(/expected \[id, type index/);
    expect(bad(w(`"types":[["Root"]],"root":["root",0,[]]`)).reason).toMatch(/types\[0\]/);
    expect(bad(w(`"types":{},"root":["root",0,[]]`)).reason).toMatch(/types: expected an array/);
    const m = ok(w(`"types":[["Root",["__proto__"]]],"root":["root",0,[{"x":1}]]`));
    if (m.t !== "welcome") throw new Error("welcome expected");
    expect(Object.keys(m.snapshot?.root.attrs ?? {})).toEqual(["__proto__"]);
  });

  it("decodes every change op of an update", () => {
    const changes = [
      { op: "create", id: "c5:1", type: "Node", parent: "g", index: 0, attrs: { title: "" }, children: [{ id: "c5:2", type: "Port" }] },
      { op: "delete", id: "n1" },
      { op: "move", id: "n1", parent: "g", index: 2 },
      { op: "set", obj: "n1", attr: "title", value: "x" },
      { op: "add", obj: "n1", attr: "count", value: -2.5 },
      { op: "text_insert", obj: "n1", attr: "title", pos: 3, text: "😀" },
      { op: "text_delete", obj: "n1", attr: "title", pos: 1, len: 2 },
      { op: "dict_set", obj: "n1", attr: "pos", key: "x", value: 120 },
      { op: "dict_remove", obj: "n1", attr: "pos", key: "x" },
      { op: "list_insert", obj: "n1", attr: "ports", index: 0, value: "in" },
      { op: "list_remove", obj: "n1", attr: "ports", index: 0 },
      { op: "list_move", obj: "n1", attr: "ports", from: 0, to: 1 },
      { op: "list_set", obj: "n1", attr: "ports", index: 1, value: null },
      { op: "set_add", obj: "n1", attr: "tags", value: 3 },
      { op: "set_remove", obj: "n1", attr: "tags", value: true },
      { op: "emit", obj: "n1", attr: "ping", args: { n: 1 } },
    ];
    const m = ok(JSON.stringify({ t: "update", v: 42, origin: "c1", action: 7, changes }));
    expect(m).toEqual({ t: "update", v: 42, origin: "c1", action: 7, changes });
  });

  it("ignores unknown fields everywhere (forward compatible)", () => {
    const m = ok(
      '{"t":"update","v":1,"origin":"server","future":true,"changes":[{"op":"set","obj":"a","attr":"b","value":1,"extra":[1]}]}',
    );
    expect(m).toEqual({ t: "update", v: 1, origin: "server", changes: [{ op: "set", obj: "a", attr: "b", value: 1 }] });
  });

  it("decodes reject, events, presence, result and error", () => {
    expect(ok('{"t":"reject","action":7,"code":"invalid","reason":"no","change":0}')).toEqual({
      t: "reject",
      action: 7,
      code: "invalid",
      reason: "no",
      change: 0,
    });
    expect(ok('{"t":"events","v":4,"origin":"c1","action":9,"changes":[{"op":"emit","obj":"n","attr":"e"}]}')).toEqual({
      t: "events",
      v: 4,
      origin: "c1",
      action: 9,
      changes: [{ op: "emit", obj: "n", attr: "e" }],
    });
    expect(ok('{"t":"presence","client":"c9","state":null}')).toEqual({ t: "presence", client: "c9", state: null });
    expect(ok('{"t":"result","id":3,"ok":{"moved":12}}')).toEqual({ t: "result", id: 3, ok: { moved: 12 } });
    expect(ok('{"t":"result","id":3,"ok":null}')).toEqual({ t: "result", id: 3, ok: null });
    expect(ok('{"t":"result","id":-3,"error":{"code":"timeout","reason":"slow"}}')).toEqual({
      t: "result",
      id: -3,
      error: { code: "timeout", reason: "slow" },
    });
    expect(ok('{"t":"error","code":"bad_message","reason":"x"}')).toEqual({ t: "error", code: "bad_message", reason: "x" });
  });

  it("answers malformed input with a DecodeError saying where", () => {
    expect(bad("{").reason).toMatch(/malformed JSON/);
    expect(bad("[]").reason).toMatch(/expected an object/);
    expect(bad('{"v":1}').reason).toMatch(/message\.t/);
    const unknown = bad('{"t":"teleport"}');
    expect(unknown.reason).toMatch(/unknown message type/);
    expect(unknown.messageType).toBe("teleport");
    expect(bad('{"t":"update","v":1,"origin":"c","changes":[{"op":"text_insert","obj":"a","attr":"b","pos":-1,"text":"x"}]}').reason).toBe(
      "update.changes[0].pos: expected a non-negative integer",
    );
    expect(bad('{"t":"update","v":1.5,"origin":"c","changes":[]}').reason).toMatch(/update\.v/);
    expect(bad('{"t":"update","v":1,"origin":"c","changes":[{"op":"warp","obj":"a"}]}').reason).toMatch(/unknown change "warp"/);
    expect(bad('{"t":"update","v":1,"origin":"c","changes":[{"op":"set_add","obj":"a","attr":"s","value":1.5}]}').reason).toMatch(
      /integer or a boolean/,
    );
    expect(bad('{"t":"result","id":1}').reason).toMatch(/"ok" or "error"/);
    expect(bad('{"t":"welcome","protocol":1,"client":"c","resume_token":"r","version":1}').reason).toMatch(/acked/);
  });

  it("decodes a batch into its messages, each as a frame of its own would be", () => {
    const update = '{"t":"update","v":42,"origin":"c1","action":7,"changes":[{"op":"dict_set","obj":"n1","attr":"pos","key":"x","value":120}]}';
    const events = '{"t":"events","v":42,"origin":"c2","changes":[{"op":"emit","obj":"n1","attr":"ping"}]}';
    const reject = '{"t":"reject","action":8,"code":"invalid","reason":"no","change":0}';
    const presence = '{"t":"presence","client":"c9","state":{"name":"Bob"},"future":1}';
    expect(ok(`{"t":"batch","m":[${update},${events},${reject},${presence}]}`)).toEqual({
      t: "batch",
      m: [ok(update), ok(events), ok(reject), ok(presence)],
    });
    expect(ok('{"t":"batch","m":[]}')).toEqual({ t: "batch", m: [] });
  });

  it("refuses a whole batch for one bad message, a welcome or a nested batch, naming it", () => {
    const u = (v: number) => `{"t":"update","v":${v},"origin":"c","changes":[]}`;
    const batch = (...m: string[]) => `{"t":"batch","m":[${m.join(",")}]}`;
    const welcome = '{"t":"welcome","protocol":1,"client":"c","resume_token":"r","version":1,"acked":0}';
    const nested = bad(batch(u(1), batch(u(2))));
    expect(nested.reason).toBe("batch.m[1].t: a batch cannot contain a batch");
    expect(nested.messageType).toBe("batch");
    expect(bad(batch(welcome)).reason).toBe("batch.m[0].t: a batch cannot contain a welcome");
    const badInsert = '{"t":"update","v":4,"origin":"c","changes":[{"op":"text_insert","obj":"a","attr":"b","pos":-1,"text":"x"}]}';
    expect(bad(batch(u(1), u(2), u(3), badInsert)).reason).toBe("batch.m[3].changes[0].pos: expected a non-negative integer");
    const unknown = bad(batch(u(1), '{"t":"teleport"}'));
    expect(unknown.reason).toBe('batch.m[1].t: unknown message type "teleport"');
    expect(unknown.messageType).toBe("batch");
    expect(bad(batch(u(1), "5")).reason).toBe("batch.m[1]: expected an object");
    expect(bad(batch("{}")).reason).toBe("batch.m[0].t: expected a string");
    expect(bad('{"t":"batch"}').reason).toBe("batch.m: expected an array");
    expect(bad('{"t":"batch","m":{"0":{}}}').reason).toBe("batch.m: expected an array");
  });

  it("keeps a __proto__ presence key as data", () => {
    const m = ok('{"t":"welcome","protocol":1,"client":"c","resume_token":"r","version":0,"acked":0,"presence":{"__proto__":{"x":1}}}');
    if (m.t !== "welcome") throw new Error("welcome expected");
    expect(Object.keys(m.presence)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(m.presence)).toBe(Object.prototype);
  });

  it("bounds snapshot nesting", () => {
    let node = '{"id":"x","type":"T"}';
    for (let i = 0; i < 300; i++) node = `{"id":"n${i}","type":"T","children":[${node}]}`;
    const text = `{"t":"welcome","protocol":1,"client":"c","resume_token":"r","version":0,"acked":0,"snapshot":{"version":0,"next_server_id":0,"root":${node}}}`;
    expect(bad(text).reason).toMatch(/nested deeper/);
  });

  it("never throws on random or mutated input (seeded)", () => {
    const rng = new Rng(99);
    const samples = [
      '{"t":"update","v":42,"origin":"c1","action":7,"changes":[{"op":"dict_set","obj":"n1","attr":"pos","key":"x","value":120}]}',
      '{"t":"welcome","protocol":1,"client":"c5","resume_token":"r","version":3,"acked":0,"snapshot":{"version":3,"next_server_id":1,"root":{"id":"root","type":"Root"}},"presence":{}}',
      '{"t":"welcome","protocol":1,"client":"c5","resume_token":"r","version":3,"acked":0,"snapshot":{"version":3,"next_server_id":1,"types":[["Root",[]],["N",["a"]]],"root":["root",0,[],[["n",1,[[1]]]]]},"presence":{}}',
      '{"t":"result","id":3,"error":{"code":"timeout","reason":"x"}}',
      '{"t":"batch","m":[{"t":"update","v":4,"origin":"c1","changes":[{"op":"text_insert","obj":"n","attr":"a","pos":0,"text":"x"}]},{"t":"reject","action":2,"code":"invalid","reason":"r"},{"t":"presence","client":"c2","state":null}]}',
    ];
    const alphabet = '{}[]":,0123456789-.abcdeftnul\\ ';
    for (let k = 0; k < 3000; k++) {
      const chars = [...rng.pick(samples)];
      for (let n = rng.int(4) + 1; n > 0; n--) {
        const at = rng.int(chars.length);
        if (rng.chance(0.5)) chars.splice(at, 1);
        else chars.splice(at, 0, rng.pick([...alphabet]));
      }
      const text = chars.join("");
      expect(() => decodeServerMessage(text)).not.toThrow();
    }
  });
});

describe("decodeChange", () => {
  it("decodes a change alone", () => {
    expect(decodeChange({ op: "delete", id: "x" })).toEqual({ op: "delete", id: "x" });
    expect(decodeChange({ op: "delete" })).toBeInstanceOf(DecodeError);
    expect(decodeChange(null)).toBeInstanceOf(DecodeError);
  });

  it("refuses an op named like a member of Object.prototype as unknown", () => {
    for (const op of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const e = decodeChange({ op, obj: "a", attr: "b" });
      expect(e, op).toBeInstanceOf(DecodeError);
      expect((e as DecodeError).reason).toBe(`change.op: unknown change "${op}"`);
    }
  });
});
