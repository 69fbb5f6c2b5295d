//! The daemon's controllers: control loops that watch the object store and reconcile.
//! [`replicaset`] and [`deployment`] keep workloads' pods and ReplicaSets (through
//! [`resync`]'s loop).

pub mod deployment;
pub mod replicaset;
mod resync;
