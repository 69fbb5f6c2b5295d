//! The store's durable form: a snapshot (`snapshot.json`, every object at one revision) plus a
//! journal (`journal.jsonl`, one line per committed transaction, fsynced before the write is
//! acknowledged). A line torn by a crash is the last one and is dropped on open; the journal is
//! folded into a new snapshot (written aside, fsynced, renamed) when it grows long.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Journal lines after which the journal is folded into a new snapshot.
pub(crate) const COMPACT_AFTER: usize = 4096;

/// Errors reading or writing the store's files.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file could not be read or written.
    #[error("daemon store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds something other than what the store wrote.
    #[error("daemon store {path}:{line}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What does not parse.
        reason: String,
    },
}

/// One change inside a transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// The object at `key` is now `object`.
    Put {
        /// `[group, plural, namespace, name]`.
        key: [String; 4],
        /// The stored object.
        object: Value,
    },
    /// The object at `key` is gone.
    Delete {
        /// `[group, plural, namespace, name]`.
        key: [String; 4],
    },
}

/// One committed transaction: the revision it made and its changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The store revision after this transaction.
    pub rev: u64,
    /// Its changes, in order.
    pub ops: Vec<Op>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    rev: u64,
    objects: Vec<([String; 4], Value)>,
}

/// The open journal of one store directory.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    file: File,
    lines: usize,
}

/// What was on disk when the store was opened.
pub struct Loaded {
    /// The revision of the last committed transaction.
    pub rev: u64,
    /// Every object, by key.
    pub objects: Vec<([String; 4], Value)>,
}

impl Journal {
    /// Opens (creating) the store in `dir`, replaying the snapshot and the journal.
    pub fn open(dir: &Path) -> Result<(Journal, Loaded), JournalError> {
        // Secrets are in here (base64 is no protection): the directory and its files are
        // the owner's only, and a directory made by an older berth is tightened.
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, Permissions::from_mode(0o700)))
            .map_err(|source| io(dir, source))?;
        let snap_path = dir.join("snapshot.json");
        let (mut rev, objects) = match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let s: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
                        path: snap_path.clone(),
                        line: e.line(),
                        reason: e.to_string(),
                    })?;
                (s.rev, s.objects)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, Vec::new()),
            Err(source) => return Err(io(&snap_path, source)),
        };
        let mut map: std::collections::BTreeMap<[String; 4], Value> = objects.into_iter().collect();

        let path = dir.join("journal.jsonl");
        let mut lines = 0;
        let mut good_len: u64 = 0;
        match File::open(&path) {
            Ok(f) => {
                let mut reader = BufReader::new(f);
                let mut buf = String::new();
                loop {
                    buf.clear();
                    let n = reader
                        .read_line(&mut buf)
                        .map_err(|source| io(&path, source))?;
                    if n == 0 {
                        break;
                    }
                    let complete = buf.ends_with('\n');
                    match serde_json::from_str::<Record>(buf.trim_end()) {
                        Ok(record) if complete => {
                            lines += 1;
                            good_len += n as u64;
                            if record.rev <= rev {
                                continue;
                            }
                            rev = record.rev;
                            for op in record.ops {
                                match op {
                                    Op::Put { key, object } => {
                                        map.insert(key, object);
                                    }
                                    Op::Delete { key } => {
                                        map.remove(&key);
                                    }
                                }
                            }
                        }
                        // A torn last write: the transaction was never acknowledged.
                        Ok(_) => {
                            torn(&path, lines);
                            break;
                        }
                        Err(_) if !complete || reader_at_end(&mut reader) => {
                            torn(&path, lines);
                            break;
                        }
                        Err(e) => {
                            return Err(JournalError::Corrupt {
                                path,
                                line: lines + 1,
                                reason: e.to_string(),
                            })
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io(&path, source)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        file.set_len(good_len).map_err(|source| io(&path, source))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            file,
            lines,
        };
        Ok((
            journal,
            Loaded {
                rev,
                objects: map.into_iter().collect(),
            },
        ))
    }

    /// Appends `record` and waits until it is on disk.
    pub fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        let mut line = serde_json::to_vec(record).map_err(|e| JournalError::Corrupt {
            path: path.clone(),
            line: self.lines + 1,
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| io(&path, source))?;
        self.lines += 1;
        Ok(())
    }

    /// Whether the journal is long enough to fold into a snapshot.
    pub fn wants_compaction(&self) -> bool {
        self.lines >= COMPACT_AFTER
    }

    /// Writes every object at `rev` as the new snapshot and starts an empty journal.
    pub fn compact<'a>(
        &mut self,
        rev: u64,
        objects: impl Iterator<Item = ([String; 4], &'a Value)>,
    ) -> Result<(), JournalError> {
        let snap = Snapshot {
            rev,
            objects: objects.map(|(k, v)| (k, v.clone())).collect(),
        };
        let tmp = self.dir.join("snapshot.json.tmp");
        let bytes = serde_json::to_vec(&snap).map_err(|e| JournalError::Corrupt {
            path: tmp.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        write_synced(&tmp, &bytes)?;
        let snap_path = self.dir.join("snapshot.json");
        std::fs::rename(&tmp, &snap_path).map_err(|source| io(&snap_path, source))?;
        sync_dir(&self.dir)?;
        // Records up to `rev` are in the snapshot now; an empty journal replaces the old one.
        let path = self.dir.join("journal.jsonl");
        let fresh = self.dir.join("journal.jsonl.tmp");
        write_synced(&fresh, b"")?;
        std::fs::rename(&fresh, &path).map_err(|source| io(&path, source))?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| io(&path, source))?;
        self.lines = 0;
        Ok(())
    }
}

fn reader_at_end(reader: &mut BufReader<File>) -> bool {
    reader.fill_buf().map(|b| b.is_empty()).unwrap_or(false)
}

fn torn(path: &Path, lines: usize) {
    tracing::warn!(path = %path.display(), line = lines + 1, "dropping a torn journal line");
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| io(path, source))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|source| io(path, source))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io(dir, source))
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_owner_only_and_an_open_dir_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let _opened = Journal::open(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("journal.jsonl")), 0o600);
    }
}
