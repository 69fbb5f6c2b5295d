//! pause, resume, update, events, ps, list: the commands over the container's cgroup and state.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use berth_runtime::{ContainerStatus, Runtime};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

/// `update` flags (runc's).
#[derive(Args)]
pub struct UpdateArgs {
    /// Resources as JSON from a file, `-` for stdin (as containerd and podman pass them).
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<i64>,
    /// Memory plus swap limit in bytes.
    #[arg(long)]
    memory_swap: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long)]
    memory_reservation: Option<i64>,
    /// CPU shares.
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds.
    #[arg(long)]
    cpu_quota: Option<i64>,
    /// CPUs allowed (cpuset).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed (cpuset).
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Block IO weight.
    #[arg(long)]
    blkio_weight: Option<u16>,
    /// Container id.
    id: String,
}

/// `update`.
pub fn update(runtime: &Runtime, args: UpdateArgs) -> anyhow::Result<ExitCode> {
    let resources: LinuxResources = match &args.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("read resources {}", path.display()))?;
            }
            serde_json::from_str(&text).context("resources: invalid JSON")?
        }
        None => {
            let mut memory = Map::new();
            let mut cpu = Map::new();
            let put = |m: &mut Map<String, Value>, k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            };
            put(&mut memory, "limit", args.memory.map(Value::from));
            put(&mut memory, "swap", args.memory_swap.map(Value::from));
            put(
                &mut memory,
                "reservation",
                args.memory_reservation.map(Value::from),
            );
            put(&mut cpu, "shares", args.cpu_shares.map(Value::from));
            put(&mut cpu, "period", args.cpu_period.map(Value::from));
            put(&mut cpu, "quota", args.cpu_quota.map(Value::from));
            put(&mut cpu, "cpus", args.cpuset_cpus.clone().map(Value::from));
            put(&mut cpu, "mems", args.cpuset_mems.clone().map(Value::from));
            let mut res = Map::new();
            if !memory.is_empty() {
                res.insert("memory".into(), Value::Object(memory));
            }
            if !cpu.is_empty() {
                res.insert("cpu".into(), Value::Object(cpu));
            }
            if let Some(limit) = args.pids_limit {
                res.insert("pids".into(), json!({"limit": limit}));
            }
            if let Some(weight) = args.blkio_weight {
                res.insert("blockIO".into(), json!({"weight": weight}));
            }
            serde_json::from_value(Value::Object(res)).context("resources")?
        }
    };
    runtime.update(&args.id, &resources)?;
    Ok(ExitCode::SUCCESS)
}

/// `events` flags.
#[derive(Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    stats: bool,
    /// Interval between stats events when streaming (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    interval: String,
    /// Container id.
    id: String,
}

fn parse_interval(text: &str) -> anyhow::Result<Duration> {
    let bad = || anyhow::anyhow!("interval {text:?}: expected a duration like 5s or 500ms");
    if let Some(ms) = text.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse().map_err(|_| bad())?));
    }
    let secs = text.strip_suffix('s').unwrap_or(text);
    Ok(Duration::from_secs_f64(secs.parse().map_err(|_| bad())?))
}

/// `events`: one stats event with --stats, else one every interval until the container stops.
pub fn events(runtime: &Runtime, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let interval = parse_interval(&args.interval)?;
    loop {
        println!("{}", runtime.stats_event(&args.id)?);
        if args.stats {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(interval);
        if runtime.state(&args.id)?.status == ContainerStatus::Stopped {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// `ps` flags.
#[derive(Args)]
pub struct PsArgs {
    /// table or json (a list of pids).
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Container id.
    id: String,
    /// Options for ps(1) in table format (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// `ps`: the container's processes.
pub fn ps(runtime: &Runtime, args: PsArgs) -> anyhow::Result<ExitCode> {
    let pids = runtime.pids(&args.id)?;
    if args.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(ExitCode::SUCCESS);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("run ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .context("ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `list` flags.
#[derive(Args)]
pub struct ListArgs {
    /// table or json.
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
}

/// `list`.
pub fn list(runtime: &Runtime, args: ListArgs) -> anyhow::Result<ExitCode> {
    let states = runtime.list()?;
    if args.quiet {
        for s in &states {
            println!("{}", s.id);
        }
    } else if args.format == "json" {
        println!("{}", serde_json::to_string(&states)?);
    } else {
        println!(
            "{:<12} {:<8} {:<10} {:<40} {:<30} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for s in &states {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<30} {}",
                s.id,
                s.pid,
                s.status.to_string(),
                s.bundle.display(),
                s.created,
                if s.owner.is_empty() { "root" } else { &s.owner }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pause`.
pub fn pause(runtime: &Runtime, id: &str) -> anyhow::Result<ExitCode> {
    runtime.pause(id)?;
    Ok(ExitCode::SUCCESS)
}

/// `resume`.
pub fn resume(runtime: &Runtime, id: &str) -> anyhow::Result<ExitCode> {
    runtime.resume(id)?;
    Ok(ExitCode::SUCCESS)
}
