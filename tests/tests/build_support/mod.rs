//! Shared by the build tests: a test store with busybox imported, running `berth build`,
//! a private buildah/podman storage, and flattening a docker-archive into a comparable
//! filesystem listing plus the config fields a Dockerfile sets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_tests::{bin, busybox_rootfs_tar, require_command, require_root, run_ok, TestRoot};
use sha2::{Digest, Sha256};

/// The example Dockerfiles directory.
pub fn dockerfiles() -> PathBuf {
    berth_tests::workspace_root().join("Dockerfiles")
}

/// A test store holding `busybox:latest`.
pub struct BuildEnv {
    pub root: TestRoot,
}

impl BuildEnv {
    /// A store with busybox and this test's own cgroup parent (and network settings), so
    /// the RUN steps of builds running side by side never share the default parent and
    /// the parent is torn down with the test.
    pub fn new() -> Self {
        require_root();
        BuildEnv {
            root: TestRoot::with_busybox(),
        }
    }

    /// `berth build ARGS...`; the output whatever the exit status.
    pub fn build(&self, args: &[&str]) -> Output {
        let mut cmd = self.root.berth();
        cmd.arg("build").args(args);
        cmd.output().expect("run berth build")
    }

    /// `berth build ARGS...`, which must succeed; returns (image id, stderr).
    pub fn build_ok(&self, args: &[&str]) -> (String, String) {
        let mut cmd = self.root.berth();
        cmd.arg("build").args(args);
        let out = run_ok(&mut cmd);
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Step labels (`[stage-0 3/7] COPY a.txt /a.txt`) of a plain progress log, with
/// whether each was CACHED, in order.
pub fn steps(progress: &str) -> Vec<(String, bool)> {
    let mut labels: BTreeMap<usize, (String, bool)> = BTreeMap::new();
    for line in progress.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((id, text)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(id) = id.parse::<usize>() else {
            continue;
        };
        if text.starts_with('[') {
            labels.insert(id, (text.to_string(), false));
        } else if text == "CACHED" {
            if let Some(e) = labels.get_mut(&id) {
                e.1 = true;
            }
        }
    }
    labels.into_values().collect()
}

/// One path of a flattened image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `f`, `d`, `l` or `o`.
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// sha256 of a file's content, or a symlink's target.
    pub data: String,
}

/// The config fields the differential compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFields(pub BTreeMap<&'static str, serde_json::Value>);

fn normalize(name: &str) -> String {
    name.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Applies a docker-archive's layers in order (whiteouts included) and reads its config.
pub fn flatten(archive: &Path) -> (BTreeMap<String, Entry>, ConfigFields) {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut outer = tar::Archive::new(std::fs::File::open(archive).expect("open archive"));
    for e in outer.entries().expect("read archive") {
        let mut e = e.expect("archive entry");
        let name = e.path().expect("entry path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read entry");
        files.insert(name, data);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let config: serde_json::Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().expect("Config")])
            .expect("config json");
    let mut fs: BTreeMap<String, Entry> = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().expect("Layers") {
        let bytes = &files[layer.as_str().expect("layer path")];
        let reader: Box<dyn Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(&bytes[..]))
        } else {
            Box::new(&bytes[..])
        };
        let mut tar = tar::Archive::new(reader);
        for e in tar.entries().expect("layer entries") {
            let mut e = e.expect("layer entry");
            let name = normalize(&e.path().expect("path").to_string_lossy());
            if name.is_empty() || name == "." {
                continue;
            }
            let (dir, base) = match name.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), name.clone()),
            };
            let under = |p: &str, d: &str| d.is_empty() || p.starts_with(&format!("{d}/"));
            if base == ".wh..wh..opq" {
                fs.retain(|p, _| !(under(p, &dir) && p != &dir));
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    gone.to_string()
                } else {
                    format!("{dir}/{gone}")
                };
                fs.retain(|p, _| p != &target && !p.starts_with(&format!("{target}/")));
                continue;
            }
            let h = e.header();
            let mode = h.mode().expect("mode") & 0o7777;
            let uid = h.uid().expect("uid");
            let gid = h.gid().expect("gid");
            let kind = h.entry_type();
            let entry = if kind.is_hard_link() {
                let target = normalize(
                    &e.link_name()
                        .expect("link")
                        .expect("link name")
                        .to_string_lossy(),
                );
                let mut t = fs.get(&target).cloned().expect("hard link target present");
                t.mode = mode;
                t
            } else if kind.is_file() {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("file data");
                Entry {
                    kind: 'f',
                    mode,
                    uid,
                    gid,
                    data: hex::encode(Sha256::digest(&data)),
                }
            } else if kind.is_dir() {
                Entry {
                    kind: 'd',
                    mode,
                    uid,
                    gid,
                    data: String::new(),
                }
            } else if kind.is_symlink() {
                Entry {
                    kind: 'l',
                    mode: 0,
                    uid,
                    gid,
                    data: e
                        .link_name()
                        .expect("link")
                        .expect("symlink target")
                        .to_string_lossy()
                        .into_owned(),
                }
            } else {
                Entry {
                    kind: 'o',
                    mode,
                    uid,
                    gid,
                    data: String::new(),
                }
            };
            if entry.kind != 'd' {
                fs.retain(|p, _| !p.starts_with(&format!("{name}/")));
            }
            fs.insert(name, entry);
        }
    }
    let c = &config["config"];
    let mut fields = BTreeMap::new();
    for key in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Labels",
    ] {
        let mut v = c.get(key).cloned().unwrap_or(serde_json::Value::Null);
        if v == serde_json::json!("") || v == serde_json::json!({}) || v == serde_json::json!([]) {
            v = serde_json::Value::Null;
        }
        if key == "Labels" {
            if let Some(m) = v.as_object_mut() {
                m.remove("io.buildah.version");
                if m.is_empty() {
                    v = serde_json::Value::Null;
                }
            }
        }
        fields.insert(key, v);
    }
    (fs, ConfigFields(fields))
}

/// A private buildah/podman storage under a test directory, with the `CONTAINERS_CONF`
/// this host needs (no CAP_SYS_RESOURCE: nofile within the hard limit; runc). Removed,
/// mounts included, on drop.
pub struct Buildah {
    dir: PathBuf,
    conf: PathBuf,
}

impl Buildah {
    /// Storage under `dir` with `busybox.tar` imported as `localhost/busybox:latest`.
    pub fn new(dir: PathBuf) -> Self {
        require_command("buildah", "buildah");
        require_command("podman", "podman");
        require_command("runc", "runc");
        std::fs::create_dir_all(&dir).expect("buildah dir");
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .expect("write containers.conf");
        let b = Buildah { dir, conf };
        run_ok(
            b.podman()
                .arg("import")
                .arg(busybox_rootfs_tar())
                .arg("localhost/busybox:latest"),
        );
        b
    }

    fn storage(&self, cmd: &mut Command) {
        cmd.env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--storage-driver")
            .arg("overlay");
    }

    /// `podman` on this storage.
    pub fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        self.storage(&mut cmd);
        cmd
    }

    /// `buildah` on this storage.
    pub fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        self.storage(&mut cmd);
        cmd
    }

    /// `buildah bud` of `dockerfile` in `context` as `tag`, exported to a docker-archive.
    pub fn build_to_archive(&self, context: &Path, dockerfile: &Path, tag: &str, out: &Path) {
        run_ok(
            self.buildah()
                .args([
                    "bud",
                    "--layers",
                    "--runtime",
                    "/usr/sbin/runc",
                    "--network",
                    "host",
                ])
                .args([
                    "--build-arg",
                    "BASE=localhost/busybox:latest",
                    "-q",
                    "-t",
                    tag,
                    "-f",
                ])
                .arg(dockerfile)
                .arg(context),
        );
        run_ok(
            self.buildah()
                .args(["push", "-q", tag])
                .arg(format!("docker-archive:{}", out.display())),
        );
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.buildah().args(["rm", "--all"]).output();
        let _ = self.podman().args(["rm", "--all", "--force"]).output();
        let _ = self.podman().args(["rmi", "--all", "--force"]).output();
        // Whatever storage left mounted under our directory goes before the files do.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The berth binary's path (for messages).
pub fn berth_bin() -> PathBuf {
    bin("berth")
}
