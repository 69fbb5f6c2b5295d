//! `securityContext` of a Pod and of its containers, typed, and which of its fields berth
//! honours. Every field Kubernetes defines is known here: the ones berth acts on
//! (privileges, capabilities, user and groups, read-only root, no-new-privileges, seccomp,
//! namespaced sysctls) and the ones it cannot (SELinux, AppArmor, Windows options, an
//! unmasked /proc, a Localhost seccomp profile), which validation refuses with their path
//! rather than dropping them.

use serde::{Deserialize, Serialize};

use super::field::{child, index, FieldError};

type Raw = serde_json::Value;

/// `spec.securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSecurityContext {
    /// uid of every container's process unless the container sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Primary gid, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Refuse to start a container whose process would run as uid 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Extra gids of every container's process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<i64>,
    /// `Merge` (the default: the image's groups too) or `Strict` (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplemental_groups_policy: Option<String>,
    /// A gid every container's process gets, and that owns the pod's writable volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<i64>,
    /// `OnRootMismatch` or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group_change_policy: Option<String>,
    /// Namespaced sysctls set for the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<Sysctl>,
    /// The seccomp profile of every container unless it sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
    /// SELinux labels (not supported).
    #[serde(
        rename = "seLinuxOptions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub se_linux_options: Option<Raw>,
    /// SELinux relabelling policy (not supported).
    #[serde(
        rename = "seLinuxChangePolicy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub se_linux_change_policy: Option<String>,
    /// AppArmor profile (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_armor_profile: Option<Raw>,
    /// Windows options (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_options: Option<Raw>,
}

/// A container's `securityContext` (its fields win over the pod's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityContext {
    /// Every capability and device, no seccomp filter (`docker run --privileged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Capabilities added to and dropped from the default set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// uid of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Primary gid of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Refuse to start if the process would run as uid 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    /// Mount the root filesystem read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// `false` sets `no_new_privs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    /// `Default` (masked /proc paths) or `Unmasked` (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_mount: Option<String>,
    /// The seccomp profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
    /// SELinux labels (not supported).
    #[serde(
        rename = "seLinuxOptions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub se_linux_options: Option<Raw>,
    /// AppArmor profile (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_armor_profile: Option<Raw>,
    /// Windows options (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_options: Option<Raw>,
}

/// `capabilities`: names without `CAP_` (`NET_ADMIN`), or `ALL`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// `seccompProfile`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    /// `RuntimeDefault`, `Unconfined` or `Localhost` (not supported).
    #[serde(rename = "type")]
    pub type_: String,
    /// The profile's path under the kubelet's seccomp directory (Localhost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

/// One `sysctls` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sysctl {
    /// e.g. `net.ipv4.ip_unprivileged_port_start`.
    pub name: String,
    /// The value written.
    pub value: String,
}

/// The sysctl prefixes that are namespaced (per pod), as the kubelet allows them.
const NAMESPACED_SYSCTLS: [&str; 5] = [
    "kernel.shm",
    "kernel.msg",
    "kernel.sem",
    "fs.mqueue.",
    "net.",
];

fn unsupported(path: String, what: &str) -> FieldError {
    FieldError {
        path,
        message: format!("Unsupported value: {what}"),
    }
}

fn seccomp_errors(path: &str, p: &SeccompProfile, out: &mut Vec<FieldError>) {
    match p.type_.as_str() {
        "RuntimeDefault" | "Unconfined" => {}
        "Localhost" => out.push(unsupported(
            child(path, "type"),
            &format!(
                "\"Localhost\" (profile {:?}): berth has no seccomp profile directory; supported values: \"RuntimeDefault\", \"Unconfined\"",
                p.localhost_profile.as_deref().unwrap_or("")
            ),
        )),
        other => out.push(FieldError::unsupported(
            child(path, "type"),
            other,
            &["RuntimeDefault", "Unconfined", "Localhost"],
        )),
    }
}

/// The refusals of a pod's `securityContext` (at `path`), given its host namespaces.
pub fn pod_errors(
    path: &str,
    sc: &PodSecurityContext,
    host_network: bool,
    host_ipc: bool,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    if sc.se_linux_options.is_some() || sc.se_linux_change_policy.is_some() {
        let field = if sc.se_linux_options.is_some() {
            "seLinuxOptions"
        } else {
            "seLinuxChangePolicy"
        };
        out.push(unsupported(
            child(path, field),
            "berth does not support SELinux",
        ));
    }
    if sc.app_armor_profile.is_some() {
        out.push(unsupported(
            child(path, "appArmorProfile"),
            "berth does not support AppArmor",
        ));
    }
    if sc.windows_options.is_some() {
        out.push(unsupported(
            child(path, "windowsOptions"),
            "this node runs Linux",
        ));
    }
    if let Some(policy) = sc.supplemental_groups_policy.as_deref() {
        if policy != "Merge" {
            out.push(FieldError::unsupported(
                child(path, "supplementalGroupsPolicy"),
                policy,
                &["Merge"],
            ));
        }
    }
    if let Some(policy) = sc.fs_group_change_policy.as_deref() {
        if !matches!(policy, "Always" | "OnRootMismatch") {
            out.push(FieldError::unsupported(
                child(path, "fsGroupChangePolicy"),
                policy,
                &["Always", "OnRootMismatch"],
            ));
        }
    }
    for (i, s) in sc.sysctls.iter().enumerate() {
        let p = child(&index(&child(path, "sysctls"), i), "name");
        let namespaced = NAMESPACED_SYSCTLS.iter().any(|n| s.name.starts_with(n));
        let ipc = !s.name.starts_with("net.");
        if !namespaced {
            out.push(FieldError::forbidden(
                p,
                &format!(
                    "sysctl {:?} is not namespaced: it would change the host",
                    s.name
                ),
            ));
        } else if (host_network && !ipc) || (host_ipc && ipc) {
            out.push(FieldError::forbidden(
                p,
                &format!(
                    "sysctl {:?} cannot be set in a pod that shares the host's {} namespace",
                    s.name,
                    if ipc { "IPC" } else { "network" }
                ),
            ));
        }
    }
    if let Some(p) = &sc.seccomp_profile {
        seccomp_errors(&child(path, "seccompProfile"), p, &mut out);
    }
    out
}

/// The refusals of a container's `securityContext` (at `path`).
pub fn container_errors(path: &str, sc: &SecurityContext) -> Vec<FieldError> {
    let mut out = Vec::new();
    if sc.se_linux_options.is_some() {
        out.push(unsupported(
            child(path, "seLinuxOptions"),
            "berth does not support SELinux",
        ));
    }
    if sc.app_armor_profile.is_some() {
        out.push(unsupported(
            child(path, "appArmorProfile"),
            "berth does not support AppArmor",
        ));
    }
    if sc.windows_options.is_some() {
        out.push(unsupported(
            child(path, "windowsOptions"),
            "this node runs Linux",
        ));
    }
    if let Some(mount) = sc.proc_mount.as_deref().filter(|m| *m != "Default") {
        out.push(FieldError::unsupported(
            child(path, "procMount"),
            mount,
            &["Default"],
        ));
    }
    if let Some(p) = &sc.seccomp_profile {
        seccomp_errors(&child(path, "seccompProfile"), p, &mut out);
    }
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            out.push(FieldError::invalid(
                child(path, "allowPrivilegeEscalation"),
                false,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds_admin = sc.capabilities.as_ref().is_some_and(|c| {
            c.add.iter().any(|a| {
                a.eq_ignore_ascii_case("SYS_ADMIN") || a.eq_ignore_ascii_case("CAP_SYS_ADMIN")
            })
        });
        if adds_admin {
            out.push(FieldError::invalid(
                child(path, "allowPrivilegeEscalation"),
                false,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            ));
        }
    }
    if let Some(caps) = &sc.capabilities {
        for (field, list) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (i, name) in list.iter().enumerate() {
                if !known_capability(name) {
                    out.push(FieldError::invalid(
                        index(&child(&child(path, "capabilities"), field), i),
                        name,
                        "unknown capability",
                    ));
                }
            }
        }
    }
    out
}

/// Whether `name` (any case, with or without `CAP_`, or `ALL`) is a capability the kernel
/// knows, as the runtime will accept it.
fn known_capability(name: &str) -> bool {
    let upper = name.trim().to_ascii_uppercase();
    upper == "ALL"
        || upper.parse::<caps::Capability>().is_ok()
        || format!("CAP_{upper}").parse::<caps::Capability>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_fields_are_refused_with_their_path() {
        let sc: SecurityContext = serde_json::from_str(
            r#"{"seLinuxOptions": {"level": "s0:c1"}, "procMount": "Unmasked",
                "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"},
                "capabilities": {"add": ["NET_ADMIN", "FLY"]}}"#,
        )
        .unwrap();
        let errs: Vec<String> = container_errors("spec.containers[0].securityContext", &sc)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errs.iter().any(|e| e.starts_with(
                "spec.containers[0].securityContext.seLinuxOptions: Unsupported value"
            )),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with(
                "spec.containers[0].securityContext.procMount: Unsupported value: \"Unmasked\""
            )),
            "{errs:?}"
        );
        assert!(errs
            .iter()
            .any(|e| e.contains("seccompProfile.type") && e.contains("p.json")));
        assert!(
            errs.iter().any(|e| e.contains("capabilities.add[1]")),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        let ok: SecurityContext = serde_json::from_str(
            r#"{"privileged": false, "allowPrivilegeEscalation": false, "runAsUser": 1000,
                "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}, "procMount": "Default"}"#,
        )
        .unwrap();
        assert!(container_errors("c", &ok).is_empty());
        let escalate: SecurityContext =
            serde_json::from_str(r#"{"privileged": true, "allowPrivilegeEscalation": false}"#)
                .unwrap();
        assert_eq!(container_errors("c", &escalate).len(), 1);
        assert!(serde_json::from_str::<SecurityContext>(r#"{"runAsUsr": 1}"#).is_err());
    }

    #[test]
    fn pod_sysctls_must_be_namespaced_and_fit_the_host_namespaces() {
        let sc: PodSecurityContext = serde_json::from_str(
            r#"{"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"},
                            {"name": "vm.swappiness", "value": "1"},
                            {"name": "kernel.shm_rmid_forced", "value": "1"}],
                "fsGroup": 2000, "windowsOptions": {}}"#,
        )
        .unwrap();
        let errs = pod_errors("spec.securityContext", &sc, false, false);
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{text:?}");
        assert!(text[0].starts_with("spec.securityContext.windowsOptions: Unsupported value"));
        assert!(text[1].starts_with("spec.securityContext.sysctls[1].name: Forbidden"));
        let host = pod_errors("spec.securityContext", &sc, true, true);
        assert_eq!(host.len(), 4);
    }
}
