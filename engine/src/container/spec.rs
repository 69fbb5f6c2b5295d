//! The OCI runtime spec of a container from plain values, built with oci-spec's typed
//! builders: runc's spec with the image's (or the command line's) argv, environment, working
//! directory and user in Docker's process shape, Docker's default capabilities, its
//! namespaces, the user's mounts and the `/etc` files berth writes for it, and its limits.

use std::path::PathBuf;

use berth_runtime::spec::{
    mount, namespace, runc_spec, ContainerProcess, SystemMount, DEFAULT_PATH,
    DOCKER_DEFAULT_CAPABILITIES,
};
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Mount, RootBuilder, Spec};
use serde_json::{json, Value};

/// Why a container's spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// oci-spec refused a value.
    #[error(transparent)]
    Oci(#[from] berth_runtime::spec::SpecError),
    /// A part that another module still edits as JSON did not convert.
    #[error("spec {part}: {source}")]
    Json {
        /// Which part: `mounts`, `resources`, the whole spec.
        part: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Everything the spec is made from, already resolved.
#[derive(Debug, Clone)]
pub struct SpecValues {
    /// The container id (names its cgroup `<cgroup_parent>/<id>`).
    pub id: String,
    /// The mounted root filesystem.
    pub rootfs: PathBuf,
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value` environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// uid, gid and supplementary gids.
    pub user: (u32, u32, Vec<u32>),
    /// The host name.
    pub hostname: String,
    /// The cgroup parent (relative, validated by [`super::Settings`]).
    pub cgroup_parent: String,
    /// The network namespace to join; `None` shares the host's.
    pub netns: Option<PathBuf>,
    /// The IPC namespace to join (a pod's); `None` makes a new one.
    pub ipc: Option<PathBuf>,
    /// The UTS namespace to join (a pod's); `None` makes a new one.
    pub uts: Option<PathBuf>,
    /// `hosts`, `resolv.conf` and `hostname` files bind-mounted over `/etc/…`.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    /// Volumes, binds and tmpfs mounts.
    pub mounts: Vec<super::MountPoint>,
    /// Resource limits.
    pub resources: super::Resources,
    /// `-t`: the process gets a pty (its master goes to the monitor's console socket).
    pub terminal: bool,
}

/// The environment: the image's, then `-e` values (which replace the same name), with
/// Docker's default PATH when neither sets one, and HOSTNAME first as Docker does.
pub fn merge_env(image_env: &[String], overrides: &[String], hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = vec![format!("HOSTNAME={hostname}")];
    let key = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_string();
    for kv in image_env.iter().chain(overrides) {
        let k = key(kv);
        env.retain(|e| key(e) != k);
        env.push(kv.clone());
    }
    if !env.iter().any(|e| key(e) == "PATH") {
        env.insert(1, format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// The argv: `--entrypoint` (or the image's Entrypoint), then the command line's CMD (or the
/// image's Cmd when none was given and the entrypoint was not overridden).
pub fn argv(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint: Option<&str>,
    cmd: &[String],
) -> Vec<String> {
    let mut args: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => image_entrypoint.to_vec(),
    };
    if !cmd.is_empty() {
        args.extend(cmd.iter().cloned());
    } else if entrypoint.is_none() {
        args.extend(image_cmd.iter().cloned());
    }
    args
}

/// The spec: runc's, with the container's process (Docker's default capabilities, 1024 open
/// files), its root, its host name (none when it joins a UTS namespace, whose name the pod's
/// infra set), the system mounts the user does not replace, the user's mounts, binds of its
/// `/etc` files (unless the user mounts there), its limits, its namespaces and its cgroup.
pub fn build(v: &SpecValues) -> Result<Spec, SpecError> {
    let mut spec = runc_spec()?;
    let process = ContainerProcess {
        args: v.args.clone(),
        env: v.env.clone(),
        cwd: v.cwd.clone(),
        uid: v.user.0,
        gid: v.user.1,
        additional_gids: v.user.2.clone(),
        capabilities: DOCKER_DEFAULT_CAPABILITIES.map(String::from).to_vec(),
        terminal: v.terminal,
    };
    spec.set_process(Some(process.build()?));
    spec.set_root(Some(
        RootBuilder::default()
            .path(&v.rootfs)
            .readonly(false)
            .build()
            .map_err(berth_runtime::spec::SpecError::from)?,
    ));
    spec.set_hostname(match v.uts {
        Some(_) => None,
        None => Some(v.hostname.clone()),
    });
    spec.set_mounts(Some(mounts(v)?));
    let mut namespaces = vec![
        namespace(LinuxNamespaceType::Pid, None)?,
        namespace(LinuxNamespaceType::Ipc, v.ipc.as_deref())?,
        namespace(LinuxNamespaceType::Uts, v.uts.as_deref())?,
        namespace(LinuxNamespaceType::Mount, None)?,
    ];
    if let Some(netns) = &v.netns {
        namespaces.push(namespace(LinuxNamespaceType::Network, Some(netns))?);
    }
    if let Some(linux) = spec.linux_mut() {
        let resources = limits(linux.resources(), &v.resources)?;
        linux.set_resources(resources);
        linux.set_namespaces(Some(namespaces));
        linux.set_cgroups_path(Some(PathBuf::from(format!(
            "/{}/{}",
            v.cgroup_parent, v.id
        ))));
    }
    Ok(spec)
}

/// The spec as the JSON of `config.json` (which [`super::Security`] still edits as JSON).
pub fn to_json(spec: &Spec) -> Result<Value, SpecError> {
    serde_json::to_value(spec).map_err(|source| SpecError::Json {
        part: "config",
        source,
    })
}

/// runc's system mounts less those a user mount replaces, then the user's mounts, then the
/// `/etc` binds a user mount does not replace.
fn mounts(v: &SpecValues) -> Result<Vec<Mount>, SpecError> {
    let mut out = Vec::new();
    for system in SystemMount::RUNC {
        let m = system.mount()?;
        if !m
            .destination()
            .to_str()
            .is_some_and(|d| super::mounts::is_replaced(&v.mounts, d))
        {
            out.push(m);
        }
    }
    // The user's mounts as mounts.rs writes them (JSON entries, parents first).
    let mut user = Vec::new();
    super::mounts::add_to_spec(&mut user, &v.mounts);
    let user: Vec<Mount> =
        serde_json::from_value(Value::Array(user)).map_err(|source| SpecError::Json {
            part: "mounts",
            source,
        })?;
    out.extend(user);
    for (source, name) in &v.etc_files {
        let destination = format!("/etc/{name}");
        if !super::mounts::is_replaced(&v.mounts, &destination) {
            out.push(mount(
                destination,
                "bind",
                source.clone(),
                &["rbind", "rprivate"],
            )?);
        }
    }
    Ok(out)
}

/// `base` (runc's device rules) with `resources`' limits, as resources.rs writes them.
fn limits(
    base: &Option<LinuxResources>,
    resources: &super::Resources,
) -> Result<Option<LinuxResources>, SpecError> {
    let json_err = |source| SpecError::Json {
        part: "resources",
        source,
    };
    let mut spec = json!({"linux": {"resources": serde_json::to_value(base).map_err(json_err)?}});
    resources.apply_to_spec(&mut spec);
    serde_json::from_value(spec["linux"]["resources"].take()).map_err(json_err)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::container::{MountPoint, Resources};

    /// The spec as `build` wrote it when it edited runtime's JSON default spec, kept to
    /// show the typed one writes the same `config.json`.
    fn json_build(v: &SpecValues) -> Value {
        let path_str = |p: &Path| p.to_string_lossy().into_owned();
        let mut spec = serde_json::to_value(runc_spec().unwrap()).unwrap();
        let caps = json!(DOCKER_DEFAULT_CAPABILITIES);
        spec["process"] = json!({
            "terminal": v.terminal,
            "user": {"uid": v.user.0, "gid": v.user.1, "additionalGids": v.user.2},
            "args": v.args,
            "env": v.env,
            "cwd": v.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": false
        });
        spec["root"] = json!({"path": path_str(&v.rootfs), "readonly": false});
        match (&v.uts, spec.as_object_mut()) {
            (Some(_), Some(obj)) => drop(obj.remove("hostname")),
            _ => spec["hostname"] = json!(v.hostname),
        }
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            crate::container::mounts::add_to_spec(mounts, &v.mounts);
            for (source, name) in &v.etc_files {
                let destination = format!("/etc/{name}");
                if crate::container::mounts::is_replaced(&v.mounts, &destination) {
                    continue;
                }
                mounts.push(json!({
                    "destination": destination, "type": "bind",
                    "source": path_str(source), "options": ["rbind", "rprivate"]
                }));
            }
        }
        v.resources.apply_to_spec(&mut spec);
        let joined = |kind: &str, path: &Option<PathBuf>| match path {
            Some(p) => json!({"type": kind, "path": path_str(p)}),
            None => json!({"type": kind}),
        };
        let mut namespaces = vec![
            json!({"type": "pid"}),
            joined("ipc", &v.ipc),
            joined("uts", &v.uts),
            json!({"type": "mount"}),
        ];
        if let Some(netns) = &v.netns {
            namespaces.push(json!({"type": "network", "path": path_str(netns)}));
        }
        spec["linux"]["namespaces"] = json!(namespaces);
        spec["linux"]["cgroupsPath"] = json!(format!("/{}/{}", v.cgroup_parent, v.id));
        spec
    }

    /// Capability sets serialize in hash order: sort them to compare JSON.
    fn sorted_caps(mut spec: Value) -> Value {
        if let Some(caps) = spec["process"]["capabilities"].as_object_mut() {
            for set in caps.values_mut() {
                if let Some(names) = set.as_array_mut() {
                    names.sort_by_key(|n| n.to_string());
                }
            }
        }
        spec
    }

    fn values() -> SpecValues {
        SpecValues {
            id: "abc".into(),
            rootfs: "/r".into(),
            args: s(&["true"]),
            env: vec![format!("PATH={DEFAULT_PATH}")],
            cwd: "/".into(),
            user: (0, 0, vec![]),
            hostname: "abc".into(),
            cgroup_parent: "berth-t/x".into(),
            netns: Some("/run/berth/netns/abc".into()),
            ipc: Some("/run/berth/i/ipc".into()),
            uts: None,
            etc_files: vec![("/c/hosts".into(), "hosts")],
            mounts: Vec::new(),
            resources: Default::default(),
            terminal: false,
        }
    }

    fn point(typ: &str, source: &str, destination: &str, options: &[&str]) -> MountPoint {
        MountPoint {
            typ: typ.into(),
            name: None,
            source: source.into(),
            destination: destination.into(),
            driver: None,
            mode: String::new(),
            rw: true,
            propagation: String::new(),
            options: s(options),
        }
    }

    #[test]
    fn the_typed_spec_writes_what_the_json_one_did() {
        let mut resources = Resources::default();
        resources.set_memory("64m").unwrap();
        resources.set_pids_limit(7);
        resources.cpu_quota = Some(50_000);
        resources.cpu_period = Some(100_000);
        resources.memory_swap = Some(-1);
        let cases = [
            values(),
            SpecValues {
                uts: Some("/run/berth/i/uts".into()),
                netns: None,
                ipc: None,
                user: (1000, 100, vec![10, 20]),
                terminal: true,
                args: s(&["sh", "-c", "echo hi"]),
                cwd: "/work".into(),
                etc_files: vec![
                    ("/c/hosts".into(), "hosts"),
                    ("/c/resolv.conf".into(), "resolv.conf"),
                    ("/c/hostname".into(), "hostname"),
                ],
                mounts: vec![
                    point("tmpfs", "", "/dev/shm", &["size=1g"]),
                    point("bind", "/srv/a", "/a/b", &[]),
                    point("volume", "/v/data", "/a", &[]),
                    point("bind", "/srv/resolv", "/etc/resolv.conf", &[]),
                ],
                resources,
                ..values()
            },
        ];
        for v in cases {
            let typed = to_json(&build(&v).unwrap()).unwrap();
            assert_eq!(sorted_caps(typed), sorted_caps(json_build(&v)), "{v:?}");
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn env_gets_a_default_path_and_overrides() {
        let env = merge_env(&[], &s(&["A=1"]), "h");
        assert_eq!(
            env,
            s(&["HOSTNAME=h", &format!("PATH={DEFAULT_PATH}"), "A=1"])
        );
        let env = merge_env(&s(&["PATH=/x", "A=1"]), &s(&["A=2"]), "h");
        assert_eq!(env, s(&["HOSTNAME=h", "PATH=/x", "A=2"]));
    }

    #[test]
    fn argv_follows_docker() {
        let ep = s(&["/ep"]);
        let cmd = s(&["def"]);
        assert_eq!(argv(&ep, &cmd, None, &[]), s(&["/ep", "def"]));
        assert_eq!(argv(&ep, &cmd, None, &s(&["x"])), s(&["/ep", "x"]));
        assert_eq!(argv(&ep, &cmd, Some("sh"), &[]), s(&["sh"]));
        assert_eq!(argv(&[], &cmd, Some(""), &s(&["y"])), s(&["y"]));
    }

    #[test]
    fn spec_has_namespaces_and_etc_binds() {
        let v = values();
        let spec = to_json(&build(&v).unwrap()).unwrap();
        assert_eq!(spec["linux"]["cgroupsPath"], "/berth-t/x/abc");
        assert_eq!(spec["process"]["terminal"], false);
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/berth/netns/abc"));
        assert!(ns
            .iter()
            .any(|n| n["type"] == "ipc" && n["path"] == "/run/berth/i/ipc"));
        assert!(ns
            .iter()
            .any(|n| n["type"] == "uts" && n.get("path").is_none()));
        assert_eq!(spec["hostname"], "abc");
        let joined = to_json(
            &build(&SpecValues {
                uts: Some("/run/berth/i/uts".into()),
                ..v
            })
            .unwrap(),
        )
        .unwrap();
        assert!(joined.get("hostname").is_none());
        let mounts = spec["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/etc/hosts"));
    }
}
