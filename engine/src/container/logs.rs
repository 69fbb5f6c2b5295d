//! Container output in Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`. The monitor
//! writes it, rotating as Docker's driver does with `--log-opt max-size=10m --log-opt
//! max-file=3` (`<id>-json.log`, then `.1`, `.2`... oldest last); `logs` and a foreground `run`
//! read it across the rotated files (following as it grows and rotates).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Lines longer than this are split into several entries, as Docker does (16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Errors writing or reading a container log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A `--log-opt` that is not understood.
    #[error("invalid --log-opt {0:?}: {1}")]
    Option(String, &'static str),
    /// The log file could not be read or written.
    #[error("container log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Which output stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

/// One line of a json-file log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The text, with its newline when the line ended with one.
    pub log: String,
    /// The stream it came from.
    pub stream: Stream,
    /// When the monitor read it.
    pub time: String,
}

/// The json-file driver's rotation options (`--log-opt max-size=… max-file=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogOptions {
    /// Rotate once the file would grow past this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1; Docker's default is 1).
    pub max_file: u32,
}

impl LogOptions {
    /// Parses `--log-opt KEY=VALUE` values (`max-size`, `max-file`), as Docker's json-file
    /// driver: max-file needs max-size and must be at least 1.
    pub fn parse(opts: &[String]) -> Result<Self, LogError> {
        let mut out = LogOptions {
            max_size: None,
            max_file: 1,
        };
        for opt in opts {
            let bad = |why| LogError::Option(opt.clone(), why);
            let Some((key, value)) = opt.split_once('=') else {
                return Err(bad("expected KEY=VALUE"));
            };
            match key {
                "max-size" => {
                    out.max_size = Some(
                        parse_size(value)
                            .ok_or_else(|| bad("max-size is a size such as 10m, 512k or 1g"))?,
                    )
                }
                "max-file" => {
                    out.max_file = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("max-file is a number, at least 1"))?
                }
                _ => return Err(bad("the json-file driver takes max-size and max-file")),
            }
        }
        if out.max_file > 1 && out.max_size.is_none() {
            return Err(LogError::Option(
                format!("max-file={}", out.max_file),
                "max-file needs max-size",
            ));
        }
        Ok(out)
    }
}

/// `10m`, `512k`, `1g`, `100` (bytes), 1024-based as Docker's `RAMInBytes`.
fn parse_size(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let n: u64 = lower[..digits].parse().ok()?;
    let scale: u64 = match &lower[digits..] {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale).filter(|n| *n > 0)
}

/// The `n`th rotated file of the log at `path` (`<path>.n`).
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Appends a container's output to its log, one entry per line and stream.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    pending: [Vec<u8>; 2],
    options: LogOptions,
    size: u64,
}

impl LogWriter {
    /// Opens (creating) the log at `path` for appending, rotating per `options`.
    pub fn open(path: &Path, options: LogOptions) -> Result<Self, LogError> {
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            pending: [Vec::new(), Vec::new()],
            options,
            size,
        })
    }

    /// Moves `<path>` to `<path>.1` (and `.1` to `.2`…, dropping the oldest) and starts an
    /// empty file; with max-file 1 the file is only emptied.
    fn rotate(&mut self) -> Result<(), LogError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogError::Io { path, source }
        };
        let keep = self.options.max_file.saturating_sub(1);
        if keep == 0 {
            self.file.set_len(0).map_err(io(&self.path))?;
        } else {
            for n in (1..keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(io(&from))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(io(&self.path))?;
            self.file = open_append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Takes `bytes` read from `stream`, writing every complete line.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<(), LogError> {
        let slot = stream as usize;
        self.pending[slot].extend_from_slice(bytes);
        loop {
            let buf = &self.pending[slot];
            let cut = match buf.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_LINE => i + 1,
                _ if buf.len() >= MAX_LINE => MAX_LINE,
                _ => return Ok(()),
            };
            let line: Vec<u8> = self.pending[slot].drain(..cut).collect();
            self.append(stream, &line)?;
        }
    }

    /// Writes what is left of unfinished lines (the process ended without a newline).
    pub fn flush(&mut self) -> Result<(), LogError> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.append(stream, &rest)?;
            }
        }
        Ok(())
    }

    fn append(&mut self, stream: Stream, line: &[u8]) -> Result<(), LogError> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: super::state::now_rfc3339(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(|e| LogError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        bytes.push(b'\n');
        if self
            .options
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + bytes.len() as u64 > max)
        {
            self.rotate()?;
        }
        self.file.write_all(&bytes).map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads a log from the start (its rotated files first, oldest first), returning new
/// entries as the file grows; when the writer rotates it, the reader finishes the old file
/// and goes on with the new one.
#[derive(Debug)]
pub struct LogReader {
    file: Option<File>,
    path: PathBuf,
    partial: Vec<u8>,
}

impl LogReader {
    /// A reader of the log at `path` (which may not exist yet).
    pub fn new(path: &Path) -> Self {
        LogReader {
            file: None,
            path: path.to_path_buf(),
            partial: Vec::new(),
        }
    }

    /// A reader holding the log at `path` open from now on, creating it (empty, owner-only)
    /// if it does not exist yet: what it reads stays readable when the log is removed (a
    /// `--rm` container's, as soon as it exits), however late the first read comes.
    pub fn open_created(path: &Path) -> Result<Self, LogError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(LogReader {
            file: Some(file),
            path: path.to_path_buf(),
            partial: Vec::new(),
        })
    }

    /// The entries written since the last call (all of them, rotated files included, on the
    /// first call). Lines that are not valid entries are skipped.
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>, LogError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogError::Io { path, source }
        };
        let mut out = Vec::new();
        if self.file.is_none() {
            let mut older = Vec::new();
            let mut n = 1;
            while let Ok(f) = File::open(rotated(&self.path, n)) {
                older.push(f);
                n += 1;
            }
            for mut f in older.into_iter().rev() {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).map_err(io(&self.path))?;
                parse_lines(&mut bytes, &mut out);
            }
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(io(&self.path)(e)),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(out);
        };
        file.read_to_end(&mut self.partial)
            .map_err(io(&self.path))?;
        parse_lines(&mut self.partial, &mut out);
        // Rotated under us: the path names a new file. The files rotated since ours (those
        // before ours in `.1`, `.2`…, or all of them when ours is gone) are read, oldest
        // first, then the new current file from its start.
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata().map_err(io(&self.path))?;
        let same = |m: &std::fs::Metadata| (m.dev(), m.ino()) == (ours.dev(), ours.ino());
        let moved = std::fs::metadata(&self.path).is_ok_and(|m| !same(&m));
        if moved {
            // What was written to ours between our read and the rotation.
            file.read_to_end(&mut self.partial)
                .map_err(io(&self.path))?;
            parse_lines(&mut self.partial, &mut out);
            let mut newer = Vec::new();
            let mut n = 1;
            while let Ok(m) = std::fs::metadata(rotated(&self.path, n)) {
                if same(&m) {
                    break;
                }
                newer.push(rotated(&self.path, n));
                n += 1;
            }
            for path in newer.into_iter().rev() {
                if let Ok(bytes) = std::fs::read(&path) {
                    let mut bytes = bytes;
                    parse_lines(&mut bytes, &mut out);
                }
            }
            if let Ok(mut next) = File::open(&self.path) {
                self.partial.clear();
                next.read_to_end(&mut self.partial)
                    .map_err(io(&self.path))?;
                parse_lines(&mut self.partial, &mut out);
                self.file = Some(next);
            }
        }
        Ok(out)
    }

    /// Starts over from the beginning of the current file.
    pub fn rewind(&mut self) -> Result<(), LogError> {
        self.partial.clear();
        if let Some(f) = self.file.as_mut() {
            f.seek(SeekFrom::Start(0)).map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Moves every complete line of `buf` into `out` as an entry (invalid lines are skipped),
/// leaving the unfinished last line in `buf`.
fn parse_lines(buf: &mut Vec<u8>, out: &mut Vec<LogEntry>) {
    let mut start = 0;
    while let Some(end) = buf[start..].iter().position(|&b| b == b'\n') {
        if let Ok(entry) = serde_json::from_slice::<LogEntry>(&buf[start..start + end]) {
            out.push(entry);
        }
        start += end + 1;
    }
    buf.drain(..start);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reader_opened_before_the_writer_reads_what_is_written_after_the_log_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut reader = LogReader::open_created(&path).unwrap();
        let mut writer = LogWriter::open(&path, LogOptions::default()).unwrap();
        writer.write(Stream::Stdout, b"hello\n").unwrap();
        writer.flush().unwrap();
        std::fs::remove_file(&path).unwrap();
        let entries = reader.read_new().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].log, "hello\n");
    }

    use super::*;

    #[test]
    fn writes_one_entry_per_line_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, LogOptions::default()).unwrap();
        let mut r = LogReader::new(&path);
        w.write(Stream::Stdout, b"hel").unwrap();
        assert!(r.read_new().unwrap().is_empty());
        w.write(Stream::Stdout, b"lo\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        let got = r.read_new().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].log, "hello\n");
        assert_eq!(got[0].stream, Stream::Stdout);
        assert_eq!(got[1].log, "oops\n");
        assert_eq!(got[1].stream, Stream::Stderr);
        assert!(chrono::DateTime::parse_from_rfc3339(&got[0].time).is_ok());
        w.flush().unwrap();
        let got = r.read_new().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].log, "wor");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\""));
    }

    #[test]
    fn splits_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path, LogOptions::default()).unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let got = LogReader::new(&path).read_new().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].log.len(), MAX_LINE);
        assert_eq!(got[1].log.len(), 11);
    }

    #[test]
    fn rotates_and_reads_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let opts = LogOptions::parse(&["max-size=1k".into(), "max-file=3".into()]).unwrap();
        assert_eq!(opts.max_size, Some(1024));
        let mut w = LogWriter::open(&path, opts).unwrap();
        let mut follower = LogReader::new(&path);
        let mut followed = Vec::new();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i:03}\n").as_bytes())
                .unwrap();
            followed.extend(follower.read_new().unwrap());
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1)] {
            let meta = std::fs::metadata(&p).unwrap();
            assert!(meta.len() <= 1024);
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "logs are owner-only"
            );
        }
        // A reader that followed along saw every line, in order.
        let texts: Vec<String> = followed.iter().map(|e| e.log.clone()).collect();
        let expected: Vec<String> = (0..40).map(|i| format!("line {i:03}\n")).collect();
        assert_eq!(texts, expected);
        // A new reader sees what the three files still hold, oldest first, ending with the last.
        let all = LogReader::new(&path).read_new().unwrap();
        assert!(all.len() > 20 && all.len() < 40, "{}", all.len());
        assert_eq!(all.last().unwrap().log, "line 039\n");
        assert!(all.windows(2).all(|p| p[0].log < p[1].log));
    }

    #[test]
    fn log_options_follow_docker() {
        assert_eq!(LogOptions::parse(&[]).unwrap().max_file, 1);
        assert_eq!(
            LogOptions::parse(&["max-size=10m".into()])
                .unwrap()
                .max_size,
            Some(10 << 20)
        );
        for bad in [
            &["max-size=ten"][..],
            &["max-file=3"],
            &["max-file=0", "max-size=1k"],
            &["mode=blocking"],
            &["max-size"],
        ] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(LogOptions::parse(&v).is_err(), "{bad:?}");
        }
    }
}
