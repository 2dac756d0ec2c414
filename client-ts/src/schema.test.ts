import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ObjectSyncClient } from "./client.js";
import { ObjectSyncError, SchemaError } from "./errors.js";
import type { Change, JsonValue } from "./protocol.js";
import type { AttrKind, Schema } from "./schema.js";
import { SchemaIndex, valueMismatch } from "./schema.js";
import { SObject } from "./sobject.js";
import { must, world } from "./testing/world.js";

/** The shape `objectsync codegen ts` generates, for the types of the test room (`testing/world.ts`). */
class GraphObject extends SObject {
  static readonly typeName = "Graph";
  static readonly attrs = { name: { kind: "string", default: "" } } as const;
}

class NoteObject extends SObject {
  static readonly typeName = "Note";
  static readonly attrs = {
    title: { kind: "string", default: "untitled" },
    body: { kind: "string", default: "" },
    pos: { kind: "dict", default: { x: 0, y: 0 } },
    items: { kind: "list", default: [] },
    tags: { kind: "set", default: [] },
    count: { kind: "int", default: 0 },
    weight: { kind: "float", default: 1.5 },
    done: { kind: "bool", default: false },
    link: { kind: "ref", default: null },
    links: { kind: "ref_list", default: [] },
    named: { kind: "ref_dict", default: {} },
    ping: { kind: "event" },
  } as const;
  get title() {
    return this.string("title");
  }
}

const schema = { Graph: GraphObject, Note: NoteObject } as const;

/** A subclass an application registers in place of the generated class. */
class NoteView extends NoteObject {
  started = false;
  override onStart(): void {
    this.started = true;
  }
}

describe("a client with a schema", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A joined client with `schema`, and a count of the actions it has sent. */
  async function typed<S extends Schema>(s: S) {
    const w = world();
    const client = new ObjectSyncClient({ schema: s });
    await w.join(client);
    const sent = () => w.actionsOf(client).length;
    return { ...w, client, sent };
  }

  it("makes each type's objects instances of its class, subclasses included", async () => {
    const { client } = await typed({ ...schema, Note: NoteView });
    expect(must(client, "n1")).toBeInstanceOf(NoteView);
    expect(must(client, "g")).toBeInstanceOf(GraphObject);
    expect((must(client, "n1") as NoteView).started).toBe(true);
  });

  it("creates instances of the class, by class or by name, with the defaults filled in locally", async () => {
    const { client, settle, server } = await typed(schema);
    const byClass = client.create(NoteObject, "g", { attrs: { title: "by class", count: 2 } });
    const byName = client.create("Note", "g", { attrs: { tags: ["b", "a"] } });
    expect(byClass).toBeInstanceOf(NoteObject);
    expect(byName).toBeInstanceOf(NoteObject);
    expect(byClass.title.value).toBe("by class");
    // Before the server answers: the schema's defaults, then the given attributes; no event.
    expect(byName.attrs()).toEqual({
      title: "untitled",
      body: "",
      pos: { x: 0, y: 0 },
      items: [],
      tags: ["b", "a"],
      count: 0,
      weight: 1.5,
      done: false,
      link: null,
      links: [],
      named: {},
    });
    expect(byClass.attrs()).toMatchObject({ title: "by class", count: 2, weight: 1.5 });
    settle();
    expect(server.value(byClass.id, "title")).toBe("by class");
    expect(client.pendingCount).toBe(0);
  });

  it("throws wrong_kind before anything is applied or sent", async () => {
    const { client, sent } = await typed(schema);
    const n1 = must(client, "n1");
    const before = sent();
    const refusals: [string, () => unknown][] = [
      ["a text edit of a dict", () => n1.string("pos").insert(0, "x")],
      ["a string set on a dict", () => n1.string("pos").set("x")],
      ["a float set on an int", () => n1.number("count").set(1.5)],
      ["a float add to an int", () => n1.number("count").add(0.5)],
      ["a key set on a list", () => n1.dict("items").setKey("k", 1)],
      ["a list insert on a set", () => n1.list("tags").push("x")],
      ["a set add on a list", () => n1.set("items").add("x")],
      ["an emit on a string", () => n1.event("title").emit()],
      ["a set of an event", () => n1.string("ping").set("x")],
      ["a number in a ref list", () => n1.list("links").push(1)],
    ];
    for (const [what, edit] of refusals) {
      expect(edit, what).toThrow(SchemaError);
      expect(edit, what).toThrow(expect.objectContaining({ code: "wrong_kind", obj: "n1" }));
    }
    expect(() => n1.string("pos").set("x")).toThrow("n1.pos is a dict topic: expected a dict, got string");
    expect(client.pendingCount).toBe(0);
    expect(sent()).toBe(before);
    expect(n1.dict("pos").value).toEqual({ x: 1, y: 2 });
  });

  it("throws no_such_attribute and no_such_type, for creates and their children too", async () => {
    const { client, sent, settle } = await typed(schema);
    const n1 = must(client, "n1");
    expect(() => n1.string("titel").set("x")).toThrow(expect.objectContaining({ code: "no_such_attribute", type: "Note", attr: "titel" }));
    expect(() => n1.string("constructor").set("x")).toThrow(expect.objectContaining({ code: "no_such_attribute" }));
    expect(() => client.root.string("title").set("x")).toThrow(expect.objectContaining({ code: "no_such_attribute", type: "Root" }));
    // @ts-expect-error -- not a type of the schema
    expect(() => client.create("Nope", "g")).toThrow(expect.objectContaining({ code: "no_such_type", type: "Nope" }));
    // @ts-expect-error -- not an attribute of Note
    expect(() => client.create("Note", "g", { attrs: { colour: "red" } })).toThrow(expect.objectContaining({ code: "no_such_attribute" }));
    // @ts-expect-error -- events hold nothing, so create cannot give them
    expect(() => client.create(NoteObject, "g", { attrs: { ping: null } })).toThrow(expect.objectContaining({ code: "wrong_kind" }));
    // Types say "a number"; the server says "an integer".
    expect(() => client.create(NoteObject, "g", { attrs: { count: 2.5 } })).toThrow(expect.objectContaining({ code: "wrong_kind" }));
    const child = (type: string, attrs: Record<string, JsonValue> = {}) => ({ id: `${client.clientId ?? ""}:child`, type, attrs });
    expect(() => client.create("Graph", "root", { children: [child("Nope")] })).toThrow(expect.objectContaining({ code: "no_such_type" }));
    expect(() => client.create("Graph", "root", { children: [child("Note", { done: "yes" })] })).toThrow(
      expect.objectContaining({ code: "wrong_kind", attr: "done" }),
    );
    settle();
    expect(sent()).toBe(0);
    expect(must(client, "g").children.map((c) => c.id)).toEqual(["n1", "n2"]);
  });

  it("undoes the whole transaction a refused change was part of", async () => {
    const { client, sent } = await typed(schema);
    const n1 = must(client, "n1");
    expect(() =>
      client.transaction(() => {
        n1.string("title").set("changed");
        n1.string("count").set("many");
      }),
    ).toThrow(expect.objectContaining({ code: "wrong_kind", attr: "count", kind: "int" }));
    expect(n1.string("title").value).toBe("one");
    expect(sent()).toBe(0);
  });

  it("leaves objects of types the schema lacks to the server", async () => {
    const { client, settle, sent } = await typed({ Note: NoteObject });
    must(client, "g").string("anything").set("x"); // a schema older than the server: not judged here
    settle();
    expect(sent()).toBe(1);
  });

  it("refuses a create by a class that is not the type's", async () => {
    const { client } = await typed(schema);
    class Other extends NoteObject {}
    expect(() => client.create(Other, "g")).toThrow(expect.objectContaining({ code: "invalid" }));
  });

  it("refuses a schema whose keys are not the classes' type names", () => {
    expect(() => new ObjectSyncClient({ schema: { Notes: NoteObject } })).toThrow(ObjectSyncError);
  });
});

describe("a client without a schema", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends what it is given (the server judges), and registers a class it creates by", async () => {
    const w = world();
    const client = await w.join();
    must(client, "n1").string("pos").set("x");
    const note = client.create(NoteObject, "g", { attrs: { title: "hi" } });
    expect(note).toBeInstanceOf(NoteObject);
    expect(note.attrs()).toMatchObject({ title: "hi", count: 0 }); // the class's defaults
    expect(client.create("Note", "g")).toBeInstanceOf(NoteObject);
    const plain = client.create("Anything", "g", { attrs: { x: { nested: [1, "a", null] } } });
    expect(plain).not.toBeInstanceOf(NoteObject);
    w.settle();
    expect(w.server.value("n1", "pos")).toBe("x");
    expect(client.pendingCount).toBe(0);
  });
});

describe("SchemaIndex.check", () => {
  const index = new SchemaIndex(schema);
  const types: Record<string, string> = { n: "Note", g: "Graph", r: "Root" };
  const typeOf = (id: string) => types[id];
  /** `change` on `n.attr` is refused with `code`, or accepted (`null`). */
  function check(change: Change, code: string | null): void {
    expect(index.check(change, typeOf)?.code ?? null, JSON.stringify(change)).toBe(code);
  }
  const at = (attr: string) => ({ obj: "n", attr });

  it("accepts each change on the kinds it applies to and refuses it on others", () => {
    check({ op: "add", ...at("count"), value: 2 }, null);
    check({ op: "add", ...at("weight"), value: 0.5 }, null);
    check({ op: "add", ...at("count"), value: 0.5 }, "wrong_kind");
    check({ op: "add", ...at("title"), value: 1 }, "wrong_kind");
    check({ op: "text_insert", ...at("title"), pos: 0, text: "a" }, null);
    check({ op: "text_delete", ...at("items"), pos: 0, len: 1 }, "wrong_kind");
    check({ op: "dict_set", ...at("pos"), key: "x", value: [1] }, null);
    check({ op: "dict_set", ...at("named"), key: "a", value: "n" }, null);
    check({ op: "dict_set", ...at("named"), key: "a", value: 1 }, "wrong_kind");
    check({ op: "dict_remove", ...at("named"), key: "a" }, null);
    check({ op: "dict_remove", ...at("items"), key: "a" }, "wrong_kind");
    check({ op: "list_insert", ...at("items"), value: { any: "json" } }, null);
    check({ op: "list_insert", ...at("links"), value: "n" }, null);
    check({ op: "list_set", ...at("links"), index: 0, value: null }, "wrong_kind");
    check({ op: "list_move", ...at("links"), from: 0, to: 1 }, null);
    check({ op: "list_remove", ...at("tags"), index: 0 }, "wrong_kind");
    check({ op: "set_add", ...at("tags"), value: 3 }, null);
    check({ op: "set_add", ...at("tags"), value: 0.5 }, "wrong_kind");
    check({ op: "set_remove", ...at("tags"), value: "x" }, null);
    check({ op: "set_remove", ...at("items"), value: "x" }, "wrong_kind");
    check({ op: "emit", ...at("ping"), args: 1 }, null);
    check({ op: "emit", ...at("title") }, "wrong_kind");
    check({ op: "set", ...at("ping"), value: null }, "wrong_kind");
    check({ op: "set", ...at("nope"), value: null }, "no_such_attribute");
    check({ op: "set", obj: "r", attr: "x", value: null }, "no_such_attribute");
    check({ op: "set", obj: "unknown", attr: "x", value: null }, null); // the tree answers no_such_object
    check({ op: "delete", id: "n" }, null);
    check({ op: "create", id: "c", type: "Note", parent: "g", attrs: { links: ["a", "b"] } }, null);
    check({ op: "create", id: "c", type: "Root", parent: "g" }, null);
    check({ op: "create", id: "c", type: "Nope", parent: "g" }, "no_such_type");
  });

  it("judges whole values as the server's kinds do", () => {
    const cases: [AttrKind, JsonValue, boolean][] = [
      ["string", "", true],
      ["string", 1, false],
      ["int", -3, true],
      ["int", 2 ** 62, true],
      ["int", 2 ** 63, false], // arrives as a float
      ["int", 1.5, false],
      ["float", 1, true],
      ["float", 1.5, true],
      ["float", "1", false],
      ["bool", false, true],
      ["bool", 0, false],
      ["dict", {}, true],
      ["dict", [], false],
      ["dict", null, false],
      ["list", [1, "a", {}], true],
      ["list", {}, false],
      ["set", [true, 1, "a"], true],
      ["set", ["a", "a"], false],
      ["set", [1.5], false],
      ["set", [[]], false],
      ["ref", null, true],
      ["ref", "n", true],
      ["ref", 1, false],
      ["ref_list", ["a"], true],
      ["ref_list", [null], false],
      ["ref_dict", { k: "a" }, true],
      ["ref_dict", { k: 1 }, false],
      ["event", null, false],
    ];
    for (const [kind, value, ok] of cases) {
      expect(valueMismatch(kind, value) === null, `${kind} ${JSON.stringify(value)}`).toBe(ok);
    }
  });
});

/** The Node APIs the compiler test uses, loaded at run time: the unit tests' tsconfig has no Node types. */
interface NodeApis {
  spawnSync(
    cmd: string,
    args: string[],
    options: { encoding: "utf8"; cwd?: string },
  ): { status: number | null; stdout: string; stderr: string };
  mkdtempSync(prefix: string): string;
  writeFileSync(path: string, text: string): void;
  readFileSync(path: string, encoding: "utf8"): string;
  existsSync(path: string): boolean;
  rmSync(path: string, options: { recursive: boolean; force: boolean }): void;
  tmpdir(): string;
  fileURLToPath(url: URL): string;
  env: Record<string, string | undefined>;
}

/** Loads {@link NodeApis}; a specifier in a variable keeps tsc from looking for Node's types. */
async function nodeApis(): Promise<NodeApis> {
  const load = (name: string): Promise<Record<string, unknown>> => import(name);
  const modules = ["node:child_process", "node:fs", "node:os", "node:url", "node:process"];
  const [cp, fs, os, url, proc] = await Promise.all(modules.map(load));
  if (proc === undefined) throw new Error("node:process did not load");
  return { ...cp, ...fs, ...os, ...url, env: proc.env } as unknown as NodeApis;
}

describe("the generated code", () => {
  it("types create end to end: tsc accepts the right attributes and refuses a misspelt one", { timeout: 60_000 }, async () => {
    const node = await nodeApis();
    const clientDir = node.fileURLToPath(new URL("..", import.meta.url));
    const entry = `${clientDir}src/index.js`;
    const bin = node.env.OBJECTSYNC_BIN ?? `${clientDir}../target/debug/objectsync`;
    let generated: string;
    if (node.existsSync(bin)) {
      const run = node.spawnSync(bin, ["codegen", "ts", "--import", entry], { encoding: "utf8" });
      expect(run.status, run.stderr).toBe(0);
      generated = run.stdout;
    } else {
      // No server binary (a unit-only run): the committed output, which scripts/test keeps current.
      const committed = node.readFileSync(`${clientDir}examples/generated/demo-types.ts`, "utf8");
      generated = committed.replaceAll('"../../src/index.js"', JSON.stringify(entry));
    }
    expect(generated).toContain("export const schema = {");
    const dir = node.mkdtempSync(`${node.tmpdir()}/objectsync-codegen-`);
    try {
      node.writeFileSync(`${dir}/types.ts`, generated);
      const main = [
        `import type { ObjectSyncClient } from ${JSON.stringify(entry)};`,
        `import { NodeObject, type schema } from "./types.js";`,
        `export function use(client: ObjectSyncClient<typeof schema>): NodeObject {`,
        `  const node = client.create("Node", "graph", { attrs: { title: "typed", pos: { x: 1 }, ports: ["in"] } });`,
        `  node.title.insert(0, "a");`,
        `  client.create(NodeObject, "graph", { attrs: { colour: "red" } });`,
        `  return node;`,
        `}`,
        ``,
      ].join("\n");
      node.writeFileSync(`${dir}/main.ts`, main);
      const tsconfig = {
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM", "DOM.Iterable"],
          module: "preserve",
          moduleResolution: "bundler",
          strict: true,
          noUncheckedIndexedAccess: true,
          verbatimModuleSyntax: true,
          skipLibCheck: true,
          types: [],
          noEmit: true,
        },
        files: ["types.ts", "main.ts"],
      };
      node.writeFileSync(`${dir}/tsconfig.json`, JSON.stringify(tsconfig));
      const tsc = node.spawnSync(`${clientDir}node_modules/.bin/tsc`, ["-p", dir, "--pretty", "false"], { encoding: "utf8", cwd: dir });
      const errors = tsc.stdout.split("\n").filter((l) => /error TS\d+/.test(l));
      expect(errors, tsc.stdout + tsc.stderr).toHaveLength(1);
      // The generated `attrs` name every attribute, so the compiler even knows what was meant.
      expect(errors[0]).toMatch(/^main\.ts\(6,\d+\): error TS2561: .*'colour' does not exist .*Did you mean to write 'color'\?/);
      expect(tsc.status).not.toBe(0);
    } finally {
      node.rmSync(dir, { recursive: true, force: true });
    }
  });
});
