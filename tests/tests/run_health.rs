//! Health checks and the image's stop signal, run by the monitor, as root: `--health-cmd`
//! makes a container healthy, then unhealthy after `--health-retries` failures, shown in
//! `ps` and recorded as Docker's `State.Health`; a check that runs too long fails; the image's
//! HEALTHCHECK is used, `--no-healthcheck` turns it off; `stop` sends the image's STOPSIGNAL;
//! the monitor runs `exec` requests (the node's exec probes) with their output and timeout.
//! Each test has its own store and private network, and removes its containers (Drop guard).

mod run_support;

use std::time::{Duration, Instant};

use berth_tests::run_ok;
use run_support::{stdout, wait_until, Fixture};

fn run_d(f: &Fixture, args: &[&str], image_and_cmd: &[&str]) -> String {
    let out = run_ok(
        f.berth()
            .args(["run", "-d", "--network", "none"])
            .args(args)
            .args(image_and_cmd),
    );
    stdout(&out).trim().to_string()
}

fn health_status(f: &Fixture, id: &str) -> String {
    f.state(id)["Health"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn ps_row(f: &Fixture, name: &str) -> String {
    f.ps(false)
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn health_cmd_makes_it_healthy_then_unhealthy() {
    let mut f = Fixture::new();
    let name = f.name("health-1");
    let id = run_d(
        &f,
        &[
            "--name",
            &name,
            "--health-cmd",
            "test -e /tmp/ok && echo fine",
            "--health-interval",
            "300ms",
            "--health-retries",
            "2",
        ],
        &["busybox", "sh", "-c", "exec sleep 1000"],
    );
    assert_eq!(health_status(&f, &id), "starting");
    assert!(
        ps_row(&f, &name).contains("(health: starting)"),
        "{}",
        ps_row(&f, &name)
    );
    // Make the check pass (the rootfs overlay is mounted on the host too).
    let ok = f.containers_dir().join(&id).join("rootfs/tmp/ok");
    std::fs::write(&ok, "").unwrap();
    wait_until("healthy", Duration::from_secs(10), || {
        health_status(&f, &id) == "healthy"
    });
    assert!(
        ps_row(&f, &name).contains("(healthy)"),
        "{}",
        ps_row(&f, &name)
    );
    let health = &f.state(&id)["Health"];
    assert_eq!(health["FailingStreak"], 0);
    let last = health["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(last["Start"].as_str().unwrap().ends_with('Z'));

    // Two failures in a row: unhealthy. At most five results are kept.
    std::fs::remove_file(&ok).unwrap();
    wait_until("unhealthy", Duration::from_secs(10), || {
        health_status(&f, &id) == "unhealthy"
    });
    assert!(
        ps_row(&f, &name).contains("(unhealthy)"),
        "{}",
        ps_row(&f, &name)
    );
    let health = &f.state(&id)["Health"];
    assert!(health["FailingStreak"].as_u64() >= Some(2), "{health}");
    wait_until("five results", Duration::from_secs(10), || {
        f.state(&id)["Health"]["Log"].as_array().map(Vec::len) == Some(5)
    });
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(f.state(&id)["Health"]["Log"].as_array().unwrap().len(), 5);
}

#[test]
fn a_check_that_runs_too_long_fails() {
    let mut f = Fixture::new();
    let name = f.name("health-timeout-1");
    let id = run_d(
        &f,
        &[
            "--name",
            &name,
            "--health-cmd",
            "sleep 10",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
        ],
        &["busybox", "sleep", "1000"],
    );
    let started = Instant::now();
    wait_until("unhealthy", Duration::from_secs(10), || {
        health_status(&f, &id) == "unhealthy"
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    let last = f.state(&id)["Health"]["Log"][0].clone();
    assert_eq!(last["ExitCode"], -1);
    assert!(
        last["Output"]
            .as_str()
            .unwrap()
            .contains("exceeded timeout"),
        "{last}"
    );
}

#[test]
fn image_healthcheck_and_stop_signal() {
    let mut f = Fixture::new();
    let ctx = f.root.path("hc-context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         HEALTHCHECK --interval=300ms --retries=1 CMD test -e /tmp/ok\n\
         STOPSIGNAL SIGUSR1\n\
         CMD [\"sh\", \"-c\", \"trap 'echo got-usr1; exit 0' USR1; touch /tmp/ok; echo ready; while true; do sleep 0.1; done\"]\n",
    )
    .unwrap();
    run_ok(f.berth().args(["build", "-t", "hc:1"]).arg(&ctx));
    let name = f.name("image-hc-1");
    let id = run_d(&f, &["--name", &name], &["hc:1"]);
    wait_until("healthy", Duration::from_secs(10), || {
        health_status(&f, &id) == "healthy"
    });

    // stop sends SIGUSR1 (the image's STOPSIGNAL), which the trap turns into exit 0.
    let started = Instant::now();
    run_ok(f.berth().args(["stop", "-t", "10", &name]));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGKILL was needed"
    );
    assert_eq!(f.state(&id)["exit_code"], 0);
    assert!(stdout(&run_ok(f.berth().args(["logs", &name]))).contains("got-usr1"));

    let off = f.name("image-hc-2");
    let off_id = run_d(&f, &["--name", &off, "--no-healthcheck"], &["hc:1"]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        f.state(&off_id).get("Health").is_none(),
        "{}",
        f.state(&off_id)
    );
    assert!(!ps_row(&f, &off).contains("health"), "{}", ps_row(&f, &off));
}

#[test]
fn the_monitor_runs_exec_requests_with_output_and_timeouts() {
    use berth_engine::container::{exec_probe, ExecProbeError};
    let mut f = Fixture::new();
    let name = f.name("exec-1");
    let id = run_d(
        &f,
        &["--name", &name],
        &["busybox", "sh", "-c", "exec sleep 1000"],
    );
    let argv = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    // A command past its timeout runs while others are served and answered.
    let slow = {
        let id = id.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = exec_probe(&id, &argv("sleep 30"), Duration::from_millis(800));
            (r, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let out = exec_probe(
        &id,
        &argv("echo out; echo err >&2; exit 3"),
        Duration::from_secs(5),
    )
    .expect("exec through the monitor");
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "not held up by the slow one"
    );
    assert_eq!((out.exit_code, out.output.as_str()), (3, "out\nerr\n"));
    let ok = exec_probe(&id, &["true".to_string()], Duration::from_secs(5)).unwrap();
    assert_eq!(ok.exit_code, 0);
    let (slow, took) = slow.join().unwrap();
    assert!(
        matches!(slow, Err(ExecProbeError::TimedOut { .. })),
        "{slow:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "killed at its timeout: {took:?}"
    );
    // A missing command fails: refused, or exiting non-zero (how the runtime's detached
    // exec reports it depends on when its init fails).
    let missing = exec_probe(&id, &["/no/such/cmd".to_string()], Duration::from_secs(5));
    assert!(
        missing.as_ref().map_or(true, |out| out.exit_code != 0),
        "{missing:?}"
    );
    // The container's monitor still serves and the container still runs.
    assert_eq!(f.state(&id)["status"], "running");
}
