//! Dockerfile parsing and image builds with a layer cache keyed by content hashes.
#![forbid(unsafe_code)]

pub mod dockerfile;
pub mod context;
mod glob;
