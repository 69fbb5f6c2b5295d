//! Pods, pod templates and the pod spec they share: volumes, containers, policies and the
//! pod-level security context.

use std::collections::BTreeSet;

use crate::field::{child, index, FieldError};
use crate::names;
use crate::pod::{Pod, PodSpec, PodTemplateSpec};
use crate::security;

use super::Validator;

impl Validator {
    pub(super) fn pod(&mut self, pod: &Pod) {
        self.meta(&pod.metadata, true, names::dns1123_subdomain);
        self.pod_spec("spec", &pod.spec, true);
    }

    pub(super) fn pod_template(&mut self, path: &str, t: &PodTemplateSpec) {
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn pod(spec: serde_json::Value) -> Vec<String> {
        let p: Pod = decode(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"}, "spec": spec}));
        errors(|v| v.pod(&p))
    }

    #[test]
    fn a_pod_needs_containers_with_unique_names_and_images() {
        assert_eq!(pod(json!({})), ["spec.containers: Required value"]);
        assert_eq!(
            pod(json!({"initContainers": [{"name": "a", "image": "i"}],
                       "containers": [{"name": "a", "image": "i"}, {"name": "b"}]})),
            [
                "spec.containers[0].name: Duplicate value: \"a\"",
                "spec.containers[1].image: Required value",
            ]
        );
    }

    #[test]
    fn volumes_are_unique_and_policies_known() {
        let errs = pod(json!({
            "containers": [{"name": "a", "image": "i"}],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}],
            "restartPolicy": "Sometimes",
            "dnsPolicy": "ClusterFirst",
            "activeDeadlineSeconds": 0,
            "terminationGracePeriodSeconds": -1,
            "hostname": "Host",
            "shareProcessNamespace": true,
        }));
        assert_eq!(
            errs[..4],
            [
                "spec.volumes[1].name: Duplicate value: \"v\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"",
                "spec.terminationGracePeriodSeconds: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.activeDeadlineSeconds: Invalid value: \"0\": must be between 1 and 2147483647, inclusive",
            ]
        );
        assert!(errs[4].starts_with("spec.hostname: Invalid value: \"Host\""));
        assert_eq!(
            errs[5],
            "spec.shareProcessNamespace: Unsupported value: \"true\": supported values: \"false\""
        );
        assert_eq!(errs.len(), 6);
    }

    #[test]
    fn templates_may_leave_images_out_but_must_restart_always() {
        let t: PodTemplateSpec = decode(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "a"}], "restartPolicy": "Never"},
        }));
        assert_eq!(
            errors(|v| v.pod_template("spec.template", &t)),
            ["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
        );
    }
}
