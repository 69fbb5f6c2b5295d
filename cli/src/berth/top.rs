//! `berth top`: the processes of a running container, in `ps`'s columns.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::container;
use clap::Args;

use crate::format::align_columns;
use crate::{containers, Globals};

/// `berth top`.
#[derive(Args)]
pub struct TopArgs {
    /// The container.
    container: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// Prints the container's processes.
pub fn top(g: &Globals, a: TopArgs) -> Result<ExitCode> {
    let c = containers::open(g)?;
    let config = c.lookup(&a.container)?;
    let (titles, rows) = container::top(&c, &config, &a.ps_options)?;
    let mut table = vec![titles];
    table.extend(rows);
    let mut out = std::io::stdout().lock();
    for line in align_columns(&table) {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}
