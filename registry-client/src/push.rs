//! Pushing an image: blobs first (skipping those the registry has, mounting
//! those another repository of the same registry has, uploading the rest with
//! POST, PATCH and PUT `?digest=`), then manifests, then the index, then the tag.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use berth_image::digest::Digest;
use berth_image::manifest::{
    descriptor_digest, media_type_str, Manifest, ManifestError, PlatformSpec,
};
use berth_image::reference::Reference;
use berth_image::store::{ImageRecord, Store, StoreError};
use futures::StreamExt;
use oci_spec::image::Descriptor;
use reqwest::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use crate::auth::{pull_scope, push_scope};
use crate::progress::{BlobKind, BlobOutcome, Progress, ProgressEvent};
use crate::schedule::Slots;
use crate::transport::{Request, Transport, TransportError};

/// Blobs up to this size are uploaded with POST then one PUT carrying the body.
const MONOLITHIC_MAX: u64 = crate::schedule::SMALL_BLOB;

/// Errors from pushing.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The registry could not be talked to.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored manifest could not be parsed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The registry accepted an upload but gave no `Location` to continue at.
    #[error(
        "registry {registry}, repository {repository}: upload of {digest}: reply without Location"
    )]
    NoLocation {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// The blob.
        digest: Digest,
    },
    /// A blob file could not be read.
    #[error("blob {digest}: {source}")]
    ReadBlob {
        /// The blob.
        digest: Digest,
        /// The read error.
        source: std::io::Error,
    },
    /// A blob upload kept failing.
    #[error("blob {digest}: upload failed after {attempts} attempts: {source}")]
    Upload {
        /// The blob.
        digest: Digest,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        source: Box<TransportError>,
    },
    /// A stored manifest's media type cannot be sent as a `Content-Type`.
    #[error("manifest {digest}: media type {media_type:?} is not a valid Content-Type")]
    MediaType {
        /// The manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// The image has no manifest berth can push.
    #[error("image {0}: the record points at neither a manifest nor an index")]
    NotAnImage(String),
}

impl From<TransportError> for PushError {
    fn from(e: TransportError) -> Self {
        PushError::Transport(Box::new(e))
    }
}

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// When the image is an index whose other platforms are not stored
    /// locally, only this platform's manifest is pushed.
    pub platform: PlatformSpec,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            platform: PlatformSpec::host(),
        }
    }
}

/// The result of a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Digest of the manifest or index the tag now names.
    pub digest: Digest,
    /// Its size, as `docker push` prints it.
    pub size: u64,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub existing: usize,
}

/// One manifest to push with the blobs it needs.
struct ManifestPlan {
    digest: Digest,
    media_type: String,
    raw: Vec<u8>,
}

/// Pushes the image `record` from `store` to `dest` (tag or digest).
pub async fn push(
    transport: &Transport,
    store: &Store,
    record: &ImageRecord,
    dest: &Reference,
    options: &PushOptions,
    progress: &Progress,
) -> Result<Pushed, PushError> {
    let repository = dest.path().to_string();
    let (manifests, blobs) = plan(store, record, &options.platform)?;
    let sources = mount_sources(store, dest, &options.platform);
    let mut scopes = vec![push_scope(&repository)];
    let mut from_repos: BTreeSet<&String> = BTreeSet::new();
    for digest in blobs.keys() {
        if let Some(from) = sources.get(digest) {
            from_repos.insert(from);
        }
    }
    // One token covers the push and every repository blobs are mounted from.
    scopes.extend(from_repos.iter().map(|r| pull_scope(r)));
    let scopes = Arc::new(scopes);

    let slots = Slots::new(transport.options().max_concurrent_blobs);
    let in_flight = slots.in_flight();
    let results: Vec<BlobOutcome> =
        futures::stream::iter(blobs.into_iter().map(|(digest, (size, kind))| {
            let scopes = scopes.clone();
            let repository = repository.clone();
            let from = sources.get(&digest).cloned();
            let slots = slots.clone();
            async move {
                let _slot = slots.acquire(size).await;
                upload_blob(
                    transport,
                    store,
                    &repository,
                    &digest,
                    size,
                    kind,
                    from.as_deref(),
                    &scopes,
                    progress,
                )
                .await
            }
        }))
        .buffer_unordered(in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    // Children before the manifest (or index) that names them.
    let (top, children) = manifests
        .split_last()
        .ok_or_else(|| PushError::NotAnImage(dest.to_string()))?;
    for m in children {
        put_manifest(transport, &repository, &m.digest.to_string(), m, &scopes).await?;
        progress.emit(ProgressEvent::ManifestPushed {
            digest: m.digest.clone(),
            reference: m.digest.to_string(),
        });
    }
    let tag = match (dest.tag(), dest.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => berth_image::reference::DEFAULT_TAG.to_string(),
    };
    put_manifest(transport, &repository, &tag, top, &scopes).await?;
    progress.emit(ProgressEvent::ManifestPushed {
        digest: top.digest.clone(),
        reference: tag,
    });
    let count = |o: BlobOutcome| results.iter().filter(|r| **r == o).count();
    Ok(Pushed {
        digest: top.digest.clone(),
        size: top.raw.len() as u64,
        uploaded: count(BlobOutcome::Pushed),
        mounted: count(BlobOutcome::Mounted),
        existing: count(BlobOutcome::Exists),
    })
}

type BlobPlan = BTreeMap<Digest, (u64, BlobKind)>;

/// Manifests in push order (children first) and the blobs they need. An index
/// whose children are not all stored is reduced to the wanted platform's manifest.
fn plan(
    store: &Store,
    record: &ImageRecord,
    platform: &PlatformSpec,
) -> Result<(Vec<ManifestPlan>, BlobPlan), PushError> {
    let top_digest = record.target_digest()?;
    let top_type = media_type_str(&record.target);
    let (raw, parsed) = store.read_manifest(&top_digest, Some(&top_type))?;
    let mut manifests = Vec::new();
    let mut blobs = BlobPlan::new();
    match parsed {
        Manifest::Image(m) => {
            add_blobs(&mut blobs, m.config(), m.layers())?;
            manifests.push(ManifestPlan {
                digest: top_digest,
                media_type: top_type,
                raw,
            });
        }
        Manifest::Index(index) => {
            let complete = index.manifests().iter().all(|d| {
                descriptor_digest(d).is_ok_and(|dg| store.has_blob(&dg))
                    && child_blobs_present(store, d)
            });
            if complete {
                for d in index.manifests() {
                    let digest = descriptor_digest(d)?;
                    let media_type = media_type_str(d);
                    let (raw, parsed) = store.read_manifest(&digest, Some(&media_type))?;
                    if let Manifest::Image(m) = parsed {
                        add_blobs(&mut blobs, m.config(), m.layers())?;
                    }
                    manifests.push(ManifestPlan {
                        digest,
                        media_type,
                        raw,
                    });
                }
                manifests.push(ManifestPlan {
                    digest: top_digest,
                    media_type: top_type,
                    raw,
                });
            } else {
                let resolved = store.resolve_record(record, platform)?;
                tracing::info!(platform = %platform, "only one platform of the index is stored; pushing its manifest");
                add_blobs(&mut blobs, resolved.manifest.config(), &resolved.layers)?;
                manifests.push(ManifestPlan {
                    digest: resolved.manifest_digest,
                    media_type: resolved.manifest_media_type,
                    raw: resolved.manifest_raw,
                });
            }
        }
    }
    Ok((manifests, blobs))
}

fn child_blobs_present(store: &Store, d: &Descriptor) -> bool {
    let Ok(digest) = descriptor_digest(d) else {
        return false;
    };
    match store.read_manifest(&digest, Some(&media_type_str(d))) {
        Ok((_, Manifest::Image(m))) => std::iter::once(m.config())
            .chain(m.layers().iter())
            .all(|b| descriptor_digest(b).is_ok_and(|dg| store.has_blob(&dg))),
        _ => false,
    }
}

fn add_blobs(
    blobs: &mut BlobPlan,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<(), PushError> {
    blobs.insert(
        descriptor_digest(config)?,
        (config.size(), BlobKind::Config),
    );
    for l in layers {
        blobs.insert(descriptor_digest(l)?, (l.size(), BlobKind::Layer));
    }
    Ok(())
}

/// Blobs held by other repositories of the destination's registry, from the
/// local image records: the registry can mount them instead of an upload.
fn mount_sources(
    store: &Store,
    dest: &Reference,
    platform: &PlatformSpec,
) -> BTreeMap<Digest, String> {
    let mut out = BTreeMap::new();
    let Ok(records) = store.list_images() else {
        return out;
    };
    for rec in records {
        let Some(name) = &rec.name else { continue };
        if name.domain() != dest.domain() || name.path() == dest.path() {
            continue;
        }
        let Ok(img) = store.resolve_record(&rec, platform) else {
            continue;
        };
        for d in img.layers.iter() {
            if let Ok(dg) = descriptor_digest(d) {
                out.entry(dg).or_insert_with(|| name.path().to_string());
            }
        }
    }
    out
}

fn location(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
    reply: &Response,
) -> Result<String, PushError> {
    reply
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| PushError::NoLocation {
            registry: transport.endpoint().host.clone(),
            repository: repository.to_string(),
            digest: digest.clone(),
        })
}

fn with_query(location: &str, key: &str, value: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{key}={value}")
}

/// Uploads one blob unless the registry has it or can mount it.
#[allow(clippy::too_many_arguments)]
async fn upload_blob(
    transport: &Transport,
    store: &Store,
    repository: &str,
    digest: &Digest,
    size: u64,
    kind: BlobKind,
    mount_from: Option<&str>,
    scopes: &[String],
    progress: &Progress,
) -> Result<BlobOutcome, PushError> {
    progress.emit(ProgressEvent::BlobStarted {
        digest: digest.clone(),
        kind,
        size,
    });
    let done = |outcome| {
        progress.emit(ProgressEvent::BlobDone {
            digest: digest.clone(),
            outcome,
        });
        Ok(outcome)
    };
    let head = Request::new(
        Method::HEAD,
        format!("/v2/{repository}/blobs/{digest}"),
        repository,
        scopes.to_vec(),
    );
    let reply = transport.send(&head).await?;
    match reply.status() {
        s if s.is_success() => return done(BlobOutcome::Exists),
        StatusCode::NOT_FOUND => {}
        _ => return Err(transport.status_error(&head, reply).await.into()),
    }
    let path = store.blob_path(digest);
    if !path.is_file() {
        return Err(StoreError::BlobNotFound(digest.clone()).into());
    }
    let max = transport.options().max_retries;
    let mut attempt = 0;
    loop {
        match upload_once(
            transport, repository, digest, size, &path, mount_from, scopes, progress,
        )
        .await
        {
            Ok(outcome) => return done(outcome),
            Err(PushError::Transport(e)) if attempt < max && retriable(&e) => {
                attempt += 1;
                tracing::info!(%digest, error = %e, attempt, "blob upload failed; starting over");
                progress.emit(ProgressEvent::BlobRetry {
                    digest: digest.clone(),
                    offset: 0,
                    reason: e.to_string(),
                });
                tokio::time::sleep(transport.options().initial_backoff * 2u32.pow(attempt.min(6)))
                    .await;
            }
            Err(PushError::Transport(source)) if attempt > 0 => {
                return Err(PushError::Upload {
                    digest: digest.clone(),
                    attempts: attempt + 1,
                    source,
                })
            }
            Err(e) => return Err(e),
        }
    }
}

fn retriable(e: &TransportError) -> bool {
    match e {
        TransportError::Request { .. } => true,
        TransportError::Status { status, .. } => {
            status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
        }
        _ => false,
    }
}

#[allow(clippy::too_many_arguments)]
async fn upload_once(
    transport: &Transport,
    repository: &str,
    digest: &Digest,
    size: u64,
    path: &std::path::Path,
    mount_from: Option<&str>,
    scopes: &[String],
    progress: &Progress,
) -> Result<BlobOutcome, PushError> {
    let uploads = format!("/v2/{repository}/blobs/uploads/");
    let start = match mount_from {
        Some(from) => format!("{uploads}?mount={digest}&from={from}"),
        None => uploads,
    };
    let post = Request::new(Method::POST, start, repository, scopes.to_vec())
        .header(CONTENT_LENGTH, HeaderValue::from_static("0"));
    let reply = transport.send_ok(&post).await?;
    if reply.status() == StatusCode::CREATED && mount_from.is_some() {
        tracing::debug!(%digest, from = ?mount_from, "blob mounted");
        return Ok(BlobOutcome::Mounted);
    }
    let mut loc = location(transport, repository, digest, &reply)?;
    let chunk = transport.options().upload_chunk_size.filter(|c| *c > 0);
    let read_err = |source| PushError::ReadBlob {
        digest: digest.clone(),
        source,
    };
    let put_body = if chunk.is_none() && size <= MONOLITHIC_MAX {
        // Small blob: the body travels with the closing PUT.
        Some(std::fs::read(path).map_err(read_err)?)
    } else {
        let mut offset = 0u64;
        let step = chunk.unwrap_or(size.max(1));
        loop {
            let len = step.min(size - offset);
            let body = file_range_body(path.to_path_buf(), offset, len);
            let mut patch = Request::new(Method::PATCH, loc.clone(), repository, scopes.to_vec())
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                )
                .header(CONTENT_LENGTH, HeaderValue::from(len))
                .body(body);
            if chunk.is_some() {
                let range = format!("{}-{}", offset, (offset + len).saturating_sub(1));
                patch = patch.header(
                    reqwest::header::CONTENT_RANGE,
                    HeaderValue::from_str(&range)
                        .map_err(|e| read_err(std::io::Error::other(e)))?,
                );
            }
            patch.retry = false;
            let reply = transport.send_ok(&patch).await?;
            loc = location(transport, repository, digest, &reply)?;
            offset += len;
            progress.emit(ProgressEvent::BlobProgress {
                digest: digest.clone(),
                done: offset,
            });
            if offset >= size {
                break;
            }
        }
        None
    };
    let put_url = with_query(&loc, "digest", &digest.to_string());
    let mut put = Request::new(Method::PUT, put_url, repository, scopes.to_vec());
    match put_body {
        Some(bytes) => {
            let bytes = bytes::Bytes::from(bytes);
            put = put
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                )
                .header(CONTENT_LENGTH, HeaderValue::from(bytes.len() as u64))
                .body(Arc::new(move || Ok(reqwest::Body::from(bytes.clone()))));
        }
        None => put = put.header(CONTENT_LENGTH, HeaderValue::from_static("0")),
    }
    put.retry = false;
    transport.send_ok(&put).await?;
    progress.emit(ProgressEvent::BlobProgress {
        digest: digest.clone(),
        done: size,
    });
    Ok(BlobOutcome::Pushed)
}

/// A body streaming `len` bytes of `path` from `offset`, reopened per attempt.
fn file_range_body(path: PathBuf, offset: u64, len: u64) -> crate::transport::BodyFn {
    Arc::new(move || {
        let mut f = std::fs::File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        use tokio::io::AsyncReadExt;
        let reader = tokio::fs::File::from_std(f).take(len);
        let stream = futures::stream::unfold(
            (reader, vec![0u8; 256 << 10]),
            |(mut r, mut buf)| async move {
                match r.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => Some((Ok(bytes::Bytes::copy_from_slice(&buf[..n])), (r, buf))),
                    Err(e) => Some((Err::<bytes::Bytes, std::io::Error>(e), (r, buf))),
                }
            },
        );
        Ok(reqwest::Body::wrap_stream(stream))
    })
}

async fn put_manifest(
    transport: &Transport,
    repository: &str,
    reference: &str,
    m: &ManifestPlan,
    scopes: &[String],
) -> Result<(), PushError> {
    let bytes = bytes::Bytes::from(m.raw.clone());
    let req = Request::new(
        Method::PUT,
        format!("/v2/{repository}/manifests/{reference}"),
        repository,
        scopes.to_vec(),
    )
    .header(
        CONTENT_TYPE,
        HeaderValue::from_str(&m.media_type).map_err(|_| PushError::MediaType {
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
        })?,
    )
    .body(Arc::new(move || Ok(reqwest::Body::from(bytes.clone()))));
    transport.send_ok(&req).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_joins_locations() {
        assert_eq!(
            with_query("/v2/a/blobs/uploads/u", "digest", "sha256:x"),
            "/v2/a/blobs/uploads/u?digest=sha256:x"
        );
        assert_eq!(
            with_query(
                "http://h/v2/a/blobs/uploads/u?_state=s",
                "digest",
                "sha256:x"
            ),
            "http://h/v2/a/blobs/uploads/u?_state=s&digest=sha256:x"
        );
    }

    /// Stores a one-layer image for `arch` and returns its manifest descriptor.
    fn image(store: &Store, arch: &str) -> Descriptor {
        let layer = format!("layer for {arch}");
        let (ld, ls) = store.write_blob_bytes(layer.as_bytes()).unwrap();
        let config = serde_json::json!({"architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [ld.to_string()]}})
        .to_string();
        let (cd, cs) = store.write_blob_bytes(config.as_bytes()).unwrap();
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": berth_image::manifest::OCI_MANIFEST,
            "config": {"mediaType": berth_image::manifest::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
            "layers": [{"mediaType": berth_image::manifest::OCI_LAYER_TAR, "digest": ld.to_string(), "size": ls}]})
        .to_string();
        let (md, ms) = store.write_blob_bytes(manifest.as_bytes()).unwrap();
        berth_image::manifest::descriptor(berth_image::manifest::OCI_MANIFEST, &md, ms)
    }

    fn index(store: &Store, children: &[(&Descriptor, &str)]) -> Descriptor {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|(d, arch)| {
                serde_json::json!({"mediaType": media_type_str(d), "digest": d.digest().to_string(),
                    "size": d.size(), "platform": {"os": "linux", "architecture": arch}})
            })
            .collect();
        let raw = serde_json::json!({"schemaVersion": 2,
            "mediaType": berth_image::manifest::OCI_INDEX, "manifests": manifests})
        .to_string();
        let (d, s) = store.write_blob_bytes(raw.as_bytes()).unwrap();
        berth_image::manifest::descriptor(berth_image::manifest::OCI_INDEX, &d, s)
    }

    fn platform(arch: &str) -> PlatformSpec {
        PlatformSpec {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    #[test]
    fn complete_index_pushes_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let amd = image(&store, "amd64");
        let arm = image(&store, "arm64");
        let top = index(&store, &[(&amd, "amd64"), (&arm, "arm64")]);
        let name: Reference = "localhost:5000/a/b:t".parse().unwrap();
        let record = store.put_image(Some(&name), &top).unwrap();
        let (manifests, blobs) = plan(&store, &record, &platform("amd64")).unwrap();
        let order: Vec<Digest> = manifests.iter().map(|m| m.digest.clone()).collect();
        let want: Vec<Digest> = [&amd, &arm, &top]
            .iter()
            .map(|d| descriptor_digest(d).unwrap())
            .collect();
        assert_eq!(order, want);
        assert_eq!(blobs.len(), 4, "two configs and two layers");
    }

    #[test]
    fn partial_index_pushes_the_stored_platform_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let amd = image(&store, "amd64");
        let arm = image(&store, "arm64");
        let top = index(&store, &[(&amd, "amd64"), (&arm, "arm64")]);
        // The arm64 layer is missing, as after a single-platform pull.
        let arm_raw = store.read_blob(&descriptor_digest(&arm).unwrap()).unwrap();
        let arm_manifest: serde_json::Value = serde_json::from_slice(&arm_raw).unwrap();
        let arm_layer: Digest = arm_manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        store.remove_blob(&arm_layer).unwrap();
        let name: Reference = "localhost:5000/a/b:t".parse().unwrap();
        let record = store.put_image(Some(&name), &top).unwrap();
        let (manifests, blobs) = plan(&store, &record, &platform("amd64")).unwrap();
        assert_eq!(manifests.len(), 1);
        assert_eq!(manifests[0].digest, descriptor_digest(&amd).unwrap());
        assert_eq!(blobs.len(), 2);
        assert!(!blobs.contains_key(&arm_layer));
    }

    #[test]
    fn mount_sources_come_from_other_repositories_of_the_same_registry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let amd = image(&store, "amd64");
        let same: Reference = "localhost:5000/team/base:1".parse().unwrap();
        let other_registry: Reference = "quay.io/team/base:1".parse().unwrap();
        store.put_image(Some(&same), &amd).unwrap();
        store.put_image(Some(&other_registry), &amd).unwrap();
        let dest: Reference = "localhost:5000/team/app:1".parse().unwrap();
        let sources = mount_sources(&store, &dest, &platform("amd64"));
        assert_eq!(sources.len(), 1, "the layer");
        assert!(sources.values().all(|r| r == "team/base"));
        // Pushing to the repository itself mounts nothing.
        assert!(mount_sources(&store, &same, &platform("amd64")).is_empty());
    }
}
