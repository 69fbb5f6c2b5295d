//! `berth pull`, `push`, `login` and `logout`: talking to registries as Docker does.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use berth_image::digest::Digest;
use berth_image::manifest::PlatformSpec;
use berth_image::reference::Reference;
use berth_image::store::Store;
use berth_registry_client::auth::{config::default_config_dir, Credentials, DockerConfig};
use berth_registry_client::endpoint::{normalize_domain, Endpoint, DEFAULT_CERTS_DIR};
use berth_registry_client::progress::{BlobKind, BlobOutcome, Progress, ProgressEvent};
use berth_registry_client::pull::PullOptions;
use berth_registry_client::push::PushOptions;
use berth_registry_client::RegistryOptions;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::Globals;

/// Options every registry command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Allow plain HTTP and unverified HTTPS for this registry (host or host:port); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// Directory of per-registry CA certificates (`<host:port>/ca.crt`, like Docker's certs.d).
    #[arg(long, env = "BERTH_CERTS_DIR", default_value = DEFAULT_CERTS_DIR)]
    certs_dir: PathBuf,
    /// Docker-style daemon.json whose `insecure-registries` list is honoured too.
    #[arg(
        long,
        env = "BERTH_REGISTRY_CONFIG",
        default_value = berth_registry_client::env::DEFAULT_CONFIG
    )]
    registry_config: PathBuf,
    /// How many blobs to transfer at once.
    #[arg(long, env = "BERTH_MAX_CONCURRENT", default_value_t = 3)]
    max_concurrent: usize,
    /// Upload blobs in chunks of this many bytes (default: one stream per blob).
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Retries of a failed request before giving up.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Longest wait on the registry for a connection, response headers, a
    /// manifest, or a blob's next data (`30`, `30s`, `500ms`, `2m`); a
    /// timeout is not retried.
    #[arg(long, env = "BERTH_REGISTRY_TIMEOUT", default_value = "30s", value_parser = berth_registry_client::env::parse_timeout)]
    timeout: std::time::Duration,
}

impl RegistryArgs {
    fn options(&self) -> Result<RegistryOptions> {
        let mut insecure = self.insecure_registries.clone();
        insecure.extend(berth_registry_client::env::insecure_registries(
            &self.registry_config,
        )?);
        Ok(RegistryOptions {
            insecure_registries: insecure,
            certs_dir: self.certs_dir.clone(),
            max_concurrent_blobs: self.max_concurrent.max(1),
            max_retries: self.retries,
            upload_chunk_size: self.chunk_size,
            timeout: self.timeout,
            ..RegistryOptions::default()
        })
    }
}

/// `berth pull`.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The image to pull, e.g. `busybox`, `localhost:5000/app:1`, `name@sha256:...`.
    image: String,
    /// Platform to pick from a multi-platform image (`os/arch[/variant]`).
    #[arg(long)]
    platform: Option<String>,
    /// Print only the image name.
    #[arg(short, long)]
    quiet: bool,
    /// Store the blobs but leave unpacking layers to the first run.
    #[arg(long)]
    no_unpack: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `berth push`.
#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// The image to push, by its own name (`localhost:5000/app:1`), as `docker push`.
    image: String,
    /// Platform to push when only part of a multi-platform image is stored.
    #[arg(long)]
    platform: Option<String>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `berth login`.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The registry (default Docker Hub).
    server: Option<String>,
    /// User name.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `berth logout`.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default Docker Hub).
    server: Option<String>,
}

fn parse_platform(s: Option<&str>) -> Result<PlatformSpec> {
    let Some(s) = s else {
        return Ok(PlatformSpec::host());
    };
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(PlatformSpec {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
            Ok(PlatformSpec {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            })
        }
        _ => bail!("platform {s:?}: expected os/arch[/variant], e.g. linux/arm64"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start async runtime")
}

fn config_dir() -> Result<PathBuf> {
    Ok(default_config_dir()?)
}

/// Renders progress events: bars on a terminal, plain lines otherwise, nothing when quiet.
struct Renderer {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    sizes: Mutex<HashMap<Digest, (u64, BlobKind)>>,
    pushing: bool,
}

impl Renderer {
    fn progress(quiet: bool, pushing: bool) -> Progress {
        if quiet {
            return Progress::none();
        }
        let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
        let r = Arc::new(Renderer {
            multi,
            bars: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
            pushing,
        });
        Progress::new(move |e| r.event(e))
    }

    fn line(&self, digest: &Digest, text: &str) {
        let msg = format!("{}: {text}", digest.short());
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => println!("{msg}"),
        }
    }

    fn event(&self, e: ProgressEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match e {
            ProgressEvent::Resolved { .. } | ProgressEvent::ManifestPushed { .. } => {}
            ProgressEvent::BlobStarted { digest, kind, size } => {
                if let Ok(mut s) = self.sizes.lock() {
                    s.insert(digest.clone(), (size, kind));
                }
                if kind != BlobKind::Layer {
                    return;
                }
                match &self.multi {
                    Some(m) => {
                        let bar = m.add(ProgressBar::new(size));
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(digest.short().to_string());
                        bar.set_message(if self.pushing { "Preparing" } else { "Waiting" });
                        bars.insert(digest, bar);
                    }
                    None => {
                        drop(bars);
                        self.line(
                            &digest,
                            if self.pushing {
                                "Preparing"
                            } else {
                                "Pulling fs layer"
                            },
                        );
                    }
                }
            }
            ProgressEvent::BlobProgress { digest, done } => {
                if let Some(bar) = bars.get(&digest) {
                    bar.set_message(if self.pushing {
                        "Pushing"
                    } else {
                        "Downloading"
                    });
                    bar.set_position(done);
                }
            }
            ProgressEvent::BlobRetry {
                digest,
                offset,
                reason,
            } => {
                let text = format!("Retrying from byte {offset} ({reason})");
                match bars.get(&digest) {
                    Some(bar) => bar.set_message("Retrying"),
                    None => {
                        drop(bars);
                        self.line(&digest, &text);
                        return;
                    }
                }
                tracing::info!(%digest, "{text}");
            }
            ProgressEvent::BlobDone { digest, outcome } => {
                let kind = self
                    .sizes
                    .lock()
                    .ok()
                    .and_then(|s| s.get(&digest).map(|(_, k)| *k));
                if kind != Some(BlobKind::Layer) {
                    return;
                }
                let text = match (self.pushing, outcome) {
                    (false, BlobOutcome::Exists) => "Already exists",
                    (false, _) => "Pull complete",
                    (true, BlobOutcome::Exists) => "Layer already exists",
                    (true, BlobOutcome::Mounted) => "Mounted from another repository",
                    (true, _) => "Pushed",
                };
                match bars.remove(&digest) {
                    Some(bar) => bar.finish_with_message(text.to_string()),
                    None => {
                        drop(bars);
                        self.line(&digest, text);
                    }
                }
            }
        }
    }
}

/// `berth pull IMAGE`.
pub fn pull(g: &Globals, a: PullArgs) -> Result<()> {
    let reference =
        Reference::parse(&a.image).with_context(|| format!("invalid reference {:?}", a.image))?;
    let options = a.registry.options()?;
    let platform = parse_platform(a.platform.as_deref())?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    // A lease, not a lock: other pulls, builds and runs go on meanwhile; gc waits.
    let _lease = store.lease()?;
    if !a.quiet {
        println!(
            "{}: Pulling from {}",
            reference
                .tag()
                .map(str::to_string)
                .or_else(|| reference.digest().map(|d| d.to_string()))
                .unwrap_or_default(),
            reference.path()
        );
    }
    let progress = Renderer::progress(a.quiet, false);
    let pull_options = PullOptions {
        platform,
        unpack: !a.no_unpack,
    };
    let pulled = berth_registry_client::pull_blocking(
        &store,
        &reference,
        &options,
        &pull_options,
        &progress,
    )?;
    if !a.quiet {
        println!("Digest: {}", pulled.digest);
        if pulled.downloaded == 0 {
            println!("Status: Image is up to date for {}", reference.familiar());
        } else {
            println!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            );
        }
    }
    println!("{reference}");
    Ok(())
}

/// `berth push IMAGE`.
pub fn push(g: &Globals, a: PushArgs) -> Result<()> {
    let reference =
        Reference::parse(&a.image).with_context(|| format!("invalid reference {:?}", a.image))?;
    let options = a.registry.options()?;
    let platform = parse_platform(a.platform.as_deref())?;
    let store = Store::open(&g.root).with_context(|| format!("open store {}", g.root.display()))?;
    let _lease = store.lease()?;
    let record = store.get_image(&reference)?.with_context(|| {
        format!(
            "image {} not found: tag an image with this name first (berth tag)",
            reference.familiar()
        )
    })?;
    let transport = berth_registry_client::connect(reference.domain(), &options, &config_dir()?)?;
    if !a.quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let progress = Renderer::progress(a.quiet, true);
    let pushed = runtime()?.block_on(berth_registry_client::push::push(
        &transport,
        &store,
        &record,
        &reference,
        &PushOptions { platform },
        &progress,
    ))?;
    if a.quiet {
        println!("{}", pushed.digest);
    } else {
        let tag = reference.tag().unwrap_or("latest");
        println!("{tag}: digest: {} size: {}", pushed.digest, pushed.size);
    }
    Ok(())
}

fn server_domain(server: Option<&str>) -> String {
    normalize_domain(server.unwrap_or("docker.io"))
}

/// `berth login [SERVER]`.
pub fn login(_g: &Globals, a: LoginArgs) -> Result<()> {
    let domain = server_domain(a.server.as_deref());
    let options = a.registry.options()?;
    let endpoint = Endpoint::new(&domain, &options);
    let dir = config_dir()?;
    let mut config = DockerConfig::load(&dir)?;
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            Some(p)
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("read password from stdin")?;
            Some(s.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, false) => None,
    };
    let interactive = std::io::stdin().is_terminal();
    let creds = match (a.username, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Credentials::Basic {
            username: u,
            password: p,
        },
        (None, Some(_)) => bail!("login to {domain}: --username is required"),
        (username, None) if interactive => {
            let username = match username {
                Some(u) => u,
                None => prompt("Username: ", true)?,
            };
            let password = prompt("Password: ", false)?;
            if username.is_empty() || password.is_empty() {
                bail!("login to {domain}: user name and password must not be empty");
            }
            Credentials::Basic { username, password }
        }
        (None, None) => match config.credentials(&endpoint.auth_key())? {
            // `berth login SERVER` with stored credentials re-checks them, as docker does.
            Some(c) => c,
            None => bail!("login to {domain}: give --username and --password-stdin"),
        },
        (_, _) => bail!("login to {domain}: give the password with --password-stdin"),
    };
    let transport =
        berth_registry_client::Transport::new(endpoint.clone(), options, Some(creds.clone()))?;
    runtime()?
        .block_on(berth_registry_client::verify_login(&transport))
        .with_context(|| format!("login to {domain} failed"))?;
    config.store(&endpoint.auth_key(), &creds)?;
    config.save()?;
    let mut out = std::io::stdout();
    writeln!(out, "Login Succeeded")?;
    Ok(())
}

/// Asks on the terminal; with `echo` off the typed text is not shown (passwords).
fn prompt(label: &str, echo: bool) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    eprint!("{label}");
    std::io::stderr().flush()?;
    let saved = if echo {
        None
    } else {
        let saved = tcgetattr(&stdin).context("read terminal settings")?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn off echo")?;
        Some(saved)
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(saved) = saved {
        tcsetattr(&stdin, SetArg::TCSANOW, &saved).context("restore terminal settings")?;
        eprintln!();
    }
    read.context("read from terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `berth logout [SERVER]`.
pub fn logout(_g: &Globals, a: LogoutArgs) -> Result<()> {
    let domain = server_domain(a.server.as_deref());
    let endpoint = Endpoint::new(&domain, &RegistryOptions::default());
    let mut config = DockerConfig::load(&config_dir()?)?;
    if config.remove(&endpoint.auth_key())? {
        config.save()?;
        println!("Removing login credentials for {}", endpoint.auth_key());
    } else {
        println!("Not logged in to {}", endpoint.auth_key());
    }
    Ok(())
}
