//! Unique names (of containers, of pods): one file per name in a directory, holding the
//! owner's id, so two owners never get the same name even when two `berth` processes race
//! for it. The file appears whole (written aside, then hard-linked into place) and stays
//! flock-ed until the owner's record is written, so a name whose creator died half-way (no
//! record, no lock) is told apart from one being created, and is taken over.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fs2::FileExt;

/// Why a name could not be reserved.
#[derive(Debug)]
pub(crate) enum Reserve {
    /// Another owner, whose id this is, holds the name.
    Taken(String),
    /// The name file could not be created or written.
    Io(std::path::PathBuf, std::io::Error),
}

/// A reserved name whose owner's record is still being written: keep it until the record
/// is on disk, then drop it.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The name file, flock-ed.
    _lock: std::fs::File,
}

/// Reserves `name` in `dir` for `id`. A name held by an owner that `has_record` does not
/// know, and whose creator is gone, is stale and taken over.
pub(crate) fn reserve(
    dir: &Path,
    name: &str,
    id: &str,
    has_record: impl Fn(&str) -> bool,
) -> Result<Reservation, Reserve> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Reserve::Io(path, e)
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".tmp-{id}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let made = file
        .write_all(id.as_bytes())
        .and_then(|()| file.lock_exclusive());
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(Reserve::Io(tmp, e));
    }
    let mut linked = std::fs::hard_link(&tmp, &path);
    if linked
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
    {
        match take_over_stale(&path, &has_record) {
            Ok(()) => linked = std::fs::hard_link(&tmp, &path),
            Err(taken) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(taken);
            }
        }
    }
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Reservation { _lock: file }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Reserve::Taken(holder(dir, name).unwrap_or_default()))
        }
        Err(e) => Err(Reserve::Io(path, e)),
    }
}

/// Removes the name file at `path` when its creator is gone (it is not locked) and its owner
/// has no record; otherwise the name is taken, by the id the file holds.
fn take_over_stale(path: &Path, has_record: &impl Fn(&str) -> bool) -> Result<(), Reserve> {
    let io = |e| Reserve::Io(path.to_path_buf(), e);
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        // Released meanwhile: free to link again.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let mut holder = String::new();
    file.read_to_string(&mut holder).map_err(io)?;
    let holder = holder.trim().to_string();
    if file.try_lock_exclusive().is_err() || has_record(&holder) {
        return Err(Reserve::Taken(holder));
    }
    // Still the same file (not replaced by another taker since we opened it)?
    let same = std::fs::metadata(path)
        .and_then(|now| file.metadata().map(|ours| now.ino() == ours.ino()))
        .unwrap_or(false);
    if same {
        tracing::info!(name = %path.display(), stale_owner = %holder, "taking over a stale name");
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

/// The id holding `name` in `dir`, if any.
pub(crate) fn holder(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|h| h.trim().to_string())
}

/// Releases `name` in `dir` if `id` holds it.
pub(crate) fn release(dir: &Path, name: &str, id: &str) {
    if holder(dir, name).is_some_and(|h| h == id) {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// What an id prefix matches among the ids of one kind of record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PrefixMatch {
    /// Exactly this id.
    One(String),
    /// More than one id.
    Many,
    /// No id (or the query is not hexadecimal).
    None,
}

/// Matches `query` as an id prefix against `ids` (listed only when `query` is hexadecimal),
/// as Docker looks up containers by a short id.
pub(crate) fn match_prefix<E>(
    query: &str,
    ids: impl FnOnce() -> Result<Vec<String>, E>,
) -> Result<PrefixMatch, E> {
    if query.is_empty() || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(PrefixMatch::None);
    }
    let mut hits = ids()?.into_iter().filter(|id| id.starts_with(query));
    Ok(match (hits.next(), hits.next()) {
        (Some(one), None) => PrefixMatch::One(one),
        (Some(_), Some(_)) => PrefixMatch::Many,
        (None, _) => PrefixMatch::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_while_reserved_and_taken_over_once_its_creator_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let no_record = |_: &str| false;
        let creating = reserve(dir.path(), "web", "aaa", no_record).unwrap();
        // Being created (locked): taken, even without a record yet.
        match reserve(dir.path(), "web", "bbb", no_record) {
            Err(Reserve::Taken(holder)) => assert_eq!(holder, "aaa"),
            other => panic!("{other:?}"),
        }
        drop(creating);
        // Created, with its record: still taken.
        match reserve(dir.path(), "web", "bbb", |id: &str| id == "aaa") {
            Err(Reserve::Taken(holder)) => assert_eq!(holder, "aaa"),
            other => panic!("{other:?}"),
        }
        // Its creator died before writing the record: stale, taken over.
        let _mine = reserve(dir.path(), "web", "ccc", no_record).unwrap();
        assert_eq!(holder(dir.path(), "web").as_deref(), Some("ccc"));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["web"], "a temporary file was left");
    }

    #[test]
    fn prefixes_match_one_many_or_none() {
        let ids = || {
            Ok::<_, ()>(vec![
                "abc1".to_string(),
                "abc2".to_string(),
                "def".to_string(),
            ])
        };
        assert_eq!(
            match_prefix("abc1", ids),
            Ok(PrefixMatch::One("abc1".into()))
        );
        assert_eq!(match_prefix("d", ids), Ok(PrefixMatch::One("def".into())));
        assert_eq!(match_prefix("abc", ids), Ok(PrefixMatch::Many));
        assert_eq!(match_prefix("0", ids), Ok(PrefixMatch::None));
        assert_eq!(match_prefix("", ids), Ok(PrefixMatch::None));
        assert_eq!(
            match_prefix("web", || -> Result<Vec<String>, ()> {
                panic!("not listed")
            }),
            Ok(PrefixMatch::None)
        );
    }
}
