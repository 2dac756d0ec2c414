import { describe, expect, it } from "vitest";
import { loadCorpus } from "./testing/corpus.js";
import { Rng } from "./testing/random.js";
import type { TextEdit, TextEditError } from "./text.js";
import {
  applyEdit,
  applyEdits,
  checkEdit,
  coalesce,
  del,
  diffText,
  goesFirst,
  insert,
  invertEdits,
  splitsCharacter,
  transformOne,
  transformSeqs,
} from "./text.js";

const SMILE = "\u{1F600}"; // 😀, two UTF-16 units

describe("UTF-16 positions", () => {
  it("count astral characters twice and refuse splitting them", () => {
    const s = `a${SMILE}é`;
    expect(s.length).toBe(4);
    expect(splitsCharacter(s, 1)).toBe(false);
    expect(splitsCharacter(s, 2)).toBe(true);
    expect(splitsCharacter(s, 3)).toBe(false);
    expect(checkEdit(s, insert(2, "x"))).toBe("splits_character");
    expect(checkEdit(s, insert(5, "x"))).toBe("out_of_range");
    expect(checkEdit(s, del(0, 2))).toBe("splits_character");
    expect(checkEdit(s, del(1, 2))).toBeNull();
  });

  it("insert and delete around an emoji", () => {
    expect(applyEdit(`a${SMILE}b`, insert(3, "!"))).toBe(`a${SMILE}!b`);
    expect(applyEdit(`a${SMILE}b`, del(1, 2))).toBe("ab");
    expect(applyEdit(`a${SMILE}b`, del(1, 1))).toBeNull();
    expect(applyEdit("ab", del(1, 2))).toBeNull();
    expect(applyEdit("ab", insert(-1, "x"))).toBeNull();
  });
});

describe("transformOne (the rules of src/model/text.rs)", () => {
  it("orders same-position inserts by tie, both orders giving the same text", () => {
    const [a, b] = [insert(1, "X"), insert(1, "Y")];
    const left = applyEdits("ab", [a, ...transformOne(b, a, false)]);
    const right = applyEdits("ab", [b, ...transformOne(a, b, true)]);
    expect(left).toBe("aXYb");
    expect(right).toBe(left);
  });

  it("puts the smaller actor id first, the server (\"\") before every client", () => {
    expect(goesFirst("", "c1")).toBe(true);
    expect(goesFirst("c1", "c2")).toBe(true);
    expect(goesFirst("c2", "c10")).toBe(false); // plain string order, not numeric
    expect(goesFirst("c1", "c1")).toBe(false);
  });

  it("shifts a delete that starts where a concurrent insert lands after the insert", () => {
    expect(transformOne(del(2, 2), insert(2, "XY"), true)).toEqual([del(4, 2)]);
    expect(applyEdits("abcdef", [insert(2, "XY"), del(4, 2)])).toBe("abXYef");
  });

  it("splits a delete around a concurrent insert, keeping the insert", () => {
    const d2 = transformOne(del(0, 4), insert(2, "XY"), true);
    expect(d2).toEqual([del(0, 2), del(2, 2)]);
    expect(applyEdits("abcdef", [insert(2, "XY"), ...d2])).toBe("XYef");
  });

  it("removes each character once when deletes overlap", () => {
    const [a, b] = [del(1, 3), del(2, 3)]; // "abcdef": a removes bcd, b removes cde
    const [a2, b2] = transformSeqs([a], [b], true);
    expect(applyEdits("abcdef", [a, ...b2])).toBe("af");
    expect(applyEdits("abcdef", [b, ...a2])).toBe("af");
    expect(transformOne(del(1, 2), del(0, 5), true)).toEqual([]);
  });

  it("moves an insert inside a deleted range to the delete's start", () => {
    expect(transformOne(insert(3, "X"), del(1, 4), true)).toEqual([insert(1, "X")]);
    expect(transformOne(insert(6, "X"), del(1, 4), true)).toEqual([insert(2, "X")]);
  });

  it("counts an emoji insert as two units when shifting", () => {
    expect(transformOne(insert(3, "x"), insert(1, SMILE), true)).toEqual([insert(5, "x")]);
    const base = `ab${SMILE}c`;
    const [a, b] = [insert(2, SMILE), del(2, 2)];
    const [a2, b2] = transformSeqs([a], [b], false);
    expect(applyEdits(base, [a, ...b2])).toBe(applyEdits(base, [b, ...a2]));
    expect(applyEdits(base, [a, ...b2])).toBe(`ab${SMILE}c`);
  });
});

describe("transformSeqs", () => {
  it("treats a replace (delete + insert) as a sequence", () => {
    const mine = [del(1, 3), insert(1, "XYZ")]; // "abcdef" -> "aXYZef"
    const theirs = [insert(6, "!")];
    const [m2, t2] = transformSeqs(mine, theirs, true);
    expect(applyEdits("abcdef", [...mine, ...t2])).toBe("aXYZef!");
    expect(applyEdits("abcdef", [...theirs, ...m2])).toBe("aXYZef!");
  });

  /** Folds random numbers into an edit valid on `s` (positions on character boundaries). */
  function randomEdit(rng: Rng, s: string): TextEdit {
    const bounds = [0];
    for (let i = 0; i < s.length; ) {
      i += splitsCharacter(s, i + 1) ? 2 : 1;
      bounds.push(i);
    }
    const i = rng.int(bounds.length);
    if (rng.chance(0.5) || bounds.length === 1) {
      const len = rng.int(4);
      let t = "";
      for (let k = 0; k < len; k++) t += rng.pick(["a", "b", "é", SMILE]);
      return insert(bounds[i] as number, t);
    }
    const j = Math.min(i + rng.int(5), bounds.length - 1);
    return del(bounds[i] as number, (bounds[j] as number) - (bounds[i] as number));
  }

  function randomSeq(rng: Rng, start: string): { edits: TextEdit[]; end: string } {
    const edits: TextEdit[] = [];
    let s = start;
    const n = rng.int(5);
    for (let k = 0; k < n; k++) {
      const e = randomEdit(rng, s);
      const next = applyEdit(s, e);
      expect(next).not.toBeNull();
      s = next as string;
      edits.push(e);
    }
    return { edits, end: s };
  }

  it("converges in either order on random concurrent sequences (seeded)", () => {
    const cases = 3000;
    for (let seed = 1; seed <= cases; seed++) {
      const rng = new Rng(seed);
      let start = "";
      for (let k = rng.int(7); k > 0; k--) start += rng.pick(["a", "b", "c", SMILE]);
      const a = randomSeq(rng, start);
      const b = randomSeq(rng, start);
      const aFirst = rng.chance(0.5);
      const [a2, b2] = transformSeqs(a.edits, b.edits, aFirst);
      const left = applyEdits(a.end, b2);
      const right = applyEdits(b.end, a2);
      expect(left, `seed ${seed}: b' applies after a`).not.toBeNull();
      expect(right, `seed ${seed}`).toBe(left);
    }
  });
});

describe("helpers", () => {
  it("inverts edits back to the original text", () => {
    const before = `ab${SMILE}cd`;
    const edits = [insert(0, "X"), del(3, 2), insert(4, "yz")];
    const after = applyEdits(before, edits) as string;
    const inverse = invertEdits(before, edits) as TextEdit[];
    expect(applyEdits(after, inverse)).toBe(before);
    expect(invertEdits("ab", [del(1, 5)])).toBeNull();
  });

  it("coalesces typing, backspace and forward delete without changing the result", () => {
    expect(coalesce([insert(2, "a"), insert(3, "b"), insert(4, "c")])).toEqual([insert(2, "abc")]);
    expect(coalesce([del(5, 1), del(4, 1), del(3, 1)])).toEqual([del(3, 3)]);
    expect(coalesce([del(3, 1), del(3, 1)])).toEqual([del(3, 2)]);
    const mixed = [insert(0, "ab"), del(1, 1), insert(5, "z"), insert(0, "")];
    expect(coalesce(mixed)).toEqual([insert(0, "ab"), del(1, 1), insert(5, "z")]);
    const rng = new Rng(7);
    for (let k = 0; k < 200; k++) {
      let s = "hello world";
      const edits: TextEdit[] = [];
      for (let n = 0; n < 6; n++) {
        const pos = rng.int(s.length + 1);
        const e = rng.chance(0.5) || pos === s.length ? insert(pos, "q") : del(pos, 1);
        s = applyEdit(s, e) as string;
        edits.push(e);
      }
      expect(applyEdits("hello world", coalesce(edits))).toBe(s);
    }
  });

  it("diffs texts into a delete and an insert, never splitting an emoji", () => {
    expect(diffText("hello", "hello")).toEqual([]);
    expect(diffText("hello", "help")).toEqual([del(3, 2), insert(3, "p")]);
    expect(diffText("ab", "aXb")).toEqual([insert(1, "X")]);
    // Two emoji sharing their high surrogate: the edit widens to whole characters.
    const grin = "\u{1F601}";
    const edits = diffText(`a${SMILE}`, `a${grin}`);
    expect(edits).toEqual([del(1, 2), insert(1, grin)]);
  });

  it("uses the caret to place an ambiguous insert", () => {
    expect(diffText("aa", "aaa")).toEqual([insert(2, "a")]);
    expect(diffText("aa", "aaa", 1)).toEqual([insert(0, "a")]);
    expect(diffText("aa", "aaa", 2)).toEqual([insert(1, "a")]);
    // A paste over a selection ending at the caret.
    expect(diffText("abcabc", "abXYbc", 4)).toEqual([del(2, 2), insert(2, "XY")]);
    expect(diffText("xx", "xYx", 2)).toEqual([insert(1, "Y")]);
    // A caret that does not fit is ignored.
    expect(diffText("abc", "abcd", 0)).toEqual([insert(3, "d")]);
  });
});

interface CorpusEdit {
  op: "insert" | "delete";
  pos: number;
  text?: string;
  len?: number;
}

interface TextCorpus {
  apply: { name: string; text: string; edit: CorpusEdit; result?: string; error?: TextEditError }[];
  transform: {
    name: string;
    text: string;
    a: CorpusEdit[];
    b: CorpusEdit[];
    a_first: boolean;
    a_after_b?: CorpusEdit[];
    b_after_a?: CorpusEdit[];
    result: string;
  }[];
}

const edit = (e: CorpusEdit): TextEdit => (e.op === "insert" ? insert(e.pos, e.text ?? "") : del(e.pos, e.len ?? 0));

describe("the shared cases of tests/corpus/text.json (the Rust model runs them too)", () => {
  it("apply each edit, or refuse it with the case's code", async () => {
    const corpus = (await loadCorpus("text.json")) as TextCorpus;
    expect(corpus.apply.length).toBeGreaterThanOrEqual(5);
    for (const c of corpus.apply) {
      const e = edit(c.edit);
      expect(checkEdit(c.text, e), c.name).toBe(c.error ?? null);
      expect(applyEdit(c.text, e), c.name).toBe(c.result ?? null);
    }
  });

  it("transform concurrent edits so that both orders give the case's text", async () => {
    const corpus = (await loadCorpus("text.json")) as TextCorpus;
    expect(corpus.transform.length).toBeGreaterThanOrEqual(5);
    for (const c of corpus.transform) {
      const [a, b] = [c.a.map(edit), c.b.map(edit)];
      const [aAfterB, bAfterA] = transformSeqs(a, b, c.a_first);
      if (c.a_after_b !== undefined && c.b_after_a !== undefined) {
        expect(aAfterB, `${c.name}: a after b`).toEqual(c.a_after_b.map(edit));
        expect(bAfterA, `${c.name}: b after a`).toEqual(c.b_after_a.map(edit));
      }
      const bThenA = applyEdits(c.text, b);
      const aThenB = applyEdits(c.text, a);
      expect(bThenA === null ? null : applyEdits(bThenA, aAfterB), `${c.name}: b then a`).toBe(c.result);
      expect(aThenB === null ? null : applyEdits(aThenB, bAfterA), `${c.name}: a then b`).toBe(c.result);
    }
  });
});
