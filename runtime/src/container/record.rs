//! The runtime's state directory (`--root`, default `/run/berth-runtime`):
//! one `<id>/` per container holding `state.json` and, until `start`, `exec.fifo`.

use std::collections::HashMap;
use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::ContainerError;

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Host pid of the init process.
    pub pid: i32,
    /// Start time of that pid (field 22 of /proc/<pid>/stat), to detect pid reuse.
    pub pid_start: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The spec's annotations.
    pub annotations: HashMap<String, String>,
    /// The spec the container was created from (hooks, cgroups path, process).
    pub config: Spec,
}

/// Checks a container id as runc does: letters, digits, `_+-.`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidId(id.to_string()))
    }
}

/// The state root directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Uses `root` (created on first `create`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where compiled seccomp programs are kept (`<root>/.seccomp`, owner-only; no
    /// container id starts with a dot).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join(".seccomp")
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the directory for a new container, failing if the id is taken.
    pub fn create(&self, id: &str) -> Result<PathBuf, ContainerError> {
        validate_id(id)?;
        // Owner-only, as runc's state dir: records name bundles and processes. One an older
        // berth-runtime left open is tightened.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .and_then(|()| std::fs::metadata(&self.root))
            .and_then(|meta| {
                let mode = meta.permissions().mode();
                if mode & 0o077 == 0 {
                    return Ok(());
                }
                std::fs::set_permissions(&self.root, Permissions::from_mode(mode & 0o7700))
            })
            .map_err(|e| ContainerError::io(&self.root, e))?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(ContainerError::Exists(id.to_string()))
            }
            Err(e) => Err(ContainerError::io(&dir, e)),
        }
    }

    /// Reads the record of container `id`.
    pub fn load(&self, id: &str) -> Result<Record, ContainerError> {
        validate_id(id)?;
        let path = self.dir(id).join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotExist(id.to_string()))
            }
            Err(e) => return Err(ContainerError::io(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ContainerError::Corrupt(path, e))
    }

    /// Writes the record atomically (temp file + rename).
    pub fn save(&self, record: &Record) -> Result<(), ContainerError> {
        let dir = self.dir(&record.id);
        let tmp = dir.join("state.json.tmp");
        let path = dir.join("state.json");
        let data =
            serde_json::to_vec(record).map_err(|e| ContainerError::Corrupt(path.clone(), e))?;
        // Owner-only: the record names the bundle and the container's process.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| ContainerError::io(&tmp, e))?;
        f.write_all(&data)
            .map_err(|e| ContainerError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| ContainerError::io(&path, e))
    }

    /// Removes the directory of container `id`.
    pub fn remove(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ContainerError::io(&dir, e)),
            _ => Ok(()),
        }
    }

    /// Ids of all containers with a state file, sorted.
    pub fn ids(&self) -> Result<Vec<String>, ContainerError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ContainerError::io(&self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// What /proc says about a pid: None when gone, else (state char, start time).
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// True while `pid` is the same live (non-zombie) process that started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    matches!(proc_stat(pid), Some((s, st)) if st == start && s != 'Z' && s != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rules() {
        assert!(validate_id("web-1_a.b+c").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
    }

    #[test]
    fn our_own_process_is_alive() {
        let pid = std::process::id() as i32;
        let (_, start) = proc_stat(pid).unwrap();
        assert!(alive(pid, start));
        assert!(!alive(pid, start + 1));
    }

    #[test]
    fn records_round_trip_and_ids_are_unique() {
        let root = std::env::temp_dir().join(format!("berth-state-{}", std::process::id()));
        let dirs = StateDir::new(&root);
        dirs.create("c1").unwrap();
        assert!(matches!(dirs.create("c1"), Err(ContainerError::Exists(_))));
        assert!(matches!(dirs.load("c2"), Err(ContainerError::NotExist(_))));
        let rec = Record {
            id: "c1".into(),
            pid: 7,
            pid_start: 9,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            annotations: HashMap::new(),
            config: Spec::default(),
        };
        dirs.save(&rec).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700, "the state dir is owner-only");
        assert_eq!(mode(&root.join("c1/state.json")), 0o600);
        std::fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        dirs.create("c3").unwrap();
        assert_eq!(mode(&root), 0o700, "an open state dir is tightened");
        assert_eq!(dirs.load("c1").unwrap().pid, 7);
        assert_eq!(dirs.ids().unwrap(), vec!["c1".to_string()]);
        dirs.remove("c1").unwrap();
        std::fs::remove_dir_all(root).unwrap();
    }
}
