//! Statistics in runc's `events --stats` layout (`types.Stats` in runc's
//! `events` package), so tools that parse runc's output read ours.

use serde_json::{json, Map, Value};

use super::Stats;
use libcgroups::stats::{BlkioDeviceStat, MemoryData};

fn memory_entry(m: &MemoryData) -> Value {
    json!({"limit": m.limit, "usage": m.usage, "max": m.max_usage, "failcnt": m.fail_count})
}

fn blkio_entries(entries: &[BlkioDeviceStat]) -> Value {
    entries
        .iter()
        .map(|e| {
            json!({"major": e.major, "minor": e.minor,
                   "op": e.op_type.clone().unwrap_or_default(), "value": e.value})
        })
        .collect()
}

/// The `data` object of a runc `stats` event for these statistics.
pub fn runc_stats_json(stats: &Stats) -> Value {
    let cpu = &stats.cpu;
    let mem = &stats.memory;
    let raw: Map<String, Value> = mem
        .stats
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let hugetlb: Map<String, Value> = stats
        .hugetlb
        .iter()
        .map(|(size, h)| {
            (
                size.clone(),
                json!({"usage": h.usage, "max": h.max_usage, "failcnt": h.fail_count}),
            )
        })
        .collect();
    json!({
        "cpu": {
            "usage": {
                "total": cpu.usage.usage_total,
                "percpu": cpu.usage.per_core_usage_total,
                "percpu_kernel": cpu.usage.per_core_usage_kernel,
                "percpu_user": cpu.usage.per_core_usage_user,
                "kernel": cpu.usage.usage_kernel,
                "user": cpu.usage.usage_user
            },
            "throttling": {
                "periods": cpu.throttling.periods,
                "throttledPeriods": cpu.throttling.throttled_periods,
                "throttledTime": cpu.throttling.throttled_time
            }
        },
        "memory": {
            "cache": mem.cache,
            "usage": memory_entry(&mem.memory),
            "swap": memory_entry(&mem.memswap),
            "kernel": memory_entry(&mem.kernel),
            "kernelTCP": memory_entry(&mem.kernel_tcp),
            "raw": raw
        },
        "pids": {"current": stats.pids.current, "limit": stats.pids.limit},
        "blkio": {
            "ioServiceBytesRecursive": blkio_entries(&stats.blkio.service_bytes),
            "ioServicedRecursive": blkio_entries(&stats.blkio.serviced)
        },
        "hugetlb": hugetlb
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_where_runc_puts_them() {
        let mut stats = Stats::default();
        stats.memory.memory.limit = 32;
        stats.memory.memory.usage = 8;
        stats.memory.stats.insert("oom_kill".into(), 1);
        stats.pids.current = 2;
        stats.pids.limit = 10;
        stats.cpu.usage.usage_total = 100;
        stats.cpu.usage.per_core_usage_total = vec![60, 40];
        stats.cpu.throttling.throttled_periods = 3;
        stats.blkio.service_bytes.push(BlkioDeviceStat {
            major: 254,
            minor: 0,
            op_type: Some("Read".into()),
            value: 5,
        });
        let v = runc_stats_json(&stats);
        assert_eq!(v["memory"]["usage"]["limit"], 32);
        assert_eq!(v["memory"]["usage"]["usage"], 8);
        assert_eq!(v["memory"]["raw"]["oom_kill"], 1);
        assert_eq!(v["pids"]["current"], 2);
        assert_eq!(v["pids"]["limit"], 10);
        assert_eq!(v["cpu"]["usage"]["total"], 100);
        assert_eq!(v["cpu"]["usage"]["percpu"][1], 40);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(v["blkio"]["ioServiceBytesRecursive"][0]["op"], "Read");
    }
}
