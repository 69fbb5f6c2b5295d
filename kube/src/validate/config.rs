//! ConfigMaps, Secrets (data keys, base64 values) and Namespaces.

use crate::config::{ConfigMap, Namespace, Secret};
use crate::field::{child, FieldError};
use crate::names;

use super::Validator;

impl Validator {
    fn config_data_keys<'a>(&mut self, path: &str, keys: impl Iterator<Item = &'a String>) {
        for k in keys {
            self.check(path, k, names::config_key);
        }
    }

    pub(super) fn config_map(&mut self, cm: &ConfigMap) {
        self.meta(&cm.metadata, true, names::dns1123_subdomain);
        self.config_data_keys("data", cm.data.keys());
        self.config_data_keys("binaryData", cm.binary_data.keys());
        for k in cm.binary_data.keys() {
            if cm.data.contains_key(k) {
                self.push(FieldError::invalid(
                    "data",
                    k,
                    "duplicate of key present in binaryData",
                ));
            }
        }
        for (k, v) in &cm.binary_data {
            if decode_base64(v).is_none() {
                self.push(FieldError::invalid(
                    child("binaryData", k),
                    "<value omitted>",
                    "illegal base64 data",
                ));
            }
        }
    }

    pub(super) fn secret(&mut self, s: &Secret) {
        self.meta(&s.metadata, true, names::dns1123_subdomain);
        self.config_data_keys("data", s.data.keys());
        self.config_data_keys("stringData", s.string_data.keys());
        for (k, v) in &s.data {
            if decode_base64(v).is_none() {
                self.push(FieldError::invalid(
                    child("data", k),
                    "<secret contents redacted>",
                    "illegal base64 data",
                ));
            }
        }
    }

    pub(super) fn namespace(&mut self, ns: &Namespace) {
        self.meta(&ns.metadata, false, names::dns1123_label);
    }
}

/// The bytes of standard base64 `v`, or `None` when it is not valid base64.
fn decode_base64(v: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    #[test]
    fn config_map_keys_and_binary_data() {
        let cm: ConfigMap = decode(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"a": "1", "..b": "2"},
            "binaryData": {"a": "aGk=", "c": "not base64!"}}));
        assert_eq!(
            errors(|v| v.config_map(&cm)),
            [
                "data: Invalid value: \"..b\": must not start with '..'",
                "data: Invalid value: \"a\": duplicate of key present in binaryData",
                "binaryData.c: Invalid value: \"<value omitted>\": illegal base64 data",
            ]
        );
    }

    #[test]
    fn secret_values_are_base64_and_redacted() {
        let s: Secret = decode(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"ok": "aGk=", "bad": "%%%"},
            "stringData": {"x/y": "v"}}));
        let errs = errors(|v| v.secret(&s));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("stringData: Invalid value: \"x/y\": a valid config key"));
        assert_eq!(
            errs[1],
            "data.bad: Invalid value: \"<secret contents redacted>\": illegal base64 data"
        );
    }

    #[test]
    fn namespaces_are_cluster_scoped_labels() {
        let ns: Namespace = decode(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "a.b", "namespace": "x"}}));
        let errs = errors(|v| v.namespace(&ns));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("metadata.name: Invalid value: \"a.b\""));
        assert_eq!(
            errs[1],
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("aGk"), None);
    }
}
