//! Checks an object's values as the API server's validation does, collecting every error with
//! its field path. Runs after defaulting ([`crate::defaults`]), as on the server.

use std::collections::{BTreeMap, BTreeSet};

use super::apps::{Deployment, ReplicaSet};
use super::config::{ConfigMap, Namespace, Secret};
use super::field::{child, index, FieldError, FieldErrors};
use super::intstr::IntOrString;
use super::meta::{ObjectMeta, StringMap};
use super::names;
use super::object::Object;
use super::pod::{Container, Pod, PodSpec, PodTemplateSpec, Probe, Volume};
use super::quantity::Quantity;
use super::security;
use super::selector::Selector;
use super::service::{Endpoints, Service};
use super::storage::{PersistentVolume, PersistentVolumeClaim};

type NameCheck = fn(&str) -> Result<(), String>;

impl Object {
    /// Every invalid field of the object, or `Ok`.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut v = Validator::default();
        match self {
            Object::Pod(o) => v.pod(o),
            Object::Service(o) => v.service(o),
            Object::Endpoints(o) => v.endpoints(o),
            Object::ConfigMap(o) => v.config_map(o),
            Object::Secret(o) => v.secret(o),
            Object::Namespace(o) => v.namespace(o),
            Object::PersistentVolume(o) => v.persistent_volume(o),
            Object::PersistentVolumeClaim(o) => v.persistent_volume_claim(o),
            Object::ReplicaSet(o) => v.replica_set(o),
            Object::Deployment(o) => v.deployment(o),
        }
        v.errors.into_result()
    }
}

#[derive(Default)]
struct Validator {
    errors: FieldErrors,
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

impl Validator {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn check(&mut self, path: &str, value: &str, check: NameCheck) {
        if let Err(detail) = check(value) {
            self.push(FieldError::invalid(path, value, &detail));
        }
    }

    fn one_of(&mut self, path: &str, value: Option<&str>, allowed: &[&str]) {
        if let Some(v) = value {
            if !allowed.contains(&v) {
                self.push(FieldError::unsupported(path, v, allowed));
            }
        }
    }

    fn non_negative(&mut self, path: &str, value: Option<i64>) {
        if let Some(v) = value.filter(|v| *v < 0) {
            self.push(FieldError::invalid(
                path,
                v,
                "must be greater than or equal to 0",
            ));
        }
    }

    fn port(&mut self, path: &str, port: i32) {
        if !(1..=65535).contains(&port) {
            self.push(FieldError::invalid(
                path,
                port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }

    /// `metadata` of a top-level object; `name_check` is the kind's name format.
    fn meta(&mut self, m: &ObjectMeta, namespaced: bool, name_check: NameCheck) {
        match (&m.name, &m.generate_name) {
            (Some(n), _) if !n.is_empty() => self.check("metadata.name", n, name_check),
            (_, Some(g)) if !g.is_empty() => {
                // The server appends five characters; the prefix must allow that.
                let probe = format!("{g}abcde");
                if let Err(d) = name_check(&probe) {
                    self.push(FieldError::invalid("metadata.generateName", g, &d));
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

    fn labels(&mut self, path: &str, labels: &StringMap) {
        for (k, v) in labels {
            self.check(path, k, names::qualified_name);
            if let Err(d) = names::label_value(v) {
                self.push(FieldError::invalid(child(path, k), v, &d));
            }
        }
    }

    fn annotations(&mut self, path: &str, annotations: &StringMap) {
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

    fn pod(&mut self, pod: &Pod) {
        self.meta(&pod.metadata, true, names::dns1123_subdomain);
        self.pod_spec("spec", &pod.spec, true);
    }

    fn pod_template(&mut self, path: &str, t: &PodTemplateSpec) {
        let meta = child(path, "metadata");
        self.labels(&child(&meta, "labels"), &t.metadata.labels);
        self.annotations(&child(&meta, "annotations"), &t.metadata.annotations);
        let spec = child(path, "spec");
        self.pod_spec(&spec, &t.spec, false);
        if let Some(policy) = t.spec.restart_policy.as_deref().filter(|p| *p != "Always") {
            self.push(FieldError::unsupported(
                child(&spec, "restartPolicy"),
                policy,
                &["Always"],
            ));
        }
    }

    /// A pod spec; `image_required` is true for Pods (templates may leave images to tooling).
    fn pod_spec(&mut self, path: &str, spec: &PodSpec, image_required: bool) {
        let mut volumes = BTreeSet::new();
        for (i, vol) in spec.volumes.iter().enumerate() {
            let p = index(&child(path, "volumes"), i);
            self.volume(&p, vol);
            if !volumes.insert(vol.name.as_str()) {
                self.push(FieldError::duplicate(child(&p, "name"), &vol.name));
            }
        }
        let containers = child(path, "containers");
        if spec.containers.is_empty() {
            self.push(FieldError::required(&containers));
        }
        let mut names = BTreeSet::new();
        let all = spec
            .init_containers
            .iter()
            .enumerate()
            .map(|(i, c)| (index(&child(path, "initContainers"), i), c, true))
            .chain(
                spec.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (index(&containers, i), c, false)),
            );
        for (p, c, init) in all {
            self.container(&p, c, &volumes, image_required, init);
            if !names.insert(c.name.as_str()) {
                self.push(FieldError::duplicate(child(&p, "name"), &c.name));
            }
        }
        self.one_of(
            &child(path, "restartPolicy"),
            spec.restart_policy.as_deref(),
            &["Always", "Never", "OnFailure"],
        );
        self.one_of(
            &child(path, "dnsPolicy"),
            spec.dns_policy.as_deref(),
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        );
        self.non_negative(
            &child(path, "terminationGracePeriodSeconds"),
            spec.termination_grace_period_seconds,
        );
        if let Some(d) = spec.active_deadline_seconds.filter(|d| *d <= 0) {
            self.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                d,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
        if let Some(h) = &spec.hostname {
            self.check(&child(path, "hostname"), h, names::dns1123_label);
        }
        if let Some(s) = &spec.subdomain {
            self.check(&child(path, "subdomain"), s, names::dns1123_label);
        }
        self.labels(&child(path, "nodeSelector"), &spec.node_selector);
        if spec.share_process_namespace == Some(true) {
            // Each berth container has its own pid namespace; sharing one would need the
            // pod's infra to hold a pid namespace its containers join.
            self.push(FieldError::unsupported(
                child(path, "shareProcessNamespace"),
                "true",
                &["false"],
            ));
        }
        if let Some(sc) = &spec.security_context {
            let host = (spec.host_network == Some(true), spec.host_ipc == Some(true));
            let p = child(path, "securityContext");
            for e in security::pod_errors(&p, sc, host.0, host.1) {
                self.push(e);
            }
        }
    }

    fn container(
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

    fn resource_list(&mut self, path: &str, map: &BTreeMap<String, Quantity>) {
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

    /// A probe; `success_one` when successThreshold must be 1 (liveness and startup).
    fn probe(&mut self, path: &str, probe: &Probe, success_one: bool) {
        let handlers = [
            probe.http_get.is_some(),
            probe.tcp_socket.is_some(),
            probe.exec.is_some(),
            probe.grpc.is_some(),
        ]
        .iter()
        .filter(|h| **h)
        .count();
        match handlers {
            0 => self.push(FieldError::required_because(
                path,
                "must specify a handler type",
            )),
            1 => {}
            _ => self.push(FieldError::forbidden(
                path,
                "may not specify more than 1 handler type",
            )),
        }
        if let Some(h) = &probe.http_get {
            self.probe_port(&child(&child(path, "httpGet"), "port"), &h.port);
            self.one_of(
                &child(&child(path, "httpGet"), "scheme"),
                h.scheme.as_deref(),
                &["HTTP", "HTTPS"],
            );
        }
        if let Some(t) = &probe.tcp_socket {
            self.probe_port(&child(&child(path, "tcpSocket"), "port"), &t.port);
        }
        if let Some(e) = &probe.exec {
            if e.command.is_empty() {
                self.push(FieldError::required(child(&child(path, "exec"), "command")));
            }
        }
        for (field, value, min) in [
            ("initialDelaySeconds", probe.initial_delay_seconds, 0),
            ("periodSeconds", probe.period_seconds, 1),
            ("timeoutSeconds", probe.timeout_seconds, 1),
            ("failureThreshold", probe.failure_threshold, 1),
            ("successThreshold", probe.success_threshold, 1),
        ] {
            if let Some(v) = value.filter(|v| *v < min) {
                self.push(FieldError::invalid(
                    child(path, field),
                    v,
                    &format!("must be greater than or equal to {min}"),
                ));
            }
        }
        if success_one {
            if let Some(v) = probe.success_threshold.filter(|v| *v != 1) {
                self.push(FieldError::invalid(
                    child(path, "successThreshold"),
                    v,
                    "must be 1",
                ));
            }
        }
    }

    fn probe_port(&mut self, path: &str, port: &IntOrString) {
        match port {
            IntOrString::Int(p) => self.port(path, *p),
            IntOrString::String(name) => self.check(path, name, names::port_name),
        }
    }

    fn volume(&mut self, path: &str, vol: &Volume) {
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

    fn host_path(&mut self, path: &str, host: &str, type_: Option<&str>) {
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

    fn key_paths(&mut self, path: &str, items: &[super::pod::KeyToPath]) {
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

    fn service(&mut self, svc: &Service) {
        self.meta(&svc.metadata, true, names::dns1035_label);
        let spec = &svc.spec;
        let type_ = spec.type_();
        if !matches!(type_, "ClusterIP" | "NodePort") {
            self.push(FieldError::unsupported(
                "spec.type",
                type_,
                &["ClusterIP", "NodePort"],
            ));
        }
        let headless = spec.cluster_ip.as_deref() == Some("None");
        if let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && !headless)
        {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                self.push(FieldError::invalid(
                    "spec.clusterIP",
                    ip,
                    "must be a valid IPv4 address, (e.g. 10.9.8.7), or 'None'",
                ));
            }
        }
        if headless && type_ == "NodePort" {
            self.push(FieldError::invalid(
                "spec.clusterIP",
                "None",
                "may not be set to 'None' for NodePort services",
            ));
        }
        if spec.ports.is_empty() && !headless {
            self.push(FieldError::required("spec.ports"));
        }
        let mut port_names = BTreeSet::new();
        let mut port_keys = BTreeSet::new();
        let mut node_ports = BTreeSet::new();
        for (i, port) in spec.ports.iter().enumerate() {
            let p = index("spec.ports", i);
            match &port.name {
                Some(name) if !name.is_empty() => {
                    self.check(&child(&p, "name"), name, names::dns1123_label);
                    if !port_names.insert(name.as_str()) {
                        self.push(FieldError::duplicate(child(&p, "name"), name));
                    }
                }
                _ if spec.ports.len() > 1 => self.push(FieldError::required(child(&p, "name"))),
                _ => {}
            }
            self.port(&child(&p, "port"), port.port);
            self.one_of(&child(&p, "protocol"), port.protocol.as_deref(), PROTOCOLS);
            if !port_keys.insert((port.port, port.protocol())) {
                self.push(FieldError::duplicate(
                    &p,
                    format!("{}/{}", port.port, port.protocol()),
                ));
            }
            if let Some(target) = &port.target_port {
                self.probe_port(&child(&p, "targetPort"), target);
            }
            match port.node_port.filter(|n| *n != 0) {
                Some(_) if type_ == "ClusterIP" => self.push(FieldError::forbidden(
                    child(&p, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                )),
                Some(n) => {
                    self.port(&child(&p, "nodePort"), n);
                    if !node_ports.insert((n, port.protocol())) {
                        self.push(FieldError::duplicate(
                            child(&p, "nodePort"),
                            format!("{n}/{}", port.protocol()),
                        ));
                    }
                }
                None => {}
            }
        }
        let sel = "spec.selector";
        for (k, v) in &spec.selector {
            self.check(sel, k, names::qualified_name);
            if let Err(d) = names::label_value(v) {
                self.push(FieldError::invalid(child(sel, k), v, &d));
            }
        }
        self.one_of(
            "spec.sessionAffinity",
            spec.session_affinity.as_deref(),
            &["ClientIP", "None"],
        );
        for (i, ip) in spec.external_ips.iter().enumerate() {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                self.push(FieldError::invalid(
                    index("spec.externalIPs", i),
                    ip,
                    "must be a valid IPv4 address",
                ));
            }
        }
    }

    fn endpoints(&mut self, ep: &Endpoints) {
        self.meta(&ep.metadata, true, names::dns1123_subdomain);
        for (i, subset) in ep.subsets.iter().enumerate() {
            let p = index("subsets", i);
            for (field, addrs) in [
                ("addresses", &subset.addresses),
                ("notReadyAddresses", &subset.not_ready_addresses),
            ] {
                for (j, a) in addrs.iter().enumerate() {
                    if a.ip.parse::<std::net::Ipv4Addr>().is_err() {
                        self.push(FieldError::invalid(
                            child(&index(&child(&p, field), j), "ip"),
                            &a.ip,
                            "must be a valid IPv4 address",
                        ));
                    }
                }
            }
            for (j, port) in subset.ports.iter().enumerate() {
                let pp = index(&child(&p, "ports"), j);
                self.port(&child(&pp, "port"), port.port);
                self.one_of(&child(&pp, "protocol"), port.protocol.as_deref(), PROTOCOLS);
            }
        }
    }

    fn config_data_keys<'a>(&mut self, path: &str, keys: impl Iterator<Item = &'a String>) {
        for k in keys {
            self.check(path, k, names::config_key);
        }
    }

    fn config_map(&mut self, cm: &ConfigMap) {
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

    fn secret(&mut self, s: &Secret) {
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

    fn namespace(&mut self, ns: &Namespace) {
        self.meta(&ns.metadata, false, names::dns1123_label);
    }

    fn persistent_volume(&mut self, pv: &PersistentVolume) {
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

    fn persistent_volume_claim(&mut self, pvc: &PersistentVolumeClaim) {
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

    /// selector + template of a ReplicaSet or Deployment.
    fn workload(
        &mut self,
        selector: &super::meta::LabelSelector,
        template: &PodTemplateSpec,
        replicas: Option<i32>,
        min_ready: Option<i32>,
    ) {
        self.non_negative("spec.replicas", replicas.map(i64::from));
        self.non_negative("spec.minReadySeconds", min_ready.map(i64::from));
        if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
            self.push(FieldError::invalid(
                "spec.selector",
                "{}",
                "empty selector is invalid for deployment",
            ));
        } else {
            match Selector::from_label_selector(selector, "spec.selector") {
                Ok(sel) => {
                    if !sel.matches(&template.metadata.labels) {
                        self.push(FieldError::invalid(
                            "spec.template.metadata.labels",
                            format_labels(&template.metadata.labels),
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
                Err(e) => self.errors.0.extend(e.0),
            }
        }
        self.pod_template("spec.template", template);
    }

    fn replica_set(&mut self, rs: &ReplicaSet) {
        self.meta(&rs.metadata, true, names::dns1123_subdomain);
        let s = &rs.spec;
        self.workload(&s.selector, &s.template, s.replicas, s.min_ready_seconds);
    }

    fn deployment(&mut self, d: &Deployment) {
        self.meta(&d.metadata, true, names::dns1123_subdomain);
        let s = &d.spec;
        self.workload(&s.selector, &s.template, s.replicas, s.min_ready_seconds);
        self.non_negative(
            "spec.revisionHistoryLimit",
            s.revision_history_limit.map(i64::from),
        );
        if let Some(deadline) = s.progress_deadline_seconds {
            if deadline <= s.min_ready_seconds.unwrap_or(0) {
                self.push(FieldError::invalid(
                    "spec.progressDeadlineSeconds",
                    deadline,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        let Some(strategy) = &s.strategy else { return };
        let type_ = strategy.type_.as_deref().unwrap_or("RollingUpdate");
        match type_ {
            "Recreate" => {
                if strategy.rolling_update.is_some() {
                    self.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = &strategy.rolling_update {
                    let surge = self.amount("spec.strategy.rollingUpdate.maxSurge", &ru.max_surge);
                    let unavailable = self.amount(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        &ru.max_unavailable,
                    );
                    if surge == Some(0) && unavailable == Some(0) {
                        self.push(FieldError::invalid(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            0,
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                    if let Some(IntOrString::String(p)) = &ru.max_unavailable {
                        if ru.max_unavailable.as_ref().and_then(IntOrString::percent) > Some(100) {
                            self.push(FieldError::invalid(
                                "spec.strategy.rollingUpdate.maxUnavailable",
                                p,
                                "must not be greater than 100%",
                            ));
                        }
                    }
                }
            }
            other => self.push(FieldError::unsupported(
                "spec.strategy.type",
                other,
                &["Recreate", "RollingUpdate"],
            )),
        }
    }

    /// A maxSurge/maxUnavailable value; returns 0 for "0" and "0%" so the both-zero rule can
    /// be checked, `None` for anything else.
    fn amount(&mut self, path: &str, v: &Option<IntOrString>) -> Option<i64> {
        match v {
            None => Some(25),
            Some(IntOrString::Int(i)) if *i < 0 => {
                self.push(FieldError::invalid(
                    path,
                    i,
                    "must be greater than or equal to 0",
                ));
                None
            }
            Some(IntOrString::Int(i)) => Some(i64::from(*i)),
            Some(s @ IntOrString::String(text)) => match s.percent() {
                Some(p) if p >= 0 => Some(p),
                _ => {
                    self.push(FieldError::invalid(
                        path,
                        text,
                        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    ));
                    None
                }
            },
        }
    }
}

fn format_labels(labels: &StringMap) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

fn decode_base64(v: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v).ok()
}
