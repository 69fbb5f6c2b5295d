//! The Service controller: gives each Service a cluster IP from the service range
//! (`BERTH_SERVICE_CIDR`, default 10.96.0.0/16) and its NodePort ports a node port from
//! 30000-32767, refusing addresses and ports another Service holds (the older Service keeps
//! them; the newer one is not programmed and the conflict is logged), and programs each
//! Service's ClusterIP and NodePort forwarding to its ready endpoints into berth's nftables
//! table ([`crate::network::ServiceTable`]), removing the rules of Services that are gone.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::replicaset::list_typed;
use super::resync;
use crate::daemon::kinds::{self, Kind};
use crate::daemon::{Context, Controller, ControllerTask, ObjectStore};
use crate::kube::service::{Endpoints, Service};
use crate::network::{
    AllocError, Allocations, Ipv4Subnet, Protocol, ServicePortRule, ServiceRules, ServiceTable,
    DEFAULT_SERVICE_RANGE,
};

/// The Service controller, for the daemon's controller list.
pub static CONTROLLER: Controller = Controller {
    name: "services",
    start,
};

/// The environment variable naming the service range.
pub const SERVICE_CIDR_ENV: &str = "BERTH_SERVICE_CIDR";

/// The service range from `BERTH_SERVICE_CIDR`, or 10.96.0.0/16.
pub fn service_range() -> Result<Ipv4Subnet, String> {
    match std::env::var(SERVICE_CIDR_ENV) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|e| format!("{SERVICE_CIDR_ENV}={v}: {e}")),
        _ => Ok(DEFAULT_SERVICE_RANGE),
    }
}

fn id(svc: &Service) -> String {
    format!("{}/{}", svc.metadata.namespace(), svc.metadata.name())
}

/// The changes a Service needs: a cluster IP and node ports to write, or why it cannot have
/// what it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// A newly allocated cluster IP.
    pub cluster_ip: Option<Ipv4Addr>,
    /// Newly allocated node ports, by index into `spec.ports`.
    pub node_ports: BTreeMap<usize, u16>,
    /// Conflicts: the Service is not programmed while any remain.
    pub refused: Vec<AllocError>,
}

/// Allocates cluster IPs and node ports for `services`: what they already hold is claimed
/// first, oldest Service first, then the missing ones are handed out.
pub fn assign(services: &[Service], range: Ipv4Subnet) -> BTreeMap<String, Assignment> {
    let mut order: Vec<&Service> = services.iter().collect();
    order.sort_by_key(|s| (s.metadata.creation_timestamp.clone(), id(s)));
    let mut alloc = Allocations::default();
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    for svc in &order {
        let a = out.entry(id(svc)).or_default();
        if let Some(ip) = svc
            .spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        {
            match ip.parse() {
                Ok(ip) => {
                    if let Err(e) = alloc.claim_ip(ip, &id(svc), range) {
                        a.refused.push(e);
                    }
                }
                Err(_) => a.refused.push(AllocError::OutOfRange {
                    ip: Ipv4Addr::UNSPECIFIED,
                    range,
                }),
            }
        }
        for p in &svc.spec.ports {
            if let Some(np) = p.node_port.filter(|n| *n != 0) {
                let claimed = u16::try_from(np)
                    .map_err(|_| AllocError::PortOutOfRange(0))
                    .and_then(|np| alloc.claim_port(np, &id(svc)));
                if let Err(e) = claimed {
                    a.refused.push(e);
                }
            }
        }
    }
    for svc in &order {
        let a = out.entry(id(svc)).or_default();
        if svc.spec.cluster_ip.as_deref().is_none_or(str::is_empty) {
            match alloc.allocate_ip(&id(svc), range) {
                Ok(ip) => a.cluster_ip = Some(ip),
                Err(e) => a.refused.push(e),
            }
        }
        if svc.spec.type_() == "NodePort" {
            for (i, p) in svc.spec.ports.iter().enumerate() {
                if p.node_port.unwrap_or(0) == 0 {
                    match alloc.allocate_port(&id(svc)) {
                        Ok(np) => {
                            a.node_ports.insert(i, np);
                        }
                        Err(e) => a.refused.push(e),
                    }
                }
            }
        }
    }
    out
}

/// The data-plane view of a Service with an allocated cluster IP and its Endpoints.
pub fn rules(svc: &Service, endpoints: Option<&Endpoints>) -> ServiceRules {
    let cluster_ip = svc
        .spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok());
    let node_port_type = svc.spec.type_() == "NodePort";
    let ports = svc
        .spec
        .ports
        .iter()
        .filter_map(|p| {
            let protocol = match p.protocol() {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => return None,
            };
            let mut targets = Vec::new();
            for subset in endpoints.map(|e| e.subsets.as_slice()).unwrap_or_default() {
                let Some(ep) = subset.ports.iter().find(|ep| {
                    ep.name == p.name && ep.protocol.as_deref().unwrap_or("TCP") == p.protocol()
                }) else {
                    continue;
                };
                let Ok(port) = u16::try_from(ep.port) else {
                    continue;
                };
                targets.extend(
                    subset
                        .addresses
                        .iter()
                        .filter_map(|a| a.ip.parse().ok())
                        .map(|ip| SocketAddrV4::new(ip, port)),
                );
            }
            targets.sort();
            Some(ServicePortRule {
                protocol,
                port: u16::try_from(p.port).ok()?,
                node_port: p
                    .node_port
                    .filter(|_| node_port_type)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0),
                endpoints: targets,
            })
        })
        .collect();
    ServiceRules {
        id: id(svc),
        cluster_ip,
        ports,
    }
}

fn start(store: ObjectStore, ctx: Context) -> ControllerTask {
    static WATCHED: &[&Kind] = &[&kinds::SERVICE, &kinds::ENDPOINTS];
    let table_name = ctx
        .containers
        .settings()
        .network_config()
        .table()
        .to_string();
    let table = service_range()
        .map_err(|e| e.to_string())
        .and_then(|range| ServiceTable::new(&table_name, range).map_err(|e| e.to_string()));
    let mut programmed: BTreeMap<String, ServiceRules> = BTreeMap::new();
    Box::pin(resync::run(
        store.clone(),
        ctx,
        WATCHED,
        Duration::from_secs(5),
        move || {
            match &table {
                Ok(table) => sync_all(&store, table, &mut programmed),
                Err(e) => tracing::error!("services are not forwarded: {e}"),
            }
            std::future::ready(())
        },
    ))
}

fn sync_all(
    store: &ObjectStore,
    table: &ServiceTable,
    programmed: &mut BTreeMap<String, ServiceRules>,
) {
    if let Err(e) = table.ensure() {
        tracing::warn!("cannot create the service chains: {e}");
        return;
    }
    let services: Vec<Service> = list_typed(store, &kinds::SERVICE, None);
    let assignments = assign(&services, table.range());
    let mut wanted = BTreeMap::new();
    for svc in &services {
        let key = id(svc);
        let Some(a) = assignments.get(&key) else {
            continue;
        };
        for e in &a.refused {
            tracing::warn!(service = key, "{e}");
        }
        if !a.refused.is_empty() {
            continue;
        }
        if a.cluster_ip.is_some() || !a.node_ports.is_empty() {
            write_assignment(store, svc, a);
            // The write comes back as a watch event; program on that round.
            continue;
        }
        let endpoints: Option<Endpoints> = store
            .get(
                &kinds::ENDPOINTS,
                svc.metadata.namespace(),
                svc.metadata.name(),
            )
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
        wanted.insert(key, rules(svc, endpoints.as_ref()));
    }
    if programmed.is_empty() {
        // First round (or after a restart): learn what the kernel has.
        match table.programmed() {
            Ok(ids) => {
                for id in ids {
                    programmed.entry(id.clone()).or_insert(ServiceRules {
                        id,
                        cluster_ip: None,
                        ports: Vec::new(),
                    });
                }
            }
            Err(e) => tracing::warn!("cannot list service rules: {e}"),
        }
    }
    let stale: Vec<String> = programmed
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .cloned()
        .collect();
    for key in stale {
        match table.remove(&key) {
            Ok(()) => {
                tracing::info!(service = key, "rules removed");
                programmed.remove(&key);
            }
            Err(e) => tracing::warn!(service = key, "rules not removed: {e}"),
        }
    }
    for (key, r) in wanted {
        if programmed.get(&key) == Some(&r) {
            continue;
        }
        match table.program(&r) {
            Ok(()) => {
                tracing::info!(service = key, "rules programmed");
                programmed.insert(key, r);
            }
            Err(e) => tracing::warn!(service = key, "rules not programmed: {e}"),
        }
    }
}

fn write_assignment(store: &ObjectStore, svc: &Service, a: &Assignment) {
    let Ok(mut v) = store.get(
        &kinds::SERVICE,
        svc.metadata.namespace(),
        svc.metadata.name(),
    ) else {
        return;
    };
    if let Some(ip) = a.cluster_ip {
        v["spec"]["clusterIP"] = ip.to_string().into();
        v["spec"]["clusterIPs"] = serde_json::json!([ip.to_string()]);
    }
    for (i, np) in &a.node_ports {
        v["spec"]["ports"][*i]["nodePort"] = (*np).into();
    }
    if let Err(e) = store.update(&kinds::SERVICE, v) {
        tracing::info!(service = id(svc), "allocation not written: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::service::{EndpointAddress, EndpointPort, EndpointSubset, ServicePort};

    fn svc(name: &str, created: &str, ip: Option<&str>, node_port: Option<i32>) -> Service {
        let mut s = Service::default();
        s.metadata.name = Some(name.into());
        s.metadata.creation_timestamp = Some(created.into());
        s.spec.cluster_ip = ip.map(str::to_string);
        s.spec.type_ = Some(
            if node_port.is_some() {
                "NodePort"
            } else {
                "ClusterIP"
            }
            .into(),
        );
        s.spec.ports = vec![ServicePort {
            name: Some("http".into()),
            port: 80,
            node_port: node_port.filter(|n| *n != 0),
            ..ServicePort::default()
        }];
        s
    }

    fn range() -> Ipv4Subnet {
        "10.97.3.0/24".parse().unwrap()
    }

    #[test]
    fn allocates_missing_and_refuses_the_younger_duplicate() {
        let services = vec![
            svc(
                "new",
                "2026-01-02T00:00:00Z",
                Some("10.97.3.2"),
                Some(30080),
            ),
            svc(
                "old",
                "2026-01-01T00:00:00Z",
                Some("10.97.3.2"),
                Some(30080),
            ),
            svc("fresh", "2026-01-03T00:00:00Z", None, Some(0)),
            svc("outside", "2026-01-03T00:00:00Z", Some("10.1.1.1"), None),
        ];
        let a = assign(&services, range());
        assert!(a["default/old"].refused.is_empty());
        assert_eq!(a["default/new"].refused.len(), 2, "{:?}", a["default/new"]);
        assert_eq!(
            a["default/fresh"].cluster_ip,
            Some(Ipv4Addr::new(10, 97, 3, 3))
        );
        let np = a["default/fresh"].node_ports[&0];
        assert!((30000..=32767).contains(&np) && np != 30080);
        assert!(matches!(
            a["default/outside"].refused[0],
            AllocError::OutOfRange { .. }
        ));
    }

    #[test]
    fn headless_services_get_no_ip() {
        let a = assign(&[svc("h", "t", Some("None"), None)], range());
        assert_eq!(a["default/h"], Assignment::default());
    }

    #[test]
    fn rules_follow_ready_endpoints_and_named_ports() {
        let s = svc("web", "t", Some("10.97.3.9"), Some(30080));
        let ep = Endpoints {
            subsets: vec![
                EndpointSubset {
                    addresses: vec![EndpointAddress {
                        ip: "10.88.0.3".into(),
                        ..EndpointAddress::default()
                    }],
                    not_ready_addresses: vec![EndpointAddress {
                        ip: "10.88.0.4".into(),
                        ..EndpointAddress::default()
                    }],
                    ports: vec![EndpointPort {
                        name: Some("http".into()),
                        port: 8000,
                        protocol: Some("TCP".into()),
                        app_protocol: None,
                    }],
                },
                EndpointSubset {
                    addresses: vec![EndpointAddress {
                        ip: "10.88.0.2".into(),
                        ..EndpointAddress::default()
                    }],
                    not_ready_addresses: vec![],
                    ports: vec![EndpointPort {
                        name: Some("http".into()),
                        port: 9000,
                        protocol: Some("TCP".into()),
                        app_protocol: None,
                    }],
                },
            ],
            ..Endpoints::default()
        };
        let r = rules(&s, Some(&ep));
        assert_eq!(r.id, "default/web");
        assert_eq!(r.cluster_ip, Some(Ipv4Addr::new(10, 97, 3, 9)));
        assert_eq!(r.ports[0].node_port, Some(30080));
        assert_eq!(
            r.ports[0].endpoints,
            vec![
                "10.88.0.2:9000".parse::<SocketAddrV4>().unwrap(),
                "10.88.0.3:8000".parse().unwrap()
            ]
        );
        assert!(rules(&s, None).ports[0].endpoints.is_empty());
    }
}
