//! Image references, digests, the OCI and Docker manifest model, the content store and layer snapshots.
#![forbid(unsafe_code)]

pub mod archive;
pub mod digest;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod reference;
pub mod snapshot;
pub mod store;

#[cfg(test)]
mod proptests;
