//! Shell-style pattern matching shared by variable expansion (`${v#p}`), `.dockerignore`
//! segments and COPY source wildcards: `*`, `?`, `[...]` classes and an escape character.

/// Pattern match of the whole of `s`: `*`, `?`, `escape` to quote the next character and,
/// with `classes`, `[...]` (with `!`/`^` and ranges; without, `[` is literal as in
/// BuildKit's `${v#pattern}`).
pub(crate) fn glob(p: &[char], s: &[char], escape: char, classes: bool) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => (0..=s.len()).any(|i| glob(&p[1..], &s[i..], escape, classes)),
        Some('?') => !s.is_empty() && glob(&p[1..], &s[1..], escape, classes),
        Some('[') if classes => match s.first() {
            None => false,
            Some(&c) => match class(&p[1..], c) {
                Some((true, used)) => glob(&p[1 + used..], &s[1..], escape, classes),
                Some((false, _)) => false,
                // No closing bracket: a literal `[`.
                None => c == '[' && glob(&p[1..], &s[1..], escape, classes),
            },
        },
        Some(&c) if c == escape && p.len() > 1 => {
            s.first() == Some(&p[1]) && glob(&p[2..], &s[1..], escape, classes)
        }
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..], escape, classes),
    }
}

/// Matches `c` against a bracket class starting after `[`; returns (matched, chars used
/// including the closing `]`), or `None` when the class is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let hi = p[i + 2];
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if c == lo {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        let p: Vec<char> = p.chars().collect();
        let s: Vec<char> = s.chars().collect();
        glob(&p, &s, '\\', true)
    }

    #[test]
    fn wildcards_and_classes() {
        assert!(m("*.go", "main.go"));
        assert!(!m("*.go", "main.rs"));
        assert!(m("?at", "cat"));
        assert!(m("[a-c]at", "bat"));
        assert!(!m("[^a-c]at", "bat"));
        assert!(m("[!a-c]at", "rat"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("[", "["));
        assert!(m("a[]]b", "a]b"));
        let lit: Vec<char> = "[ab]".chars().collect();
        assert!(glob(&lit, &lit, '\\', false));
    }
}
