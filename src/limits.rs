//! Every limit of the engine, with its default and why. Checked at the edge of the layer that
//! owns it; each breach is a named error carrying the limit.

/// Limits enforced by the model (per document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Changes in one transaction, reactions and reference clearing included: bounds the work
    /// and memory one action can cause. A client's action is also limited at the wire.
    pub action_changes_max: usize,
    /// Depth of the object tree (root = 0): keeps every walk (ancestors, cycle check, snapshot
    /// recursion) short and the stack safe.
    pub tree_depth_max: usize,
    /// Objects in one document: bounds a room's memory.
    pub objects_max: usize,
    /// Nesting of reactions triggering reactions: stops a reaction loop.
    pub reaction_depth_max: usize,
    /// Text edits kept per string topic for transforming late edits; an edit based on an older
    /// version is refused with `text_base_too_old`.
    pub text_history_len_max: usize,
    /// Versions after which a topic's text history is dropped entirely (checked every
    /// `TEXT_SWEEP_EVERY` commits), so idle topics cost nothing.
    pub text_history_versions_max: u64,
    /// Bytes in one object id.
    pub id_len_max: usize,
    /// Bytes in one string value (a text topic, a dict string).
    pub string_len_max: usize,
    /// Nesting depth of a value (lists in dicts in lists...).
    pub value_depth_max: usize,
    /// Undo steps kept per client.
    pub undo_steps_max: usize,
    /// Transitions of one client on the same objects closer than this merge into one undo step
    /// (a drag is undone at once).
    pub undo_merge_window_ms: u64,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            action_changes_max: 10_000,
            tree_depth_max: 128,
            objects_max: 2_000_000,
            reaction_depth_max: 16,
            text_history_len_max: 512,
            text_history_versions_max: 100_000,
            id_len_max: 128,
            string_len_max: 1 << 20,
            value_depth_max: 32,
            undo_steps_max: 200,
            undo_merge_window_ms: 500,
        }
    }
}

/// How often (in commits) idle text histories are swept.
pub(crate) const TEXT_SWEEP_EVERY: u64 = 4096;
