//! Container networking: a bridge with a subnet, a veth per container or pod, address
//! management that never hands out an address twice, and port forwarding in an nftables table
//! berth owns. Everything a container adds is tagged with its id and removed by [`Network::detach`];
//! nothing else on the host is touched (except `net.ipv4.ip_forward`, see
//! [`NetworkConfig::with_ip_forward`]).
//!
//! The state that must outlive berth's processes lives in the kernel (links, nft rules) and in
//! the network's state dir (addresses, attachment records), so forwarding keeps working while
//! no berth process runs and a restarted monitor or daemon finds everything as it was.
//!
//! How `berth run` (or a pod) uses it, by [`NetworkMode`]:
//! - `bridge`: [`netns::create`] a namespace for the container or pod (under
//!   [`netns::DEFAULT_DIR`]), [`Network::attach`] it with the parsed `-p` specs
//!   ([`parse_publish`], or [`publish_all`] for `-P`), write [`files::hosts`] (with the
//!   attachment's address), [`files::resolv_conf`] and [`files::hostname`] with
//!   [`files::write_all`] into the container dir and bind-mount them over `/etc/…`; give the
//!   runtime the namespace path in the spec. On exit: [`Network::detach`], then
//!   [`netns::remove`].
//! - `none`: [`netns::create`], then [`netns::loopback_up`]; no attach.
//! - `host`: no namespace, the host's `/etc/resolv.conf` unchanged; `-p` is meaningless.
//! - `container:NAME`: the spec points at NAME's namespace path; nothing to attach.
//!
//! IPv4 only. Forwarded flows carry a conntrack mark derived from their owner's id, which
//! detach uses to flush them (see `conntrack`).

mod bridge;
mod conntrack;
pub mod files;
mod ipam;
mod mode;
mod netlink;
pub mod netns;
mod portmap;
mod ports;
mod service_range;
mod service_rules;
mod subnet;
mod sysctl;
mod veth;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ipam::IpamError;
pub use mode::{ModeError, NetworkMode};
pub use netlink::NetlinkError;
pub use portmap::PortMapError;
pub use ports::{parse_exposed, parse_publish, publish_all, PortMapping, PortSpecError, Protocol};
pub use service_range::{AllocError, Allocations, DEFAULT_SERVICE_RANGE, NODE_PORTS};
pub use service_rules::{ServicePortRule, ServiceRules, ServiceTable};
pub use subnet::{Ipv4Subnet, SubnetError};
pub use sysctl::SysctlError;
pub use veth::{host_name as veth_name, CONTAINER_IFNAME};

use ipam::Ipam;
use portmap::Ruleset;

/// The bridge berth uses unless told otherwise.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// The nftables table (family `ip`) berth uses unless told otherwise.
pub const DEFAULT_TABLE: &str = "berth";
/// Where networks keep their address allocations and attachment records by default.
pub const DEFAULT_STATE_DIR: &str = "/run/berth/networks";

/// Errors from attaching or detaching containers.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The bridge name is not a valid interface name.
    #[error("bridge name {0:?}: use 1 to 15 letters, digits, '-' or '_'")]
    BridgeName(String),
    /// The table name is not one berth may own.
    #[error(
        "nft table name {0:?}: must start with \"berth\" and use only letters, digits and '_'"
    )]
    TableName(String),
    /// The container or pod id cannot be used in names and rule comments.
    #[error(
        "container id {0:?}: use 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    Id(String),
    /// The namespace given to attach is the host's own.
    #[error("network namespace {0} is the host's: refusing to attach it")]
    HostNamespace(PathBuf),
    /// The namespace file could not be checked.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// The container is attached already.
    #[error("container {0} is already attached to the network")]
    AlreadyAttached(String),
    /// Address management failed.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// A link, address or route operation failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// Port forwarding failed or a port is taken.
    #[error(transparent)]
    PortMap(#[from] PortMapError),
    /// A sysctl could not be set.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// An attachment record could not be read or written.
    #[error("attachment record {path}: {source}")]
    Record {
        /// The record file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An attachment record is not valid JSON.
    #[error("attachment record {path}: corrupt: {source}")]
    RecordCorrupt {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Names, subnet and state dir of one berth network, validated when built.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    bridge: String,
    subnet: Ipv4Subnet,
    table: String,
    state_dir: PathBuf,
    ip_forward: bool,
}

impl NetworkConfig {
    /// A network with its own bridge, subnet and nft table (tests run several side by side),
    /// keeping its addresses and attachment records in `state_dir`.
    pub fn new(
        bridge: &str,
        subnet: Ipv4Subnet,
        table: &str,
        state_dir: &Path,
    ) -> Result<Self, NetworkError> {
        let ifname_ok = !bridge.is_empty()
            && bridge.len() <= 15
            && bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ifname_ok {
            return Err(NetworkError::BridgeName(bridge.to_string()));
        }
        let table_ok = table.starts_with("berth")
            && table.len() <= 64
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !table_ok {
            return Err(NetworkError::TableName(table.to_string()));
        }
        Ok(NetworkConfig {
            bridge: bridge.to_string(),
            subnet,
            table: table.to_string(),
            state_dir: state_dir.to_path_buf(),
            ip_forward: true,
        })
    }

    /// berth's default network: `berth0`, 10.88.0.0/16, table `berth`, state in
    /// `/run/berth/networks/berth0`. The state sits beside the kernel objects it describes,
    /// not under a store root: the bridge and table are host-wide, so every store root
    /// (`--root`) must share one allocator, and after a reboot both the links and the state
    /// are gone together.
    pub fn host_default() -> Self {
        NetworkConfig {
            bridge: DEFAULT_BRIDGE.to_string(),
            subnet: Ipv4Subnet::default_berth(),
            table: DEFAULT_TABLE.to_string(),
            state_dir: Path::new(DEFAULT_STATE_DIR).join(DEFAULT_BRIDGE),
            ip_forward: true,
        }
    }

    /// Whether attach may set the host-wide `net.ipv4.ip_forward=1` when it is 0 (the
    /// default: containers need it to reach other hosts and to be reached from them).
    /// Forwarding from this host's own addresses and from 127.0.0.1 works without it.
    pub fn with_ip_forward(mut self, enable: bool) -> Self {
        self.ip_forward = enable;
        self
    }

    /// The bridge name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The subnet.
    pub fn subnet(&self) -> Ipv4Subnet {
        self.subnet
    }

    /// The nft table name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// What attaching a container gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container or pod id.
    pub container_id: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// The host end of its veth.
    pub veth: String,
    /// The network namespace it was attached in.
    pub netns: PathBuf,
    /// Its forwarded ports, host ports filled in.
    pub ports: Vec<PortMapping>,
}

/// One berth network: attach and detach containers' network namespaces.
#[derive(Debug, Clone)]
pub struct Network {
    config: NetworkConfig,
    ipam: Ipam,
}

fn validate_id(id: &str) -> Result<(), NetworkError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::Id(id.to_string()))
    }
}

impl Network {
    /// A handle on the network described by `config`; nothing is created until the first
    /// attach.
    pub fn new(config: NetworkConfig) -> Self {
        let ipam = Ipam::new(&config.state_dir, config.subnet);
        Network { config, ipam }
    }

    /// The network's configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    fn ruleset(&self) -> Ruleset {
        Ruleset {
            table: self.config.table.clone(),
            bridge: self.config.bridge.clone(),
            subnet: self.config.subnet,
        }
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.config
            .state_dir
            .join("attachments")
            .join(format!("{id}.json"))
    }

    /// The attachment of container `id`, if it is attached.
    pub fn attachment(&self, id: &str) -> Result<Option<Attachment>, NetworkError> {
        validate_id(id)?;
        let path = self.record_path(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| NetworkError::RecordCorrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NetworkError::Record { path, source }),
        }
    }

    /// Every attachment on record (for listing ports, and for a daemon to reconcile against
    /// the containers that still exist).
    pub fn attachments(&self) -> Result<Vec<Attachment>, NetworkError> {
        let dir = self.config.state_dir.join("attachments");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(NetworkError::Record { path: dir, source }),
        };
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| NetworkError::Record {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if validate_id(id).is_err() {
                continue;
            }
            if let Some(a) = self.attachment(id)? {
                all.push(a);
            }
        }
        all.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(all)
    }

    fn save_record(&self, attachment: &Attachment) -> Result<(), NetworkError> {
        let path = self.record_path(&attachment.container_id);
        let record_err = |source| NetworkError::Record {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            berth_image::perms::private_dir(dir).map_err(record_err)?;
        }
        let bytes = serde_json::to_vec_pretty(attachment).map_err(|source| {
            NetworkError::RecordCorrupt {
                path: path.clone(),
                source,
            }
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes).map_err(record_err)?;
        std::fs::rename(&tmp, &path).map_err(record_err)
    }

    /// Creates what the network itself needs (bridge with gateway, sysctls, nft table) if
    /// missing, and returns the bridge's index and berth's current forwards.
    fn ensure(&self) -> Result<(u32, Vec<portmap::Forward>), NetworkError> {
        let c = &self.config;
        let index = bridge::ensure(&c.bridge, c.subnet.gateway(), c.subnet.prefix())?;
        if c.ip_forward && sysctl::enable_ip_forward()? {
            tracing::warn!("set net.ipv4.ip_forward=1 (it was 0) so containers can be reached from other hosts");
        }
        let rules = portmap::list(&c.table)?.unwrap_or_default();
        if !self.ruleset().has_base(&rules) {
            let what = format!("create the port-forward chains of table {}", c.table);
            portmap::apply(&what, &self.ruleset().base())?;
        } else if !self.ruleset().has_loopback_guard(&rules) {
            let what = format!("add the loopback guard to table {}", c.table);
            portmap::apply(&what, &self.ruleset().loopback_guard())?;
        }
        // Only with the guard in place: route_localnet alone lets containers reach the
        // host's loopback.
        sysctl::enable_route_localnet(&c.bridge)?;
        Ok((index, rules.iter().filter_map(|r| r.forward()).collect()))
    }

    /// Attaches the network namespace at `netns` as container `id`: gives it an address and a
    /// veth into the bridge, and forwards `ports` (host port 0 = pick a free one). Every check
    /// (ports taken by berth or by a listening socket, the id) happens before anything is
    /// created, and a failure part-way removes what was created: nothing is left half-made.
    pub fn attach(
        &self,
        id: &str,
        netns: &Path,
        ports: &[PortMapping],
    ) -> Result<Attachment, NetworkError> {
        validate_id(id)?;
        if netns::is_current(netns)? {
            return Err(NetworkError::HostNamespace(netns.to_path_buf()));
        }
        let span = tracing::info_span!("attach", container = id, bridge = %self.config.bridge);
        let _enter = span.enter();
        let mut lock = self.ipam.lock()?;
        if self.attachment(id)?.is_some() {
            return Err(NetworkError::AlreadyAttached(id.to_string()));
        }
        // Leftovers of an attach that crashed before writing its record.
        self.remove_owned(&mut lock, id, &veth::host_name(id))?;
        let (bridge_index, forwards) = self.ensure()?;
        let ports = portmap::reserve(&forwards, ports)?;
        let ip = lock.allocate(id)?;
        let attachment = Attachment {
            container_id: id.to_string(),
            ip,
            prefix: self.config.subnet.prefix(),
            gateway: self.config.subnet.gateway(),
            veth: veth::host_name(id),
            netns: netns.to_path_buf(),
            ports,
        };
        let made = veth::create(
            &attachment.veth,
            bridge_index,
            netns,
            ip,
            attachment.prefix,
            attachment.gateway,
        )
        .map_err(NetworkError::from)
        .and_then(|()| {
            if attachment.ports.is_empty() {
                return Ok(());
            }
            let script = self.ruleset().add_forwards(id, ip, &attachment.ports);
            portmap::apply(&format!("forward ports of {id}"), &script).map_err(Into::into)
        })
        .and_then(|()| self.save_record(&attachment));
        if let Err(e) = made {
            if let Err(cleanup) = self.remove_owned(&mut lock, id, &attachment.veth) {
                tracing::warn!(error = %cleanup, "cannot undo a failed attach");
            }
            return Err(e);
        }
        tracing::info!(ip = %ip, veth = %attachment.veth, ports = attachment.ports.len(), "attached");
        Ok(attachment)
    }

    /// Removes everything attaching container `id` added: its forwarding rules, its veth, its
    /// address and its record. Returns whether anything was there.
    pub fn detach(&self, id: &str) -> Result<bool, NetworkError> {
        validate_id(id)?;
        let span = tracing::info_span!("detach", container = id, bridge = %self.config.bridge);
        let _enter = span.enter();
        let mut lock = self.ipam.lock()?;
        let veth = self
            .attachment(id)?
            .map(|a| a.veth)
            .unwrap_or_else(|| veth::host_name(id));
        self.remove_owned(&mut lock, id, &veth)
    }

    fn remove_owned(
        &self,
        lock: &mut ipam::IpamLock,
        id: &str,
        veth: &str,
    ) -> Result<bool, NetworkError> {
        let mut found = false;
        if let Some(rules) = portmap::list(&self.config.table)? {
            let owned: Vec<_> = rules
                .into_iter()
                .filter(|r| r.owner() == Some(id))
                .collect();
            if !owned.is_empty() {
                portmap::apply(
                    &format!("remove forwards of {id}"),
                    &self.ruleset().delete(&owned),
                )?;
                // Best effort: flows left behind expire once their clients go quiet.
                if let Err(e) = conntrack::flush_mark(conntrack::mark_for(id)) {
                    tracing::warn!(error = %e, "cannot forget the forwarded flows");
                }
                found = true;
            }
        }
        found |= veth::delete_link(veth)?;
        found |= lock.release(id)?.is_some();
        let path = self.record_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => found = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(NetworkError::Record { path, source }),
        }
        if found {
            tracing::info!(container = id, "detached");
        }
        Ok(found)
    }

    /// Whether anything of the network is on the host: its bridge, its nft table or its
    /// state dir.
    pub fn exists(&self) -> Result<bool, NetworkError> {
        let c = &self.config;
        Ok(Path::new("/sys/class/net").join(&c.bridge).exists()
            || c.state_dir.exists()
            || portmap::list(&c.table)?.is_some())
    }

    /// Removes the whole network: every attached container's veth, the nft table, the bridge
    /// and the state dir. For tests and for `berth network rm` and `berth system reset`.
    pub fn teardown(&self) -> Result<(), NetworkError> {
        {
            let mut lock = self.ipam.lock()?;
            let owners: Vec<String> = lock.allocations().values().cloned().collect();
            for id in owners {
                let veth = self
                    .attachment(&id)?
                    .map(|a| a.veth)
                    .unwrap_or_else(|| veth::host_name(&id));
                self.remove_owned(&mut lock, &id, &veth)?;
            }
            if portmap::list(&self.config.table)?.is_some() {
                portmap::apply(
                    &format!("delete table {}", self.config.table),
                    &self.ruleset().delete_table(),
                )?;
            }
            bridge::remove(&self.config.bridge)?;
        }
        match std::fs::remove_dir_all(&self.config.state_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetworkError::Record {
                path: self.config.state_dir.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validates_names() {
        let s: Ipv4Subnet = "10.88.1.0/24".parse().unwrap();
        let dir = Path::new("/nonexistent");
        assert!(NetworkConfig::new("berth-t1", s, "berth_t1", dir).is_ok());
        assert!(matches!(
            NetworkConfig::new("much-too-long-name", s, "berth", dir),
            Err(NetworkError::BridgeName(_))
        ));
        assert!(matches!(
            NetworkConfig::new("b0", s, "filter", dir),
            Err(NetworkError::TableName(_))
        ));
        assert!(matches!(
            NetworkConfig::new("b0", s, "berth-x", dir),
            Err(NetworkError::TableName(_))
        ));
        let d = NetworkConfig::host_default();
        assert_eq!(d.state_dir, Path::new("/run/berth/networks/berth0"));
        assert_eq!(d.bridge(), "berth0");
        assert_eq!(d.table(), "berth");
        assert_eq!(d.subnet().to_string(), "10.88.0.0/16");
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1.x_y").is_ok());
        for bad in ["", ".hidden", "a b", "a/b", "a\"b", &"a".repeat(129)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
