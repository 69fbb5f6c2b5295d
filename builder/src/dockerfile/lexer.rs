//! Turns Dockerfile text into logical lines: parser directives, comments, continuation
//! lines and heredoc bodies, as BuildKit's `parser.Parse` does, keeping for every byte of
//! a joined line the source line and column it came from.

use super::ast::Directives;
use super::error::{ParseErrorKind, Span};

/// A run of a logical line copied from one source line.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Byte offset in the logical line where the run starts.
    offset: usize,
    /// 1-based source line.
    line: usize,
    /// 1-based source column (characters) of the run's first character.
    column: usize,
}

/// One instruction's text with its continuation lines joined.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    /// The joined text, continuation characters removed.
    pub text: String,
    segments: Vec<Segment>,
}

impl LogicalLine {
    /// The source position of byte `offset` of `text` (clamped to the end).
    pub fn span_at(&self, offset: usize) -> Span {
        let offset = offset.min(self.text.len());
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.offset <= offset)
            .or(self.segments.first())
            .copied()
            .unwrap_or(Segment {
                offset: 0,
                line: 1,
                column: 1,
            });
        let start = seg.offset.min(offset);
        let chars = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        Span {
            line: seg.line,
            column: seg.column + chars,
        }
    }
}

/// A lexer error: what, and where.
pub(crate) type LexError = (ParseErrorKind, Span);

/// A cursor over the source lines of a Dockerfile.
pub(crate) struct Lines<'a> {
    lines: Vec<&'a str>,
    /// Index of the next line to read (0-based).
    next: usize,
    /// The parser directives found at the top.
    pub directives: Directives,
}

const UTF8_BOM: char = '\u{feff}';

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, returning (lower-cased name, value).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

impl<'a> Lines<'a> {
    /// The source lines of `text`: split on newlines, `\r` and a leading BOM removed.
    pub fn source_text_lines(text: &str) -> Vec<String> {
        Self::split(text).into_iter().map(str::to_string).collect()
    }

    fn split(text: &str) -> Vec<&str> {
        let text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect()
    }

    /// Splits `text` into lines and reads the parser directives at its top.
    pub fn new(text: &'a str) -> Result<Self, LexError> {
        let lines = Self::split(text);
        let mut directives = Directives::default();
        let mut seen: Vec<String> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((name, value)) = directive(line) else {
                break;
            };
            if !matches!(name.as_str(), "escape" | "syntax" | "check") {
                break;
            }
            let span = Span {
                line: i + 1,
                column: 1,
            };
            if seen.contains(&name) {
                return Err((ParseErrorKind::DuplicateDirective(name), span));
            }
            match name.as_str() {
                "escape" => {
                    directives.escape = match value.as_str() {
                        "\\" => '\\',
                        "`" => '`',
                        _ => return Err((ParseErrorKind::InvalidEscape(value), span)),
                    }
                }
                "syntax" => directives.syntax = Some(value),
                _ => directives.check = Some(value),
            }
            seen.push(name);
        }
        Ok(Self {
            lines,
            next: 0,
            directives,
        })
    }

    fn is_comment(line: &str) -> bool {
        line.trim_start_matches(is_blank).starts_with('#')
    }

    /// Strips a trailing escape character plus blanks; returns (text, continues).
    fn trim_continuation(&self, line: &'a str) -> (&'a str, bool) {
        let trimmed = line.trim_end_matches(is_blank);
        match trimmed.strip_suffix(self.directives.escape) {
            Some(t) => (t, true),
            None => (line, false),
        }
    }

    /// Reads the next instruction's logical line, skipping comments and blank lines.
    /// Returns `None` at the end of the file.
    pub fn next_logical(&mut self) -> Option<LogicalLine> {
        while self.next < self.lines.len() {
            let line_no = self.next + 1;
            let raw = self.lines[self.next];
            self.next += 1;
            if Self::is_comment(raw) {
                continue;
            }
            let stripped = raw.trim_start_matches(char::is_whitespace);
            let lead_chars = raw[..raw.len() - stripped.len()].chars().count();
            let (first, mut continues) = self.trim_continuation(stripped);
            if !continues && first.trim().is_empty() {
                continue;
            }
            let mut out = LogicalLine {
                text: first.to_string(),
                segments: vec![Segment {
                    offset: 0,
                    line: line_no,
                    column: lead_chars + 1,
                }],
            };
            let mut empty_continuation = false;
            while continues && self.next < self.lines.len() {
                let line_no = self.next + 1;
                let raw = self.lines[self.next];
                self.next += 1;
                if Self::is_comment(raw) {
                    continue;
                }
                if raw.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, more) = self.trim_continuation(raw);
                continues = more;
                out.segments.push(Segment {
                    offset: out.text.len(),
                    line: line_no,
                    column: 1,
                });
                out.text.push_str(part);
            }
            if empty_continuation {
                tracing::warn!(
                    line = line_no,
                    "empty continuation line: a future Dockerfile syntax may treat it as the end of the instruction"
                );
            }
            return Some(out);
        }
        None
    }

    /// Reads a heredoc body up to its terminator line (leading tabs ignored with `chomp`).
    /// Returns the body with leading tabs removed from each line when `chomp` is set.
    pub fn heredoc_body(
        &mut self,
        terminator: &str,
        chomp: bool,
        at: Span,
    ) -> Result<String, LexError> {
        let mut content = String::new();
        while self.next < self.lines.len() {
            let raw = self.lines[self.next];
            self.next += 1;
            let candidate = if chomp {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if candidate == terminator {
                return Ok(content);
            }
            content.push_str(if chomp { candidate } else { raw });
            content.push('\n');
        }
        Err((
            ParseErrorKind::UnterminatedHeredoc(terminator.to_string()),
            at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logical(text: &str) -> Vec<String> {
        let mut lines = Lines::new(text).unwrap();
        std::iter::from_fn(|| lines.next_logical().map(|l| l.text)).collect()
    }

    #[test]
    fn joins_continuations_skipping_comments_and_blank_lines() {
        let text = "FROM a\nRUN echo a \\\n# note\n\n  b \\  \n c\n\n# done\n";
        assert_eq!(logical(text), vec!["FROM a", "RUN echo a   b  c"]);
    }

    #[test]
    fn directives_stop_at_first_other_line() {
        let l = Lines::new("# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM a\n# escape=\\\n")
            .unwrap();
        assert_eq!(l.directives.escape, '`');
        assert_eq!(l.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        let l = Lines::new("# comment\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(l.directives.escape, '\\');
    }

    #[test]
    fn backtick_escape_continues_lines() {
        assert_eq!(
            logical("# escape=`\nRUN dir c:\\ `\n  /b\n"),
            vec!["RUN dir c:\\   /b"]
        );
    }

    #[test]
    fn spans_follow_continuation_lines() {
        let mut l = Lines::new("  RUN a \\\nbcd\n").unwrap();
        let line = l.next_logical().unwrap();
        assert_eq!(line.span_at(0), Span { line: 1, column: 3 });
        let b = line.text.find('b').unwrap();
        assert_eq!(line.span_at(b + 1), Span { line: 2, column: 2 });
    }

    #[test]
    fn duplicate_and_bad_directives_are_errors() {
        assert!(matches!(
            Lines::new("# escape=`\n# escape=`\n"),
            Err((ParseErrorKind::DuplicateDirective(_), Span { line: 2, .. }))
        ));
        assert!(matches!(
            Lines::new("# escape=x\n"),
            Err((ParseErrorKind::InvalidEscape(_), _))
        ));
    }
}
