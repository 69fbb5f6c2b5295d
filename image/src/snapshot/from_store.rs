//! Unpacking the layers of an image held in the content store.

use crate::digest::Digest;
use crate::manifest::{descriptor_digest, media_type_str};
use crate::store::{ResolvedImage, Store};

use super::{chain_ids, SnapshotError, Snapshots};

impl Snapshots {
    /// Unpacks every layer of `image` not yet unpacked, base layer first,
    /// reading each blob from `store` (verified against its digest while it
    /// is read) and checking it against the config's diff ids. Returns the
    /// chain id of the top snapshot, `None` for an image without layers.
    pub fn unpack_image(
        &self,
        store: &Store,
        image: &ResolvedImage,
    ) -> Result<Option<Digest>, SnapshotError> {
        let diff_ids = image
            .diff_ids()
            .map_err(|e| SnapshotError::Image(e.to_string()))?;
        if diff_ids.len() != image.layers.len() {
            return Err(SnapshotError::Image(format!(
                "image {}: manifest lists {} layers but the config has {} diff ids",
                image.id(),
                image.layers.len(),
                diff_ids.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        let mut parent: Option<Digest> = None;
        for ((layer, diff_id), chain) in image.layers.iter().zip(&diff_ids).zip(&chains) {
            if !self.exists(chain) {
                let digest =
                    descriptor_digest(layer).map_err(|e| SnapshotError::Image(e.to_string()))?;
                let blob = store
                    .open_blob(&digest)
                    .map_err(|e| SnapshotError::Image(e.to_string()))?;
                self.unpack(parent.as_ref(), diff_id, &media_type_str(layer), blob)?;
            }
            parent = Some(chain.clone());
        }
        Ok(parent)
    }
}
