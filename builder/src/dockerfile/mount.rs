//! `RUN --mount=type=cache,target=/x,...`: the CSV option list BuildKit's `runmount.go` reads.

use super::ast::{CacheSharing, MountType, RunMount, Spanned};
use super::error::Span;

/// Splits a CSV record on commas, honouring double quotes as `encoding/csv` does.
fn csv_fields(value: &str) -> Result<Vec<String>, String> {
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
        return Err(format!("unterminated quote in {value:?}"));
    }
    fields.push(field);
    Ok(fields)
}

fn parse_bool(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(format!("{key}={v}: expected true or false")),
    }
}

/// Checks that a value is a number in `radix`, unless it holds a variable to expand later.
fn check_number(key: &str, value: &str, radix: u32) -> Result<String, String> {
    if value.contains('$') || u64::from_str_radix(value, radix).is_ok() {
        Ok(value.to_string())
    } else {
        Err(format!("{key}={value}: not a number"))
    }
}

/// Parses one `--mount` value. `span` is where the flag is, used for `from=`.
pub(crate) fn parse(value: &str, span: Span) -> Result<RunMount, String> {
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
                other => return Err(format!("unsupported mount type {other:?}")),
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
        let need = |v: Option<&str>| -> Result<String, String> {
            v.map(str::to_string)
                .ok_or_else(|| format!("{key} needs a value (like {key}=...)"))
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
                    other => return Err(format!("unsupported sharing value {other:?}")),
                })
            }
            "mode" => mount.mode = Some(check_number(&key, &need(val)?, 8)?),
            "uid" => mount.uid = Some(check_number(&key, &need(val)?, 10)?),
            "gid" => mount.gid = Some(check_number(&key, &need(val)?, 10)?),
            "size" => mount.size = Some(need(val)?),
            "required" => mount.required = Some(parse_bool(&key, val)?),
            _ => return Err(format!("unexpected key {key:?} in {field:?}")),
        }
    }
    let needs_target = matches!(
        mount.kind,
        MountType::Bind | MountType::Cache | MountType::Tmpfs
    );
    if needs_target && mount.target.is_none() {
        return Err(format!(
            "mount type {:?} requires a target",
            format!("{:?}", mount.kind).to_lowercase()
        ));
    }
    if mount.sharing.is_some() && mount.kind != MountType::Cache {
        return Err("sharing is only valid for cache mounts".into());
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
        assert!(parse("type=cache", AT)
            .unwrap_err()
            .contains("requires a target"));
        assert!(parse("type=nfs,target=/a", AT).unwrap_err().contains("nfs"));
        assert!(parse("target=/a,colour=red", AT)
            .unwrap_err()
            .contains("colour"));
        assert!(parse("type=cache,target=/a,mode=9", AT).is_err());
        assert!(parse("type=cache,target=/a,mode=$M", AT).is_ok());
    }
}
