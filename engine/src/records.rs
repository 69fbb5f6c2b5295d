//! Per-record directories, one per container or pod: `$ROOT/<kind>/<id>/`, named by a
//! 64-hex-digit id and holding the record file (`config.json`, `pod.json`) whose presence
//! says the id exists, beside whatever else its owner keeps there. Records are owner-only
//! JSON written whole; a directory is removed whole.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A record that could not be found, read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// No record with this id.
    #[error("no such record: {0}")]
    NotFound(String),
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record is not valid JSON (or a value could not be made into JSON).
    #[error("{}: corrupt: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// The record directories of one kind: `<root>/<kind>/<id>/<record>`.
#[derive(Debug, Clone)]
pub(crate) struct RecordDirs {
    parent: PathBuf,
    record: &'static str,
}

impl RecordDirs {
    /// The `kind` directories (`containers`, `pods`) under store root `root`, each known by
    /// its `record` file.
    pub(crate) fn new(root: &Path, kind: &str, record: &'static str) -> Self {
        RecordDirs {
            parent: root.join(kind),
            record,
        }
    }

    /// The directory of `id`.
    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.parent.join(id)
    }

    /// The record file of `id`.
    pub(crate) fn record_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(self.record)
    }

    /// Whether `id` is an id and has its record written (an id whose creation is still under
    /// way, or was cut short, has none).
    pub(crate) fn has_record(&self, id: &str) -> bool {
        is_id(id) && self.record_path(id).exists()
    }

    /// The ids that have a record, sorted.
    pub(crate) fn ids(&self) -> Result<Vec<String>, RecordError> {
        let io = |source| RecordError::Io {
            path: self.parent.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&self.parent) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io)?;
            if let Some(name) = entry.file_name().to_str() {
                if self.has_record(name) {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Reads `id`'s record; [`RecordError::NotFound`] when it has none.
    pub(crate) fn read<T: DeserializeOwned>(&self, id: &str) -> Result<T, RecordError> {
        let path = self.record_path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(RecordError::NotFound(id.to_string()))
            }
            Err(source) => return Err(RecordError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt { path, source })
    }

    /// Makes `id`'s directory with the subdirectories `subdirs` (the record is written after,
    /// with [`RecordDirs::write`], when all else is in place).
    pub(crate) fn create(&self, id: &str, subdirs: &[&str]) -> Result<PathBuf, RecordError> {
        let dir = self.dir(id);
        let make = |p: PathBuf| {
            std::fs::create_dir_all(&p).map_err(|source| RecordError::Io { path: p, source })
        };
        make(dir.clone())?;
        for sub in subdirs {
            make(dir.join(sub))?;
        }
        Ok(dir)
    }

    /// Writes `id`'s record.
    pub(crate) fn write<T: Serialize>(&self, id: &str, value: &T) -> Result<(), RecordError> {
        write_json(&self.record_path(id), value)
    }

    /// Removes `id`'s directory and all in it; one already gone is not an error.
    pub(crate) fn remove(&self, id: &str) -> Result<(), RecordError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RecordError::Io { path: dir, source }),
        }
    }
}

/// Writes `value` as pretty JSON to `path`, owner-only (records carry what their containers
/// were given: environment, passwords, tokens) and whole (written aside, then renamed).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RecordError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| RecordError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    berth_image::perms::write_private(path, &bytes).map_err(|source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether `s` is a full id: 64 hex digits.
pub(crate) fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn records_round_trip_and_list_only_written_ids() {
        let root = tempfile::tempdir().unwrap();
        let dirs = RecordDirs::new(root.path(), "things", "thing.json");
        assert!(dirs.ids().unwrap().is_empty(), "no parent yet");
        let (a, b, c) = (id('b'), id('a'), id('c'));
        for id in [&a, &b] {
            let dir = dirs.create(id, &["etc", "bundle"]).unwrap();
            assert_eq!(dir, root.path().join("things").join(id));
            assert!(dir.join("etc").is_dir() && dir.join("bundle").is_dir());
            dirs.write(id, &vec![id.clone()]).unwrap();
        }
        // A directory with no record yet, and entries that are not ids, are not listed.
        dirs.create(&c, &[]).unwrap();
        std::fs::create_dir(root.path().join("things/not-an-id")).unwrap();
        assert_eq!(dirs.ids().unwrap(), vec![b.clone(), a.clone()]);
        assert!(dirs.has_record(&a) && !dirs.has_record(&c) && !dirs.has_record("x"));
        assert_eq!(dirs.read::<Vec<String>>(&a).unwrap(), vec![a.clone()]);
        let mode = std::fs::metadata(dirs.record_path(&a))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    }

    #[test]
    fn missing_corrupt_and_removed_records() {
        let root = tempfile::tempdir().unwrap();
        let dirs = RecordDirs::new(root.path(), "things", "thing.json");
        let a = id('a');
        assert!(matches!(
            dirs.read::<u32>(&a),
            Err(RecordError::NotFound(got)) if got == a
        ));
        dirs.create(&a, &[]).unwrap();
        std::fs::write(dirs.record_path(&a), b"{not json").unwrap();
        let err = dirs.read::<u32>(&a).unwrap_err();
        assert!(matches!(err, RecordError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("thing.json: corrupt"), "{err}");
        dirs.remove(&a).unwrap();
        assert!(!dirs.dir(&a).exists());
        dirs.remove(&a).unwrap();
    }

    #[test]
    fn ids_are_64_hex_digits() {
        assert!(is_id(&id('f')));
        assert!(!is_id(&id('g')));
        assert!(!is_id("abc"));
    }
}
