//! Committing build results to the store: a step's overlay upper dir becomes a layer
//! blob (and the snapshot the next step mounts), and a stage's final config and layers
//! become an image manifest that tags point at.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use berth_image::digest::Digest;
use berth_image::reference::Reference;
use berth_image::snapshot::diff::{write_layer, DiffError};
use berth_image::snapshot::{chain_id, Compression, SnapshotError, Snapshots};
use berth_image::store::{ImageRecord, Store, StoreError};
use oci_spec::image::Descriptor;
use serde_json::{json, Value};

use crate::cache::LayerRef;

/// Why a layer or image could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Writing the layer tar failed.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// The store refused a blob or record.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Unpacking a layer into a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A temporary file could not be used.
    #[error("layer temp file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Writes `upper` as a layer into the store (through a temp file in `tmp_dir`) and
/// returns it.
pub fn commit_layer(
    store: &Store,
    upper: &Path,
    tmp_dir: &Path,
    compression: Compression,
    mtime: Option<u64>,
) -> Result<LayerRef, CommitError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CommitError::Io { path, source }
    };
    fs::create_dir_all(tmp_dir).map_err(io_err(tmp_dir))?;
    let tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
    let info = write_layer(upper, io::BufWriter::new(tmp.as_file()), compression, mtime)?;
    let file = fs::File::open(tmp.path()).map_err(io_err(tmp.path()))?;
    store.write_blob(file, Some(&info.digest))?;
    Ok(LayerRef {
        digest: info.digest,
        diff_id: info.diff_id,
        size: info.size,
        media_type: info.media_type.to_string(),
    })
}

/// Makes sure every layer of `layers` is unpacked as a snapshot and returns the chain
/// id of the top one (`None` for no layers).
pub fn ensure_snapshots(
    store: &Store,
    snapshots: &Snapshots,
    layers: &[LayerRef],
) -> Result<Option<Digest>, CommitError> {
    let mut parent: Option<Digest> = None;
    for layer in layers {
        let chain = chain_id(parent.as_ref(), &layer.diff_id);
        if !snapshots.exists(&chain) {
            let blob = store.open_blob(&layer.digest)?;
            snapshots.unpack(parent.as_ref(), &layer.diff_id, &layer.media_type, blob)?;
        }
        parent = Some(chain);
    }
    Ok(parent)
}

/// The image that was written.
#[derive(Debug, Clone)]
pub struct WrittenImage {
    /// The config digest (image id).
    pub id: Digest,
    /// The manifest descriptor records point at.
    pub manifest: Descriptor,
    /// One record per tag (or one unnamed record).
    pub records: Vec<ImageRecord>,
}

/// Writes `config` (with `rootfs.diff_ids` set from `layers`) and an OCI manifest to the
/// store, and points each of `tags` at it (an unnamed record when there are none).
pub fn write_image(
    store: &Store,
    mut config: Value,
    layers: &[LayerRef],
    tags: &[Reference],
) -> Result<WrittenImage, CommitError> {
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
    });
    let listed: Vec<(&str, &Digest, u64)> = layers
        .iter()
        .map(|l| (l.media_type.as_str(), &l.digest, l.size))
        .collect();
    let (config_digest, target) = store.write_oci_image(&config, &listed)?;
    let mut records = Vec::new();
    if tags.is_empty() {
        records.push(store.put_image(None, &target)?);
    }
    for tag in tags {
        records.push(store.put_image(Some(tag), &target)?);
    }
    Ok(WrittenImage {
        id: config_digest,
        manifest: target,
        records,
    })
}
