//! Build differential: the example Dockerfiles built by `berth build` and by
//! `buildah bud --runtime runc` from the same busybox base must give the same filesystem
//! (paths, types, modes, owners, contents, symlink targets) and the same config fields
//! (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels). Also: the images run
//! under podman (`podman load` of berth's docker-archive) and under berth's own RUN path.

mod build_support;

use std::path::Path;

use berth_tests::run_ok;
use build_support::{dockerfiles, flatten, BuildEnv, Buildah};

/// Files buildah (1.28) leaves in a RUN step's layer that BuildKit does not: the empty
/// mount points of the hostname/hosts/resolv.conf it binds and `/run`. Removed from its
/// side only when the berth image lacks them and buildah's are empty.
const BUILDAH_ARTIFACTS: [&str; 4] = ["etc/hostname", "etc/hosts", "etc/resolv.conf", "run"];

fn differential(example: &str, dockerfile: &str) {
    let env = BuildEnv::new();
    let context = dockerfiles().join(example);
    let file = context.join(dockerfile);
    let berth_tar = env.root.path("berth.tar");
    let out = format!("type=docker,dest={}", berth_tar.display());
    env.build_ok(&[
        "-f",
        file.to_str().unwrap(),
        "--output",
        &out,
        context.to_str().unwrap(),
    ]);
    let buildah = Buildah::new(env.root.path("buildah"));
    let buildah_tar = env.root.path("buildah.tar");
    buildah.build_to_archive(
        &context,
        &file,
        &format!("localhost/{example}:diff"),
        &buildah_tar,
    );

    let (berth_fs, berth_cfg) = flatten(&berth_tar);
    let (mut buildah_fs, buildah_cfg) = flatten(&buildah_tar);
    for a in BUILDAH_ARTIFACTS {
        if !berth_fs.contains_key(a) {
            if let Some(e) = buildah_fs.get(a) {
                let empty_file = e.kind == 'f'
                    && e.data == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
                if empty_file || e.kind == 'd' {
                    buildah_fs.remove(a);
                }
            }
        }
    }
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<&String> =
        berth_fs.keys().chain(buildah_fs.keys()).collect();
    for k in keys {
        let (a, b) = (berth_fs.get(k), buildah_fs.get(k));
        if a != b {
            diffs.push(format!("{k}: berth {a:?} buildah {b:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{example}: filesystems differ:\n{}",
        diffs.join("\n")
    );
    assert!(
        berth_fs.len() > 10,
        "{example}: the image has too few files to be busybox"
    );
    assert_eq!(berth_cfg, buildah_cfg, "{example}: config fields differ");
}

#[test]
fn static_site_matches_buildah() {
    differential("static-site", "Dockerfile");
}

#[test]
fn multistage_matches_buildah() {
    differential("multistage", "Dockerfile");
}

#[test]
fn args_and_user_match_buildah() {
    differential("args-user", "Dockerfile");
}

#[test]
fn custom_dockerignore_and_add_tar_match_buildah() {
    differential("ignore-context", "build.Dockerfile");
}

/// The multi-stage image runs under podman, and under berth's RUN path (a build FROM it).
#[test]
fn built_images_run_under_podman_and_berth() {
    let env = BuildEnv::new();
    let context = dockerfiles().join("multistage");
    let tar = env.root.path("ms.tar");
    let out = format!("type=docker,dest={}", tar.display());
    env.build_ok(&[
        "-t",
        "localhost/ms:run",
        "--output",
        &out,
        context.to_str().unwrap(),
    ]);
    let buildah = Buildah::new(env.root.path("podman"));
    run_ok(buildah.podman().arg("load").arg("-i").arg(&tar));
    let ran =
        run_ok(
            buildah
                .podman()
                .args(["run", "--rm", "--network", "none", "localhost/ms:run"]),
        );
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        "hello from the multi-stage image"
    );

    // Under berth: a build step runs the image's command through berth's runtime.
    let ctx = env.root.path("run-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM localhost/ms:run\nRUN hello > /ran.txt && grep -q 'multi-stage image' /ran.txt\n",
    )
    .unwrap();
    let (id, log) = env.build_ok(&["-t", "localhost/ms:ran", ctx.to_str().unwrap()]);
    assert!(id.starts_with("sha256:"), "{id}\n{log}");
}

/// A heredoc Dockerfile (berth only: buildah 1.28 lacks heredocs) builds and its RUN
/// output lands in the image.
#[test]
fn heredoc_example_builds() {
    let env = BuildEnv::new();
    let context = dockerfiles().join("heredoc");
    let tar = env.root.path("hd.tar");
    let out = format!("type=docker,dest={}", tar.display());
    env.build_ok(&["--output", &out, context.to_str().unwrap()]);
    let (fs, cfg) = flatten(Path::new(&tar));
    let greeting = fs
        .get("out/greeting.txt")
        .expect("greeting written by the RUN heredoc");
    assert_eq!(greeting.kind, 'f');
    assert!(fs.contains_key("etc/app.conf"));
    assert_eq!(
        cfg.0["Cmd"],
        serde_json::json!(["cat", "/out/greeting.txt"])
    );
}
