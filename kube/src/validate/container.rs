//! One container of a pod spec: name, image, ports, environment, volume mounts, resources
//! and probes.

use std::collections::{BTreeMap, BTreeSet};

use crate::field::{child, index, FieldError};
use crate::names;
use crate::pod::Container;
use crate::quantity::Quantity;
use crate::security;

use super::{Validator, PROTOCOLS};

impl Validator {
    pub(super) fn container(
        &mut self,
        path: &str,
        c: &Container,
        volumes: &BTreeSet<&str>,
        image_required: bool,
        init: bool,
    ) {
        if let Some(sc) = &c.security_context {
            for e in security::container_errors(&child(path, "securityContext"), sc) {
                self.push(e);
            }
        }
        if c.name.is_empty() {
            self.push(FieldError::required(child(path, "name")));
        } else {
            self.check(&child(path, "name"), &c.name, names::dns1123_label);
        }
        if image_required && c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            self.push(FieldError::required(child(path, "image")));
        }
        if let Some(image) = c.image.as_deref().filter(|i| i.trim() != *i) {
            self.push(FieldError::invalid(
                child(path, "image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
        self.one_of(
            &child(path, "imagePullPolicy"),
            c.image_pull_policy.as_deref(),
            &["Always", "IfNotPresent", "Never"],
        );
        self.one_of(
            &child(path, "terminationMessagePolicy"),
            c.termination_message_policy.as_deref(),
            &["FallbackToLogsOnError", "File"],
        );
        let mut port_names = BTreeSet::new();
        for (i, port) in c.ports.iter().enumerate() {
            let p = index(&child(path, "ports"), i);
            self.port(&child(&p, "containerPort"), port.container_port);
            if let Some(hp) = port.host_port.filter(|hp| !(0..=65535).contains(hp)) {
                self.push(FieldError::invalid(
                    child(&p, "hostPort"),
                    hp,
                    "must be between 1 and 65535, inclusive",
                ));
            }
            self.one_of(&child(&p, "protocol"), port.protocol.as_deref(), PROTOCOLS);
            if let Some(name) = &port.name {
                self.check(&child(&p, "name"), name, names::port_name);
                if !port_names.insert(name.as_str()) {
                    self.push(FieldError::duplicate(child(&p, "name"), name));
                }
            }
        }
        for (i, env) in c.env.iter().enumerate() {
            let p = index(&child(path, "env"), i);
            self.check(&child(&p, "name"), &env.name, names::env_var_name);
            if let Some(from) = &env.value_from {
                let vf = child(&p, "valueFrom");
                let sources = [
                    from.config_map_key_ref.is_some(),
                    from.secret_key_ref.is_some(),
                    from.field_ref.is_some(),
                    from.resource_field_ref.is_some(),
                ]
                .iter()
                .filter(|s| **s)
                .count();
                if env.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    self.push(FieldError::invalid(
                        &vf,
                        "",
                        "may not be specified when `value` is not empty",
                    ));
                }
                if sources != 1 {
                    self.push(FieldError::invalid(
                        &vf,
                        "",
                        "may not have more than one field specified at a time",
                    ));
                }
                for (field, key_ref) in [
                    ("configMapKeyRef", &from.config_map_key_ref),
                    ("secretKeyRef", &from.secret_key_ref),
                ] {
                    if let Some(r) = key_ref {
                        let rp = child(&vf, field);
                        if r.name.is_empty() {
                            self.push(FieldError::required(child(&rp, "name")));
                        }
                        if r.key.is_empty() {
                            self.push(FieldError::required(child(&rp, "key")));
                        } else {
                            self.check(&child(&rp, "key"), &r.key, names::config_key);
                        }
                    }
                }
            }
        }
        for (i, from) in c.env_from.iter().enumerate() {
            let p = index(&child(path, "envFrom"), i);
            let refs = [
                ("configMapRef", &from.config_map_ref),
                ("secretRef", &from.secret_ref),
            ];
            let set = refs.iter().filter(|(_, r)| r.is_some()).count();
            if set != 1 {
                self.push(FieldError::invalid(
                    &p,
                    "",
                    "must specify one of: `configMapRef` or `secretRef`",
                ));
            }
            for (field, r) in refs {
                if r.as_ref().is_some_and(|r| r.name.is_empty()) {
                    self.push(FieldError::required(child(&child(&p, field), "name")));
                }
            }
        }
        let mut mount_paths = BTreeSet::new();
        for (i, m) in c.volume_mounts.iter().enumerate() {
            let p = index(&child(path, "volumeMounts"), i);
            if m.name.is_empty() {
                self.push(FieldError::required(child(&p, "name")));
            } else if !volumes.contains(m.name.as_str()) {
                self.push(FieldError {
                    path: child(&p, "name"),
                    message: format!("Not found: \"{}\"", m.name),
                });
            }
            if m.mount_path.is_empty() {
                self.push(FieldError::required(child(&p, "mountPath")));
            } else if !mount_paths.insert(m.mount_path.as_str()) {
                self.push(FieldError::invalid(
                    child(&p, "mountPath"),
                    &m.mount_path,
                    "must be unique",
                ));
            }
            if let Some(sp) = &m.sub_path {
                if sp.starts_with('/') || sp.split('/').any(|s| s == "..") {
                    self.push(FieldError::invalid(
                        child(&p, "subPath"),
                        sp,
                        "must be a relative path without '..'",
                    ));
                }
            }
            self.one_of(
                &child(&p, "mountPropagation"),
                m.mount_propagation.as_deref(),
                &["Bidirectional", "HostToContainer", "None"],
            );
        }
        if let Some(r) = &c.resources {
            let rp = child(path, "resources");
            for (field, map) in [("limits", &r.limits), ("requests", &r.requests)] {
                self.resource_list(&child(&rp, field), map);
            }
            for (name, request) in &r.requests {
                if let Some(limit) = r.limits.get(name) {
                    if request.millis() > limit.millis() {
                        self.push(FieldError::invalid(
                            child(&child(&rp, "requests"), name),
                            request,
                            &format!("must be less than or equal to {name} limit of {limit}"),
                        ));
                    }
                }
            }
        }
        for (field, probe) in [
            ("livenessProbe", &c.liveness_probe),
            ("readinessProbe", &c.readiness_probe),
            ("startupProbe", &c.startup_probe),
        ] {
            let Some(probe) = probe else { continue };
            let p = child(path, field);
            if init {
                self.push(FieldError::forbidden(
                    &p,
                    "may not be set for init containers",
                ));
                continue;
            }
            self.probe(&p, probe, field != "readinessProbe");
        }
    }

    pub(super) fn resource_list(&mut self, path: &str, map: &BTreeMap<String, Quantity>) {
        for (name, q) in map {
            let p = child(path, name);
            if q.is_negative() {
                self.push(FieldError::invalid(
                    &p,
                    q,
                    "must be greater than or equal to 0",
                ));
            }
            let standard = matches!(
                name.as_str(),
                "cpu" | "memory" | "ephemeral-storage" | "storage"
            ) || name.starts_with("hugepages-")
                || name.contains('/');
            if !standard {
                self.push(FieldError::invalid(
                    &p,
                    name,
                    "must be a standard resource type or fully qualified",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn container(c: serde_json::Value, init: bool) -> Vec<String> {
        let c: Container = decode(c);
        let volumes = BTreeSet::from(["data"]);
        errors(|v| v.container("c", &c, &volumes, true, init))
    }

    #[test]
    fn name_image_and_ports() {
        assert_eq!(
            container(
                json!({"name": "", "image": " nginx", "imagePullPolicy": "Sometimes",
                       "ports": [{"containerPort": 0, "name": "http"},
                                 {"containerPort": 80, "name": "http", "protocol": "ICMP", "hostPort": 70000}]}),
                false
            ),
            [
                "c.name: Required value",
                "c.image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
                "c.imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "c.ports[0].containerPort: Invalid value: \"0\": must be between 1 and 65535, inclusive",
                "c.ports[1].hostPort: Invalid value: \"70000\": must be between 1 and 65535, inclusive",
                "c.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "c.ports[1].name: Duplicate value: \"http\"",
            ]
        );
        assert_eq!(
            container(json!({"name": "a"}), false),
            ["c.image: Required value"]
        );
    }

    #[test]
    fn environment_sources() {
        assert_eq!(
            container(
                json!({"name": "a", "image": "i",
                       "env": [{"name": "A=B"},
                               {"name": "X", "value": "v", "valueFrom": {
                                   "configMapKeyRef": {"name": "", "key": "k"},
                                   "secretKeyRef": {"name": "s", "key": ""}}}],
                       "envFrom": [{}]}),
                false
            ),
            [
                format!("c.env[0].name: Invalid value: \"A=B\": {}", crate::names::NameError::EnvVarName),
                "c.env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty".into(),
                "c.env[1].valueFrom: Invalid value: \"\": may not have more than one field specified at a time".into(),
                "c.env[1].valueFrom.configMapKeyRef.name: Required value".into(),
                "c.env[1].valueFrom.secretKeyRef.key: Required value".into(),
                "c.envFrom[0]: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`".into(),
            ]
        );
    }

    #[test]
    fn volume_mounts_name_a_volume_once_per_path() {
        assert_eq!(
            container(
                json!({"name": "a", "image": "i", "volumeMounts": [
                    {"name": "data", "mountPath": "/d", "subPath": "../x"},
                    {"name": "other", "mountPath": "/d", "mountPropagation": "Sideways"},
                    {"name": "data", "mountPath": ""}]}),
                false
            ),
            [
                "c.volumeMounts[0].subPath: Invalid value: \"../x\": must be a relative path without '..'",
                "c.volumeMounts[1].name: Not found: \"other\"",
                "c.volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
                "c.volumeMounts[1].mountPropagation: Unsupported value: \"Sideways\": supported values: \"Bidirectional\", \"HostToContainer\", \"None\"",
                "c.volumeMounts[2].mountPath: Required value",
            ]
        );
    }

    #[test]
    fn resources_and_probes() {
        assert_eq!(
            container(
                json!({"name": "a", "image": "i",
                       "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2", "gpu": "1"}},
                       "livenessProbe": {"exec": {"command": ["true"]}}}),
                true
            ),
            [
                "c.resources.requests.gpu: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "c.resources.requests.cpu: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                "c.livenessProbe: Forbidden: may not be set for init containers",
            ]
        );
        let q: BTreeMap<String, Quantity> =
            decode(json!({"memory": "-1", "example.com/dongle": "1"}));
        assert_eq!(
            errors(|v| v.resource_list("r", &q)),
            ["r.memory: Invalid value: \"-1\": must be greater than or equal to 0"]
        );
    }
}
