//! `berth cp` raced by the container (Docker's CVE-2018-15664): a process inside swaps a
//! directory and a symlink to a host directory in a tight loop (`renameat2(RENAME_EXCHANGE)`)
//! while `cp` copies out of and into that directory hundreds of times. Nothing of the host
//! may be read, nothing on the host may be written.

mod run_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{require_command, run_ok};
use run_support::{stdout, Fixture};

/// Exchanges its two arguments forever (busybox has no renameat2 tool).
const SWAP_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], 2 /* RENAME_EXCHANGE */);
}
"#;

/// What the host directory the symlink points at holds; never to be seen in a copy.
const CANARY: &str = "host canary: berth cp read the host";

/// How many copies each way, and the most time they may take.
const ROUNDS: usize = 250;
const BUDGET: Duration = Duration::from_secs(45);

/// A host directory outside any store, removed on drop.
struct HostDir(PathBuf);

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Builds the static swap helper into `dir`.
fn build_swapper(dir: &Path) -> PathBuf {
    let cc = require_command("cc", "build-essential");
    let src = dir.join("swap.c");
    fs::write(&src, SWAP_C).unwrap();
    let bin = dir.join("swap");
    run_ok(
        Command::new(cc)
            .args(["-static", "-O2", "-o"])
            .arg(&bin)
            .arg(&src),
    );
    bin
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let content = fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), content)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn cp_cannot_be_raced_out_of_the_container() {
    let mut f = Fixture::new();
    let canary = HostDir(PathBuf::from(format!(
        "/tmp/berth-cp-race-canary-{}",
        std::process::id()
    )));
    fs::create_dir_all(&canary.0).unwrap();
    fs::write(canary.0.join("secret"), CANARY).unwrap();
    let before = listing(&canary.0);

    let helper = tempfile::tempdir().unwrap();
    build_swapper(helper.path());
    let name = f.name("cp-race");
    let script = format!(
        "mkdir -p /x/w/d && echo inside > /x/w/secret && ln -s {} /x/wl && exec /h/swap /x/w /x/wl",
        canary.0.display()
    );
    run_ok(f.berth().args([
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{}:/h:ro", helper.path().display()),
        "busybox",
        "sh",
        "-c",
        &script,
    ]));
    // The loop is running once /x/wl exists.
    let start = Instant::now();
    loop {
        let out = f
            .berth()
            .args(["exec", &name, "ls", "/x"])
            .output()
            .unwrap();
        if stdout(&out).contains("wl") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "swap loop never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("payload");
    fs::write(&src, "payload from the host").unwrap();
    // A directory whose contents go into /x/w/d: one window per file.
    let batch = host.path().join("batch");
    fs::create_dir(&batch).unwrap();
    for k in 0..10 {
        fs::write(batch.join(format!("in-batch-{k}")), "batch from the host").unwrap();
    }
    let start = Instant::now();
    let (mut read_host, mut copied_out, mut copied_in, mut rounds) = (0, 0, 0, 0);
    while rounds < ROUNDS && start.elapsed() < BUDGET {
        let dest = host.path().join(format!("out-{rounds}"));
        let out = f
            .berth()
            .args(["cp", &format!("{name}:/x/w/secret")])
            .arg(&dest)
            .output()
            .unwrap();
        if out.status.success() {
            copied_out += 1;
        }
        if fs::read(&dest).is_ok_and(|b| b == CANARY.as_bytes()) {
            read_host += 1;
        }
        let mut cp_in = f.berth();
        cp_in.arg("cp");
        if rounds % 2 == 0 {
            cp_in.arg(&src).arg(format!("{name}:/x/w/in-{rounds}"));
        } else {
            cp_in.arg(batch.join(".")).arg(format!("{name}:/x/w/d"));
        }
        let out = cp_in.output().unwrap();
        if out.status.success() {
            copied_in += 1;
        }
        rounds += 1;
    }
    let after = listing(&canary.0);
    eprintln!(
        "{rounds} rounds in {:?}: {copied_out} copies out and {copied_in} in succeeded",
        start.elapsed()
    );
    run_ok(f.berth().args(["rm", "-f", &name]));
    assert!(rounds >= 50, "only {rounds} rounds ran");
    assert!(
        copied_out > 0 && copied_in > 0,
        "no copy succeeded: the race test tested nothing"
    );
    let written: Vec<&String> = after
        .iter()
        .filter(|e| !before.contains(e))
        .map(|(name, _)| name)
        .collect();
    assert!(
        read_host == 0 && written.is_empty(),
        "{read_host} copies out read the host's file; copies in wrote {written:?} into the \
         host directory {}",
        canary.0.display()
    );
}
