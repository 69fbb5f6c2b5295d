//! Image references, digests, the OCI and Docker manifest model, the content store, layer
//! snapshots and rootfs path resolution.
#![forbid(unsafe_code)]

pub mod archive;
pub mod digest;
pub mod duration;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod perms;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod users;

#[cfg(test)]
mod proptests;

/// Paths inside a root filesystem, resolved by the kernel as file descriptors (the one
/// resolver every host-side touch of a container or image tree goes through).
pub use berth_rootpath as rootpath;
