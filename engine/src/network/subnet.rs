//! An IPv4 subnet in CIDR notation (`10.88.0.0/16`): the address space of one berth network.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Errors parsing a subnet.
#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    /// Not of the form `A.B.C.D/N`.
    #[error("subnet {0:?}: expected an IPv4 network such as 10.88.0.0/16")]
    Syntax(String),
    /// The prefix leaves no room for a gateway and a container, or is not a prefix.
    #[error("subnet {0:?}: prefix length must be between 8 and 30")]
    Prefix(String),
    /// Host bits are set in the network address.
    #[error("subnet {spec:?}: host bits are set (did you mean {network}/{prefix}?)")]
    HostBits {
        /// The text given.
        spec: String,
        /// The network address with host bits cleared.
        network: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
    },
}

/// A validated IPv4 subnet: network address plus prefix length (8..=30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Subnet {
    /// berth's default subnet, 10.88.0.0/16.
    pub const fn default_berth() -> Self {
        Ipv4Subnet {
            network: Ipv4Addr::new(10, 88, 0, 0),
            prefix: 16,
        }
    }

    /// A subnet known valid at compile time (network address with host bits zero, prefix
    /// 8..=30), for constants.
    pub const fn new_const(network: Ipv4Addr, prefix: u8) -> Self {
        Ipv4Subnet { network, prefix }
    }

    /// The network address (all host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// The broadcast address (all host bits one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The gateway berth puts on its bridge: the first host address (`.1`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `addr` lies inside this subnet.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == u32::from(self.network)
    }

    /// The addresses containers may get: every host address except the gateway.
    pub fn assignable(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.network) + 2..u32::from(self.broadcast())).map(Ipv4Addr::from)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = SubnetError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = spec
            .split_once('/')
            .ok_or_else(|| SubnetError::Syntax(spec.to_string()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| SubnetError::Syntax(spec.to_string()))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| SubnetError::Syntax(spec.to_string()))?;
        if !(8..=30).contains(&prefix) {
            return Err(SubnetError::Prefix(spec.to_string()));
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        let network = Ipv4Addr::from(u32::from(addr) & mask);
        if network != addr {
            return Err(SubnetError::HostBits {
                spec: spec.to_string(),
                network,
                prefix,
            });
        }
        Ok(Ipv4Subnet { network, prefix })
    }
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_derives_addresses() {
        let s: Ipv4Subnet = "10.88.0.0/16".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 88, 255, 255));
        assert!(s.contains(Ipv4Addr::new(10, 88, 7, 9)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(s.to_string(), "10.88.0.0/16");
    }

    #[test]
    fn assignable_skips_network_gateway_and_broadcast() {
        let s: Ipv4Subnet = "10.88.3.0/30".parse().unwrap();
        let all: Vec<_> = s.assignable().collect();
        assert_eq!(all, vec![Ipv4Addr::new(10, 88, 3, 2)]);
    }

    #[test]
    fn rejects_bad_subnets() {
        assert!(matches!(
            "10.88.0.1/16".parse::<Ipv4Subnet>(),
            Err(SubnetError::HostBits { .. })
        ));
        assert!(matches!(
            "10.88.0.0/31".parse::<Ipv4Subnet>(),
            Err(SubnetError::Prefix(_))
        ));
        assert!(matches!(
            "10.88.0.0".parse::<Ipv4Subnet>(),
            Err(SubnetError::Syntax(_))
        ));
        assert!(matches!(
            "fd00::/64".parse::<Ipv4Subnet>(),
            Err(SubnetError::Syntax(_))
        ));
    }
}
