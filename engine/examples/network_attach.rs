//! Sets up or removes one attached network namespace from the command line, for the network
//! benchmarks (bench/network-throughput) and for poking at the network layer by hand:
//!
//! ```text
//! network_attach up   STATE_DIR BRIDGE SUBNET TABLE NETNS_DIR NAME [PUBLISH...]
//! network_attach down STATE_DIR BRIDGE SUBNET TABLE NETNS_DIR NAME
//! ```
//! `up` creates the namespace `NETNS_DIR/NAME`, attaches it as container `NAME` with the given
//! `-p` specs and prints the attachment as JSON; `down` detaches it, removes the namespace and
//! tears the whole network down. The host's `net.ipv4.ip_forward` is left as it is.

use std::path::Path;
use std::process::ExitCode;

use berth_engine::network::{netns, parse_publish, Network, NetworkConfig};

type Error = Box<dyn std::error::Error>;

fn run(args: &[String]) -> Result<(), Error> {
    let [verb, state, bridge, subnet, table, netns_dir, name, publish @ ..] = args else {
        return Err("usage: network_attach up|down STATE_DIR BRIDGE SUBNET TABLE NETNS_DIR NAME [PUBLISH...]".into());
    };
    let config = NetworkConfig::new(bridge, subnet.parse()?, table, Path::new(state))?
        .with_ip_forward(false);
    let network = Network::new(config);
    match verb.as_str() {
        "up" => {
            let mut ports = Vec::new();
            for spec in publish {
                ports.extend(parse_publish(spec)?);
            }
            let ns = netns::create(Path::new(netns_dir), name)?;
            match network.attach(name, &ns, &ports) {
                Ok(attachment) => {
                    println!("{}", serde_json::to_string(&attachment)?);
                    Ok(())
                }
                Err(e) => {
                    netns::remove(&ns)?;
                    Err(e.into())
                }
            }
        }
        "down" => {
            network.detach(name)?;
            netns::remove(&Path::new(netns_dir).join(name))?;
            network.teardown()?;
            Ok(())
        }
        other => Err(format!("unknown verb {other:?}: up or down").into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("network_attach: {e}");
            ExitCode::FAILURE
        }
    }
}
