//! Metadata every object has: its name (or generateName) in the kind's format, namespace,
//! labels, annotations and owner references.

use crate::field::{child, index, FieldError};
use crate::meta::{ObjectMeta, StringMap};
use crate::names;

use super::{NameCheck, Validator};

impl Validator {
    /// `metadata` of a top-level object; `name_check` is the kind's name format.
    pub(super) fn meta(&mut self, m: &ObjectMeta, namespaced: bool, name_check: NameCheck) {
        match (&m.name, &m.generate_name) {
            (Some(n), _) if !n.is_empty() => self.check("metadata.name", n, name_check),
            (_, Some(g)) if !g.is_empty() => {
                // The server appends five characters; the prefix must allow that.
                let probe = format!("{g}abcde");
                if let Err(d) = name_check(&probe) {
                    self.push(FieldError::invalid(
                        "metadata.generateName",
                        g,
                        &d.to_string(),
                    ));
                }
            }
            _ => self.push(FieldError::required_because(
                "metadata.name",
                "name or generateName is required",
            )),
        }
        match &m.namespace {
            Some(ns) if namespaced => self.check("metadata.namespace", ns, names::dns1123_label),
            Some(ns) if !ns.is_empty() => self.push(FieldError::forbidden(
                "metadata.namespace",
                "not allowed on this type",
            )),
            _ => {}
        }
        self.labels("metadata.labels", &m.labels);
        self.annotations("metadata.annotations", &m.annotations);
        let controllers = m
            .owner_references
            .iter()
            .filter(|r| r.controller == Some(true))
            .count();
        if controllers > 1 {
            self.push(FieldError::invalid(
                "metadata.ownerReferences",
                controllers,
                "Only one reference can have Controller set to true",
            ));
        }
        for (i, r) in m.owner_references.iter().enumerate() {
            let p = index("metadata.ownerReferences", i);
            for (field, value) in [
                ("apiVersion", &r.api_version),
                ("kind", &r.kind),
                ("name", &r.name),
                ("uid", &r.uid),
            ] {
                if value.is_empty() {
                    self.push(FieldError::required(child(&p, field)));
                }
            }
        }
    }

    pub(super) fn labels(&mut self, path: &str, labels: &StringMap) {
        for (k, v) in labels {
            self.check(path, k, names::qualified_name);
            if let Err(d) = names::label_value(v) {
                self.push(FieldError::invalid(child(path, k), v, &d.to_string()));
            }
        }
    }

    pub(super) fn annotations(&mut self, path: &str, annotations: &StringMap) {
        let mut total = 0;
        for (k, v) in annotations {
            let key = k.to_ascii_lowercase();
            self.check(path, &key, names::qualified_name);
            total += k.len() + v.len();
        }
        if total > 256 * 1024 {
            self.push(FieldError {
                path: path.to_string(),
                message: format!(
                    "Too long: may not be more than 262144 bytes (annotations take {total})"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn meta(value: serde_json::Value, namespaced: bool) -> Vec<String> {
        let m: ObjectMeta = decode(value);
        errors(|v| v.meta(&m, namespaced, names::dns1123_subdomain))
    }

    #[test]
    fn a_name_or_a_generate_name_that_leaves_room_is_required() {
        assert_eq!(
            meta(json!({}), true),
            ["metadata.name: Required value: name or generateName is required"]
        );
        assert!(meta(json!({"generateName": "web-"}), true).is_empty());
        let long = "a".repeat(250);
        assert_eq!(
            meta(json!({"generateName": long}), true),
            [format!(
                "metadata.generateName: Invalid value: \"{long}\": must be no more than 253 characters"
            )]
        );
    }

    #[test]
    fn namespaces_only_on_namespaced_kinds() {
        assert!(meta(json!({"name": "a", "namespace": "team-a"}), true).is_empty());
        assert_eq!(
            meta(json!({"name": "a", "namespace": "Team"}), true).len(),
            1
        );
        assert_eq!(
            meta(json!({"name": "a", "namespace": "x"}), false),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
        assert!(meta(json!({"name": "a", "namespace": ""}), false).is_empty());
    }

    #[test]
    fn labels_annotations_and_owner_references() {
        let errs = meta(
            json!({"name": "a", "labels": {"app": "-bad-"}, "annotations": {"bad key": "v"}}),
            true,
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("metadata.labels.app: Invalid value: \"-bad-\""));
        assert!(errs[1].starts_with("metadata.annotations: Invalid value: \"bad key\""));
        let big = "x".repeat(256 * 1024);
        assert_eq!(
            meta(json!({"name": "a", "annotations": {"k": big}}), true),
            ["metadata.annotations: Too long: may not be more than 262144 bytes (annotations take 262145)"]
        );
        let owner = |uid: &str| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": uid, "controller": true});
        assert_eq!(
            meta(
                json!({"name": "a", "ownerReferences": [owner("1"), owner("")]}),
                true
            ),
            [
                "metadata.ownerReferences: Invalid value: \"2\": Only one reference can have Controller set to true",
                "metadata.ownerReferences[1].uid: Required value",
            ]
        );
    }
}
