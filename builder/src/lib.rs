//! Dockerfile parsing and image builds with a layer cache keyed by content hashes.
#![forbid(unsafe_code)]

pub mod cachekey;
pub mod context;
pub mod dockerfile;
mod glob;
pub mod plan;
