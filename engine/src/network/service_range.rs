//! Address and port allocation for Services: cluster IPs from the service range (default
//! 10.96.0.0/16, `BERTH_SERVICE_CIDR`) and node ports from 30000-32767, each handed out once.
//! Allocations are derived from the Services themselves (their `clusterIP` and `nodePort`
//! fields), so there is no second record to drift from them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use super::subnet::Ipv4Subnet;

/// Kubernetes' default service range.
pub const DEFAULT_SERVICE_RANGE: Ipv4Subnet =
    Ipv4Subnet::new_const(Ipv4Addr::new(10, 96, 0, 0), 16);
/// The node port range.
pub const NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// Why a Service cannot have the address or port it asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The requested cluster IP is outside the range.
    #[error("spec.clusterIP: Invalid value: \"{ip}\": provided IP is not in the valid range. The range of valid IPs is {range}")]
    OutOfRange {
        /// The address.
        ip: Ipv4Addr,
        /// The range.
        range: Ipv4Subnet,
    },
    /// Another Service has the cluster IP.
    #[error(
        "spec.clusterIP: Invalid value: \"{ip}\": provided IP is already allocated (to {owner})"
    )]
    IpTaken {
        /// The address.
        ip: Ipv4Addr,
        /// The Service holding it.
        owner: String,
    },
    /// The range has no free address left.
    #[error("no cluster IP left in {0}")]
    RangeFull(Ipv4Subnet),
    /// The node port is outside 30000-32767.
    #[error("spec.ports: Invalid value: {0}: provided port is not in the valid range. The range of valid ports is 30000-32767")]
    PortOutOfRange(u16),
    /// Another Service has the node port.
    #[error("spec.ports: Invalid value: {port}: provided port is already allocated (to {owner})")]
    PortTaken {
        /// The port.
        port: u16,
        /// The Service holding it.
        owner: String,
    },
    /// Every node port is taken.
    #[error("no node port left in 30000-32767")]
    PortsFull,
}

/// What is taken: cluster IPs and node ports, each with the Service (`ns/name`) holding it.
#[derive(Debug, Clone, Default)]
pub struct Allocations {
    ips: BTreeMap<Ipv4Addr, String>,
    ports: BTreeMap<u16, String>,
}

impl Allocations {
    /// Records that `owner` holds `ip` (the first holder wins; see [`Allocations::claim_ip`]).
    pub fn claim_ip(
        &mut self,
        ip: Ipv4Addr,
        owner: &str,
        range: Ipv4Subnet,
    ) -> Result<(), AllocError> {
        if !range.contains(ip) || ip == range.network() || ip == range.broadcast() {
            return Err(AllocError::OutOfRange { ip, range });
        }
        match self.ips.get(&ip) {
            Some(o) if o != owner => Err(AllocError::IpTaken {
                ip,
                owner: o.clone(),
            }),
            _ => {
                self.ips.insert(ip, owner.to_string());
                Ok(())
            }
        }
    }

    /// Records that `owner` holds node port `port`.
    pub fn claim_port(&mut self, port: u16, owner: &str) -> Result<(), AllocError> {
        if !NODE_PORTS.contains(&port) {
            return Err(AllocError::PortOutOfRange(port));
        }
        match self.ports.get(&port) {
            Some(o) if o != owner => Err(AllocError::PortTaken {
                port,
                owner: o.clone(),
            }),
            _ => {
                self.ports.insert(port, owner.to_string());
                Ok(())
            }
        }
    }

    /// Gives `owner` the first free cluster IP of `range` (the first host address is left
    /// for the API itself, as Kubernetes keeps `.1` for the `kubernetes` Service).
    pub fn allocate_ip(&mut self, owner: &str, range: Ipv4Subnet) -> Result<Ipv4Addr, AllocError> {
        let first = u32::from(range.network()) + 2;
        let last = u32::from(range.broadcast());
        let ip = (first..last)
            .map(Ipv4Addr::from)
            .find(|ip| !self.ips.contains_key(ip))
            .ok_or(AllocError::RangeFull(range))?;
        self.ips.insert(ip, owner.to_string());
        Ok(ip)
    }

    /// Gives `owner` a free node port, starting from a point derived from its name so that
    /// Services keep the same port when re-created in the same order.
    pub fn allocate_port(&mut self, owner: &str) -> Result<u16, AllocError> {
        let span = u32::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
        let start = owner
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % span;
        let port = (0..span)
            .map(|i| NODE_PORTS.start() + ((start + i) % span) as u16)
            .find(|p| !self.ports.contains_key(p))
            .ok_or(AllocError::PortsFull)?;
        self.ports.insert(port, owner.to_string());
        Ok(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Ipv4Subnet {
        "10.97.5.0/29".parse().unwrap()
    }

    #[test]
    fn cluster_ips_are_handed_out_once() {
        let mut a = Allocations::default();
        a.claim_ip(Ipv4Addr::new(10, 97, 5, 3), "ns/a", range())
            .unwrap();
        assert_eq!(
            a.allocate_ip("ns/b", range()).unwrap(),
            Ipv4Addr::new(10, 97, 5, 2)
        );
        assert_eq!(
            a.allocate_ip("ns/c", range()).unwrap(),
            Ipv4Addr::new(10, 97, 5, 4)
        );
        assert_eq!(
            a.allocate_ip("ns/d", range()).unwrap(),
            Ipv4Addr::new(10, 97, 5, 5)
        );
        assert_eq!(
            a.allocate_ip("ns/e", range()).unwrap(),
            Ipv4Addr::new(10, 97, 5, 6)
        );
        assert_eq!(
            a.allocate_ip("ns/f", range()),
            Err(AllocError::RangeFull(range()))
        );
        let e = a
            .claim_ip(Ipv4Addr::new(10, 97, 5, 3), "ns/x", range())
            .unwrap_err();
        assert_eq!(e.to_string(), "spec.clusterIP: Invalid value: \"10.97.5.3\": provided IP is already allocated (to ns/a)");
        assert!(a
            .claim_ip(Ipv4Addr::new(10, 97, 5, 3), "ns/a", range())
            .is_ok());
        assert!(matches!(
            a.claim_ip(Ipv4Addr::new(10, 96, 0, 9), "ns/x", range()),
            Err(AllocError::OutOfRange { .. })
        ));
        assert!(a.claim_ip(range().broadcast(), "ns/x", range()).is_err());
    }

    #[test]
    fn node_ports_refuse_duplicates() {
        let mut a = Allocations::default();
        a.claim_port(30080, "ns/a").unwrap();
        assert_eq!(
            a.claim_port(30080, "ns/b"),
            Err(AllocError::PortTaken {
                port: 30080,
                owner: "ns/a".into()
            })
        );
        assert_eq!(
            a.claim_port(8080, "ns/b"),
            Err(AllocError::PortOutOfRange(8080))
        );
        let p = a.allocate_port("ns/b").unwrap();
        assert!(NODE_PORTS.contains(&p) && p != 30080);
        let mut again = Allocations::default();
        again.claim_port(30080, "ns/a").unwrap();
        assert_eq!(
            again.allocate_port("ns/b").unwrap(),
            p,
            "same order, same port"
        );
    }

    #[test]
    fn every_port_can_be_handed_out() {
        let mut a = Allocations::default();
        for i in 0..=(32767 - 30000) {
            a.allocate_port(&format!("ns/s{i}")).unwrap();
        }
        assert_eq!(a.allocate_port("ns/last"), Err(AllocError::PortsFull));
    }
}
