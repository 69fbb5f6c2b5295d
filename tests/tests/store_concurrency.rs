//! The image store locks what is written, not the store: while a pull trickles a layer in
//! from a throttled registry and a build runs a long `RUN` step, `run --rm` of an image
//! already present, `images`, `ps` and a pod's create and start each finish in well under a
//! second (they waited for the whole pull or build when both held the store's one lock).
//! Both writers then finish, and the store holds what they wrote.

mod run_support;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::registry_fixtures::*;
use berth_tests::run_ok;
use run_support::{stdout, wait_until, Fixture};

/// How long the registry takes to send the layer, and the build's RUN step lasts.
const SLOW: Duration = Duration::from_secs(10);
/// What each command may take while they run.
const QUICK: Duration = Duration::from_secs(1);

/// A child process killed (if still running) and reaped on drop, so a failed test leaves
/// no pull or build behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits for the process and asserts it succeeded.
    fn succeeds(mut self, what: &str) {
        let status = self.0.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        assert!(status.success(), "{what} failed: {err}");
    }
}

/// Runs `cmd`, which must succeed, and returns how long it took.
fn timed(what: &str, cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = run_ok(cmd);
    let took = start.elapsed();
    eprintln!("{what}: {took:?} ({} bytes out)", out.stdout.len());
    took
}

#[test]
fn a_slow_pull_and_a_long_build_do_not_hold_up_other_commands() {
    let mut f = Fixture::new();
    // A registry whose one layer (2 MiB) trickles out over SLOW.
    let reg = Registry::start(Auth::None);
    let layout = OciLayout::new(&f.root.path("layout"));
    let m = layout.image(
        &[tar_of(&[("noise.bin", noise(2 << 20, 7))])],
        "linux",
        "amd64",
    );
    layout.tag(&m, "t");
    layout.push_with_skopeo("t", &format!("{}/conc/slow:t", reg.host()), &[]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.dir().join("blobs/sha256").join(&m.digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject("GET", &format!("/blobs/{layer}"), Fault::Throttle(SLOW), 1);

    let ctx = f.root.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nRUN sleep {}\n", SLOW.as_secs()),
    )
    .unwrap();

    // Once beforehand, so what is measured below is the steady state (snapshots unpacked).
    run_ok(
        f.berth()
            .args(["run", "--rm", "--network", "none", "busybox", "true"]),
    );

    let image = format!("{}/conc/slow:t", proxy.host());
    let mut pull = Reaped(
        berth_cmd(&f.root)
            .args(["pull", "-q", &image])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut build = Reaped(
        f.berth()
            .args(["build", "-q", "-t", "conc/built"])
            .arg(&ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Both are under way: the layer is being sent, and the RUN step has its scratch dir.
    wait_until(
        "the pull to fetch the layer",
        Duration::from_secs(20),
        || proxy.seen().iter().any(|q| q.target.contains(&layer)),
    );
    let scratch = f.root.store().join("build");
    wait_until("the build's RUN step", Duration::from_secs(20), || {
        fs::read_dir(&scratch)
            .into_iter()
            .flatten()
            .flatten()
            .any(|b| {
                fs::read_dir(b.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|s| s.file_name().to_string_lossy().starts_with("step-"))
            })
    });

    let pod = f.pod("conc-pod");
    let took = [
        (
            "run --rm",
            timed(
                "run --rm",
                f.berth()
                    .args(["run", "--rm", "--network", "none", "busybox", "true"]),
            ),
        ),
        ("images", timed("images", f.berth().arg("images"))),
        ("ps", timed("ps", f.berth().args(["ps", "-a"]))),
        (
            "pod create",
            timed(
                "pod create",
                f.berth().args(["pod", "create", "--name", &pod]),
            ),
        ),
        (
            "pod start",
            timed("pod start", f.berth().args(["pod", "start", &pod])),
        ),
    ];
    for (what, t) in took {
        assert!(t < QUICK, "{what} took {t:?} while a pull and a build ran");
    }
    assert!(
        pull.running() && build.running(),
        "the pull and the build ended before the commands ran: nothing was measured alongside"
    );

    pull.succeeds("pull");
    build.succeeds("build");
    let images = stdout(&run_ok(f.berth().arg("images")));
    assert!(images.contains("conc/slow"), "{images}");
    assert!(images.contains("conc/built"), "{images}");
    let check = stdout(&run_ok(f.berth().args(["system", "check"])));
    assert!(check.contains(": 0 problems"), "{check}");
    // Every writer removed its lock files and ingest directories.
    for dir in ["ingest", "snapshots"] {
        let left: Vec<String> = fs::read_dir(f.root.store().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".lock") || dir == "ingest")
            .collect();
        assert!(left.is_empty(), "left in {dir}: {left:?}");
    }
}
