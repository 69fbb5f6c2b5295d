//! `berth volume create|ls|inspect|rm|prune`, and the storage and limit flags of `berth run`
//! (`-v`, `--mount`, `--tmpfs`, `--env-file`, `--memory`, `--cpus`, `--pids-limit`).
//! Docker's flags and output shapes.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_engine::container::{self, envfile, Resources};
use berth_engine::volume::{self, request, MountRequest, Volume, VolumeFilter, Volumes};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::format::human_size;
use crate::Globals;

/// The storage, environment-file and limit flags of `berth run`.
#[derive(Args)]
pub struct RunStorageArgs {
    /// Bind mount or volume: [SRC:]DST[:ro|rw|nocopy|PROPAGATION] (SRC an absolute host
    /// path or a volume name; DST alone is an anonymous volume).
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..]...
    #[arg(long = "mount")]
    mount: Vec<String>,
    /// A tmpfs: DST[:OPTIONS] (size=64m, mode=1777, exec, ...).
    #[arg(long = "tmpfs")]
    tmpfs: Vec<String>,
    /// Read environment variables from a file (NAME=value lines; -e values win).
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Memory limit (bytes, or with a k, m or g suffix).
    #[arg(short = 'm', long = "memory")]
    memory: Option<String>,
    /// Memory plus swap (-1: unlimited swap; default twice --memory).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5: 50000 µs of every 100000).
    #[arg(long = "cpus")]
    cpus: Option<String>,
    /// Most processes at once (0 or -1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
}

impl RunStorageArgs {
    /// The mount requests, in the order Docker gives them: `-v`, then `--mount`, then
    /// `--tmpfs`.
    pub fn mounts(&self) -> Result<Vec<MountRequest>> {
        let mut out = Vec::new();
        for v in &self.volume {
            out.push(request::parse_volume(v)?);
        }
        for m in &self.mount {
            out.push(request::parse_mount(m)?);
        }
        for t in &self.tmpfs {
            out.push(request::parse_tmpfs(t)?);
        }
        request::check_all(&out)?;
        Ok(out)
    }

    /// The limits.
    pub fn resources(&self) -> Result<Resources> {
        let mut r = Resources::default();
        if let Some(m) = &self.memory {
            r.set_memory(m)?;
        }
        if let Some(s) = &self.memory_swap {
            r.set_memory_swap(s)?;
        }
        if let Some(c) = &self.cpus {
            r.set_cpus(c)?;
        }
        if let Some(p) = self.pids_limit {
            r.set_pids_limit(p);
        }
        Ok(r)
    }

    /// The environment: every `--env-file` in order, then `-e` values (later ones win).
    pub fn env_with_files(&self, env: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for path in &self.env_file {
            out.extend(envfile::read(path, |name| std::env::var(name).ok())?);
        }
        out.extend(env);
        Ok(out)
    }
}

/// `berth volume ...`.
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given).
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON.
    Inspect(InspectArgs),
    /// Remove volumes (refused while a container uses them).
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove volumes no container uses (anonymous ones unless --all).
    Prune(PruneArgs),
}

/// `berth volume create`.
#[derive(Args)]
pub struct CreateArgs {
    /// Set a label (KEY=value).
    #[arg(long = "label")]
    label: Vec<String>,
    /// Volume driver (only "local").
    #[arg(short = 'd', long = "driver", default_value = volume::DRIVER)]
    driver: String,
    /// The volume's name.
    name: Option<String>,
}

/// `berth volume ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Only print names.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Only volumes that match: dangling=true|false, name=PART, label=KEY[=VALUE], driver=NAME.
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
}

/// `berth volume inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The volumes.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `berth volume rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Do not fail on volumes that do not exist.
    #[arg(short = 'f', long)]
    force: bool,
    /// The volumes.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `berth volume prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove unused named volumes too, not only anonymous ones.
    #[arg(short = 'a', long)]
    all: bool,
}

/// Runs a `berth volume` subcommand.
pub fn run(g: &Globals, cmd: VolumeCommand) -> Result<ExitCode> {
    let volumes = Volumes::new(&g.root);
    match cmd {
        VolumeCommand::Create(a) => {
            if a.driver != volume::DRIVER {
                anyhow::bail!(
                    "volume driver {:?} is not supported (only \"local\")",
                    a.driver
                );
            }
            let labels = volume::parse_labels(&a.label)?;
            let name = a.name.unwrap_or_else(volume::random_name);
            let made = volumes.create(&name, labels)?;
            println!("{}", made.name);
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Ls(a) => {
            let filter = VolumeFilter::parse(&a.filter)?;
            let users = if a.filter.is_empty() {
                Default::default()
            } else {
                container::volume_users(&crate::containers::open(g)?)?
            };
            let list: Vec<Volume> = volumes
                .list()?
                .into_iter()
                .filter(|v| filter.matches(v, users.contains_key(&v.name)))
                .collect();
            let mut out = std::io::stdout().lock();
            if a.quiet {
                for v in list {
                    writeln!(out, "{}", v.name)?;
                }
            } else {
                writeln!(out, "{:<10}VOLUME NAME", "DRIVER")?;
                for v in list {
                    writeln!(out, "{:<10}{}", volume::DRIVER, v.name)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Inspect(a) => {
            let mut shown = Vec::new();
            let mut failed = false;
            for name in &a.names {
                match volumes.get(name) {
                    Ok(v) => shown.push(inspect_json(&volumes, &v)),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = true;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        VolumeCommand::Rm(a) => {
            let c = crate::containers::open(g)?;
            let mut failed = false;
            for name in &a.names {
                match container::remove_volume(&c, name, a.force) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("berth: {e}");
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
        VolumeCommand::Prune(a) => {
            if !a.force && !confirm(a.all)? {
                return Ok(ExitCode::SUCCESS);
            }
            let c = crate::containers::open(g)?;
            let sizes: Vec<(String, u64)> = volumes
                .list()?
                .iter()
                .map(|v| (v.name.clone(), disk_usage(&volumes.dir(&v.name))))
                .collect();
            let removed = container::prune_volumes(&c, a.all)?;
            let mut out = std::io::stdout().lock();
            let mut reclaimed = 0;
            if !removed.is_empty() {
                writeln!(out, "Deleted Volumes:")?;
                for name in &removed {
                    writeln!(out, "{name}")?;
                    reclaimed += sizes.iter().find(|(n, _)| n == name).map_or(0, |(_, s)| *s);
                }
                writeln!(out)?;
            }
            writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Docker's `volume inspect` object.
fn inspect_json(volumes: &Volumes, v: &Volume) -> serde_json::Value {
    let mut labels = serde_json::Map::new();
    for (k, val) in &v.labels {
        labels.insert(k.clone(), json!(val));
    }
    if v.anonymous {
        labels.insert("com.docker.volume.anonymous".into(), json!(""));
    }
    json!({
        "CreatedAt": v.created,
        "Driver": volume::DRIVER,
        "Labels": if labels.is_empty() { serde_json::Value::Null } else { labels.into() },
        "Mountpoint": volumes.mountpoint(&v.name),
        "Name": v.name,
        "Options": serde_json::Value::Null,
        "Scope": "local"
    })
}

/// Asks on the terminal, as `docker volume prune` does without `-f`.
fn confirm(all: bool) -> Result<bool> {
    let what = if all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    };
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Bytes used by the files under `dir` (apparent sizes).
fn disk_usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
    }
}
