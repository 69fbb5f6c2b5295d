//! Container probes: the one handler (HTTP GET, TCP connect, command) and its timing, with
//! the defaults Kubernetes applies when a field is left out.

use serde::{Deserialize, Serialize};

use crate::intstr::IntOrString;

use super::Raw;

/// A liveness, readiness or startup probe: exactly one handler and its timing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// An HTTP GET that must answer 200-399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// A TCP connect that must succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// A command that must exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// A gRPC health check (accepted, not run by berth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Raw>,
    /// Seconds after start before the first probe (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds between probes (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Seconds before a probe times out (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Failures in a row that count as failed (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    /// Successes in a row that count as succeeded after a failure (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Override of the pod's grace period when the probe kills the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

impl Probe {
    /// `initialDelaySeconds`, 0 when unset.
    pub fn initial_delay(&self) -> i32 {
        self.initial_delay_seconds.unwrap_or(0)
    }
    /// `periodSeconds`, 10 when unset.
    pub fn period(&self) -> i32 {
        self.period_seconds.unwrap_or(10)
    }
    /// `timeoutSeconds`, 1 when unset.
    pub fn timeout(&self) -> i32 {
        self.timeout_seconds.unwrap_or(1)
    }
    /// `failureThreshold`, 3 when unset.
    pub fn failure_threshold(&self) -> i32 {
        self.failure_threshold.unwrap_or(3)
    }
    /// `successThreshold`, 1 when unset.
    pub fn success_threshold(&self) -> i32 {
        self.success_threshold.unwrap_or(1)
    }
}

/// `httpGet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    /// Path to request (default "/").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port number or container port name.
    pub port: IntOrString,
    /// Host to connect to (default: the pod's IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` (default) or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One `httpHeaders` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// `tcpSocket`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    /// Port number or container port name.
    pub port: IntOrString,
    /// Host to connect to (default: the pod's IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    /// argv run inside the container (no shell unless it names one).
    #[serde(default)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unset_timings_take_the_kubernetes_defaults() {
        let p: Probe = serde_json::from_value(json!({"exec": {"command": ["true"]}})).unwrap();
        assert_eq!(
            (
                p.initial_delay(),
                p.period(),
                p.timeout(),
                p.failure_threshold(),
                p.success_threshold()
            ),
            (0, 10, 1, 3, 1)
        );
        let p: Probe = serde_json::from_value(json!({"tcpSocket": {"port": 80},
            "initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
            "failureThreshold": 1, "successThreshold": 2}))
        .unwrap();
        assert_eq!(
            (
                p.initial_delay(),
                p.period(),
                p.timeout(),
                p.failure_threshold(),
                p.success_threshold()
            ),
            (5, 2, 3, 1, 2)
        );
    }

    #[test]
    fn handlers_decode_by_their_api_names_and_refuse_unknown_fields() {
        let p: Probe = serde_json::from_value(json!({"httpGet": {"path": "/healthz",
            "port": "http", "httpHeaders": [{"name": "X", "value": "1"}]}}))
        .unwrap();
        let get = p.http_get.unwrap();
        assert_eq!(get.port, IntOrString::String("http".into()));
        assert_eq!(get.http_headers[0].name, "X");
        assert!(
            serde_json::from_value::<Probe>(json!({"httpGet": {"port": 80, "paths": "/"}}))
                .is_err()
        );
        let round = serde_json::to_value(Probe {
            exec: Some(ExecAction {
                command: vec!["true".into()],
            }),
            ..Probe::default()
        })
        .unwrap();
        assert_eq!(round, json!({"exec": {"command": ["true"]}}));
    }
}
