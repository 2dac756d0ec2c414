/**
 * Compile-time tests of the typed schema, checked by `npm run typecheck` (tsconfig.json): each
 * `@ts-expect-error` line must fail to compile, or tsc fails with "Unused '@ts-expect-error'
 * directive", so none can pass silently; the other lines must compile. Nothing here runs:
 * `schema.test.ts` checks the same calls at run time, and the code `objectsync codegen ts`
 * really generates end to end.
 */

import type { ObjectSyncClient } from "./client.js";
import type { JsonObject } from "./protocol.js";
import { SObject } from "./sobject.js";
import type { StringTopic } from "./topics.js";

/** A class in the shape codegen generates (`src/codegen.rs`), one attribute of every kind. */
class TodoObject extends SObject {
  static readonly typeName = "Todo";
  static readonly attrs = {
    title: { kind: "string", default: "" },
    count: { kind: "int", default: 0 },
    weight: { kind: "float", default: 0.0 },
    done: { kind: "bool", default: false },
    meta: { kind: "dict", default: {} },
    items: { kind: "list", default: [] },
    tags: { kind: "set", default: [] },
    ping: { kind: "event" },
    owner: { kind: "ref", default: null },
    blockers: { kind: "ref_list", default: [] },
    byRole: { kind: "ref_dict", default: {} },
  } as const;
  get title(): StringTopic {
    return this.string("title");
  }
}

class ListObject extends SObject {
  static readonly typeName = "List";
  static readonly attrs = { name: { kind: "string", default: "" } } as const;
  get name(): StringTopic {
    return this.string("name");
  }
}

/** Not in the schema. */
class StrayObject extends SObject {
  static readonly typeName = "Stray";
  static readonly attrs = {} as const;
}

const schema = { Todo: TodoObject, List: ListObject } as const;

/** An application subclass stands in for its generated class. */
class TodoView extends TodoObject {
  shown = false;
}

/** Takes any client: a typed one must be assignable to it. */
function untypedUser(client: ObjectSyncClient): SObject {
  return client.root;
}

/** The tests; never called. */
export function schemaTypeTests(
  typed: ObjectSyncClient<typeof schema>,
  withView: ObjectSyncClient<{ readonly Todo: typeof TodoView; readonly List: typeof ListObject }>,
  untyped: ObjectSyncClient,
  json: JsonObject,
): void {
  // Typed by name and by class: the class's instances, with typed attributes of every kind.
  const byName: TodoObject = typed.create("Todo", "root", {
    attrs: {
      title: "t",
      count: 1,
      weight: 0.5,
      done: true,
      meta: { any: ["json", 1, null] },
      items: [{ a: 1 }, "b"],
      tags: ["x", 1, false],
      owner: null,
      blockers: ["a"],
      byRole: { lead: "a" },
    },
    index: 0,
  });
  const byClass: TodoObject = typed.create(TodoObject, byName, { attrs: { owner: byName.id } });
  const list: ListObject = typed.create("List", "root");
  byClass.title.insert(0, "x");
  const view: TodoView = withView.create("Todo", "root");
  void [byClass, list, view, untypedUser(typed), untypedUser(withView)];

  // @ts-expect-error -- a type name the schema does not have
  typed.create("Tod", "root");
  // @ts-expect-error -- a class the schema does not have
  typed.create(StrayObject, "root");
  // @ts-expect-error -- an attribute Todo does not have (by name)
  typed.create("Todo", "root", { attrs: { titel: "t" } });
  // @ts-expect-error -- an attribute Todo does not have (by class)
  typed.create(TodoObject, "root", { attrs: { titel: "t" } });
  // @ts-expect-error -- an attribute of another type
  typed.create("List", "root", { attrs: { title: "t" } });
  // @ts-expect-error -- string for a string attribute, not a number
  typed.create("Todo", "root", { attrs: { title: 1 } });
  // @ts-expect-error -- int: a number
  typed.create(TodoObject, "root", { attrs: { count: "1" } });
  // @ts-expect-error -- bool: a boolean
  typed.create("Todo", "root", { attrs: { done: 1 } });
  // @ts-expect-error -- dict: an object
  typed.create("Todo", "root", { attrs: { meta: [] } });
  // @ts-expect-error -- list: an array
  typed.create("Todo", "root", { attrs: { items: {} } });
  // @ts-expect-error -- set: strings, numbers, booleans
  typed.create("Todo", "root", { attrs: { tags: [{}] } });
  // @ts-expect-error -- ref: an id or null
  typed.create("Todo", "root", { attrs: { owner: 1 } });
  // @ts-expect-error -- ref_list: ids
  typed.create("Todo", "root", { attrs: { blockers: [null] } });
  // @ts-expect-error -- ref_dict: ids
  typed.create("Todo", "root", { attrs: { byRole: { lead: 1 } } });
  // @ts-expect-error -- events hold nothing: create cannot give them
  typed.create("Todo", "root", { attrs: { ping: null } });
  // @ts-expect-error -- what create returns is a TodoObject, not a ListObject
  const wrong: ListObject = typed.create("Todo", "root");
  void wrong;

  // Untyped: any type name and JSON attributes, plain SObjects; a class still types its attributes.
  const plain: SObject = untyped.create("Anything", "root", { attrs: json });
  // @ts-expect-error -- a plain SObject, not a TodoObject
  const notTodo: TodoObject = untyped.create("Todo", "root");
  const todo: TodoObject = untyped.create(TodoObject, "root", { attrs: { count: 2 } });
  // @ts-expect-error -- a class's attributes are typed without a schema too
  untyped.create(TodoObject, "root", { attrs: { count: "2" } });
  void [plain, notTodo, todo];
}
