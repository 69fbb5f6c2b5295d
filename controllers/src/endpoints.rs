//! The Endpoints controller: for every Service with a selector, an Endpoints object of the
//! same name listing the matching pods that have an address (ready ones under `addresses`,
//! the others under `notReadyAddresses`) with each Service port's `targetPort` resolved
//! (a number, or a container port name looked up in each pod). The Endpoints object is owned
//! by its Service, so it goes when the Service does.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::replicaset::is_ready;
use berth_kube::kinds::{self, Kind};
use berth_kube::meta::{ObjectMeta, OwnerReference};
use berth_kube::pod::Pod;
use berth_kube::service::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Service, ServicePort,
};
use berth_kube::{IntOrString, Selector};
use berth_objectstore::resync;
use berth_objectstore::{Controller, ObjectStore};

/// The Endpoints controller, for the daemon\'s controller list.
pub fn controller() -> Controller {
    static WATCHED: &[&Kind] = &[&kinds::SERVICE, &kinds::POD];
    resync::controller("endpoints", WATCHED, Duration::from_secs(2), sync_all)
}

/// The pod port a Service port sends to, or `None` when the pod has no such named port.
pub fn resolve_target_port(port: &ServicePort, pod: &Pod) -> Option<i32> {
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod
            .spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter())
            .find(|p| {
                p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP") == port.protocol()
            })
            .map(|p| p.container_port),
    }
}

/// The subsets of `svc`'s Endpoints given the pods of its namespace; `None` for a Service
/// without a selector (its Endpoints are written by hand).
pub fn subsets(svc: &Service, pods: &[Pod]) -> Option<Vec<EndpointSubset>> {
    if svc.spec.selector.is_empty() {
        return None;
    }
    let selector = Selector::from_labels(&svc.spec.selector);
    let publish_not_ready = svc.spec.publish_not_ready_addresses == Some(true);
    // Pods with the same resolved ports share a subset.
    let mut groups: BTreeMap<Vec<EndpointPort>, EndpointSubset> = BTreeMap::new();
    for pod in pods {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
        let (Some(ip), true) = (ip, pod.metadata.deletion_timestamp.is_none()) else {
            continue;
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if !selector.matches(&pod.metadata.labels) || matches!(phase, Some("Succeeded" | "Failed"))
        {
            continue;
        }
        let ports: Vec<EndpointPort> = svc
            .spec
            .ports
            .iter()
            .filter_map(|p| {
                Some(EndpointPort {
                    name: p.name.clone(),
                    port: resolve_target_port(p, pod)?,
                    protocol: Some(p.protocol().to_string()),
                    app_protocol: p.app_protocol.clone(),
                })
            })
            .collect();
        if ports.is_empty() && !svc.spec.ports.is_empty() {
            continue;
        }
        let address = EndpointAddress {
            ip,
            hostname: None,
            node_name: pod.spec.node_name.clone(),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some(pod.metadata.namespace().to_string()),
                name: Some(pod.metadata.name().to_string()),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
        };
        let subset = groups
            .entry(ports.clone())
            .or_insert_with(|| EndpointSubset {
                ports,
                ..EndpointSubset::default()
            });
        if is_ready(pod) || publish_not_ready {
            subset.addresses.push(address);
        } else {
            subset.not_ready_addresses.push(address);
        }
    }
    let mut out: Vec<EndpointSubset> = groups.into_values().collect();
    for s in &mut out {
        s.addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
        s.not_ready_addresses.sort_by(|a, b| a.ip.cmp(&b.ip));
    }
    Some(out)
}

pub(super) fn sync_all(store: &ObjectStore) {
    let services: Vec<Service> = store.list_typed(&kinds::SERVICE, None);
    let pods: Vec<Pod> = store.list_typed(&kinds::POD, None);
    for svc in &services {
        let ns = svc.metadata.namespace();
        let in_ns: Vec<Pod> = pods
            .iter()
            .filter(|p| p.metadata.namespace() == ns)
            .cloned()
            .collect();
        let Some(subsets) = subsets(svc, &in_ns) else {
            continue;
        };
        let name = svc.metadata.name();
        let existing = store.get(&kinds::ENDPOINTS, ns, name).ok();
        let current: Option<Endpoints> = existing
            .clone()
            .and_then(|v| serde_json::from_value(v).ok());
        if current.as_ref().is_some_and(|e| e.subsets == subsets) {
            continue;
        }
        let result = match existing {
            Some(mut v) => {
                v["subsets"] = serde_json::to_value(&subsets).unwrap_or(Value::Null);
                store.update(&kinds::ENDPOINTS, v)
            }
            None => {
                let ep = Endpoints {
                    api_version: "v1".into(),
                    kind: "Endpoints".into(),
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(ns.to_string()),
                        labels: svc.metadata.labels.clone(),
                        owner_references: vec![OwnerReference::controlled_by(
                            "v1",
                            "Service",
                            &svc.metadata,
                        )],
                        ..ObjectMeta::default()
                    },
                    subsets,
                };
                match serde_json::to_value(&ep) {
                    Ok(v) => store.create(&kinds::ENDPOINTS, v),
                    Err(e) => {
                        tracing::warn!("cannot encode endpoints: {e}");
                        continue;
                    }
                }
            }
        };
        match result {
            Ok(_) => tracing::info!(namespace = ns, service = name, "endpoints updated"),
            Err(e) => tracing::info!(namespace = ns, service = name, "endpoints not written: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kube::meta::Condition;
    use berth_kube::pod::{Container, ContainerPort, PodStatus};

    fn service(target: Option<IntOrString>) -> Service {
        let mut s = Service::default();
        s.metadata.name = Some("web".into());
        s.spec.selector.insert("app".into(), "web".into());
        s.spec.ports = vec![ServicePort {
            name: Some("http".into()),
            port: 80,
            target_port: target,
            ..ServicePort::default()
        }];
        s
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, port: i32) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.labels.insert("app".into(), "web".into());
        p.spec.containers = vec![Container {
            name: "c".into(),
            ports: vec![ContainerPort {
                name: Some("web".into()),
                container_port: port,
                ..ContainerPort::default()
            }],
            ..Container::default()
        }];
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: ip.map(str::to_string),
            conditions: vec![Condition::new("Ready", ready, "", "")],
            ..PodStatus::default()
        });
        p
    }

    #[test]
    fn ready_pods_are_addresses_and_others_not_ready() {
        let pods = vec![
            pod("b", Some("10.0.0.3"), true, 8000),
            pod("a", Some("10.0.0.2"), true, 8000),
            pod("c", Some("10.0.0.4"), false, 8000),
            pod("pending", None, false, 8000),
        ];
        let s = subsets(&service(Some(IntOrString::Int(8000))), &pods).unwrap();
        assert_eq!(s.len(), 1);
        let ips: Vec<&str> = s[0].addresses.iter().map(|a| a.ip.as_str()).collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(s[0].not_ready_addresses[0].ip, "10.0.0.4");
        assert_eq!(s[0].ports[0].port, 8000);
        assert_eq!(s[0].ports[0].name.as_deref(), Some("http"));
        assert_eq!(
            s[0].addresses[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let pods = vec![
            pod("a", Some("10.0.0.2"), true, 8000),
            pod("b", Some("10.0.0.3"), true, 9000),
        ];
        let s = subsets(&service(Some(IntOrString::String("web".into()))), &pods).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ports[0].port, 8000);
        assert_eq!(s[0].addresses[0].ip, "10.0.0.2");
        assert_eq!(s[1].ports[0].port, 9000);
        let none = subsets(&service(Some(IntOrString::String("grpc".into()))), &pods).unwrap();
        assert!(none.is_empty());
        let default = subsets(&service(None), &pods).unwrap();
        assert_eq!(default[0].ports[0].port, 80);
    }

    #[test]
    fn unselected_finished_and_selectorless() {
        let mut other = pod("x", Some("10.0.0.9"), true, 8000);
        other.metadata.labels.insert("app".into(), "db".into());
        let mut failed = pod("f", Some("10.0.0.8"), true, 8000);
        failed.status.as_mut().unwrap().phase = Some("Failed".into());
        let s = subsets(&service(None), &[other, failed]).unwrap();
        assert!(s.is_empty());
        let mut manual = service(None);
        manual.spec.selector.clear();
        assert!(subsets(&manual, &[]).is_none());
    }
}
