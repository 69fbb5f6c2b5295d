//! Shared by the `berth run` tests: a store with busybox imported and its own private
//! network settings, removing the containers a test names when it ends.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use berth_tests::{busybox_rootfs_tar, require_root, run_ok, TestRoot};

/// A store with busybox imported, removing the containers it names on drop.
pub struct Fixture {
    pub root: TestRoot,
    names: Vec<String>,
}

impl Fixture {
    pub fn new() -> Self {
        require_root();
        let root = TestRoot::with_private_network();
        run_ok(
            root.berth()
                .arg("import")
                .arg(busybox_rootfs_tar())
                .arg("busybox"),
        );
        Fixture {
            root,
            names: Vec::new(),
        }
    }

    pub fn berth(&self) -> Command {
        self.root.berth()
    }

    /// Remembers `name` for removal on drop and returns it.
    pub fn name(&mut self, name: &str) -> String {
        self.names.push(name.to_string());
        name.to_string()
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.store().join("containers")
    }

    pub fn container_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.containers_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn ps(&self, all: bool) -> String {
        let mut cmd = self.berth();
        cmd.arg("ps");
        if all {
            cmd.arg("-a");
        }
        stdout(&run_ok(&mut cmd))
    }

    /// This test's nft table, listed.
    pub fn nft_table(&self) -> String {
        let net = self.root.private_network().expect("a private network");
        let out = Command::new("nft")
            .args(["list", "table", "ip", &net.table()])
            .output()
            .unwrap();
        stdout(&out)
    }

    pub fn container_count(&self) -> usize {
        std::fs::read_dir(self.root.store().join("containers"))
            .map(|rd| rd.count())
            .unwrap_or(0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.root.berth().args(["rm", "-f", name]).output();
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
