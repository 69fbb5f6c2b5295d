//! Scanner errors reworded for the person at the terminal: a bare word where a key belongs
//! is a missing `:`, a tab in the indentation is named as such.

use super::{Pos, YamlError};

/// Turns a scanner error into one a person can act on: a bare word above the error (`spec`
/// with its block under it) is a missing ':'; tabs cannot indent.
pub(super) fn explain(text: &str, pos: Pos, info: &str) -> YamlError {
    let lines: Vec<&str> = text.lines().collect();
    let line_at = |n: usize| lines.get(n.wrapping_sub(1)).copied().unwrap_or("");
    if line_at(pos.line).starts_with('\t')
        || line_at(pos.line).trim_start_matches(' ').starts_with('\t')
    {
        return YamlError {
            pos,
            message: "tabs are not allowed for indentation: use spaces".to_string(),
        };
    }
    let mut candidates = vec![pos.line];
    if let Some(prev) = (1..pos.line)
        .rev()
        .find(|&n| !line_at(n).trim().is_empty() && !line_at(n).trim_start().starts_with('#'))
    {
        candidates.insert(0, prev);
    }
    for n in candidates {
        let trimmed = line_at(n).trim();
        let bare = !trimmed.is_empty()
            && !trimmed.contains(": ")
            && !trimmed.ends_with(':')
            && !trimmed.starts_with(['-', '#', '"', '\'', '[', '{', '|', '>', '&', '*', '!'])
            && !trimmed.starts_with("...")
            && trimmed.split_whitespace().next().is_some_and(|w| {
                w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
            });
        if bare {
            let message = match trimmed.split_once(char::is_whitespace) {
                None => format!("missing ':' after \"{trimmed}\" (write \"{trimmed}:\")"),
                Some((key, rest)) => format!(
                    "missing ':' in \"{trimmed}\" (write \"{key}: {}\")",
                    rest.trim()
                ),
            };
            let col = line_at(n).len() - line_at(n).trim_start().len() + 1;
            return YamlError {
                pos: Pos { line: n, col },
                message,
            };
        }
    }
    YamlError {
        pos,
        message: format!("{info} (column {})", pos.col),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn a_bare_word_is_a_missing_colon_on_its_own_line() {
        // The scanner notices a line later, under the bare key.
        let text = "metadata:\n  name: p\nspec\n  containers: []\n";
        let e = explain(text, at(4, 13), "mapping values are not allowed");
        assert_eq!(e.pos, at(3, 1));
        assert_eq!(e.message, "missing ':' after \"spec\" (write \"spec:\")");
        let e = explain(
            "a: 1\n  kind Pod\n",
            at(2, 7),
            "could not find expected ':'",
        );
        assert_eq!(e.pos, at(2, 3));
        assert_eq!(
            e.message,
            "missing ':' in \"kind Pod\" (write \"kind: Pod\")"
        );
    }

    #[test]
    fn tabs_and_other_errors() {
        let e = explain(
            "a:\n\t- b\n",
            at(2, 1),
            "found character that cannot start any token",
        );
        assert_eq!(
            e.message,
            "tabs are not allowed for indentation: use spaces"
        );
        let e = explain("a: [1, 2\n", at(2, 1), "did not find expected ',' or ']'");
        assert_eq!(e.pos, at(2, 1));
        assert_eq!(e.message, "did not find expected ',' or ']' (column 1)");
    }
}
