//! cgroup v2: one unified tree; controllers are enabled for children through
//! each ancestor's `cgroup.subtree_control`, and v1-style values from the spec
//! are converted (cpu shares to weight, blkio weight to io weight, memsw to swap).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use libcgroups::common::FreezerState;
use libcgroups::stats::{
    BlkioDeviceStat, BlkioStats, CpuStats, MemoryData, MemoryStats, PidStats, Stats,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::{create_dir, read_file, read_flat_keyed, read_u64, write_file, CgroupError};

/// Controllers we enable for the container's subtree when the parent offers them.
const WANTED_CONTROLLERS: &[&str] = &["cpu", "cpuset", "io", "memory", "pids", "hugetlb"];

/// Whether `root` is a cgroup v2 mount (its root carries `cgroup.controllers`).
pub(super) fn is_unified_root(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// A cgroup in the unified hierarchy.
#[derive(Debug, Clone)]
pub(super) struct V2Cgroup {
    root: PathBuf,
    path: PathBuf,
}

impl V2Cgroup {
    pub(super) fn new(root: &Path, inner: &Path) -> Self {
        V2Cgroup {
            root: root.to_path_buf(),
            path: root.join(inner),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates every missing level, enabling the wanted controllers in each
    /// ancestor's `cgroup.subtree_control` so the leaf gets its control files.
    pub(super) fn create(&self) -> Result<(), CgroupError> {
        let Ok(rel) = self.path.strip_prefix(&self.root) else {
            return create_dir(&self.path);
        };
        let mut dir = self.root.clone();
        for part in rel.components() {
            let available = read_file(&dir, "cgroup.controllers")?;
            let enabled = read_file(&dir, "cgroup.subtree_control")?;
            for c in WANTED_CONTROLLERS {
                let offered = available.split_ascii_whitespace().any(|a| a == *c);
                let already = enabled.split_ascii_whitespace().any(|a| a == *c);
                if offered && !already {
                    // A controller may be offered but not delegable (e.g. cpuset in
                    // some setups); the limits that need it fail later with a clear path.
                    if let Err(e) = write_file(&dir, "cgroup.subtree_control", &format!("+{c}")) {
                        tracing::debug!(error = %e, "controller not enabled");
                    }
                }
            }
            dir.push(part);
            if !dir.exists() {
                create_dir(&dir)?;
            }
        }
        Ok(())
    }

    pub(super) fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        write_file(&self.path, "cgroup.procs", &pid.to_string())
    }

    /// Writes the limits in `r`, converting v1-style values to their v2 files.
    pub(super) fn apply(&self, r: &LinuxResources, with_devices: bool) -> Result<(), CgroupError> {
        let dir = self.path.as_path();
        if let Some(m) = r.memory() {
            apply_memory(dir, m)?;
        }
        if let Some(c) = r.cpu() {
            apply_cpu(dir, c)?;
        }
        if let Some(p) = r.pids() {
            let value = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write_file(dir, "pids.max", &value)?;
        }
        if let Some(b) = r.block_io() {
            apply_io(dir, b)?;
        }
        for l in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.max", l.page_size());
            write_file(dir, &file, &l.limit().to_string())?;
        }
        for (file, value) in r.unified().iter().flatten() {
            if file.contains('/') || file.starts_with('.') {
                return Err(CgroupError::InvalidResource {
                    what: "unified",
                    reason: format!("{file:?} is not a control file name"),
                });
            }
            write_file(dir, file, value)?;
        }
        if with_devices && r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            // cgroup v2 filters devices with an eBPF program, which this runtime
            // does not load yet; the device nodes themselves are still limited to the spec's.
            tracing::warn!("device cgroup rules are not enforced on cgroup v2");
        }
        Ok(())
    }

    pub(super) fn set_freezer(&self, frozen: bool) -> Result<(), CgroupError> {
        let wanted = if frozen { "1" } else { "0" };
        write_file(&self.path, "cgroup.freeze", wanted)?;
        let mut state = String::new();
        for _ in 0..1000 {
            state = read_flat_keyed(&self.path, "cgroup.events")?
                .into_iter()
                .find(|(k, _)| k == "frozen")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            if state == wanted {
                return Ok(());
            }
            sleep(Duration::from_millis(1));
        }
        if frozen {
            write_file(&self.path, "cgroup.freeze", "0")?;
        }
        Err(CgroupError::Freeze {
            path: self.path.clone(),
            wanted: if frozen { "frozen" } else { "thawed" },
            state,
        })
    }

    pub(super) fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        if !self.path.join("cgroup.freeze").exists() {
            return Ok(FreezerState::Undefined);
        }
        Ok(match read_file(&self.path, "cgroup.freeze")?.as_str() {
            "1" => FreezerState::Frozen,
            "0" => FreezerState::Thawed,
            _ => FreezerState::Undefined,
        })
    }

    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let dir = self.path.as_path();
        let mut stats = Stats::default();
        if dir.join("cpu.stat").exists() {
            stats.cpu = cpu_stats(dir)?;
        }
        if dir.join("memory.current").exists() {
            stats.memory = memory_stats(dir)?;
        }
        if dir.join("pids.current").exists() {
            stats.pids = PidStats {
                current: read_u64(dir, "pids.current")?,
                limit: match read_u64(dir, "pids.max")? {
                    u64::MAX => 0,
                    n => n,
                },
            };
        }
        if dir.join("io.stat").exists() {
            stats.blkio = io_stats(dir)?;
        }
        Ok(stats)
    }
}

fn apply_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let as_max = |v: i64| {
        if v < 0 {
            "max".to_owned()
        } else {
            v.to_string()
        }
    };
    // The spec's swap is memory+swap (v1's memsw); v2 limits swap alone.
    if let Some(swap) = m.swap() {
        let value = match (swap, m.limit()) {
            (-1, _) | (_, Some(-1)) => "max".to_owned(),
            (swap, Some(limit)) if swap >= limit => (swap - limit).to_string(),
            (swap, Some(limit)) => {
                return Err(CgroupError::InvalidResource {
                    what: "memory.swap",
                    reason: format!("memory+swap {swap} is below the memory limit {limit}"),
                })
            }
            (_, None) => {
                return Err(CgroupError::InvalidResource {
                    what: "memory.swap",
                    reason: "cgroup v2 needs memory.limit set together with memory.swap".into(),
                })
            }
        };
        write_file(dir, "memory.swap.max", &value)?;
    }
    if let Some(limit) = m.limit() {
        write_file(dir, "memory.max", &as_max(limit))?;
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.low", &as_max(r))?;
    }
    if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) || m.kernel_tcp().is_some()
    {
        tracing::warn!("memory swappiness, disableOOMKiller and kernelTCP do not exist on cgroup v2 and are ignored");
    }
    Ok(())
}

/// cpu.shares (2..=262144) to cpu.weight (1..=10000), the conversion runc and crun use.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

fn apply_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        return Err(CgroupError::InvalidResource {
            what: "cpu.realtimeRuntime",
            reason: "realtime scheduling limits do not exist on cgroup v2".into(),
        });
    }
    if let Some(weight) = c.shares().map(shares_to_weight).filter(|w| *w > 0) {
        write_file(dir, "cpu.weight", &weight.to_string())?;
    }
    if c.quota().is_some() || c.period().is_some() {
        let current = read_file(dir, "cpu.max")?;
        let mut fields = current.split_ascii_whitespace();
        let old_quota = fields.next().unwrap_or("max").to_owned();
        let old_period = fields.next().unwrap_or("100000").to_owned();
        let quota = match c.quota() {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_owned(),
            None => old_quota,
        };
        let period = c.period().map_or(old_period, |p| p.to_string());
        write_file(dir, "cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// blkio weight (10..=1000) to io.weight (1..=10000).
pub(super) fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

fn apply_io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // With BFQ the v1 weight scale is kept in io.bfq.weight.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight() {
        if bfq {
            write_file(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write_file(
                dir,
                "io.weight",
                &format!("default {}", blkio_weight_to_io(w)),
            )?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let (file, value) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io(w))
            };
            write_file(dir, file, &format!("{}:{} {}", d.major(), d.minor(), value))?;
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, devices) in throttles {
        for d in devices.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_owned()
            } else {
                d.rate().to_string()
            };
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", d.major(), d.minor()),
            )?;
        }
    }
    Ok(())
}

fn cpu_stats(dir: &Path) -> Result<CpuStats, CgroupError> {
    let mut stats = CpuStats::default();
    for (key, value) in read_flat_keyed(dir, "cpu.stat")? {
        match key.as_str() {
            "usage_usec" => stats.usage.usage_total = value * 1000,
            "user_usec" => stats.usage.usage_user = value * 1000,
            "system_usec" => stats.usage.usage_kernel = value * 1000,
            "nr_periods" => stats.throttling.periods = value,
            "nr_throttled" => stats.throttling.throttled_periods = value,
            "throttled_usec" => stats.throttling.throttled_time = value * 1000,
            _ => {}
        }
    }
    Ok(stats)
}

fn memory_stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let opt = |file: &str| -> Result<u64, CgroupError> {
        if dir.join(file).exists() {
            read_u64(dir, file)
        } else {
            Ok(0)
        }
    };
    let map: HashMap<String, u64> = read_flat_keyed(dir, "memory.stat")?.into_iter().collect();
    let mut stats = MemoryStats {
        memory: MemoryData {
            usage: read_u64(dir, "memory.current")?,
            max_usage: opt("memory.peak")?,
            limit: read_u64(dir, "memory.max")?,
            fail_count: 0,
        },
        memswap: MemoryData {
            usage: opt("memory.swap.current")?,
            limit: opt("memory.swap.max")?,
            ..Default::default()
        },
        cache: map.get("file").copied().unwrap_or_default(),
        hierarchy: true,
        stats: map,
        ..Default::default()
    };
    if dir.join("memory.events").exists() {
        for (key, value) in read_flat_keyed(dir, "memory.events")? {
            if key == "oom_kill" || key == "oom" || key == "max" {
                if key == "max" {
                    stats.memory.fail_count = value;
                }
                stats.stats.insert(format!("events.{key}"), value);
            }
        }
    }
    Ok(stats)
}

fn io_stats(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let text = read_file(dir, "io.stat")?;
    let mut stats = BlkioStats::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        for kv in fields {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut stats.service_bytes, "Read"),
                "wbytes" => (&mut stats.service_bytes, "Write"),
                "rios" => (&mut stats.serviced, "Read"),
                "wios" => (&mut stats.serviced, "Write"),
                _ => continue,
            };
            list.push(BlkioDeviceStat {
                major,
                minor,
                op_type: Some(op.to_owned()),
                value,
            });
        }
    }
    Ok(stats)
}
