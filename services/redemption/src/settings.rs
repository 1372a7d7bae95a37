//! Typed settings, loaded once at start-up in three layers, as in the issuance service:
//! the defaults in this file (they run the local demo) ← an optional YAML file
//! (`--config path`) ← environment variables `APP__SECTION__KEY` (e.g.
//! `APP__HOLDS__TIMEOUT_SECS=600`). Tests build a [`Settings`] in code.

use issuance::settings::LogSettings;
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Every setting of the redemption service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// Redis (remembered nonces).
    pub redis: RedisSettings,
    /// PostgreSQL, the record.
    pub postgres: PostgresSettings,
    /// The secrets directory shared with the issuance service (voucher public keys, the
    /// dynamic-code secret, administrators' keys).
    pub secrets_dir: PathBuf,
    /// Per-terminal and per-IP request limits.
    pub rate_limits: RateLimitSettings,
    /// Terminal request signatures.
    pub signing: SigningSettings,
    /// Authorisation holds.
    pub holds: HoldSettings,
    /// Reversals (refunds).
    pub refunds: RefundSettings,
    /// The campaign budget.
    pub budget: BudgetSettings,
    /// Stored idempotent responses.
    pub idempotency: IdempotencySettings,
    /// Dynamic code step, seconds (30–60, as the issuance service).
    pub dynamic_code_step_secs: u32,
    /// Logs.
    pub log: LogSettings,
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Worker threads; `None` = one per core.
    pub workers: Option<usize>,
    /// Largest JSON body accepted.
    pub json_limit_bytes: usize,
    /// How long a graceful stop waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
}

/// Redis and PostgreSQL are reached the same way by both services.
pub use issuance::settings::{PostgresSettings, RedisSettings};

/// Request limits (governor).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Sustained requests per second per terminal key.
    pub terminal_per_second: u32,
    /// Burst per terminal key.
    pub terminal_burst: u32,
    /// Sustained requests per second per IP.
    pub ip_per_second: u32,
    /// Burst per IP.
    pub ip_burst: u32,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// Terminal request signatures.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SigningSettings {
    /// Largest accepted difference between `X-Timestamp` and the service clock.
    pub max_skew_secs: i64,
    /// How long a nonce is remembered (≥ 2 × the skew, so a replay within the window is caught).
    pub nonce_ttl_secs: u64,
}

/// Authorisation holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HoldSettings {
    /// A hold neither captured nor voided within this releases itself.
    pub timeout_secs: i64,
    /// Seconds between sweeper passes (0 disables the sweeper; holds still expire lazily).
    pub sweep_interval_secs: u64,
}

/// Reversals.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RefundSettings {
    /// A redemption can be reversed this many days after it was decided.
    pub window_days: i64,
}

/// The campaign budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BudgetSettings {
    /// Bucket rows per campaign budget (more buckets, less lock contention).
    pub buckets: i32,
}

/// Stored idempotent responses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IdempotencySettings {
    /// Stored responses are kept this long (at least 24).
    pub retention_hours: i64,
    /// An `in_flight` key older than this is taken over (its process died).
    pub stale_in_flight_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::default(),
            redis: RedisSettings::default(),
            postgres: PostgresSettings::default(),
            secrets_dir: PathBuf::from(".local/secrets"),
            rate_limits: RateLimitSettings::default(),
            signing: SigningSettings::default(),
            holds: HoldSettings::default(),
            refunds: RefundSettings::default(),
            budget: BudgetSettings::default(),
            idempotency: IdempotencySettings::default(),
            dynamic_code_step_secs: 30,
            log: LogSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 8081,
            workers: None,
            json_limit_bytes: 8 * 1024,
            shutdown_timeout_secs: 30,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            terminal_per_second: 10,
            terminal_burst: 30,
            ip_per_second: 100,
            ip_burst: 300,
            trust_forwarded_for: false,
        }
    }
}

impl Default for SigningSettings {
    fn default() -> Self {
        SigningSettings {
            max_skew_secs: 300,
            nonce_ttl_secs: 600,
        }
    }
}

impl Default for HoldSettings {
    fn default() -> Self {
        HoldSettings {
            timeout_secs: 15 * 60,
            sweep_interval_secs: 30,
        }
    }
}

impl Default for RefundSettings {
    fn default() -> Self {
        RefundSettings { window_days: 30 }
    }
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings { buckets: 16 }
    }
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            retention_hours: 48,
            stale_in_flight_secs: 60,
        }
    }
}

/// Settings that could not be loaded (the same type as the issuance service's).
pub use issuance::settings::SettingsError;

impl Settings {
    /// Defaults ← `file` (YAML, if given) ← `APP__…` environment variables, then validated.
    ///
    /// # Errors
    /// A file that does not parse, a variable of the wrong type, a value out of range.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let settings: Settings = issuance::settings::load_layers(file, None)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks ranges that the types cannot express.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError::Invalid(what.to_owned()));
        let r = &self.rate_limits;
        if [
            r.terminal_per_second,
            r.terminal_burst,
            r.ip_per_second,
            r.ip_burst,
        ]
        .contains(&0)
        {
            return bad("rate_limits: every rate and burst must be at least 1");
        }
        if self.signing.max_skew_secs <= 0
            || self.signing.nonce_ttl_secs
                < u64::try_from(self.signing.max_skew_secs).unwrap_or(u64::MAX)
        {
            return bad("signing.max_skew_secs must be positive and signing.nonce_ttl_secs at least as long");
        }
        if self.holds.timeout_secs <= 0 {
            return bad("holds.timeout_secs must be positive");
        }
        if self.refunds.window_days < 0 {
            return bad("refunds.window_days must not be negative");
        }
        if self.budget.buckets < 1 || self.budget.buckets > 1024 {
            return bad("budget.buckets must be 1-1024");
        }
        if self.idempotency.retention_hours < 24 {
            return bad("idempotency.retention_hours must be at least 24");
        }
        if !(30..=60).contains(&self.dynamic_code_step_secs) {
            return bad("dynamic_code_step_secs must be 30-60");
        }
        if self.server.workers == Some(0)
            || self.server.json_limit_bytes == 0
            || self.postgres.max_connections == 0
        {
            return bad("server.workers, server.json_limit_bytes and postgres.max_connections must be positive");
        }
        Ok(())
    }

    /// Worker threads to run: the setting, or one per core.
    pub fn workers(&self) -> usize {
        self.server.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }

    /// The Redis URL (secret).
    pub fn redis_url(&self) -> &str {
        self.redis.url.expose_secret()
    }

    /// The PostgreSQL URL (secret).
    pub fn postgres_url(&self) -> &str {
        self.postgres.url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_the_issue() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.signing.max_skew_secs, 300);
        assert_eq!(s.holds.timeout_secs, 900);
    }
}
