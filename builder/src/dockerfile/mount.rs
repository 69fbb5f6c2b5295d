//! `RUN --mount=type=cache,target=/x,...`: the CSV option list BuildKit's `runmount.go` reads.

use super::ast::{CacheSharing, MountType, RunMount, Spanned};
use super::error::Span;

/// Why a `--mount` value does not parse; the parser wraps it as `invalid --mount value: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MountError {
    /// A double quote that is never closed.
    #[error("unterminated quote in {0:?}")]
    UnterminatedQuote(String),
    /// `type=` names no mount type BuildKit has.
    #[error("unsupported mount type {0:?}")]
    UnsupportedType(String),
    /// A key that needs `=value` came without one.
    #[error("{0} needs a value (like {0}=...)")]
    NeedsValue(String),
    /// A boolean option with something other than true, false, 1 or 0.
    #[error("{key}={value}: expected true or false")]
    NotBool {
        /// The option.
        key: String,
        /// Its value, lower-cased.
        value: String,
    },
    /// `mode`, `uid` or `gid` that is not a number.
    #[error("{key}={value}: not a number")]
    NotNumber {
        /// The option.
        key: String,
        /// Its value.
        value: String,
    },
    /// `sharing=` other than shared, private or locked.
    #[error("unsupported sharing value {0:?}")]
    UnsupportedSharing(String),
    /// An option BuildKit does not have.
    #[error("unexpected key {key:?} in {field:?}")]
    UnexpectedKey {
        /// The option's name, lower-cased.
        key: String,
        /// The whole `key=value` field.
        field: String,
    },
    /// A bind, cache or tmpfs mount without `target=`.
    #[error("mount type {0:?} requires a target")]
    NeedsTarget(String),
    /// `sharing=` on a mount that is not a cache.
    #[error("sharing is only valid for cache mounts")]
    SharingNotCache,
}

/// Splits a CSV record on commas, honouring double quotes as `encoding/csv` does.
fn csv_fields(value: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(MountError::UnterminatedQuote(value.to_string()));
    }
    fields.push(field);
    Ok(fields)
}

fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, MountError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(MountError::NotBool {
            key: key.to_string(),
            value: v.to_string(),
        }),
    }
}

/// Checks that a value is a number in `radix`, unless it holds a variable to expand later.
fn check_number(key: &str, value: &str, radix: u32) -> Result<String, MountError> {
    if value.contains('$') || u64::from_str_radix(value, radix).is_ok() {
        Ok(value.to_string())
    } else {
        Err(MountError::NotNumber {
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

/// Parses one `--mount` value. `span` is where the flag is, used for `from=`.
pub(crate) fn parse(value: &str, span: Span) -> Result<RunMount, MountError> {
    let mut mount = RunMount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        readonly: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: None,
        size: None,
    };
    let fields = csv_fields(value)?;
    // The type decides defaults, so read it first wherever it is.
    for field in &fields {
        if let Some(t) = field.strip_prefix("type=") {
            mount.kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountType::Bind,
                "cache" => MountType::Cache,
                "tmpfs" => MountType::Tmpfs,
                "secret" => MountType::Secret,
                "ssh" => MountType::Ssh,
                other => return Err(MountError::UnsupportedType(other.to_string())),
            };
        }
    }
    for field in fields {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| -> Result<String, MountError> {
            v.map(str::to_string)
                .ok_or_else(|| MountError::NeedsValue(key.clone()))
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => mount.target = Some(need(val)?),
            "source" | "src" => mount.source = Some(need(val)?),
            "from" => {
                mount.from = Some(Spanned {
                    value: need(val)?,
                    span,
                })
            }
            "ro" | "readonly" => mount.readonly = Some(parse_bool(&key, val)?),
            "rw" | "readwrite" => mount.readonly = Some(!parse_bool(&key, val)?),
            "id" => mount.id = Some(need(val)?),
            "sharing" => {
                mount.sharing = Some(match need(val)?.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => return Err(MountError::UnsupportedSharing(other.to_string())),
                })
            }
            "mode" => mount.mode = Some(check_number(&key, &need(val)?, 8)?),
            "uid" => mount.uid = Some(check_number(&key, &need(val)?, 10)?),
            "gid" => mount.gid = Some(check_number(&key, &need(val)?, 10)?),
            "size" => mount.size = Some(need(val)?),
            "required" => mount.required = Some(parse_bool(&key, val)?),
            _ => {
                return Err(MountError::UnexpectedKey {
                    key,
                    field: field.to_string(),
                })
            }
        }
    }
    let needs_target = matches!(
        mount.kind,
        MountType::Bind | MountType::Cache | MountType::Tmpfs
    );
    if needs_target && mount.target.is_none() {
        return Err(MountError::NeedsTarget(
            format!("{:?}", mount.kind).to_lowercase(),
        ));
    }
    if mount.sharing.is_some() && mount.kind != MountType::Cache {
        return Err(MountError::SharingNotCache);
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Span = Span { line: 1, column: 5 };

    #[test]
    fn cache_mount() {
        let m = parse("type=cache,target=/root/.cache,sharing=locked,id=x", AT).unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
    }

    #[test]
    fn bind_is_default_and_from_keeps_span() {
        let m = parse("from=build,source=/out,dst=/in,rw", AT).unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.readonly, Some(false));
        assert_eq!(m.from.unwrap().span, AT);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse("type=cache", AT).unwrap_err().to_string(),
            r#"mount type "cache" requires a target"#
        );
        assert_eq!(
            parse("type=nfs,target=/a", AT).unwrap_err().to_string(),
            r#"unsupported mount type "nfs""#
        );
        assert_eq!(
            parse("target=/a,colour=red", AT).unwrap_err().to_string(),
            r#"unexpected key "colour" in "colour=red""#
        );
        assert_eq!(
            parse("type=cache,target=/a,mode=9", AT)
                .unwrap_err()
                .to_string(),
            "mode=9: not a number"
        );
        assert_eq!(
            parse("target=/a,ro=maybe", AT).unwrap_err().to_string(),
            "ro=maybe: expected true or false"
        );
        assert_eq!(
            parse("target", AT).unwrap_err().to_string(),
            "target needs a value (like target=...)"
        );
        assert_eq!(
            parse("type=cache,target=/a,sharing=some", AT).unwrap_err(),
            MountError::UnsupportedSharing("some".into())
        );
        assert_eq!(
            parse("target=/a,sharing=shared", AT).unwrap_err(),
            MountError::SharingNotCache
        );
        assert_eq!(
            parse("target=\"/a", AT).unwrap_err().to_string(),
            r#"unterminated quote in "target=\"/a""#
        );
        assert!(parse("type=cache,target=/a,mode=$M", AT).is_ok());
    }
}
