//! The daemon's controllers: control loops that watch the object store and reconcile.
//! [`replicaset`] and [`deployment`] keep workloads' pods and ReplicaSets; [`endpoints`] and
//! [`service`] keep Services' Endpoints, addresses and forwarding rules (all through
//! [`resync`]'s loop); [`pod_status`] and [`pod_claims`] are the pod controller's status and
//! volume-claim binding.

pub mod deployment;
pub mod endpoints;
pub mod pod_claims;
pub mod pod_status;
pub mod replicaset;
mod resync;
pub mod service;
