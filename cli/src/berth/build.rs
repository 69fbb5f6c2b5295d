//! `berth build`: a Dockerfile and context directory to an image in the store, with
//! BuildKit-style plain progress on stderr and the image id on stdout.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_builder::execute::{Build, BuildOptions};
use berth_builder::plan::PlanOptions;
use berth_builder::progress::Event;
use berth_image::archive::{self, ArchiveFormat, SaveItem};
use berth_image::manifest::PlatformSpec;
use berth_image::reference::Reference;
use berth_image::snapshot::Compression;
use berth_image::store::Store;
use clap::Parser;

use crate::registry;
use crate::Globals;

/// `berth build [OPTIONS] CONTEXT`
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name the image (repeatable).
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The stage to build (default: the last).
    #[arg(long)]
    target: Option<String>,
    /// A build argument `NAME=value` (or `NAME` to take it from the environment).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Run every step even when the cache has it.
    #[arg(long)]
    no_cache: bool,
    /// Pull base images even when the store has them.
    #[arg(long)]
    pull: bool,
    /// Also export the image: `type=oci,dest=FILE` or `type=docker,dest=FILE`.
    #[arg(short = 'o', long)]
    output: Vec<String>,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    compression: CompressionArg,
    /// Progress output (only `plain`; `quiet` prints just the image id).
    #[arg(long, default_value = "plain")]
    progress: String,
    /// Print only the image id.
    #[arg(short, long)]
    quiet: bool,
    /// The build context directory.
    context: PathBuf,
}

/// Layer compressions for `--compression`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompressionArg {
    Gzip,
    Zstd,
    Uncompressed,
}

/// `berth pull` arguments built from a name, for pulling base images.
#[derive(Parser)]
struct PullLine {
    #[command(flatten)]
    args: registry::PullArgs,
}

fn parse_output(spec: &str) -> Result<(ArchiveFormat, PathBuf)> {
    let mut kind = None;
    let mut dest = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            _ => bail!("--output {spec:?}: expected type=oci|docker,dest=FILE"),
        }
    }
    let format = match kind.as_deref() {
        Some("oci") => ArchiveFormat::OciArchive,
        Some("docker") => ArchiveFormat::DockerArchive,
        other => bail!("--output {spec:?}: unknown type {other:?}: expected oci or docker"),
    };
    let dest = dest.with_context(|| format!("--output {spec:?}: dest=FILE is required"))?;
    Ok((format, dest))
}

/// Runs `berth build`.
pub fn build(g: &Globals, a: BuildArgs) -> Result<()> {
    let outputs: Vec<(ArchiveFormat, PathBuf)> = a
        .output
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<_>>()?;
    let tags: Vec<Reference> = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<Result<_>>()?;
    let (text, name, path) = match &a.file {
        Some(f) if f == Path::new("-") => {
            let mut s = String::new();
            io::stdin()
                .read_to_string(&mut s)
                .context("reading the Dockerfile from stdin")?;
            (s, "-".to_string(), None)
        }
        Some(f) => (
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            f.display().to_string(),
            Some(f.clone()),
        ),
        None => {
            let f = a.context.join("Dockerfile");
            (
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?,
                "Dockerfile".to_string(),
                Some(f),
            )
        }
    };
    let mut build_args = BTreeMap::new();
    for arg in &a.build_args {
        match arg.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(arg) {
                Ok(v) => build_args.insert(arg.clone(), v),
                Err(_) => None,
            },
        };
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.parse::<u64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
        ),
        _ => None,
    };
    let opts = BuildOptions {
        context: a.context.clone(),
        dockerfile_text: text,
        dockerfile_name: name,
        dockerfile_path: path,
        plan: PlanOptions {
            target: a.target.clone(),
            build_args,
            ..PlanOptions::default()
        },
        no_cache: a.no_cache,
        tags,
        compression: match a.compression {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Uncompressed => Compression::None,
        },
        source_date_epoch,
        cgroup_parent: crate::containers::settings()?.cgroup_parent().to_string(),
    };
    let build = Build::prepare(opts)?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let platform = PlatformSpec::host();
    for image in build.images() {
        let have = store.resolve(&image.to_string(), &platform).is_ok();
        if a.pull || !have {
            let line = PullLine::try_parse_from(["pull", "--quiet", &image.to_string()])?;
            // stdout carries only the built image's id: pull's own lines go to stderr.
            on_stderr(|| registry::pull(g, line.args))?
                .with_context(|| format!("pulling base image {image}"))?;
        }
    }
    let quiet = a.quiet || a.progress == "quiet";
    let written = {
        let mut err = io::stderr().lock();
        let mut progress = |e: &Event| {
            if quiet {
                return;
            }
            let _ = match e {
                Event::Start { id, label } => writeln!(err, "#{id} {label}"),
                Event::Cached { id } => writeln!(err, "#{id} CACHED"),
                Event::Output { id, at, line } => {
                    writeln!(err, "#{id} {:.3} {line}", at.as_secs_f64())
                }
                Event::Done { id, took } => {
                    writeln!(err, "#{id} DONE {:.1}s", took.as_secs_f64())
                }
                Event::Note { text } => writeln!(err, "# {text}"),
            };
        };
        // A lease, not a lock: runs, pulls and other builds go on meanwhile; gc waits.
        let _lease = store.lease()?;
        build.run(&store, &mut progress)?
    };
    if !quiet {
        for t in &a.tags {
            eprintln!("# naming to {t}");
        }
    }
    if !outputs.is_empty() {
        let _lease = store.lease()?;
        let image = store.resolve_record(&written.records[0], &platform)?;
        let names: Vec<Reference> = written
            .records
            .iter()
            .filter_map(|r| r.name.clone())
            .collect();
        let items = [SaveItem { image, names }];
        for (format, dest) in &outputs {
            write_archive(&store, &items, *format, dest)?;
            if !quiet {
                eprintln!("# exported to {}", dest.display());
            }
        }
    }
    println!("{}", written.id);
    Ok(())
}

/// Runs `f` with fd 1 pointing at stderr, restoring it afterwards.
fn on_stderr<T>(f: impl FnOnce() -> T) -> Result<T> {
    io::stdout().flush()?;
    let saved = io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2(io::stderr().as_raw_fd(), io::stdout().as_raw_fd())?;
    let out = f();
    let _ = io::stdout().flush();
    nix::unistd::dup2(saved.as_raw_fd(), io::stdout().as_raw_fd())?;
    Ok(out)
}

/// Writes the archive next to `dest` and renames it into place.
fn write_archive(
    store: &Store,
    items: &[SaveItem],
    format: ArchiveFormat,
    dest: &Path,
) -> Result<()> {
    let tmp = dest.with_extension(format!("berth-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        archive::save(store, items, format, &f, &dest.display().to_string())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest).with_context(|| format!("rename to {}", dest.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
