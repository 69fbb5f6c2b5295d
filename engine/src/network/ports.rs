//! Published-port specs as `berth run -p` takes them (`[IP:][HOST:]CONTAINER[/PROTO]`, with
//! port ranges) and `-P` (every exposed port to a port the kernel picks).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors parsing a published-port spec.
#[derive(Debug, thiserror::Error)]
pub enum PortSpecError {
    /// The spec has the wrong shape.
    #[error("port spec {0:?}: expected [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]")]
    Syntax(String),
    /// A port is not a number in 1..=65535 (or a range of them).
    #[error("port spec {spec:?}: invalid port {port:?}")]
    Port {
        /// The whole spec.
        spec: String,
        /// The offending port text.
        port: String,
    },
    /// The protocol is neither tcp nor udp.
    #[error("port spec {spec:?}: unsupported protocol {proto:?} (tcp or udp)")]
    Protocol {
        /// The whole spec.
        spec: String,
        /// The protocol given.
        proto: String,
    },
    /// The host address is not an IPv4 address.
    #[error("port spec {spec:?}: host address {addr:?} is not an IPv4 address")]
    Address {
        /// The whole spec.
        spec: String,
        /// The address given.
        addr: String,
    },
    /// Host and container ranges differ in length.
    #[error("port spec {0:?}: host and container port ranges differ in length")]
    RangeLength(String),
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl FromStr for Protocol {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(()),
        }
    }
}

/// One forwarded port: connections to `host_ip:host_port` (any host address when `host_ip`
/// is `None`) go to the container's address at `container_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address to listen on; `None` means every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// The host port; 0 until attach picks a free one.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

fn parse_range(spec: &str, text: &str) -> Result<(u16, u16), PortSpecError> {
    let bad = || PortSpecError::Port {
        spec: spec.to_string(),
        port: text.to_string(),
    };
    let port = |s: &str| match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad()),
    };
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(bad());
            }
            Ok((lo, hi))
        }
        None => {
            let p = port(text)?;
            Ok((p, p))
        }
    }
}

/// Parses one `-p` value into its mappings (one per port of a range). A missing host port
/// (`80`, `127.0.0.1::80`) is 0: attach picks a free one.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, PortSpecError> {
    let syntax = || PortSpecError::Syntax(spec.to_string());
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (
            rest,
            proto.parse().map_err(|()| PortSpecError::Protocol {
                spec: spec.to_string(),
                proto: proto.to_string(),
            })?,
        ),
        None => (spec, Protocol::Tcp),
    };
    if rest.starts_with('[') {
        return Err(PortSpecError::Address {
            spec: spec.to_string(),
            addr: rest.to_string(),
        });
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => return Err(syntax()),
    };
    let host_ip = match ip {
        Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| PortSpecError::Address {
            spec: spec.to_string(),
            addr: ip.to_string(),
        })?),
        None => None,
    };
    let (c_lo, c_hi) = parse_range(spec, container)?;
    let host_ports: Vec<u16> = if host.is_empty() {
        vec![0; usize::from(c_hi - c_lo) + 1]
    } else {
        let (h_lo, h_hi) = parse_range(spec, host)?;
        if h_hi - h_lo != c_hi - c_lo {
            return Err(PortSpecError::RangeLength(spec.to_string()));
        }
        (h_lo..=h_hi).collect()
    };
    Ok(host_ports
        .into_iter()
        .zip(c_lo..=c_hi)
        .map(|(host_port, container_port)| PortMapping {
            host_ip: host_ip.filter(|ip| !ip.is_unspecified()),
            host_port,
            container_port,
            protocol,
        })
        .collect())
}

/// Parses an image's exposed-port key (`80/tcp`, `53/udp`, or a bare `8080`).
pub fn parse_exposed(key: &str) -> Result<(u16, Protocol), PortSpecError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = proto.parse().map_err(|()| PortSpecError::Protocol {
        spec: key.to_string(),
        proto: proto.to_string(),
    })?;
    let (lo, hi) = parse_range(key, port)?;
    if lo != hi {
        return Err(PortSpecError::Syntax(key.to_string()));
    }
    Ok((lo, protocol))
}

/// `-P`: every exposed port published on all host addresses at a port attach picks.
pub fn publish_all(exposed: &[(u16, Protocol)]) -> Vec<PortMapping> {
    exposed
        .iter()
        .map(|&(container_port, protocol)| PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            protocol,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ip: Option<[u8; 4]>, h: u16, c: u16, p: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(Ipv4Addr::from),
            host_port: h,
            container_port: c,
            protocol: p,
        }
    }

    #[test]
    fn parses_the_common_forms() {
        use Protocol::*;
        assert_eq!(parse_publish("80").unwrap(), vec![m(None, 0, 80, Tcp)]);
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![m(None, 8080, 80, Tcp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            vec![m(Some([127, 0, 0, 1]), 8080, 80, Udp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1::53/UDP").unwrap(),
            vec![m(Some([127, 0, 0, 1]), 0, 53, Udp)]
        );
        assert_eq!(
            parse_publish("0.0.0.0:1:2").unwrap(),
            vec![m(None, 1, 2, Tcp)]
        );
    }

    #[test]
    fn expands_ranges() {
        use Protocol::*;
        assert_eq!(
            parse_publish("8000-8002:9000-9002").unwrap(),
            vec![
                m(None, 8000, 9000, Tcp),
                m(None, 8001, 9001, Tcp),
                m(None, 8002, 9002, Tcp)
            ]
        );
        assert_eq!(
            parse_publish("7-8/udp").unwrap(),
            vec![m(None, 0, 7, Udp), m(None, 0, 8, Udp)]
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for (spec, want) in [
            ("", "invalid port"),
            ("0:80", "invalid port"),
            ("70000:80", "invalid port"),
            ("80:x", "invalid port"),
            ("9-8:1-2", "invalid port"),
            ("80/sctp", "unsupported protocol"),
            ("a:b:c:d", "expected"),
            ("[::1]:80:80", "not an IPv4"),
            ("1.2.3:80:80", "not an IPv4"),
            ("8000-8002:80", "differ in length"),
        ] {
            let err = parse_publish(spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn publish_all_uses_exposed_ports() {
        let exposed = [
            parse_exposed("80/tcp").unwrap(),
            parse_exposed("53/udp").unwrap(),
        ];
        assert_eq!(
            publish_all(&exposed),
            vec![m(None, 0, 80, Protocol::Tcp), m(None, 0, 53, Protocol::Udp)]
        );
        assert!(parse_exposed("80/sctp").is_err());
        assert_eq!(parse_exposed("8080").unwrap(), (8080, Protocol::Tcp));
    }

    #[test]
    fn displays_like_docker_port() {
        assert_eq!(
            m(None, 8080, 80, Protocol::Tcp).to_string(),
            "0.0.0.0:8080->80/tcp"
        );
    }
}
