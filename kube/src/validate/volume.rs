//! A pod's volumes: exactly one source each, host paths without `..`, key-to-path items and
//! file modes.

use crate::field::{child, index, FieldError};
use crate::names;
use crate::pod::{KeyToPath, Volume};

use super::Validator;

impl Validator {
    pub(super) fn volume(&mut self, path: &str, vol: &Volume) {
        if vol.name.is_empty() {
            self.push(FieldError::required(child(path, "name")));
        } else {
            self.check(&child(path, "name"), &vol.name, names::dns1123_label);
        }
        let sources = [
            vol.empty_dir.is_some(),
            vol.host_path.is_some(),
            vol.config_map.is_some(),
            vol.secret.is_some(),
            vol.persistent_volume_claim.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match sources {
            0 => self.push(FieldError::required_because(
                path,
                "must specify a volume type",
            )),
            1 => {}
            _ => self.push(FieldError::forbidden(
                path,
                "may not specify more than 1 volume type",
            )),
        }
        if let Some(e) = &vol.empty_dir {
            self.one_of(
                &child(&child(path, "emptyDir"), "medium"),
                e.medium.as_deref(),
                &["", "HugePages", "Memory"],
            );
        }
        if let Some(h) = &vol.host_path {
            self.host_path(&child(path, "hostPath"), &h.path, h.type_.as_deref());
        }
        if let Some(c) = &vol.config_map {
            let p = child(path, "configMap");
            if c.name.is_empty() {
                self.push(FieldError::required(child(&p, "name")));
            }
            self.key_paths(&p, &c.items);
            self.mode(&child(&p, "defaultMode"), c.default_mode);
        }
        if let Some(s) = &vol.secret {
            let p = child(path, "secret");
            if s.secret_name.as_deref().is_none_or(str::is_empty) {
                self.push(FieldError::required(child(&p, "secretName")));
            }
            self.key_paths(&p, &s.items);
            self.mode(&child(&p, "defaultMode"), s.default_mode);
        }
        if let Some(c) = &vol.persistent_volume_claim {
            if c.claim_name.is_empty() {
                self.push(FieldError::required(child(
                    &child(path, "persistentVolumeClaim"),
                    "claimName",
                )));
            }
        }
    }

    pub(super) fn host_path(&mut self, path: &str, host: &str, type_: Option<&str>) {
        if host.is_empty() {
            self.push(FieldError::required(child(path, "path")));
        } else if host.split('/').any(|s| s == "..") {
            self.push(FieldError::invalid(
                child(path, "path"),
                host,
                "must not contain '..'",
            ));
        }
        self.one_of(
            &child(path, "type"),
            type_,
            &[
                "",
                "BlockDevice",
                "CharDevice",
                "Directory",
                "DirectoryOrCreate",
                "File",
                "FileOrCreate",
                "Socket",
            ],
        );
    }

    fn key_paths(&mut self, path: &str, items: &[KeyToPath]) {
        for (i, item) in items.iter().enumerate() {
            let p = index(&child(path, "items"), i);
            if item.key.is_empty() {
                self.push(FieldError::required(child(&p, "key")));
            }
            if item.path.is_empty() {
                self.push(FieldError::required(child(&p, "path")));
            } else if item.path.starts_with('/') || item.path.split('/').any(|s| s == "..") {
                self.push(FieldError::invalid(
                    child(&p, "path"),
                    &item.path,
                    "must be a relative path without '..'",
                ));
            }
            self.mode(&child(&p, "mode"), item.mode);
        }
    }

    fn mode(&mut self, path: &str, mode: Option<i32>) {
        if let Some(m) = mode.filter(|m| !(0..=0o777).contains(m)) {
            self.push(FieldError::invalid(
                path,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn volume(v: serde_json::Value) -> Vec<String> {
        let vol: Volume = decode(v);
        errors(|v| v.volume("v", &vol))
    }

    #[test]
    fn exactly_one_source() {
        assert_eq!(
            volume(json!({"name": "a"})),
            ["v: Required value: must specify a volume type"]
        );
        assert_eq!(
            volume(json!({"name": "", "emptyDir": {"medium": "Disk"}, "persistentVolumeClaim": {"claimName": ""}})),
            [
                "v.name: Required value",
                "v: Forbidden: may not specify more than 1 volume type",
                "v.emptyDir.medium: Unsupported value: \"Disk\": supported values: \"\", \"HugePages\", \"Memory\"",
                "v.persistentVolumeClaim.claimName: Required value",
            ]
        );
    }

    #[test]
    fn host_paths_items_and_modes() {
        assert_eq!(
            volume(json!({"name": "a", "hostPath": {"path": "/a/../etc", "type": "Pipe"}})),
            [
                "v.hostPath.path: Invalid value: \"/a/../etc\": must not contain '..'",
                "v.hostPath.type: Unsupported value: \"Pipe\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
            ]
        );
        assert_eq!(
            volume(json!({"name": "a", "configMap": {"name": "", "defaultMode": 512,
                "items": [{"key": "", "path": "/abs", "mode": -1}]}})),
            [
                "v.configMap.name: Required value",
                "v.configMap.items[0].key: Required value",
                "v.configMap.items[0].path: Invalid value: \"/abs\": must be a relative path without '..'",
                "v.configMap.items[0].mode: Invalid value: \"-1\": must be a number between 0 and 0777 (octal), both inclusive",
                "v.configMap.defaultMode: Invalid value: \"512\": must be a number between 0 and 0777 (octal), both inclusive",
            ]
        );
        assert_eq!(
            volume(json!({"name": "a", "secret": {"items": [{"key": "k", "path": ""}]}})),
            [
                "v.secret.secretName: Required value",
                "v.secret.items[0].path: Required value",
            ]
        );
    }
}
