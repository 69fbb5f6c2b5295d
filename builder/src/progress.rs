//! Build progress as events, one per step start, cache hit, output line and finish, so a
//! front end can print BuildKit-style plain progress (`#3 [2/5] RUN ...`, `#3 CACHED`,
//! `#3 DONE 0.4s`) or anything else.

use std::time::Duration;

/// One thing that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step began: its number in the build and its label (`[stage 2/5] RUN make`).
    Start {
        /// Step number, from 1, unique in the build.
        id: usize,
        /// What the step is.
        label: String,
    },
    /// The step's result came from the cache.
    Cached {
        /// Step number.
        id: usize,
    },
    /// A line the step's process printed.
    Output {
        /// Step number.
        id: usize,
        /// Time since the step started.
        at: Duration,
        /// The line, without its newline.
        line: String,
    },
    /// The step finished.
    Done {
        /// Step number.
        id: usize,
        /// How long it took.
        took: Duration,
    },
    /// A build-wide note (`exporting to image`, `naming to ...`).
    Note {
        /// The text.
        text: String,
    },
}
