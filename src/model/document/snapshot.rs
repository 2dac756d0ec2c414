//! Snapshots: [`DocSnapshot`] (a whole document as owned data) and the checked conversion back
//! into a [`Document`] ([`Document::from_snapshot`]). How a snapshot is written on the wire and
//! read back (the nested and the compact form, straight from the tree) is `protocol`'s.

use super::check::IdRule;
use super::{Document, ObjKey, JSON_SAFE_INT_MAX, ROOT_ID};
use crate::limits::ModelLimits;
use crate::model::change::NodeSnapshot;
use crate::model::error::ModelError;
use crate::model::kind::TopicKind;
use crate::model::registry::{TypeRegistry, ROOT_TYPE};
use crate::model::value::Dict;
use compact_str::CompactString;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

/// A whole document: version, server id counter and the tree from the root.
///
/// It serializes in the nested form; `protocol` reads it from the nested and from the compact
/// form (`protocol::snapshot_view`, `protocol::compact_snapshot_view`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocSnapshot {
    /// Version of the last applied transition.
    pub version: u64,
    /// Next number for server-made ids (`s:<n>`).
    #[serde(default)]
    pub next_server_id: u64,
    /// The root object and everything under it.
    pub root: NodeSnapshot,
}

impl Document {
    /// Rebuilds a document from a snapshot, checking it as thoroughly as a client's create:
    /// known types and attributes, well-kinded values, unique ids, existing reference targets.
    pub fn from_snapshot(
        types: Arc<TypeRegistry>,
        limits: ModelLimits,
        snapshot: DocSnapshot,
    ) -> Result<Self, ModelError> {
        check_header(&snapshot)?;
        let mut doc = Document::with_limits(types, limits);
        let root = doc.root;
        let root_type = doc.objects[root].type_idx;
        let mut seen = HashSet::new();
        seen.insert(snapshot.root.id.as_str());
        let attrs = doc.normalize_attrs(root_type, &snapshot.root.id, &snapshot.root.attrs, true)?;
        let mut children = Vec::with_capacity(snapshot.root.children.len());
        for child in &snapshot.root.children {
            children.push(doc.normalize_node(child, 1, IdRule::Any, &mut seen, false)?);
        }
        for child in &children {
            doc.check_refs(child, &seen)?;
        }
        let root_node = NodeSnapshot {
            id: snapshot.root.id.clone(),
            type_name: snapshot.root.type_name.clone(),
            attrs,
            children: Vec::new(),
        };
        doc.check_refs(&root_node, &seen)?;
        for (i, child) in children.iter().enumerate() {
            doc.insert_subtree(root, i, child);
        }
        doc.set_attrs(root, &root_node.attrs);
        // Each subtree recorded its own references as it went in, but not those to subtrees
        // inserted after it: record them all now.
        doc.relink_all();
        doc.version = snapshot.version;
        doc.texts_floor = snapshot.version;
        doc.next_server_id = snapshot.next_server_id.max(1);
        Ok(doc)
    }

    /// The whole document as an owned, serializable value.
    pub fn snapshot(&self) -> DocSnapshot {
        DocSnapshot { version: self.version, next_server_id: self.next_server_id, root: self.node_snapshot(self.root) }
    }

    /// One object and its subtree, owned.
    pub fn subtree_snapshot(&self, key: ObjKey) -> Option<NodeSnapshot> {
        self.objects.contains_key(key).then(|| self.node_snapshot(key))
    }

    fn node_snapshot(&self, key: ObjKey) -> NodeSnapshot {
        let o = &self.objects[key];
        let def = self.types.get(o.type_idx);
        let mut attrs = Dict::new();
        for (a, v) in def.attrs.iter().zip(o.attrs.iter()) {
            if a.kind != TopicKind::Event {
                attrs.insert(a.name.clone(), v.clone());
            }
        }
        NodeSnapshot {
            id: o.id.clone(),
            type_name: def.name.clone(),
            attrs,
            children: o.children.iter().map(|&c| self.node_snapshot(c)).collect(),
        }
    }
}

/// What a snapshot must say before its tree is read: versions and server ids in the range every
/// JSON reader holds exactly (so the next version can never wrap or be read back wrong), and the
/// root as every document has it.
fn check_header(snapshot: &DocSnapshot) -> Result<(), ModelError> {
    for (what, n) in [("version", snapshot.version), ("next_server_id", snapshot.next_server_id)] {
        if n > JSON_SAFE_INT_MAX {
            return Err(ModelError::TooLarge {
                what: format!("the snapshot's {what}"),
                size: n as usize,
                limit: JSON_SAFE_INT_MAX as usize,
            });
        }
    }
    let root = &snapshot.root;
    if root.id != ROOT_ID {
        return Err(ModelError::BadId { id: root.id.clone(), reason: "the root of a snapshot has the id \"root\"" });
    }
    if root.type_name != ROOT_TYPE {
        // As `Document::handle` says an object is not of the type asked for.
        return Err(ModelError::WrongKind {
            obj: root.id.clone(),
            attr: CompactString::default(),
            kind: TopicKind::Ref,
            reason: format!("the root is a {ROOT_TYPE}, not a {}", root.type_name),
        });
    }
    Ok(())
}
