//! Creating a container: every check that can fail on input (network mode, ports, image,
//! name) comes before anything is made; then the rootfs overlay, network namespace and
//! attachment, `/etc` files and OCI bundle are made under `$ROOT/containers/<id>/`. A failure
//! part-way removes everything made so far (the same release as `rm -f`), so nothing is left
//! half-created.

use std::path::Path;

use berth_image::manifest::PlatformSpec;
use berth_image::rootpath::Root;
use berth_image::snapshot::Snapshots;
use berth_image::store::Store;

use super::health::{HealthConfig, HealthFlags};
use super::join::{self, Join};
use super::monitor::MonitorConfig;
use super::mounts;
use super::spec::{self, SpecValues};
use super::state::{now_rfc3339, State};
use super::{lifecycle, AttachedNetwork, ContainerConfig, ContainerError, Containers};
use super::{Resources, Security};
use crate::labels::Labels;
use crate::network::{self, files, netns, NetworkMode, PortMapping};
use crate::records::write_json;
use crate::volume::{request, MountRequest, Volumes};

/// What `berth run` asks for, parsed but not yet checked against the image.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image (name, id or id prefix).
    pub image: String,
    /// CMD from the command line (replaces the image's Cmd when not empty).
    pub cmd: Vec<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--entrypoint` (an empty string clears the image's).
    pub entrypoint: Option<String>,
    /// `-e NAME=value` (or `NAME` alone, taken from berth's own environment).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]`.
    pub user: Option<String>,
    /// A primary gid that replaces the user's (a Pod's `runAsGroup`).
    pub group: Option<u32>,
    /// gids added to the user's (a Pod's `supplementalGroups` and `fsGroup`).
    pub supplementary_groups: Vec<u32>,
    /// Refuse to create the container if its process would run as uid 0 (`runAsNonRoot`).
    pub run_as_non_root: bool,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// `-p`, parsed.
    pub publish: Vec<PortMapping>,
    /// `-P`: publish every port the image exposes to a free host port.
    pub publish_all: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-v`, `--mount`, `--tmpfs` (the image's `VOLUME`s are added unless one of these has
    /// the same destination).
    pub mounts: Vec<MountRequest>,
    /// `--memory`, `--cpus`, `--pids-limit`.
    pub resources: Resources,
    /// `-t`, `-i`, `--restart`, `--log-opt` (the health check is resolved against the image).
    pub monitor: MonitorConfig,
    /// `--health-*`, `--no-healthcheck`.
    pub health: HealthFlags,
    /// `--pod`: the pod (name or id) whose network, IPC and UTS namespaces it joins.
    pub pod: Option<String>,
    /// `--label k=v`.
    pub labels: Labels,
    /// `--privileged`, `--cap-add`, `--cap-drop`, `--security-opt`, `--read-only`.
    pub security: Security,
}

/// Creates a container from `opts` and returns its record; it is left in state `created`
/// for a monitor to start.
pub fn create(c: &Containers, opts: &RunOptions) -> Result<ContainerConfig, ContainerError> {
    let join = join::resolve(c, opts)?;
    if join.is_none() && (!opts.publish.is_empty() || opts.publish_all) && !opts.network.attaches()
    {
        return Err(ContainerError::PublishWithoutBridge(
            opts.network.to_string(),
        ));
    }
    if let Some(h) = &opts.hostname {
        files::validate_hostname(h)?;
    }
    request::check_all(&opts.mounts)?;
    if opts.auto_remove && !opts.monitor.restart.is_no() {
        return Err(ContainerError::Conflict("--restart and --rm"));
    }
    let store = Store::open(c.root())?;
    // Held until the container is recorded (gc keeps its image from then on).
    let _lease = store.lease()?;
    let image = store.resolve(&opts.image, &PlatformSpec::host())?;
    let image_cfg = image.config.config().clone().unwrap_or_default();
    let image_entrypoint = image_cfg.entrypoint().clone().unwrap_or_default();
    let args = spec::argv(
        &image_entrypoint,
        image_cfg.cmd().as_deref().unwrap_or(&[]),
        opts.entrypoint.as_deref(),
        &opts.cmd,
    );
    if args.is_empty() {
        return Err(ContainerError::NoCommand(opts.image.clone()));
    }
    let monitor = MonitorConfig {
        healthcheck: HealthConfig::resolve(&image.config_raw, &opts.health)?,
        stop_signal: image_cfg.stop_signal().clone(),
        ..opts.monitor.clone()
    };
    let entrypoint = spec::argv(&image_entrypoint, &[], opts.entrypoint.as_deref(), &[]);
    let (publish, exposed_ports) = published_ports(opts, image_cfg.exposed_ports().as_deref())?;
    let id = hex::encode(rand::random::<[u8; 32]>());
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("berth_{}", &id[..12]));
    // Held until the container is recorded, so no volume it uses is removed meanwhile.
    let _volumes_lock = Volumes::new(c.root()).lock(false)?;
    // Held until `config.json` is written, so a create that dies half-way leaves a name the
    // next one can take over.
    let _name = c.reserve_name(&name, &id)?;
    let _span = tracing::info_span!("create", container = %&id[..12], %name).entered();
    let config = ContainerConfig {
        id: id.clone(),
        name: name.clone(),
        image: opts.image.clone(),
        image_id: image.id().to_string(),
        args,
        created: now_rfc3339(),
        network: join
            .as_ref()
            .map_or_else(|| opts.network.to_string(), |j| j.network.clone()),
        netns: match &join {
            Some(j) => j.netns.clone(),
            None => opts
                .network
                .own_namespace()
                .then(|| Path::new(netns::DEFAULT_DIR).join(&id)),
        },
        ports: Vec::new(),
        auto_remove: opts.auto_remove,
        attached_network: (join.is_none() && opts.network.attaches())
            .then(|| AttachedNetwork::of(c.settings().network_config())),
        mounts: Vec::new(),
        resources: opts.resources.with_host_defaults(),
        monitor,
        entrypoint,
        user: opts
            .user
            .clone()
            .or_else(|| image_cfg.user().clone())
            .unwrap_or_default(),
        exposed_ports,
        publish_all: opts.publish_all,
        pod: join.as_ref().and_then(|j| j.pod.clone()),
        labels: opts.labels.clone(),
        security: opts.security.clone(),
    };
    let made = Prepare {
        c,
        opts,
        publish: &publish,
        store: &store,
        image: &image,
        image_cfg: &image_cfg,
        join: join.as_ref(),
    }
    .run(config.clone());
    match made {
        Ok(config) => Ok(config),
        Err(e) => {
            tracing::debug!(error = %e, "create failed; removing what was made");
            if let Err(cleanup) = lifecycle::release(c, &config) {
                tracing::warn!(error = %cleanup, "cannot undo a failed create");
            }
            if let Err(cleanup) = c.records().remove(&id) {
                tracing::warn!(error = %cleanup, "cannot remove");
            }
            if let Err(cleanup) = mounts::remove_volumes_made_for(c, &id) {
                tracing::warn!(error = %cleanup, "cannot remove the volumes made");
            }
            c.release_name(&name, &id);
            Err(e)
        }
    }
}

/// The ports to publish (`-p`, plus with `-P` every exposed port not published already) and
/// the exposed port keys (`8000/tcp`: the image's and the published ones, sorted).
fn published_ports(
    opts: &RunOptions,
    image_exposed: Option<&[String]>,
) -> Result<(Vec<PortMapping>, Vec<String>), ContainerError> {
    let mut exposed = Vec::new();
    for key in image_exposed.unwrap_or(&[]) {
        exposed.push(network::parse_exposed(key).map_err(|e| {
            ContainerError::BadImage(opts.image.clone(), format!("EXPOSE {key}: {e}"))
        })?);
    }
    let mut publish = opts.publish.clone();
    if opts.publish_all {
        let missing: Vec<_> = exposed
            .iter()
            .copied()
            .filter(|&(port, proto)| {
                !publish
                    .iter()
                    .any(|m| m.container_port == port && m.protocol == proto)
            })
            .collect();
        publish.extend(network::publish_all(&missing));
    }
    exposed.extend(publish.iter().map(|m| (m.container_port, m.protocol)));
    exposed.sort();
    exposed.dedup();
    let keys = exposed
        .into_iter()
        .map(|(port, proto)| format!("{port}/{proto}"))
        .collect();
    Ok((publish, keys))
}

struct Prepare<'a> {
    c: &'a Containers,
    opts: &'a RunOptions,
    publish: &'a [PortMapping],
    store: &'a Store,
    image: &'a berth_image::store::ResolvedImage,
    image_cfg: &'a oci_spec::image::Config,
    join: Option<&'a Join>,
}

impl Prepare<'_> {
    fn run(self, mut config: ContainerConfig) -> Result<ContainerConfig, ContainerError> {
        let id = config.id.clone();
        let dir = self
            .c
            .records()
            .create(&id, &["upper", "work", "rootfs", "bundle", "etc"])?;
        let rootfs = dir.join("rootfs");
        let snapshots = Snapshots::new(self.store.snapshots_dir());
        let top = snapshots.unpack_image(self.store, self.image)?;
        snapshots
            .mount_rootfs(top.as_ref(), &dir.join("upper"), &dir.join("work"), &rootfs)?
            .keep();

        let user_spec = self
            .opts
            .user
            .clone()
            .or_else(|| self.image_cfg.user().clone())
            .unwrap_or_default();
        let mut ids = berth_image::users::process_user(&rootfs, &user_spec)?;
        if self.opts.run_as_non_root && ids.uid == 0 {
            return Err(ContainerError::RunsAsRoot(user_spec));
        }
        if let Some(gid) = self.opts.group {
            ids.gid = gid;
        }
        for gid in &self.opts.supplementary_groups {
            if !ids.additional_gids.contains(gid) {
                ids.additional_gids.push(*gid);
            }
        }
        let cwd = self
            .opts
            .workdir
            .clone()
            .or_else(|| self.image_cfg.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string());
        make_dir_in_root(&rootfs, &cwd)?;
        config.mounts = mounts::setup(
            self.c,
            &id,
            &rootfs,
            &self.opts.mounts,
            self.image_cfg.volumes().as_deref().unwrap_or(&[]),
        )?;

        let mode = &self.opts.network;
        let hostname = match (&self.opts.hostname, mode) {
            _ if self.join.is_some() => self.join.map(|j| j.hostname.clone()).unwrap_or_default(),
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| id[..12].to_string()),
            (None, _) => id[..12].to_string(),
        };
        let etc_dir = match self.join {
            Some(join) => join.etc_dir(&dir.join("etc"))?,
            None => {
                self.own_etc_files(&mut config, &dir, &hostname)?;
                dir.join("etc")
            }
        };
        let mut etc_files = Vec::new();
        for name in ["hosts", "resolv.conf", "hostname"] {
            make_file_in_root(&rootfs, &format!("/etc/{name}"))?;
            etc_files.push((etc_dir.join(name), name));
        }

        let env_in: Vec<String> = self
            .opts
            .env
            .iter()
            .filter_map(|kv| match kv.split_once('=') {
                Some(_) => Some(kv.clone()),
                None => std::env::var(kv).ok().map(|v| format!("{kv}={v}")),
            })
            .collect();
        let values = SpecValues {
            id: id.clone(),
            rootfs: rootfs.clone(),
            args: config.args.clone(),
            env: with_home(
                spec::merge_env(
                    self.image_cfg.env().as_deref().unwrap_or(&[]),
                    &env_in,
                    &hostname,
                ),
                &rootfs,
                ids.uid,
            ),
            cwd,
            user: (ids.uid, ids.gid, ids.additional_gids),
            hostname,
            cgroup_parent: self.c.settings().cgroup_parent().to_string(),
            netns: config.netns.clone(),
            ipc: self.join.and_then(|j| j.ipc.clone()),
            uts: self.join.and_then(|j| j.uts.clone()),
            etc_files,
            mounts: config.mounts.clone(),
            resources: config.resources.clone(),
            terminal: config.monitor.tty,
        };
        let mut spec = spec::to_json(&spec::build(&values)?)?;
        config.security.apply_to_spec(&mut spec)?;
        write_json(&dir.join("bundle/config.json"), &spec)?;
        self.c.records().write(&id, &config)?;
        State::created().save(&dir)?;
        tracing::info!("created");
        Ok(config)
    }

    /// Makes the container's own network namespace (attached for bridge mode) and writes
    /// its `/etc` files into `dir/etc`.
    fn own_etc_files(
        &self,
        config: &mut ContainerConfig,
        dir: &Path,
        hostname: &str,
    ) -> Result<(), ContainerError> {
        let mode = &self.opts.network;
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (hosts, resolv) = match (mode, &config.netns) {
            (NetworkMode::Host, _) | (_, None) => (
                std::fs::read_to_string("/etc/hosts")
                    .unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".to_string()),
                host_resolv,
            ),
            (_, Some(_)) => {
                let ns = netns::create(Path::new(netns::DEFAULT_DIR), &config.id)?;
                let ip = if mode.attaches() {
                    let attachment = self.c.network().attach(&config.id, &ns, self.publish)?;
                    config.ports = attachment.ports.clone();
                    Some(attachment.ip)
                } else {
                    netns::loopback_up(&ns)?;
                    None
                };
                (
                    files::hosts(hostname, ip, &[])?,
                    files::resolv_conf(&host_resolv),
                )
            }
        };
        files::write_all(
            &dir.join("etc"),
            &hosts,
            &resolv,
            &files::hostname(hostname)?,
        )?;
        Ok(())
    }
}

/// Adds `HOME` (the user's home from the image's passwd, else `/`) unless set, as Docker does.
fn with_home(mut env: Vec<String>, rootfs: &Path, uid: u32) -> Vec<String> {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return env;
    }
    let passwd = Root::open(rootfs)
        .and_then(|r| r.read("/etc/passwd"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let home = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
        .and_then(|f| f.get(5).map(|h| h.to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string());
    env.push(format!("HOME={home}"));
    env
}

/// Creates directory `path` (absolute in the image) inside `root` unless it exists.
fn make_dir_in_root(root: &Path, path: &str) -> Result<(), ContainerError> {
    Root::open(root)?.mkdir_all(path)?;
    Ok(())
}

/// Creates an empty file at `path` inside `root` (a bind-mount point) unless something is
/// there already.
fn make_file_in_root(root: &Path, path: &str) -> Result<(), ContainerError> {
    Root::open(root)?.create_file(path, 0o644)?;
    Ok(())
}
