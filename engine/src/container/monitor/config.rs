//! How the monitor runs a container ([`MonitorConfig`]): terminal, stdin, restart policy,
//! health check, log options and stop signal, fixed when the container is created.

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::super::health::HealthConfig;
use super::super::logs::LogOptions;
use super::super::restart::RestartPolicy;

/// How the monitor runs a container, fixed at create (part of
/// [`ContainerConfig`](super::super::ContainerConfig)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// `-t`: the process gets a pty whose master the monitor holds.
    #[serde(default)]
    pub tty: bool,
    /// `-i`: its stdin stays open for attached clients.
    #[serde(default)]
    pub open_stdin: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The health check (the image's, with `--health-*` over it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `--log-opt max-size/max-file`.
    #[serde(default)]
    pub log: LogOptions,
    /// The image's StopSignal (`stop` sends it first; SIGTERM when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

impl MonitorConfig {
    /// The signal `stop` sends first.
    pub fn stop_signal(&self) -> Signal {
        self.stop_signal
            .as_deref()
            .and_then(|s| berth_runtime::container::parse_signal(&s.to_ascii_uppercase()).ok())
            .unwrap_or(Signal::SIGTERM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_signal_is_the_images_or_sigterm() {
        let mut config = MonitorConfig::default();
        assert_eq!(config.stop_signal(), Signal::SIGTERM);
        config.stop_signal = Some("sigquit".into());
        assert_eq!(config.stop_signal(), Signal::SIGQUIT);
        config.stop_signal = Some("SIGNOPE".into());
        assert_eq!(config.stop_signal(), Signal::SIGTERM);
    }
}
