//! `berth cp`: files between a container and the host (`NAME:PATH` on one side, a host path
//! or `-` for a tar stream on the other), with Docker's rules.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use berth_engine::container;
use clap::Args;

use crate::{containers, Globals};

/// `berth cp`.
#[derive(Args)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin).
    src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout).
    dest: String,
}

/// Splits `CONTAINER:PATH`; a path with a `/` before its first `:` (or absolute) is local,
/// as Docker decides.
fn split_container(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (name, path) = arg.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

/// Copies.
pub fn cp(g: &Globals, a: CpArgs) -> Result<ExitCode> {
    let c = containers::open(g)?;
    match (split_container(&a.src), split_container(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source (CONTAINER:PATH)"),
        (Some((name, path)), None) => {
            let config = c.lookup(name)?;
            if a.dest == "-" {
                container::archive_from(&c, &config, path, std::io::stdout().lock())?;
            } else {
                container::copy_from(&c, &config, path, Path::new(&a.dest))?;
            }
        }
        (None, Some((name, path))) => {
            let config = c.lookup(name)?;
            if a.src == "-" {
                container::extract_to(&c, &config, std::io::stdin().lock(), path)?;
            } else {
                container::copy_to(&c, &config, Path::new(&a.src), path)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_side_is_recognised_as_docker_does() {
        assert_eq!(split_container("web:/etc"), Some(("web", "/etc")));
        assert_eq!(split_container("web:"), Some(("web", "")));
        assert_eq!(split_container("./web:/etc"), None);
        assert_eq!(split_container("/tmp/a:b"), None);
        assert_eq!(split_container("dir/a:b"), None);
        assert_eq!(split_container("-"), None);
        assert_eq!(split_container("plain"), None);
    }
}
