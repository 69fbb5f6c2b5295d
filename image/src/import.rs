//! `berth import`: a root filesystem tarball becomes a one-layer image, as
//! `docker import` makes it.
//!
//! The tar is streamed once: hashed as it is read (its digest is the layer's
//! diff id), gzip-compressed, and hashed again on the way into the store (the
//! layer blob's digest). A gzip-compressed input is decompressed first.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::{GzDecoder, GzEncoder};
use flate2::Compression;
use serde_json::json;

use crate::digest::{Algorithm, HashingReader};
use crate::manifest::{self, PlatformSpec};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store, StoreError};

/// Errors from importing a rootfs tarball.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading the input failed.
    #[error("import {source_name}")]
    Read {
        /// The input file name (or `-`).
        source_name: String,
        /// The read error.
        source: io::Error,
    },
    /// The input is not a tar archive.
    #[error("import {0}: not a tar archive (no valid tar header at the start)")]
    NotTar(String),
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The image record written.
    pub record: ImageRecord,
    /// The image id (config digest).
    pub id: crate::digest::Digest,
}

/// Imports the rootfs tar read from `input` (named `source_name` in errors and
/// history) as image `name`. The caller holds a lease on the store ([`Store::lease`]).
pub fn import_rootfs(
    store: &Store,
    input: impl Read,
    source_name: &str,
    name: Option<&Reference>,
) -> Result<Imported, ImportError> {
    let read_err = |source| ImportError::Read {
        source_name: source_name.to_string(),
        source,
    };
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered.fill_buf().map_err(read_err)?;
    let gzipped = head.starts_with(&[0x1f, 0x8b]);
    let plain: Box<dyn Read> = if gzipped {
        Box::new(BufReader::with_capacity(1 << 20, GzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut checked = TarCheck::new(plain);
    let tar_hash = HashingReader::new(&mut checked, Algorithm::Sha256);
    let mut gz = GzEncoder::new(tar_hash, Compression::new(6));
    let (layer_digest, layer_size) = store.write_blob(&mut gz, None)?;
    let tar_hash = gz.into_inner();
    let diff_id = tar_hash.digest();
    let tar_len = tar_hash.count();
    if tar_len < 512 || !checked.header_ok {
        store.remove_blob(&layer_digest).ok();
        return Err(ImportError::NotTar(source_name.to_string()));
    }

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let host = PlatformSpec::host();
    let config = json!({
        "architecture": host.architecture,
        "os": host.os,
        "config": {},
        "created": now,
        "history": [{
            "created": now,
            "created_by": format!("berth import {source_name}"),
            "comment": format!("Imported from {source_name}"),
        }],
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    });
    let (config_digest, target) = store.write_oci_image(
        &config,
        &[(manifest::OCI_LAYER_GZIP, &layer_digest, layer_size)],
    )?;
    let record = store.put_image(name, &target)?;
    Ok(Imported {
        record,
        id: config_digest,
    })
}

/// Passes bytes through and checks that the first 512-byte block is a tar
/// header with a valid checksum.
struct TarCheck<R> {
    inner: R,
    first: Vec<u8>,
    header_ok: bool,
}

impl<R: Read> TarCheck<R> {
    fn new(inner: R) -> Self {
        TarCheck {
            inner,
            first: Vec::with_capacity(512),
            header_ok: false,
        }
    }
}

impl<R: Read> Read for TarCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.first.len() < 512 {
            let take = (512 - self.first.len()).min(n);
            self.first.extend_from_slice(&buf[..take]);
            if self.first.len() == 512 {
                self.header_ok = tar_header_valid(&self.first);
            }
        }
        Ok(n)
    }
}

/// Whether a 512-byte block is a tar header whose checksum adds up.
pub(crate) fn tar_header_valid(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|b| **b != 0 && **b != b' ')
        .map(|b| *b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == want
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/hostname", &b"hello"[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn imports_a_rootfs_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = rootfs_tar();
        let name = Reference::parse("imported:1").unwrap();
        let out = import_rootfs(&store, &tar[..], "rootfs.tar", Some(&name)).unwrap();
        let img = store.resolve("imported:1", &PlatformSpec::host()).unwrap();
        assert_eq!(img.id(), &out.id);
        assert_eq!(
            img.diff_ids().unwrap(),
            vec![crate::digest::Digest::sha256_of(&tar)]
        );
        assert_eq!(img.layers.len(), 1);
        assert_eq!(
            img.config.architecture().to_string(),
            manifest::host_architecture()
        );
    }

    #[test]
    fn rejects_non_tar_input() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let junk = vec![7u8; 4096];
        let err = import_rootfs(&store, &junk[..], "junk.bin", None).unwrap_err();
        assert!(err.to_string().contains("junk.bin"), "{err}");
        assert!(store.list_images().unwrap().is_empty());
    }

    #[test]
    fn gzipped_rootfs_gives_the_same_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = rootfs_tar();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let name = Reference::parse("gz:1").unwrap();
        import_rootfs(&store, &gz[..], "rootfs.tar.gz", Some(&name)).unwrap();
        let img = store.resolve("gz:1", &PlatformSpec::host()).unwrap();
        assert_eq!(
            img.diff_ids().unwrap(),
            vec![crate::digest::Digest::sha256_of(&tar)]
        );
    }
}
