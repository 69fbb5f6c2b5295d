//! The Dockerfile language: lines and directives, typed instructions with positions, and
//! the shell-style word expansion BuildKit applies to some instructions.

mod ast;
mod error;
mod expand;
mod flags;
mod lexer;
mod mount;
mod parser;
#[cfg(test)]
mod proptests;
mod words;

pub use ast::{
    ArgDecl, CacheSharing, Command, CopyArgs, Directives, Dockerfile, HealthcheckCmd, Heredoc,
    Instruction, KeyValue, MountType, NetworkMode, RunMount, SecurityMode, Source, Spanned,
};
pub use error::{ParseError, ParseErrorKind, SourceRef, Span};
pub use expand::{ExpandError, Expander, Vars};
pub use parser::parse;
pub(crate) use parser::source_ref;
