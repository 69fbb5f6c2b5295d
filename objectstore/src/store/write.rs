//! Creating and replacing objects: the bookkeeping Kubernetes fills in (uid,
//! creationTimestamp, resourceVersion, generation, a name from `generateName`) and the
//! optimistic concurrency checks on resourceVersion and uid.

use serde_json::{json, Value};

use berth_kube::kinds::{self, Kind};

use super::allocate::allocate;
use super::commit::{commit, Change};
use super::error::{conflict, not_found};
use super::event::EventType;
use super::key::Key;
use super::object::{check_type, meta_str, metadata_mut};
use super::{ObjectStore, State, StoreError};

impl ObjectStore {
    /// Creates `object` (its `metadata.namespace` names the namespace of a namespaced kind);
    /// fills uid, creationTimestamp, resourceVersion and generation, and a name from
    /// `generateName` when `name` is empty. Status of kinds with a status subresource starts empty.
    pub fn create(&self, kind: &'static Kind, mut object: Value) -> Result<Value, StoreError> {
        check_type(kind, &mut object)?;
        let mut state = self.lock();
        let namespace = if kind.namespaced {
            let ns = meta_str(&object, "namespace")
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string();
            namespace_active(&state, &ns)?;
            ns
        } else {
            String::new()
        };
        let name = match meta_str(&object, "name").filter(|s| !s.is_empty()) {
            Some(name) => name.to_string(),
            None => match meta_str(&object, "generateName").filter(|s| !s.is_empty()) {
                Some(prefix) => generate_name(&state, kind, &namespace, prefix),
                None => {
                    return Err(StoreError::BadRequest(
                        "metadata.name: Required value: name or generateName is required".into(),
                    ))
                }
            },
        };
        let key = Key::new(kind, &namespace, &name);
        if state.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists {
                resource: kind.qualified_plural(),
                name,
            });
        }
        allocate(&self.inner.allocators, &state, &key, &mut object, None)?;
        let rev = state.revision + 1;
        let meta = metadata_mut(&mut object);
        meta.insert("name".into(), json!(name));
        if kind.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("resourceVersion".into(), json!(rev.to_string()));
        meta.insert(
            "creationTimestamp".into(),
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            meta.remove(field);
        }
        if kind.has_status {
            meta.insert("generation".into(), json!(1));
            if let Some(obj) = object.as_object_mut() {
                obj.remove("status");
            }
        }
        if std::ptr::eq(kind, &kinds::NAMESPACE) {
            object["status"] = json!({"phase": "Active"});
        }
        commit(
            &self.inner,
            &mut state,
            vec![Change::Put(key, object.clone(), EventType::Added)],
        )?;
        Ok(object)
    }

    /// Replaces an object with `object` (PUT). A `metadata.resourceVersion` in `object` must be
    /// the stored one. uid, creationTimestamp and (for kinds with a status subresource) status
    /// are kept; generation goes up when anything but metadata and status changed. An update
    /// that changes nothing returns the stored object without a new revision.
    pub fn update(&self, kind: &'static Kind, object: Value) -> Result<Value, StoreError> {
        self.write(kind, object, false)
    }

    /// Replaces only the `status` of an object (the `/status` subresource).
    pub fn update_status(&self, kind: &'static Kind, object: Value) -> Result<Value, StoreError> {
        self.write(kind, object, true)
    }

    fn write(
        &self,
        kind: &'static Kind,
        mut object: Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        check_type(kind, &mut object)?;
        let namespace = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_string();
        let name = meta_str(&object, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                StoreError::BadRequest("metadata.name: Required value: name is required".into())
            })?
            .to_string();
        let mut state = self.lock();
        let key = Key::new(kind, &namespace, &name);
        let stored = state
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(kind, &name))?;
        if let Some(rv) = meta_str(&object, "resourceVersion").filter(|s| !s.is_empty()) {
            if Some(rv) != meta_str(&stored, "resourceVersion") {
                return Err(conflict(kind, &name));
            }
        }
        if let Some(uid) = meta_str(&object, "uid").filter(|s| !s.is_empty()) {
            if Some(uid) != meta_str(&stored, "uid") {
                return Err(conflict(kind, &name));
            }
        }
        let mut next = if status_only {
            let mut next = stored.clone();
            match object.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    if let Some(o) = next.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            next
        } else {
            let mut next = object;
            if kind.has_status {
                match stored.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(o) = next.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            let meta = metadata_mut(&mut next);
            for field in [
                "uid",
                "creationTimestamp",
                "generation",
                "namespace",
                "deletionTimestamp",
            ] {
                match stored["metadata"].get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.remove("managedFields");
            allocate(
                &self.inner.allocators,
                &state,
                &key,
                &mut next,
                Some(&stored),
            )?;
            if kind.has_status && spec_of(&next) != spec_of(&stored) {
                let generation = stored["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                metadata_mut(&mut next).insert("generation".into(), json!(generation));
            }
            next
        };
        metadata_mut(&mut next).insert(
            "resourceVersion".into(),
            stored["metadata"]["resourceVersion"].clone(),
        );
        if next == stored {
            return Ok(stored);
        }
        let rev = state.revision + 1;
        metadata_mut(&mut next).insert("resourceVersion".into(), json!(rev.to_string()));
        commit(
            &self.inner,
            &mut state,
            vec![Change::Put(key, next.clone(), EventType::Modified)],
        )?;
        Ok(next)
    }
}

/// Refuses objects in a namespace that does not exist or is being deleted.
fn namespace_active(state: &State, namespace: &str) -> Result<(), StoreError> {
    let key = Key::new(&kinds::NAMESPACE, "", namespace);
    match state.objects.get(&key) {
        Some(ns) if ns["metadata"].get("deletionTimestamp").is_none() => Ok(()),
        _ => Err(StoreError::NamespaceNotFound {
            namespace: namespace.to_string(),
        }),
    }
}

/// `prefix` plus five random characters of the API server's alphabet, not yet taken.
fn generate_name(state: &State, kind: &'static Kind, namespace: &str, prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    loop {
        let suffix: String = (0..5)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        let name = format!("{prefix}{suffix}");
        if !state
            .objects
            .contains_key(&Key::new(kind, namespace, &name))
        {
            return name;
        }
    }
}

/// A random (version 4) UUID.
fn new_uid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Everything but metadata and status: what a change of bumps `generation`.
fn spec_of(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{cm, rv};

    #[test]
    fn create_fills_bookkeeping_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(a["metadata"]["creationTimestamp"].is_string());
        assert_eq!(rv(&a), s.revision());
        assert!(matches!(
            s.create(&kinds::CONFIG_MAP, cm("default", "a", "2")),
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.create(&kinds::CONFIG_MAP, cm("nowhere", "a", "2")),
            Err(StoreError::NamespaceNotFound { .. })
        ));
        let generated = s
            .create(
                &kinds::POD,
                json!({"metadata": {"generateName": "web-", "namespace": "default"}, "spec": {}}),
            )
            .unwrap();
        let name = generated["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert_eq!(generated["metadata"]["generation"], 1);
        assert!(matches!(
            s.create(
                &kinds::POD,
                json!({"kind": "Service", "metadata": {"name": "x"}})
            ),
            Err(StoreError::BadRequest(_))
        ));
    }

    #[test]
    fn updates_check_resource_version_and_bump_generation_on_spec_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 1}});
        let d = s.create(&kinds::DEPLOYMENT, d).unwrap();
        let mut stale = d.clone();
        let mut changed = d.clone();
        changed["spec"]["replicas"] = json!(3);
        let changed = s.update(&kinds::DEPLOYMENT, changed).unwrap();
        assert_eq!(changed["metadata"]["generation"], 2);
        assert!(rv(&changed) > rv(&d));
        stale["spec"]["replicas"] = json!(5);
        assert!(matches!(
            s.update(&kinds::DEPLOYMENT, stale),
            Err(StoreError::Conflict { .. })
        ));
        // A label change is not a spec change; status writes go through update_status only.
        let mut labelled = changed.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        labelled["status"] = json!({"replicas": 9});
        let labelled = s.update(&kinds::DEPLOYMENT, labelled).unwrap();
        assert_eq!(labelled["metadata"]["generation"], 2);
        assert!(labelled.get("status").is_none());
        let mut st = labelled.clone();
        st["status"] = json!({"replicas": 3});
        st["spec"]["replicas"] = json!(7);
        let st = s.update_status(&kinds::DEPLOYMENT, st).unwrap();
        assert_eq!(st["status"]["replicas"], 3);
        assert_eq!(st["spec"]["replicas"], 3);
        // An update that changes nothing makes no revision.
        let before = s.revision();
        let same = s.update(&kinds::DEPLOYMENT, st.clone()).unwrap();
        assert_eq!(same, st);
        assert_eq!(s.revision(), before);
    }

    #[test]
    fn updates_keep_identity_and_check_the_uid() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        let mut other_uid = a.clone();
        other_uid["metadata"]["uid"] = json!("someone-else");
        assert!(matches!(
            s.update(&kinds::CONFIG_MAP, other_uid),
            Err(StoreError::Conflict { .. })
        ));
        // Without uid or resourceVersion the write is unconditional; identity is kept.
        let mut blind = cm("default", "a", "2");
        blind["metadata"]["creationTimestamp"] = json!("1970-01-01T00:00:00Z");
        let b = s.update(&kinds::CONFIG_MAP, blind).unwrap();
        assert_eq!(b["metadata"]["uid"], a["metadata"]["uid"]);
        assert_eq!(
            b["metadata"]["creationTimestamp"],
            a["metadata"]["creationTimestamp"]
        );
        assert_eq!(b["data"]["k"], "2");
        assert!(matches!(
            s.update(&kinds::CONFIG_MAP, cm("default", "missing", "1")),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.update(&kinds::CONFIG_MAP, json!({"metadata": {}})),
            Err(StoreError::BadRequest(_))
        ));
    }

    #[test]
    fn namespaces_start_active_and_cluster_scoped_objects_lose_their_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let ns = s
            .create(
                &kinds::NAMESPACE,
                json!({"metadata": {"name": "x", "namespace": "default"}}),
            )
            .unwrap();
        assert_eq!(ns["status"]["phase"], "Active");
        assert!(ns["metadata"].get("namespace").is_none());
        assert!(matches!(
            s.create(&kinds::CONFIG_MAP, json!({"metadata": {}})),
            Err(StoreError::BadRequest(_))
        ));
    }

    #[test]
    fn uids_are_version_4() {
        let uid = new_uid();
        let parts: Vec<&str> = uid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(uid, new_uid());
    }

    #[test]
    fn spec_of_drops_metadata_and_status_only() {
        let o = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 2}, "data": 3});
        assert_eq!(spec_of(&o), json!({"spec": {"x": 1}, "data": 3}));
    }
}
