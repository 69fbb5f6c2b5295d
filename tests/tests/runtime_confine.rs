//! Process confinement (capabilities, no_new_privs, seccomp, rlimits, users)
//! on the real kernel.
//!
//! The library-level tests confine one dedicated thread: capabilities, the
//! bounding set, `no_new_privs` and seccomp filters are per-thread, and
//! processes that thread starts inherit them, so nothing leaks into the rest of
//! the test binary and no `unsafe` fork is needed. uid stays 0 there (glibc
//! switches ids for every thread); user switching and rlimits are covered
//! through `berth-runtime run` further down.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use berth_runtime::confine::{self, Confinement};
use berth_tests::require_root;
use oci_spec::runtime::{LinuxSeccomp, Process};

fn process(json: &str) -> Process {
    serde_json::from_str(json).expect("process JSON")
}

fn seccomp(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("seccomp JSON")
}

/// Runs `f` on a fresh thread after confining that thread (a compiled
/// `Confinement` holds a libseccomp context, which stays on the thread that made it).
fn in_confined_thread<T: Send + 'static>(
    process: Process,
    seccomp: Option<LinuxSeccomp>,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        Confinement::new(&process, seccomp.as_ref())
            .expect("valid confinement")
            .apply()
            .expect("apply confinement");
        f()
    })
    .join()
    .expect("confined thread")
}

/// `Name:\tvalue` lines of a /proc status file.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} missing from status:\n{status}"))
        .trim()
        .to_owned()
}

const ROOT_USER: &str = r#""user": {"uid": 0, "gid": 0}, "cwd": "/""#;

#[test]
fn capability_sets_no_new_privs_and_seccomp_errno_apply_to_the_thread_and_its_children() {
    require_root();
    let p = process(&format!(
        r#"{{{ROOT_USER}, "noNewPrivileges": true,
            "capabilities": {{
              "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
              "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
              "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
              "inheritable": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
              "ambient": ["CAP_NET_BIND_SERVICE"]}}}}"#
    ));
    let s = seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let blocked = dir.path().join("blocked");
    let from_child = dir.path().join("from-child");

    let (status, mkdir_err, child) = in_confined_thread(p, Some(s), {
        let blocked = blocked.clone();
        let from_child = from_child.clone();
        move || {
            let status = fs::read_to_string("/proc/thread-self/status").expect("thread status");
            let mkdir_err = fs::create_dir(&blocked)
                .err()
                .and_then(|e| e.raw_os_error());
            let child = Command::new("sh")
                .arg("-c")
                .arg(r#"grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; mkdir "$1""#)
                .arg("sh")
                .arg(&from_child)
                .output()
                .expect("run sh");
            (status, mkdir_err, child)
        }
    });

    // CAP_CHOWN is bit 0, CAP_KILL bit 5, CAP_NET_BIND_SERVICE bit 10.
    assert_eq!(status_field(&status, "CapEff"), "0000000000000401");
    assert_eq!(status_field(&status, "CapPrm"), "0000000000000401");
    assert_eq!(status_field(&status, "CapInh"), "0000000000000401");
    assert_eq!(status_field(&status, "CapBnd"), "0000000000000421");
    assert_eq!(status_field(&status, "CapAmb"), "0000000000000400");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    assert_eq!(
        mkdir_err,
        Some(nix::errno::Errno::EPERM as i32),
        "mkdir was not refused"
    );
    assert!(!blocked.exists());

    // A process the thread starts inherits all of it.
    let out = String::from_utf8_lossy(&child.stdout);
    let err = String::from_utf8_lossy(&child.stderr);
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000421", "{out}");
    assert_eq!(status_field(&out, "CapAmb"), "0000000000000400", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1", "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert!(!child.status.success(), "mkdir in the child succeeded");
    assert!(err.contains("Operation not permitted"), "stderr: {err}");
    assert!(!from_child.exists());

    // The rest of the test process is untouched.
    fs::create_dir(dir.path().join("unconfined")).expect("mkdir outside the confined thread");
    let own = fs::read_to_string("/proc/thread-self/status").expect("status");
    assert_eq!(status_field(&own, "Seccomp"), "0");
}

#[test]
fn seccomp_kill_action_kills_the_offending_process() {
    require_root();
    let p = process(&format!("{{{ROOT_USER}}}"));
    let s = seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("never");
    let status = in_confined_thread(p, Some(s), {
        let target = target.clone();
        move || {
            Command::new("mkdir")
                .arg(&target)
                .status()
                .expect("run mkdir")
        }
    });
    assert_eq!(
        status.signal(),
        Some(31),
        "mkdir was not killed by SIGSYS: {status}"
    );
    assert!(!target.exists());
}

#[test]
fn seccomp_conditions_on_arguments_and_several_architectures() {
    require_root();
    let p = process(&format!("{{{ROOT_USER}}}"));
    // Refuse world-writable directories only: (mode & 0o002) == 0o002.
    let s = seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                          "args": [{"index": 1, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let (open, private) = in_confined_thread(p, Some(s), move || {
        // mkdir(2) takes the mode in argument 1; mkdirat(2) in argument 2, so
        // this checks that std's create goes through mkdir on x86_64.
        let open = fs::DirBuilder::new()
            .mode(0o777)
            .create(root.join("open"))
            .map_err(|e| e.kind());
        let private = fs::DirBuilder::new()
            .mode(0o700)
            .create(root.join("private"))
            .map_err(|e| e.kind());
        (open, private)
    });
    assert_eq!(
        open,
        Err(ErrorKind::PermissionDenied),
        "world-writable mkdir allowed"
    );
    assert_eq!(private, Ok(()), "private mkdir refused");
}

#[test]
fn check_refuses_bad_specs_with_clear_errors() {
    let p = process(&format!("{{{ROOT_USER}}}"));
    let bad_rlimit = process(&format!(
        r#"{{{ROOT_USER}, "rlimits": [{{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}}]}}"#
    ));
    let err = confine::check(&bad_rlimit, None).unwrap_err().to_string();
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");

    let notify = seccomp(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#);
    let err = confine::check(&p, Some(&notify)).unwrap_err().to_string();
    assert!(err.contains("SCMP_ACT_NOTIFY"), "{err}");

    let arch = seccomp(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_SH"]}"#);
    let err = confine::check(&p, Some(&arch)).unwrap_err().to_string();
    assert!(err.contains("architecture"), "{err}");

    let index = seccomp(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let err = confine::check(&p, Some(&index)).unwrap_err().to_string();
    assert!(err.contains("argument index 7"), "{err}");

    // The stock profile shape: unknown (other-arch) syscalls are tolerated.
    let stock = seccomp(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "write", "arm_fadvise64_64"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    confine::check(&p, Some(&stock)).expect("stock-style profile");
}

// ---------------------------------------------------------------------------
// Through `berth-runtime run`: what the container's process sees.
// ---------------------------------------------------------------------------

/// A busybox bundle whose process is `process` (merged over runc-spec-like
/// defaults), run in the foreground; force-deleted on drop.
struct Container {
    dir: tempfile::TempDir,
    id: String,
}

impl Container {
    fn new(what: &str, process: serde_json::Value, seccomp: Option<serde_json::Value>) -> Self {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-test-confine-")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("bundle/rootfs");
        fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        let tar = fs::File::open(berth_tests::busybox_rootfs_tar()).expect("open busybox tar");
        tar::Archive::new(tar)
            .unpack(&rootfs)
            .expect("unpack busybox");
        let id = format!("berth-test-{what}-{}", std::process::id());
        let mut proc_json = serde_json::json!({
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        });
        for (k, v) in process.as_object().expect("process object") {
            proc_json[k] = v.clone();
        }
        let mut linux = serde_json::json!({
            "cgroupsPath": format!("/{id}"),
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
        });
        if let Some(s) = seccomp {
            linux["seccomp"] = s;
        }
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": proc_json,
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "berth-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "nodev", "mode=1777"]}
            ],
            "linux": linux
        });
        fs::write(
            dir.path().join("bundle/config.json"),
            serde_json::to_vec_pretty(&config).expect("config JSON"),
        )
        .expect("write config.json");
        fs::create_dir_all(dir.path().join("state")).expect("mkdir state");
        Container { dir, id }
    }

    fn runtime(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(berth_tests::runtime_under_test());
        cmd.arg("--root")
            .arg(self.dir.path().join("state"))
            .args(args);
        cmd
    }

    /// `run --bundle B ID` in the foreground.
    fn run(&self) -> Output {
        let bundle = self.dir.path().join("bundle");
        self.runtime(&[
            "run",
            "--bundle",
            bundle.to_str().expect("utf-8 path"),
            &self.id,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run berth-runtime")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .runtime(&["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Prints identity, umask, limits and the security fields of /proc/self/status.
const REPORT: &str = "id; umask; ulimit -n; ulimit -Hn; \
    grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; cat /proc/self/oom_score_adj";

#[test]
fn user_groups_umask_rlimits_capabilities_and_oom_score_inside_a_container() {
    let caps = serde_json::json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let c = Container::new(
        "confine-user",
        serde_json::json!({
            "args": ["sh", "-c", REPORT],
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 23},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}],
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": caps, "ambient": caps},
            "noNewPrivileges": true,
            "oomScoreAdj": 500
        }),
        None,
    );
    let out = c.run();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "run failed: {stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("uid=1000 gid=1000 groups=10,20"),
        "{stdout}"
    );
    assert_eq!(lines.get(1).copied(), Some("0027"), "{stdout}");
    assert_eq!(lines.get(2).copied(), Some("512"), "{stdout}");
    assert_eq!(lines.get(3).copied(), Some("1024"), "{stdout}");
    // CAP_KILL is bit 5, CAP_NET_BIND_SERVICE bit 10: a non-root process keeps
    // them across exec only through the ambient set.
    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(
            status_field(&stdout, field),
            "0000000000000420",
            "{field}: {stdout}"
        );
    }
    assert_eq!(status_field(&stdout, "NoNewPrivs"), "1", "{stdout}");
    assert_eq!(status_field(&stdout, "Seccomp"), "0", "{stdout}");
    assert_eq!(lines.last().copied(), Some("500"), "{stdout}");
}

#[test]
fn seccomp_errno_inside_a_container_with_and_without_no_new_privs() {
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    for nnp in [true, false] {
        let c = Container::new(
            if nnp { "seccomp-nnp" } else { "seccomp-priv" },
            serde_json::json!({
                "args": ["sh", "-c", "mkdir /tmp/blocked; echo mkdir=$?; \
                          grep -E '^(NoNewPrivs|Seccomp)' /proc/self/status; ls -d /tmp/blocked"],
                "noNewPrivileges": nnp
            }),
            Some(profile.clone()),
        );
        let out = c.run();
        let (stdout, stderr) = text(&out);
        assert!(stdout.contains("mkdir=1"), "nnp={nnp}: {stdout}{stderr}");
        assert!(
            stderr.contains("Operation not permitted"),
            "nnp={nnp}: {stderr}"
        );
        assert_eq!(status_field(&stdout, "Seccomp"), "2", "nnp={nnp}: {stdout}");
        let want_nnp = if nnp { "1" } else { "0" };
        assert_eq!(status_field(&stdout, "NoNewPrivs"), want_nnp, "{stdout}");
    }
}

#[test]
fn seccomp_kill_inside_a_container_ends_it_with_sigsys() {
    let c = Container::new(
        "seccomp-kill",
        serde_json::json!({"args": ["mkdir", "/tmp/never"]}),
        Some(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
        })),
    );
    let out = c.run();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(128 + 31), "{stdout}{stderr}");
}

#[test]
fn an_rlimit_above_the_hard_limit_fails_clearly() {
    // Root here lacks CAP_SYS_RESOURCE, so a hard limit above the current one is refused.
    let current = fs::read_to_string("/proc/self/limits").expect("limits");
    let hard: u64 = current
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse().ok())
        .expect("hard nofile limit");
    let c = Container::new(
        "rlimit-high",
        serde_json::json!({
            "args": ["true"],
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
        }),
        None,
    );
    let out = c.run();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "run succeeded: {stdout}{stderr}");
    assert!(
        stderr.to_lowercase().contains("rlimit"),
        "unclear error: {stderr}"
    );
}

/// podman's default seccomp profile (moby format) in the OCI form for runc's
/// default capabilities on x86_64, converted with jq as podman would.
fn podman_default_profile() -> serde_json::Value {
    berth_tests::require_command("jq", "jq");
    let profile = "/usr/share/containers/seccomp.json";
    assert!(
        std::path::Path::new(profile).exists(),
        "{profile} missing: apt-get install podman (golang-github-containers-common)"
    );
    let filter = r#"
      def has_all($need): (($need // []) - $caps) | length == 0;
      def has_any($some): ($some // []) | any(. as $c | $caps | index($c));
      {defaultAction, defaultErrnoRet,
       architectures: [.archMap[] | select(.architecture == "SCMP_ARCH_X86_64")
                       | .architecture, .subArchitectures[]],
       syscalls: [.syscalls[]
         | select(((.includes.arches // []) | length == 0) or ((.includes.arches // []) | index("amd64")))
         | select(((.excludes.arches // []) | index("amd64")) | not)
         | select(has_all(.includes.caps))
         | select(has_any(.excludes.caps) | not)
         | {names, action}
           + (if .errnoRet then {errnoRet} else {} end)
           + (if ((.args // []) | length) > 0 then {args} else {} end)]}"#;
    let out = berth_tests::run_ok(
        Command::new("jq")
            .arg("--argjson")
            .arg("caps")
            .arg(r#"["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]"#)
            .arg(filter)
            .arg(profile),
    );
    serde_json::from_slice(&out.stdout).expect("converted profile JSON")
}

#[test]
fn podmans_default_seccomp_profile_compiles_and_lets_a_shell_run() {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let c = Container::new(
        "seccomp-podman",
        serde_json::json!({
            "args": ["sh", "-c", "echo hello; ls / >/dev/null && echo ls=ok; \
                      mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
                      grep Seccomp: /proc/self/status"],
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        }),
        Some(podman_default_profile()),
    );
    let out = c.run();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "run failed: {stdout}{stderr}");
    assert!(
        stdout.contains("hello") && stdout.contains("ls=ok"),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains("mount=0"),
        "mount succeeded under the profile: {stdout}"
    );
    assert_eq!(status_field(&stdout, "Seccomp"), "2", "{stdout}");
}
