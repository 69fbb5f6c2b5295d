//! `berth run`'s security flags, as Docker's: `--privileged`, `--cap-add`, `--cap-drop`,
//! `--security-opt`, `--read-only`.

use anyhow::Result;
use clap::Args;

use berth_engine::container::Security;

/// The security flags of `berth run`.
#[derive(Args, Debug, Default)]
pub struct RunSecurityArgs {
    /// Give the container every capability, every host device, a writable /sys and no
    /// seccomp filter or masked paths.
    #[arg(long)]
    privileged: bool,
    /// Add a Linux capability (NET_ADMIN, CAP_SYS_TIME, ALL; any case).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Drop a Linux capability (CHOWN, ALL, ...).
    #[arg(long = "cap-drop", value_name = "CAP")]
    cap_drop: Vec<String>,
    /// Security option: seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges[=true|false].
    #[arg(long = "security-opt", value_name = "OPT")]
    security_opt: Vec<String>,
    /// Mount the container's root filesystem read-only.
    #[arg(long = "read-only")]
    read_only: bool,
}

impl RunSecurityArgs {
    /// The container's security settings, checked.
    pub fn security(&self) -> Result<Security> {
        let mut sec = Security {
            privileged: self.privileged,
            read_only: self.read_only,
            ..Security::default()
        };
        sec.set_capabilities(&self.cap_add, &self.cap_drop)?;
        for opt in &self.security_opt {
            sec.add_security_opt(opt)?;
        }
        Ok(sec)
    }
}
