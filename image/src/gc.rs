//! `berth system gc` and `berth system check`: garbage collection and
//! integrity checks of the content store and snapshots.
//!
//! Liveness is a walk from the image records through indexes and manifests to
//! configs and layers; a snapshot is live when it is the chain id of a layer
//! of a kept image. `gc` runs under the gc lock ([`Store::lock_gc`], taken by
//! the caller), so no lease is held meanwhile: no pull, build, load or
//! container create is half-way, and whatever they wrote is recorded.
//! `check` needs only a lease.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use oci_spec::image::Descriptor;
use tracing::info;

use crate::digest::Digest;
use crate::manifest::{self, descriptor_digest, media_type_str, Manifest, ManifestKind};
use crate::snapshot::{chain_ids, SnapshotError, Snapshots};
use crate::store::{Store, StoreError};

/// Errors that stop a gc or check from running at all.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot store failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// What `gc` removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs deleted because no image references them.
    pub blobs_removed: Vec<Digest>,
    /// Bytes those blobs took.
    pub bytes_freed: u64,
    /// Snapshots deleted because no kept image has them in its chain.
    pub snapshots_removed: Vec<Digest>,
    /// Interrupted ingests discarded.
    pub ingests_removed: usize,
}

/// One thing `check` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob's content no longer matches its digest.
    CorruptBlob {
        /// The blob.
        digest: Digest,
        /// The mismatch.
        detail: String,
    },
    /// An image references a blob that is not in the store.
    MissingBlob {
        /// The image (familiar name or target digest).
        image: String,
        /// The missing blob.
        digest: Digest,
    },
    /// An image's manifest or config cannot be read.
    BadImage {
        /// The image.
        image: String,
        /// Why.
        detail: String,
    },
    /// A snapshot fails verification.
    CorruptSnapshot {
        /// Its chain id.
        chain_id: Digest,
        /// Why.
        detail: String,
    },
    /// A file in `blobs/` that is not named by a digest.
    StrayFile(PathBuf),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::CorruptBlob { digest, detail } => {
                write!(f, "blob {digest}: corrupt: {detail}")
            }
            Problem::MissingBlob { image, digest } => {
                write!(f, "image {image}: blob {digest} is missing")
            }
            Problem::BadImage { image, detail } => write!(f, "image {image}: {detail}"),
            Problem::CorruptSnapshot { chain_id, detail } => {
                write!(f, "snapshot {chain_id}: {detail}")
            }
            Problem::StrayFile(p) => write!(f, "stray file in blob store: {}", p.display()),
        }
    }
}

/// What `check` found.
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    /// Blobs verified.
    pub blobs_checked: usize,
    /// Snapshots verified.
    pub snapshots_checked: usize,
    /// Image records walked.
    pub images_checked: usize,
    /// Interrupted ingests present (harmless; `gc` removes them).
    pub pending_ingests: usize,
    /// Everything wrong, empty when the store is clean.
    pub problems: Vec<Problem>,
}

/// Blobs and chain ids reachable from the image records.
#[derive(Default)]
struct Live {
    blobs: BTreeSet<Digest>,
    chains: BTreeSet<Digest>,
    problems: Vec<Problem>,
}

fn walk(
    store: &Store,
    image: &str,
    desc: &Descriptor,
    depth: usize,
    required: bool,
    live: &mut Live,
) {
    let digest = match descriptor_digest(desc) {
        Ok(d) => d,
        Err(e) => {
            live.problems.push(Problem::BadImage {
                image: image.to_string(),
                detail: e.to_string(),
            });
            return;
        }
    };
    live.blobs.insert(digest.clone());
    if !store.has_blob(&digest) {
        if required {
            live.problems.push(Problem::MissingBlob {
                image: image.to_string(),
                digest,
            });
        }
        return;
    }
    let mt = media_type_str(desc);
    if depth > 4 || ManifestKind::of(&mt).is_none() {
        return;
    }
    let parsed = match store.read_manifest(&digest, Some(&mt)) {
        Ok((_, p)) => p,
        Err(e) => {
            live.problems.push(Problem::BadImage {
                image: image.to_string(),
                detail: e.to_string(),
            });
            return;
        }
    };
    match parsed {
        // An index may list platforms that were never fetched: not required.
        Manifest::Index(idx) => {
            for d in idx.manifests() {
                walk(store, image, d, depth + 1, false, live);
            }
        }
        Manifest::Image(m) => {
            walk(store, image, m.config(), depth + 1, true, live);
            for l in m.layers() {
                walk(store, image, l, depth + 1, true, live);
            }
            let Ok(config_digest) = descriptor_digest(m.config()) else {
                return;
            };
            let Ok(bytes) = store.read_blob(&config_digest) else {
                return;
            };
            match manifest::parse_config(&config_digest, &bytes) {
                Ok(cfg) => {
                    let diff_ids: Result<Vec<Digest>, _> =
                        cfg.rootfs().diff_ids().iter().map(|s| s.parse()).collect();
                    match diff_ids {
                        Ok(ids) => live.chains.extend(chain_ids(&ids)),
                        Err(e) => live.problems.push(Problem::BadImage {
                            image: image.to_string(),
                            detail: format!("config {config_digest}: {e}"),
                        }),
                    }
                }
                Err(e) => live.problems.push(Problem::BadImage {
                    image: image.to_string(),
                    detail: e.to_string(),
                }),
            }
        }
    }
}

fn live_set(store: &Store) -> Result<(Live, usize), GcError> {
    let mut live = Live::default();
    let records = store.list_images()?;
    for rec in &records {
        let image = match &rec.name {
            Some(n) => n.familiar(),
            None => rec.target_digest()?.to_string(),
        };
        walk(store, &image, &rec.target, 0, true, &mut live);
    }
    Ok((live, records.len()))
}

/// Keeps the config blob of each image id in `in_use` (images that
/// containers were created from, possibly since removed by `rmi`) and the
/// snapshots of its layer chain, so gc never pulls a rootfs out from under
/// a container.
fn pin_in_use(store: &Store, in_use: &[Digest], live: &mut Live) {
    for id in in_use {
        live.blobs.insert(id.clone());
        let Ok(bytes) = store.read_blob(id) else {
            continue;
        };
        let Ok(cfg) = manifest::parse_config(id, &bytes) else {
            continue;
        };
        let ids: Result<Vec<Digest>, _> =
            cfg.rootfs().diff_ids().iter().map(|s| s.parse()).collect();
        if let Ok(ids) = ids {
            live.chains.extend(chain_ids(&ids));
        }
    }
}

/// Removes every blob and snapshot no image needs, and interrupted ingests.
/// `in_use` lists the image ids (config digests) of existing containers:
/// their configs and snapshots are kept even when no image record names them.
pub fn gc(store: &Store, in_use: &[Digest]) -> Result<GcReport, GcError> {
    let (mut live, _) = live_set(store)?;
    pin_in_use(store, in_use, &mut live);
    let mut report = GcReport::default();
    for d in store.list_blobs()? {
        if !live.blobs.contains(&d) {
            report.bytes_freed += store.blob_size(&d).unwrap_or(0);
            store.remove_blob(&d)?;
            info!(digest = %d, "blob removed");
            report.blobs_removed.push(d);
        }
    }
    report.ingests_removed = store.clear_ingests()?;
    let snaps = Snapshots::new(store.snapshots_dir());
    let mut doomed: Vec<Digest> = snaps
        .list()?
        .into_iter()
        .filter(|c| !live.chains.contains(c))
        .collect();
    // Children must go before their parents; retry until nothing more can go.
    while !doomed.is_empty() {
        let before = doomed.len();
        let mut left = Vec::new();
        for c in doomed {
            match snaps.remove(&c) {
                Ok(()) => report.snapshots_removed.push(c),
                Err(SnapshotError::HasChildren { .. }) => left.push(c),
                Err(e) => return Err(e.into()),
            }
        }
        if left.len() == before {
            break;
        }
        doomed = left;
    }
    snaps.remove_stale_temp(Duration::from_secs(0))?;
    Ok(report)
}

/// Verifies every blob and snapshot and every image's references.
pub fn check(store: &Store) -> Result<CheckReport, GcError> {
    let (live, images) = live_set(store)?;
    let mut report = CheckReport {
        images_checked: images,
        problems: live.problems,
        ..CheckReport::default()
    };
    for d in store.list_blobs()? {
        report.blobs_checked += 1;
        if let Err(e) = store.verify_blob(&d) {
            let detail = match e {
                StoreError::Verify { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            report
                .problems
                .push(Problem::CorruptBlob { digest: d, detail });
        }
    }
    for p in store.stray_blob_files()? {
        report.problems.push(Problem::StrayFile(p));
    }
    report.pending_ingests = store.list_ingests()?.len();
    let snaps = Snapshots::new(store.snapshots_dir());
    for c in snaps.list()? {
        report.snapshots_checked += 1;
        if let Err(e) = snaps.verify(&c) {
            report.problems.push(Problem::CorruptSnapshot {
                chain_id: c,
                detail: e.to_string(),
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::import_rootfs;
    use crate::reference::Reference;

    fn tar_with(content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "file", content).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn gc_keeps_referenced_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let keep = Reference::parse("keep").unwrap();
        let drop_ = Reference::parse("drop").unwrap();
        import_rootfs(&store, &tar_with(b"a")[..], "a.tar", Some(&keep)).unwrap();
        import_rootfs(&store, &tar_with(b"b")[..], "b.tar", Some(&drop_)).unwrap();
        let (stray, _) = store.write_blob_bytes(b"unreferenced").unwrap();
        assert_eq!(store.list_blobs().unwrap().len(), 7);
        let rec = store.get_image(&drop_).unwrap().unwrap();
        store.remove_image(&rec).unwrap();
        let report = gc(&store, &[]).unwrap();
        assert_eq!(
            report.blobs_removed.len(),
            4,
            "3 of the dropped image + 1 stray"
        );
        assert!(report.blobs_removed.contains(&stray));
        assert_eq!(store.list_blobs().unwrap().len(), 3);
        let img = store
            .resolve("keep", &manifest::PlatformSpec::host())
            .unwrap();
        assert_eq!(img.layers.len(), 1);
        assert!(check(&store).unwrap().problems.is_empty());
    }

    #[test]
    fn check_names_the_corrupt_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = Reference::parse("x").unwrap();
        import_rootfs(&store, &tar_with(b"hello")[..], "x.tar", Some(&name)).unwrap();
        let img = store.resolve("x", &manifest::PlatformSpec::host()).unwrap();
        let layer = descriptor_digest(&img.layers[0]).unwrap();
        std::fs::write(store.blob_path(&layer), b"garbage").unwrap();
        let report = check(&store).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].to_string().contains(&layer.to_string()));
        std::fs::remove_file(store.blob_path(&layer)).unwrap();
        let report = check(&store).unwrap();
        assert!(matches!(report.problems[0], Problem::MissingBlob { .. }));
    }

    #[test]
    fn gc_keeps_what_containers_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = Reference::parse("used").unwrap();
        let out = import_rootfs(&store, &tar_with(b"u")[..], "u.tar", Some(&name)).unwrap();
        let rec = store.get_image(&name).unwrap().unwrap();
        store.remove_image(&rec).unwrap();
        let report = gc(&store, std::slice::from_ref(&out.id)).unwrap();
        assert_eq!(report.blobs_removed.len(), 2, "manifest and layer go");
        assert!(
            store.has_blob(&out.id),
            "the config of an image in use stays"
        );
    }
}
