//! The console service's settings: the platform's shared sections (`server`, `postgres`,
//! `redis`, `log`; layers: defaults ← YAML file ← `APP__SECTION__KEY`, see
//! [`voucher_platform::settings`]) and its own (`session`, `dev_idp`, `check`,
//! `rate_limits`, `web`). The command line's `APP__POSTGRES__URL`, `APP__REDIS__URL`,
//! `APP__REDIS__PREFIX` and `APP__SECRETS_DIR` are the same keys, so cron and the console
//! read one configuration.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use voucher_platform::pages::WebSettings;
pub use voucher_platform::settings::SettingsError;
use voucher_platform::settings::{
    invalid, LogSettings, PostgresSettings, RedisSettings, ServerSettings, ServiceSettings,
};

/// Every setting of `reconciliation serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The HTTP server (default port 8082).
    pub server: ServerSettings,
    /// PostgreSQL, the record (settlement, sessions, audit).
    pub postgres: PostgresSettings,
    /// Redis (the cross-check and the outbox lag).
    pub redis: RedisSettings,
    /// The secrets directory: only `admin-keys.json` (hashed keys) is read.
    pub secrets_dir: PathBuf,
    /// People's sessions.
    pub session: SessionSettings,
    /// The dev identity provider (the demo's sign-in without a key).
    pub dev_idp: DevIdpSettings,
    /// The cross-check run from the console.
    pub check: CheckSettings,
    /// Per-IP request limits.
    pub rate_limits: RateLimitSettings,
    /// Logs.
    pub log: LogSettings,
    /// The pages (the console is served at `/console/` from `<dir>/console`).
    pub web: WebSettings,
}

/// People's sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSettings {
    /// A session ends after this many seconds without a request.
    pub idle_secs: i64,
    /// A session ends this many seconds after sign-in, however busy.
    pub max_secs: i64,
}

/// The dev identity provider.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DevIdpSettings {
    /// `POST /v1/session/dev` signs in as any officer of `admin-keys.json` without a key.
    /// Never in production.
    pub enabled: bool,
}

/// The cross-check run from the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckSettings {
    /// Outbox events per campaign still tolerated (a live system persists continuously).
    pub max_outbox_lag: u64,
    /// The deadline of `POST /v1/checks` (instead of `server.request_timeout_ms`): the check
    /// reads every campaign from both stores, one after the other, so its time grows with
    /// the record (a few seconds for thousands of campaigns).
    pub request_timeout_secs: u64,
}

/// Per-IP request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// Sustained requests per second per IP.
    pub ip_per_second: u32,
    /// Burst per IP.
    pub ip_burst: u32,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::on_port(8082),
            postgres: PostgresSettings::default(),
            redis: RedisSettings::default(),
            secrets_dir: PathBuf::from(".local/secrets"),
            session: SessionSettings {
                idle_secs: 15 * 60,
                max_secs: 8 * 3600,
            },
            dev_idp: DevIdpSettings::default(),
            check: CheckSettings {
                max_outbox_lag: 1000,
                request_timeout_secs: 120,
            },
            rate_limits: RateLimitSettings {
                ip_per_second: 50,
                ip_burst: 200,
                trust_forwarded_for: false,
            },
            log: LogSettings::default(),
            web: WebSettings::default(),
        }
    }
}

impl ServiceSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.redis.validate()?;
        self.postgres.validate()?;
        let s = &self.session;
        if s.idle_secs <= 0 || s.max_secs <= 0 || s.idle_secs > s.max_secs {
            return invalid("session.idle_secs and session.max_secs must be positive, idle ≤ max");
        }
        if s.max_secs > 24 * 3600 {
            return invalid("session.max_secs is at most 86400 (a day)");
        }
        if self.check.request_timeout_secs == 0 {
            return invalid("check.request_timeout_secs must be at least 1");
        }
        let r = &self.rate_limits;
        if r.ip_per_second == 0 || r.ip_burst == 0 {
            return invalid("rate_limits: every rate and burst must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_load_and_the_shared_keys_are_the_other_services_keys() {
        let s = Settings::load_from(
            None,
            env(&[
                ("APP__POSTGRES__URL", "postgres://x@127.0.0.1:1/db"),
                ("APP__SESSION__IDLE_SECS", "120"),
                ("APP__DEV_IDP__ENABLED", "true"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.server.port, 8082);
        assert_eq!(s.postgres.url(), "postgres://x@127.0.0.1:1/db");
        assert_eq!(s.session.idle_secs, 120);
        assert!(s.dev_idp.enabled);
    }

    #[test]
    fn sessions_must_be_bounded() {
        for (idle, max) in [("0", "60"), ("600", "300"), ("60", "100000")] {
            let e = Settings::load_from(
                None,
                env(&[
                    ("APP__SESSION__IDLE_SECS", idle),
                    ("APP__SESSION__MAX_SECS", max),
                ]),
            );
            assert!(e.is_err(), "idle {idle} max {max}");
        }
    }
}
