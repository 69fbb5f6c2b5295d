//! Loading an archive: its entries streamed once into the store (blobs verified
//! against the digest their path names), small JSON files kept in memory, then the
//! docker-archive or OCI layout read from them and image records written last.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use oci_spec::image::Descriptor;
use serde_json::json;
use tracing::{debug, info_span};

use super::{blob_path_digest, ArchiveError, ArchiveFormat, Loaded};
use crate::digest::{Digest, DigestError};
use crate::manifest::{
    self, annotations, descriptor_digest, media_type_str, Manifest, ManifestError, ManifestKind,
    PlatformSpec,
};
use crate::reference::Reference;
use crate::store::{Store, StoreError};

/// Largest non-blob file kept in memory while loading (manifests, configs, index).
const SMALL_FILE_MAX: u64 = 16 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::blob_entry;
    use crate::archive::tests::store_with_image;

    #[test]
    fn archive_paths_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_path(Path::new("./a/b")).as_deref(), Some("a/b"));
        assert_eq!(clean_path(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(clean_path(Path::new("../b")), None);
        assert_eq!(clean_path(Path::new("/etc/passwd")), None);
        assert!(is_metadata_name("manifest.json") && is_metadata_name("oci-layout"));
        assert!(!is_metadata_name("abc/layer.tar"));
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
