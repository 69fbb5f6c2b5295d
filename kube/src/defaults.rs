//! The defaults the API server fills in before validating and storing an object, so what
//! berth stores and returns reads as a cluster's would (and pod-template hashes agree
//! whether or not a manifest spelled a default out).

use super::apps::DeploymentStrategy;
use super::apps::RollingUpdateDeployment;
use super::intstr::IntOrString;
use super::object::Object;
use super::pod::{PodSpec, Probe};

impl Object {
    /// Fills unset fields with Kubernetes' defaults and moves a Secret's `stringData` into
    /// `data`. Idempotent.
    pub fn apply_defaults(&mut self) {
        match self {
            Object::Pod(p) => pod_spec(&mut p.spec),
            Object::ReplicaSet(rs) => {
                rs.spec.replicas.get_or_insert(1);
                pod_spec(&mut rs.spec.template.spec);
            }
            Object::Deployment(d) => {
                let s = &mut d.spec;
                s.replicas.get_or_insert(1);
                s.revision_history_limit.get_or_insert(10);
                s.progress_deadline_seconds.get_or_insert(600);
                let strategy = s.strategy.get_or_insert_with(DeploymentStrategy::default);
                let type_ = strategy
                    .type_
                    .get_or_insert_with(|| "RollingUpdate".to_string());
                if type_ == "RollingUpdate" {
                    let ru = strategy
                        .rolling_update
                        .get_or_insert_with(RollingUpdateDeployment::default);
                    ru.max_surge
                        .get_or_insert_with(|| IntOrString::String("25%".to_string()));
                    ru.max_unavailable
                        .get_or_insert_with(|| IntOrString::String("25%".to_string()));
                }
                pod_spec(&mut s.template.spec);
            }
            Object::Service(svc) => {
                let s = &mut svc.spec;
                s.type_.get_or_insert_with(|| "ClusterIP".to_string());
                s.session_affinity.get_or_insert_with(|| "None".to_string());
                for p in &mut s.ports {
                    p.protocol.get_or_insert_with(|| "TCP".to_string());
                    let port = p.port;
                    p.target_port.get_or_insert(IntOrString::Int(port));
                }
            }
            Object::Endpoints(ep) => {
                for subset in &mut ep.subsets {
                    for p in &mut subset.ports {
                        p.protocol.get_or_insert_with(|| "TCP".to_string());
                    }
                }
            }
            Object::Secret(s) => {
                s.type_.get_or_insert_with(|| "Opaque".to_string());
                s.merge_string_data();
            }
            Object::PersistentVolume(pv) => {
                pv.spec
                    .persistent_volume_reclaim_policy
                    .get_or_insert_with(|| "Retain".to_string());
                pv.spec
                    .volume_mode
                    .get_or_insert_with(|| "Filesystem".to_string());
            }
            Object::PersistentVolumeClaim(pvc) => {
                pvc.spec
                    .volume_mode
                    .get_or_insert_with(|| "Filesystem".to_string());
            }
            Object::ConfigMap(_) | Object::Namespace(_) => {}
        }
    }
}

fn probe(p: &mut Option<Probe>) {
    if let Some(p) = p {
        p.initial_delay_seconds.get_or_insert(0);
        p.period_seconds.get_or_insert(10);
        p.timeout_seconds.get_or_insert(1);
        p.failure_threshold.get_or_insert(3);
        p.success_threshold.get_or_insert(1);
        if let Some(h) = &mut p.http_get {
            h.path.get_or_insert_with(|| "/".to_string());
            h.scheme.get_or_insert_with(|| "HTTP".to_string());
        }
    }
}

/// Fills a pod spec's defaults (also used to compare pod templates as the API server stores them).
pub fn pod_spec(spec: &mut PodSpec) {
    spec.restart_policy
        .get_or_insert_with(|| "Always".to_string());
    spec.dns_policy
        .get_or_insert_with(|| "ClusterFirst".to_string());
    spec.termination_grace_period_seconds.get_or_insert(30);
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        for port in &mut c.ports {
            port.protocol.get_or_insert_with(|| "TCP".to_string());
        }
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".to_string());
        c.termination_message_policy
            .get_or_insert_with(|| "File".to_string());
        probe(&mut c.liveness_probe);
        probe(&mut c.readiness_probe);
        probe(&mut c.startup_probe);
    }
    for v in &mut spec.volumes {
        if let Some(cm) = &mut v.config_map {
            cm.default_mode.get_or_insert(0o644);
        }
        if let Some(s) = &mut v.secret {
            s.default_mode.get_or_insert(0o644);
        }
        if let Some(h) = &mut v.host_path {
            h.type_.get_or_insert_with(String::new);
        }
    }
}
