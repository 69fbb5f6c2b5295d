//! Process confinement applied by the container's init just before `execve`:
//! rlimits, user and groups, the five capability sets, `no_new_privs` and a
//! seccomp filter compiled from the spec.
//!
//! The order follows runc's init: rlimits; `no_new_privs`; the seccomp filter
//! when `noNewPrivileges` is off (loading it then needs `CAP_SYS_ADMIN`, so it
//! goes before capabilities are dropped); the bounding set; groups, gid and uid
//! with `PR_SET_KEEPCAPS` so the permitted set survives the switch; effective,
//! permitted, inheritable and ambient sets; and with `noNewPrivileges` the
//! seccomp filter last, so as few syscalls as possible run under it.
//! umask and `oomScoreAdj` are the caller's (init and parent respectively).

mod capabilities;
mod rlimits;
mod seccomp;
mod user;

use std::path::Path;

use oci_spec::runtime::{LinuxSeccomp, Process};

use capabilities::CapabilitySets;
use rlimits::Rlimit;
use seccomp::Filter;

/// Errors from validating or applying a process's confinement.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// A capability in the spec has no counterpart we know of.
    #[error("capability {0}: unknown capability name")]
    UnknownCapability(String),
    /// An rlimit cannot be set as given.
    #[error("rlimit {name}: {reason}")]
    InvalidRlimit {
        /// The rlimit, e.g. `RLIMIT_NOFILE`.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel refused an rlimit.
    #[error("setrlimit {name} (soft {soft}, hard {hard}): {source}")]
    SetRlimit {
        /// The rlimit.
        name: String,
        /// Soft limit asked for.
        soft: u64,
        /// Hard limit asked for.
        hard: u64,
        /// The underlying error.
        source: nix::Error,
    },
    /// The seccomp section of the spec cannot be compiled.
    #[error("seccomp: {0}")]
    InvalidSeccomp(String),
    /// libseccomp failed while building or loading the filter.
    #[error("seccomp: {what}: {source}")]
    Seccomp {
        /// The step that failed.
        what: String,
        /// The underlying error.
        source: libseccomp::error::SeccompError,
    },
    /// A capability operation failed.
    #[error("capabilities: {what}: {source}")]
    Capabilities {
        /// The step that failed.
        what: String,
        /// The underlying error.
        source: caps::errors::CapsError,
    },
    /// Exporting, installing or caching the compiled filter failed.
    #[error("seccomp: {what}: {source}")]
    SeccompIo {
        /// The step that failed (with its path, for the cache).
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A credential or prctl call failed.
    #[error("{what}: {source}")]
    Syscall {
        /// The call and its argument, e.g. `setuid 1000`.
        what: String,
        /// The underlying error.
        source: nix::Error,
    },
}

/// A process's confinement, validated and compiled (the seccomp filter to BPF
/// rules) ahead of time so a parent can build it before forking and the init
/// only applies it.
pub struct Confinement {
    rlimits: Vec<Rlimit>,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
    capabilities: Option<CapabilitySets>,
    no_new_privileges: bool,
    seccomp: Option<Filter>,
}

impl Confinement {
    /// Validates `process` and `seccomp` (capability names, rlimits, seccomp
    /// actions, architectures, operators, argument indexes) and compiles the filter.
    pub fn new(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<Self, ConfineError> {
        Self::with_filter_cache(process, seccomp, None)
    }

    /// As [`Confinement::new`], taking the compiled seccomp program from `cache` (a
    /// directory only root can write, such as the runtime's state root) when the same
    /// filter was compiled before, and storing it there otherwise: compiling Docker's
    /// default profile costs libseccomp about 15 ms, loading the cached program microseconds.
    pub fn with_filter_cache(
        process: &Process,
        seccomp: Option<&LinuxSeccomp>,
        cache: Option<&Path>,
    ) -> Result<Self, ConfineError> {
        let user = process.user();
        Ok(Confinement {
            rlimits: rlimits::parse(process.rlimits().as_deref().unwrap_or_default())?,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            capabilities: process
                .capabilities()
                .as_ref()
                .map(CapabilitySets::from_spec)
                .transpose()?,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            seccomp: seccomp.map(|s| Filter::compile(s, cache)).transpose()?,
        })
    }

    /// Applies everything to the calling process, in runc's order (see the module docs).
    /// Meant for a single-threaded process about to `execve`.
    pub fn apply(&self) -> Result<(), ConfineError> {
        rlimits::apply(&self.rlimits)?;
        if self.no_new_privileges {
            nix::sys::prctl::set_no_new_privs().map_err(|source| ConfineError::Syscall {
                what: "prctl(PR_SET_NO_NEW_PRIVS)".into(),
                source,
            })?;
        }
        if let Some(filter) = self.seccomp.as_ref().filter(|_| !self.no_new_privileges) {
            filter.load()?;
        }
        if let Some(caps) = &self.capabilities {
            caps.drop_bounding()?;
        }
        user::switch(self.uid, self.gid, &self.additional_gids)?;
        if let Some(caps) = &self.capabilities {
            caps.apply()?;
        }
        if let Some(filter) = self.seccomp.as_ref().filter(|_| self.no_new_privileges) {
            filter.load()?;
        }
        Ok(())
    }
}

/// Checks a process's confinement without applying it, so `create` fails before
/// forking with a clear error.
pub fn check(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<(), ConfineError> {
    Confinement::new(process, seccomp).map(|_| ())
}

/// Validates and applies a process's confinement to the calling process: the
/// container init's last step before `execve`, after mounts, hostname and cwd.
pub fn apply(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<(), ConfineError> {
    Confinement::new(process, seccomp)?.apply()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_process_and_runc_spec_process_validate() {
        let default = Confinement::new(&Process::default(), None).unwrap();
        assert!(default.capabilities.is_some());
        let runc: Process = serde_json::from_str(
            r#"{"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                "capabilities": {"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                                 "ambient": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true}"#,
        )
        .unwrap();
        let c = Confinement::new(&runc, None).unwrap();
        assert!(c.no_new_privileges);
        assert_eq!(c.rlimits.len(), 1);
        assert!(c.seccomp.is_none());
        check(&runc, None).unwrap();
    }

    #[test]
    fn a_process_without_capabilities_leaves_them_alone() {
        let bare: Process =
            serde_json::from_str(r#"{"user": {"uid": 0, "gid": 0}, "cwd": "/"}"#).unwrap();
        let c = Confinement::new(&bare, None).unwrap();
        assert!(c.capabilities.is_none());
        assert!(!c.no_new_privileges);
    }
}
