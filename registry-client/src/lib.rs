//! A client for registries that speak the distribution API: pull, push and login with Docker Hub semantics.
//!
//! [`transport::Transport`] owns authentication, token refresh and retries for
//! one registry, so [`pull`] and [`push`] only speak the distribution API.
#![forbid(unsafe_code)]

pub mod auth;
pub mod endpoint;
pub mod transport;

pub use endpoint::{Endpoint, RegistryOptions};
pub use transport::{Transport, TransportError};
