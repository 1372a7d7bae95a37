//! The issuance service's settings: the platform's shared sections (`server`, `redis`,
//! `postgres`, `dynamic_code`, `log`; see [`voucher_platform::settings`] for the layers:
//! defaults ← YAML file ← `APP__SECTION__KEY`) and its own (`rate_limits`, `persister`,
//! `expiry`, `bulk`, …). The defaults run the local demo as is; tests build a [`Settings`]
//! in code and override fields.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use voucher_platform::pages::WebSettings;
use voucher_platform::settings::{
    invalid, DynamicCodeSettings, LogSettings, PostgresSettings, RedisSettings, ServerSettings,
    ServiceSettings,
};
pub use voucher_platform::settings::{LogFormat, SettingsError};

/// Every setting of the issuance service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// The hot store.
    pub redis: RedisSettings,
    /// The system of record.
    pub postgres: PostgresSettings,
    /// Where the key files and other secrets live (see [`voucher_platform::secrets`]).
    pub secrets_dir: PathBuf,
    /// Per-person and per-IP request limits.
    pub rate_limits: RateLimitSettings,
    /// The outbox persister task.
    pub persister: PersisterSettings,
    /// The expiry and recycling task.
    pub expiry: ExpirySettings,
    /// Dynamic codes shown at checkout (the same key the redemption service checks with).
    pub dynamic_code: DynamicCodeSettings,
    /// Bulk issuance uploads.
    pub bulk: BulkSettings,
    /// How often the campaign cache is reloaded from PostgreSQL (and re-synced into Redis);
    /// 0 disables the refresher (the cache is then loaded once at start).
    pub campaigns_refresh_ms: u64,
    /// Identity tokens remembered after their signature was verified (by SHA-256 digest, for
    /// at most 5 minutes and never past their expiry), so that a phone retrying a claim does
    /// not cost another Ed25519 verification; 0 turns the cache off.
    pub identity_cache_entries: usize,
    /// Logs.
    pub log: LogSettings,
    /// The residents' page (served at `/app/`).
    pub web: WebSettings,
    /// The dev identity provider's sign-in (demo only).
    pub dev_idp: DevIdpSettings,
    /// Car trade-in papers (uploaded documents).
    pub documents: DocumentSettings,
}

/// Uploaded documents (car trade-in papers): stored once per content, in `dir`, each file
/// named by the SHA-256 of its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentSettings {
    /// The content-addressed directory (created when missing).
    pub dir: PathBuf,
    /// Largest upload accepted, bytes (after decompression).
    pub max_bytes: usize,
}

/// The dev identity provider: `POST /v1/dev/sign-in` mints resident identity tokens with
/// the dev key (`idp-signing.json`), for the demo. Off by default: in production identity
/// tokens come from the province's identity platform, and the private key is not even
/// loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevIdpSettings {
    /// Serve the dev sign-in (and load the dev identity provider's key).
    pub enabled: bool,
    /// Lifetime of a dev identity token, seconds.
    pub token_ttl_secs: i64,
}

/// Request limits (governor). Per person on claims, per client IP on every request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitSettings {
    /// Sustained claims per second per person.
    pub person_per_second: u32,
    /// Burst of claims per person.
    pub person_burst: u32,
    /// Sustained requests per second per IP.
    pub ip_per_second: u32,
    /// Burst of requests per IP.
    pub ip_burst: u32,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// The outbox persister task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersisterSettings {
    /// Run the persister inside the service.
    pub enabled: bool,
    /// Most events per batch.
    pub batch: usize,
    /// How long one read blocks.
    pub block_ms: u64,
    /// Pending entries idle longer than this are taken over from dead consumers.
    pub claim_idle_ms: u64,
    /// Consumer name in the group; `None` = `hostname-pid`.
    pub consumer: Option<String>,
}

/// The expiry and recycling task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpirySettings {
    /// Run expiry passes inside the service.
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_secs: u64,
    /// Vouchers per transaction.
    pub batch: i64,
}

/// Bulk issuance uploads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BulkSettings {
    /// Most rows per upload (more → 413).
    pub max_rows: usize,
    /// The deadline of an upload (instead of `server.request_timeout_ms`): 100,000 rows
    /// take about 10 s.
    pub request_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::on_port(8080),
            redis: RedisSettings::default(),
            postgres: PostgresSettings::default(),
            secrets_dir: PathBuf::from(".local/secrets"),
            rate_limits: RateLimitSettings {
                person_per_second: 2,
                person_burst: 5,
                ip_per_second: 50,
                ip_burst: 200,
                trust_forwarded_for: false,
            },
            persister: PersisterSettings {
                enabled: true,
                batch: 500,
                block_ms: 200,
                claim_idle_ms: 30_000,
                consumer: None,
            },
            expiry: ExpirySettings {
                enabled: true,
                interval_secs: 60,
                batch: 1000,
            },
            dynamic_code: DynamicCodeSettings::default(),
            bulk: BulkSettings {
                max_rows: 100_000,
                request_timeout_secs: 300,
            },
            campaigns_refresh_ms: 1000,
            identity_cache_entries: 100_000,
            log: LogSettings::default(),
            web: WebSettings::default(),
            dev_idp: DevIdpSettings {
                enabled: false,
                token_ttl_secs: 12 * 3600,
            },
            documents: DocumentSettings {
                dir: PathBuf::from(".local/documents"),
                max_bytes: 10 * 1024 * 1024,
            },
        }
    }
}

impl ServiceSettings for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.redis.validate()?;
        self.postgres.validate()?;
        self.dynamic_code.validate()?;
        let r = &self.rate_limits;
        if [
            r.person_per_second,
            r.person_burst,
            r.ip_per_second,
            r.ip_burst,
        ]
        .contains(&0)
        {
            return invalid("rate_limits: every rate and burst must be at least 1");
        }
        if self.persister.batch == 0 {
            return invalid("persister.batch must be at least 1");
        }
        if self.expiry.batch <= 0 || self.expiry.interval_secs == 0 {
            return invalid("expiry.batch and expiry.interval_secs must be at least 1");
        }
        if self.dev_idp.token_ttl_secs <= 0 {
            return invalid("dev_idp.token_ttl_secs must be positive");
        }
        if self.bulk.max_rows == 0 || self.bulk.request_timeout_secs == 0 {
            return invalid("bulk.max_rows and bulk.request_timeout_secs must be at least 1");
        }
        if self.documents.max_bytes == 0 {
            return invalid("documents.max_bytes must be at least 1");
        }
        Ok(())
    }
}

impl Settings {
    /// The persister's consumer name: the setting, or `hostname-pid`.
    pub fn persister_consumer(&self) -> String {
        self.persister.consumer.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "issuance".to_owned());
            format!("{host}-{}", std::process::id())
        })
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
    fn defaults_run_the_local_demo() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.json_limit_bytes, 16384);
        assert_eq!(s.redis.url(), "redis://127.0.0.1:56379");
        assert_eq!(s.rate_limits.person_burst, 5);
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(s.persister.enabled);
    }

    #[test]
    fn environment_overrides_defaults() {
        let s = Settings::load_from(
            None,
            env(&[
                ("APP__SERVER__PORT", "9001"),
                ("APP__RATE_LIMITS__TRUST_FORWARDED_FOR", "true"),
                ("APP__LOG__FORMAT", "pretty"),
                ("APP__PERSISTER__CONSUMER", "node-a"),
                ("APP__REDIS__URL", "redis://10.0.0.9:6380"),
                ("APP__SECRETS_DIR", "/run/secrets/vp"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 9001);
        assert!(s.rate_limits.trust_forwarded_for);
        assert_eq!(s.log.format, LogFormat::Pretty);
        assert_eq!(s.persister_consumer(), "node-a");
        assert_eq!(s.redis.url(), "redis://10.0.0.9:6380");
        assert_eq!(s.secrets_dir, PathBuf::from("/run/secrets/vp"));
        assert_eq!(
            s.server.host, "127.0.0.1",
            "untouched keys keep their defaults"
        );
        assert_eq!(s.rate_limits.person_burst, 5, "and so do their neighbours");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err =
            Settings::load_from(None, env(&[("APP__DYNAMIC_CODE__STEP_SECS", "5")])).unwrap_err();
        assert!(err.to_string().contains("step_secs"), "{err}");
        assert!(Settings::load_from(None, env(&[("APP__SERVER__PORT", "not-a-port")])).is_err());
        assert!(Settings::load_from(None, env(&[("APP__PERSISTER__BATCH", "0")])).is_err());
    }
}
