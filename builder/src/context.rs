//! The build context: a directory filtered by `.dockerignore` (or `<Dockerfile>.dockerignore`,
//! see [`crate::ignore`]), the walker that lists what a build may read, and COPY source
//! resolution with `filepath.Match` wildcards.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::glob::glob;
use crate::ignore::{IgnoreError, IgnorePatterns};

/// Why the build context could not be read or its ignore file used.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A directory or file of the context could not be read.
    #[error("build context {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The ignore file has an invalid pattern.
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    /// A COPY/ADD source that climbs out of the context with `..`.
    #[error("source {0:?} is outside the build context")]
    OutsideContext(String),
    /// A COPY/ADD source that matches nothing in the context.
    #[error("source {0:?} not found in the build context (or excluded by .dockerignore)")]
    NotFound(String),
}

/// Lexically cleans a slash-separated relative path (Go `path.Clean` without the leading
/// `/`): drops `.` and empty segments and resolves `..` where it can. Returns the
/// segments; a leading `..` remains when the path climbs out.
pub fn clean_segments(path: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if matches!(out.last(), Some(s) if *s != "..") {
                    out.pop();
                } else if !path.starts_with('/') {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    out
}

/// The ignore file for a build: `<Dockerfile>.dockerignore` next to the Dockerfile when it
/// exists, else `.dockerignore` at the context root, else none.
pub fn ignore_file(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile {
        let mut name = df.as_os_str().to_os_string();
        name.push(".dockerignore");
        let specific = PathBuf::from(name);
        if specific.is_file() {
            return Some(specific);
        }
    }
    let root = context.join(".dockerignore");
    root.is_file().then_some(root)
}

/// A build context directory with its ignore patterns.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: IgnorePatterns,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Context {
    /// Opens `root` as a context, reading the ignore file chosen by [`ignore_file`].
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let meta = fs::metadata(root).map_err(io_err(root))?;
        if !meta.is_dir() {
            return Err(ContextError::Io {
                path: root.to_path_buf(),
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        let ignore = match ignore_file(root, dockerfile) {
            None => IgnorePatterns::default(),
            Some(file) => {
                let text = fs::read_to_string(&file).map_err(io_err(&file))?;
                IgnorePatterns::parse(&file.display().to_string(), &text)?
            }
        };
        Ok(Self::with_patterns(root, ignore))
    }

    /// A context over `root` with the given patterns.
    pub fn with_patterns(root: &Path, ignore: IgnorePatterns) -> Self {
        Self {
            root: root.to_path_buf(),
            ignore,
        }
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every included file, directory and symlink, as sorted slash-separated relative paths.
    /// Directories whose own path is excluded appear only if something below is re-included.
    pub fn files(&self) -> Result<Vec<String>, ContextError> {
        let mut out = Vec::new();
        self.walk(&self.root, "", &mut out)?;
        Ok(out)
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<bool, ContextError> {
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut any = false;
        for name in names {
            let path = dir.join(&name);
            let rel_path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let excluded = self.ignore.is_excluded(&rel_path);
            if meta.is_dir() {
                if excluded && !self.ignore.has_exceptions() {
                    continue;
                }
                let at = out.len();
                out.push(rel_path.clone());
                let inner = self.walk(&path, &rel_path, out)?;
                if excluded && !inner {
                    out.remove(at);
                    continue;
                }
                any = true;
            } else if !excluded {
                out.push(rel_path);
                any = true;
            }
        }
        Ok(any)
    }

    /// The included context paths a COPY/ADD source selects: entries matching the source
    /// (with `filepath.Match` wildcards per segment) and everything included below them.
    /// The empty path stands for the context root itself.
    pub fn resolve(&self, source: &str, files: &[String]) -> Result<Vec<String>, ContextError> {
        let segments = clean_segments(source);
        if segments.first() == Some(&"..") {
            return Err(ContextError::OutsideContext(source.to_string()));
        }
        if segments.is_empty() {
            return Ok(files.to_vec());
        }
        let pattern: Vec<Vec<char>> = segments.iter().map(|s| s.chars().collect()).collect();
        let mut out = Vec::new();
        for f in files {
            let fsegs: Vec<&str> = f.split('/').collect();
            let matched = fsegs.len() >= pattern.len()
                && pattern.iter().zip(&fsegs).all(|(p, s)| {
                    let s: Vec<char> = s.chars().collect();
                    glob(p, &s, '\\', true)
                });
            if matched {
                out.push(f.clone());
            }
        }
        if out.is_empty() {
            return Err(ContextError::NotFound(source.to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        assert_eq!(clean_segments("./a//b/../c/"), vec!["a", "c"]);
        assert_eq!(clean_segments("/../x"), vec!["x"]);
        assert_eq!(clean_segments("../x"), vec!["..", "x"]);
        assert!(clean_segments(".").is_empty());
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "src/main.rs",
            "src/lib.rs",
            "docs/a.md",
            "docs/keep.md",
            "target/debug/x",
            "README.md",
            ".git/HEAD",
        ] {
            let p = dir.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        dir
    }

    #[test]
    fn walker_lists_included_entries() {
        let dir = tree();
        fs::write(
            dir.path().join(".dockerignore"),
            "target\n.git\ndocs\n!docs/keep.md\n",
        )
        .unwrap();
        let ctx = Context::open(dir.path(), None).unwrap();
        assert_eq!(
            ctx.files().unwrap(),
            vec![
                ".dockerignore",
                "README.md",
                "docs",
                "docs/keep.md",
                "src",
                "src/lib.rs",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tree();
        fs::write(dir.path().join(".dockerignore"), "src\n").unwrap();
        let df = dir.path().join("app.Dockerfile");
        fs::write(&df, "FROM scratch\n").unwrap();
        fs::write(dir.path().join("app.Dockerfile.dockerignore"), "docs\n").unwrap();
        let ctx = Context::open(dir.path(), Some(&df)).unwrap();
        let files = ctx.files().unwrap();
        assert!(files.contains(&"src/main.rs".to_string()));
        assert!(!files.iter().any(|f| f.starts_with("docs")));
        let other = dir.path().join("Dockerfile");
        assert_eq!(
            ignore_file(dir.path(), Some(&other)),
            Some(dir.path().join(".dockerignore"))
        );
    }

    #[test]
    fn resolve_sources() {
        let dir = tree();
        let ctx = Context::open(dir.path(), None).unwrap();
        let files = ctx.files().unwrap();
        assert_eq!(
            ctx.resolve("src/*.rs", &files).unwrap(),
            vec!["src/lib.rs", "src/main.rs"]
        );
        assert_eq!(
            ctx.resolve("./docs/", &files).unwrap(),
            vec!["docs", "docs/a.md", "docs/keep.md"]
        );
        assert!(matches!(
            ctx.resolve("../etc/passwd", &files),
            Err(ContextError::OutsideContext(_))
        ));
        assert!(matches!(
            ctx.resolve("nope", &files),
            Err(ContextError::NotFound(_))
        ));
    }
}
