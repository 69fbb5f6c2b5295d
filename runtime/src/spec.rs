//! The default `config.json` written by `berth-runtime spec`: runc's example
//! spec (busybox `sh` on a terminal, read-only root, pid/net/ipc/uts/mount
//! namespaces), and its rootless variant.

use serde_json::{json, Value};

/// The search path of a process whose environment sets no `PATH`, and the PATH
/// Docker gives images that set none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities Docker gives a container unless told otherwise; berth's
/// containers and build steps start from the same set.
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the running kernel supports and the calling process may hand on (its
/// bounding set: a host's root can lack some, and a container cannot get more), as `CAP_*`
/// names in kernel order: what a privileged container, or `--cap-add ALL`, gets.
pub fn all_capabilities() -> Vec<String> {
    let bounding = caps::read(None, caps::CapSet::Bounding).unwrap_or_default();
    let mut all: Vec<caps::Capability> = caps::runtime::thread_all_supported()
        .into_iter()
        .filter(|c| bounding.contains(c))
        .collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

/// A capability name as Docker accepts it (any case, with or without `CAP_`) in the
/// kernel's form `CAP_NET_ADMIN`, or `ALL`; `None` for a name no kernel knows.
pub fn normalize_capability(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<caps::Capability>().ok().map(|c| c.to_string())
}

/// runc 1.1's default spec, field for field.
pub fn default_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                format!("PATH={DEFAULT_PATH}"),
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// runc's `spec --rootless`: a user namespace mapping `uid`/`gid` to root, no
/// network namespace, sysfs bind-mounted, no cgroup mount or resources.
pub fn rootless_spec(uid: u32, gid: u32) -> Value {
    let mut spec = default_spec();
    spec["linux"]["resources"] = Value::Null;
    if let Some(obj) = spec["linux"].as_object_mut() {
        obj.remove("resources");
    }
    spec["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}
    ]);
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["type"] != "cgroup");
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            } else if m["type"] == "devpts" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "gid=5");
                }
            }
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_parses_as_an_oci_spec() {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(default_spec()).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("runc"));
        assert_eq!(spec.mounts().as_ref().map(Vec::len), Some(7));
    }

    #[test]
    fn capability_names_normalise_as_docker() {
        assert_eq!(
            normalize_capability("net_admin").as_deref(),
            Some("CAP_NET_ADMIN")
        );
        assert_eq!(
            normalize_capability("CAP_sys_admin").as_deref(),
            Some("CAP_SYS_ADMIN")
        );
        assert_eq!(normalize_capability("all").as_deref(), Some("ALL"));
        assert_eq!(normalize_capability("cap_fly"), None);
        let all = all_capabilities();
        assert!(all.len() >= 38, "{all:?}");
        assert_eq!(all[0], "CAP_CHOWN");
    }

    #[test]
    fn the_rootless_spec_maps_the_user_and_drops_the_network_namespace() {
        let spec = rootless_spec(1000, 100);
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 1000);
        assert!(!spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        let _: oci_spec::runtime::Spec = serde_json::from_value(spec).unwrap();
    }
}
