//! spec and features.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

/// `spec` flags.
#[derive(Args)]
pub struct SpecArgs {
    /// Write a spec for a rootless container (user namespace mapping the caller).
    #[arg(long)]
    rootless: bool,
    /// Bundle directory to write config.json into.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
}

/// `spec`: writes config.json, refusing to overwrite one (as runc).
pub fn spec(args: SpecArgs) -> anyhow::Result<ExitCode> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("File {} exists. Remove it first", path.display());
    }
    let value = if args.rootless {
        berth_runtime::spec::rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        berth_runtime::spec::default_spec()
    };
    let text = serde_json::to_string_pretty(&value).context("encode spec")?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// `features`.
pub fn features() -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(&berth_runtime::features::features())
        .context("encode features")?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
