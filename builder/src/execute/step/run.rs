//! RUN: the command (exec form, shell form or heredoc script) in a container on the
//! step's overlay, with the config's environment and user, the step's `--mount`s, the
//! host's name-resolution files unless `--network=none`, and its output reported line by
//! line.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_image::rootpath::Root;
use berth_image::users;

use super::{in_workdir, Exec, StepError};
use crate::dockerfile::{
    Command, Heredoc, Instruction, MountType, NetworkMode, RunMount, SecurityMode,
};
use crate::execute::stages::Runner;
use crate::execute::stepfs::StepFs;
use crate::execute::BuildError;
use crate::imageconfig::{ImageConfig, DEFAULT_PATH};
use crate::plan::Step;
use crate::progress::Event;
use crate::run::{self, RunSpec, StepMount};
use crate::stepcgroup;

impl Runner<'_> {
    /// Runs a RUN step's command in `sfs`; a non-zero exit fails the build.
    pub(super) fn run_command(
        &mut self,
        id: usize,
        at: &str,
        step: &Step,
        config: &ImageConfig,
        sfs: &StepFs,
    ) -> Result<(), Exec> {
        let Instruction::Run {
            command,
            heredocs,
            mounts,
            network,
            security,
            ..
        } = &step.instruction
        else {
            return Ok(());
        };
        let argv = run_argv(config, command, heredocs);
        let env = run_env(config, step);
        let user = users::process_user(&sfs.merged, &config.user()).map_err(StepError::from)?;
        let network_none = matches!(network, Some(NetworkMode::None));
        let mut sources: Vec<StepFs> = Vec::new();
        let mut step_mounts = self.step_mounts(id, step, mounts, &mut sources)?;
        if !network_none {
            step_mounts.extend(name_resolution_mounts());
        }
        let step_id = stepcgroup::step_id(id);
        let spec = RunSpec {
            cgroups_path: stepcgroup::cgroups_path(&self.build.opts.cgroup_parent, &step_id),
            id: step_id,
            rootfs: sfs.merged.clone(),
            bundle: sfs.dir.join("bundle"),
            state_root: self.scratch.join("runtime"),
            args: argv.clone(),
            env,
            cwd: step.workdir.clone(),
            user,
            network_none,
            privileged: matches!(security, Some(SecurityMode::Insecure)),
            mounts: step_mounts,
            output: sfs.dir.join("output"),
        };
        let started = Instant::now();
        let code = run::run(&spec).map_err(StepError::from)?;
        drop(sources);
        let output = fs::read(&spec.output).unwrap_or_default();
        for line in String::from_utf8_lossy(&output).lines() {
            (self.progress)(&Event::Output {
                id,
                at: started.elapsed(),
                line: line.to_string(),
            });
        }
        if code != 0 {
            return Err(Exec::Failed(Box::new(BuildError::RunFailed {
                at: at.to_string(),
                command: argv.join(" "),
                code,
            })));
        }
        Ok(())
    }

    /// The step's `--mount`s for the runtime; a `from=` stage or image is mounted into
    /// `sources`, which must outlive the run.
    fn step_mounts(
        &mut self,
        id: usize,
        step: &Step,
        mounts: &[RunMount],
        sources: &mut Vec<StepFs>,
    ) -> Result<Vec<StepMount>, StepError> {
        let mut step_mounts = Vec::new();
        for (k, (m, from)) in mounts.iter().zip(&step.mount_from).enumerate() {
            let target = in_workdir(&step.workdir, &m.target.clone().unwrap_or_default());
            match m.kind {
                MountType::Cache => step_mounts.push(self.cache_mount(m, target)?),
                MountType::Tmpfs => step_mounts.push(StepMount::Tmpfs { target }),
                MountType::Bind => {
                    let src_rel = m.source.clone().unwrap_or_else(|| "/".into());
                    let source = match from {
                        None => {
                            Root::open(self.build.ctx.root()).and_then(|r| r.host_path(&src_rel))?
                        }
                        Some(f) => {
                            let s = self.mount_source(f, &format!("step-{id}-m{k}"))?;
                            let p = Root::open(&s.merged).and_then(|r| r.host_path(&src_rel))?;
                            sources.push(s);
                            p
                        }
                    };
                    step_mounts.push(StepMount::Bind {
                        source,
                        target,
                        readonly: m.readonly != Some(false),
                    });
                }
                MountType::Secret | MountType::Ssh => {
                    return Err(StepError::Unsupported("RUN --mount=type=secret/ssh".into()))
                }
            }
        }
        Ok(step_mounts)
    }

    /// A `--mount=type=cache`: a directory of the store kept across builds, keyed by its
    /// `id` (default: the target), made with the mount's `uid`/`gid` the first time.
    fn cache_mount(&self, m: &RunMount, target: String) -> Result<StepMount, StepError> {
        let cache_id = m.id.clone().unwrap_or_else(|| target.clone());
        let dir = cache_mount_dir(self.store.root(), &cache_id);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|source| StepError::Io {
                path: dir.clone(),
                source,
            })?;
            let uid = m.uid.as_deref().and_then(|u| u.parse().ok());
            let gid = m.gid.as_deref().and_then(|g| g.parse().ok());
            let _ = std::os::unix::fs::chown(&dir, uid, gid);
        }
        Ok(StepMount::Bind {
            source: dir,
            target,
            readonly: m.readonly == Some(true),
        })
    }
}

/// Where the cache mount `id` lives under the store root.
fn cache_mount_dir(store_root: &Path, id: &str) -> PathBuf {
    store_root
        .join("cache")
        .join("mounts")
        .join(berth_image::digest::Digest::sha256_of(id.as_bytes()).hex())
}

/// The host's `/etc/resolv.conf` and `/etc/hosts`, read-only, where they exist.
fn name_resolution_mounts() -> Vec<StepMount> {
    ["/etc/resolv.conf", "/etc/hosts"]
        .into_iter()
        .filter(|f| Path::new(f).is_file())
        .map(|f| StepMount::Bind {
            source: PathBuf::from(f),
            target: f.into(),
            readonly: true,
        })
        .collect()
}

/// The environment of a RUN: the config's, then declared ARGs and proxy args the config
/// does not set, and a default `PATH`.
fn run_env(config: &ImageConfig, step: &Step) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let cfg_env = config.env();
    for (k, v) in &cfg_env {
        env.push(format!("{k}={v}"));
    }
    for (k, v) in step.args.iter().chain(&step.proxy) {
        if !cfg_env.iter().any(|(ek, _)| ek == k) {
            env.push(format!("{k}={v}"));
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// The argv of a RUN: exec form as is; shell form through the shell; a command that is
/// only a heredoc runs the heredoc as the script, other heredocs are handed to the shell.
fn run_argv(config: &ImageConfig, command: &Command, heredocs: &[Heredoc]) -> Vec<String> {
    match (command, heredocs) {
        (Command::Shell(s), [h])
            if s.trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(['"', '\''])
                == h.name =>
        {
            if let Some(interp) = h.content.strip_prefix("#!") {
                let first = interp.lines().next().unwrap_or_default();
                let mut argv: Vec<String> = first.split_whitespace().map(str::to_string).collect();
                argv.push("-c".into());
                argv.push(h.content.clone());
                argv
            } else {
                let mut v = config.shell();
                v.push(h.content.clone());
                v
            }
        }
        (Command::Shell(s), hs) if !hs.is_empty() => {
            let mut script = s.clone();
            for h in hs {
                script.push('\n');
                script.push_str(&h.content);
                script.push_str(&h.name);
            }
            let mut v = config.shell();
            v.push(script);
            v
        }
        _ => config.argv(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::fixture::Fixture;

    fn run_parts(f: &Fixture, n: usize) -> (Step, Command, Vec<Heredoc>) {
        let step = f.steps(0).remove(n);
        let Instruction::Run {
            command, heredocs, ..
        } = &step.instruction
        else {
            panic!("not a RUN")
        };
        let (command, heredocs) = (command.clone(), heredocs.clone());
        (step, command, heredocs)
    }

    #[test]
    fn argv_of_each_run_form() {
        let f = Fixture::new(
            "FROM scratch\nRUN echo hi\nRUN [\"ls\", \"-l\"]\nRUN <<EOF\necho a\nEOF\n\
             RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<EOF\nx\nEOF\n",
            &[],
            &[],
        );
        let config = ImageConfig::scratch("linux", "amd64");
        let argv = |n| {
            let (_, command, heredocs) = run_parts(&f, n);
            run_argv(&config, &command, &heredocs)
        };
        assert_eq!(argv(0), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(argv(1), ["ls", "-l"]);
        assert_eq!(argv(2), ["/bin/sh", "-c", "echo a\n"]);
        assert_eq!(
            argv(3),
            [
                "/usr/bin/env",
                "python3",
                "-c",
                "#!/usr/bin/env python3\nprint(1)\n"
            ]
        );
        assert_eq!(argv(4), ["/bin/sh", "-c", "cat <<EOF\nx\nEOF"]);
    }

    #[test]
    fn env_is_the_config_then_args_and_proxies_then_a_default_path() {
        let f = Fixture::new("FROM scratch\nARG A=arg E=arg\nRUN x\n", &[], &[])
            .with_build_arg("http_proxy", "p");
        let (step, _, _) = run_parts(&f, 1);
        let mut config = ImageConfig::scratch("linux", "amd64");
        config.set_env("E", "env");
        assert_eq!(
            run_env(&config, &step),
            [
                "E=env",
                "A=arg",
                "http_proxy=p",
                &format!("PATH={DEFAULT_PATH}")
            ]
        );
        config.set_env("PATH", "/bin");
        assert_eq!(
            run_env(&config, &step),
            ["E=env", "PATH=/bin", "A=arg", "http_proxy=p"]
        );
    }

    #[test]
    fn mounts_of_a_run_step() {
        let me = nix::unistd::getuid().as_raw();
        let f = Fixture::new(
            &format!(
                "FROM scratch\nWORKDIR /w\nRUN --mount=type=cache,target=c,uid={me} \
                 --mount=type=tmpfs,target=/t --mount=type=bind,source=src,target=s x\n\
                 RUN --mount=type=secret,id=s x\n"
            ),
            &[("src/f", "x")],
            &[],
        );
        let steps = f.steps(0);
        let Instruction::Run { mounts, .. } = &steps[1].instruction else {
            panic!("not a RUN")
        };
        let mut progress = |_: &Event| {};
        let mut runner = f.runner(&mut progress);
        let mut sources = Vec::new();
        let got = runner
            .step_mounts(2, &steps[1], mounts, &mut sources)
            .unwrap();
        let cache_dir = cache_mount_dir(f.store.root(), "/w/c");
        assert_eq!(
            got,
            [
                StepMount::Bind {
                    source: cache_dir.clone(),
                    target: "/w/c".into(),
                    readonly: false,
                },
                StepMount::Tmpfs {
                    target: "/t".into()
                },
                StepMount::Bind {
                    source: f.ctx.path().join("src"),
                    target: "/w/s".into(),
                    readonly: true,
                },
            ]
        );
        assert!(cache_dir.is_dir() && sources.is_empty());
        let Instruction::Run { mounts, .. } = &steps[2].instruction else {
            panic!("not a RUN")
        };
        let err = runner
            .step_mounts(3, &steps[2], mounts, &mut sources)
            .unwrap_err();
        assert!(matches!(err, StepError::Unsupported(_)));
    }

    #[test]
    fn cache_mount_dirs_are_per_id_and_host_files_read_only() {
        let root = Path::new("/store");
        assert_eq!(cache_mount_dir(root, "a"), cache_mount_dir(root, "a"));
        assert_ne!(cache_mount_dir(root, "a"), cache_mount_dir(root, "b"));
        assert!(cache_mount_dir(root, "a").starts_with("/store/cache/mounts"));
        for m in name_resolution_mounts() {
            let StepMount::Bind {
                source,
                target,
                readonly,
            } = m
            else {
                panic!("not a bind")
            };
            assert!(readonly && source == Path::new(&target));
        }
    }
}
