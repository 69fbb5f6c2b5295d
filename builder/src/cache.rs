//! The build cache index under `$ROOT/cache/steps/`: one small JSON record per step key
//! saying which layer the step produced (if any) and what the key was made of, so a
//! rebuild with unchanged inputs reuses layers without running anything.
//!
//! Records are written atomically (temp file, rename). A record whose layer blob has
//! gone from the store (after `system gc`) is treated as a miss.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_image::digest::Digest;
use berth_image::snapshot::Compression;
use berth_image::store::Store;
use serde::{Deserialize, Serialize};

use crate::cachekey::CacheKey;

/// Why the cache index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A record or the index directory could not be written.
    #[error("build cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record could not be encoded.
    #[error("build cache record {path}: {source}")]
    Encode {
        /// The record file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// A layer a step produced, as the image manifest and config refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Digest of the (compressed) blob in the store.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Blob size in bytes.
    pub size: u64,
    /// The layer media type.
    pub media_type: String,
}

/// What one cache record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The step key.
    pub key: String,
    /// The layer the step added, `None` when it changed no file.
    pub layer: Option<LayerRef>,
    /// The instruction as shown in history (`created_by`).
    pub created_by: String,
    /// The keys of what the step read besides its parent (context content, stages).
    pub inputs: Vec<String>,
    /// When the step ran (RFC 3339): its history time in every image that reuses it.
    #[serde(default)]
    pub created: Option<String>,
}

/// The cache index of one store.
#[derive(Debug, Clone)]
pub struct CacheIndex {
    dir: PathBuf,
}

/// How layers are written, which a cached layer must match to be reused: compression
/// and the fixed timestamp (`SOURCE_DATE_EPOCH`), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerFormat {
    /// Layer compression.
    pub compression: Compression,
    /// Every entry's mtime, when fixed.
    pub mtime: Option<u64>,
}

impl LayerFormat {
    fn suffix(&self) -> String {
        let c = match self.compression {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        };
        match self.mtime {
            Some(t) => format!("{c}-t{t}"),
            None => c.to_string(),
        }
    }
}

impl CacheIndex {
    /// The index under `root` (`$ROOT/cache/steps`), created on first write.
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("cache").join("steps"),
        }
    }

    fn path(&self, key: &CacheKey, format: LayerFormat) -> PathBuf {
        let text = key.to_string();
        let hex = text.trim_start_matches("sha256:");
        self.dir.join(format!("{hex}-{}.json", format.suffix()))
    }

    /// The record for `key` with layers in `format`, if it exists and its layer is
    /// still in `store`. An unreadable record is a miss.
    pub fn get(&self, store: &Store, key: &CacheKey, format: LayerFormat) -> Option<CacheRecord> {
        let path = self.path(key, format);
        let bytes = fs::read(&path).ok()?;
        let record: CacheRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cache record");
                return None;
            }
        };
        if let Some(layer) = &record.layer {
            if !store.has_blob(&layer.digest) {
                return None;
            }
        }
        Some(record)
    }

    /// Records what the step keyed `key` produced.
    pub fn put(
        &self,
        record: &CacheRecord,
        key: &CacheKey,
        format: LayerFormat,
    ) -> Result<(), CacheError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.path(key, format);
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| CacheError::Encode {
            path: path.clone(),
            source,
        })?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cachekey::CacheKey;

    #[test]
    fn records_round_trip_and_a_missing_layer_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let index = CacheIndex::new(store.root());
        let key = CacheKey::base("scratch");
        let gzip = LayerFormat {
            compression: Compression::Gzip,
            mtime: None,
        };
        let (digest, size) = store.write_blob_bytes(b"layer").unwrap();
        let record = CacheRecord {
            key: key.to_string(),
            layer: Some(LayerRef {
                digest: digest.clone(),
                diff_id: digest.clone(),
                size,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            }),
            created_by: "RUN true".into(),
            inputs: Vec::new(),
            created: None,
        };
        index.put(&record, &key, gzip).unwrap();
        assert_eq!(index.get(&store, &key, gzip), Some(record));
        // Another layer format is another entry.
        let zstd = LayerFormat {
            compression: Compression::Zstd,
            mtime: None,
        };
        assert_eq!(index.get(&store, &key, zstd), None);
        // A layer blob removed from the store (gc) makes the record a miss.
        store.remove_blob(&digest).unwrap();
        assert_eq!(index.get(&store, &key, gzip), None);
    }
}
