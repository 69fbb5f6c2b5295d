//! The build cache and build options end to end: unchanged rebuilds hit the cache for
//! every step; `touch` keeps it; changing one byte reruns only the COPY that reads the
//! file and the steps after it; `--no-cache` reruns everything. Also `--target`,
//! `-f -`, reproducible ids with `SOURCE_DATE_EPOCH`, zstd layers, and a failing RUN.

mod build_support;

use std::fs;
use std::time::{Duration, SystemTime};

use berth_tests::run_ok;
use build_support::{flatten, steps, BuildEnv};

const DOCKERFILE: &str = "\
FROM busybox:latest
RUN echo one > /one
COPY a.txt /a.txt
RUN cat /a.txt > /copy-of-a
COPY b.txt /b.txt
RUN cat /b.txt > /copy-of-b
ENV DONE=yes
";

fn context(env: &BuildEnv) -> std::path::PathBuf {
    let ctx = env.root.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("a.txt"), "alpha\n").unwrap();
    fs::write(ctx.join("b.txt"), "bravo\n").unwrap();
    ctx
}

/// Which of the filesystem steps (RUN/COPY) came from the cache, in order.
fn cached_fs_steps(log: &str) -> Vec<bool> {
    steps(log)
        .into_iter()
        .filter(|(label, _)| label.contains("] RUN") || label.contains("] COPY"))
        .map(|(_, cached)| cached)
        .collect()
}

#[test]
fn only_steps_after_a_changed_file_rerun() {
    let env = BuildEnv::new();
    let ctx = context(&env);
    let c = ctx.to_str().unwrap();

    let (first, log) = env.build_ok(&["-t", "cache:test", c]);
    assert_eq!(cached_fs_steps(&log), vec![false; 5], "cold build:\n{log}");

    let (second, log) = env.build_ok(&["-t", "cache:test", c]);
    assert_eq!(
        cached_fs_steps(&log),
        vec![true; 5],
        "unchanged rebuild:\n{log}"
    );
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(
        first, second,
        "an unchanged rebuild gives the same image id"
    );
    // A tag without ":TAG" means ":latest", as with docker build, so the plain
    // name finds the image afterwards.
    let (untagged, _) = env.build_ok(&["-t", "cachename", c]);
    assert_eq!(untagged, first);
    let listed = run_ok(env.root.berth().args(["images", "--format", "json"]));
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("\"cachename\"") && !listed.contains("<none>"),
        "berth images after build -t cachename:\n{listed}"
    );
    let inspected = run_ok(env.root.berth().args(["inspect", "cachename:latest"]));
    assert!(
        String::from_utf8_lossy(&inspected.stdout).contains(first.as_str()),
        "cachename:latest is the built image"
    );

    // A new mtime alone keeps every step cached.
    let later = SystemTime::now() + Duration::from_secs(3600);
    let f = fs::File::options()
        .write(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(later).unwrap();
    drop(f);
    let (_, log) = env.build_ok(&["-t", "cache:test", c]);
    assert_eq!(cached_fs_steps(&log), vec![true; 5], "after touch:\n{log}");

    // One changed byte in b.txt: its COPY and the RUN after it rerun, nothing before.
    fs::write(ctx.join("b.txt"), "bravO\n").unwrap();
    let tar = env.root.path("out.tar");
    let out = format!("type=docker,dest={}", tar.display());
    let (_, log) = env.build_ok(&["-t", "cache:test", "--output", &out, c]);
    assert_eq!(
        cached_fs_steps(&log),
        vec![true, true, true, false, false],
        "after editing b.txt:\n{log}"
    );
    // The rebuilt image holds the new content.
    let (fs_now, _) = flatten(&tar);
    let want = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"bravO\n"))
    };
    assert_eq!(fs_now["copy-of-b"].data, want);

    // A mode change is a content change for the cache.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(ctx.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let (_, log) = env.build_ok(&["-t", "cache:test", c]);
    assert_eq!(
        cached_fs_steps(&log),
        vec![true, false, false, false, false],
        "after chmod a.txt:\n{log}"
    );

    let (_, log) = env.build_ok(&["--no-cache", "-t", "cache:test", c]);
    assert_eq!(cached_fs_steps(&log), vec![false; 5], "--no-cache:\n{log}");
}

#[test]
fn source_date_epoch_gives_the_same_image_id() {
    let env = BuildEnv::new();
    let ctx = context(&env);
    let c = ctx.to_str().unwrap();
    let build = || {
        let mut cmd = env.root.berth();
        cmd.env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "--no-cache", c]);
        let out = berth_tests::run_ok(&mut cmd);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let a = build();
    let b = build();
    assert!(a.starts_with("sha256:"), "{a}");
    assert_eq!(a, b, "two --no-cache builds with SOURCE_DATE_EPOCH differ");
    // Without it the image records the build time, so ids differ from the pinned one.
    std::thread::sleep(Duration::from_millis(1100));
    let (c1, _) = env.build_ok(&["--no-cache", c]);
    assert_ne!(c1, a);
}

#[test]
fn target_stdin_dockerfile_zstd_and_failures() {
    let env = BuildEnv::new();
    let ctx = env.root.path("ctx2");
    fs::create_dir_all(&ctx).unwrap();
    let text = "\
FROM busybox:latest AS base
RUN echo base > /base
FROM base AS broken
RUN echo about to fail && exit 3
FROM base AS good
RUN echo good > /good
";
    // --target picks a stage and skips what it does not need (the failing stage).
    let df = ctx.join("Dockerfile.multi");
    fs::write(&df, text).unwrap();
    let tar = env.root.path("good.tar");
    let out = format!("type=oci,dest={}", tar.display());
    let (_, log) = env.build_ok(&[
        "-f",
        df.to_str().unwrap(),
        "--target",
        "good",
        "--compression",
        "zstd",
        "--output",
        &out,
        ctx.to_str().unwrap(),
    ]);
    assert!(!log.contains("about to fail"), "{log}");
    // The OCI archive's manifest lists zstd layers for the steps berth wrote.
    let mut archive = tar::Archive::new(fs::File::open(&tar).unwrap());
    let mut media_types = Vec::new();
    let mut blobs = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        blobs.insert(name, data);
    }
    for data in blobs.values() {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            if let Some(layers) = v.get("layers").and_then(|l| l.as_array()) {
                for l in layers {
                    media_types.push(l["mediaType"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    assert!(
        media_types.iter().any(|m| m.ends_with("+zstd")),
        "no zstd layer in {media_types:?}"
    );

    // The failing stage as target: the build fails naming the step and exit code.
    let out = env.build(&[
        "-f",
        df.to_str().unwrap(),
        "--target",
        "broken",
        ctx.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("Dockerfile.multi:4"), "{err}");
    assert!(err.contains("about to fail"), "step output shown: {err}");

    // -f - reads the Dockerfile from stdin.
    let mut cmd = env.root.berth();
    cmd.args(["build", "-t", "stdin:1", "-f", "-"]).arg(&ctx);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                b"FROM scratch\nCOPY --from=busybox:latest /etc/passwd /bin/busybox /\nLABEL from=stdin\n",
            )
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = env.root.path("stdin.tar");
    berth_tests::run_ok(
        env.root
            .berth()
            .args(["save", "-o"])
            .arg(&tar)
            .arg("stdin:1"),
    );
    let (files, _) = flatten(&tar);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["busybox", "passwd"],
        "COPY --from an image onto scratch"
    );
    let inspect = berth_tests::run_ok(env.root.berth().args(["inspect", "stdin:1"]));
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains("\"from\": \"stdin\""),
        "{}",
        String::from_utf8_lossy(&inspect.stdout)
    );
}

/// Kills the HTTP server on drop.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ADD of a URL (a busybox httpd on loopback): `--checksum` is checked, the file gets
/// mode 0600 and the server's Last-Modified time, and a pinned checksum makes the step
/// cacheable without contacting the server again.
#[test]
fn add_url_with_checksum() {
    let env = BuildEnv::new();
    berth_tests::require_command("busybox", "busybox-static");
    let www = env.root.path("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("remote.txt"), "remote content\n").unwrap();
    let stamp = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(www.join("remote.txt"))
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        std::process::Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/remote.txt");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sum = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"remote content\n"))
    };
    let ctx = env.root.path("url-ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox:latest\nADD --checksum=sha256:{sum} {url} /dl/\n"),
    )
    .unwrap();
    let tar = env.root.path("url.tar");
    let out = format!("type=docker,dest={}", tar.display());
    env.build_ok(&["--output", &out, ctx.to_str().unwrap()]);
    let (files, _) = flatten(&tar);
    let f = files.get("dl/remote.txt").expect("downloaded file in /dl/");
    assert_eq!(f.mode, 0o600);
    assert_eq!((f.uid, f.gid), (0, 0));
    assert_eq!(f.data, sum);
    let mut archive = tar::Archive::new(fs::File::open(&tar).unwrap());
    let mut mtime = None;
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy().ends_with("layer.tar") {
            let mut layer = tar::Archive::new(e);
            for le in layer.entries().unwrap() {
                let le = le.unwrap();
                if le
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with("dl/remote.txt")
                {
                    mtime = Some(le.header().mtime().unwrap());
                }
            }
        }
    }
    assert_eq!(
        mtime,
        Some(1_600_000_000),
        "Last-Modified becomes the mtime"
    );

    // With the server gone, the pinned step still comes from the cache.
    drop(server);
    let (_, log) = env.build_ok(&[ctx.to_str().unwrap()]);
    assert!(
        steps(&log)
            .iter()
            .all(|(l, cached)| l.contains("FROM") || *cached),
        "{log}"
    );

    // A wrong checksum fails the build, naming both digests.
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM busybox:latest\nADD --checksum=sha256:{} {url} /dl/\n",
            "0".repeat(64)
        ),
    )
    .unwrap();
    let _server = Server(
        std::process::Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = env.build(&[ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checksum mismatch") && err.contains(&sum),
        "{err}"
    );
}
