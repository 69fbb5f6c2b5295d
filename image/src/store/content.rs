//! Blobs: content addressed by digest, written through resumable ingests and
//! renamed into `blobs/` once verified (containerd's content store).
//!
//! Each ingest is held by one writer at a time through its lock file
//! (`ingest/<alg>-<hex>.lock`): a second writer of the same digest waits,
//! then finds the blob committed (or the partial data to resume from).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use oci_spec::image::Descriptor;
use tracing::{debug, info_span};

use super::lock::PathLock;
use super::{io_err, sync_dir, unique_suffix, Store, StoreError};
use crate::digest::{Algorithm, Digest, DigestError, Hasher, HashingWriter, VerifyingReader};
use crate::manifest;

/// Buffer between blob writers and their files: large writes, few syscalls.
const WRITE_BUFFER: usize = 1 << 20;

/// An in-progress blob write in `$ROOT/ingest/`, resumable by digest, held
/// by this writer alone until it is committed, aborted or dropped.
///
/// Write the remaining bytes (from [`Ingest::offset`]) and call
/// [`Ingest::commit`]; dropping it without committing leaves the partial data
/// for a later resume (or for `gc` to discard).
pub struct Ingest {
    dir: PathBuf,
    blob: PathBuf,
    expected: Digest,
    expected_size: Option<u64>,
    writer: HashingWriter<io::BufWriter<File>>,
    offset: u64,
    lock: PathLock,
}

impl Ingest {
    /// Bytes already present when the ingest was opened (where to resume from).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes written in total, including the resumed part.
    pub fn written(&self) -> u64 {
        self.writer.count()
    }

    /// The digest this ingest must produce.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Verifies digest and size, syncs, and renames the data into `blobs/`.
    /// On mismatch the partial data is discarded and an error returned.
    pub fn commit(self) -> Result<u64, StoreError> {
        let Ingest {
            dir,
            blob,
            expected,
            expected_size,
            writer,
            lock,
            ..
        } = self;
        let (buffered, actual, size) = writer.finish();
        let data = dir.join("data");
        let mut file = buffered
            .into_inner()
            .map_err(|e| io_err("write", &data)(e.into_error()))?;
        let mismatch = if actual != expected {
            Some(DigestError::Mismatch {
                expected: expected.clone(),
                actual,
            })
        } else {
            match expected_size {
                Some(want) if want != size => Some(DigestError::SizeMismatch {
                    digest: expected.clone(),
                    expected: want,
                    actual: size,
                }),
                _ => None,
            }
        };
        if let Some(source) = mismatch {
            drop(file);
            let _ = fs::remove_dir_all(&dir);
            return Err(StoreError::Verify {
                digest: expected,
                source,
            });
        }
        file.flush().map_err(io_err("flush", &data))?;
        file.sync_all().map_err(io_err("fsync", &data))?;
        drop(file);
        if let Some(parent) = blob.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::rename(&data, &blob).map_err(io_err("rename into place", &blob))?;
        if let Some(parent) = blob.parent() {
            sync_dir(parent)?;
        }
        let _ = fs::remove_dir_all(&dir);
        drop(lock);
        debug!(digest = %expected, size, "blob committed");
        Ok(size)
    }

    /// Throws the partial data away and starts again from byte 0, still
    /// holding the ingest (for a source that cannot resume).
    pub fn restart(self) -> Result<Ingest, StoreError> {
        let Ingest {
            dir,
            blob,
            expected,
            expected_size,
            writer,
            lock,
            ..
        } = self;
        let data = dir.join("data");
        // Buffered bytes are dropped unwritten: they go with the rest.
        let (mut file, _) = writer.finish().0.into_parts();
        file.set_len(0).map_err(io_err("truncate", &data))?;
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &data))?;
        Ok(Ingest {
            writer: HashingWriter::new(
                io::BufWriter::with_capacity(WRITE_BUFFER, file),
                expected.algorithm(),
            ),
            dir,
            blob,
            expected,
            expected_size,
            offset: 0,
            lock,
        })
    }

    /// Throws the partial data away.
    pub fn abort(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(size) = self.expected_size {
            if self.writer.count() + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DigestError::SizeMismatch {
                        digest: self.expected.clone(),
                        expected: size,
                        actual: self.writer.count() + buf.len() as u64,
                    },
                ));
            }
        }
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Store {
    /// Path of a blob's file (which may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Whether a blob is present (not verified; see [`Store::verify_blob`]).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let p = self.blob_path(digest);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens a blob for reading; the reader fails at end of file if the content
    /// no longer matches its digest.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifyingReader<File>, StoreError> {
        let p = self.blob_path(digest);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => return Err(io_err("open", &p)(e)),
        };
        let size = f.metadata().map_err(io_err("stat", &p))?.len();
        Ok(VerifyingReader::new(f, digest.clone(), Some(size)))
    }

    /// Opens a blob without verification, for callers that verify themselves
    /// (or copy it to a sink that does).
    pub fn open_blob_unverified(&self, digest: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(digest);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobNotFound(digest.clone())
            } else {
                io_err("open", &p)(e)
            }
        })
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(digest);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => return Err(io_err("read", &p)(e)),
        };
        digest.verify(&bytes).map_err(|source| StoreError::Verify {
            digest: digest.clone(),
            source,
        })?;
        Ok(bytes)
    }

    /// Re-hashes a stored blob and reports a mismatch.
    pub fn verify_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let mut r = self.open_blob(digest)?;
        io::copy(&mut r, &mut io::sink()).map_err(|e| match e.into_inner() {
            Some(inner) => match inner.downcast::<DigestError>() {
                Ok(source) => StoreError::Verify {
                    digest: digest.clone(),
                    source: *source,
                },
                Err(other) => io_err("read", &self.blob_path(digest))(io::Error::other(other)),
            },
            None => io_err("read", &self.blob_path(digest))(io::Error::other("read failed")),
        })?;
        Ok(())
    }

    /// Starts (or resumes) writing the blob `expected`, or returns `None`
    /// when the blob is in the store. Waits while another writer holds the
    /// same ingest (and so returns `None` when that writer committed it). If
    /// partial data from an earlier attempt exists it is re-hashed and
    /// [`Ingest::offset`] says where to continue.
    pub fn ingest(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Option<Ingest>, StoreError> {
        let name = format!("{}-{}", expected.algorithm(), expected.hex());
        let lock_path = self.root.join("ingest").join(format!("{name}.lock"));
        let lock = PathLock::acquire(lock_path.clone()).map_err(io_err("lock", &lock_path))?;
        if self.has_blob(expected) {
            return Ok(None);
        }
        let dir = self.root.join("ingest").join(name);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data)
            .map_err(io_err("open", &data))?;
        let mut hasher = Hasher::new(expected.algorithm());
        let mut offset = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &data))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        if expected_size.is_some_and(|s| offset > s) {
            file.set_len(0).map_err(io_err("truncate", &data))?;
            hasher = Hasher::new(expected.algorithm());
            offset = 0;
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", &data))?;
        if offset > 0 {
            debug!(digest = %expected, offset, "resuming ingest");
        }
        Ok(Some(Ingest {
            blob: self.blob_path(expected),
            dir,
            expected: expected.clone(),
            expected_size,
            writer: HashingWriter::resume(
                io::BufWriter::with_capacity(WRITE_BUFFER, file),
                hasher,
                offset,
            ),
            offset,
            lock,
        }))
    }

    /// Writes a blob from a reader. With `expected`, the content must match it
    /// (an existing blob is kept and the reader is not consumed); without,
    /// the digest is computed. Returns the digest and size.
    pub fn write_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        if let Some(d) = expected {
            if self.has_blob(d) {
                return Ok((d.clone(), self.blob_size(d)?));
            }
            let span = info_span!("ingest", digest = %d);
            let _g = span.enter();
            let Some(mut ing) = self.ingest(d, None)? else {
                // Another writer stored it while this one waited.
                return Ok((d.clone(), self.blob_size(d)?));
            };
            if ing.offset() > 0 {
                // The reader starts at byte 0: start the ingest over.
                ing = ing.restart()?;
            }
            let data = ing.dir.join("data");
            io::copy(&mut reader, &mut ing).map_err(io_err("write", &data))?;
            let size = ing.commit()?;
            return Ok((d.clone(), size));
        }
        let name = format!("tmp-{}", unique_suffix());
        let lock_path = self.root.join("ingest").join(format!("{name}.lock"));
        let _lock = PathLock::acquire(lock_path.clone()).map_err(io_err("lock", &lock_path))?;
        let dir = self.root.join("ingest").join(name);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let result = (|| {
            let f = File::create(&data).map_err(io_err("create", &data))?;
            let mut w = HashingWriter::new(
                io::BufWriter::with_capacity(WRITE_BUFFER, f),
                Algorithm::Sha256,
            );
            io::copy(&mut reader, &mut w).map_err(io_err("write", &data))?;
            let (buffered, digest, size) = w.finish();
            let f = buffered
                .into_inner()
                .map_err(|e| io_err("write", &data)(e.into_error()))?;
            f.sync_all().map_err(io_err("fsync", &data))?;
            drop(f);
            let blob = self.blob_path(&digest);
            if !blob.exists() {
                fs::rename(&data, &blob).map_err(io_err("rename into place", &blob))?;
                if let Some(parent) = blob.parent() {
                    sync_dir(parent)?;
                }
            }
            Ok((digest, size))
        })();
        let _ = fs::remove_dir_all(&dir);
        result
    }

    /// Stores a small blob held in memory.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::sha256_of(bytes);
        self.write_blob(bytes, Some(&digest))
    }

    /// Stores an image config and the OCI manifest listing it and `layers`
    /// (media type, digest, size), and returns the config digest (the image id)
    /// and the manifest's descriptor, ready for [`Store::put_image`].
    pub fn write_oci_image(
        &self,
        config: &serde_json::Value,
        layers: &[(&str, &Digest, u64)],
    ) -> Result<(Digest, Descriptor), StoreError> {
        // A Value's Display is its compact JSON, the bytes serde_json::to_vec gives.
        let (config_digest, config_size) = self.write_blob_bytes(config.to_string().as_bytes())?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": manifest::OCI_CONFIG,
                "digest": config_digest.to_string(),
                "size": config_size,
            },
            "layers": layers.iter().map(|(media_type, digest, size)| serde_json::json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": size,
            })).collect::<Vec<_>>(),
        });
        let (manifest_digest, manifest_size) =
            self.write_blob_bytes(manifest.to_string().as_bytes())?;
        let target = manifest::descriptor(manifest::OCI_MANIFEST, &manifest_digest, manifest_size);
        Ok((config_digest, target))
    }

    /// Removes a blob (gc only: callers hold the gc lock, see [`Store::lock_gc`]).
    pub fn remove_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// All blobs in the store. Files whose names are not valid digests are
    /// reported by [`Store::stray_blob_files`] instead.
    pub fn list_blobs(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for e in entries {
                let e = e.map_err(io_err("list", &dir))?;
                if let Some(name) = e.file_name().to_str() {
                    if let Ok(d) = Digest::new(alg, name) {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Files under `blobs/` whose names are not digests (left by something else).
    pub fn stray_blob_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        let dir = self.root.join("blobs").join("sha256");
        let entries = fs::read_dir(&dir).map_err(io_err("list", &dir))?;
        for e in entries {
            let e = e.map_err(io_err("list", &dir))?;
            let ok = e
                .file_name()
                .to_str()
                .is_some_and(|n| Digest::new(Algorithm::Sha256, n).is_ok());
            if !ok {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    /// Ingest directories: writes in progress, or left by interrupted ones.
    pub fn list_ingests(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join("ingest");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let e = e.map_err(io_err("list", &dir))?;
            if e.file_type().map_err(io_err("stat", &e.path()))?.is_dir() {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    /// Removes the ingest directories no writer holds (for gc), and the lock
    /// files that killed writers left. Returns how many directories went.
    pub fn clear_ingests(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        for p in self.list_ingests()? {
            let mut lock_name = p.file_name().unwrap_or_default().to_os_string();
            lock_name.push(".lock");
            let lock_path = p.with_file_name(lock_name);
            let held =
                PathLock::try_acquire(lock_path.clone()).map_err(io_err("lock", &lock_path))?;
            if held.is_none() {
                debug!(ingest = %p.display(), "ingest in progress: kept");
                continue;
            }
            fs::remove_dir_all(&p).map_err(io_err("remove", &p))?;
            removed += 1;
        }
        let dir = self.root.join("ingest");
        for e in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let p = e.map_err(io_err("list", &dir))?.path();
            if p.extension().is_some_and(|x| x == "lock") {
                // Taken only if free, and removed when dropped.
                drop(PathLock::try_acquire(p.clone()).map_err(io_err("lock", &p))?);
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("root")).unwrap();
        (dir, s)
    }

    #[test]
    fn writes_and_reads_blobs() {
        let (_d, s) = store();
        let (digest, size) = s.write_blob(&b"hello"[..], None).unwrap();
        assert_eq!(size, 5);
        assert_eq!(digest, Digest::sha256_of(b"hello"));
        assert!(s.has_blob(&digest));
        assert_eq!(s.read_blob(&digest).unwrap(), b"hello");
        assert_eq!(s.list_blobs().unwrap(), vec![digest.clone()]);
        assert!(s.list_ingests().unwrap().is_empty());
        assert_eq!(fs::read_dir(s.root().join("ingest")).unwrap().count(), 0);
        s.verify_blob(&digest).unwrap();
    }

    #[test]
    fn rejects_content_with_the_wrong_digest() {
        let (_d, s) = store();
        let want = Digest::sha256_of(b"good");
        let err = s.write_blob(&b"evil"[..], Some(&want)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Verify {
                    source: DigestError::Mismatch { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!s.has_blob(&want));
        assert!(s.list_ingests().unwrap().is_empty());
    }

    #[test]
    fn ingest_resumes_from_offset() {
        let (_d, s) = store();
        let data = b"0123456789abcdef";
        let want = Digest::sha256_of(data);
        let mut ing = s.ingest(&want, Some(16)).unwrap().unwrap();
        ing.write_all(&data[..6]).unwrap();
        drop(ing);
        let mut ing = s.ingest(&want, Some(16)).unwrap().unwrap();
        assert_eq!(ing.offset(), 6);
        ing.write_all(&data[6..]).unwrap();
        assert_eq!(ing.commit().unwrap(), 16);
        assert_eq!(s.read_blob(&want).unwrap(), data);
        assert!(s.ingest(&want, Some(16)).unwrap().is_none());
    }

    #[test]
    fn restart_discards_what_was_written() {
        let (_d, s) = store();
        let data = b"the real content";
        let want = Digest::sha256_of(data);
        let mut ing = s.ingest(&want, None).unwrap().unwrap();
        ing.write_all(b"garbage").unwrap();
        let mut ing = ing.restart().unwrap();
        assert_eq!(ing.written(), 0);
        ing.write_all(data).unwrap();
        ing.commit().unwrap();
        assert_eq!(s.read_blob(&want).unwrap(), data);
    }

    #[test]
    fn ingest_refuses_bytes_past_expected_size() {
        let (_d, s) = store();
        let want = Digest::sha256_of(b"abc");
        let mut ing = s.ingest(&want, Some(3)).unwrap().unwrap();
        assert!(ing.write_all(b"abcd").is_err());
        ing.abort();
    }

    #[test]
    fn a_second_writer_of_the_same_blob_waits_and_finds_it_stored() {
        let (_d, s) = store();
        let data = b"written once";
        let want = Digest::sha256_of(data);
        let mut first = s.ingest(&want, None).unwrap().unwrap();
        let (tx, rx) = mpsc::channel();
        let (s2, want2) = (s.clone(), want.clone());
        let second = std::thread::spawn(move || {
            let got = s2.ingest(&want2, None).unwrap();
            tx.send(got.is_none()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the second writer did not wait"
        );
        first.write_all(data).unwrap();
        first.commit().unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        second.join().unwrap();
        // Unrelated blobs are written meanwhile without waiting.
        let _held = s.ingest(&want, None).unwrap();
        s.write_blob_bytes(b"other").unwrap();
    }

    #[test]
    fn gc_clears_only_ingests_nobody_holds() {
        let (_d, s) = store();
        let busy = Digest::sha256_of(b"busy");
        let left = Digest::sha256_of(b"left");
        let mut held = s.ingest(&busy, None).unwrap().unwrap();
        held.write_all(b"bu").unwrap();
        held.flush().unwrap();
        let mut dropped = s.ingest(&left, None).unwrap().unwrap();
        dropped.write_all(b"le").unwrap();
        drop(dropped);
        assert_eq!(s.list_ingests().unwrap().len(), 2);
        assert_eq!(s.clear_ingests().unwrap(), 1);
        assert_eq!(s.list_ingests().unwrap().len(), 1);
        held.write_all(b"sy").unwrap();
        held.commit().unwrap();
        assert!(s.has_blob(&busy));
    }

    #[test]
    fn detects_corruption_on_read() {
        let (_d, s) = store();
        let (digest, _) = s.write_blob_bytes(b"payload").unwrap();
        fs::write(s.blob_path(&digest), b"pAyload").unwrap();
        let err = s.verify_blob(&digest).unwrap_err().to_string();
        assert!(err.contains(&digest.to_string()), "{err}");
        assert!(s.read_blob(&digest).is_err());
    }
}
