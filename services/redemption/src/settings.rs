//! The redemption service's settings: the platform's shared sections (`server`, `redis`,
//! `postgres`, `dynamic_code`, `log`; layers: defaults ← YAML file ← `APP__SECTION__KEY`,
//! see [`voucher_platform::settings`]) and its own (`rate_limits`, `signing`, `holds`,
//! `refunds`, `budget`, `idempotency`). Tests build a [`Settings`] in code.
//!
//! The dynamic-code step is `dynamic_code.step_secs`, the key the issuance service draws
//! codes with; the old `dynamic_code_step_secs` of this service is refused with a message
//! naming the new key.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use voucher_platform::pages::WebSettings;
pub use voucher_platform::settings::SettingsError;
use voucher_platform::settings::{
    invalid, DynamicCodeSettings, LogSettings, PostgresSettings, RedisSettings, ServerSettings,
    ServiceSettings,
};

/// Every setting of the redemption service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// Redis (remembered nonces).
    pub redis: RedisSettings,
    /// PostgreSQL, the record.
    pub postgres: PostgresSettings,
    /// The secrets directory (the voucher PUBLIC keys, the dynamic-code secret, the
    /// administrators' keys, the key-encryption keys of terminal secrets; never the voucher
    /// signing key).
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
    /// Dynamic codes (the same key as the issuance service's).
    pub dynamic_code: DynamicCodeSettings,
    /// Logs.
    pub log: LogSettings,
    /// The merchants' web checkout page (served at `/till/`).
    pub web: WebSettings,
    /// Pairing web terminals.
    pub pairing: PairingSettings,
    /// Group commit of checkout decisions.
    pub checkout: crate::checkout::group::GroupSettings,
}

/// Pairing web terminals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingSettings {
    /// A pairing code is refused after this many seconds.
    pub ttl_secs: i64,
}

/// Request limits (governor).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningSettings {
    /// Largest accepted difference between `X-Timestamp` and the service clock.
    pub max_skew_secs: i64,
    /// How long a nonce is remembered (≥ 2 × the skew, so a replay within the window is caught).
    pub nonce_ttl_secs: u64,
}

/// Authorisation holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldSettings {
    /// A hold neither captured nor voided within this releases itself.
    pub timeout_secs: i64,
    /// Seconds between sweeper passes (0 disables the sweeper; holds still expire lazily).
    pub sweep_interval_secs: u64,
}

/// Reversals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundSettings {
    /// A redemption can be reversed this many days after it was decided.
    pub window_days: i64,
}

/// The campaign budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BudgetSettings {
    /// Bucket rows per campaign budget (more buckets, less lock contention).
    pub buckets: i32,
}

/// Stored idempotent responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencySettings {
    /// Stored responses are kept this long (at least 24).
    pub retention_hours: i64,
    /// An `in_flight` key older than this is taken over (its process died).
    pub stale_in_flight_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        let mut server = ServerSettings::on_port(8081);
        server.json_limit_bytes = 8 * 1024;
        Settings {
            server,
            redis: RedisSettings::default(),
            postgres: PostgresSettings::default(),
            secrets_dir: PathBuf::from(".local/secrets"),
            rate_limits: RateLimitSettings::default(),
            signing: SigningSettings::default(),
            holds: HoldSettings::default(),
            refunds: RefundSettings::default(),
            budget: BudgetSettings::default(),
            idempotency: IdempotencySettings::default(),
            dynamic_code: DynamicCodeSettings::default(),
            log: LogSettings::default(),
            web: WebSettings::default(),
            pairing: PairingSettings { ttl_secs: 600 },
            checkout: crate::checkout::group::GroupSettings::default(),
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

impl ServiceSettings for Settings {
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("dynamic_code_step_secs", "dynamic_code.step_secs")];

    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.redis.validate()?;
        self.postgres.validate()?;
        self.dynamic_code.validate()?;
        let r = &self.rate_limits;
        if [
            r.terminal_per_second,
            r.terminal_burst,
            r.ip_per_second,
            r.ip_burst,
        ]
        .contains(&0)
        {
            return invalid("rate_limits: every rate and burst must be at least 1");
        }
        if self.signing.max_skew_secs <= 0
            || self.signing.nonce_ttl_secs
                < u64::try_from(self.signing.max_skew_secs).unwrap_or(u64::MAX)
        {
            return invalid("signing.max_skew_secs must be positive and signing.nonce_ttl_secs at least as long");
        }
        if self.pairing.ttl_secs <= 0 {
            return invalid("pairing.ttl_secs must be positive");
        }
        if self.holds.timeout_secs <= 0 {
            return invalid("holds.timeout_secs must be positive");
        }
        if self.refunds.window_days < 0 {
            return invalid("refunds.window_days must not be negative");
        }
        if self.budget.buckets < 1 || self.budget.buckets > 1024 {
            return invalid("budget.buckets must be 1-1024");
        }
        if self.idempotency.retention_hours < 24 {
            return invalid("idempotency.retention_hours must be at least 24");
        }
        self.checkout.validate()?;
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
    fn defaults_are_valid_and_follow_the_issue() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.signing.max_skew_secs, 300);
        assert_eq!(s.holds.timeout_secs, 900);
        assert_eq!((s.server.port, s.server.json_limit_bytes), (8081, 8192));
    }

    #[test]
    fn the_dynamic_code_step_has_the_issuance_service_s_key() {
        let s = Settings::load_from(None, env(&[("APP__DYNAMIC_CODE__STEP_SECS", "45")])).unwrap();
        assert_eq!(s.dynamic_code.step_secs, 45);
        let err =
            Settings::load_from(None, env(&[("APP__DYNAMIC_CODE_STEP_SECS", "45")])).unwrap_err();
        assert!(
            err.to_string().contains("APP__DYNAMIC_CODE__STEP_SECS"),
            "{err}"
        );
    }

    #[test]
    fn one_server_key_keeps_the_service_s_other_server_defaults() {
        let s = Settings::load_from(None, env(&[("APP__SERVER__HOST", "0.0.0.0")])).unwrap();
        assert_eq!((s.server.port, s.server.json_limit_bytes), (8081, 8192));
    }
}
