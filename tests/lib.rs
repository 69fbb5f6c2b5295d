//! Shared helpers for the end-to-end tests: locating the built binaries and making per-test state.
#![forbid(unsafe_code)]
