//! The json-file log as the monitor writes it, as root: `--log-opt max-size/max-file` rotate
//! it into `<id>-json.log.1`, `.2` as Docker's driver does, `logs` (and `logs -f` while it
//! rotates) reads across the files, `logs -t` prefixes timestamps and `--since` filters.
//! Each test has its own store and private network, and removes its containers (Drop guard).

mod run_support;

use std::time::Duration;

use berth_tests::run_ok;
use run_support::{stderr, stdout, wait_until, Fixture};

#[test]
fn rotation_keeps_max_file_and_logs_reads_across_them() {
    let mut f = Fixture::new();
    let name = f.name("rotate-1");
    let out = run_ok(f.berth().args([
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; i=1; while [ $i -le 400 ]; do echo line-$i; [ $((i % 10)) = 0 ] && sleep 0.05; i=$((i+1)); done",
    ]));
    let id = stdout(&out).trim().to_string();
    let follow = f.berth().args(["logs", "-f", &name]).output().unwrap();
    assert!(follow.status.success(), "{}", stderr(&follow));
    wait_until("the exit", Duration::from_secs(10), || {
        f.state(&id)["status"] == "exited"
    });
    let dir = f.containers_dir().join(&id);
    let log = dir.join(format!("{id}-json.log"));
    let rotated = |n: u32| dir.join(format!("{id}-json.log.{n}"));
    assert!(
        rotated(1).exists() && rotated(2).exists(),
        "no rotated files"
    );
    assert!(!rotated(3).exists(), "more than max-file files");
    for p in [log.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= 2048, "{} is {len} bytes", p.display());
    }
    // logs reads the three files in order: a run of consecutive lines ending with the last.
    let text = stdout(&run_ok(f.berth().args(["logs", &name])));
    let numbers: Vec<u32> = text
        .lines()
        .map(|l| l.strip_prefix("line-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers.last(), Some(&400));
    assert!(
        numbers.len() > 50 && numbers.len() < 400,
        "{}",
        numbers.len()
    );
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    let in_current = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(numbers.len() > in_current, "only the current file was read");
    // logs -f, started before most lines were written, saw every one despite rotation.
    let followed: Vec<&str> = std::str::from_utf8(&follow.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        followed.len(),
        400,
        "{:?}",
        &followed[..followed.len().min(5)]
    );
    assert_eq!(followed[399], "line-400");
}

#[test]
fn timestamps_since_and_bad_options() {
    let mut f = Fixture::new();
    let name = f.name("logs-t-1");
    let out = f
        .berth()
        .args([
            "run",
            "--name",
            &name,
            "--network",
            "none",
            "busybox",
            "echo",
            "stamped",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let t = stdout(&run_ok(f.berth().args(["logs", "-t", &name])));
    let (time, text) = t.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "stamped");
    assert!(
        time.len() == 30 && time.ends_with('Z') && time.contains('T'),
        "{time}"
    );
    let recent = stdout(&run_ok(f.berth().args(["logs", "--since", "1h", &name])));
    assert_eq!(recent, "stamped\n");
    let future = stdout(&run_ok(f.berth().args([
        "logs",
        "--since",
        "2099-01-01T00:00:00Z",
        &name,
    ])));
    assert_eq!(future, "");
    let bad = f
        .berth()
        .args(["logs", "--since", "yesterday", &name])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    for opt in ["max-size=lots", "max-file=0", "mode=fast"] {
        let out = f
            .berth()
            .args(["run", "--rm", "--log-opt", opt, "busybox", "true"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{opt}");
        assert!(
            stderr(&out).contains("--log-opt"),
            "{opt}: {}",
            stderr(&out)
        );
    }
    let listed = f.container_dirs();
    assert_eq!(listed.len(), 1, "{listed:?}");
}
