//! Checks of values the plan accepts only in a known form: `--chmod` modes, EXPOSE
//! ports and STOPSIGNAL signals.

/// An octal mode up to 0o7777, or symbolic clauses such as `u+x,go-w` (`[ugoa]*[-+=][rwxXst]*`).
pub(super) fn valid_chmod(mode: &str) -> bool {
    if !mode.is_empty() && mode.chars().all(|c| c.is_digit(8)) {
        return u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o7777);
    }
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let perms = clause.trim_start_matches(['u', 'g', 'o', 'a']);
            let mut chars = perms.chars();
            matches!(chars.next(), Some('+' | '-' | '='))
                && chars.all(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't'))
        })
}

/// `port[-port][/tcp|udp|sctp]` with ports 1..=65535 (what `EXPOSE` accepts).
pub(super) fn valid_port(spec: &str) -> bool {
    let (range, proto) = match spec.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".into()),
    };
    let port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    let ports_ok = match range.split_once('-') {
        Some((lo, hi)) => port(lo) && port(hi) && lo.parse::<u16>().ok() <= hi.parse::<u16>().ok(),
        None => port(range),
    };
    ports_ok && matches!(proto.as_str(), "tcp" | "udp" | "sctp")
}

/// Linux signal names (with or without `SIG`, any case) and numbers 1..=64.
pub(super) fn valid_signal(signal: &str) -> bool {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    ];
    if let Ok(n) = signal.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if NAMES.contains(&name) || name == "SYS" {
        return true;
    }
    // SIGRTMIN+n / SIGRTMAX-n
    let rt = |prefix: &str, sep: char| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(sep)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= 30)
        })
    };
    rt("RTMIN", '+') || rt("RTMAX", '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_modes_are_octal_or_symbolic() {
        assert!(valid_chmod("0755") && valid_chmod("644") && valid_chmod("u+x,go-w"));
        assert!(valid_chmod("a=rX") && !valid_chmod("0899") && !valid_chmod("17777"));
        assert!(!valid_chmod("u*x") && !valid_chmod(""));
    }

    #[test]
    fn ports_and_signals_are_checked() {
        assert!(valid_port("80") && valid_port("53/udp") && valid_port("8000-8010/TCP"));
        assert!(!valid_port("0") && !valid_port("70000") && !valid_port("80/icmp"));
        assert!(!valid_port("90-80") && !valid_port("http"));
        assert!(valid_signal("SIGTERM") && valid_signal("kill") && valid_signal("9"));
        assert!(valid_signal("SIGRTMIN+3") && valid_signal("RTMAX"));
        assert!(!valid_signal("SIGFOO") && !valid_signal("0") && !valid_signal("65"));
    }
}
