//! A container's mounts: [`MountRequest`]s (and the image's `VOLUME`s) turned into the
//! [`MountPoint`]s recorded in its config and the OCI spec's mount entries, volumes created
//! and populated on the way; and the volume commands that need to know which containers use
//! a volume (`volume rm` refuses one in use, `volume prune` keeps those, `rm -v` removes a
//! container's anonymous volumes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use berth_image::rootpath::{self, Root};

use super::{ContainerConfig, ContainerError, Containers};
use crate::volume::request::clean;
use crate::volume::{MountKind, MountRequest, VolumeError, Volumes, DRIVER};

/// A mount as made, in the shape of Docker's `inspect` `Mounts` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The host path mounted (empty for tmpfs).
    pub source: PathBuf,
    /// Where, inside the container.
    pub destination: String,
    /// `local` for volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `ro` when read-only, else empty (Docker's `Mode`).
    pub mode: String,
    /// Read-write.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Bind propagation (binds only).
    pub propagation: String,
    /// Extra mount options (tmpfs size, mode and flags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// Makes what `requests` and the image's `image_volumes` need for container `id` whose root
/// filesystem is mounted at `rootfs`: bind sources `-v` may create, named volumes (created
/// on first use), anonymous volumes (for `-v /dst` and for each image `VOLUME` no request
/// covers), each volume populated from the image's content at its destination when empty.
pub(super) fn setup(
    c: &Containers,
    id: &str,
    rootfs: &Path,
    requests: &[MountRequest],
    image_volumes: &[String],
) -> Result<Vec<MountPoint>, ContainerError> {
    let volumes = Volumes::new(c.root());
    let mut wanted: Vec<MountRequest> = requests.to_vec();
    let mut image_volumes: Vec<&String> = image_volumes.iter().collect();
    image_volumes.sort();
    for v in image_volumes {
        if !wanted.iter().any(|r| clean(&r.target) == clean(v)) {
            wanted.push(MountRequest::anonymous(v.clone()));
        }
    }
    let mut out = Vec::new();
    for r in wanted {
        let mode = if r.read_only { "ro" } else { "" }.to_string();
        let point = match &r.kind {
            MountKind::Bind {
                source,
                create_source,
                propagation,
            } => {
                if *create_source && std::fs::symlink_metadata(source).is_err() {
                    std::fs::create_dir_all(source).map_err(super::io_err(source))?;
                }
                MountPoint {
                    typ: "bind".into(),
                    name: None,
                    source: source.clone(),
                    destination: r.target.clone(),
                    driver: None,
                    mode,
                    rw: !r.read_only,
                    propagation: propagation.as_str().into(),
                    options: Vec::new(),
                }
            }
            MountKind::Volume { name, no_copy } => {
                let volume = match name {
                    Some(n) => volumes.create(n, BTreeMap::new())?,
                    None => volumes.create_anonymous(id)?,
                };
                if !no_copy {
                    // The image's directory as a descriptor, named through /proc/self/fd.
                    match Root::open(rootfs)?.resolve(&r.target, true) {
                        Ok(dir) => volumes.populate(
                            &volume.name,
                            &rootpath::proc_path(&dir).join("."),
                            &r.target,
                        )?,
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                MountPoint {
                    typ: "volume".into(),
                    source: volumes.mountpoint(&volume.name),
                    name: Some(volume.name),
                    destination: r.target.clone(),
                    driver: Some(DRIVER.into()),
                    mode,
                    rw: !r.read_only,
                    propagation: String::new(),
                    options: Vec::new(),
                }
            }
            MountKind::Tmpfs {
                size,
                mode: root_mode,
                options,
            } => {
                let mut opts: Vec<String> = options.clone();
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                if let Some(m) = root_mode {
                    opts.push(format!("mode={m:o}"));
                }
                MountPoint {
                    typ: "tmpfs".into(),
                    name: None,
                    source: PathBuf::new(),
                    destination: r.target.clone(),
                    driver: None,
                    mode,
                    rw: !r.read_only,
                    propagation: String::new(),
                    options: opts,
                }
            }
        };
        out.push(point);
    }
    Ok(out)
}

/// Adds `points` to a spec's `mounts` (the runtime's defaults), replacing a default with the
/// same destination (`--tmpfs /dev/shm:size=1g`), as Docker lets user mounts win.
pub(super) fn add_to_spec(mounts: &mut Vec<Value>, points: &[MountPoint]) {
    mounts.retain(|m| {
        !m["destination"]
            .as_str()
            .is_some_and(|d| is_replaced(points, d))
    });
    mounts.extend(oci_mounts(points));
}

/// Whether one of `points` is mounted at `destination` (so berth's own mount there, such as
/// `/etc/hosts`, is left out).
pub(super) fn is_replaced(points: &[MountPoint], destination: &str) -> bool {
    let wanted = clean(destination);
    points.iter().any(|p| clean(&p.destination) == wanted)
}

/// The OCI spec's entries for `points`, parents before what is mounted inside them.
fn oci_mounts(points: &[MountPoint]) -> Vec<Value> {
    let mut sorted: Vec<&MountPoint> = points.iter().collect();
    sorted.sort_by_key(|p| clean(&p.destination).matches('/').count());
    sorted
        .into_iter()
        .map(|p| {
            let mut options: Vec<String> = Vec::new();
            if p.typ == "tmpfs" {
                // Docker's defaults; later options (`exec`, ...) override them.
                options.extend(["nosuid", "nodev", "noexec"].map(String::from));
                options.extend(p.options.iter().cloned());
            } else {
                options.push("rbind".into());
                options.push(if p.propagation.is_empty() {
                    "rprivate".into()
                } else {
                    p.propagation.clone()
                });
            }
            options.push(if p.rw { "rw" } else { "ro" }.into());
            let (typ, source) = if p.typ == "tmpfs" {
                ("tmpfs", "tmpfs".to_string())
            } else {
                ("bind", p.source.to_string_lossy().into_owned())
            };
            json!({"destination": p.destination, "type": typ, "source": source, "options": options})
        })
        .collect()
}

/// Which containers (by name) use each volume.
pub fn volume_users(c: &Containers) -> Result<BTreeMap<String, Vec<String>>, ContainerError> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in c.ids()? {
        // A container removed while we look uses nothing.
        let Ok(config) = c.config(&id) else {
            continue;
        };
        for name in config.mounts.iter().filter_map(|m| m.name.as_ref()) {
            users
                .entry(name.clone())
                .or_default()
                .push(config.name.clone());
        }
    }
    Ok(users)
}

/// `berth volume rm`: removes volume `name` unless a container (running or not) uses it;
/// with `force`, a volume that does not exist is not an error.
pub fn remove_volume(c: &Containers, name: &str, force: bool) -> Result<(), ContainerError> {
    let volumes = Volumes::new(c.root());
    let _lock = volumes.lock(true)?;
    if let Some(users) = volume_users(c)?.remove(name) {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            users,
        }
        .into());
    }
    match volumes.remove(name) {
        Err(VolumeError::NotFound(_)) if force => Ok(()),
        r => Ok(r?),
    }
}

/// `berth volume prune`: removes the volumes no container uses (only anonymous ones unless
/// `all`, as Docker since 23.0) and returns their names.
pub fn prune_volumes(c: &Containers, all: bool) -> Result<Vec<String>, ContainerError> {
    let volumes = Volumes::new(c.root());
    let _lock = volumes.lock(true)?;
    let users = volume_users(c)?;
    let mut removed = Vec::new();
    for v in volumes.list()? {
        if (all || v.anonymous) && !users.contains_key(&v.name) {
            volumes.remove(&v.name)?;
            removed.push(v.name);
        }
    }
    Ok(removed)
}

/// Removes the anonymous volumes container `config` uses (`rm -v`, `--rm`); named volumes
/// and anonymous ones another container uses too are kept.
pub fn remove_anonymous_volumes(
    c: &Containers,
    config: &ContainerConfig,
) -> Result<(), ContainerError> {
    let volumes = Volumes::new(c.root());
    let _lock = volumes.lock(true)?;
    let users = volume_users(c)?;
    for name in config.mounts.iter().filter_map(|m| m.name.as_ref()) {
        let anonymous = match volumes.get(name) {
            Ok(v) => v.anonymous,
            Err(VolumeError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let others = users
            .get(name)
            .is_some_and(|u| u.iter().any(|n| *n != config.name));
        if anonymous && !others {
            volumes.remove(name)?;
        }
    }
    Ok(())
}

/// After a failed create: removes the anonymous volumes made for container `id`.
pub(super) fn remove_volumes_made_for(c: &Containers, id: &str) -> Result<(), ContainerError> {
    let volumes = Volumes::new(c.root());
    for v in volumes.list()? {
        if v.anonymous && v.container.as_deref() == Some(id) {
            volumes.remove(&v.name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(typ: &str, dest: &str, rw: bool) -> MountPoint {
        MountPoint {
            typ: typ.into(),
            name: None,
            source: "/src".into(),
            destination: dest.into(),
            driver: None,
            mode: String::new(),
            rw,
            propagation: String::new(),
            options: vec!["size=1024".into()],
        }
    }

    #[test]
    fn user_mounts_replace_defaults_at_the_same_place() {
        let mut mounts = vec![
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}),
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        ];
        let shm = point("tmpfs", "/dev/shm/", true);
        add_to_spec(&mut mounts, std::slice::from_ref(&shm));
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0]["destination"], "/proc");
        assert_eq!(mounts[1]["destination"], "/dev/shm/");
        assert_eq!(mounts[1]["source"], "tmpfs");
        assert!(is_replaced(&[shm], "/dev/shm"));
        assert!(!is_replaced(&[], "/etc/hosts"));
    }

    #[test]
    fn oci_entries_parents_first() {
        let m = oci_mounts(&[point("bind", "/a/b/c", false), point("tmpfs", "/a", true)]);
        assert_eq!(m[0]["destination"], "/a");
        assert_eq!(m[0]["type"], "tmpfs");
        assert_eq!(
            m[0]["options"],
            json!(["nosuid", "nodev", "noexec", "size=1024", "rw"])
        );
        assert_eq!(m[1]["type"], "bind");
        assert_eq!(m[1]["source"], "/src");
        assert_eq!(m[1]["options"], json!(["rbind", "rprivate", "ro"]));
    }

    #[test]
    fn setup_makes_volumes_for_requests_and_image_volumes() {
        let root = tempfile::tempdir().unwrap();
        let rootfs = root.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data")).unwrap();
        std::fs::write(rootfs.join("data/seed"), "from image").unwrap();
        let c = Containers::new(root.path().join("store"));
        let bind_src = root.path().join("made/by/v");
        let reqs = vec![
            MountRequest::volume("named", "/data"),
            MountRequest::bind(&bind_src, "/b").create_source(),
            MountRequest::tmpfs("/t").read_only(),
        ];
        let points = setup(&c, "c1", &rootfs, &reqs, &["/cache".into(), "/data".into()]).unwrap();
        assert_eq!(points.len(), 4);
        assert!(bind_src.is_dir());
        let vols = Volumes::new(c.root());
        assert_eq!(
            std::fs::read_to_string(vols.mountpoint("named").join("seed")).unwrap(),
            "from image"
        );
        let anon = points.iter().find(|p| p.destination == "/cache").unwrap();
        let anon_name = anon.name.clone().unwrap();
        assert!(vols.get(&anon_name).unwrap().anonymous);
        assert!(!points[2].rw);
        remove_volumes_made_for(&c, "c1").unwrap();
        assert!(vols.get(&anon_name).is_err());
        assert!(vols.get("named").is_ok());
    }
}
