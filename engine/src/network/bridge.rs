//! The network's Linux bridge: created on first use with the gateway address, up, and removed
//! only when the whole network is torn down.

use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::{LinkBridge, LinkUnspec};

use super::netlink::{self, is_errno, link_index, NetlinkError};

/// Makes sure bridge `name` exists, carries `gateway/prefix` and is up; returns its index.
pub(crate) fn ensure(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32, NetlinkError> {
    let name = name.to_string();
    netlink::run(None, move |handle| async move {
        let index = match link_index(&handle, &name).await? {
            Some(index) => index,
            None => {
                match handle
                    .link()
                    .add(LinkBridge::new(&name).build())
                    .execute()
                    .await
                {
                    Ok(()) => tracing::info!(bridge = %name, "created bridge"),
                    Err(e) if is_errno(&e, libc::EEXIST) => {}
                    Err(e) => {
                        return Err(NetlinkError::request(format!("create bridge {name}"))(e))
                    }
                }
                link_index(&handle, &name)
                    .await?
                    .ok_or_else(|| NetlinkError::LinkNotFound(name.clone()))?
            }
        };
        match handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if is_errno(&e, libc::EEXIST) => {}
            Err(e) => {
                return Err(NetlinkError::request(format!(
                    "add address {gateway}/{prefix} to bridge {name}"
                ))(e))
            }
        }
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(NetlinkError::request(format!("set bridge {name} up")))?;
        Ok(index)
    })
}

/// Deletes bridge `name`; returns whether it existed.
pub(crate) fn remove(name: &str) -> Result<bool, NetlinkError> {
    super::veth::delete_link(name)
}
