//! Idle and stalled clients cannot stop `berth daemon` from serving others: with its
//! open-file limit lowered to 256, hundreds of idle TCP connections and a TLS handshake
//! that never finishes are opened, and kubectl still gets an answer within a few seconds,
//! both with the connection limit derived from the file limit and with a limit above it
//! (accept then fails with EMFILE: the daemon must back off, not spin), while the
//! daemon's log stays small.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_tests::registry_fixtures::under_prlimit;
use berth_tests::{require_command, require_root, TestRoot};

/// Idle connections opened against the daemon: more than its file limit allows.
const IDLE: usize = 600;

struct Daemon {
    child: Child,
    kubeconfig: PathBuf,
    /// Bytes the daemon wrote to stderr (its log), counted and discarded: a daemon
    /// that spins logging must not fill the disk.
    logged: Arc<AtomicU64>,
    cache: PathBuf,
}

impl Daemon {
    /// `berth daemon` with at most 256 open files and `env` set; its log is counted.
    fn start(root: &TestRoot, env: &[(&str, &str)]) -> Daemon {
        let kubeconfig = root.store().join("daemon/kubeconfig");
        let mut cmd = root.berth();
        cmd.args(["daemon", "--listen", "127.0.0.1:0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = under_prlimit(&cmd, "--nofile=256:256")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth daemon");
        let logged = Arc::new(AtomicU64::new(0));
        let mut stderr = child.stderr.take().unwrap();
        let counter = logged.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64 << 10];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        let mut d = Daemon {
            child,
            kubeconfig,
            logged,
            cache: root.path("kube-cache"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(d.kubeconfig.exists() && root.store().join("daemon/api.sock").exists()) {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("berth daemon exited early: {status}");
            }
            assert!(Instant::now() < deadline, "daemon did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn addr(&self) -> SocketAddr {
        let text = std::fs::read_to_string(&self.kubeconfig).unwrap();
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: https://"))
            .expect("server in kubeconfig");
        server.trim().parse().unwrap()
    }

    /// How long `kubectl get --raw /version` takes; panics if it fails.
    fn kubectl_version_time(&self) -> Duration {
        let start = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(["--request-timeout=20s", "get", "--raw", "/version"])
            .output()
            .expect("run kubectl");
        let took = start.elapsed();
        assert!(
            out.status.success(),
            "kubectl failed after {took:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }

    fn log_size(&self) -> u64 {
        self.logged.load(Ordering::Relaxed)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `n` idle connections and one stuck in its TLS handshake (a ClientHello's first
/// bytes, never the rest); they stay open while the returned values live.
fn flood(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::new();
    let mut stalled = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    conns.push(stalled);
    for _ in 0..n {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            conns.push(c);
        }
    }
    conns
}

fn check(env: &[(&str, &str)]) {
    require_root();
    require_command("kubectl", "kubectl");
    require_command("prlimit", "util-linux");
    let root = TestRoot::with_private_network();
    let daemon = Daemon::start(&root, env);
    daemon.kubectl_version_time();
    let conns = flood(daemon.addr(), IDLE);
    assert!(conns.len() > 256, "only {} connections opened", conns.len());
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..3 {
        let took = daemon.kubectl_version_time();
        assert!(took < Duration::from_secs(3), "kubectl took {took:?}");
    }
    drop(conns);
    let size = daemon.log_size();
    assert!(size < 64 << 10, "daemon log grew to {size} bytes");
}

#[test]
fn idle_connections_past_the_limit_do_not_stop_kubectl() {
    check(&[]);
}

#[test]
fn running_out_of_file_descriptors_backs_off_quietly() {
    check(&[("BERTH_DAEMON_MAX_CONNECTIONS", "100000")]);
}
