//! Base images come from a registry when the store lacks them, and `--pull` refreshes a
//! base the store already has (a loopback `docker-registry`).

mod build_support;

use std::fs;

use berth_tests::registry_fixtures::{Auth, Registry};
use berth_tests::{run_ok, TestRoot};
use build_support::BuildEnv;

#[test]
fn missing_base_is_pulled_and_pull_refreshes_it() {
    let publisher = BuildEnv::new();
    let reg = Registry::start(Auth::None);
    let base = format!("{}/base/busybox:1", reg.host());
    run_ok(
        publisher
            .root
            .berth()
            .args(["tag", "busybox:latest", &base]),
    );
    run_ok(publisher.root.berth().args(["push", &base]));

    // A store without the base: the build pulls it (its RUN step under this test's own
    // cgroup parent).
    let builder = TestRoot::with_private_network();
    let ctx = builder.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /built\n"),
    )
    .unwrap();
    let out = run_ok(builder.berth().args(["build", "-t", "app:1"]).arg(&ctx));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("sha256:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The publisher replaces the base under the same tag (a new label).
    let pctx = publisher.root.path("pctx");
    fs::create_dir_all(&pctx).unwrap();
    fs::write(
        pctx.join("Dockerfile"),
        "FROM busybox:latest\nLABEL base.generation=2\n",
    )
    .unwrap();
    publisher.build_ok(&["-t", &base, pctx.to_str().unwrap()]);
    run_ok(publisher.root.berth().args(["push", &base]));

    // Without --pull the stored base is used; with --pull the new one.
    run_ok(builder.berth().args(["build", "-t", "app:2"]).arg(&ctx));
    let inspect = run_ok(builder.berth().args(["inspect", "app:2"]));
    assert!(!String::from_utf8_lossy(&inspect.stdout).contains("base.generation"));
    run_ok(
        builder
            .berth()
            .args(["build", "--pull", "-t", "app:3"])
            .arg(&ctx),
    );
    let inspect = run_ok(builder.berth().args(["inspect", "app:3"]));
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains("base.generation"),
        "{}",
        String::from_utf8_lossy(&inspect.stdout)
    );
}
