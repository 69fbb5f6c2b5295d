//! `v1` ConfigMap, Secret and Namespace.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::{ObjectMeta, StringMap};

/// `v1` ConfigMap: string (and binary) data for env vars and volume files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMap {
    /// "v1".
    pub api_version: String,
    /// "ConfigMap".
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// UTF-8 values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: StringMap,
    /// Base64 values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: StringMap,
    /// Whether the data may no longer change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// `v1` Secret: `data` holds base64 values; `stringData` is write-only plain text that the
/// server merges into `data` ([`Secret::merge_string_data`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    /// "v1".
    pub api_version: String,
    /// "Secret".
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `Opaque` (default) or another type name.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Base64 values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: StringMap,
    /// Plain values, merged into `data` on write (they win over `data`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: StringMap,
    /// Whether the data may no longer change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl Secret {
    /// Moves `stringData` into `data`, base64-encoded, as the API server does on write.
    pub fn merge_string_data(&mut self) {
        use base64::Engine;
        for (k, v) in std::mem::take(&mut self.string_data) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
            self.data.insert(k, encoded);
        }
    }

    /// The decoded value of `key` (after [`Secret::merge_string_data`]); `None` when the key
    /// is missing or not base64 (validation rejects the latter).
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(self.data.get(key)?)
            .ok()
    }
}

/// `v1` Namespace: objects are isolated by namespace; deleting one deletes its objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    /// "v1".
    pub api_version: String,
    /// "Namespace".
    pub kind: String,
    /// Name (a DNS-1123 label).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Finalizers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<NamespaceSpec>,
    /// `phase`: `Active` or `Terminating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NamespaceStatus>,
}

/// `spec` of a Namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSpec {
    /// Finalizers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// `status` of a Namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceStatus {
    /// `Active` or `Terminating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}
