//! The typed form of a parsed Dockerfile: one value per instruction, each with its position.
//!
//! Values are kept as written (before variable expansion): which words expand, and with
//! which variables, depends on the stage and the build arguments, so the plan does it.

use serde::{Deserialize, Serialize};

use super::error::Span;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerfile {
    /// The parser directives at the top of the file.
    pub directives: Directives,
    /// The instructions in file order.
    pub instructions: Vec<Instruction>,
    /// The name errors are reported under and the source lines, for later error snippets.
    #[serde(skip)]
    pub source: Source,
}

/// A Dockerfile's name and lines, kept so that later stages can point at them in errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The name the Dockerfile is reported under.
    pub path: String,
    /// The source lines, without line endings.
    pub lines: Vec<String>,
}

/// Parser directives (`# escape=`, `# syntax=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// The requested frontend image, recorded but not acted on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub syntax: Option<String>,
    /// The build-check configuration, recorded but not acted on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts.
    pub span: Span,
}

/// A command in shell form (run through SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `RUN echo hi`: one string handed to the shell.
    Shell(String),
    /// `RUN ["echo", "hi"]`: argv as given.
    Exec(Vec<String>),
}

/// An inline file: `<<EOF ... EOF`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The terminator word, unquoted.
    pub name: String,
    /// The body, each line ending in a newline; with `<<-`, leading tabs removed.
    pub content: String,
    /// Whether variables in the body are expanded (the terminator was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from body lines and terminator.
    pub chomp: bool,
    /// A file descriptor prefix such as `3<<EOF`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fd: Option<u32>,
}

/// One `NAME=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The name, as written.
    pub key: String,
    /// The value, as written (quotes still present: expansion removes them).
    pub value: String,
}

/// One `NAME[=default]` of ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: String,
    /// The default value, as written.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default: Option<String>,
}

/// `RUN --mount` types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A read-only (by default) bind of the context or of another stage.
    Bind,
    /// A persistent cache directory shared between builds.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A secret file.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheSharing {
    /// Many writers at once.
    Shared,
    /// A fresh copy for each concurrent writer.
    Private,
    /// One writer at a time.
    Locked,
}

/// One `RUN --mount=...` option, values as written (numbers are checked when they hold
/// no variable; the plan expands them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMount {
    /// The mount type (`type=`, default bind).
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Where it appears in the container (`target=`, `dst=`, `destination=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    /// A path in the source (`source=`, `src=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    /// A stage or image to take the source from (`from=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<Spanned<String>>,
    /// Read-only (`ro`, `readonly`) or read-write (`rw`, `readwrite`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub readonly: Option<bool>,
    /// Cache or secret id (`id=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// Cache sharing mode (`sharing=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sharing: Option<CacheSharing>,
    /// File mode (`mode=`, octal).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    /// Owner uid (`uid=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uid: Option<String>,
    /// Owner gid (`gid=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gid: Option<String>,
    /// Fail when the secret or ssh socket is missing (`required=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub required: Option<bool>,
    /// tmpfs size in bytes (`size=`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size: Option<String>,
}

/// `RUN --network` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The builder's default network.
    Default,
    /// No network: loopback only.
    None,
    /// The host's network namespace.
    Host,
}

/// `RUN --security` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecurityMode {
    /// The normal confined step.
    Sandbox,
    /// A privileged step.
    Insecure,
}

/// The arguments and flags COPY and ADD share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyArgs {
    /// Source paths or URLs as written, without heredoc sources.
    pub sources: Vec<Spanned<String>>,
    /// Inline sources given as heredocs, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub heredocs: Vec<Heredoc>,
    /// The destination as written.
    pub dest: String,
    /// `--chown=user[:group]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chown: Option<String>,
    /// `--chmod=mode`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub link: bool,
    /// `--parents`: keep the source's parent directories under the destination.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub parents: bool,
    /// `--exclude=pattern`, repeatable.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub exclude: Vec<String>,
    /// Whether the arguments were written as a JSON array.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub json: bool,
}

/// HEALTHCHECK settings; durations in nanoseconds, 0 meaning "inherit".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthcheckCmd {
    /// The probe command (shell form becomes `CMD-SHELL` in the image config).
    pub command: Command,
    /// `--interval`.
    pub interval_ns: u64,
    /// `--timeout`.
    pub timeout_ns: u64,
    /// `--start-period`.
    pub start_period_ns: u64,
    /// `--start-interval`.
    pub start_interval_ns: u64,
    /// `--retries`.
    pub retries: u32,
}

/// One Dockerfile instruction with its flags parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "instruction", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Instruction {
    /// `FROM [--platform=p] image [AS name]`.
    From {
        /// Where the instruction starts.
        span: Span,
        /// The base: an image reference, an earlier stage's name, or `scratch`.
        image: Spanned<String>,
        /// The stage name after `AS`, lower-cased.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        name: Option<String>,
        /// `--platform`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        platform: Option<String>,
    },
    /// `RUN [flags] command`.
    Run {
        /// Where the instruction starts.
        span: Span,
        /// The command.
        command: Command,
        /// Heredoc bodies referenced by the command.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        heredocs: Vec<Heredoc>,
        /// `--mount`, repeatable.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        mounts: Vec<RunMount>,
        /// `--network`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        network: Option<NetworkMode>,
        /// `--security`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        security: Option<SecurityMode>,
    },
    /// `CMD command`.
    Cmd {
        /// Where the instruction starts.
        span: Span,
        /// The default command (an empty exec form clears it).
        command: Command,
    },
    /// `ENTRYPOINT command`.
    Entrypoint {
        /// Where the instruction starts.
        span: Span,
        /// The entrypoint.
        command: Command,
    },
    /// `COPY [flags] src... dest`.
    Copy {
        /// Where the instruction starts.
        span: Span,
        /// `--from=stage|index|image`.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        from: Option<Spanned<String>>,
        /// Sources, destination and shared flags.
        #[serde(flatten)]
        args: CopyArgs,
    },
    /// `ADD [flags] src... dest`.
    Add {
        /// Where the instruction starts.
        span: Span,
        /// `--checksum=sha256:...` for URL sources.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        checksum: Option<String>,
        /// `--keep-git-dir` for git sources.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        keep_git_dir: bool,
        /// Sources, destination and shared flags.
        #[serde(flatten)]
        args: CopyArgs,
    },
    /// `ENV k=v ...` or `ENV k v`.
    Env {
        /// Where the instruction starts.
        span: Span,
        /// The pairs in order.
        vars: Vec<KeyValue>,
    },
    /// `ARG name[=default] ...`.
    Arg {
        /// Where the instruction starts.
        span: Span,
        /// The declarations in order.
        args: Vec<ArgDecl>,
    },
    /// `LABEL k=v ...`.
    Label {
        /// Where the instruction starts.
        span: Span,
        /// The pairs in order.
        labels: Vec<KeyValue>,
    },
    /// `EXPOSE port[/proto] ...`.
    Expose {
        /// Where the instruction starts.
        span: Span,
        /// Ports as written.
        ports: Vec<String>,
    },
    /// `VOLUME path ...`.
    Volume {
        /// Where the instruction starts.
        span: Span,
        /// Paths as written.
        paths: Vec<String>,
    },
    /// `USER user[:group]`.
    User {
        /// Where the instruction starts.
        span: Span,
        /// The user as written.
        user: String,
    },
    /// `WORKDIR path`.
    Workdir {
        /// Where the instruction starts.
        span: Span,
        /// The path as written.
        path: String,
    },
    /// `SHELL ["exe", "arg"]`.
    Shell {
        /// Where the instruction starts.
        span: Span,
        /// The shell argv.
        shell: Vec<String>,
    },
    /// `STOPSIGNAL signal`.
    Stopsignal {
        /// Where the instruction starts.
        span: Span,
        /// The signal as written.
        signal: String,
    },
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`.
    Healthcheck {
        /// Where the instruction starts.
        span: Span,
        /// None disables the base image's check.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        check: Option<HealthcheckCmd>,
    },
    /// `ONBUILD instruction`.
    Onbuild {
        /// Where the instruction starts.
        span: Span,
        /// The trigger text as stored in the image config.
        expression: String,
        /// The trigger, parsed and validated.
        trigger: Box<Instruction>,
    },
    /// `MAINTAINER name` (deprecated; becomes the image author).
    Maintainer {
        /// Where the instruction starts.
        span: Span,
        /// The name as written.
        name: String,
    },
}

impl Instruction {
    /// Where the instruction starts.
    pub fn span(&self) -> Span {
        match self {
            Self::From { span, .. }
            | Self::Run { span, .. }
            | Self::Cmd { span, .. }
            | Self::Entrypoint { span, .. }
            | Self::Copy { span, .. }
            | Self::Add { span, .. }
            | Self::Env { span, .. }
            | Self::Arg { span, .. }
            | Self::Label { span, .. }
            | Self::Expose { span, .. }
            | Self::Volume { span, .. }
            | Self::User { span, .. }
            | Self::Workdir { span, .. }
            | Self::Shell { span, .. }
            | Self::Stopsignal { span, .. }
            | Self::Healthcheck { span, .. }
            | Self::Onbuild { span, .. }
            | Self::Maintainer { span, .. } => *span,
        }
    }

    /// The instruction keyword, upper-case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::From { .. } => "FROM",
            Self::Run { .. } => "RUN",
            Self::Cmd { .. } => "CMD",
            Self::Entrypoint { .. } => "ENTRYPOINT",
            Self::Copy { .. } => "COPY",
            Self::Add { .. } => "ADD",
            Self::Env { .. } => "ENV",
            Self::Arg { .. } => "ARG",
            Self::Label { .. } => "LABEL",
            Self::Expose { .. } => "EXPOSE",
            Self::Volume { .. } => "VOLUME",
            Self::User { .. } => "USER",
            Self::Workdir { .. } => "WORKDIR",
            Self::Shell { .. } => "SHELL",
            Self::Stopsignal { .. } => "STOPSIGNAL",
            Self::Healthcheck { .. } => "HEALTHCHECK",
            Self::Onbuild { .. } => "ONBUILD",
            Self::Maintainer { .. } => "MAINTAINER",
        }
    }
}
