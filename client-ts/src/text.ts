/**
 * Text edits in UTF-16 code units (JavaScript string indexes) and their transform, the same
 * rules as the server's `src/model/text.rs`, so that a client predicts exactly what the server
 * will apply.
 *
 * - Inserts at one position are ordered by the actors' tie keys (the server's is `""`, a
 *   client's is its id; the smaller plain string goes first), never by arrival.
 * - A delete that starts where a concurrent insert lands moves after the inserted text; a delete
 *   around a concurrent insert keeps the inserted text (it splits in two).
 * - Overlapping concurrent deletes remove each character once.
 *
 * Pure functions, no state.
 */

/** One text edit on one string attribute. */
export type TextEdit =
  | { readonly kind: "insert"; readonly pos: number; readonly text: string }
  | { readonly kind: "delete"; readonly pos: number; readonly len: number };

/** An insert of `text` at UTF-16 position `pos`. */
export function insert(pos: number, text: string): TextEdit {
  return { kind: "insert", pos, text };
}

/** A delete of `len` UTF-16 units at `pos`. */
export function del(pos: number, len: number): TextEdit {
  return { kind: "delete", pos, len };
}

/** Whether UTF-16 position `pos` of `s` falls between the two halves of a surrogate pair. */
export function splitsCharacter(s: string, pos: number): boolean {
  if (pos <= 0 || pos >= s.length) return false;
  const before = s.charCodeAt(pos - 1);
  const after = s.charCodeAt(pos);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}

/** Why an edit does not apply to a string (the server's reject codes). */
export type TextEditError = "out_of_range" | "splits_character";

/** Checks that `edit` applies to `s`: positions in range and on character boundaries. */
export function checkEdit(s: string, edit: TextEdit): TextEditError | null {
  const end = edit.kind === "insert" ? edit.pos : edit.pos + edit.len;
  if (!Number.isInteger(edit.pos) || edit.pos < 0 || end > s.length) return "out_of_range";
  if (splitsCharacter(s, edit.pos) || splitsCharacter(s, end)) return "splits_character";
  return null;
}

/** Applies `edit` to `s`; `null` if a position is out of range or splits a character. */
export function applyEdit(s: string, edit: TextEdit): string | null {
  if (checkEdit(s, edit) !== null) return null;
  return edit.kind === "insert"
    ? s.slice(0, edit.pos) + edit.text + s.slice(edit.pos)
    : s.slice(0, edit.pos) + s.slice(edit.pos + edit.len);
}

/** Applies `edits` in order; `null` if one does not apply. */
export function applyEdits(s: string, edits: readonly TextEdit[]): string | null {
  let out: string | null = s;
  for (const e of edits) {
    out = applyEdit(out, e);
    if (out === null) return null;
  }
  return out;
}

/** Where position `p` lands after `other` was applied; `beforeOnTie` keeps `p` before an
 * insert at the same position. */
function mapPos(p: number, other: TextEdit, beforeOnTie: boolean): number {
  if (other.kind === "insert") {
    return p < other.pos || (p === other.pos && beforeOnTie) ? p : p + other.text.length;
  }
  const end = other.pos + other.len;
  if (p <= other.pos) return p;
  if (p >= end) return p - other.len;
  return other.pos;
}

/**
 * Rewrites `x` to apply after `y`, both made on the same text. `xFirst` decides inserts at one
 * position: `true` puts `x`'s text first. The result is a sequence to apply in order (a delete
 * around an inserted text splits in two); it may be empty.
 */
export function transformOne(x: TextEdit, y: TextEdit, xFirst: boolean): TextEdit[] {
  if (x.kind === "insert") return [insert(mapPos(x.pos, y, xFirst), x.text)];
  const end = x.pos + x.len;
  if (y.kind === "insert") {
    if (y.pos > x.pos && y.pos < end) {
      // The insert lands inside the deleted range: delete around it, keep it.
      return [del(x.pos, y.pos - x.pos), del(x.pos + y.text.length, end - y.pos)];
    }
    // An insert exactly at the start goes before the deleted range, not into it.
    return [del(mapPos(x.pos, y, false), x.len)];
  }
  const start = mapPos(x.pos, y, true);
  const newEnd = mapPos(end, y, true);
  return newEnd > start ? [del(start, newEnd - start)] : [];
}

/**
 * Transforms two concurrent sequences made on the same text: returns `[a2, b2]` such that
 * applying `a` then `b2` equals applying `b` then `a2`. `aFirst` orders same-position inserts.
 * Same recursion as the server's `transform_seqs`; depth is bounded by the sequence lengths.
 */
export function transformSeqs(
  a: readonly TextEdit[],
  b: readonly TextEdit[],
  aFirst: boolean,
): [TextEdit[], TextEdit[]] {
  if (a.length === 0 || b.length === 0) return [a.slice(), b.slice()];
  const [x, ...aRest] = a as [TextEdit, ...TextEdit[]];
  const [y, ...bRest] = b as [TextEdit, ...TextEdit[]];
  if (aRest.length === 0 && bRest.length === 0) {
    return [transformOne(x, y, aFirst), transformOne(y, x, !aFirst)];
  }
  if (aRest.length === 0) {
    const [a1, y2] = transformSeqs(a, [y], aFirst);
    const [a2, rest2] = transformSeqs(a1, bRest, aFirst);
    return [a2, [...y2, ...rest2]];
  }
  const [x2, b1] = transformSeqs([x], b, aFirst);
  const [rest2, b2] = transformSeqs(aRest, b1, aFirst);
  return [[...x2, ...rest2], b2];
}

/** Whether an actor with tie key `mine` goes first, at one position, before `theirs`. */
export function goesFirst(mine: string, theirs: string): boolean {
  return mine < theirs;
}

/**
 * The edits that undo `edits` made on `before` (in reverse order, deletes restoring the text
 * they removed); `null` if `edits` do not apply to `before`.
 */
export function invertEdits(before: string, edits: readonly TextEdit[]): TextEdit[] | null {
  const out: TextEdit[] = [];
  let s = before;
  for (const e of edits) {
    const next = applyEdit(s, e);
    if (next === null) return null;
    out.push(e.kind === "insert" ? del(e.pos, e.text.length) : insert(e.pos, s.slice(e.pos, e.pos + e.len)));
    s = next;
  }
  return out.reverse();
}

/**
 * Merges adjacent edits into fewer ones with the same effect: typing (an insert right after the
 * previous one), backspace and forward delete. Transforming the merged sequence gives the same
 * text as transforming the original.
 */
export function coalesce(edits: readonly TextEdit[]): TextEdit[] {
  const out: TextEdit[] = [];
  for (const e of edits) {
    const last = out[out.length - 1];
    if (last !== undefined) {
      if (last.kind === "insert" && e.kind === "insert" && e.pos === last.pos + last.text.length) {
        out[out.length - 1] = insert(last.pos, last.text + e.text);
        continue;
      }
      if (last.kind === "delete" && e.kind === "delete") {
        if (e.pos === last.pos) {
          out[out.length - 1] = del(last.pos, last.len + e.len);
          continue;
        }
        if (e.pos + e.len === last.pos) {
          out[out.length - 1] = del(e.pos, last.len + e.len);
          continue;
        }
      }
    }
    if (e.kind === "insert" && e.text.length === 0) continue;
    if (e.kind === "delete" && e.len === 0) continue;
    out.push(e);
  }
  return out;
}

/**
 * The edits (at most a delete then an insert) that turn `before` into `after`, never splitting a
 * surrogate pair. `caret`, the caret position in `after` right after the user's edit, picks the
 * intended place when the change is ambiguous (typing "a" into "aa").
 */
export function diffText(before: string, after: string, caret?: number): TextEdit[] {
  if (before === after) return [];
  const maxCommon = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < maxCommon && before.charCodeAt(prefix) === after.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix < maxCommon - prefix &&
    before.charCodeAt(before.length - 1 - suffix) === after.charCodeAt(after.length - 1 - suffix)
  ) {
    suffix++;
  }
  if (caret !== undefined && caret >= 0 && caret <= after.length) {
    // Prefer the change region that ends at the caret when the strings allow it.
    const tail = after.length - caret;
    if (tail <= before.length && before.endsWith(after.slice(caret))) {
      const limit = Math.min(caret, before.length - tail);
      let p = 0;
      while (p < limit && before.charCodeAt(p) === after.charCodeAt(p)) p++;
      prefix = p;
      suffix = tail;
    }
  }
  // Never cut a surrogate pair: widen the changed region to whole characters.
  while (prefix > 0 && (splitsCharacter(before, prefix) || splitsCharacter(after, prefix))) prefix--;
  while (
    suffix > 0 &&
    (splitsCharacter(before, before.length - suffix) || splitsCharacter(after, after.length - suffix))
  ) {
    suffix--;
  }
  const out: TextEdit[] = [];
  const delLen = before.length - suffix - prefix;
  if (delLen > 0) out.push(del(prefix, delLen));
  const ins = after.slice(prefix, after.length - suffix);
  if (ins.length > 0) out.push(insert(prefix, ins));
  return out;
}
