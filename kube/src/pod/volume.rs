//! A pod's volumes: a name and exactly one source (emptyDir, hostPath, ConfigMap, Secret,
//! PersistentVolumeClaim).

use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// One pod volume: a name and exactly one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// DNS-1123 label, unique in the pod.
    pub name: String,
    /// A fresh directory that lives as long as the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    /// A path on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    /// A ConfigMap's keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    /// A Secret's keys as files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    /// The volume bound to a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PvcVolumeSource>,
}

/// `emptyDir`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirVolumeSource {
    /// "" (disk) or `Memory` (tmpfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// Size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

/// `hostPath`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathVolumeSource {
    /// Absolute path on the host.
    pub path: String,
    /// "", `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, `Socket`,
    /// `CharDevice` or `BlockDevice`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// `configMap` volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolumeSource {
    /// The ConfigMap.
    #[serde(default)]
    pub name: String,
    /// Only these keys, at these paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode (default 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    /// Whether a missing ConfigMap is fine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `secret` volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolumeSource {
    /// The Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Only these keys, at these paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode (default 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    /// Whether a missing Secret is fine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// One `items` entry of a configMap or secret volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    /// The key.
    pub key: String,
    /// Relative path of the file.
    pub path: String,
    /// File mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// `persistentVolumeClaim` volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PvcVolumeSource {
    /// The claim in the pod's namespace.
    pub claim_name: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sources_decode_by_their_api_names() {
        let v: Volume = serde_json::from_value(json!({"name": "data",
            "persistentVolumeClaim": {"claimName": "c", "readOnly": true}}))
        .unwrap();
        let claim = v.persistent_volume_claim.unwrap();
        assert_eq!(
            (claim.claim_name.as_str(), claim.read_only),
            ("c", Some(true))
        );
        let v: Volume = serde_json::from_value(json!({"name": "h",
            "hostPath": {"path": "/srv", "type": "Directory"}}))
        .unwrap();
        assert_eq!(v.host_path.unwrap().type_.as_deref(), Some("Directory"));
        let v: Volume = serde_json::from_value(json!({"name": "s",
            "secret": {"secretName": "s", "items": [{"key": "k", "path": "p", "mode": 256}]}}))
        .unwrap();
        assert_eq!(v.secret.unwrap().items[0].mode, Some(256));
    }

    #[test]
    fn unknown_sources_are_refused_and_unset_ones_left_out() {
        assert!(serde_json::from_value::<Volume>(json!({"name": "n", "nfs": {}})).is_err());
        let v = Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"name": "scratch", "emptyDir": {}})
        );
    }
}
