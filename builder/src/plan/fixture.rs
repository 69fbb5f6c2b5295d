//! Test helpers: a plan of a Dockerfile's text with given options.

use super::{Plan, PlanError, PlanOptions};
use crate::dockerfile::parse;

/// The plan of `text`.
pub(super) fn plan(text: &str, opts: PlanOptions) -> Result<Plan, PlanError> {
    Plan::new(&parse("Dockerfile", text).unwrap(), &opts)
}

/// Options for `linux/amd64` with a target and build args.
pub(super) fn opts(target: Option<&str>, args: &[(&str, &str)]) -> PlanOptions {
    PlanOptions {
        target: target.map(str::to_string),
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        platform: "linux/amd64".into(),
    }
}

/// A multi-stage Dockerfile: stages used by COPY --from and RUN --mount=from, one unused,
/// and an image reference as a source.
pub(super) const MULTI: &str = "\
FROM alpine AS deps
RUN echo deps
FROM alpine AS unused
RUN echo unused
FROM deps AS build
COPY --from=deps /a /b
FROM scratch AS tool
FROM alpine
RUN --mount=from=tool,target=/t true
COPY --from=build /out /out
COPY --from=busybox:latest /bin/busybox /bin/
";
