//! `start` of a container that exited: its monitor released everything it held on the host,
//! so the rootfs overlay (same upper dir: its changes are kept), the network namespace and the
//! network attachment (same published host ports) are made again, and `/etc/hosts` gets the
//! new address, before a new monitor starts it. A failure part-way releases what was made.

use std::path::Path;

use berth_image::manifest::PlatformSpec;
use berth_image::snapshot::Snapshots;
use berth_image::store::Store;

use super::state::{State, Status};
use super::{io_err, join, lifecycle, ContainerConfig, ContainerError, Containers};
use crate::network::{files, netns};

/// Makes container `config` ready for a new monitor: a created container as it is, an
/// exited one with its rootfs and network set up again; its state becomes `created` (the
/// restart count and the manual stop start over, as Docker's `start`). A running container
/// is refused.
pub fn prepare_start(c: &Containers, config: &ContainerConfig) -> Result<(), ContainerError> {
    let dir = c.dir(&config.id);
    let state = c.state(&config.id)?;
    match state.status {
        Status::Created => return Ok(()),
        Status::Exited => {}
        Status::Running | Status::Restarting if state.is_running() => {
            return Err(ContainerError::WrongState {
                id: config.id.clone(),
                reason: "container is already running".into(),
            })
        }
        // A monitor that died without recording the exit (killed): tidy up first.
        Status::Running | Status::Restarting => lifecycle::release(c, config)?,
    }
    let _span = tracing::info_span!("prepare start", container = config.short_id()).entered();
    if let Err(e) = reacquire(c, config) {
        if let Err(cleanup) = lifecycle::release(c, config) {
            tracing::warn!(error = %cleanup, "cannot undo a failed start");
        }
        return Err(e);
    }
    let mut fresh = State::created();
    fresh.started_at = state.started_at;
    fresh.finished_at = state.finished_at;
    fresh.save(&dir)?;
    Ok(())
}

fn reacquire(c: &Containers, config: &ContainerConfig) -> Result<(), ContainerError> {
    let dir = c.dir(&config.id);
    let rootfs = dir.join("rootfs");
    if !lifecycle::is_mount_point(&rootfs) {
        let store = Store::open(c.root())?;
        let _lease = store.lease()?;
        let image = store.resolve(&config.image_id, &PlatformSpec::host())?;
        let snapshots = Snapshots::new(store.snapshots_dir());
        let top = snapshots.unpack_image(&store, &image)?;
        snapshots
            .mount_rootfs(top.as_ref(), &dir.join("upper"), &dir.join("work"), &rootfs)?
            .keep();
    }
    if !config.network_mode().own_namespace() {
        // Joins a pod's or another container's namespaces, which must be there.
        return join::check_joined(c, config);
    }
    let Some(ns_path) = &config.netns else {
        return Ok(());
    };
    let ns = netns::create(Path::new(netns::DEFAULT_DIR), &config.id)?;
    if ns != *ns_path {
        tracing::warn!(expected = %ns_path.display(), got = %ns.display(), "network namespace path");
    }
    let mode = config.network_mode();
    if !mode.attaches() {
        netns::loopback_up(&ns)?;
        return Ok(());
    }
    let attachment = c
        .network_of(config)?
        .attach(&config.id, &ns, &config.ports)?;
    let hosts_path = dir.join("etc/hostname");
    let hostname = std::fs::read_to_string(&hosts_path).map_err(io_err(&hosts_path))?;
    let hosts = files::hosts(hostname.trim(), Some(attachment.ip), &[])?;
    let path = dir.join("etc/hosts");
    std::fs::write(&path, hosts).map_err(io_err(&path))?;
    Ok(())
}
