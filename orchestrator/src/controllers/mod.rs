//! The daemon's controllers: control loops that watch the object store and reconcile.
//! [`replicaset`] and [`deployment`] keep workloads' pods and ReplicaSets; [`endpoints`] and
//! [`service`] keep Services' Endpoints, addresses and forwarding rules (all through
//! [`resync`]'s loop).

pub mod deployment;
pub mod endpoints;
pub mod replicaset;
mod resync;
pub mod service;
