//! Instruction flags (`--name=value` before the arguments): extraction from the line and
//! validation against the flags each instruction accepts (BuildKit `BFlags`).

use super::error::ParseErrorKind;

/// A flag as written: name without dashes, value (quotes removed) and its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFlag {
    pub name: String,
    pub value: Option<String>,
    pub offset: usize,
}

/// Reads the leading `--flag[=value]` words of `rest` (BuildKit `extractBuilderFlags`).
/// Returns the flags and the byte offset (within `rest`) where the arguments start.
/// A lone `--` ends the flags.
pub(crate) fn extract(rest: &str) -> (Vec<RawFlag>, usize) {
    let mut flags = Vec::new();
    let bytes = rest.as_bytes();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
            pos += 1;
        }
        if !rest[pos..].starts_with("--") {
            return (flags, pos);
        }
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = rest[pos..].char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = pos + i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        pos = end;
        if word == "--" {
            while pos < bytes.len() && (bytes[pos] as char).is_ascii_whitespace() {
                pos += 1;
            }
            return (flags, pos);
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        flags.push(RawFlag {
            name,
            value,
            offset: start,
        });
    }
}

/// What kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    Single,
    /// `--mount=x`, repeatable.
    Many,
}

/// A validated flag value and the offset of its flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagValue {
    pub value: String,
    pub offset: usize,
}

/// Flags after validation, looked up by name.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, FlagValue)>,
}

impl Flags {
    /// The value of a single-valued flag.
    pub fn single(&self, name: &str) -> Option<FlagValue> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// Every value of a repeatable flag, in order.
    pub fn many(&self, name: &str) -> Vec<FlagValue> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a boolean flag is set (and not `=false`).
    pub fn bool(&self, name: &str) -> bool {
        self.single(name).is_some_and(|v| v.value == "true")
    }
}

/// Checks `raw` against the flags `instruction` accepts.
/// Errors carry the offset of the offending flag.
pub(crate) fn validate(
    instruction: &'static str,
    raw: Vec<RawFlag>,
    spec: &[(&'static str, Kind)],
) -> Result<Flags, (ParseErrorKind, usize)> {
    let mut flags = Flags::default();
    for flag in raw {
        let Some(&(name, kind)) = spec.iter().find(|(n, _)| *n == flag.name) else {
            let suggestion = spec
                .iter()
                .map(|(n, _)| *n)
                .find(|n| super::parser::is_close(n, &flag.name));
            return Err((
                ParseErrorKind::UnknownFlag {
                    flag: flag.name,
                    instruction,
                    suggestion,
                },
                flag.offset,
            ));
        };
        if kind != Kind::Many && flags.values.iter().any(|(n, _)| *n == name) {
            return Err((ParseErrorKind::DuplicateFlag(flag.name), flag.offset));
        }
        let value = match (kind, flag.value) {
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                b @ ("true" | "false") => b.to_string(),
                _ => {
                    return Err((
                        ParseErrorKind::FlagNotBool {
                            flag: flag.name,
                            value: v,
                        },
                        flag.offset,
                    ))
                }
            },
            (_, None) => {
                return Err((ParseErrorKind::FlagMissingValue(flag.name), flag.offset));
            }
            (_, Some(v)) => v,
        };
        flags.values.push((
            name,
            FlagValue {
                value,
                offset: flag.offset,
            },
        ));
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_leading_flags_with_quotes() {
        let line = r#"--from=build --chown="a b" --link src dst"#;
        let (flags, args) = extract(line);
        assert_eq!(&line[args..], "src dst");
        assert_eq!(flags.len(), 3);
        assert_eq!(flags[1].value.as_deref(), Some("a b"));
        assert_eq!(flags[2].value, None);
        assert_eq!(flags[2].offset, 27);
    }

    #[test]
    fn double_dash_ends_flags() {
        let (flags, args) = extract("--link -- --weird dst");
        assert_eq!(flags.len(), 1);
        assert_eq!(args, 10);
    }

    #[test]
    fn validation_errors() {
        let spec = [("link", Kind::Bool), ("from", Kind::Single)];
        let (raw, _) = extract("--form=x a");
        assert!(matches!(
            validate("COPY", raw, &spec),
            Err((
                ParseErrorKind::UnknownFlag {
                    suggestion: Some("from"),
                    ..
                },
                0
            ))
        ));
        let (raw, _) = extract("--from a");
        assert!(matches!(
            validate("COPY", raw, &spec),
            Err((ParseErrorKind::FlagMissingValue(_), 0))
        ));
        let (raw, _) = extract("--link=maybe a");
        assert!(matches!(
            validate("COPY", raw, &spec),
            Err((ParseErrorKind::FlagNotBool { .. }, 0))
        ));
        let (raw, _) = extract("--from=a --from=b a");
        assert!(matches!(
            validate("COPY", raw, &spec),
            Err((ParseErrorKind::DuplicateFlag(_), 9))
        ));
        let (raw, _) = extract("--link=FALSE a");
        assert!(!validate("COPY", raw, &spec).unwrap().bool("link"));
    }
}
