//! The Deployment controller: one ReplicaSet per pod template (`<name>-<pod-template-hash>`,
//! labelled `pod-template-hash`, annotated `deployment.kubernetes.io/revision`), replicas moved
//! from old sets to the new one by the strategy (RollingUpdate within maxSurge and
//! maxUnavailable, waiting on availability; or Recreate), old sets pruned to
//! `revisionHistoryLimit`, and `status` as `kubectl rollout status` reads it.
//!
//! `kubectl rollout undo` patches the template back to an old set's; [`plan`] then finds that
//! set (templates are compared without the hash label), makes it the new one and gives it the
//! next revision. [`plan`] is pure: the Deployment and the ReplicaSets of its namespace in,
//! actions and status out; it moves one step per call and is called again on every change.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use berth_kube::apps::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use berth_kube::kinds::{self, Kind};
use berth_kube::meta::{Condition, LabelSelector, ObjectMeta, OwnerReference};
use berth_kube::pod::PodTemplateSpec;
use berth_kube::{FieldErrors, IntOrString, Selector};
use berth_objectstore::resync;
use berth_objectstore::store::{Preconditions, Propagation};
use berth_objectstore::{Controller, ObjectStore};

/// The Deployment controller, for the daemon\'s controller list.
pub fn controller() -> Controller {
    static WATCHED: &[&Kind] = &[&kinds::DEPLOYMENT, &kinds::REPLICA_SET];
    resync::controller("deployments", WATCHED, Duration::from_secs(1), sync_all)
}

/// Label tying a ReplicaSet and its pods to one pod template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// Annotation with a ReplicaSet's (and its Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Annotation with the Deployment's replicas when a ReplicaSet was made.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// Annotation with the most pods a rollout may run (replicas + maxSurge).
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// One change to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Take an orphan ReplicaSet that matches the selector.
    Adopt(String),
    /// Drop the controller reference of an owned set that no longer matches.
    Release(String),
    /// Create this ReplicaSet.
    Create(Box<ReplicaSet>),
    /// Set a ReplicaSet's `spec.replicas`.
    Scale {
        /// The set.
        name: String,
        /// Its new replicas.
        replicas: i32,
    },
    /// Give a ReplicaSet a new revision (it became the new set again after an undo).
    SetRevision {
        /// The set.
        name: String,
        /// The revision.
        revision: i64,
    },
    /// Delete an old, scaled-down set beyond the history limit.
    Delete(String),
}

/// What one sync of one Deployment should do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Store changes, in order.
    pub actions: Vec<Action>,
    /// The revision the Deployment's annotation should carry.
    pub revision: Option<i64>,
    /// The status to record.
    pub status: DeploymentStatus,
}

/// The template with defaults and without the hash label, as sets are compared.
fn normalized(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    t.metadata.labels.remove(HASH_LABEL);
    berth_kube::defaults::pod_spec(&mut t.spec);
    t
}

/// The `pod-template-hash` of a template: a short, stable name part (Kubernetes' alphabet
/// without vowels, so it never spells words).
pub fn template_hash(t: &PodTemplateSpec) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let json = serde_json::to_vec(&normalized(t)).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status.as_ref().map_or((0, 0, 0), |s| {
        (
            s.replicas,
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    })
}

/// maxSurge and maxUnavailable resolved against `replicas` (surge rounds up, unavailable
/// down; both 0 means unavailable 1, as Kubernetes' fenceposts).
pub fn fenceposts(d: &Deployment, replicas: i32) -> (i32, i32) {
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.clone())
        .unwrap_or_default();
    let quarter = IntOrString::String("25%".into());
    let surge = ru
        .max_surge
        .as_ref()
        .unwrap_or(&quarter)
        .scaled(replicas, true)
        .unwrap_or(0)
        .max(0);
    let unavailable = ru
        .max_unavailable
        .as_ref()
        .unwrap_or(&quarter)
        .scaled(replicas, false)
        .unwrap_or(0)
        .clamp(0, replicas.max(0));
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// A new ReplicaSet for the Deployment's current template.
fn new_set(d: &Deployment, hash: &str, revision: i64, replicas: i32, surge: i32) -> ReplicaSet {
    let mut template = d.spec.template.clone();
    template
        .metadata
        .labels
        .insert(HASH_LABEL.to_string(), hash.to_string());
    let mut selector: LabelSelector = d.spec.selector.clone();
    selector
        .match_labels
        .insert(HASH_LABEL.to_string(), hash.to_string());
    let desired = d.spec.replicas.unwrap_or(1);
    let annotations = BTreeMap::from([
        (REVISION.to_string(), revision.to_string()),
        (DESIRED_REPLICAS.to_string(), desired.to_string()),
        (MAX_REPLICAS.to_string(), (desired + surge).to_string()),
    ]);
    ReplicaSet {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.metadata.name())),
            namespace: Some(d.metadata.namespace().to_string()),
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: vec![OwnerReference::controlled_by(
                "apps/v1",
                "Deployment",
                &d.metadata,
            )],
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: d.spec.min_ready_seconds,
            selector,
            template,
        },
        status: None,
    }
}

/// Decides one sync of `d` given every ReplicaSet in its namespace. `now` (RFC 3339) stamps
/// changed conditions.
pub fn plan(d: &Deployment, sets: &[ReplicaSet], now: &str) -> Result<Plan, FieldErrors> {
    let selector = Selector::from_label_selector(&d.spec.selector, "spec.selector")?;
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut plan = Plan::default();
    let mut owned: Vec<ReplicaSet> = Vec::new();
    for rs in sets {
        let name = rs.metadata.name().to_string();
        let matches = !selector.is_empty() && selector.matches(&rs.metadata.labels);
        match rs.metadata.controller() {
            Some(r) if r.uid == uid && matches => owned.push(rs.clone()),
            Some(r) if r.uid == uid => plan.actions.push(Action::Release(name)),
            None if matches && !deleting => {
                plan.actions.push(Action::Adopt(name));
                owned.push(rs.clone());
            }
            _ => {}
        }
    }
    let desired = d.spec.replicas.unwrap_or(1).max(0);
    let (surge, max_unavailable) = fenceposts(d, desired);
    let template = normalized(&d.spec.template);
    let new_index = owned
        .iter()
        .position(|rs| normalized(&rs.spec.template) == template);
    let mut new = new_index.map(|i| owned.remove(i));
    let mut old = owned;
    old.sort_by_key(revision);
    let max_old_revision = old.iter().map(revision).max().unwrap_or(0);
    let paused = d.spec.paused == Some(true) || deleting;

    let mut created = false;
    if new.is_none() && !paused {
        let hash = template_hash(&d.spec.template);
        let old_replicas: i32 = old.iter().map(spec_replicas).sum();
        let old_pods: i32 = old.iter().map(|rs| status_of(rs).0).sum();
        let replicas = if is_recreate(d) {
            if old_replicas == 0 && old_pods == 0 {
                desired
            } else {
                0
            }
        } else {
            (desired + surge - old_replicas).clamp(0, desired)
        };
        let rs = new_set(d, &hash, max_old_revision + 1, replicas, surge);
        plan.actions.push(Action::Create(Box::new(rs.clone())));
        new = Some(rs);
        created = true;
    } else if let Some(rs) = &mut new {
        if revision(rs) <= max_old_revision && !paused {
            let next = max_old_revision + 1;
            plan.actions.push(Action::SetRevision {
                name: rs.metadata.name().to_string(),
                revision: next,
            });
            rs.metadata
                .annotations
                .insert(REVISION.to_string(), next.to_string());
        }
    }
    plan.revision = new.as_ref().map(revision).filter(|r| *r > 0);

    if !paused && !created {
        if let Some(new) = &new {
            if is_recreate(d) {
                recreate(&mut plan, new, &old, desired);
            } else {
                rolling(&mut plan, new, &old, desired, surge, max_unavailable);
            }
        }
    }
    if !paused {
        prune(&mut plan, d, &old);
    }
    plan.status = status(
        d,
        new.as_ref(),
        &old,
        desired,
        max_unavailable,
        created,
        now,
    );
    Ok(plan)
}

fn scale(plan: &mut Plan, rs: &ReplicaSet, replicas: i32) {
    if spec_replicas(rs) != replicas {
        plan.actions.push(Action::Scale {
            name: rs.metadata.name().to_string(),
            replicas,
        });
    }
}

/// Recreate: all old pods go first; the new set scales up once none are left.
fn recreate(plan: &mut Plan, new: &ReplicaSet, old: &[ReplicaSet], desired: i32) {
    let mut waiting = false;
    for rs in old {
        if spec_replicas(rs) > 0 {
            scale(plan, rs, 0);
            waiting = true;
        } else if status_of(rs).0 > 0 {
            waiting = true;
        }
    }
    if !waiting {
        scale(plan, new, desired);
    }
}

/// RollingUpdate, as Kubernetes' `rolloutRolling`: scale the new set up within maxSurge; if
/// it did not move, scale old sets down as far as maxUnavailable allows (unavailable old
/// pods first, then available ones, oldest sets first).
fn rolling(
    plan: &mut Plan,
    new: &ReplicaSet,
    old: &[ReplicaSet],
    desired: i32,
    surge: i32,
    max_unavailable: i32,
) {
    let new_replicas = spec_replicas(new);
    let old_replicas: i32 = old.iter().map(spec_replicas).sum();
    let total = new_replicas + old_replicas;
    if new_replicas > desired {
        scale(plan, new, desired);
        return;
    }
    if new_replicas < desired {
        let max_total = desired + surge;
        if total < max_total {
            let up = (max_total - total).min(desired - new_replicas);
            scale(plan, new, new_replicas + up);
            return;
        }
    }
    if old_replicas == 0 {
        return;
    }
    let min_available = desired - max_unavailable;
    let new_unavailable = new_replicas - status_of(new).2;
    let mut budget = total - min_available - new_unavailable;
    if budget <= 0 {
        return;
    }
    let mut targets: Vec<(usize, i32)> = old.iter().map(spec_replicas).enumerate().collect();
    // Pods of old sets that are not available cost nothing to remove.
    for (i, replicas) in targets.iter_mut() {
        if budget == 0 {
            break;
        }
        let unavailable = (*replicas - status_of(&old[*i]).2).max(0);
        let cut = unavailable.min(budget).min(*replicas);
        *replicas -= cut;
        budget -= cut;
    }
    let available: i32 = status_of(new).2
        + targets
            .iter()
            .map(|(i, r)| status_of(&old[*i]).2.min(*r))
            .sum::<i32>();
    let mut remaining = (available - min_available).max(0);
    for (_, replicas) in targets.iter_mut() {
        if remaining == 0 {
            break;
        }
        let cut = (*replicas).min(remaining);
        *replicas -= cut;
        remaining -= cut;
    }
    for (i, replicas) in targets {
        scale(plan, &old[i], replicas);
    }
}

/// Deletes the oldest fully scaled-down sets beyond `revisionHistoryLimit`.
fn prune(plan: &mut Plan, d: &Deployment, old: &[ReplicaSet]) {
    let limit = usize::try_from(d.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let scaling: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Scale { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let idle: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| {
            spec_replicas(rs) == 0
                && status_of(rs).0 == 0
                && rs.metadata.deletion_timestamp.is_none()
                && !scaling.contains(&rs.metadata.name())
        })
        .collect();
    if idle.len() > limit {
        for rs in &idle[..idle.len() - limit] {
            plan.actions
                .push(Action::Delete(rs.metadata.name().to_string()));
        }
    }
}

fn condition(
    previous: Option<&Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    now: &str,
) -> Condition {
    let mut c = Condition::new(type_, ok, reason, &message);
    let same_status = previous.is_some_and(|p| p.status == c.status);
    let same_reason = previous.is_some_and(|p| p.reason == c.reason && p.message == c.message);
    c.last_transition_time = match previous {
        Some(p) if same_status => p.last_transition_time.clone(),
        _ => Some(now.to_string()),
    };
    c.last_update_time = match previous {
        Some(p) if same_status && same_reason => p.last_update_time.clone(),
        _ => Some(now.to_string()),
    };
    c
}

fn status(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    desired: i32,
    max_unavailable: i32,
    created: bool,
    now: &str,
) -> DeploymentStatus {
    let all = new.into_iter().chain(old.iter());
    let (mut replicas, mut ready, mut available) = (0, 0, 0);
    for rs in all {
        let (r, rd, a) = status_of(rs);
        replicas += r;
        ready += rd;
        available += a;
    }
    let updated = new.map_or(0, |rs| status_of(rs).0);
    let previous = d.status.clone().unwrap_or_default();
    let find = |t: &str| previous.conditions.iter().find(|c| c.type_ == t);
    let available_ok = available >= desired - max_unavailable;
    let available_cond = if available_ok {
        condition(
            find("Available"),
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            find("Available"),
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    let new_name = new
        .map(|rs| rs.metadata.name().to_string())
        .unwrap_or_default();
    let complete = updated == desired && replicas == desired && available == desired;
    let (reason, message) = if created {
        (
            "NewReplicaSetCreated",
            format!("Created new replica set {new_name:?}"),
        )
    } else if complete {
        (
            "NewReplicaSetAvailable",
            format!("ReplicaSet {new_name:?} has successfully progressed."),
        )
    } else {
        (
            "ReplicaSetUpdated",
            format!("ReplicaSet {new_name:?} is progressing."),
        )
    };
    let progressing = condition(
        find("Progressing"),
        "Progressing",
        true,
        reason,
        message,
        now,
    );
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)),
        conditions: vec![available_cond, progressing],
        collision_count: previous.collision_count,
    }
}

pub(super) fn sync_all(store: &ObjectStore) {
    let deployments: Vec<Deployment> = store.list_typed(&kinds::DEPLOYMENT, None);
    let sets: Vec<ReplicaSet> = store.list_typed(&kinds::REPLICA_SET, None);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for d in &deployments {
        let ns = d.metadata.namespace();
        let span = tracing::debug_span!("deployment", namespace = ns, name = d.metadata.name());
        let _enter = span.enter();
        let in_ns: Vec<ReplicaSet> = sets
            .iter()
            .filter(|rs| rs.metadata.namespace() == ns)
            .cloned()
            .collect();
        match plan(d, &in_ns, &now) {
            Ok(p) => apply(store, d, p),
            Err(e) => tracing::warn!("invalid selector: {e}"),
        }
    }
}

fn edit_set(
    store: &ObjectStore,
    ns: &str,
    name: &str,
    change: impl FnOnce(&mut serde_json::Value),
) {
    match store.get(&kinds::REPLICA_SET, ns, name) {
        Ok(mut v) => {
            change(&mut v);
            if let Err(e) = store.update(&kinds::REPLICA_SET, v) {
                tracing::info!(replicaset = name, "not updated: {e}");
            }
        }
        Err(e) => tracing::info!(replicaset = name, "gone: {e}"),
    }
}

fn apply(store: &ObjectStore, d: &Deployment, plan: Plan) {
    let ns = d.metadata.namespace();
    let owner = serde_json::to_value(OwnerReference::controlled_by(
        "apps/v1",
        "Deployment",
        &d.metadata,
    ))
    .unwrap_or_default();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    for action in plan.actions {
        match action {
            Action::Adopt(name) => {
                tracing::info!(replicaset = name, "adopting");
                edit_set(store, ns, &name, |v| {
                    let refs = v["metadata"]["ownerReferences"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let mut refs: Vec<serde_json::Value> = refs;
                    refs.push(owner.clone());
                    v["metadata"]["ownerReferences"] = serde_json::Value::Array(refs);
                });
            }
            Action::Release(name) => {
                tracing::info!(replicaset = name, "releasing");
                edit_set(store, ns, &name, |v| {
                    if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                    }
                });
            }
            Action::Create(rs) => {
                tracing::info!(replicaset = rs.metadata.name(), "creating");
                match serde_json::to_value(&rs) {
                    Ok(v) => {
                        if let Err(e) = store.create(&kinds::REPLICA_SET, v) {
                            tracing::warn!(replicaset = rs.metadata.name(), "cannot create: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot encode replicaset: {e}"),
                }
            }
            Action::Scale { name, replicas } => {
                tracing::info!(replicaset = name, replicas, "scaling");
                edit_set(store, ns, &name, |v| {
                    v["spec"]["replicas"] = replicas.into();
                });
            }
            Action::SetRevision { name, revision } => {
                tracing::info!(replicaset = name, revision, "new revision");
                edit_set(store, ns, &name, |v| {
                    v["metadata"]["annotations"][REVISION] = revision.to_string().into();
                });
            }
            Action::Delete(name) => {
                tracing::info!(replicaset = name, "pruning");
                if let Err(e) = store.delete(
                    &kinds::REPLICA_SET,
                    ns,
                    &name,
                    Propagation::Background,
                    Preconditions::default(),
                ) {
                    tracing::info!(replicaset = name, "not deleted: {e}");
                }
            }
        }
    }
    let revision = plan.revision.map(|r| r.to_string());
    if revision.is_some() && d.metadata.annotations.get(REVISION) != revision.as_ref() {
        if let Ok(mut v) = store.get(&kinds::DEPLOYMENT, ns, d.metadata.name()) {
            v["metadata"]["annotations"][REVISION] = revision.unwrap_or_default().into();
            if let Err(e) = store.update(&kinds::DEPLOYMENT, v) {
                tracing::debug!("revision not written: {e}");
            }
        }
    }
    let unchanged = d.status.as_ref().is_some_and(|s| {
        let strip = |s: &DeploymentStatus| {
            let mut s = s.clone();
            for c in &mut s.conditions {
                c.last_update_time = None;
                c.last_transition_time = None;
            }
            s
        };
        strip(s) == strip(&plan.status)
    });
    if unchanged {
        return;
    }
    if let Ok(mut v) = store.get(&kinds::DEPLOYMENT, ns, d.metadata.name()) {
        v["status"] = serde_json::to_value(&plan.status).unwrap_or_default();
        if let Err(e) = store.update_status(&kinds::DEPLOYMENT, v) {
            tracing::debug!("status not written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::apps::{DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment};
    use berth_kube::pod::Container;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn deployment(replicas: i32, image: &str) -> Deployment {
        let mut d = Deployment {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            ..Deployment::default()
        };
        d.metadata.name = Some("web".into());
        d.metadata.uid = Some("d-uid".into());
        d.metadata.generation = Some(1);
        d.spec.replicas = Some(replicas);
        d.spec
            .selector
            .match_labels
            .insert("app".into(), "web".into());
        d.spec
            .template
            .metadata
            .labels
            .insert("app".into(), "web".into());
        d.spec.template.spec.containers = vec![Container {
            name: "web".into(),
            image: Some(image.into()),
            ..Container::default()
        }];
        d
    }

    fn rolling(d: &mut Deployment, surge: IntOrString, unavailable: IntOrString) {
        d.spec.strategy = Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(surge),
                max_unavailable: Some(unavailable),
            }),
        });
    }

    /// Carries a plan out on `sets` as the store and the ReplicaSet controller would: pods of
    /// a scaled-up set exist at once but become available only one step later (`lagging`).
    fn apply_plan(sets: &mut Vec<ReplicaSet>, plan: &Plan) {
        for a in &plan.actions {
            match a {
                Action::Create(rs) => {
                    let mut rs = (**rs).clone();
                    rs.metadata.uid = Some(format!("uid-{}", rs.metadata.name()));
                    sets.push(rs);
                }
                Action::Scale { name, replicas } => {
                    let rs = sets.iter_mut().find(|r| r.metadata.name() == name).unwrap();
                    rs.spec.replicas = Some(*replicas);
                }
                Action::SetRevision { name, revision } => {
                    let rs = sets.iter_mut().find(|r| r.metadata.name() == name).unwrap();
                    rs.metadata
                        .annotations
                        .insert(REVISION.into(), revision.to_string());
                }
                Action::Delete(name) => sets.retain(|r| r.metadata.name() != name),
                Action::Adopt(name) => {
                    let rs = sets.iter_mut().find(|r| r.metadata.name() == name).unwrap();
                    rs.metadata.owner_references = vec![OwnerReference {
                        uid: "d-uid".into(),
                        controller: Some(true),
                        ..OwnerReference::default()
                    }];
                }
                Action::Release(name) => {
                    let rs = sets.iter_mut().find(|r| r.metadata.name() == name).unwrap();
                    rs.metadata.owner_references.clear();
                }
            }
        }
    }

    /// One step of the ReplicaSet controller and the kubelet: scaled-down pods go at once,
    /// new pods appear at once, and pods that existed before this step become available.
    fn settle(sets: &mut [ReplicaSet]) {
        for rs in sets {
            let want = rs.spec.replicas.unwrap_or(1);
            let s = rs.status.get_or_insert_with(ReplicaSetStatus::default);
            let existing = s.replicas.min(want);
            s.available_replicas = Some(existing);
            s.ready_replicas = Some(existing);
            s.replicas = want;
        }
    }

    fn find<'a>(sets: &'a [ReplicaSet], image: &str) -> &'a ReplicaSet {
        sets.iter()
            .find(|r| r.spec.template.spec.containers[0].image.as_deref() == Some(image))
            .unwrap()
    }

    /// Runs syncs until the plan is empty and everything settled; checks `invariant` on the
    /// pods (total, available) after every step, and returns the steps taken.
    fn roll(d: &Deployment, sets: &mut Vec<ReplicaSet>, invariant: impl Fn(i32, i32)) -> usize {
        for step in 0..50 {
            let p = plan(d, sets, NOW).unwrap();
            apply_plan(sets, &p);
            let total: i32 = sets.iter().map(|r| r.spec.replicas.unwrap_or(1)).sum();
            let available: i32 = sets
                .iter()
                .map(|r| {
                    r.status
                        .as_ref()
                        .map_or(0, |s| s.available_replicas.unwrap_or(0))
                })
                .sum();
            invariant(total, available);
            let before = sets.clone();
            settle(sets);
            if p.actions.is_empty() && before == *sets {
                return step;
            }
        }
        panic!("rollout did not converge: {sets:#?}");
    }

    #[test]
    fn a_new_deployment_gets_one_set_at_revision_one() {
        let d = deployment(3, "v1");
        let p = plan(&d, &[], NOW).unwrap();
        let [Action::Create(rs)] = p.actions.as_slice() else {
            panic!("{:?}", p.actions)
        };
        let hash = template_hash(&d.spec.template);
        assert_eq!(rs.metadata.name(), format!("web-{hash}"));
        assert_eq!(rs.spec.replicas, Some(3));
        assert_eq!(rs.metadata.annotations[REVISION], "1");
        assert_eq!(rs.metadata.labels[HASH_LABEL], hash);
        assert_eq!(rs.spec.selector.match_labels[HASH_LABEL], hash);
        assert_eq!(rs.spec.template.metadata.labels[HASH_LABEL], hash);
        assert!(rs.metadata.is_controlled_by("d-uid"));
        assert_eq!(p.revision, Some(1));
        assert_eq!(
            p.status.conditions[1].reason.as_deref(),
            Some("NewReplicaSetCreated")
        );
    }

    #[test]
    fn template_hash_ignores_its_label_and_spelled_out_defaults() {
        let a = deployment(1, "v1").spec.template;
        let mut b = a.clone();
        b.metadata.labels.insert(HASH_LABEL.into(), "x".into());
        b.spec.restart_policy = Some("Always".into());
        assert_eq!(template_hash(&a), template_hash(&b));
        let c = deployment(1, "v2").spec.template;
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(template_hash(&a)
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
    }

    #[test]
    fn rolling_update_with_surge_keeps_full_availability() {
        let mut d = deployment(3, "v1");
        rolling(&mut d, IntOrString::Int(1), IntOrString::Int(0));
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.spec.template.spec.containers[0].image = Some("v2".into());
        d.metadata.generation = Some(2);
        let steps = roll(&d, &mut sets, |total, available| {
            assert!(total <= 4, "surge exceeded: {total}");
            assert!(available >= 3, "availability dropped: {available}");
        });
        assert!(steps >= 3, "{steps}");
        assert_eq!(find(&sets, "v2").spec.replicas, Some(3));
        assert_eq!(find(&sets, "v1").spec.replicas, Some(0));
        assert_eq!(find(&sets, "v2").metadata.annotations[REVISION], "2");
        let p = plan(&d, &sets, NOW).unwrap();
        assert_eq!(p.status.updated_replicas, Some(3));
        assert_eq!(p.status.available_replicas, Some(3));
        assert_eq!(p.status.unavailable_replicas, Some(0));
        assert_eq!(p.status.observed_generation, Some(2));
        assert_eq!(p.status.conditions[0].status, "True");
        assert_eq!(
            p.status.conditions[1].reason.as_deref(),
            Some("NewReplicaSetAvailable")
        );
    }

    #[test]
    fn rolling_update_with_unavailability_never_surges() {
        let mut d = deployment(4, "v1");
        rolling(
            &mut d,
            IntOrString::Int(0),
            IntOrString::String("50%".into()),
        );
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.spec.template.spec.containers[0].image = Some("v2".into());
        roll(&d, &mut sets, |total, available| {
            assert!(total <= 4, "surged: {total}");
            assert!(available >= 2, "below minimum: {available}");
        });
        assert_eq!(find(&sets, "v2").spec.replicas, Some(4));
        assert_eq!(find(&sets, "v1").spec.replicas, Some(0));
    }

    #[test]
    fn rolling_update_waits_for_the_new_pods() {
        let mut d = deployment(2, "v1");
        rolling(&mut d, IntOrString::Int(1), IntOrString::Int(0));
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.spec.template.spec.containers[0].image = Some("v2".into());
        let p = plan(&d, &sets, NOW).unwrap();
        apply_plan(&mut sets, &p);
        assert_eq!(find(&sets, "v2").spec.replicas, Some(1));
        // The new pod never becomes available: old pods stay.
        for _ in 0..3 {
            let p = plan(&d, &sets, NOW).unwrap();
            assert!(p.actions.is_empty(), "{:?}", p.actions);
            assert_eq!(
                p.status.conditions[1].reason.as_deref(),
                Some("ReplicaSetUpdated")
            );
        }
        assert_eq!(find(&sets, "v1").spec.replicas, Some(2));
    }

    #[test]
    fn recreate_removes_old_pods_before_starting_new_ones() {
        let mut d = deployment(2, "v1");
        d.spec.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.spec.template.spec.containers[0].image = Some("v2".into());
        let p = plan(&d, &sets, NOW).unwrap();
        apply_plan(&mut sets, &p);
        assert_eq!(find(&sets, "v2").spec.replicas, Some(0));
        let p = plan(&d, &sets, NOW).unwrap();
        assert_eq!(
            p.actions,
            vec![Action::Scale {
                name: find(&sets, "v1").metadata.name().into(),
                replicas: 0
            }]
        );
        apply_plan(&mut sets, &p);
        // Old pods still running: the new set waits.
        assert!(plan(&d, &sets, NOW).unwrap().actions.is_empty());
        roll(&d, &mut sets, |total, _| assert!(total <= 2));
        assert_eq!(find(&sets, "v2").spec.replicas, Some(2));
        assert_eq!(find(&sets, "v1").spec.replicas, Some(0));
    }

    #[test]
    fn undo_reuses_the_old_set_with_a_new_revision() {
        let mut d = deployment(2, "v1");
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        let v1_name = find(&sets, "v1").metadata.name().to_string();
        d.spec.template.spec.containers[0].image = Some("v2".into());
        roll(&d, &mut sets, |_, _| {});
        // kubectl rollout undo: the template of revision 1, without its hash label.
        let mut t = find(&sets, "v1").spec.template.clone();
        t.metadata.labels.remove(HASH_LABEL);
        d.spec.template = t;
        let p = plan(&d, &sets, NOW).unwrap();
        assert!(p.actions.contains(&Action::SetRevision {
            name: v1_name.clone(),
            revision: 3
        }));
        assert!(!p.actions.iter().any(|a| matches!(a, Action::Create(_))));
        assert_eq!(p.revision, Some(3));
        roll(&d, &mut sets, |_, _| {});
        assert_eq!(sets.len(), 2);
        assert_eq!(find(&sets, "v1").spec.replicas, Some(2));
        assert_eq!(find(&sets, "v2").spec.replicas, Some(0));
        assert_eq!(find(&sets, "v1").metadata.name(), v1_name);
    }

    #[test]
    fn scaling_moves_only_the_new_set() {
        let mut d = deployment(3, "v1");
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.spec.replicas = Some(5);
        roll(&d, &mut sets, |_, _| {});
        assert_eq!(find(&sets, "v1").spec.replicas, Some(5));
        d.spec.replicas = Some(1);
        let p = plan(&d, &sets, NOW).unwrap();
        assert_eq!(p.actions.len(), 1);
        roll(&d, &mut sets, |_, _| {});
        assert_eq!(find(&sets, "v1").spec.replicas, Some(1));
        d.spec.replicas = Some(0);
        roll(&d, &mut sets, |_, _| {});
        assert_eq!(find(&sets, "v1").spec.replicas, Some(0));
        assert_eq!(plan(&d, &sets, NOW).unwrap().status.replicas, Some(0));
    }

    #[test]
    fn history_is_pruned_to_the_limit() {
        let mut d = deployment(1, "v1");
        d.spec.revision_history_limit = Some(1);
        let mut sets = Vec::new();
        for v in ["v1", "v2", "v3", "v4"] {
            d.spec.template.spec.containers[0].image = Some(v.into());
            roll(&d, &mut sets, |_, _| {});
        }
        let images: Vec<&str> = sets
            .iter()
            .map(|r| r.spec.template.spec.containers[0].image.as_deref().unwrap())
            .collect();
        assert_eq!(images, ["v3", "v4"]);
    }

    #[test]
    fn orphans_are_adopted_and_strangers_left_alone() {
        let d = deployment(1, "v1");
        let mut orphan = new_set(&d, &template_hash(&d.spec.template), 1, 1, 0);
        orphan.metadata.owner_references.clear();
        let mut stranger = orphan.clone();
        stranger.metadata.name = Some("other".into());
        stranger.metadata.owner_references = vec![OwnerReference {
            uid: "someone".into(),
            controller: Some(true),
            ..OwnerReference::default()
        }];
        let p = plan(&d, &[orphan.clone(), stranger], NOW).unwrap();
        assert_eq!(
            p.actions,
            vec![Action::Adopt(orphan.metadata.name().into())]
        );
    }

    #[test]
    fn percentages_resolve_as_kubernetes() {
        let d = deployment(10, "v1");
        assert_eq!(fenceposts(&d, 10), (3, 2));
        let mut d = deployment(1, "v1");
        rolling(
            &mut d,
            IntOrString::Int(0),
            IntOrString::String("10%".into()),
        );
        assert_eq!(fenceposts(&d, 1), (0, 1));
    }

    #[test]
    fn conditions_keep_their_times_while_unchanged() {
        let mut d = deployment(1, "v1");
        let mut sets = Vec::new();
        roll(&d, &mut sets, |_, _| {});
        d.status = Some(plan(&d, &sets, "2026-01-01T00:00:00Z").unwrap().status);
        let later = plan(&d, &sets, "2026-01-01T01:00:00Z").unwrap().status;
        assert_eq!(
            later.conditions[0].last_transition_time.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
    }
}
