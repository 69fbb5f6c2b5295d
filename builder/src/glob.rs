//! Shell-style pattern matching shared by variable expansion (`${v#p}`), `.dockerignore`
//! segments and COPY source wildcards: `*`, `?`, `[...]` classes and an escape character.

/// Pattern match of the whole of `s`: `*`, `?`, `escape` to quote the next character and,
/// with `classes`, `[...]` (with `!`/`^` and ranges; without, `[` is literal as in
/// BuildKit's `${v#pattern}`).
///
/// Runs in O(|p|·|s|): on a mismatch it resumes from the last `*` only, which is enough
/// because a later `*` can absorb whatever an earlier one would have.
pub(crate) fn glob(p: &[char], s: &[char], escape: char, classes: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        // How many pattern chars the element at `pi` uses if it matches `s[si]`.
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') if classes => match class(&p[pi + 1..], s[si]) {
                Some((true, used)) => Some(1 + used),
                Some((false, _)) => None,
                None => (s[si] == '[').then_some(1),
            },
            Some(&c) if c == escape && pi + 1 < p.len() => (p[pi + 1] == s[si]).then_some(2),
            Some(&c) => (c == s[si]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(n), _) => {
                pi += n;
                si += 1;
            }
            (None, Some((after, from))) => {
                pi = after;
                si = from + 1;
                star = Some((after, from + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
        assert!(m("*a*b", "xxaxxb"));
        assert!(!m("*a*b", "xxaxxbx"));
        assert!(m("a*", "a"));
        assert!(m("**", ""));
        assert!(!m("a?", "a"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let p = "*a".repeat(30) + "b";
        let s = "a".repeat(200);
        assert!(!m(&p, &s));
    }
}
