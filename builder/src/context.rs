//! The build context: a directory filtered by `.dockerignore` (or `<Dockerfile>.dockerignore`).
//!
//! Patterns follow moby's patternmatcher: each is cleaned like Go's `filepath.Clean`, a
//! leading `/` is dropped, segments match with `filepath.Match` rules (`*`, `?`, `[...]`,
//! `\` escapes), `**` matches any number of directories, a pattern excluding a directory
//! excludes everything below it, `!` makes an exception, and the last matching pattern wins.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::glob::glob;

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
    /// An ignore-file line that is not a valid pattern.
    #[error("{file}:{line}: invalid ignore pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The ignore file.
        file: String,
        /// 1-based line in it.
        line: usize,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A COPY/ADD source that climbs out of the context with `..`.
    #[error("source {0:?} is outside the build context")]
    OutsideContext(String),
    /// A COPY/ADD source that matches nothing in the context.
    #[error("source {0:?} not found in the build context (or excluded by .dockerignore)")]
    NotFound(String),
}

/// One path segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more whole segments.
    AnyDirs,
    /// A `filepath.Match` pattern for one segment.
    Glob(Vec<char>),
}

/// One ignore-file pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<Segment>,
    exception: bool,
}

/// The patterns of an ignore file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnorePatterns {
    patterns: Vec<Pattern>,
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

fn has_unclosed_class(p: &[char]) -> bool {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            '[' => {
                let mut j = i + 1;
                if matches!(p.get(j), Some('^' | '!')) {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    return true;
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    false
}

/// Whether pattern segments match path segments; `**` takes any number of segments.
/// A table over (pattern suffix, path suffix) keeps many `**` polynomial.
fn matches_segments(p: &[Segment], s: &[&str]) -> bool {
    // ok[i][j]: p[i..] matches s[j..].
    let mut ok = vec![vec![false; s.len() + 1]; p.len() + 1];
    ok[p.len()][s.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=s.len()).rev() {
            ok[i][j] = match &p[i] {
                Segment::AnyDirs => ok[i + 1][j] || (j < s.len() && ok[i][j + 1]),
                Segment::Glob(g) => {
                    j < s.len() && ok[i + 1][j + 1] && {
                        let chars: Vec<char> = s[j].chars().collect();
                        glob(g, &chars, '\\', true)
                    }
                }
            };
        }
    }
    ok[0][0]
}

impl Pattern {
    fn matches(&self, segments: &[&str]) -> bool {
        matches_segments(&self.segments, segments)
    }
}

impl IgnorePatterns {
    /// Parses an ignore file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ContextError> {
        let mut patterns = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason| ContextError::BadPattern {
                file: file.to_string(),
                line: i + 1,
                pattern: line.to_string(),
                reason,
            };
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if body.is_empty() {
                return Err(bad("an exception needs a pattern after '!'"));
            }
            let cleaned = clean_segments(body);
            let mut segments = Vec::new();
            for seg in cleaned {
                let chars: Vec<char> = seg.chars().collect();
                if has_unclosed_class(&chars) {
                    return Err(bad("unclosed '[' character class"));
                }
                if seg == "**" {
                    if segments.last() != Some(&Segment::AnyDirs) {
                        segments.push(Segment::AnyDirs);
                    }
                } else {
                    segments.push(Segment::Glob(chars));
                }
            }
            patterns.push(Pattern {
                segments,
                exception,
            });
        }
        Ok(Self { patterns })
    }

    /// Whether a context-relative, slash-separated path is excluded: the last pattern that
    /// matches the path or one of its parent directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let segments = clean_segments(path);
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could change the answer is evaluated.
            if p.exception != excluded {
                continue;
            }
            if (1..=segments.len()).any(|n| p.matches(&segments[..n])) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether any pattern is an exception (so excluded directories must still be walked).
    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
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

    fn pats(text: &str) -> IgnorePatterns {
        IgnorePatterns::parse(".dockerignore", text).unwrap()
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_segments("./a//b/../c/"), vec!["a", "c"]);
        assert_eq!(clean_segments("/../x"), vec!["x"]);
        assert_eq!(clean_segments("../x"), vec!["..", "x"]);
        assert!(clean_segments(".").is_empty());
    }

    #[test]
    fn basic_patterns_and_parents() {
        let p = pats("# comment\n*.md\n/build\nsecret?.txt\n");
        assert!(p.is_excluded("README.md"));
        assert!(!p.is_excluded("docs/README.md"));
        assert!(p.is_excluded("build"));
        assert!(p.is_excluded("build/out/app"));
        assert!(p.is_excluded("secret1.txt"));
        assert!(!p.is_excluded("secret12.txt"));
        assert!(!p.is_excluded("src/main.rs"));
    }

    #[test]
    fn double_star() {
        let p = pats("**/*.tmp\nlogs/**\na/**/z\n");
        assert!(p.is_excluded("x.tmp"));
        assert!(p.is_excluded("deep/er/x.tmp"));
        assert!(p.is_excluded("logs/2024/01.log"));
        assert!(p.is_excluded("a/z"));
        assert!(p.is_excluded("a/b/c/z"));
        assert!(!p.is_excluded("a/b/c/y"));
        assert!(pats("**").is_excluded("anything/at/all"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let p = pats("*.md\n!README.md\nREADME*\n");
        assert!(p.is_excluded("CHANGES.md"));
        assert!(p.is_excluded("README.md"));
        let p = pats("*.md\n!README.md\n");
        assert!(!p.is_excluded("README.md"));
        let p = pats("docs\n!docs/keep.txt\n");
        assert!(p.is_excluded("docs/other.txt"));
        assert!(!p.is_excluded("docs/keep.txt"));
    }

    #[test]
    fn escapes_and_classes() {
        let p = pats("\\*star\n[abc].txt\n");
        assert!(p.is_excluded("*star"));
        assert!(!p.is_excluded("xstar"));
        assert!(p.is_excluded("b.txt"));
        assert!(!p.is_excluded("d.txt"));
    }

    #[test]
    fn bad_patterns() {
        let e = IgnorePatterns::parse(".dockerignore", "ok\n[abc\n").unwrap_err();
        assert!(e.to_string().contains(":2: invalid ignore pattern"));
        assert!(IgnorePatterns::parse(".dockerignore", "!\n").is_err());
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
