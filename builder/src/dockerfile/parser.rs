//! Dockerfile text to typed instructions, following BuildKit's `parser` and
//! `instructions/parse.go`: per-instruction argument forms, flags, heredocs and checks.

use berth_image::duration::{self, DurationError};

use super::ast::{
    ArgDecl, Command, CopyArgs, Dockerfile, HealthcheckCmd, Heredoc, Instruction, KeyValue,
    NetworkMode, SecurityMode, Source, Spanned,
};
use super::error::{ParseError, ParseErrorKind, SourceRef, Span};
use super::flags::{self, Flags, Kind};
use super::lexer::{LexError, Lines, LogicalLine};
use super::mount;
use super::words::{self, JsonArgs};

/// Every instruction keyword, upper-case.
const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "VOLUME",
    "USER",
    "WORKDIR",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// Edit distance counting an adjacent swap as one edit (optimal string alignment),
/// case-insensitive, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Whether `typed` is close enough to `known` to suggest it: one edit for short words,
/// two for longer ones.
pub(crate) fn is_close(known: &str, typed: &str) -> bool {
    let limit = if typed.chars().count() <= 4 { 1 } else { 2 };
    edit_distance(known, typed) <= limit
}

/// Parses a Dockerfile. `path` is the name errors are reported under.
pub fn parse(path: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let source = Source {
        path: path.to_string(),
        lines: Lines::source_text_lines(text),
    };
    let fail = |(kind, span): LexError| ParseError {
        at: Box::new(source_ref(&source, span)),
        kind,
    };
    let mut lines = Lines::new(text).map_err(fail)?;
    let directives = lines.directives.clone();
    let mut instructions = Vec::new();
    let mut seen_from = false;
    while let Some(line) = lines.next_logical() {
        let mut ctx = LineParser {
            line: &line,
            lines: &mut lines,
            escape: directives.escape,
        };
        let inst = ctx.instruction(0, true).map_err(fail)?;
        match inst {
            Instruction::From { .. } => seen_from = true,
            Instruction::Arg { .. } => {}
            ref other if !seen_from => {
                return Err(fail((
                    ParseErrorKind::NoBuildStage(other.keyword()),
                    other.span(),
                )))
            }
            _ => {}
        }
        instructions.push(inst);
    }
    Ok(Dockerfile {
        directives,
        instructions,
        source,
    })
}

/// The error position `span` in `source`, with its line's text.
pub(crate) fn source_ref(source: &Source, span: Span) -> SourceRef {
    SourceRef {
        path: source.path.clone(),
        span,
        text: source
            .lines
            .get(span.line.saturating_sub(1))
            .cloned()
            .unwrap_or_default(),
    }
}

struct LineParser<'l, 'a> {
    line: &'l LogicalLine,
    lines: &'l mut Lines<'a>,
    escape: char,
}

/// An instruction's pieces after the keyword and flags are split off.
struct Parts<'t> {
    keyword: &'static str,
    span: Span,
    flags: Vec<flags::RawFlag>,
    /// The arguments, trimmed.
    args: &'t str,
    /// Byte offset of `args` in the logical line.
    args_off: usize,
}

/// A HEALTHCHECK duration flag in nanoseconds, as BuildKit reads it: a Go duration (empty is
/// the default, 0), never negative and, unless zero, at least 1ms.
fn duration_ns(flag: &'static str, value: &str) -> Result<u64, ParseErrorKind> {
    let bad = |reason| ParseErrorKind::BadDuration {
        flag,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Ok(0);
    }
    let ns = duration::parse(value).map_err(|e| {
        bad(match e {
            DurationError::Invalid(_) => "not a duration such as 30s or 1m30s",
            DurationError::MissingUnit(_) => "missing unit (use ns, us, ms, s, m or h)",
            DurationError::UnknownUnit { .. } => "unknown unit (use ns, us, ms, s, m or h)",
            DurationError::OutOfRange(_) => "too large",
        })
    })?;
    let ns = u64::try_from(ns).map_err(|_| bad("cannot be negative"))?;
    if ns > 0 && ns < 1_000_000 {
        return Err(bad("cannot be less than 1ms"));
    }
    Ok(ns)
}

impl<'l> LineParser<'l, '_> {
    fn at(&self, offset: usize) -> Span {
        self.line.span_at(offset)
    }

    fn err<T>(&self, kind: ParseErrorKind, offset: usize) -> Result<T, LexError> {
        Err((kind, self.at(offset)))
    }

    /// Splits keyword, flags and arguments of the instruction starting at byte `start`.
    fn parts(&self, start: usize) -> Result<Parts<'l>, LexError> {
        let text: &'l str = &self.line.text;
        let body = &text[start..];
        let lead = body.len() - body.trim_start().len();
        let cmd_off = start + lead;
        let cmd_len = text[cmd_off..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - cmd_off);
        let word = &text[cmd_off..cmd_off + cmd_len];
        let upper = word.to_ascii_uppercase();
        let Some(keyword) = KEYWORDS.iter().copied().find(|k| *k == upper) else {
            let suggestion = KEYWORDS
                .iter()
                .copied()
                .find(|k| upper.len() > 2 && is_close(k, &upper));
            return self.err(
                ParseErrorKind::UnknownInstruction {
                    name: upper,
                    suggestion,
                },
                cmd_off,
            );
        };
        let after = cmd_off + cmd_len;
        let rest = text[after..].trim_end();
        let rest_lead = rest.len() - rest.trim_start().len();
        let rest_off = after + rest_lead;
        let rest = rest.trim_start();
        let (mut raw_flags, args_rel) = flags::extract(rest);
        for f in &mut raw_flags {
            f.offset += rest_off;
        }
        Ok(Parts {
            keyword,
            span: self.at(cmd_off),
            flags: raw_flags,
            args: &rest[args_rel..],
            args_off: rest_off + args_rel,
        })
    }

    fn flags(&self, p: &mut Parts<'_>, spec: &[(&'static str, Kind)]) -> Result<Flags, LexError> {
        flags::validate(p.keyword, std::mem::take(&mut p.flags), spec)
            .map_err(|(kind, off)| (kind, self.at(off)))
    }

    /// Parses the instruction starting at byte `start` of the logical line.
    /// `heredocs` is false inside ONBUILD, whose triggers do not read heredoc bodies.
    fn instruction(&mut self, start: usize, heredocs: bool) -> Result<Instruction, LexError> {
        let mut p = self.parts(start)?;
        let span = p.span;
        let args = p.args;
        let args_off = p.args_off;
        let kw = p.keyword;
        Ok(match kw {
            "FROM" => {
                let f = self.flags(&mut p, &[("platform", Kind::Single)])?;
                let words = words::fields(args, args_off);
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_kw, (name, name_off)] if as_kw.0.eq_ignore_ascii_case("as") => {
                        let lower = name.to_ascii_lowercase();
                        let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                            && lower.chars().all(|c| {
                                c.is_ascii_lowercase()
                                    || c.is_ascii_digit()
                                    || matches!(c, '-' | '_' | '.')
                            });
                        if !valid {
                            return self
                                .err(ParseErrorKind::InvalidStageName(name.clone()), *name_off);
                        }
                        Some(lower)
                    }
                    [] => return Err((ParseErrorKind::FromArguments, span)),
                    [_, (_, off), ..] => return self.err(ParseErrorKind::FromArguments, *off),
                };
                let (image, image_off) = words[0].clone();
                Instruction::From {
                    span,
                    image: Spanned {
                        value: image,
                        span: self.at(image_off),
                    },
                    name,
                    platform: f.single("platform").map(|v| v.value),
                }
            }
            "RUN" => {
                let f = self.flags(
                    &mut p,
                    &[
                        ("mount", Kind::Many),
                        ("network", Kind::Single),
                        ("security", Kind::Single),
                    ],
                )?;
                let mut mounts = Vec::new();
                for m in f.many("mount") {
                    let at = self.at(m.offset);
                    mounts.push(
                        mount::parse(&m.value, at)
                            .map_err(|e| (ParseErrorKind::BadMount(e.to_string()), at))?,
                    );
                }
                let network = match f.single("network") {
                    None => None,
                    Some(v) => Some(match v.value.as_str() {
                        "default" => NetworkMode::Default,
                        "none" => NetworkMode::None,
                        "host" => NetworkMode::Host,
                        _ => return self.err(ParseErrorKind::BadNetwork(v.value), v.offset),
                    }),
                };
                let security = match f.single("security") {
                    None => None,
                    Some(v) => Some(match v.value.as_str() {
                        "sandbox" => SecurityMode::Sandbox,
                        "insecure" => SecurityMode::Insecure,
                        _ => return self.err(ParseErrorKind::BadSecurity(v.value), v.offset),
                    }),
                };
                let (command, json) = self.command(args, args_off)?;
                let empty = match &command {
                    Command::Shell(s) => s.is_empty(),
                    Command::Exec(v) => v.is_empty(),
                };
                if empty {
                    return Err((ParseErrorKind::AtLeastOneArgument("RUN"), span));
                }
                let heredocs = if heredocs && !json {
                    self.heredocs(args, args_off)?
                } else {
                    Vec::new()
                };
                Instruction::Run {
                    span,
                    command,
                    heredocs,
                    mounts,
                    network,
                    security,
                }
            }
            "CMD" | "ENTRYPOINT" => {
                self.flags(&mut p, &[])?;
                let (command, _) = self.command(args, args_off)?;
                let command = match command {
                    Command::Shell(s) if s.is_empty() => Command::Exec(Vec::new()),
                    c => c,
                };
                if kw == "CMD" {
                    Instruction::Cmd { span, command }
                } else {
                    Instruction::Entrypoint { span, command }
                }
            }
            "COPY" => {
                let f = self.flags(
                    &mut p,
                    &[
                        ("from", Kind::Single),
                        ("chown", Kind::Single),
                        ("chmod", Kind::Single),
                        ("link", Kind::Bool),
                        ("parents", Kind::Bool),
                        ("exclude", Kind::Many),
                    ],
                )?;
                let copy = self.copy_args(kw, span, args, args_off, &f, heredocs)?;
                Instruction::Copy {
                    span,
                    from: f.single("from").map(|v| Spanned {
                        value: v.value,
                        span: self.at(v.offset),
                    }),
                    args: copy,
                }
            }
            "ADD" => {
                let f = self.flags(
                    &mut p,
                    &[
                        ("chown", Kind::Single),
                        ("chmod", Kind::Single),
                        ("link", Kind::Bool),
                        ("checksum", Kind::Single),
                        ("keep-git-dir", Kind::Bool),
                        ("exclude", Kind::Many),
                    ],
                )?;
                let copy = self.copy_args(kw, span, args, args_off, &f, heredocs)?;
                Instruction::Add {
                    span,
                    checksum: f.single("checksum").map(|v| v.value),
                    keep_git_dir: f.bool("keep-git-dir"),
                    args: copy,
                }
            }
            "ENV" | "LABEL" => {
                self.flags(&mut p, &[])?;
                let pairs = self.name_values(kw, span, args, args_off)?;
                if kw == "ENV" {
                    Instruction::Env { span, vars: pairs }
                } else {
                    Instruction::Label {
                        span,
                        labels: pairs,
                    }
                }
            }
            "ARG" => {
                self.flags(&mut p, &[])?;
                let words = words::quoted_words(args, self.escape, args_off);
                if words.is_empty() {
                    return Err((ParseErrorKind::AtLeastOneArgument("ARG"), span));
                }
                let mut decls = Vec::new();
                for (word, off) in words {
                    decls.push(match word.split_once('=') {
                        Some(("", _)) => return self.err(ParseErrorKind::BlankName("ARG"), off),
                        Some((name, default)) => ArgDecl {
                            name: name.to_string(),
                            default: Some(default.to_string()),
                        },
                        None => ArgDecl {
                            name: word,
                            default: None,
                        },
                    });
                }
                Instruction::Arg { span, args: decls }
            }
            "EXPOSE" => {
                self.flags(&mut p, &[])?;
                let ports: Vec<String> = words::fields(args, 0).into_iter().map(|w| w.0).collect();
                if ports.is_empty() {
                    return Err((ParseErrorKind::AtLeastOneArgument("EXPOSE"), span));
                }
                Instruction::Expose { span, ports }
            }
            "VOLUME" => {
                self.flags(&mut p, &[])?;
                let paths: Vec<String> = match words::json_array(args) {
                    JsonArgs::Strings(v) => v,
                    JsonArgs::NotStrings => {
                        return self.err(ParseErrorKind::NotStringArray, args_off)
                    }
                    JsonArgs::NotJson => words::fields(args, 0).into_iter().map(|w| w.0).collect(),
                };
                if paths.is_empty() {
                    return Err((ParseErrorKind::AtLeastOneArgument("VOLUME"), span));
                }
                if paths.iter().any(|p| p.trim().is_empty()) {
                    return self.err(ParseErrorKind::EmptyVolume, args_off);
                }
                Instruction::Volume { span, paths }
            }
            "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
                self.flags(&mut p, &[])?;
                if args.is_empty() {
                    return Err((ParseErrorKind::ExactlyOneArgument(kw), span));
                }
                let value = args.to_string();
                match kw {
                    "USER" => Instruction::User { span, user: value },
                    "WORKDIR" => Instruction::Workdir { span, path: value },
                    "STOPSIGNAL" => Instruction::Stopsignal {
                        span,
                        signal: value,
                    },
                    _ => Instruction::Maintainer { span, name: value },
                }
            }
            "SHELL" => {
                self.flags(&mut p, &[])?;
                match words::json_array(args) {
                    JsonArgs::Strings(v) if v.is_empty() => {
                        return Err((ParseErrorKind::AtLeastOneArgument("SHELL"), span))
                    }
                    JsonArgs::Strings(shell) => Instruction::Shell { span, shell },
                    JsonArgs::NotStrings => {
                        return self.err(ParseErrorKind::NotStringArray, args_off)
                    }
                    JsonArgs::NotJson if args.is_empty() => {
                        return Err((ParseErrorKind::AtLeastOneArgument("SHELL"), span))
                    }
                    JsonArgs::NotJson => return self.err(ParseErrorKind::ShellNotJson, args_off),
                }
            }
            "HEALTHCHECK" => self.healthcheck(&mut p)?,
            _ => self.onbuild(span, args, args_off)?,
        })
    }

    fn onbuild(
        &mut self,
        span: Span,
        args: &str,
        args_off: usize,
    ) -> Result<Instruction, LexError> {
        if args.is_empty() {
            return Err((ParseErrorKind::AtLeastOneArgument("ONBUILD"), span));
        }
        let first = args
            .split(char::is_whitespace)
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match first.as_str() {
            "ONBUILD" => return self.err(ParseErrorKind::OnbuildChain, args_off),
            "FROM" => return self.err(ParseErrorKind::OnbuildTrigger("FROM"), args_off),
            "MAINTAINER" => {
                return self.err(ParseErrorKind::OnbuildTrigger("MAINTAINER"), args_off)
            }
            _ => {}
        }
        let trigger = self.instruction(args_off, false)?;
        Ok(Instruction::Onbuild {
            span,
            expression: args.to_string(),
            trigger: Box::new(trigger),
        })
    }

    fn healthcheck(&mut self, p: &mut Parts<'_>) -> Result<Instruction, LexError> {
        let span = p.span;
        let f = self.flags(
            p,
            &[
                ("interval", Kind::Single),
                ("timeout", Kind::Single),
                ("start-period", Kind::Single),
                ("start-interval", Kind::Single),
                ("retries", Kind::Single),
            ],
        )?;
        let args = p.args;
        if args.is_empty() {
            return Err((ParseErrorKind::AtLeastOneArgument("HEALTHCHECK"), span));
        }
        let typ_len = args.find(char::is_whitespace).unwrap_or(args.len());
        let typ = args[..typ_len].to_ascii_uppercase();
        let rest = args[typ_len..].trim_start();
        let rest_off = p.args_off + (args.len() - rest.len());
        match typ.as_str() {
            "NONE" if rest.is_empty() => Ok(Instruction::Healthcheck { span, check: None }),
            "NONE" => self.err(ParseErrorKind::HealthcheckNoneArguments, rest_off),
            "CMD" => {
                let (command, _) = self.command(rest, rest_off)?;
                let empty = match &command {
                    Command::Shell(s) => s.is_empty(),
                    Command::Exec(v) => v.is_empty(),
                };
                if empty {
                    return self.err(ParseErrorKind::HealthcheckMissingCommand, p.args_off);
                }
                let duration = |name: &'static str| -> Result<u64, LexError> {
                    match f.single(name) {
                        None => Ok(0),
                        Some(v) => duration_ns(name, &v.value).map_err(|k| (k, self.at(v.offset))),
                    }
                };
                let retries = match f.single("retries") {
                    None => 0,
                    Some(v) => v.value.parse::<u32>().map_err(|_| {
                        (
                            ParseErrorKind::BadRetries(v.value.clone()),
                            self.at(v.offset),
                        )
                    })?,
                };
                Ok(Instruction::Healthcheck {
                    span,
                    check: Some(HealthcheckCmd {
                        command,
                        interval_ns: duration("interval")?,
                        timeout_ns: duration("timeout")?,
                        start_period_ns: duration("start-period")?,
                        start_interval_ns: duration("start-interval")?,
                        retries,
                    }),
                })
            }
            _ => self.err(ParseErrorKind::HealthcheckType(typ), p.args_off),
        }
    }

    /// Shell or exec form; returns whether it was JSON.
    fn command(&self, args: &str, args_off: usize) -> Result<(Command, bool), LexError> {
        match words::json_array(args) {
            JsonArgs::Strings(v) => Ok((Command::Exec(v), true)),
            JsonArgs::NotStrings => self.err(ParseErrorKind::NotStringArray, args_off),
            JsonArgs::NotJson => Ok((Command::Shell(args.to_string()), false)),
        }
    }

    /// Reads the bodies of the heredocs marked in `args`, in order.
    fn heredocs(&mut self, args: &str, args_off: usize) -> Result<Vec<Heredoc>, LexError> {
        let mut out = Vec::new();
        for (word, off) in words::quoted_words(args, '\\', args_off) {
            let Some(m) = words::heredoc_marker(&word) else {
                continue;
            };
            let at = self.at(off);
            let content = self.lines.heredoc_body(&m.name, m.chomp, at)?;
            out.push(Heredoc {
                name: m.name,
                content,
                expand: m.expand,
                chomp: m.chomp,
                fd: m.fd,
            });
        }
        Ok(out)
    }

    fn copy_args(
        &mut self,
        kw: &'static str,
        span: Span,
        args: &str,
        args_off: usize,
        f: &Flags,
        allow_heredocs: bool,
    ) -> Result<CopyArgs, LexError> {
        let (words, json) = match words::json_array(args) {
            JsonArgs::Strings(v) => (v.into_iter().map(|w| (w, args_off)).collect(), true),
            JsonArgs::NotStrings => return self.err(ParseErrorKind::NotStringArray, args_off),
            JsonArgs::NotJson => (words::fields(args, args_off), false),
        };
        if words.len() < 2 {
            return Err((ParseErrorKind::NoDestination(kw), span));
        }
        let bodies = if allow_heredocs && !json {
            self.heredocs(args, args_off)?
        } else {
            Vec::new()
        };
        let (dest, dest_off) = words[words.len() - 1].clone();
        if !json && words::heredoc_marker(&dest).is_some() {
            return self.err(ParseErrorKind::HeredocDestination(kw), dest_off);
        }
        let mut sources = Vec::new();
        let mut heredocs = Vec::new();
        for (word, off) in &words[..words.len() - 1] {
            let marker = if json || !allow_heredocs {
                None
            } else {
                words::heredoc_marker(word)
            };
            match marker.and_then(|m| bodies.iter().find(|b| b.name == m.name)) {
                Some(body) => heredocs.push(body.clone()),
                None => sources.push(Spanned {
                    value: word.clone(),
                    span: self.at(*off),
                }),
            }
        }
        Ok(CopyArgs {
            sources,
            heredocs,
            dest,
            chown: f.single("chown").map(|v| v.value),
            chmod: f.single("chmod").map(|v| v.value),
            link: f.bool("link"),
            parents: f.bool("parents"),
            exclude: f.many("exclude").into_iter().map(|v| v.value).collect(),
            json,
        })
    }

    /// ENV and LABEL: `k=v ...` or the old `k v` form (BuildKit `parseNameVal`).
    fn name_values(
        &self,
        kw: &'static str,
        span: Span,
        args: &str,
        args_off: usize,
    ) -> Result<Vec<KeyValue>, LexError> {
        let words = words::quoted_words(args, self.escape, args_off);
        let Some((first, first_off)) = words.first() else {
            return Err((ParseErrorKind::AtLeastOneArgument(kw), span));
        };
        if !first.contains('=') {
            let key_len = args.find(char::is_whitespace).unwrap_or(args.len());
            let value = args[key_len..].trim_start();
            if value.is_empty() {
                return self.err(ParseErrorKind::MissingValue(kw), *first_off);
            }
            return Ok(vec![KeyValue {
                key: args[..key_len].to_string(),
                value: value.to_string(),
            }]);
        }
        let mut pairs = Vec::new();
        for (word, off) in words {
            match word.split_once('=') {
                None => return self.err(ParseErrorKind::MissingEquals { word }, off),
                Some(("", _)) => return self.err(ParseErrorKind::BlankName(kw), off),
                Some((k, v)) => pairs.push(KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                }),
            }
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Instruction {
        let df = parse("Dockerfile", &format!("FROM a\n{text}\n")).unwrap();
        df.instructions[1].clone()
    }

    fn error(text: &str) -> String {
        parse("Dockerfile", text).unwrap_err().to_string()
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(duration_ns("interval", "1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("interval", "1.5s").unwrap(), 1_500_000_000);
        assert_eq!(duration_ns("interval", "0").unwrap(), 0);
        assert!(duration_ns("interval", "10").is_err());
        assert!(duration_ns("interval", "-1s").is_err());
        assert!(duration_ns("interval", "10us").is_err());
        assert_eq!(duration_ns("interval", "").unwrap(), 0);
        assert_eq!(duration_ns("interval", "-0s").unwrap(), 0);
        assert_eq!(duration_ns("interval", "+1ms").unwrap(), 1_000_000);
        assert_eq!(duration_ns("interval", "1500μs").unwrap(), 1_500_000);
        let reason = |v: &str| match duration_ns("interval", v) {
            Err(ParseErrorKind::BadDuration { reason, .. }) => reason,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(reason("10"), "missing unit (use ns, us, ms, s, m or h)");
        assert_eq!(reason("1d"), "unknown unit (use ns, us, ms, s, m or h)");
        assert_eq!(reason("x"), "not a duration such as 30s or 1m30s");
        assert_eq!(reason("-1s"), "cannot be negative");
        assert_eq!(reason("999us"), "cannot be less than 1ms");
        assert_eq!(reason("3000000h"), "too large");
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert!(matches!(one("rUn echo"), Instruction::Run { .. }));
    }

    #[test]
    fn env_old_and_new_forms() {
        let Instruction::Env { vars, .. } = one("ENV a b  c") else {
            panic!()
        };
        assert_eq!(vars[0].value, "b  c");
        let Instruction::Env { vars, .. } = one(r#"ENV a="x y" b=z"#) else {
            panic!()
        };
        assert_eq!(vars[0].value, r#""x y""#);
        assert_eq!(vars[1].key, "b");
    }

    #[test]
    fn heredoc_bodies_are_read() {
        let df = parse(
            "Dockerfile",
            "FROM a\nRUN <<EOF bash\necho $x\nEOF\nCOPY <<-A <<B /d/\n\t\tone\n\tA\ntwo\nB\nRUN x\n",
        )
        .unwrap();
        let Instruction::Run { heredocs, .. } = &df.instructions[1] else {
            panic!()
        };
        assert_eq!(heredocs[0].content, "echo $x\n");
        let Instruction::Copy { args, .. } = &df.instructions[2] else {
            panic!()
        };
        assert_eq!(args.heredocs.len(), 2);
        assert_eq!(args.heredocs[0].content, "one\n");
        assert_eq!(args.heredocs[1].content, "two\n");
        assert!(args.sources.is_empty());
        assert_eq!(df.instructions.len(), 4);
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(
            error("FROM a\n  CPOY x y\n"),
            "Dockerfile:2:3: unknown instruction: CPOY (did you mean COPY?)\n  |\n2 |   CPOY x y\n  |   ^"
        );
        assert!(error("FROM a\nCOPY --form=b x y\n")
            .starts_with("Dockerfile:2:6: unknown flag: --form"));
        assert!(error("ENV a=b\n").contains("no build stage"));
        assert!(error("FROM a\nRUN <<EOF\nx\n").contains("unterminated heredoc"));
    }

    #[test]
    fn onbuild_checks_trigger() {
        let Instruction::Onbuild { trigger, .. } = one("ONBUILD run echo") else {
            panic!()
        };
        assert!(matches!(*trigger, Instruction::Run { .. }));
        assert!(error("FROM a\nONBUILD ONBUILD RUN x\n").contains("chaining"));
        assert!(error("FROM a\nONBUILD FROM b\n").contains("isn't allowed"));
    }
}
