//! `berth-runtime`: runc's command line over the berth runtime library.

fn main() {}
