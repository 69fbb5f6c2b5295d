//! Pod commands (podman's shapes): `pod create`, `ps`, `inspect`, `start`, `stop`, `rm`, and
//! the hidden `__pod-infra` that `pod create`/`pod start` start for each pod.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use berth_engine::container::state::Status;
use berth_engine::container::Containers;
use berth_engine::labels::{self, LabelFilter};
use berth_engine::network::{parse_publish, PortMapping};
use berth_engine::pod::{self, PodOptions, PodRecord, PodReport, Pods};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::containers::{open, since};
use crate::Globals;

/// `berth pod ...`.
#[derive(Subcommand)]
pub enum PodCommand {
    /// Create a pod and start its infra (the holder of its network, IPC and UTS namespaces).
    Create(CreateArgs),
    /// List pods.
    #[command(visible_alias = "ls")]
    Ps(PsArgs),
    /// Show details of pods as JSON.
    Inspect(NamesArgs),
    /// Start pods: their infra, then their containers.
    Start(NamesArgs),
    /// Stop pods: their containers (SIGTERM, then SIGKILL), then their infra.
    Stop(StopArgs),
    /// Remove pods and their containers.
    Rm(RmArgs),
}

/// `berth pod create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Name of the pod.
    #[arg(long)]
    name: Option<String>,
    /// Publish a port of the pod: [IP:][HOST_PORT:]CONTAINER_PORT[/udp].
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// The host name of the pod's containers (default: the pod's name).
    #[arg(long)]
    hostname: Option<String>,
    /// Set a label (KEY=VALUE).
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// The pod's network: bridge (the default) or host (the host's network namespace).
    #[arg(long, value_parser = ["bridge", "host"])]
    network: Option<String>,
}

/// `berth pod ps`.
#[derive(Args)]
pub struct PsArgs {
    /// Only print ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate ids.
    #[arg(long)]
    no_trunc: bool,
    /// Only pods matching: label=KEY[=VALUE], name=NAME, status=STATUS (repeatable; all must match).
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
}

/// Pod names or ids.
#[derive(Args)]
pub struct NamesArgs {
    /// The pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `berth pod stop`.
#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL, per container.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// The pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `berth pod rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Stop running pods and kill their containers first.
    #[arg(short = 'f', long)]
    force: bool,
    /// The pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `berth __pod-infra` (hidden).
#[derive(Args)]
pub struct InfraArgs {
    /// The pod id.
    id: String,
}

/// The pods of `g`'s store, with the installation settings from the environment.
fn pods(g: &Globals) -> Result<Pods> {
    Ok(Pods::new(open(g)?))
}

/// Runs a pod command.
pub fn run(g: &Globals, command: PodCommand) -> Result<ExitCode> {
    match command {
        PodCommand::Create(a) => create(g, a),
        PodCommand::Ps(a) => ps(g, a),
        PodCommand::Inspect(a) => inspect(g, a),
        PodCommand::Start(a) => {
            let exe = std::env::current_exe().context("find the berth binary")?;
            each(g, &a.pods, |p, pod| {
                p.start(&exe, pod)?;
                p.start_containers(&exe, pod)
            })
        }
        PodCommand::Stop(a) => {
            let t = Duration::from_secs(a.time);
            each(g, &a.pods, |p, pod| p.stop(pod, t))
        }
        PodCommand::Rm(a) => each(g, &a.pods, |p, pod| p.remove(pod, a.force)),
    }
}

/// Starts the infra of pod `pod` (a name or id) unless it runs, so that a container run or
/// started in a stopped pod has namespaces to join, as podman does; the pod's other
/// containers are left as they are.
pub fn start_infra(c: &Containers, pod: &str) -> Result<()> {
    let p = Pods::new(c.clone());
    let record = p.lookup(pod)?;
    let exe = std::env::current_exe().context("find the berth binary")?;
    p.start(&exe, &record)?;
    Ok(())
}

fn create(g: &Globals, a: CreateArgs) -> Result<ExitCode> {
    let mut publish = Vec::new();
    for p in &a.publish {
        publish.extend(parse_publish(p)?);
    }
    let opts = PodOptions {
        name: a.name,
        hostname: a.hostname,
        publish,
        labels: labels::parse_all(&a.label)?,
        host_network: a.network.as_deref() == Some("host"),
    };
    if opts.host_network && !opts.publish.is_empty() {
        anyhow::bail!("-p cannot be used with --network host: the host's ports are the pod's");
    }
    let p = pods(g)?;
    let pod = p.create(&opts)?;
    let exe = std::env::current_exe().context("find the berth binary")?;
    if let Err(e) = p.start(&exe, &pod) {
        if let Err(cleanup) = p.remove(&pod, true) {
            tracing::warn!(error = %cleanup, "cannot remove the pod that failed to start");
        }
        return Err(e.into());
    }
    println!("{}", pod.id);
    Ok(ExitCode::SUCCESS)
}

fn each(
    g: &Globals,
    names: &[String],
    mut act: impl FnMut(&Pods, &PodRecord) -> Result<(), pod::PodError>,
) -> Result<ExitCode> {
    let p = pods(g)?;
    let mut failed = false;
    for name in names {
        let done = p.lookup(name).and_then(|pod| act(&p, &pod));
        match done {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("berth: {name}: {e}");
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

/// One `pod ps --filter`.
enum Filter {
    Label(LabelFilter),
    Name(String),
    Status(String),
}

impl Filter {
    fn parse(text: &str) -> Result<Self> {
        match text.split_once('=') {
            Some(("label", l)) => Ok(Filter::Label(l.parse()?)),
            Some(("name", n)) => Ok(Filter::Name(n.to_string())),
            Some(("status", s)) => Ok(Filter::Status(s.to_ascii_lowercase())),
            _ => bail!("--filter {text:?}: expected label=KEY[=VALUE], name=NAME or status=STATUS"),
        }
    }

    fn matches(&self, r: &PodReport) -> bool {
        match self {
            Filter::Label(l) => l.matches(&r.record.labels),
            Filter::Name(n) => r.record.name == *n,
            Filter::Status(s) => r.status.to_string().to_ascii_lowercase() == *s,
        }
    }
}

fn ps(g: &Globals, a: PsArgs) -> Result<ExitCode> {
    let filters = a
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<PodReport> = pods(g)?
        .list()?
        .into_iter()
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    let short = |id: &str| -> String {
        if a.no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for r in rows {
            writeln!(out, "{}", short(&r.record.id))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![[
        "POD ID".to_string(),
        "NAME".into(),
        "STATUS".into(),
        "CREATED".into(),
        "INFRA ID".into(),
        "# OF CONTAINERS".into(),
    ]];
    for r in rows {
        table.push([
            short(&r.record.id),
            r.record.name.clone(),
            r.status.to_string(),
            format!("{} ago", since(Some(&r.record.created))),
            short(&r.record.infra_id),
            r.containers.len().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let line: String = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}   "))
            .collect();
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Docker's `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`.
fn port_map(ports: &[PortMapping]) -> Value {
    let mut map = Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let binding = json!({
            "HostIp": p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
        });
        if let Value::Array(list) = map.entry(key).or_insert_with(|| json!([])) {
            list.push(binding);
        }
    }
    Value::Object(map)
}

fn inspect_json(r: &PodReport) -> Value {
    let containers: Vec<Value> = r
        .containers
        .iter()
        .map(|(c, s)| {
            let state = match s.status {
                _ if s.is_running() => "running",
                Status::Created => "created",
                Status::Restarting => "restarting",
                Status::Running | Status::Exited => "exited",
            };
            json!({"Id": c.id, "Name": c.name, "State": state})
        })
        .collect();
    json!({
        "Id": r.record.id,
        "Name": r.record.name,
        "Created": r.record.created,
        "State": r.status.to_string(),
        "Hostname": r.record.hostname,
        "Labels": r.record.labels,
        "InfraContainerId": r.record.infra_id,
        "InfraPid": r.state.infra_pid.filter(|_| r.state.infra_running()).unwrap_or(0),
        "NumContainers": r.containers.len(),
        "Containers": containers,
        "InfraConfig": {
            "PortBindings": port_map(&r.record.publish),
            "NetNS": r.record.netns_path(),
        },
        "NetworkSettings": {
            "Bridge": r.record.network.bridge,
            "IPAddress": r.state.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "Ports": port_map(&r.state.ports),
        },
    })
}

fn inspect(g: &Globals, a: NamesArgs) -> Result<ExitCode> {
    let p = pods(g)?;
    let mut all = Vec::new();
    for name in &a.pods {
        let pod = p.lookup(name)?;
        all.push(inspect_json(&p.report(&pod)?));
    }
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(ExitCode::SUCCESS)
}

/// The infra subcommand.
pub fn infra(g: &Globals, a: InfraArgs) -> Result<ExitCode> {
    pod::serve_infra(&pods(g)?, &a.id)?;
    Ok(ExitCode::SUCCESS)
}
