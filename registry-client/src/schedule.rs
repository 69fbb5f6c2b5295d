//! How many blobs move at once. Large blobs share `max_concurrent_blobs`
//! slots (bandwidth and CPU for hashing are the limit); small ones are bound
//! by round trips, not bytes, so more of them run beside the large ones.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Blobs up to this size do not take a large-blob slot.
pub const SMALL_BLOB: u64 = 1 << 20;
/// How many transfers may be in flight in total.
const MAX_IN_FLIGHT: usize = 8;

/// Slots for large-blob transfers.
#[derive(Clone)]
pub struct Slots {
    large: Arc<Semaphore>,
    in_flight: usize,
}

impl Slots {
    /// Slots for `max_large` concurrent large blobs.
    pub fn new(max_large: usize) -> Slots {
        let max_large = max_large.max(1);
        Slots {
            large: Arc::new(Semaphore::new(max_large)),
            in_flight: max_large.max(MAX_IN_FLIGHT),
        }
    }

    /// How many transfers to run at once in total.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Waits for a slot when a blob of `size` bytes needs one; held until dropped.
    pub async fn acquire(&self, size: u64) -> Option<OwnedSemaphorePermit> {
        if size <= SMALL_BLOB {
            return None;
        }
        self.large.clone().acquire_owned().await.ok()
    }
}
