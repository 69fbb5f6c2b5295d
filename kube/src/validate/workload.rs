//! ReplicaSets and Deployments: replicas, a selector that matches the template, the rollout
//! strategy.

use crate::apps::{Deployment, ReplicaSet};
use crate::field::FieldError;
use crate::intstr::IntOrString;
use crate::meta::{LabelSelector, StringMap};
use crate::names;
use crate::pod::PodTemplateSpec;
use crate::selector::Selector;

use super::Validator;

impl Validator {
    /// selector + template of a ReplicaSet or Deployment.
    fn workload(
        &mut self,
        selector: &LabelSelector,
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

    pub(super) fn replica_set(&mut self, rs: &ReplicaSet) {
        self.meta(&rs.metadata, true, names::dns1123_subdomain);
        let s = &rs.spec;
        self.workload(&s.selector, &s.template, s.replicas, s.min_ready_seconds);
    }

    pub(super) fn deployment(&mut self, d: &Deployment) {
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

/// Labels as `k=v,k=v`, the way the API server quotes them in this message.
fn format_labels(labels: &StringMap) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn deployment(spec: serde_json::Value) -> Vec<String> {
        let mut full = json!({
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c"}]}},
        });
        if let (Some(full), Some(spec)) = (full.as_object_mut(), spec.as_object()) {
            full.extend(spec.clone());
        }
        let d: Deployment = decode(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": full}));
        errors(|v| v.deployment(&d))
    }

    #[test]
    fn the_selector_must_match_the_template() {
        assert!(deployment(json!({})).is_empty());
        assert_eq!(
            deployment(json!({"selector": {}})),
            ["spec.selector: Invalid value: \"{}\": empty selector is invalid for deployment"]
        );
        assert_eq!(
            deployment(json!({"selector": {"matchLabels": {"app": "db"}}, "replicas": -1})),
            [
                "spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: \"app=web\": `selector` does not match template `labels`",
            ]
        );
    }

    #[test]
    fn strategies_and_rollout_amounts() {
        assert_eq!(
            deployment(json!({"strategy": {"type": "Recreate", "rollingUpdate": {}}})),
            ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
        );
        assert_eq!(
            deployment(json!({"strategy": {"type": "BlueGreen"}})),
            ["spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\""]
        );
        assert_eq!(
            deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}})),
            ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0\": may not be 0 when `maxSurge` is 0"]
        );
        assert_eq!(
            deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": -1, "maxUnavailable": "150%"}}})),
            [
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%",
            ]
        );
        let errs = deployment(json!({"strategy": {"rollingUpdate": {"maxSurge": "lots"}}}));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"lots\": a valid percent string"
        ));
        assert_eq!(
            deployment(json!({"minReadySeconds": 10, "progressDeadlineSeconds": 10, "revisionHistoryLimit": -1})),
            [
                "spec.revisionHistoryLimit: Invalid value: \"-1\": must be greater than or equal to 0",
                "spec.progressDeadlineSeconds: Invalid value: \"10\": must be greater than minReadySeconds",
            ]
        );
    }

    #[test]
    fn replica_sets_share_the_workload_checks() {
        let rs: ReplicaSet = decode(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "r"},
            "spec": {"minReadySeconds": -5, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c"}]}}}}));
        assert_eq!(
            errors(|v| v.replica_set(&rs)),
            ["spec.minReadySeconds: Invalid value: \"-5\": must be greater than or equal to 0"]
        );
        let labels: StringMap = decode(json!({"b": "2", "a": "1"}));
        assert_eq!(format_labels(&labels), "a=1,b=2");
    }
}
