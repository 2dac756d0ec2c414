//! What must hold before anything enters the tree: values within the size and depth limits,
//! well-formed and unique ids (with a client's prefix), known types and attributes, well-kinded
//! values, and reference targets that exist. [`Document::normalize_node`] turns a requested
//! subtree into one with every attribute present, checked; the tree primitives then take it
//! without checking again. Reads the document, never changes it.

use super::{ref_ids, Document};
use crate::model::change::NodeSnapshot;
use crate::model::error::ModelError;
use crate::model::kind::TopicKind;
use crate::model::registry::TypeIdx;
use crate::model::value::{Dict, Value};
use std::collections::HashSet;

/// Who may make which ids when creating objects.
#[derive(Clone, Copy)]
pub(crate) enum IdRule<'a> {
    /// Any well-formed id (server code, replays).
    Any,
    /// Ids must start with `<client>:`.
    Client(&'a str),
}

impl Document {
    pub(super) fn check_value(&self, v: &Value, what: impl Fn() -> String) -> Result<(), ModelError> {
        let depth = v.depth();
        if depth > self.limits.value_depth_max {
            return Err(ModelError::TooLarge { what: what(), size: depth, limit: self.limits.value_depth_max });
        }
        let mut longest = 0;
        visit_strings(v, &mut |s| longest = longest.max(s.len()));
        if longest > self.limits.string_len_max {
            return Err(ModelError::TooLarge {
                what: format!("a string in {}", what()),
                size: longest,
                limit: self.limits.string_len_max,
            });
        }
        Ok(())
    }

    fn check_new_id(&self, id: &str, rule: IdRule<'_>) -> Result<(), ModelError> {
        let bad = |reason| Err(ModelError::BadId { id: id.into(), reason });
        if id.is_empty() {
            return bad("ids are not empty");
        }
        if id.len() > self.limits.id_len_max {
            return bad("too long");
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.' | b'~')) {
            return bad("ids use only ASCII letters, digits and : _ - . ~");
        }
        if let IdRule::Client(client) = rule {
            let ok = id.len() > client.len() + 1 && id.starts_with(client) && id.as_bytes()[client.len()] == b':';
            if !ok {
                return bad("a client's new ids start with its client id and ':'");
            }
        }
        if self.ids.get(&self.objects, id).is_some() {
            return Err(ModelError::DuplicateId { id: id.into() });
        }
        Ok(())
    }

    fn ref_exists(&self, id: &str, pending: &HashSet<&str>) -> bool {
        self.key(id).is_some() || pending.contains(id)
    }

    /// Checks every attribute of a type against given values and fills in defaults.
    pub(super) fn normalize_attrs(
        &self,
        type_idx: TypeIdx,
        id: &str,
        given: &Dict,
        allow_extra_events: bool,
    ) -> Result<Dict, ModelError> {
        let def = self.types.get(type_idx);
        for (name, _) in given.iter() {
            match def.slot(name) {
                None => {
                    return Err(ModelError::NoSuchAttribute {
                        obj: id.into(),
                        type_name: def.name.clone(),
                        attr: name.into(),
                    })
                }
                Some(slot) if def.attrs[usize::from(slot)].kind == TopicKind::Event && !allow_extra_events => {
                    return Err(ModelError::WrongKind {
                        obj: id.into(),
                        attr: name.into(),
                        kind: TopicKind::Event,
                        reason: "an event topic holds no value".into(),
                    })
                }
                Some(_) => {}
            }
        }
        let mut out = Dict::new();
        for a in def.attrs.iter().filter(|a| a.kind != TopicKind::Event) {
            let v = match given.get(&a.name) {
                Some(v) => a.kind.conform(v.clone()).map_err(|reason| ModelError::WrongKind {
                    obj: id.into(),
                    attr: a.name.clone(),
                    kind: a.kind,
                    reason,
                })?,
                None => a.default.clone(),
            };
            self.check_value(&v, || format!("{id}.{}", a.name))?;
            out.insert(a.name.clone(), v);
        }
        Ok(out)
    }

    /// Checks a subtree to be created at `depth` (its root's depth) and returns it with every
    /// attribute present. Adds its ids to `seen`. Reference targets are checked separately, once
    /// every new id is known.
    pub(crate) fn normalize_node<'s>(
        &self,
        node: &'s NodeSnapshot,
        depth: usize,
        rule: IdRule<'_>,
        seen: &mut HashSet<&'s str>,
        events_allowed: bool,
    ) -> Result<NodeSnapshot, ModelError> {
        if depth > self.limits.tree_depth_max {
            return Err(ModelError::TooDeep { depth, limit: self.limits.tree_depth_max });
        }
        if self.objects.len() + seen.len() >= self.limits.objects_max {
            return Err(ModelError::TooLarge {
                what: "the document's object count".into(),
                size: self.objects.len() + seen.len() + 1,
                limit: self.limits.objects_max,
            });
        }
        self.check_new_id(&node.id, rule)?;
        if !seen.insert(node.id.as_str()) {
            return Err(ModelError::DuplicateId { id: node.id.clone() });
        }
        let type_idx = self
            .types
            .index_of(&node.type_name)
            .ok_or_else(|| ModelError::NoSuchType { type_name: node.type_name.clone() })?;
        let attrs = self.normalize_attrs(type_idx, &node.id, &node.attrs, events_allowed)?;
        let mut children = Vec::with_capacity(node.children.len());
        for c in &node.children {
            children.push(self.normalize_node(c, depth + 1, rule, seen, events_allowed)?);
        }
        Ok(NodeSnapshot { id: node.id.clone(), type_name: node.type_name.clone(), attrs, children })
    }

    /// Checks that every reference in a normalized subtree names an existing or new object.
    pub(crate) fn check_refs(&self, node: &NodeSnapshot, pending: &HashSet<&str>) -> Result<(), ModelError> {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            let Some(type_idx) = self.types.index_of(&n.type_name) else {
                continue;
            };
            for a in self.types.get(type_idx).attrs.iter().filter(|a| a.kind.is_ref()) {
                if let Some(v) = n.attrs.get(&a.name) {
                    for target in ref_ids(a.kind, v) {
                        if !self.ref_exists(target, pending) {
                            return Err(ModelError::DanglingRef {
                                obj: n.id.clone(),
                                attr: a.name.clone(),
                                target: target.into(),
                            });
                        }
                    }
                }
            }
            stack.extend(n.children.iter());
        }
        Ok(())
    }

    pub(super) fn check_element(&self, obj: &str, attr: &str, kind: TopicKind, v: &Value) -> Result<(), ModelError> {
        if kind == TopicKind::RefList && v.as_str().is_none() {
            return Err(ModelError::WrongKind {
                obj: obj.into(),
                attr: attr.into(),
                kind,
                reason: format!("expected an object id, got {}", v.type_name()),
            });
        }
        if !v.is_finite() {
            return Err(ModelError::WrongKind {
                obj: obj.into(),
                attr: attr.into(),
                kind,
                reason: "floats must be finite".into(),
            });
        }
        self.check_value(v, || format!("{obj}.{attr}"))?;
        if kind == TopicKind::RefList {
            self.check_targets(obj, attr, TopicKind::Ref, v)?;
        }
        Ok(())
    }

    pub(super) fn check_targets(&self, obj: &str, attr: &str, kind: TopicKind, v: &Value) -> Result<(), ModelError> {
        for target in ref_ids(kind, v) {
            if self.key(target).is_none() {
                return Err(ModelError::DanglingRef { obj: obj.into(), attr: attr.into(), target: target.into() });
            }
        }
        Ok(())
    }
}

fn visit_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::List(l) => l.iter().for_each(|e| visit_strings(e, f)),
        Value::Dict(d) => d.iter().for_each(|(k, e)| {
            f(k);
            visit_strings(e, f)
        }),
        _ => {}
    }
}

impl Document {
    /// Runs every validator over every stored value (event topics hold none): for a document
    /// that did not come through transactions, such as a migrated room, so that it holds what
    /// the validators demand of every edit. The first refusal, with its object and attribute.
    pub fn check_validators(&self) -> Result<(), ModelError> {
        for (key, o) in &self.objects {
            let def = self.types.get(o.type_idx);
            for (a, v) in def.attrs.iter().zip(o.attrs.iter()) {
                if a.kind == TopicKind::Event {
                    continue;
                }
                for f in &a.validators {
                    f(self, key, v).map_err(|reason| ModelError::Invalid {
                        obj: o.id.clone(),
                        attr: a.name.clone(),
                        reason,
                    })?;
                }
            }
        }
        Ok(())
    }
}
