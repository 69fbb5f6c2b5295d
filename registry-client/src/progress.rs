//! Progress events of a pull or push, for a front end to render (the CLI draws
//! bars with indicatif on a terminal and plain lines otherwise).

use std::sync::Arc;

use berth_image::digest::Digest;

/// What a blob is, for labelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// An image manifest or index.
    Manifest,
    /// An image config.
    Config,
    /// A filesystem layer.
    Layer,
}

/// How a blob's transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was already in the local store (pull) or the registry (push).
    Exists,
    /// It was downloaded and verified.
    Downloaded,
    /// The registry mounted it from another repository.
    Mounted,
    /// It was uploaded.
    Pushed,
}

/// One step of a transfer.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    /// The reference was resolved to a manifest or index.
    Resolved {
        /// The digest of what the reference names.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A blob transfer began (or was found unnecessary right away).
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// What it is.
        kind: BlobKind,
        /// Its size in bytes.
        size: u64,
    },
    /// Bytes of a blob moved.
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Bytes done so far (including any resumed part).
        done: u64,
    },
    /// A blob transfer was interrupted and is being retried or resumed.
    BlobRetry {
        /// The blob.
        digest: Digest,
        /// Where the transfer resumes.
        offset: u64,
        /// Why it was interrupted.
        reason: String,
    },
    /// A blob is complete.
    BlobDone {
        /// The blob.
        digest: Digest,
        /// How it completed.
        outcome: BlobOutcome,
    },
    /// A manifest was uploaded under a tag or digest.
    ManifestPushed {
        /// Its digest.
        digest: Digest,
        /// The tag or digest it was pushed as.
        reference: String,
    },
}

/// Where progress events go. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    sink: Option<Arc<dyn Fn(ProgressEvent) + Send + Sync>>,
}

impl Progress {
    /// Discards every event.
    pub fn none() -> Progress {
        Progress { sink: None }
    }

    /// Sends events to `f` (called from the transfer's tasks; keep it quick).
    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Progress {
        Progress {
            sink: Some(Arc::new(f)),
        }
    }

    /// Reports an event.
    pub fn emit(&self, event: ProgressEvent) {
        if let Some(s) = &self.sink {
            s(event);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}
