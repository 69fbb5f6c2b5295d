//! The name formats Kubernetes checks: DNS-1123 labels and subdomains, DNS-1035 labels,
//! qualified names (label and annotation keys), label values, IANA port names, config keys.
//! Each returns a [`NameError`] whose message is the API server's own explanation when the
//! value does not fit.

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// Why a value does not fit a name format; the messages are the API server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Longer than the format allows.
    #[error("must be no more than {0} characters")]
    TooLong(usize),
    /// Not a DNS-1123 label.
    #[error("{}", DNS1123_LABEL_MSG)]
    Dns1123Label,
    /// Not a DNS-1123 subdomain.
    #[error("{}", DNS1123_SUBDOMAIN_MSG)]
    Dns1123Subdomain,
    /// Not a DNS-1035 label.
    #[error("{}", DNS1035_LABEL_MSG)]
    Dns1035Label,
    /// A qualified name with `/` but nothing before it.
    #[error("prefix part must be non-empty")]
    EmptyPrefix,
    /// A qualified name whose prefix is not a DNS-1123 subdomain.
    #[error("prefix part {0}")]
    Prefix(Box<NameError>),
    /// A qualified name with nothing after its `/`.
    #[error("name part must be non-empty")]
    EmptyNamePart,
    /// A qualified name whose name part is over 63 characters.
    #[error("name part must be no more than 63 characters")]
    NamePartTooLong,
    /// A qualified name whose name part has characters it may not.
    #[error("{}", QUALIFIED_NAME_MSG)]
    QualifiedName,
    /// Not a label value.
    #[error("{}", LABEL_VALUE_MSG)]
    LabelValue,
    /// A port name with characters other than `a-z`, `0-9` and `-` (or none at all).
    #[error("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")]
    PortNameCharacters,
    /// A port name with `--`.
    #[error("must not contain consecutive hyphens")]
    ConsecutiveHyphens,
    /// A port name of digits and hyphens only.
    #[error("must contain at least one letter (a-z)")]
    NoLetter,
    /// A port name starting or ending with `-`.
    #[error("must not begin or end with a hyphen")]
    HyphenAtEnd,
    /// Not a ConfigMap or Secret key.
    #[error("{}", CONFIG_KEY_MSG)]
    ConfigKey,
    /// A config key that is `.` or `..`.
    #[error("must not be '{0}'")]
    Dots(&'static str),
    /// A config key starting with `..` (the kubelet's own files in a volume).
    #[error("must not start with '..'")]
    DoubleDotPrefix,
    /// Not an environment variable name.
    #[error("a valid environment variable name must consist only of printable ASCII characters other than '='")]
    EnvVarName,
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// A DNS-1123 label (`my-name`, at most 63 characters): Namespace names, container, volume
/// and port-less names.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    if s.len() > 63 {
        return Err(NameError::TooLong(63));
    }
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(NameError::Dns1123Label)
    }
}

/// A DNS-1123 subdomain (`example.com`, at most 253 characters): most object names.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.len() > 253 {
        return Err(NameError::TooLong(253));
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && lower_alnum(b[0])
                && lower_alnum(b[b.len() - 1])
                && b.iter().all(|&c| lower_alnum(c) || c == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(NameError::Dns1123Subdomain)
    }
}

/// A DNS-1035 label (`my-name`, starting with a letter): Service names.
pub fn dns1035_label(s: &str) -> Result<(), NameError> {
    if s.len() > 63 {
        return Err(NameError::TooLong(63));
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(NameError::Dns1035Label)
    }
}

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A qualified name (`app`, `app.kubernetes.io/name`): label and annotation keys.
pub fn qualified_name(s: &str) -> Result<(), NameError> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err(NameError::EmptyPrefix);
        }
        dns1123_subdomain(p).map_err(|e| NameError::Prefix(Box::new(e)))?;
    }
    if name.is_empty() {
        return Err(NameError::EmptyNamePart);
    }
    if name.len() > 63 {
        return Err(NameError::NamePartTooLong);
    }
    if is_name_part(name) {
        Ok(())
    } else {
        Err(NameError::QualifiedName)
    }
}

/// A label value: empty, or up to 63 alphanumerics with `-`, `_`, `.` inside.
pub fn label_value(s: &str) -> Result<(), NameError> {
    if s.len() > 63 {
        return Err(NameError::TooLong(63));
    }
    if s.is_empty() || is_name_part(s) {
        Ok(())
    } else {
        Err(NameError::LabelValue)
    }
}

/// An IANA service name (`http`, at most 15 characters, a letter somewhere, no `--`):
/// container and service port names.
pub fn port_name(s: &str) -> Result<(), NameError> {
    if s.len() > 15 {
        return Err(NameError::TooLong(15));
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| lower_alnum(c) || c == b'-') {
        return Err(NameError::PortNameCharacters);
    }
    if s.contains("--") {
        return Err(NameError::ConsecutiveHyphens);
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        return Err(NameError::NoLetter);
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err(NameError::HyphenAtEnd);
    }
    Ok(())
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub fn config_key(s: &str) -> Result<(), NameError> {
    if s.len() > 253 {
        return Err(NameError::TooLong(253));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(NameError::ConfigKey);
    }
    if s == "." {
        return Err(NameError::Dots("."));
    }
    if s == ".." {
        return Err(NameError::Dots(".."));
    }
    if s.starts_with("..") {
        return Err(NameError::DoubleDotPrefix);
    }
    Ok(())
}

/// An environment variable name: printable ASCII without `=` (Kubernetes 1.32's relaxed rule).
pub fn env_var_name(s: &str) -> Result<(), NameError> {
    if !s.is_empty() && s.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        Ok(())
    } else {
        Err(NameError::EnvVarName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_format() {
        assert!(dns1123_label("hello-pod").is_ok());
        assert!(dns1123_label("Hello").is_err());
        assert!(dns1123_label("-a").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("a.b-c.d").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_subdomain("hello_pod").is_err());
        assert!(dns1035_label("hello-svc").is_ok());
        assert!(dns1035_label("1svc").is_err());
        assert!(dns1035_label("a.b").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("Example.com/x").is_err());
        assert!(qualified_name("/x").is_err());
        assert!(qualified_name("a/").is_err());
        assert!(qualified_name("bad key").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_x-y").is_ok());
        assert!(label_value("-v").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn port_names_and_keys() {
        assert!(port_name("http").is_ok());
        assert!(port_name("web-8080").is_ok());
        assert!(port_name("8080").is_err());
        assert!(port_name("a--b").is_err());
        assert!(port_name("-http").is_err());
        assert!(port_name("HTTP").is_err());
        assert!(port_name("abcdefghijklmnop").is_err());
        assert!(config_key("index.html").is_ok());
        assert!(config_key("..data").is_err());
        assert!(config_key("a/b").is_err());
        assert!(env_var_name("MY_VAR").is_ok());
        assert!(env_var_name("A=B").is_err());
        assert!(env_var_name("").is_err());
    }

    #[test]
    fn errors_say_what_the_api_server_says() {
        assert_eq!(
            dns1123_label(&"a".repeat(64)).unwrap_err().to_string(),
            "must be no more than 63 characters"
        );
        assert_eq!(
            dns1123_label("Hello").unwrap_err().to_string(),
            DNS1123_LABEL_MSG
        );
        assert_eq!(
            qualified_name("Example.com/x").unwrap_err().to_string(),
            format!("prefix part {DNS1123_SUBDOMAIN_MSG}")
        );
        assert_eq!(qualified_name("/x"), Err(NameError::EmptyPrefix));
        assert_eq!(
            port_name("8080").unwrap_err().to_string(),
            "must contain at least one letter (a-z)"
        );
        assert_eq!(
            config_key("..").unwrap_err().to_string(),
            "must not be '..'"
        );
        assert_eq!(config_key(".").unwrap_err().to_string(), "must not be '.'");
        assert_eq!(
            config_key("..data").unwrap_err().to_string(),
            "must not start with '..'"
        );
        assert!(config_key("a/b")
            .unwrap_err()
            .to_string()
            .starts_with("a valid config key must consist of alphanumeric characters"));
    }
}
