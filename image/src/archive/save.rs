//! Saving images as an archive: blobs streamed from the store into a tar and
//! verified as they go, as an OCI layout (`oci-layout`, `index.json`, `blobs/`) or
//! a docker-archive (`manifest.json`, `repositories`, uncompressed `<diff id>/layer.tar`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};

use super::{blob_entry, ArchiveError, ArchiveFormat, SaveItem};
use crate::digest::{Algorithm, Digest, DigestError, HashingReader, HashingWriter};
use crate::manifest::{self, descriptor_digest, media_type_str};
use crate::store::{Store, StoreError};

/// Writes `items` to `out` as an archive of `format`. `archive` names the
/// output in errors. Blobs are streamed from the store and verified as they go.
pub fn save(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    out: impl Write,
    archive: &str,
) -> Result<(), ArchiveError> {
    let mut w = TarOut {
        tar: tar::Builder::new(io::BufWriter::with_capacity(1 << 20, out)),
        archive,
    };
    match format {
        ArchiveFormat::OciArchive => save_oci(store, items, &mut w)?,
        ArchiveFormat::DockerArchive => save_docker(store, items, &mut w)?,
    }
    let inner = w.tar.into_inner().map_err(|source| ArchiveError::Write {
        archive: archive.to_string(),
        what: "tar end".into(),
        source,
    })?;
    inner
        .into_inner()
        .map_err(|e| ArchiveError::Write {
            archive: archive.to_string(),
            what: "flush".into(),
            source: e.into_error(),
        })?
        .flush()
        .map_err(|source| ArchiveError::Write {
            archive: archive.to_string(),
            what: "flush".into(),
            source,
        })
}

struct TarOut<'a, W: Write> {
    tar: tar::Builder<io::BufWriter<W>>,
    archive: &'a str,
}

impl<W: Write> TarOut<'_, W> {
    fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(mode);
        h.set_entry_type(kind);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<(), ArchiveError> {
        let mut h = Self::header(0, 0o755, tar::EntryType::Directory);
        self.tar
            .append_data(&mut h, path, io::empty())
            .map_err(|source| self.write_err(path, source))
    }

    fn bytes(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let mut h = Self::header(data.len() as u64, 0o644, tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(|source| self.write_err(path, source))
    }

    /// Appends a stored blob, checking its digest while it is copied.
    fn blob(&mut self, store: &Store, path: &str, digest: &Digest) -> Result<(), ArchiveError> {
        let size = store.blob_size(digest)?;
        let f = store.open_blob_unverified(digest)?;
        let mut r = HashingReader::new(BufReader::with_capacity(1 << 20, f), digest.algorithm());
        let mut h = Self::header(size, 0o644, tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, path, &mut r)
            .map_err(|source| self.write_err(path, source))?;
        let actual = r.digest();
        if &actual != digest {
            return Err(StoreError::Verify {
                digest: digest.clone(),
                source: DigestError::Mismatch {
                    expected: digest.clone(),
                    actual,
                },
            }
            .into());
        }
        Ok(())
    }

    fn write_err(&self, what: &str, source: io::Error) -> ArchiveError {
        ArchiveError::Write {
            archive: self.archive.to_string(),
            what: what.to_string(),
            source,
        }
    }
}

fn save_oci<W: Write>(
    store: &Store,
    items: &[SaveItem],
    w: &mut TarOut<'_, W>,
) -> Result<(), ArchiveError> {
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    let mut written = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for item in items {
        let img = &item.image;
        for l in &img.layers {
            let d = descriptor_digest(l)?;
            if written.insert(d.clone()) {
                w.blob(store, &blob_entry(&d), &d)?;
            }
        }
        if written.insert(img.config_digest.clone()) {
            w.bytes(&blob_entry(&img.config_digest), &img.config_raw)?;
        }
        if written.insert(img.manifest_digest.clone()) {
            w.bytes(&blob_entry(&img.manifest_digest), &img.manifest_raw)?;
        }
        let base = json!({
            "mediaType": img.manifest_media_type,
            "digest": img.manifest_digest.to_string(),
            "size": img.manifest_raw.len(),
        });
        if item.names.is_empty() {
            entries.push(base.clone());
        }
        for n in &item.names {
            let mut e = base.clone();
            let mut ann = serde_json::Map::new();
            ann.insert(
                manifest::ANNOTATION_IMAGE_NAME.into(),
                Value::String(n.to_string()),
            );
            ann.insert(
                manifest::ANNOTATION_REF_NAME.into(),
                Value::String(n.tag().unwrap_or("latest").to_string()),
            );
            e["annotations"] = Value::Object(ann);
            entries.push(e);
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": entries,
    });
    let bytes =
        serde_json::to_vec(&index).map_err(|e| w.write_err("index.json", io::Error::other(e)))?;
    w.bytes("index.json", &bytes)
}

fn save_docker<W: Write>(
    store: &Store,
    items: &[SaveItem],
    w: &mut TarOut<'_, W>,
) -> Result<(), ArchiveError> {
    let mut written = std::collections::HashSet::new();
    let mut manifest_items = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for item in items {
        let img = &item.image;
        let diff_ids = img.diff_ids()?;
        if diff_ids.len() != img.layers.len() {
            return Err(ArchiveError::Malformed {
                archive: w.archive.to_string(),
                problem: format!(
                    "image {}: config lists {} diff ids for {} layers",
                    img.config_digest,
                    diff_ids.len(),
                    img.layers.len()
                ),
            });
        }
        let mut layer_paths = Vec::new();
        for (l, diff_id) in img.layers.iter().zip(&diff_ids) {
            let path = format!("{}/layer.tar", diff_id.hex());
            if written.insert(diff_id.clone()) {
                w.dir(&format!("{}/", diff_id.hex()))?;
                w.bytes(&format!("{}/VERSION", diff_id.hex()), b"1.0")?;
                write_uncompressed_layer(store, w, l, diff_id, &path)?;
            }
            layer_paths.push(path);
        }
        let config_path = format!("{}.json", img.config_digest.hex());
        if written.insert(img.config_digest.clone()) {
            w.bytes(&config_path, &img.config_raw)?;
        }
        let tags: Vec<String> = item.names.iter().map(|n| n.familiar()).collect();
        for n in &item.names {
            if let (Some(tag), Some(last)) = (n.tag(), diff_ids.last()) {
                repositories
                    .entry(n.familiar_name())
                    .or_default()
                    .insert(tag.to_string(), last.hex().to_string());
            }
        }
        manifest_items.push(json!({
            "Config": config_path,
            "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "Layers": layer_paths,
        }));
    }
    let bytes = serde_json::to_vec(&manifest_items)
        .map_err(|e| w.write_err("manifest.json", io::Error::other(e)))?;
    w.bytes("manifest.json", &bytes)?;
    if !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories)
            .map_err(|e| w.write_err("repositories", io::Error::other(e)))?;
        w.bytes("repositories", &repos)?;
    }
    Ok(())
}

/// docker-archive layers are uncompressed tars named by diff id. An
/// uncompressed stored layer is copied as is; a compressed one is decompressed
/// into a temporary file (its size must be known for the tar header) and
/// checked against the diff id.
fn write_uncompressed_layer<W: Write>(
    store: &Store,
    w: &mut TarOut<'_, W>,
    layer: &Descriptor,
    diff_id: &Digest,
    path: &str,
) -> Result<(), ArchiveError> {
    let digest = descriptor_digest(layer)?;
    let mt = media_type_str(layer);
    let compressed = mt.ends_with("gzip") || mt.ends_with("+zstd") || mt.ends_with(".zstd");
    if !compressed && &digest == diff_id {
        return w.blob(store, path, &digest);
    }
    let tmp_dir = store.root().join("ingest");
    let mut tmp = tempfile_in(&tmp_dir).map_err(|source| w.write_err(path, source))?;
    let src = BufReader::with_capacity(1 << 20, store.open_blob(&digest)?);
    let mut dec: Box<dyn Read> = if mt.ends_with("zstd") {
        Box::new(zstd::stream::read::Decoder::new(src).map_err(|source| w.write_err(path, source))?)
    } else if compressed {
        Box::new(GzDecoder::new(src))
    } else {
        Box::new(src)
    };
    let mut hw = HashingWriter::new(
        io::BufWriter::with_capacity(1 << 20, &mut tmp.file),
        Algorithm::Sha256,
    );
    io::copy(&mut dec, &mut hw).map_err(|source| ArchiveError::Read {
        archive: store.blob_path(&digest).display().to_string(),
        what: format!("decompress layer {digest}"),
        source,
    })?;
    let (bw, actual, size) = hw.finish();
    bw.into_inner()
        .map_err(|e| w.write_err(path, e.into_error()))?;
    if &actual != diff_id {
        return Err(StoreError::Verify {
            digest: digest.clone(),
            source: DigestError::Mismatch {
                expected: diff_id.clone(),
                actual,
            },
        }
        .into());
    }
    use std::io::Seek;
    tmp.file
        .seek(io::SeekFrom::Start(0))
        .map_err(|source| w.write_err(path, source))?;
    let mut h = TarOut::<W>::header(size, 0o644, tar::EntryType::Regular);
    let reader = BufReader::with_capacity(1 << 20, &mut tmp.file);
    w.tar
        .append_data(&mut h, path, reader)
        .map_err(|source| ArchiveError::Write {
            archive: w.archive.to_string(),
            what: path.to_string(),
            source,
        })
}

/// A scratch file removed on drop.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn tempfile_in(dir: &Path) -> io::Result<TempFile> {
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!("save-{}-{nanos}.tmp", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)?;
    Ok(TempFile { path, file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::load;
    use crate::archive::tests::store_with_image;
    use crate::manifest::PlatformSpec;

    fn saved(format: ArchiveFormat) -> (tempfile::TempDir, Store, SaveItem, Vec<u8>) {
        let (dir, store) = store_with_image();
        let img = store.resolve("test/app:1", &PlatformSpec::host()).unwrap();
        let item = SaveItem {
            names: vec![img.name.clone().unwrap()],
            image: img,
        };
        let mut out = Vec::new();
        save(
            &store,
            std::slice::from_ref(&item),
            format,
            &mut out,
            "out.tar",
        )
        .unwrap();
        (dir, store, item, out)
    }

    fn entry_names(tar_bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    fn round_trip(format: ArchiveFormat) {
        let (dir, _store, item, out) = saved(format);
        let img = &item.image;
        let other = Store::open(dir.path().join("b")).unwrap();
        let loaded = load(&other, &out[..], "out.tar").unwrap();
        assert_eq!(loaded.format, format);
        assert_eq!(loaded.images.len(), 1);
        assert_eq!(&loaded.images[0].1, img.id(), "image id survives the trip");
        let back = other.resolve("test/app:1", &PlatformSpec::host()).unwrap();
        assert_eq!(back.id(), img.id());
        assert_eq!(back.diff_ids().unwrap(), img.diff_ids().unwrap());
        if format == ArchiveFormat::OciArchive {
            assert_eq!(
                back.manifest_raw, img.manifest_raw,
                "manifest bytes unchanged"
            );
        }
    }

    #[test]
    fn oci_archive_round_trip() {
        round_trip(ArchiveFormat::OciArchive);
    }

    #[test]
    fn docker_archive_round_trip() {
        round_trip(ArchiveFormat::DockerArchive);
    }

    #[test]
    fn an_oci_archive_is_an_image_layout() {
        let (_dir, _store, item, out) = saved(ArchiveFormat::OciArchive);
        let names = entry_names(&out);
        assert_eq!(names[..3], ["oci-layout", "blobs/", "blobs/sha256/"]);
        assert!(names.contains(&blob_entry(&item.image.manifest_digest)));
        assert!(names.contains(&blob_entry(&item.image.config_digest)));
        assert_eq!(names.last().map(String::as_str), Some("index.json"));
    }

    #[test]
    fn a_docker_archive_has_uncompressed_layers_by_diff_id() {
        let (_dir, _store, item, out) = saved(ArchiveFormat::DockerArchive);
        let names = entry_names(&out);
        let diff_id = item.image.diff_ids().unwrap().remove(0);
        assert!(names.contains(&format!("{}/layer.tar", diff_id.hex())));
        assert!(names.contains(&format!("{}.json", item.image.config_digest.hex())));
        assert!(names.contains(&"manifest.json".to_string()));
        assert!(names.contains(&"repositories".to_string()));
    }
}
