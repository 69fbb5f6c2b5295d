//! Pulling an image: resolve the reference to a manifest (picking a platform
//! from an index), fetch config and layers in parallel into the content store,
//! resuming interrupted downloads with `Range` and verifying every byte, unpack
//! layers into snapshots as they arrive, and record the image's name.

use std::sync::Arc;

use berth_image::digest::Digest;
use berth_image::manifest::{
    self, descriptor_digest, media_type_str, Manifest, ManifestError, ManifestKind, PlatformSpec,
};
use berth_image::reference::Reference;
use berth_image::snapshot::{SnapshotError, Snapshots};
use berth_image::store::{ImageRecord, Store, StoreError};
use futures::StreamExt;
use oci_spec::image::Descriptor;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};

use crate::auth::pull_scope;
use crate::progress::{BlobKind, BlobOutcome, Progress, ProgressEvent};
use crate::schedule::Slots;
use crate::transport::{error_chain, Request, Transport, TransportError};

/// Every manifest type berth understands, as Docker sends them.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest berth accepts (distribution's and containerd's limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// Largest image config berth accepts: it is read whole into memory (real
/// configs are a few KiB; long histories reach a few hundred).
const MAX_CONFIG: u64 = 8 << 20;

/// Errors from pulling.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry could not be talked to.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// The content store failed (including digest mismatches on commit).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest could not be parsed or has no matching platform.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest's bytes do not hash to the digest it was asked for by.
    #[error("{reference}: manifest digest mismatch: expected {expected}, got {actual}")]
    ManifestDigest {
        /// The reference pulled.
        reference: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A manifest is larger than berth accepts.
    #[error("{reference}: manifest larger than {MAX_MANIFEST} bytes")]
    ManifestTooLarge {
        /// The reference pulled.
        reference: String,
    },
    /// An image config is larger than berth accepts.
    #[error("config {digest}: {size} bytes is larger than the {MAX_CONFIG}-byte limit")]
    ConfigTooLarge {
        /// The config blob.
        digest: Digest,
        /// Its size as the manifest gives it.
        size: u64,
    },
    /// A blob download kept failing.
    #[error("blob {digest}: download failed after {attempts} attempts: {message}")]
    BlobDownload {
        /// The blob.
        digest: Digest,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// Writing a downloaded blob into the store failed.
    #[error("blob {digest}: {source}")]
    BlobWrite {
        /// The blob.
        digest: Digest,
        /// The write error (a size overrun shows up here).
        source: std::io::Error,
    },
    /// A manifest refers to something that is neither an image nor an index.
    #[error("{reference}: {digest} is a {media_type}, not an image manifest or index")]
    NotAnImage {
        /// The reference pulled.
        reference: String,
        /// The digest found.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// The config's layer list and the manifest's disagree.
    #[error("image {digest}: config lists {diff_ids} layers but the manifest has {layers}")]
    LayerCount {
        /// The manifest digest.
        digest: Digest,
        /// Number of diff ids in the config.
        diff_ids: usize,
        /// Number of layers in the manifest.
        layers: usize,
    },
    /// Unpacking a layer failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A background task failed.
    #[error("pull task failed: {0}")]
    Task(String),
}

impl From<TransportError> for PullError {
    fn from(e: TransportError) -> Self {
        PullError::Transport(Box::new(e))
    }
}

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index.
    pub platform: PlatformSpec,
    /// Unpack layers into snapshots as they arrive.
    pub unpack: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: PlatformSpec::host(),
            unpack: true,
        }
    }
}

/// The result of a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The record written for the reference.
    pub record: ImageRecord,
    /// Digest of what the reference names (index or manifest), as `docker pull` prints it.
    pub digest: Digest,
    /// Digest of the platform's image manifest.
    pub manifest_digest: Digest,
    /// The image id (config digest).
    pub config_digest: Digest,
    /// Blobs downloaded.
    pub downloaded: usize,
    /// Blobs already present locally.
    pub existing: usize,
}

/// A manifest fetched from a registry: its bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// Raw bytes, exactly as served.
    pub raw: Vec<u8>,
    /// Media type (from `Content-Type`, else the JSON's `mediaType`).
    pub media_type: String,
    /// SHA-256 of `raw` (or the algorithm of the digest asked for).
    pub digest: Digest,
    /// Parsed view.
    pub manifest: Manifest,
}

/// Fetches the manifest `reference` (a tag or digest) of `repository`, checking its digest.
pub async fn fetch_manifest(
    transport: &Transport,
    repository: &str,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<FetchedManifest, PullError> {
    let req = Request::new(
        Method::GET,
        format!("/v2/{repository}/manifests/{reference}"),
        repository,
        vec![pull_scope(repository)],
    )
    .header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
    let reply = transport.send_ok(&req).await?;
    let served_digest = reply
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<Digest>().ok());
    let header_type = reply
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let name = format!("{}/{repository}:{reference}", transport.endpoint().domain);
    let raw = match transport.read_limited(&req, reply, MAX_MANIFEST).await {
        Err(TransportError::TooLarge { .. }) => {
            return Err(PullError::ManifestTooLarge { reference: name })
        }
        r => r?,
    };
    let digest = match expected {
        Some(want) => {
            let actual = Digest::of(want.algorithm(), &raw);
            if &actual != want {
                return Err(PullError::ManifestDigest {
                    reference: name,
                    expected: want.clone(),
                    actual,
                });
            }
            actual
        }
        None => match served_digest {
            // By tag: the registry's own digest must match the bytes it sent.
            Some(served) => {
                let actual = Digest::of(served.algorithm(), &raw);
                if actual != served {
                    return Err(PullError::ManifestDigest {
                        reference: name,
                        expected: served,
                        actual,
                    });
                }
                Digest::sha256_of(&raw)
            }
            None => Digest::sha256_of(&raw),
        },
    };
    let declared = header_type.filter(|t| ManifestKind::of(t).is_some());
    let manifest = Manifest::parse(&digest, declared.as_deref(), &raw)?;
    let media_type = declared.unwrap_or_else(|| match &manifest {
        Manifest::Image(m) => m
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string()),
        Manifest::Index(i) => i
            .media_type()
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| manifest::OCI_INDEX.to_string()),
    });
    Ok(FetchedManifest {
        raw,
        media_type,
        digest,
        manifest,
    })
}

/// Pulls `reference` into `store` and points its name at what was pulled.
/// The caller holds a lease on the store until it returns; blobs another
/// writer is storing meanwhile are waited for, not fetched twice.
pub async fn pull(
    transport: &Transport,
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &Progress,
) -> Result<Pulled, PullError> {
    let repository = reference.path().to_string();
    let (target, expected) = match (reference.digest(), reference.tag()) {
        (Some(d), _) => (d.to_string(), Some(d.clone())),
        (None, Some(t)) => (t.to_string(), None),
        (None, None) => (berth_image::reference::DEFAULT_TAG.to_string(), None),
    };
    let top = fetch_manifest(transport, &repository, &target, expected.as_ref()).await?;
    progress.emit(ProgressEvent::Resolved {
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
    });
    let top_descriptor = manifest::descriptor(&top.media_type, &top.digest, top.raw.len() as u64);
    let top_digest = top.digest.clone();
    let mut current = top;
    let mut manifests = Vec::new();
    // Follow indexes (nested at most a few deep) down to the platform's manifest.
    let image = loop {
        let next = match &current.manifest {
            Manifest::Image(m) => break (**m).clone(),
            Manifest::Index(index) => {
                let pick = manifest::select_platform(&current.digest, index, &options.platform)?;
                (descriptor_digest(pick)?, media_type_str(pick))
            }
        };
        if manifests.len() >= 4 {
            return Err(PullError::NotAnImage {
                reference: reference.to_string(),
                digest: current.digest.clone(),
                media_type: current.media_type.clone(),
            });
        }
        manifests.push(current);
        let (digest, _) = next;
        current =
            fetch_manifest(transport, &repository, &digest.to_string(), Some(&digest)).await?;
    };
    let manifest_digest = current.digest.clone();
    manifests.push(current);

    let config = image.config().clone();
    let config_digest = descriptor_digest(&config)?;
    if config.size() > MAX_CONFIG {
        return Err(PullError::ConfigTooLarge {
            digest: config_digest,
            size: config.size(),
        });
    }
    let layers = image.layers().clone();
    let blobs = unique_blobs(&config, &layers)?;

    // Layers are unpacked in order as soon as each one and those below it are stored.
    let mut ready_senders = Vec::new();
    let mut ready_receivers = Vec::new();
    for _ in &layers {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready_senders.push(Some(tx));
        ready_receivers.push(rx);
    }
    let config_ready = Arc::new(tokio::sync::Notify::new());

    let slots = Slots::new(transport.options().max_concurrent_blobs);
    let in_flight = slots.in_flight();
    let fetches = futures::stream::iter(blobs.into_iter().map(|blob| {
        let progress = progress.clone();
        let repository = repository.clone();
        let slots = slots.clone();
        async move {
            let _slot = slots.acquire(blob.desc.size()).await;
            let outcome = fetch_blob(
                transport,
                store,
                &repository,
                &blob.desc,
                blob.kind,
                &progress,
            )
            .await?;
            Ok::<_, PullError>((blob.positions, outcome))
        }
    }))
    .buffer_unordered(in_flight);

    let unpacker = if options.unpack && !layers.is_empty() {
        let store = store.clone();
        let layers = layers.clone();
        let config_digest = config_digest.clone();
        let config_ready = config_ready.clone();
        let manifest_digest = manifest_digest.clone();
        Some(tokio::spawn(async move {
            config_ready.notified().await;
            tokio::task::spawn_blocking(move || {
                unpack_in_order(
                    &store,
                    &manifest_digest,
                    &config_digest,
                    &layers,
                    ready_receivers,
                )
            })
            .await
            .map_err(|e| PullError::Task(e.to_string()))?
        }))
    } else {
        None
    };

    let mut fetches = std::pin::pin!(fetches);
    let mut results: Vec<BlobOutcome> = Vec::new();
    let mut failure = None;
    while let Some(r) = fetches.next().await {
        match r {
            Ok((positions, outcome)) => {
                for i in positions {
                    if i == 0 {
                        config_ready.notify_one();
                    } else if let Some(tx) = ready_senders.get_mut(i - 1).and_then(Option::take) {
                        let _ = tx.send(());
                    }
                }
                results.push(outcome);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Dropping the senders tells a waiting unpacker that no more layers come.
    drop(ready_senders);
    if let Some(e) = failure {
        config_ready.notify_one();
        if let Some(u) = unpacker {
            let _ = u.await;
        }
        return Err(e);
    }
    if let Some(u) = unpacker {
        u.await.map_err(|e| PullError::Task(e.to_string()))??;
    }

    // Manifests last, so a name never points at content that is not all there.
    for m in &manifests {
        store.write_blob(&m.raw[..], Some(&m.digest))?;
    }
    let record = store.put_image(Some(reference), &top_descriptor)?;
    let downloaded = results
        .iter()
        .filter(|o| **o == BlobOutcome::Downloaded)
        .count();
    Ok(Pulled {
        record,
        digest: top_digest,
        manifest_digest,
        config_digest,
        downloaded,
        existing: results.len() - downloaded,
    })
}

/// One blob to fetch, and where it stands in the image: 0 for the config,
/// `i + 1` for layer `i`. A manifest may list a layer more than once; it is
/// fetched by one task (a second would only wait on the blob's ingest lock and
/// then find it stored) and every position it fills is told when it is there.
struct UniqueBlob {
    desc: Descriptor,
    kind: BlobKind,
    positions: Vec<usize>,
}

fn unique_blobs(config: &Descriptor, layers: &[Descriptor]) -> Result<Vec<UniqueBlob>, PullError> {
    let mut out: Vec<UniqueBlob> = Vec::new();
    let mut seen: std::collections::HashMap<Digest, usize> = std::collections::HashMap::new();
    let all = std::iter::once((config, BlobKind::Config))
        .chain(layers.iter().map(|l| (l, BlobKind::Layer)));
    for (position, (desc, kind)) in all.enumerate() {
        let digest = descriptor_digest(desc)?;
        match seen.get(&digest) {
            Some(&i) => out[i].positions.push(position),
            None => {
                seen.insert(digest, out.len());
                out.push(UniqueBlob {
                    desc: desc.clone(),
                    kind,
                    positions: vec![position],
                });
            }
        }
    }
    Ok(out)
}

fn unpack_in_order(
    store: &Store,
    manifest_digest: &Digest,
    config_digest: &Digest,
    layers: &[Descriptor],
    ready: Vec<tokio::sync::oneshot::Receiver<()>>,
) -> Result<(), PullError> {
    let config_raw = store.read_blob(config_digest)?;
    let config = manifest::parse_config(config_digest, &config_raw)?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| PullError::Manifest(ManifestError::Digest(e)))?;
    if diff_ids.len() != layers.len() {
        return Err(PullError::LayerCount {
            digest: manifest_digest.clone(),
            diff_ids: diff_ids.len(),
            layers: layers.len(),
        });
    }
    let snapshots = Snapshots::new(store.snapshots_dir());
    let mut parent: Option<Digest> = None;
    for ((layer, diff_id), rx) in layers.iter().zip(&diff_ids).zip(ready) {
        if rx.blocking_recv().is_err() {
            // The download failed; the pull reports that error.
            return Ok(());
        }
        let digest = descriptor_digest(layer)?;
        let chain = berth_image::snapshot::chain_id(parent.as_ref(), diff_id);
        if !snapshots.exists(&chain) {
            let reader = store.open_blob(&digest)?;
            snapshots.unpack(parent.as_ref(), diff_id, &media_type_str(layer), reader)?;
            tracing::debug!(layer = %digest, %chain, "layer unpacked");
        }
        parent = Some(chain);
    }
    Ok(())
}

/// Downloads one blob into the store unless it is there already, resuming
/// with `Range` after a dropped connection.
async fn fetch_blob(
    transport: &Transport,
    store: &Store,
    repository: &str,
    desc: &Descriptor,
    kind: BlobKind,
    progress: &Progress,
) -> Result<BlobOutcome, PullError> {
    let digest = descriptor_digest(desc)?;
    let size = desc.size();
    progress.emit(ProgressEvent::BlobStarted {
        digest: digest.clone(),
        kind,
        size,
    });
    // Waits while another pull writes the same blob (off the runtime's
    // threads, so this pull's other downloads go on), then finds it stored.
    let ingest = if store.has_blob(&digest) {
        None
    } else {
        let (store, digest) = (store.clone(), digest.clone());
        tokio::task::spawn_blocking(move || store.ingest(&digest, Some(size)))
            .await
            .map_err(|e| PullError::Task(e.to_string()))??
    };
    let Some(mut ingest) = ingest else {
        progress.emit(ProgressEvent::BlobDone {
            digest,
            outcome: BlobOutcome::Exists,
        });
        return Ok(BlobOutcome::Exists);
    };
    let max = transport.options().max_retries;
    let mut failures: u32 = 0;
    let path = format!("/v2/{repository}/blobs/{digest}");
    while ingest.written() < size || size == 0 {
        let offset = ingest.written();
        let mut req = Request::new(
            Method::GET,
            path.clone(),
            repository,
            vec![pull_scope(repository)],
        );
        if offset > 0 {
            req = req.header(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-"))
                    .map_err(|e| PullError::Task(e.to_string()))?,
            );
        }
        let reply = transport.send(&req).await?;
        let status = reply.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE || (offset > 0 && status == StatusCode::OK) {
            // The server cannot (or will not) resume: start over.
            ingest = ingest.restart()?;
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                continue;
            }
        } else if !status.is_success() {
            return Err(transport.status_error(&req, reply).await.into());
        }
        let stream = transport.body_stream(&req, reply, size.saturating_sub(ingest.written()));
        let mut stream = std::pin::pin!(stream);
        let mut interrupted = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    use std::io::Write;
                    ingest
                        .write_all(&bytes)
                        .map_err(|source| PullError::BlobWrite {
                            digest: digest.clone(),
                            source,
                        })?;
                    progress.emit(ProgressEvent::BlobProgress {
                        digest: digest.clone(),
                        done: ingest.written(),
                    });
                }
                // A stalled registry is not retried: the timeout is the bound.
                Err(e @ TransportError::Timeout { .. }) => return Err(e.into()),
                Err(e) => {
                    interrupted = Some(error_chain(&e));
                    break;
                }
            }
        }
        let last_error = match interrupted {
            None if ingest.written() >= size => break,
            None => format!(
                "connection closed after {} of {size} bytes",
                ingest.written()
            ),
            Some(e) => e,
        };
        failures += 1;
        if failures > max {
            return Err(PullError::BlobDownload {
                digest,
                attempts: failures,
                message: last_error,
            });
        }
        tracing::info!(offset = ingest.written(), error = %last_error, "blob download interrupted; resuming");
        progress.emit(ProgressEvent::BlobRetry {
            digest: digest.clone(),
            offset: ingest.written(),
            reason: last_error.clone(),
        });
        tokio::time::sleep(transport.options().initial_backoff * 2u32.pow(failures.min(6) - 1))
            .await;
    }
    ingest.commit()?;
    progress.emit(ProgressEvent::BlobDone {
        digest,
        outcome: BlobOutcome::Downloaded,
    });
    Ok(BlobOutcome::Downloaded)
}
