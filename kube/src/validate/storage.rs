//! PersistentVolumes and PersistentVolumeClaims: access modes, capacity, the hostPath source.

use crate::field::FieldError;
use crate::names;
use crate::selector::Selector;
use crate::storage::{PersistentVolume, PersistentVolumeClaim};

use super::Validator;

impl Validator {
    pub(super) fn persistent_volume(&mut self, pv: &PersistentVolume) {
        self.meta(&pv.metadata, false, names::dns1123_subdomain);
        let spec = &pv.spec;
        self.access_modes("spec.accessModes", &spec.access_modes);
        if !spec.capacity.contains_key("storage") {
            self.push(FieldError::required("spec.capacity.storage"));
        }
        self.resource_list("spec.capacity", &spec.capacity);
        match &spec.host_path {
            Some(h) => self.host_path("spec.hostPath", &h.path, h.type_.as_deref()),
            None => self.push(FieldError::required_because(
                "spec.hostPath",
                "berth serves hostPath persistent volumes only",
            )),
        }
        self.one_of(
            "spec.persistentVolumeReclaimPolicy",
            spec.persistent_volume_reclaim_policy.as_deref(),
            &["Delete", "Recycle", "Retain"],
        );
        self.one_of(
            "spec.volumeMode",
            spec.volume_mode.as_deref(),
            &["Block", "Filesystem"],
        );
    }

    pub(super) fn persistent_volume_claim(&mut self, pvc: &PersistentVolumeClaim) {
        self.meta(&pvc.metadata, true, names::dns1123_subdomain);
        let spec = &pvc.spec;
        self.access_modes("spec.accessModes", &spec.access_modes);
        match &spec.resources {
            Some(r) if r.requests.contains_key("storage") => {
                self.resource_list("spec.resources.requests", &r.requests);
            }
            _ => self.push(FieldError::required("spec.resources[storage]")),
        }
        if let Some(sel) = &spec.selector {
            if let Err(e) = Selector::from_label_selector(sel, "spec.selector") {
                self.errors.0.extend(e.0);
            }
        }
        self.one_of(
            "spec.volumeMode",
            spec.volume_mode.as_deref(),
            &["Block", "Filesystem"],
        );
    }

    fn access_modes(&mut self, path: &str, modes: &[String]) {
        if modes.is_empty() {
            self.push(FieldError::required(path));
        }
        for m in modes {
            self.one_of(
                path,
                Some(m),
                &[
                    "ReadOnlyMany",
                    "ReadWriteMany",
                    "ReadWriteOnce",
                    "ReadWriteOncePod",
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    #[test]
    fn persistent_volumes_are_host_paths_with_a_capacity() {
        let pv: PersistentVolume = decode(json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv"},
            "spec": {"accessModes": ["ReadWriteSometimes"], "capacity": {"cpu": "1"},
                     "persistentVolumeReclaimPolicy": "Keep"}}));
        assert_eq!(
            errors(|v| v.persistent_volume(&pv)),
            [
                "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.capacity.storage: Required value",
                "spec.hostPath: Required value: berth serves hostPath persistent volumes only",
                "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"",
            ]
        );
        let ok: PersistentVolume = decode(json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv"},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                     "hostPath": {"path": "/srv/pv"}}}));
        assert!(errors(|v| v.persistent_volume(&ok)).is_empty());
    }

    #[test]
    fn claims_ask_for_storage_with_a_valid_selector() {
        let pvc: PersistentVolumeClaim = decode(json!({"apiVersion": "v1",
            "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
            "spec": {"volumeMode": "Raw",
                     "selector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}}}));
        assert_eq!(
            errors(|v| v.persistent_volume_claim(&pvc)),
            [
                "spec.accessModes: Required value",
                "spec.resources[storage]: Required value",
                "spec.selector.matchExpressions[0].operator: Unsupported value: \"Near\": supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\"",
                "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
            ]
        );
    }
}
