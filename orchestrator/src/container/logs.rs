//! Container output in Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC 3339 with nanoseconds"}`. The monitor
//! writes it; `logs` and a foreground `run` read it (following as it grows).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Lines longer than this are split into several entries, as Docker does (16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// Errors writing or reading a container log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
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

/// Appends a container's output to its log, one entry per line and stream.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (creating) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            pending: [Vec::new(), Vec::new()],
        })
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
        self.file.write_all(&bytes).map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads a log from the start, returning new entries as the file grows.
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

    /// The entries written since the last call (all of them on the first call).
    /// Lines that are not valid entries are skipped.
    pub fn read_new(&mut self) -> Result<Vec<LogEntry>, LogError> {
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io(e)),
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        file.read_to_end(&mut self.partial).map_err(io)?;
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line = &self.partial[start..start + end];
            if let Ok(entry) = serde_json::from_slice::<LogEntry>(line) {
                out.push(entry);
            }
            start += end + 1;
        }
        self.partial.drain(..start);
        Ok(out)
    }

    /// Starts over from the beginning of the file.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_entry_per_line_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&path).unwrap();
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
        let mut w = LogWriter::open(&path).unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let got = LogReader::new(&path).read_new().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].log.len(), MAX_LINE);
        assert_eq!(got[1].log.len(), 11);
    }
}
