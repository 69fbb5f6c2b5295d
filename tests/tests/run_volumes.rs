//! `berth run` volumes and mounts end to end, as root: bind mounts read-write and read-only
//! (EROFS inside), `-v` creating a missing host directory and `--mount` refusing one, named
//! volumes created on first use, populated from the image (owners, modes, symlinks) and
//! outliving their container, anonymous volumes for the image's `VOLUME`s and `-v /dst`
//! (kept by `rm`, removed by `rm -v` and `--rm`), tmpfs mounts, user mounts replacing
//! berth's own at the same place (`/dev/shm`, `/etc/hosts`), `berth volume
//! create|ls|inspect|rm|prune`, and bad mount input refused before anything is made. Each test
//! has its own store and private network settings (the `run_support` fixture).

mod run_support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_tests::run_ok;
use run_support::{stderr, stdout, Fixture};

/// Runs `berth ARGS` and returns its output, whatever the exit code.
fn berth(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.berth().args(args).output().unwrap()
}

fn volume_names(f: &Fixture) -> Vec<String> {
    let out = run_ok(f.berth().args(["volume", "ls", "-q"]));
    stdout(&out).lines().map(str::to_string).collect()
}

fn volume_data(f: &Fixture, name: &str) -> PathBuf {
    f.root.store().join("volumes").join(name).join("_data")
}

/// Builds `seeded`: busybox with content in `/seed` (a file owned 1234:5678 mode 0640, a
/// symlink, a subdirectory) and `VOLUME /anon` (holding a file of its own).
fn build_seeded(f: &Fixture) {
    let ctx = f.root.path("seeded-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         RUN mkdir -p /seed/sub /anon && echo seeded > /seed/file && chown 1234:5678 /seed/file \
         && chmod 640 /seed/file && ln -s file /seed/link && echo deep > /seed/sub/deep \
         && chmod 750 /seed && echo anon > /anon/a\n\
         VOLUME /anon\n",
    )
    .unwrap();
    run_ok(
        f.berth()
            .args(["build", "-t", "seeded"])
            .arg(&ctx)
            .stderr(std::process::Stdio::null()),
    );
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let mut f = Fixture::new();
    let host = f.root.path("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let h = host.display().to_string();

    // Read-write: the container reads the host's file and its write shows on the host.
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{h}:/h"),
        "busybox",
        "sh",
        "-c",
        "cat /h/in && echo written > /h/out",
    ]));
    assert_eq!(stdout(&out), "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "written\n"
    );

    // Read-only (`:ro` and `--mount ...,readonly`): reads work, writes fail with EROFS.
    for flag in [
        vec!["-v".to_string(), format!("{h}:/h:ro")],
        vec![
            "--mount".to_string(),
            format!("type=bind,source={h},target=/h,readonly"),
        ],
    ] {
        let name = f.name("ro");
        let mut cmd = f.berth();
        cmd.args(["run", "--name", &name, "--network", "none"])
            .args(&flag)
            .args(["busybox", "sh", "-c", "cat /h/in; echo nope > /h/denied"]);
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{flag:?}: write to a ro bind worked");
        assert_eq!(stdout(&out), "from host\n", "{flag:?}");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{flag:?}: {}",
            stderr(&out)
        );
        assert!(!host.join("denied").exists());
        run_ok(f.berth().args(["rm", &name]));
    }

    // `-v` creates a missing host directory (Docker's behaviour); `--mount` refuses it.
    let missing = f.root.path("made-by-v/deeper");
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "sh",
        "-c",
        "echo ok > /m/f",
    ]));
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(missing.join("f")).unwrap(), "ok\n");

    let other = f.root.path("never-made");
    let out = berth(
        &f,
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={},target=/m", other.display()),
            "busybox",
            "true",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bind source path does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!other.exists());
    assert!(f.container_dirs().is_empty(), "{:?}", f.container_dirs());
}

#[test]
fn named_volume_is_populated_from_the_image_and_outlives_its_container() {
    let mut f = Fixture::new();
    build_seeded(&f);
    let first = f.name("first");
    let out = run_ok(f.berth().args([
        "run",
        "--name",
        &first,
        "--network",
        "none",
        "-v",
        "seedvol:/seed",
        "seeded",
        "sh",
        "-c",
        "cat /seed/file /seed/link /seed/sub/deep; stat -c '%u:%g %a' /seed/file /seed; \
         echo added > /seed/added",
    ]));
    assert_eq!(
        stdout(&out),
        "seeded\nseeded\ndeep\n1234:5678 640\n0:0 750\n"
    );
    assert!(volume_names(&f).contains(&"seedvol".to_string()));
    let data = volume_data(&f, "seedvol");
    let meta = std::fs::metadata(data.join("file")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1234, 5678, 0o640)
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("file")
    );

    // Removing the container keeps the volume and its data.
    run_ok(f.berth().args(["rm", &first]));
    assert_eq!(
        std::fs::read_to_string(data.join("added")).unwrap(),
        "added\n"
    );

    // A second container sees it; the image is not copied over what is there now.
    std::fs::remove_file(data.join("file")).unwrap();
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seedvol:/seed",
        "seeded",
        "sh",
        "-c",
        "cat /seed/added; ls /seed",
    ]));
    assert_eq!(stdout(&out), "added\nadded\nlink\nsub\n");

    // `nocopy`: a new volume over the image's content stays empty.
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "emptyvol:/seed:nocopy",
        "seeded",
        "ls",
        "-A",
        "/seed",
    ]));
    assert_eq!(stdout(&out), "");
}

#[test]
fn anonymous_volumes_follow_rm_v_and_rm() {
    let mut f = Fixture::new();
    build_seeded(&f);

    // The image's VOLUME /anon gets an anonymous volume with the image's content.
    let keep = f.name("keep");
    let out = run_ok(f.berth().args([
        "run",
        "--name",
        &keep,
        "--network",
        "none",
        "seeded",
        "sh",
        "-c",
        "cat /anon/a; echo mine > /anon/b",
    ]));
    assert_eq!(stdout(&out), "anon\n");
    let names = volume_names(&f);
    assert_eq!(names.len(), 1, "{names:?}");
    let anon = names[0].clone();
    assert_eq!(anon.len(), 64, "{anon:?}");
    assert_eq!(
        std::fs::read_to_string(volume_data(&f, &anon).join("b")).unwrap(),
        "mine\n"
    );
    let inspect = stdout(&run_ok(f.berth().args(["volume", "inspect", &anon])));
    assert!(inspect.contains("com.docker.volume.anonymous"), "{inspect}");

    // Plain rm keeps it.
    run_ok(f.berth().args(["rm", &keep]));
    assert_eq!(volume_names(&f), vec![anon.clone()]);

    // rm -v removes the container's anonymous volumes (`-v /dst` and the image's), not
    // named ones.
    let gone = f.name("gone");
    run_ok(f.berth().args([
        "run",
        "--name",
        &gone,
        "--network",
        "none",
        "-v",
        "/scratch",
        "-v",
        "named1:/n",
        "seeded",
        "true",
    ]));
    assert_eq!(volume_names(&f).len(), 4, "{:?}", volume_names(&f));
    run_ok(f.berth().args(["rm", "-v", &gone]));
    let mut left = volume_names(&f);
    left.sort();
    let mut want = vec![anon.clone(), "named1".to_string()];
    want.sort();
    assert_eq!(left, want);

    // --rm removes its anonymous volumes too.
    run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/scratch",
        "busybox",
        "true",
    ]));
    let mut left = volume_names(&f);
    left.sort();
    assert_eq!(left, want);
}

#[test]
fn tmpfs_mounts() {
    let f = Fixture::new();
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/t1:size=1m,mode=1777",
        "--mount",
        "type=tmpfs,target=/t2,tmpfs-size=2m",
        "busybox",
        "sh",
        "-c",
        "grep -E ' /t[12] ' /proc/mounts; stat -c %a /t1; echo x > /t1/f && cat /t1/f",
    ]));
    let text = stdout(&out);
    let t1 = text
        .lines()
        .find(|l| l.contains(" /t1 "))
        .unwrap_or_default();
    let t2 = text
        .lines()
        .find(|l| l.contains(" /t2 "))
        .unwrap_or_default();
    assert!(
        t1.starts_with("tmpfs /t1 tmpfs") && t1.contains("size=1024k"),
        "{text}"
    );
    assert!(t1.contains("nosuid") && t1.contains("noexec"), "{text}");
    assert!(
        t2.starts_with("tmpfs /t2 tmpfs") && t2.contains("size=2048k"),
        "{text}"
    );
    assert!(text.ends_with("1777\nx\n"), "{text}");
    assert!(volume_names(&f).is_empty());

    // User mounts win over berth's own at the same place: /dev/shm and /etc/hosts.
    let hosts = f.root.path("my-hosts");
    std::fs::write(&hosts, "10.1.2.3 mine\n").unwrap();
    let out = run_ok(f.berth().args([
        "run",
        "--rm",
        "--tmpfs",
        "/dev/shm:size=3m",
        "-v",
        &format!("{}:/etc/hosts:ro", hosts.display()),
        "busybox",
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts; cat /etc/hosts",
    ]));
    let text = stdout(&out);
    assert_eq!(text.matches(" /dev/shm ").count(), 1, "{text}");
    assert!(text.contains("size=3072k"), "{text}");
    assert!(text.ends_with("10.1.2.3 mine\n"), "{text}");
}

#[test]
fn volume_commands() {
    let mut f = Fixture::new();
    let out = run_ok(f.berth().args([
        "volume", "create", "--label", "tier=db", "--label", "flag", "dbdata",
    ]));
    assert_eq!(stdout(&out), "dbdata\n");
    let unnamed = stdout(&run_ok(f.berth().args(["volume", "create"])))
        .trim()
        .to_string();
    assert_eq!(unnamed.len(), 64, "{unnamed:?}");

    let ls = stdout(&run_ok(f.berth().args(["volume", "ls"])));
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     dbdata\n"), "{ls}");
    let mut names = volume_names(&f);
    names.sort();
    let mut want = vec!["dbdata".to_string(), unnamed.clone()];
    want.sort();
    assert_eq!(names, want);

    let out = run_ok(f.berth().args(["volume", "inspect", "dbdata"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "dbdata");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["tier"], "db");
    assert_eq!(v["Labels"]["flag"], "");
    assert_eq!(
        v["Mountpoint"].as_str().unwrap(),
        volume_data(&f, "dbdata").to_str().unwrap()
    );
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    let out = berth(&f, &["volume", "inspect", "nosuch"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such volume: nosuch"),
        "{}",
        stderr(&out)
    );

    // In use (even by a stopped container): rm is refused, naming the container.
    let user = f.name("dbuser");
    run_ok(f.berth().args([
        "run",
        "--name",
        &user,
        "--network",
        "none",
        "-v",
        "dbdata:/d",
        "-v",
        "/anon1",
        "busybox",
        "true",
    ]));
    let out = berth(&f, &["volume", "rm", "dbdata"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("volume dbdata is in use by container dbuser"),
        "{}",
        stderr(&out)
    );
    let out = berth(&f, &["volume", "rm", "-f", "dbdata"]);
    assert!(!out.status.success(), "-f removed a volume in use");
    let dangling = stdout(&run_ok(f.berth().args([
        "volume",
        "ls",
        "-q",
        "--filter",
        "dangling=true",
    ])));
    assert_eq!(dangling, format!("{unnamed}\n"));
    let labelled = stdout(&run_ok(f.berth().args([
        "volume",
        "ls",
        "-q",
        "-f",
        "label=tier=db",
    ])));
    assert_eq!(labelled, "dbdata\n");
    assert!(volume_data(&f, "dbdata").is_dir());

    // Prune keeps what is in use; by default only anonymous volumes go.
    let out = run_ok(f.berth().args(["volume", "prune", "-f"]));
    assert_eq!(stdout(&out), "Total reclaimed space: 0B\n");
    assert_eq!(volume_names(&f).len(), 3);
    run_ok(f.berth().args(["rm", &user]));
    let out = run_ok(f.berth().args(["volume", "prune", "-f"]));
    let text = stdout(&out);
    assert!(text.starts_with("Deleted Volumes:\n"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}"); // header, one anonymous, blank, total
    let mut names = volume_names(&f);
    names.sort();
    assert_eq!(names, want);

    // Not in use any more: rm works; a missing volume fails unless -f.
    let out = run_ok(f.berth().args(["volume", "rm", "dbdata"]));
    assert_eq!(stdout(&out), "dbdata\n");
    assert!(!f.root.store().join("volumes/dbdata").exists());
    let out = berth(&f, &["volume", "rm", "dbdata"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such volume: dbdata"),
        "{}",
        stderr(&out)
    );
    run_ok(f.berth().args(["volume", "rm", "-f", "dbdata"]));

    // prune --all takes unused named volumes too; without -f it asks and "n" keeps them.
    let mut ask = f.berth();
    ask.args(["volume", "prune", "--all"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = ask.spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("Are you sure"), "{}", stderr(&out));
    assert_eq!(volume_names(&f), vec![unnamed.clone()]);
    run_ok(f.berth().args(["volume", "prune", "--all", "-f"]));
    assert!(volume_names(&f).is_empty());

    let out = berth(&f, &["volume", "create", "x/y"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid volume name"),
        "{}",
        stderr(&out)
    );
    assert!(volume_names(&f).is_empty());
}

#[test]
fn bad_mount_input_creates_nothing() {
    let f = Fixture::new();
    let host = f.root.path("h");
    std::fs::create_dir_all(&host).unwrap();
    let h = host.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-v".into(), "rel/dir:/x".into()],
            "must be an absolute path",
        ),
        (
            vec!["-v".into(), "./rel:/x".into()],
            "must be an absolute path",
        ),
        (
            vec!["-v".into(), format!("{h}::ro")],
            "invalid volume specification",
        ),
        (
            vec!["-v".into(), ":/x".into()],
            "invalid volume specification",
        ),
        (
            vec!["-v".into(), format!("{h}:/x:rx")],
            "invalid mount option \"rx\"",
        ),
        (
            vec!["-v".into(), format!("{h}:x")],
            "must be an absolute path",
        ),
        (vec!["-v".into(), "vol:/".into()], "cannot be '/'"),
        (vec!["-v".into(), "x".into()], "must be an absolute path"),
        (
            vec!["--mount".into(), "type=volume,target=/x,colour=red".into()],
            "unknown key \"colour\"",
        ),
        (
            vec!["--mount".into(), "type=nfs,target=/x".into()],
            "unknown type \"nfs\"",
        ),
        (
            vec!["--mount".into(), format!("type=bind,source={h}")],
            "target is required",
        ),
        (
            vec!["--tmpfs".into(), "/t:bogus".into()],
            "not a tmpfs mount option",
        ),
        (
            vec!["-v".into(), "/d".into(), "--tmpfs".into(), "/d".into()],
            "duplicate mount point: /d",
        ),
    ];
    for (flags, want) in cases {
        let out = f
            .berth()
            .args(["run", "--name", "badone", "--network", "none"])
            .args(&flags)
            .args(["busybox", "true"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(
            stderr(&out).contains(want),
            "{flags:?}: expected {want:?} in {}",
            stderr(&out)
        );
        assert!(
            f.container_dirs().is_empty(),
            "{flags:?}: {:?}",
            f.container_dirs()
        );
        assert!(
            !f.root.store().join("names/badone").exists(),
            "{flags:?}: the name stayed reserved"
        );
        assert!(
            !f.root.store().join("volumes").exists(),
            "{flags:?}: volumes made"
        );
    }
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
    // The name is free: a good run with it works.
    run_ok(f.berth().args([
        "run",
        "--rm",
        "--name",
        "badone",
        "--network",
        "none",
        "busybox",
        "true",
    ]));
}
