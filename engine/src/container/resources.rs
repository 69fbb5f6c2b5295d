//! Resource limits for a container (`--memory`, `--memory-swap`, `--cpus`, `--pids-limit`),
//! parsed the way Docker parses them and written into the OCI spec's `linux.resources`, which
//! the runtime applies to the container's cgroup (v1 or v2). As Docker, a memory limit without
//! `--memory-swap` allows as much swap again (memory + swap = twice the limit) where the host
//! can limit swap.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::volume::request::ram_in_bytes;

/// The CFS period Docker uses with `--cpus` (100 ms).
pub const CPU_PERIOD: u64 = 100_000;

/// Docker's smallest memory limit (6 MiB).
pub const MIN_MEMORY: u64 = 6 << 20;

/// Why a limit was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// Not a size.
    #[error(
        "invalid --memory {0:?}: expected a number of bytes with an optional unit (b, k, m, g)"
    )]
    MemorySyntax(String),
    /// Below Docker's minimum.
    #[error("invalid --memory {0:?}: the minimum memory limit is 6MB")]
    MemoryTooSmall(String),
    /// `--memory-swap` that is not a size or -1.
    #[error(
        "invalid --memory-swap {0:?}: expected a size with an optional unit, or -1 for unlimited"
    )]
    SwapSyntax(String),
    /// `--memory-swap` below `--memory`, or without it.
    #[error("invalid --memory-swap {0:?}: {1}")]
    SwapRange(String, &'static str),
    /// Not a positive decimal number.
    #[error("invalid --cpus {0:?}: expected a positive number such as 0.5 or 2")]
    CpusSyntax(String),
    /// More CPUs than the machine has, or less than the smallest quota.
    #[error("invalid --cpus {value:?}: the range of CPUs is from 0.01 to {available}.00, as there are only {available} CPUs available")]
    CpusRange {
        /// The value given.
        value: String,
        /// CPUs on this machine.
        available: usize,
    },
}

/// A container's limits; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (`--memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Memory plus swap in bytes (`--memory-swap`; -1 is unlimited swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// CFS quota in microseconds per [`Resources::cpu_period`] (`--cpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// Most processes at once (`--pids-limit`; 0 or negative is unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
}

impl Resources {
    /// Whether no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Resources::default()
    }

    /// Sets the memory limit from `--memory` text (`512m`, `1g`, `1048576`).
    pub fn set_memory(&mut self, text: &str) -> Result<(), ResourceError> {
        let bytes = ram_in_bytes(text).ok_or_else(|| ResourceError::MemorySyntax(text.into()))?;
        if bytes < MIN_MEMORY {
            return Err(ResourceError::MemoryTooSmall(text.into()));
        }
        self.memory = Some(bytes);
        Ok(())
    }

    /// Sets memory plus swap from `--memory-swap` text (`-1`: unlimited swap); call after
    /// [`Resources::set_memory`], which it must not be below.
    pub fn set_memory_swap(&mut self, text: &str) -> Result<(), ResourceError> {
        let swap = if text == "-1" {
            -1
        } else {
            ram_in_bytes(text)
                .and_then(|b| i64::try_from(b).ok())
                .ok_or_else(|| ResourceError::SwapSyntax(text.into()))?
        };
        let Some(memory) = self.memory else {
            return Err(ResourceError::SwapRange(
                text.into(),
                "set --memory too when limiting memory plus swap",
            ));
        };
        if swap != -1 && (swap as u64) < memory {
            return Err(ResourceError::SwapRange(
                text.into(),
                "memory plus swap must not be below --memory",
            ));
        }
        self.memory_swap = Some(swap);
        Ok(())
    }

    /// Docker's default for a memory limit without `--memory-swap`: memory plus swap twice
    /// the limit, when the host's cgroups can limit swap (`swap_limit`).
    pub fn default_swap(&mut self, swap_limit: bool) {
        if let (Some(memory), None, true) = (self.memory, self.memory_swap, swap_limit) {
            self.memory_swap = i64::try_from(memory.saturating_mul(2)).ok();
        }
    }

    /// These limits with Docker's host-dependent defaults filled in ([`Resources::default_swap`]
    /// where the host's cgroups can limit swap).
    pub fn with_host_defaults(&self) -> Resources {
        let mut r = self.clone();
        r.default_swap(host_limits_swap());
        r
    }

    /// Sets quota and period from `--cpus` text: `0.5` is 50000 of every 100000 µs.
    pub fn set_cpus(&mut self, text: &str) -> Result<(), ResourceError> {
        let cpus: f64 = text
            .parse()
            .ok()
            .filter(|c: &f64| c.is_finite() && *c > 0.0)
            .ok_or_else(|| ResourceError::CpusSyntax(text.into()))?;
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let quota = (cpus * CPU_PERIOD as f64).round() as i64;
        if cpus > available as f64 || quota < 1000 {
            return Err(ResourceError::CpusRange {
                value: text.into(),
                available,
            });
        }
        self.cpu_quota = Some(quota);
        self.cpu_period = Some(CPU_PERIOD);
        Ok(())
    }

    /// Sets `--pids-limit`; 0 or negative leaves it unlimited, as Docker does.
    pub fn set_pids_limit(&mut self, limit: i64) {
        self.pids_limit = (limit > 0).then_some(limit);
    }

    /// Adds these limits to an OCI spec's `linux.resources`.
    pub fn apply_to_spec(&self, spec: &mut Value) {
        let resources = &mut spec["linux"]["resources"];
        if let Some(m) = self.memory {
            resources["memory"] = json!({"limit": m});
            if let Some(swap) = self.memory_swap {
                resources["memory"]["swap"] = json!(swap);
            }
        }
        if let (Some(q), Some(p)) = (self.cpu_quota, self.cpu_period) {
            resources["cpu"] = json!({"quota": q, "period": p});
        }
        if let Some(p) = self.pids_limit {
            resources["pids"] = json!({"limit": p});
        }
    }
}

/// Whether the host's memory cgroup can limit swap: v1 with swap accounting
/// (`memory.memsw.*`), or a v2 tree with the memory controller.
fn host_limits_swap() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_like_docker() {
        let mut r = Resources::default();
        assert!(r.is_unlimited());
        r.set_memory("64m").unwrap();
        assert_eq!(r.memory, Some(64 << 20));
        r.set_cpus("0.5").unwrap();
        assert_eq!((r.cpu_quota, r.cpu_period), (Some(50_000), Some(100_000)));
        r.set_pids_limit(42);
        assert_eq!(r.pids_limit, Some(42));
        r.set_pids_limit(-1);
        assert_eq!(r.pids_limit, None);

        let mut spec = json!({"linux": {"resources": {"devices": []}}});
        r.set_pids_limit(7);
        r.default_swap(true);
        r.apply_to_spec(&mut spec);
        assert_eq!(spec["linux"]["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 7);
        assert!(spec["linux"]["resources"]["devices"].is_array());
    }

    #[test]
    fn bad_limits_are_refused() {
        let mut r = Resources::default();
        for bad in ["", "lots", "-5m", "1x"] {
            assert!(
                matches!(r.set_memory(bad), Err(ResourceError::MemorySyntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            r.set_memory("1k"),
            Err(ResourceError::MemoryTooSmall(_))
        ));
        for bad in ["", "0", "-1", "x", "nan"] {
            assert!(r.set_cpus(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            r.set_memory_swap("64m"),
            Err(ResourceError::SwapRange(..))
        ));
        assert!(matches!(
            r.set_cpus("100000"),
            Err(ResourceError::CpusRange { .. })
        ));
        assert!(r.is_unlimited());
        r.default_swap(true);
        assert!(r.is_unlimited());
    }

    #[test]
    fn swap_follows_docker() {
        let mut r = Resources::default();
        r.set_memory("64m").unwrap();
        assert!(r.set_memory_swap("32m").is_err());
        assert!(r.set_memory_swap("lots").is_err());
        r.set_memory_swap("-1").unwrap();
        r.default_swap(true);
        assert_eq!(r.memory_swap, Some(-1));
        r.set_memory_swap("1g").unwrap();
        assert_eq!(r.memory_swap, Some(1 << 30));
        let mut r = Resources::default();
        r.set_memory("64m").unwrap();
        r.default_swap(false);
        assert_eq!(r.memory_swap, None);
    }
}
