//! RUN: one step's process executed through berth's runtime library in the step's root
//! filesystem (an overlay the caller mounted), with the step's argv, environment, user,
//! working directory, network mode and `--mount`s; its output captured to a file.
//!
//! Mount points the image lacks are created for the run and removed afterwards when
//! still empty, so `/proc`, `/etc/resolv.conf` or a cache target do not leak into the
//! layer, as BuildKit does. The runtime forks: the caller must be single-threaded.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use berth_image::rootpath::{FileType, Root};
use berth_runtime::spec::{
    self, ContainerProcess, SpecError, SystemMount, DOCKER_DEFAULT_CAPABILITIES,
};
use berth_runtime::{ContainerError, CreateOptions, Runtime};
use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceType, RootBuilder, Spec, SpecBuilder};

use berth_image::users::Ids;

/// Why a RUN step could not be executed (a non-zero exit is not an error here).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Preparing the bundle or capturing output failed.
    #[error("RUN bundle {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The runtime refused or failed to run the container.
    #[error("RUN container {id}: {source}")]
    Runtime {
        /// The container id.
        id: String,
        /// The runtime's error.
        #[source]
        source: ContainerError,
    },
    /// Redirecting the process's output failed.
    #[error("RUN output redirect: {0}")]
    Redirect(nix::Error),
    /// Docker's default seccomp profile could not be resolved for this host.
    #[error("RUN seccomp: {0}")]
    Seccomp(#[from] berth_runtime::seccomp::ProfileError),
    /// The seccomp profile does not fit the OCI spec's seccomp section.
    #[error("RUN seccomp profile: {0}")]
    SeccompProfile(#[source] serde_json::Error),
    /// The step's OCI spec could not be built.
    #[error("RUN spec: {0}")]
    Spec(#[from] SpecError),
}

/// An extra mount for the step's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepMount {
    /// A bind mount of a host path.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Path in the container.
        target: String,
        /// Read-only.
        readonly: bool,
    },
    /// An empty tmpfs.
    Tmpfs {
        /// Path in the container.
        target: String,
    },
}

/// Everything one RUN needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Container id (unique among running builds).
    pub id: String,
    /// The mounted root filesystem.
    pub rootfs: PathBuf,
    /// Scratch directory for the bundle's config.json.
    pub bundle: PathBuf,
    /// The runtime's state directory.
    pub state_root: PathBuf,
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value` environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// Process identity.
    pub user: Ids,
    /// `--network=none`: a fresh network namespace with loopback only.
    pub network_none: bool,
    /// `--security=insecure`: all capabilities.
    pub privileged: bool,
    /// Extra mounts.
    pub mounts: Vec<StepMount>,
    /// File receiving stdout and stderr.
    pub output: PathBuf,
    /// `linux.cgroupsPath`: under the installation's cgroup parent.
    pub cgroups_path: String,
}

/// Capabilities a `--security=insecure` step gets on top.
const INSECURE_CAPS: [&str; 8] = [
    "CAP_SYS_ADMIN",
    "CAP_NET_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_TIME",
    "CAP_IPC_LOCK",
    "CAP_LINUX_IMMUTABLE",
];

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Paths BuildKit masks in a RUN step: runc's list but `/proc/asound`.
const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// The OCI spec of the step: Docker's default capabilities and seccomp profile, as
/// BuildKit's RUN; a `--security=insecure` step gets more capabilities and no filter.
fn spec(s: &RunSpec) -> Result<Spec, RunError> {
    let mut caps: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    if s.privileged {
        caps.extend(INSECURE_CAPS.iter().map(|c| c.to_string()));
    }
    let mut proc = SystemMount::Proc.mount()?;
    proc.set_options(Some(
        ["nosuid", "noexec", "nodev"].map(String::from).to_vec(),
    ));
    let mut mounts = vec![proc];
    mounts.extend(spec::system_mounts(&[
        SystemMount::Dev,
        SystemMount::Devpts,
        SystemMount::Shm,
        SystemMount::Sysfs,
    ])?);
    for m in &s.mounts {
        mounts.push(match m {
            StepMount::Bind {
                source,
                target,
                readonly,
            } => spec::mount(
                target,
                "bind",
                source.display().to_string(),
                if *readonly {
                    &["rbind", "ro"]
                } else {
                    &["rbind"]
                },
            )?,
            StepMount::Tmpfs { target } => {
                spec::mount(target, "tmpfs", "tmpfs", &["nosuid", "nodev"])?
            }
        });
    }
    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if s.network_none {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let mut linux = LinuxBuilder::default()
        .cgroups_path(&s.cgroups_path)
        .namespaces(spec::new_namespaces(&namespaces)?)
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(spec::READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(SpecError::from)?;
    // oci-spec's default adds a `resources` section; a step has none.
    linux.set_resources(None);
    if !s.privileged {
        let profile = berth_runtime::seccomp::docker_default(&caps)?;
        linux.set_seccomp(Some(
            serde_json::from_value(profile).map_err(RunError::SeccompProfile)?,
        ));
    }
    let process = ContainerProcess {
        args: s.args.clone(),
        env: s.env.clone(),
        cwd: s.cwd.clone(),
        uid: s.user.uid,
        gid: s.user.gid,
        additional_gids: s.user.additional_gids.clone(),
        capabilities: caps,
        terminal: false,
    }
    .build()?;
    let root = RootBuilder::default()
        .path(s.rootfs.display().to_string())
        .readonly(false)
        .build()
        .map_err(SpecError::from)?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .hostname("buildkitsandbox")
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(SpecError::from)?;
    // oci-spec's default is an empty map; a step has none.
    spec.set_annotations(None);
    Ok(spec)
}

/// Creates the missing components of `target` in `root` (the last one as a file when
/// `file`), recording what it made. Stops at a symlink: the runtime resolves those.
fn make_mount_point(root: &Root, target: &str, file: bool, made: &mut Vec<String>) {
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    let mut path = String::new();
    for (i, part) in parts.iter().enumerate() {
        path.push('/');
        path.push_str(part);
        let Ok(at) = root.parent(&path) else { return };
        match at.lstat() {
            Ok(Some(st)) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
            Ok(None) => {
                let ok = if file && i + 1 == parts.len() {
                    at.create(0o644).is_ok()
                } else {
                    at.mkdir(0o755).is_ok()
                };
                if !ok {
                    return;
                }
                made.push(path.clone());
            }
            _ => return,
        }
    }
}

/// Removes what [`make_mount_point`] made, newest first, where it is still empty; the
/// step may have replaced any of it, so every path is resolved in the root again.
fn remove_mount_points(root: &Root, made: &[String]) {
    for p in made.iter().rev() {
        if let Ok(at) = root.parent(p) {
            let _ = at.remove_if_empty();
        }
    }
}

/// Points fds 0, 1 and 2 at `/dev/null` and `file` until dropped.
struct Redirect {
    saved: Vec<(std::os::fd::OwnedFd, i32)>,
}

impl Redirect {
    fn new(file: &fs::File) -> Result<Self, RunError> {
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        let null = fs::File::open("/dev/null").map_err(io_err(Path::new("/dev/null")))?;
        let mut saved = Vec::new();
        let dup = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned().map_err(|e| {
                RunError::Redirect(nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
            })
        };
        saved.push((dup(io::stdin().as_fd())?, 0));
        saved.push((dup(io::stdout().as_fd())?, 1));
        saved.push((dup(io::stderr().as_fd())?, 2));
        let me = Redirect { saved };
        nix::unistd::dup2(null.as_raw_fd(), 0).map_err(RunError::Redirect)?;
        nix::unistd::dup2(file.as_raw_fd(), 1).map_err(RunError::Redirect)?;
        nix::unistd::dup2(file.as_raw_fd(), 2).map_err(RunError::Redirect)?;
        Ok(me)
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        for (fd, target) in &self.saved {
            let _ = nix::unistd::dup2(fd.as_raw_fd(), *target);
        }
    }
}

/// Runs the step and returns its exit code (128+n when killed by signal n).
pub fn run(s: &RunSpec) -> Result<i32, RunError> {
    let _span = tracing::info_span!("run", id = %s.id).entered();
    fs::create_dir_all(&s.bundle).map_err(io_err(&s.bundle))?;
    fs::create_dir_all(&s.state_root).map_err(io_err(&s.state_root))?;
    let config = s.bundle.join("config.json");
    let bytes = serde_json::to_vec_pretty(&spec(s)?).map_err(|e| io_err(&config)(e.into()))?;
    fs::write(&config, bytes).map_err(io_err(&config))?;

    let root = Root::open(&s.rootfs)
        .map_err(|e| io_err(&s.rootfs)(io::Error::other(e)))?
        .no_xdev();
    let mut made = Vec::new();
    for dir in ["/proc", "/dev", "/sys"] {
        make_mount_point(&root, dir, false, &mut made);
    }
    make_mount_point(&root, &s.cwd, false, &mut made);
    for m in &s.mounts {
        match m {
            StepMount::Bind { source, target, .. } => {
                make_mount_point(&root, target, !source.is_dir(), &mut made)
            }
            StepMount::Tmpfs { target } => make_mount_point(&root, target, false, &mut made),
        }
    }
    // The working directory stays even when empty: Docker creates it for the step.
    made.retain(|p| !Path::new(&s.cwd).starts_with(p));

    let out = fs::File::create(&s.output).map_err(io_err(&s.output))?;
    let runtime = Runtime::new(&s.state_root);
    let opts = CreateOptions {
        id: s.id.clone(),
        bundle: s.bundle.clone(),
        // The step dies with the builder, even a SIGKILLed one.
        parent_death_signal: Some(nix::sys::signal::Signal::SIGKILL),
        ..CreateOptions::default()
    };
    let result = {
        let _redirect = Redirect::new(&out)?;
        // The runtime's mknod of /dev/null & co. honours the caller's umask (0644 under
        // 022, which breaks apt's unprivileged `_apt` user); with 0 they get the spec's
        // 0666. The init sets the process's own umask (022) itself.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let r = runtime.run(&opts, false);
        nix::sys::stat::umask(old);
        r
    };
    remove_mount_points(&root, &made);
    result.map_err(|source| RunError::Runtime {
        id: s.id.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn step(privileged: bool) -> RunSpec {
        RunSpec {
            id: "t".into(),
            rootfs: "/r".into(),
            bundle: "/b".into(),
            state_root: "/s".into(),
            cgroups_path: "berth/t".into(),
            args: vec!["true".into()],
            env: Vec::new(),
            cwd: "/".into(),
            user: Ids {
                uid: 0,
                gid: 0,
                additional_gids: Vec::new(),
            },
            network_none: false,
            privileged,
            mounts: Vec::new(),
            output: "/o".into(),
        }
    }

    fn json_of(s: &RunSpec) -> Value {
        serde_json::to_value(spec(s).unwrap()).unwrap()
    }

    /// The spec as the `json!` version of [`spec`] wrote it, before it was typed.
    fn json_spec(s: &RunSpec) -> Value {
        let mut caps: Vec<&str> = DOCKER_DEFAULT_CAPABILITIES.to_vec();
        if s.privileged {
            caps.extend(INSECURE_CAPS);
        }
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
        ];
        for m in &s.mounts {
            mounts.push(match m {
                StepMount::Bind {
                    source,
                    target,
                    readonly,
                } => json!({"destination": target, "type": "bind",
                            "source": source.display().to_string(),
                            "options": if *readonly { json!(["rbind", "ro"]) } else { json!(["rbind"]) }}),
                StepMount::Tmpfs { target } => json!({"destination": target, "type": "tmpfs",
                            "source": "tmpfs", "options": ["nosuid", "nodev"]}),
            });
        }
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
        ];
        if s.network_none {
            namespaces.push(json!({"type": "network"}));
        }
        let bounding: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        let mut spec = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": s.user.uid, "gid": s.user.gid, "additionalGids": s.user.additional_gids},
                "args": s.args,
                "env": s.env,
                "cwd": s.cwd,
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": false
            },
            "root": {"path": s.rootfs.display().to_string(), "readonly": false},
            "hostname": "buildkitsandbox",
            "mounts": mounts,
            "linux": {
                "cgroupsPath": s.cgroups_path,
                "namespaces": namespaces,
                "maskedPaths": [
                    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                    "/proc/scsi"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
                ]
            }
        });
        if !s.privileged {
            spec["linux"]["seccomp"] = berth_runtime::seccomp::docker_default(&bounding).unwrap();
        }
        spec
    }

    /// Capability sets serialize in hash order and the seccomp profile is compared as
    /// the runtime parses it: sort the one, drop the other, to compare the rest as JSON.
    fn comparable(mut spec: Value) -> Value {
        if let Some(caps) = spec["process"]["capabilities"].as_object_mut() {
            for set in caps.values_mut() {
                if let Some(names) = set.as_array_mut() {
                    names.sort_by_key(|n| n.to_string());
                }
            }
        }
        if let Some(linux) = spec["linux"].as_object_mut() {
            linux.remove("seccomp");
        }
        spec
    }

    #[test]
    fn the_typed_spec_writes_what_the_json_one_did() {
        let mut busy = step(false);
        busy.network_none = true;
        busy.env = vec!["A=1".into()];
        busy.cwd = "/src".into();
        busy.user = Ids {
            uid: 1000,
            gid: 100,
            additional_gids: vec![27, 44],
        };
        busy.mounts = vec![
            StepMount::Bind {
                source: "/cache/a".into(),
                target: "/root/.cache".into(),
                readonly: false,
            },
            StepMount::Bind {
                source: "/ctx".into(),
                target: "/src".into(),
                readonly: true,
            },
            StepMount::Tmpfs {
                target: "/tmp".into(),
            },
        ];
        let mut insecure = busy.clone();
        insecure.privileged = true;
        for s in [step(false), busy, insecure] {
            let typed = spec(&s).unwrap();
            let parsed: Spec = serde_json::from_value(json_spec(&s)).unwrap();
            assert_eq!(typed, parsed, "{s:?}");
            assert_eq!(comparable(json_of(&s)), comparable(json_spec(&s)), "{s:?}");
        }
    }

    #[test]
    fn steps_get_dockers_seccomp_profile_unless_insecure() {
        let default = json_of(&step(false));
        assert_eq!(
            default["linux"]["seccomp"]["defaultAction"],
            "SCMP_ACT_ERRNO"
        );
        let names = |spec: &Value| -> Vec<String> {
            spec["linux"]["seccomp"]["syscalls"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["names"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        };
        assert!(!names(&default).contains(&"mount".to_string()));
        assert!(names(&default).contains(&"chroot".to_string()));
        let insecure = json_of(&step(true));
        assert!(insecure["linux"].get("seccomp").is_none());
        assert!(insecure["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_SYS_ADMIN")));
    }
}
