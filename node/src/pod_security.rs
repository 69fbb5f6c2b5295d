//! A container's `securityContext` (over its pod's) as berth run options, as the kubelet
//! and containerd turn it into an OCI spec: privileged, capabilities, seccomp profile (berth
//! applies `RuntimeDefault` unless told `Unconfined`, as `kubelet --seccomp-default` does),
//! `allowPrivilegeEscalation: false` as `no_new_privs`, a read-only root, the user and
//! groups, the pod's namespaced sysctls and `hostPID`/`hostIPC`. Validation
//! ([`berth_kube::security`]) has refused what berth does not support.

use berth_engine::container::{RunOptions, SeccompMode, Security, SecurityError};
use berth_kube::pod::{Container, Pod};

/// Why a container's security context cannot be applied: the kubelet's
/// `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum PodSecurityError {
    /// `runAsNonRoot` with `runAsUser: 0`.
    #[error(
        "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {container})"
    )]
    RunAsUserRoot {
        /// `name_namespace(uid)`.
        pod: String,
        /// The container's name.
        container: String,
    },
    /// A capability, uid or gid that cannot be used.
    #[error("container {container}: {reason}")]
    Invalid {
        /// The container's name.
        container: String,
        /// What is wrong.
        reason: String,
    },
}

/// The kubelet's name for a pod in messages: `name_namespace(uid)`.
pub fn pod_label(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name(),
        m.namespace(),
        m.uid.as_deref().unwrap_or("")
    )
}

fn id(container: &str, what: &str, v: i64) -> Result<u32, PodSecurityError> {
    u32::try_from(v).map_err(|_| PodSecurityError::Invalid {
        container: container.to_string(),
        reason: format!("{what} {v} is out of range"),
    })
}

/// Sets the security, user and group fields of `opts` for container `c` of `pod`.
pub fn apply(pod: &Pod, c: &Container, opts: &mut RunOptions) -> Result<(), PodSecurityError> {
    let psc = pod.spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let name = c.name.as_str();
    let run_as_user = sc.run_as_user.or(psc.run_as_user);
    let run_as_group = sc.run_as_group.or(psc.run_as_group);
    let non_root = sc.run_as_non_root.or(psc.run_as_non_root) == Some(true);
    if non_root && run_as_user == Some(0) {
        return Err(PodSecurityError::RunAsUserRoot {
            pod: pod_label(pod),
            container: name.to_string(),
        });
    }
    if let Some(uid) = run_as_user {
        opts.user = Some(id(name, "runAsUser", uid)?.to_string());
    }
    opts.group = run_as_group
        .map(|g| id(name, "runAsGroup", g))
        .transpose()?;
    opts.run_as_non_root = non_root;
    for g in psc.supplemental_groups.iter().chain(psc.fs_group.as_ref()) {
        opts.supplementary_groups
            .push(id(name, "supplementalGroups", *g)?);
    }
    let caps = sc.capabilities.unwrap_or_default();
    let mut security = Security {
        privileged: sc.privileged == Some(true),
        no_new_privileges: sc.allow_privilege_escalation == Some(false),
        read_only: sc.read_only_root_filesystem == Some(true),
        host_pid: pod.spec.host_pid == Some(true),
        host_ipc: pod.spec.host_ipc == Some(true),
        sysctls: psc
            .sysctls
            .iter()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect(),
        ..Security::default()
    };
    security
        .set_capabilities(&caps.add, &caps.drop)
        .map_err(|e: SecurityError| PodSecurityError::Invalid {
            container: name.to_string(),
            reason: e.to_string(),
        })?;
    let profile = sc.seccomp_profile.or(psc.seccomp_profile);
    security.seccomp = match profile.as_ref().map(|p| p.type_.as_str()) {
        Some("Unconfined") => SeccompMode::Unconfined,
        _ => SeccompMode::Default,
    };
    opts.security = security;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml_json: &str) -> Pod {
        serde_json::from_str(yaml_json).unwrap()
    }

    #[test]
    fn container_fields_win_over_the_pods() {
        let p = pod(
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
                "spec": {"hostPID": true,
                  "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000],
                                      "fsGroup": 2000, "seccompProfile": {"type": "Unconfined"},
                                      "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
                  "containers": [
                    {"name": "a", "image": "busybox",
                     "securityContext": {"runAsUser": 1001, "allowPrivilegeEscalation": false,
                       "readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                       "seccompProfile": {"type": "RuntimeDefault"}}},
                    {"name": "b", "image": "busybox", "securityContext": {"privileged": true}}]}}"#,
        );
        let mut a = RunOptions::default();
        apply(&p, &p.spec.containers[0], &mut a).unwrap();
        assert_eq!(a.user.as_deref(), Some("1001"));
        assert_eq!(a.group, Some(3000));
        assert_eq!(a.supplementary_groups, vec![4000, 2000]);
        assert!(a.security.no_new_privileges && a.security.read_only && a.security.host_pid);
        assert_eq!(a.security.capabilities(), vec!["CAP_NET_ADMIN".to_string()]);
        assert_eq!(a.security.seccomp, SeccompMode::Default);
        assert_eq!(
            a.security
                .sysctls
                .get("net.ipv4.ip_unprivileged_port_start")
                .map(String::as_str),
            Some("0")
        );
        let mut b = RunOptions::default();
        apply(&p, &p.spec.containers[1], &mut b).unwrap();
        assert!(b.security.privileged);
        assert_eq!(b.security.seccomp, SeccompMode::Unconfined);
        assert_eq!(b.user.as_deref(), Some("1000"));
    }

    #[test]
    fn run_as_non_root_with_uid_0_is_refused_as_the_kubelet_does() {
        let p = pod(
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
                "spec": {"securityContext": {"runAsNonRoot": true},
                  "containers": [{"name": "a", "image": "busybox", "securityContext": {"runAsUser": 0}},
                                 {"name": "b", "image": "busybox"}]}}"#,
        );
        let err = apply(&p, &p.spec.containers[0], &mut RunOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "container's runAsUser breaks non-root policy (pod: \"p_ns(u1)\", container: a)"
        );
        let mut b = RunOptions::default();
        apply(&p, &p.spec.containers[1], &mut b).unwrap();
        assert!(b.run_as_non_root);
        assert_eq!(b.user, None);
    }
}
