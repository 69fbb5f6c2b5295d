//! `--network bridge|none|host|container:NAME`: which network namespace a container gets.

use std::fmt;
use std::str::FromStr;

/// Errors parsing a network mode.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    /// Not one of the known modes.
    #[error("network mode {0:?}: expected bridge, none, host or container:NAME")]
    Unknown(String),
}

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Its own namespace, attached to berth's bridge (the default).
    #[default]
    Bridge,
    /// Its own namespace with only loopback.
    None,
    /// The host's namespace: no isolation, no port forwarding needed.
    Host,
    /// The namespace of another container or pod, by name or id.
    Container(String),
}

impl NetworkMode {
    /// Whether the container gets a namespace of its own (bridge and none).
    pub fn own_namespace(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::None)
    }

    /// Whether the container is attached to the bridge, so `-p` can apply.
    pub fn attaches(&self) -> bool {
        matches!(self, NetworkMode::Bridge)
    }
}

impl FromStr for NetworkMode {
    type Err = ModeError;

    fn from_str(s: &str) -> Result<Self, ModeError> {
        match s {
            "bridge" => Ok(NetworkMode::Bridge),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => match s.strip_prefix("container:") {
                Some(name) if !name.is_empty() => Ok(NetworkMode::Container(name.to_string())),
                _ => Err(ModeError::Unknown(s.to_string())),
            },
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::Container(name) => write!(f, "container:{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_mode() {
        for text in ["bridge", "none", "host", "container:web"] {
            let mode: NetworkMode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
        assert!(NetworkMode::Bridge.attaches());
        assert!(NetworkMode::None.own_namespace());
        assert!(!NetworkMode::Host.own_namespace());
        assert!(!NetworkMode::Container("x".into()).attaches());
        for bad in ["", "container:", "bridged", "Host"] {
            assert!(bad.parse::<NetworkMode>().is_err(), "{bad:?}");
        }
    }
}
