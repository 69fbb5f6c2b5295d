//! Unit tests on fake cgroupfs trees (plain directories laid out as the kernel does).

use std::fs;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use super::*;

fn put(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn get(path: &Path) -> String {
    fs::read_to_string(path).unwrap().trim().to_owned()
}

/// A v1 host: separate cpu and cpuacct, a comounted net_cls,net_prio, a hybrid
/// `unified` mount and a directory that is no cgroup mount at all.
fn fake_v1() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for c in [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "pids",
        "freezer",
        "devices",
        "blkio",
        "systemd",
        "unified",
        "net_cls,net_prio",
    ] {
        put(&r.join(c).join("cgroup.procs"), "");
    }
    fs::create_dir_all(r.join("not-a-mount")).unwrap();
    put(&r.join("cpuset/cpuset.cpus"), "0-1\n");
    put(&r.join("cpuset/cpuset.mems"), "0\n");
    root
}

/// Lays out the control files the kernel would show in a new v1 cgroup `inner`.
fn populate_v1(r: &Path, inner: &str) {
    let files: &[(&str, &[&str])] = &[
        (
            "memory",
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.swappiness",
                "memory.oom_control",
            ],
        ),
        ("pids", &["pids.max"]),
        (
            "cpu",
            &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
        ),
        ("freezer", &["freezer.state"]),
        ("devices", &["devices.allow", "devices.deny"]),
        ("blkio", &["blkio.throttle.read_bps_device"]),
    ];
    for ctrl in [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "pids",
        "freezer",
        "devices",
        "blkio",
        "systemd",
        "net_cls,net_prio",
    ] {
        put(&r.join(ctrl).join(inner).join("cgroup.procs"), "");
    }
    for (ctrl, names) in files {
        for name in *names {
            put(&r.join(ctrl).join(inner).join(name), "");
        }
    }
    put(
        &r.join("memory").join(inner).join("memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    // cpuset: every level starts empty.
    let mut dir = r.join("cpuset");
    for part in Path::new(inner).components() {
        dir.push(part);
        put(&dir.join("cpuset.cpus"), "\n");
        put(&dir.join("cpuset.mems"), "\n");
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn v1_is_detected_and_paths_follow_the_cgroups_path() {
    let root = fake_v1();
    let r = root.path();
    let cg = Cgroup::open_in(r, Some("/berth-test/c1"), "c1").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V1);
    assert_eq!(cg.path("memory").unwrap(), r.join("memory/berth-test/c1"));
    assert_eq!(
        cg.path("net_prio").unwrap(),
        r.join("net_cls,net_prio/berth-test/c1")
    );
    assert!(cg.path("hugetlb").is_none());
    // The hybrid v2 mount and unrelated directories are not v1 hierarchies.
    assert!(cg.path("unified").is_none());
    assert!(cg.path("not-a-mount").is_none());

    let names: Vec<String> = cg.hierarchies().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"net_cls,net_prio".to_owned()), "{names:?}");
    assert!(names.contains(&"systemd".to_owned()), "{names:?}");
    assert!(!names.contains(&"unified".to_owned()), "{names:?}");

    let default = Cgroup::open_in(r, None, "abc").unwrap();
    assert_eq!(default.path("pids").unwrap(), r.join("pids/abc"));
}

#[test]
fn v2_is_detected_from_cgroup_controllers() {
    let root = tempfile::tempdir().unwrap();
    put(&root.path().join("cgroup.controllers"), "cpu memory pids\n");
    let cg = Cgroup::open_in(root.path(), Some("berth-test"), "x").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V2);
    assert_eq!(cg.path("memory").unwrap(), root.path().join("berth-test"));
}

#[test]
fn an_empty_root_has_no_hierarchy() {
    let root = tempfile::tempdir().unwrap();
    assert!(matches!(
        Cgroup::open_in(root.path(), None, "x"),
        Err(CgroupError::NoHierarchy(_))
    ));
}

#[test]
fn v1_create_and_apply_writes_limits_and_joins_the_pid() {
    let root = fake_v1();
    let r = root.path();
    populate_v1(r, "berth-test/c1");
    let cg = Cgroup::open_in(r, Some("/berth-test/c1"), "c1").unwrap();
    let res = resources(
        r#"{
        "memory": {"limit": 33554432, "swap": 67108864, "reservation": 1048576, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1"},
        "pids": {"limit": 10},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "devices": [{"allow": false, "access": "rwm"}]
    }"#,
    );
    cg.create_and_apply(Pid::from_raw(4321), Some(&res))
        .unwrap();

    let mem = r.join("memory/berth-test/c1");
    assert_eq!(get(&mem.join("memory.limit_in_bytes")), "33554432");
    assert_eq!(get(&mem.join("memory.memsw.limit_in_bytes")), "67108864");
    assert_eq!(get(&mem.join("memory.soft_limit_in_bytes")), "1048576");
    assert_eq!(get(&mem.join("memory.swappiness")), "10");
    assert_eq!(get(&r.join("pids/berth-test/c1/pids.max")), "10");
    let cpu = r.join("cpu/berth-test/c1");
    assert_eq!(get(&cpu.join("cpu.shares")), "512");
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(get(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(
        get(&r.join("blkio/berth-test/c1/blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    // cpuset: the intermediate level inherits the parent's cpus and mems, the
    // leaf inherits mems and gets the spec's cpus.
    assert_eq!(get(&r.join("cpuset/berth-test/cpuset.cpus")), "0-1");
    assert_eq!(get(&r.join("cpuset/berth-test/cpuset.mems")), "0");
    assert_eq!(get(&r.join("cpuset/berth-test/c1/cpuset.cpus")), "1");
    assert_eq!(get(&r.join("cpuset/berth-test/c1/cpuset.mems")), "0");
    // Devices: the spec's deny-all, then the default allow list, one write per
    // rule through one open file (so the fake file holds them all, in order).
    let devices = r.join("devices/berth-test/c1");
    assert_eq!(get(&devices.join("devices.deny")), "a *:* rwm");
    assert_eq!(
        get(&devices.join("devices.allow")),
        super::v1::DEFAULT_ALLOWED_DEVICES.concat()
    );
    // The pid joined every hierarchy, including named and comounted ones.
    for ctrl in [
        "memory",
        "pids",
        "cpu",
        "cpuacct",
        "cpuset",
        "freezer",
        "systemd",
        "net_cls,net_prio",
    ] {
        assert_eq!(
            get(&r.join(ctrl).join("berth-test/c1/cgroup.procs")),
            "4321",
            "{ctrl}"
        );
    }
    assert!(!r.join("unified/berth-test").exists());
}

#[test]
fn v1_rejects_what_it_cannot_do() {
    let root = fake_v1();
    let r = root.path();
    populate_v1(r, "c1");
    let cg = Cgroup::open_in(r, None, "c1").unwrap();
    let huge = resources(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#);
    let err = cg.update(&huge).unwrap_err();
    assert!(err.to_string().contains("hugetlb"), "{err}");
    let unified = resources(r#"{"unified": {"memory.high": "1"}}"#);
    assert!(matches!(
        cg.update(&unified),
        Err(CgroupError::InvalidResource {
            what: "unified",
            ..
        })
    ));
    let swappy = resources(r#"{"memory": {"swappiness": 101}}"#);
    assert!(cg.update(&swappy).is_err());
    // blkio weight with neither CFQ's nor BFQ's file.
    let weight = resources(r#"{"blockIO": {"weight": 100}}"#);
    let err = cg.update(&weight).unwrap_err();
    assert!(err.to_string().contains("blkio.bfq.weight"), "{err}");
}

#[test]
fn v1_update_changes_the_memory_limit_and_keeps_devices() {
    let root = fake_v1();
    let r = root.path();
    populate_v1(r, "c1");
    let cg = Cgroup::open_in(r, None, "c1").unwrap();
    let update = resources(
        r#"{"memory": {"limit": 1000000}, "pids": {"limit": 0}, "devices": [{"allow": true, "access": "rwm"}]}"#,
    );
    cg.update(&update).unwrap();
    assert_eq!(get(&r.join("memory/c1/memory.limit_in_bytes")), "1000000");
    assert_eq!(get(&r.join("pids/c1/pids.max")), "max");
    assert_eq!(get(&r.join("devices/c1/devices.allow")), "");

    // Unlimited memory without a swap value lifts memsw as well.
    put(
        &r.join("memory/c1/memory.memsw.limit_in_bytes"),
        "2000000\n",
    );
    cg.update(&resources(r#"{"memory": {"limit": -1}}"#))
        .unwrap();
    assert_eq!(get(&r.join("memory/c1/memory.limit_in_bytes")), "-1");
    assert_eq!(get(&r.join("memory/c1/memory.memsw.limit_in_bytes")), "-1");
}

#[test]
fn v1_freezer_and_pids() {
    let root = fake_v1();
    let r = root.path();
    populate_v1(r, "c1");
    let cg = Cgroup::open_in(r, None, "c1").unwrap();
    put(&r.join("freezer/c1/freezer.state"), "THAWED\n");
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    cg.freeze().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Frozen);
    cg.thaw().unwrap();
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);

    put(&r.join("pids/c1/cgroup.procs"), "10\n11\n");
    put(&r.join("pids/c1/sub/cgroup.procs"), "12\n");
    let mut pids: Vec<i32> = cg.pids().unwrap().into_iter().map(|p| p.as_raw()).collect();
    pids.sort();
    assert_eq!(pids, vec![10, 11, 12]);
}

#[test]
fn v1_stats_read_back_the_control_files() {
    let root = fake_v1();
    let r = root.path();
    let cg = Cgroup::open_in(r, None, "c1").unwrap();
    let mem = r.join("memory/c1");
    put(&mem.join("memory.usage_in_bytes"), "4096\n");
    put(&mem.join("memory.max_usage_in_bytes"), "8192\n");
    put(&mem.join("memory.limit_in_bytes"), "33554432\n");
    put(&mem.join("memory.failcnt"), "2\n");
    put(
        &mem.join("memory.stat"),
        "cache 10\nrss 5\ntotal_cache 20\n",
    );
    put(&mem.join("memory.use_hierarchy"), "1\n");
    put(
        &mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    put(&r.join("pids/c1/pids.current"), "2\n");
    put(&r.join("pids/c1/pids.max"), "max\n");
    put(&r.join("cpuacct/c1/cpuacct.usage"), "1000\n");
    put(&r.join("cpuacct/c1/cpuacct.usage_percpu"), "600 400 \n");
    put(&r.join("cpuacct/c1/cpuacct.stat"), "user 1\nsystem 2\n");
    put(
        &r.join("cpu/c1/cpu.stat"),
        "nr_periods 5\nnr_throttled 1\nthrottled_time 7\n",
    );
    put(
        &r.join("blkio/c1/blkio.throttle.io_service_bytes_recursive"),
        "8:0 Read 100\n8:0 Write 50\nTotal 150\n",
    );

    let s = cg.stats().unwrap();
    assert_eq!(s.memory.memory.usage, 4096);
    assert_eq!(s.memory.memory.max_usage, 8192);
    assert_eq!(s.memory.memory.limit, 33554432);
    assert_eq!(s.memory.memory.fail_count, 2);
    assert_eq!(s.memory.cache, 20);
    assert!(s.memory.hierarchy);
    assert_eq!(s.memory.stats["oom_kill"], 3);
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0);
    assert_eq!(s.cpu.usage.usage_total, 1000);
    assert_eq!(s.cpu.usage.per_core_usage_total, vec![600, 400]);
    assert!(s.cpu.usage.usage_kernel > s.cpu.usage.usage_user);
    assert_eq!(s.cpu.throttling.periods, 5);
    assert_eq!(s.cpu.throttling.throttled_time, 7);
    assert_eq!(s.blkio.service_bytes.len(), 2);
    assert_eq!(s.blkio.service_bytes[0].op_type.as_deref(), Some("Read"));
    assert!(serde_json::to_value(&s).is_ok());
}

#[test]
fn removing_a_cgroup_that_does_not_exist_is_fine() {
    let root = fake_v1();
    let cg = Cgroup::open_in(root.path(), None, "gone").unwrap();
    cg.remove().unwrap();
}

fn fake_v2() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    put(&r.join("cgroup.controllers"), "cpuset cpu io memory pids\n");
    put(&r.join("cgroup.subtree_control"), "memory\n");
    let leaf = r.join("berth-test");
    for f in [
        "cgroup.procs",
        "memory.max",
        "memory.swap.max",
        "memory.low",
        "cpu.weight",
        "pids.max",
        "io.weight",
        "io.max",
        "cgroup.freeze",
        "memory.high",
    ] {
        put(&leaf.join(f), "");
    }
    put(&leaf.join("cpu.max"), "max 100000\n");
    put(&leaf.join("cgroup.events"), "populated 1\nfrozen 0\n");
    root
}

#[test]
fn v2_converts_and_writes_limits() {
    let root = fake_v2();
    let r = root.path();
    let cg = Cgroup::open_in(r, Some("/berth-test"), "x").unwrap();
    let res = resources(
        r#"{
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 1024},
        "cpu": {"shares": 1024, "quota": 50000},
        "pids": {"limit": 0},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "unified": {"memory.high": "50000000"}
    }"#,
    );
    cg.create_and_apply(Pid::from_raw(77), Some(&res)).unwrap();
    let leaf = r.join("berth-test");
    assert_eq!(get(&leaf.join("memory.max")), "67108864");
    assert_eq!(get(&leaf.join("memory.swap.max")), "67108864");
    assert_eq!(get(&leaf.join("memory.low")), "1024");
    assert_eq!(get(&leaf.join("cpu.weight")), "39");
    assert_eq!(get(&leaf.join("cpu.max")), "50000 100000");
    assert_eq!(get(&leaf.join("pids.max")), "max");
    assert_eq!(get(&leaf.join("io.weight")), "default 4950");
    assert_eq!(get(&leaf.join("io.max")), "8:0 wiops=100");
    assert_eq!(get(&leaf.join("memory.high")), "50000000");
    assert_eq!(get(&leaf.join("cgroup.procs")), "77");
    // Controllers offered but not yet enabled were enabled one by one (the fake file keeps the last).
    assert_eq!(get(&r.join("cgroup.subtree_control")), "+pids");

    let bad = resources(r#"{"unified": {"../escape": "1"}}"#);
    assert!(cg.update(&bad).is_err());
    let swap_below = resources(r#"{"memory": {"limit": 100, "swap": 50}}"#);
    assert!(cg.update(&swap_below).is_err());
}

#[test]
fn v2_freezer_state() {
    let root = fake_v2();
    let cg = Cgroup::open_in(root.path(), Some("berth-test"), "x").unwrap();
    put(&root.path().join("berth-test/cgroup.freeze"), "0\n");
    assert_eq!(cg.state().unwrap(), FreezerState::Thawed);
    // The fake kernel never reports frozen, so freezing times out and thaws again.
    let err = cg.freeze().unwrap_err();
    assert!(matches!(err, CgroupError::Freeze { .. }), "{err}");
    assert_eq!(get(&root.path().join("berth-test/cgroup.freeze")), "0");
}

#[test]
fn weight_conversions_match_runc() {
    assert_eq!(v2::shares_to_weight(2), 1);
    assert_eq!(v2::shares_to_weight(1024), 39);
    assert_eq!(v2::shares_to_weight(262_144), 10_000);
    assert_eq!(v2::blkio_weight_to_io(10), 1);
    assert_eq!(v2::blkio_weight_to_io(1000), 10_000);
}

#[test]
fn resources_from_a_default_spec_apply_cleanly() {
    let root = fake_v1();
    let r = root.path();
    populate_v1(r, "c1");
    let spec = Spec::default();
    let cg = Cgroup::open_in(r, None, "c1").unwrap();
    let res = spec.linux().as_ref().and_then(|l| l.resources().clone());
    cg.create_and_apply(Pid::from_raw(1), res.as_ref()).unwrap();
}
