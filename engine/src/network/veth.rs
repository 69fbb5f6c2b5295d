//! The veth pair joining a container's network namespace to the bridge: `bv<short-id>` on the
//! host, plugged into the bridge, and `eth0` inside, with the container's address and a
//! default route via the gateway.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use sha2::{Digest, Sha256};

use super::netlink::{self, is_errno, link_index, NetlinkError};

/// The interface name inside the container.
pub const CONTAINER_IFNAME: &str = "eth0";

/// The host-side veth name for a container: `bv` and the first 12 hex digits of its id
/// (or of the id's SHA-256 when the id is not hex), within the kernel's 15-byte limit.
pub fn host_name(container_id: &str) -> String {
    let hex_id = container_id.len() >= 12
        && container_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex_id {
        format!("bv{}", &container_id[..12])
    } else {
        let digest = hex::encode(Sha256::digest(container_id.as_bytes()));
        format!("bv{}", &digest[..12])
    }
}

/// Creates the pair with its container end directly inside `netns` (so no name clash with
/// host interfaces is possible), plugs the host end into bridge `bridge_index` in hairpin
/// mode, then sets up `lo`, `eth0`, its address and the default route inside the namespace.
/// A failure after the pair exists deletes it again.
pub(crate) fn create(
    host: &str,
    bridge_index: u32,
    netns: &Path,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetlinkError> {
    let ns_file = std::fs::File::open(netns).map_err(|source| NetlinkError::OpenNetns {
        path: netns.to_path_buf(),
        source,
    })?;
    let host_owned = host.to_string();
    // One queue per CPU on both ends, as netavark does, so that a veth's traffic is not tied
    // to one CPU (the kernel's default is a single queue).
    let queues = std::thread::available_parallelism().map_or(1, |n| n.get());
    let queues = u32::try_from(queues).unwrap_or(1);
    netlink::run(None, move |handle| async move {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(CONTAINER_IFNAME)
            .setns_by_fd(ns_file.as_raw_fd())
            .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
            .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
            .build();
        let message = LinkVeth::new(&host_owned, CONTAINER_IFNAME)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
            .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
            .controller(bridge_index)
            .up()
            .build();
        let added = handle.link().add(message).execute().await;
        drop(ns_file);
        added.map_err(NetlinkError::request(format!("create veth {host_owned}")))
    })?;
    let host_owned = host.to_string();
    let configured = netlink::run(None, move |handle| async move {
        // Hairpin mode lets a container reach its own forwarded port through the host's
        // address: with br_netfilter loaded the DNAT happens while the frame is still being
        // bridged, and the bridge would otherwise refuse to send it back out its own port.
        let index = link_index(&handle, &host_owned)
            .await?
            .ok_or_else(|| NetlinkError::LinkNotFound(host_owned.clone()))?;
        handle
            .link()
            .set_port(LinkBridgePort::new(index).hairpin(true).build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "set hairpin mode on {host_owned}"
            )))
    })
    .and_then(|()| configure_inside(netns, ip, prefix, gateway));
    if let Err(e) = configured {
        if let Err(cleanup) = delete_link(host) {
            tracing::warn!(veth = host, error = %cleanup, "cannot remove half-configured veth");
        }
        return Err(e);
    }
    Ok(())
}

/// Inside the namespace: `lo` and `eth0` up, the address on `eth0`, the default route.
fn configure_inside(
    netns: &Path,
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetlinkError> {
    netlink::run(Some(netns), move |handle| async move {
        for name in ["lo", CONTAINER_IFNAME] {
            let index = link_index(&handle, name)
                .await?
                .ok_or_else(|| NetlinkError::LinkNotFound(name.to_string()))?;
            if name == CONTAINER_IFNAME {
                handle
                    .address()
                    .add(index, IpAddr::V4(ip), prefix)
                    .execute()
                    .await
                    .map_err(NetlinkError::request(format!(
                        "add address {ip}/{prefix} to {CONTAINER_IFNAME}"
                    )))?;
            }
            handle
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(NetlinkError::request(format!("set {name} up")))?;
        }
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(NetlinkError::request(format!(
                "add default route via {gateway}"
            )))?;
        Ok(())
    })
}

/// Deletes the host link `name` (for a veth, both ends go); returns whether it existed.
pub(crate) fn delete_link(name: &str) -> Result<bool, NetlinkError> {
    let name = name.to_string();
    netlink::run(None, move |handle| async move {
        let Some(index) = link_index(&handle, &name).await? else {
            return Ok(false);
        };
        match handle.link().del(index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
            Err(e) => Err(NetlinkError::request(format!("delete link {name}"))(e)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_fit_ifnamsiz_and_use_the_short_id() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(host_name(id), "bv0123456789ab");
        let named = host_name("my-pod");
        assert_eq!(named.len(), 14);
        assert!(named.starts_with("bv"));
        assert_ne!(named, host_name("my-pod2"));
        assert_eq!(named, host_name("my-pod"));
    }
}
