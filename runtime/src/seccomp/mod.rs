//! Docker's seccomp profile format turned into the OCI spec's `linux.seccomp`, and
//! Docker's default profile as data.
//!
//! `docker-default.json` is moby's `profiles/seccomp/default.json`, taken unchanged from
//! `github.com/moby/profiles/seccomp` v0.2.3 (vendored by moby/moby at commit b985e231,
//! 2026-08). Its format extends the OCI one: an `archMap` (the native architecture and its
//! sub-architectures) instead of `architectures`, and rules that apply only `includes` /
//! `excludes` some architectures, capabilities of the container's bounding set, or a
//! minimum kernel. [`to_oci`] resolves those for this host and a container, as moby's
//! `setupSeccomp` does; a plain OCI `linux.seccomp` object passes through unchanged.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Docker's default profile (moby `profiles/seccomp` v0.2.3).
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("docker-default.json");

/// Errors from reading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile is not a JSON object of the expected shape.
    #[error("seccomp profile: {0}")]
    Parse(#[from] serde_json::Error),
    /// The profile gives both forms of a field.
    #[error("seccomp profile: both {0} are specified, use one")]
    Both(&'static str),
    /// A `minKernel` or the host's kernel release does not parse.
    #[error("seccomp profile: kernel version {0:?}: expected \"<kernel>.<major>\"")]
    KernelVersion(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    arch_map: Vec<ArchEntry>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    /// `defaultAction`, `defaultErrnoRet`, `architectures`, `flags`, `listenerPath`...:
    /// copied as they are.
    #[serde(flatten)]
    common: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchEntry {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
    /// `action`, `errnoRet`, `args`: copied as they are (`comment` is dropped).
    #[serde(flatten)]
    common: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// What the conditional rules of a profile are resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The architecture in libseccomp's (and Go's) words: `amd64`, `arm64`, `s390x`...
    pub arch: String,
    /// The `SCMP_ARCH_*` of the native architecture, looked up in the `archMap`.
    pub scmp_arch: String,
    /// `(kernel, major)` of the running kernel.
    pub kernel: (u64, u64),
}

impl Target {
    /// This host: the architecture berth was built for and the running kernel.
    pub fn host() -> Result<Self, ProfileError> {
        let (arch, scmp_arch) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
            "x86" => ("x86", "SCMP_ARCH_X86"),
            "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
            "arm" => ("arm", "SCMP_ARCH_ARM"),
            "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
            "s390x" => ("s390x", "SCMP_ARCH_S390X"),
            "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
            "loongarch64" => ("loong64", "SCMP_ARCH_LOONGARCH64"),
            other => (other, ""),
        };
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Target {
            arch: arch.to_string(),
            scmp_arch: scmp_arch.to_string(),
            kernel: kernel_version(&release)?,
        })
    }
}

/// `(kernel, major)` of a release such as `6.1.0-18-amd64` or `3.12-rc5`.
fn kernel_version(release: &str) -> Result<(u64, u64), ProfileError> {
    let bad = || ProfileError::KernelVersion(release.to_string());
    let mut parts = release.splitn(3, '.');
    let kernel = parts.next().and_then(|k| k.parse().ok()).ok_or_else(bad)?;
    let major: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Ok((kernel, major.parse().map_err(|_| bad())?))
}

fn min_kernel_met(min: &str, target: &Target) -> Result<bool, ProfileError> {
    let min_version = kernel_version(min)?;
    if min.split('.').count() != 2 || min_version == (0, 0) {
        return Err(ProfileError::KernelVersion(min.to_string()));
    }
    Ok(target.kernel >= min_version)
}

/// Whether a rule applies to a container with bounding set `bounding` on `target`, as
/// moby decides: excluded by any matching `excludes` entry, and included only when every
/// `includes` condition holds.
fn applies(rule: &Rule, bounding: &[String], target: &Target) -> Result<bool, ProfileError> {
    if let Some(ex) = &rule.excludes {
        if ex.arches.contains(&target.arch) || ex.caps.iter().any(|c| bounding.contains(c)) {
            return Ok(false);
        }
        if let Some(min) = &ex.min_kernel {
            if min_kernel_met(min, target)? {
                return Ok(false);
            }
        }
    }
    if let Some(inc) = &rule.includes {
        if !inc.arches.is_empty() && !inc.arches.contains(&target.arch) {
            return Ok(false);
        }
        if !inc.caps.iter().all(|c| bounding.contains(c)) {
            return Ok(false);
        }
        if let Some(min) = &inc.min_kernel {
            if !min_kernel_met(min, target)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// The OCI `linux.seccomp` of profile `json` (Docker's format or OCI's) for a container
/// whose bounding capability set is `bounding` (`CAP_*` names), on `target`.
pub fn to_oci(json: &str, bounding: &[String], target: &Target) -> Result<Value, ProfileError> {
    let profile: Profile = serde_json::from_str(json)?;
    if profile.common.contains_key("architectures") && !profile.arch_map.is_empty() {
        return Err(ProfileError::Both("'architectures' and 'archMap'"));
    }
    let mut out = profile.common;
    if let Some(entry) = profile
        .arch_map
        .iter()
        .find(|a| a.architecture == target.scmp_arch)
    {
        let mut arches = vec![Value::from(entry.architecture.clone())];
        arches.extend(
            entry
                .sub_architectures
                .iter()
                .flatten()
                .cloned()
                .map(Value::from),
        );
        out.insert("architectures".into(), Value::Array(arches));
    }
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(_), false) => return Err(ProfileError::Both("'name' and 'names'")),
            (Some(name), true) => vec![name.clone()],
            (None, _) => rule.names.clone(),
        };
        if !applies(rule, bounding, target)? {
            continue;
        }
        let mut oci = rule.common.clone();
        oci.remove("comment");
        oci.insert("names".into(), Value::from(names));
        syscalls.push(Value::Object(oci));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

/// Docker's default profile as `linux.seccomp` for bounding set `bounding` on this host.
pub fn docker_default(bounding: &[String]) -> Result<Value, ProfileError> {
    to_oci(DOCKER_DEFAULT_PROFILE, bounding, &Target::host()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccomp;

    fn amd64() -> Target {
        Target {
            arch: "amd64".into(),
            scmp_arch: "SCMP_ARCH_X86_64".into(),
            kernel: (6, 1),
        }
    }

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Every rule naming `syscall`, as (action, has args).
    fn rules_for<'a>(seccomp: &'a Value, syscall: &str) -> Vec<&'a Value> {
        seccomp["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == syscall))
            .collect()
    }

    #[test]
    fn the_default_profile_resolves_for_docker_default_capabilities() {
        let bounding: Vec<String> = crate::spec::DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let s = to_oci(DOCKER_DEFAULT_PROFILE, &bounding, &amd64()).unwrap();
        assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(s["defaultErrnoRet"], 1);
        assert_eq!(
            s["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // CAP_SYS_ADMIN is not granted: no mount, unshare, setns, bpf; clone only without
        // namespace flags; clone3 answers ENOSYS so libc falls back to clone.
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "bpf",
            "perf_event_open",
        ] {
            assert!(rules_for(&s, denied).is_empty(), "{denied}");
        }
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["index"], 0);
        assert_eq!(rules_for(&s, "clone3")[0]["errnoRet"], 38);
        // Granted caps and this arch bring their rules; other arches' do not.
        assert_eq!(rules_for(&s, "chroot").len(), 1);
        assert_eq!(rules_for(&s, "arch_prctl").len(), 1);
        assert!(rules_for(&s, "s390_runtime_instr").is_empty());
        // minKernel 4.8 <= 6.1: ptrace is allowed.
        assert_eq!(rules_for(&s, "ptrace").len(), 1);
        assert!(rules_for(&s, "socket").len() == 3);
        assert!(s["syscalls"][0].get("comment").is_none());
        let parsed: LinuxSeccomp = serde_json::from_value(s).unwrap();
        assert!(parsed.syscalls().as_ref().unwrap().len() > 10);
    }

    #[test]
    fn capabilities_and_kernel_switch_conditional_rules() {
        let admin = to_oci(
            DOCKER_DEFAULT_PROFILE,
            &caps(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]),
            &amd64(),
        )
        .unwrap();
        for allowed in ["mount", "unshare", "setns", "clone3", "kcmp"] {
            let r = rules_for(&admin, allowed);
            assert!(
                r.iter().any(|r| r["action"] == "SCMP_ACT_ALLOW"),
                "{allowed}"
            );
        }
        // The namespace-flag clone filter is excluded with CAP_SYS_ADMIN.
        assert!(rules_for(&admin, "clone")
            .iter()
            .all(|r| r.get("args").is_none()));
        let old = Target {
            kernel: (4, 4),
            ..amd64()
        };
        let s = to_oci(DOCKER_DEFAULT_PROFILE, &[], &old).unwrap();
        assert!(rules_for(&s, "ptrace").is_empty());
        let s390 = Target {
            arch: "s390x".into(),
            scmp_arch: "SCMP_ARCH_S390X".into(),
            kernel: (6, 1),
        };
        let s = to_oci(DOCKER_DEFAULT_PROFILE, &[], &s390).unwrap();
        assert_eq!(
            s["architectures"],
            serde_json::json!(["SCMP_ARCH_S390X", "SCMP_ARCH_S390"])
        );
        assert_eq!(rules_for(&s, "clone")[0]["args"][0]["index"], 1);
    }

    #[test]
    fn oci_profiles_pass_through_and_bad_ones_are_refused() {
        let oci = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                      "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
        let s = to_oci(oci, &[], &amd64()).unwrap();
        assert_eq!(s["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(s["syscalls"][0]["names"], serde_json::json!(["mkdir"]));
        assert_eq!(s["syscalls"][0]["errnoRet"], 13);
        let both = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#;
        assert!(matches!(
            to_oci(both, &[], &amd64()),
            Err(ProfileError::Both(_))
        ));
        let names = r#"{"syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#;
        assert!(to_oci(names, &[], &amd64()).is_err());
        let kernel = r#"{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                         "includes": {"minKernel": "four"}}]}"#;
        assert!(matches!(
            to_oci(kernel, &[], &amd64()),
            Err(ProfileError::KernelVersion(_))
        ));
        assert!(to_oci("[1]", &[], &amd64()).is_err());
    }

    #[test]
    fn kernel_releases_parse_like_moby() {
        assert_eq!(kernel_version("6.18.44-fc-v1300").unwrap(), (6, 18));
        assert_eq!(kernel_version("3.12-1-amd64").unwrap(), (3, 12));
        assert_eq!(kernel_version("3.12-rc5").unwrap(), (3, 12));
        assert!(kernel_version("x").is_err());
        Target::host().unwrap();
    }
}
