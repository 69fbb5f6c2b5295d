//! `--log` and `--log-format`: tracing goes to the log file (or stderr), and the
//! final error is also written there as runc does, since containerd and conmon
//! read a failed command's reason from that file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;

/// Log line format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// `time="..." level=error msg="..."`.
    Text,
    /// `{"level":"error","msg":"...","time":"..."}`.
    Json,
}

/// Where the final error goes besides stderr.
pub struct Logger {
    path: Option<PathBuf>,
    format: Format,
}

impl Logger {
    /// Sets up tracing into the log file (warnings, or debug with `--debug`) or
    /// stderr (errors only, or debug): the container inherits stderr, and its
    /// output should not carry the runtime's warnings.
    pub fn init(path: Option<PathBuf>, format: Format, debug: bool) -> Logger {
        // A plain level filter, not an EnvFilter: parsing directives would pull
        // regex into the binary and run at every start, twice per create/run
        // (the sealed re-exec).
        let filter = match (debug, path.is_some()) {
            (true, _) => LevelFilter::DEBUG,
            (false, true) => LevelFilter::WARN,
            (false, false) => LevelFilter::ERROR,
        };
        let file = path.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        match (file, format) {
            (Some(f), Format::Json) => tracing_subscriber::fmt()
                .json()
                .with_max_level(filter)
                .with_writer(Mutex::new(f))
                .init(),
            (Some(f), Format::Text) => tracing_subscriber::fmt()
                .with_max_level(filter)
                .with_ansi(false)
                .with_writer(Mutex::new(f))
                .init(),
            (None, _) => tracing_subscriber::fmt()
                .with_max_level(filter)
                .with_writer(std::io::stderr)
                .init(),
        }
        Logger { path, format }
    }

    /// Appends the error to the log file in the chosen format.
    pub fn error(&self, msg: &str) {
        let Some(path) = &self.path else { return };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let line = match self.format {
            Format::Json => {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            }
            Format::Text => format!("time={time:?} level=error msg={msg:?}"),
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
