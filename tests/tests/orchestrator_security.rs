//! Pod `securityContext` and host namespaces on the node daemon: the pod's user, groups,
//! fsGroup and sysctls, and each container's privileged, capabilities, no-new-privileges,
//! read-only root and seccomp profile (RuntimeDefault unless Unconfined) take effect in the
//! processes; `runAsNonRoot` with a root image is refused with the kubelet's reason and
//! message; `hostNetwork`, `hostPID` and `hostIPC` share the host's namespaces; a field berth
//! cannot honour is refused at apply with its path.

mod orchestrator_support;

use std::time::Duration;

use berth_engine::container::Containers;
use berth_node::worker::{LABEL_CONTAINER, LABEL_NAME};
use orchestrator_support::{stderr, stdout, wait_for, Cluster};
use serde_json::Value;

const PROBE: &str = "id; grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status; \
    stat -c 'data-group=%g' /data; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; \
    touch /rootfs-write 2>/dev/null && echo ROOT-WRITABLE || echo ROOT-READ-ONLY; \
    echo DONE; sleep 3600";

const SECURE: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: secure
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    supplementalGroups: [4000]
    fsGroup: 2000
    sysctls:
    - name: net.ipv4.ip_unprivileged_port_start
      value: "100"
  volumes:
  - name: data
    emptyDir: {}
  containers:
  - name: plain
    image: busybox
    command: ["sh", "-c", "PROBE"]
    volumeMounts:
    - {name: data, mountPath: /data}
  - name: locked
    image: busybox
    command: ["sh", "-c", "PROBE"]
    volumeMounts:
    - {name: data, mountPath: /data}
    securityContext:
      runAsUser: 0
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: ["ALL"], add: ["NET_BIND_SERVICE"]}
      seccompProfile: {type: RuntimeDefault}
  - name: priv
    image: busybox
    command: ["sh", "-c", "PROBE"]
    volumeMounts:
    - {name: data, mountPath: /data}
    securityContext:
      runAsUser: 0
      privileged: true
  - name: unconfined
    image: busybox
    command: ["sh", "-c", "PROBE"]
    volumeMounts:
    - {name: data, mountPath: /data}
    securityContext:
      seccompProfile: {type: Unconfined}
---
apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext:
    runAsNonRoot: true
  containers:
  - name: app
    image: busybox
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: hostns
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "for n in net pid ipc; do readlink /proc/self/ns/$n; done; echo DONE; sleep 3600"]
"#;

/// The log of container `container` of Pod `pod`, once it printed `DONE`.
fn output(c: &Cluster, pod: &str, container: &str) -> String {
    let containers = Containers::new(c.root.store());
    wait_for(
        Duration::from_secs(60),
        &format!("{pod}/{container} output"),
        || {
            let (config, _) = containers.list().ok()?.into_iter().find(|(cfg, _)| {
                cfg.labels.get(LABEL_NAME).map(String::as_str) == Some(pod)
                    && cfg.labels.get(LABEL_CONTAINER).map(String::as_str) == Some(container)
            })?;
            let out = c.berth().args(["logs", &config.id]).output().ok()?;
            let text = format!("{}{}", stdout(&out), stderr(&out));
            text.contains("DONE").then_some(text)
        },
    )
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .to_string()
}

#[test]
fn security_context_and_host_namespaces_take_effect() {
    let c = Cluster::start();
    refuses_unsupported_fields_with_their_path(&c);
    c.apply("secure.yaml", &SECURE.replace("PROBE", PROBE));

    let plain = output(&c, "secure", "plain");
    assert!(
        plain.contains("uid=1000 gid=3000") && plain.contains("2000") && plain.contains("4000"),
        "{plain}"
    );
    // RuntimeDefault unless told otherwise; a non-root process has no effective capability.
    assert_eq!(field(&plain, "Seccomp"), "2", "{plain}");
    assert_eq!(field(&plain, "CapEff"), "0000000000000000", "{plain}");
    assert!(plain.contains("data-group=2000"), "{plain}");
    assert!(plain.lines().any(|l| l.trim() == "100"), "sysctl: {plain}");
    assert!(plain.contains("ROOT-WRITABLE") || plain.contains("ROOT-READ-ONLY"));

    let locked = output(&c, "secure", "locked");
    assert!(locked.contains("uid=0(root) gid=3000"), "{locked}");
    assert_eq!(field(&locked, "NoNewPrivs"), "1", "{locked}");
    assert_eq!(field(&locked, "Seccomp"), "2", "{locked}");
    // Only CAP_NET_BIND_SERVICE (bit 10).
    assert_eq!(field(&locked, "CapBnd"), "0000000000000400", "{locked}");
    assert!(locked.contains("ROOT-READ-ONLY"), "{locked}");

    let privileged = output(&c, "secure", "priv");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(field(&privileged, "Seccomp"), "0", "{privileged}");
    assert_eq!(
        field(&privileged, "CapEff"),
        field(&host, "CapBnd"),
        "{privileged}"
    );

    let unconfined = output(&c, "secure", "unconfined");
    assert_eq!(field(&unconfined, "Seccomp"), "0", "{unconfined}");

    // runAsNonRoot with an image that runs as root: the kubelet's reason and message.
    let waiting = wait_for(Duration::from_secs(60), "nonroot refused", || {
        let pod: Value = c.get(&["pod", "nonroot"])?;
        let w = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerConfigError").then_some(w)
    });
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default("
        ) && message.ends_with("container: app)"),
        "{message}"
    );

    let hostns = output(&c, "hostns", "app");
    for ns in ["net", "pid", "ipc"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        assert!(
            hostns.contains(&*mine.to_string_lossy()),
            "{ns}: {hostns} vs {}",
            mine.display()
        );
    }
    let pod = c.get(&["pod", "hostns"]).unwrap();
    assert_eq!(pod["status"]["podIP"], pod["status"]["hostIP"], "{pod}");
}

/// A field berth cannot honour is refused at apply, with its path, and nothing is stored.
fn refuses_unsupported_fields_with_their_path(c: &Cluster) {
    let yaml = "apiVersion: v1
kind: Pod
metadata:
  name: selinux
spec:
  containers:
  - name: app
    image: busybox
    command: [\"true\"]
    securityContext:
      seLinuxOptions:
        level: \"s0:c123,c456\"
";
    let path = c.manifest("selinux.yaml", yaml);
    let out = c
        .berth()
        .arg("apply")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "seLinuxOptions was accepted");
    let err = stderr(&out);
    assert!(
        err.contains("spec.containers[0].securityContext.seLinuxOptions: Unsupported value"),
        "{err}"
    );
    assert!(c.get(&["pod", "selinux"]).is_none(), "the Pod was stored");
}
