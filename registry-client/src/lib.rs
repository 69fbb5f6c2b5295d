//! A client for registries that speak the distribution API: pull, push and login with Docker Hub semantics.
//!
//! [`transport::Transport`] owns authentication, token refresh and retries for
//! one registry, so [`pull`] and [`push`] only speak the distribution API.
//! [`connect`] builds a transport for a registry with the user's credentials
//! from Docker's `config.json`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod endpoint;
pub mod env;
pub mod progress;
pub mod pull;
pub mod push;
mod schedule;
pub mod transport;

pub use endpoint::{Endpoint, RegistryOptions};
pub use progress::{Progress, ProgressEvent};
pub use transport::{Transport, TransportError};

/// Errors from setting up a connection to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Docker's config or a credential helper failed.
    #[error(transparent)]
    Config(#[from] auth::ConfigError),
    /// The transport could not be built.
    #[error(transparent)]
    Transport(Box<TransportError>),
}

impl From<TransportError> for ConnectError {
    fn from(e: TransportError) -> Self {
        ConnectError::Transport(Box::new(e))
    }
}

/// A transport for the registry `domain` (as written in a reference), using
/// the credentials stored for it in `<config_dir>/config.json`.
pub fn connect(
    domain: &str,
    options: &RegistryOptions,
    config_dir: &std::path::Path,
) -> Result<Transport, ConnectError> {
    let endpoint = Endpoint::new(domain, options);
    let credentials = auth::DockerConfig::load(config_dir)?.credentials(&endpoint.auth_key())?;
    tracing::debug!(registry = %endpoint.host, has_credentials = credentials.is_some(), "connecting");
    Ok(Transport::new(endpoint, options.clone(), credentials)?)
}

/// Errors from [`pull_blocking`].
#[derive(Debug, thiserror::Error)]
pub enum PullImageError {
    /// Docker's config could not be found or read.
    #[error(transparent)]
    Config(#[from] auth::ConfigError),
    /// The registry could not be set up.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The pull failed.
    #[error(transparent)]
    Pull(#[from] pull::PullError),
    /// The async runtime for the transfer could not be started.
    #[error("cannot start the runtime for the pull: {0}")]
    Runtime(std::io::Error),
}

/// Pulls `reference` into `store` for a synchronous caller (`berth pull`, the
/// builder's `FROM`, `berth run` of a missing image): connects with the user's
/// Docker credentials and runs the transfer on a private two-thread runtime.
/// Must not be called from inside an async runtime. The caller holds a lease
/// on the store ([`berth_image::store::Store::lease`]) until the pull returns.
pub fn pull_blocking(
    store: &berth_image::store::Store,
    reference: &berth_image::reference::Reference,
    options: &RegistryOptions,
    pull_options: &pull::PullOptions,
    progress: &Progress,
) -> Result<pull::Pulled, PullImageError> {
    let config_dir = auth::config::default_config_dir()?;
    let transport = connect(reference.domain(), options, &config_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PullImageError::Runtime)?;
    Ok(runtime.block_on(pull::pull(
        &transport,
        store,
        reference,
        pull_options,
        progress,
    ))?)
}

/// Checks credentials against a registry: pings it and, when it asks for
/// authentication, obtains a token (or makes a Basic request) with them.
pub async fn verify_login(transport: &Transport) -> Result<(), TransportError> {
    transport.base().await?;
    let req = transport::Request::new(reqwest::Method::GET, "/v2/", "", Vec::new());
    transport.send_ok(&req).await?;
    Ok(())
}
