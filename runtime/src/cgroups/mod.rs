//! Control groups for containers on cgroup v1 and v2 with the cgroupfs driver:
//! resolving `linux.cgroupsPath`, creating the group, writing resource limits,
//! adding processes, freezing, statistics and removal.
//!
//! Why our own manager rather than `libcgroups::{v1,v2}::manager::Manager`: those
//! managers find controllers by parsing the live `/proc/self/mountinfo` on every
//! open and cannot be pointed at another tree, so neither the path logic nor the
//! writes can be tested without root, and each open pays the mountinfo parse on
//! the lifecycle hot path. Their per-controller code is private to the crate. We
//! reuse what the crate exposes that fits: the statistics types
//! ([`libcgroups::stats::Stats`]), its file parsers and the freezer state enum.

mod path;
mod runc_format;
mod v1;
mod v2;

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

pub use libcgroups::common::FreezerState;
pub use libcgroups::stats::Stats;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
pub use runc_format::runc_stats_json;

/// Where the cgroup filesystems are mounted on a normal host.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Errors from resolving, configuring or removing a container's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// `linux.cgroupsPath` (or the container id used in its place) cannot name a cgroup.
    #[error("cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A systemd `slice:prefix:name` path was given to the cgroupfs driver.
    #[error("cgroups path {0:?} is in systemd slice:prefix:name form, but only the cgroupfs driver is supported")]
    SystemdPath(String),
    /// Neither a cgroup v2 root nor any v1 controller was found.
    #[error("no cgroup hierarchy found under {0}")]
    NoHierarchy(PathBuf),
    /// The spec asks for a limit of a controller that is not mounted.
    #[error("the spec sets {what}, but the {controller} cgroup controller is not available under {root}")]
    MissingController {
        /// Controller name, e.g. `hugetlb`.
        controller: &'static str,
        /// The resource that needs it.
        what: &'static str,
        /// The cgroup root searched.
        root: PathBuf,
    },
    /// A resource value is out of range or cannot be expressed on this cgroup version.
    #[error("cgroup resource {what}: {reason}")]
    InvalidResource {
        /// The resource, e.g. `cpu.shares`.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Creating a cgroup directory failed.
    #[error("create cgroup directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing a cgroup control file failed.
    #[error("write {value:?} to {path}: {source}")]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Reading a cgroup control file failed.
    #[error("read {path}: {source}")]
    Read {
        /// The control file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A control file held something we could not parse.
    #[error("parse {path}: unexpected content {content:?}")]
    Parse {
        /// The control file.
        path: PathBuf,
        /// The offending text.
        content: String,
    },
    /// The freezer did not settle in the requested state.
    #[error("cgroup {path} did not become {wanted} (still {state})")]
    Freeze {
        /// The freezer cgroup directory.
        path: PathBuf,
        /// The requested state.
        wanted: &'static str,
        /// The state last read.
        state: String,
    },
    /// The cgroup still holds processes, so its directory cannot be removed.
    #[error("remove cgroup {path}: it still has processes")]
    Busy {
        /// The directory.
        path: PathBuf,
    },
    /// Removing a cgroup directory failed for another reason.
    #[error("remove cgroup {path}: {source}")]
    Remove {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Which cgroup version a [`Cgroup`] lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller (also a "hybrid" host, whose v2 mount has no controllers).
    V1,
    /// The unified hierarchy.
    V2,
}

/// A container's cgroup: the same directories every time it is opened with the
/// same `cgroupsPath` and container id, so `create`, `update`, `pause` and
/// `delete` running as separate processes agree on it.
#[derive(Debug, Clone)]
pub struct Cgroup {
    layout: Layout,
}

#[derive(Debug, Clone)]
enum Layout {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    /// Resolves the cgroup for `linux.cgroupsPath` (absolute, or relative, or absent
    /// meaning the container id) under `/sys/fs/cgroup`, detecting v1 or v2.
    /// Nothing is created until [`Cgroup::create_and_apply`].
    pub fn open(cgroups_path: Option<&str>, container_id: &str) -> Result<Self, CgroupError> {
        Self::open_in(Path::new(DEFAULT_CGROUP_ROOT), cgroups_path, container_id)
    }

    /// As [`Cgroup::open`], with the cgroup filesystems mounted under `root`.
    pub fn open_in(
        root: &Path,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Self, CgroupError> {
        let inner = path::inner_path(cgroups_path, container_id)?;
        let layout = if v2::is_unified_root(root) {
            Layout::V2(v2::V2Cgroup::new(root, &inner))
        } else {
            Layout::V1(v1::V1Cgroup::new(root, &inner)?)
        };
        tracing::debug!(?layout, "resolved cgroup");
        Ok(Cgroup { layout })
    }

    /// The cgroup version in use.
    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1(_) => CgroupVersion::V1,
            Layout::V2(_) => CgroupVersion::V2,
        }
    }

    /// The directory of this cgroup for a v1 controller (`memory`, `pids`, ...), or the
    /// unified directory on v2 whatever the controller; `None` if not mounted.
    pub fn path(&self, controller: &str) -> Option<&Path> {
        match &self.layout {
            Layout::V1(c) => c.path(controller),
            Layout::V2(c) => Some(c.path()),
        }
    }

    /// Every directory of this cgroup with the name of its hierarchy's mount under
    /// the cgroup root (`memory`, `cpu,cpuacct`, `systemd`; `""` for the v2 tree):
    /// what a container's `cgroup` mount binds to `/sys/fs/cgroup/<name>`.
    pub fn hierarchies(&self) -> Vec<(String, PathBuf)> {
        match &self.layout {
            Layout::V1(c) => c.hierarchies(),
            Layout::V2(c) => vec![(String::new(), c.path().to_path_buf())],
        }
    }

    /// Creates the cgroup directories, writes the limits of `resources` and moves
    /// `pid` into the cgroup (limits first, so the process never runs unconfined).
    pub fn create_and_apply(
        &self,
        pid: Pid,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => {
                c.create()?;
                if let Some(r) = resources {
                    c.apply(r, true)?;
                }
                c.add_task(pid)
            }
            Layout::V2(c) => {
                c.create()?;
                if let Some(r) = resources {
                    c.apply(r, true)?;
                }
                c.add_task(pid)
            }
        }
    }

    /// Moves another process (e.g. one started by `exec`) into the existing cgroup.
    pub fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.add_task(pid),
            Layout::V2(c) => c.add_task(pid),
        }
    }

    /// Changes the limits of a running container (`update`); device rules are left as they are.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.apply(resources, false),
            Layout::V2(c) => c.apply(resources, false),
        }
    }

    /// Freezes every process of the cgroup and waits until the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.set_freezer(true),
            Layout::V2(c) => c.set_freezer(true),
        }
    }

    /// Thaws a frozen cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.set_freezer(false),
            Layout::V2(c) => c.set_freezer(false),
        }
    }

    /// Whether the cgroup is frozen (`Undefined` when there is no freezer).
    pub fn state(&self) -> Result<FreezerState, CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.freezer_state(),
            Layout::V2(c) => c.freezer_state(),
        }
    }

    /// The processes in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<Pid>, CgroupError> {
        let dir = match &self.layout {
            Layout::V1(c) => c.pids_dir(),
            Layout::V2(c) => Some(c.path()),
        };
        let mut pids = Vec::new();
        if let Some(dir) = dir {
            collect_pids(dir, &mut pids)?;
        }
        Ok(pids)
    }

    /// Resource usage for `events --stats`, in libcgroups' serialisable shape
    /// ([`runc_stats_json`] turns it into runc's layout).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.stats(),
            Layout::V2(c) => c.stats(),
        }
    }

    /// Names of this cgroup's direct sub-cgroups in any of its hierarchies (one may
    /// exist in some hierarchies only), sorted and without duplicates.
    pub fn child_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .hierarchies()
            .iter()
            .filter_map(|(_, dir)| sub_cgroups(dir).ok())
            .flatten()
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Removes the cgroup directories (and any sub-cgroups the container made).
    /// Fails with [`CgroupError::Busy`] while processes remain; missing directories are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(c) => c.remove(),
            Layout::V2(c) => remove_dir(c.path()),
        }
    }
}

/// Writes `value` to the existing control file `dir/file`.
fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}

/// Reads the control file `dir/file`, trimmed.
fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_owned()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Reads a control file holding one number (`max` counts as `u64::MAX`).
fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read_file(dir, file)?;
    if text == "max" {
        return Ok(u64::MAX);
    }
    text.parse().map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        content: text,
    })
}

/// Reads `key value` lines into pairs, skipping lines that are not two fields.
fn read_flat_keyed(dir: &Path, file: &str) -> Result<Vec<(String, u64)>, CgroupError> {
    let text = read_file(dir, file)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut it = line.split_ascii_whitespace();
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}

/// Creates `dir` and its missing parents, mode 0755 whatever the caller's umask (a
/// builder runs the runtime under umask 0): only root may make sub-cgroups or move
/// processes in.
fn create_dir(dir: &Path) -> Result<(), CgroupError> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| CgroupError::Create {
            path: dir.to_path_buf(),
            source,
        })
}

/// Adds the pids listed in `dir/cgroup.procs` and in every sub-cgroup to `out`.
fn collect_pids(dir: &Path, out: &mut Vec<Pid>) -> Result<(), CgroupError> {
    let procs = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            })
        }
    };
    for line in procs.lines().filter(|l| !l.trim().is_empty()) {
        let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            content: line.to_owned(),
        })?;
        out.push(Pid::from_raw(pid));
    }
    for sub in sub_cgroups(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

/// The child cgroup directories of `dir` (none if `dir` is gone).
fn sub_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut subs = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            subs.push(entry.path());
        }
    }
    Ok(subs)
}

/// Removes a cgroup directory bottom-up. rmdir of a cgroup whose last task just
/// exited can briefly fail with EBUSY, so it is retried with a growing delay (as runc does).
fn remove_dir(dir: &Path) -> Result<(), CgroupError> {
    for sub in sub_cgroups(dir)? {
        remove_dir(&sub)?;
    }
    let mut delay = Duration::from_millis(5);
    for attempt in 0..6 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 5 => {
                sleep(delay);
                delay *= 2;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(CgroupError::Busy {
                    path: dir.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(CgroupError::Busy {
        path: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests;
