//! The image model: OCI image manifests, indexes and configs and their Docker
//! schema 2 equivalents, parsed through `oci-spec`.
//!
//! Manifests and configs are always kept as the raw bytes they were read
//! from; the parsed values are views for reading fields. Nothing here
//! re-serializes a stored manifest, so digests never change.

use std::collections::BTreeMap;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Platform,
};

use crate::digest::{Digest, DigestError};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform), schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (as used in some archives).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Errors reading the image model.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The bytes are not a manifest or index of the declared kind.
    #[error("manifest {digest}: cannot parse as {kind}")]
    Parse {
        /// Digest of the unreadable content.
        digest: Digest,
        /// What it should have been.
        kind: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The media type is not a manifest or index berth understands.
    #[error("manifest {digest}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// Digest of the manifest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A descriptor holds a digest berth cannot use.
    #[error("descriptor: {0}")]
    Digest(#[from] DigestError),
    /// The config is not valid image config JSON.
    #[error("config {digest}: cannot parse")]
    Config {
        /// Digest of the config.
        digest: Digest,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// No manifest in the index matches the wanted platform.
    #[error("index {digest}: no manifest for platform {platform} (available: {available})")]
    NoPlatform {
        /// Digest of the index.
        digest: Digest,
        /// The platform asked for, `os/arch`.
        platform: String,
        /// The platforms listed in the index.
        available: String,
    },
}

/// Whether a media type names a single-image manifest, an index, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An OCI image manifest or Docker schema 2 manifest.
    Image,
    /// An OCI index or Docker manifest list.
    Index,
}

impl ManifestKind {
    /// Classifies a media type; `None` for anything that is not a manifest.
    pub fn of(media_type: &str) -> Option<ManifestKind> {
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
            OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
            _ => None,
        }
    }
}

/// A parsed manifest or index (a view over raw bytes kept elsewhere).
#[derive(Debug, Clone)]
pub enum Manifest {
    /// A single-platform image manifest.
    Image(Box<ImageManifest>),
    /// A multi-platform index.
    Index(Box<ImageIndex>),
}

impl Manifest {
    /// Parses `bytes` (with digest `digest`) as the kind its media type says.
    /// When `media_type` is `None`, the JSON's own `mediaType` field, or the
    /// presence of `manifests`, decides.
    pub fn parse(
        digest: &Digest,
        media_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Manifest, ManifestError> {
        let kind = match media_type.and_then(ManifestKind::of) {
            Some(k) => k,
            None => detect_kind(digest, media_type, bytes)?,
        };
        match kind {
            ManifestKind::Image => serde_json::from_slice(bytes)
                .map(|m| Manifest::Image(Box::new(m)))
                .map_err(|source| ManifestError::Parse {
                    digest: digest.clone(),
                    kind: "image manifest",
                    source,
                }),
            ManifestKind::Index => serde_json::from_slice(bytes)
                .map(|m| Manifest::Index(Box::new(m)))
                .map_err(|source| ManifestError::Parse {
                    digest: digest.clone(),
                    kind: "image index",
                    source,
                }),
        }
    }
}

fn detect_kind(
    digest: &Digest,
    declared: Option<&str>,
    bytes: &[u8],
) -> Result<ManifestKind, ManifestError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ManifestError::Parse {
        digest: digest.clone(),
        kind: "manifest",
        source,
    })?;
    if let Some(k) = probe.media_type.as_deref().and_then(ManifestKind::of) {
        return Ok(k);
    }
    if probe.manifests.is_some() {
        return Ok(ManifestKind::Index);
    }
    if probe.layers.is_some() {
        return Ok(ManifestKind::Image);
    }
    Err(ManifestError::UnsupportedMediaType {
        digest: digest.clone(),
        media_type: declared
            .map(str::to_string)
            .or(probe.media_type)
            .unwrap_or_default(),
    })
}

/// Parses an image config (OCI or Docker) from its raw bytes.
pub fn parse_config(digest: &Digest, bytes: &[u8]) -> Result<ImageConfiguration, ManifestError> {
    serde_json::from_slice(bytes).map_err(|source| ManifestError::Config {
        digest: digest.clone(),
        source,
    })
}

/// Builds a descriptor from a media type string, digest and size.
pub fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, digest)
}

/// The digest of a descriptor as berth's [`Digest`].
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, ManifestError> {
    Ok(Digest::try_from(d.digest())?)
}

/// A descriptor's media type as a string, exactly as it was written.
pub fn media_type_str(d: &Descriptor) -> String {
    d.media_type().to_string()
}

/// The platform to pick from an index: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Architecture in OCI spelling, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Optional variant, e.g. `v8`.
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// The platform of the running host (`linux/amd64` on x86-64).
    pub fn host() -> PlatformSpec {
        PlatformSpec {
            os: std::env::consts::OS.to_string(),
            architecture: host_architecture().to_string(),
            variant: None,
        }
    }

    fn matches(&self, p: &Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match (&self.variant, p.variant()) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The host architecture in OCI/Go spelling.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Picks the manifest for `want` from an index, skipping attestation entries
/// (`unknown/unknown` platforms) and entries that are not image manifests.
pub fn select_platform<'a>(
    index_digest: &Digest,
    index: &'a ImageIndex,
    want: &PlatformSpec,
) -> Result<&'a Descriptor, ManifestError> {
    let candidates = index
        .manifests()
        .iter()
        .filter(|d| ManifestKind::of(&media_type_str(d)).is_some())
        .filter(|d| {
            d.platform()
                .as_ref()
                .is_none_or(|p| p.os().to_string() != "unknown")
        });
    let mut untagged = None;
    for d in candidates {
        match d.platform() {
            Some(p) if want.matches(p) => return Ok(d),
            None if untagged.is_none() => untagged = Some(d),
            _ => {}
        }
    }
    untagged.ok_or_else(|| ManifestError::NoPlatform {
        digest: index_digest.clone(),
        platform: want.to_string(),
        available: index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| format!("{}/{}", p.os(), p.architecture()))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Annotation holding the image name in an OCI layout's index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker put on OCI layout entries with the full name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Annotations of a descriptor, empty when it has none.
pub fn annotations(d: &Descriptor) -> BTreeMap<String, String> {
    d.annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_MANIFEST_JSON: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1469,
      "digest": "sha256:b2aa39c304c27b96c1fef0c06bee651ac9241d49c4fe34381cab8453f9a89c7d"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 772788,
         "digest": "sha256:a58ecd4f0c864650a4286c3c2d49c7219a3f2fc8d7a0bf478aa9834acfe14ae7"
      }
   ]
}"#;

    const INDEX_JSON: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
     "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "platform": {"os": "unknown", "architecture": "unknown"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "platform": {"os": "linux", "architecture": "amd64"}}
  ]
}"#;

    #[test]
    fn docker_manifest_keeps_its_media_types() {
        let d = Digest::sha256_of(DOCKER_MANIFEST_JSON.as_bytes());
        let m = Manifest::parse(&d, None, DOCKER_MANIFEST_JSON.as_bytes()).unwrap();
        let Manifest::Image(m) = m else {
            panic!("expected an image manifest")
        };
        assert_eq!(media_type_str(m.config()), DOCKER_CONFIG);
        assert_eq!(media_type_str(&m.layers()[0]), DOCKER_LAYER_GZIP);
        assert_eq!(m.layers()[0].size(), 772788);
    }

    #[test]
    fn selects_host_like_platform_and_skips_attestations() {
        let d = Digest::sha256_of(INDEX_JSON.as_bytes());
        let Manifest::Index(idx) =
            Manifest::parse(&d, Some(OCI_INDEX), INDEX_JSON.as_bytes()).unwrap()
        else {
            panic!("expected an index")
        };
        let amd = PlatformSpec {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        let pick = select_platform(&d, &idx, &amd).unwrap();
        assert!(descriptor_digest(pick).unwrap().hex().starts_with("3333"));
        let arm = PlatformSpec {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        let pick = select_platform(&d, &idx, &arm).unwrap();
        assert!(descriptor_digest(pick).unwrap().hex().starts_with("2222"));
        let s390 = PlatformSpec {
            os: "linux".into(),
            architecture: "s390x".into(),
            variant: None,
        };
        let err = select_platform(&d, &idx, &s390).unwrap_err().to_string();
        assert!(err.contains("linux/s390x"), "{err}");
    }

    #[test]
    fn rejects_non_manifest_json() {
        let bytes = br#"{"hello": "world"}"#;
        let d = Digest::sha256_of(bytes);
        assert!(Manifest::parse(&d, None, bytes).is_err());
    }
}
