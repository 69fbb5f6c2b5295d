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
    let spec = if args.rootless {
        berth_runtime::spec::runc_rootless_spec(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        berth_runtime::spec::runc_spec()
    }
    .context("build spec")?;
    let text = serde_json::to_string_pretty(&spec).context("encode spec")?;
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

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    use super::*;

    fn written(bundle: &std::path::Path) -> Spec {
        let bytes = std::fs::read(bundle.join("config.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn spec_writes_runcs_spec_once() {
        let dir = std::env::temp_dir().join(format!("berth-runtime-spec-{}", std::process::id()));
        let (plain, rootless) = (dir.join("plain"), dir.join("rootless"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&rootless).unwrap();
        let args = |bundle: &PathBuf, rootless| SpecArgs {
            rootless,
            bundle: bundle.clone(),
        };

        spec(args(&plain, false)).unwrap();
        assert_eq!(written(&plain), berth_runtime::spec::runc_spec().unwrap());
        let again = spec(args(&plain, false)).unwrap_err().to_string();
        assert!(
            again.ends_with("config.json exists. Remove it first"),
            "{again}"
        );

        spec(args(&rootless, true)).unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        let spec = written(&rootless);
        assert_eq!(
            spec,
            berth_runtime::spec::runc_rootless_spec(uid, gid).unwrap()
        );
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux
            .namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
