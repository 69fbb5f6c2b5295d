//! The two IPv4 sysctls port forwarding needs, read and written under /proc/sys.

use std::path::PathBuf;

/// Errors reading or writing a sysctl.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The /proc/sys file could not be read or written.
    #[error("sysctl {path}: {source}")]
    Io {
        /// The /proc/sys file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn write(path: PathBuf, value: &str) -> Result<(), SysctlError> {
    std::fs::write(&path, value).map_err(|source| SysctlError::Io { path, source })
}

fn read(path: PathBuf) -> Result<String, SysctlError> {
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SysctlError::Io { path, source })
}

/// Sets `net.ipv4.conf.<bridge>.route_localnet=1` so that connections to 127.0.0.1 that are
/// DNATed to a container may leave through berth's bridge (and only through it).
pub(crate) fn enable_route_localnet(bridge: &str) -> Result<(), SysctlError> {
    let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"));
    if read(path.clone())? == "1" {
        return Ok(());
    }
    write(path, "1")
}

/// Sets the host-wide `net.ipv4.ip_forward=1` when it is not already set, so that traffic from
/// other hosts reaches forwarded ports and containers reach the outside. Returns whether it had
/// to change it (berth never sets it back: other users may rely on it by then).
pub(crate) fn enable_ip_forward() -> Result<bool, SysctlError> {
    let path = PathBuf::from("/proc/sys/net/ipv4/ip_forward");
    if read(path.clone())? == "1" {
        return Ok(false);
    }
    write(path, "1")?;
    Ok(true)
}
