//! Services (type, cluster IP, ports, selector) and Endpoints.

use std::collections::BTreeSet;

use crate::field::{child, index, FieldError};
use crate::names;
use crate::service::{Endpoints, Service};

use super::{Validator, PROTOCOLS};

impl Validator {
    pub(super) fn service(&mut self, svc: &Service) {
        self.meta(&svc.metadata, true, names::dns1035_label);
        let spec = &svc.spec;
        let type_ = spec.type_();
        if !matches!(type_, "ClusterIP" | "NodePort") {
            self.push(FieldError::unsupported(
                "spec.type",
                type_,
                &["ClusterIP", "NodePort"],
            ));
        }
        let headless = spec.cluster_ip.as_deref() == Some("None");
        if let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && !headless)
        {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                self.push(FieldError::invalid(
                    "spec.clusterIP",
                    ip,
                    "must be a valid IPv4 address, (e.g. 10.9.8.7), or 'None'",
                ));
            }
        }
        if headless && type_ == "NodePort" {
            self.push(FieldError::invalid(
                "spec.clusterIP",
                "None",
                "may not be set to 'None' for NodePort services",
            ));
        }
        if spec.ports.is_empty() && !headless {
            self.push(FieldError::required("spec.ports"));
        }
        let mut port_names = BTreeSet::new();
        let mut port_keys = BTreeSet::new();
        let mut node_ports = BTreeSet::new();
        for (i, port) in spec.ports.iter().enumerate() {
            let p = index("spec.ports", i);
            match &port.name {
                Some(name) if !name.is_empty() => {
                    self.check(&child(&p, "name"), name, names::dns1123_label);
                    if !port_names.insert(name.as_str()) {
                        self.push(FieldError::duplicate(child(&p, "name"), name));
                    }
                }
                _ if spec.ports.len() > 1 => self.push(FieldError::required(child(&p, "name"))),
                _ => {}
            }
            self.port(&child(&p, "port"), port.port);
            self.one_of(&child(&p, "protocol"), port.protocol.as_deref(), PROTOCOLS);
            if !port_keys.insert((port.port, port.protocol())) {
                self.push(FieldError::duplicate(
                    &p,
                    format!("{}/{}", port.port, port.protocol()),
                ));
            }
            if let Some(target) = &port.target_port {
                self.probe_port(&child(&p, "targetPort"), target);
            }
            match port.node_port.filter(|n| *n != 0) {
                Some(_) if type_ == "ClusterIP" => self.push(FieldError::forbidden(
                    child(&p, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                )),
                Some(n) => {
                    self.port(&child(&p, "nodePort"), n);
                    if !node_ports.insert((n, port.protocol())) {
                        self.push(FieldError::duplicate(
                            child(&p, "nodePort"),
                            format!("{n}/{}", port.protocol()),
                        ));
                    }
                }
                None => {}
            }
        }
        let sel = "spec.selector";
        for (k, v) in &spec.selector {
            self.check(sel, k, names::qualified_name);
            if let Err(d) = names::label_value(v) {
                self.push(FieldError::invalid(child(sel, k), v, &d.to_string()));
            }
        }
        self.one_of(
            "spec.sessionAffinity",
            spec.session_affinity.as_deref(),
            &["ClientIP", "None"],
        );
        for (i, ip) in spec.external_ips.iter().enumerate() {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                self.push(FieldError::invalid(
                    index("spec.externalIPs", i),
                    ip,
                    "must be a valid IPv4 address",
                ));
            }
        }
    }

    pub(super) fn endpoints(&mut self, ep: &Endpoints) {
        self.meta(&ep.metadata, true, names::dns1123_subdomain);
        for (i, subset) in ep.subsets.iter().enumerate() {
            let p = index("subsets", i);
            for (field, addrs) in [
                ("addresses", &subset.addresses),
                ("notReadyAddresses", &subset.not_ready_addresses),
            ] {
                for (j, a) in addrs.iter().enumerate() {
                    if a.ip.parse::<std::net::Ipv4Addr>().is_err() {
                        self.push(FieldError::invalid(
                            child(&index(&child(&p, field), j), "ip"),
                            &a.ip,
                            "must be a valid IPv4 address",
                        ));
                    }
                }
            }
            for (j, port) in subset.ports.iter().enumerate() {
                let pp = index(&child(&p, "ports"), j);
                self.port(&child(&pp, "port"), port.port);
                self.one_of(&child(&pp, "protocol"), port.protocol.as_deref(), PROTOCOLS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::{decode, errors};
    use super::*;

    fn service(spec: serde_json::Value) -> Vec<String> {
        let s: Service = decode(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"}, "spec": spec}));
        errors(|v| v.service(&s))
    }

    #[test]
    fn type_cluster_ip_and_ports() {
        assert_eq!(
            service(json!({"type": "LoadBalancer", "clusterIP": "10.0.0", "ports": []})),
            [
                "spec.type: Unsupported value: \"LoadBalancer\": supported values: \"ClusterIP\", \"NodePort\"",
                "spec.clusterIP: Invalid value: \"10.0.0\": must be a valid IPv4 address, (e.g. 10.9.8.7), or 'None'",
                "spec.ports: Required value",
            ]
        );
        // Headless services need no ports, but cannot be NodePorts.
        assert!(service(json!({"clusterIP": "None"})).is_empty());
        assert_eq!(
            service(json!({"type": "NodePort", "clusterIP": "None"})),
            ["spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
        );
    }

    #[test]
    fn ports_are_named_unique_and_node_ports_only_on_node_port_services() {
        assert_eq!(
            service(json!({"ports": [
                {"port": 80, "nodePort": 30000},
                {"name": "a", "port": 80, "targetPort": 0}]})),
            [
                "spec.ports[0].name: Required value",
                "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                "spec.ports[1]: Duplicate value: \"80/TCP\"",
                "spec.ports[1].targetPort: Invalid value: \"0\": must be between 1 and 65535, inclusive",
            ]
        );
        assert_eq!(
            service(json!({"type": "NodePort", "sessionAffinity": "Sticky", "externalIPs": ["x"],
                "selector": {"app": "-"},
                "ports": [{"name": "a", "port": 80, "nodePort": 30000},
                          {"name": "a", "port": 81, "nodePort": 30000}]})),
            [
                "spec.ports[1].name: Duplicate value: \"a\"",
                "spec.ports[1].nodePort: Duplicate value: \"30000/TCP\"",
                &format!("spec.selector.app: Invalid value: \"-\": {}", crate::names::NameError::LabelValue),
                "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
                "spec.externalIPs[0]: Invalid value: \"x\": must be a valid IPv4 address",
            ]
        );
    }

    #[test]
    fn endpoints_addresses_and_ports() {
        let ep: Endpoints = decode(json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                         "notReadyAddresses": [{"ip": "fe80::1"}],
                         "ports": [{"port": 0, "protocol": "TCP"}]}]}));
        assert_eq!(
            errors(|v| v.endpoints(&ep)),
            [
                "subsets[0].notReadyAddresses[0].ip: Invalid value: \"fe80::1\": must be a valid IPv4 address",
                "subsets[0].ports[0].port: Invalid value: \"0\": must be between 1 and 65535, inclusive",
            ]
        );
    }
}
