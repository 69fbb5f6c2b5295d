//! `berth snapshot ...`: unpacked layers (like `ctr snapshots`).

use anyhow::{Context, Result};
use berth_image::manifest::PlatformSpec;
use berth_image::snapshot::Snapshots;
use berth_image::store::Store;
use clap::Subcommand;

use crate::Globals;

/// `berth snapshot ...`
#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Unpack an image's layers into snapshots; prints the top chain id.
    Unpack {
        /// Image names or ids.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// List snapshots: chain id, parent, size.
    Ls,
    /// Check snapshots against what was unpacked; exit non-zero on any difference.
    Verify {
        /// Chain ids (all snapshots when none are given).
        chains: Vec<String>,
    },
}

/// Runs a `berth snapshot` subcommand.
pub fn run(g: &Globals, cmd: SnapshotCommand) -> Result<()> {
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let snaps = Snapshots::new(store.snapshots_dir());
    match cmd {
        SnapshotCommand::Unpack { images } => {
            let _lease = store.lease()?;
            let platform = PlatformSpec::host();
            for query in &images {
                let image = store.resolve(query, &platform)?;
                let top = snaps
                    .unpack_image(&store, &image)
                    .with_context(|| format!("unpack image {query}"))?;
                match top {
                    Some(chain) => println!("{chain}"),
                    None => println!("(no layers)"),
                }
            }
        }
        SnapshotCommand::Ls => {
            println!("{:<71}  {:<71}  SIZE", "CHAIN ID", "PARENT");
            for chain in snaps.list()? {
                let meta = snaps.meta(&chain)?;
                let parent = meta.parent.map(|p| p.to_string()).unwrap_or_default();
                println!("{chain:<71}  {parent:<71}  {}", meta.size);
            }
        }
        SnapshotCommand::Verify { chains } => {
            let _lease = store.lease()?;
            let chains = if chains.is_empty() {
                snaps.list()?
            } else {
                chains
                    .iter()
                    .map(|c| c.parse().with_context(|| format!("chain id {c:?}")))
                    .collect::<Result<_>>()?
            };
            let mut bad = 0;
            for chain in &chains {
                if let Err(e) = snaps.verify(chain) {
                    eprintln!("berth: {e}");
                    bad += 1;
                }
            }
            anyhow::ensure!(
                bad == 0,
                "{bad} of {} snapshots failed verification",
                chains.len()
            );
        }
    }
    Ok(())
}
