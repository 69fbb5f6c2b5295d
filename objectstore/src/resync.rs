//! The loop the workload, Endpoints and Service controllers share: run a full,
//! level-triggered sync whenever an object of the kinds they read changes, and on a tick (so
//! time-based conditions such as `minReadySeconds` and missed events are caught up).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use berth_kube::kinds::Kind;
use berth_kube::list_selector::Selector;

use crate::{ObjectStore, Shutdown};

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
