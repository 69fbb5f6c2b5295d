//! The spec's seccomp section compiled with libseccomp: default action, per-arch
//! syscall resolution, errno/kill/trap/trace/log actions and argument conditions.
//!
//! Syscall names libseccomp does not know for any architecture of the filter are
//! skipped (logged at debug level) rather than refused, as runc does: the stock Docker and
//! podman profiles list syscalls of other architectures and of newer kernels.

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

/// A compiled filter, ready to load into the kernel.
pub(super) struct Filter {
    ctx: ScmpFilterContext,
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
    /// Builds the filter for `spec` without loading it.
    pub(super) fn compile(spec: &LinuxSeccomp) -> Result<Self, ConfineError> {
        let default = action(spec.default_action(), spec.default_errno_ret())?;
        let mut ctx =
            ScmpFilterContext::new_filter(default).map_err(lib_err("create the filter"))?;
        // no_new_privs is ours to set (or not) from process.noNewPrivileges.
        ctx.set_ctl_nnp(false)
            .map_err(lib_err("leave no_new_privs to the spec"))?;
        for a in spec.architectures().iter().flatten() {
            ctx.add_arch(arch(*a)?)
                .map_err(lib_err(format!("add architecture {a}")))?;
        }
        for flag in spec.flags().iter().flatten() {
            match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
                other => {
                    tracing::warn!(flag = %other, "seccomp flag not supported, ignored");
                    Ok(())
                }
            }
            .map_err(lib_err(format!("set flag {flag}")))?;
        }
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
        Ok(Filter { ctx })
    }

    /// Loads the filter into the kernel for the calling thread (and, with
    /// `SECCOMP_FILTER_FLAG_TSYNC`, its siblings).
    pub(super) fn load(&self) -> Result<(), ConfineError> {
        self.ctx.load().map_err(lib_err("load the filter"))
    }

    /// The filter in libseccomp's readable pseudo-code, for tests and debugging.
    #[cfg(test)]
    fn pseudo_code(&self) -> String {
        let mut file = tempfile::tempfile().unwrap();
        self.ctx.export_pfc(&mut file).unwrap();
        use std::io::{Read, Seek};
        file.rewind().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn errno_rules_and_archs_compile() {
        let f = Filter::compile(&spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
                ]}"#,
        ))
        .unwrap();
        let pfc = f.pseudo_code();
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
        let f = Filter::compile(&spec(
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
        let pfc = f.pseudo_code();
        assert!(pfc.contains("$a0.lo32 == 8"), "{pfc}");
        assert!(pfc.contains("$a0.lo32 == 9"), "{pfc}");
        assert!(pfc.contains("$a1.lo32 & 0x00000002 == 2"), "{pfc}");
    }

    #[test]
    fn default_errno_and_unknown_syscalls() {
        let f = Filter::compile(&spec(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [{"names": ["read", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ))
        .unwrap();
        let pfc = f.pseudo_code();
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
            let f = Filter::compile(&serde_json::from_value(json).unwrap()).unwrap();
            let pfc = f.pseudo_code();
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
            let err = Filter::compile(&spec(json)).err().expect(json).to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction": "SCMP_ACT_EXPLODE"}"#)
                .is_err()
        );
    }
}
