//! Resource limits (`process.rlimits`).

use nix::sys::resource::{setrlimit, Resource};
use oci_spec::runtime::PosixRlimit;

use super::ConfineError;

/// One validated rlimit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rlimit {
    name: String,
    resource: Resource,
    soft: u64,
    hard: u64,
}

/// The kernel resource for an rlimit name as the spec spells it (`RLIMIT_NOFILE`).
fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

/// Validates the spec's rlimits: known names, soft not above hard, each set once.
pub(super) fn parse(limits: &[PosixRlimit]) -> Result<Vec<Rlimit>, ConfineError> {
    let mut out: Vec<Rlimit> = Vec::with_capacity(limits.len());
    for l in limits {
        let name = serde_json::to_value(l.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let invalid = |reason: String| ConfineError::InvalidRlimit {
            name: name.clone(),
            reason,
        };
        let resource = resource(&name).ok_or_else(|| invalid("not a Linux rlimit".into()))?;
        if l.soft() > l.hard() {
            return Err(invalid(format!(
                "soft limit {} is above hard limit {}",
                l.soft(),
                l.hard()
            )));
        }
        if out.iter().any(|r| r.name == name) {
            return Err(invalid("set more than once".into()));
        }
        out.push(Rlimit {
            name,
            resource,
            soft: l.soft(),
            hard: l.hard(),
        });
    }
    Ok(out)
}

/// Sets each rlimit on the calling process. Raising a hard limit needs `CAP_SYS_RESOURCE`.
pub(super) fn apply(limits: &[Rlimit]) -> Result<(), ConfineError> {
    for l in limits {
        setrlimit(l.resource, l.soft, l.hard).map_err(|source| ConfineError::SetRlimit {
            name: l.name.clone(),
            soft: l.soft,
            hard: l.hard,
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Vec<PosixRlimit> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn parses_known_limits() {
        let l = parse(&limits(
            r#"[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]"#,
        ))
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].resource, Resource::RLIMIT_NOFILE);
        assert_eq!((l[0].soft, l[0].hard), (1024, 4096));
    }

    #[test]
    fn rejects_soft_above_hard_and_duplicates() {
        let err = parse(&limits(
            r#"[{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
        assert!(err.to_string().contains("above hard"), "{err}");
        let err = parse(&limits(
            r#"[{"type": "RLIMIT_NPROC", "soft": 1, "hard": 1}, {"type": "RLIMIT_NPROC", "soft": 2, "hard": 2}]"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn unknown_names_do_not_parse() {
        assert!(serde_json::from_str::<Vec<PosixRlimit>>(
            r#"[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]"#
        )
        .is_err());
    }
}
