//! `berth network rm|prune`: remove the installation's bridge network (its link, nft table
//! and state dir) once nothing uses it, as `docker network rm` and `docker network prune`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use berth_engine::system::{self, SystemError};
use clap::{Args, Subcommand};

use crate::containers;
use crate::Globals;

/// `berth network ...`
#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Remove the bridge network (default: this installation's, `BERTH_BRIDGE`); refused
    /// while containers or pods use it.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove the bridge network if no container or pod uses it.
    Prune(PruneArgs),
}

/// `berth network rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The network (the bridge's name).
    network: Option<String>,
}

/// `berth network prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Runs a `berth network` subcommand.
pub fn run(g: &Globals, cmd: NetworkCommand) -> Result<ExitCode> {
    let c = containers::open(g)?;
    match cmd {
        NetworkCommand::Rm(a) => match system::remove_network(&c, a.network.as_deref())? {
            Some(name) => println!("{name}"),
            None => bail!(
                "network {}: not found (nothing of it is on this host)",
                c.settings().network_config().bridge()
            ),
        },
        NetworkCommand::Prune(a) => {
            if !a.force
                && !crate::system::confirm("all networks not used by at least one container")?
            {
                return Ok(ExitCode::SUCCESS);
            }
            match system::remove_network(&c, None) {
                Ok(Some(name)) => println!("Deleted Networks:\n{name}"),
                Ok(None) | Err(SystemError::InUse { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
