//! The OCI runtime spec of a container from plain values: runtime's default spec with the
//! image's (or the command line's) argv, environment, working directory and user, Docker's
//! default capabilities, its namespaces and the `/etc` files berth writes for it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use berth_runtime::spec::DEFAULT_PATH;

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

/// The spec as JSON, ready for `config.json`.
pub fn build(v: &SpecValues) -> Value {
    let mut spec = berth_runtime::spec::default_spec();
    let caps = json!(berth_runtime::spec::DOCKER_DEFAULT_CAPABILITIES);
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
        // A joined UTS namespace has its host name already (the pod's infra set it).
        (Some(_), Some(obj)) => drop(obj.remove("hostname")),
        _ => spec["hostname"] = json!(v.hostname),
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        super::mounts::add_to_spec(mounts, &v.mounts);
        for (source, name) in &v.etc_files {
            let destination = format!("/etc/{name}");
            if super::mounts::is_replaced(&v.mounts, &destination) {
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

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = SpecValues {
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
        };
        let spec = build(&v);
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
        let joined = build(&SpecValues {
            uts: Some("/run/berth/i/uts".into()),
            ..v
        });
        assert!(joined.get("hostname").is_none());
        let mounts = spec["mounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["destination"] == "/etc/hosts"));
    }
}
