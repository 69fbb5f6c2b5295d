//! Planning errors: what went wrong ([`PlanErrorKind`]) and where in the Dockerfile
//! ([`PlanError`] renders as `Dockerfile:LINE:COL: message` with a caret snippet).

use std::fmt;

use crate::dockerfile::{ExpandError, SourceRef};

/// What went wrong while planning a build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanErrorKind {
    /// A Dockerfile without any FROM.
    #[error("the Dockerfile has no build stage: add a FROM instruction")]
    NoStages,
    /// `--target` naming no stage.
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
    /// `--from` naming a stage that is not defined before this one.
    #[error("undefined stage {name:?}: {reason}")]
    UndefinedStage {
        /// The reference as written after expansion.
        name: String,
        /// Why it does not resolve.
        reason: String,
    },
    /// A stage referring to itself.
    #[error("circular dependency: stage {0:?} refers to itself")]
    CircularStage(String),
    /// A word whose expansion failed.
    #[error("cannot expand {what}: {source}")]
    Expand {
        /// What was being expanded ("COPY source", "ENV value", ...).
        what: &'static str,
        /// The expansion error.
        source: ExpandError,
    },
    /// An EXPOSE entry that is not `port[-port][/tcp|udp|sctp]`.
    #[error(
        "invalid port {0:?} in EXPOSE: expected port[-port][/tcp|udp|sctp] with ports 1-65535"
    )]
    InvalidPort(String),
    /// A STOPSIGNAL that names no signal.
    #[error("invalid STOPSIGNAL {0:?}: expected a signal name such as SIGTERM or a number 1-64")]
    InvalidSignal(String),
    /// `--chmod` that is neither octal nor symbolic.
    #[error("invalid --chmod {0:?}: expected an octal mode such as 0755 or symbolic such as u+x")]
    InvalidChmod(String),
    /// `ADD --checksum` that is not a digest, or with a source that is not a URL.
    #[error("invalid ADD --checksum {value:?}: {reason}")]
    InvalidChecksum {
        /// The checksum after expansion.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// An image reference that does not parse.
    #[error("{reason}")]
    InvalidReference {
        /// Why, as berth-image reports it (names the reference).
        reason: String,
    },
    /// FROM whose image expands to nothing.
    #[error("base image name {0:?} expands to an empty string")]
    EmptyBaseName(String),
    /// A context source that climbs out of the context.
    #[error("{instruction} source {path:?} is outside the build context")]
    SourceOutsideContext {
        /// COPY or ADD.
        instruction: &'static str,
        /// The source after expansion.
        path: String,
    },
}

/// A planning error with the Dockerfile position it concerns, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// Where, if the error concerns a line.
    pub at: Option<Box<SourceRef>>,
    /// What.
    pub kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => at.render(f, &self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for PlanError {}

#[cfg(test)]
mod tests {
    use super::super::fixture::{opts, plan};
    use super::*;

    #[test]
    fn errors_render_with_their_position_when_they_have_one() {
        let e = PlanError {
            at: None,
            kind: PlanErrorKind::TargetNotFound("x".into()),
        };
        assert_eq!(e.to_string(), "target stage \"x\" could not be found");
        let e = plan("FROM scratch\nSTOPSIGNAL SIGNOPE\n", opts(None, &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2:1: invalid STOPSIGNAL \"SIGNOPE\": expected a signal name such as \
             SIGTERM or a number 1-64\n  |\n2 | STOPSIGNAL SIGNOPE\n  | ^"
        );
        assert_eq!(e.kind, PlanErrorKind::InvalidSignal("SIGNOPE".into()));
    }
}
