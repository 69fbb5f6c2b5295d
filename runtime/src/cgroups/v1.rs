//! cgroup v1: one hierarchy per controller (or per comounted group such as
//! `cpu,cpuacct`) under the cgroup root, the same relative path in each.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use libcgroups::common::FreezerState;
use libcgroups::stats::{
    BlkioDeviceStat, BlkioStats, CpuStats, HugeTlbStats, MemoryData, MemoryStats, PidStats, Stats,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources};

use super::{
    create_dir, read_file, read_flat_keyed, read_u64, remove_dir, write_file, CgroupError,
};

/// Device rules every container gets after those of its spec, as runc's
/// `AllowedDevices`: mknod of anything, and the standard character devices.
pub(super) const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // /dev/null
    "c 1:8 rwm",    // /dev/random
    "c 1:7 rwm",    // /dev/full
    "c 5:0 rwm",    // /dev/tty
    "c 1:5 rwm",    // /dev/zero
    "c 1:9 rwm",    // /dev/urandom
    "c 136:* rwm",  // /dev/pts/*
    "c 5:2 rwm",    // /dev/ptmx
    "c 10:200 rwm", // /dev/net/tun
];

/// One mounted v1 hierarchy and this cgroup's directory in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// Controllers attached to it (`cpu`, `cpuacct`, ... or `systemd` for `name=systemd`).
    controllers: Vec<String>,
    /// The hierarchy's mount point.
    mount: PathBuf,
    /// This cgroup's directory.
    path: PathBuf,
}

/// A cgroup on a v1 host: its directory in every mounted hierarchy.
#[derive(Debug, Clone)]
pub(super) struct V1Cgroup {
    root: PathBuf,
    hierarchies: Vec<Hierarchy>,
}

impl V1Cgroup {
    /// Finds the hierarchies mounted under `root` (directories holding `cgroup.procs`;
    /// the hybrid `unified` mount carries no controllers and is left out).
    pub(super) fn new(root: &Path, inner: &Path) -> Result<Self, CgroupError> {
        let entries = fs::read_dir(root).map_err(|source| CgroupError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let mut hierarchies = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir || name == "unified" || !entry.path().join("cgroup.procs").exists() {
                continue;
            }
            let mount = entry.path();
            hierarchies.push(Hierarchy {
                controllers: name.split(',').map(str::to_owned).collect(),
                path: mount.join(inner),
                mount,
            });
        }
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy(root.to_path_buf()));
        }
        hierarchies.sort_by(|a, b| a.mount.cmp(&b.mount));
        Ok(V1Cgroup {
            root: root.to_path_buf(),
            hierarchies,
        })
    }

    fn hierarchy(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
    }

    /// This cgroup's directory for `controller`.
    pub(super) fn path(&self, controller: &str) -> Option<&Path> {
        self.hierarchy(controller).map(|h| h.path.as_path())
    }

    fn require(&self, controller: &'static str, what: &'static str) -> Result<&Path, CgroupError> {
        self.path(controller)
            .ok_or_else(|| CgroupError::MissingController {
                controller,
                what,
                root: self.root.clone(),
            })
    }

    /// (mount name, directory) for every hierarchy.
    pub(super) fn hierarchies(&self) -> Vec<(String, PathBuf)> {
        self.hierarchies
            .iter()
            .map(|h| {
                let name = h
                    .mount
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (name, h.path.clone())
            })
            .collect()
    }

    /// The directory to list processes from: pids, else memory, else any hierarchy.
    pub(super) fn pids_dir(&self) -> Option<&Path> {
        self.path("pids")
            .or_else(|| self.path("memory"))
            .or_else(|| self.hierarchies.first().map(|h| h.path.as_path()))
    }

    /// Creates the directory in every hierarchy. A new cpuset cgroup starts with
    /// empty `cpus` and `mems` (and refuses tasks), so each level inherits its parent's.
    pub(super) fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.controllers.iter().any(|c| c == "cpuset") {
                create_cpuset(&h.mount, &h.path)?;
            } else {
                create_dir(&h.path)?;
            }
        }
        Ok(())
    }

    /// Moves `pid` into this cgroup in every hierarchy.
    pub(super) fn add_task(&self, pid: Pid) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for h in &self.hierarchies {
            write_file(&h.path, "cgroup.procs", &pid)?;
        }
        Ok(())
    }

    /// Writes the limits in `r`; device rules only at creation (`with_devices`).
    pub(super) fn apply(&self, r: &LinuxResources, with_devices: bool) -> Result<(), CgroupError> {
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::InvalidResource {
                what: "unified",
                reason: "unified resources need cgroup v2, but this host uses cgroup v1".into(),
            });
        }
        if let Some(m) = r.memory() {
            self.apply_memory(m)?;
        }
        if let Some(c) = r.cpu() {
            self.apply_cpu(c)?;
        }
        if let Some(p) = r.pids() {
            let dir = self.require("pids", "pids.limit")?;
            let value = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write_file(dir, "pids.max", &value)?;
        }
        if let Some(b) = r.block_io() {
            self.apply_blkio(b)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let dir = self.require("hugetlb", "hugepageLimits")?;
            for l in limits {
                let file = format!("hugetlb.{}.limit_in_bytes", l.page_size());
                write_file(dir, &file, &l.limit().to_string())?;
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let dir = self.require("net_cls", "network.classID")?;
                write_file(dir, "net_cls.classid", &id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                let dir = self.require("net_prio", "network.priorities")?;
                let line = format!("{} {}", p.name(), p.priority());
                write_file(dir, "net_prio.ifpriomap", &line)?;
            }
        }
        if with_devices {
            if let Some(dir) = self.path("devices") {
                apply_devices(dir, r.devices().as_deref().unwrap_or_default())?;
            } else if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
                return Err(CgroupError::MissingController {
                    controller: "devices",
                    what: "devices",
                    root: self.root.clone(),
                });
            }
        }
        Ok(())
    }

    fn apply_memory(&self, m: &LinuxMemory) -> Result<(), CgroupError> {
        #[allow(deprecated)] // kernel memory limits: read only to warn about them
        let kernel = m.kernel();
        let wants_any = m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true);
        if !wants_any {
            return Ok(());
        }
        let dir = self.require("memory", "memory limits")?;
        if kernel.is_some() {
            tracing::warn!(
                "memory.kernel is obsolete since Linux 5.4 and is ignored, as runc does"
            );
        }
        // An unlimited memory limit without a swap value lifts memsw too (as
        // runc does), or the old memsw limit would still cap the group.
        let swap = match (m.limit(), m.swap()) {
            (Some(-1), None) if dir.join("memory.memsw.limit_in_bytes").exists() => Some(-1),
            (_, swap) => swap,
        };
        match (m.limit(), swap) {
            (Some(limit), Some(swap)) => {
                // The kernel insists limit <= memsw.limit at every step, so raise
                // memsw first when it grows and lower the limit first when it shrinks.
                let current = read_u64(dir, "memory.limit_in_bytes")?;
                let swap_first = swap == -1 || current < u64::try_from(swap).unwrap_or(u64::MAX);
                if swap_first {
                    write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
                    write_file(dir, "memory.limit_in_bytes", &limit.to_string())?;
                } else {
                    write_file(dir, "memory.limit_in_bytes", &limit.to_string())?;
                    write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
                }
            }
            (Some(limit), None) => write_file(dir, "memory.limit_in_bytes", &limit.to_string())?,
            (None, Some(swap)) => {
                write_file(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?
            }
            (None, None) => {}
        }
        if let Some(r) = m.reservation() {
            write_file(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(t) = m.kernel_tcp() {
            write_file(dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(CgroupError::InvalidResource {
                    what: "memory.swappiness",
                    reason: format!("{s} is above 100"),
                });
            }
            write_file(dir, "memory.swappiness", &s.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            write_file(dir, "memory.oom_control", "1")?;
        }
        Ok(())
    }

    fn apply_cpu(&self, c: &LinuxCpu) -> Result<(), CgroupError> {
        let wants_cpu = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some()
            || c.idle().is_some();
        if wants_cpu {
            let dir = self.require("cpu", "cpu limits")?;
            if let Some(s) = c.shares() {
                write_file(dir, "cpu.shares", &s.to_string())?;
            }
            // A new period can be refused while the old quota does not fit it;
            // then the quota goes first (as runc does).
            match (c.period(), c.quota()) {
                (Some(p), Some(q)) => {
                    if write_file(dir, "cpu.cfs_period_us", &p.to_string()).is_err() {
                        write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
                        write_file(dir, "cpu.cfs_period_us", &p.to_string())?;
                    } else {
                        write_file(dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
                (Some(p), None) => write_file(dir, "cpu.cfs_period_us", &p.to_string())?,
                (None, Some(q)) => write_file(dir, "cpu.cfs_quota_us", &q.to_string())?,
                (None, None) => {}
            }
            if let Some(b) = c.burst() {
                write_file(dir, "cpu.cfs_burst_us", &b.to_string())?;
            }
            if let Some(p) = c.realtime_period() {
                write_file(dir, "cpu.rt_period_us", &p.to_string())?;
            }
            if let Some(r) = c.realtime_runtime() {
                write_file(dir, "cpu.rt_runtime_us", &r.to_string())?;
            }
            if let Some(i) = c.idle() {
                write_file(dir, "cpu.idle", &i.to_string())?;
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let dir = self.require("cpuset", "cpu.cpus")?;
            write_file(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let dir = self.require("cpuset", "cpu.mems")?;
            write_file(dir, "cpuset.mems", mems)?;
        }
        Ok(())
    }

    fn apply_blkio(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        let wants_any = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|d| !d.is_empty())
            || throttles
                .iter()
                .any(|(_, d)| d.as_ref().is_some_and(|d| !d.is_empty()));
        if !wants_any {
            return Ok(());
        }
        let dir = self.require("blkio", "blockIO")?;
        // CFQ offered blkio.weight; with BFQ the file is blkio.bfq.weight.
        let weight_file =
            |plain: &'static str, bfq: &'static str| -> Result<&'static str, CgroupError> {
                if dir.join(plain).exists() {
                    Ok(plain)
                } else if dir.join(bfq).exists() {
                    Ok(bfq)
                } else {
                    Err(CgroupError::InvalidResource {
                        what: "blockIO.weight",
                        reason: format!(
                            "the kernel offers neither {plain} nor {bfq} in {}",
                            dir.display()
                        ),
                    })
                }
            };
        if let Some(w) = b.weight() {
            write_file(
                dir,
                weight_file("blkio.weight", "blkio.bfq.weight")?,
                &w.to_string(),
            )?;
        }
        if let Some(w) = b.leaf_weight() {
            write_file(dir, "blkio.leaf_weight", &w.to_string())?;
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(w) = d.weight() {
                let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device")?;
                write_file(dir, file, &format!("{}:{} {}", d.major(), d.minor(), w))?;
            }
            if let Some(w) = d.leaf_weight() {
                let line = format!("{}:{} {}", d.major(), d.minor(), w);
                write_file(dir, "blkio.leaf_weight_device", &line)?;
            }
        }
        for (file, devices) in throttles {
            for d in devices.iter().flatten() {
                write_file(
                    dir,
                    file,
                    &format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }

    /// Sets the freezer and waits for the kernel to settle in that state.
    pub(super) fn set_freezer(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.require("freezer", if frozen { "pause" } else { "resume" })?;
        let wanted = if frozen { "FROZEN" } else { "THAWED" };
        let mut state = String::new();
        // Freezing can take a while when tasks sit in uninterruptible sleep;
        // rewriting the state nudges the kernel to retry them.
        for attempt in 0..1000 {
            if attempt % 50 == 0 {
                write_file(dir, "freezer.state", wanted)?;
            }
            state = read_file(dir, "freezer.state")?;
            if state == wanted {
                return Ok(());
            }
            sleep(Duration::from_millis(1));
        }
        if frozen {
            // Do not leave the container half frozen.
            write_file(dir, "freezer.state", "THAWED")?;
        }
        Err(CgroupError::Freeze {
            path: dir.to_path_buf(),
            wanted,
            state,
        })
    }

    /// Reads the freezer state; a cgroup still freezing counts as frozen.
    pub(super) fn freezer_state(&self) -> Result<FreezerState, CgroupError> {
        let Some(dir) = self.path("freezer") else {
            return Ok(FreezerState::Undefined);
        };
        Ok(match read_file(dir, "freezer.state")?.as_str() {
            "FROZEN" | "FREEZING" => FreezerState::Frozen,
            "THAWED" => FreezerState::Thawed,
            _ => FreezerState::Undefined,
        })
    }

    /// Removes the directory in every hierarchy, trying all before reporting the first error.
    pub(super) fn remove(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        for h in &self.hierarchies {
            if let Err(e) = remove_dir(&h.path) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Collects cpu, memory, pids, blkio and hugetlb statistics.
    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let mut stats = Stats::default();
        if let Some(dir) = self.path("cpuacct") {
            stats.cpu = cpu_stats(dir, self.path("cpu"))?;
        } else if let Some(dir) = self.path("cpu") {
            stats.cpu.throttling = throttling(dir)?;
        }
        if let Some(dir) = self.path("memory") {
            stats.memory = memory_stats(dir)?;
        }
        if let Some(dir) = self.path("pids") {
            stats.pids = PidStats {
                current: read_u64(dir, "pids.current")?,
                limit: match read_u64(dir, "pids.max")? {
                    u64::MAX => 0,
                    n => n,
                },
            };
        }
        if let Some(dir) = self.path("blkio") {
            stats.blkio = blkio_stats(dir)?;
        }
        if let Some(dir) = self.path("hugetlb") {
            stats.hugetlb = hugetlb_stats(dir)?;
        }
        Ok(stats)
    }
}

/// Creates each level of a cpuset cgroup, giving empty `cpus`/`mems` the parent's values.
fn create_cpuset(mount: &Path, leaf: &Path) -> Result<(), CgroupError> {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return create_dir(leaf);
    };
    let mut dir = mount.to_path_buf();
    for part in rel.components() {
        let parent = dir.clone();
        dir.push(part);
        if !dir.exists() {
            create_dir(&dir)?;
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&dir, file)?.is_empty() {
                let inherited = read_file(&parent, file)?;
                write_file(&dir, file, &inherited)?;
            }
        }
    }
    Ok(())
}

/// Writes device allow/deny rules: the spec's in order, then the defaults.
///
/// The kernel takes one rule per write, so each of `devices.allow` and
/// `devices.deny` is opened once and written rule by rule, in order.
fn apply_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let mut allow = ControlFile::new(dir, "devices.allow");
    let mut deny = ControlFile::new(dir, "devices.deny");
    for rule in rules {
        let file = if rule.allow() { &mut allow } else { &mut deny };
        file.write(&device_rule(rule))?;
    }
    for rule in DEFAULT_ALLOWED_DEVICES {
        allow.write(rule)?;
    }
    Ok(())
}

/// A control file opened on its first write and kept open for the next ones.
struct ControlFile {
    path: PathBuf,
    file: Option<fs::File>,
}

impl ControlFile {
    fn new(dir: &Path, name: &str) -> Self {
        ControlFile {
            path: dir.join(name),
            file: None,
        }
    }

    /// Writes `value` in one write call, as the kernel reads one rule per call.
    fn write(&mut self, value: &str) -> Result<(), CgroupError> {
        let result = match &mut self.file {
            Some(f) => f.write(value.as_bytes()),
            None => fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|mut f| {
                    let n = f.write(value.as_bytes());
                    self.file = Some(f);
                    n
                }),
        };
        match result {
            Ok(n) if n == value.len() => Ok(()),
            Ok(_) => Err(CgroupError::Write {
                path: self.path.clone(),
                value: value.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::WriteZero),
            }),
            Err(source) => Err(CgroupError::Write {
                path: self.path.clone(),
                value: value.to_owned(),
                source,
            }),
        }
    }
}

/// A spec device rule in the kernel's `type major:minor access` form (`*` for absent numbers).
fn device_rule(rule: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_owned(), |n| n.to_string())
    };
    let typ = rule.typ().unwrap_or_default();
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    format!(
        "{} {}:{} {}",
        typ.as_str(),
        num(rule.major()),
        num(rule.minor()),
        access
    )
}

/// Reads `dir/file` as a number, `None` when the kernel does not offer the file.
fn opt_u64(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    if !dir.join(file).exists() {
        return Ok(None);
    }
    read_u64(dir, file).map(Some)
}

fn cpu_stats(cpuacct: &Path, cpu: Option<&Path>) -> Result<CpuStats, CgroupError> {
    let mut stats = CpuStats::default();
    stats.usage.usage_total = read_u64(cpuacct, "cpuacct.usage")?;
    let percpu = read_file(cpuacct, "cpuacct.usage_percpu")?;
    stats.usage.per_core_usage_total = percpu
        .split_ascii_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    // cpuacct.stat counts USER_HZ ticks; the stats are in nanoseconds.
    let tick_ns = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .map_or(10_000_000, |t| 1_000_000_000 / t as u64);
    for (key, ticks) in read_flat_keyed(cpuacct, "cpuacct.stat")? {
        match key.as_str() {
            "user" => stats.usage.usage_user = ticks * tick_ns,
            "system" => stats.usage.usage_kernel = ticks * tick_ns,
            _ => {}
        }
    }
    if let Some(cpu) = cpu {
        stats.throttling = throttling(cpu)?;
    }
    Ok(stats)
}

fn throttling(cpu: &Path) -> Result<libcgroups::stats::CpuThrottling, CgroupError> {
    let mut t = libcgroups::stats::CpuThrottling::default();
    for (key, value) in read_flat_keyed(cpu, "cpu.stat")? {
        match key.as_str() {
            "nr_periods" => t.periods = value,
            "nr_throttled" => t.throttled_periods = value,
            "throttled_time" => t.throttled_time = value,
            _ => {}
        }
    }
    Ok(t)
}

fn memory_data(dir: &Path, prefix: &str) -> Result<MemoryData, CgroupError> {
    let get = |name: &str| opt_u64(dir, &format!("{prefix}.{name}"));
    Ok(MemoryData {
        usage: get("usage_in_bytes")?.unwrap_or_default(),
        max_usage: get("max_usage_in_bytes")?.unwrap_or_default(),
        fail_count: get("failcnt")?.unwrap_or_default(),
        limit: get("limit_in_bytes")?.unwrap_or_default(),
    })
}

fn memory_stats(dir: &Path) -> Result<MemoryStats, CgroupError> {
    let mut stats = MemoryStats {
        memory: memory_data(dir, "memory")?,
        memswap: memory_data(dir, "memory.memsw")?,
        kernel: memory_data(dir, "memory.kmem")?,
        kernel_tcp: memory_data(dir, "memory.kmem.tcp")?,
        ..Default::default()
    };
    let map: HashMap<String, u64> = read_flat_keyed(dir, "memory.stat")?.into_iter().collect();
    stats.cache = map
        .get("total_cache")
        .or_else(|| map.get("cache"))
        .copied()
        .unwrap_or_default();
    stats.stats = map;
    stats.hierarchy = opt_u64(dir, "memory.use_hierarchy")? == Some(1);
    // memory.oom_control carries the OOM-kill count the `oom` event is built from.
    if dir.join("memory.oom_control").exists() {
        for (key, value) in read_flat_keyed(dir, "memory.oom_control")? {
            if key == "oom_kill" || key == "under_oom" {
                stats.stats.insert(key, value);
            }
        }
    }
    Ok(stats)
}

fn blkio_stats(dir: &Path) -> Result<BlkioStats, CgroupError> {
    let parse = |file: &str| -> Result<Vec<BlkioDeviceStat>, CgroupError> {
        if !dir.join(file).exists() {
            return Ok(Vec::new());
        }
        let text = read_file(dir, file)?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut it = line.split_ascii_whitespace();
                let (dev, op, value) = (it.next()?, it.next()?, it.next()?);
                let (major, minor) = dev.split_once(':')?;
                Some(BlkioDeviceStat {
                    major: major.parse().ok()?,
                    minor: minor.parse().ok()?,
                    op_type: Some(op.to_owned()),
                    value: value.parse().ok()?,
                })
            })
            .collect())
    };
    Ok(BlkioStats {
        service_bytes: parse("blkio.throttle.io_service_bytes_recursive")?,
        serviced: parse("blkio.throttle.io_serviced_recursive")?,
        ..Default::default()
    })
}

fn hugetlb_stats(dir: &Path) -> Result<HashMap<String, HugeTlbStats>, CgroupError> {
    let mut out = HashMap::new();
    let entries = fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(".usage_in_bytes"))
        else {
            continue;
        };
        let get = |field: &str| opt_u64(dir, &format!("hugetlb.{size}.{field}"));
        out.insert(
            size.to_owned(),
            HugeTlbStats {
                usage: get("usage_in_bytes")?.unwrap_or_default(),
                max_usage: get("max_usage_in_bytes")?.unwrap_or_default(),
                fail_count: get("failcnt")?.unwrap_or_default(),
            },
        );
    }
    Ok(out)
}
