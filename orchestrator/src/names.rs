//! Unique names (of containers, of pods): one file per name in a directory, created
//! exclusively and holding the owner's id, so two owners never get the same name even when
//! two `berth` processes race for it.

use std::io::Write;
use std::path::Path;

/// Why a name could not be reserved.
#[derive(Debug)]
pub(crate) enum Reserve {
    /// Another owner, whose id this is, holds the name.
    Taken(String),
    /// The name file could not be created or written.
    Io(std::path::PathBuf, std::io::Error),
}

/// Reserves `name` in `dir` for `id`.
pub(crate) fn reserve(dir: &Path, name: &str, id: &str) -> Result<(), Reserve> {
    std::fs::create_dir_all(dir).map_err(|e| Reserve::Io(dir.to_path_buf(), e))?;
    let path = dir.join(name);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => f.write_all(id.as_bytes()).map_err(|e| Reserve::Io(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            Err(Reserve::Taken(holder.trim().to_string()))
        }
        Err(e) => Err(Reserve::Io(path, e)),
    }
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
