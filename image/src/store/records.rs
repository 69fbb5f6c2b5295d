//! Image records: `{name -> target descriptor}`, one small file per name in
//! `$ROOT/images/`, written aside and renamed into place (containerd's
//! metadata, kept apart from the content it points at). A record is written
//! only after everything it points at is stored, so a reader that finds a
//! record finds its content.

use std::fs;
use std::io;
use std::path::PathBuf;

use oci_spec::image::Descriptor;

use super::{io_err, sync_dir, write_atomic, Store, StoreError};
use crate::digest::Digest;
use crate::manifest::descriptor_digest;
use crate::reference::Reference;

/// Where an image record points and what it is called.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// The image's name; `None` for an image loaded without one (shown as `<none>`).
    #[serde(with = "opt_reference")]
    pub name: Option<Reference>,
    /// The manifest or index the name points at.
    pub target: Descriptor,
    /// When the record was written, RFC 3339.
    pub created: String,
}

mod opt_reference {
    use crate::reference::Reference;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(r: &Option<Reference>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => s.collect_str(r),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Reference>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| Reference::parse_named(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl ImageRecord {
    /// Digest of the record's target.
    pub fn target_digest(&self) -> Result<Digest, StoreError> {
        Ok(descriptor_digest(&self.target)?)
    }
}
impl Store {
    fn record_key(name: Option<&Reference>, target: &Digest) -> String {
        let key = match name {
            Some(r) => r.to_string(),
            None => format!("@{target}"),
        };
        Digest::sha256_of(key.as_bytes()).hex().to_string()
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("images").join(format!("{key}.json"))
    }

    /// Points `name` at `target` (replacing what it pointed at), or records an
    /// unnamed image when `name` is `None`. Atomic on its own; hold
    /// [`Store::lock_records`] when the write depends on records read before.
    pub fn put_image(
        &self,
        name: Option<&Reference>,
        target: &Descriptor,
    ) -> Result<ImageRecord, StoreError> {
        let digest = descriptor_digest(target)?;
        let record = ImageRecord {
            name: name.cloned(),
            target: target.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let path = self.record_path(&Self::record_key(name, &digest));
        let bytes = serde_json::to_vec_pretty(&record).map_err(|source| StoreError::Record {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)?;
        if name.is_some() {
            // A named record supersedes an unnamed one for the same target.
            let _ = fs::remove_file(self.record_path(&Self::record_key(None, &digest)));
        }
        Ok(record)
    }

    /// The record for `name`, if any.
    pub fn get_image(&self, name: &Reference) -> Result<Option<ImageRecord>, StoreError> {
        let path = self.record_path(&Self::record_key(Some(name), &Digest::sha256_of(b"")));
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Record { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every image record, sorted by name (unnamed ones last).
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let path = e.map_err(io_err("list", &dir))?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // Removed (by `rmi`) since the directory was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e)),
            };
            let rec: ImageRecord = serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Record { path, source })?;
            out.push(rec);
        }
        out.sort_by(|a, b| match (&a.name, &b.name) {
            (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.created.cmp(&b.created),
        });
        Ok(out)
    }

    /// Deletes the record of `record` (its name, or its unnamed entry).
    pub fn remove_image(&self, record: &ImageRecord) -> Result<(), StoreError> {
        let key = Self::record_key(record.name.as_ref(), &record.target_digest()?);
        let path = self.record_path(&key);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.root.join("images")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("root")).unwrap();
        (dir, s)
    }

    #[test]
    fn image_records_round_trip() {
        let (_d, s) = store();
        let (digest, size) = s.write_blob_bytes(b"{}").unwrap();
        let desc = manifest::descriptor(manifest::OCI_MANIFEST, &digest, size);
        let name = Reference::parse("busybox").unwrap();
        s.put_image(Some(&name), &desc).unwrap();
        let rec = s.get_image(&name).unwrap().unwrap();
        assert_eq!(rec.target_digest().unwrap(), digest);
        assert_eq!(s.list_images().unwrap().len(), 1);
        s.remove_image(&rec).unwrap();
        assert!(s.get_image(&name).unwrap().is_none());
        assert!(s.list_images().unwrap().is_empty());
    }

    #[test]
    fn a_name_supersedes_the_unnamed_record_of_its_target() {
        let (_d, s) = store();
        let (digest, size) = s.write_blob_bytes(b"{\"m\":1}").unwrap();
        let desc = manifest::descriptor(manifest::OCI_MANIFEST, &digest, size);
        s.put_image(None, &desc).unwrap();
        assert!(s.list_images().unwrap()[0].name.is_none());
        let name = Reference::parse("app:1").unwrap();
        s.put_image(Some(&name), &desc).unwrap();
        let all = s.list_images().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name.as_ref(), Some(&name));
    }

    #[test]
    fn listing_skips_files_that_are_not_records() {
        let (_d, s) = store();
        fs::write(s.root().join("images").join(".tmp-1-2-3"), b"partial").unwrap();
        assert!(s.list_images().unwrap().is_empty());
    }
}
