//! `berth save` and `berth load`: images as docker-archive or OCI archive tarballs.
//!
//! Loading streams the archive once: every blob-sized entry goes straight
//! into the store's ingest (verified against its digest when the path names
//! one), small JSON files are kept in memory, and image records are written
//! only after every referenced blob is in place. An interrupted or failed load
//! therefore leaves at most ingest files and unreferenced blobs, never a
//! half-visible image. Layers from a docker-archive are stored as they come
//! (uncompressed tars) instead of being recompressed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};
use tracing::{debug, info_span};

use crate::digest::{Algorithm, Digest, DigestError, HashingReader, HashingWriter};
use crate::manifest::{
    self, annotations, descriptor_digest, media_type_str, Manifest, ManifestError, ManifestKind,
    PlatformSpec,
};
use crate::reference::Reference;
use crate::store::{ResolvedImage, Store, StoreError};

/// Largest non-blob file kept in memory while loading (manifests, configs, index).
const SMALL_FILE_MAX: u64 = 16 << 20;

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

struct EntryInfo {
    digest: Digest,
    size: u64,
}

/// Loads every image in an archive into the store. `archive` names the input
/// in errors. The caller holds a lease on the store ([`Store::lease`]).
pub fn load(store: &Store, input: impl Read, archive: &str) -> Result<Loaded, ArchiveError> {
    load_inner(store, input, archive).map_err(|e| match e {
        ArchiveError::Store(_) | ArchiveError::Manifest(_) => ArchiveError::Loading {
            archive: archive.to_string(),
            source: Box::new(e),
        },
        other => other,
    })
}

fn load_inner(store: &Store, input: impl Read, archive: &str) -> Result<Loaded, ArchiveError> {
    let span = info_span!("load", archive);
    let _g = span.enter();
    let read_err = |what: &str| {
        let what = what.to_string();
        move |source| ArchiveError::Read {
            archive: archive.to_string(),
            what,
            source,
        }
    };
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered.fill_buf().map_err(read_err("read header"))?;
    if head.is_empty() {
        return Err(ArchiveError::Malformed {
            archive: archive.to_string(),
            problem: "empty input: not a docker-archive or OCI archive".into(),
        });
    }
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(BufReader::with_capacity(1 << 20, GzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut tar = tar::Archive::new(reader);
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut blobs: HashMap<String, EntryInfo> = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let entries = tar.entries().map_err(read_err("read tar"))?;
    let mut saw_entry = false;
    for entry in entries {
        let mut entry = entry.map_err(read_err("read tar entry"))?;
        saw_entry = true;
        let raw_path = entry
            .path()
            .map_err(read_err("read entry path"))?
            .into_owned();
        let path = clean_path(&raw_path).ok_or_else(|| ArchiveError::Malformed {
            archive: archive.to_string(),
            problem: format!("entry {}: path escapes the archive", raw_path.display()),
        })?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(read_err("read link"))? {
                let base = if kind.is_symlink() {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target.into_owned()
                };
                if let Some(t) = clean_path(&base) {
                    links.push((path, t));
                }
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if let Some(digest) = blob_path_digest(&path) {
            // None: stored already (perhaps by another writer while this one waited).
            let ingest = if store.has_blob(&digest) {
                None
            } else {
                store.ingest(&digest, Some(size))?
            };
            if let Some(mut ing) = ingest {
                // The archive streams from byte 0: an earlier partial ingest is restarted.
                if ing.offset() > 0 {
                    ing = ing.restart()?;
                }
                io::copy(&mut entry, &mut ing).map_err(|e| ArchiveError::Read {
                    archive: archive.to_string(),
                    what: format!("entry {path}"),
                    source: e,
                })?;
                ing.commit().map_err(|e| match e {
                    StoreError::Verify { source, .. } => ArchiveError::Verify {
                        archive: archive.to_string(),
                        entry: path.clone(),
                        source,
                    },
                    other => ArchiveError::Store(other),
                })?;
            } else {
                io::copy(&mut entry, &mut io::sink()).map_err(read_err(&path))?;
            }
            debug!(entry = %path, %digest, "blob loaded");
            blobs.insert(path, EntryInfo { digest, size });
        } else if size <= SMALL_FILE_MAX && is_metadata_name(&path) {
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(read_err(&format!("entry {path}")))?;
            small.insert(path, buf);
        } else {
            let (digest, size) = store.write_blob(&mut entry, None)?;
            blobs.insert(path, EntryInfo { digest, size });
        }
    }
    if !saw_entry {
        return Err(ArchiveError::Malformed {
            archive: archive.to_string(),
            problem: "no entries: not a docker-archive or OCI archive".into(),
        });
    }
    for (link, target) in links {
        if let Some(info) = blobs.get(&target) {
            let copy = EntryInfo {
                digest: info.digest.clone(),
                size: info.size,
            };
            blobs.insert(link, copy);
        } else if let Some(bytes) = small.get(&target).cloned() {
            small.insert(link, bytes);
        }
    }
    let ctx = LoadCtx {
        store,
        archive,
        small,
        blobs,
    };
    if ctx.small.contains_key("manifest.json") {
        ctx.load_docker()
    } else if ctx.small.contains_key("index.json") {
        ctx.load_oci()
    } else {
        Err(ArchiveError::Malformed {
            archive: archive.to_string(),
            problem:
                "neither manifest.json nor index.json found: not a docker-archive or OCI archive"
                    .into(),
        })
    }
}

/// Names kept in memory rather than streamed into the store.
fn is_metadata_name(path: &str) -> bool {
    path.ends_with(".json")
        || path == "oci-layout"
        || path == "repositories"
        || path.ends_with("/json")
        || path.ends_with("VERSION")
}

/// Normalizes an archive path (`./a/b` -> `a/b`); `None` if it climbs out.
fn clean_path(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// `blobs/<alg>/<hex>` -> the digest it names.
fn blob_path_digest(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

struct LoadCtx<'a> {
    store: &'a Store,
    archive: &'a str,
    small: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, EntryInfo>,
}

impl LoadCtx<'_> {
    fn malformed(&self, problem: String) -> ArchiveError {
        ArchiveError::Malformed {
            archive: self.archive.to_string(),
            problem,
        }
    }

    /// Stores a small file held in memory and returns its digest and size.
    fn store_small(&self, path: &str) -> Result<(Digest, u64, &[u8]), ArchiveError> {
        if let Some(bytes) = self.small.get(path) {
            let (d, s) = self.store.write_blob_bytes(bytes)?;
            return Ok((d, s, bytes));
        }
        Err(self.malformed(format!("entry {path} is missing")))
    }

    fn load_docker(&self) -> Result<Loaded, ArchiveError> {
        #[derive(serde::Deserialize)]
        struct Item {
            #[serde(rename = "Config")]
            config: String,
            #[serde(rename = "RepoTags", default)]
            repo_tags: Option<Vec<String>>,
            #[serde(rename = "Layers")]
            layers: Vec<String>,
        }
        let bytes = &self.small["manifest.json"];
        let items: Vec<Item> = serde_json::from_slice(bytes)
            .map_err(|e| self.malformed(format!("entry manifest.json: {e}")))?;
        if items.is_empty() {
            return Err(self.malformed("entry manifest.json lists no images".into()));
        }
        // Check everything before writing any record.
        let mut plans = Vec::new();
        for item in &items {
            let config_path = clean_path(Path::new(&item.config))
                .ok_or_else(|| self.malformed(format!("config path {:?} escapes", item.config)))?;
            let (config_digest, config_size, config_bytes) =
                if let Some(info) = self.blobs.get(&config_path) {
                    let bytes = self.store.read_blob(&info.digest)?;
                    (info.digest.clone(), info.size, bytes)
                } else {
                    let (d, s, b) = self.store_small(&config_path)?;
                    (d, s, b.to_vec())
                };
            let config = manifest::parse_config(&config_digest, &config_bytes)?;
            let diff_ids = config.rootfs().diff_ids();
            if diff_ids.len() != item.layers.len() {
                return Err(self.malformed(format!(
                    "config {config_path}: {} diff ids but manifest.json lists {} layers",
                    diff_ids.len(),
                    item.layers.len()
                )));
            }
            let mut layers = Vec::new();
            for (layer, diff_id) in item.layers.iter().zip(diff_ids) {
                let lp = clean_path(Path::new(layer))
                    .ok_or_else(|| self.malformed(format!("layer path {layer:?} escapes")))?;
                let info = self.blobs.get(&lp).ok_or_else(|| {
                    self.malformed(format!("layer {lp} is missing from the archive"))
                })?;
                let media_type = self.sniff_layer(&info.digest)?;
                if media_type == manifest::DOCKER_LAYER_TAR && info.digest.to_string() != *diff_id {
                    return Err(ArchiveError::Verify {
                        archive: self.archive.to_string(),
                        entry: lp,
                        source: DigestError::Mismatch {
                            expected: diff_id.parse().map_err(|source| ArchiveError::Verify {
                                archive: self.archive.to_string(),
                                entry: config_path.clone(),
                                source,
                            })?,
                            actual: info.digest.clone(),
                        },
                    });
                }
                layers.push(json!({
                    "mediaType": media_type,
                    "size": info.size,
                    "digest": info.digest.to_string(),
                }));
            }
            let mut names = Vec::new();
            for tag in item.repo_tags.iter().flatten() {
                let r = Reference::parse(tag).map_err(|e| {
                    self.malformed(format!("entry manifest.json: RepoTags {tag:?}: {e}"))
                })?;
                names.push(r);
            }
            plans.push((config_digest, config_size, layers, names));
        }
        let mut images = Vec::new();
        for (config_digest, config_size, layers, names) in plans {
            let m = json!({
                "schemaVersion": 2,
                "mediaType": manifest::DOCKER_MANIFEST,
                "config": {
                    "mediaType": manifest::DOCKER_CONFIG,
                    "size": config_size,
                    "digest": config_digest.to_string(),
                },
                "layers": layers,
            });
            let mbytes = serde_json::to_vec_pretty(&m)
                .map_err(|e| self.malformed(format!("cannot encode manifest: {e}")))?;
            let (md, ms) = self.store.write_blob_bytes(&mbytes)?;
            let target = manifest::descriptor(manifest::DOCKER_MANIFEST, &md, ms);
            if names.is_empty() {
                self.store.put_image(None, &target)?;
                images.push((None, config_digest.clone()));
            }
            for n in names {
                self.store.put_image(Some(&n), &target)?;
                images.push((Some(n), config_digest.clone()));
            }
        }
        Ok(Loaded {
            format: ArchiveFormat::DockerArchive,
            images,
        })
    }

    /// Media type of a layer blob from its first bytes.
    fn sniff_layer(&self, digest: &Digest) -> Result<&'static str, ArchiveError> {
        let mut f = self.store.open_blob_unverified(digest)?;
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = f
                .read(&mut magic[got..])
                .map_err(|source| ArchiveError::Read {
                    archive: self.archive.to_string(),
                    what: format!("layer {digest}"),
                    source,
                })?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(if magic[..got].starts_with(&[0x1f, 0x8b]) {
            manifest::DOCKER_LAYER_GZIP
        } else if magic[..got] == [0x28, 0xb5, 0x2f, 0xfd] {
            manifest::OCI_LAYER_ZSTD
        } else {
            manifest::DOCKER_LAYER_TAR
        })
    }

    fn load_oci(&self) -> Result<Loaded, ArchiveError> {
        let index_bytes = &self.small["index.json"];
        let index_digest = Digest::sha256_of(index_bytes);
        let Manifest::Index(index) =
            Manifest::parse(&index_digest, Some(manifest::OCI_INDEX), index_bytes)
                .map_err(|e| self.malformed(format!("entry index.json: {e}")))?
        else {
            return Err(self.malformed("entry index.json is not an image index".into()));
        };
        // Every blob reachable from the index must be present and intact.
        let mut plans = Vec::new();
        for desc in index.manifests() {
            let digest = descriptor_digest(desc)?;
            self.check_tree(desc, 0)?;
            let ann = annotations(desc);
            let name = oci_name(&ann);
            let image_id = self.image_id(desc)?;
            plans.push((desc.clone(), name, digest, image_id));
        }
        let mut images = Vec::new();
        for (desc, name, _digest, image_id) in plans {
            let target = manifest::descriptor(
                &media_type_str(&desc),
                &descriptor_digest(&desc)?,
                desc.size(),
            );
            self.store.put_image(name.as_ref(), &target)?;
            images.push((name, image_id));
        }
        Ok(Loaded {
            format: ArchiveFormat::OciArchive,
            images,
        })
    }

    /// Checks that a descriptor's blob and, for manifests, its children are stored.
    fn check_tree(&self, desc: &Descriptor, depth: usize) -> Result<(), ArchiveError> {
        let digest = descriptor_digest(desc)?;
        if !self.store.has_blob(&digest) {
            return Err(self.malformed(format!(
                "blob {digest} is referenced but missing from the archive"
            )));
        }
        let mt = media_type_str(desc);
        if depth > 4 || ManifestKind::of(&mt).is_none() {
            return Ok(());
        }
        let (_, parsed) = self.store.read_manifest(&digest, Some(&mt))?;
        match parsed {
            Manifest::Index(idx) => {
                // An archive may carry only some of an index's platforms (and
                // leave out attestations); at least one must be there.
                let mut present = 0;
                for d in idx.manifests() {
                    if self.store.has_blob(&descriptor_digest(d)?) {
                        self.check_tree(d, depth + 1)?;
                        present += 1;
                    }
                }
                if present == 0 {
                    return Err(self.malformed(format!(
                        "index {digest}: none of its manifests is in the archive"
                    )));
                }
            }
            Manifest::Image(m) => {
                self.check_tree(m.config(), depth + 1)?;
                for l in m.layers() {
                    self.check_tree(l, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn image_id(&self, desc: &Descriptor) -> Result<Digest, ArchiveError> {
        let rec = crate::store::ImageRecord {
            name: None,
            target: desc.clone(),
            created: String::new(),
        };
        match self.store.resolve_record(&rec, &PlatformSpec::host()) {
            Ok(img) => Ok(img.config_digest),
            // An image for another platform loads fine; it has no id on this host.
            Err(StoreError::Manifest(ManifestError::NoPlatform { .. })) => {
                Ok(descriptor_digest(desc)?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The image name an OCI index entry carries: containerd's full-name
/// annotation, else `ref.name` when it is a whole reference rather than a bare tag.
fn oci_name(ann: &BTreeMap<String, String>) -> Option<Reference> {
    if let Some(n) = ann.get(manifest::ANNOTATION_IMAGE_NAME) {
        if let Ok(r) = Reference::parse(n) {
            return Some(r);
        }
    }
    let refname = ann.get(manifest::ANNOTATION_REF_NAME)?;
    if refname.contains('/') || refname.contains(':') {
        Reference::parse(refname).ok()
    } else {
        None
    }
}

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

fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
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

    fn store_with_image() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("a")).unwrap();
        let name = Reference::parse("test/app:1").unwrap();
        import_rootfs(&store, &rootfs_tar()[..], "rootfs.tar", Some(&name)).unwrap();
        (dir, store)
    }

    fn round_trip(format: ArchiveFormat) {
        let (dir, store) = store_with_image();
        let img = store.resolve("test/app:1", &PlatformSpec::host()).unwrap();
        let items = vec![SaveItem {
            names: vec![img.name.clone().unwrap()],
            image: img.clone(),
        }];
        let mut out = Vec::new();
        save(&store, &items, format, &mut out, "out.tar").unwrap();
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
    fn malformed_archive_is_named_and_store_untouched() {
        let (_dir, store) = store_with_image();
        let before = store.list_blobs().unwrap();
        let err = load(&store, &b"this is not a tar archive at all"[..], "bad.tar").unwrap_err();
        assert!(err.to_string().contains("bad.tar"), "{err}");
        assert_eq!(store.list_blobs().unwrap(), before);
        assert_eq!(store.list_images().unwrap().len(), 1);
    }

    #[test]
    fn blob_with_wrong_digest_is_rejected() {
        let (_dir, store) = store_with_image();
        let mut b = tar::Builder::new(Vec::new());
        let fake = format!("blobs/sha256/{}", Digest::sha256_of(b"real").hex());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_cksum();
        b.append_data(&mut h, &fake, &b"fake"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let err = load(&store, &bytes[..], "evil.tar").unwrap_err();
        assert!(err.to_string().contains("evil.tar"), "{err}");
        assert!(
            matches!(
                err,
                ArchiveError::Verify {
                    source: DigestError::Mismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn oci_index_with_missing_platforms_loads() {
        let (dir, store) = store_with_image();
        let img = store.resolve("test/app:1", &PlatformSpec::host()).unwrap();
        let host = PlatformSpec::host();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_INDEX,
            "manifests": [
                {"mediaType": manifest::OCI_MANIFEST, "digest": img.manifest_digest.to_string(),
                 "size": img.manifest_raw.len(),
                 "platform": {"os": host.os, "architecture": host.architecture}},
                {"mediaType": manifest::OCI_MANIFEST,
                 "digest": Digest::sha256_of(b"elsewhere").to_string(), "size": 9,
                 "platform": {"os": "linux", "architecture": "s390x"}},
            ],
        });
        let index_bytes = serde_json::to_vec(&index).unwrap();
        let index_digest = Digest::sha256_of(&index_bytes);
        let top = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": manifest::OCI_INDEX,
                "digest": index_digest.to_string(),
                "size": index_bytes.len(),
                "annotations": {manifest::ANNOTATION_REF_NAME: "multi.example/app:2"},
            }],
        });
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: String, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, data).unwrap();
        };
        let layer = descriptor_digest(&img.layers[0]).unwrap();
        add(blob_entry(&layer), &store.read_blob(&layer).unwrap());
        add(blob_entry(&img.config_digest), &img.config_raw);
        add(blob_entry(&img.manifest_digest), &img.manifest_raw);
        add(blob_entry(&index_digest), &index_bytes);
        add("index.json".into(), &serde_json::to_vec(&top).unwrap());
        let bytes = b.into_inner().unwrap();
        let other = Store::open(dir.path().join("multi")).unwrap();
        let loaded = load(&other, &bytes[..], "multi.tar").unwrap();
        assert_eq!(loaded.images.len(), 1);
        assert_eq!(&loaded.images[0].1, img.id());
        let back = other.resolve("multi.example/app:2", &host).unwrap();
        assert_eq!(back.id(), img.id());
        assert!(crate::gc::check(&other).unwrap().problems.is_empty());
    }
}
