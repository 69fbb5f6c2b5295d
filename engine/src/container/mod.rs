//! Containers made from images and run without a daemon: [`create`] prepares everything
//! (rootfs overlay, network, `/etc` files, OCI bundle) under `$ROOT/containers/<id>/`, a
//! per-container [`monitor`] process (the `berth-monitor` binary) creates and starts
//! it through the runtime library, writes its [`logs`] and records its [`state`], and the
//! lifecycle verbs (stop, kill, remove, wait) act on what is recorded there.
//!
//! Layout of `$ROOT/containers/<id>/`: `config.json` (berth's view: [`ContainerConfig`]),
//! `state.json` ([`State`]), `<id>-json.log`, `bundle/config.json` (OCI), `rootfs/`,
//! `upper/` + `work/` (overlay), `etc/` (hosts, resolv.conf, hostname), `monitor.log` (the
//! monitor's own diagnostics). Names are reserved in `$ROOT/names/<name>` (created
//! exclusively, so two containers never share one). The runtime keeps its state in
//! `$ROOT/runtime/` (derived from the store root, so separate stores, such as tests, never
//! see each other's containers); cgroups are `<cgroup parent>/<id>`; network namespaces are
//! `/run/berth/netns/<id>`.
//!
//! Installation [`Settings`] (dockerd's `--bridge`, `--fixed-cidr`, `--cgroup-parent`) choose
//! the host-wide names; the `berth` command reads them from the environment:
//! - `BERTH_BRIDGE` (default `berth0`): the bridge bridge-mode containers attach to;
//! - `BERTH_SUBNET` (default `10.88.0.0/16`): its subnet, the gateway being its first address;
//! - `BERTH_NFT_TABLE` (default `berth`, must start with `berth`): the `ip` nft table holding
//!   port forwards;
//! - `BERTH_CGROUP_PARENT` (default `berth`): containers' cgroups are `<parent>/<id>`.
//!
//! The network a container was attached to is recorded in its [`ContainerConfig`], so
//! release (by its monitor or by `rm -f`) detaches it from that bridge and table whatever the
//! settings are by then. Separate settings give separate networks: tests use their own so they
//! can remove the bridge, table and cgroup parent they made.

pub mod control;
mod copy;
mod create;
pub mod envfile;
mod exec;
pub mod health;
mod inspect;
mod join;
mod lifecycle;
pub mod logs;
pub mod monitor;
mod mounts;
pub mod resources;
pub mod restart;
pub mod security;
pub mod settings;
mod spec;
mod start;
pub mod state;
mod top;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::names;
use crate::network::{self, NetworkMode, PortMapping};
use crate::records::{RecordDirs, RecordError};

pub use copy::{archive_from, copy_from, copy_to, extract_to, CopyError};
pub use create::{create, RunOptions};
pub use exec::{exec, exec_probe, ExecError, ExecOptions, ExecProbeError, ProbeOutput};
pub use inspect::{inspect, port_map};
pub use lifecycle::{kill, remove, restart, start, stop, wait_exit};
pub use logs::{LogEntry, LogReader, Stream};
pub use monitor::MonitorConfig;
pub use mounts::{
    prune_volumes, remove_anonymous_volumes, remove_volume, volume_users, MountPoint,
};
pub use resources::{ResourceError, Resources};
pub use security::{SeccompMode, Security, SecurityError};
pub use settings::{AttachedNetwork, Settings, SettingsError};
pub use start::prepare_start;
pub use state::{State, Status};
pub use top::top;

/// Errors from creating, running, inspecting or removing containers.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No container has this name or id.
    #[error("no such container: {0}")]
    NotFound(String),
    /// An id prefix matches several containers.
    #[error("container id prefix {0:?} matches several containers")]
    Ambiguous(String),
    /// The name is taken by another container.
    #[error("container name {name:?} is already in use by container {id}")]
    NameInUse {
        /// The name.
        name: String,
        /// The container holding it.
        id: String,
    },
    /// The name has characters Docker refuses.
    #[error("invalid container name {0:?}: use letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidName(String),
    /// `-p` with a network mode that has no bridge.
    #[error("-p and -P need --network bridge (got --network {0})")]
    PublishWithoutBridge(String),
    /// The image's config has a value berth cannot use.
    #[error("image {0}: {1}")]
    BadImage(String, String),
    /// `--network container:NAME` names a container that is not running.
    #[error("--network container:{0}: container is not running")]
    JoinNotRunning(String),
    /// A flag that the pod or the joined container decides (ports, network, hostname).
    #[error("{flag} cannot be used with {with}: {why}")]
    JoinConflict {
        /// The refused flag.
        flag: &'static str,
        /// `--pod` or `--network container:NAME`.
        with: String,
        /// Who owns what the flag sets.
        why: &'static str,
    },
    /// Joining a pod failed (no such pod, not running).
    #[error(transparent)]
    Pod(Box<crate::pod::PodError>),
    /// The image has no command and none was given.
    #[error("image {0}: no command specified")]
    NoCommand(String),
    /// The container is in the wrong state for the request.
    #[error("container {id}: {reason}")]
    WrongState {
        /// The container id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The image store failed (unknown image included).
    #[error(transparent)]
    Store(#[from] berth_image::store::StoreError),
    /// Unpacking or mounting layers failed.
    #[error(transparent)]
    Snapshot(#[from] berth_image::snapshot::SnapshotError),
    /// Unmounting the rootfs failed.
    #[error(transparent)]
    Mount(#[from] berth_image::snapshot::mount::MountError),
    /// The user could not be resolved in the image.
    #[error("user: {0}")]
    User(#[from] berth_image::users::UserError),
    /// A path in the image could not be resolved inside its root.
    #[error(transparent)]
    RootPath(#[from] berth_image::rootpath::RootPathError),
    /// The runtime refused or failed.
    #[error("runtime: {0}")]
    Runtime(#[from] berth_runtime::ContainerError),
    /// The process would run as root where that is refused (a Pod's `runAsNonRoot`); holds
    /// the user as the image or the options gave it.
    #[error("container has runAsNonRoot and image will run as root (user {0:?})")]
    RunsAsRoot(String),
    /// A security option is refused, or the seccomp profile is invalid.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// Networking failed (a port taken included).
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// A recorded network setting is refused.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A network namespace could not be made or removed.
    #[error(transparent)]
    Netns(#[from] network::netns::NetnsError),
    /// The `/etc` files could not be written.
    #[error(transparent)]
    Files(#[from] network::files::FilesError),
    /// The state record failed.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// The OCI spec could not be built.
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] logs::LogError),
    /// A file operation failed.
    #[error("container {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Options that cannot go together (`--rm` with `--restart`).
    #[error("conflicting options: {0}")]
    Conflict(&'static str),
    /// The health check options or the image's Healthcheck are invalid.
    #[error(transparent)]
    Health(#[from] health::HealthError),
    /// The monitor's control socket failed.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// `top` could not list the container's processes.
    #[error("top: {0}")]
    Top(String),
    /// The monitor failed to start the container or went away.
    #[error("monitor: {0}")]
    Monitor(String),
    /// The monitor's helper could not start the container's process or a health check.
    #[error(transparent)]
    Helper(#[from] monitor::helper::HelperError),
    /// A system call failed.
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    /// A volume could not be made, populated or removed.
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    /// A mount request is not valid.
    #[error(transparent)]
    MountSpec(#[from] crate::volume::MountSpecError),
    /// A config record is not valid JSON.
    #[error("container config {path}: corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl From<RecordError> for ContainerError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NotFound(id) => ContainerError::NotFound(id),
            RecordError::Io { path, source } => ContainerError::Io { path, source },
            RecordError::Corrupt { path, source } => ContainerError::Corrupt { path, source },
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// berth's record of a container (`config.json` in its directory), fixed at create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// 64 hex digits.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The image as given on the command line.
    pub image: String,
    /// The image id (config digest).
    pub image_id: String,
    /// The argv it runs.
    pub args: Vec<String>,
    /// When it was created (RFC 3339).
    pub created: String,
    /// `bridge`, `none` or `host`.
    pub network: String,
    /// Its own network namespace, if it has one.
    pub netns: Option<PathBuf>,
    /// Forwarded ports, host ports filled in.
    pub ports: Vec<PortMapping>,
    /// `--rm`: removed as soon as it exits.
    pub auto_remove: bool,
    /// The network it was attached to (bridge mode); absent in records from before
    /// installation settings existed, which used the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_network: Option<AttachedNetwork>,
    /// Its mounts (`-v`, `--mount`, `--tmpfs`, the image's `VOLUME`s), as made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountPoint>,
    /// Its resource limits.
    #[serde(default, skip_serializing_if = "Resources::is_unlimited")]
    pub resources: Resources,
    /// How its monitor runs it: terminal, stdin, restart policy, health check, log rotation.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// The entrypoint part of `args` (Docker's `Config.Entrypoint`); the rest is the command.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `-u` as given, else the image's user (Docker's `Config.User`).
    #[serde(default)]
    pub user: String,
    /// Exposed ports (`8000/tcp`): the image's and the published ones (`Config.ExposedPorts`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// `-P`: every exposed port was published to a free host port.
    #[serde(default)]
    pub publish_all: bool,
    /// The id of the pod it belongs to (`run --pod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `--label k=v`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Capabilities, seccomp, no-new-privileges, read-only root, host namespaces.
    #[serde(default)]
    pub security: Security,
}

impl ContainerConfig {
    /// The first 12 hex digits of the id, as Docker shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The command part of `args`, after the entrypoint (Docker's `Config.Cmd`).
    pub fn cmd(&self) -> &[String] {
        self.args.get(self.entrypoint.len()..).unwrap_or(&[])
    }

    /// The network mode it was created with.
    pub fn network_mode(&self) -> NetworkMode {
        self.network.parse().unwrap_or(NetworkMode::None)
    }
}

/// The containers of one store root.
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
    records: RecordDirs,
    settings: Settings,
}

impl Containers {
    /// The containers kept under store root `root` (`--root`), with the default settings.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Containers {
            records: RecordDirs::new(&root, "containers", "config.json"),
            root,
            settings: Settings::host_default(),
        }
    }

    /// The same containers, created from now on with installation settings `settings`.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The installation settings new containers are created with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.records.dir(id)
    }

    /// The containers' record directories (`$ROOT/containers/<id>/config.json`).
    pub(crate) fn records(&self) -> &RecordDirs {
        &self.records
    }

    /// The json-file log of container `id`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }

    /// The runtime library bound to this store's runtime state dir (`$ROOT/runtime`).
    pub fn runtime(&self) -> berth_runtime::Runtime {
        berth_runtime::Runtime::new(self.root.join("runtime"))
    }

    /// The network new containers in bridge mode attach to.
    pub fn network(&self) -> network::Network {
        network::Network::new(self.settings.network_config().clone())
    }

    /// The network `config`'s container was attached to: the recorded one, else (records
    /// from before settings existed) the default.
    pub fn network_of(&self, config: &ContainerConfig) -> Result<network::Network, ContainerError> {
        match &config.attached_network {
            Some(recorded) => Ok(recorded.network()?),
            None => Ok(network::Network::new(network::NetworkConfig::host_default())),
        }
    }

    /// Reads container `id`'s config.
    pub fn config(&self, id: &str) -> Result<ContainerConfig, ContainerError> {
        Ok(self.records.read(id)?)
    }

    /// Reads container `id`'s state: the one record `ps`, `inspect`, `wait` and `stop` all
    /// show. A container recorded as running whose monitor and init are both gone has its
    /// lost exit recorded first ([`lifecycle::settle_lost_exit`]: 255, as `wait` reports).
    pub fn state(&self, id: &str) -> Result<State, ContainerError> {
        let state = State::load(&self.dir(id))?;
        if lifecycle::exit_lost(&state) {
            return lifecycle::settle_lost_exit(self, id);
        }
        Ok(state)
    }

    /// The ids of every container, sorted.
    pub fn ids(&self) -> Result<Vec<String>, ContainerError> {
        Ok(self.records.ids()?)
    }

    /// Every container with its state, newest first.
    pub fn list(&self) -> Result<Vec<(ContainerConfig, State)>, ContainerError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            // A container removed while we list is simply not listed.
            let (Ok(config), Ok(state)) = (self.config(&id), self.state(&id)) else {
                continue;
            };
            out.push((config, state));
        }
        out.sort_by(|a, b| b.0.created.cmp(&a.0.created));
        Ok(out)
    }

    /// The container called `query`: a name, a full id, or a unique id prefix.
    pub fn lookup(&self, query: &str) -> Result<ContainerConfig, ContainerError> {
        if valid_name(query) {
            if let Some(id) = names::holder(&self.names_dir(), query) {
                if let Ok(c) = self.config(&id) {
                    return Ok(c);
                }
            }
        }
        match names::match_prefix(query, || self.ids())? {
            names::PrefixMatch::One(id) => self.config(&id),
            names::PrefixMatch::Many => Err(ContainerError::Ambiguous(query.to_string())),
            names::PrefixMatch::None => Err(ContainerError::NotFound(query.to_string())),
        }
    }

    /// Reserves `name` for `id` (keep the reservation until `config.json` is written); fails
    /// when another container holds it.
    fn reserve_name(&self, name: &str, id: &str) -> Result<names::Reservation, ContainerError> {
        if !valid_name(name) {
            return Err(ContainerError::InvalidName(name.to_string()));
        }
        let has_record = |holder: &str| self.records.has_record(holder);
        names::reserve(&self.names_dir(), name, id, has_record).map_err(|e| match e {
            names::Reserve::Taken(holder) => ContainerError::NameInUse {
                name: name.to_string(),
                id: holder,
            },
            names::Reserve::Io(path, source) => ContainerError::Io { path, source },
        })
    }

    /// Releases `name` if `id` holds it.
    fn release_name(&self, name: &str, id: &str) {
        names::release(&self.names_dir(), name, id);
    }
}

/// Docker's rule for container (and volume) names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A container record for unit tests: `/bin/ep httpd -f` publishing 8100->8000/tcp and
/// exposing 53/udp too.
#[cfg(test)]
fn sample_config() -> ContainerConfig {
    ContainerConfig {
        id: "a".repeat(64),
        name: "web".into(),
        image: "busybox".into(),
        image_id: "sha256:00".into(),
        args: vec!["/bin/ep".into(), "httpd".into(), "-f".into()],
        created: "2026-01-01T00:00:00Z".into(),
        network: "bridge".into(),
        netns: None,
        ports: vec![PortMapping {
            host_ip: None,
            host_port: 8100,
            container_port: 8000,
            protocol: network::Protocol::Tcp,
        }],
        auto_remove: false,
        attached_network: None,
        entrypoint: vec!["/bin/ep".into()],
        user: String::new(),
        exposed_ports: vec!["53/udp".into(), "8000/tcp".into()],
        publish_all: false,
        mounts: Vec::new(),
        resources: Resources::default(),
        monitor: MonitorConfig::default(),
        pod: None,
        labels: BTreeMap::new(),
        security: Security::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        assert!(valid_name("web-1.a_b"));
        for bad in ["", "a", "-x", "a/b", "a b", ".x"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_name_is_reserved_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = Containers::new(dir.path());
        let _aaa = c.reserve_name("web", "aaa").unwrap();
        assert!(matches!(
            c.reserve_name("web", "bbb"),
            Err(ContainerError::NameInUse { ref id, .. }) if id == "aaa"
        ));
        c.release_name("web", "bbb");
        assert!(c.reserve_name("web", "ccc").is_err());
        c.release_name("web", "aaa");
        let _ccc = c.reserve_name("web", "ccc").unwrap();
    }
}
