//! Building and running the application: load the secrets this service needs — the voucher
//! PUBLIC keys, the dynamic-code secret, the administrators' keys and the key-encryption keys
//! of terminal secrets, never the signing key — connect PostgreSQL and Redis, seal any
//! terminal secret still stored as is (before the first request, so the plaintext column is
//! empty once the service ran), bind the listener (port 0 for tests), build the app with
//! the platform's one builder, start the housekeeping task (hold sweeper, idempotency
//! purge), and stop within the platform's bounded shutdown.
//!
//! Readiness: a checkout needs both PostgreSQL (the decision) and Redis (every signed
//! request's nonce), so both are critical.

use crate::caches::Caches;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::state::AppState;
use crate::terminal_auth::TerminalAuth;
use crate::terminal_secrets::{self, Keyring};
use crate::{holds, openapi, routes};
use actix_web::web;
use anyhow::Context as _;
use futures::FutureExt as _;
use secrecy::ExposeSecret as _;
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
use voucher_platform::ops::{ApiDocument, Need, Readiness, ScrapeHook};
use voucher_platform::pages;
use voucher_platform::secrets::SecretsDir;
pub use voucher_platform::server::ShutdownHandle;
use voucher_platform::server::{self, sleep_or_stop, Lifecycle};

/// How long a readiness check waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The running service.
pub struct Application {
    lifecycle: Lifecycle,
    state: AppState,
}

impl Application {
    /// Builds the application from its settings (does not migrate: `serve` and `migrate` do).
    ///
    /// # Errors
    /// Missing secrets, unreachable stores, a port in use.
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        let dir = SecretsDir::new(&settings.secrets_dir);
        let context = || format!("loading secrets from {}", dir.path().display());
        let verifier = Verifier::new(dir.voucher_public().with_context(context)?)
            .context("voucher public keys")?;
        let dynamic_codes = DynamicCodes::new(
            dir.dynamic_code_secret()
                .with_context(context)?
                .expose_secret(),
            settings.dynamic_code.step_secs,
        )
        .context("dynamic code settings")?;
        let admins = AdminKeys::new(&dir.admin_keys().with_context(context)?);
        let keks = dir.terminal_keks().with_context(|| {
            format!(
                "loading the terminal key-encryption keys from {} (none yet: `redemption kek add`)",
                dir.path().display()
            )
        })?;
        let keyring = Arc::new(Keyring::new(&keks).context("terminal key-encryption keys")?);
        // A statement runs no longer than a request may: what a request dropped at its
        // deadline left running (a lock wait, a slow server) is cancelled by the server too.
        // Every transaction of this service lives within a request (or a short sweep): one
        // left idle for twice the deadline belongs to a request that is gone — e.g. its
        // connection went silent — and the server ends it, releasing its locks (the
        // idempotency key's, the voucher's), so the terminal's retry is decided.
        let deadline_ms = settings.server.request_timeout().as_millis();
        let pg = voucher_store::pg::connect_with(
            settings.postgres.url(),
            settings.postgres.options(),
            &[
                ("statement_timeout", format!("{deadline_ms}ms")),
                (
                    "idle_in_transaction_session_timeout",
                    format!("{}ms", (2 * deadline_ms).max(1_000)),
                ),
            ],
        )
        .await
        .context("connecting to PostgreSQL")?;
        let nonces = voucher_store::nonces::Nonces::connect(
            settings.redis.url(),
            &settings.redis.prefix,
            settings.redis.options(),
        )
        .await
        .context("connecting to Redis")?;
        let sealed = terminal_secrets::rewrap(&pg, &keyring, true)
            .await
            .context("sealing the terminal secrets stored as is")?;
        if sealed.sealed_plain > 0 {
            tracing::info!(
                sealed = sealed.sealed_plain,
                kek_id = sealed.kek_id,
                "terminal secrets stored as is are now sealed"
            );
        }
        let platform = PlatformMetrics::new("redemption").context("registering metrics")?;
        let metrics = Metrics::register(&platform.registry).context("registering metrics")?;
        let settings = Arc::new(settings);
        let (group, deciders) = crate::checkout::group::group(settings.checkout).unzip();
        let state = AppState {
            settings: settings.clone(),
            pg: pg.clone(),
            clock: clock.clone(),
            verifier: Arc::new(verifier),
            dynamic_codes: Arc::new(dynamic_codes),
            metrics: metrics.clone(),
            caches: Caches::default(),
            keyring: keyring.clone(),
            group,
        };
        let r = &settings.rate_limits;
        let terminal_limit = Arc::new(Limiter::new(r.terminal_per_second, r.terminal_burst));
        let terminal_auth = web::Data::new(TerminalAuth {
            pg: pg.clone(),
            nonces: nonces.clone(),
            clock,
            settings: settings.clone(),
            limit: terminal_limit.clone(),
            keyring,
        });
        let holds_pg = pg.clone();
        let scrape_hook: ScrapeHook = Arc::new(move || {
            let pg = holds_pg.clone();
            let gauge = metrics.holds_outstanding.clone();
            async move {
                match voucher_store::pg::redemptions::holds_outstanding(&pg).await {
                    Ok(n) => gauge.set(n),
                    Err(e) => tracing::warn!("holds gauge not refreshed: {e}"),
                }
            }
            .boxed()
        });
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
                .check("redis", Need::Critical, Arc::new(nonces)),
            admins: Arc::new(admins),
            document: ApiDocument(Arc::new(openapi::document())),
            deadlines: Deadlines::new(settings.server.request_timeout()),
            scrape_hook: Some(scrape_hook),
            metrics: platform,
        };
        let app_state = web::Data::new(state.clone());
        let ip_limit = plumbing.ip_limit.clone();
        let page = settings.web.dir.join("merchant");
        let mut lifecycle = server::serve("redemption", &settings.server, plumbing, move |cfg| {
            cfg.app_data(app_state.clone())
                .app_data(terminal_auth.clone())
                .configure(routes::configure);
            pages::configure(cfg, "/till", &page);
        })?;
        {
            let state = state.clone();
            let limits = (ip_limit, terminal_limit);
            lifecycle.spawn(|cancel| run_housekeeping(state, limits, cancel));
        }
        if let Some(deciders) = deciders {
            let state = state.clone();
            lifecycle.spawn(|cancel| crate::checkout::group::run(state, deciders, cancel));
        }
        Ok(Application { lifecycle, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.lifecycle.port()
    }

    /// The shared state (tests reach PostgreSQL through it).
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

/// The hold sweeper, idempotency purge and limiter housekeeping.
async fn run_housekeeping(
    state: AppState,
    (ip_limit, terminal_limit): (Arc<IpLimit>, Arc<Limiter<String>>),
    shutdown: CancellationToken,
) {
    let every = state.settings.holds.sweep_interval_secs;
    if every == 0 {
        return;
    }
    let mut passes: u64 = 0;
    while sleep_or_stop(&shutdown, Duration::from_secs(every)).await {
        let swept = tokio::select! {
            () = shutdown.cancelled() => return,
            swept = holds::sweep_once(&state) => swept,
        };
        match swept {
            Ok(n) if n > 0 => tracing::info!(released = n, "expired holds released"),
            Ok(_) => {}
            Err(e) => tracing::warn!("hold sweep failed, retrying next interval: {e}"),
        }
        passes += 1;
        if passes % 100 == 0 {
            ip_limit.housekeeping();
            terminal_limit.housekeeping();
            if let Err(e) = voucher_store::pg::idempotency::idempotency_purge(
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
