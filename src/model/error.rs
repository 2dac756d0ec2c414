//! Why the model refused something: [`ModelError`], one variant per cause, each with the object,
//! attribute, version or limit involved, and a stable machine-readable [`ModelError::code`].

use super::kind::TopicKind;
use compact_str::CompactString;

/// A change or transaction the model refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No object has this id (never existed, or deleted).
    #[error("object {id:?} does not exist")]
    NoSuchObject {
        /// The id asked for.
        id: CompactString,
    },
    /// The object's type has no attribute of this name.
    #[error("type {type_name} has no attribute {attr:?} (object {obj:?})")]
    NoSuchAttribute {
        /// Object id.
        obj: CompactString,
        /// Its type.
        type_name: CompactString,
        /// The attribute asked for.
        attr: CompactString,
    },
    /// No SObject type of this name is registered.
    #[error("no SObject type named {type_name:?} is registered")]
    NoSuchType {
        /// The type asked for.
        type_name: CompactString,
    },
    /// The change does not fit the attribute's kind (e.g. a text insert on a dict).
    #[error("{obj}.{attr} is a {kind} topic: {reason}")]
    WrongKind {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The attribute's kind.
        kind: TopicKind,
        /// What did not fit.
        reason: String,
    },
    /// An object with this id already exists.
    #[error("an object with id {id:?} already exists")]
    DuplicateId {
        /// The id.
        id: CompactString,
    },
    /// The id is malformed or not the actor's to make.
    #[error("bad object id {id:?}: {reason}")]
    BadId {
        /// The id.
        id: CompactString,
        /// Why.
        reason: &'static str,
    },
    /// An index or position is outside the list, children or text.
    #[error("{target}: index {index} is out of range (length {len})")]
    OutOfRange {
        /// What was indexed, e.g. `n1.ports` or `children of g1`.
        target: String,
        /// The index given.
        index: u64,
        /// The length it had to fit.
        len: u64,
    },
    /// A text position falls inside a surrogate pair (between the halves of an emoji).
    #[error("{obj}.{attr}: position {pos} splits a character")]
    SplitsCharacter {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The UTF-16 position.
        pos: u64,
    },
    /// A dict key that is not there.
    #[error("{obj}.{attr} has no key {key:?}")]
    NoSuchKey {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The key.
        key: CompactString,
    },
    /// A set element that is not there (remove) or already there (add).
    #[error("{obj}.{attr}: {reason}")]
    SetElement {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// What is wrong.
        reason: String,
    },
    /// Adding would overflow the integer.
    #[error("{obj}.{attr}: adding {delta} overflows")]
    Overflow {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The delta.
        delta: String,
    },
    /// A reference names an object that does not exist.
    #[error("{obj}.{attr} refers to {target:?}, which does not exist")]
    DanglingRef {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The missing target.
        target: CompactString,
    },
    /// A move would put an object inside itself.
    #[error("moving {id:?} under {parent:?} would make a cycle")]
    Cycle {
        /// The object moved.
        id: CompactString,
        /// The parent asked for (the object itself or one of its descendants).
        parent: CompactString,
    },
    /// The root is never deleted or moved.
    #[error("the root object cannot be {verb}")]
    RootImmutable {
        /// "deleted" or "moved".
        verb: &'static str,
    },
    /// The tree would get deeper than the limit.
    #[error("the tree would be {depth} levels deep; the limit is {limit}")]
    TooDeep {
        /// Depth it would reach.
        depth: usize,
        /// `ModelLimits::tree_depth_max`.
        limit: usize,
    },
    /// A transaction grew past the limit on changes (reactions included).
    #[error("the transaction has more than {limit} changes")]
    TooManyChanges {
        /// `ModelLimits::action_changes_max`.
        limit: usize,
    },
    /// Reactions triggered reactions deeper than the limit.
    #[error("reactions nested deeper than {limit}")]
    ReactionDepth {
        /// `ModelLimits::reaction_depth_max`.
        limit: usize,
    },
    /// A value is too large (string length, nesting).
    #[error("{what} is too large: {size} > {limit}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A validator of the type refused the new value.
    #[error("{obj}.{attr}: {reason}")]
    Invalid {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The validator's words.
        reason: String,
    },
    /// The permission hook refused the actor this change.
    #[error("not allowed to change {obj:?}: {reason}")]
    Denied {
        /// The object the change targets.
        obj: CompactString,
        /// The hook's words.
        reason: String,
    },
    /// The action's base version is ahead of the document.
    #[error("base version {base} is ahead of the document (version {version})")]
    BadBase {
        /// The base given.
        base: u64,
        /// The document's version.
        version: u64,
    },
    /// A text edit is based on a version older than the topic's kept history.
    #[error("{obj}.{attr}: text edit based on version {base}, but history only reaches back to version {floor}")]
    TextBaseTooOld {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The base given.
        base: u64,
        /// Oldest version whose successors are all kept.
        floor: u64,
    },
    /// A text edit is based on a version before the same client's own later text edit.
    #[error("{obj}.{attr}: text edit based on version {base}, before your own text edit at version {own}; send text edits to one attribute one action at a time")]
    TextBaseStale {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The base given.
        base: u64,
        /// Version of the client's own edit.
        own: u64,
    },
    /// A list change by index is based on a version before another client's (or server code's)
    /// change to that list: the index may name another element now.
    #[error("{obj}.{attr}: a change by index based on version {base}, before the list changed at version {changed}; base it on the list as it is now")]
    ListBaseStale {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The action's base.
        base: u64,
        /// A later change to the list by someone else.
        changed: u64,
    },
    /// A list change by index is based on a version older than the list's kept history.
    #[error("{obj}.{attr}: a change by index based on version {base}, older than the list's history (from {floor})")]
    ListBaseTooOld {
        /// Object id.
        obj: CompactString,
        /// Attribute name.
        attr: CompactString,
        /// The action's base.
        base: u64,
        /// Changes at or before this version are no longer known.
        floor: u64,
    },
    /// An action with no changes.
    #[error("the action has no changes")]
    EmptyAction,
    /// Nothing to undo or redo in this scope.
    #[error("nothing to {verb} for {scope}")]
    NothingToUndo {
        /// "undo" or "redo".
        verb: &'static str,
        /// The scope, e.g. `object "n1"` or `the whole document`.
        scope: String,
    },
    /// The state moved on since the step being undone, in a way that conflicts with undoing it.
    #[error("cannot {verb} version {version}: {reason}")]
    UndoConflict {
        /// "undo" or "redo".
        verb: &'static str,
        /// The version of the step.
        version: u64,
        /// What changed since.
        reason: String,
    },
    /// Server code refused: a hook of the application (a reaction, a build or delete hook, a
    /// `transact` closure, the room hook) returned this error with its own reason. Made with
    /// [`ModelError::hook`]; its wire code is `custom`.
    #[error("{reason}")]
    Hook {
        /// The hook's words.
        reason: String,
    },
}

impl ModelError {
    /// Every code [`ModelError::code`] can return, each with its meaning in one line, in the
    /// order of the variants: what `objectsync codegen protocol-ts` gives clients.
    pub const CODES: &'static [(&'static str, &'static str)] = &[
        ("no_such_object", "no object has this id (it never existed, or was deleted)"),
        ("no_such_attribute", "the object's type has no attribute of this name"),
        ("no_such_type", "no SObject type of this name is registered"),
        ("wrong_kind", "the change or value does not fit the attribute's kind"),
        ("duplicate_id", "an object with this id already exists"),
        ("bad_id", "the object id is malformed or not the actor's to make (it lacks the client's prefix)"),
        ("out_of_range", "an index or position is outside the list, children or text"),
        ("splits_character", "a text position falls between the halves of a surrogate pair"),
        ("no_such_key", "the dict has no such key"),
        ("set_element", "the set element is not there (remove) or already there (add)"),
        ("overflow", "adding would overflow the integer"),
        ("dangling_ref", "a reference names an object that does not exist"),
        ("cycle", "the move would put an object inside itself"),
        ("root_immutable", "the root object is never deleted or moved"),
        ("too_deep", "the tree would get deeper than tree_depth_max"),
        ("too_many_changes", "the action has more changes than action_changes_max, reactions included"),
        ("reaction_depth", "reactions nested deeper than reaction_depth_max"),
        ("too_large", "a value, a string or the document is over its size limit"),
        ("invalid", "a validator of the type refused the value"),
        ("denied", "the permission hook refused this client the change"),
        ("bad_base", "the action's base is ahead of the room"),
        ("text_base_too_old", "a text edit is based before the attribute's kept text history"),
        ("text_base_stale", "a text edit is based before this client's own later edit of that text"),
        ("list_base_stale", "a list change by index is based before another actor's change to that list"),
        ("list_base_too_old", "a list change by index is based before the list's kept history"),
        ("empty_action", "the action has no changes"),
        ("nothing_to_undo", "undo or redo found no step in the scope"),
        ("undo_conflict", "the state moved on since the step in a way that conflicts with undoing it"),
        ("custom", "server code refused with its own reason"),
    ];

    /// A hook's refusal with its own reason ([`ModelError::Hook`], wire code `custom`).
    pub fn hook(reason: impl Into<String>) -> Self {
        ModelError::Hook { reason: reason.into() }
    }

    /// A stable machine-readable code for the wire (`reject.code`).
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::NoSuchObject { .. } => "no_such_object",
            ModelError::NoSuchAttribute { .. } => "no_such_attribute",
            ModelError::NoSuchType { .. } => "no_such_type",
            ModelError::WrongKind { .. } => "wrong_kind",
            ModelError::DuplicateId { .. } => "duplicate_id",
            ModelError::BadId { .. } => "bad_id",
            ModelError::OutOfRange { .. } => "out_of_range",
            ModelError::SplitsCharacter { .. } => "splits_character",
            ModelError::NoSuchKey { .. } => "no_such_key",
            ModelError::SetElement { .. } => "set_element",
            ModelError::Overflow { .. } => "overflow",
            ModelError::DanglingRef { .. } => "dangling_ref",
            ModelError::Cycle { .. } => "cycle",
            ModelError::RootImmutable { .. } => "root_immutable",
            ModelError::TooDeep { .. } => "too_deep",
            ModelError::TooManyChanges { .. } => "too_many_changes",
            ModelError::ReactionDepth { .. } => "reaction_depth",
            ModelError::TooLarge { .. } => "too_large",
            ModelError::Invalid { .. } => "invalid",
            ModelError::Denied { .. } => "denied",
            ModelError::BadBase { .. } => "bad_base",
            ModelError::TextBaseTooOld { .. } => "text_base_too_old",
            ModelError::TextBaseStale { .. } => "text_base_stale",
            ModelError::ListBaseStale { .. } => "list_base_stale",
            ModelError::ListBaseTooOld { .. } => "list_base_too_old",
            ModelError::EmptyAction => "empty_action",
            ModelError::NothingToUndo { .. } => "nothing_to_undo",
            ModelError::UndoConflict { .. } => "undo_conflict",
            ModelError::Hook { .. } => "custom",
        }
    }
}

/// A refused transaction: which of the requested changes failed (if one did) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{error}", change_index.map(|i| format!("change {i}: ")).unwrap_or_default())]
pub struct Rejection {
    /// Index of the requested change that failed; `None` when the failure was not tied to one
    /// (a limit on the whole action, user code in `transact`).
    pub change_index: Option<usize>,
    /// The cause.
    pub error: ModelError,
}

impl Rejection {
    /// The machine-readable code of the cause.
    pub fn code(&self) -> &'static str {
        self.error.code()
    }
}

impl From<ModelError> for Rejection {
    fn from(error: ModelError) -> Self {
        Rejection { change_index: None, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every variant, each in its slot of [`slot_of`]: the test fails until every
    /// variant has a sample.
    fn one_of_each() -> Vec<ModelError> {
        let id = || CompactString::from("x");
        let all = vec![
            ModelError::NoSuchObject { id: id() },
            ModelError::NoSuchAttribute { obj: id(), type_name: id(), attr: id() },
            ModelError::NoSuchType { type_name: id() },
            ModelError::WrongKind { obj: id(), attr: id(), kind: TopicKind::Int, reason: String::new() },
            ModelError::DuplicateId { id: id() },
            ModelError::BadId { id: id(), reason: "" },
            ModelError::OutOfRange { target: String::new(), index: 1, len: 0 },
            ModelError::SplitsCharacter { obj: id(), attr: id(), pos: 1 },
            ModelError::NoSuchKey { obj: id(), attr: id(), key: id() },
            ModelError::SetElement { obj: id(), attr: id(), reason: String::new() },
            ModelError::Overflow { obj: id(), attr: id(), delta: String::new() },
            ModelError::DanglingRef { obj: id(), attr: id(), target: id() },
            ModelError::Cycle { id: id(), parent: id() },
            ModelError::RootImmutable { verb: "deleted" },
            ModelError::TooDeep { depth: 2, limit: 1 },
            ModelError::TooManyChanges { limit: 1 },
            ModelError::ReactionDepth { limit: 1 },
            ModelError::TooLarge { what: String::new(), size: 2, limit: 1 },
            ModelError::Invalid { obj: id(), attr: id(), reason: String::new() },
            ModelError::Denied { obj: id(), reason: String::new() },
            ModelError::BadBase { base: 2, version: 1 },
            ModelError::TextBaseTooOld { obj: id(), attr: id(), base: 0, floor: 1 },
            ModelError::TextBaseStale { obj: id(), attr: id(), base: 0, own: 1 },
            ModelError::ListBaseStale { obj: id(), attr: id(), base: 0, changed: 1 },
            ModelError::ListBaseTooOld { obj: id(), attr: id(), base: 0, floor: 1 },
            ModelError::EmptyAction,
            ModelError::NothingToUndo { verb: "undo", scope: String::new() },
            ModelError::UndoConflict { verb: "undo", version: 1, reason: String::new() },
            ModelError::Hook { reason: String::new() },
        ];
        let mut seen = [false; VARIANTS];
        for e in &all {
            seen[slot_of(e)] = true;
        }
        assert!(seen.iter().all(|s| *s), "a variant has no sample in one_of_each: {seen:?}");
        all
    }

    /// How many variants [`slot_of`] knows.
    const VARIANTS: usize = 29;

    /// A variant's place, in the order of the enum. The match has no wildcard, so a new variant
    /// does not compile until it has a slot here.
    fn slot_of(e: &ModelError) -> usize {
        match e {
            ModelError::NoSuchObject { .. } => 0,
            ModelError::NoSuchAttribute { .. } => 1,
            ModelError::NoSuchType { .. } => 2,
            ModelError::WrongKind { .. } => 3,
            ModelError::DuplicateId { .. } => 4,
            ModelError::BadId { .. } => 5,
            ModelError::OutOfRange { .. } => 6,
            ModelError::SplitsCharacter { .. } => 7,
            ModelError::NoSuchKey { .. } => 8,
            ModelError::SetElement { .. } => 9,
            ModelError::Overflow { .. } => 10,
            ModelError::DanglingRef { .. } => 11,
            ModelError::Cycle { .. } => 12,
            ModelError::RootImmutable { .. } => 13,
            ModelError::TooDeep { .. } => 14,
            ModelError::TooManyChanges { .. } => 15,
            ModelError::ReactionDepth { .. } => 16,
            ModelError::TooLarge { .. } => 17,
            ModelError::Invalid { .. } => 18,
            ModelError::Denied { .. } => 19,
            ModelError::BadBase { .. } => 20,
            ModelError::TextBaseTooOld { .. } => 21,
            ModelError::TextBaseStale { .. } => 22,
            ModelError::ListBaseStale { .. } => 23,
            ModelError::ListBaseTooOld { .. } => 24,
            ModelError::EmptyAction => 25,
            ModelError::NothingToUndo { .. } => 26,
            ModelError::UndoConflict { .. } => 27,
            ModelError::Hook { .. } => 28,
        }
    }

    #[test]
    fn codes_lists_every_variants_code_once() {
        let all = one_of_each();
        for e in &all {
            assert!(ModelError::CODES.iter().any(|(c, _)| *c == e.code()), "{} is not in ModelError::CODES", e.code());
        }
        let mut codes: Vec<&str> = ModelError::CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, all.iter().map(ModelError::code).collect::<Vec<_>>(), "CODES in the order of the variants");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ModelError::CODES.len(), "a code twice in ModelError::CODES");
        assert!(ModelError::CODES.iter().all(|(_, meaning)| !meaning.is_empty() && !meaning.contains('\n')));
    }
}
