//! What a container asks to have mounted, and Docker's three ways of saying it: `-v
//! SRC:DST[:OPTS]` ([`parse_volume`]), `--mount type=...,source=...,target=...`
//! ([`parse_mount`]) and `--tmpfs DST[:OPTS]` ([`parse_tmpfs`]). Parsing checks everything
//! that can be checked without the image, so bad input fails before anything is made.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a mount specification was refused.
#[derive(Debug, thiserror::Error)]
pub enum MountSpecError {
    /// Empty parts or too many colons.
    #[error("invalid volume specification {0:?}: expected [SOURCE:]DESTINATION[:OPTIONS]")]
    Syntax(String),
    /// The destination is relative, or `/`.
    #[error("invalid mount destination {dest:?} in {spec:?}: {reason}")]
    Destination {
        /// The whole specification.
        spec: String,
        /// The destination.
        dest: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The source is neither an absolute path nor a volume name.
    #[error("invalid volume source {source_name:?} in {spec:?}: a host directory must be an absolute path, a volume name is [a-zA-Z0-9][a-zA-Z0-9_.-]+")]
    Source {
        /// The whole specification.
        spec: String,
        /// The source.
        source_name: String,
    },
    /// An option in `SRC:DST:OPTS` or `--tmpfs DST:OPTS` that is not known, or does not fit
    /// the kind of mount.
    #[error("invalid mount option {option:?} in {spec:?}: {reason}")]
    Option {
        /// The whole specification.
        spec: String,
        /// The option.
        option: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `--mount` key that is not known.
    #[error("--mount {spec:?}: unknown key {key:?}")]
    UnknownKey {
        /// The whole specification.
        spec: String,
        /// The key.
        key: String,
    },
    /// A `--mount` value or combination that is not valid.
    #[error("--mount {spec:?}: {reason}")]
    Mount {
        /// The whole specification.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// `--mount type=bind` with a source that does not exist (`-v` creates it instead).
    #[error("--mount {spec:?}: bind source path does not exist: {}", path.display())]
    MissingBindSource {
        /// The whole specification.
        spec: String,
        /// The missing host path.
        path: PathBuf,
    },
    /// A size (`tmpfs-size`, `size=`) that is not a number of bytes with an optional unit.
    #[error("invalid size {0:?}: expected a number of bytes with an optional unit (k, m, g)")]
    Size(String),
    /// Two mounts with the same destination.
    #[error("duplicate mount point: {0}")]
    Duplicate(String),
}

/// Mount propagation of a bind mount (Docker's `bind-propagation`; default `rprivate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// `private`.
    Private,
    /// `rprivate` (the default).
    #[default]
    Rprivate,
    /// `shared`.
    Shared,
    /// `rshared`.
    Rshared,
    /// `slave`.
    Slave,
    /// `rslave`.
    Rslave,
}

impl Propagation {
    /// The OCI mount option (and Docker's word) for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "private" => Propagation::Private,
            "rprivate" => Propagation::Rprivate,
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            _ => return None,
        })
    }
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host path, bind-mounted (recursively).
    Bind {
        /// Absolute host path.
        source: PathBuf,
        /// Create the source directory when missing (`-v`, Kubernetes' DirectoryOrCreate);
        /// otherwise a missing source is an error (`--mount`).
        create_source: bool,
        /// Propagation.
        propagation: Propagation,
    },
    /// A volume under the store root: named (created on first use) or anonymous (`None`:
    /// a new one for this container). Populated from the image on first use unless
    /// `no_copy`.
    Volume {
        /// The volume's name.
        name: Option<String>,
        /// `volume-nocopy` / `:nocopy`.
        no_copy: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
        /// Mode of its root (octal in Docker's flags).
        mode: Option<u32>,
        /// Other mount options (`exec`, `nosuid`, ...), as given to `--tmpfs`.
        options: Vec<String>,
    },
}

/// One mount a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    /// What is mounted.
    pub kind: MountKind,
    /// Where, absolute inside the container (resolved in its rootfs without leaving it).
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl MountRequest {
    /// A recursive bind mount of host path `source` at `target`, read-write, `rprivate`; the
    /// source must exist (see [`MountRequest::create_source`]).
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<String>) -> Self {
        MountRequest {
            kind: MountKind::Bind {
                source: source.into(),
                create_source: false,
                propagation: Propagation::default(),
            },
            target: target.into(),
            read_only: false,
        }
    }

    /// Named volume `name` at `target` (created on first use and populated from the image).
    pub fn volume(name: impl Into<String>, target: impl Into<String>) -> Self {
        MountRequest {
            kind: MountKind::Volume {
                name: Some(name.into()),
                no_copy: false,
            },
            target: target.into(),
            read_only: false,
        }
    }

    /// A new anonymous volume at `target`.
    pub fn anonymous(target: impl Into<String>) -> Self {
        MountRequest {
            kind: MountKind::Volume {
                name: None,
                no_copy: false,
            },
            target: target.into(),
            read_only: false,
        }
    }

    /// A tmpfs at `target`, unlimited.
    pub fn tmpfs(target: impl Into<String>) -> Self {
        MountRequest {
            kind: MountKind::Tmpfs {
                size: None,
                mode: None,
                options: Vec::new(),
            },
            target: target.into(),
            read_only: false,
        }
    }

    /// The same mount, read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// For a bind: create a missing source directory instead of failing.
    pub fn create_source(mut self) -> Self {
        if let MountKind::Bind { create_source, .. } = &mut self.kind {
            *create_source = true;
        }
        self
    }

    /// Checks what can be checked before anything is made: an absolute destination other
    /// than `/`, an absolute bind source (existing unless it may be created), a valid volume
    /// name. [`check_all`] also refuses duplicate destinations.
    pub fn validate(&self) -> Result<(), MountSpecError> {
        let spec = self.target.clone();
        check_destination(&spec, &self.target)?;
        match &self.kind {
            MountKind::Bind {
                source,
                create_source,
                ..
            } => {
                if !source.is_absolute() {
                    return Err(MountSpecError::Source {
                        spec,
                        source_name: source.display().to_string(),
                    });
                }
                if !create_source && std::fs::symlink_metadata(source).is_err() {
                    return Err(MountSpecError::MissingBindSource {
                        spec,
                        path: source.clone(),
                    });
                }
            }
            MountKind::Volume {
                name: Some(name), ..
            } if !super::valid_name(name) => {
                return Err(MountSpecError::Source {
                    spec,
                    source_name: name.clone(),
                })
            }
            _ => {}
        }
        Ok(())
    }
}

/// Validates every request and refuses two with the same destination.
pub fn check_all(requests: &[MountRequest]) -> Result<(), MountSpecError> {
    let mut seen = std::collections::HashSet::new();
    for r in requests {
        r.validate()?;
        if !seen.insert(clean(&r.target)) {
            return Err(MountSpecError::Duplicate(r.target.clone()));
        }
    }
    Ok(())
}

/// `path` without `.`, empty components or a trailing slash (for comparing destinations).
pub fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn check_destination(spec: &str, dest: &str) -> Result<(), MountSpecError> {
    let err = |reason| MountSpecError::Destination {
        spec: spec.to_string(),
        dest: dest.to_string(),
        reason,
    };
    if !dest.starts_with('/') {
        return Err(err("must be an absolute path"));
    }
    if clean(dest) == "/" {
        return Err(err("cannot be '/'"));
    }
    if dest.split('/').any(|p| p == "..") {
        return Err(err("must not contain '..'"));
    }
    Ok(())
}

/// Parses `-v`: `/dst` (anonymous volume), `/dst:OPTS`, `SRC:/dst`, `SRC:/dst:OPTS`, where
/// SRC is an absolute host path (a bind, its directory created when missing, as Docker does)
/// or a volume name, and OPTS a comma list of `ro`, `rw`, `z`, `Z`, a propagation (binds) or
/// `nocopy` (volumes).
pub fn parse_volume(spec: &str) -> Result<MountRequest, MountSpecError> {
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(MountSpecError::Syntax(spec.to_string()));
    }
    let (source, dest, opts) = match parts.as_slice() {
        [dest] => (None, *dest, None),
        [dest, opts] if !opts.starts_with('/') && dest.starts_with('/') && is_mode(opts) => {
            (None, *dest, Some(*opts))
        }
        [source, dest] => (Some(*source), *dest, None),
        [source, dest, opts] => (Some(*source), *dest, Some(*opts)),
        _ => return Err(MountSpecError::Syntax(spec.to_string())),
    };
    check_destination(spec, dest)?;
    let mut request = match source {
        None => MountRequest::anonymous(dest),
        Some(s) if s.starts_with('/') => MountRequest::bind(s, dest).create_source(),
        Some(s) if super::valid_name(s) => MountRequest::volume(s, dest),
        Some(s) => {
            return Err(MountSpecError::Source {
                spec: spec.to_string(),
                source_name: s.to_string(),
            })
        }
    };
    let mut mode_seen = false;
    for opt in opts.into_iter().flat_map(|o| o.split(',')) {
        let bad = |reason| MountSpecError::Option {
            spec: spec.to_string(),
            option: opt.to_string(),
            reason,
        };
        match (opt, &mut request.kind) {
            ("ro" | "rw", _) if mode_seen => return Err(bad("ro/rw given twice")),
            ("ro", _) => {
                request.read_only = true;
                mode_seen = true;
            }
            ("rw", _) => mode_seen = true,
            // SELinux relabelling, and macOS consistency modes: meaningless here, accepted
            // as Docker on Linux does.
            ("z" | "Z" | "consistent" | "cached" | "delegated", _) => {}
            ("nocopy", MountKind::Volume { no_copy, .. }) => *no_copy = true,
            ("nocopy", _) => return Err(bad("only volumes are copied from the image")),
            (p, MountKind::Bind { propagation, .. }) if Propagation::parse(p).is_some() => {
                *propagation = Propagation::parse(p).unwrap_or_default();
            }
            (p, _) if Propagation::parse(p).is_some() => {
                return Err(bad("propagation applies to bind mounts only"))
            }
            _ => return Err(bad("expected ro, rw, z, Z, nocopy or a propagation")),
        }
    }
    Ok(request)
}

/// Whether every comma-separated word of `opts` is a `-v` option (so `/dst:ro` is an
/// anonymous volume with options, not a source and a relative destination).
fn is_mode(opts: &str) -> bool {
    opts.split(',').all(|o| {
        matches!(
            o,
            "ro" | "rw" | "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated"
        ) || Propagation::parse(o).is_some()
    })
}

/// Parses `--mount`: comma-separated `key=value` with `type=bind|volume|tmpfs` (default
/// `volume`), `source`/`src`, `target`/`destination`/`dst`, `readonly`/`ro[=true|false]`,
/// `bind-propagation`, `volume-nocopy`, `tmpfs-size`, `tmpfs-mode`, `consistency`
/// (ignored, as on Linux). A bind source must exist.
pub fn parse_mount(spec: &str) -> Result<MountRequest, MountSpecError> {
    let err = |reason: String| MountSpecError::Mount {
        spec: spec.to_string(),
        reason,
    };
    let mut typ = "volume".to_string();
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut read_only = false;
    let mut propagation: Option<Propagation> = None;
    let mut no_copy: Option<bool> = None;
    let mut size: Option<u64> = None;
    let mut mode: Option<u32> = None;
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| err(format!("{key} needs a value")))
        };
        match key.as_str() {
            "type" => typ = need(value)?,
            "source" | "src" => source = Some(need(value)?),
            "target" | "destination" | "dst" => target = Some(need(value)?),
            "readonly" | "ro" => {
                read_only = parse_bool(value)
                    .ok_or_else(|| err(format!("{key}: expected true or false")))?
            }
            "bind-propagation" => {
                let v = need(value)?;
                propagation = Some(
                    Propagation::parse(&v)
                        .ok_or_else(|| err(format!("invalid bind-propagation {v:?}")))?,
                );
            }
            "volume-nocopy" => {
                no_copy = Some(
                    parse_bool(value)
                        .ok_or_else(|| err(format!("{key}: expected true or false")))?,
                )
            }
            "tmpfs-size" => size = Some(parse_size(&need(value)?)?),
            "tmpfs-mode" => {
                let v = need(value)?;
                mode = Some(
                    u32::from_str_radix(&v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| err(format!("invalid tmpfs-mode {v:?}: expected octal")))?,
                );
            }
            "consistency" => {}
            "" => return Err(MountSpecError::Syntax(spec.to_string())),
            _ => {
                return Err(MountSpecError::UnknownKey {
                    spec: spec.to_string(),
                    key,
                })
            }
        }
    }
    let Some(target) = target else {
        return Err(err("target is required".into()));
    };
    check_destination(spec, &target)?;
    let mismatched = |key: &str| err(format!("{key} does not apply to type={typ}"));
    let kind = match typ.as_str() {
        "bind" => {
            if no_copy.is_some() {
                return Err(mismatched("volume-nocopy"));
            }
            if size.is_some() || mode.is_some() {
                return Err(mismatched("tmpfs options"));
            }
            let Some(source) = source else {
                return Err(err("source is required for type=bind".into()));
            };
            let source = PathBuf::from(source);
            if !source.is_absolute() {
                return Err(err(format!(
                    "bind source {} must be an absolute path",
                    source.display()
                )));
            }
            if std::fs::symlink_metadata(&source).is_err() {
                return Err(MountSpecError::MissingBindSource {
                    spec: spec.to_string(),
                    path: source,
                });
            }
            MountKind::Bind {
                source,
                create_source: false,
                propagation: propagation.unwrap_or_default(),
            }
        }
        "volume" => {
            if propagation.is_some() {
                return Err(mismatched("bind-propagation"));
            }
            if size.is_some() || mode.is_some() {
                return Err(mismatched("tmpfs options"));
            }
            if let Some(name) = &source {
                if !super::valid_name(name) {
                    return Err(MountSpecError::Source {
                        spec: spec.to_string(),
                        source_name: name.clone(),
                    });
                }
            }
            MountKind::Volume {
                name: source,
                no_copy: no_copy.unwrap_or(false),
            }
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(err("type=tmpfs takes no source".into()));
            }
            if propagation.is_some() {
                return Err(mismatched("bind-propagation"));
            }
            if no_copy.is_some() {
                return Err(mismatched("volume-nocopy"));
            }
            MountKind::Tmpfs {
                size,
                mode,
                options: Vec::new(),
            }
        }
        other => {
            return Err(err(format!(
                "unknown type {other:?}: expected bind, volume or tmpfs"
            )))
        }
    };
    Ok(MountRequest {
        kind,
        target,
        read_only,
    })
}

/// Parses `--tmpfs DST[:OPTS]`, OPTS being mount options: `ro`, `rw`, `size=N[k|m|g]`,
/// `mode=OCTAL`, `[no]exec`, `[no]suid`, `[no]dev`, `[no]atime`, `nr_inodes=N`.
pub fn parse_tmpfs(spec: &str) -> Result<MountRequest, MountSpecError> {
    let (dest, opts) = match spec.split_once(':') {
        Some((d, o)) => (d, Some(o)),
        None => (spec, None),
    };
    if dest.is_empty() || opts.is_some_and(str::is_empty) {
        return Err(MountSpecError::Syntax(spec.to_string()));
    }
    check_destination(spec, dest)?;
    let mut request = MountRequest::tmpfs(dest);
    let MountKind::Tmpfs {
        size,
        mode,
        options,
    } = &mut request.kind
    else {
        return Err(MountSpecError::Syntax(spec.to_string()));
    };
    for opt in opts.into_iter().flat_map(|o| o.split(',')) {
        let bad = |reason| MountSpecError::Option {
            spec: spec.to_string(),
            option: opt.to_string(),
            reason,
        };
        match opt.split_once('=') {
            Some(("size", v)) => *size = Some(parse_size(v)?),
            Some(("mode", v)) => {
                *mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad("mode must be octal"))?,
                )
            }
            Some(("nr_inodes", v)) if v.parse::<u64>().is_ok() => options.push(opt.to_string()),
            Some(_) => return Err(bad("expected size=, mode= or nr_inodes=")),
            None => match opt {
                "ro" => request.read_only = true,
                "rw" => request.read_only = false,
                "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev" | "atime" | "noatime"
                | "relatime" | "strictatime" | "nodiratime" | "diratime" => {
                    options.push(opt.to_string())
                }
                _ => return Err(bad("not a tmpfs mount option")),
            },
        }
    }
    Ok(request)
}

fn parse_bool(value: Option<&str>) -> Option<bool> {
    match value {
        None => Some(true),
        Some("1" | "true" | "True" | "TRUE") => Some(true),
        Some("0" | "false" | "False" | "FALSE") => Some(false),
        Some(_) => None,
    }
}

/// Parses a size such as `64m`, `1g`, `512k`, `100` or `1.5g` (binary units, an optional
/// `b`/`ib` suffix, as Docker's `RAMInBytes`).
pub fn parse_size(s: &str) -> Result<u64, MountSpecError> {
    ram_in_bytes(s).ok_or_else(|| MountSpecError::Size(s.to_string()))
}

/// Docker's `RAMInBytes`: a decimal number, an optional space and one of `k m g t p`
/// (case-insensitive, powers of 1024), optionally followed by `i` and/or `b`.
pub fn ram_in_bytes(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, suffix) = lower.split_at(end);
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let suffix = suffix.strip_prefix(' ').unwrap_or(suffix);
    let (mult, rest): (u64, &str) = match suffix.chars().next() {
        Some('k') => (1 << 10, &suffix[1..]),
        Some('m') => (1 << 20, &suffix[1..]),
        Some('g') => (1 << 30, &suffix[1..]),
        Some('t') => (1 << 40, &suffix[1..]),
        Some('p') => (1 << 50, &suffix[1..]),
        _ => (1, suffix),
    };
    if !matches!(rest, "" | "b" | "i" | "ib") {
        return None;
    }
    let bytes = value * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flag_follows_docker() {
        let r = parse_volume("/data").unwrap();
        assert_eq!(r, MountRequest::anonymous("/data"));
        let r = parse_volume("/data:ro").unwrap();
        assert_eq!(r, MountRequest::anonymous("/data").read_only());
        let r = parse_volume("/host/dir:/data").unwrap();
        assert_eq!(r, MountRequest::bind("/host/dir", "/data").create_source());
        let r = parse_volume("/host:/data:ro,rshared").unwrap();
        assert!(r.read_only);
        assert!(matches!(
            r.kind,
            MountKind::Bind {
                propagation: Propagation::Rshared,
                ..
            }
        ));
        assert!(!parse_volume("/h:/d:cached,z").unwrap().read_only);
        let r = parse_volume("cache:/var/cache:nocopy").unwrap();
        assert_eq!(
            r.kind,
            MountKind::Volume {
                name: Some("cache".into()),
                no_copy: true
            }
        );
    }

    #[test]
    fn bad_volume_flags_are_refused() {
        for bad in [
            "",
            ":/x",
            "/a:",
            "/a::ro",
            "/a:/b:ro:x",
            "data",
            "./rel:/x",
            "rel/dir:/x",
            "/a:rel",
            "/a:/b:bogus",
            "/a:/b:ro,rw",
            "/a:/",
            "vol:/b:shared",
            "/a:/b:nocopy",
            "/a:/b/../c",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?} was accepted");
        }
        let e = parse_volume("./rel:/x").unwrap_err().to_string();
        assert!(e.contains("absolute path"), "{e}");
        let e = parse_volume("/a:/b:bogus").unwrap_err().to_string();
        assert!(e.contains("\"bogus\""), "{e}");
    }

    #[test]
    fn mount_flag_follows_docker() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().display().to_string();
        let r = parse_mount(&format!("type=bind,source={src},target=/x,readonly")).unwrap();
        assert!(r.read_only);
        assert!(matches!(
            r.kind,
            MountKind::Bind {
                create_source: false,
                ..
            }
        ));
        let r = parse_mount("type=volume,src=v1,dst=/y,volume-nocopy=true").unwrap();
        assert_eq!(
            r.kind,
            MountKind::Volume {
                name: Some("v1".into()),
                no_copy: true
            }
        );
        let r = parse_mount("target=/z").unwrap();
        assert_eq!(r, MountRequest::anonymous("/z"));
        let r = parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            r.kind,
            MountKind::Tmpfs {
                size: Some(64 << 20),
                mode: Some(0o1770),
                options: vec![]
            }
        );
    }

    #[test]
    fn bad_mount_flags_are_refused() {
        let e = parse_mount("type=bind,source=/no/such/dir/here,target=/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = parse_mount("type=volume,target=/x,colour=red")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"colour\""), "{e}");
        for bad in [
            "type=bind,target=/x",
            "type=tmpfs,source=a,target=/x",
            "type=nfs,target=/x",
            "source=v",
            "type=volume,target=rel",
            "type=tmpfs,target=/x,tmpfs-size=lots",
            "type=volume,target=/x,bind-propagation=shared",
            "type=volume,source=a/b,target=/x",
            "type=volume,target=/x,readonly=maybe",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn tmpfs_flag() {
        let r = parse_tmpfs("/run:size=1m,mode=700,exec").unwrap();
        assert_eq!(
            r.kind,
            MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: Some(0o700),
                options: vec!["exec".into()]
            }
        );
        for bad in ["rel", "/x:", "/x:bogus", "/x:size=huge", "/x:mode=9"] {
            assert!(parse_tmpfs(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes_are_docker_ram_in_bytes() {
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("64MB"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1g"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("512 k"), Some(512 << 10));
        for bad in ["", "m", "-1m", "1x", "1mm", "ten", ".5m"] {
            assert_eq!(ram_in_bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let reqs = vec![MountRequest::anonymous("/a"), MountRequest::tmpfs("/a/")];
        assert!(matches!(
            check_all(&reqs),
            Err(MountSpecError::Duplicate(_))
        ));
    }
}
