//! `.dockerignore` patterns with moby/patternmatcher's semantics: each pattern is cleaned
//! like Go's `filepath.Clean` (a leading `/` dropped), `*` and `?` stay within one path
//! segment, `[...]` is a Go character class, `\` escapes, `**` matches any run of
//! directories (`**/` included, anywhere in the pattern), a pattern that matches a parent
//! directory matches everything below it, `!` marks an exception, and the last match wins.

use crate::context::clean_segments;

/// An ignore-file line that is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: invalid ignore pattern {pattern:?}: {reason}")]
pub struct IgnoreError {
    /// The ignore file (or `--exclude`).
    pub file: String,
    /// 1-based line in it.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// `**` at the end: anything, `/` included.
    AnyPath,
    /// `**` elsewhere (`**/` too): any run of whole directories, possibly none: `(.*/)?`.
    AnyDirs,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
    /// A literal character.
    Lit(char),
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    toks: Vec<Tok>,
    exception: bool,
}

/// Reads a class body after `[`; returns the token and the index after `]`.
fn class(p: &[char], mut i: usize) -> Result<(Tok, usize), &'static str> {
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let read = |i: &mut usize| -> Result<char, &'static str> {
        match p.get(*i) {
            None => Err("unclosed '[' character class"),
            Some('\\') => {
                *i += 2;
                p.get(*i - 1)
                    .copied()
                    .ok_or("trailing escape in character class")
            }
            Some('-') | Some(']') => Err("character class range is missing a bound"),
            Some(&c) => {
                *i += 1;
                Ok(c)
            }
        }
    };
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Tok::Class { negate, ranges }, i + 1));
        }
        let lo = read(&mut i)?;
        let hi = if p.get(i) == Some(&'-') {
            i += 1;
            read(&mut i)?
        } else {
            lo
        };
        if p.get(i) == Some(&'-') && p.get(i + 1) != Some(&']') {
            return Err("character class has a range after a range");
        }
        ranges.push((lo, hi));
    }
}

/// Compiles a cleaned pattern.
fn compile(p: &[char]) -> Result<Vec<Tok>, &'static str> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' if p.get(i + 1) == Some(&'*') => {
                i += 2;
                if p.get(i) == Some(&'/') {
                    i += 1;
                }
                let tok = if i == p.len() {
                    Tok::AnyPath
                } else {
                    Tok::AnyDirs
                };
                if toks.last() != Some(&tok) {
                    toks.push(tok);
                }
            }
            '*' => {
                toks.push(Tok::Star);
                i += 1;
            }
            '?' => {
                toks.push(Tok::One);
                i += 1;
            }
            '\\' => {
                let c = *p.get(i + 1).ok_or("trailing escape character")?;
                toks.push(Tok::Lit(c));
                i += 2;
            }
            '[' => {
                let (tok, next) = class(p, i + 1)?;
                toks.push(tok);
                i = next;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

/// Whether `toks` match all of `s`, by a table over (token, position) so that any mix of
/// stars stays O(|toks|·|s|²) at worst.
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // next[j]: toks[t+1..] matches s[j..]; cur is filled for toks[t..].
    let mut next = vec![false; n + 1];
    next[n] = true;
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        match tok {
            Tok::AnyPath => {
                let mut any = false;
                for j in (0..=n).rev() {
                    any |= next[j];
                    cur[j] = any;
                }
            }
            Tok::AnyDirs => {
                // Some k >= j with s[k] == '/' and next[k + 1], or next[j] itself.
                let mut after_slash = false;
                for j in (0..=n).rev() {
                    if j < n && s[j] == '/' && next[j + 1] {
                        after_slash = true;
                    }
                    cur[j] = next[j] || after_slash;
                }
            }
            Tok::Star => {
                for j in (0..=n).rev() {
                    cur[j] = next[j] || (j < n && s[j] != '/' && cur[j + 1]);
                }
            }
            Tok::One => {
                for j in 0..n {
                    cur[j] = s[j] != '/' && next[j + 1];
                }
            }
            Tok::Class { negate, ranges } => {
                for j in 0..n {
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= s[j] && s[j] <= hi);
                    cur[j] = s[j] != '/' && inside != *negate && next[j + 1];
                }
            }
            Tok::Lit(c) => {
                for j in 0..n {
                    cur[j] = s[j] == *c && next[j + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

/// The patterns of an ignore file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnorePatterns {
    patterns: Vec<Pattern>,
}

impl IgnorePatterns {
    /// Parses an ignore file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, IgnoreError> {
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
            let bad = |reason| IgnoreError {
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
            let cleaned: Vec<char> = clean_segments(body).join("/").chars().collect();
            let toks = compile(&cleaned).map_err(bad)?;
            patterns.push(Pattern { toks, exception });
        }
        Ok(Self { patterns })
    }

    /// Whether a context-relative, slash-separated path is excluded: the last pattern that
    /// matches the path or one of its parent directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path: Vec<char> = clean_segments(path).join("/").chars().collect();
        // The path and each parent directory, shortest first.
        let ends: Vec<usize> = (0..path.len())
            .filter(|&i| path[i] == '/')
            .chain(std::iter::once(path.len()))
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could change the answer is evaluated.
            if p.exception != excluded {
                continue;
            }
            if ends.iter().any(|&e| matches(&p.toks, &path[..e])) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether any pattern is an exception (so excluded directories must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(text: &str) -> IgnorePatterns {
        IgnorePatterns::parse(".dockerignore", text).unwrap()
    }

    /// Exact matches (no parent matching), as patternmatcher's MatchesExact.
    fn exact(pattern: &str, path: &str) -> bool {
        let cleaned: Vec<char> = clean_segments(pattern).join("/").chars().collect();
        let path: Vec<char> = clean_segments(path).join("/").chars().collect();
        matches(&compile(&cleaned).unwrap(), &path)
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

    // Behaviours of moby/patternmatcher's TestMatches table, checked with our own cases.
    #[test]
    fn double_star_anywhere() {
        let yes = [
            ("**", "file"),
            ("**", "dir/file"),
            ("**/", "file"),
            ("**/**", "dir/file"),
            ("dir/**", "dir/sub/file"),
            ("**/dir", "dir"),
            ("**/d2/*", "d1/d2/file"),
            ("**/d2/**", "d1/d2/d3/file"),
            ("**name", "name"),
            ("**name", "a/b/name"),
            ("**/name*.txt", "a/b/name-1.txt"),
            ("**/**/*.txt", "top.txt"),
            ("x**/*.txt", "x/f.txt"),
            ("x**/*.txt", "x/a/b/f.txt"),
            ("x/*.txt**", "x/f.txt"),
            ("**/.hidden", ".hidden"),
            ("a(b)c/d", "a(b)c/d"),
            ("a.|)$(}+{b", "a.|)$(}+{b"),
        ];
        for (p, s) in yes {
            assert!(exact(p, s), "{p:?} should match {s:?}");
        }
        let no = [
            ("**/**/*.txt2", "a/b/f.txt"),
            ("x/*.txt", "x/a/f.txt"),
            ("abc/**", "abc"),
            ("**/.hidden", "x.hidden"),
            ("**/dir", "dir/file"),
            ("a*/b", "a/c/b"),
            (".*", "visible"),
            ("a?c", "ac"),
        ];
        for (p, s) in no {
            assert!(!exact(p, s), "{p:?} should not match {s:?}");
        }
        // Parent matching makes `**/dir` exclude what is below `dir`.
        assert!(pats("**/dir\n").is_excluded("dir/file"));
    }

    #[test]
    fn classes_and_escapes_follow_go() {
        assert!(exact("a[b-d]e", "ace") && !exact("a[b-d]e", "aae") && !exact("a[b-d]e", "ae"));
        assert!(exact("a[^b-d]e", "aze") && !exact("a[^b-d]e", "ace"));
        assert!(exact("[\\]a]", "]") && exact("[x\\-]", "-") && !exact("[x\\-]", "z"));
        assert!(exact("a\\*b", "a*b") && !exact("a\\*b", "ab"));
        assert!(exact("a?b", "a☺b") && !exact("a?b", "a/b") && !exact("a*b", "a/b"));
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(
                IgnorePatterns::parse(".dockerignore", bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn exceptions_last_match_wins() {
        let p = pats("*.md\n!README.md\nREADME*\n");
        assert!(p.is_excluded("CHANGES.md"));
        assert!(p.is_excluded("README.md"));
        assert!(!pats("*.md\n!README.md\n").is_excluded("README.md"));
        let p = pats("docs\n!docs/keep.txt\n");
        assert!(p.is_excluded("docs/other.txt"));
        assert!(!p.is_excluded("docs/keep.txt"));
        let p = pats("**\n!web\n");
        assert!(!p.is_excluded("web/index.html"));
        let p = pats("**\n!web\nweb/tmp\n");
        assert!(p.is_excluded("web/tmp"));
        assert!(pats("  !x \n").has_exceptions());
    }

    #[test]
    fn bad_lines_are_reported_with_line_numbers() {
        let e = IgnorePatterns::parse(".dockerignore", "ok\n[abc\n").unwrap_err();
        assert!(e
            .to_string()
            .starts_with(".dockerignore:2: invalid ignore pattern"));
        assert!(IgnorePatterns::parse(".dockerignore", "!\n").is_err());
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = pats(&("**/a".repeat(20) + "/b"));
        let deep = vec!["a"; 60].join("/");
        assert!(!p.is_excluded(&deep));
    }
}
