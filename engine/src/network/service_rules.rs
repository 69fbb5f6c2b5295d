//! Service load balancing in berth's nftables table: a Service's cluster IP and ports, and
//! its node ports on every local address (127.0.0.1 included), are DNATed to its ready
//! endpoints, picked per connection with `numgen random`. Each Service has its own chain
//! (`svc_<hash>`), reached from the `services` chain by a rule tagged `svc=<ns>/<name>`;
//! changing its endpoints rewrites that chain in one `nft -f` transaction, and removing the
//! Service deletes both. Service flows carry a conntrack mark and are masqueraded, so replies
//! come back through the host whatever the client (a pod, the host, 127.0.0.1). Packets to
//! the service range that no rule translated are rejected, so a cluster IP never leaks onto
//! a real route. A daemon stopping cleanly removes all of it ([`ServiceTable::remove_all`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use sha2::{Digest, Sha256};

use super::portmap::{self, PortMapError};
use super::ports::Protocol;
use super::subnet::Ipv4Subnet;

/// The conntrack mark of service flows (masqueraded on the way out).
const SERVICE_MARK: u32 = 0x5e7c_0000;
const SERVICES: &str = "services";

/// One port of a Service as the data plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePortRule {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port on the cluster IP.
    pub port: u16,
    /// The port on every local address, for NodePort services.
    pub node_port: Option<u16>,
    /// Ready endpoints (pod address and resolved target port).
    pub endpoints: Vec<SocketAddrV4>,
}

/// Everything one Service needs in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRules {
    /// `namespace/name`, the tag of its rules.
    pub id: String,
    /// The virtual IP (none for a headless service: only node ports, if any).
    pub cluster_ip: Option<Ipv4Addr>,
    /// Its ports.
    pub ports: Vec<ServicePortRule>,
}

/// The service part of one berth nftables table.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    table: String,
    range: Ipv4Subnet,
}

fn chain_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("svc_{}", hex::encode(&digest[..6]))
}

impl ServiceTable {
    /// The service rules of table `table` (family `ip`, name starting with `berth`), for
    /// cluster IPs in `range`.
    pub fn new(table: &str, range: Ipv4Subnet) -> Result<Self, super::NetworkError> {
        let ok = table.starts_with("berth")
            && table.len() <= 64
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(super::NetworkError::TableName(table.to_string()));
        }
        Ok(ServiceTable {
            table: table.to_string(),
            range,
        })
    }

    /// The service range.
    pub fn range(&self) -> Ipv4Subnet {
        self.range
    }

    /// The chains every service hangs off: nat hooks before berth's port forwards, the
    /// masquerade of marked flows, and the reject of untranslated service-range traffic.
    fn base(&self) -> String {
        let (t, range) = (&self.table, self.range);
        format!(
            "add table ip {t}\n\
             add chain ip {t} {SERVICES}\n\
             add chain ip {t} svc_prerouting {{ type nat hook prerouting priority -105; policy accept; }}\n\
             add chain ip {t} svc_output {{ type nat hook output priority -105; policy accept; }}\n\
             add chain ip {t} svc_postrouting {{ type nat hook postrouting priority 95; policy accept; }}\n\
             add chain ip {t} svc_reject_output {{ type filter hook output priority 0; policy accept; }}\n\
             add chain ip {t} svc_reject_forward {{ type filter hook forward priority 0; policy accept; }}\n\
             add rule ip {t} svc_prerouting jump {SERVICES} comment \"svc-base\"\n\
             add rule ip {t} svc_output jump {SERVICES} comment \"svc-base\"\n\
             add rule ip {t} svc_postrouting ct mark {SERVICE_MARK:#010x} masquerade comment \"svc-base\"\n\
             add rule ip {t} svc_reject_output ip daddr {range} reject comment \"svc-base\"\n\
             add rule ip {t} svc_reject_forward ip daddr {range} reject comment \"svc-base\"\n"
        )
    }

    /// The script that (re)writes one service's chain.
    pub fn chain_script(&self, svc: &ServiceRules) -> String {
        let t = &self.table;
        let chain = chain_of(&svc.id);
        let mut s = format!("add chain ip {t} {chain}\nflush chain ip {t} {chain}\n");
        for p in &svc.ports {
            if p.endpoints.is_empty() {
                continue;
            }
            let targets: Vec<String> = p
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{i} : {} . {}", e.ip(), e.port()))
                .collect();
            let dnat = format!(
                "ct mark set {SERVICE_MARK:#010x} dnat ip to numgen random mod {} map {{ {} }}",
                targets.len(),
                targets.join(", ")
            );
            let proto = p.protocol;
            if let Some(ip) = svc.cluster_ip {
                let _ = writeln!(
                    s,
                    "add rule ip {t} {chain} ip daddr {ip} {proto} dport {} {dnat} comment \"svc={} port={proto}/{}\"",
                    p.port, svc.id, p.port
                );
            }
            if let Some(np) = p.node_port {
                let _ = writeln!(
                    s,
                    "add rule ip {t} {chain} fib daddr type local {proto} dport {np} {dnat} comment \"svc={} nodePort={proto}/{np}\"",
                    svc.id
                );
            }
        }
        s
    }

    /// Creates the table's service chains if they are missing, so that no packet to the
    /// service range is routed off the host even before the first Service is programmed.
    pub fn ensure(&self) -> Result<(), PortMapError> {
        let rules = portmap::list(&self.table)?.unwrap_or_default();
        if rules.iter().any(|r| r.chain == "svc_prerouting") {
            return Ok(());
        }
        portmap::apply("create the service chains", &self.base())
    }

    /// Programs `svc` (creating the table's service chains first if needed), replacing
    /// whatever rules it had in one transaction.
    pub fn program(&self, svc: &ServiceRules) -> Result<(), PortMapError> {
        let rules = portmap::list(&self.table)?.unwrap_or_default();
        let mut script = String::new();
        if !rules.iter().any(|r| r.chain == "svc_prerouting") {
            script.push_str(&self.base());
        }
        script.push_str(&self.chain_script(svc));
        let tag = format!("svc={}", svc.id);
        if !rules
            .iter()
            .any(|r| r.chain == SERVICES && r.comment == tag)
        {
            let _ = writeln!(
                script,
                "add rule ip {} {SERVICES} jump {} comment \"{tag}\"",
                self.table,
                chain_of(&svc.id)
            );
        }
        portmap::apply(&format!("program service {}", svc.id), &script)
    }

    /// The ids (`namespace/name`) of the services programmed in the table.
    pub fn programmed(&self) -> Result<Vec<String>, PortMapError> {
        Ok(portmap::list(&self.table)?
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.chain == SERVICES)
            .filter_map(|r| r.comment.strip_prefix("svc=").map(str::to_string))
            .collect())
    }

    /// Removes a service's rules; nothing happens when it has none.
    pub fn remove(&self, id: &str) -> Result<(), PortMapError> {
        let tag = format!("svc={id}");
        let Some(rules) = portmap::list(&self.table)? else {
            return Ok(());
        };
        let Some(jump) = rules
            .iter()
            .find(|r| r.chain == SERVICES && r.comment == tag)
        else {
            return Ok(());
        };
        let script = format!(
            "delete rule ip {t} {SERVICES} handle {h}\ndelete chain ip {t} {c}\n",
            t = self.table,
            h = jump.handle,
            c = chain_of(id)
        );
        portmap::apply(&format!("remove service {id}"), &script)
    }
}

impl ServiceTable {
    /// Removes every Service chain and rule of the table, the reject of the service range
    /// included, and leaves containers' port forwards (a daemon stopping cleanly); a table
    /// that held only Service chains is deleted.
    pub fn remove_all(&self) -> Result<(), PortMapError> {
        let Some(chains) = portmap::chains(&self.table)? else {
            return Ok(());
        };
        let ours: Vec<&String> = chains
            .iter()
            .filter(|c| *c == SERVICES || c.starts_with("svc_"))
            .collect();
        if ours.is_empty() {
            return Ok(());
        }
        if ours.len() == chains.len() {
            // Only Services used the table: it goes too.
            return portmap::apply(
                "remove the service chains",
                &format!("delete table ip {}\n", self.table),
            );
        }
        portmap::apply("remove the service chains", &self.removal_script(&ours))
    }

    /// Flushes `chains` first, so no jump between them is left when each is deleted.
    fn removal_script(&self, chains: &[&String]) -> String {
        let t = &self.table;
        let mut s = String::new();
        for c in chains {
            let _ = writeln!(s, "flush chain ip {t} {c}");
        }
        for c in chains {
            let _ = writeln!(s, "delete chain ip {t} {c}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ServiceTable {
        ServiceTable::new("berth_t9", "10.97.9.0/24".parse().unwrap()).unwrap()
    }

    #[test]
    fn chains_are_per_service_and_stable() {
        assert_eq!(chain_of("default/web"), chain_of("default/web"));
        assert_ne!(chain_of("default/web"), chain_of("prod/web"));
        assert!(chain_of("a/b").len() <= 16);
        assert!(ServiceTable::new("nat", "10.97.0.0/16".parse().unwrap()).is_err());
    }

    #[test]
    fn removal_flushes_before_deleting() {
        let (a, b) = ("services".to_string(), "svc_prerouting".to_string());
        let s = table().removal_script(&[&a, &b]);
        assert_eq!(
            s,
            "flush chain ip berth_t9 services\nflush chain ip berth_t9 svc_prerouting\n\
             delete chain ip berth_t9 services\ndelete chain ip berth_t9 svc_prerouting\n"
        );
    }

    #[test]
    fn rules_balance_over_endpoints() {
        let svc = ServiceRules {
            id: "default/web".into(),
            cluster_ip: Some(Ipv4Addr::new(10, 97, 9, 10)),
            ports: vec![
                ServicePortRule {
                    protocol: Protocol::Tcp,
                    port: 80,
                    node_port: Some(30080),
                    endpoints: vec![
                        "10.88.1.2:8080".parse().unwrap(),
                        "10.88.1.3:8081".parse().unwrap(),
                    ],
                },
                ServicePortRule {
                    protocol: Protocol::Udp,
                    port: 53,
                    node_port: None,
                    endpoints: vec![],
                },
            ],
        };
        let s = table().chain_script(&svc);
        let c = chain_of("default/web");
        assert!(
            s.starts_with(&format!(
                "add chain ip berth_t9 {c}\nflush chain ip berth_t9 {c}\n"
            )),
            "{s}"
        );
        assert!(s.contains("ip daddr 10.97.9.10 tcp dport 80 ct mark set 0x5e7c0000 dnat ip to numgen random mod 2 map { 0 : 10.88.1.2 . 8080, 1 : 10.88.1.3 . 8081 } comment \"svc=default/web port=tcp/80\""), "{s}");
        assert!(
            s.contains("fib daddr type local tcp dport 30080 ct mark set"),
            "{s}"
        );
        // No endpoints: no rule, so the range's reject answers.
        assert!(!s.contains("dport 53"), "{s}");
        let base = table().base();
        assert!(base.contains("ip daddr 10.97.9.0/24 reject"), "{base}");
        assert!(base.contains("ct mark 0x5e7c0000 masquerade"), "{base}");
    }
}
