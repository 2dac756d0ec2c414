import { describe, expect, it } from "vitest";
import { changesList, isByIndexListChange, staleListChange, staleListReason } from "./list-stale.js";
import type { StaleList } from "./list-stale.js";
import type { Change } from "./protocol.js";

const ME = "c1";
const OTHER = "c2";

const remove0: Change = { op: "list_remove", obj: "n", attr: "ports", index: 0 };
const byIndex: Record<string, Change> = {
  "list_insert at an index": { op: "list_insert", obj: "n", attr: "ports", index: 1, value: "x" },
  list_remove: remove0,
  list_move: { op: "list_move", obj: "n", attr: "ports", from: 0, to: 2 },
  list_set: { op: "list_set", obj: "n", attr: "ports", index: 1, value: "x" },
};

interface Row {
  readonly name: string;
  /** The pending action's changes. */
  readonly action: Change[];
  /** Its base (sent) or the version it was made on (unsent). */
  readonly base: number;
  readonly update: { v: number; origin: string; changes: Change[] };
  readonly me?: string | null;
  /** `null`: not stale; otherwise the list and the change index to blame. */
  readonly stale: Omit<StaleList, "changed"> | null;
}

const at = (change: number): Omit<StaleList, "changed"> => ({ obj: "n", attr: "ports", change });

const rows: Row[] = [
  // Every change by index is stale after another client's change to the list.
  ...Object.entries(byIndex).map(([name, c]): Row => ({
    name: `${name} after another client's list_remove`,
    action: [c],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [remove0] },
    stale: at(0),
  })),
  // Every kind of change to the list by someone else makes it stale.
  ...Object.entries(byIndex).map(([name, c]): Row => ({
    name: `list_remove after another client's ${name}`,
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [c] },
    stale: at(0),
  })),
  {
    // An append names no position: the server never refuses it as stale.
    name: "an append (list_insert without index) after another client's list_remove",
    action: [{ op: "list_insert", obj: "n", attr: "ports", value: "x" }],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [remove0] },
    stale: null,
  },
  {
    name: "list_remove after another client's append",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "list_insert", obj: "n", attr: "ports", index: 3, value: "x" }] },
    stale: at(0),
  },
  {
    name: "after a whole-list set (an array value) by another client",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "set", obj: "n", attr: "ports", value: ["a"] }] },
    stale: at(0),
  },
  {
    name: "after server code's change (origin server)",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: "server", changes: [{ op: "list_insert", obj: "n", attr: "ports", index: 0, value: "s" }] },
    stale: at(0),
  },
  {
    name: "a ref_list cleared by another client's delete (its list_remove steps)",
    action: [{ op: "list_move", obj: "n", attr: "links", from: 1, to: 0 }],
    base: 4,
    update: {
      v: 5,
      origin: OTHER,
      changes: [
        { op: "delete", id: "t" },
        { op: "list_remove", obj: "n", attr: "links", index: 1 },
      ],
    },
    stale: { obj: "n", attr: "links", change: 0 },
  },
  {
    name: "the first change by index to the list is to blame",
    action: [
      { op: "dict_set", obj: "n", attr: "pos", key: "x", value: 1 },
      { op: "set", obj: "n", attr: "ports", value: ["a", "b"] },
      { op: "list_set", obj: "n", attr: "ports", index: 0, value: "A" },
      remove0,
    ],
    base: 4,
    update: { v: 9, origin: OTHER, changes: [remove0] },
    stale: at(2),
  },
  {
    name: "before the welcome (no client id yet) every origin is someone else",
    action: [remove0],
    base: 0,
    me: null,
    update: { v: 1, origin: ME, changes: [remove0] },
    stale: at(0),
  },
  // Never stale:
  {
    name: "the client's own earlier change",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: ME, changes: [remove0] },
    stale: null,
  },
  {
    name: "an update at the base",
    action: [remove0],
    base: 5,
    update: { v: 5, origin: OTHER, changes: [remove0] },
    stale: null,
  },
  {
    name: "an update below the base",
    action: [remove0],
    base: 7,
    update: { v: 5, origin: OTHER, changes: [remove0] },
    stale: null,
  },
  {
    name: "a change to another attribute of the object",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "list_remove", obj: "n", attr: "tags", index: 0 }] },
    stale: null,
  },
  {
    name: "a change to the same attribute of another object",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "list_remove", obj: "m", attr: "ports", index: 0 }] },
    stale: null,
  },
  {
    name: "a set of the attribute to a non-array value",
    action: [remove0],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "set", obj: "n", attr: "ports", value: null }] },
    stale: null,
  },
  {
    name: "dict and set ops in the update (not list changes)",
    action: [remove0],
    base: 4,
    update: {
      v: 5,
      origin: OTHER,
      changes: [
        { op: "dict_set", obj: "n", attr: "ports", key: "k", value: 1 },
        { op: "dict_remove", obj: "n", attr: "ports", key: "k" },
        { op: "set_add", obj: "n", attr: "ports", value: "x" },
        { op: "set_remove", obj: "n", attr: "ports", value: "x" },
      ],
    },
    stale: null,
  },
  {
    name: "a pending whole-list set, dict ops and set ops (nothing by index)",
    action: [
      { op: "set", obj: "n", attr: "ports", value: ["mine"] },
      { op: "dict_set", obj: "n", attr: "pos", key: "x", value: 1 },
      { op: "dict_remove", obj: "n", attr: "pos", key: "y" },
      { op: "set_add", obj: "n", attr: "labels", value: "red" },
      { op: "set_remove", obj: "n", attr: "labels", value: "blue" },
      { op: "set", obj: "n", attr: "title", value: "t" },
    ],
    base: 4,
    update: {
      v: 5,
      origin: OTHER,
      changes: [
        remove0,
        { op: "set", obj: "n", attr: "ports", value: [] },
        { op: "list_set", obj: "n", attr: "pos", index: 0, value: 1 },
        { op: "list_remove", obj: "n", attr: "labels", index: 0 },
      ],
    },
    stale: null,
  },
  {
    name: "text edits and emits",
    action: [
      { op: "text_insert", obj: "n", attr: "title", pos: 0, text: "x" },
      { op: "emit", obj: "n", attr: "ping" },
    ],
    base: 4,
    update: { v: 5, origin: OTHER, changes: [{ op: "list_remove", obj: "n", attr: "title", index: 0 }] },
    stale: null,
  },
];

describe("staleListChange (the list_base_stale rule)", () => {
  it.each(rows)("$name", (row) => {
    const got = staleListChange({ changes: row.action, base: row.base }, row.update, row.me === undefined ? ME : row.me);
    expect(got).toEqual(row.stale === null ? null : { ...row.stale, changed: row.update.v });
  });

  it("classifies changes: by index, and what counts as a change of a list", () => {
    const ops: [Change, boolean, boolean][] = [
      [byIndex.list_remove as Change, true, true],
      [{ op: "list_insert", obj: "n", attr: "ports", index: 0, value: 1 }, true, true],
      // An append names no position: never stale, but it still changes the list for others.
      [{ op: "list_insert", obj: "n", attr: "ports", value: 1 }, false, true],
      [{ op: "set", obj: "n", attr: "ports", value: [1] }, false, true],
      [{ op: "set", obj: "n", attr: "ports", value: "s" }, false, false],
      [{ op: "dict_set", obj: "n", attr: "ports", key: "k", value: 1 }, false, false],
      [{ op: "set_add", obj: "n", attr: "ports", value: 1 }, false, false],
      [{ op: "delete", id: "n" }, false, false],
    ];
    for (const [c, indexed, changes] of ops) {
      expect(isByIndexListChange(c), JSON.stringify(c)).toBe(indexed);
      expect(changesList(c, "n", "ports"), JSON.stringify(c)).toBe(changes);
      expect(changesList(c, "n", "other"), JSON.stringify(c)).toBe(false);
    }
  });

  it("says in its reason that the list changed first", () => {
    expect(staleListReason({ obj: "n", attr: "ports", change: 0, changed: 5 })).toMatch(/^n\.ports: the list changed first \(version 5/);
  });
});
