//! Forgets the connection-tracking entries of a container's forwarded flows when it detaches.
//!
//! A DNATed flow's conntrack entry outlives the rule that created it: a UDP client that keeps
//! sending from the same port would go on reaching the detached container's old address (the
//! entry is refreshed by every packet) even after another container took the host port. So
//! every forward rule stamps its flows with a conntrack mark derived from the owner's id, and
//! detach flushes the entries carrying that mark in one ctnetlink request.
//!
//! Hand-rolled rather than through a crate: the request is one fixed 36-byte message, and the
//! netlink crates' conntrack support is not released yet.

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use sha2::{Digest, Sha256};

/// Errors flushing conntrack entries.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// The netfilter netlink socket failed.
    #[error("conntrack flush for mark {mark:#010x}: {source}")]
    Io {
        /// The mark being flushed.
        mark: u32,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the request.
    #[error("conntrack flush for mark {mark:#010x}: kernel error {errno}")]
    Kernel {
        /// The mark being flushed.
        mark: u32,
        /// The errno the kernel answered.
        errno: i32,
    },
}

/// High bits that set berth's marks apart from small marks other tools use.
const MARK_BASE: u32 = 0xb000_0000;

/// The conntrack mark of `owner`'s forwarded flows.
pub(crate) fn mark_for(owner: &str) -> u32 {
    let digest = Sha256::digest(owner.as_bytes());
    let low = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    MARK_BASE | (low & 0x0fff_ffff)
}

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;

/// The IPCTNL_MSG_CT_DELETE request without a tuple (a flush) filtered on `mark`.
fn flush_request(mark: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(36);
    msg.extend_from_slice(&36u32.to_ne_bytes());
    msg.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE).to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    msg.push(libc::AF_INET as u8); // nfgenmsg: family
    msg.push(0); // version NFNETLINK_V0
    msg.extend_from_slice(&0u16.to_be_bytes()); // resource id
    for (kind, value) in [(CTA_MARK, mark), (CTA_MARK_MASK, u32::MAX)] {
        msg.extend_from_slice(&8u16.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&value.to_be_bytes());
    }
    msg
}

/// The errno of a netlink ack (0 for success), if `reply` is one.
fn ack_errno(reply: &[u8]) -> Option<i32> {
    let kind = u16::from_ne_bytes([*reply.get(4)?, *reply.get(5)?]);
    if kind != NLMSG_ERROR {
        return None;
    }
    let code = i32::from_ne_bytes([
        *reply.get(16)?,
        *reply.get(17)?,
        *reply.get(18)?,
        *reply.get(19)?,
    ]);
    Some(-code)
}

/// Deletes every IPv4 conntrack entry carrying `mark`. No entry to delete is not an error.
pub(crate) fn flush_mark(mark: u32) -> Result<(), ConntrackError> {
    let io = |source| ConntrackError::Io { mark, source };
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(io)?;
    socket.bind_auto().map_err(io)?;
    socket
        .send_to(&flush_request(mark), &SocketAddr::new(0, 0), 0)
        .map_err(io)?;
    loop {
        let (reply, _) = socket.recv_from_full().map_err(io)?;
        match ack_errno(&reply) {
            Some(0) | Some(libc::ENOENT) => return Ok(()),
            Some(errno) => return Err(ConntrackError::Kernel { mark, errno }),
            None => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_stable_distinct_and_in_berths_range() {
        let a = mark_for("a");
        assert_eq!(a, mark_for("a"));
        assert_ne!(a, mark_for("b"));
        assert_eq!(a & 0xf000_0000, MARK_BASE);
    }

    #[test]
    fn flush_request_layout() {
        let msg = flush_request(0xb123_4567);
        assert_eq!(msg.len(), 36);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), 0x0102);
        assert_eq!(msg[16], libc::AF_INET as u8);
        assert_eq!(&msg[24..28], &0xb123_4567u32.to_be_bytes());
        assert_eq!(u16::from_ne_bytes([msg[30], msg[31]]), CTA_MARK_MASK);
        assert_eq!(&msg[32..36], &u32::MAX.to_be_bytes());
    }

    #[test]
    fn reads_acks() {
        let mut ack = vec![0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(ack_errno(&ack), Some(0));
        ack[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(ack_errno(&ack), Some(libc::EPERM));
        assert_eq!(ack_errno(&ack[..10]), None);
    }
}
