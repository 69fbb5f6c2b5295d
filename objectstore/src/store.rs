//! The object store: every API object as a `serde_json::Value`, keyed by type, namespace and
//! name, with Kubernetes' bookkeeping (uid, creationTimestamp, resourceVersion, generation),
//! optimistic concurrency, cascading deletion by ownerReferences and namespace, and watches
//! that resume from a resourceVersion. Writes are durable (see [`crate::journal`]) before they
//! return. [`ObjectStore`] is cheap to clone and safe to share between threads and tasks.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use berth_kube::kinds::{self, Kind};
use berth_kube::list_selector::Selector;
use berth_kube::structural::{Allocator, ValidationError};

use crate::journal::{Journal, JournalError, Op, Record};

/// Watch events kept in memory for watches that resume from an older resourceVersion (and
/// the broadcast buffer's size). A deleted object's last state stays until its event leaves
/// both, so this bounds what deleted objects hold; Kubernetes' watch cache keeps 100 to a
/// few thousand events per type, and a watcher that falls further behind lists again. Each
/// is kept serialized, in one allocation (see [`StoredEvent`]).
const HISTORY: usize = 1024;

/// Objects deleted after which the allocator is asked to return free memory to the kernel
/// (glibc keeps freed pages in its per-thread arenas).
const TRIM_AFTER_DELETES: usize = 512;

/// Errors from store operations, each mapping onto a Kubernetes `Status` reason.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object.
    #[error("{resource} {name:?} not found")]
    NotFound {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// An object with that name exists.
    #[error("{resource} {name:?} already exists")]
    AlreadyExists {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The caller's resourceVersion or uid is not the stored one.
    #[error("Operation cannot be fulfilled on {resource} {name:?}: the object has been modified; please apply your changes to the latest version and try again")]
    Conflict {
        /// `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The object's namespace does not exist (or is being deleted).
    #[error("namespaces {namespace:?} not found")]
    NamespaceNotFound {
        /// The missing namespace.
        namespace: String,
    },
    /// The object is not shaped like an API object (no name, wrong kind, not a map).
    #[error("{0}")]
    BadRequest(String),
    /// A watch asked for a resourceVersion older than the history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// The version asked for.
        requested: u64,
        /// The oldest version a watch can start from.
        oldest: u64,
    },
    /// An allocator refused the object (a value it asks for is another object's).
    #[error("{} {name:?} is {error}", kind.kind)]
    Invalid {
        /// The object's kind.
        kind: &'static Kind,
        /// The object's name.
        name: String,
        /// The fields refused.
        error: ValidationError,
    },
    /// The disk under the store failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created (or already there when a watch started).
    Added,
    /// Changed.
    Modified,
    /// Deleted; the object is its last state.
    Deleted,
}

impl EventType {
    /// The name watch streams use: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as a watch delivers it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The object's type.
    pub kind: &'static Kind,
    /// What happened.
    pub event_type: EventType,
    /// The object after the change (its last state for a deletion).
    pub object: Value,
    /// The store revision the change made.
    pub revision: u64,
}

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

/// A list answer: the objects and the revision it was taken at.
#[derive(Debug, Clone)]
pub struct ObjectList {
    /// The store revision (`metadata.resourceVersion` of the list).
    pub revision: u64,
    /// Matching objects, ordered by namespace and name.
    pub items: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// Index into [`kinds::ALL`].
    kind: usize,
    namespace: String,
    name: String,
}

impl Key {
    fn new(kind: &'static Kind, namespace: &str, name: &str) -> Key {
        Key {
            kind: kind_index(kind),
            namespace: if kind.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn kind(&self) -> &'static Kind {
        kinds::ALL[self.kind]
    }

    fn to_journal(&self) -> [String; 4] {
        let kind = self.kind();
        [
            kind.group.to_string(),
            kind.plural.to_string(),
            self.namespace.clone(),
            self.name.clone(),
        ]
    }
}

/// Runs the allocators of `key`'s kind on `object`, which is about to replace `previous`.
fn allocate(
    allocators: &[Allocator],
    state: &State,
    key: &Key,
    object: &mut Value,
    previous: Option<&Value>,
) -> Result<(), StoreError> {
    let kind = key.kind();
    let mut allocators = allocators
        .iter()
        .filter(|a| std::ptr::eq(a.kind, kind))
        .peekable();
    if allocators.peek().is_none() {
        return Ok(());
    }
    // Keys sort by kind first: this kind's objects are one range of the map.
    let first = Key {
        kind: key.kind,
        namespace: String::new(),
        name: String::new(),
    };
    let others: Vec<&Value> = state
        .objects
        .range(first..)
        .take_while(|(k, _)| k.kind == key.kind)
        .filter(|(k, _)| *k != key)
        .map(|(_, v)| v)
        .collect();
    for allocator in allocators {
        (allocator.allocate)(object, previous, &others).map_err(|error| StoreError::Invalid {
            kind,
            name: key.name.clone(),
            error,
        })?;
    }
    Ok(())
}

fn kind_index(kind: &Kind) -> usize {
    kinds::ALL
        .iter()
        .position(|k| k.group == kind.group && k.plural == kind.plural)
        .unwrap_or_default()
}

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

/// A watch event as the history and the broadcast keep it: the object serialized in one
/// shared allocation. A `Value` tree is hundreds of small allocations; kept for a thousand
/// events they pin allocator pages all over the heap, so the memory of deleted objects was
/// never returned. Each watcher parses the events it is handed.
#[derive(Debug, Clone)]
struct StoredEvent {
    kind: &'static Kind,
    event_type: EventType,
    object: Arc<[u8]>,
    revision: u64,
}

impl StoredEvent {
    fn new(kind: &'static Kind, event_type: EventType, object: &Value, revision: u64) -> Self {
        StoredEvent {
            kind,
            event_type,
            // A Value always serializes.
            object: serde_json::to_vec(object).unwrap_or_default().into(),
            revision,
        }
    }

    /// The event with its object parsed (`None` if it does not parse, which the store's
    /// own serialization rules out).
    fn parse(&self) -> Option<WatchEvent> {
        Some(WatchEvent {
            kind: self.kind,
            event_type: self.event_type,
            object: serde_json::from_slice(&self.object).ok()?,
            revision: self.revision,
        })
    }
}

/// The daemon's object store (see the module docs).
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

/// One change of a transaction: an object written (created or modified), or deleted with
/// its last state (for the DELETED event).
enum Change {
    Put(Key, Value, EventType),
    Delete(Key, Value),
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
        let (events, _) = broadcast::channel(HISTORY);
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

    /// A stream of changes to objects of `kind` (in `namespace`, matching `selector`). With
    /// `from` = `Some(rv)`, changes after revision `rv`; with `None`, an `ADDED` event for each
    /// existing object first, then changes.
    pub fn watch(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        selector: Selector,
        from: Option<u64>,
    ) -> Result<Watch, StoreError> {
        let state = self.lock();
        let rx = self.inner.events.subscribe();
        let mut backlog = VecDeque::new();
        let filter = Filter {
            kind,
            namespace: namespace.map(str::to_string),
            selector,
        };
        match from {
            Some(rv) if rv < state.revision => {
                let oldest = state
                    .history
                    .front()
                    .map(|e| e.revision)
                    .unwrap_or(state.revision + 1);
                if rv + 1 < oldest {
                    return Err(StoreError::Gone {
                        requested: rv,
                        oldest: oldest.saturating_sub(1),
                    });
                }
                backlog.extend(
                    state
                        .history
                        .iter()
                        .filter(|e| e.revision > rv && std::ptr::eq(e.kind, filter.kind))
                        .filter_map(StoredEvent::parse)
                        .filter(|e| filter.matches(e)),
                );
            }
            Some(_) => {}
            None => {
                for (k, v) in &state.objects {
                    let event = WatchEvent {
                        kind: k.kind(),
                        event_type: EventType::Added,
                        object: v.clone(),
                        revision: state.revision,
                    };
                    if filter.matches(&event) {
                        backlog.push_back(event);
                    }
                }
            }
        }
        Ok(Watch {
            filter,
            backlog,
            rx,
            after: state.revision,
        })
    }
}

/// Conditions a delete checks against the stored object (`preconditions` in DeleteOptions).
#[derive(Debug, Clone, Copy, Default)]
pub struct Preconditions<'a> {
    /// The uid the object must have.
    pub uid: Option<&'a str>,
    /// The resourceVersion the object must have.
    pub resource_version: Option<&'a str>,
}

struct Filter {
    kind: &'static Kind,
    namespace: Option<String>,
    selector: Selector,
}

impl Filter {
    fn matches(&self, e: &WatchEvent) -> bool {
        std::ptr::eq(e.kind, self.kind)
            && self.namespace.as_deref().is_none_or(|ns| {
                !self.kind.namespaced || e.object["metadata"]["namespace"].as_str() == Some(ns)
            })
            && self.selector.matches(&e.object)
    }
}

/// An open watch (see [`ObjectStore::watch`]).
pub struct Watch {
    filter: Filter,
    backlog: VecDeque<WatchEvent>,
    rx: broadcast::Receiver<StoredEvent>,
    after: u64,
}

impl Watch {
    /// The next matching change; `Err(Gone)` when the watcher fell too far behind (list again),
    /// `Ok(None)` when the store is gone.
    pub async fn next(&mut self) -> Result<Option<WatchEvent>, StoreError> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(Some(e));
        }
        loop {
            match self.rx.recv().await {
                Ok(e) if e.revision > self.after && std::ptr::eq(e.kind, self.filter.kind) => {
                    if let Some(e) = e.parse().filter(|e| self.filter.matches(e)) {
                        return Ok(Some(e));
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Err(StoreError::Gone {
                        requested: self.after,
                        oldest: self.after,
                    })
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}

fn commit(inner: &Inner, state: &mut State, txn: Vec<Change>) -> Result<(), StoreError> {
    let rev = state.revision + 1;
    let record = Record {
        rev,
        ops: txn
            .iter()
            .map(|change| match change {
                Change::Put(k, object, _) => Op::Put {
                    key: k.to_journal(),
                    object: object.clone(),
                },
                Change::Delete(k, _) => Op::Delete {
                    key: k.to_journal(),
                },
            })
            .collect(),
    };
    state.journal.append(&record)?;
    state.revision = rev;
    for change in txn {
        let event = match change {
            Change::Put(k, object, event_type) => {
                let event = StoredEvent::new(k.kind(), event_type, &object, rev);
                state.objects.insert(k, object);
                event
            }
            Change::Delete(k, last) => {
                state.objects.remove(&k);
                state.deleted_since_trim += 1;
                StoredEvent::new(k.kind(), EventType::Deleted, &last, rev)
            }
        };
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = inner.events.send(event);
    }
    let mut trim = state.deleted_since_trim >= TRIM_AFTER_DELETES;
    if state.journal.wants_compaction() {
        let objects = state.objects.iter().map(|(k, v)| (k.to_journal(), v));
        if let Err(e) = state.journal.compact(rev, objects) {
            tracing::warn!(error = %e, "compacting the daemon store failed; the journal keeps growing");
        }
        // The snapshot was built in memory: give its buffers back too.
        trim = true;
    }
    if trim {
        state.deleted_since_trim = 0;
        berth_runtime::sys::heap::trim();
    }
    Ok(())
}

fn not_found(kind: &Kind, name: &str) -> StoreError {
    StoreError::NotFound {
        resource: kind.qualified_plural(),
        name: name.to_string(),
    }
}

fn conflict(kind: &Kind, name: &str) -> StoreError {
    StoreError::Conflict {
        resource: kind.qualified_plural(),
        name: name.to_string(),
    }
}

/// Checks that `object` is a map whose apiVersion and kind (filled in when missing) are `kind`'s.
fn check_type(kind: &Kind, object: &mut Value) -> Result<(), StoreError> {
    let Some(map) = object.as_object_mut() else {
        return Err(StoreError::BadRequest(format!(
            "{} object must be a JSON object",
            kind.kind
        )));
    };
    let api_version = kind.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(api_version));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(StoreError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(kind.kind));
        }
        Some(k) if k == kind.kind => {}
        Some(k) => {
            return Err(StoreError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )))
        }
    }
    if !map.get("metadata").is_none_or(Value::is_object) {
        return Err(StoreError::BadRequest(
            "metadata must be a JSON object".into(),
        ));
    }
    Ok(())
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `object.metadata` as a map, created when missing (`object` was checked to be a map).
fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object["metadata"].as_object_mut() {
        Some(m) => m,
        None => unreachable!("metadata was just made a map"),
    }
}

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

fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(ns: &str, name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
               "data": {"k": data}})
    }

    fn rv(v: &Value) -> u64 {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

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

    #[tokio::test]
    async fn watch_resumes_from_a_resource_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
            .unwrap();
        let from = rv(&a);
        let mut changed = a.clone();
        changed["data"]["k"] = json!("2");
        s.update(&kinds::CONFIG_MAP, changed).unwrap();
        s.create(
            &kinds::SECRET,
            json!({"metadata": {"name": "s", "namespace": "default"}}),
        )
        .unwrap();
        let mut w = s
            .watch(
                &kinds::CONFIG_MAP,
                Some("default"),
                Selector::everything(),
                Some(from),
            )
            .unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.event_type, EventType::Modified);
        assert_eq!(e.object["data"]["k"], "2");
        s.delete(
            &kinds::CONFIG_MAP,
            "default",
            "a",
            Propagation::Background,
            Preconditions::default(),
        )
        .unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.event_type, EventType::Deleted);
        assert_eq!(e.object["metadata"]["name"], "a");

        let mut fresh = s
            .watch(&kinds::NAMESPACE, None, Selector::everything(), None)
            .unwrap();
        let e = fresh.next().await.unwrap().unwrap();
        assert_eq!(e.event_type, EventType::Added);
    }

    #[test]
    fn durable_across_reopen_and_torn_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (uid, revision) = {
            let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
            let a = s
                .create(&kinds::CONFIG_MAP, cm("default", "a", "1"))
                .unwrap();
            s.create(&kinds::CONFIG_MAP, cm("default", "b", "1"))
                .unwrap();
            s.delete(
                &kinds::CONFIG_MAP,
                "default",
                "b",
                Propagation::Background,
                Preconditions::default(),
            )
            .unwrap();
            (a["metadata"]["uid"].clone(), s.revision())
        };
        // A crash in the middle of a write leaves a line without its newline.
        let journal = dir.path().join("journal.jsonl");
        let mut bytes = std::fs::read(&journal).unwrap();
        bytes.extend_from_slice(br#"{"rev":99,"ops":[{"op":"put","#);
        std::fs::write(&journal, bytes).unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(s.revision(), revision);
        assert_eq!(
            s.get(&kinds::CONFIG_MAP, "default", "a").unwrap()["metadata"]["uid"],
            uid
        );
        assert!(s.get(&kinds::CONFIG_MAP, "default", "b").is_err());
        let c = s
            .create(&kinds::CONFIG_MAP, cm("default", "c", "1"))
            .unwrap();
        assert_eq!(rv(&c), revision + 1);
        drop(s);
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert!(s.get(&kinds::CONFIG_MAP, "default", "c").is_ok());
    }

    #[test]
    fn compaction_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let mut a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "0"))
            .unwrap();
        for i in 0..crate::journal::COMPACT_AFTER + 10 {
            a["data"]["k"] = json!(i.to_string());
            a = s.update(&kinds::CONFIG_MAP, a).unwrap();
        }
        let revision = s.revision();
        drop(s);
        assert!(dir.path().join("snapshot.json").exists());
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        assert_eq!(s.revision(), revision);
        assert_eq!(s.get(&kinds::CONFIG_MAP, "default", "a").unwrap(), a);
    }
}
