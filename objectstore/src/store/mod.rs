//! The object store: every API object as a `serde_json::Value`, keyed by type, namespace and
//! name, with Kubernetes' bookkeeping (uid, creationTimestamp, resourceVersion, generation),
//! optimistic concurrency, cascading deletion by ownerReferences and namespace, and watches
//! that resume from a resourceVersion. Writes are durable (see [`crate::journal`]) before they
//! return. [`ObjectStore`] is cheap to clone and safe to share between threads and tasks.
//!
//! Opening and reading (get, list) are here; the rest by concern: `key` places objects,
//! `object` checks their shape, `write` creates and replaces them, `delete` removes them with
//! their dependents, `allocate` runs the allocators, `commit` makes a transaction durable and
//! visible, `event` and `watch` stream the changes, and `error` says what was refused.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use berth_kube::kinds::{self, Kind};
use berth_kube::list_selector::Selector;
use berth_kube::structural::Allocator;

use crate::journal::Journal;

mod allocate;
mod commit;
mod delete;
mod error;
mod event;
mod key;
mod object;
mod watch;
mod write;

pub use delete::{Preconditions, Propagation};
pub use error::StoreError;
pub use event::{EventType, WatchEvent};
pub use watch::Watch;

use error::not_found;
use event::StoredEvent;
use key::{kind_index, Key};

/// A list answer: the objects and the revision it was taken at.
#[derive(Debug, Clone)]
pub struct ObjectList {
    /// The store revision (`metadata.resourceVersion` of the list).
    pub revision: u64,
    /// Matching objects, ordered by namespace and name.
    pub items: Vec<Value>,
}

/// What the store's lock guards: the objects, their revision, the watch history and the
/// journal that makes changes durable.
struct State {
    revision: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<StoredEvent>,
    journal: Journal,
    /// Objects deleted since the allocator last returned free memory.
    deleted_since_trim: usize,
}

struct Inner {
    state: Mutex<State>,
    allocators: Vec<Allocator>,
    events: broadcast::Sender<StoredEvent>,
}

/// The daemon's object store (see the module docs).
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

impl ObjectStore {
    /// Opens the store kept in `dir` (created if missing); the `default` namespace is made on
    /// first open. `allocators` run on every create and update of their kind, under the
    /// store's lock.
    pub fn open(dir: &Path, allocators: Vec<Allocator>) -> Result<ObjectStore, StoreError> {
        let (journal, loaded) = Journal::open(dir)?;
        let mut objects = BTreeMap::new();
        for ([group, plural, namespace, name], object) in loaded.objects {
            let Some(kind) = kinds::by_plural(&group, &plural) else {
                tracing::warn!(%group, %plural, %name, "store holds a type this daemon does not serve; skipped");
                continue;
            };
            objects.insert(Key::new(kind, &namespace, &name), object);
        }
        let (events, _) = broadcast::channel(commit::HISTORY);
        let store = ObjectStore {
            inner: Arc::new(Inner {
                allocators,
                state: Mutex::new(State {
                    revision: loaded.rev,
                    objects,
                    history: VecDeque::new(),
                    journal,
                    deleted_since_trim: 0,
                }),
                events,
            }),
        };
        for ns in ["default", "kube-system"] {
            if store.get(&kinds::NAMESPACE, "", ns).is_err() {
                store.create(
                    &kinds::NAMESPACE,
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )?;
            }
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied transaction: state is
        // only changed in `commit`, after the journal write succeeded.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current store revision.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// The object `name` of `kind` in `namespace` (ignored for cluster-scoped kinds).
    pub fn get(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StoreError> {
        self.lock()
            .objects
            .get(&Key::new(kind, namespace, name))
            .cloned()
            .ok_or_else(|| not_found(kind, name))
    }

    /// Objects of `kind` in `namespace` (all namespaces for `None`) that `selector` matches.
    pub fn list(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> ObjectList {
        let state = self.lock();
        let items = state
            .objects
            .iter()
            .filter(|(k, v)| {
                k.kind == kind_index(kind)
                    && namespace.is_none_or(|ns| !kind.namespaced || k.namespace == ns)
                    && selector.matches(v)
            })
            .map(|(_, v)| v.clone())
            .collect();
        ObjectList {
            revision: state.revision,
            items,
        }
    }
}

/// Objects the tests of the store's modules share.
#[cfg(test)]
mod fixtures {
    use serde_json::{json, Value};

    /// A ConfigMap `name` in `ns` labelled `app=web`, with `data.k` = `data`.
    pub(super) fn cm(ns: &str, name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
               "data": {"k": data}})
    }

    /// An object's resourceVersion as a number.
    pub(super) fn rv(v: &Value) -> u64 {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::cm;
    use super::*;
    use serde_json::json;

    #[test]
    fn list_by_namespace_and_selector() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        s.create(&kinds::NAMESPACE, json!({"metadata": {"name": "other"}}))
            .unwrap();
        s.create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        s.create(&kinds::CONFIG_MAP, cm("other", "a", "1")).unwrap();
        let mut b = cm("other", "b", "1");
        b["metadata"]["labels"] = json!({"app": "db"});
        s.create(&kinds::CONFIG_MAP, b).unwrap();
        let all = Selector::everything();
        assert_eq!(s.list(&kinds::CONFIG_MAP, None, &all).items.len(), 3);
        assert_eq!(
            s.list(&kinds::CONFIG_MAP, Some("default"), &all)
                .items
                .len(),
            1
        );
        let web = Selector::labels("app=web").unwrap();
        assert_eq!(
            s.list(&kinds::CONFIG_MAP, Some("other"), &web).items.len(),
            1
        );
        assert_eq!(s.list(&kinds::SECRET, None, &all).items.len(), 0);
        assert_eq!(s.list(&kinds::NAMESPACE, None, &all).items.len(), 3);
    }

    #[test]
    fn open_makes_the_default_namespaces_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let default = s.get(&kinds::NAMESPACE, "", "default").unwrap();
        assert!(s.get(&kinds::NAMESPACE, "", "kube-system").is_ok());
        let revision = s.revision();
        drop(s);
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(s.revision(), revision);
        assert_eq!(s.get(&kinds::NAMESPACE, "", "default").unwrap(), default);
        assert!(matches!(
            s.get(&kinds::CONFIG_MAP, "default", "nope"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
