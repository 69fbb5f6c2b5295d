//! Containers, pods, networks, volumes and the node daemon built on the image store and the runtime.
#![forbid(unsafe_code)]

pub mod container;
pub mod controllers;
pub mod daemon;
pub mod kube;
pub mod labels;
mod names;
pub mod network;
pub mod node;
pub mod pod;
pub mod system;
pub mod volume;
