//! Hostile inputs fail fast, with a clear error and bounded memory: a Dockerfile
//! whose `ENV` doubles a value forty times, a YAML "billion laughs", a manifest
//! starting with control bytes. Each command runs under a 2 GiB address-space
//! limit: without the bounds the first two die out of memory.

use std::time::Duration;

use berth_tests::registry_fixtures::{run_bounded, with_address_space_limit};
use berth_tests::{require_root, TestRoot};

/// Runs `berth ARGS` in `r` under the memory limit; expects a failure within a few
/// seconds and returns its stderr.
fn fails_fast(r: &TestRoot, args: &[&str]) -> String {
    let mut cmd = r.berth();
    cmd.args(args);
    let (out, took) = run_bounded(
        &mut with_address_space_limit(&cmd, 2 << 30),
        Duration::from_secs(20),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "berth {args:?} succeeded");
    assert!(
        took < Duration::from_secs(10),
        "berth {args:?} took {took:?}: {err}"
    );
    err
}

#[test]
fn env_doubling_bomb_names_the_dockerfile_line() {
    require_root();
    let r = TestRoot::new();
    let ctx = r.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut dockerfile = String::from("FROM scratch\nENV A=x\n");
    for _ in 0..40 {
        dockerfile.push_str("ENV A=${A}${A}\n");
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let err = fails_fast(&r, &["build", "-t", "bomb", ctx.to_str().unwrap()]);
    // 2^21 bytes, past the 1 MiB limit, is the value of line 23.
    assert!(
        err.contains("Dockerfile:23:")
            && err.contains("ENV value: expansion of A exceeds 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn yaml_alias_bomb_is_refused() {
    require_root();
    let r = TestRoot::new();
    let mut yaml = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for l in 1..=9 {
        let refs = vec![format!("*a{}", l - 1); 9].join(",");
        yaml.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
    }
    let file = r.path("bomb.yaml");
    std::fs::write(&file, yaml).unwrap();
    let err = fails_fast(&r, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("bomb.yaml:") && err.contains("document contains excessive aliasing"),
        "{err}"
    );
}

#[test]
fn yaml_with_control_bytes_is_refused() {
    require_root();
    let r = TestRoot::new();
    let file = r.path("ctl.yaml");
    std::fs::write(
        &file,
        "\u{1}\u{2}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let err = fails_fast(&r, &["apply", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("ctl.yaml:1: control characters are not allowed"),
        "{err}"
    );
}
