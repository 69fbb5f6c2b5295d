//! `berth port`: a container's published ports (`8000/tcp -> 0.0.0.0:8100`).

use std::process::ExitCode;

use anyhow::{bail, Result};
use berth_engine::container;
use berth_engine::network::parse_exposed;
use clap::Args;

use crate::{containers, Globals};

/// `berth port`.
#[derive(Args)]
pub struct PortArgs {
    /// The container.
    container: String,
    /// Only this container port (PORT or PORT/PROTO).
    port: Option<String>,
}

/// Prints the mappings: all as `PORT/PROTO -> IP:PORT`, or one port's host addresses.
pub fn port(g: &Globals, a: PortArgs) -> Result<ExitCode> {
    let c = containers::open(g)?;
    let config = c.lookup(&a.container)?;
    let map = container::port_map(&config);
    match &a.port {
        None => {
            for (key, bindings) in &map {
                for (ip, port) in bindings.iter().flatten() {
                    println!("{key} -> {ip}:{port}");
                }
            }
        }
        Some(wanted) => {
            let (port, proto) = parse_exposed(wanted)?;
            let key = format!("{port}/{proto}");
            match map.get(&key).and_then(|b| b.as_ref()) {
                Some(bindings) => {
                    for (ip, port) in bindings {
                        println!("{ip}:{port}");
                    }
                }
                None => bail!("no public port '{key}' published for {}", a.container),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
