//! Watches: a stream of changes to one kind's objects, starting with what exists or resuming
//! from a resourceVersion still in the store's history.

use std::collections::VecDeque;

use tokio::sync::broadcast;

use berth_kube::kinds::Kind;
use berth_kube::list_selector::Selector;

use super::event::{EventType, StoredEvent, WatchEvent};
use super::{ObjectStore, StoreError};

impl ObjectStore {
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

/// What a watch delivers: one kind, maybe one namespace, objects the selector matches.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::commit::HISTORY;
    use crate::store::fixtures::{cm, rv};
    use crate::store::{Preconditions, Propagation};
    use berth_kube::kinds;
    use serde_json::json;

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

    #[tokio::test]
    async fn watches_filter_by_namespace_and_selector() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        s.create(&kinds::NAMESPACE, json!({"metadata": {"name": "other"}}))
            .unwrap();
        let mut w = s
            .watch(
                &kinds::CONFIG_MAP,
                Some("default"),
                Selector::labels("app=web").unwrap(),
                Some(s.revision()),
            )
            .unwrap();
        s.create(&kinds::CONFIG_MAP, cm("other", "a", "1")).unwrap();
        let mut db = cm("default", "db", "1");
        db["metadata"]["labels"] = json!({"app": "db"});
        s.create(&kinds::CONFIG_MAP, db).unwrap();
        s.create(&kinds::CONFIG_MAP, cm("default", "web", "1"))
            .unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.event_type, EventType::Added);
        assert_eq!(e.object["metadata"]["name"], "web");
        assert_eq!(e.revision, s.revision());
    }

    #[test]
    fn a_revision_older_than_the_history_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let s = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let mut a = s
            .create(&kinds::CONFIG_MAP, cm("default", "a", "0"))
            .unwrap();
        for i in 0..HISTORY {
            a["data"]["k"] = json!(i.to_string());
            a = s.update(&kinds::CONFIG_MAP, a).unwrap();
        }
        let oldest = s.revision() - HISTORY as u64;
        assert!(s
            .watch(
                &kinds::CONFIG_MAP,
                None,
                Selector::everything(),
                Some(oldest)
            )
            .is_ok());
        match s.watch(
            &kinds::CONFIG_MAP,
            None,
            Selector::everything(),
            Some(oldest - 1),
        ) {
            Err(StoreError::Gone {
                requested,
                oldest: o,
            }) => {
                assert_eq!((requested, o), (oldest - 1, oldest));
            }
            Err(e) => panic!("expected Gone, got {e}"),
            Ok(_) => panic!("expected Gone, got a watch"),
        }
    }
}
