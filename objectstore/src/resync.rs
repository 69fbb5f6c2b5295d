//! The loop the workload, Endpoints and Service controllers share: run a full,
//! level-triggered sync whenever an object of the kinds they read changes, and on a tick (so
//! time-based conditions such as `minReadySeconds` and missed events are caught up).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use berth_kube::kinds::Kind;
use berth_kube::list_selector::Selector;

use crate::{Controller, ObjectStore, Shutdown};

/// Calls `sync` once at start, then after every change to an object of `kinds` (changes
/// arriving while a sync runs cause one more) and every `tick`, until the daemon shuts down.
pub async fn run<F, Fut>(
    store: ObjectStore,
    shutdown: Shutdown,
    kinds: &'static [&'static Kind],
    tick: Duration,
    mut sync: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let changed = Arc::new(Notify::new());
    let mut watchers = Vec::new();
    for kind in kinds {
        let (store, changed, mut shutdown) = (store.clone(), changed.clone(), shutdown.clone());
        watchers.push(tokio::spawn(async move {
            loop {
                let Ok(mut watch) = store.watch(kind, None, Selector::everything(), None) else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        event = watch.next() => match event {
                            Ok(Some(_)) => changed.notify_one(),
                            Ok(None) => return,
                            // Fell behind: watch again from a fresh list.
                            Err(_) => break,
                        },
                    }
                }
                changed.notify_one();
            }
        }));
    }
    let mut shutdown = shutdown.clone();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *shutdown.borrow() {
            break;
        }
        sync().await;
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = changed.notified() => {}
            _ = interval.tick() => {}
        }
    }
    for w in watchers {
        w.abort();
    }
}

/// A controller named `name` that calls `sync` (a full, level-triggered pass over the store)
/// on [`run`]'s schedule: at start, after changes to `kinds`, and every `tick`.
pub fn controller(
    name: &'static str,
    kinds: &'static [&'static Kind],
    tick: Duration,
    sync: fn(&ObjectStore),
) -> Controller {
    Controller::new(name, move |store, shutdown| {
        Box::pin(run(store.clone(), shutdown, kinds, tick, move || {
            sync(&store);
            std::future::ready(())
        }))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use berth_kube::kinds;
    use serde_json::json;
    use tokio::sync::watch;

    use super::*;

    static SYNCS: AtomicUsize = AtomicUsize::new(0);

    fn count(_: &ObjectStore) {
        SYNCS.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn a_controller_syncs_at_start_and_on_changes_until_shutdown() {
        static WATCHED: &[&Kind] = &[&kinds::CONFIG_MAP];
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let (tx, rx) = watch::channel(false);
        let c = controller("count", WATCHED, Duration::from_secs(3600), count);
        let task = tokio::spawn(c.start(store.clone(), rx));
        let wait_for = |n: usize| async move {
            for _ in 0..200 {
                if SYNCS.load(Ordering::SeqCst) >= n {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        };
        assert!(wait_for(1).await, "no sync at start");
        let before = SYNCS.load(Ordering::SeqCst);
        store
            .create(
                &kinds::CONFIG_MAP,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "a", "namespace": "default"}}),
            )
            .unwrap();
        assert!(wait_for(before + 1).await, "no sync after a change");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the controller stops on shutdown")
            .unwrap();
    }
}
