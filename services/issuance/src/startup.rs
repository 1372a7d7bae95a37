//! Building and running the application: load the secrets this service needs, connect the
//! stores, bind the listener (port 0 works, for tests), build the app with the platform's
//! one builder, and spawn the background tasks that the settings enable (persister, expiry
//! loop, campaign refresher). Stopping is the platform's bounded shutdown
//! ([`voucher_platform::server`]): in-flight requests drain, then the tasks are cancelled
//! and the persister drains the outbox, all within `server.shutdown_timeout_secs`.
//!
//! Readiness: claims need Redis (critical); PostgreSQL is only needed by the persister,
//! the administrators and the voucher list, so a PostgreSQL outage makes the service
//! degraded but keeps it in service. A campaign whose hot state Redis lost (`hot_state`,
//! [`crate::state::LostHotState`]) is critical too: its claims cannot be served until an
//! operator runs `reconciliation rebuild`, so the replica leaves the load balancer and
//! `/readyz` says which campaigns and why; it comes back by itself once the rebuild is done.

use crate::dev_idp::DevIdp;
use crate::identities::{Identities, IdentityCache};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::state::{AppState, CampaignCache, Keys, LostHotState};
use crate::{openapi, routes};
use actix_web::web;
use anyhow::Context;
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::Verifier;
use voucher_core::Clock;
use voucher_platform::admin::AdminKeys;
use voucher_platform::app::{Deadlines, Plumbing};
use voucher_platform::extract::BodyLimits;
use voucher_platform::limit::{IpLimit, Limiter};
use voucher_platform::metrics::PlatformMetrics;
use voucher_platform::ops::{ApiDocument, Need, Readiness};
use voucher_platform::pages;
use voucher_platform::secrets::SecretsDir;
pub use voucher_platform::server::ShutdownHandle;
use voucher_platform::server::{self, sleep_or_stop, Lifecycle};
use voucher_store::persister::{Persister, PersisterConfig};
use voucher_store::HotStore;

/// The bulk-issuance route, which has a deadline of its own.
const BULK_ROUTE: &str = "/v1/admin/campaigns/{id}/bulk-issuances";

/// How long a readiness check waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The running service: an HTTP server plus its background tasks.
pub struct Application {
    lifecycle: Lifecycle,
    state: AppState,
}

/// What the process is given besides its settings: the secrets it loads.
pub struct Loaded {
    state: AppState,
    identities: Identities,
    admins: AdminKeys,
    platform: PlatformMetrics,
    dev_idp: Option<DevIdp>,
}

impl Application {
    /// Builds the application from its settings: secrets from `settings.secrets_dir`,
    /// stores connected, cache loaded, listener bound, background tasks started. Does not
    /// migrate the database (the `serve` and `migrate` commands do).
    ///
    /// # Errors
    /// Missing secrets, unreachable stores, a port in use.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let loaded = load(settings, clock).await?;
        Application::start(loaded).await
    }

    async fn start(loaded: Loaded) -> anyhow::Result<Application> {
        let Loaded {
            state,
            identities,
            admins,
            platform,
            dev_idp,
        } = loaded;
        let settings = state.settings.clone();
        if let Err(e) = state.refresh_campaigns().await {
            tracing::warn!("initial campaign load failed, the refresher will retry: {e}");
        }
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
                .check("redis", Need::Critical, Arc::new(state.hot.clone()))
                .check("postgres", Need::Degraded, Arc::new(state.pg.clone()))
                .check(
                    "hot_state",
                    Need::Critical,
                    Arc::new(state.hot_lost.clone()),
                ),
            admins: Arc::new(admins),
            document: ApiDocument(Arc::new(openapi::document())),
            deadlines: Deadlines::new(settings.server.request_timeout()).route(
                BULK_ROUTE,
                Duration::from_secs(settings.bulk.request_timeout_secs),
            ),
            scrape_hook: None,
            metrics: platform,
        };
        let identities = web::Data::new(identities);
        let app_state = web::Data::new(state.clone());
        let dev_idp = dev_idp.map(web::Data::new);
        let page = settings.web.dir.join("resident");
        let ip_limit = plumbing.ip_limit.clone();
        let mut lifecycle = server::serve("issuance", &settings.server, plumbing, move |cfg| {
            cfg.app_data(app_state.clone())
                .app_data(identities.clone())
                .configure(routes::configure);
            if let Some(idp) = &dev_idp {
                cfg.app_data(idp.clone());
            }
            pages::configure(cfg, "/app", &page);
        })?;
        if settings.persister.enabled {
            let state = state.clone();
            lifecycle.spawn(|cancel| run_persister(state, cancel));
        }
        if settings.expiry.enabled {
            let state = state.clone();
            lifecycle.spawn(|cancel| run_expiry(state, cancel));
        }
        if settings.campaigns_refresh_ms > 0 {
            let state = state.clone();
            lifecycle.spawn(|cancel| run_refresher(state, ip_limit, cancel));
        }
        Ok(Application { lifecycle, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.lifecycle.port()
    }

    /// The shared state (tests reach PostgreSQL and Redis through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// A handle that stops the application gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.lifecycle.handle()
    }

    /// Serves until stopped (a [`ShutdownHandle`], SIGINT or SIGTERM), then stops within
    /// the shutdown timeout.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        Ok(self.lifecycle.run_until_stopped().await?)
    }
}

/// Loads the secrets the issuance service needs (the voucher signing key and the public
/// keys, the identity provider's keys, the dynamic-code secret, the administrators' keys),
/// connects the stores and assembles the state.
///
/// # Errors
/// Missing secrets, unreachable stores, unusable keys.
pub async fn load(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Loaded> {
    let dir = SecretsDir::new(&settings.secrets_dir);
    let context = || format!("loading secrets from {}", dir.path().display());
    let voucher_signing = dir.voucher_signing().with_context(context)?;
    let voucher_verifier = Verifier::new(dir.voucher_public().with_context(context)?)
        .context("voucher public keys")?;
    let idp_verifier = Verifier::new(dir.idp_public().with_context(context)?)
        .context("identity provider public keys")?;
    let dynamic_codes = DynamicCodes::new(
        dir.dynamic_code_secret()
            .with_context(context)?
            .expose_secret(),
        settings.dynamic_code.step_secs,
    )
    .context("dynamic code settings")?;
    let admins = AdminKeys::new(&dir.admin_keys().with_context(context)?);
    let (pg, hot) = connect_stores(&settings, settings.postgres.max_connections).await?;
    let barrier = hot
        .replica_barrier(settings.redis.ack_replicas, settings.redis.ack_timeout())
        .await
        .context("starting the Redis replication barrier")?;
    // The dev identity provider's PRIVATE key is loaded only when the demo turns it on.
    let dev_idp = if settings.dev_idp.enabled {
        tracing::warn!("the dev identity provider is on: POST /v1/dev/sign-in mints identity tokens (demo only)");
        Some(DevIdp {
            key: dir.idp_signing().with_context(context)?,
            ttl: chrono::Duration::seconds(settings.dev_idp.token_ttl_secs),
            clock: clock.clone(),
        })
    } else {
        None
    };
    let platform = PlatformMetrics::new("issuance").context("registering metrics")?;
    let metrics = Metrics::register(&platform.registry).context("registering metrics")?;
    let identities = Identities {
        verifier: idp_verifier,
        cache: IdentityCache::new(settings.identity_cache_entries),
        clock: clock.clone(),
    };
    let r = &settings.rate_limits;
    let state = AppState {
        person_limit: Arc::new(Limiter::new(r.person_per_second, r.person_burst)),
        settings: Arc::new(settings),
        pg,
        hot,
        barrier,
        clock,
        keys: Arc::new(Keys {
            voucher_signing,
            voucher_verifier,
        }),
        dynamic_codes: Arc::new(dynamic_codes),
        metrics,
        campaigns: CampaignCache::default(),
        hot_lost: LostHotState::default(),
    };
    Ok(Loaded {
        state,
        identities,
        admins,
        platform,
        dev_idp,
    })
}

/// PostgreSQL (a pool of `max_connections`) and Redis, as the settings say.
///
/// # Errors
/// Either is unreachable.
pub async fn connect_stores(
    settings: &Settings,
    max_connections: u32,
) -> anyhow::Result<(sqlx::PgPool, HotStore)> {
    let options = voucher_store::pg::PoolOptions {
        max_connections,
        ..settings.postgres.options()
    };
    let pg = voucher_store::pg::connect(settings.postgres.url(), options)
        .await
        .context("connecting to PostgreSQL")?;
    let hot = HotStore::connect_with(
        settings.redis.url(),
        &settings.redis.prefix,
        settings.redis.options(),
    )
    .await
    .context("connecting to Redis")?;
    Ok((pg, hot))
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
    while sleep_or_stop(&shutdown, every).await {
        let now = state.clock.now();
        let pass = voucher_store::expiry::run_once(
            &state.pg,
            &state.hot,
            now,
            state.settings.expiry.batch,
        );
        let report = tokio::select! {
            () = shutdown.cancelled() => return,
            report = pass => report,
        };
        match report {
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

async fn run_refresher(state: AppState, ip_limit: Arc<IpLimit>, shutdown: CancellationToken) {
    let every = Duration::from_millis(state.settings.campaigns_refresh_ms);
    let housekeeping_every = Duration::from_secs(60);
    let mut last_housekeeping = tokio::time::Instant::now();
    while sleep_or_stop(&shutdown, every).await {
        // Errors are logged by the instrumented refresh; the cache keeps its last content.
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = state.refresh_campaigns() => {}
        }
        if last_housekeeping.elapsed() >= housekeeping_every {
            state.person_limit.housekeeping();
            ip_limit.housekeeping();
            last_housekeeping = tokio::time::Instant::now();
        }
    }
}
