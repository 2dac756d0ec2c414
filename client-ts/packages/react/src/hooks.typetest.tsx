/**
 * Compile-time tests of the hooks' types (`npm run typecheck` fails if an `@ts-expect-error`
 * line compiles): `useAttr(obj, name)` takes only the names of the object's attribute getters,
 * its value has the topic's type, and `useObject`/`useChildren` narrow by class.
 */

import type { EdgeObject } from "../../../examples/generated/demo-types.js";
import { GraphObject, NodeObject } from "../../../examples/generated/demo-types.js";
import { useAttr, useChildren, useObject } from "./index.js";

export function Typed(): string {
  const node = useObject("n1", NodeObject);
  const title: string | undefined = useAttr(node, "title");
  const x: number | undefined = useAttr(node, "pos", (p) => (typeof p["x"] === "number" ? p["x"] : 0));
  // @ts-expect-error: a misspelt attribute does not compile
  useAttr(node, "titel");
  // @ts-expect-error: a title is a string, not a number
  const wrong: number | undefined = useAttr(node, "title");
  const nodes: readonly NodeObject[] = useChildren(useObject("graph", GraphObject), NodeObject);
  // @ts-expect-error: children narrowed to nodes are not edges
  const edges: readonly EdgeObject[] = useChildren(useObject("graph", GraphObject), NodeObject);
  return `${title ?? ""}${x ?? 0}${String(wrong)}${nodes.length}${edges.length}`;
}
