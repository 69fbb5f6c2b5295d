//! Volumes: directories berth manages under `$ROOT/volumes/<name>/` (`_data/` is what is
//! mounted, `volume.json` the record: name, creation time, labels, whether it is anonymous and
//! for which container it was made), and the [`MountRequest`]s of `berth run` (`-v`,
//! `--mount`, `--tmpfs`) parsed by [`request`].
//!
//! A volume is made in a temporary directory and renamed into place, so it is either there
//! whole or not at all, and two containers creating the same named volume at once both get
//! the one that won. This module knows nothing of containers: which ones use a volume, and
//! removal that refuses a volume in use, are in `container::mounts`.

pub mod filter;
mod populate;
pub mod request;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use filter::{FilterError, VolumeFilter};
pub use request::{MountKind, MountRequest, MountSpecError, Propagation};

/// The only volume driver berth has (Docker's default).
pub const DRIVER: &str = "local";

/// Errors from creating, reading or removing volumes.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// No volume has this name.
    #[error("no such volume: {0}")]
    NotFound(String),
    /// The name has characters Docker refuses.
    #[error("invalid volume name {0:?}: use at least two letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidName(String),
    /// A label is not `KEY=value` or `KEY`.
    #[error("invalid volume label {0:?}: the key is empty")]
    InvalidLabel(String),
    /// Containers still use the volume.
    #[error("volume {name} is in use by container {}", users.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers (names) using it.
        users: Vec<String>,
    },
    /// A file operation failed.
    #[error("volume {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A volume record is not valid JSON.
    #[error("volume record {path}: corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Copying the image's content into a new volume failed.
    #[error("populating volume {name} from the image's {path}: {reason}")]
    Populate {
        /// The volume.
        name: String,
        /// The path in the image.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A volume's record (`volume.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name: given, or 64 hex digits for an anonymous volume.
    pub name: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// `--label` values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for a container's `-v /dst` or its image's `VOLUME`, not by name.
    #[serde(default)]
    pub anonymous: bool,
    /// The container an anonymous volume was made for (removed with it by `rm -v`, or when
    /// that container's creation fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// The volumes of one store root.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

impl Volumes {
    /// The volumes kept under store root `root` (in `root/volumes`).
    pub fn new(root: &Path) -> Self {
        Volumes {
            dir: root.join("volumes"),
        }
    }

    /// The directory of volume `name` (its record and `_data`).
    pub fn dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// What is mounted for volume `name`: `$ROOT/volumes/<name>/_data`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir(name).join("_data")
    }

    /// Takes the volumes lock: shared while a container is being created with volumes (so
    /// no volume it uses disappears before it is recorded), exclusive to remove volumes.
    pub fn lock(&self, exclusive: bool) -> Result<fs::File, VolumeError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let locked = if exclusive {
            fs2::FileExt::lock_exclusive(&file)
        } else {
            fs2::FileExt::lock_shared(&file)
        };
        locked.map_err(io_err(&path))?;
        Ok(file)
    }

    /// Reads volume `name`'s record.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        let path = self.dir(name).join("volume.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| VolumeError::Corrupt { path, source })
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !valid_name(&name) {
                continue; // .lock, .tmp-*
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                // Removed while we list.
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates volume `name` with `labels`; an existing volume of that name is returned as
    /// it is (Docker's `volume create` and first use by `-v NAME:/dst` both do this).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        if !valid_name(name) {
            return Err(VolumeError::InvalidName(name.to_string()));
        }
        self.make(Volume {
            name: name.to_string(),
            created: now(),
            labels,
            anonymous: false,
            container: None,
        })
    }

    /// Creates an anonymous volume (a random 64-hex name) for container `container`.
    pub fn create_anonymous(&self, container: &str) -> Result<Volume, VolumeError> {
        self.make(Volume {
            name: random_name(),
            created: now(),
            labels: BTreeMap::new(),
            anonymous: true,
            container: Some(container.to_string()),
        })
    }

    /// Makes `record`'s volume in a temp dir and renames it into place; if the name exists
    /// by then, the existing volume wins.
    fn make(&self, record: Volume) -> Result<Volume, VolumeError> {
        match self.get(&record.name) {
            Ok(existing) => return Ok(existing),
            Err(VolumeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let tmp = self
            .dir
            .join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
        let dest = self.dir(&record.name);
        let placed = write_record(&tmp, &record).and_then(|()| {
            fs::rename(&tmp, &dest).or_else(|e| {
                if dest.join("volume.json").exists() {
                    tracing::debug!(volume = %record.name, error = %e, "created concurrently");
                    Ok(())
                } else {
                    Err(io_err(&dest)(e))
                }
            })
        });
        // Gone after a successful rename; left over when someone else's volume won.
        let _ = fs::remove_dir_all(&tmp);
        placed?;
        let made = self.get(&record.name)?;
        if made == record {
            tracing::info!(volume = %record.name, "volume created");
        }
        Ok(made)
    }

    /// Removes volume `name` and its data, whoever uses it: callers check that first.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let dir = self.dir(name);
        // Renamed away first, so the volume is gone at once even if deleting its data fails.
        let doomed = self.dir.join(format!(
            ".tmp-rm-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
        fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?;
        tracing::info!(volume = name, "volume removed");
        Ok(())
    }

    /// Copies the image's content at `source` (a directory inside a container's rootfs) into
    /// volume `name` when the volume is empty, keeping owners, modes, times and symlinks, as
    /// Docker does the first time a volume is mounted over a non-empty image path.
    /// Two containers populating the same new volume at once take turns (a lock on its
    /// record), so the second finds it filled.
    pub fn populate(&self, name: &str, source: &Path, image_path: &str) -> Result<(), VolumeError> {
        let record = self.dir(name).join("volume.json");
        let file = fs::File::open(&record).map_err(io_err(&record))?;
        fs2::FileExt::lock_exclusive(&file).map_err(io_err(&record))?;
        populate::populate_if_empty(&self.mountpoint(name), source).map_err(|e| {
            VolumeError::Populate {
                name: name.to_string(),
                path: image_path.to_string(),
                reason: e.to_string(),
            }
        })
    }
}

/// Writes a volume's `_data/` and `volume.json` into the fresh directory `dir`.
fn write_record(dir: &Path, record: &Volume) -> Result<(), VolumeError> {
    let data = dir.join("_data");
    fs::create_dir_all(&data).map_err(io_err(&data))?;
    let path = dir.join("volume.json");
    let bytes = serde_json::to_vec_pretty(record).map_err(|source| VolumeError::Corrupt {
        path: path.clone(),
        source,
    })?;
    fs::write(&path, bytes).map_err(io_err(&path))
}

/// Now, as Docker records a volume's creation: RFC 3339 to the second.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A random volume name: 64 hex digits, as Docker gives unnamed volumes.
pub fn random_name() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    crate::container::valid_name(name)
}

/// Parses `--label KEY=value` (or `KEY`, an empty value) into a map.
pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, VolumeError> {
    let mut out = BTreeMap::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            return Err(VolumeError::InvalidLabel(l.clone()));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_idempotent_and_listed() {
        let root = tempfile::tempdir().unwrap();
        let v = Volumes::new(root.path());
        let labels = parse_labels(&["a=b".into(), "c".into()]).unwrap();
        let made = v.create("data", labels.clone()).unwrap();
        assert_eq!(made.labels, labels);
        assert!(v.mountpoint("data").is_dir());
        let again = v.create("data", BTreeMap::new()).unwrap();
        assert_eq!(again, made);
        let anon = v.create_anonymous("c1").unwrap();
        assert!(anon.anonymous);
        let names: Vec<_> = v.list().unwrap().into_iter().map(|v| v.name).collect();
        let mut want = vec!["data".to_string(), anon.name.clone()];
        want.sort();
        assert_eq!(names, want);
        v.remove("data").unwrap();
        assert!(matches!(v.get("data"), Err(VolumeError::NotFound(_))));
        assert!(!v.dir("data").exists());
    }

    #[test]
    fn concurrent_first_uses_populate_once() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("image-dir");
        std::fs::create_dir_all(&src).unwrap();
        for i in 0..500 {
            std::fs::write(src.join(format!("f{i}")), "x").unwrap();
        }
        let v = Volumes::new(&root.path().join("store"));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (v, src) = (v.clone(), src.clone());
                std::thread::spawn(move || {
                    v.create("shared", BTreeMap::new())?;
                    v.populate("shared", &src, "/data")?;
                    // Whoever returns first or last finds the volume whole, never half-copied.
                    Ok::<_, VolumeError>(fs::read_dir(v.mountpoint("shared")).unwrap().count())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), 500);
        }
    }

    #[test]
    fn bad_names_and_labels_make_nothing() {
        let root = tempfile::tempdir().unwrap();
        let v = Volumes::new(root.path());
        for bad in ["a", "../x", "a/b", "-x", ""] {
            assert!(matches!(
                v.create(bad, BTreeMap::new()),
                Err(VolumeError::InvalidName(_))
            ));
        }
        assert!(parse_labels(&["=x".into()]).is_err());
        assert!(v.list().unwrap().is_empty());
        assert!(matches!(v.remove("nope"), Err(VolumeError::NotFound(_))));
    }
}
