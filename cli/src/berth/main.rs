//! `berth`: a Docker-like command line for images, containers, pods and the node daemon.
//!
//! Each command group lives in its own module; this file only parses the
//! command line, sets up logging and turns errors into one `berth: ` line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attach;
mod build;
mod containers;
mod cp;
mod daemon;
mod exec;
mod format;
mod images;
mod inspect;
mod kube;
mod kube_apply;
mod kube_output;
mod network;
mod pods;
mod port;
mod registry;
mod security;
mod snapshots;
mod system;
mod top;
mod volumes;

/// The `berth` command line.
#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A container engine: images, builds, containers, pods"
)]
struct Cli {
    /// Root of berth's store (images, layers, containers).
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    root: PathBuf,

    /// Log level for berth's own diagnostics (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "BERTH_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an image from a root filesystem tarball (like `docker import`).
    Import(images::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Show details of containers or images as JSON (or through --format).
    Inspect(inspect::InspectArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove image names (and images left without a name).
    Rmi(images::RmiArgs),
    /// Write images to a docker-archive or OCI archive.
    Save(images::SaveArgs),
    /// Load images from a docker-archive or OCI archive.
    Load(images::LoadArgs),
    /// Store maintenance: gc, check, reset.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Download an image from a registry.
    Pull(registry::PullArgs),
    /// Upload an image to a registry, under its own name.
    Push(registry::PushArgs),
    /// Log in to a registry (stores credentials in Docker's config.json).
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
    /// Build an image from a Dockerfile and a context directory.
    Build(build::BuildArgs),
    /// Unpacked layers: unpack, ls, verify.
    #[command(subcommand)]
    Snapshot(snapshots::SnapshotCommand),
    /// Run a command in a new container.
    Run(Box<containers::RunArgs>),
    /// List containers.
    Ps(containers::PsArgs),
    /// Start created or stopped containers.
    Start(attach::StartArgs),
    /// Stop, then start containers.
    Restart(attach::RestartArgs),
    /// Attach to a running container's input and output.
    Attach(attach::AttachArgs),
    /// Show the output of a container, or of a pod's container (pod/NAME, -c, -n).
    Logs(kube::LogsArgs),
    /// Stop running containers (SIGTERM, then SIGKILL).
    Stop(containers::StopArgs),
    /// Send a signal to running containers.
    Kill(containers::KillArgs),
    /// Remove containers.
    Rm(containers::RmArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(containers::WaitArgs),
    /// Manage volumes: create, ls, inspect, rm, prune.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Manage the bridge network: rm, prune.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Show the processes of a running container.
    Top(top::TopArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
    /// Show a container's published ports.
    Port(port::PortArgs),
    /// Container commands under their `docker container` names.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Run the node daemon: object store, Kubernetes-shaped API (writes a kubeconfig), controllers.
    Daemon(daemon::DaemonArgs),
    /// Create or update objects from manifests in the daemon (like `kubectl apply -f`).
    Apply(kube_apply::ApplyArgs),
    /// List or show the daemon's objects (like `kubectl get`).
    Get(kube::GetArgs),
    /// Delete the daemon's objects (like `kubectl delete`).
    Delete(kube::DeleteArgs),
    /// Show an object with its events (like `kubectl describe`).
    Describe(kube::DescribeArgs),
    /// Follow, list or undo a Deployment's rollouts: status, history, undo.
    Rollout(kube::RolloutArgs),
    /// Set the replicas of a Deployment or ReplicaSet.
    Scale(kube::ScaleArgs),
    /// Pods: containers sharing network, IPC and UTS namespaces.
    #[command(subcommand)]
    Pod(pods::PodCommand),
    /// The per-pod infra process `pod create` and `pod start` start (internal).
    #[command(name = "__pod-infra", hide = true)]
    PodInfra(pods::InfraArgs),
}

/// `berth container ...`: the same commands as at the top level.
#[derive(Subcommand)]
enum ContainerCommand {
    /// Show details of containers as JSON (or through --format).
    Inspect(inspect::InspectArgs),
    /// List containers.
    #[command(alias = "ps", alias = "list")]
    Ls(containers::PsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Show the processes of a running container.
    Top(top::TopArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
    /// Show a container's published ports.
    Port(port::PortArgs),
}

/// Global options every command needs.
struct Globals {
    root: PathBuf,
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    secure_dirs(&cli.root);
    let globals = Globals { root: cli.root };
    let g = &globals;
    match cli.command {
        Command::Import(a) => images::import(g, a).map(|()| ExitCode::SUCCESS),
        Command::Images(a) => images::images(g, a).map(|()| ExitCode::SUCCESS),
        Command::Inspect(a) => inspect::inspect(g, a),
        Command::Tag(a) => images::tag(g, a).map(|()| ExitCode::SUCCESS),
        Command::Rmi(a) => images::rmi(g, a).map(|()| ExitCode::SUCCESS),
        Command::Save(a) => images::save(g, a).map(|()| ExitCode::SUCCESS),
        Command::Load(a) => images::load(g, a).map(|()| ExitCode::SUCCESS),
        Command::System(c) => system::run(g, c),
        Command::Pull(a) => registry::pull(g, a).map(|()| ExitCode::SUCCESS),
        Command::Push(a) => registry::push(g, a).map(|()| ExitCode::SUCCESS),
        Command::Login(a) => registry::login(g, a).map(|()| ExitCode::SUCCESS),
        Command::Logout(a) => registry::logout(g, a).map(|()| ExitCode::SUCCESS),
        Command::Build(a) => build::build(g, a).map(|()| ExitCode::SUCCESS),
        Command::Snapshot(c) => snapshots::run(g, c).map(|()| ExitCode::SUCCESS),
        Command::Run(a) => containers::run(g, *a),
        Command::Ps(a) => containers::ps(g, a),
        Command::Start(a) => attach::start(g, a),
        Command::Restart(a) => attach::restart(g, a),
        Command::Attach(a) => attach::attach(g, a),
        Command::Logs(a) => kube::logs(g, a),
        Command::Stop(a) => containers::stop(g, a),
        Command::Kill(a) => containers::kill(g, a),
        Command::Rm(a) => containers::rm(g, a),
        Command::Wait(a) => containers::wait(g, a),
        Command::Volume(c) => volumes::run(g, c),
        Command::Network(c) => network::run(g, c),
        Command::Exec(a) => exec::exec(g, a),
        Command::Top(a) => top::top(g, a),
        Command::Cp(a) => cp::cp(g, a),
        Command::Port(a) => port::port(g, a),
        Command::Container(c) => match c {
            ContainerCommand::Inspect(a) => inspect::inspect(g, a),
            ContainerCommand::Ls(a) => containers::ps(g, a),
            ContainerCommand::Exec(a) => exec::exec(g, a),
            ContainerCommand::Top(a) => top::top(g, a),
            ContainerCommand::Cp(a) => cp::cp(g, a),
            ContainerCommand::Port(a) => port::port(g, a),
        },
        Command::Daemon(a) => daemon::daemon(g, a),
        Command::Apply(a) => kube_apply::apply(g, a),
        Command::Get(a) => kube::get(g, a),
        Command::Delete(a) => kube::delete(g, a),
        Command::Describe(a) => kube::describe(g, a),
        Command::Rollout(a) => kube::rollout(g, a),
        Command::Scale(a) => kube::scale(g, a),
        Command::Pod(c) => pods::run(g, c),
        Command::PodInfra(a) => pods::infra(g, a),
    }
}

/// Makes the store root owner-only (creating it) and tightens `/run/berth` if an older
/// berth left it open to other users. A user who may not do this (a kubectl-style client
/// run without root) goes on: commands that need the store fail on it with their own error.
fn secure_dirs(root: &Path) {
    if let Err(e) = berth_image::perms::private_dir(root) {
        tracing::debug!(root = %root.display(), error = %e, "cannot make the store owner-only");
    }
    let run = Path::new(berth_engine::container::control::RUN_DIR);
    if let Err(e) = berth_image::perms::tighten(run) {
        tracing::debug!(dir = %run.display(), error = %e, "cannot tighten the run directory");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_level))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}
