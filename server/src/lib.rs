//! # chronoscope-server — the relay, the static file server and the headless labs
//!
//! `chronoscope serve` binds one TCP listener and serves two things on it:
//! - the built front end (a directory produced by trunk) at `/`,
//! - the WebSocket relay at `/ws/{room}` (see [`relay`]: one actor per room, the durable op log
//!   in [`relay::store`]).
//!
//! [`services`] holds the real network services (NTP on UDP) that `chronoscope ntp` runs.
//!
//! [`run`] takes its listener and a [`Shutdown`] so tests bind `127.0.0.1:0` and drive a real
//! server; the binary (`src/main.rs`) only parses flags, reports errors in one line and wires
//! Ctrl-C to the shutdown signal.

pub mod cli;
pub mod relay;
pub mod services;

use std::{io, path::PathBuf, sync::Arc, time::Duration};

use axum::http::{header, HeaderValue};
use axum::{routing::get, serve::ListenerExt, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeader;

/// Where `chronoscope serve` finds its front end and keeps its data.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The built front end (trunk's output directory); must contain `index.html`.
    pub dist: PathBuf,
    /// Directory for the embedded database; created if missing, must be writable.
    pub data_dir: PathBuf,
    /// A connection silent this long gets a WebSocket ping; one still silent after as long
    /// again is dead (a sleeping laptop, a cut network) and is closed, so it leaves the room's
    /// presence. Browsers answer pings by themselves.
    pub keepalive: Duration,
}

/// The default [`ServeConfig::keepalive`].
pub const KEEPALIVE: Duration = Duration::from_secs(20);

/// Why the server could not start. Each message is one line a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The front-end directory is missing or has no `index.html`.
    #[error(
        "front end not found: {0} has no index.html (build it with `make dist`, or pass --dist)"
    )]
    MissingDist(PathBuf),
    /// The data directory cannot be created or written.
    #[error("data directory {path} is not writable: {source}")]
    DataDir {
        /// The directory given.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The embedded database cannot be opened.
    #[error("cannot open the database in {path}: {source}")]
    Database {
        /// The data directory.
        path: PathBuf,
        /// The underlying error.
        source: relay::store::StoreError,
    },
}

/// A clonable shutdown signal: cancel it once and the HTTP server stops accepting, and every
/// open WebSocket closes (axum's graceful shutdown alone would wait for them forever).
#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }
    /// Fire the signal.
    pub fn trigger(&self) {
        self.0.cancel()
    }
    /// Resolves once the signal has fired.
    pub async fn fired(&self) {
        self.0.cancelled().await
    }
    /// Whether the signal has fired.
    pub fn is_fired(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Check the configuration before binding anything: the front end exists and the data
/// directory is writable.
pub fn check_config(config: &ServeConfig) -> Result<(), StartError> {
    if !config.dist.join("index.html").is_file() {
        return Err(StartError::MissingDist(config.dist.clone()));
    }
    let data_err = |source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(data_err)?;
    let probe = config.data_dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(data_err)?;
    std::fs::remove_file(&probe).map_err(data_err)?;
    Ok(())
}

/// Shared state of a running server.
#[derive(Debug)]
pub struct AppState {
    /// The relay's rooms.
    pub relay: relay::Relay,
    /// Fired on shutdown; WebSocket tasks watch it.
    pub shutdown: Shutdown,
    /// See [`ServeConfig::keepalive`].
    pub keepalive: Duration,
}

/// Build the router: static files with an SPA fallback to `index.html`, and the relay.
///
/// Every static file is sent with `Cache-Control: no-cache` (the browser revalidates with the
/// `Last-Modified` the file service sends, and gets a `304` while it is unchanged): not all the
/// front end's names carry a content hash (`index.html`, the labs bundle trunk names after
/// itself), and a cached old labs bundle next to a new shell would be a broken app.
pub fn router(config: &ServeConfig, state: Arc<AppState>) -> Router {
    let index = config.dist.join("index.html");
    let files = SetResponseHeader::if_not_present(
        ServeDir::new(&config.dist).fallback(ServeFile::new(index)),
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    Router::new()
        .route("/ws/{room}", get(relay::ws_handler))
        .route("/ws", get(relay::ws_not_found))
        .route("/ws/{room}/{*rest}", get(relay::ws_not_found))
        .fallback_service(files)
        .with_state(state)
}

/// Serve until `shutdown` fires, then close every socket and return.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: Shutdown,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    check_config(&config)?;
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || relay::store::Store::open(&dir))
        .await?
        .map_err(|source| StartError::Database {
            path: config.data_dir.clone(),
            source,
        })?;
    let state = Arc::new(AppState {
        relay: relay::Relay::new(Arc::new(store), shutdown.clone()),
        shutdown: shutdown.clone(),
        keepalive: config.keepalive,
    });
    // The key-value store lab under /kv/ (its nodes' state in the data directory).
    let kv = services::kv::KvStore::open(services::kv::KvConfig {
        data_dir: Some(config.data_dir.join("kv")),
        ..services::kv::KvConfig::default()
    })?;
    let app = router(&config, state.clone()).merge(services::kv::router(kv));
    // `/metrics`: the relay's counters, Prometheus text format.
    let app = app.merge(services::metrics::router(
        services::metrics::serve_registry(state.clone(), Vec::new()),
    ));
    let sd = shutdown.clone();
    // No Nagle: a relay forwards small frames one by one, and Nagle would hold each one
    // behind the peer's delayed ACK (tens of ms a hop).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { sd.fired().await })
        .await;
    // Close the database before returning, so a restart on the same directory can open it.
    shutdown.trigger();
    let panicked = state.relay.closed().await;
    served?;
    if panicked > 0 {
        return Err(
            format!("{panicked} relay task(s) panicked during the run (see the log)").into(),
        );
    }
    Ok(())
}
