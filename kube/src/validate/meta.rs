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
