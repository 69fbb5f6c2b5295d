//! `berth volume ls --filter`: Docker's `dangling=true|false`, `name=PART`,
//! `label=KEY[=VALUE]` and `driver=NAME`. Several values of one key match any of them;
//! different keys must all match.

use super::{Volume, DRIVER};

/// A `--filter` that is not `KEY=VALUE` with a known key, or a bad `dangling` value.
#[derive(Debug, thiserror::Error)]
#[error("invalid volume filter {filter:?}: {reason}")]
pub struct FilterError {
    /// The filter as given.
    pub filter: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Parsed `--filter` values.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    dangling: Vec<bool>,
    names: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    drivers: Vec<String>,
}

impl VolumeFilter {
    /// Parses `KEY=VALUE` filters.
    pub fn parse(filters: &[String]) -> Result<Self, FilterError> {
        let mut f = VolumeFilter::default();
        for text in filters {
            let bad = |reason| FilterError {
                filter: text.clone(),
                reason,
            };
            let Some((key, value)) = text.split_once('=') else {
                return Err(bad("expected KEY=VALUE"));
            };
            match key {
                "dangling" => f.dangling.push(match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("dangling takes true or false")),
                }),
                "name" => f.names.push(value.to_string()),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "driver" => f.drivers.push(value.to_string()),
                _ => return Err(bad("keys are dangling, name, label and driver")),
            }
        }
        Ok(f)
    }

    /// Whether volume `v` (used by a container when `in_use`) passes.
    pub fn matches(&self, v: &Volume, in_use: bool) -> bool {
        (self.dangling.is_empty() || self.dangling.contains(&!in_use))
            && (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && self.labels.iter().all(|(k, want)| {
                v.labels
                    .get(k)
                    .is_some_and(|have| want.as_ref().is_none_or(|w| w == have))
            })
            && (self.drivers.is_empty() || self.drivers.iter().any(|d| d == DRIVER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str, labels: &[(&str, &str)]) -> Volume {
        Volume {
            name: name.into(),
            created: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            anonymous: false,
            container: None,
        }
    }

    fn f(filters: &[&str]) -> VolumeFilter {
        VolumeFilter::parse(&filters.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_follow_docker() {
        let db = vol("dbdata", &[("tier", "db")]);
        let web = vol("webcache", &[]);
        assert!(f(&[]).matches(&db, true));
        assert!(f(&["dangling=true"]).matches(&web, false));
        assert!(!f(&["dangling=true"]).matches(&db, true));
        assert!(f(&["dangling=false"]).matches(&db, true));
        assert!(f(&["name=data"]).matches(&db, false));
        assert!(!f(&["name=data"]).matches(&web, false));
        assert!(f(&["name=xx", "name=web"]).matches(&web, false));
        assert!(f(&["label=tier"]).matches(&db, false));
        assert!(f(&["label=tier=db"]).matches(&db, false));
        assert!(!f(&["label=tier=web"]).matches(&db, false));
        assert!(!f(&["label=tier", "name=web"]).matches(&web, false));
        assert!(f(&["driver=local"]).matches(&web, false));
        assert!(!f(&["driver=nfs"]).matches(&web, false));
        for bad in ["dangling", "dangling=maybe", "colour=red"] {
            assert!(VolumeFilter::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
