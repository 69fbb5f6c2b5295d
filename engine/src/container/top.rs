//! `berth top`: the processes of a running container, as Docker finds them: the host's `ps`
//! with the given options (default `-ef`), keeping the rows whose PID is in the container's
//! cgroup.

use std::process::Command;

use super::state::Status;
use super::{ContainerConfig, ContainerError, Containers};

/// The `ps` table for container `config`: the column titles and one row per process of the
/// container, each cell a column (the last one, the command, keeps its spaces).
pub fn top(
    c: &Containers,
    config: &ContainerConfig,
    ps_args: &[String],
) -> Result<(Vec<String>, Vec<Vec<String>>), ContainerError> {
    let state = c.state(&config.id)?;
    if state.status != Status::Running || !state.is_running() {
        return Err(ContainerError::WrongState {
            id: config.id.clone(),
            reason: "container is not running".into(),
        });
    }
    let pids = c.runtime().pids(&config.id)?;
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| ContainerError::Top(format!("run ps {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(ContainerError::Top(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
}

/// Splits `ps` output into titles and the rows of `pids`, the last column taking the rest
/// of its line.
fn parse_ps(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), ContainerError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ContainerError::Top("ps output has no PID column".into()))?;
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut cells: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while cells.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            cells.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        cells.push(rest.to_string());
        let pid: i32 = cells[pid_col].parse().map_err(|_| {
            ContainerError::Top(format!(
                "ps line {line:?}: PID {:?} is not a number",
                cells[pid_col]
            ))
        })?;
        if pids.contains(&pid) {
            rows.push(cells);
        }
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_container_rows_with_whole_commands() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                   root        4242    4200  0 10:01 ?        00:00:00 httpd -f -p 8000\n";
        let (titles, rows) = parse_ps(out, &[4242]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "4242");
        assert_eq!(rows[0][7], "httpd -f -p 8000");
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
