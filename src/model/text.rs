//! Text positions in UTF-16 code units and the transform of concurrent text edits.
//!
//! Browsers count carets in UTF-16 code units, so the wire does too; strings are stored as
//! UTF-8 and positions are converted at the edge of each edit. A position inside a surrogate
//! pair is refused.
//!
//! The transform is the classic one for insert/delete on a sequence: [`transform_one`] rewrites
//! an edit to apply after another made on the same text (and [`transform_seqs`] two sequences
//! each after the other), so that both orders give the same text (convergence). Inserts at the same position are ordered by the
//! actors' tie keys, never by arrival, which is what makes both orders agree. A delete that
//! overlaps a concurrent delete removes each character once; a delete around a concurrent insert
//! keeps the inserted text (and so becomes two deletes).

use compact_str::CompactString;
use smallvec::{smallvec, SmallVec};

/// Length of `s` in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    // ASCII (and any 1-3 byte UTF-8 character) is one unit; 4-byte characters are two.
    s.chars().map(char::len_utf16).sum()
}

/// The byte offset in `s` of UTF-16 position `pos`, or `None` when `pos` is past the end or
/// inside a surrogate pair.
pub fn byte_offset(s: &str, pos: usize) -> Option<usize> {
    if s.is_ascii() {
        return (pos <= s.len()).then_some(pos);
    }
    let mut units = 0usize;
    for (byte, c) in s.char_indices() {
        if units == pos {
            return Some(byte);
        }
        units += c.len_utf16();
        if units > pos {
            return None;
        }
    }
    (units == pos).then_some(s.len())
}

/// One text edit on one string topic, positions in UTF-16 code units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextEdit {
    /// Insert `text` at `pos`.
    Insert {
        /// Where.
        pos: u32,
        /// What.
        text: CompactString,
    },
    /// Delete `len` units from `pos`.
    Delete {
        /// Where.
        pos: u32,
        /// How many UTF-16 units.
        len: u32,
    },
}

impl TextEdit {
    fn inserted_len(text: &str) -> u32 {
        u32::try_from(utf16_len(text)).unwrap_or(u32::MAX)
    }

    /// Applies the edit to `s`; `None` if a position is out of range or splits a character.
    pub fn apply(&self, s: &str) -> Option<String> {
        match self {
            TextEdit::Insert { pos, text } => {
                let at = byte_offset(s, *pos as usize)?;
                let mut out = String::with_capacity(s.len() + text.len());
                out.push_str(&s[..at]);
                out.push_str(text);
                out.push_str(&s[at..]);
                Some(out)
            }
            TextEdit::Delete { pos, len } => {
                let from = byte_offset(s, *pos as usize)?;
                let to = byte_offset(s, (*pos as usize).checked_add(*len as usize)?)?;
                let mut out = String::with_capacity(s.len() - (to - from));
                out.push_str(&s[..from]);
                out.push_str(&s[to..]);
                Some(out)
            }
        }
    }
}

/// Where position `p` lands after `other` was applied. `before_on_tie` decides an insert at the
/// same position: `true` keeps `p` before the inserted text.
fn map_pos(p: u32, other: &TextEdit, before_on_tie: bool) -> u32 {
    match other {
        TextEdit::Insert { pos, text } => {
            if p < *pos || (p == *pos && before_on_tie) {
                p
            } else {
                p.saturating_add(TextEdit::inserted_len(text))
            }
        }
        TextEdit::Delete { pos, len } => {
            let end = pos.saturating_add(*len);
            if p <= *pos {
                p
            } else if p >= end {
                p - len
            } else {
                *pos
            }
        }
    }
}

/// Rewrites `x` to apply after `y`, where both were made on the same text. `x_first` decides
/// inserts at one position: `true` puts `x`'s text first. The result is a sequence (a delete
/// around an inserted text splits in two) to apply in order; it may be empty.
pub fn transform_one(x: &TextEdit, y: &TextEdit, x_first: bool) -> SmallVec<[TextEdit; 2]> {
    match (x, y) {
        (TextEdit::Insert { pos, text }, _) => {
            smallvec![TextEdit::Insert { pos: map_pos(*pos, y, x_first), text: text.clone() }]
        }
        (TextEdit::Delete { pos, len }, TextEdit::Insert { pos: ip, text }) => {
            let end = pos.saturating_add(*len);
            if *ip > *pos && *ip < end {
                // The insert lands inside the deleted range: delete around it, keep it.
                let before = ip - pos;
                let after = end - ip;
                let skip = TextEdit::inserted_len(text);
                smallvec![
                    TextEdit::Delete { pos: *pos, len: before },
                    TextEdit::Delete { pos: pos.saturating_add(skip), len: after },
                ]
            } else {
                // An insert exactly at the start goes before the deleted range, not into it.
                smallvec![TextEdit::Delete { pos: map_pos(*pos, y, false), len: *len }]
            }
        }
        (TextEdit::Delete { pos, len }, TextEdit::Delete { .. }) => {
            let start = map_pos(*pos, y, true);
            let end = map_pos(pos.saturating_add(*len), y, true);
            if end > start {
                smallvec![TextEdit::Delete { pos: start, len: end - start }]
            } else {
                SmallVec::new()
            }
        }
    }
}

/// Rewrites `o`, made right after `e`, as if `e` had not happened: the reverse of
/// [`transform_one`]. `None` when `o` depends on `e`: it touched text `e` inserted, or deleted
/// across the place `e` deleted from. An insert at the exact place of `e` reads as before it.
pub fn exclude(o: &TextEdit, e: &TextEdit) -> Option<TextEdit> {
    match (e, o) {
        (TextEdit::Insert { pos: p, text }, TextEdit::Insert { pos: q, text: t }) => {
            let l = TextEdit::inserted_len(text);
            let q = if *q <= *p {
                *q
            } else if *q >= p + l {
                q - l
            } else {
                return None;
            };
            Some(TextEdit::Insert { pos: q, text: t.clone() })
        }
        (TextEdit::Insert { pos: p, text }, TextEdit::Delete { pos: q, len: m }) => {
            let l = TextEdit::inserted_len(text);
            let q = if q + m <= *p {
                *q
            } else if *q >= p + l {
                q - l
            } else {
                return None;
            };
            Some(TextEdit::Delete { pos: q, len: *m })
        }
        (TextEdit::Delete { pos: p, len: l }, TextEdit::Insert { pos: q, text: t }) => {
            let q = if *q <= *p { *q } else { q + l };
            Some(TextEdit::Insert { pos: q, text: t.clone() })
        }
        (TextEdit::Delete { pos: p, len: l }, TextEdit::Delete { pos: q, len: m }) => {
            let q = if q + m <= *p {
                *q
            } else if *q >= *p {
                q + l
            } else {
                return None;
            };
            Some(TextEdit::Delete { pos: q, len: *m })
        }
    }
}

/// Transforms two concurrent sequences made on the same text: returns `(a', b')` such that
/// applying `a` then `b'` equals applying `b` then `a'`. `a_first` orders same-position inserts.
pub fn transform_seqs(a: &[TextEdit], b: &[TextEdit], a_first: bool) -> (Vec<TextEdit>, Vec<TextEdit>) {
    match (a, b) {
        ([], _) | (_, []) => (a.to_vec(), b.to_vec()),
        ([x], [y]) => (transform_one(x, y, a_first).into_vec(), transform_one(y, x, !a_first).into_vec()),
        ([_], [y, rest @ ..]) => {
            let (a1, y2) = transform_seqs(a, std::slice::from_ref(y), a_first);
            let (a2, rest2) = transform_seqs(&a1, rest, a_first);
            let mut out = y2;
            out.extend(rest2);
            (a2, out)
        }
        ([x, rest @ ..], _) => {
            let (x2, b1) = transform_seqs(std::slice::from_ref(x), b, a_first);
            let (rest2, b2) = transform_seqs(rest, &b1, a_first);
            let mut out = x2;
            out.extend(rest2);
            (out, b2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shared cases of `tests/corpus/text.json` (also run by `client-ts/src/text.test.ts`).
    mod corpus {
        use super::super::*;
        use serde_json::Value as Json;

        fn edit(e: &Json) -> TextEdit {
            let pos = e["pos"].as_u64().expect("a position") as u32;
            match e["op"].as_str() {
                Some("insert") => TextEdit::Insert { pos, text: e["text"].as_str().expect("text").into() },
                Some("delete") => TextEdit::Delete { pos, len: e["len"].as_u64().expect("a length") as u32 },
                other => panic!("an edit is an insert or a delete, not {other:?}"),
            }
        }

        fn edits(v: &Json) -> Vec<TextEdit> {
            v.as_array().expect("edits").iter().map(edit).collect()
        }

        fn apply_all(text: &str, edits: &[TextEdit]) -> Option<String> {
            edits.iter().try_fold(text.to_owned(), |s, e| e.apply(&s))
        }

        fn corpus() -> Json {
            serde_json::from_str(include_str!("../../tests/corpus/text.json")).expect("the corpus is JSON")
        }

        #[test]
        fn edits_apply_as_the_shared_cases_say() {
            let corpus = corpus();
            let cases = corpus["apply"].as_array().expect("apply cases");
            assert!(cases.len() >= 5);
            for c in cases {
                let (name, text) = (c["name"].as_str().expect("name"), c["text"].as_str().expect("text"));
                let got = edit(&c["edit"]).apply(text);
                match c["result"].as_str() {
                    Some(want) => assert_eq!(got.as_deref(), Some(want), "{name}"),
                    None => assert_eq!(got, None, "{name}: refused ({})", c["error"]),
                }
            }
        }

        #[test]
        fn concurrent_edits_transform_as_the_shared_cases_say() {
            let corpus = corpus();
            let cases = corpus["transform"].as_array().expect("transform cases");
            assert!(cases.len() >= 5);
            for c in cases {
                let (name, text) = (c["name"].as_str().expect("name"), c["text"].as_str().expect("text"));
                let (a, b) = (edits(&c["a"]), edits(&c["b"]));
                let a_first = c["a_first"].as_bool().expect("a_first");
                let (a_after_b, b_after_a) = transform_seqs(&a, &b, a_first);
                if c.get("a_after_b").is_some() {
                    assert_eq!(a_after_b, edits(&c["a_after_b"]), "{name}: a after b");
                    assert_eq!(b_after_a, edits(&c["b_after_a"]), "{name}: b after a");
                }
                let want = c["result"].as_str().expect("result");
                let one = apply_all(text, &b).and_then(|s| apply_all(&s, &a_after_b));
                let other = apply_all(text, &a).and_then(|s| apply_all(&s, &b_after_a));
                assert_eq!(one.as_deref(), Some(want), "{name}: b then a");
                assert_eq!(other.as_deref(), Some(want), "{name}: a then b");
            }
        }
    }

    fn ins(pos: u32, t: &str) -> TextEdit {
        TextEdit::Insert { pos, text: t.into() }
    }
    fn del(pos: u32, len: u32) -> TextEdit {
        TextEdit::Delete { pos, len }
    }
    fn apply_all(s: &str, edits: &[TextEdit]) -> Option<String> {
        edits.iter().try_fold(s.to_string(), |acc, e| e.apply(&acc))
    }

    #[test]
    fn utf16_positions_count_astral_characters_twice() {
        let s = "a😀é";
        assert_eq!(utf16_len(s), 4);
        assert_eq!(byte_offset(s, 0), Some(0));
        assert_eq!(byte_offset(s, 1), Some(1));
        assert_eq!(byte_offset(s, 2), None, "inside the surrogate pair");
        assert_eq!(byte_offset(s, 3), Some(5));
        assert_eq!(byte_offset(s, 4), Some(7));
        assert_eq!(byte_offset(s, 5), None);
    }

    #[test]
    fn insert_and_delete_around_emoji() {
        assert_eq!(ins(3, "!").apply("a😀b").as_deref(), Some("a😀!b"));
        assert_eq!(del(1, 2).apply("a😀b").as_deref(), Some("ab"));
        assert_eq!(del(1, 1).apply("a😀b"), None);
    }

    #[test]
    fn same_position_inserts_keep_both_in_tie_order() {
        let (a, b) = (ins(1, "X"), ins(1, "Y"));
        let left = apply_all("ab", &[a.clone(), transform_one(&b, &a, false)[0].clone()]);
        let right = apply_all("ab", &[b.clone(), transform_one(&a, &b, true)[0].clone()]);
        assert_eq!(left.as_deref(), Some("aXYb"));
        assert_eq!(left, right);
    }

    #[test]
    fn overlapping_deletes_remove_each_character_once() {
        let (a, b) = (del(1, 3), del(2, 3)); // "abcdef": a removes bcd, b removes cde
        let (a2, b2) = transform_seqs(std::slice::from_ref(&a), std::slice::from_ref(&b), true);
        assert_eq!(apply_all("abcdef", &[vec![a], b2].concat()).as_deref(), Some("af"));
        assert_eq!(apply_all("abcdef", &[vec![b], a2].concat()).as_deref(), Some("af"));
    }

    #[test]
    fn delete_around_concurrent_insert_keeps_the_insert() {
        let (d, i) = (del(0, 4), ins(2, "XY"));
        let d2 = transform_one(&d, &i, true);
        assert_eq!(apply_all("abcdef", &[vec![i], d2.into_vec()].concat()).as_deref(), Some("XYef"));
    }

    fn edit_strategy() -> impl Strategy<Value = (bool, u32, u32, String)> {
        (any::<bool>(), 0u32..12, 0u32..5, "[a-z😀é]{0,3}")
    }

    /// Folds random numbers into an edit that is valid on `s` (positions on char boundaries).
    fn make_valid(s: &str, (is_ins, p, l, t): (bool, u32, u32, String)) -> TextEdit {
        let bounds: Vec<u32> = std::iter::once(0)
            .chain(s.chars().scan(0u32, |acc, c| {
                *acc += c.len_utf16() as u32;
                Some(*acc)
            }))
            .collect();
        let i = p as usize % bounds.len();
        if is_ins || bounds.len() == 1 {
            ins(bounds[i], &t)
        } else {
            let j = (i + l as usize).min(bounds.len() - 1);
            del(bounds[i], bounds[j] - bounds[i])
        }
    }

    proptest! {
        #[test]
        fn concurrent_sequences_converge_in_either_order(
            start in "[a-c😀]{0,6}",
            ra in proptest::collection::vec(edit_strategy(), 0..4),
            rb in proptest::collection::vec(edit_strategy(), 0..4),
            a_first in any::<bool>(),
        ) {
            let mut a = Vec::new();
            let mut sa = start.clone();
            for r in ra { let e = make_valid(&sa, r); sa = e.apply(&sa).unwrap_or_default(); a.push(e); }
            let mut b = Vec::new();
            let mut sb = start.clone();
            for r in rb { let e = make_valid(&sb, r); sb = e.apply(&sb).unwrap_or_default(); b.push(e); }
            let (a2, b2) = transform_seqs(&a, &b, a_first);
            let left = apply_all(&sa, &b2);
            let right = apply_all(&sb, &a2);
            prop_assert!(left.is_some(), "b' applies after a");
            prop_assert_eq!(left, right);
        }
    }
}
