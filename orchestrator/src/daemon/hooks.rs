//! What the daemon plugs in: the controllers it runs and the validators every write through
//! the API passes. Controllers and validators live in their own modules (`crate::kube`,
//! `crate::controllers`); each adds one line here.

use super::{Allocator, Controller, Validator};

/// Every controller `berth daemon` starts, in this order.
pub static CONTROLLERS: &[Controller] = &[
    crate::controllers::replicaset::CONTROLLER,
    crate::controllers::deployment::CONTROLLER,
    crate::controllers::endpoints::CONTROLLER,
    crate::controllers::service::CONTROLLER,
    crate::controllers::pod::CONTROLLER,
];

/// Validators run after the structural checks, in this order; the first failure answers.
pub static VALIDATORS: &[Validator] = &[crate::kube::admission::validate];

/// Defaulters run on every object written through the API before validation (as the API
/// server's defaulting: `restartPolicy: Always`, `protocol: TCP`, ...).
pub static DEFAULTERS: &[fn(&'static super::kinds::Kind, &mut serde_json::Value)] =
    &[crate::kube::admission::default];

/// Allocators the store runs on every create and update of their kind, under its lock, so
/// two writers can never take the same value.
pub static ALLOCATORS: &[Allocator] = &[crate::controllers::service::ALLOCATOR];
