//! OCI runtime specs, built with oci-spec's typed builders: the pieces berth's specs share
//! (the kernel filesystems every container mounts, namespace lists, Docker's default
//! capabilities, a container process in Docker's shape) and runc's example spec made from
//! them, which `berth-runtime spec` writes (busybox `sh` on a terminal, read-only root,
//! pid/net/ipc/uts/mount namespaces) and containers start from, with its rootless variant.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};
use oci_spec::OciSpecError;
use serde::de::IntoDeserializer;
use serde::Deserialize;

/// Why a spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// oci-spec refused a value while building.
    #[error("oci spec: {0}")]
    Build(#[from] OciSpecError),
    /// A capability name the OCI spec does not know.
    #[error("capability {0:?}: unknown to the oci spec")]
    Capability(String),
}

/// The search path of a process whose environment sets no `PATH`, and the PATH
/// Docker gives images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities Docker gives a container unless told otherwise; berth's
/// containers and build steps start from the same set.
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The capabilities of runc's example spec (`sh` needs no more).
pub const RUNC_CAPABILITIES: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The namespaces runc's example spec creates, in its order.
pub const RUNC_NAMESPACES: [LinuxNamespaceType; 5] = [
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
];

/// Paths runc and Docker mask in a container: kernel files that leak host state.
pub const MASKED_PATHS: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// Paths runc and Docker make read-only in a container: kernel tunables of the host.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every capability the running kernel supports and the calling process may hand on (its
/// bounding set: a host's root can lack some, and a container cannot get more), as `CAP_*`
/// names in kernel order: what a privileged container, or `--cap-add ALL`, gets.
pub fn all_capabilities() -> Vec<String> {
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
    let mut all: Vec<caps::Capability> = caps::runtime::thread_all_supported()
        .into_iter()
        .filter(|c| bounding.contains(c))
        .collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

/// A capability name as Docker accepts it (any case, with or without `CAP_`) in the
/// kernel's form `CAP_NET_ADMIN`, or `ALL`; `None` for a name no kernel knows.
pub fn normalize_capability(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<caps::Capability>().ok().map(|c| c.to_string())
}

/// The kernel filesystems a container mounts over its root, as runc and Docker mount them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemMount {
    /// `/proc`, the container's pid namespace's procfs (no options, as runc).
    Proc,
    /// `/dev`, a small tmpfs the runtime fills with device nodes.
    Dev,
    /// `/dev/pts`, a private devpts instance.
    Devpts,
    /// `/dev/shm`, a 64 MiB tmpfs.
    Shm,
    /// `/dev/mqueue`, POSIX message queues of the IPC namespace.
    Mqueue,
    /// `/sys`, read-only sysfs.
    Sysfs,
    /// `/sys/fs/cgroup`, read-only.
    Cgroup,
}

impl SystemMount {
    /// runc's example spec's mounts, in its order.
    pub const RUNC: [SystemMount; 7] = [
        SystemMount::Proc,
        SystemMount::Dev,
        SystemMount::Devpts,
        SystemMount::Shm,
        SystemMount::Mqueue,
        SystemMount::Sysfs,
        SystemMount::Cgroup,
    ];

    /// The mount entry.
    pub fn mount(self) -> Result<Mount, SpecError> {
        let (destination, typ, source, options): (&str, &str, &str, &[&str]) = match self {
            SystemMount::Proc => ("/proc", "proc", "proc", &[]),
            SystemMount::Dev => (
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            SystemMount::Devpts => (
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            SystemMount::Shm => (
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            SystemMount::Mqueue => (
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            SystemMount::Sysfs => (
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            SystemMount::Cgroup => (
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        };
        mount(destination, typ, source, options)
    }
}

/// The mount entries of `which`, in that order.
pub fn system_mounts(which: &[SystemMount]) -> Result<Vec<Mount>, SpecError> {
    which.iter().map(|m| m.mount()).collect()
}

/// A mount entry; empty `options` leaves the field out, as runc's `/proc` has it.
pub fn mount(
    destination: impl Into<PathBuf>,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<Mount, SpecError> {
    let builder = MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source);
    let builder = if options.is_empty() {
        builder
    } else {
        builder.options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
    };
    Ok(builder.build()?)
}

/// A namespace entry: a new namespace of `kind`, or the one at `path` to join.
pub fn namespace(
    kind: LinuxNamespaceType,
    path: Option<&Path>,
) -> Result<LinuxNamespace, SpecError> {
    let builder = LinuxNamespaceBuilder::default().typ(kind);
    let builder = match path {
        Some(p) => builder.path(p),
        None => builder,
    };
    Ok(builder.build()?)
}

/// New namespaces of each of `kinds`, in that order.
pub fn new_namespaces(kinds: &[LinuxNamespaceType]) -> Result<Vec<LinuxNamespace>, SpecError> {
    kinds.iter().map(|k| namespace(*k, None)).collect()
}

/// `CAP_*` names as the spec's capability set.
pub fn capability_set<S: AsRef<str>>(names: &[S]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            let de = IntoDeserializer::<serde::de::value::Error>::into_deserializer(name);
            Capability::deserialize(de).map_err(|_| SpecError::Capability(name.to_string()))
        })
        .collect()
}

/// A process's capabilities as Docker sets them: `names` bounding, effective and
/// permitted; no inheritable or ambient ones (which oci-spec's defaults would fill).
pub fn capabilities<S: AsRef<str>>(names: &[S]) -> Result<LinuxCapabilities, SpecError> {
    let set = capability_set(names)?;
    let mut caps = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()?;
    caps.set_inheritable(None);
    caps.set_ambient(None);
    Ok(caps)
}

/// The rlimits runc and Docker set: 1024 open files, soft and hard.
pub fn default_rlimits() -> Result<Vec<PosixRlimit>, SpecError> {
    Ok(vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()?])
}

/// A container's or build step's process in Docker's shape: the given capabilities
/// (bounding, effective, permitted), 1024 open files, new privileges allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProcess {
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value` environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub additional_gids: Vec<u32>,
    /// `CAP_*` names.
    pub capabilities: Vec<String>,
    /// Whether the process gets a pty.
    pub terminal: bool,
}

impl ContainerProcess {
    /// The spec's `process`.
    pub fn build(&self) -> Result<Process, SpecError> {
        let user = UserBuilder::default()
            .uid(self.uid)
            .gid(self.gid)
            .additional_gids(self.additional_gids.clone())
            .build()?;
        Ok(ProcessBuilder::default()
            .terminal(self.terminal)
            .user(user)
            .args(self.args.clone())
            .env(self.env.clone())
            .cwd(&self.cwd)
            .capabilities(capabilities(&self.capabilities)?)
            .rlimits(default_rlimits()?)
            .no_new_privileges(false)
            .build()?)
    }
}

/// runc 1.1's default spec, field for field: the base berth's containers adjust.
pub fn runc_spec() -> Result<Spec, SpecError> {
    let mut caps = capabilities(&RUNC_CAPABILITIES)?;
    caps.set_ambient(caps.bounding().clone());
    let process = ProcessBuilder::default()
        .terminal(true)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(vec!["sh".to_string()])
        .env(vec![
            format!("PATH={DEFAULT_PATH}"),
            "TERM=xterm".to_string(),
        ])
        .cwd("/")
        .capabilities(caps)
        .rlimits(default_rlimits()?)
        .no_new_privileges(true)
        .build()?;
    let deny_all_devices = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let linux = LinuxBuilder::default()
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![deny_all_devices])
                .build()?,
        )
        .namespaces(new_namespaces(&RUNC_NAMESPACES)?)
        .masked_paths(strings(&MASKED_PATHS))
        .readonly_paths(strings(&READONLY_PATHS))
        .build()?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2-dev")
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()?,
        )
        .hostname("runc")
        .mounts(system_mounts(&SystemMount::RUNC)?)
        .linux(linux)
        .build()?;
    // oci-spec's default is an empty map; runc writes none.
    spec.set_annotations(None);
    Ok(spec)
}

/// runc's `spec --rootless`: a user namespace mapping `uid`/`gid` to root, no
/// network namespace, sysfs bind-mounted, no cgroup mount or resources.
pub fn runc_rootless_spec(uid: u32, gid: u32) -> Result<Spec, SpecError> {
    let mut spec = runc_spec()?;
    if let Some(linux) = spec.linux_mut() {
        linux.set_resources(None);
        linux.set_namespaces(Some(new_namespaces(&[
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::User,
        ])?));
        let map = |host_id: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host_id)
                .size(1u32)
                .build()
        };
        linux.set_uid_mappings(Some(vec![map(uid)?]));
        linux.set_gid_mappings(Some(vec![map(gid)?]));
    }
    let mut mounts = Vec::new();
    for kind in SystemMount::RUNC {
        match kind {
            SystemMount::Cgroup => {}
            SystemMount::Sysfs => mounts.push(mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )?),
            SystemMount::Devpts => {
                let mut devpts = kind.mount()?;
                if let Some(options) = devpts.options_mut() {
                    options.retain(|o| o != "gid=5");
                }
                mounts.push(devpts);
            }
            _ => mounts.push(kind.mount()?),
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The spec `default_spec` wrote as a `json!` literal before it was typed.
    fn json_default_spec() -> Value {
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": true,
                "user": {"uid": 0, "gid": 0},
                "args": ["sh"],
                "env": [format!("PATH={DEFAULT_PATH}"), "TERM=xterm"],
                "cwd": "/",
                "capabilities": {
                    "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "runc",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [
                    {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                    {"type": "uts"}, {"type": "mount"}
                ],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
                ]
            }
        })
    }

    /// The rootless spec as the JSON edits of the untyped version made it.
    fn json_rootless_spec(uid: u32, gid: u32) -> Value {
        let mut spec = json_default_spec();
        if let Some(linux) = spec["linux"].as_object_mut() {
            linux.remove("resources");
        }
        spec["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}
        ]);
        spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        let mounts = spec["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["type"] != "cgroup");
        mounts[5] = json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        mounts[2]["options"]
            .as_array_mut()
            .unwrap()
            .retain(|o| o != "gid=5");
        spec
    }

    /// Capability sets serialize in hash order: sort them to compare JSON.
    fn sorted_caps(mut spec: Value) -> Value {
        if let Some(caps) = spec["process"]["capabilities"].as_object_mut() {
            for set in caps.values_mut() {
                if let Some(names) = set.as_array_mut() {
                    names.sort_by_key(|n| n.to_string());
                }
            }
        }
        spec
    }

    #[test]
    fn the_typed_default_spec_writes_what_the_json_one_did() {
        let typed = runc_spec().unwrap();
        let parsed: Spec = serde_json::from_value(json_default_spec()).unwrap();
        assert_eq!(typed, parsed);
        assert_eq!(
            sorted_caps(serde_json::to_value(&typed).unwrap()),
            sorted_caps(json_default_spec())
        );
    }

    #[test]
    fn the_typed_rootless_spec_writes_what_the_json_one_did() {
        let typed = runc_rootless_spec(1000, 100).unwrap();
        let parsed: Spec = serde_json::from_value(json_rootless_spec(1000, 100)).unwrap();
        assert_eq!(typed, parsed);
        assert_eq!(
            sorted_caps(serde_json::to_value(&typed).unwrap()),
            sorted_caps(json_rootless_spec(1000, 100))
        );
    }

    #[test]
    fn system_mounts_are_runcs() {
        let mounts = system_mounts(&SystemMount::RUNC).unwrap();
        let destinations: Vec<_> = mounts.iter().map(|m| m.destination().clone()).collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            serde_json::to_value(SystemMount::Proc.mount().unwrap()).unwrap(),
            json!({"destination": "/proc", "type": "proc", "source": "proc"})
        );
        assert_eq!(
            serde_json::to_value(SystemMount::Shm.mount().unwrap()).unwrap(),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
        );
    }

    #[test]
    fn namespaces_are_new_or_joined() {
        let ns = vec![
            namespace(LinuxNamespaceType::Network, Some(Path::new("/run/n"))).unwrap(),
            new_namespaces(&[LinuxNamespaceType::Mount])
                .unwrap()
                .remove(0),
        ];
        assert_eq!(
            serde_json::to_value(ns).unwrap(),
            json!([{"type": "network", "path": "/run/n"}, {"type": "mount"}])
        );
    }

    #[test]
    fn capabilities_are_dockers_sets_without_oci_spec_defaults() {
        let caps = capabilities(&DOCKER_DEFAULT_CAPABILITIES).unwrap();
        assert_eq!(caps.bounding().as_ref().map(|s| s.len()), Some(14));
        assert_eq!(caps.bounding(), caps.effective());
        assert_eq!(caps.bounding(), caps.permitted());
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysChroot));
        let err = capability_set(&["CAP_FLY"]).unwrap_err().to_string();
        assert_eq!(err, "capability \"CAP_FLY\": unknown to the oci spec");
    }

    #[test]
    fn a_container_process_has_dockers_shape() {
        let p = ContainerProcess {
            args: vec!["true".into()],
            env: vec!["A=1".into()],
            cwd: "/w".into(),
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
            capabilities: vec!["CAP_KILL".into()],
            terminal: false,
        }
        .build()
        .unwrap();
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            json!({
                "terminal": false,
                "user": {"uid": 1, "gid": 2, "additionalGids": [3]},
                "args": ["true"],
                "env": ["A=1"],
                "cwd": "/w",
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                 "permitted": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": false
            })
        );
    }

    #[test]
    fn capability_names_normalise_as_docker() {
        assert_eq!(
            normalize_capability("net_admin").as_deref(),
            Some("CAP_NET_ADMIN")
        );
        assert_eq!(
            normalize_capability("CAP_sys_admin").as_deref(),
            Some("CAP_SYS_ADMIN")
        );
        assert_eq!(normalize_capability("all").as_deref(), Some("ALL"));
        assert_eq!(normalize_capability("cap_fly"), None);
        let all = all_capabilities();
        assert!(all.len() >= 38, "{all:?}");
        assert_eq!(all[0], "CAP_CHOWN");
    }
}
