//! Linux namespaces from the spec: which to create (clone flags) and which to
//! join by path (setns), e.g. a pod's shared network namespace.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// Why a namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The same namespace type is listed twice.
    #[error("namespace {0} is listed more than once")]
    Duplicate(String),
    /// A namespace type this runtime cannot create.
    #[error("namespace {0} is not supported")]
    Unsupported(String),
    /// A namespace path that cannot be opened.
    #[error("namespace {kind} path {path}: {source}")]
    Open {
        /// Namespace type.
        kind: String,
        /// The path from the spec.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// setns(2) refused.
    #[error("join namespace {kind} at {path}: {source}")]
    Join {
        /// Namespace type.
        kind: String,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: nix::Error,
    },
}

/// The namespace part of a spec: new ones as clone flags, joined ones by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Namespaces to create.
    pub new: CloneFlags,
    /// Namespaces to join: (flag, path), user namespace first.
    pub join: Vec<(CloneFlags, PathBuf)>,
}

impl NamespacePlan {
    /// Reads the spec's namespace list, refusing duplicates and unknown kinds.
    pub fn from_spec(list: &[LinuxNamespace]) -> Result<Self, NamespaceError> {
        let mut plan = NamespacePlan {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        let mut seen = CloneFlags::empty();
        for ns in list {
            let flag = clone_flag(ns.typ())?;
            if seen.contains(flag) {
                return Err(NamespaceError::Duplicate(ns.typ().to_string()));
            }
            seen.insert(flag);
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => {
                    plan.join.push((flag, path.clone()));
                }
                _ => plan.new.insert(flag),
            }
        }
        // The user namespace must be joined first: it grants rights over the others.
        plan.join
            .sort_by_key(|(flag, _)| !flag.contains(CloneFlags::CLONE_NEWUSER));
        Ok(plan)
    }

    /// True when the container gets (new or joined) namespace `flag`.
    pub fn has(&self, flag: CloneFlags) -> bool {
        self.new.contains(flag) || self.join.iter().any(|(f, _)| *f == flag)
    }

    /// The path of a joined namespace `flag`, if it is joined.
    pub fn join_path(&self, flag: CloneFlags) -> Option<&Path> {
        self.join
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, p)| p.as_path())
    }
}

/// The clone flag of a namespace type.
pub fn clone_flag(typ: LinuxNamespaceType) -> Result<CloneFlags, NamespaceError> {
    Ok(match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => return Err(NamespaceError::Unsupported("time".into())),
    })
}

/// The `/proc/<pid>/ns/` file name of a namespace flag.
pub fn proc_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        _ => "net",
    }
}

/// Opens a namespace file (O_CLOEXEC via std).
pub fn open(flag: CloneFlags, path: &Path) -> Result<File, NamespaceError> {
    File::open(path).map_err(|source| NamespaceError::Open {
        kind: proc_name(flag).to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Joins the namespace at `path` with setns(2).
pub fn join(flag: CloneFlags, path: &Path) -> Result<(), NamespaceError> {
    let file = open(flag, path)?;
    nix::sched::setns(&file, flag).map_err(|source| NamespaceError::Join {
        kind: proc_name(flag).to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Brings up `lo` in a fresh network namespace, as runc does for a new one.
pub fn loopback_up() -> Result<(), NamespaceError> {
    let err = |source: nix::Error| NamespaceError::Join {
        kind: "net".into(),
        path: PathBuf::from("lo"),
        source,
    };
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    // SAFETY: ifreq is a C struct of integers, byte arrays and a union of those and
    // pointers, for all of which all-zero bits are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    // SAFETY: fd is an open socket and `req` a live, NUL-terminated ifreq naming "lo";
    // SIOCGIFFLAGS writes only the flags member of that struct, which outlives the call.
    if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(err(nix::Error::last()));
    }
    // SAFETY: a union read: SIOCGIFFLAGS just wrote `ifru_flags`, a c_short for which
    // every bit pattern is valid, so reading and updating it is sound.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: fd is an open socket and `req` the live ifreq above; SIOCSIFFLAGS only
    // reads the name and flags from it.
    if unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(err(nix::Error::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p);
        }
        b.build().unwrap()
    }

    #[test]
    fn new_and_joined_namespaces_are_split_user_first() {
        let plan = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/run/netns/a")),
            ns(LinuxNamespaceType::User, Some("/proc/1/ns/user")),
            ns(LinuxNamespaceType::Mount, None),
        ])
        .unwrap();
        assert_eq!(plan.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        assert_eq!(plan.join[0].0, CloneFlags::CLONE_NEWUSER);
        assert_eq!(
            plan.join_path(CloneFlags::CLONE_NEWNET),
            Some(Path::new("/run/netns/a"))
        );
        assert!(plan.has(CloneFlags::CLONE_NEWNET));
        assert!(!plan.has(CloneFlags::CLONE_NEWIPC));
    }

    #[test]
    fn duplicates_are_refused() {
        let err = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Ipc, None),
            ns(LinuxNamespaceType::Ipc, None),
        ])
        .unwrap_err();
        assert_eq!(err.to_string(), "namespace ipc is listed more than once");
    }
}
