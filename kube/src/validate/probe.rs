//! Liveness, readiness and startup probes: one handler, a valid port, sane thresholds.

use crate::field::{child, FieldError};
use crate::intstr::IntOrString;
use crate::names;
use crate::pod::Probe;

use super::Validator;

impl Validator {
    /// A probe; `success_one` when successThreshold must be 1 (liveness and startup).
    pub(super) fn probe(&mut self, path: &str, probe: &Probe, success_one: bool) {
        let handlers = [
            probe.http_get.is_some(),
            probe.tcp_socket.is_some(),
            probe.exec.is_some(),
            probe.grpc.is_some(),
        ]
        .iter()
        .filter(|h| **h)
        .count();
        match handlers {
            0 => self.push(FieldError::required_because(
                path,
                "must specify a handler type",
            )),
            1 => {}
            _ => self.push(FieldError::forbidden(
                path,
                "may not specify more than 1 handler type",
            )),
        }
        if let Some(h) = &probe.http_get {
            self.probe_port(&child(&child(path, "httpGet"), "port"), &h.port);
            self.one_of(
                &child(&child(path, "httpGet"), "scheme"),
                h.scheme.as_deref(),
                &["HTTP", "HTTPS"],
            );
        }
        if let Some(t) = &probe.tcp_socket {
            self.probe_port(&child(&child(path, "tcpSocket"), "port"), &t.port);
        }
        if let Some(e) = &probe.exec {
            if e.command.is_empty() {
                self.push(FieldError::required(child(&child(path, "exec"), "command")));
            }
        }
        for (field, value, min) in [
            ("initialDelaySeconds", probe.initial_delay_seconds, 0),
            ("periodSeconds", probe.period_seconds, 1),
            ("timeoutSeconds", probe.timeout_seconds, 1),
            ("failureThreshold", probe.failure_threshold, 1),
            ("successThreshold", probe.success_threshold, 1),
        ] {
            if let Some(v) = value.filter(|v| *v < min) {
                self.push(FieldError::invalid(
                    child(path, field),
                    v,
                    &format!("must be greater than or equal to {min}"),
                ));
            }
        }
        if success_one {
            if let Some(v) = probe.success_threshold.filter(|v| *v != 1) {
                self.push(FieldError::invalid(
                    child(path, "successThreshold"),
                    v,
                    "must be 1",
                ));
            }
        }
    }

    pub(super) fn probe_port(&mut self, path: &str, port: &IntOrString) {
        match port {
            IntOrString::Int(p) => self.port(path, *p),
            IntOrString::String(name) => self.check(path, name, names::port_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn probe(p: serde_json::Value, success_one: bool) -> Vec<String> {
        let p: Probe = decode(p);
        errors(|v| v.probe("p", &p, success_one))
    }

    #[test]
    fn exactly_one_handler() {
        assert_eq!(
            probe(json!({}), true),
            ["p: Required value: must specify a handler type"]
        );
        assert_eq!(
            probe(
                json!({"exec": {"command": []}, "tcpSocket": {"port": 0}}),
                true
            ),
            [
                "p: Forbidden: may not specify more than 1 handler type",
                "p.tcpSocket.port: Invalid value: \"0\": must be between 1 and 65535, inclusive",
                "p.exec.command: Required value",
            ]
        );
    }

    #[test]
    fn ports_schemes_and_thresholds() {
        assert_eq!(
            probe(
                json!({"httpGet": {"port": "HTTP", "scheme": "FTP"},
                       "periodSeconds": 0, "initialDelaySeconds": -1, "successThreshold": 2}),
                true
            ),
            [
                format!("p.httpGet.port: Invalid value: \"HTTP\": {}", crate::names::NameError::PortNameCharacters),
                "p.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"".into(),
                "p.initialDelaySeconds: Invalid value: \"-1\": must be greater than or equal to 0".into(),
                "p.periodSeconds: Invalid value: \"0\": must be greater than or equal to 1".into(),
                "p.successThreshold: Invalid value: \"2\": must be 1".into(),
            ]
        );
        // Readiness probes may need more than one success.
        assert!(probe(
            json!({"httpGet": {"port": "http"}, "successThreshold": 2}),
            false
        )
        .is_empty());
    }
}
