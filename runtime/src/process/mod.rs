//! Starting container processes: the fork, the init side and the channel between them.

pub mod channel;
pub mod init;
pub mod spawn;
