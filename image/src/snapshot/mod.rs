//! Unpacked layers ("snapshots") keyed by chain id, after containerd's overlay
//! snapshotter.
//!
//! Layout under the snapshot directory (`$ROOT/snapshots/`):
//! ```text
//! <chain-id-hex>/fs/         one layer's tree, whiteouts in overlay form
//! <chain-id-hex>/meta.json   chain id, parent, diff id, content fingerprint
//! .tmp-XXXX/                 an unpack in progress (removed when it fails)
//! <chain-id-hex>.lock        held while that chain id is unpacked
//! ```
//! A layer is unpacked into a temporary directory, its uncompressed stream is
//! checked against the expected diff id while it is read, and only then is the
//! directory renamed into place, so a snapshot is either whole or absent. An
//! image's root filesystem is an overlay of its snapshots' `fs/` dirs (see
//! [`mount`]); [`diff`] turns a container's upper dir back into a layer.

pub mod compression;
pub mod diff;
pub mod mount;
pub mod unpack;
pub mod verify;
pub mod whiteout;

pub mod copy;
mod from_store;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::store::lock::PathLock;

pub use compression::Compression;
pub use mount::RootfsMount;
pub use unpack::{UnpackError, UnpackOptions};

/// File holding a snapshot's [`SnapshotMeta`].
const META_FILE: &str = "meta.json";
/// Directory holding a snapshot's tree.
const FS_DIR: &str = "fs";
/// Prefix of in-progress unpack directories.
const TEMP_PREFIX: &str = ".tmp-";
/// Suffix of the lock file held while a chain id is unpacked (`<chain-hex>.lock`).
const LOCK_SUFFIX: &str = ".lock";

/// Errors from the snapshot store.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The parent snapshot a layer must sit on is not unpacked.
    #[error("snapshot {0}: parent snapshot not found")]
    ParentMissing(Digest),
    /// No snapshot has this chain id.
    #[error("snapshot {0}: not found")]
    NotFound(Digest),
    /// The uncompressed layer hashed to another diff id than expected.
    #[error("layer {expected}: diff id mismatch: uncompressed stream is {actual}")]
    DiffIdMismatch {
        /// The diff id the image config declares.
        expected: Digest,
        /// The digest of the uncompressed stream.
        actual: Digest,
    },
    /// Unpacking the layer tar failed.
    #[error("layer {diff_id}: {source}")]
    Unpack {
        /// The layer's diff id.
        diff_id: Digest,
        /// What went wrong.
        #[source]
        source: Box<UnpackError>,
    },
    /// The layer's compression is unknown or its stream unreadable.
    #[error("layer {diff_id}: {source}")]
    Compression {
        /// The layer's diff id.
        diff_id: Digest,
        /// What went wrong.
        #[source]
        source: compression::CompressionError,
    },
    /// The snapshot's metadata is missing or unreadable.
    #[error("snapshot {chain_id}: metadata {path}: {reason}")]
    BadMeta {
        /// The snapshot's chain id.
        chain_id: Digest,
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The snapshot's tree no longer matches what was committed.
    #[error("snapshot {chain_id}: content changed since it was unpacked (fingerprint {actual}, expected {expected})")]
    Tampered {
        /// The snapshot's chain id.
        chain_id: Digest,
        /// The fingerprint recorded at commit.
        expected: Digest,
        /// The fingerprint now.
        actual: Digest,
    },
    /// Another snapshot sits on this one.
    #[error("snapshot {chain_id}: still the parent of snapshot {child}")]
    HasChildren {
        /// The snapshot asked to be removed.
        chain_id: Digest,
        /// A snapshot whose parent it is.
        child: Digest,
    },
    /// The image's manifest, config or layer blobs could not be read.
    #[error("{0}")]
    Image(String),
    /// Making the root filesystem failed.
    #[error(transparent)]
    Mount(#[from] mount::MountError),
    /// Fingerprinting a tree failed.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// A filesystem operation on the store failed.
    #[error("snapshot store {path}: {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        action,
        path,
        source,
    }
}

/// How a snapshot stores whiteouts (see [`whiteout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhiteoutForm {
    /// 0/0 character devices and `trusted.overlay.opaque`: usable as an overlay lower dir.
    Overlay,
    /// `.wh.` marker files, as in the tar: only the copy fallback can merge them.
    Marker,
}

/// What `meta.json` records about a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    /// This snapshot's chain id (also its directory name).
    pub chain_id: Digest,
    /// The chain id of the snapshot below, `None` for a base layer.
    pub parent: Option<Digest>,
    /// The diff id (digest of the uncompressed tar) of the layer unpacked here.
    pub diff_id: Digest,
    /// How whiteouts are stored in `fs/`.
    pub whiteouts: WhiteoutForm,
    /// Content fingerprint of `fs/` at commit (see [`verify`]).
    pub fingerprint: Digest,
    /// Total bytes of regular files in `fs/`.
    pub size: u64,
}

/// The OCI chain id of a layer: its diff id for a base layer, otherwise
/// `sha256(parent_chain_id + " " + diff_id)`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => Digest::sha256_of(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// The chain ids of an image's layers from its diff ids, base layer first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = chain_id(out.last(), diff_id);
        out.push(next);
    }
    out
}

/// The snapshot store: unpacked layers under one directory.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    options: UnpackOptions,
}

impl Snapshots {
    /// A store at `dir` (created on first unpack) that unpacks with the
    /// privileges of the calling process (see [`UnpackOptions::for_current_user`]).
    pub fn new(dir: impl Into<PathBuf>) -> Snapshots {
        Snapshots::with_options(dir, UnpackOptions::for_current_user())
    }

    /// A store at `dir` with explicit unpack options.
    pub fn with_options(dir: impl Into<PathBuf>, options: UnpackOptions) -> Snapshots {
        Snapshots {
            dir: dir.into(),
            options,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    /// The tree of the snapshot `chain` (its `fs/` directory), whether or not it exists.
    pub fn path(&self, chain: &Digest) -> PathBuf {
        self.snapshot_dir(chain).join(FS_DIR)
    }

    /// True when the snapshot `chain` is committed.
    pub fn exists(&self, chain: &Digest) -> bool {
        self.snapshot_dir(chain).join(META_FILE).is_file()
    }

    /// Reads the metadata of snapshot `chain`.
    pub fn meta(&self, chain: &Digest) -> Result<SnapshotMeta, SnapshotError> {
        let path = self.snapshot_dir(chain).join(META_FILE);
        let bad = |reason: String| SnapshotError::BadMeta {
            chain_id: chain.clone(),
            path: path.clone(),
            reason,
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.snapshot_dir(chain).exists() => {
                return Err(SnapshotError::NotFound(chain.clone()))
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        let meta: SnapshotMeta = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if &meta.chain_id != chain {
            return Err(bad(format!("records chain id {}", meta.chain_id)));
        }
        Ok(meta)
    }

    /// Unpacks one layer on top of snapshot `parent` (which must exist) and
    /// returns the new snapshot's chain id. The uncompressed stream must hash
    /// to `diff_id`; compression is found from `media_type` and magic bytes.
    /// When the snapshot already exists, `layer` is not read.
    pub fn unpack<R: Read>(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        media_type: &str,
        layer: R,
    ) -> Result<Digest, SnapshotError> {
        let chain = chain_id(parent, diff_id);
        if let Some(parent) = parent {
            if !self.exists(parent) {
                return Err(SnapshotError::ParentMissing(parent.clone()));
            }
        }
        if self.exists(&chain) {
            tracing::debug!(%chain, "snapshot already unpacked");
            return Ok(chain);
        }
        let _span = tracing::debug_span!("unpack", %diff_id, %chain).entered();
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        // One unpacker per chain id; a second one waits and finds it done.
        let lock_path = self.dir.join(format!("{}{LOCK_SUFFIX}", chain.hex()));
        let _lock = PathLock::acquire(lock_path.clone()).map_err(io_err("lock", &lock_path))?;
        if self.exists(&chain) {
            tracing::debug!(%chain, "snapshot unpacked by another writer meanwhile");
            return Ok(chain);
        }
        let temp = TempDir::new_in(&self.dir)?;
        let tree = temp.path.join(FS_DIR);
        fs::create_dir(&tree).map_err(io_err("create", &tree))?;
        fs::set_permissions(&tree, fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", &tree))?;

        let (_, stream) = compression::decompress(media_type, layer).map_err(|source| {
            SnapshotError::Compression {
                diff_id: diff_id.clone(),
                source,
            }
        })?;
        let mut hashing = HashingReader::new(stream, diff_id.algorithm());
        let unpacked = unpack::unpack_tar(&mut hashing, &tree, &self.options);
        // Hash what follows the tar end marker too: the diff id covers the whole stream.
        let drained = io::copy(&mut hashing, &mut io::sink());
        let actual = hashing.digest();
        if let Err(source) = unpacked {
            // A stream that is not the expected layer is reported as such.
            if drained.is_ok() && actual != *diff_id {
                return Err(SnapshotError::DiffIdMismatch {
                    expected: diff_id.clone(),
                    actual,
                });
            }
            return Err(SnapshotError::Unpack {
                diff_id: diff_id.clone(),
                source: Box::new(source),
            });
        }
        drained.map_err(|e| SnapshotError::Unpack {
            diff_id: diff_id.clone(),
            source: Box::new(UnpackError::Read(e)),
        })?;
        if actual != *diff_id {
            return Err(SnapshotError::DiffIdMismatch {
                expected: diff_id.clone(),
                actual,
            });
        }

        let (fingerprint, size) = verify::fingerprint(&tree)?;
        let meta = SnapshotMeta {
            chain_id: chain.clone(),
            parent: parent.cloned(),
            diff_id: diff_id.clone(),
            whiteouts: if self.options.privileged {
                WhiteoutForm::Overlay
            } else {
                WhiteoutForm::Marker
            },
            fingerprint,
            size,
        };
        let meta_path = temp.path.join(META_FILE);
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| SnapshotError::BadMeta {
            chain_id: chain.clone(),
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
        fs::write(&meta_path, json).map_err(io_err("write", &meta_path))?;

        let target = self.snapshot_dir(&chain);
        match fs::rename(&temp.path, &target) {
            Ok(()) => temp.keep(),
            // Another unpack of the same layer won the race; ours is dropped.
            Err(_) if self.exists(&chain) => {}
            Err(e) => return Err(io_err("commit", &target)(e)),
        }
        tracing::info!(%chain, %diff_id, size, "snapshot committed");
        Ok(chain)
    }

    /// Chain ids of all committed snapshots, sorted.
    pub fn list(&self) -> Result<Vec<Digest>, SnapshotError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let algorithm = match name.len() {
                64 => Algorithm::Sha256,
                128 => Algorithm::Sha512,
                _ => continue,
            };
            if let Ok(d) = Digest::new(algorithm, name) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The overlay lower dirs of the image whose top snapshot is `top`: the
    /// `fs/` dirs from `top` down to the base layer (overlayfs order).
    pub fn lowers(&self, top: &Digest) -> Result<Vec<PathBuf>, SnapshotError> {
        let mut out = Vec::new();
        let mut next = Some(top.clone());
        while let Some(chain) = next {
            let meta = self.meta(&chain)?;
            out.push(self.path(&chain));
            next = meta.parent;
        }
        Ok(out)
    }

    /// Removes snapshot `chain`; fails while another snapshot has it as parent.
    pub fn remove(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let dir = self.snapshot_dir(chain);
        if !dir.exists() {
            return Err(SnapshotError::NotFound(chain.clone()));
        }
        for other in self.list()? {
            if &other == chain {
                continue;
            }
            if let Ok(meta) = self.meta(&other) {
                if meta.parent.as_ref() == Some(chain) {
                    return Err(SnapshotError::HasChildren {
                        chain_id: chain.clone(),
                        child: other,
                    });
                }
            }
        }
        // Move it aside first so it disappears from the store atomically.
        let doomed = TempDir::new_in(&self.dir)?;
        let aside = doomed.path.join("removed");
        fs::rename(&dir, &aside).map_err(io_err("remove", &dir))?;
        tracing::info!(%chain, "snapshot removed");
        Ok(())
    }

    /// Checks snapshot `chain`: metadata readable and consistent with its
    /// name and parent chain, the parent present, and the tree's fingerprint
    /// unchanged since commit.
    pub fn verify(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let meta = self.meta(chain)?;
        let expected_chain = chain_id(meta.parent.as_ref(), &meta.diff_id);
        if &expected_chain != chain {
            return Err(SnapshotError::BadMeta {
                chain_id: chain.clone(),
                path: self.snapshot_dir(chain).join(META_FILE),
                reason: format!("parent and diff id give chain id {expected_chain}"),
            });
        }
        if let Some(parent) = &meta.parent {
            if !self.exists(parent) {
                return Err(SnapshotError::ParentMissing(parent.clone()));
            }
        }
        let (actual, _) = verify::fingerprint(&self.path(chain))?;
        if actual != meta.fingerprint {
            return Err(SnapshotError::Tampered {
                chain_id: chain.clone(),
                expected: meta.fingerprint,
                actual,
            });
        }
        Ok(())
    }

    /// Removes unpack directories left by crashed processes that are older
    /// than `age` (younger ones may belong to an unpack still running), and
    /// chain lock files nobody holds. Returns how many directories were removed.
    pub fn remove_stale_temp(&self, age: Duration) -> Result<usize, SnapshotError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("list", &self.dir)(e)),
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(LOCK_SUFFIX) {
                // Left by a killed unpacker: taken only if free, and removed when dropped.
                let path = entry.path();
                drop(PathLock::try_acquire(path.clone()).map_err(io_err("lock", &path))?);
                continue;
            }
            if !name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io_err("stat", &path))?;
            if now.duration_since(modified).unwrap_or_default() >= age {
                remove_tree(&path).map_err(io_err("remove", &path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An in-progress directory under the store, removed on drop unless kept.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn new_in(dir: &Path) -> Result<TempDir, SnapshotError> {
        let mut last = None;
        for _ in 0..16 {
            let name = format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>());
            let path = dir.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
        Err(io_err("create temporary dir in", dir)(e))
    }

    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = remove_tree(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temporary snapshot dir");
            }
        }
    }
}

/// Removes a tree even when some of its directories are read-only (as layer
/// dirs such as `0555` ones are for an unprivileged unpacker).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(first) => {
            make_dirs_writable(path);
            fs::remove_dir_all(path).map_err(|_| first)
        }
    }
}

fn make_dirs_writable(path: &Path) {
    let Ok(meta) = path.symlink_metadata() else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    // Best effort: the retried remove reports whatever still fails.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            make_dirs_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
