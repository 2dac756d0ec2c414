/**
 * Fixtures shared by the tree tests: a small graph with attributes of most kinds, and a helper
 * that applies changes which must all apply. Test-only.
 */

import { expect } from "vitest";
import type { Change, NodeSnapshot } from "../protocol.js";
import type { ObjectTree, Step } from "../tree.js";

/** A graph `g` with nodes `n1` (attributes of most kinds) and `n2`. */
export function graphDoc(): NodeSnapshot {
  return {
    id: "root",
    type: "Root",
    children: [
      {
        id: "g",
        type: "Graph",
        attrs: { name: "main" },
        children: [
          { id: "n1", type: "Node", attrs: { title: "one", pos: { x: 1, y: 2 }, ports: ["in", "out"], tags: [false, 3, "a"], count: 1, link: "n2" } },
          { id: "n2", type: "Node", attrs: { title: "two" } },
        ],
      },
    ],
  };
}

/** Applies `changes` (all must apply) and returns the steps. */
export function applyAllOk(tree: ObjectTree, changes: Change[]): Step[] {
  const steps: Step[] = [];
  const failed = tree.applyAll(changes, steps);
  expect(failed).toBeNull();
  return steps;
}
