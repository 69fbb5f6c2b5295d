//! Container commands: run, ps, logs, stop, kill, wait, rm (attach, start and restart are in
//! `attach`; the monitor `run` starts for each container is the `berth-monitor` binary).
//! Docker's flags and output shapes.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_engine::container::health::{parse_duration, HealthFlags};
use berth_engine::container::logs::LogOptions;
use berth_engine::container::{
    self, monitor, ContainerConfig, ContainerError, Containers, LogReader, MonitorConfig,
    RunOptions, Settings, State, Status, Stream,
};
use berth_engine::labels::{self, LabelFilter};
use berth_engine::network::{parse_publish, NetworkMode};
use berth_engine::pod::Pods;
use clap::Args;

use crate::format::{align_columns, human_duration, Template};
use crate::Globals;

/// `berth run`.
#[derive(Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Name of the container.
    #[arg(long)]
    name: Option<String>,
    /// Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp].
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish every port the image exposes to a free host port.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Set an environment variable (NAME=value, or NAME to take berth's own).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// User (name or uid, optionally :group).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Replace the image's entrypoint ("" clears it).
    #[arg(long)]
    entrypoint: Option<String>,
    /// The container's host name.
    #[arg(long)]
    hostname: Option<String>,
    #[command(flatten)]
    storage: Box<crate::volumes::RunStorageArgs>,
    #[command(flatten)]
    security: crate::security::RunSecurityArgs,
    /// Keep stdin open (attach it in the foreground).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give the container a terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Restart policy: no, on-failure[:max-retries], always or unless-stopped.
    #[arg(long, default_value = "no")]
    restart: String,
    /// Command to run to check health (run by /bin/sh -c in the container).
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 500ms).
    #[arg(long)]
    health_interval: Option<String>,
    /// Longest time one health check may run.
    #[arg(long)]
    health_timeout: Option<String>,
    /// Consecutive failures that make the container unhealthy.
    #[arg(long)]
    health_retries: Option<u32>,
    /// Time after the start during which failures do not count.
    #[arg(long)]
    health_start_period: Option<String>,
    /// Disable the image's health check.
    #[arg(long)]
    no_healthcheck: bool,
    /// Log driver option: max-size=SIZE, max-file=N.
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Network mode: bridge (the default), none, host or container:NAME (another
    /// container's network namespace).
    #[arg(long)]
    network: Option<String>,
    /// Join a pod (name or id): its network, IPC and UTS namespaces, ports and host name.
    #[arg(long)]
    pod: Option<String>,
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// The image, then the command and its arguments (options end at the image, as in Docker).
    #[arg(
        value_name = "IMAGE [COMMAND [ARG...]]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    image_and_cmd: Vec<String>,
}

/// `berth ps`.
#[derive(Args)]
pub struct PsArgs {
    /// Show every container (by default only running ones).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only print ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Output format: a Go template (`{{.Names}}`), `table TEMPLATE`, or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Only containers matching: name=SUBSTRING, id=PREFIX, status=created|running|exited,
    /// label=KEY[=VALUE] or pod=POD.
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
}

/// `berth logs`.
#[derive(Args)]
pub struct LogsArgs {
    /// Keep printing output until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only lines since a time (RFC 3339, Unix seconds, or a duration ago such as 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// The container.
    pub container: String,
}

/// `berth stop`.
#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth kill`.
#[derive(Args)]
pub struct KillArgs {
    /// The signal (name, SIGNAME or number).
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    signal: String,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Kill running containers first.
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the containers' anonymous volumes too.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth wait`.
#[derive(Args)]
pub struct WaitArgs {
    /// The containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// The containers of `g`'s store with the installation settings from the environment:
/// `BERTH_BRIDGE`, `BERTH_SUBNET`, `BERTH_NFT_TABLE` and `BERTH_CGROUP_PARENT` (dockerd's
/// `--bridge`, `--fixed-cidr`, `--cgroup-parent`), each defaulting to berth's own.
pub fn open(g: &Globals) -> Result<Containers> {
    Ok(Containers::new(&g.root).with_settings(settings()?))
}

/// The installation settings from the environment (see [`open`]).
pub fn settings() -> Result<Settings> {
    let defaults = Settings::host_default();
    let var = |name: &str, default: &str| -> Result<String> {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(default.to_string()),
            Err(e) => Err(e).with_context(|| format!("environment variable {name}")),
        }
    };
    let net = defaults.network_config();
    let settings = Settings::new(
        &var("BERTH_BRIDGE", net.bridge())?,
        &var("BERTH_SUBNET", &net.subnet().to_string())?,
        &var("BERTH_NFT_TABLE", net.table())?,
        &var("BERTH_CGROUP_PARENT", defaults.cgroup_parent())?,
    )
    .context("berth settings (BERTH_BRIDGE, BERTH_SUBNET, BERTH_NFT_TABLE, BERTH_CGROUP_PARENT)")?;
    Ok(settings)
}

/// Creates and starts a container; in the foreground, streams its output and exits with its
/// exit code.
pub fn run(g: &Globals, a: RunArgs) -> Result<ExitCode> {
    if a.pod.is_some() && a.network.is_some() {
        return Err(ContainerError::JoinConflict {
            flag: "--network",
            with: "--pod".into(),
            why: "containers of a pod share its network",
        }
        .into());
    }
    let network: NetworkMode = a.network.as_deref().unwrap_or("bridge").parse()?;
    let mut publish = Vec::new();
    for p in &a.publish {
        publish.extend(parse_publish(p)?);
    }
    let mut words = a.image_and_cmd.into_iter();
    let Some(image) = words.next() else {
        bail!("berth run needs an image");
    };
    let duration = |flag: &str, v: &Option<String>| -> Result<Option<Duration>> {
        v.as_deref()
            .map(parse_duration)
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let health = HealthFlags {
        cmd: a.health_cmd.clone(),
        interval: duration("health-interval", &a.health_interval)?,
        timeout: duration("health-timeout", &a.health_timeout)?,
        start_period: duration("health-start-period", &a.health_start_period)?,
        retries: a.health_retries,
        disabled: a.no_healthcheck,
    };
    let monitor_config = MonitorConfig {
        tty: a.tty,
        open_stdin: a.interactive,
        restart: a.restart.parse()?,
        log: LogOptions::parse(&a.log_opt)?,
        ..Default::default()
    };
    let opts = RunOptions {
        image,
        cmd: words.collect(),
        name: a.name,
        entrypoint: a.entrypoint,
        env: a.storage.env_with_files(a.env)?,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        network,
        publish,
        publish_all: a.publish_all,
        auto_remove: a.rm,
        mounts: a.storage.mounts()?,
        resources: a.storage.resources()?,
        monitor: monitor_config,
        health,
        pod: a.pod,
        labels: labels::parse_all(&a.label)?,
        security: a.security.security()?,
        ..RunOptions::default()
    };
    let c = open(g)?;
    if let Some(pod) = &opts.pod {
        crate::pods::start_infra(&c, pod)?;
    }
    let config = container::create(&c, &opts)?;
    let exe = monitor_exe()?;
    let attach = !a.detach && (a.tty || a.interactive);
    // The foreground's output is read from the log, opened before the container can start: a
    // fast `--rm` container's log may be gone by the time the monitor says it started.
    let reader = if a.detach || attach {
        None
    } else {
        Some(LogReader::open_created(&c.log_path(&config.id))?)
    };
    let mut handle = match monitor::spawn(&c, &exe, &config.id, attach) {
        Ok(h) => h,
        Err(e) => {
            let _ = container::remove(&c, &config, true);
            let _ = container::remove_anonymous_volumes(&c, &config);
            return Err(e.into());
        }
    };
    // With a terminal or stdin in the foreground, attach before the container starts, so
    // none of its output is missed.
    let mut attach_and_start = || -> Result<Option<std::os::unix::net::UnixStream>> {
        let conn = match attach {
            true => {
                handle.listening()?;
                Some(crate::attach::connect(&config, a.interactive)?)
            }
            false => None,
        };
        handle.started()?;
        Ok(conn)
    };
    let attached = match attach_and_start() {
        Ok(conn) => conn,
        Err(e) => {
            // The monitor released what it could; remove the rest unless --rm did.
            if !a.rm {
                let _ = container::remove(&c, &config, true);
                let _ = container::remove_anonymous_volumes(&c, &config);
            }
            return Err(e);
        }
    };
    if let Some(conn) = attached {
        if !a.tty {
            forward_signals(&c, &config)?;
        }
        if crate::attach::stream(&config.id, conn, a.tty, a.interactive)? {
            return Ok(ExitCode::SUCCESS);
        }
        let code = handle.wait()?;
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    // Not attached: detached exactly when no log reader was opened for the foreground.
    let Some(mut reader) = reader else {
        println!("{}", config.id);
        return Ok(ExitCode::SUCCESS);
    };
    forward_signals(&c, &config)?;
    print_entries(&mut reader)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.wait());
    });
    loop {
        print_entries(&mut reader)?;
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(code) => {
                print_entries(&mut reader)?;
                let code = code?;
                return Ok(ExitCode::from(code.clamp(0, 255) as u8));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                bail!("lost the monitor of container {}", config.short_id())
            }
        }
    }
}

/// Passes SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to a foreground `run` on to the
/// container, as Docker's sig-proxy does. Blocked only now: the monitor, already started,
/// must not inherit the mask.
fn forward_signals(c: &Containers, config: &ContainerConfig) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    mask.thread_block().context("block signals")?;
    let (c, config) = (c.clone(), config.clone());
    std::thread::spawn(move || {
        while let Ok(sig) = mask.wait() {
            if let Err(e) = container::kill(&c, &config, sig) {
                tracing::warn!(error = %e, "cannot pass {sig} on to the container");
            }
        }
    });
    Ok(())
}

fn print_entries(reader: &mut LogReader) -> Result<()> {
    print_filtered(reader, &LogFilter::default())
}

/// What `logs` prints of each entry: `-t` and `--since`.
#[derive(Default)]
struct LogFilter {
    timestamps: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
}

impl LogFilter {
    fn print(&self, e: &container::LogEntry) {
        if let Some(since) = self.since {
            let at = chrono::DateTime::parse_from_rfc3339(&e.time).map(|t| t.to_utc());
            if at.is_ok_and(|t| t < since) {
                return;
            }
        }
        if self.timestamps {
            write_entry(&format!("{} {}", e.time, e.log), e.stream);
        } else {
            write_entry(&e.log, e.stream);
        }
    }
}

fn print_filtered(reader: &mut LogReader, filter: &LogFilter) -> Result<()> {
    for e in reader.read_new()? {
        filter.print(&e);
    }
    Ok(())
}

/// `--since`: RFC 3339, Unix seconds (with a fraction), or a duration before now.
fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    if let Ok(secs) = s.parse::<f64>() {
        let nanos = (secs.fract() * 1e9) as u32;
        if let Some(t) = chrono::DateTime::from_timestamp(secs.trunc() as i64, nanos) {
            return Ok(t);
        }
    }
    let ago = parse_duration(s)
        .with_context(|| format!("--since {s:?}: expected RFC 3339, Unix seconds or a duration"))?;
    Ok(chrono::Utc::now() - chrono::Duration::from_std(ago)?)
}

fn write_entry(text: &str, stream: Stream) {
    match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        Stream::Stderr => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
        }
    }
}

/// The `berth-monitor` binary, installed next to this `berth`.
pub fn monitor_exe() -> Result<std::path::PathBuf> {
    let berth = std::env::current_exe().context("find the berth binary")?;
    Ok(monitor::exe_beside(&berth)?)
}

pub(crate) fn since(time: Option<&str>) -> String {
    time.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration(chrono::Utc::now().signed_duration_since(t)))
        .unwrap_or_default()
}

fn status_text(state: &State) -> String {
    match state.status {
        Status::Created => "Created".into(),
        Status::Running | Status::Restarting if !state.is_running() => "Exited (unknown)".into(),
        Status::Running => {
            let up = format!("Up {}", since(state.started_at.as_deref()));
            match &state.health {
                Some(h) => format!("{up} ({})", h.status),
                None => up,
            }
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code.unwrap_or(-1),
            since(state.finished_at.as_deref())
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            state.exit_code.unwrap_or(-1),
            since(state.finished_at.as_deref())
        ),
    }
}

/// Docker's PORTS cell: published ports (`0.0.0.0:8100->8000/tcp`), then exposed ones
/// that are not published (`53/udp`).
fn ports_text(config: &ContainerConfig) -> String {
    let mut cells = Vec::new();
    for (key, bindings) in container::port_map(config) {
        match bindings {
            Some(bindings) => {
                for (ip, port) in bindings {
                    cells.push(format!("{ip}:{port}->{key}"));
                }
            }
            None => cells.push(key),
        }
    }
    cells.join(", ")
}

/// Docker's default `ps` table.
const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// The fields a `ps` template sees, with their table headers.
const PS_FIELDS: [(&str, &str); 11] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Networks", "NETWORKS"),
    ("Labels", "LABELS"),
];

fn ps_row(config: &ContainerConfig, state: &State, no_trunc: bool) -> serde_json::Value {
    let mut command = config.args.join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let running = state.is_running();
    let created_at = chrono::DateTime::parse_from_rfc3339(&config.created)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %z UTC").to_string())
        .unwrap_or_default();
    serde_json::json!({
        "ID": if no_trunc { config.id.as_str() } else { config.short_id() },
        "Image": config.image,
        "Command": format!("\"{command}\""),
        "CreatedAt": created_at,
        "RunningFor": format!("{} ago", since(Some(&config.created))),
        "Ports": ports_text(config),
        "State": match state.status {
            Status::Created => "created",
            Status::Running if running => "running",
            Status::Restarting if running => "restarting",
            _ => "exited",
        },
        "Status": status_text(state),
        "Names": config.name,
        "Networks": config.network,
        "Labels": config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    })
}

/// Whether a container passes every `--filter` (Docker's ps filters, and podman's `pod=`
/// with the pod's id).
fn ps_matches(
    filters: &[(String, String)],
    row: &serde_json::Value,
    config: &ContainerConfig,
) -> bool {
    filters.iter().all(|(key, value)| match key.as_str() {
        "name" => row["Names"]
            .as_str()
            .is_some_and(|n| n.contains(value.as_str())),
        "id" => config.id.starts_with(value.as_str()),
        "status" => row["State"] == value.as_str(),
        "label" => value
            .parse::<LabelFilter>()
            .is_ok_and(|l| l.matches(&config.labels)),
        "pod" => config.pod.as_deref() == Some(value.as_str()),
        _ => false,
    })
}

/// Lists containers.
pub fn ps(g: &Globals, a: PsArgs) -> Result<ExitCode> {
    let c = open(g)?;
    let mut filters = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some((k @ ("name" | "id" | "status"), v)) => {
                filters.push((k.to_string(), v.to_string()))
            }
            Some(("label", v)) => {
                v.parse::<LabelFilter>()?;
                filters.push(("label".to_string(), v.to_string()))
            }
            Some(("pod", v)) => {
                filters.push(("pod".to_string(), Pods::new(c.clone()).lookup(v)?.id))
            }
            _ => bail!("--filter {f:?}: expected name=, id=, status=, label= or pod="),
        }
    }
    let all = a.all || filters.iter().any(|(k, _)| k == "status");
    let rows: Vec<_> = c
        .list()?
        .into_iter()
        .map(|(config, state)| {
            let row = ps_row(&config, &state, a.no_trunc);
            (config, row)
        })
        .filter(|(_, row)| all || row["State"] == "running")
        .filter(|(config, row)| ps_matches(&filters, row, config))
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for (_, row) in rows {
            writeln!(out, "{}", row["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format = a.format.as_deref().unwrap_or(PS_TABLE);
    if format == "json" {
        for (_, row) in rows {
            writeln!(out, "{row}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            (true, rest.trim_start())
        }
        _ => (false, format),
    };
    let template = Template::parse(&body.replace("\\t", "\t")).context("--format")?;
    if !table {
        for (_, row) in rows {
            writeln!(out, "{}", template.render(&row)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let headers: serde_json::Map<String, serde_json::Value> = PS_FIELDS
        .iter()
        .map(|(k, h)| (k.to_string(), serde_json::Value::from(*h)))
        .collect();
    let mut lines = vec![template.render(&serde_json::Value::Object(headers))?];
    for (_, row) in rows {
        lines.push(template.render(&row)?);
    }
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    for line in align_columns(&cells) {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a container's output (stdout entries to stdout, stderr entries to stderr).
pub fn logs(g: &Globals, a: LogsArgs) -> Result<ExitCode> {
    let c = open(g)?;
    let config = c.lookup(&a.container)?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .with_context(|| format!("--tail {n:?}: expected a number or \"all\""))?,
        ),
    };
    let filter = LogFilter {
        timestamps: a.timestamps,
        since: a.since.as_deref().map(parse_since).transpose()?,
    };
    let mut reader = LogReader::new(&c.log_path(&config.id));
    let entries = reader.read_new()?;
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in &entries[skip..] {
        filter.print(e);
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        let state = c.state(&config.id);
        print_filtered(&mut reader, &filter)?;
        match state {
            Ok(s) if s.is_running() => {}
            Ok(s) if s.status == Status::Created => {}
            _ => {
                print_filtered(&mut reader, &filter)?;
                return Ok(ExitCode::SUCCESS);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn each(
    g: &Globals,
    names: &[String],
    mut act: impl FnMut(&Containers, &ContainerConfig) -> Result<()>,
) -> Result<ExitCode> {
    let c = open(g)?;
    let mut failed = false;
    for name in names {
        let done = c
            .lookup(name)
            .map_err(anyhow::Error::from)
            .and_then(|config| act(&c, &config));
        match done {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("berth: {name}: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Stops containers: SIGTERM, then SIGKILL after `-t` seconds.
pub fn stop(g: &Globals, a: StopArgs) -> Result<ExitCode> {
    let t = Duration::from_secs(a.time);
    each(g, &a.containers, |c, config| {
        Ok(container::stop(c, config, t)?)
    })
}

/// Sends a signal to containers.
pub fn kill(g: &Globals, a: KillArgs) -> Result<ExitCode> {
    let name = a.signal.to_ascii_uppercase();
    let signal = berth_runtime::container::parse_signal(&name)
        .with_context(|| format!("signal {:?}", a.signal))?;
    each(g, &a.containers, |c, config| {
        Ok(container::kill(c, config, signal)?)
    })
}

/// Removes containers.
pub fn rm(g: &Globals, a: RmArgs) -> Result<ExitCode> {
    each(g, &a.containers, |c, config| {
        container::remove(c, config, a.force)?;
        if a.volumes {
            container::remove_anonymous_volumes(c, config)?;
        }
        Ok(())
    })
}

/// Waits for containers to exit and prints their exit codes.
pub fn wait(g: &Globals, a: WaitArgs) -> Result<ExitCode> {
    let c = open(g)?;
    for name in &a.containers {
        let config = c.lookup(name)?;
        match container::wait_exit(&c, &config.id, None)? {
            Some(code) => println!("{code}"),
            None => bail!("container {name}: gave up waiting"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_like_docker() {
        let ago = |d: chrono::Duration| (chrono::Utc::now() - d).to_rfc3339();
        assert_eq!(since(Some(&ago(chrono::Duration::minutes(3)))), "3 minutes");
        assert_eq!(since(Some(&ago(chrono::Duration::hours(30)))), "30 hours");
        assert_eq!(since(Some("not a time")), "");
        assert_eq!(since(None), "");
    }
}
