//! Parse errors with the Dockerfile path, line and column, rendered as a rustc-style snippet.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A 1-based line and column (in characters) in a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// A position in a named Dockerfile together with the text of its line, for error snippets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// The Dockerfile's name as the user gave it (`Dockerfile`, `ci/Dockerfile.dev`, `-`).
    pub path: String,
    /// Where in the file.
    pub span: Span,
    /// The full text of the source line `span.line`.
    pub text: String,
}

impl SourceRef {
    /// Writes `path:line:col: message`, then the line and a caret under the column.
    pub fn render(&self, f: &mut fmt::Formatter<'_>, message: &dyn fmt::Display) -> fmt::Result {
        let Span { line, column } = self.span;
        writeln!(f, "{}:{line}:{column}: {message}", self.path)?;
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        // Keep tabs before the caret so it lines up with the text above it.
        let lead: String = self
            .text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{pad} |")?;
        writeln!(f, "{line} | {}", self.text)?;
        write!(f, "{pad} | {lead}^")
    }
}

/// What went wrong while parsing a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// An instruction keyword that Dockerfiles do not have.
    #[error("unknown instruction: {name}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        /// The keyword as written, upper-cased.
        name: String,
        /// A known instruction close to it.
        suggestion: Option<&'static str>,
    },
    /// An instruction other than ARG before the first FROM.
    #[error("no build stage in current context: {0} must come after a FROM (only ARG may precede the first FROM)")]
    NoBuildStage(&'static str),
    /// An instruction without the arguments it needs.
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    /// An instruction that takes exactly one argument got none.
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    /// COPY or ADD with a single argument.
    #[error("{0} requires at least two arguments, but only one was provided: the destination could not be determined")]
    NoDestination(&'static str),
    /// FROM with a wrong number of words.
    #[error("FROM requires either one or three arguments: FROM <image> [AS <name>]")]
    FromArguments,
    /// A stage name that does not match `[a-z][a-z0-9-_.]*`.
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    /// A JSON array with a non-string element.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// SHELL in shell form.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// `ENV =x`, `ARG =x`, `LABEL =x`.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// A word without `=` in the `name=value` form of ENV or LABEL.
    #[error("syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals {
        /// The offending word.
        word: String,
    },
    /// `ENV name` without a value.
    #[error("{0} must have two arguments")]
    MissingValue(&'static str),
    /// A `--flag` the instruction does not accept.
    #[error("unknown flag: --{flag} for {instruction}{}", suggestion.as_ref().map(|s| format!(" (did you mean --{s}?)")).unwrap_or_default())]
    UnknownFlag {
        /// The flag name without dashes.
        flag: String,
        /// The instruction it was given to.
        instruction: &'static str,
        /// A flag of this instruction close to it.
        suggestion: Option<&'static str>,
    },
    /// `--flag` without `=value` for a flag that needs one.
    #[error("missing a value on flag: --{0}")]
    FlagMissingValue(String),
    /// `--link=maybe`.
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    FlagNotBool {
        /// The flag name.
        flag: String,
        /// The value given.
        value: String,
    },
    /// A single-valued flag given twice.
    #[error("duplicate flag specified: --{0}")]
    DuplicateFlag(String),
    /// `HEALTHCHECK NONE something`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// `HEALTHCHECK FOO`.
    #[error("unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// `HEALTHCHECK CMD` with nothing after it.
    #[error("missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// A HEALTHCHECK duration that does not parse or is out of range.
    #[error("invalid duration {value:?} for --{flag}: {reason}")]
    BadDuration {
        /// The flag name.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `--retries` that is not a non-negative integer.
    #[error("invalid --retries value {0:?}: expected a non-negative integer")]
    BadRetries(String),
    /// `ONBUILD ONBUILD ...`.
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(&'static str),
    /// A heredoc whose terminator never appears.
    #[error("unterminated heredoc {0:?}: no line consisting of the terminator before the end of the file")]
    UnterminatedHeredoc(String),
    /// `COPY src <<EOF`.
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    /// An `escape` directive other than backslash or backtick.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    /// The same parser directive twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `VOLUME [""]`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// A `RUN --mount` value that does not parse.
    #[error("invalid --mount value: {0}")]
    BadMount(String),
    /// A `RUN --network` value other than none, host or default.
    #[error("unsupported network mode {0:?}: expected none, host or default")]
    BadNetwork(String),
    /// A `RUN --security` value other than sandbox or insecure.
    #[error("unsupported security mode {0:?}: expected sandbox or insecure")]
    BadSecurity(String),
}

/// A Dockerfile that could not be parsed: where, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the error is.
    pub at: Box<SourceRef>,
    /// What the error is.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.at.render(f, &self.kind)
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shown<'a>(&'a SourceRef, &'a str);
    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.render(f, &self.1)
        }
    }

    #[test]
    fn snippet_puts_caret_under_column_keeping_tabs() {
        let at = SourceRef {
            path: "Dockerfile".into(),
            span: Span {
                line: 12,
                column: 3,
            },
            text: "\tX bad".into(),
        };
        assert_eq!(
            Shown(&at, "oops").to_string(),
            "Dockerfile:12:3: oops\n   |\n12 | \tX bad\n   | \t ^"
        );
    }
}
