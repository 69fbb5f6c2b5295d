//! `berth system gc` and `berth system check`: store maintenance.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_image::digest::Digest;
use berth_image::gc;
use berth_image::store::Store;
use berth_orchestrator::container::Containers;
use clap::Subcommand;

use crate::Globals;

/// `berth system ...`
#[derive(Subcommand)]
pub enum SystemCommand {
    /// Remove blobs and snapshots no image references, and interrupted downloads.
    Gc,
    /// Verify every blob and snapshot; exit non-zero naming anything wrong.
    Check,
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
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    match cmd {
        SystemCommand::Gc => {
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
