//! The spec's seccomp section compiled with libseccomp: default action, per-arch
//! syscall resolution, errno/kill/trap/trace/log actions and argument conditions.
//!
//! Syscall names libseccomp does not know for any architecture of the filter are
//! skipped (logged at debug level) rather than refused, as runc does: the stock Docker and
//! podman profiles list syscalls of other architectures and of newer kernels.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::ConfineError;

/// Syscalls take at most six arguments.
const MAX_ARGS: usize = 6;

/// A compiled filter: the BPF program and the `SECCOMP_FILTER_FLAG_*` to install it with.
pub(super) struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// First line of a cached program; a format change changes it.
const CACHE_MAGIC: &[u8] = b"berth seccomp bpf 2\n";

/// What a compiled program depends on: the spec as JSON, libseccomp's version and the
/// native architecture. A cached program is used only if its recorded key is this one.
fn cache_key(spec: &LinuxSeccomp) -> Result<Vec<u8>, ConfineError> {
    let mut key = serde_json::to_vec(spec)
        .map_err(|e| invalid(format!("cannot serialize the seccomp section: {e}")))?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_default();
    key.extend_from_slice(format!("\nlibseccomp {version} {}", std::env::consts::ARCH).as_bytes());
    Ok(key)
}

fn cache_file(dir: &Path, key: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> ConfineError {
    move |source| ConfineError::SeccompIo { what, source }
}

/// The instructions of a raw BPF program (`struct sock_filter`s in native byte order).
fn program_of(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || bytes.len() % 8 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

fn bytes_of(program: &[libc::sock_filter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.extend_from_slice(&[i.jt, i.jf]);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// Whether `path` is ours alone to write: a program someone else could have written
/// is never installed.
fn owned_by_us(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path)
        .is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0)
}

/// The program cached under `dir` for `key`, if one is there, was made for this key and
/// nobody but us could have written it.
fn cached(dir: &Path, key: &[u8]) -> Option<Vec<libc::sock_filter>> {
    let path = cache_file(dir, key);
    if !owned_by_us(dir) || !owned_by_us(&path) {
        return None;
    }
    let data = fs::read(path).ok()?;
    let rest = data.strip_prefix(CACHE_MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    let (recorded, program) = (rest.get(..len)?, rest.get(len..)?);
    (recorded == key).then(|| program_of(program)).flatten()
}

/// Stores `program` for `key` under `dir` (owner-only), written aside and renamed.
fn store(dir: &Path, key: &[u8], program: &[libc::sock_filter]) -> Result<(), ConfineError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("create cache {}", dir.display())))?;
    let path = cache_file(dir, key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let len = u32::try_from(key.len()).map_err(|_| invalid("seccomp section too large"))?;
    let mut data = CACHE_MAGIC.to_vec();
    data.extend_from_slice(&len.to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(&bytes_of(program));
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&data))
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(format!("write cache {}", path.display()))(e)
        })
}

/// The `SECCOMP_FILTER_FLAG_*` the spec's flags ask for.
fn install_flags(spec: &LinuxSeccomp) -> libc::c_ulong {
    let mut flags = 0;
    for flag in spec.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            other => {
                tracing::warn!(flag = %other, "seccomp flag not supported, ignored");
                0
            }
        };
    }
    flags
}

fn lib_err(
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> ConfineError {
    let what = what.into();
    move |source| ConfineError::Seccomp { what, source }
}

fn invalid(reason: impl Into<String>) -> ConfineError {
    ConfineError::InvalidSeccomp(reason.into())
}

/// The libseccomp action for a spec action; errno and trace default to EPERM as in runc.
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction, ConfineError> {
    let errno = match errno_ret {
        Some(e) => i32::try_from(e)
            .ok()
            .filter(|e| *e <= i32::from(u16::MAX))
            .ok_or_else(|| invalid(format!("errnoRet {e} is out of range")))?,
        None => libc::EPERM,
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(invalid(
                "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which is not supported",
            ))
        }
    })
}

fn arch(arch: Arch) -> Result<ScmpArch, ConfineError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        other => {
            return Err(invalid(format!(
                "architecture {other} is not supported by this libseccomp"
            )))
        }
    })
}

fn condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, ConfineError> {
    let index = arg.index();
    if index >= MAX_ARGS {
        return Err(invalid(format!(
            "argument index {index} is out of range (syscalls take {MAX_ARGS} arguments)"
        )));
    }
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // (arg & value) == valueTwo
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return Ok(ScmpArgCompare::new(
                index as u32,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ))
        }
    };
    Ok(ScmpArgCompare::new(index as u32, op, arg.value()))
}

fn is_syscall_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Filter {
    /// Builds the filter for `spec` without loading it, taking the program from `cache`
    /// when it was compiled there before (and storing it there when not).
    pub(super) fn compile(spec: &LinuxSeccomp, cache: Option<&Path>) -> Result<Self, ConfineError> {
        let flags = install_flags(spec);
        let key = match cache {
            Some(_) => Some(cache_key(spec)?),
            None => None,
        };
        if let (Some(dir), Some(key)) = (cache, &key) {
            if let Some(program) = cached(dir, key) {
                return Ok(Filter { program, flags });
            }
        }
        let program = export(&context(spec)?)?;
        if let (Some(dir), Some(key)) = (cache, &key) {
            // A cache that cannot be written only costs the next start a compile.
            if let Err(e) = store(dir, key, &program) {
                tracing::debug!(error = %e, "seccomp program not cached");
            }
        }
        Ok(Filter { program, flags })
    }

    /// Installs the filter on the calling thread (and, with `SECCOMP_FILTER_FLAG_TSYNC`,
    /// its siblings).
    pub(super) fn load(&self) -> Result<(), ConfineError> {
        crate::sys::seccomp::install_filter(&self.program, self.flags)
            .map_err(io_err("install the filter".into()))
    }
}

/// The program libseccomp generates for `ctx`.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, ConfineError> {
    let mut file = fs::File::from(
        nix::sys::memfd::memfd_create(
            c"seccomp-bpf",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .map_err(|e| io_err("memfd for the program".into())(e.into()))?,
    );
    ctx.export_bpf(&mut file)
        .map_err(lib_err("export the program"))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .map_err(io_err("read the exported program".into()))?;
    program_of(&bytes).ok_or_else(|| invalid("libseccomp exported an empty or torn program"))
}

/// The libseccomp context for `spec`: every rule added, nothing generated yet.
fn context(spec: &LinuxSeccomp) -> Result<ScmpFilterContext, ConfineError> {
    {
        let default = action(spec.default_action(), spec.default_errno_ret())?;
        let mut ctx =
            ScmpFilterContext::new_filter(default).map_err(lib_err("create the filter"))?;
        // no_new_privs is ours to set (or not) from process.noNewPrivileges.
        ctx.set_ctl_nnp(false)
            .map_err(lib_err("leave no_new_privs to the spec"))?;
        // A binary tree of syscall numbers instead of one comparison per rule: shorter
        // runs for every syscall the container makes, and for the kernel's check of the
        // filter at install. Older libseccomp lacks it and keeps the list.
        if let Err(e) = ctx.set_ctl_optimize(2) {
            tracing::debug!(error = %e, "libseccomp cannot optimize the filter into a tree");
        }
        for a in spec.architectures().iter().flatten() {
            ctx.add_arch(arch(*a)?)
                .map_err(lib_err(format!("add architecture {a}")))?;
        }
        // The spec's flags are given to seccomp(2) when the program is installed.
        for rule in spec.syscalls().iter().flatten() {
            let act = action(rule.action(), rule.errno_ret())?;
            let args = rule.args().as_deref().unwrap_or_default();
            let conditions = args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
            // Several conditions on one argument cannot be ANDed by libseccomp;
            // then each becomes its own rule (OR), as runc does.
            let mut seen = [0u8; MAX_ARGS];
            for a in args {
                seen[a.index()] += 1;
            }
            let separate = seen.iter().any(|n| *n > 1);
            for name in rule.names() {
                if !is_syscall_name(name) {
                    return Err(invalid(format!("{name:?} is not a syscall name")));
                }
                if act == default {
                    continue; // libseccomp refuses rules that repeat the default action
                }
                let Ok(syscall) = ScmpSyscall::from_name(name) else {
                    tracing::debug!(syscall = %name, "syscall unknown to libseccomp, rule skipped");
                    continue;
                };
                let add = |ctx: &mut ScmpFilterContext, conds: &[ScmpArgCompare]| {
                    if conds.is_empty() {
                        ctx.add_rule(act, syscall)
                    } else {
                        ctx.add_rule_conditional(act, syscall, conds)
                    }
                    .map_err(lib_err(format!("add rule for {name}")))
                };
                if separate {
                    for c in &conditions {
                        add(&mut ctx, std::slice::from_ref(c))?;
                    }
                } else {
                    add(&mut ctx, &conditions)?;
                }
            }
        }
        Ok(ctx)
    }
}

/// The filter for a spec in libseccomp's readable pseudo-code, for tests.
#[cfg(test)]
fn pseudo_code(spec: &LinuxSeccomp) -> Result<String, ConfineError> {
    let ctx = context(spec)?;
    let mut file = tempfile::tempfile().unwrap();
    ctx.export_pfc(&mut file).unwrap();
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn errno_rules_and_archs_compile() {
        let pfc = pseudo_code(&spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
                ]}"#,
        ))
        .unwrap();
        assert!(pfc.contains("filter for arch x86_64"), "{pfc}");
        assert!(pfc.contains("filter for arch x86 "), "{pfc}");
        assert!(pfc.contains("filter for arch x32"), "{pfc}");
        assert!(pfc.contains("mkdirat"), "{pfc}");
        assert!(pfc.contains("ERRNO(13)"), "{pfc}");
        assert!(pfc.contains("KILL_PROCESS"), "{pfc}");
        // A rule with the default action is dropped rather than refused.
        assert!(!pfc.contains("getpid"), "{pfc}");
    }

    #[test]
    fn conditions_on_distinct_args_are_anded_and_repeated_args_ored() {
        let pfc = pseudo_code(&spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                  {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                            {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}
                ]}"#,
        ))
        .unwrap();
        assert!(pfc.contains("$a0.lo32 == 8"), "{pfc}");
        assert!(pfc.contains("$a0.lo32 == 9"), "{pfc}");
        assert!(pfc.contains("$a1.lo32 & 0x00000002 == 2"), "{pfc}");
    }

    #[test]
    fn default_errno_and_unknown_syscalls() {
        let pfc = pseudo_code(&spec(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [{"names": ["read", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        assert!(pfc.contains("ERRNO(38)"), "{pfc}");
        assert!(pfc.contains("read"), "{pfc}");
    }

    #[test]
    fn dockers_default_profile_compiles_whole() {
        let default: Vec<String> = crate::spec::DOCKER_DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        for bounding in [default, crate::spec::all_capabilities()] {
            let json = crate::seccomp::docker_default(&bounding).unwrap();
            let spec: LinuxSeccomp = serde_json::from_value(json).unwrap();
            let pfc = pseudo_code(&spec).unwrap();
            assert!(Filter::compile(&spec, None).unwrap().program.len() > 100);
            assert!(pfc.contains("ERRNO(1)"), "{pfc}");
            assert!(pfc.contains("socket"), "{pfc}");
        }
    }

    #[test]
    fn invalid_specs_are_refused_with_a_reason() {
        let cases = [
            (r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "SCMP_ACT_NOTIFY"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 6",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["Read!"], "action": "SCMP_ACT_ERRNO"}]}"#,
                "not a syscall name",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_M68K"]}"#,
                "architecture",
            ),
        ];
        for (json, want) in cases {
            let err = Filter::compile(&spec(json), None)
                .err()
                .expect(json)
                .to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#)
                .is_err()
        );
    }

    #[test]
    fn a_compiled_program_is_cached_and_used_only_for_its_own_spec() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("seccomp");
        let a = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let b = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        let fresh = Filter::compile(&a, Some(&cache)).unwrap();
        let files: Vec<_> = fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let key = cache_key(&a).unwrap();
        let hit = cached(&cache, &key).expect("the program is cached");
        assert_eq!(bytes_of(&hit), bytes_of(&fresh.program));
        assert_eq!(
            bytes_of(&Filter::compile(&a, Some(&cache)).unwrap().program),
            bytes_of(&fresh.program)
        );
        // Another spec is never served the first one's program.
        assert!(cached(&cache, &cache_key(&b).unwrap()).is_none());
        let other = Filter::compile(&b, Some(&cache)).unwrap();
        assert_ne!(bytes_of(&other.program), bytes_of(&fresh.program));
        // A file whose recorded key differs (a hash collision, a torn write) is not used.
        let path = cache_file(&cache, &key);
        let mut data = fs::read(&path).unwrap();
        let at = CACHE_MAGIC.len() + 4;
        data[at] ^= 1;
        fs::write(&path, &data).unwrap();
        assert!(cached(&cache, &key).is_none());
        fs::write(&path, &data[..data.len() - 3]).unwrap();
        assert!(cached(&cache, &key).is_none());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
