//! Services: the store's [`ALLOCATOR`], which gives each Service a cluster IP from the service
//! range (`BERTH_SERVICE_CIDR`, default 10.96.0.0/16) and its NodePort ports a node port from
//! 30000-32767 when it is written, refusing addresses and ports another Service holds; and the
//! Service controller, which fills in what Services stored without them lack (a younger
//! duplicate among those is not programmed and the conflict is logged) and programs each
//! Service's ClusterIP and NodePort forwarding to its ready endpoints into berth's nftables
//! table ([`berth_engine::network::ServiceTable`]), removing the rules of Services that are gone.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use serde_json::Value;

use berth_kube::kinds::{self, Kind};
use berth_kube::structural::{Allocator, Cause, ValidationError};
use berth_objectstore::resync;
use berth_objectstore::{Controller, ControllerTask, ObjectStore, Shutdown};

use crate::NodeContext;
use berth_engine::network::{
    AllocError, Allocations, Ipv4Subnet, Protocol, ServicePortRule, ServiceRules, ServiceTable,
    SubnetError, DEFAULT_SERVICE_RANGE,
};
use berth_kube::service::{Endpoints, Service};

/// The Service controller, for the daemon's controller list.
pub fn controller(ctx: NodeContext) -> Controller {
    Controller::new("services", move |store, shutdown| {
        start(store, shutdown, ctx)
    })
}

/// The environment variable naming the service range.
pub const SERVICE_CIDR_ENV: &str = "BERTH_SERVICE_CIDR";

/// `BERTH_SERVICE_CIDR` does not name a subnet.
#[derive(Debug, thiserror::Error)]
#[error("{SERVICE_CIDR_ENV}={value}: {source}")]
pub struct ServiceRangeError {
    /// The variable's value.
    pub value: String,
    /// Why it is not a subnet.
    #[source]
    pub source: SubnetError,
}

/// The service range from `BERTH_SERVICE_CIDR`, or 10.96.0.0/16.
pub fn service_range() -> Result<Ipv4Subnet, ServiceRangeError> {
    range_from(std::env::var(SERVICE_CIDR_ENV).ok())
}

/// The service range a `BERTH_SERVICE_CIDR` value gives (unset or empty: the default).
fn range_from(value: Option<String>) -> Result<Ipv4Subnet, ServiceRangeError> {
    match value {
        Some(v) if !v.is_empty() => v
            .parse()
            .map_err(|source| ServiceRangeError { value: v, source }),
        _ => Ok(DEFAULT_SERVICE_RANGE),
    }
}

fn id(svc: &Service) -> String {
    format!("{}/{}", svc.metadata.namespace(), svc.metadata.name())
}

/// The store's allocator for Services: as the API server does, a Service gets its cluster IP
/// and node ports when it is written, and one asking for an address or port another Service
/// holds is refused then.
pub static ALLOCATOR: Allocator = Allocator {
    kind: &kinds::SERVICE,
    allocate,
};

/// The cluster IP a stored Service holds (`None` when headless or not yet allocated).
fn held_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc["spec"]["clusterIP"]
        .as_str()
        .and_then(|ip| ip.parse().ok())
}

/// The node ports a stored Service holds.
fn held_ports(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter_map(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

fn value_id(svc: &Value) -> String {
    let meta = &svc["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or("default"),
        meta["name"].as_str().unwrap_or_default()
    )
}

fn allocate(
    svc: &mut Value,
    previous: Option<&Value>,
    others: &[&Value],
) -> Result<(), ValidationError> {
    let range = service_range().map_err(|e| {
        ValidationError::Invalid(vec![Cause {
            field: "spec.clusterIP".into(),
            reason: "InternalError".into(),
            message: e.to_string(),
        }])
    })?;
    let mut alloc = Allocations::default();
    for other in others {
        // Conflicts among the others are the Service controller's to report, not this write's.
        let owner = value_id(other);
        if let Some(ip) = held_ip(other) {
            let _ = alloc.claim_ip(ip, &owner, range);
        }
        for port in held_ports(other) {
            let _ = alloc.claim_port(port, &owner);
        }
    }
    let owner = value_id(svc);
    let mut causes = Vec::new();
    let asked_ip = svc["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| !ip.is_empty())
        .map(str::to_string);
    let kept_ip = previous.and_then(|p| p["spec"]["clusterIP"].as_str().map(str::to_string));
    let ip = match (asked_ip, kept_ip) {
        (Some(asked), Some(kept)) if asked != kept => {
            causes.push(Cause::invalid(
                "spec.clusterIP",
                &asked,
                "field is immutable",
            ));
            Some(kept)
        }
        (Some(asked), _) => Some(asked),
        // A replacement that leaves the address out keeps it (the API server does the same).
        (None, kept) => kept,
    };
    match ip.as_deref() {
        Some("None") => {}
        Some(ip) => match ip.parse() {
            Ok(parsed) => match alloc.claim_ip(parsed, &owner, range) {
                Ok(()) => set_cluster_ip(svc, ip),
                Err(e) => causes.push(ip_cause(ip, &e)),
            },
            Err(_) => causes.push(Cause::invalid(
                "spec.clusterIP",
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            )),
        },
        None => match alloc.allocate_ip(&owner, range) {
            Ok(ip) => set_cluster_ip(svc, &ip.to_string()),
            Err(e) => causes.push(ip_cause("", &e)),
        },
    }
    let node_port_type = svc["spec"]["type"].as_str() == Some("NodePort");
    let kept_ports: Vec<(i64, String, u64)> = previous
        .and_then(|p| p["spec"]["ports"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let np = p["nodePort"].as_u64().filter(|n| *n != 0)?;
            Some((p["port"].as_i64()?, protocol_of(p), np))
        })
        .collect();
    if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
        for (i, p) in ports.iter_mut().enumerate() {
            let field = format!("spec.ports[{i}].nodePort");
            let asked = p["nodePort"].as_u64().filter(|n| *n != 0);
            let asked = asked.or_else(|| {
                // A port left without one keeps the node port it had (same port, protocol).
                let port = p["port"].as_i64();
                let protocol = protocol_of(p);
                kept_ports
                    .iter()
                    .find(|(kp, kproto, _)| Some(*kp) == port && *kproto == protocol)
                    .map(|(_, _, np)| *np)
                    .filter(|_| node_port_type)
            });
            let claimed = match asked {
                Some(np) => u16::try_from(np)
                    .map_err(|_| AllocError::PortOutOfRange(0))
                    .and_then(|np| alloc.claim_port(np, &owner).map(|()| np)),
                None if node_port_type => alloc.allocate_port(&owner),
                None => continue,
            };
            match claimed {
                Ok(np) => p["nodePort"] = np.into(),
                Err(e) => causes.push(port_cause(field, asked.unwrap_or(0), &e)),
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::Invalid(causes))
    }
}

fn protocol_of(port: &Value) -> String {
    port["protocol"].as_str().unwrap_or("TCP").to_string()
}

fn set_cluster_ip(svc: &mut Value, ip: &str) {
    svc["spec"]["clusterIP"] = ip.into();
    svc["spec"]["clusterIPs"] = serde_json::json!([ip]);
}

/// The API server's words for a cluster IP it cannot give.
fn ip_cause(ip: &str, e: &AllocError) -> Cause {
    let why = match e {
        AllocError::IpTaken { .. } => "provided IP is already allocated".to_string(),
        AllocError::OutOfRange { range, .. } => {
            format!("provided IP is not in the valid range. The range of valid IPs is {range}")
        }
        other => other.to_string(),
    };
    Cause::invalid("spec.clusterIP", ip, &why)
}

/// The API server's words for a node port it cannot give (the port unquoted, as it prints it).
fn port_cause(field: String, port: u64, e: &AllocError) -> Cause {
    let why = match e {
        AllocError::PortTaken { .. } => "provided port is already allocated".to_string(),
        AllocError::PortOutOfRange(_) => {
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
                .to_string()
        }
        other => other.to_string(),
    };
    Cause {
        field,
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {port}: {why}"),
    }
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

fn start(store: ObjectStore, shutdown: Shutdown, ctx: NodeContext) -> ControllerTask {
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
    let on_stop = table.clone().ok();
    Box::pin(async move {
        resync::run(
            store.clone(),
            shutdown,
            WATCHED,
            Duration::from_secs(5),
            move || {
                match &table {
                    Ok(table) => sync_all(&store, table, &mut programmed),
                    Err(e) => tracing::error!("services are not forwarded: {e}"),
                }
                std::future::ready(())
            },
        )
        .await;
        // A clean stop takes the Service rules (and the service range's reject) along: no
        // daemon is left to keep them true.
        if let Some(table) = on_stop {
            match table.remove_all() {
                Ok(()) => tracing::info!("service rules removed"),
                Err(e) => tracing::warn!("service rules not removed: {e}"),
            }
        }
    })
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
    let services: Vec<Service> = store.list_typed(&kinds::SERVICE, None);
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
    use berth_kube::service::{EndpointAddress, EndpointPort, EndpointSubset, ServicePort};

    #[test]
    fn the_service_range_is_the_variable_or_the_default() {
        assert_eq!(range_from(None).unwrap(), DEFAULT_SERVICE_RANGE);
        assert_eq!(
            range_from(Some(String::new())).unwrap(),
            DEFAULT_SERVICE_RANGE
        );
        let r = range_from(Some("10.200.0.0/24".into())).unwrap();
        assert_eq!(r.to_string(), "10.200.0.0/24");
        let e = range_from(Some("nope".into())).unwrap_err();
        assert!(
            e.to_string().starts_with("BERTH_SERVICE_CIDR=nope: "),
            "{e}"
        );
    }

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

    fn svc_value(name: &str, spec: Value) -> Value {
        serde_json::json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn causes(e: ValidationError) -> Vec<String> {
        match e {
            ValidationError::Invalid(c) => c
                .into_iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect(),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_store_allocator_hands_out_and_refuses_taken_values() {
        let held = svc_value(
            "held",
            serde_json::json!({"type": "NodePort", "clusterIP": "10.96.0.2",
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        );
        let mut fresh = svc_value(
            "fresh",
            serde_json::json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}),
        );
        allocate(&mut fresh, None, &[&held]).unwrap();
        assert_eq!(fresh["spec"]["clusterIP"], "10.96.0.3", "{fresh}");
        assert_eq!(
            fresh["spec"]["clusterIPs"],
            serde_json::json!(["10.96.0.3"])
        );
        let np = fresh["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np) && np != 30080, "{fresh}");

        let mut dup = svc_value(
            "dup",
            serde_json::json!({"type": "NodePort", "clusterIP": "10.96.0.2",
                "ports": [{"port": 81, "protocol": "TCP", "nodePort": 30080}]}),
        );
        let e = causes(allocate(&mut dup, None, &[&held]).unwrap_err());
        assert_eq!(
            e,
            [
                "spec.clusterIP: Invalid value: \"10.96.0.2\": provided IP is already allocated",
                "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated",
            ]
        );

        let mut headless = svc_value(
            "headless",
            serde_json::json!({"clusterIP": "None", "ports": [{"port": 80}]}),
        );
        allocate(&mut headless, None, &[&held]).unwrap();
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert!(headless["spec"].get("clusterIPs").is_none());
        assert!(headless["spec"]["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn a_replacement_keeps_what_was_allocated_and_may_not_move_the_address() {
        let stored = svc_value(
            "web",
            serde_json::json!({"type": "NodePort", "clusterIP": "10.96.0.9",
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31234},
                          {"port": 53, "protocol": "UDP", "nodePort": 31235}]}),
        );
        let mut put = svc_value(
            "web",
            serde_json::json!({"type": "NodePort",
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}]}),
        );
        allocate(&mut put, Some(&stored), &[]).unwrap();
        assert_eq!(put["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(put["spec"]["ports"][0]["nodePort"], 31235);
        assert_eq!(put["spec"]["ports"][1]["nodePort"], 31234);

        let mut moved = svc_value(
            "web",
            serde_json::json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
        );
        let e = causes(allocate(&mut moved, Some(&stored), &[]).unwrap_err());
        assert_eq!(
            e,
            ["spec.clusterIP: Invalid value: \"10.96.0.10\": field is immutable"]
        );
        // Turned into a ClusterIP Service, it lets its node ports go.
        let mut plain = svc_value("web", serde_json::json!({"ports": [{"port": 80}]}));
        allocate(&mut plain, Some(&stored), &[]).unwrap();
        assert!(
            plain["spec"]["ports"][0].get("nodePort").is_none(),
            "{plain}"
        );
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
