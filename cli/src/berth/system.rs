//! `berth system gc` and `berth system check`: store maintenance; `berth system reset`:
//! remove every container and pod, the bridge network and the cgroup parent.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::container::Containers;
use berth_image::digest::Digest;
use berth_image::gc;
use berth_image::store::Store;
use clap::Subcommand;

use crate::Globals;

/// `berth system ...`
#[derive(Subcommand)]
pub enum SystemCommand {
    /// Remove blobs and snapshots no image references, and interrupted downloads.
    Gc,
    /// Verify every blob and snapshot; exit non-zero naming anything wrong.
    Check,
    /// Stop and remove every container and pod, then remove the bridge network (link, nft
    /// table, state dir) and the cgroup parent. Images and volumes stay.
    Reset(ResetArgs),
}

/// `berth system reset`.
#[derive(clap::Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

/// Asks on the terminal whether to remove `what`, as Docker's prune commands do without `-f`.
pub fn confirm(what: &str) -> Result<bool> {
    use std::io::BufRead;
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `berth system reset`.
fn reset(g: &Globals, a: ResetArgs) -> Result<ExitCode> {
    if !a.force
        && !confirm(
            "all containers and pods, the bridge network (link, nft table, state) and the cgroup parent",
        )?
    {
        return Ok(ExitCode::SUCCESS);
    }
    let c = crate::containers::open(g)?;
    let r = berth_engine::system::reset(&c)?;
    println!(
        "Removed {} pods, {} containers{}{}",
        r.pods.len(),
        r.containers.len(),
        r.network
            .map(|n| format!(", network {n}"))
            .unwrap_or_default(),
        r.cgroup_parent
            .map(|p| format!(", cgroup parent {p}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Image ids of the containers that exist: gc keeps their configs and snapshots.
fn images_in_use(g: &Globals) -> Result<Vec<Digest>> {
    let containers = Containers::new(&g.root);
    let mut ids = Vec::new();
    for (config, _) in containers.list().context("list containers")? {
        match config.image_id.parse() {
            Ok(id) => ids.push(id),
            Err(e) => tracing::warn!(container = %config.id, error = %e, "bad image id"),
        }
    }
    Ok(ids)
}

/// Runs a `berth system` subcommand.
pub fn run(g: &Globals, cmd: SystemCommand) -> Result<ExitCode> {
    let open = || -> Result<Store> {
        Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))
    };
    match cmd {
        SystemCommand::Reset(a) => reset(g, a),
        SystemCommand::Gc => {
            let store = open()?;
            // The one operation that removes content: it waits for every lease.
            let _gc = match store.try_lock_gc()? {
                Some(lock) => lock,
                None => {
                    eprintln!("berth: gc waits for the pulls, builds, loads and container creates in progress");
                    store.lock_gc()?
                }
            };
            let r = gc::gc(&store, &images_in_use(g)?)?;
            println!(
                "Deleted {} blobs ({} bytes), {} snapshots, {} interrupted ingests",
                r.blobs_removed.len(),
                r.bytes_freed,
                r.snapshots_removed.len(),
                r.ingests_removed
            );
            Ok(ExitCode::SUCCESS)
        }
        SystemCommand::Check => {
            let store = open()?;
            let _lease = store.lease()?;
            let r = gc::check(&store)?;
            for p in &r.problems {
                eprintln!("berth: {p}");
            }
            println!(
                "Checked {} images, {} blobs, {} snapshots: {} problems{}",
                r.images_checked,
                r.blobs_checked,
                r.snapshots_checked,
                r.problems.len(),
                if r.pending_ingests > 0 {
                    format!(
                        " ({} interrupted ingests; `berth system gc` removes them)",
                        r.pending_ingests
                    )
                } else {
                    String::new()
                }
            );
            Ok(if r.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
