//! Health checks as Docker runs them: the image's `Healthcheck` or `--health-*` flags give a
//! test (`CMD args...` or `CMD-SHELL command`), an interval, a timeout, a start period and a
//! number of retries; the monitor runs the test in the container on that schedule and keeps
//! `State.Health` (status `starting|healthy|unhealthy`, the failing streak and the last five
//! results).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's default interval and timeout.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default number of failures in a row before `unhealthy`.
const DEFAULT_RETRIES: u32 = 3;
/// Results kept in `Health.Log`.
const KEPT_RESULTS: usize = 5;
/// Output kept per result.
pub const MAX_OUTPUT: usize = 4096;

/// A health option that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A duration such as `--health-interval 2x`.
    #[error("invalid duration {0:?}: use a number with a unit, such as 500ms, 2s, 1m30s")]
    Duration(String),
    /// The image's `Healthcheck` is not Docker's shape.
    #[error("image healthcheck: {0}")]
    Image(String),
}

/// A health check (Docker's `Config.Healthcheck`; durations in nanoseconds, 0 = default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["CMD", arg...]`, `["CMD-SHELL", command]` or `["NONE"]`.
    #[serde(default)]
    pub test: Vec<String>,
    /// Between the end of one check and the start of the next.
    #[serde(default)]
    pub interval: u64,
    /// How long one check may run.
    #[serde(default)]
    pub timeout: u64,
    /// Failures during this time after the start do not count.
    #[serde(default)]
    pub start_period: u64,
    /// Failures in a row that make the container unhealthy.
    #[serde(default)]
    pub retries: u32,
}

/// The `--health-*` and `--no-healthcheck` flags of `run`.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    /// `--health-cmd`: a shell command.
    pub cmd: Option<String>,
    /// `--health-interval`.
    pub interval: Option<Duration>,
    /// `--health-timeout`.
    pub timeout: Option<Duration>,
    /// `--health-start-period`.
    pub start_period: Option<Duration>,
    /// `--health-retries`.
    pub retries: Option<u32>,
    /// `--no-healthcheck`.
    pub disabled: bool,
}

impl HealthConfig {
    /// The check a container gets: the image's (from its raw config JSON) with the flags
    /// laid over it, as Docker merges them; `None` when there is no test or it is `NONE`.
    pub fn resolve(image_config: &[u8], flags: &HealthFlags) -> Result<Option<Self>, HealthError> {
        if flags.disabled {
            return Ok(None);
        }
        let mut check = image_healthcheck(image_config)?.unwrap_or_default();
        if let Some(cmd) = &flags.cmd {
            check.test = vec!["CMD-SHELL".into(), cmd.clone()];
        }
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(d) = flags.interval {
            check.interval = ns(d);
        }
        if let Some(d) = flags.timeout {
            check.timeout = ns(d);
        }
        if let Some(d) = flags.start_period {
            check.start_period = ns(d);
        }
        if let Some(r) = flags.retries {
            check.retries = r;
        }
        match check.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(None),
            Some("CMD" | "CMD-SHELL") if check.test.len() > 1 => Ok(Some(check)),
            Some(_) => Err(HealthError::Image(format!("unknown test {:?}", check.test))),
        }
    }

    /// The argv to run in the container.
    pub fn argv(&self) -> Vec<String> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") => {
                let mut v = vec!["/bin/sh".to_string(), "-c".to_string()];
                v.extend(self.test[1..].iter().cloned());
                v
            }
            _ => self.test.iter().skip(1).cloned().collect(),
        }
    }

    /// Between checks.
    pub fn interval(&self) -> Duration {
        nonzero(self.interval).unwrap_or(DEFAULT_INTERVAL)
    }

    /// The most one check may take.
    pub fn timeout(&self) -> Duration {
        nonzero(self.timeout).unwrap_or(DEFAULT_INTERVAL)
    }

    /// The start period.
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }

    /// Failures in a row that make the container unhealthy.
    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }
}

fn nonzero(ns: u64) -> Option<Duration> {
    (ns > 0).then(|| Duration::from_nanos(ns))
}

/// The `Healthcheck` of an image config (`config.Healthcheck` in its JSON), if any.
fn image_healthcheck(raw: &[u8]) -> Result<Option<HealthConfig>, HealthError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| HealthError::Image(e.to_string()))?;
    match value.get("config").and_then(|c| c.get("Healthcheck")) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(h) => serde_json::from_value(h.clone())
            .map(Some)
            .map_err(|e| HealthError::Image(e.to_string())),
    }
}

/// `starting`, `healthy` or `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No check has passed yet and not enough have failed.
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` checks in a row failed.
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "health: starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One check's result (Docker's `HealthcheckResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    /// When it started (RFC 3339).
    pub start: String,
    /// When it ended (RFC 3339).
    pub end: String,
    /// 0 passed; anything else failed (-1: it could not run or timed out).
    pub exit_code: i32,
    /// Its output, at most 4 KiB.
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// Where the container stands.
    pub status: HealthStatus,
    /// Failed checks in a row (outside the start period).
    pub failing_streak: u32,
    /// The last five results, oldest first.
    pub log: Vec<HealthResult>,
}

impl Health {
    /// Before the first check.
    pub fn starting() -> Self {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Takes a result in, as Docker does: a pass makes it healthy; a failure counts unless it
    /// came during the start period while still starting, and `retries` of them in a row make
    /// it unhealthy.
    pub fn record(&mut self, result: HealthResult, retries: u32, in_start_period: bool) {
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(in_start_period && self.status == HealthStatus::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(result);
        if self.log.len() > KEPT_RESULTS {
            let extra = self.log.len() - KEPT_RESULTS;
            self.log.drain(..extra);
        }
    }
}

/// A Go duration as Docker's flags take it (`300ms`, `2s`, `1m30s`, `1h`; a bare `0` is
/// zero), parsed by Go's rules; negative durations are refused, as Docker's CLI refuses them.
pub fn parse_duration(s: &str) -> Result<Duration, HealthError> {
    let ns = berth_image::duration::parse(s).map_err(|_| HealthError::Duration(s.to_string()))?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| HealthError::Duration(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i32) -> HealthResult {
        HealthResult {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("+2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("-0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("10μs").unwrap(), Duration::from_micros(10));
        for bad in ["", "5", "s", "2x", "1m30", "-1s", "3000000h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_image() {
        let image = br#"{"config":{"Healthcheck":{"Test":["CMD","true"],"Interval":5000000000,"Retries":7}}}"#;
        let from_image = HealthConfig::resolve(image, &HealthFlags::default())
            .unwrap()
            .unwrap();
        assert_eq!(from_image.argv(), vec!["true"]);
        assert_eq!(from_image.interval(), Duration::from_secs(5));
        assert_eq!(from_image.retries(), 7);
        let flags = HealthFlags {
            cmd: Some("test -e /ok".into()),
            interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let merged = HealthConfig::resolve(image, &flags).unwrap().unwrap();
        assert_eq!(merged.argv(), vec!["/bin/sh", "-c", "test -e /ok"]);
        assert_eq!(merged.interval(), Duration::from_secs(1));
        assert_eq!(merged.retries(), 7);
        let off = HealthFlags {
            disabled: true,
            ..Default::default()
        };
        assert_eq!(HealthConfig::resolve(image, &off).unwrap(), None);
        let none = br#"{"config":{"Healthcheck":{"Test":["NONE"]}}}"#;
        assert_eq!(
            HealthConfig::resolve(none, &HealthFlags::default()).unwrap(),
            None
        );
        assert_eq!(
            HealthConfig::resolve(b"{}", &HealthFlags::default()).unwrap(),
            None
        );
    }

    #[test]
    fn status_follows_docker() {
        let mut h = Health::starting();
        h.record(result(1), 2, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(result(0), 2, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        h.record(result(1), 2, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        h.record(result(1), 2, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        for _ in 0..5 {
            h.record(result(0), 2, false);
        }
        assert_eq!(h.log.len(), 5);
        assert_eq!(h.status, HealthStatus::Healthy);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["Status"], "healthy");
        assert_eq!(json["FailingStreak"], 0);
        assert!(json["Log"][0]["ExitCode"].is_number());
    }
}
