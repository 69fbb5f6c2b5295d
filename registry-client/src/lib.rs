//! A client for registries that speak the distribution API: pull, push and login with Docker Hub semantics.
#![forbid(unsafe_code)]
