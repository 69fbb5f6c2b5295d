//! What a Kubernetes container spec becomes on this node: its environment (`env`, `envFrom`,
//! ConfigMap and Secret references, `fieldRef`), its command line, its volume mounts (the
//! pod's volumes made on the host first: emptyDir, hostPath, configMap, secret, PVC), its
//! resource limits, its probes with their targets resolved, and the pod's `hostPort`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::env::{entrypoint_and_cmd, ContainerEnv};
use crate::probe::{Probe, ProbeAction};
use crate::volumes::{self, HostPathType, KeyToPath, PodVolumeDirs, VolumeError};
use berth_engine::container::{Resources, RunOptions};
use berth_engine::network::{PortMapping, Protocol};
use berth_engine::volume::MountRequest;
use berth_kube::config::{ConfigMap, Secret};
use berth_kube::intstr::IntOrString;
use berth_kube::kinds;
use berth_kube::pod::{Container, Pod, Probe as KubeProbe, Volume};
use berth_kube::storage::{PersistentVolume, PersistentVolumeClaim};
use berth_objectstore::{ObjectStore, StoreError};

/// Why a container cannot be made yet: the kubelet's `CreateContainerConfigError` and kin.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A referenced ConfigMap or Secret (or a key in it) is missing.
    #[error("{0}")]
    Missing(String),
    /// A volume could not be made.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// A mount names a volume the pod does not have.
    #[error("volumeMount {mount:?} of container {container:?}: the pod has no volume {mount:?}")]
    NoSuchVolume {
        /// The container.
        container: String,
        /// The volume name.
        mount: String,
    },
    /// A named port in a probe is not one of the container's ports.
    #[error("container {container:?}: probe port {port:?} is not a named port of the container")]
    NoSuchPort {
        /// The container.
        container: String,
        /// The name.
        port: String,
    },
    /// A stored object does not decode.
    #[error("{what}: {source}")]
    Decode {
        /// Which object.
        what: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The security context cannot be applied.
    #[error(transparent)]
    Security(#[from] super::pod_security::PodSecurityError),
}

impl SpecError {
    /// The waiting reason the kubelet reports for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            SpecError::Missing(_) | SpecError::NoSuchPort { .. } | SpecError::Security(_) => {
                "CreateContainerConfigError"
            }
            _ => "CreateContainerError",
        }
    }
}

fn get<T: DeserializeOwned>(
    store: &ObjectStore,
    kind: &'static kinds::Kind,
    ns: &str,
    name: &str,
) -> Result<Option<T>, SpecError> {
    match store.get(kind, ns, name) {
        Ok(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|source| SpecError::Decode {
                what: format!("{} {ns}/{name}", kind.singular),
                source,
            }),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The ConfigMap `name` in `ns` as key -> bytes (`data` and `binaryData`), if it exists.
pub fn config_map_data(
    store: &ObjectStore,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, SpecError> {
    use base64::Engine;
    let Some(cm) = get::<ConfigMap>(store, &kinds::CONFIG_MAP, ns, name)? else {
        return Ok(None);
    };
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    for (k, v) in cm.binary_data {
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v) {
            out.insert(k, bytes);
        }
    }
    Ok(Some(out))
}

/// The Secret `name` in `ns` as key -> decoded bytes, if it exists.
pub fn secret_data(
    store: &ObjectStore,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, SpecError> {
    let Some(mut secret) = get::<Secret>(store, &kinds::SECRET, ns, name)? else {
        return Ok(None);
    };
    secret.merge_string_data();
    let keys: Vec<String> = secret.data.keys().cloned().collect();
    Ok(Some(
        keys.into_iter()
            .filter_map(|k| secret.value(&k).map(|v| (k, v)))
            .collect(),
    ))
}

/// The container's environment, Kubernetes' way: `envFrom` sources in order, then `env`
/// (each `value` expanded against what came before).
pub fn container_env(
    store: &ObjectStore,
    pod: &Pod,
    pod_ip: Option<&str>,
    host_ip: &str,
    c: &Container,
) -> Result<ContainerEnv, SpecError> {
    let ns = pod.metadata.namespace();
    let mut env = ContainerEnv::new();
    for source in &c.env_from {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let (data, what, optional) = if let Some(r) = &source.config_map_ref {
            (
                config_map_data(store, ns, &r.name)?,
                format!("configmap \"{}\" not found", r.name),
                r.optional.unwrap_or(false),
            )
        } else if let Some(r) = &source.secret_ref {
            (
                secret_data(store, ns, &r.name)?,
                format!("secret \"{}\" not found", r.name),
                r.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (k, v) in data {
                    let name = format!("{prefix}{k}");
                    if berth_kube::names::env_var_name(&name).is_ok() {
                        env.set(&name, String::from_utf8_lossy(&v).into_owned());
                    }
                }
            }
            None if optional => {}
            None => return Err(SpecError::Missing(what)),
        }
    }
    for var in &c.env {
        if let Some(value) = &var.value {
            env.set_expanded(&var.name, value);
            continue;
        }
        let Some(from) = &var.value_from else {
            env.set(&var.name, String::new());
            continue;
        };
        let value = if let Some(r) = &from.config_map_key_ref {
            key_ref(
                config_map_data(store, ns, &r.name)?,
                "configmap",
                &r.name,
                &r.key,
                r.optional,
            )?
        } else if let Some(r) = &from.secret_key_ref {
            key_ref(
                secret_data(store, ns, &r.name)?,
                "secret",
                &r.name,
                &r.key,
                r.optional,
            )?
        } else if let Some(f) = &from.field_ref {
            field_ref(pod, pod_ip, host_ip, &f.field_path)
        } else {
            None
        };
        if let Some(v) = value {
            env.set(&var.name, v);
        }
    }
    Ok(env)
}

fn key_ref(
    data: Option<BTreeMap<String, Vec<u8>>>,
    kind: &str,
    name: &str,
    key: &str,
    optional: Option<bool>,
) -> Result<Option<String>, SpecError> {
    let optional = optional.unwrap_or(false);
    match data {
        None if optional => Ok(None),
        None => Err(SpecError::Missing(format!("{kind} \"{name}\" not found"))),
        Some(d) => match d.get(key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            None if optional => Ok(None),
            None => Err(SpecError::Missing(format!(
                "couldn't find key {key} in {kind} {name}"
            ))),
        },
    }
}

/// The downward API fields a `fieldRef` may name.
fn field_ref(pod: &Pod, pod_ip: Option<&str>, host_ip: &str, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let label = |prefix: &str, map: &BTreeMap<String, String>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .and_then(|k| map.get(k).cloned())
    };
    match path {
        "metadata.name" => Some(m.name().to_string()),
        "metadata.namespace" => Some(m.namespace().to_string()),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => pod.spec.node_name.clone(),
        "spec.serviceAccountName" => pod.spec.service_account_name.clone(),
        "status.podIP" => pod_ip.map(str::to_string),
        "status.hostIP" => Some(host_ip.to_string()),
        _ => label("metadata.labels['", &m.labels)
            .or_else(|| label("metadata.annotations['", &m.annotations)),
    }
}

/// The volumes of a pod made on the host: volume name -> host directory (or file).
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    paths: BTreeMap<String, (PathBuf, bool)>,
}

impl PodVolumes {
    /// The host path of volume `name` and whether it is read-only by nature.
    pub fn get(&self, name: &str) -> Option<&(PathBuf, bool)> {
        self.paths.get(name)
    }
}

/// Makes (or refreshes: ConfigMap and Secret contents are rewritten when they changed) the
/// volumes of `pod` under `root`.
pub fn prepare_volumes(
    store: &ObjectStore,
    root: &Path,
    pod: &Pod,
) -> Result<PodVolumes, SpecError> {
    let ns = pod.metadata.namespace();
    let dirs = PodVolumeDirs::new(root, pod.metadata.uid.as_deref().unwrap_or(""));
    let mut out = PodVolumes::default();
    for v in &pod.spec.volumes {
        let made = make_volume(store, &dirs, ns, v)?;
        // An fsGroup out of range is refused when the containers are made.
        let fs_group = pod
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.fs_group)
            .and_then(|g| u32::try_from(g).ok());
        if let (Some(gid), true) = (fs_group, is_empty_dir(v)) {
            give_to_fs_group(&made.0, gid)?;
        }
        out.paths.insert(v.name.clone(), made);
    }
    Ok(out)
}

fn items(items: &[berth_kube::pod::KeyToPath]) -> Vec<KeyToPath> {
    items
        .iter()
        .map(|i| KeyToPath {
            key: i.key.clone(),
            path: i.path.clone(),
            mode: i.mode.map(|m| m as u32),
        })
        .collect()
}

fn make_volume(
    store: &ObjectStore,
    dirs: &PodVolumeDirs,
    ns: &str,
    v: &Volume,
) -> Result<(PathBuf, bool), SpecError> {
    if let Some(hp) = &v.host_path {
        let path = PathBuf::from(&hp.path);
        volumes::host_path(
            &v.name,
            &path,
            HostPathType::parse(&v.name, hp.type_.as_deref())?,
        )?;
        return Ok((path, false));
    }
    if let Some(cm) = &v.config_map {
        let data = config_map_data(store, ns, &cm.name)?;
        let payload = volumes::project(
            &v.name,
            &format!("configmap \"{}\"", cm.name),
            data.as_ref(),
            &items(&cm.items),
            cm.default_mode.map(|m| m as u32),
            cm.optional.unwrap_or(false),
        )
        .map_err(|e| match e {
            VolumeError::MissingKey { key, .. } if key.is_empty() => {
                SpecError::Missing(format!("configmap \"{}\" not found", cm.name))
            }
            other => other.into(),
        })?;
        let (dir, _) = dirs.projected("kubernetes.io~configmap", &v.name, &payload)?;
        return Ok((dir, true));
    }
    if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let data = secret_data(store, ns, &name)?;
        let payload = volumes::project(
            &v.name,
            &format!("secret \"{name}\""),
            data.as_ref(),
            &items(&s.items),
            s.default_mode.map(|m| m as u32),
            s.optional.unwrap_or(false),
        )
        .map_err(|e| match e {
            VolumeError::MissingKey { key, .. } if key.is_empty() => {
                SpecError::Missing(format!("secret \"{name}\" not found"))
            }
            other => other.into(),
        })?;
        let (dir, _) = dirs.secret(&v.name, &payload)?;
        return Ok((dir, true));
    }
    if let Some(claim) = &v.persistent_volume_claim {
        let path = claimed_path(store, ns, &claim.claim_name)?;
        volumes::host_path(&v.name, &path, HostPathType::DirectoryOrCreate)?;
        return Ok((path, claim.read_only.unwrap_or(false)));
    }
    // emptyDir, and a volume with no source, which the API server defaults to emptyDir.
    Ok((dirs.empty_dir(&v.name)?, false))
}

fn is_empty_dir(v: &Volume) -> bool {
    v.host_path.is_none()
        && v.config_map.is_none()
        && v.secret.is_none()
        && v.persistent_volume_claim.is_none()
}

/// Gives an emptyDir to the pod's `fsGroup` as the kubelet does: group-owned, group-writable
/// and setgid, so what the containers make in it belongs to that group too.
fn give_to_fs_group(dir: &Path, gid: u32) -> Result<(), SpecError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| {
        SpecError::Volume(VolumeError::Io {
            path: dir.to_path_buf(),
            source,
        })
    };
    std::os::unix::fs::chown(dir, None, Some(gid)).map_err(io)?;
    let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode();
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode((mode & 0o7777) | 0o2070),
    )
    .map_err(io)
}

/// The host path of the PersistentVolume claim `claim` is bound to (see
/// [`super::pod_claims`], which binds claims).
fn claimed_path(store: &ObjectStore, ns: &str, claim: &str) -> Result<PathBuf, SpecError> {
    let pvc: PersistentVolumeClaim = get(store, &kinds::PERSISTENT_VOLUME_CLAIM, ns, claim)?
        .ok_or_else(|| {
            SpecError::Missing(format!("persistentvolumeclaim \"{claim}\" not found"))
        })?;
    let volume = pvc
        .spec
        .volume_name
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            SpecError::Missing(format!(
                "persistentvolumeclaim \"{claim}\" is not bound to a volume"
            ))
        })?;
    let pv: PersistentVolume = get(store, &kinds::PERSISTENT_VOLUME, "", &volume)?
        .ok_or_else(|| SpecError::Missing(format!("persistentvolume \"{volume}\" not found")))?;
    pv.spec
        .host_path
        .map(|hp| PathBuf::from(hp.path))
        .ok_or_else(|| {
            SpecError::Missing(format!(
                "persistentvolume \"{volume}\" has no hostPath (the only kind this node mounts)"
            ))
        })
}

/// The mounts of container `c` from the pod's volumes (`subPath` binds that part).
pub fn mounts(c: &Container, vols: &PodVolumes) -> Result<Vec<MountRequest>, SpecError> {
    let mut out = Vec::new();
    for m in &c.volume_mounts {
        let (path, read_only) = vols.get(&m.name).ok_or_else(|| SpecError::NoSuchVolume {
            container: c.name.clone(),
            mount: m.name.clone(),
        })?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                let p = path.join(sub);
                if !p.exists() {
                    std::fs::create_dir_all(&p).map_err(|source| {
                        SpecError::Volume(VolumeError::Io {
                            path: p.clone(),
                            source,
                        })
                    })?;
                }
                p
            }
            None => path.clone(),
        };
        let mut req = MountRequest::bind(source, m.mount_path.clone());
        req.read_only = *read_only || m.read_only.unwrap_or(false);
        out.push(req);
    }
    Ok(out)
}

/// The ports of `pod`'s containers that ask for a `hostPort`, as the berth pod publishes
/// them (from `hostIP`, or every host address; SCTP has no forwarding here and is skipped).
pub fn host_ports(pod: &Pod) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for port in pod.spec.containers.iter().flat_map(|c| &c.ports) {
        let (Some(host_port), Ok(container_port)) = (
            port.host_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0),
            u16::try_from(port.container_port),
        ) else {
            continue;
        };
        let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => continue,
        };
        let host_ip = port
            .host_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .filter(|ip: &std::net::Ipv4Addr| !ip.is_unspecified());
        out.push(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        });
    }
    out
}

/// `resources.limits` (cpu, memory) as berth's resource limits.
pub fn resources(c: &Container) -> Resources {
    let mut r = Resources::default();
    let Some(req) = &c.resources else {
        return r;
    };
    if let Some(mem) = req.limits.get("memory") {
        r.memory = u64::try_from(mem.value()).ok().filter(|m| *m > 0);
    }
    if let Some(cpu) = req.limits.get("cpu") {
        let millis = cpu.millis();
        if millis > 0 {
            r.cpu_period = Some(100_000);
            r.cpu_quota = i64::try_from(millis * 100).ok();
        }
    }
    r
}

/// `berth run` options for container `c` of `pod` (joining berth pod `berth_pod`).
pub fn run_options(
    c: &Container,
    env: &ContainerEnv,
    mounts: Vec<MountRequest>,
    berth_pod: &str,
    labels: BTreeMap<String, String>,
    name: String,
) -> RunOptions {
    let expand = |v: &Option<Vec<String>>| -> Vec<String> {
        v.as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|s| env.expand(s))
            .collect()
    };
    let (entrypoint, cmd) = entrypoint_and_cmd(&expand(&c.command), &expand(&c.args));
    RunOptions {
        image: c.image.clone().unwrap_or_default(),
        cmd,
        name: Some(name),
        entrypoint,
        env: env.to_strings(),
        workdir: c.working_dir.clone().filter(|w| !w.is_empty()),
        pod: Some(berth_pod.to_string()),
        labels,
        mounts,
        resources: resources(c),
        ..RunOptions::default()
    }
}

/// Probe `p` of container `c` with its target resolved against pod address `pod_ip`.
pub fn probe(c: &Container, p: &KubeProbe, pod_ip: &str) -> Result<Option<Probe>, SpecError> {
    let port = |port: &IntOrString| -> Result<u16, SpecError> {
        match port {
            IntOrString::Int(n) => Ok(u16::try_from(*n).unwrap_or(0)),
            IntOrString::String(name) => c
                .ports
                .iter()
                .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                .and_then(|cp| u16::try_from(cp.container_port).ok())
                .ok_or_else(|| SpecError::NoSuchPort {
                    container: c.name.clone(),
                    port: name.clone(),
                }),
        }
    };
    let action = if let Some(h) = &p.http_get {
        ProbeAction::HttpGet {
            https: h.scheme.as_deref() == Some("HTTPS"),
            host: h.host.clone().unwrap_or_else(|| pod_ip.to_string()),
            port: port(&h.port)?,
            path: h.path.clone().unwrap_or_else(|| "/".to_string()),
            headers: h
                .http_headers
                .iter()
                .map(|hh| (hh.name.clone(), hh.value.clone()))
                .collect(),
        }
    } else if let Some(t) = &p.tcp_socket {
        ProbeAction::TcpSocket {
            host: t.host.clone().unwrap_or_else(|| pod_ip.to_string()),
            port: port(&t.port)?,
        }
    } else if let Some(e) = &p.exec {
        ProbeAction::Exec {
            command: e.command.clone(),
        }
    } else {
        return Ok(None);
    };
    let n = |v: Option<i32>| v.and_then(|x| u32::try_from(x).ok());
    Ok(Some(Probe::with_defaults(
        action,
        n(p.initial_delay_seconds),
        n(p.period_seconds),
        n(p.timeout_seconds),
        n(p.success_threshold),
        n(p.failure_threshold),
    )))
}
