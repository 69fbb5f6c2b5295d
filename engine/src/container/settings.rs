//! Settings of one berth installation, as dockerd's `--bridge`, `--fixed-cidr` and
//! `--cgroup-parent`: the bridge, subnet and nft table bridge-mode containers attach to, and
//! the cgroup parent every container's cgroup goes under. The `berth` command reads them from
//! `BERTH_BRIDGE`, `BERTH_SUBNET`, `BERTH_NFT_TABLE` and `BERTH_CGROUP_PARENT`; this library
//! takes them as values, validated once by [`Settings::new`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::network::{
    self, Ipv4Subnet, Network, NetworkConfig, NetworkError, SubnetError, DEFAULT_STATE_DIR,
};

/// The cgroup parent berth uses unless told otherwise (container cgroups are `berth/<id>`).
pub const DEFAULT_CGROUP_PARENT: &str = "berth";

/// Errors from validating installation settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The bridge or nft table name is refused.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The subnet does not parse.
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    /// The cgroup parent is not a plain relative cgroup path.
    #[error("cgroup parent {0:?}: use '/'-separated names of letters, digits, '_', '.' or '-' (no '.' or '..' components), at most 128 characters")]
    CgroupParent(String),
}

/// An installation's network and cgroup settings, validated when built.
#[derive(Debug, Clone)]
pub struct Settings {
    network: NetworkConfig,
    cgroup_parent: String,
}

impl Settings {
    /// Settings with bridge `bridge`, subnet `subnet` (CIDR), nft table `table` (family `ip`)
    /// and cgroup parent `cgroup_parent`; the network's state lives in
    /// `/run/berth/networks/<bridge>`.
    pub fn new(
        bridge: &str,
        subnet: &str,
        table: &str,
        cgroup_parent: &str,
    ) -> Result<Self, SettingsError> {
        let network = network_config(bridge, subnet, table)?;
        let parent = cgroup_parent.trim_matches('/');
        if !valid_cgroup_parent(parent) {
            return Err(SettingsError::CgroupParent(cgroup_parent.to_string()));
        }
        Ok(Settings {
            network,
            cgroup_parent: parent.to_string(),
        })
    }

    /// berth's defaults: bridge `berth0`, 10.88.0.0/16, table `berth`, cgroup parent `berth`.
    pub fn host_default() -> Self {
        Settings {
            network: NetworkConfig::host_default(),
            cgroup_parent: DEFAULT_CGROUP_PARENT.to_string(),
        }
    }

    /// The network bridge-mode containers attach to.
    pub fn network_config(&self) -> &NetworkConfig {
        &self.network
    }

    /// The cgroup parent (relative, no leading '/'): containers' cgroups are `<parent>/<id>`.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::host_default()
    }
}

fn network_config(bridge: &str, subnet: &str, table: &str) -> Result<NetworkConfig, SettingsError> {
    let parsed: Ipv4Subnet = subnet.parse()?;
    let state_dir = Path::new(DEFAULT_STATE_DIR).join(bridge);
    Ok(NetworkConfig::new(bridge, parsed, table, &state_dir)?)
}

fn valid_cgroup_parent(parent: &str) -> bool {
    !parent.is_empty()
        && parent.len() <= 128
        && parent.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        })
}

/// The network a container was attached to, recorded in its config so that release detaches
/// from that bridge and table even when the installation's settings changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedNetwork {
    /// The bridge.
    pub bridge: String,
    /// The subnet (CIDR).
    pub subnet: String,
    /// The nft table.
    pub table: String,
}

impl AttachedNetwork {
    /// The record of `config`.
    pub fn of(config: &NetworkConfig) -> Self {
        AttachedNetwork {
            bridge: config.bridge().to_string(),
            subnet: config.subnet().to_string(),
            table: config.table().to_string(),
        }
    }

    /// A handle on the recorded network.
    pub fn network(&self) -> Result<Network, SettingsError> {
        let config = network_config(&self.bridge, &self.subnet, &self.table)?;
        Ok(network::Network::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        let s = Settings::new("bt1", "10.88.201.0/24", "berth_t1", "/berth-test-1/").unwrap();
        assert_eq!(s.cgroup_parent(), "berth-test-1");
        assert_eq!(s.network_config().bridge(), "bt1");
        assert!(matches!(
            Settings::new("much-too-long-name", "10.88.0.0/16", "berth", "berth"),
            Err(SettingsError::Network(NetworkError::BridgeName(_)))
        ));
        assert!(matches!(
            Settings::new("b0", "10.88.0.0/40", "berth", "berth"),
            Err(SettingsError::Subnet(_))
        ));
        assert!(matches!(
            Settings::new("b0", "10.88.0.0/16", "nat", "berth"),
            Err(SettingsError::Network(NetworkError::TableName(_)))
        ));
        for bad in ["", "/", "a/../b", "a b", "a//b", "."] {
            assert!(
                matches!(
                    Settings::new("b0", "10.88.0.0/16", "berth", bad),
                    Err(SettingsError::CgroupParent(_))
                ),
                "{bad:?}"
            );
        }
        let d = Settings::host_default();
        assert_eq!(d.cgroup_parent(), "berth");
        assert_eq!(d.network_config().bridge(), "berth0");
    }

    #[test]
    fn recorded_network_round_trips() {
        let s = Settings::new("bt2", "10.88.202.0/24", "berth_t2", "berth").unwrap();
        let rec = AttachedNetwork::of(s.network_config());
        let net = rec.network().unwrap();
        assert_eq!(net.config().bridge(), "bt2");
        assert_eq!(net.config().table(), "berth_t2");
        assert_eq!(net.config().subnet().to_string(), "10.88.202.0/24");
    }
}
