//! `berth save` and `berth load`: images as docker-archive or OCI archive tarballs.
//!
//! Loading streams the archive once: every blob-sized entry goes straight
//! into the store's ingest (verified against its digest when the path names
//! one), small JSON files are kept in memory, and image records are written
//! only after every referenced blob is in place. An interrupted or failed load
//! therefore leaves at most ingest files and unreferenced blobs, never a
//! half-visible image. Layers from a docker-archive are stored as they come
//! (uncompressed tars) instead of being recompressed.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::digest::{Digest, DigestError};
use crate::manifest::ManifestError;
use crate::reference::Reference;
use crate::store::{ResolvedImage, StoreError};

mod load;
mod save;

pub use load::load;
pub use save::save;

/// Errors from saving or loading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the archive failed (truncated, not a tar, I/O error).
    #[error("{archive}: {what}")]
    Read {
        /// The archive being read.
        archive: String,
        /// What was being read.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// Writing the archive failed.
    #[error("{archive}: write {what}")]
    Write {
        /// The archive being written.
        archive: String,
        /// What was being written.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The archive's structure is wrong.
    #[error("{archive}: {problem}")]
    Malformed {
        /// The archive.
        archive: String,
        /// What is wrong, naming the entry.
        problem: String,
    },
    /// A blob in the archive does not match the digest its path or manifest names.
    #[error("{archive}: entry {entry}")]
    Verify {
        /// The archive.
        archive: String,
        /// The entry path.
        entry: String,
        /// The mismatch.
        source: DigestError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store or manifest error while loading an archive, naming the archive.
    #[error("{archive}")]
    Loading {
        /// The archive being loaded.
        archive: String,
        /// What failed.
        source: Box<ArchiveError>,
    },
    /// A manifest in the archive is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// The two archive layouts berth reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save` layout: `manifest.json`, `<config>.json`, `<id>/layer.tar`.
    DockerArchive,
    /// OCI image layout in a tar: `oci-layout`, `index.json`, `blobs/sha256/...`.
    OciArchive,
}

/// An image to save: the resolved image and the names to record for it.
pub struct SaveItem {
    /// The image.
    pub image: ResolvedImage,
    /// Names it goes by in the archive (may be empty).
    pub names: Vec<Reference>,
}

/// What a load put in the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The archive's layout.
    pub format: ArchiveFormat,
    /// `(name, image id)` of every image loaded; the name is `None` for untagged ones.
    pub images: Vec<(Option<Reference>, Digest)>,
}

/// The path of a blob in an OCI layout: `blobs/<alg>/<hex>`.
fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// `blobs/<alg>/<hex>` -> the digest it names.
fn blob_path_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// Opens a file for `load`, naming it in the error.
pub fn open_input(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|source| ArchiveError::Read {
        archive: path.display().to_string(),
        what: "open".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::import_rootfs;
    use crate::store::Store;

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("bin/sh", &b"#!fake"[..]),
            ("etc/passwd", &b"root:x:0:0::/root:/bin/sh\n"[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A store holding one imported image named `test/app:1`.
    pub(super) fn store_with_image() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("a")).unwrap();
        let name = Reference::parse("test/app:1").unwrap();
        import_rootfs(&store, &rootfs_tar()[..], "rootfs.tar", Some(&name)).unwrap();
        (dir, store)
    }

    #[test]
    fn blob_paths_name_their_digest() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(blob_entry(&d), format!("blobs/sha256/{}", d.hex()));
        assert_eq!(blob_path_digest(&blob_entry(&d)), Some(d));
        assert_eq!(blob_path_digest("blobs/sha256"), None);
        assert_eq!(blob_path_digest("blobs/sha256/nothex"), None);
        assert_eq!(blob_path_digest("index.json"), None);
    }

    #[test]
    fn a_missing_input_is_named() {
        let err = open_input(Path::new("/nonexistent/in.tar")).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/in.tar: open");
    }
}
