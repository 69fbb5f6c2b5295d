//! The monitor's diagnostics: one line per event on stderr (the container's `monitor.log`),
//! `TIME LEVEL target: message key=value...`. A few dozen lines instead of
//! tracing-subscriber's formatter and filters, whose code would be resident in every
//! container's monitor for the handful of lines it writes.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Writes events at `max` and more severe to stderr; spans are not tracked.
pub struct StderrLog {
    max: Level,
}

impl StderrLog {
    /// A logger for events at `max` and more severe.
    pub fn new(max: Level) -> Self {
        StderrLog { max }
    }
}

/// One event as a line (without the time stamp).
fn format_event(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut line = format!("{} {}:", meta.level(), meta.target());
    event.record(&mut Line(&mut line));
    line
}

/// Appends an event's fields: the message bare, the others as `key=value`.
struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, " {value}");
            }
            name => {
                let _ = write!(self.0, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.0, " {value:?}");
            }
            name => {
                let _ = write!(self.0, " {name}={value:?}");
            }
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = format_event(event);
        let now = berth_engine::container::state::now_rfc3339();
        let _ = writeln!(std::io::stderr().lock(), "{now} {line}");
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Keeps formatted events instead of printing them.
    struct Keep(Arc<Mutex<Vec<String>>>, StderrLog);

    impl Subscriber for Keep {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            self.1.enabled(m)
        }
        fn new_span(&self, s: &Attributes<'_>) -> Id {
            self.1.new_span(s)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            self.0.lock().unwrap().push(format_event(e));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn events_become_lines_and_quieter_ones_are_dropped() {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sub = Keep(kept.clone(), StderrLog::new(Level::WARN));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(error = %"no such file", code = 3, "cannot release");
            tracing::info!("started");
        });
        let kept = kept.lock().unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0].starts_with("WARN berth_monitor"),
            "target and level first: {}",
            kept[0]
        );
        assert!(
            kept[0].ends_with(": cannot release error=no such file code=3"),
            "{}",
            kept[0]
        );
    }
}
