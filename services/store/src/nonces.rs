//! Nonces of signed terminal requests, remembered in Redis for the replay window so that a
//! captured request cannot be sent again (`SET key NX EX ttl`: the first use wins).
//!
//! The connection is the store's one Redis setup ([`crate::redis_conn`]): while Redis is
//! away a check fails at once (the service answers 503), and the first check after it is
//! back reconnects. A check is not retried: had a lost reply's `SET` happened, the retry
//! would see the nonce taken and refuse a genuine request as a replay; the terminal retries
//! instead, with a new nonce.

use crate::redis_conn::{self, RedisOptions};
use crate::StoreError;
use redis::aio::ConnectionManager;

/// The nonces seen per terminal key.
#[derive(Clone)]
pub struct Nonces {
    conn: ConnectionManager,
    prefix: String,
}

impl Nonces {
    /// Connects to Redis at `url`; nonces live under `<prefix>:rdm:nonce:`.
    ///
    /// # Errors
    /// A bad URL or Redis unreachable.
    pub async fn connect(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> Result<Nonces, StoreError> {
        let conn = redis_conn::connect(&redis_conn::client(url)?, options).await?;
        Ok(Nonces {
            conn,
            prefix: format!("{prefix}:rdm:nonce:"),
        })
    }

    /// `PING` (for readiness probes).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Records `nonce` of terminal key `key_id` for `ttl_secs`; `true` when this is its first
    /// use, `false` when it was already seen within the window (a replay).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn first_use(
        &self,
        key_id: &str,
        nonce: &str,
        ttl_secs: u64,
    ) -> Result<bool, StoreError> {
        let fresh: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key_id}:{nonce}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl_secs)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(fresh.is_some())
    }
}
