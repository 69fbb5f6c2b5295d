//! The content store: verified blobs ([`content`]), image records
//! ([`records`]), name resolution ([`resolve`]) and the locks that let
//! unrelated work run side by side ([`lock`]), laid out under one root
//! directory.
//!
//! ```text
//! $ROOT/lock                          gc lock: shared by every lease, exclusive for gc
//! $ROOT/images.lock                   serialises tag/rmi read-modify-write of records
//! $ROOT/blobs/sha256/<hex>            immutable, verified content
//! $ROOT/ingest/<alg>-<hex>/data       a blob being written; renamed into blobs/ once verified
//! $ROOT/ingest/<alg>-<hex>.lock       held by that blob's one writer
//! $ROOT/images/<key>.json             one record per image name: {name, target descriptor, created}
//! $ROOT/snapshots/<chain-id>/         unpacked layers (see the snapshot module)
//! ```
//!
//! As in containerd, content and metadata are kept apart: a blob only becomes
//! visible by an atomic rename after its digest and size were checked, so an
//! interrupted write leaves at most an ingest directory behind, which resumes
//! or is discarded; a record is written aside and renamed into place, after
//! everything it points at is stored.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, DigestError};
use crate::manifest::ManifestError;
use crate::reference::ReferenceError;

pub mod content;
pub mod lock;
pub mod records;
pub mod resolve;

pub use content::Ingest;
pub use lock::{GcLock, Lease, RecordsLock};
pub use records::ImageRecord;
pub use resolve::ResolvedImage;

/// Errors from the content store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation on a store path failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A blob the caller asked for is not in the store.
    #[error("blob {0}: not found in the store")]
    BlobNotFound(Digest),
    /// Content did not match its digest or size.
    #[error("blob {digest}")]
    Verify {
        /// The blob being verified.
        digest: Digest,
        /// The mismatch.
        source: DigestError,
    },
    /// No image record matches the name or id.
    #[error("image {0:?}: no such image")]
    ImageNotFound(String),
    /// A short id matches more than one image.
    #[error("image id prefix {0:?} is ambiguous: it matches more than one image")]
    AmbiguousId(String),
    /// A record file could not be read or written as JSON.
    #[error("image record {path}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A manifest or config in the store is not usable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A name could not be parsed as a reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// An image record points at something that is not a manifest or index.
    #[error(
        "image {name}: target {digest} has media type {media_type:?}, not a manifest or index"
    )]
    NotAManifest {
        /// The image name.
        name: String,
        /// The target digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
/// A content store rooted at one directory. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        crate::perms::private_dir(&root).map_err(io_err("create", &root))?;
        for sub in ["blobs/sha256", "ingest", "images"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(Store { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where unpacked layers live (`$ROOT/snapshots`).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer (in this or another process) picks.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_lays_out_the_root_and_writes_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("root")).unwrap();
        for sub in ["blobs/sha256", "ingest", "images"] {
            assert!(s.root().join(sub).is_dir(), "{sub}");
        }
        let p = s.root().join("images").join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = fs::read_dir(s.root().join("images")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temp file stays beside the record");
    }
}
