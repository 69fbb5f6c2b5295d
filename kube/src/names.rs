//! The name formats Kubernetes checks: DNS-1123 labels and subdomains, DNS-1035 labels,
//! qualified names (label and annotation keys), label values, IANA port names, config keys.
//! Each returns the API server's own explanation when the value does not fit.

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

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
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    if is_dns1123_label(s) {
        Ok(())
    } else {
        Err(DNS1123_LABEL_MSG.to_string())
    }
}

/// A DNS-1123 subdomain (`example.com`, at most 253 characters): most object names.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".to_string());
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
        Err(DNS1123_SUBDOMAIN_MSG.to_string())
    }
}

/// A DNS-1035 label (`my-name`, starting with a letter): Service names.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(DNS1035_LABEL_MSG.to_string())
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
pub fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Err("prefix part must be non-empty".to_string());
        }
        dns1123_subdomain(p).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".to_string());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".to_string());
    }
    if is_name_part(name) {
        Ok(())
    } else {
        Err(QUALIFIED_NAME_MSG.to_string())
    }
}

/// A label value: empty, or up to 63 alphanumerics with `-`, `_`, `.` inside.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".to_string());
    }
    if s.is_empty() || is_name_part(s) {
        Ok(())
    } else {
        Err(LABEL_VALUE_MSG.to_string())
    }
}

/// An IANA service name (`http`, at most 15 characters, a letter somewhere, no `--`):
/// container and service port names.
pub fn port_name(s: &str) -> Result<(), String> {
    if s.len() > 15 {
        return Err("must be no more than 15 characters".to_string());
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(|&c| lower_alnum(c) || c == b'-') {
        return Err(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if s.contains("--") {
        return Err("must not contain consecutive hyphens".to_string());
    }
    if !b.iter().any(|c| c.is_ascii_lowercase()) {
        return Err("must contain at least one letter (a-z)".to_string());
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("must not begin or end with a hyphen".to_string());
    }
    Ok(())
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub fn config_key(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".to_string());
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if s == "." || s == ".." {
        return Err(format!("must not be '{s}'"));
    }
    if s.starts_with("..") {
        return Err("must not start with '..'".to_string());
    }
    Ok(())
}

/// An environment variable name: printable ASCII without `=` (Kubernetes 1.32's relaxed rule).
pub fn env_var_name(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        Ok(())
    } else {
        Err("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string())
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
}
