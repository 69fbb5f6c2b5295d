//! Name resolution: from an IMAGE argument (name, `name@digest`, id or id
//! prefix) through the records to one platform's manifest, config and layers.
//! Lock-free: records and blobs appear whole, so a concurrent writer is
//! either seen completely or not at all.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use super::{ImageRecord, Store, StoreError};
use crate::digest::Digest;
use crate::manifest::{
    self, descriptor_digest, media_type_str, Manifest, ManifestKind, PlatformSpec,
};
use crate::reference::Reference;

/// One image resolved down to a single platform: its manifest, config and layers,
/// with the raw bytes of manifest and config kept for byte-exact output.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The record's name, if the image was found by name or has one.
    pub name: Option<Reference>,
    /// What the record points at (an index or a manifest).
    pub target: Descriptor,
    /// Digest of the platform manifest (equal to the target's unless it is an index).
    pub manifest_digest: Digest,
    /// Media type of the platform manifest.
    pub manifest_media_type: String,
    /// The manifest's bytes as stored.
    pub manifest_raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: ImageManifest,
    /// The config digest, which is the image id.
    pub config_digest: Digest,
    /// The config's bytes as stored.
    pub config_raw: Vec<u8>,
    /// The parsed config.
    pub config: ImageConfiguration,
    /// Layer descriptors, base layer first.
    pub layers: Vec<Descriptor>,
}

impl ResolvedImage {
    /// The image id (config digest), as Docker shows it.
    pub fn id(&self) -> &Digest {
        &self.config_digest
    }

    /// The uncompressed layer digests (`rootfs.diff_ids`) from the config.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, StoreError> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|s| {
                s.parse().map_err(|source| StoreError::Verify {
                    digest: self.config_digest.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Total size of the compressed layers and the config, as `docker images` reports it.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size()).sum::<u64>() + self.config_raw.len() as u64
    }
}
impl Store {
    /// Reads a manifest or index blob and parses it according to `media_type`.
    pub fn read_manifest(
        &self,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<(Vec<u8>, Manifest), StoreError> {
        let raw = self.read_blob(digest)?;
        let parsed = Manifest::parse(digest, media_type, &raw)?;
        Ok((raw, parsed))
    }

    /// Resolves a record down to one platform's manifest, config and layers.
    pub fn resolve_record(
        &self,
        record: &ImageRecord,
        platform: &PlatformSpec,
    ) -> Result<ResolvedImage, StoreError> {
        let target_digest = record.target_digest()?;
        let target_type = media_type_str(&record.target);
        let (mut manifest_digest, mut manifest_type) = (target_digest.clone(), target_type);
        let (mut raw, mut parsed) = self.read_manifest(&manifest_digest, Some(&manifest_type))?;
        // Nested indexes are legal; follow at most a few levels.
        for _ in 0..4 {
            let Manifest::Index(index) = &parsed else {
                break;
            };
            let pick = manifest::select_platform(&manifest_digest, index, platform)?;
            manifest_digest = descriptor_digest(pick)?;
            manifest_type = media_type_str(pick);
            (raw, parsed) = self.read_manifest(&manifest_digest, Some(&manifest_type))?;
        }
        let Manifest::Image(m) = parsed else {
            return Err(StoreError::NotAManifest {
                name: record
                    .name
                    .as_ref()
                    .map(|r| r.familiar())
                    .unwrap_or_default(),
                digest: manifest_digest,
                media_type: manifest_type,
            });
        };
        if ManifestKind::of(&manifest_type).is_none() {
            manifest_type = m
                .media_type()
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        }
        let config_digest = descriptor_digest(m.config())?;
        let config_raw = self.read_blob(&config_digest)?;
        let config = manifest::parse_config(&config_digest, &config_raw)?;
        Ok(ResolvedImage {
            name: record.name.clone(),
            target: record.target.clone(),
            manifest_digest,
            manifest_media_type: manifest_type,
            manifest_raw: raw,
            layers: m.layers().clone(),
            manifest: *m,
            config_digest,
            config_raw,
            config,
        })
    }

    /// Finds the records an IMAGE argument names: a name (`busybox`,
    /// `user/app:1`), `name@digest`, a full image id (`sha256:<hex>` or
    /// 64 hex), or a unique id prefix of 12 or more hex characters.
    /// Several records are returned when an id matches several names.
    pub fn find_images(
        &self,
        query: &str,
        platform: &PlatformSpec,
    ) -> Result<Vec<ImageRecord>, StoreError> {
        let hex_part = query.strip_prefix("sha256:").unwrap_or(query);
        let is_hex = hex_part.len() >= 12
            && hex_part.len() <= 64
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_hex || hex_part.len() < 64 {
            if let Ok(r) = Reference::parse(query) {
                if r.digest().is_some() {
                    let hits = self.records_by_digest(&r)?;
                    if !hits.is_empty() {
                        return Ok(hits);
                    }
                } else if let Some(rec) = self.get_image(&r)? {
                    return Ok(vec![rec]);
                }
            }
        }
        if is_hex {
            let mut hits: Vec<(Digest, ImageRecord)> = Vec::new();
            for rec in self.list_images()? {
                let Ok(img) = self.resolve_record(&rec, platform) else {
                    continue;
                };
                if img.config_digest.hex().starts_with(hex_part) {
                    hits.push((img.config_digest.clone(), rec));
                }
            }
            let first = hits.first().map(|(d, _)| d.clone());
            if hits.iter().any(|(d, _)| Some(d) != first.as_ref()) {
                return Err(StoreError::AmbiguousId(query.to_string()));
            }
            if !hits.is_empty() {
                return Ok(hits.into_iter().map(|(_, r)| r).collect());
            }
        }
        Err(StoreError::ImageNotFound(query.to_string()))
    }

    fn records_by_digest(&self, r: &Reference) -> Result<Vec<ImageRecord>, StoreError> {
        let Some(want) = r.digest() else {
            return Ok(Vec::new());
        };
        let mut hits = Vec::new();
        for rec in self.list_images()? {
            let same_repo = rec.name.as_ref().is_some_and(|n| n.name() == r.name());
            if same_repo && &rec.target_digest()? == want {
                hits.push(rec);
            }
        }
        Ok(hits)
    }

    /// Resolves an IMAGE argument (see [`Store::find_images`]) to one platform's
    /// manifest, config and layers.
    pub fn resolve(
        &self,
        query: &str,
        platform: &PlatformSpec,
    ) -> Result<ResolvedImage, StoreError> {
        let recs = self.find_images(query, platform)?;
        let rec = recs
            .first()
            .ok_or_else(|| StoreError::ImageNotFound(query.to_string()))?;
        self.resolve_record(rec, platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::import_rootfs;

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
    fn finds_an_image_by_name_id_and_id_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let name = Reference::parse("app:1").unwrap();
        let out = import_rootfs(&s, &tar_with(b"a")[..], "a.tar", Some(&name)).unwrap();
        let host = PlatformSpec::host();
        let by_name = s.resolve("app:1", &host).unwrap();
        assert_eq!(by_name.id(), &out.id);
        assert_eq!(by_name.layers.len(), 1);
        assert_eq!(by_name.diff_ids().unwrap().len(), 1);
        for q in [out.id.to_string(), out.id.hex()[..12].to_string()] {
            assert_eq!(s.resolve(&q, &host).unwrap().id(), &out.id, "{q}");
        }
        assert!(matches!(
            s.resolve("app:2", &host),
            Err(StoreError::ImageNotFound(_))
        ));
    }

    #[test]
    fn a_prefix_shorter_than_twelve_hex_digits_is_not_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let name = Reference::parse("short").unwrap();
        let out = import_rootfs(&s, &tar_with(b"s")[..], "s.tar", Some(&name)).unwrap();
        let err = s
            .find_images(&out.id.hex()[..11], &PlatformSpec::host())
            .unwrap_err();
        assert!(matches!(err, StoreError::ImageNotFound(_)), "{err:?}");
    }
}
