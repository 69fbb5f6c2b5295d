//! Volumes and environment on the node daemon: a ConfigMap mounted as a volume follows the
//! object (the new content reaches the mounted file), env comes from `value` with `$(VAR)`
//! expansion, `configMapKeyRef`, `secretKeyRef` and `envFrom`, an emptyDir is shared by the
//! pod's containers, a PersistentVolumeClaim binds to a hostPath PersistentVolume, and the
//! pod's volume directory goes with the pod.

mod orchestrator_support;

use std::time::Duration;

use orchestrator_support::{curl, is_ready, wait_for, Cluster};

#[test]
fn config_map_updates_reach_the_mounted_file_and_env_is_kubernetes_shaped() {
    let c = Cluster::start();
    let pv_dir = c.root.path("pv");
    let manifest = |greeting: &str| {
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata:
  name: site
data:
  greeting.txt: {greeting}
  MODE: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: data
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  hostPath:
    path: {pv}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 100Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: vols
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: kubetm/hello
    command: [sh, -c]
    args:
    - echo \"$(GREETING_ARG)|$NAME|$MODE|$PASSWORD|$CFG_MODE\" > /www/env.txt; echo persisted > /data/file; httpd -f -p 8000 -h /www
    env:
    - name: FIRST
      value: one
    - name: NAME
      value: $(FIRST)-two
    - name: GREETING_ARG
      value: expanded
    - name: MODE
      valueFrom:
        configMapKeyRef:
          name: site
          key: MODE
    - name: PASSWORD
      valueFrom:
        secretKeyRef:
          name: creds
          key: password
    - name: MISSING
      valueFrom:
        configMapKeyRef:
          name: nope
          key: x
          optional: true
    envFrom:
    - configMapRef:
        name: site
      prefix: CFG_
    volumeMounts:
    - name: config
      mountPath: /www/config
    - name: shared
      mountPath: /shared
    - name: data
      mountPath: /data
  - name: writer
    image: busybox
    command: [sh, -c, 'echo shared-by-writer > /shared/from-writer; sleep 3600']
    volumeMounts:
    - name: shared
      mountPath: /shared
  volumes:
  - name: config
    configMap:
      name: site
  - name: shared
    emptyDir: {{}}
  - name: data
    persistentVolumeClaim:
      claimName: data
",
            pv = pv_dir.display()
        )
    };
    c.apply("vols.yaml", &manifest("first"));
    let pod = wait_for(Duration::from_secs(90), "the pod to be ready", || {
        c.get(&["pod", "vols"]).filter(is_ready)
    });
    let ip = pod["status"]["podIP"].as_str().unwrap().to_string();
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let get = |path: &str| curl(&format!("http://{ip}:8000/{path}"));

    let first = wait_for(Duration::from_secs(20), "the config file", || {
        get("config/greeting.txt")
    });
    assert_eq!(first, "first");
    let env = wait_for(Duration::from_secs(20), "the env file", || get("env.txt"));
    assert_eq!(env.trim(), "expanded|one-two|fast|s3cret|fast");
    let claim = c.get(&["pvc", "data"]).unwrap();
    assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
    assert_eq!(claim["spec"]["volumeName"], "data");
    assert_eq!(
        std::fs::read_to_string(pv_dir.join("file")).unwrap().trim(),
        "persisted",
        "the claim's hostPath volume is mounted"
    );

    c.apply("vols.yaml", &manifest("second"));
    wait_for(
        Duration::from_secs(30),
        "the new config content in the pod",
        || (get("config/greeting.txt").as_deref() == Some("second")).then_some(()),
    );
    let pod_dir = c.root.store().join("daemon/pods").join(&uid);
    assert!(pod_dir
        .join("volumes/kubernetes.io~empty-dir/shared")
        .is_dir());
    assert_eq!(
        std::fs::read_to_string(pod_dir.join("volumes/kubernetes.io~empty-dir/shared/from-writer"))
            .unwrap()
            .trim(),
        "shared-by-writer"
    );

    let out = c.berth().args(["delete", "pod", "vols"]).output().unwrap();
    assert!(out.status.success());
    wait_for(Duration::from_secs(30), "the pod's volumes to go", || {
        (!pod_dir.exists() && c.berth_pods().is_empty()).then_some(())
    });
    assert!(
        pv_dir.join("file").exists(),
        "persistent data survives the pod"
    );
}
