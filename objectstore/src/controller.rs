//! A control loop as the daemon runs it: a name and a task started on the store once it is
//! open. The daemon is handed its controllers when it is assembled (`berth daemon`), so the
//! API server and the store know none of them.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use crate::ObjectStore;

/// Becomes `true` when the daemon stops; a controller returns soon after.
pub type Shutdown = watch::Receiver<bool>;

/// The future a controller runs as.
pub type ControllerTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What starts a controller's task on the opened store.
type Start = Box<dyn FnOnce(ObjectStore, Shutdown) -> ControllerTask + Send>;

/// A named control loop the daemon runs.
pub struct Controller {
    /// Its name, for logs.
    pub name: &'static str,
    start: Start,
}

impl Controller {
    /// A controller named `name` whose task `start` builds from the store and the shutdown
    /// signal.
    pub fn new(
        name: &'static str,
        start: impl FnOnce(ObjectStore, Shutdown) -> ControllerTask + Send + 'static,
    ) -> Controller {
        Controller {
            name,
            start: Box::new(start),
        }
    }

    /// Its task, to spawn on the daemon's runtime.
    pub fn start(self, store: ObjectStore, shutdown: Shutdown) -> ControllerTask {
        (self.start)(store, shutdown)
    }
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_hands_the_store_and_shutdown_to_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(dir.path(), Vec::new()).unwrap();
        let (tx, rx) = watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let c = Controller::new("probe", move |store, mut shutdown| {
            Box::pin(async move {
                let _ = shutdown.changed().await;
                let _ = done_tx.send((store.revision(), *shutdown.borrow()));
            })
        });
        assert_eq!(c.name, "probe");
        let task = tokio::spawn(c.start(store, rx));
        tx.send(true).unwrap();
        task.await.unwrap();
        let (revision, stopped) = done_rx.await.unwrap();
        assert!(stopped);
        assert!(revision > 0, "the default namespaces are written on open");
    }
}
