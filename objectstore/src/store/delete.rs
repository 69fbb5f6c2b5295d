//! Deleting objects: preconditions on uid and resourceVersion, and the garbage collection
//! that follows ownerReferences (and a Namespace's contents) in the same transaction.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use berth_kube::kinds::{self, Kind};

use super::commit::{commit, Change};
use super::error::{conflict, not_found};
use super::event::EventType;
use super::key::Key;
use super::object::{meta_str, metadata_mut};
use super::{ObjectStore, StoreError};

/// How deleting an object treats the objects it owns (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are deleted too (the daemon deletes them at once, in the same transaction).
    #[default]
    Background,
    /// As `Background`: the owner is not kept around until its dependents are gone.
    Foreground,
    /// Dependents stay, with the owner's reference removed.
    Orphan,
}

/// Conditions a delete checks against the stored object (`preconditions` in DeleteOptions).
#[derive(Debug, Clone, Copy, Default)]
pub struct Preconditions<'a> {
    /// The uid the object must have.
    pub uid: Option<&'a str>,
    /// The resourceVersion the object must have.
    pub resource_version: Option<&'a str>,
}

impl ObjectStore {
    /// Deletes an object and, by `propagation`, what it owns (ownerReferences with its uid,
    /// transitively); deleting a Namespace deletes every object in it. With `uid` or
    /// `resource_version` given, they must match the stored object. Returns the deleted object.
    pub fn delete(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        propagation: Propagation,
        preconditions: Preconditions<'_>,
    ) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let key = Key::new(kind, namespace, name);
        let stored = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(kind, name))?;
        if preconditions
            .uid
            .is_some_and(|u| Some(u) != meta_str(&stored, "uid"))
            || preconditions
                .resource_version
                .is_some_and(|rv| Some(rv) != meta_str(&stored, "resourceVersion"))
        {
            return Err(conflict(kind, name));
        }
        let mut doomed: Vec<Key> = vec![key.clone()];
        if std::ptr::eq(kind, &kinds::NAMESPACE) {
            doomed.extend(
                state
                    .objects
                    .keys()
                    .filter(|k| k.kind().namespaced && k.namespace == name)
                    .cloned(),
            );
        }
        let mut txn = Vec::new();
        let mut orphaned: BTreeMap<Key, Value> = BTreeMap::new();
        let mut i = 0;
        while i < doomed.len() {
            let uid = state.objects[&doomed[i]]["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for (k, v) in &state.objects {
                if doomed.contains(k) || !owned_by(v, &uid) {
                    continue;
                }
                if propagation == Propagation::Orphan && i == 0 {
                    let mut v = orphaned.remove(k).unwrap_or_else(|| v.clone());
                    if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                        if refs.is_empty() {
                            metadata_mut(&mut v).remove("ownerReferences");
                        }
                    }
                    orphaned.insert(k.clone(), v);
                } else {
                    doomed.push(k.clone());
                }
            }
            i += 1;
        }
        let rev = state.revision + 1;
        for (k, mut v) in orphaned {
            if doomed.contains(&k) {
                continue;
            }
            metadata_mut(&mut v).insert("resourceVersion".into(), json!(rev.to_string()));
            txn.push(Change::Put(k, v, EventType::Modified));
        }
        // Dependents first, owner last, as the garbage collector would get to them.
        for k in doomed.iter().rev() {
            let mut last = state.objects[k].clone();
            metadata_mut(&mut last).insert("resourceVersion".into(), json!(rev.to_string()));
            txn.push(Change::Delete(k.clone(), last));
        }
        commit(&self.inner, &mut state, txn)?;
        let mut out = stored;
        metadata_mut(&mut out).insert("resourceVersion".into(), json!(rev.to_string()));
        Ok(out)
    }
}

/// Whether one of `object`'s ownerReferences has `uid`.
fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::cm;

    #[test]
    fn deleting_a_namespace_deletes_its_objects_and_owners_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        s.create(&kinds::NAMESPACE, json!({"metadata": {"name": "gone"}}))
            .unwrap();
        s.create(&kinds::CONFIG_MAP, cm("gone", "a", "1")).unwrap();
        s.create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        s.delete(
            &kinds::NAMESPACE,
            "",
            "gone",
            Propagation::Background,
            Preconditions::default(),
        )
        .unwrap();
        assert!(s.get(&kinds::CONFIG_MAP, "gone", "a").is_err());
        assert!(s.get(&kinds::CONFIG_MAP, "default", "a").is_ok());

        let d = s
            .create(
                &kinds::DEPLOYMENT,
                json!({"metadata": {"name": "d", "namespace": "default"}, "spec": {}}),
            )
            .unwrap();
        let owner = |o: &Value| json!([{"apiVersion": "apps/v1", "kind": o["kind"], "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true}]);
        let rs = s
            .create(&kinds::REPLICA_SET, json!({"metadata": {"name": "d-1", "namespace": "default", "ownerReferences": owner(&d)}, "spec": {}}))
            .unwrap();
        s.create(&kinds::POD, json!({"metadata": {"name": "d-1-a", "namespace": "default", "ownerReferences": owner(&rs)}, "spec": {}}))
            .unwrap();
        s.create(
            &kinds::POD,
            json!({"metadata": {"name": "lone", "namespace": "default"}, "spec": {}}),
        )
        .unwrap();
        s.delete(
            &kinds::DEPLOYMENT,
            "default",
            "d",
            Propagation::Background,
            Preconditions::default(),
        )
        .unwrap();
        assert!(s.get(&kinds::REPLICA_SET, "default", "d-1").is_err());
        assert!(s.get(&kinds::POD, "default", "d-1-a").is_err());
        assert!(s.get(&kinds::POD, "default", "lone").is_ok());

        let rs = s
            .create(
                &kinds::REPLICA_SET,
                json!({"metadata": {"name": "r", "namespace": "default"}, "spec": {}}),
            )
            .unwrap();
        s.create(&kinds::POD, json!({"metadata": {"name": "r-a", "namespace": "default", "ownerReferences": owner(&rs)}, "spec": {}}))
            .unwrap();
        s.delete(
            &kinds::REPLICA_SET,
            "default",
            "r",
            Propagation::Orphan,
            Preconditions::default(),
        )
        .unwrap();
        let orphan = s.get(&kinds::POD, "default", "r-a").unwrap();
        assert!(orphan["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn preconditions_must_match_the_stored_object() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        let uid = a["metadata"]["uid"].as_str().unwrap();
        let rv = a["metadata"]["resourceVersion"].as_str().unwrap();
        for wrong in [
            Preconditions {
                uid: Some("other"),
                resource_version: None,
            },
            Preconditions {
                uid: Some(uid),
                resource_version: Some("1"),
            },
        ] {
            assert!(matches!(
                s.delete(
                    &kinds::CONFIG_MAP,
                    "default",
                    "a",
                    Propagation::Background,
                    wrong
                ),
                Err(StoreError::Conflict { .. })
            ));
        }
        let gone = s
            .delete(
                &kinds::CONFIG_MAP,
                "default",
                "a",
                Propagation::Background,
                Preconditions {
                    uid: Some(uid),
                    resource_version: Some(rv),
                },
            )
            .unwrap();
        assert_eq!(
            gone["metadata"]["resourceVersion"],
            json!(s.revision().to_string())
        );
        assert!(matches!(
            s.delete(
                &kinds::CONFIG_MAP,
                "default",
                "a",
                Propagation::Background,
                Preconditions::default()
            ),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn orphaning_keeps_the_dependents_other_owners() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let owner = s
            .create(&kinds::CONFIG_MAP, cm("default", "owner", "1"))
            .unwrap();
        let uid = owner["metadata"]["uid"].as_str().unwrap();
        let mut p = cm("default", "p", "1");
        p["metadata"]["ownerReferences"] =
            json!([{"uid": uid, "name": "owner"}, {"uid": "u-kept", "name": "y"}]);
        let p = s.create(&kinds::CONFIG_MAP, p).unwrap();
        assert!(owned_by(&p, uid));
        s.delete(
            &kinds::CONFIG_MAP,
            "default",
            "owner",
            Propagation::Orphan,
            Preconditions::default(),
        )
        .unwrap();
        let p = s.get(&kinds::CONFIG_MAP, "default", "p").unwrap();
        assert_eq!(
            p["metadata"]["ownerReferences"],
            json!([{"uid": "u-kept", "name": "y"}])
        );
        assert!(!owned_by(&p, uid));
        assert!(owned_by(&p, "u-kept"));
    }
}
