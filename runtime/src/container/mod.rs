//! Container lifecycle verbs over a state directory, one file per verb:
//! create, start, run, state, kill, delete, exec, pause/resume, update/events, ps, list.

mod create;
mod delete;
mod exec;
mod kill;
mod pause;
mod update;
pub use kill::parse_signal;
pub mod record;
mod run;
mod start;
mod state;

use std::path::{Path, PathBuf};

pub use create::CreateOptions;
pub use exec::ExecOptions;
pub use record::{Record, StateDir};
pub use state::{ContainerStatus, OciState};

use crate::bundle::BundleError;
use crate::cgroups::Cgroup;
use crate::process::spawn::SpawnError;

/// Why a lifecycle command failed. Messages follow runc's where tools match on
/// them (containerd treats "does not exist" as not-found).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No state for this id.
    #[error("container does not exist")]
    NotExist(String),
    /// The id is taken.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// The id has characters runc refuses.
    #[error("invalid id format: {0}")]
    InvalidId(String),
    /// The bundle is invalid.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The process's confinement (capabilities, rlimits, seccomp) is invalid.
    #[error(transparent)]
    Confine(#[from] crate::confine::ConfineError),
    /// A hook failed.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// Starting the init failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A command that needs another status.
    #[error("{0}")]
    WrongStatus(String),
    /// Unreadable state.
    #[error("state {0}: {1}")]
    Corrupt(PathBuf, serde_json::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A terminal request that cannot be honoured.
    #[error("{0}")]
    Console(String),
    /// The console socket could not be reached.
    #[error(transparent)]
    Tty(#[from] crate::tty::TtyError),
    /// A signal name or number that is not a signal.
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    /// Gave up waiting for the container to stop.
    #[error("container {0} did not stop within {1} seconds")]
    Timeout(String, u64),
}

impl ContainerError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ContainerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The runtime: lifecycle operations on containers whose state lives under one root.
#[derive(Debug, Clone)]
pub struct Runtime {
    dirs: StateDir,
}

impl Runtime {
    /// A runtime keeping state under `root` (runc's `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime {
            dirs: StateDir::new(root),
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &StateDir {
        &self.dirs
    }
}

/// The cgroup of a container, from its spec's `cgroupsPath` and its id.
fn cgroup_of(id: &str, spec: &oci_spec::runtime::Spec) -> Result<Cgroup, ContainerError> {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    Ok(Cgroup::open(path.as_deref(), id)?)
}
