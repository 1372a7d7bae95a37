//! Typed settings, loaded once at start-up in three layers: the defaults in this file (they
//! run the local demo as is) ← an optional YAML file (`--config path`) ← environment
//! variables `APP__SECTION__KEY` (e.g. `APP__SERVER__PORT=9000`).
//!
//! Tests build a [`Settings`] in code: `Settings::default()`, then override fields
//! (`server.port = 0`, the URLs of their private Redis and PostgreSQL, the secrets dir).
//! Connection strings may carry passwords, so they are [`SecretString`]s and never print.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Every setting of the issuance service.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// The hot store.
    pub redis: RedisSettings,
    /// The system of record.
    pub postgres: PostgresSettings,
    /// Where the key files and other secrets live (see [`crate::secrets`]).
    pub secrets_dir: PathBuf,
    /// Per-person and per-IP request limits.
    pub rate_limits: RateLimitSettings,
    /// The outbox persister task.
    pub persister: PersisterSettings,
    /// The expiry and recycling task.
    pub expiry: ExpirySettings,
    /// Dynamic codes shown at checkout.
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
    /// Largest CSV upload accepted.
    pub csv_limit_bytes: usize,
    /// How long a graceful stop waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
}

/// The hot store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://host:port` (may carry a password).
    pub url: SecretString,
    /// Key prefix.
    pub prefix: String,
}

/// The system of record.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/db` (may carry a password).
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
}

/// Request limits (governor). Per person on claims, per client IP on every request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExpirySettings {
    /// Run expiry passes inside the service.
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_secs: u64,
    /// Vouchers per transaction.
    pub batch: i64,
}

/// Dynamic codes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DynamicCodeSettings {
    /// Seconds per step (30–60).
    pub step_secs: u32,
}

/// Bulk issuance uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BulkSettings {
    /// Most rows per upload (more → 413).
    pub max_rows: usize,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable (a terminal).
    Pretty,
}

/// Logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// JSON or pretty.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `issuance=debug,info`.
    pub level: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::default(),
            redis: RedisSettings::default(),
            postgres: PostgresSettings::default(),
            secrets_dir: PathBuf::from(".local/secrets"),
            rate_limits: RateLimitSettings::default(),
            persister: PersisterSettings::default(),
            expiry: ExpirySettings::default(),
            dynamic_code: DynamicCodeSettings::default(),
            bulk: BulkSettings::default(),
            campaigns_refresh_ms: 1000,
            identity_cache_entries: 100_000,
            log: LogSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: None,
            json_limit_bytes: 16 * 1024,
            csv_limit_bytes: 4 * 1024 * 1024,
            shutdown_timeout_secs: 30,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: SecretString::from("redis://127.0.0.1:56379"),
            prefix: "vp".into(),
        }
    }
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            url: SecretString::from("postgres://postgres@127.0.0.1:55432/vouchers"),
            max_connections: 16,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            person_per_second: 2,
            person_burst: 5,
            ip_per_second: 50,
            ip_burst: 200,
            trust_forwarded_for: false,
        }
    }
}

impl Default for PersisterSettings {
    fn default() -> Self {
        PersisterSettings {
            enabled: true,
            batch: 500,
            block_ms: 200,
            claim_idle_ms: 30_000,
            consumer: None,
        }
    }
}

impl Default for ExpirySettings {
    fn default() -> Self {
        ExpirySettings {
            enabled: true,
            interval_secs: 60,
            batch: 1000,
        }
    }
}

impl Default for DynamicCodeSettings {
    fn default() -> Self {
        DynamicCodeSettings { step_secs: 30 }
    }
}

impl Default for BulkSettings {
    fn default() -> Self {
        BulkSettings { max_rows: 100_000 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Json,
            // tracing-actix-web logs every error response at warn; refusals are expected
            // outcomes of a rush (sold out, over the limit), so only its errors (5xx) remain.
            level: "info,tracing_actix_web=error".into(),
        }
    }
}

/// Settings that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or an environment variable did not parse.
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range.
    #[error("settings: {0}")]
    Invalid(String),
}

/// Any service's settings type `T` (its `Default` filled in by `#[serde(default)]`) ←
/// `file` (YAML, if given) ← `APP__SECTION__KEY` environment variables (the process's, or
/// `env` in tests). Shared by the services so that they are configured the same way.
///
/// # Errors
/// A file that does not parse, a variable of the wrong type.
pub fn load_layers<T: serde::de::DeserializeOwned>(
    file: Option<&Path>,
    env: Option<Vec<(String, String)>>,
) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(
            config::File::from(path)
                .format(config::FileFormat::Yaml)
                .required(true),
        );
    }
    let mut environment = config::Environment::with_prefix("APP")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true);
    if let Some(vars) = env {
        environment = environment.source(Some(vars.into_iter().collect()));
    }
    Ok(builder.add_source(environment).build()?.try_deserialize()?)
}

impl Settings {
    /// Defaults ← `file` (YAML, if given) ← `APP__…` environment variables, then validated.
    ///
    /// # Errors
    /// A file that does not parse, a variable of the wrong type, a value out of range.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::load_from(file, None)
    }

    /// As [`Settings::load`], with the environment given explicitly (tests) instead of the
    /// process's: `env` is a list of `(APP__SECTION__KEY, value)` pairs.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: Option<Vec<(String, String)>>,
    ) -> Result<Settings, SettingsError> {
        let settings: Settings = load_layers(file, env)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks ranges that the types cannot express.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError::Invalid(what.to_owned()));
        if self.server.workers == Some(0) {
            return bad("server.workers must be at least 1");
        }
        if self.server.json_limit_bytes == 0 || self.server.csv_limit_bytes == 0 {
            return bad("server.json_limit_bytes and server.csv_limit_bytes must be positive");
        }
        let r = &self.rate_limits;
        if r.person_per_second == 0
            || r.person_burst == 0
            || r.ip_per_second == 0
            || r.ip_burst == 0
        {
            return bad("rate_limits: every rate and burst must be at least 1");
        }
        if !(30..=60).contains(&self.dynamic_code.step_secs) {
            return bad("dynamic_code.step_secs must be 30-60");
        }
        if self.persister.batch == 0 {
            return bad("persister.batch must be at least 1");
        }
        if self.expiry.batch <= 0 || self.expiry.interval_secs == 0 {
            return bad("expiry.batch and expiry.interval_secs must be at least 1");
        }
        if self.bulk.max_rows == 0 {
            return bad("bulk.max_rows must be at least 1");
        }
        if self.postgres.max_connections == 0 {
            return bad("postgres.max_connections must be at least 1");
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
    fn defaults_run_the_local_demo() {
        let s = Settings::load_from(None, Some(vec![])).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.server.json_limit_bytes, 16384);
        assert_eq!(s.redis_url(), "redis://127.0.0.1:56379");
        assert_eq!(s.rate_limits.person_burst, 5);
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(s.persister.enabled);
    }

    #[test]
    fn environment_overrides_defaults() {
        let env = vec![
            ("APP__SERVER__PORT".to_owned(), "9001".to_owned()),
            (
                "APP__RATE_LIMITS__TRUST_FORWARDED_FOR".to_owned(),
                "true".to_owned(),
            ),
            ("APP__LOG__FORMAT".to_owned(), "pretty".to_owned()),
            ("APP__PERSISTER__CONSUMER".to_owned(), "node-a".to_owned()),
            (
                "APP__REDIS__URL".to_owned(),
                "redis://10.0.0.9:6380".to_owned(),
            ),
            ("APP__SECRETS_DIR".to_owned(), "/run/secrets/vp".to_owned()),
        ];
        let s = Settings::load_from(None, Some(env)).unwrap();
        assert_eq!(s.server.port, 9001);
        assert!(s.rate_limits.trust_forwarded_for);
        assert_eq!(s.log.format, LogFormat::Pretty);
        assert_eq!(s.persister_consumer(), "node-a");
        assert_eq!(s.redis_url(), "redis://10.0.0.9:6380");
        assert_eq!(s.secrets_dir, PathBuf::from("/run/secrets/vp"));
        assert_eq!(
            s.server.host, "127.0.0.1",
            "untouched keys keep their defaults"
        );
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuance.yaml");
        std::fs::write(
            &path,
            "server:\n  port: 7000\n  workers: 3\nredis:\n  prefix: demo\n",
        )
        .unwrap();
        let env = vec![("APP__SERVER__PORT".to_owned(), "7001".to_owned())];
        let s = Settings::load_from(Some(&path), Some(env)).unwrap();
        assert_eq!(s.server.port, 7001, "env wins over the file");
        assert_eq!(s.workers(), 3);
        assert_eq!(s.redis.prefix, "demo");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let env = vec![("APP__DYNAMIC_CODE__STEP_SECS".to_owned(), "5".to_owned())];
        let err = Settings::load_from(None, Some(env)).unwrap_err();
        assert!(err.to_string().contains("step_secs"), "{err}");
        let env = vec![("APP__SERVER__PORT".to_owned(), "not-a-port".to_owned())];
        assert!(Settings::load_from(None, Some(env)).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let mut s = Settings::default();
        s.postgres.url = SecretString::from("postgres://app:hunter2@db/vouchers");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
