//! Shell-style word expansion as BuildKit's `shell/lex.go` does it for Dockerfile
//! instructions: `$v`, `${v}`, `${v:-w}`, `${v:+w}`, `${v-w}`, `${v+w}`, `${v:?w}`,
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, quotes and escapes.
//! Unset variables expand to nothing; no command substitution or arithmetic.
//!
//! Expansion is bounded: a word may not grow past [`MAX_WORD`] bytes (so
//! `ENV A=${A}${A}` repeated cannot exhaust memory), and pattern operators
//! (`#`, `%`, `/`) stop after [`MAX_MATCH_WORK`] steps of matching.

use std::collections::BTreeMap;

use crate::glob::glob;

/// Variables visible to an expansion (build args and environment, already merged).
pub type Vars = BTreeMap<String, String>;

/// The longest a word may become once expanded: far beyond any real use,
/// small enough that a doubling bomb fails long before memory runs out.
pub const MAX_WORD: usize = 1 << 20;

/// How many characters pattern matching may look at for one word.
pub const MAX_MATCH_WORK: u64 = 1 << 28;

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${v` without its closing brace.
    #[error("syntax error: missing '}}' in variable substitution")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${v!x}` and other operators BuildKit does not have, and `${v:#x}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// An opening quote without its closing one.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// A `#`, `%` or `/` pattern with an escape before something other than `*`, `?`,
    /// `\`, `}` or `/`, or at its end.
    #[error("invalid pattern {pattern:?}: the escape character must precede *, ?, \\, }} or /{}", escaped.map(|c| format!(", not {c:?}")).unwrap_or_default())]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// The escaped character, `None` at the end.
        escaped: Option<char>,
    },
    /// The expanded word grew past [`MAX_WORD`], with the variable whose expansion did it.
    #[error("expansion {}exceeds {MAX_WORD} bytes", .0.as_ref().map(|n| format!("of {n} ")).unwrap_or_default())]
    TooLong(Option<String>),
    /// A `#`, `%` or `/` pattern needed more than [`MAX_MATCH_WORK`] steps.
    #[error("pattern substitution on a {len}-character value is too costly")]
    TooCostly {
        /// The length of the value matched against.
        len: usize,
    },
    /// `${v?msg}` with `v` unset, or `${v:?msg}` with `v` unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given, or the default one.
        message: String,
    },
}

/// Expands words with the Dockerfile's escape character.
#[derive(Debug, Clone, Copy)]
pub struct Expander {
    escape: char,
    tolerate_unset: bool,
}

impl Expander {
    /// An expander for a Dockerfile whose escape character is `escape`.
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            tolerate_unset: false,
        }
    }

    /// An expander for which `${v?msg}` and `${v:?msg}` expand to nothing instead of
    /// failing: for planning before the base image's environment is known.
    pub fn tolerating_unset(self) -> Self {
        Self {
            tolerate_unset: true,
            ..self
        }
    }

    /// Expands one word (BuildKit `ProcessWord`): quotes are removed, whitespace kept.
    pub fn word(&self, text: &str, vars: &Vars) -> Result<String, ExpandError> {
        self.scan(text, vars, false)
    }

    /// Expands heredoc file content for COPY/ADD (BuildKit `ExpandRaw`): quotes are kept
    /// (single quotes still stop expansion), escapes are processed.
    pub fn keeping_quotes(&self, text: &str, vars: &Vars) -> Result<String, ExpandError> {
        self.scan(text, vars, true)
    }

    fn scan(&self, text: &str, vars: &Vars, raw_quotes: bool) -> Result<String, ExpandError> {
        let mut scan = Scan {
            chars: text.chars().collect(),
            pos: 0,
            escape: self.escape,
            vars,
            raw_quotes,
            tolerate_unset: self.tolerate_unset,
            work: MAX_MATCH_WORK,
        };
        scan.until(None, false)
    }
}

struct Scan<'v> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'v Vars,
    raw_quotes: bool,
    tolerate_unset: bool,
    /// Pattern-matching steps left.
    work: u64,
}

/// Appends `s` to `out` unless that makes it longer than [`MAX_WORD`].
fn append(out: &mut String, s: &str) -> Result<(), ExpandError> {
    if out.len() + s.len() > MAX_WORD {
        return Err(ExpandError::TooLong(None));
    }
    out.push_str(s);
    Ok(())
}

fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to `stop` (consumed) or the end; with `raw_escapes` the escape character
    /// is kept (patterns need it to tell `\*` from `*`).
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '\'' => append(&mut out, &self.single_quoted()?)?,
                '"' => append(&mut out, &self.double_quoted()?)?,
                '$' => self.append_dollar(&mut out)?,
                _ => {
                    self.pos += 1;
                    if ch == self.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => out.push(c),
                        }
                    } else {
                        out.push(ch);
                    }
                }
            }
        }
        match stop {
            Some('}') => Err(ExpandError::MissingBrace),
            Some(_) => Err(ExpandError::MissingBrace),
            None => Ok(out),
        }
    }

    /// Expands the `$...` at the cursor onto `out`; an overflow names the variable.
    fn append_dollar(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let start = self.pos + 1;
        let value = self.dollar()?;
        append(out, &value).map_err(|_| {
            let name: String = self.chars[start..]
                .iter()
                .skip_while(|c| **c == '{')
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            ExpandError::TooLong((!name.is_empty()).then_some(name))
        })
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::Unterminated("single-quote")),
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::Unterminated("double-quote")),
                Some('"') => {
                    self.pos += 1;
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => self.append_dollar(&mut out)?,
                Some(ch) => {
                    self.pos += 1;
                    if ch == self.escape {
                        match self.peek() {
                            // A trailing escape is dropped.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                self.pos += 1;
                                out.push(c);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// Checks a `#`, `%` or `/` pattern: the escape may only precede `*`, `?`, `\`, `}` or
    /// `/` (BuildKit `convertShellPatternToRegex`).
    fn check_pattern(pattern: &str) -> Result<(), ExpandError> {
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('*' | '?' | '\\' | '}' | '/') => {}
                    other => {
                        return Err(ExpandError::BadPattern {
                            pattern: pattern.to_string(),
                            escaped: other,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// A variable name: letters, digits, `_`; or a run of digits; or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(c);
                }
                return name;
            }
            Some(c) if is_special_param(c) => {
                self.pos += 1;
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.vars.get(&name).cloned().unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.name();
        let value = self.vars.get(&name).cloned();
        let mut op = match self.next() {
            None => return Err(ExpandError::MissingBrace),
            Some('}') => return Ok(value.unwrap_or_default()),
            Some(c) => c,
        };
        let mut null_is_unset = false;
        let mut shown = op.to_string();
        if op == ':' {
            null_is_unset = true;
            op = self.next().ok_or(ExpandError::MissingBrace)?;
            shown.push(op);
        }
        match op {
            '-' | '+' | '?' => {
                let word = self.until(Some('}'), false)?;
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                Ok(match op {
                    '-' if unset => word,
                    '-' => value.unwrap_or_default(),
                    '+' if unset => String::new(),
                    '+' => word,
                    _ if unset && self.tolerate_unset => String::new(),
                    _ if unset => {
                        let message = if !word.is_empty() {
                            word
                        } else if value.is_none() {
                            "is not allowed to be unset".into()
                        } else {
                            "is not allowed to be empty".into()
                        };
                        return Err(ExpandError::Required { name, message });
                    }
                    _ => value.unwrap_or_default(),
                })
            }
            '#' | '%' if !null_is_unset => {
                let mut pattern = self.until(Some('}'), true)?;
                Self::check_pattern(&pattern)?;
                let longest = pattern.starts_with(op);
                if longest {
                    pattern.remove(0);
                }
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                let pattern: Vec<char> = pattern.chars().collect();
                if op == '#' {
                    self.trim_prefix(&pattern, &value, longest)
                } else {
                    self.trim_suffix(&pattern, &value, longest)
                }
            }
            '/' if !null_is_unset => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.until(Some('/'), true)?;
                Self::check_pattern(&pattern)?;
                let pattern: Vec<char> = pattern.chars().collect();
                let replacement = self.until(Some('}'), true)?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                self.replace(&pattern, &value, &replacement, all)
            }
            _ => Err(ExpandError::UnsupportedModifier(shown)),
        }
    }
}

impl Scan<'_> {
    /// [`glob`], charged against the word's matching budget.
    fn glob(&mut self, p: &[char], s: &[char], value_len: usize) -> Result<bool, ExpandError> {
        // Linear in both, times the restarts each `*` may cause.
        let stars = p.iter().filter(|&&c| c == '*').count() as u64;
        let cost = (s.len() as u64 + p.len() as u64 + 1) * (stars + 1);
        self.work = self
            .work
            .checked_sub(cost)
            .ok_or(ExpandError::TooCostly { len: value_len })?;
        Ok(glob(p, s, '\\', false))
    }

    fn trim_prefix(
        &mut self,
        p: &[char],
        v: &[char],
        longest: bool,
    ) -> Result<String, ExpandError> {
        let ends: Box<dyn Iterator<Item = usize>> = if let Some(len) = literal_len(p) {
            Box::new((len..=len).filter(|&l| l <= v.len()))
        } else if longest {
            Box::new((0..=v.len()).rev())
        } else {
            Box::new(0..=v.len())
        };
        for end in ends {
            if self.glob(p, &v[..end], v.len())? {
                return Ok(v[end..].iter().collect());
            }
        }
        Ok(v.iter().collect())
    }

    fn trim_suffix(
        &mut self,
        p: &[char],
        v: &[char],
        longest: bool,
    ) -> Result<String, ExpandError> {
        let starts: Box<dyn Iterator<Item = usize>> = if let Some(len) = literal_len(p) {
            Box::new(v.len().checked_sub(len).into_iter())
        } else if longest {
            Box::new(0..=v.len())
        } else {
            Box::new((0..=v.len()).rev())
        };
        for start in starts {
            if self.glob(p, &v[start..], v.len())? {
                return Ok(v[..start].iter().collect());
            }
        }
        Ok(v.iter().collect())
    }

    /// Replaces the first (or every) leftmost-longest match of `p` in `v`. A
    /// pattern without wildcards matches only its own length, so only that end
    /// is tried.
    fn replace(
        &mut self,
        p: &[char],
        v: &[char],
        with: &str,
        all: bool,
    ) -> Result<String, ExpandError> {
        let literal = literal_len(p);
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= v.len() {
            let found = if replaced && !all {
                None
            } else if let Some(len) = literal {
                let end = i + len;
                match end <= v.len() && self.glob(p, &v[i..end], v.len())? {
                    true => Some(end),
                    false => None,
                }
            } else {
                let mut found = None;
                for end in (i..=v.len()).rev() {
                    if self.glob(p, &v[i..end], v.len())? {
                        found = Some(end);
                        break;
                    }
                }
                found
            };
            let mut buf = [0u8; 4];
            match found {
                Some(end) => {
                    append(&mut out, with)?;
                    replaced = true;
                    if end == i {
                        if let Some(c) = v.get(i) {
                            append(&mut out, c.encode_utf8(&mut buf))?;
                        }
                        i += 1;
                    } else {
                        i = end;
                    }
                }
                None => {
                    if let Some(c) = v.get(i) {
                        append(&mut out, c.encode_utf8(&mut buf))?;
                    }
                    i += 1;
                }
            }
        }
        Ok(out)
    }
}

/// How many characters a pattern without `*` or `?` matches; `None` when it has wildcards.
fn literal_len(p: &[char]) -> Option<usize> {
    let mut len = 0;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' | '?' => return None,
            '\\' => i += 2,
            _ => i += 1,
        }
        len += 1;
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("EMPTY", ""),
            ("path", "a/b/c.tar.gz"),
            ("sp", "a b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn x(text: &str) -> String {
        Expander::new('\\').word(text, &vars()).unwrap()
    }

    fn e(text: &str) -> ExpandError {
        Expander::new('\\').word(text, &vars()).unwrap_err()
    }

    // Cases modelled on BuildKit's envVarTest: each is (input, expected).
    #[test]
    fn plain_variables_and_quoting() {
        let cases = [
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he'llo", ""),
            (r"he\'llo", "he'llo"),
            ("'hello world'", "hello world"),
            (r#""hello \"world\"""#, r#"hello "world""#),
            (r#""a\nb""#, r"a\nb"),
            ("$PWD", "/home"),
            ("${PWD}", "/home"),
            ("${PWD}x", "/homex"),
            ("$PWDx", ""),
            (r"\$PWD", "$PWD"),
            (r#""$PWD""#, "/home"),
            ("'$PWD'", "$PWD"),
            (r#""\$PWD""#, "$PWD"),
            ("$", "$"),
            ("a$", "a$"),
            ("$/x", "$/x"),
            ("$KOREAN", "한국어"),
            ("${KOREAN}!", "한국어!"),
            ("$UNSET", ""),
            ("$1x", "x"),
            ("a b  c", "a b  c"),
            (r"foo\", "foo"),
        ];
        for (input, want) in cases {
            if want.is_empty() && input == "he'llo" {
                assert!(Expander::new('\\').word(input, &vars()).is_err());
                continue;
            }
            assert_eq!(x(input), want, "input {input:?}");
        }
    }

    #[test]
    fn defaults_and_alternatives() {
        let cases = [
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            ("${PWD:-def}", "/home"),
            ("${PWD:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-${SHELL}}", "bash"),
            ("${UNSET:-'a b'}", "a b"),
            (r#"${UNSET:-"$PWD x"}"#, "/home x"),
            ("${PWD:?oops}", "/home"),
        ];
        for (input, want) in cases {
            assert_eq!(x(input), want, "input {input:?}");
        }
    }

    #[test]
    fn pattern_operators() {
        let cases = [
            ("${path#*/}", "b/c.tar.gz"),
            ("${path##*/}", "c.tar.gz"),
            ("${path%.*}", "a/b/c.tar"),
            ("${path%%.*}", "a/b/c"),
            ("${path#x}", "a/b/c.tar.gz"),
            ("${path/\\//_}", "a_b/c.tar.gz"),
            ("${path//\\//_}", "a_b_c.tar.gz"),
            ("${path//[ab]/X}", "a/b/c.tar.gz"),
            ("${path/?/Z}", "Z/b/c.tar.gz"),
            ("${UNSET#x}", ""),
            ("${SHELL/sh/}", "ba"),
            ("${SHELL#\\*}", "bash"),
        ];
        for (input, want) in cases {
            assert_eq!(x(input), want, "input {input:?}");
        }
    }

    // Cases from BuildKit's TestProcessWithMatches, with their own variables.
    #[test]
    fn buildkit_pattern_cases() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 16] = [
            (
                r"${FOO#()[]{\}^$.\*\?|\\}",
                &[("FOO", r"()[]{}^$.*?|\x")],
                "x",
            ),
            (r"${FOO%%\**}", &[("FOO", "xx**")], "xx"),
            ("${FOO#*x*y}", &[("FOO", "xxyy")], "y"),
            ("${FOO#*}", &[("FOO", "xxyy")], "xxyy"),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], "xyy"),
            ("${FOO##*x}", &[("FOO", "xxyy")], "yy"),
            (r"${FOO#?\?}", &[("FOO", "???y")], "?y"),
            ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], ".xxyy."),
            (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], "a"),
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")],
                "/foo.*/*.txt - /foo..*.txt",
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
                "/tmp/bar.txt - /bar.txt",
            ),
            (
                "${FOO/$N/$R} - ${FOO//$N/$R}",
                &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")],
                "/foo/b/c.txt - /foo/c.txt",
            ),
            (
                r"${FOO//\//\/}",
                &[("FOO", "/tmp/foo.txt")],
                r"\/tmp\/foo.txt",
            ),
            ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], "wwxxyy"),
            ("${FOO///}", &[("FOO", "xxyy")], "xxyy"),
            (
                "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
                &[("FOO", "xxx"), ("BAR", "")],
                "xxx  ccc",
            ),
        ];
        for (input, env, want) in cases {
            let vars: Vars = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(
                Expander::new('\\').word(input, &vars).unwrap(),
                want,
                "input {input:?}"
            );
        }
        let vars: Vars = [("FOO".to_string(), "xxyy".to_string())].into();
        for bad in [
            "${FOO//ww}",
            "${FOO//}",
            "${FOO=aaa}",
            "${FOO=:aaa}",
            r"${FOO#\x}",
        ] {
            assert!(
                Expander::new('\\').word(bad, &vars).is_err(),
                "input {bad:?}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_eq!(e("${PWD"), ExpandError::MissingBrace);
        assert_eq!(e("${PWD:-x"), ExpandError::MissingBrace);
        assert_eq!(e("${}"), ExpandError::BadSubstitution);
        assert_eq!(e("${:x}"), ExpandError::BadSubstitution);
        assert_eq!(e("${PWD!x}"), ExpandError::UnsupportedModifier("!".into()));
        assert_eq!(
            e("${PWD:#x}"),
            ExpandError::UnsupportedModifier(":#".into())
        );
        assert_eq!(e("\"abc"), ExpandError::Unterminated("double-quote"));
        assert_eq!(
            e("${UNSET?}").to_string(),
            "UNSET: is not allowed to be unset"
        );
        assert_eq!(e("${EMPTY:?must be set}").to_string(), "EMPTY: must be set");
    }

    #[test]
    fn heredoc_content_keeps_quotes() {
        let ex = Expander::new('\\');
        let text = "<?xml version=\"1.0\"?>\n\"$PWD\" '$PWD' \\$PWD\n";
        assert_eq!(
            ex.keeping_quotes(text, &vars()).unwrap(),
            "<?xml version=\"1.0\"?>\n\"/home\" '$PWD' $PWD\n"
        );
    }

    #[test]
    fn tolerating_unset_for_planning() {
        let ex = Expander::new('\\').tolerating_unset();
        assert_eq!(ex.word("a${UNSET:?set it}b", &vars()).unwrap(), "ab");
        assert!(ex.word("${UNSET", &vars()).is_err());
    }

    #[test]
    fn backtick_escape() {
        let ex = Expander::new('`');
        assert_eq!(ex.word(r"c:\dir `$PWD", &vars()).unwrap(), r"c:\dir $PWD");
    }

    #[test]
    fn doubling_bomb_stops_at_the_word_limit() {
        let ex = Expander::new('\\');
        let mut vars = Vars::new();
        vars.insert("A".into(), "x".into());
        let mut failed = None;
        for round in 0..40 {
            match ex.word("${A}${A}", &vars) {
                Ok(v) => {
                    assert!(v.len() <= MAX_WORD);
                    vars.insert("A".into(), v);
                }
                Err(e) => {
                    failed = Some((round, e));
                    break;
                }
            }
        }
        let (round, err) = failed.expect("the bomb is stopped");
        assert_eq!(round, 20, "2^21 bytes is the first value past 1 MiB");
        assert_eq!(err, ExpandError::TooLong(Some("A".into())));
        assert_eq!(err.to_string(), "expansion of A exceeds 1048576 bytes");
    }

    #[test]
    fn replacement_bomb_stops_at_the_word_limit() {
        let mut vars = Vars::new();
        vars.insert("A".into(), "a".repeat(4096));
        // Every character replaced by the whole value: 16 MiB.
        let err = Expander::new('\\').word("${A//a/$A}", &vars).unwrap_err();
        assert_eq!(err, ExpandError::TooLong(None));
    }

    #[test]
    fn costly_pattern_is_refused_and_literal_one_is_fast() {
        let mut vars = Vars::new();
        vars.insert("A".into(), "ab".repeat(300_000));
        let ex = Expander::new('\\');
        assert_eq!(
            ex.word("${A//*c/x}", &vars).unwrap_err(),
            ExpandError::TooCostly { len: 600_000 }
        );
        // Literal patterns try one length per position: cheap on long values.
        assert_eq!(ex.word("${A//ab/}", &vars).unwrap(), "");
        assert_eq!(ex.word("${A#ab}", &vars).unwrap().len(), 599_998);
        assert_eq!(ex.word("${A%%ab}", &vars).unwrap().len(), 599_998);
    }
}
