//! What a container's processes may do, as Docker decides it: the capability set
//! (`--cap-add`, `--cap-drop`, `--privileged`), the seccomp filter (Docker's default profile
//! unless `--security-opt seccomp=unconfined|PROFILE.json`), `no_new_privs`
//! (`--security-opt no-new-privileges`), a read-only root (`--read-only`), and the host's
//! pid and IPC namespaces (a Pod's `hostPID`/`hostIPC`). Recorded in the container's config,
//! applied to its OCI spec at create (so `start` of a stopped container keeps them).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use berth_runtime::seccomp::{self, ProfileError, Target};
use berth_runtime::spec::{all_capabilities, normalize_capability, DOCKER_DEFAULT_CAPABILITIES};

/// Errors from security options.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A `--security-opt` berth does not know.
    #[error("--security-opt {0:?}: unknown option (berth supports seccomp=unconfined, seccomp=PROFILE.json and no-new-privileges[=true|false]; AppArmor and SELinux labels are not supported)")]
    UnknownOpt(String),
    /// A known `--security-opt` with a value that does not parse.
    #[error("--security-opt {opt:?}: {reason}")]
    BadOpt {
        /// The option as given.
        opt: String,
        /// What is wrong.
        reason: String,
    },
    /// `--cap-add`/`--cap-drop` of a name no kernel knows.
    #[error("{flag} {name:?}: unknown capability")]
    UnknownCapability {
        /// `--cap-add` or `--cap-drop`.
        flag: &'static str,
        /// The name as given.
        name: String,
    },
    /// The seccomp profile file cannot be read.
    #[error("--security-opt seccomp={path}: {source}")]
    ProfileFile {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The seccomp profile is not a valid profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The host's devices could not be listed for a privileged container.
    #[error("host devices {path}: {source}")]
    HostDevices {
        /// The path that failed.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The seccomp filter a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "profile")]
pub enum SeccompMode {
    /// Docker's default profile (none for a privileged container, as Docker).
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// This profile (Docker's JSON format or OCI's), as read from the file given.
    Profile(String),
}

/// A container's security settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// `--privileged`: every capability, no seccomp filter, no masked or read-only paths,
    /// writable `/sys`, every host device.
    #[serde(default)]
    pub privileged: bool,
    /// `--cap-add`, normalised (`CAP_NET_ADMIN`, or `ALL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// `--cap-drop`, normalised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// The seccomp filter.
    #[serde(default)]
    pub seccomp: SeccompMode,
    /// `no_new_privs` for its processes.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `--read-only`: the root filesystem is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Shares the host's pid namespace (a Pod's `hostPID`).
    #[serde(default)]
    pub host_pid: bool,
    /// Shares the host's IPC namespace (a Pod's `hostIPC`).
    #[serde(default)]
    pub host_ipc: bool,
    /// Namespaced sysctls set in the container's namespaces (a Pod's `sysctls`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `--security-opt` values as given (Docker's `HostConfig.SecurityOpt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
}

fn parse_bool(opt: &str, value: Option<&str>) -> Result<bool, SecurityError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(SecurityError::BadOpt {
            opt: opt.to_string(),
            reason: "expected true or false".into(),
        }),
    }
}

impl Security {
    /// Applies one `--security-opt` (`key=value`, or Docker's older `key:value`).
    pub fn add_security_opt(&mut self, opt: &str) -> Result<(), SecurityError> {
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("no-new-privileges", v) => self.no_new_privileges = parse_bool(opt, v)?,
            ("seccomp", Some("unconfined")) => self.seccomp = SeccompMode::Unconfined,
            ("seccomp", Some(path)) if !path.is_empty() => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SecurityError::ProfileFile {
                        path: path.to_string(),
                        source,
                    })?;
                // Refused now rather than at start when it does not parse.
                seccomp::to_oci(&text, &[], &Target::host()?)?;
                self.seccomp = SeccompMode::Profile(text);
            }
            ("seccomp", _) => {
                return Err(SecurityError::BadOpt {
                    opt: opt.to_string(),
                    reason: "give unconfined or a profile's path".into(),
                })
            }
            _ => return Err(SecurityError::UnknownOpt(opt.to_string())),
        }
        self.security_opt.push(opt.to_string());
        Ok(())
    }

    /// Records `--cap-add` and `--cap-drop` (names in any case, with or without `CAP_`).
    pub fn set_capabilities(
        &mut self,
        add: &[String],
        drop: &[String],
    ) -> Result<(), SecurityError> {
        let norm = |flag: &'static str, names: &[String]| -> Result<Vec<String>, SecurityError> {
            names
                .iter()
                .map(|n| {
                    normalize_capability(n).ok_or_else(|| SecurityError::UnknownCapability {
                        flag,
                        name: n.clone(),
                    })
                })
                .collect()
        };
        self.cap_add = norm("--cap-add", add)?;
        self.cap_drop = norm("--cap-drop", drop)?;
        Ok(())
    }

    /// The container's capabilities, as Docker's `TweakCapabilities`: all when privileged
    /// or with `--cap-add ALL` (less the drops); only the adds with `--cap-drop ALL`;
    /// otherwise Docker's default set less the drops plus the adds.
    pub fn capabilities(&self) -> Vec<String> {
        let all = || all_capabilities();
        if self.privileged {
            return all();
        }
        let has_all = |v: &[String]| v.iter().any(|c| c == "ALL");
        let named =
            |v: &[String]| -> Vec<String> { v.iter().filter(|c| *c != "ALL").cloned().collect() };
        let mut caps: Vec<String> = if has_all(&self.cap_add) {
            all()
                .into_iter()
                .filter(|c| !self.cap_drop.contains(c))
                .collect()
        } else if has_all(&self.cap_drop) {
            named(&self.cap_add)
        } else {
            let mut caps: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !self.cap_drop.contains(c))
                .collect();
            caps.extend(named(&self.cap_add));
            caps
        };
        let mut seen = std::collections::HashSet::new();
        caps.retain(|c| seen.insert(c.clone()));
        caps
    }

    /// The OCI `linux.seccomp` for capability set `caps`, or `None` for no filter.
    pub fn seccomp(&self, caps: &[String]) -> Result<Option<Value>, SecurityError> {
        Ok(match &self.seccomp {
            SeccompMode::Unconfined => None,
            SeccompMode::Default if self.privileged => None,
            SeccompMode::Default => Some(seccomp::docker_default(caps)?),
            SeccompMode::Profile(text) => Some(seccomp::to_oci(text, caps, &Target::host()?)?),
        })
    }

    /// Sets the capabilities, seccomp filter, `noNewPrivileges`, read-only root and, for a
    /// privileged container, the host's devices and unmasked paths in `spec`.
    pub fn apply_to_spec(&self, spec: &mut Value) -> Result<(), SecurityError> {
        let caps = self.capabilities();
        spec["process"]["capabilities"] =
            json!({"bounding": caps, "effective": caps, "permitted": caps});
        spec["process"]["noNewPrivileges"] = json!(self.no_new_privileges);
        spec["root"]["readonly"] = json!(self.read_only);
        match (self.seccomp(&caps)?, spec["linux"].as_object_mut()) {
            (Some(filter), Some(linux)) => drop(linux.insert("seccomp".into(), filter)),
            (None, Some(linux)) => drop(linux.remove("seccomp")),
            _ => {}
        }
        if let Some(namespaces) = spec["linux"]["namespaces"].as_array_mut() {
            namespaces.retain(|n| {
                !(self.host_pid && n["type"] == "pid" || self.host_ipc && n["type"] == "ipc")
            });
        }
        if !self.sysctls.is_empty() {
            spec["linux"]["sysctl"] = json!(self.sysctls);
        }
        if self.privileged {
            spec["linux"]["maskedPaths"] = json!([]);
            spec["linux"]["readonlyPaths"] = json!([]);
            spec["linux"]["devices"] = json!(host_devices(Path::new("/dev"))?);
            spec["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
            for m in spec["mounts"].as_array_mut().into_iter().flatten() {
                if m["type"] == "sysfs" || m["type"] == "cgroup" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "ro");
                    }
                }
            }
        }
        Ok(())
    }
}

/// The host's device nodes under `dir` as `linux.devices` entries, as Docker gives a
/// privileged container (`/dev/pts`, `/dev/shm` and `/dev/mqueue` are the container's own).
fn host_devices(dir: &Path) -> Result<Vec<Value>, SecurityError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| SecurityError::HostDevices { path, source }
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err(dir))? {
        let entry = entry.map_err(err(dir))?;
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // gone meanwhile
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            if !matches!(path.to_str(), Some("/dev/pts" | "/dev/shm" | "/dev/mqueue")) {
                out.extend(host_devices(&path)?);
            }
            continue;
        }
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": path.to_string_lossy(),
            "type": kind,
            "major": nix::sys::stat::major(rdev),
            "minor": nix::sys::stat::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn security_opts_parse_as_docker() {
        let mut sec = Security::default();
        sec.add_security_opt("no-new-privileges").unwrap();
        assert!(sec.no_new_privileges);
        sec.add_security_opt("no-new-privileges=false").unwrap();
        assert!(!sec.no_new_privileges);
        sec.add_security_opt("no-new-privileges:true").unwrap();
        assert!(sec.no_new_privileges);
        sec.add_security_opt("seccomp=unconfined").unwrap();
        assert_eq!(sec.seccomp, SeccompMode::Unconfined);
        assert_eq!(sec.security_opt.len(), 4);
        for bad in ["apparmor=unconfined", "label=disable", "bogus"] {
            let err = sec.add_security_opt(bad).unwrap_err().to_string();
            assert!(err.contains("unknown option"), "{err}");
        }
        assert!(sec.add_security_opt("no-new-privileges=maybe").is_err());
        assert!(sec.add_security_opt("seccomp=").is_err());
        let err = sec
            .add_security_opt("seccomp=/nonexistent/profile.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/profile.json"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "not json").unwrap();
        assert!(sec
            .add_security_opt(&format!("seccomp={}", bad.display()))
            .is_err());
        let good = dir.path().join("p.json");
        std::fs::write(&good, r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        sec.add_security_opt(&format!("seccomp={}", good.display()))
            .unwrap();
        assert!(matches!(sec.seccomp, SeccompMode::Profile(_)));
    }

    #[test]
    fn capabilities_follow_dockers_tweak() {
        let mut sec = Security::default();
        sec.set_capabilities(
            &s(&["net_admin", "CAP_SYS_TIME"]),
            &s(&["chown", "Cap_Kill"]),
        )
        .unwrap();
        assert_eq!(sec.cap_add, s(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]));
        let caps = sec.capabilities();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.len(), 14);
        sec.set_capabilities(&s(&["NET_RAW"]), &s(&["all"]))
            .unwrap();
        assert_eq!(sec.capabilities(), s(&["CAP_NET_RAW"]));
        sec.set_capabilities(&s(&["ALL"]), &s(&["SYS_ADMIN"]))
            .unwrap();
        let caps = sec.capabilities();
        assert!(caps.len() > 30 && !caps.contains(&"CAP_SYS_ADMIN".to_string()));
        let err = sec
            .set_capabilities(&s(&["FLY"]), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "--cap-add \"FLY\": unknown capability");
        let privileged = Security {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(privileged.capabilities(), all_capabilities());
    }

    #[test]
    fn the_spec_gets_seccomp_caps_and_privileges() {
        let base = || serde_json::to_value(berth_runtime::spec::runc_spec().unwrap()).unwrap();
        let mut spec = base();
        Security::default().apply_to_spec(&mut spec).unwrap();
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(spec["process"]["noNewPrivileges"], false);
        assert_eq!(spec["root"]["readonly"], false);
        assert_eq!(
            spec["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        let mut spec = base();
        let sec = Security {
            seccomp: SeccompMode::Unconfined,
            no_new_privileges: true,
            read_only: true,
            host_pid: true,
            sysctls: BTreeMap::from([("net.ipv4.ping_group_range".into(), "0 0".into())]),
            ..Default::default()
        };
        sec.apply_to_spec(&mut spec).unwrap();
        assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ping_group_range"], "0 0");
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        assert_eq!(spec["root"]["readonly"], true);
        let ns = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "pid"));
        assert!(ns.iter().any(|n| n["type"] == "ipc"));
        let mut spec = base();
        let privileged = Security {
            privileged: true,
            ..Default::default()
        };
        privileged.apply_to_spec(&mut spec).unwrap();
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(spec["linux"]["maskedPaths"], json!([]));
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], true);
        let devices = spec["linux"]["devices"].as_array().unwrap();
        assert!(devices.iter().any(|d| d["path"] == "/dev/null"));
        let sysfs = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "sysfs")
            .unwrap();
        assert!(!sysfs["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "ro"));
    }
}
