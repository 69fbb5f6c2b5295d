//! The typed channel between the runtime and a container's init process: a
//! `SOCK_SEQPACKET` socketpair, so each message arrives whole or not at all.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// Why the channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// socketpair/send/recv failed.
    #[error("init channel {0}: {1}")]
    Io(&'static str, nix::Error),
    /// The other side closed its end (the init process died).
    #[error("init process exited before it was ready")]
    Closed,
    /// Bytes that are not a message.
    #[error("init channel: malformed message tag {0}")]
    Malformed(u8),
}

/// Runtime -> init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToInit {
    /// Id maps and cgroup are in place: go on with the setup.
    Go,
}

/// Init -> runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromInit {
    /// Namespaces, rootfs and process are set up; init now waits for `start`.
    Ready,
    /// Setup failed with this message; init exits.
    Failed(String),
}

const TAG_GO: u8 = 1;
const TAG_READY: u8 = 2;
const TAG_FAILED: u8 = 3;

impl ToInit {
    fn encode(&self) -> Vec<u8> {
        vec![TAG_GO]
    }

    fn decode(buf: &[u8]) -> Result<Self, ChannelError> {
        match buf.first() {
            Some(&TAG_GO) => Ok(ToInit::Go),
            Some(&t) => Err(ChannelError::Malformed(t)),
            None => Err(ChannelError::Closed),
        }
    }
}

impl FromInit {
    fn encode(&self) -> Vec<u8> {
        match self {
            FromInit::Ready => vec![TAG_READY],
            FromInit::Failed(msg) => {
                let mut v = vec![TAG_FAILED];
                v.extend_from_slice(msg.as_bytes());
                v
            }
        }
    }

    fn decode(buf: &[u8]) -> Result<Self, ChannelError> {
        match buf.first() {
            Some(&TAG_READY) => Ok(FromInit::Ready),
            Some(&TAG_FAILED) => Ok(FromInit::Failed(
                String::from_utf8_lossy(&buf[1..]).into_owned(),
            )),
            Some(&t) => Err(ChannelError::Malformed(t)),
            None => Err(ChannelError::Closed),
        }
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// Makes the pair: (runtime end, init end), both close-on-exec.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ChannelError::Io("socketpair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    fn send_bytes(&self, buf: &[u8]) -> Result<(), ChannelError> {
        send(self.fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)
            .map(drop)
            .map_err(|e| match e {
                nix::Error::EPIPE | nix::Error::ECONNRESET => ChannelError::Closed,
                e => ChannelError::Io("send", e),
            })
    }

    fn recv_bytes(&self) -> Result<Vec<u8>, ChannelError> {
        let mut buf = vec![0u8; 8192];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(ChannelError::Io("recv", e)),
            }
        }
    }

    /// Runtime side: sends a message to init.
    pub fn send_to_init(&self, msg: &ToInit) -> Result<(), ChannelError> {
        self.send_bytes(&msg.encode())
    }

    /// Runtime side: waits for init's next message.
    pub fn recv_from_init(&self) -> Result<FromInit, ChannelError> {
        FromInit::decode(&self.recv_bytes()?)
    }

    /// Init side: sends a message to the runtime.
    pub fn send_to_runtime(&self, msg: &FromInit) -> Result<(), ChannelError> {
        self.send_bytes(&msg.encode())
    }

    /// Init side: waits for the runtime's next message.
    pub fn recv_from_runtime(&self) -> Result<ToInit, ChannelError> {
        ToInit::decode(&self.recv_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_over_a_socketpair() {
        let (runtime, init) = pair().unwrap();
        runtime.send_to_init(&ToInit::Go).unwrap();
        assert_eq!(init.recv_from_runtime().unwrap(), ToInit::Go);
        init.send_to_runtime(&FromInit::Failed("mount /proc: EPERM".into()))
            .unwrap();
        assert_eq!(
            runtime.recv_from_init().unwrap(),
            FromInit::Failed("mount /proc: EPERM".into())
        );
        init.send_to_runtime(&FromInit::Ready).unwrap();
        assert_eq!(runtime.recv_from_init().unwrap(), FromInit::Ready);
    }

    #[test]
    fn a_closed_peer_is_reported_as_exited() {
        let (runtime, init) = pair().unwrap();
        drop(init);
        assert!(matches!(
            runtime.recv_from_init(),
            Err(ChannelError::Closed)
        ));
    }

    #[test]
    fn unknown_tags_are_malformed() {
        assert!(matches!(
            FromInit::decode(&[9]),
            Err(ChannelError::Malformed(9))
        ));
    }
}
