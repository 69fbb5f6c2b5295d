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
