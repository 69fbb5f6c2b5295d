//! RUN steps through berth's runtime: the stage's env, user and workdir reach the process;
//! `--network=none` leaves only loopback while the default is the host's network;
//! `--mount=type=cache` persists between builds and stays out of the image;
//! `--mount=type=bind` (context and another stage) is read-only and keys the cache by
//! content; mount points the image lacks do not leak into its layers.

mod build_support;

use std::fs;

use build_support::{flatten, steps, BuildEnv};

/// The content of `path` in the flattened image of a docker-archive (last layer wins).
fn read_file(tar: &std::path::Path, path: &str) -> String {
    let (files, _) = flatten(tar);
    assert!(files.contains_key(path), "{path} missing from the image");
    let mut archive = tar::Archive::new(fs::File::open(tar).unwrap());
    let mut found = String::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        if !e.path().unwrap().to_string_lossy().ends_with("layer.tar") {
            continue;
        }
        let mut layer = tar::Archive::new(e);
        for le in layer.entries().unwrap() {
            let mut le = le.unwrap();
            let name = le
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if name == path {
                found.clear();
                std::io::Read::read_to_string(&mut le, &mut found).unwrap();
            }
        }
    }
    found
}

#[test]
fn run_sees_env_user_workdir_and_network_modes() {
    let env = BuildEnv::new();
    let ctx = env.root.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "\
FROM busybox:latest
ARG BUILD_FLAVOR=dev
ENV APP_MODE=test
WORKDIR /work/dir
RUN echo \"$APP_MODE $BUILD_FLAVOR $(pwd)\" > /facts && mkdir -p /out && chmod 777 /out
USER nobody
RUN id -u > /out/uid
USER root
RUN --network=none ls /sys/class/net | sort | tr '\\n' ' ' > /net-none
RUN ls /sys/class/net | tr '\\n' ' ' > /net-host
",
    )
    .unwrap();
    let tar = env.root.path("img.tar");
    let out = format!("type=docker,dest={}", tar.display());
    env.build_ok(&[
        "--build-arg",
        "BUILD_FLAVOR=release",
        "--output",
        &out,
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(read_file(&tar, "facts"), "test release /work/dir\n");
    assert_eq!(read_file(&tar, "out/uid"), "65534\n");
    assert_eq!(read_file(&tar, "net-none").trim(), "lo");
    // Other tests add and remove links on the host meanwhile: compare by the host's
    // links that are not loopback, at least one of which the step must have seen.
    let seen = read_file(&tar, "net-host");
    let seen: Vec<&str> = seen.split_whitespace().collect();
    let host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    assert!(
        host.iter().any(|h| seen.contains(&h.as_str())),
        "the default RUN network is the host's: saw {seen:?}, host has {host:?}"
    );
    let (files, _) = flatten(&tar);
    for leak in ["etc/resolv.conf", "etc/hosts"] {
        assert!(!files.contains_key(leak), "{leak} leaked into the image");
    }
}

#[test]
fn cache_and_bind_mounts() {
    let env = BuildEnv::new();
    let ctx = env.root.path("ctx");
    fs::create_dir_all(ctx.join("src")).unwrap();
    fs::write(ctx.join("src/input.txt"), "v1\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "\
FROM busybox:latest AS tools
RUN mkdir -p /tools && echo 'tool output' > /tools/out.txt
FROM busybox:latest
RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /cache-count
RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/input.txt > /from-bind && (touch /mnt/src/x 2>/dev/null && echo rw || echo ro) > /bind-mode
RUN --mount=type=bind,from=tools,source=/tools,target=/t cat /t/out.txt > /from-stage
",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let tar = env.root.path("one.tar");
    let out = format!("type=docker,dest={}", tar.display());
    env.build_ok(&["--output", &out, c]);
    assert_eq!(read_file(&tar, "cache-count").trim(), "1");
    assert_eq!(read_file(&tar, "from-bind"), "v1\n");
    assert_eq!(read_file(&tar, "bind-mode"), "ro\n");
    assert_eq!(read_file(&tar, "from-stage"), "tool output\n");
    let (files, _) = flatten(&tar);
    for leak in ["var/cache/app", "var/cache", "mnt/src", "mnt", "t"] {
        assert!(
            !files.contains_key(leak),
            "mount point {leak} leaked into the image"
        );
    }

    // The cache mount keeps its contents across a --no-cache build.
    let tar2 = env.root.path("two.tar");
    let out2 = format!("type=docker,dest={}", tar2.display());
    env.build_ok(&["--no-cache", "--output", &out2, c]);
    assert_eq!(read_file(&tar2, "cache-count").trim(), "2");

    // Changing the bound file reruns the bind step (and only steps from there on).
    fs::write(ctx.join("src/input.txt"), "v2\n").unwrap();
    let (_, log) = env.build_ok(&[c]);
    let run_steps: Vec<(String, bool)> = steps(&log)
        .into_iter()
        .filter(|(l, _)| l.contains("] RUN"))
        .collect();
    let cached: Vec<bool> = run_steps.iter().map(|(_, c)| *c).collect();
    assert_eq!(cached, vec![true, true, false, false], "{log}");
}
