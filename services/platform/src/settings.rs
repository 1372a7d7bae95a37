//! Typed settings, loaded once at start-up in three layers: a service's defaults (they run
//! the local demo as is) ← an optional YAML file (`--config path`) ← environment variables
//! `APP__SECTION__KEY` (e.g. `APP__SERVER__PORT=9000`). The defaults are a layer of their
//! own, so overriding one key of a section keeps the service's defaults for the others.
//!
//! The sections every service shares live here, so that one setting has one key everywhere:
//! [`ServerSettings`] (`server.*`), [`RedisSettings`] (`redis.*`), [`PostgresSettings`]
//! (`postgres.*`), [`LogSettings`] (`log.*`) and [`DynamicCodeSettings`]
//! (`dynamic_code.step_secs`, which the issuance service draws codes with and the
//! redemption service checks them with: one key, so the two cannot disagree).
//!
//! Connection strings may carry passwords, so they are [`Secret`]s and never print.

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// A setting that must not print (a URL with a password). `Debug` shows `[redacted]`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Only the defaults layer is serialised (see [`load`]); it holds no real secret.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(SecretString::from(s))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(SecretString::from(s))
    }
}

/// The HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// Worker threads; `None` = one per core.
    pub workers: Option<usize>,
    /// Largest JSON body accepted, after decompression.
    pub json_limit_bytes: usize,
    /// Largest CSV upload accepted, after decompression.
    pub csv_limit_bytes: usize,
    /// Every request is answered within this, or gets `503 DEADLINE_EXCEEDED` with
    /// `Retry-After` (routes that do long work, such as bulk uploads, have their own).
    pub request_timeout_ms: u64,
    /// On SIGTERM the whole stop — in-flight requests draining, then background tasks — is
    /// bounded by this.
    pub shutdown_timeout_secs: u64,
}

impl ServerSettings {
    /// The defaults for a service listening on `port`.
    pub fn on_port(port: u16) -> ServerSettings {
        ServerSettings {
            host: "127.0.0.1".into(),
            port,
            workers: None,
            json_limit_bytes: 16 * 1024,
            csv_limit_bytes: 4 * 1024 * 1024,
            request_timeout_ms: 5_000,
            shutdown_timeout_secs: 30,
        }
    }

    /// Worker threads to run: the setting, or one per core.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }

    /// The request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The bound on a graceful stop.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.workers == Some(0) {
            return invalid("server.workers must be at least 1");
        }
        if self.json_limit_bytes == 0 || self.csv_limit_bytes == 0 {
            return invalid("server.json_limit_bytes and server.csv_limit_bytes must be positive");
        }
        if self.request_timeout_ms == 0 {
            return invalid("server.request_timeout_ms must be positive");
        }
        Ok(())
    }
}

/// Redis, the hot state. One connection setup serves every Redis user of a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisSettings {
    /// `redis://host:port` (may carry a password).
    pub url: Secret,
    /// Key prefix.
    pub prefix: String,
    /// A connection attempt gives up after this (the next command tries again).
    pub connect_timeout_ms: u64,
    /// A command without an answer within this fails (and the connection is re-made).
    pub response_timeout_ms: u64,
    /// Replicas that must hold a claim before it is acknowledged (the issuance service's
    /// replication barrier, `WAIT`); 0 acknowledges once the master has it (a claim not yet
    /// persisted is then lost with the master's data directory). Default 1.
    pub ack_replicas: u32,
    /// How long a claim waits for the replicas before it answers 503 (`Retry-After`).
    pub ack_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: Secret::from("redis://127.0.0.1:56379"),
            prefix: "vp".into(),
            connect_timeout_ms: 1_000,
            response_timeout_ms: 2_000,
            ack_replicas: 1,
            ack_timeout_ms: 500,
        }
    }
}

impl RedisSettings {
    /// The URL.
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// The store's connection options.
    pub fn options(&self) -> voucher_store::RedisOptions {
        voucher_store::RedisOptions {
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            response_timeout: Duration::from_millis(self.response_timeout_ms),
        }
    }

    /// How long a claim waits for `ack_replicas` replicas.
    pub fn ack_timeout(&self) -> Duration {
        Duration::from_millis(self.ack_timeout_ms)
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.connect_timeout_ms == 0 || self.response_timeout_ms == 0 {
            return invalid(
                "redis.connect_timeout_ms and redis.response_timeout_ms must be positive",
            );
        }
        if self.ack_replicas > 0 && self.ack_timeout_ms == 0 {
            return invalid("redis.ack_timeout_ms must be positive when redis.ack_replicas > 0");
        }
        Ok(())
    }
}

/// PostgreSQL, the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostgresSettings {
    /// `postgres://user@host:port/db` (may carry a password).
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Waiting for a pooled connection (or a new one) gives up after this: the request is
    /// then a 503 instead of hanging while PostgreSQL is away.
    pub acquire_timeout_ms: u64,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            url: Secret::from("postgres://postgres@127.0.0.1:55432/vouchers"),
            max_connections: 16,
            acquire_timeout_ms: 2_000,
        }
    }
}

impl PostgresSettings {
    /// The URL.
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// The store's pool options.
    pub fn options(&self) -> voucher_store::pg::PoolOptions {
        voucher_store::pg::PoolOptions {
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_connections == 0 || self.acquire_timeout_ms == 0 {
            return invalid(
                "postgres.max_connections and postgres.acquire_timeout_ms must be positive",
            );
        }
        Ok(())
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable (a terminal).
    Pretty,
}

/// Logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSettings {
    /// JSON or pretty.
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `issuance=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Json,
            // tracing-actix-web logs every error response at warn; refusals are expected
            // outcomes (sold out, declined), so only its errors (5xx) remain.
            level: "info,tracing_actix_web=error".into(),
        }
    }
}

/// Dynamic codes shown at checkout (drawn by the issuance service, checked by the
/// redemption service: both read this one key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynamicCodeSettings {
    /// Seconds per step (30–60).
    pub step_secs: u32,
}

impl Default for DynamicCodeSettings {
    fn default() -> Self {
        DynamicCodeSettings { step_secs: 30 }
    }
}

impl DynamicCodeSettings {
    /// Checks the range.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`].
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(30..=60).contains(&self.step_secs) {
            return invalid("dynamic_code.step_secs must be 30-60");
        }
        Ok(())
    }
}

/// Settings that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or an environment variable did not parse.
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range, or a key was renamed.
    #[error("settings: {0}")]
    Invalid(String),
}

/// An [`SettingsError::Invalid`].
///
/// # Errors
/// Always.
pub fn invalid<T>(what: impl Into<String>) -> Result<T, SettingsError> {
    Err(SettingsError::Invalid(what.into()))
}

/// A service's settings type.
pub trait ServiceSettings: Serialize + DeserializeOwned + Default {
    /// Keys that once existed under another name: `(old, new)`. Setting an old key is an
    /// error that names the new one, rather than a setting silently ignored.
    const RENAMED: &'static [(&'static str, &'static str)] = &[];

    /// Checks ranges that the types cannot express.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the setting.
    fn validate(&self) -> Result<(), SettingsError>;

    /// The service's defaults ← `file` (YAML, if given) ← the process's `APP__…`
    /// environment variables, then validated (see [`load`]).
    ///
    /// # Errors
    /// As [`load`].
    fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        load(file, None)
    }

    /// As [`ServiceSettings::load`], with the environment given explicitly (tests): a list
    /// of `(APP__SECTION__KEY, value)` pairs.
    ///
    /// # Errors
    /// As [`load`].
    fn load_from(
        file: Option<&Path>,
        env: Option<Vec<(String, String)>>,
    ) -> Result<Self, SettingsError> {
        load(file, env)
    }
}

/// The service's defaults ← `file` (YAML, if given) ← `APP__SECTION__KEY` variables (the
/// process's, or `env` in tests), then validated.
///
/// # Errors
/// A file that does not parse, a variable of the wrong type, a renamed key, a value out of
/// range.
pub fn load<T: ServiceSettings>(
    file: Option<&Path>,
    env: Option<Vec<(String, String)>>,
) -> Result<T, SettingsError> {
    let defaults = config::Config::try_from(&T::default())?;
    let mut builder = config::Config::builder().add_source(defaults);
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
    let merged = builder.add_source(environment).build()?;
    for (old, new) in T::RENAMED {
        if merged.get::<config::Value>(old).is_ok() {
            return invalid(format!(
                "{old} was renamed to {new} (APP__{}); set that instead",
                new.to_ascii_uppercase().replace('.', "__")
            ));
        }
    }
    let settings: T = merged.try_deserialize()?;
    settings.validate()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Demo {
        server: ServerSettings,
        redis: RedisSettings,
        dynamic_code: DynamicCodeSettings,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo {
                server: ServerSettings::on_port(8081),
                redis: RedisSettings::default(),
                dynamic_code: DynamicCodeSettings::default(),
            }
        }
    }

    impl ServiceSettings for Demo {
        const RENAMED: &'static [(&'static str, &'static str)] =
            &[("dynamic_code_step_secs", "dynamic_code.step_secs")];
        fn validate(&self) -> Result<(), SettingsError> {
            self.server.validate()?;
            self.dynamic_code.validate()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn one_key_overrides_only_itself_and_keeps_the_service_defaults() {
        let s: Demo = load(None, env(&[("APP__SERVER__HOST", "0.0.0.0")])).unwrap_or_default();
        assert_eq!(s.server.host, "0.0.0.0");
        assert_eq!(
            s.server.port, 8081,
            "the service's port, not a section default"
        );
    }

    #[test]
    fn a_renamed_key_is_refused_with_its_new_name() {
        let err = load::<Demo>(None, env(&[("APP__DYNAMIC_CODE_STEP_SECS", "45")]))
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string().contains("APP__DYNAMIC_CODE__STEP_SECS"),
            "{err}"
        );
        let s: Demo =
            load(None, env(&[("APP__DYNAMIC_CODE__STEP_SECS", "45")])).unwrap_or_default();
        assert_eq!(s.dynamic_code.step_secs, 45);
    }

    #[test]
    fn out_of_range_values_and_bad_types_are_refused() {
        assert!(load::<Demo>(None, env(&[("APP__DYNAMIC_CODE__STEP_SECS", "5")])).is_err());
        assert!(load::<Demo>(None, env(&[("APP__SERVER__PORT", "not-a-port")])).is_err());
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "server:\n  port: 7000\n  workers: 3\nredis:\n  prefix: demo\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s: Demo = load(Some(&path), env(&[("APP__SERVER__PORT", "7001")])).unwrap_or_default();
        assert_eq!(s.server.port, 7001, "env wins over the file");
        assert_eq!(s.server.workers(), 3);
        assert_eq!(s.redis.prefix, "demo");
    }

    #[test]
    fn secrets_do_not_print() {
        let mut s = Demo::default();
        s.redis.url = Secret::from("redis://:hunter2@db:6379");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
