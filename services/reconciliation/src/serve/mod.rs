//! `reconciliation serve`: the finance console's HTTP service. It serves the console page at
//! `/console/` and its API at `/v1/…` (see `docs/console-api.md`), with the platform's
//! plumbing (settings, error envelope, limits, `/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`, bounded shutdown) like the other services.
//!
//! It loads one secret, `admin-keys.json` (hashed keys: who may sign in, with which role
//! and place). PostgreSQL is critical to readiness (everything is read from the record);
//! Redis only degrades it (the cross-check and the outbox lag need it, nothing else does).

pub mod audit;
pub mod error;
pub mod openapi;
pub mod overview;
pub mod routes;
pub mod session;
pub mod settings;
pub mod signin;
pub mod state;
pub mod views;

use anyhow::Context as _;
use settings::Settings;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voucher_core::Clock;
use voucher_platform::admin::AdminKeys;
use voucher_platform::app::{Deadlines, Plumbing};
use voucher_platform::extract::BodyLimits;
use voucher_platform::limit::IpLimit;
use voucher_platform::metrics::PlatformMetrics;
use voucher_platform::ops::{ApiDocument, Need, Readiness};
use voucher_platform::pages;
use voucher_platform::secrets::SecretsDir;
pub use voucher_platform::server::ShutdownHandle;
use voucher_platform::server::{self, sleep_or_stop, Lifecycle};

/// How long a readiness check waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often ended sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The running service.
pub struct Application {
    lifecycle: Lifecycle,
    state: state::State,
}

impl Application {
    /// Builds the service from its settings (does not migrate: `serve` does).
    ///
    /// # Errors
    /// Missing secrets, unreachable stores, a port in use.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let dir = SecretsDir::new(&settings.secrets_dir);
        let entries = dir
            .admin_keys()
            .with_context(|| format!("loading secrets from {}", dir.path().display()))?;
        let pg = voucher_store::pg::connect(settings.postgres.url(), settings.postgres.options())
            .await
            .context("connecting to PostgreSQL")?;
        let hot = voucher_store::HotStore::connect_with(
            settings.redis.url(),
            &settings.redis.prefix,
            settings.redis.options(),
        )
        .await
        .context("connecting to Redis")?;
        let platform = PlatformMetrics::new("reconciliation").context("registering metrics")?;
        let sessions = actix_web::web::Data::new(session::Sessions::new(
            pg.clone(),
            clock.clone(),
            settings.session.idle_secs,
            settings.session.max_secs,
        ));
        let state = state::State {
            pg: pg.clone(),
            hot: hot.clone(),
            clock: clock.clone(),
            audit: audit::Audit::new(pg.clone(), clock),
            max_outbox_lag: settings.check.max_outbox_lag,
        };
        let r = &settings.rate_limits;
        let plumbing = Plumbing {
            limits: BodyLimits {
                json: settings.server.json_limit_bytes,
                csv: settings.server.csv_limit_bytes,
            },
            ip_limit: Arc::new(IpLimit::new(
                r.ip_per_second,
                r.ip_burst,
                r.trust_forwarded_for,
            )),
            readiness: Readiness::new(READY_TIMEOUT, platform.clone())
                .check("postgres", Need::Critical, Arc::new(pg))
                .check("redis", Need::Degraded, Arc::new(hot)),
            admins: Arc::new(AdminKeys::new(&entries)),
            document: ApiDocument(Arc::new(openapi::document())),
            deadlines: Deadlines::new(settings.server.request_timeout()).route(
                routes::CHECKS,
                Duration::from_secs(settings.check.request_timeout_secs),
            ),
            scrape_hook: None,
            metrics: platform,
        };
        let app_state = actix_web::web::Data::new(state.clone());
        let keys = actix_web::web::Data::new(signin::ApiKeySignIn::new(&entries));
        let dev_idp = settings.dev_idp.enabled;
        let dev = actix_web::web::Data::new(signin::DevIdp::new(&entries));
        if dev_idp {
            tracing::warn!(
                "the dev identity provider is ON: anyone can sign in as any officer (demo only)"
            );
        }
        let page = settings.web.dir.join("console");
        let purge = sessions.clone();
        let mut lifecycle =
            server::serve("reconciliation", &settings.server, plumbing, move |cfg| {
                cfg.app_data(app_state.clone())
                    .app_data(sessions.clone())
                    .app_data(keys.clone())
                    .app_data(dev.clone());
                routes::configure(cfg, dev_idp);
                pages::configure(cfg, "/console", &page);
            })?;
        lifecycle.spawn(|cancel| purge_sessions(purge, cancel));
        Ok(Application { lifecycle, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.lifecycle.port()
    }

    /// The shared state (tests reach PostgreSQL through it).
    pub fn state(&self) -> state::State {
        self.state.clone()
    }

    /// A handle that stops the service gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.lifecycle.handle()
    }

    /// Serves until stopped (a [`ShutdownHandle`], SIGINT or SIGTERM).
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        Ok(self.lifecycle.run_until_stopped().await?)
    }
}

async fn purge_sessions(
    sessions: actix_web::web::Data<session::Sessions>,
    shutdown: CancellationToken,
) {
    while sleep_or_stop(&shutdown, PURGE_EVERY).await {
        match sessions.purge().await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "ended sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!("session purge failed, retrying next hour: {e}"),
        }
    }
}
