//! Building and running the application: connect the stores, load the secrets, bind the
//! listener (port 0 works, for tests), spawn the background tasks that the settings enable
//! (persister, expiry loop, campaign refresher), and stop gracefully: in-flight requests
//! drain, then the background tasks are cancelled and the persister drains the outbox as
//! far as the shutdown timeout allows.
//!
//! [`app`] is the ONE builder of the actix `App`: body limits, error handlers, request ids,
//! tracing, metrics and the per-IP rate limit apply to every route.

use crate::auth::AdminKeys;
use crate::extract::{self, BodyLimits};
use crate::metrics::{self, Metrics};
use crate::rate_limit::{self, RateLimiters};
use crate::secrets::{self, Secrets};
use crate::settings::Settings;
use crate::state::{AppState, CampaignCache, Keys};
use crate::{routes, telemetry};
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::Verifier;
use voucher_core::Clock;
use voucher_store::persister::{Persister, PersisterConfig};
use voucher_store::HotStore;

/// The running service: an HTTP server plus its background tasks.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Stops an [`Application`] from outside (tests, the binary's signal handling).
#[derive(Clone)]
pub struct ShutdownHandle {
    server: ServerHandle,
    tasks: CancellationToken,
}

impl ShutdownHandle {
    /// A handle stopping `server`, then cancelling `tasks` (also used by the redemption service).
    pub fn new(server: ServerHandle, tasks: CancellationToken) -> ShutdownHandle {
        ShutdownHandle { server, tasks }
    }

    /// Graceful stop: refuse new connections, let in-flight requests finish (up to
    /// `server.shutdown_timeout_secs`); `run_until_stopped` then stops the background tasks.
    pub async fn stop(&self) {
        self.server.stop(true).await;
        self.tasks.cancel();
    }
}

impl Application {
    /// Builds the application from its settings: secrets from `settings.secrets_dir`,
    /// stores connected, cache loaded, listener bound, background tasks started. Does not
    /// migrate the database (the `serve` and `migrate` commands do).
    ///
    /// # Errors
    /// Missing secrets, unreachable stores, a port in use.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let secrets = secrets::load(&settings.secrets_dir)
            .with_context(|| format!("loading secrets from {}", settings.secrets_dir.display()))?;
        let state = build_state(settings, clock, secrets).await?;
        Application::from_state(state).await
    }

    /// Builds the application around a ready state (stores connected, secrets loaded).
    ///
    /// # Errors
    /// A port in use.
    pub async fn from_state(state: AppState) -> anyhow::Result<Application> {
        let settings = state.settings.clone();
        if let Err(e) = state.refresh_campaigns().await {
            tracing::warn!("initial campaign load failed, the refresher will retry: {e}");
        }
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!("binding {}:{}", settings.server.host, settings.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let server_state = state.clone();
        let server = HttpServer::new(move || app(server_state.clone()))
            .workers(settings.workers())
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .listen(listener)?
            .run();
        let shutdown = CancellationToken::new();
        let tasks = spawn_background(&state, &shutdown);
        tracing::info!(port, "issuance listening");
        Ok(Application {
            port,
            server,
            state,
            shutdown,
            tasks,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests reach PostgreSQL and Redis through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// A handle that stops the application gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            server: self.server.handle(),
            tasks: self.shutdown.clone(),
        }
    }

    /// Serves until stopped (a [`ShutdownHandle`], SIGINT or SIGTERM), then stops the
    /// background tasks and waits for them (the persister drains) up to the shutdown timeout.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.shutdown.cancel();
        let grace = Duration::from_secs(self.state.settings.server.shutdown_timeout_secs.max(1));
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background tasks did not stop within {grace:?}");
        }
        tracing::info!("issuance stopped");
        Ok(served?)
    }
}

/// Connects the stores and assembles the state.
///
/// # Errors
/// Unreachable stores, unusable keys.
pub async fn build_state(
    settings: Settings,
    clock: Arc<dyn Clock>,
    secrets: Secrets,
) -> anyhow::Result<AppState> {
    let pg = voucher_store::pg::connect(settings.postgres_url(), settings.postgres.max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    let hot = HotStore::connect(settings.redis_url(), &settings.redis.prefix)
        .await
        .context("connecting to Redis")?;
    let voucher_verifier = Verifier::new(secrets.voucher_public).context("voucher public keys")?;
    let idp_verifier =
        Verifier::new(secrets.idp_public).context("identity provider public keys")?;
    let dynamic_codes = DynamicCodes::new(
        secrets.dynamic_code_secret.expose_secret(),
        settings.dynamic_code.step_secs,
    )
    .context("dynamic code settings")?;
    let metrics = Metrics::new().context("registering metrics")?;
    Ok(AppState {
        limiters: Arc::new(RateLimiters::new(&settings.rate_limits)),
        identities: Arc::new(crate::auth::IdentityCache::new(
            settings.identity_cache_entries,
        )),
        settings: Arc::new(settings),
        pg,
        hot,
        clock,
        keys: Arc::new(Keys {
            voucher_signing: secrets.voucher_signing,
            voucher_verifier,
            idp_verifier,
        }),
        dynamic_codes: Arc::new(dynamic_codes),
        admins: Arc::new(AdminKeys::new(&secrets.admin_keys)),
        metrics,
        campaigns: CampaignCache::default(),
    })
}

/// The actix application: every route with every cross-cutting concern.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let settings = &state.settings.server;
    let limits = BodyLimits {
        json: settings.json_limit_bytes,
        csv: settings.csv_limit_bytes,
    };
    App::new()
        .app_data(limits)
        .app_data(
            web::JsonConfig::default()
                .limit(limits.json)
                .error_handler(extract::json_error_handler),
        )
        .app_data(web::PathConfig::default().error_handler(extract::path_error_handler))
        .app_data(web::QueryConfig::default().error_handler(extract::query_error_handler))
        .app_data(web::Data::from(state.limiters.clone()))
        .app_data(web::Data::new(state.metrics.clone()))
        .app_data(web::Data::new(state.clone()))
        .configure(routes::configure)
        .default_service(web::to(extract::not_found))
        // Middleware runs outermost-last: tracing → request id header → metrics → IP limit.
        .wrap(from_fn(rate_limit::per_ip))
        .wrap(from_fn(metrics::track::<Metrics>))
        .wrap(from_fn(telemetry::request_id_header))
        .wrap(TracingLogger::default())
}

fn spawn_background(state: &AppState, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
    let settings = &state.settings;
    let mut tasks = Vec::new();
    if settings.persister.enabled {
        tasks.push(tokio::spawn(run_persister(state.clone(), shutdown.clone())));
    }
    if settings.expiry.enabled {
        tasks.push(tokio::spawn(run_expiry(state.clone(), shutdown.clone())));
    }
    if settings.campaigns_refresh_ms > 0 {
        tasks.push(tokio::spawn(run_refresher(state.clone(), shutdown.clone())));
    }
    tasks
}

/// The persister's settings.
pub fn persister_config(settings: &Settings) -> PersisterConfig {
    PersisterConfig {
        consumer: settings.persister_consumer(),
        batch: settings.persister.batch,
        block: Duration::from_millis(settings.persister.block_ms),
        claim_idle: Duration::from_millis(settings.persister.claim_idle_ms),
    }
}

/// Runs the persister until `shutdown`, then drains what is left (bounded by the shutdown
/// timeout in [`Application::run_until_stopped`]).
pub async fn run_persister(state: AppState, shutdown: CancellationToken) {
    let config = persister_config(&state.settings);
    let persister = || {
        Persister::new(state.pg.clone(), state.hot.clone(), config.clone())
            .with_metrics(state.metrics.store.clone())
    };
    persister().run(shutdown).await;
    match persister().drain().await {
        Ok(n) => tracing::info!(events = n, "persister drained on shutdown"),
        Err(e) => {
            tracing::warn!("persister drain on shutdown failed (the outbox keeps the rest): {e}")
        }
    }
}

async fn run_expiry(state: AppState, shutdown: CancellationToken) {
    let every = Duration::from_secs(state.settings.expiry.interval_secs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = state.clock.now();
        match voucher_store::expiry::run_once(
            &state.pg,
            &state.hot,
            now,
            state.settings.expiry.batch,
        )
        .await
        {
            Ok(report) if report.expired > 0 || report.recycled > 0 => {
                tracing::info!(
                    expired = report.expired,
                    recycled = report.recycled,
                    "expiry pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("expiry pass failed, retrying next interval: {e}"),
        }
    }
}

async fn run_refresher(state: AppState, shutdown: CancellationToken) {
    let every = Duration::from_millis(state.settings.campaigns_refresh_ms);
    let housekeeping_every = Duration::from_secs(60);
    let mut last_housekeeping = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // Errors are logged by the instrumented refresh; the cache keeps its last content.
        let _ = state.refresh_campaigns().await;
        if last_housekeeping.elapsed() >= housekeeping_every {
            state.limiters.housekeeping();
            last_housekeeping = tokio::time::Instant::now();
        }
    }
}

/// Installs logging from the settings (idempotent).
pub fn init_telemetry(settings: &Settings) {
    telemetry::init(&settings.log);
}
