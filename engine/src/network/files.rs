//! The per-container `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, generated here and
//! bind-mounted into the container by whoever builds its spec.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Errors generating or writing the files.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The hostname is not a valid RFC 1123 host name.
    #[error("hostname {0:?}: use letters, digits, '-' and '.', at most 63 characters per label and 253 in all")]
    Hostname(String),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Nameservers used when the host lists only loopback ones, which a container cannot reach
/// (e.g. systemd-resolved's 127.0.0.53), as Docker does.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Checks a host name (RFC 1123).
pub fn validate_hostname(name: &str) -> Result<(), FilesError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(FilesError::Hostname(name.to_string()));
    }
    Ok(())
}

/// `/etc/hostname`: the name and a newline.
pub fn hostname(name: &str) -> Result<String, FilesError> {
    validate_hostname(name)?;
    Ok(format!("{name}\n"))
}

/// `/etc/hosts`: loopback entries, the container's own address (when it has one) under its
/// host name, then `extra` entries (e.g. `--add-host`, or the other containers of a pod).
pub fn hosts(
    name: &str,
    ip: Option<Ipv4Addr>,
    extra: &[(String, Ipv4Addr)],
) -> Result<String, FilesError> {
    validate_hostname(name)?;
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    match ip {
        Some(ip) => out.push_str(&format!("{ip}\t{name}\n")),
        None => out.push_str(&format!("127.0.1.1\t{name}\n")),
    }
    for (host, addr) in extra {
        validate_hostname(host)?;
        out.push_str(&format!("{addr}\t{host}\n"));
    }
    Ok(out)
}

/// `/etc/resolv.conf` for a container in its own network namespace: the host's file without
/// loopback nameservers (unreachable from the container), falling back to public resolvers
/// when none remain. A container on the host network should get the host's file unchanged.
pub fn resolv_conf(host_resolv: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host_resolv.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let loopback = words.next().is_none_or(|addr| {
                addr.parse::<std::net::IpAddr>()
                    .map(|a| a.is_loopback())
                    .unwrap_or(false)
            });
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for server in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {server}\n"));
        }
    }
    out
}

/// Writes `hosts`, `resolv.conf` and `hostname` into `dir` (each atomically, by rename) and
/// returns their paths in that order, ready to bind-mount over the container's `/etc` files.
pub fn write_all(
    dir: &Path,
    hosts: &str,
    resolv_conf: &str,
    hostname: &str,
) -> Result<[PathBuf; 3], FilesError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FilesError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut paths = [PathBuf::new(), PathBuf::new(), PathBuf::new()];
    for (slot, (name, content)) in paths.iter_mut().zip([
        ("hosts", hosts),
        ("resolv.conf", resolv_conf),
        ("hostname", hostname),
    ]) {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(content.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        *slot = path;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_container() {
        let h = hosts(
            "web",
            Some(Ipv4Addr::new(10, 88, 0, 5)),
            &[("db".into(), Ipv4Addr::new(10, 88, 0, 6))],
        )
        .unwrap();
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("\n10.88.0.5\tweb\n"));
        assert!(h.ends_with("10.88.0.6\tdb\n"));
        let none = hosts("solo", None, &[]).unwrap();
        assert!(none.contains("127.0.1.1\tsolo\n"));
        assert!(hosts("bad_name", None, &[]).is_err());
    }

    #[test]
    fn hostname_is_validated() {
        assert_eq!(hostname("a-b.c").unwrap(), "a-b.c\n");
        for bad in ["", "-a", "a-", "a..b", "a b", &"x".repeat(64)] {
            assert!(hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        let host = "# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n";
        assert_eq!(
            resolv_conf(host),
            "# generated\nsearch example.com\nnameserver 10.0.0.2\noptions edns0\n"
        );
        let only_local = "nameserver 127.0.0.53\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(only_local),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn writes_all_three() {
        let dir = tempfile::tempdir().unwrap();
        let [h, r, n] = write_all(dir.path(), "H\n", "R\n", "N\n").unwrap();
        assert_eq!(std::fs::read_to_string(h).unwrap(), "H\n");
        assert_eq!(std::fs::read_to_string(r).unwrap(), "R\n");
        assert_eq!(std::fs::read_to_string(n).unwrap(), "N\n");
    }
}
