//! Running a service and stopping it within a bound. A service builds its actix `Server`
//! (signals disabled: this module handles them) and spawns its background tasks (persister,
//! expiry, sweepers) with a cancellation token; [`Lifecycle::run_until_stopped`] serves
//! until SIGTERM, SIGINT or a [`ShutdownHandle`], then stops in ONE bounded time,
//! `server.shutdown_timeout_secs` from the signal: new connections are refused and
//! in-flight requests drain, then the background tasks are cancelled and get whatever is
//! left of the bound to finish (the persister drains the outbox as far as it allows). A
//! dependency that is down cannot stretch the stop: requests are bounded by their deadline
//! and tasks are abandoned at the bound.

use crate::app::Plumbing;
use crate::settings::ServerSettings;
use actix_web::dev::{Server, ServerHandle};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A running HTTP server with its background tasks.
pub struct Lifecycle {
    name: &'static str,
    port: u16,
    server: Server,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
    stop_started: Arc<Mutex<Option<Instant>>>,
}

/// Stops a [`Lifecycle`] from outside (tests, the binary's signal handling).
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    stop_started: Arc<Mutex<Option<Instant>>>,
}

impl ShutdownHandle {
    /// Graceful stop: refuse new connections, let in-flight requests finish; the lifecycle
    /// then stops the background tasks, all within the shutdown timeout.
    pub async fn stop(&self) {
        mark(&self.stop_started);
        self.server.stop(true).await;
    }
}

fn mark(started: &Mutex<Option<Instant>>) {
    let mut at = started
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    at.get_or_insert_with(Instant::now);
}

impl Lifecycle {
    /// `server` (bound to `port`, built with `.disable_signals()` and
    /// `.shutdown_timeout(shutdown_timeout)`), named `name` in the logs.
    pub fn new(name: &'static str, port: u16, server: Server, shutdown_timeout: Duration) -> Self {
        Lifecycle {
            name,
            port,
            server,
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
            shutdown_timeout,
            stop_started: Arc::default(),
        }
    }

    /// Spawns a background task; it must return soon after its token is cancelled.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task(self.cancel.clone())));
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the service.
    pub fn handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            stop_started: self.stop_started.clone(),
        }
    }

    /// Serves until stopped, then stops within the shutdown timeout (see the module doc).
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Lifecycle {
            name,
            server,
            cancel,
            tasks,
            shutdown_timeout,
            stop_started,
            ..
        } = self;
        let handle = server.handle();
        let mut server = Box::pin(server);
        let served = tokio::select! {
            served = &mut server => Some(served),
            () = wait_for_signal() => {
                tracing::info!(service = name, "stop signal received");
                mark(&stop_started);
                // Stop accepting and drain; the server future below completes when done.
                let handle = handle.clone();
                tokio::spawn(async move { handle.stop(true).await });
                None
            }
        };
        let begun = stop_started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        let deadline = begun + shutdown_timeout;
        let served = match served {
            Some(served) => served,
            None => match tokio::time::timeout_at(deadline, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    tracing::warn!(service = name, "in-flight requests did not drain in time");
                    Ok(())
                }
            },
        };
        cancel.cancel();
        let tasks = futures::future::join_all(tasks);
        if tokio::time::timeout_at(deadline, tasks).await.is_err() {
            tracing::warn!(
                service = name,
                "background tasks did not stop within {shutdown_timeout:?}; abandoned"
            );
        }
        tracing::info!(service = name, "stopped");
        served
    }
}

/// SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Waits `every`, or returns `false` when `cancel` fires first (the loop of a background
/// task: `while sleep_or_stop(&cancel, every).await { … }`).
pub async fn sleep_or_stop(cancel: &CancellationToken, every: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(every) => true,
    }
}

/// Binds `settings.host:port` (0 picks a free port), builds the HTTP server with the
/// platform's one app builder around the service's routes (`configure`, run once per
/// worker), and returns it as a [`Lifecycle`] named `name`: `settings.workers` workers,
/// actix's own signal handling off (the lifecycle handles signals), the shutdown timeout
/// bounding the stop.
///
/// # Errors
/// The address cannot be bound.
pub fn serve<F>(
    name: &'static str,
    settings: &ServerSettings,
    plumbing: Plumbing,
    configure: F,
) -> anyhow::Result<Lifecycle>
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    use anyhow::Context as _;
    let listener = std::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        let configure = configure.clone();
        crate::app::build(&plumbing, move |cfg| configure(cfg))
    })
    .workers(settings.workers())
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(service = name, port, "listening");
    Ok(Lifecycle::new(
        name,
        port,
        server,
        settings.shutdown_timeout(),
    ))
}
