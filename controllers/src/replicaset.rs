//! The ReplicaSet controller: keeps `spec.replicas` active pods that match a ReplicaSet's
//! selector and carry its controller reference. It adopts matching orphans, releases pods
//! whose labels no longer match, replaces deleted and failed pods, deletes extras (pending
//! and not-ready ones first), and fills `status` as Kubernetes does.
//!
//! [`plan`] is the decision, a pure function of the ReplicaSet and the pods in its namespace;
//! the loop around it only reads the store and carries the plan out.

use std::cmp::Reverse;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use berth_kube::apps::{ReplicaSet, ReplicaSetStatus};
use berth_kube::kinds::{self, Kind};
use berth_kube::meta::OwnerReference;
use berth_kube::pod::Pod;
use berth_kube::{FieldErrors, Selector};
use berth_objectstore::resync;
use berth_objectstore::store::{Preconditions, Propagation};
use berth_objectstore::{Controller, ObjectStore};

/// The ReplicaSet controller, for the daemon\'s controller list.
pub fn controller() -> Controller {
    static WATCHED: &[&Kind] = &[&kinds::REPLICA_SET, &kinds::POD];
    resync::controller("replicasets", WATCHED, Duration::from_secs(1), sync_all)
}

/// What one sync of one ReplicaSet should do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Orphan pods to take (add the controller reference).
    pub adopt: Vec<String>,
    /// Owned pods whose labels no longer match (drop the controller reference).
    pub release: Vec<String>,
    /// How many pods to create from the template.
    pub create: usize,
    /// Pods to delete: failed or finished ones, then extras.
    pub delete: Vec<String>,
    /// The status to record.
    pub status: ReplicaSetStatus,
}

/// Whether a pod counts toward replicas: not being deleted, not finished.
fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether the pod is Ready.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| s.is_ready())
}

/// Whether the pod has been Ready for at least `min_ready_seconds` at `now`.
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    let Some(ready) = pod.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.is_true())
    }) else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    ready
        .last_transition_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|since| {
            now.signed_duration_since(since.with_timezone(&Utc))
                .num_seconds()
                >= i64::from(min_ready_seconds)
        })
}

/// Deletion order: unscheduled/pending before running, not ready before ready, more restarts
/// first, newest first (the API server's `ActivePodsWithRanks`, simplified for one node).
fn deletion_rank(pod: &Pod) -> (u8, bool, Reverse<i32>, Reverse<String>) {
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        None | Some("Pending") => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    let restarts = pod.status.as_ref().map_or(0, |s| {
        s.container_statuses.iter().map(|c| c.restart_count).sum()
    });
    let created = pod.metadata.creation_timestamp.clone().unwrap_or_default();
    (phase, is_ready(pod), Reverse(restarts), Reverse(created))
}

/// Decides one sync of `rs` given every pod in its namespace.
pub fn plan(rs: &ReplicaSet, pods: &[Pod], now: DateTime<Utc>) -> Result<Plan, FieldErrors> {
    let selector = Selector::from_label_selector(&rs.spec.selector, "spec.selector")?;
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut plan = Plan::default();
    let mut mine: Vec<&Pod> = Vec::new();
    for pod in pods {
        let name = pod.metadata.name().to_string();
        let matches = !selector.is_empty() && selector.matches(&pod.metadata.labels);
        match pod.metadata.controller() {
            Some(r) if r.uid == uid => {
                if matches {
                    mine.push(pod);
                } else {
                    plan.release.push(name);
                }
            }
            Some(_) => {}
            None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                plan.adopt.push(name);
                mine.push(pod);
            }
            None => {}
        }
    }
    let (mut active, finished): (Vec<&Pod>, Vec<&Pod>) = mine.iter().partition(|p| is_active(p));
    plan.delete.extend(
        finished
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.metadata.name().to_string()),
    );
    let desired = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
    if !deleting {
        if active.len() < desired {
            plan.create = desired - active.len();
        } else if active.len() > desired {
            active.sort_by_key(|p| deletion_rank(p));
            let extra = active.len() - desired;
            plan.delete.extend(
                active[..extra]
                    .iter()
                    .map(|p| p.metadata.name().to_string()),
            );
        }
    }
    let template_labels = &rs.spec.template.metadata.labels;
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(active.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    plan.status = ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
        })),
        ready_replicas: Some(count(&is_ready)),
        available_replicas: Some(count(&|p| is_available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        conditions: rs
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    };
    Ok(plan)
}

/// A new pod for `rs` from its template (the store fills the name from `generateName`).
pub fn new_pod(rs: &ReplicaSet) -> Value {
    let t = &rs.spec.template;
    let owner = OwnerReference::controlled_by("apps/v1", "ReplicaSet", &rs.metadata);
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{}-", rs.metadata.name()),
            "namespace": rs.metadata.namespace(),
            "ownerReferences": [owner],
        },
        "spec": t.spec,
    });
    if !t.metadata.labels.is_empty() {
        pod["metadata"]["labels"] = json!(t.metadata.labels);
    }
    if !t.metadata.annotations.is_empty() {
        pod["metadata"]["annotations"] = json!(t.metadata.annotations);
    }
    pod
}

pub(super) fn sync_all(store: &ObjectStore) {
    let sets: Vec<ReplicaSet> = store.list_typed(&kinds::REPLICA_SET, None);
    let pods: Vec<Pod> = store.list_typed(&kinds::POD, None);
    let now = Utc::now();
    for rs in &sets {
        let ns = rs.metadata.namespace();
        let in_ns: Vec<Pod> = pods
            .iter()
            .filter(|p| p.metadata.namespace() == ns)
            .cloned()
            .collect();
        let span = tracing::debug_span!("replicaset", namespace = ns, name = rs.metadata.name());
        let _enter = span.enter();
        match plan(rs, &in_ns, now) {
            Ok(p) => apply(store, rs, p),
            Err(e) => tracing::warn!("invalid selector: {e}"),
        }
    }
}

fn set_owner(store: &ObjectStore, ns: &str, pod: &str, owner: Option<&OwnerReference>, uid: &str) {
    let Ok(mut v) = store.get(&kinds::POD, ns, pod) else {
        return;
    };
    let refs = v["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut refs: Vec<Value> = refs
        .into_iter()
        .filter(|r| r["uid"].as_str() != Some(uid))
        .collect();
    if let Some(o) = owner {
        if refs.iter().any(|r| r["controller"] == json!(true)) {
            return;
        }
        refs.push(json!(o));
    }
    v["metadata"]["ownerReferences"] = json!(refs);
    if let Err(e) = store.update(&kinds::POD, v) {
        tracing::info!(pod, "cannot change owner: {e}");
    }
}

fn apply(store: &ObjectStore, rs: &ReplicaSet, plan: Plan) {
    let ns = rs.metadata.namespace();
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let owner = OwnerReference::controlled_by("apps/v1", "ReplicaSet", &rs.metadata);
    for pod in &plan.adopt {
        tracing::info!(pod, "adopting");
        set_owner(store, ns, pod, Some(&owner), uid);
    }
    for pod in &plan.release {
        tracing::info!(pod, "releasing");
        set_owner(store, ns, pod, None, uid);
    }
    for _ in 0..plan.create {
        match store.create(&kinds::POD, new_pod(rs)) {
            Ok(p) => tracing::info!(pod = p["metadata"]["name"].as_str(), "created"),
            Err(e) => {
                tracing::warn!("cannot create pod: {e}");
                break;
            }
        }
    }
    for pod in &plan.delete {
        tracing::info!(pod, "deleting");
        if let Err(e) = store.delete(
            &kinds::POD,
            ns,
            pod,
            Propagation::Background,
            Preconditions::default(),
        ) {
            tracing::info!(pod, "cannot delete: {e}");
        }
    }
    if rs.status.as_ref() != Some(&plan.status) {
        let mut updated = rs.clone();
        updated.status = Some(plan.status);
        match serde_json::to_value(&updated) {
            Ok(v) => {
                if let Err(e) = store.update_status(&kinds::REPLICA_SET, v) {
                    tracing::debug!("status not written: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot encode status: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::meta::{Condition, LabelSelector, ObjectMeta};
    use berth_kube::pod::PodStatus;

    fn labels(pairs: &[(&str, &str)]) -> berth_kube::meta::StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rs(replicas: i32) -> ReplicaSet {
        let mut rs = ReplicaSet {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            metadata: ObjectMeta {
                name: Some("web".into()),
                uid: Some("rs-uid".into()),
                generation: Some(4),
                ..ObjectMeta::default()
            },
            ..ReplicaSet::default()
        };
        rs.spec.replicas = Some(replicas);
        rs.spec.selector = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            ..LabelSelector::default()
        };
        rs.spec.template.metadata.labels = labels(&[("app", "web"), ("tier", "front")]);
        rs
    }

    fn pod(name: &str, owner: Option<&str>, phase: &str, ready: bool) -> Pod {
        let mut p = Pod {
            api_version: "v1".into(),
            kind: "Pod".into(),
            ..Pod::default()
        };
        p.metadata.name = Some(name.into());
        p.metadata.labels = labels(&[("app", "web"), ("tier", "front")]);
        p.metadata.creation_timestamp = Some(format!("2026-01-01T00:00:0{}Z", name.len() % 10));
        if let Some(uid) = owner {
            p.metadata.owner_references = vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "x".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            }];
        }
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            conditions: vec![Condition {
                last_transition_time: Some("2026-01-01T00:00:00Z".into()),
                ..Condition::new("Ready", ready, "", "")
            }],
            ..PodStatus::default()
        });
        p
    }

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:01:00Z".parse().unwrap()
    }

    #[test]
    fn creates_missing_pods_and_counts_status() {
        let pods = vec![
            pod("a", Some("rs-uid"), "Running", true),
            pod("b", Some("rs-uid"), "Pending", false),
        ];
        let p = plan(&rs(3), &pods, now()).unwrap();
        assert_eq!(p.create, 1);
        assert!(p.delete.is_empty() && p.adopt.is_empty() && p.release.is_empty());
        assert_eq!(p.status.replicas, 2);
        assert_eq!(p.status.ready_replicas, Some(1));
        assert_eq!(p.status.available_replicas, Some(1));
        assert_eq!(p.status.fully_labeled_replicas, Some(2));
        assert_eq!(p.status.observed_generation, Some(4));
    }

    #[test]
    fn replaces_failed_pods_and_ignores_deleted_ones() {
        let mut gone = pod("c", Some("rs-uid"), "Running", true);
        gone.metadata.deletion_timestamp = Some("2026-01-01T00:00:30Z".into());
        let pods = vec![
            pod("a", Some("rs-uid"), "Running", true),
            pod("b", Some("rs-uid"), "Failed", false),
            gone,
        ];
        let p = plan(&rs(3), &pods, now()).unwrap();
        assert_eq!(p.delete, vec!["b".to_string()]);
        assert_eq!(p.create, 2);
        assert_eq!(p.status.replicas, 1);
    }

    #[test]
    fn deletes_extras_not_ready_first() {
        let pods = vec![
            pod("ready1", Some("rs-uid"), "Running", true),
            pod("unready", Some("rs-uid"), "Running", false),
            pod("pending", Some("rs-uid"), "Pending", false),
            pod("ready22", Some("rs-uid"), "Running", true),
        ];
        let p = plan(&rs(1), &pods, now()).unwrap();
        assert_eq!(
            p.delete,
            vec![
                "pending".to_string(),
                "unready".to_string(),
                "ready22".to_string()
            ]
        );
        assert_eq!(p.create, 0);
    }

    #[test]
    fn adopts_orphans_releases_mismatches_and_leaves_others_alone() {
        let mut stray = pod("stray", Some("rs-uid"), "Running", true);
        stray.metadata.labels = labels(&[("app", "db")]);
        let mut unrelated = pod("unrelated", None, "Running", true);
        unrelated.metadata.labels = labels(&[("app", "db")]);
        let pods = vec![
            pod("orphan", None, "Running", true),
            pod("theirs", Some("other-uid"), "Running", true),
            stray,
            unrelated,
        ];
        let p = plan(&rs(2), &pods, now()).unwrap();
        assert_eq!(p.adopt, vec!["orphan".to_string()]);
        assert_eq!(p.release, vec!["stray".to_string()]);
        assert_eq!(p.create, 1);
        assert_eq!(p.status.replicas, 1);
    }

    #[test]
    fn min_ready_seconds_delays_availability() {
        let mut set = rs(1);
        set.spec.min_ready_seconds = Some(120);
        let pods = vec![pod("a", Some("rs-uid"), "Running", true)];
        let p = plan(&set, &pods, now()).unwrap();
        assert_eq!(p.status.ready_replicas, Some(1));
        assert_eq!(p.status.available_replicas, Some(0));
        let later = "2026-01-01T00:02:00Z".parse().unwrap();
        assert_eq!(
            plan(&set, &pods, later).unwrap().status.available_replicas,
            Some(1)
        );
    }

    #[test]
    fn new_pods_carry_template_and_owner() {
        let v = new_pod(&rs(1));
        assert_eq!(v["metadata"]["generateName"], "web-");
        assert_eq!(v["metadata"]["labels"]["tier"], "front");
        assert_eq!(v["metadata"]["ownerReferences"][0]["uid"], "rs-uid");
        assert_eq!(v["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(v["metadata"]["namespace"], "default");
    }
}
