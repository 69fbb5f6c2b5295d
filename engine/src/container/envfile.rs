//! `--env-file`: Docker's format. One `NAME=value` per line (the value taken as is: no
//! quotes or escapes), or `NAME` alone for berth's own value of it (left out when berth has
//! none); lines starting with `#` (after leading blanks) and blank lines are skipped.

use std::path::{Path, PathBuf};

/// Why an env file was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// It could not be read.
    #[error("env file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// It is not UTF-8.
    #[error("env file {}: line {line}: not valid UTF-8", path.display())]
    Encoding {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
    },
    /// A line with no name, or a name with blanks in it.
    #[error("env file {}: line {line}: {reason}: {text:?}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads `path` into `NAME=value` entries, `NAME` lines looked up with `lookup`.
pub fn read(
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, EnvFileError> {
    let bytes = std::fs::read(path).map_err(|source| EnvFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let text = std::str::from_utf8(raw).map_err(|_| EnvFileError::Encoding {
            path: path.to_path_buf(),
            line: line_no,
        })?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason| EnvFileError::Line {
            path: path.to_path_buf(),
            line: line_no,
            text: text.to_string(),
            reason,
        };
        match line.split_once('=') {
            Some(("", _)) => return Err(bad("no variable name")),
            Some((name, _)) if name.contains(char::is_whitespace) => {
                return Err(bad("variable name contains whitespace"))
            }
            Some(_) => out.push(line.to_string()),
            None => {
                let name = line.trim_end();
                if name.contains(char::is_whitespace) {
                    return Err(bad("variable name contains whitespace"));
                }
                if let Some(value) = lookup(name) {
                    out.push(format!("{name}={value}"));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "FROM_HOST").then(|| "h".to_string())
    }

    #[test]
    fn reads_docker_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(
            &path,
            "# comment\n\n  A=1\nB= spaced value \"q\"\nFROM_HOST\nUNSET\n  # indented comment\nC=\r\n",
        )
        .unwrap();
        assert_eq!(
            read(&path, lookup).unwrap(),
            vec!["A=1", "B= spaced value \"q\"", "FROM_HOST=h", "C="]
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "A=1\n=nothing\n").unwrap();
        let e = read(&path, lookup).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains(&path.display().to_string()),
            "{e}"
        );
        std::fs::write(&path, "A=1\nMY VAR=x\n").unwrap();
        let e = read(&path, lookup).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("whitespace"), "{e}");
        let e = read(&dir.path().join("missing"), lookup)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
