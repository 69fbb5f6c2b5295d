//! `berth run` resource limits and environment files end to end, as root: `--memory`,
//! `--cpus` and `--pids-limit` read back from the container's cgroup files (v1 here:
//! memory.limit_in_bytes, cpu.cfs_quota_us / cpu.cfs_period_us, pids.max; the v2 names on a
//! v2 host), `--env-file` in Docker's format combined with `-e` in Docker's order, and bad
//! values refused before anything is made.

mod run_support;

use std::path::{Path, PathBuf};

use berth_tests::run_ok;
use run_support::{stderr, stdout, Fixture};

/// The cgroup v1 hierarchy mounted for `controller`, or `None` on a v2-only host.
fn v1_dir(controller: &str) -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts.lines().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(sep + 1) == Some(&"cgroup")
            && fields
                .get(sep + 3)
                .is_some_and(|o| o.split(',').any(|x| x == controller)))
        .then(|| PathBuf::from(fields[4]))
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_reach_the_cgroup() {
    let mut f = Fixture::new();
    let name = f.name("limited");
    let parent = f.root.private_network().unwrap().cgroup_parent();
    let out = run_ok(f.berth().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "60",
    ]));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "{id:?}");
    let cg = |controller: &str| -> PathBuf {
        match v1_dir(controller) {
            Some(root) => root.join(&parent).join(&id),
            None => Path::new("/sys/fs/cgroup").join(&parent).join(&id),
        }
    };
    if v1_dir("memory").is_some() {
        assert_eq!(
            read(&cg("memory").join("memory.limit_in_bytes")),
            "67108864"
        );
        // Docker's default: as much swap again.
        let memsw = cg("memory").join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read(&memsw), "134217728");
        }
        assert_eq!(read(&cg("cpu").join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cg("cpu").join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&cg("pids").join("pids.max")), "50");
    } else {
        assert_eq!(read(&cg("").join("memory.max")), "67108864");
        assert_eq!(read(&cg("").join("cpu.max")), "50000 100000");
        assert_eq!(read(&cg("").join("pids.max")), "50");
    }
    run_ok(f.berth().args(["rm", "-f", &name]));

    // Without limits the cgroup has none.
    let name = f.name("unlimited");
    let out = run_ok(f.berth().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]));
    let id = stdout(&out).trim().to_string();
    if let Some(pids) = v1_dir("pids") {
        assert_eq!(read(&pids.join(&parent).join(&id).join("pids.max")), "max");
        let cpu = v1_dir("cpu").unwrap();
        assert_eq!(
            read(&cpu.join(&parent).join(&id).join("cpu.cfs_quota_us")),
            "-1"
        );
    }
    run_ok(f.berth().args(["rm", "-f", &name]));
}

#[test]
fn pids_limit_is_enforced() {
    let f = Fixture::new();
    // With 5 processes allowed, forking 20 sleepers must fail somewhere.
    let out = f
        .berth()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--pids-limit",
            "5",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 5 & done; \
             echo spawned",
        ])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("Resource temporarily unavailable")
            || stderr(&out).contains("can't fork"),
        "stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn env_file_then_e_in_dockers_order() {
    let f = Fixture::new();
    let file = f.root.path("app.env");
    std::fs::write(
        &file,
        "# settings\n\nA=from-file\nB=file-b\n  SPACED= keep  this \nFROM_BERTH\nNOT_SET_ANYWHERE\n",
    )
    .unwrap();
    let second = f.root.path("second.env");
    std::fs::write(&second, "B=second-file\nC=c\n").unwrap();
    let out = run_ok(
        f.berth()
            .env("FROM_BERTH", "berth-value")
            .env_remove("NOT_SET_ANYWHERE")
            .arg("run")
            .args(["--rm", "--network", "none", "--env-file"])
            .arg(&file)
            .arg("--env-file")
            .arg(&second)
            .args(["-e", "C=from-e", "busybox", "env"]),
    );
    let env = stdout(&out);
    let has = |kv: &str| env.lines().any(|l| l == kv);
    assert!(has("A=from-file"), "{env}");
    assert!(has("B=second-file"), "{env}");
    assert!(has("C=from-e"), "{env}");
    assert!(has("SPACED= keep  this "), "{env}");
    assert!(has("FROM_BERTH=berth-value"), "{env}");
    assert!(!env.contains("NOT_SET_ANYWHERE"), "{env}");
    assert!(!env.contains("settings"), "{env}");
}

#[test]
fn bad_limits_and_env_files_create_nothing() {
    let f = Fixture::new();
    let bad_env = f.root.path("bad.env");
    std::fs::write(&bad_env, "GOOD=1\n# fine\nBAD NAME=x\n").unwrap();
    let bad_env = bad_env.display().to_string();
    let missing = f.root.path("missing.env").display().to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--memory", "lots"], "invalid --memory \"lots\"".into()),
        (vec!["--memory", "1k"], "minimum memory limit is 6MB".into()),
        (vec!["--memory", "-5m"], "invalid --memory".into()),
        (vec!["--memory-swap", "1g"], "set --memory too".into()),
        (
            vec!["--memory", "64m", "--memory-swap", "32m"],
            "must not be below --memory".into(),
        ),
        (vec!["--memory-swap", "1g"], "set --memory too".into()),
        (
            vec!["--memory", "64m", "--memory-swap", "32m"],
            "must not be below --memory".into(),
        ),
        (vec!["--cpus", "zero"], "invalid --cpus \"zero\"".into()),
        (vec!["--cpus", "0"], "invalid --cpus".into()),
        (vec!["--cpus", "1000"], "range of CPUs".into()),
        (
            vec!["--env-file", &bad_env],
            format!("env file {bad_env}: line 3"),
        ),
        (vec!["--env-file", &missing], format!("env file {missing}")),
    ];
    for (flags, want) in cases {
        let out = f
            .berth()
            .args(["run", "--name", "nope", "--network", "none"])
            .args(&flags)
            .args(["busybox", "true"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(
            stderr(&out).contains(&want),
            "{flags:?}: expected {want:?} in {}",
            stderr(&out)
        );
        assert!(f.container_dirs().is_empty(), "{flags:?}");
        assert!(!f.root.store().join("names/nope").exists(), "{flags:?}");
    }
}
