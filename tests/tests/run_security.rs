//! `berth run`'s security defaults and flags end to end, as root: Docker's default seccomp
//! profile on every container (`Seccomp: 2`, user namespaces and mounts refused) and on
//! build RUN steps; `--security-opt seccomp=unconfined|FILE` and `no-new-privileges`;
//! `--cap-add`/`--cap-drop`; `--privileged`; `--read-only`; `--user`; what `inspect`
//! shows of them, a restart keeping them, and unknown options refused before anything is
//! made.

mod run_support;

use berth_tests::run_ok;
use run_support::{stderr, stdout, Fixture};
use serde_json::Value;

/// Runs `busybox sh -c SCRIPT` with `flags` in the foreground (no network) and returns its
/// output (stdout then stderr).
fn run_sh(f: &Fixture, flags: &[&str], script: &str) -> String {
    let out = f
        .berth()
        .args(["run", "--rm", "--network", "none"])
        .args(flags)
        .args(["busybox", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth run {flags:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    format!("{}{}", stdout(&out), stderr(&out))
}

/// The value of `Field:` in a `/proc/self/status` dump.
fn status_field(out: &str, field: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {out}"))
        .trim()
        .to_string()
}

const STATUS: &str = "grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status";

fn inspect(f: &Fixture, name: &str) -> Value {
    let out = run_ok(f.berth().args(["inspect", name]));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc[0].clone()
}

#[test]
fn default_containers_run_under_dockers_seccomp_profile() {
    let f = Fixture::new();
    let script = format!(
        "{STATUS}; unshare -Urm true && echo UNSHARE-OK; mount -t tmpfs t /tmp && echo MOUNT-OK; true"
    );
    let out = run_sh(&f, &[], &script);
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    // Docker's default capability set.
    assert_eq!(status_field(&out, "CapEff"), "00000000a80425fb", "{out}");
    assert!(!out.contains("UNSHARE-OK"), "unshare -Urm worked: {out}");
    assert!(!out.contains("MOUNT-OK"), "mount worked: {out}");

    // Unconfined: no filter, and a user namespace can be made again.
    let out = run_sh(&f, &["--security-opt", "seccomp=unconfined"], &script);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert!(out.contains("UNSHARE-OK"), "{out}");

    // A profile from a file, in OCI's format: mkdir refused with EACCES.
    let profile = f.root.path("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = run_sh(
        &f,
        &["--security-opt", &opt],
        &format!("{STATUS}; mkdir /tmp/d && echo MKDIR-OK; true"),
    );
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert!(!out.contains("MKDIR-OK"), "{out}");
}

#[test]
fn capabilities_follow_cap_add_and_cap_drop() {
    let mut f = Fixture::new();
    let out = run_sh(
        &f,
        &["--cap-drop", "chown", "--cap-add", "CAP_net_admin"],
        STATUS,
    );
    // Docker's set less CAP_CHOWN (bit 0), plus CAP_NET_ADMIN (bit 12).
    assert_eq!(status_field(&out, "CapEff"), "00000000a80435fa", "{out}");
    assert_eq!(status_field(&out, "CapBnd"), "00000000a80435fa", "{out}");
    let out = run_sh(&f, &["--cap-drop", "ALL", "--cap-add", "NET_RAW"], STATUS);
    assert_eq!(status_field(&out, "CapEff"), "0000000000002000", "{out}");
    // With CAP_SYS_ADMIN the profile lets mount through, as Docker's does.
    let out = run_sh(
        &f,
        &["--cap-add", "SYS_ADMIN"],
        "mount -t tmpfs t /tmp && echo MOUNT-OK",
    );
    assert!(out.contains("MOUNT-OK"), "{out}");

    let name = f.name("capped");
    run_ok(f.berth().args([
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--cap-add",
        "net_admin",
        "--cap-drop",
        "chown",
        "busybox",
        "true",
    ]));
    let doc = inspect(&f, &name);
    assert_eq!(
        doc["HostConfig"]["CapAdd"],
        serde_json::json!(["CAP_NET_ADMIN"])
    );
    assert_eq!(
        doc["HostConfig"]["CapDrop"],
        serde_json::json!(["CAP_CHOWN"])
    );
    assert_eq!(doc["HostConfig"]["Privileged"], false);
}

#[test]
fn privileged_gets_every_capability_device_and_no_filter() {
    let mut f = Fixture::new();
    let host_bounding = std::fs::read_to_string("/proc/self/status").unwrap();
    let host_bounding = status_field(&host_bounding, "CapBnd");
    let script = format!(
        "{STATUS}; mount -t tmpfs t /tmp && echo MOUNT-OK; grep -c ' /proc/keys ' /proc/self/mountinfo; ls /dev | wc -l"
    );
    let out = run_sh(&f, &["--privileged"], &script);
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert_eq!(status_field(&out, "CapEff"), host_bounding, "{out}");
    assert!(out.contains("MOUNT-OK"), "{out}");
    let counts: Vec<usize> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(counts[0], 0, "/proc/keys is still masked: {out}");
    let plain = run_sh(&f, &[], "ls /dev | wc -l");
    let plain: usize = plain.trim().parse().unwrap();
    assert!(
        counts[1] > plain + 5,
        "host devices missing: {out} vs {plain}"
    );

    let name = f.name("priv");
    run_ok(f.berth().args([
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--privileged",
        "busybox",
        "true",
    ]));
    assert_eq!(inspect(&f, &name)["HostConfig"]["Privileged"], true);
}

#[test]
fn read_only_and_no_new_privileges_survive_a_restart() {
    let mut f = Fixture::new();
    let name = f.name("locked");
    let script = format!("{STATUS}; touch /x 2>/dev/null || echo READ-ONLY");
    let out = run_ok(f.berth().args([
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--read-only",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sh",
        "-c",
        &script,
    ]));
    let first = stdout(&out);
    assert_eq!(status_field(&first, "NoNewPrivs"), "1", "{first}");
    assert!(first.contains("READ-ONLY"), "{first}");
    let doc = inspect(&f, &name);
    assert_eq!(doc["HostConfig"]["ReadonlyRootfs"], true);
    assert_eq!(
        doc["HostConfig"]["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    // `start` of the stopped container keeps every setting.
    let again = stdout(&run_ok(f.berth().args(["start", "-a", &name])));
    assert_eq!(status_field(&again, "NoNewPrivs"), "1", "{again}");
    assert_eq!(status_field(&again, "Seccomp"), "2", "{again}");
    assert!(again.contains("READ-ONLY"), "{again}");
}

#[test]
fn user_takes_a_name_a_uid_or_uid_and_gid() {
    let f = Fixture::new();
    for (user, want) in [
        ("nobody", "uid=65534(nobody) gid=65534(nobody)"),
        ("1000", "uid=1000 gid=0(root)"),
        ("1000:1000", "uid=1000 gid=1000"),
    ] {
        let out = run_sh(&f, &["--user", user], &format!("id; {STATUS}"));
        assert!(out.contains(want), "--user {user}: {out}");
        // A non-root process keeps no effective capability, as under Docker.
        assert_eq!(status_field(&out, "CapEff"), "0000000000000000", "{out}");
        assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    }
}

#[test]
fn unknown_options_are_refused_before_anything_is_made() {
    let f = Fixture::new();
    for (flags, want) in [
        (
            vec!["--security-opt", "apparmor=unconfined"],
            "--security-opt \"apparmor=unconfined\": unknown option",
        ),
        (vec!["--security-opt", "label=disable"], "unknown option"),
        (
            vec!["--security-opt", "seccomp=/nonexistent.json"],
            "/nonexistent.json",
        ),
        (
            vec!["--cap-add", "FLY"],
            "--cap-add \"FLY\": unknown capability",
        ),
    ] {
        let out = f
            .berth()
            .args(["run", "--rm", "--network", "none"])
            .args(&flags)
            .args(["busybox", "true"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(stderr(&out).contains(want), "{flags:?}: {}", stderr(&out));
    }
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
}

#[test]
fn build_run_steps_get_the_default_profile() {
    let f = Fixture::new();
    let ctx = f.root.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN grep Seccomp: /proc/self/status > /seccomp; (unshare -Urm true && echo UNSHARE-OK || echo UNSHARE-REFUSED) >> /seccomp\n",
    )
    .unwrap();
    run_ok(f.berth().args(["build", "-t", "sec-probe"]).arg(&ctx));
    let out = run_sh_image(&f, "sec-probe", "cat /seccomp");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert!(out.contains("UNSHARE-REFUSED"), "{out}");
}

fn run_sh_image(f: &Fixture, image: &str, script: &str) -> String {
    stdout(&run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        image,
        "sh",
        "-c",
        script,
    ])))
}
