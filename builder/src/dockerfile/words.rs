//! Splitting an instruction's argument text into words, the ways BuildKit's parser does:
//! quote-aware words (ENV, LABEL, ARG), plain whitespace fields (FROM, EXPOSE, COPY),
//! JSON arrays (exec form), and heredoc markers (`<<EOF`, `<<-"EOF"`, `3<<EOF`).

/// A word and the byte offset in the logical line where it starts.
pub(crate) type Word = (String, usize);

/// Splits on whitespace, keeping quotes and escapes in the words (BuildKit `parseWords`).
/// `base` is added to the offsets.
pub(crate) fn quoted_words(rest: &str, escape: char, base: usize) -> Vec<Word> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.char_indices().peekable();
    while let Some((pos, ch)) = chars.next() {
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
            start = pos;
        }
        match quote {
            None => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push((std::mem::take(&mut word), base + start));
                    }
                    in_word = false;
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    match chars.next() {
                        // An escape at the very end is dropped.
                        None => continue,
                        Some((_, next)) => {
                            word.push(ch);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    match chars.next() {
                        None => {
                            quote = None;
                            continue;
                        }
                        Some((_, next)) => {
                            word.push(ch);
                            word.push(next);
                            continue;
                        }
                    }
                }
                word.push(ch);
            }
        }
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push((word, base + start));
    }
    words
}

/// Splits on runs of whitespace with no quoting (BuildKit `parseStringsWhitespaceDelimited`).
pub(crate) fn fields(rest: &str, base: usize) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in rest.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((rest[s..i].to_string(), base + s));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((rest[s..].to_string(), base + s));
    }
    out
}

/// The outcome of trying to read arguments as a JSON array.
pub(crate) enum JsonArgs {
    /// Not a JSON array of strings: use the shell form.
    NotJson,
    /// A JSON array holding something other than strings.
    NotStrings,
    /// A JSON array of strings.
    Strings(Vec<String>),
}

/// Reads `rest` as a JSON array of strings, as BuildKit's `parseJSON` does: text that
/// does not start with `[` or does not parse is not JSON (shell form), but a valid array
/// with a non-string element is an error.
pub(crate) fn json_array(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => JsonArgs::NotJson,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return JsonArgs::NotStrings,
                }
            }
            JsonArgs::Strings(out)
        }
    }
}

/// A heredoc marker found in an instruction's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocMarker {
    /// The terminator, unquoted.
    pub name: String,
    /// False when any part of the terminator was quoted.
    pub expand: bool,
    /// `<<-`.
    pub chomp: bool,
    /// `3<<EOF`.
    pub fd: Option<u32>,
}

/// Parses one raw word as a heredoc marker: `^(\d*)<<(-?)([^<]*)$` with a non-empty,
/// single-word terminator (BuildKit `ParseHeredoc`).
pub(crate) fn heredoc_marker(word: &str) -> Option<HeredocMarker> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote_word(rest)?;
    if name.is_empty() {
        return None;
    }
    Some(HeredocMarker {
        name,
        expand: !quoted,
        chomp,
        fd: if fd.is_empty() { None } else { fd.parse().ok() },
    })
}

/// Removes shell quoting and backslash escapes from a word; `None` if it would be more than
/// one word or has an unterminated quote. Also reports whether any quote was present.
fn unquote_word(word: &str) -> Option<(String, bool)> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => out.push(c),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '$' | '\\') => out.push(c),
                            c => {
                                out.push('\\');
                                out.push(c);
                            }
                        },
                        c => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            c if c.is_whitespace() => return None,
            c => out.push(c),
        }
    }
    Some((out, quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        quoted_words(s, '\\', 0).into_iter().map(|w| w.0).collect()
    }

    #[test]
    fn quoted_words_keep_quotes_and_escapes() {
        assert_eq!(words(r#"a="b c" d='e f'"#), vec![r#"a="b c""#, "d='e f'"]);
        assert_eq!(words(r"a\ b c"), vec![r"a\ b", "c"]);
        assert_eq!(words(r#""" x"#), vec![r#""""#, "x"]);
        assert_eq!(words("  "), Vec::<String>::new());
    }

    #[test]
    fn fields_record_offsets() {
        assert_eq!(
            fields("a  bb\tc", 10),
            vec![("a".into(), 10), ("bb".into(), 13), ("c".into(), 16)]
        );
    }

    #[test]
    fn json_arrays() {
        assert!(matches!(json_array(r#"["a", "b"]"#), JsonArgs::Strings(v) if v == ["a", "b"]));
        assert!(matches!(json_array("[1]"), JsonArgs::NotStrings));
        assert!(matches!(json_array("[a]"), JsonArgs::NotJson));
        assert!(matches!(json_array("echo"), JsonArgs::NotJson));
    }

    #[test]
    fn heredoc_markers() {
        let m = heredoc_marker("<<EOF").unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.chomp, m.fd),
            ("EOF", true, false, None)
        );
        let m = heredoc_marker("3<<-'END'").unwrap();
        assert_eq!(
            (m.name.as_str(), m.expand, m.chomp, m.fd),
            ("END", false, true, Some(3))
        );
        let m = heredoc_marker(r#"<<E"O"F"#).unwrap();
        assert_eq!((m.name.as_str(), m.expand), ("EOF", false));
        assert_eq!(heredoc_marker("<<"), None);
        assert_eq!(heredoc_marker("a<<EOF"), None);
        assert_eq!(heredoc_marker(r#""<<EOF""#), None);
    }
}
