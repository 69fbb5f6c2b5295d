//! Image references (`busybox`, `localhost:5000/app:1.0`, `name@sha256:...`)
//! parsed and normalized exactly as Docker does.
//!
//! `busybox` becomes `docker.io/library/busybox:latest`; the first path
//! component is a registry domain only when it contains `.` or `:`, is
//! `localhost`, or has upper-case letters. [`Reference::familiar`] gives back
//! the short form `docker images` shows.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry that names without a domain refer to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy spelling of [`DEFAULT_DOMAIN`], rewritten to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Prefix of the official images on the default registry.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (domain and path) accepted.
pub const NAME_MAX: usize = 255;
/// Longest tag accepted.
const TAG_MAX: usize = 128;

/// Why a reference was rejected; each variant names the rule that broke.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing to parse.
    #[error("invalid reference format: repository name is empty")]
    Empty,
    /// A 64-hex string is an image id, not a name.
    #[error("invalid repository name {0:?}: cannot be a 64-character hexadecimal string (that is an image id)")]
    HexName(String),
    /// Repository names are lower case.
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    /// Domain plus path is longer than [`NAME_MAX`].
    #[error(
        "invalid reference format: repository name {name:?} is {len} characters, more than 255"
    )]
    TooLong {
        /// The offending name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The registry domain is not a host name, IPv4 or bracketed IPv6 address with optional port.
    #[error("invalid reference format: bad registry domain {0:?}")]
    BadDomain(String),
    /// A path component is empty or has characters outside `[a-z0-9]` and single separators.
    #[error(
        "invalid reference format: bad repository path component {component:?} in {reference:?}"
    )]
    BadComponent {
        /// The component that broke the rule.
        component: String,
        /// The whole reference.
        reference: String,
    },
    /// Tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid reference format: bad tag {0:?} (want [A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters)")]
    BadTag(String),
    /// The part after `@` is not a digest berth accepts.
    #[error("invalid reference format: bad digest in {reference:?}")]
    BadDigest {
        /// The whole reference.
        reference: String,
        /// What was wrong with the digest.
        source: DigestError,
    },
}

/// A normalized image reference: domain, path, and an optional tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes like Docker's `ParseNormalizedNamed`, then adds the
    /// `latest` tag when neither tag nor digest is given (as `docker pull` does).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses and normalizes like Docker's `ParseNormalizedNamed`, without adding a tag.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or(&remainder);
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase(remote.to_string()));
        }
        let raw = parse_raw(&format!("{domain}/{remainder}"))?;
        Ok(raw)
    }

    /// The registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with `tag` (checked) and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository pinned to `digest`, without a tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The repository name as Docker shows it: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference in its short form, e.g. `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.domain.is_empty() {
            f.write_str(&self.path)?;
        } else {
            write!(f, "{}/{}", self.domain, self.path)?;
        }
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// Docker's `splitDockerDomain`: decides whether the first component is a registry.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Docker's un-normalized `Parse`: the grammar without defaults. The domain is
/// empty when the first component is not one.
fn parse_raw(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => {
            let digest = parse_digest(s, d)?;
            (n, Some(digest))
        }
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|sl| colon > sl) => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    if name.is_empty() {
        return Err(ReferenceError::BadComponent {
            component: String::new(),
            reference: s.to_string(),
        });
    }
    let components: Vec<&str> = name.split('/').collect();
    let (domain, path_parts) = if components.len() >= 2 && is_domain(components[0]) {
        (components[0], &components[1..])
    } else {
        ("", &components[..])
    };
    for c in path_parts {
        if !is_path_component(c) {
            if is_path_component(&c.to_lowercase()) {
                return Err(ReferenceError::Uppercase(name.to_string()));
            }
            if components.len() >= 2 && c == &components[0] && components[0].contains([':', '[']) {
                return Err(ReferenceError::BadDomain(components[0].to_string()));
            }
            return Err(ReferenceError::BadComponent {
                component: c.to_string(),
                reference: s.to_string(),
            });
        }
    }
    if let Some(t) = tag {
        check_tag(t)?;
    }
    if name.len() > NAME_MAX {
        return Err(ReferenceError::TooLong {
            name: name.to_string(),
            len: name.len(),
        });
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path_parts.join("/"),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn parse_digest(reference: &str, d: &str) -> Result<Digest, ReferenceError> {
    d.parse().map_err(|source| ReferenceError::BadDigest {
        reference: reference.to_string(),
        source,
    })
}

fn check_tag(t: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !t.is_empty()
        && t.len() <= TAG_MAX
        && t.bytes().next().is_some_and(word)
        && t.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::BadTag(t.to_string()))
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let dashes = sep.bytes().all(|x| x == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return false;
        }
    }
    true
}

/// A host (DNS labels, IPv4, or `[ipv6]`) with an optional `:port`.
fn is_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let addr = &rest[..end];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => !h.is_empty() && h.split('.').all(is_domain_label),
    }
}

/// `[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`
fn is_domain_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

#[cfg(test)]
mod tests {
    //! Cases from distribution/reference's `reference_test.go` and
    //! `normalize_test.go` (Docker's own rules), plus berth's familiar-name cases.
    use super::*;

    const F64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// (input, domain, path, tag, digest) for the un-normalized grammar.
    fn raw_valid() -> Vec<(String, &'static str, String, &'static str, String)> {
        let f = |s: &str| s.to_string();
        let d256 = format!("sha256:{F64}");
        let d512 = format!("sha512:{F64}{F64}");
        vec![
            (f("test_com"), "", f("test_com"), "", f("")),
            (f("test.com:tag"), "", f("test.com"), "tag", f("")),
            (f("test.com:5000"), "", f("test.com"), "5000", f("")),
            (f("test.com/repo:tag"), "test.com", f("repo"), "tag", f("")),
            (f("test:5000/repo"), "test:5000", f("repo"), "", f("")),
            (
                f("test:5000/repo:tag"),
                "test:5000",
                f("repo"),
                "tag",
                f(""),
            ),
            (
                format!("test:5000/repo@{d256}"),
                "test:5000",
                f("repo"),
                "",
                d256.clone(),
            ),
            (
                format!("test:5000/repo:tag@{d256}"),
                "test:5000",
                f("repo"),
                "tag",
                d256.clone(),
            ),
            (
                f("lowercase:Uppercase"),
                "",
                f("lowercase"),
                "Uppercase",
                f(""),
            ),
            (
                format!("{}a:tag-puts-this-over-max", "a/".repeat(127)),
                "a",
                format!("{}a", "a/".repeat(126)),
                "tag-puts-this-over-max",
                f(""),
            ),
            (
                f("sub-dom1.foo.com/bar/baz/quux"),
                "sub-dom1.foo.com",
                f("bar/baz/quux"),
                "",
                f(""),
            ),
            (
                f("sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
                "sub-dom1.foo.com",
                f("bar/baz/quux"),
                "some-long-tag",
                f(""),
            ),
            (
                f("b.gcr.io/test.example.com/my-app:test.example.com"),
                "b.gcr.io",
                f("test.example.com/my-app"),
                "test.example.com",
                f(""),
            ),
            (
                f("xn--n3h.com/myimage:xn--n3h.com"),
                "xn--n3h.com",
                f("myimage"),
                "xn--n3h.com",
                f(""),
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{d512}"),
                "xn--7o8h.com",
                f("myimage"),
                "xn--7o8h.com",
                d512.clone(),
            ),
            (f("foo_bar.com:8080"), "", f("foo_bar.com"), "8080", f("")),
            (
                f("foo/foo_bar.com:8080"),
                "foo",
                f("foo_bar.com"),
                "8080",
                f(""),
            ),
            (f("192.168.1.1"), "", f("192.168.1.1"), "", f("")),
            (f("192.168.1.1:tag"), "", f("192.168.1.1"), "tag", f("")),
            (f("192.168.1.1:5000"), "", f("192.168.1.1"), "5000", f("")),
            (f("192.168.1.1/repo"), "192.168.1.1", f("repo"), "", f("")),
            (
                f("192.168.1.1:5000/repo"),
                "192.168.1.1:5000",
                f("repo"),
                "",
                f(""),
            ),
            (
                f("192.168.1.1:5000/repo:5050"),
                "192.168.1.1:5000",
                f("repo"),
                "5050",
                f(""),
            ),
            (
                f("[2001:db8::1]/repo"),
                "[2001:db8::1]",
                f("repo"),
                "",
                f(""),
            ),
            (
                f("[2001:db8:1:2:3:4:5:6]/repo:tag"),
                "[2001:db8:1:2:3:4:5:6]",
                f("repo"),
                "tag",
                f(""),
            ),
            (
                f("[2001:db8::1]:5000/repo"),
                "[2001:db8::1]:5000",
                f("repo"),
                "",
                f(""),
            ),
            (
                f("[2001:db8::1]:5000/repo:tag"),
                "[2001:db8::1]:5000",
                f("repo"),
                "tag",
                f(""),
            ),
            (
                format!("[2001:db8::1]:5000/repo@{d256}"),
                "[2001:db8::1]:5000",
                f("repo"),
                "",
                d256.clone(),
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@{d256}"),
                "[2001:db8::1]:5000",
                f("repo"),
                "tag",
                d256.clone(),
            ),
            (
                f("[2001:db8::]:5000/repo"),
                "[2001:db8::]:5000",
                f("repo"),
                "",
                f(""),
            ),
            (f("[::1]:5000/repo"), "[::1]:5000", f("repo"), "", f("")),
            (f("test.com/foo"), "test.com", f("foo"), "", f("")),
            (f("test_com/foo"), "", f("test_com/foo"), "", f("")),
            (f("test:8080/foo"), "test:8080", f("foo"), "", f("")),
            (f("test.com:8080/foo"), "test.com:8080", f("foo"), "", f("")),
            (f("test-com:8080/foo"), "test-com:8080", f("foo"), "", f("")),
            (
                f("xn--n3h.com:18080/foo"),
                "xn--n3h.com:18080",
                f("foo"),
                "",
                f(""),
            ),
            (
                f("example.com:8000/named:tagged"),
                "example.com:8000",
                f("named"),
                "tagged",
                f(""),
            ),
        ]
    }

    #[test]
    fn raw_grammar_accepts_docker_cases() {
        for (input, domain, path, tag, digest) in raw_valid() {
            let r = parse_raw(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), input, "round trip of {input}");
            assert_eq!(r.domain(), domain, "domain of {input}");
            assert_eq!(r.path(), path, "path of {input}");
            assert_eq!(r.tag().unwrap_or(""), tag, "tag of {input}");
            let got = r.digest().map(|d| d.to_string()).unwrap_or_default();
            assert_eq!(got, digest, "digest of {input}");
        }
    }

    #[test]
    fn raw_grammar_rejects_docker_cases() {
        let too_long = format!("{}a:tag", "a/".repeat(128));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            (":justtag", "path component"),
            ("@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "path component"),
            ("repo@sha256:ffffffffffffffffffffffffffffffffff", "digest"),
            ("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest"),
            ("Uppercase:tag", "lowercase"),
            ("test:5000/Uppercase/lowercase:tag", "lowercase"),
            (&too_long, "more than 255"),
            ("aa/asdf$$^/aa", "path component"),
            ("[2001:db8::1]", "invalid reference"),
            ("[2001:db8::1]:5000", "invalid reference"),
            ("[2001:db8::1]:tag", "invalid reference"),
            ("[fe80::1%eth0]:5000/repo", "invalid reference"),
            ("[fe80::1%@invalidzone]:5000/repo", "invalid reference"),
        ];
        for (input, rule) in cases {
            let err = parse_raw(input).expect_err(input).to_string();
            assert!(err.contains(rule), "{input}: {err} should mention {rule}");
        }
    }

    #[test]
    fn normalized_names_docker_accepts() {
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
        ];
        for name in valid {
            Reference::parse_named(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn normalized_names_docker_rejects() {
        let long_ns = "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_"
            .repeat(4)
            + "/docker";
        let invalid = [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            &long_ns,
            "-foo",
            "busybox:-foo",
            "busybox@foo",
        ];
        for name in invalid {
            assert!(
                Reference::parse_named(name).is_err(),
                "{name} should be rejected"
            );
        }
    }

    #[test]
    fn repository_info_matches_docker() {
        // (familiar, full, ambiguous spelling, domain, path)
        let cases = [
            (
                "fooo/bar",
                "docker.io/fooo/bar",
                "index.docker.io/fooo/bar",
                "docker.io",
                "fooo/bar",
            ),
            (
                "ubuntu",
                "docker.io/library/ubuntu",
                "library/ubuntu",
                "docker.io",
                "library/ubuntu",
            ),
            (
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                "",
                "docker.io",
                "nonlibrary/ubuntu",
            ),
            (
                "other/library",
                "docker.io/other/library",
                "",
                "docker.io",
                "other/library",
            ),
            (
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "",
                "127.0.0.1:8000",
                "private/moonbase",
            ),
            (
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase",
                "",
                "127.0.0.1:8000",
                "privatebase",
            ),
            (
                "example.com/private/moonbase",
                "example.com/private/moonbase",
                "",
                "example.com",
                "private/moonbase",
            ),
            (
                "example.com/privatebase",
                "example.com/privatebase",
                "",
                "example.com",
                "privatebase",
            ),
            (
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase",
                "",
                "example.com:8000",
                "private/moonbase",
            ),
            (
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                "",
                "example.com:8000",
                "privatebasee",
            ),
            (
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
                "library/ubuntu-12.04-base",
            ),
            (
                "foo",
                "docker.io/library/foo",
                "docker.io/foo",
                "docker.io",
                "library/foo",
            ),
            (
                "library/foo/bar",
                "docker.io/library/foo/bar",
                "",
                "docker.io",
                "library/foo/bar",
            ),
            (
                "store/foo/bar",
                "docker.io/store/foo/bar",
                "",
                "docker.io",
                "store/foo/bar",
            ),
            ("Foo/bar", "Foo/bar", "", "Foo", "bar"),
            ("FOO/bar", "FOO/bar", "", "FOO", "bar"),
            ("localhost/app", "localhost/app", "", "localhost", "app"),
            (
                "localhost:5000/x",
                "localhost:5000/x",
                "",
                "localhost:5000",
                "x",
            ),
        ];
        for (familiar, full, ambiguous, domain, path) in cases {
            let mut spellings = vec![familiar, full];
            if !ambiguous.is_empty() {
                spellings.push(ambiguous);
            }
            for s in spellings {
                let r = Reference::parse_named(s).unwrap_or_else(|e| panic!("{s}: {e}"));
                assert_eq!(r.familiar_name(), familiar, "familiar name of {s}");
                assert_eq!(r.to_string(), full, "full name of {s}");
                assert_eq!(r.domain(), domain, "domain of {s}");
                assert_eq!(r.path(), path, "path of {s}");
            }
        }
    }

    #[test]
    fn split_hostname_matches_docker() {
        let cases = [
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator"),
            ("test.com:8080/foo", "test.com:8080", "foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("foo", "docker.io", "library/foo"),
            ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("docker.io/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
        ];
        for (input, domain, path) in cases {
            let r = Reference::parse_named(input).unwrap();
            assert_eq!((r.domain(), r.path()), (domain, path), "{input}");
        }
    }

    #[test]
    fn parse_any_equivalents() {
        let d = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
        let cases = [
            ("redis", "docker.io/library/redis".to_string()),
            ("redis:latest", "docker.io/library/redis:latest".to_string()),
            (
                "docker.io/library/redis:latest",
                "docker.io/library/redis:latest".to_string(),
            ),
            (
                &*format!("redis@{d}"),
                format!("docker.io/library/redis@{d}"),
            ),
            (
                &*format!("docker.io/library/redis@{d}"),
                format!("docker.io/library/redis@{d}"),
            ),
            ("dmcgowan/myapp", "docker.io/dmcgowan/myapp".to_string()),
            (
                "dmcgowan/myapp:latest",
                "docker.io/dmcgowan/myapp:latest".to_string(),
            ),
            (
                "docker.io/mcgowan/myapp:latest",
                "docker.io/mcgowan/myapp:latest".to_string(),
            ),
            (
                &*format!("dmcgowan/myapp@{d}"),
                format!("docker.io/dmcgowan/myapp@{d}"),
            ),
            (
                &*format!("docker.io/dmcgowan/myapp@{d}"),
                format!("docker.io/dmcgowan/myapp@{d}"),
            ),
            (
                "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
                "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9"
                    .to_string(),
            ),
            ("dbcc1", "docker.io/library/dbcc1".to_string()),
        ];
        for (input, full) in cases {
            let owned = input.to_string();
            let r = Reference::parse_named(&owned).unwrap_or_else(|e| panic!("{owned}: {e}"));
            assert_eq!(r.to_string(), full, "{owned}");
        }
    }

    #[test]
    fn tag_and_digest_together() {
        let short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
        let r = Reference::parse(short).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/{short}"));
        assert_eq!(r.tag(), Some("latest"));
        assert!(r.digest().is_some());
        assert_eq!(r.familiar(), short);
    }

    #[test]
    fn default_tag_and_familiar_form() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "host.example/x/y:tag",
                "host.example/x/y:tag",
                "host.example/x/y:tag",
            ),
            (
                "docker.io/library/alpine:3.19",
                "docker.io/library/alpine:3.19",
                "alpine:3.19",
            ),
            (
                "index.docker.io/user/app:v1",
                "docker.io/user/app:v1",
                "user/app:v1",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
        let pinned = Reference::parse(&format!("busybox@sha256:{F64}")).unwrap();
        assert_eq!(pinned.tag(), None, "a digest reference gets no default tag");
    }

    #[test]
    fn with_tag_checks_the_tag() {
        let r = Reference::parse_named("test.com:8000/foo").unwrap();
        assert_eq!(
            r.with_tag("TAG5").unwrap().to_string(),
            "test.com:8000/foo:TAG5"
        );
        assert!(r.with_tag("-foo").is_err());
        assert!(r.with_tag(&"a".repeat(129)).is_err());
        assert!(r.with_tag(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn errors_name_the_rule() {
        let cases = [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("docker.io/library/Busybox", "lowercase"),
            ("busybox:bad tag", "bad tag"),
            ("busybox@sha256:abc", "bad digest"),
            ("busybox@md5:abc", "bad digest"),
            ("a//b", "path component"),
            ("https://x/y", "domain"),
            (
                "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
                "image id",
            ),
        ];
        for (input, rule) in cases {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(rule), "{input:?}: {err} should mention {rule}");
        }
    }
}
