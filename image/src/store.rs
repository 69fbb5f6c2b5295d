//! The content store: verified blobs, resumable ingests, image records and
//! the store lock, laid out under one root directory.
//!
//! ```text
//! $ROOT/lock                     flock: shared for readers, exclusive for writers and gc
//! $ROOT/blobs/sha256/<hex>       immutable, verified content
//! $ROOT/ingest/<alg>-<hex>/data  a blob being written; renamed into blobs/ once verified
//! $ROOT/images/<key>.json        one record per image name: {name, target descriptor, created}
//! $ROOT/snapshots/<chain-id>/    unpacked layers (see the snapshot module)
//! ```
//!
//! As in containerd's local content store, a blob only becomes visible by an
//! atomic rename after its digest and size were checked, so an interrupted
//! write leaves at most an ingest directory behind, which resumes or is
//! discarded.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use tracing::{debug, info_span};

use crate::digest::{Algorithm, Digest, DigestError, Hasher, HashingWriter, VerifyingReader};
use crate::manifest::{
    self, descriptor_digest, media_type_str, Manifest, ManifestError, ManifestKind, PlatformSpec,
};
use crate::reference::{Reference, ReferenceError};

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

/// A held store lock, released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Where an image record points and what it is called.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image's name; `None` for an image loaded without one (shown as `<none>`).
    #[serde(with = "opt_reference")]
    pub name: Option<Reference>,
    /// The manifest or index the name points at.
    pub target: Descriptor,
    /// When the record was written, RFC 3339.
    pub created: String,
}

mod opt_reference {
    use crate::reference::Reference;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(r: &Option<Reference>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => s.collect_str(r),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Reference>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| Reference::parse_named(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl ImageRecord {
    /// Digest of the record's target.
    pub fn target_digest(&self) -> Result<Digest, StoreError> {
        Ok(descriptor_digest(&self.target)?)
    }
}

/// One image resolved down to a single platform: its manifest, config and layers,
/// with the raw bytes of manifest and config kept for byte-exact output.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The record's name, if the image was found by name or has one.
    pub name: Option<Reference>,
    /// What the record points at (an index or a manifest).
    pub target: Descriptor,
    /// Digest of the platform manifest (equal to the target's unless it is an index).
    pub manifest_digest: Digest,
    /// Media type of the platform manifest.
    pub manifest_media_type: String,
    /// The manifest's bytes as stored.
    pub manifest_raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The config digest, which is the image id.
    pub config_digest: Digest,
    /// The config's bytes as stored.
    pub config_raw: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Layer descriptors, base layer first.
    pub layers: Vec<Descriptor>,
}

impl ResolvedImage {
    /// The image id (config digest), as Docker shows it.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The uncompressed layer digests (`rootfs.diff_ids`) from the config.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, StoreError> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|s| {
                s.parse().map_err(|source| StoreError::Verify {
                    digest: self.config_digest.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Total size of the compressed layers and the config, as `docker images` reports it.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size()).sum::<u64>() + self.config_raw.len() as u64
    }
}

/// An in-progress blob write in `$ROOT/ingest/`, resumable by digest.
///
/// Write the remaining bytes (from [`Ingest::offset`]) and call
/// [`Ingest::commit`]; dropping it without committing leaves the partial data
/// for a later resume (or for `gc` to discard).
pub struct Ingest {
    dir: PathBuf,
    blob: PathBuf,
    expected: Digest,
    expected_size: Option<u64>,
    writer: HashingWriter<io::BufWriter<File>>,
    offset: u64,
}

impl Ingest {
    /// Bytes already present when the ingest was opened (where to resume from).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes written in total, including the resumed part.
    pub fn written(&self) -> u64 {
        self.writer.count()
    }

    /// The digest this ingest must produce.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Verifies digest and size, syncs, and renames the data into `blobs/`.
    /// On mismatch the partial data is discarded and an error returned.
    pub fn commit(self) -> Result<u64, StoreError> {
        let Ingest {
            dir,
            blob,
            expected,
            expected_size,
            writer,
            ..
        } = self;
        let (buffered, actual, size) = writer.finish();
        let data = dir.join("data");
        let mut file = buffered
            .into_inner()
            .map_err(|e| io_err("write", &data)(e.into_error()))?;
        let mismatch = if actual != expected {
            Some(DigestError::Mismatch {
                expected: expected.clone(),
                actual,
            })
        } else {
            match expected_size {
                Some(want) if want != size => Some(DigestError::SizeMismatch {
                    digest: expected.clone(),
                    expected: want,
                    actual: size,
                }),
                _ => None,
            }
        };
        if let Some(source) = mismatch {
            drop(file);
            let _ = fs::remove_dir_all(&dir);
            return Err(StoreError::Verify {
                digest: expected,
                source,
            });
        }
        file.flush().map_err(io_err("flush", &data))?;
        file.sync_all().map_err(io_err("fsync", &data))?;
        drop(file);
        if let Some(parent) = blob.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::rename(&data, &blob).map_err(io_err("rename into place", &blob))?;
        if let Some(parent) = blob.parent() {
            sync_dir(parent)?;
        }
        let _ = fs::remove_dir_all(&dir);
        debug!(digest = %expected, size, "blob committed");
        Ok(size)
    }

    /// Throws the partial data away.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(size) = self.expected_size {
            if self.writer.count() + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::SizeMismatch {
                        digest: self.expected.clone(),
                        expected: size,
                        actual: self.writer.count() + buf.len() as u64,
                    },
                ));
            }
        }
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Buffer between blob writers and their files: large writes, few syscalls.
const WRITE_BUFFER: usize = 1 << 20;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
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

impl Store {
    /// Opens (creating if needed) the store at `root`, which only its owner may reach.
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

    fn lock(&self, exclusive: bool) -> Result<StoreLock, StoreError> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock", &path))?;
        let r = if exclusive {
            fs2::FileExt::lock_exclusive(&file)
        } else {
            fs2::FileExt::lock_shared(&file)
        };
        r.map_err(io_err("lock", &path))?;
        Ok(StoreLock { _file: file })
    }

    /// Takes the store lock shared: for commands that only read.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        self.lock(false)
    }

    /// Takes the store lock exclusively: for commands that write, and for gc.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        self.lock(true)
    }

    /// Path of a blob's file (which may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Whether a blob is present (not verified; see [`Store::verify_blob`]).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let p = self.blob_path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens a blob for reading; the reader fails at end of file if the content
    /// no longer matches its digest.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifyingReader<File>, StoreError> {
        let p = self.blob_path(digest);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => return Err(io_err("open", &p)(e)),
        };
        let size = f.metadata().map_err(io_err("stat", &p))?.len();
        Ok(VerifyingReader::new(f, digest.clone(), Some(size)))
    }

    /// Opens a blob without verification, for callers that verify themselves
    /// (or copy it to a sink that does).
    pub fn open_blob_unverified(&self, digest: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound(digest.clone())
            } else {
                io_err("open", &p)(e)
            }
        })
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(digest);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => return Err(io_err("read", &p)(e)),
        };
        digest.verify(&bytes).map_err(|source| StoreError::Verify {
            digest: digest.clone(),
            source,
        })?;
        Ok(bytes)
    }

    /// Re-hashes a stored blob and reports a mismatch.
    pub fn verify_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut r = self.open_blob(digest)?;
        io::copy(&mut r, &mut io::sink()).map_err(|e| match e.into_inner() {
            Some(inner) => match inner.downcast::<DigestError>() {
                Ok(source) => StoreError::Verify {
                    digest: digest.clone(),
                    source: *source,
                },
                Err(other) => io_err("read", &self.blob_path(digest))(io::Error::other(other)),
            },
            None => io_err("read", &self.blob_path(digest))(io::Error::other("read failed")),
        })?;
        Ok(())
    }

    /// Starts (or resumes) writing the blob `expected`. If partial data from an
    /// earlier attempt exists it is re-hashed and [`Ingest::offset`] says where
    /// to continue.
    pub fn ingest(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Ingest, StoreError> {
        let dir =
            self.root
                .join("ingest")
                .join(format!("{}-{}", expected.algorithm(), expected.hex()));
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data)
            .map_err(io_err("open", &data))?;
        let mut hasher = Hasher::new(expected.algorithm());
        let mut offset = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &data))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        if expected_size.is_some_and(|s| offset > s) {
            file.set_len(0).map_err(io_err("truncate", &data))?;
            hasher = Hasher::new(expected.algorithm());
            offset = 0;
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", &data))?;
        if offset > 0 {
            debug!(digest = %expected, offset, "resuming ingest");
        }
        Ok(Ingest {
            blob: self.blob_path(expected),
            dir,
            expected: expected.clone(),
            expected_size,
            writer: HashingWriter::resume(
                io::BufWriter::with_capacity(WRITE_BUFFER, file),
                hasher,
                offset,
            ),
            offset,
        })
    }

    /// Writes a blob from a reader. With `expected`, the content must match it
    /// (an existing blob is kept and the reader is not consumed); without,
    /// the digest is computed. Returns the digest and size.
    pub fn write_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        if let Some(d) = expected {
            if self.has_blob(d) {
                return Ok((d.clone(), self.blob_size(d)?));
            }
            let span = info_span!("ingest", digest = %d);
            let _g = span.enter();
            let mut ing = self.ingest(d, None)?;
            if ing.offset() > 0 {
                // The reader starts at byte 0: start the ingest over.
                ing.abort();
                ing = self.ingest(d, None)?;
            }
            let data = ing.dir.join("data");
            io::copy(&mut reader, &mut ing).map_err(io_err("write", &data))?;
            let size = ing.commit()?;
            return Ok((d.clone(), size));
        }
        let dir = self
            .root
            .join("ingest")
            .join(format!("tmp-{}", unique_suffix()));
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let result = (|| {
            let f = File::create(&data).map_err(io_err("create", &data))?;
            let mut w = HashingWriter::new(
                io::BufWriter::with_capacity(WRITE_BUFFER, f),
                Algorithm::Sha256,
            );
            io::copy(&mut reader, &mut w).map_err(io_err("write", &data))?;
            let (buffered, digest, size) = w.finish();
            let f = buffered
                .into_inner()
                .map_err(|e| io_err("write", &data)(e.into_error()))?;
            f.sync_all().map_err(io_err("fsync", &data))?;
            drop(f);
            let blob = self.blob_path(&digest);
            if !blob.exists() {
                fs::rename(&data, &blob).map_err(io_err("rename into place", &blob))?;
                if let Some(parent) = blob.parent() {
                    sync_dir(parent)?;
                }
            }
            Ok((digest, size))
        })();
        let _ = fs::remove_dir_all(&dir);
        result
    }

    /// Stores a small blob held in memory.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::sha256_of(bytes);
        self.write_blob(bytes, Some(&digest))
    }

    /// Stores an image config and the OCI manifest listing it and `layers`
    /// (media type, digest, size), and returns the config digest (the image id)
    /// and the manifest's descriptor, ready for [`Store::put_image`].
    pub fn write_oci_image(
        &self,
        config: &serde_json::Value,
        layers: &[(&str, &Digest, u64)],
    ) -> Result<(Digest, Descriptor), StoreError> {
        // A Value's Display is its compact JSON, the bytes serde_json::to_vec gives.
        let (config_digest, config_size) = self.write_blob_bytes(config.to_string().as_bytes())?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": manifest::OCI_CONFIG,
                "digest": config_digest.to_string(),
                "size": config_size,
            },
            "layers": layers.iter().map(|(media_type, digest, size)| serde_json::json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": size,
            })).collect::<Vec<_>>(),
        });
        let (manifest_digest, manifest_size) =
            self.write_blob_bytes(manifest.to_string().as_bytes())?;
        let target = manifest::descriptor(manifest::OCI_MANIFEST, &manifest_digest, manifest_size);
        Ok((config_digest, target))
    }

    /// Removes a blob (gc only: callers must hold the exclusive lock).
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// All blobs in the store. Files whose names are not valid digests are
    /// reported by [`Store::stray_blob_files`] instead.
    pub fn list_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for e in entries {
                let e = e.map_err(io_err("list", &dir))?;
                if let Some(name) = e.file_name().to_str() {
                    if let Ok(d) = Digest::new(alg, name) {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Files under `blobs/` whose names are not digests (left by something else).
    pub fn stray_blob_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        let dir = self.root.join("blobs").join("sha256");
        let entries = fs::read_dir(&dir).map_err(io_err("list", &dir))?;
        for e in entries {
            let e = e.map_err(io_err("list", &dir))?;
            let ok = e
                .file_name()
                .to_str()
                .is_some_and(|n| Digest::new(Algorithm::Sha256, n).is_ok());
            if !ok {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    /// Ingest directories left by interrupted writes.
    pub fn list_ingests(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            out.push(e.map_err(io_err("list", &dir))?.path());
        }
        Ok(out)
    }

    /// Removes every ingest directory (gc only, under the exclusive lock).
    pub fn clear_ingests(&self) -> Result<usize, StoreError> {
        let list = self.list_ingests()?;
        for p in &list {
            fs::remove_dir_all(p).map_err(io_err("remove", p))?;
        }
        Ok(list.len())
    }

    fn record_key(name: Option<&Reference>, target: &Digest) -> String {
        let key = match name {
            Some(r) => r.to_string(),
            None => format!("@{target}"),
        };
        Digest::sha256_of(key.as_bytes()).hex().to_string()
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("images").join(format!("{key}.json"))
    }

    /// Points `name` at `target` (replacing what it pointed at), or records an
    /// unnamed image when `name` is `None`.
    pub fn put_image(
        &self,
        name: Option<&Reference>,
        target: &Descriptor,
    ) -> Result<ImageRecord, StoreError> {
        let digest = descriptor_digest(target)?;
        let record = ImageRecord {
            name: name.cloned(),
            target: target.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let path = self.record_path(&Self::record_key(name, &digest));
        let bytes = serde_json::to_vec_pretty(&record).map_err(|source| StoreError::Record {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)?;
        if name.is_some() {
            // A named record supersedes an unnamed one for the same target.
            let _ = fs::remove_file(self.record_path(&Self::record_key(None, &digest)));
        }
        Ok(record)
    }

    /// The record for `name`, if any.
    pub fn get_image(&self, name: &Reference) -> Result<Option<ImageRecord>, StoreError> {
        let path = self.record_path(&Self::record_key(Some(name), &Digest::sha256_of(b"")));
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Record { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every image record, sorted by name (unnamed ones last).
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let path = e.map_err(io_err("list", &dir))?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(io_err("read", &path))?;
            let rec: ImageRecord = serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Record { path, source })?;
            out.push(rec);
        }
        out.sort_by(|a, b| match (&a.name, &b.name) {
            (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.created.cmp(&b.created),
        });
        Ok(out)
    }

    /// Deletes the record of `record` (its name, or its unnamed entry).
    pub fn remove_image(&self, record: &ImageRecord) -> Result<(), StoreError> {
        let key = Self::record_key(record.name.as_ref(), &record.target_digest()?);
        let path = self.record_path(&key);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root.join("images")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Reads a manifest or index blob and parses it according to `media_type`.
    pub fn read_manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<(Vec<u8>, Manifest), StoreError> {
        let raw = self.read_blob(digest)?;
        let parsed = Manifest::parse(digest, media_type, &raw)?;
        Ok((raw, parsed))
    }

    /// Resolves a record down to one platform's manifest, config and layers.
    pub fn resolve_record(
        &self,
        record: &ImageRecord,
        platform: &PlatformSpec,
    ) -> Result<ResolvedImage, StoreError> {
        let target_digest = record.target_digest()?;
        let target_type = media_type_str(&record.target);
        let (mut manifest_digest, mut manifest_type) = (target_digest.clone(), target_type);
        let (mut raw, mut parsed) = self.read_manifest(&manifest_digest, Some(&manifest_type))?;
        // Nested indexes are legal; follow at most a few levels.
        for _ in 0..4 {
            let Manifest::Index(index) = &parsed else {
                break;
            };
            let pick = manifest::select_platform(&manifest_digest, index, platform)?;
            manifest_digest = descriptor_digest(pick)?;
            manifest_type = media_type_str(pick);
            (raw, parsed) = self.read_manifest(&manifest_digest, Some(&manifest_type))?;
        }
        let Manifest::Image(m) = parsed else {
            return Err(StoreError::NotAManifest {
                name: record
                    .name
                    .as_ref()
                    .map(|r| r.familiar())
                    .unwrap_or_default(),
                digest: manifest_digest,
                media_type: manifest_type,
            });
        };
        if ManifestKind::of(&manifest_type).is_none() {
            manifest_type = m
                .media_type()
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        }
        let config_digest = descriptor_digest(m.config())?;
        let config_raw = self.read_blob(&config_digest)?;
        let config = manifest::parse_config(&config_digest, &config_raw)?;
        Ok(ResolvedImage {
            name: record.name.clone(),
            target: record.target.clone(),
            manifest_digest,
            manifest_media_type: manifest_type,
            manifest_raw: raw,
            layers: m.layers().clone(),
            manifest: *m,
            config_digest,
            config_raw,
            config,
        })
    }

    /// Finds the records an IMAGE argument names: a name (`busybox`,
    /// `user/app:1`), `name@digest`, a full image id (`sha256:<hex>` or
    /// 64 hex), or a unique id prefix of 12 or more hex characters.
    /// Several records are returned when an id matches several names.
    pub fn find_images(
        &self,
        query: &str,
        platform: &PlatformSpec,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let hex_part = query.strip_prefix("sha256:").unwrap_or(query);
        let is_hex = hex_part.len() >= 12
            && hex_part.len() <= 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hex || hex_part.len() < 64 {
            if let Ok(r) = Reference::parse(query) {
                if r.digest().is_some() {
                    let hits = self.records_by_digest(&r)?;
                    if !hits.is_empty() {
                        return Ok(hits);
                    }
                } else if let Some(rec) = self.get_image(&r)? {
                    return Ok(vec![rec]);
                }
            }
        }
        if is_hex {
            let mut hits: Vec<(Digest, ImageRecord)> = Vec::new();
            for rec in self.list_images()? {
                let Ok(img) = self.resolve_record(&rec, platform) else {
                    continue;
                };
                if img.config_digest.hex().starts_with(hex_part) {
                    hits.push((img.config_digest.clone(), rec));
                }
            }
            let first = hits.first().map(|(d, _)| d.clone());
            if hits.iter().any(|(d, _)| Some(d) != first.as_ref()) {
                return Err(StoreError::AmbiguousId(query.to_string()));
            }
            if !hits.is_empty() {
                return Ok(hits.into_iter().map(|(_, r)| r).collect());
            }
        }
        Err(StoreError::ImageNotFound(query.to_string()))
    }

    fn records_by_digest(&self, r: &Reference) -> Result<Vec<ImageRecord>, StoreError> {
        let Some(want) = r.digest() else {
            return Ok(Vec::new());
        };
        let mut hits = Vec::new();
        for rec in self.list_images()? {
            let same_repo = rec.name.as_ref().is_some_and(|n| n.name() == r.name());
            if same_repo && &rec.target_digest()? == want {
                hits.push(rec);
            }
        }
        Ok(hits)
    }

    /// Resolves an IMAGE argument (see [`Store::find_images`]) to one platform's
    /// manifest, config and layers.
    pub fn resolve(
        &self,
        query: &str,
        platform: &PlatformSpec,
    ) -> Result<ResolvedImage, StoreError> {
        let recs = self.find_images(query, platform)?;
        let rec = recs
            .first()
            .ok_or_else(|| StoreError::ImageNotFound(query.to_string()))?;
        self.resolve_record(rec, platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("root")).unwrap();
        (dir, s)
    }

    #[test]
    fn writes_and_reads_blobs() {
        let (_d, s) = store();
        let (digest, size) = s.write_blob(&b"hello"[..], None).unwrap();
        assert_eq!(size, 5);
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert!(s.has_blob(&digest));
        assert_eq!(s.read_blob(&digest).unwrap(), b"hello");
        assert_eq!(s.list_blobs().unwrap(), vec![digest.clone()]);
        assert!(s.list_ingests().unwrap().is_empty());
        s.verify_blob(&digest).unwrap();
    }

    #[test]
    fn rejects_content_with_the_wrong_digest() {
        let (_d, s) = store();
        let want = Digest::sha256_of(b"good");
        let err = s.write_blob(&b"evil"[..], Some(&want)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Verify {
                    source: DigestError::Mismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!s.has_blob(&want));
        assert!(s.list_ingests().unwrap().is_empty());
    }

    #[test]
    fn ingest_resumes_from_offset() {
        let (_d, s) = store();
        let data = b"0123456789abcdef";
        let want = Digest::sha256_of(data);
        let mut ing = s.ingest(&want, Some(16)).unwrap();
        ing.write_all(&data[..6]).unwrap();
        drop(ing);
        let mut ing = s.ingest(&want, Some(16)).unwrap();
        assert_eq!(ing.offset(), 6);
        ing.write_all(&data[6..]).unwrap();
        assert_eq!(ing.commit().unwrap(), 16);
        assert_eq!(s.read_blob(&want).unwrap(), data);
    }

    #[test]
    fn ingest_refuses_bytes_past_expected_size() {
        let (_d, s) = store();
        let want = Digest::sha256_of(b"abc");
        let mut ing = s.ingest(&want, Some(3)).unwrap();
        assert!(ing.write_all(b"abcd").is_err());
        ing.abort();
    }

    #[test]
    fn detects_corruption_on_read() {
        let (_d, s) = store();
        let (digest, _) = s.write_blob_bytes(b"payload").unwrap();
        fs::write(s.blob_path(&digest), b"pAyload").unwrap();
        let err = s.verify_blob(&digest).unwrap_err().to_string();
        assert!(err.contains(&digest.to_string()), "{err}");
        assert!(s.read_blob(&digest).is_err());
    }

    #[test]
    fn image_records_round_trip() {
        let (_d, s) = store();
        let (digest, size) = s.write_blob_bytes(b"{}").unwrap();
        let desc = manifest::descriptor(manifest::OCI_MANIFEST, &digest, size);
        let name = Reference::parse("busybox").unwrap();
        s.put_image(Some(&name), &desc).unwrap();
        let rec = s.get_image(&name).unwrap().unwrap();
        assert_eq!(rec.target_digest().unwrap(), digest);
        assert_eq!(s.list_images().unwrap().len(), 1);
        s.remove_image(&rec).unwrap();
        assert!(s.get_image(&name).unwrap().is_none());
    }

    #[test]
    fn locks_can_be_taken() {
        let (_d, s) = store();
        let a = s.lock_shared().unwrap();
        let b = s.lock_shared().unwrap();
        drop((a, b));
        let _c = s.lock_exclusive().unwrap();
    }
}
