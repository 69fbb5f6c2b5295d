//! Container probes as the kubelet runs them: an action (httpGet, tcpSocket, exec), run every
//! `periodSeconds` once `initialDelaySeconds` have passed since the container started, each
//! run bounded by `timeoutSeconds`; the probe's result flips only after `successThreshold`
//! successes or `failureThreshold` failures in a row. A readiness probe starts as failed
//! (not ready until it passes), a liveness probe as passed.

use std::future::Future;
use std::time::Duration;

use berth_engine::container::ProbeOutput;
use tokio::time::Instant;

/// How much longer than its timeout an `exec` probe is given before it counts as timed out
/// here: the command's own timeout is enforced where it runs (its monitor kills it), and
/// starting it takes a moment.
const EXEC_GRACE: Duration = Duration::from_secs(5);

/// What a probe does, with its target already resolved (pod IP, port number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// `httpGet`: a GET whose status must be 200-399.
    HttpGet {
        /// `https` or `http` (the default).
        https: bool,
        /// The host: `httpGet.host`, else the pod IP.
        host: String,
        /// The port number.
        port: u16,
        /// The path, `/` when not given.
        path: String,
        /// `httpHeaders`.
        headers: Vec<(String, String)>,
    },
    /// `tcpSocket`: a connection must open.
    TcpSocket {
        /// The host: `tcpSocket.host`, else the pod IP.
        host: String,
        /// The port number.
        port: u16,
    },
    /// `exec`: the command, run in the container, must exit 0.
    Exec {
        /// The argv (not run through a shell).
        command: Vec<String>,
    },
}

/// A probe with the kubelet's timing (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// What it runs.
    pub action: ProbeAction,
    /// `initialDelaySeconds` (default 0).
    pub initial_delay: Duration,
    /// `periodSeconds` (default 10).
    pub period: Duration,
    /// `timeoutSeconds` (default 1).
    pub timeout: Duration,
    /// `successThreshold` (default 1; always 1 for liveness).
    pub success_threshold: u32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: u32,
}

impl Probe {
    /// A probe with the Kubernetes defaults; each `Option` is the field as written (seconds or
    /// counts), zero or absent meaning the default as the API server fills it in.
    pub fn with_defaults(
        action: ProbeAction,
        initial_delay_seconds: Option<u32>,
        period_seconds: Option<u32>,
        timeout_seconds: Option<u32>,
        success_threshold: Option<u32>,
        failure_threshold: Option<u32>,
    ) -> Probe {
        let positive = |v: Option<u32>, default: u32| v.filter(|n| *n > 0).unwrap_or(default);
        Probe {
            action,
            initial_delay: Duration::from_secs(initial_delay_seconds.unwrap_or(0).into()),
            period: Duration::from_secs(positive(period_seconds, 10).into()),
            timeout: Duration::from_secs(positive(timeout_seconds, 1).into()),
            success_threshold: positive(success_threshold, 1),
            failure_threshold: positive(failure_threshold, 3),
        }
    }
}

/// Which probe: the result's starting value and what a failure means differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Failure restarts the container; starts as passed.
    Liveness,
    /// Failure marks the container not ready; starts as failed.
    Readiness,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Success,
    /// It failed, with the reason the kubelet would put in an event.
    Failure(String),
}

/// Runs `exec` probes in a container: the pod controller supplies it.
pub trait ExecInContainer {
    /// Why a command gave no exit code (it could not be run, or timed out).
    type Error: std::error::Error + Send;
    /// Runs `command` in the container, killing it after `timeout`; returns its exit code
    /// and output.
    fn exec(
        &self,
        command: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ProbeOutput, Self::Error>> + Send;
}

/// Runs `action` once, bounded by `timeout`.
pub async fn run_once(
    action: &ProbeAction,
    timeout: Duration,
    exec: &impl ExecInContainer,
) -> Outcome {
    let attempt = async {
        match action {
            ProbeAction::HttpGet {
                https,
                host,
                port,
                path,
                headers,
            } => http_get(*https, host, *port, path, headers, timeout).await,
            ProbeAction::TcpSocket { host, port } => {
                match tokio::net::TcpStream::connect((host.as_str(), *port)).await {
                    Ok(_) => Outcome::Success,
                    Err(e) => Outcome::Failure(format!("dial tcp {host}:{port}: {e}")),
                }
            }
            ProbeAction::Exec { command } => match exec.exec(command, timeout).await {
                Ok(out) if out.exit_code == 0 => Outcome::Success,
                Ok(out) => Outcome::Failure(exec_failure(command, &out)),
                Err(e) => Outcome::Failure(format!("command {command:?}: {e}")),
            },
        }
    };
    let limit = match action {
        ProbeAction::Exec { .. } => timeout + EXEC_GRACE,
        _ => timeout,
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failure(format!("probe timed out after {}s", timeout.as_secs_f64())),
    }
}

/// The reason of a failed `exec` probe: its exit code and, as the kubelet, its output.
fn exec_failure(command: &[String], out: &ProbeOutput) -> String {
    let code = out.exit_code;
    match out.output.trim() {
        "" => format!("command {command:?} exited with {code}"),
        output => format!("command {command:?} exited with {code}: {output}"),
    }
}

async fn http_get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    let scheme = if https { "https" } else { "http" };
    let host_part = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("{scheme}://{host_part}:{port}{path}");
    // As the kubelet: no certificate checks, redirects followed, no proxy.
    let client = match reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("kube-probe/", "1.32"))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failure(format!("http client for {url}: {e}")),
    };
    let mut request = client.get(&url).header("Accept", "*/*");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            if (200..400).contains(&code) {
                Outcome::Success
            } else {
                Outcome::Failure(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        Err(e) => Outcome::Failure(format!("Get {url:?}: {e}")),
    }
}

/// One probe of one container: when it is due and what its result is.
#[derive(Debug, Clone)]
pub struct ProbeWorker {
    probe: Probe,
    kind: ProbeKind,
    started: Instant,
    next_run: Instant,
    passed: bool,
    /// Consecutive runs agreeing with `last`.
    streak: u32,
    last: Option<bool>,
    /// The reason of the last failure.
    last_failure: Option<String>,
}

impl ProbeWorker {
    /// The worker for a container that started at `started`.
    pub fn new(mut probe: Probe, kind: ProbeKind, started: Instant) -> ProbeWorker {
        if kind == ProbeKind::Liveness {
            // The API server refuses anything else for liveness.
            probe.success_threshold = 1;
        }
        ProbeWorker {
            next_run: started + probe.initial_delay,
            probe,
            kind,
            started,
            passed: kind == ProbeKind::Liveness,
            streak: 0,
            last: None,
            last_failure: None,
        }
    }

    /// The probe it runs.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// Which probe it is.
    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// When the container started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When it should run next.
    pub fn next_run(&self) -> Instant {
        self.next_run
    }

    /// Whether a run is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_run
    }

    /// The current result: ready (readiness) or alive (liveness).
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Why the last run failed, if it did.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Records a run that finished at `now`; returns the new result when it changed.
    pub fn record(&mut self, outcome: &Outcome, now: Instant) -> Option<bool> {
        self.next_run = now + self.probe.period;
        let ok = matches!(outcome, Outcome::Success);
        self.last_failure = match outcome {
            Outcome::Success => None,
            Outcome::Failure(reason) => Some(reason.clone()),
        };
        if self.last == Some(ok) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.streak = 1;
        }
        let threshold = if ok {
            self.probe.success_threshold
        } else {
            self.probe.failure_threshold
        };
        if self.streak >= threshold && self.passed != ok {
            self.passed = ok;
            return Some(ok);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoExec;
    impl ExecInContainer for NoExec {
        type Error = std::io::Error;
        async fn exec(
            &self,
            command: &[String],
            timeout: Duration,
        ) -> Result<ProbeOutput, Self::Error> {
            let exited = |exit_code, output: &str| {
                Ok(ProbeOutput {
                    exit_code,
                    output: output.into(),
                })
            };
            match command.first().map(String::as_str) {
                Some("true") => exited(0, ""),
                Some("sleep") => {
                    // As the monitor: killed at the timeout, which is an error.
                    tokio::time::sleep(timeout).await;
                    Err(std::io::Error::other("command timed out"))
                }
                Some("cat") => exited(1, "cat: /tmp/ready: No such file\n"),
                _ => exited(1, ""),
            }
        }
    }

    struct BrokenExec;
    impl ExecInContainer for BrokenExec {
        type Error = std::io::Error;
        async fn exec(&self, _: &[String], _: Duration) -> Result<ProbeOutput, Self::Error> {
            Err(std::io::Error::other("no such container"))
        }
    }

    #[tokio::test]
    async fn a_command_that_cannot_run_fails_with_the_reason() {
        let action = ProbeAction::Exec {
            command: vec!["true".into()],
        };
        let outcome = run_once(&action, Duration::from_secs(1), &BrokenExec).await;
        assert!(
            matches!(&outcome, Outcome::Failure(m) if m.contains("no such container")),
            "{outcome:?}"
        );
    }

    fn probe(success: u32, failure: u32) -> Probe {
        Probe::with_defaults(
            ProbeAction::TcpSocket {
                host: "127.0.0.1".into(),
                port: 1,
            },
            Some(5),
            Some(2),
            None,
            Some(success),
            Some(failure),
        )
    }

    #[test]
    fn defaults_are_the_api_servers() {
        let p = Probe::with_defaults(
            ProbeAction::Exec { command: vec![] },
            None,
            Some(0),
            None,
            None,
            None,
        );
        assert_eq!(p.initial_delay, Duration::ZERO);
        assert_eq!(p.period, Duration::from_secs(10));
        assert_eq!(p.timeout, Duration::from_secs(1));
        assert_eq!((p.success_threshold, p.failure_threshold), (1, 3));
    }

    #[test]
    fn readiness_waits_for_the_success_threshold_and_the_delay() {
        let t0 = Instant::now();
        let mut w = ProbeWorker::new(probe(2, 3), ProbeKind::Readiness, t0);
        assert!(!w.passed(), "readiness starts as failed");
        assert!(!w.due(t0 + Duration::from_secs(4)));
        assert!(w.due(t0 + Duration::from_secs(5)));
        let t = t0 + Duration::from_secs(5);
        assert_eq!(w.record(&Outcome::Success, t), None);
        assert_eq!(w.next_run(), t + Duration::from_secs(2));
        assert_eq!(w.record(&Outcome::Success, t), Some(true));
        assert!(w.passed());
        assert_eq!(w.record(&Outcome::Success, t), None);
    }

    #[test]
    fn liveness_fails_only_after_failure_threshold_in_a_row() {
        let t = Instant::now();
        let mut w = ProbeWorker::new(probe(1, 3), ProbeKind::Liveness, t);
        assert!(w.passed(), "liveness starts as passed");
        let fail = Outcome::Failure("x".into());
        assert_eq!(w.record(&fail, t), None);
        assert_eq!(w.record(&fail, t), None);
        assert_eq!(
            w.record(&Outcome::Success, t),
            None,
            "a success breaks the streak"
        );
        assert_eq!(w.record(&fail, t), None);
        assert_eq!(w.record(&fail, t), None);
        assert_eq!(w.record(&fail, t), Some(false));
        assert_eq!(w.last_failure(), Some("x"));
        assert!(!w.passed());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_reach_a_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let status = if req.starts_with("GET /ok ") {
                    "200 OK"
                } else if req.starts_with("GET /moved ") {
                    "302 Found\r\nLocation: /ok"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let t = Duration::from_secs(2);
        let get = |path: &str| ProbeAction::HttpGet {
            https: false,
            host: "127.0.0.1".into(),
            port,
            path: path.into(),
            headers: vec![("X-Probe".into(), "1".into())],
        };
        assert_eq!(run_once(&get("/ok"), t, &NoExec).await, Outcome::Success);
        assert_eq!(run_once(&get("moved"), t, &NoExec).await, Outcome::Success);
        assert!(matches!(
            run_once(&get("/bad"), t, &NoExec).await,
            Outcome::Failure(m) if m.contains("503")
        ));
        let tcp = ProbeAction::TcpSocket {
            host: "127.0.0.1".into(),
            port,
        };
        assert_eq!(run_once(&tcp, t, &NoExec).await, Outcome::Success);
    }

    #[tokio::test]
    async fn closed_ports_and_slow_or_failing_commands_fail() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = Duration::from_millis(500);
        let tcp = ProbeAction::TcpSocket {
            host: "127.0.0.1".into(),
            port: closed,
        };
        assert!(matches!(
            run_once(&tcp, t, &NoExec).await,
            Outcome::Failure(_)
        ));
        let cmd = |c: &str| ProbeAction::Exec {
            command: vec![c.to_string()],
        };
        assert_eq!(run_once(&cmd("true"), t, &NoExec).await, Outcome::Success);
        assert!(matches!(
            run_once(&cmd("false"), t, &NoExec).await,
            Outcome::Failure(m) if m.contains("exited with 1")
        ));
        assert!(matches!(
            run_once(&cmd("sleep"), t, &NoExec).await,
            Outcome::Failure(m) if m.contains("command timed out")
        ));
        assert_eq!(
            run_once(&cmd("cat"), t, &NoExec).await,
            Outcome::Failure(
                r#"command ["cat"] exited with 1: cat: /tmp/ready: No such file"#.into()
            )
        );
    }
}
