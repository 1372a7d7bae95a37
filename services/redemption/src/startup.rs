//! Building and running the application: load the secrets shared with the issuance service,
//! connect PostgreSQL and Redis, bind the listener (port 0 for tests), start the hold
//! sweeper, and stop gracefully (in-flight requests drain, then the sweeper stops).

use crate::metrics::Metrics;
use crate::rate_limit::{self, RateLimiters};
use crate::settings::Settings;
use crate::state::AppState;
use crate::{holds, routes};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use issuance::auth::AdminKeys;
use issuance::extract::{self, BodyLimits};
use secrecy::ExposeSecret as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::Verifier;
use voucher_core::Clock;

/// The running service.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Stops an [`Application`] from outside: the same handle as the issuance service's.
pub use issuance::startup::ShutdownHandle;

impl Application {
    /// Builds the application from its settings (does not migrate: `serve` and `migrate` do).
    ///
    /// # Errors
    /// Missing secrets, unreachable stores, a port in use.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let secrets = issuance::secrets::load(&settings.secrets_dir)
            .with_context(|| format!("loading secrets from {}", settings.secrets_dir.display()))?;
        let pg =
            voucher_store::pg::connect(settings.postgres_url(), settings.postgres.max_connections)
                .await
                .context("connecting to PostgreSQL")?;
        let nonces =
            voucher_store::nonces::Nonces::connect(settings.redis_url(), &settings.redis.prefix)
                .await
                .context("connecting to Redis")?;
        let verifier = Verifier::new(secrets.voucher_public).context("voucher public keys")?;
        let dynamic_codes = DynamicCodes::new(
            secrets.dynamic_code_secret.expose_secret(),
            settings.dynamic_code_step_secs,
        )
        .context("dynamic code settings")?;
        let state = AppState {
            limiters: Arc::new(RateLimiters::new(&settings.rate_limits)),
            settings: Arc::new(settings),
            pg,
            nonces,
            clock,
            verifier: Arc::new(verifier),
            dynamic_codes: Arc::new(dynamic_codes),
            admins: Arc::new(AdminKeys::new(&secrets.admin_keys)),
            metrics: Metrics::new().context("registering metrics")?,
            policies: Arc::default(),
            budgets_ready: Arc::default(),
        };
        let s = state.settings.clone();
        let listener = TcpListener::bind((s.server.host.as_str(), s.server.port))
            .with_context(|| format!("binding {}:{}", s.server.host, s.server.port))?;
        let port = listener.local_addr()?.port();
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let limits = BodyLimits {
                json: server_state.settings.server.json_limit_bytes,
                csv: 1,
            };
            App::new()
                .app_data(limits)
                .app_data(web::PathConfig::default().error_handler(extract::path_error_handler))
                .app_data(web::QueryConfig::default().error_handler(extract::query_error_handler))
                .app_data(web::Data::from(server_state.limiters.clone()))
                .app_data(web::Data::new(server_state.metrics.clone()))
                .app_data(web::Data::new(server_state.clone()))
                .configure(routes::configure)
                .default_service(web::to(extract::not_found))
                .wrap(from_fn(rate_limit::per_ip))
                .wrap(from_fn(issuance::metrics::track::<Metrics>))
                .wrap(from_fn(issuance::telemetry::request_id_header))
                .wrap(TracingLogger::default())
        })
        .workers(s.workers())
        .shutdown_timeout(s.server.shutdown_timeout_secs)
        .listen(listener)?
        .run();
        let shutdown = CancellationToken::new();
        let tasks = vec![tokio::spawn(run_housekeeping(
            state.clone(),
            shutdown.clone(),
        ))];
        tracing::info!(port, "redemption listening");
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

    /// The shared state (tests reach PostgreSQL through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// A handle that stops the application gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(self.server.handle(), self.shutdown.clone())
    }

    /// Serves until stopped (a [`ShutdownHandle`], SIGINT or SIGTERM), then stops the tasks.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.shutdown.cancel();
        let _ = futures::future::join_all(self.tasks).await;
        tracing::info!("redemption stopped");
        Ok(served?)
    }
}

/// The hold sweeper, idempotency purge and limiter housekeeping.
async fn run_housekeeping(state: AppState, shutdown: CancellationToken) {
    let every = state.settings.holds.sweep_interval_secs;
    if every == 0 {
        return;
    }
    let mut passes: u64 = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(every)) => {}
        }
        match holds::sweep_once(&state).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "expired holds released"),
            Ok(_) => {}
            Err(e) => tracing::warn!("hold sweep failed, retrying next interval: {e}"),
        }
        passes += 1;
        if passes % 100 == 0 {
            state.limiters.housekeeping();
            if let Err(e) = voucher_store::pg::redemptions::idempotency_purge(
                &state.pg,
                state.settings.idempotency.retention_hours,
            )
            .await
            {
                tracing::warn!("idempotency purge failed: {e}");
            }
        }
    }
}
