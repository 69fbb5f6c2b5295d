//! Pods, as Kubernetes means them: containers sharing one network identity (network
//! namespace with one address and the pod's published ports), one IPC namespace and one
//! host name. A pod's namespaces are made and held by its infra process
//! (`berth __pod-infra <pod-id>`, see [`serve_infra`]); its containers join them by path
//! (`RunOptions::pod`).
//!
//! Layout: `$ROOT/pods/<id>/` holds `pod.json` ([`PodRecord`], fixed at create),
//! `state.json` ([`PodState`], written by the infra), `etc/` (hosts, resolv.conf, hostname,
//! bind-mounted into every container of the pod), `infra.log` (the infra's diagnostics) and
//! `lock` (serializes start, stop and remove). Names are reserved in `$ROOT/pod-names/`.
//! While the infra runs, the network namespace is `/run/berth/netns/<infra-id>` and the IPC
//! and UTS namespaces are bind-mounted at `/run/berth/<infra-id>/{ipc,uts}`; the network
//! attachment (veth, address, nft rules) is tagged with the infra id.
//!
//! Library callers (the node daemon) use [`Pods`]: [`Pods::create`] then [`Pods::start`]
//! (which re-executes the `berth` binary as the infra, so a multi-threaded caller never
//! forks or unshares itself), [`Pods::report`] for status, [`Pods::stop`] and
//! [`Pods::remove`]; containers join with `RunOptions { pod: Some(id), .. }` and are found
//! with [`Pods::members`].

mod infra;
mod lifecycle;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::container::{
    self, state::now_rfc3339, AttachedNetwork, ContainerConfig, ContainerError, Containers, State,
};
use crate::labels::Labels;
use crate::names;
use crate::network::{files, netns, PortMapping};
use crate::records::{write_json, RecordDirs, RecordError};

pub use infra::serve as serve_infra;

/// Where the infra bind-mounts a pod's IPC and UTS namespaces: `<dir>/<infra-id>/{ipc,uts}`.
pub const NAMESPACE_DIR: &str = "/run/berth";

/// Errors from creating, starting, stopping, inspecting or removing pods.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// No pod has this name or id.
    #[error("no such pod: {0}")]
    NotFound(String),
    /// An id prefix matches several pods.
    #[error("pod id prefix {0:?} matches several pods")]
    Ambiguous(String),
    /// The name is taken by another pod.
    #[error("pod name {name:?} is already in use by pod {id}")]
    NameInUse {
        /// The name.
        name: String,
        /// The pod holding it.
        id: String,
    },
    /// The name has characters Docker refuses.
    #[error("invalid pod name {0:?}: use letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidName(String),
    /// A container cannot join a pod whose infra is not running.
    #[error("pod {0} is not running: start it with berth pod start")]
    NotRunning(String),
    /// The pod is in the wrong state for the request.
    #[error("pod {id}: {reason}")]
    WrongState {
        /// The pod id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The infra process failed to start the pod or went away.
    #[error("pod {id}: infra: {reason}")]
    Infra {
        /// The pod id.
        id: String,
        /// What happened.
        reason: String,
    },
    /// Stopping or removing one of the pod's containers failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The host name is not valid, or the `/etc` files could not be written.
    #[error(transparent)]
    Files(#[from] files::FilesError),
    /// The network namespace could not be made or removed.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// Attaching to or detaching from the network failed (a port taken included).
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// The recorded network is refused.
    #[error(transparent)]
    Settings(#[from] container::SettingsError),
    /// A file operation failed.
    #[error("pod {path}: {source}")]
    Io {
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("pod {path}: {op}: {source}")]
    Sys {
        /// What it acted on.
        path: PathBuf,
        /// The call.
        op: &'static str,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A record is not valid JSON.
    #[error("pod record {path}: corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl From<PodError> for ContainerError {
    fn from(e: PodError) -> Self {
        ContainerError::Pod(Box::new(e))
    }
}

impl From<RecordError> for PodError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NotFound(id) => PodError::NotFound(id),
            RecordError::Io { path, source } => PodError::Io { path, source },
            RecordError::Corrupt { path, source } => PodError::Corrupt { path, source },
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PodError + '_ {
    move |source| PodError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `berth pod create` asks for.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// `--name` (default `berth_pod_<short id>`).
    pub name: Option<String>,
    /// `--hostname` (default: the pod's name, as Kubernetes and podman do).
    pub hostname: Option<String>,
    /// `-p`, parsed: the pod's published ports (host port 0 = picked at start).
    pub publish: Vec<PortMapping>,
    /// `--label k=v`.
    pub labels: Labels,
    /// Share the host's network namespace (a Pod's `hostNetwork`): no namespace, address or
    /// published ports of its own.
    pub host_network: bool,
}

/// berth's record of a pod (`pod.json`), fixed at create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    /// 64 hex digits.
    pub id: String,
    /// Its unique name (among pods).
    pub name: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// The host name every container of the pod has.
    pub hostname: String,
    /// `--label k=v`.
    #[serde(default)]
    pub labels: Labels,
    /// The published ports as asked for (host port 0 = picked at each start).
    pub publish: Vec<PortMapping>,
    /// The infra's id (64 hex digits): names its network namespace, veth and nft rules.
    pub infra_id: String,
    /// The network the pod attaches to.
    pub network: AttachedNetwork,
    /// It uses the host's network namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
}

impl PodRecord {
    /// The first 12 hex digits of the id.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The pod's network namespace, while the infra runs.
    pub fn netns_path(&self) -> PathBuf {
        Path::new(netns::DEFAULT_DIR).join(&self.infra_id)
    }

    /// Where the infra bind-mounts the pod's IPC and UTS namespaces.
    pub fn namespace_dir(&self) -> PathBuf {
        Path::new(NAMESPACE_DIR).join(&self.infra_id)
    }

    /// The pod's IPC namespace, while the infra runs.
    pub fn ipc_path(&self) -> PathBuf {
        self.namespace_dir().join("ipc")
    }

    /// The pod's UTS namespace, while the infra runs.
    pub fn uts_path(&self) -> PathBuf {
        self.namespace_dir().join("uts")
    }
}

/// The record in a pod's `state.json`: the infra's process and what its start gave the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodState {
    /// The infra's pid while it runs.
    pub infra_pid: Option<i32>,
    /// When the infra last started (RFC 3339).
    pub started_at: Option<String>,
    /// When the infra last stopped (RFC 3339).
    pub finished_at: Option<String>,
    /// The pod's address on the bridge while it runs.
    pub ip: Option<Ipv4Addr>,
    /// Its forwarded ports while it runs, host ports filled in.
    pub ports: Vec<PortMapping>,
    /// Why the infra last failed, if it did.
    pub error: Option<String>,
}

impl PodState {
    fn load(dir: &Path) -> Result<Self, PodError> {
        let path = dir.join("state.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| PodError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PodState::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<(), PodError> {
        Ok(write_json(&dir.join("state.json"), self)?)
    }

    /// Whether the infra recorded here still runs.
    pub fn infra_running(&self) -> bool {
        self.infra_pid.is_some_and(container::state::process_alive)
    }
}

/// A pod's status, from its infra and its containers (podman's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodStatus {
    /// Never started.
    Created,
    /// The infra and every container run.
    Running,
    /// The infra runs, some containers do not.
    Degraded,
    /// The infra is not running.
    Exited,
}

impl fmt::Display for PodStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PodStatus::Created => "Created",
            PodStatus::Running => "Running",
            PodStatus::Degraded => "Degraded",
            PodStatus::Exited => "Exited",
        })
    }
}

/// A pod with its infra's state and its containers, as `pod ps` and `pod inspect` show it.
#[derive(Debug, Clone)]
pub struct PodReport {
    /// The record.
    pub record: PodRecord,
    /// The infra's state.
    pub state: PodState,
    /// Derived from both.
    pub status: PodStatus,
    /// Its containers with their states, oldest first.
    pub containers: Vec<(ContainerConfig, State)>,
}

/// The pods of one store root.
#[derive(Debug, Clone)]
pub struct Pods {
    containers: Containers,
    records: RecordDirs,
}

impl Pods {
    /// The pods kept beside `containers` (same store root and installation settings).
    pub fn new(containers: Containers) -> Self {
        Pods {
            records: RecordDirs::new(containers.root(), "pods", "pod.json"),
            containers,
        }
    }

    /// The containers of the same store.
    pub fn containers(&self) -> &Containers {
        &self.containers
    }

    /// The directory of pod `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.records.dir(id)
    }

    /// The `/etc` files (hosts, resolv.conf, hostname) the pod's containers share.
    pub fn etc_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("etc")
    }

    fn names_dir(&self) -> PathBuf {
        self.containers.root().join("pod-names")
    }

    /// Records a new pod (not started: see [`Pods::start`]). Every check comes first; a
    /// failure leaves nothing behind.
    pub fn create(&self, opts: &PodOptions) -> Result<PodRecord, PodError> {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| format!("berth_pod_{}", &id[..12]));
        if !container::valid_name(&name) {
            return Err(PodError::InvalidName(name));
        }
        let hostname = match &opts.hostname {
            Some(h) => h.clone(),
            None if files::validate_hostname(&name).is_ok() => name.clone(),
            None => id[..12].to_string(),
        };
        files::validate_hostname(&hostname)?;
        let record = PodRecord {
            id: id.clone(),
            name: name.clone(),
            created: now_rfc3339(),
            hostname,
            labels: opts.labels.clone(),
            publish: opts.publish.clone(),
            infra_id: hex::encode(rand::random::<[u8; 32]>()),
            network: AttachedNetwork::of(self.containers.settings().network_config()),
            host_network: opts.host_network,
        };
        let has_record = |holder: &str| self.records.has_record(holder);
        let _name =
            names::reserve(&self.names_dir(), &name, &id, has_record).map_err(|e| match e {
                names::Reserve::Taken(holder) => PodError::NameInUse {
                    name: name.clone(),
                    id: holder,
                },
                names::Reserve::Io(path, source) => PodError::Io { path, source },
            })?;
        let made = self
            .records
            .create(&id, &["etc"])
            .and_then(|_| self.records.write(&id, &record));
        if let Err(e) = made {
            let _ = self.records.remove(&id);
            names::release(&self.names_dir(), &name, &id);
            return Err(e.into());
        }
        tracing::info!(pod = record.short_id(), %name, "pod created");
        Ok(record)
    }

    /// Reads pod `id`'s record.
    pub fn record(&self, id: &str) -> Result<PodRecord, PodError> {
        Ok(self.records.read(id)?)
    }

    /// Reads pod `id`'s infra state (empty before its first start).
    pub fn state(&self, id: &str) -> Result<PodState, PodError> {
        PodState::load(&self.dir(id))
    }

    /// The ids of every pod, sorted.
    pub fn ids(&self) -> Result<Vec<String>, PodError> {
        Ok(self.records.ids()?)
    }

    /// The pod called `query`: a name, a full id, or a unique id prefix.
    pub fn lookup(&self, query: &str) -> Result<PodRecord, PodError> {
        if container::valid_name(query) {
            if let Some(id) = names::holder(&self.names_dir(), query) {
                if let Ok(p) = self.record(&id) {
                    return Ok(p);
                }
            }
        }
        match names::match_prefix(query, || self.ids())? {
            names::PrefixMatch::One(id) => self.record(&id),
            names::PrefixMatch::Many => Err(PodError::Ambiguous(query.to_string())),
            names::PrefixMatch::None => Err(PodError::NotFound(query.to_string())),
        }
    }

    /// The containers of pod `pod` with their states, oldest first.
    pub fn members(&self, pod: &PodRecord) -> Result<Vec<(ContainerConfig, State)>, PodError> {
        let mut members: Vec<_> = self
            .containers
            .list()?
            .into_iter()
            .filter(|(c, _)| c.pod.as_deref() == Some(pod.id.as_str()))
            .collect();
        members.reverse();
        Ok(members)
    }

    /// Pod `pod` with its infra's state, its status and its containers.
    pub fn report(&self, pod: &PodRecord) -> Result<PodReport, PodError> {
        let state = self.state(&pod.id)?;
        let containers = self.members(pod)?;
        let status = if state.infra_running() {
            if containers.iter().all(|(_, s)| s.is_running()) {
                PodStatus::Running
            } else {
                PodStatus::Degraded
            }
        } else if state.started_at.is_none() {
            PodStatus::Created
        } else {
            PodStatus::Exited
        };
        Ok(PodReport {
            record: pod.clone(),
            state,
            status,
            containers,
        })
    }

    /// Every pod with its report, newest first. A pod removed while listing is left out.
    pub fn list(&self) -> Result<Vec<PodReport>, PodError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            let Ok(record) = self.record(&id) else {
                continue;
            };
            out.push(self.report(&record)?);
        }
        out.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> (tempfile::TempDir, Pods) {
        let dir = tempfile::tempdir().unwrap();
        let pods = Pods::new(Containers::new(dir.path()));
        (dir, pods)
    }

    #[test]
    fn create_records_and_finds_a_pod() {
        let (_dir, pods) = pods();
        let opts = PodOptions {
            name: Some("web".into()),
            labels: crate::labels::parse_all(&["tier=front"]).unwrap(),
            publish: crate::network::parse_publish("8080:80").unwrap(),
            ..Default::default()
        };
        let pod = pods.create(&opts).unwrap();
        assert_eq!(pod.hostname, "web");
        assert_eq!(pods.lookup("web").unwrap(), pod);
        assert_eq!(pods.lookup(&pod.id[..8]).unwrap(), pod);
        assert_eq!(pods.record(&pod.id).unwrap().labels["tier"], "front");
        assert_eq!(pod.publish[0].container_port, 80);
        let report = pods.report(&pod).unwrap();
        assert_eq!(report.status, PodStatus::Created);
        assert!(report.containers.is_empty());
        assert!(pod.netns_path().ends_with(&pod.infra_id));
        assert_eq!(
            pod.uts_path(),
            Path::new("/run/berth").join(&pod.infra_id).join("uts")
        );
        assert!(matches!(pods.lookup("nope"), Err(PodError::NotFound(_))));
    }

    #[test]
    fn names_are_unique_and_checked() {
        let (_dir, pods) = pods();
        let named = |n: &str| PodOptions {
            name: Some(n.into()),
            ..Default::default()
        };
        let first = pods.create(&named("db")).unwrap();
        assert!(matches!(
            pods.create(&named("db")),
            Err(PodError::NameInUse { ref id, .. }) if *id == first.id
        ));
        assert!(matches!(
            pods.create(&named("a/b")),
            Err(PodError::InvalidName(_))
        ));
        let bad_host = PodOptions {
            hostname: Some("bad_host".into()),
            ..named("ok")
        };
        assert!(matches!(pods.create(&bad_host), Err(PodError::Files(_))));
        // Nothing was left of the refused pods: only "db" exists, and "ok" is free.
        assert_eq!(pods.ids().unwrap(), vec![first.id.clone()]);
        pods.create(&named("ok")).unwrap();
        // A name that is not a valid host name gives a short-id host name.
        let odd = pods.create(&named("under_score")).unwrap();
        assert_eq!(odd.hostname, &odd.id[..12]);
    }

    #[test]
    fn state_round_trips_and_a_dead_infra_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PodState::load(dir.path()).unwrap(), PodState::default());
        let s = PodState {
            infra_pid: Some(i32::MAX),
            ip: Some(Ipv4Addr::new(10, 88, 0, 2)),
            ..Default::default()
        };
        s.save(dir.path()).unwrap();
        let back = PodState::load(dir.path()).unwrap();
        assert_eq!(back, s);
        assert!(!back.infra_running());
    }
}
