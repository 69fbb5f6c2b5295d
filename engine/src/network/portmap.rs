//! Port forwarding in berth's own nftables table: DNAT from the host's addresses (and from
//! 127.0.0.1) to container addresses, masquerade where replies would otherwise go astray.
//!
//! The table lives in the kernel, not in a process, so forwarding keeps working while no berth
//! process runs. Every rule carries a comment naming its owner (`ctr=<id>`, or `net=<bridge>`
//! for the table's fixed rules), which is how `detach` finds exactly the rules one container
//! added. Changes go through `nft -f -` with one generated script each: one process per change,
//! applied atomically by the kernel.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::conntrack;
use super::ports::{PortMapping, Protocol};
use super::subnet::Ipv4Subnet;

/// Errors from port forwarding.
#[derive(Debug, thiserror::Error)]
pub enum PortMapError {
    /// The host port is already forwarded by berth.
    #[error("host port {protocol}/{addr}:{port} is already forwarded to {owner}")]
    Forwarded {
        /// Protocol of the port.
        protocol: Protocol,
        /// Host address ("0.0.0.0" for all).
        addr: Ipv4Addr,
        /// The port.
        port: u16,
        /// The container or pod that has it.
        owner: String,
    },
    /// The same host port appears twice in one request.
    #[error("host port {protocol}/{addr}:{port} is published twice")]
    Duplicate {
        /// Protocol of the port.
        protocol: Protocol,
        /// Host address ("0.0.0.0" for all).
        addr: Ipv4Addr,
        /// The port.
        port: u16,
    },
    /// Something on the host already listens on the port.
    #[error("host port {protocol}/{addr}:{port} is already in use on this host")]
    InUse {
        /// Protocol of the port.
        protocol: Protocol,
        /// Host address ("0.0.0.0" for all).
        addr: Ipv4Addr,
        /// The port.
        port: u16,
    },
    /// The host address is not one of this host's.
    #[error("host address {0} is not an address of this host")]
    NotLocal(Ipv4Addr),
    /// Probing the host port failed for another reason.
    #[error("cannot probe host port {protocol}/{addr}:{port}: {source}")]
    Probe {
        /// Protocol of the port.
        protocol: Protocol,
        /// Host address ("0.0.0.0" for all).
        addr: Ipv4Addr,
        /// The port.
        port: u16,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel picked no free port.
    #[error("no free host port for {0}")]
    NoFreePort(Protocol),
    /// `nft` could not be started.
    #[error("cannot run nft (apt-get install nftables): {0}")]
    Spawn(#[source] std::io::Error),
    /// `nft` rejected a script or a listing.
    #[error("nft {what} failed: {stderr}")]
    Nft {
        /// What was being done.
        what: String,
        /// nft's error output.
        stderr: String,
    },
    /// `nft -j` printed something unexpected.
    #[error("nft table {table}: unreadable listing: {source}")]
    Listing {
        /// The table.
        table: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// The names and addresses one berth network's rules are generated from.
#[derive(Debug, Clone)]
pub(crate) struct Ruleset {
    /// nftables table (family `ip`).
    pub table: String,
    /// The network's bridge.
    pub bridge: String,
    /// The network's subnet.
    pub subnet: Ipv4Subnet,
}

/// A rule of berth's table that carries a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaggedRule {
    /// Chain holding the rule.
    pub chain: String,
    /// Kernel handle, for deletion.
    pub handle: u64,
    /// The rule's comment.
    pub comment: String,
}

/// A host port berth forwards, as recorded in a rule's comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forward {
    pub owner: String,
    pub protocol: Protocol,
    pub addr: Option<Ipv4Addr>,
    pub port: u16,
}

const FORWARDS: &str = "forwards";

fn owner_tag(owner: &str) -> String {
    format!("ctr={owner}")
}

impl TaggedRule {
    /// The container or pod this rule belongs to.
    pub fn owner(&self) -> Option<&str> {
        self.comment.split(' ').next()?.strip_prefix("ctr=")
    }

    /// The forwarded host port this rule implements, if it is a forward.
    pub fn forward(&self) -> Option<Forward> {
        let owner = self.owner()?.to_string();
        let fwd = self
            .comment
            .split(' ')
            .find_map(|w| w.strip_prefix("fwd="))?;
        let (protocol, rest) = fwd.split_once('/')?;
        let (addr, port) = rest.rsplit_once(':')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        Some(Forward {
            owner,
            protocol: protocol.parse().ok()?,
            addr: Some(addr).filter(|a| !a.is_unspecified()),
            port: port.parse().ok()?,
        })
    }
}

impl Ruleset {
    /// The table with its chains and fixed rules: traffic to any local address (also from
    /// this host, via the output hook) goes through the `forwards` chain; connections from
    /// 127.0.0.0/8 and hairpin connections are masqueraded on the bridge so replies come back
    /// through the host; containers' own outgoing traffic is masqueraded when it leaves.
    /// The output hook's priority is spelled -100 (= dstnat): nft 1.0.6 (bookworm) accepts the
    /// name only on prerouting. The table's [`Ruleset::loopback_guard`] comes with it.
    pub fn base(&self) -> String {
        let Ruleset {
            table,
            bridge,
            subnet,
        } = self;
        let tag = format!("net={bridge}");
        format!(
            "table ip {table} {{\n\
             \tchain {FORWARDS} {{\n\t}}\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tfib daddr type local jump {FORWARDS} comment \"{tag}\"\n\
             \t}}\n\
             \tchain output {{\n\
             \t\ttype nat hook output priority -100; policy accept;\n\
             \t\tfib daddr type local jump {FORWARDS} comment \"{tag}\"\n\
             \t}}\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"{bridge}\" ip saddr 127.0.0.0/8 ct status dnat masquerade comment \"{tag} localhost\"\n\
             \t\toifname \"{bridge}\" ip saddr {subnet} ct status dnat masquerade comment \"{tag} hairpin\"\n\
             \t\toifname != \"{bridge}\" ip saddr {subnet} masquerade comment \"{tag} egress\"\n\
             \t}}\n\
             }}\n{guard}",
            guard = self.loopback_guard()
        )
    }

    /// The rule that keeps containers out of the host's loopback. The bridge has
    /// `route_localnet=1` so forwards from 127.0.0.1 work, which would also let a container
    /// send packets to the gateway's MAC addressed to 127.0.0.1 and reach services bound only
    /// to the host's loopback (CVE-2020-8558 in kube-proxy, which added the same drop): a new
    /// connection from the bridge to 127.0.0.0/8 that berth did not DNAT is dropped on input.
    pub fn loopback_guard(&self) -> String {
        let Ruleset { table, bridge, .. } = self;
        format!(
            "table ip {table} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname \"{bridge}\" ip daddr 127.0.0.0/8 ct state != {{ established, related }} ct status & dnat != dnat drop comment \"{tag}\"\n\
             \t}}\n\
             }}\n",
            tag = self.loopback_tag()
        )
    }

    fn loopback_tag(&self) -> String {
        format!("net={} loopback", self.bridge)
    }

    /// Whether `rules` (the table's tagged rules) include the [`Ruleset::loopback_guard`]: a
    /// table made by an older berth has the base without it.
    pub fn has_loopback_guard(&self, rules: &[TaggedRule]) -> bool {
        let tag = self.loopback_tag();
        rules.iter().any(|r| r.chain == "input" && r.comment == tag)
    }

    /// Whether `rules` (the table's tagged rules) include [`Ruleset::base`]'s: the table may
    /// exist without them, holding only the node daemon's Service chains.
    pub fn has_base(&self, rules: &[TaggedRule]) -> bool {
        let tag = format!("net={}", self.bridge);
        rules
            .iter()
            .any(|r| r.chain == "prerouting" && r.comment == tag)
    }

    /// Rules forwarding each mapping (host ports already chosen) to `container_ip`, stamping
    /// each flow with the owner's conntrack mark so detach can forget the flows.
    pub fn add_forwards(
        &self,
        owner: &str,
        container_ip: Ipv4Addr,
        mappings: &[PortMapping],
    ) -> String {
        let mut script = String::new();
        for m in mappings {
            let daddr = m
                .host_ip
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            let addr = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            script.push_str(&format!(
                "add rule ip {table} {FORWARDS} {daddr}{proto} dport {hp} ct mark set {mark:#010x} dnat to {container_ip}:{cp} comment \"{tag} fwd={proto}/{addr}:{hp}\"\n",
                table = self.table,
                proto = m.protocol,
                hp = m.host_port,
                cp = m.container_port,
                mark = conntrack::mark_for(owner),
                tag = owner_tag(owner),
            ));
        }
        script
    }

    /// Deletes the given rules by handle.
    pub fn delete(&self, rules: &[TaggedRule]) -> String {
        rules
            .iter()
            .map(|r| {
                format!(
                    "delete rule ip {} {} handle {}\n",
                    self.table, r.chain, r.handle
                )
            })
            .collect()
    }

    /// Removes the whole table.
    pub fn delete_table(&self) -> String {
        format!("delete table ip {}\n", self.table)
    }
}

#[derive(Deserialize)]
struct Listing {
    nftables: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RuleJson {
    chain: String,
    handle: u64,
    #[serde(default)]
    comment: Option<String>,
}

/// Parses `nft -j -a list table ...` output into the rules that carry comments.
pub(crate) fn parse_listing(table: &str, json: &str) -> Result<Vec<TaggedRule>, PortMapError> {
    let listing_err = |source| PortMapError::Listing {
        table: table.to_string(),
        source,
    };
    let listing: Listing = serde_json::from_str(json).map_err(listing_err)?;
    let mut rules = Vec::new();
    for item in listing.nftables {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let rule: RuleJson = serde_json::from_value(rule.clone()).map_err(listing_err)?;
        if let Some(comment) = rule.comment {
            rules.push(TaggedRule {
                chain: rule.chain,
                handle: rule.handle,
                comment,
            });
        }
    }
    Ok(rules)
}

/// Applies a script with `nft -f -` (atomically: all of it or none).
pub(crate) fn apply(what: &str, script: &str) -> Result<(), PortMapError> {
    tracing::debug!(what, script, "nft -f -");
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(PortMapError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(PortMapError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(PortMapError::Spawn)?;
    if !out.status.success() {
        return Err(PortMapError::Nft {
            what: what.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The tagged rules of `table`, or `None` when the table does not exist.
pub(crate) fn list(table: &str) -> Result<Option<Vec<TaggedRule>>, PortMapError> {
    match listing(table)? {
        Some(json) => parse_listing(table, &json).map(Some),
        None => Ok(None),
    }
}

/// The names of `table`'s chains, or `None` when the table does not exist.
pub(crate) fn chains(table: &str) -> Result<Option<Vec<String>>, PortMapError> {
    let Some(json) = listing(table)? else {
        return Ok(None);
    };
    let listing: Listing = serde_json::from_str(&json).map_err(|source| PortMapError::Listing {
        table: table.to_string(),
        source,
    })?;
    Ok(Some(
        listing
            .nftables
            .iter()
            .filter_map(|item| item.get("chain")?.get("name")?.as_str())
            .map(str::to_string)
            .collect(),
    ))
}

/// `nft -j -a list table ip TABLE`, or `None` when the table does not exist.
fn listing(table: &str) -> Result<Option<String>, PortMapError> {
    let out = Command::new("nft")
        .args(["-j", "-a", "list", "table", "ip", table])
        .output()
        .map_err(PortMapError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(PortMapError::Nft {
            what: format!("list table {table}"),
            stderr,
        });
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn overlaps(a: Option<Ipv4Addr>, b: Option<Ipv4Addr>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Chooses host ports for mappings that have none (asking the kernel for a free one) and
/// checks every mapping against berth's existing forwards, the rest of the request, and the
/// host's own sockets. Returns the mappings with their host ports filled in.
pub(crate) fn reserve(
    existing: &[Forward],
    requested: &[PortMapping],
) -> Result<Vec<PortMapping>, PortMapError> {
    let mut chosen: Vec<PortMapping> = Vec::with_capacity(requested.len());
    for m in requested {
        let mut m = *m;
        if m.host_port == 0 {
            m.host_port = pick_port(m, existing, &chosen)?;
        }
        let addr = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if let Some(f) = existing.iter().find(|f| {
            f.protocol == m.protocol && f.port == m.host_port && overlaps(f.addr, m.host_ip)
        }) {
            return Err(PortMapError::Forwarded {
                protocol: m.protocol,
                addr,
                port: m.host_port,
                owner: f.owner.clone(),
            });
        }
        if chosen.iter().any(|c| {
            c.protocol == m.protocol && c.host_port == m.host_port && overlaps(c.host_ip, m.host_ip)
        }) {
            return Err(PortMapError::Duplicate {
                protocol: m.protocol,
                addr,
                port: m.host_port,
            });
        }
        probe(m.protocol, addr, m.host_port)?;
        chosen.push(m);
    }
    Ok(chosen)
}

/// Binds the port for a moment to learn whether anything on the host holds it.
fn probe(protocol: Protocol, addr: Ipv4Addr, port: u16) -> Result<u16, PortMapError> {
    let sock = SocketAddrV4::new(addr, port);
    let bound = match protocol {
        Protocol::Tcp => TcpListener::bind(sock).and_then(|l| l.local_addr()),
        Protocol::Udp => UdpSocket::bind(sock).and_then(|s| s.local_addr()),
    };
    match bound {
        Ok(local) => Ok(local.port()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortMapError::InUse {
            protocol,
            addr,
            port,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            Err(PortMapError::NotLocal(addr))
        }
        Err(source) => Err(PortMapError::Probe {
            protocol,
            addr,
            port,
            source,
        }),
    }
}

fn pick_port(
    m: PortMapping,
    existing: &[Forward],
    chosen: &[PortMapping],
) -> Result<u16, PortMapError> {
    let addr = m.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    for _ in 0..64 {
        let port = probe(m.protocol, addr, 0)?;
        let taken = existing
            .iter()
            .any(|f| f.protocol == m.protocol && f.port == port)
            || chosen
                .iter()
                .any(|c| c.protocol == m.protocol && c.host_port == port);
        if !taken {
            return Ok(port);
        }
    }
    Err(PortMapError::NoFreePort(m.protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset() -> Ruleset {
        Ruleset {
            table: "berth".into(),
            bridge: "berth0".into(),
            subnet: "10.88.0.0/16".parse().unwrap(),
        }
    }

    #[test]
    fn base_ruleset_drops_undnatted_loopback_traffic_from_the_bridge() {
        let base = ruleset().base();
        let rule = "iifname \"berth0\" ip daddr 127.0.0.0/8 ct state != { established, related } ct status & dnat != dnat drop comment \"net=berth0 loopback\"";
        assert!(
            base.contains("type filter hook input priority filter;"),
            "{base}"
        );
        assert!(base.contains(rule), "{base}");
        let tagged = |chain: &str, comment: &str| TaggedRule {
            chain: chain.into(),
            handle: 1,
            comment: comment.into(),
        };
        let old = [tagged("prerouting", "net=berth0")];
        assert!(ruleset().has_base(&old) && !ruleset().has_loopback_guard(&old));
        let new = [old[0].clone(), tagged("input", "net=berth0 loopback")];
        assert!(ruleset().has_loopback_guard(&new));
    }

    #[test]
    fn base_ruleset_hooks_nat_and_masquerades_only_via_the_bridge() {
        let base = ruleset().base();
        assert!(base.starts_with("table ip berth {"));
        assert!(base.contains("type nat hook prerouting priority dstnat;"));
        assert!(base.contains("type nat hook output priority -100;"));
        assert!(base.contains("fib daddr type local jump forwards comment \"net=berth0\""));
        assert!(base.contains(
            "oifname \"berth0\" ip saddr 127.0.0.0/8 ct status dnat masquerade comment \"net=berth0 localhost\""
        ));
        assert!(base.contains("oifname != \"berth0\" ip saddr 10.88.0.0/16 masquerade"));
    }

    #[test]
    fn forwards_are_tagged_with_owner_and_port() {
        let script = ruleset().add_forwards(
            "c1",
            Ipv4Addr::new(10, 88, 0, 2),
            &[
                PortMapping {
                    host_ip: None,
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 5353,
                    container_port: 53,
                    protocol: Protocol::Udp,
                },
            ],
        );
        let mark = format!("{:#010x}", conntrack::mark_for("c1"));
        assert_eq!(
            script,
            format!(
                "add rule ip berth forwards tcp dport 8080 ct mark set {mark} dnat to 10.88.0.2:80 comment \"ctr=c1 fwd=tcp/0.0.0.0:8080\"\n\
                 add rule ip berth forwards ip daddr 127.0.0.1 udp dport 5353 ct mark set {mark} dnat to 10.88.0.2:53 comment \"ctr=c1 fwd=udp/127.0.0.1:5353\"\n"
            )
        );
    }

    #[test]
    fn deletes_by_handle() {
        let rules = [TaggedRule {
            chain: "forwards".into(),
            handle: 7,
            comment: "ctr=c1 fwd=tcp/0.0.0.0:8080".into(),
        }];
        assert_eq!(
            ruleset().delete(&rules),
            "delete rule ip berth forwards handle 7\n"
        );
    }

    #[test]
    fn parses_listing_and_comments() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "berth", "handle": 3}},
            {"chain": {"family": "ip", "table": "berth", "name": "forwards", "handle": 1}},
            {"rule": {"family": "ip", "table": "berth", "chain": "forwards", "handle": 9,
              "comment": "ctr=abc fwd=udp/127.0.0.1:5353", "expr": []}},
            {"rule": {"family": "ip", "table": "berth", "chain": "postrouting", "handle": 4,
              "comment": "net=berth0 egress", "expr": []}},
            {"rule": {"family": "ip", "table": "berth", "chain": "forwards", "handle": 10, "expr": []}}]}"#;
        let rules = parse_listing("berth", json).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].owner(), Some("abc"));
        assert_eq!(
            rules[0].forward(),
            Some(Forward {
                owner: "abc".into(),
                protocol: Protocol::Udp,
                addr: Some(Ipv4Addr::LOCALHOST),
                port: 5353
            })
        );
        assert_eq!(rules[1].owner(), None);
        assert_eq!(rules[1].forward(), None);
        assert!(parse_listing("berth", "{").is_err());
    }

    #[test]
    fn reserve_rejects_forwarded_and_duplicate_ports() {
        let existing = [Forward {
            owner: "other".into(),
            protocol: Protocol::Tcp,
            addr: None,
            port: 1,
        }];
        let m = |ip: Option<Ipv4Addr>, port, protocol| PortMapping {
            host_ip: ip,
            host_port: port,
            container_port: 80,
            protocol,
        };
        let err =
            reserve(&existing, &[m(Some(Ipv4Addr::LOCALHOST), 1, Protocol::Tcp)]).unwrap_err();
        assert!(
            err.to_string().contains("already forwarded to other"),
            "{err}"
        );
        // Same port, other protocol: allowed as far as berth's forwards go; but a request
        // naming one port twice is refused before any probe of the host.
        let err = reserve(
            &existing,
            &[m(None, 0, Protocol::Udp), m(None, 0, Protocol::Udp)],
        )
        .map(|v| v.len());
        assert!(matches!(err, Ok(2)), "two ephemeral ports: {err:?}");
    }

    #[test]
    fn reserve_rejects_an_address_the_host_does_not_have() {
        let err = reserve(
            &[],
            &[PortMapping {
                host_ip: Some(Ipv4Addr::new(203, 0, 113, 9)),
                host_port: 0,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "host address 203.0.113.9 is not an address of this host"
        );
    }

    #[test]
    fn reserve_sees_a_listening_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = reserve(
            &[],
            &[PortMapping {
                host_ip: None,
                host_port: port,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, PortMapError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("already in use on this host"));
    }
}
