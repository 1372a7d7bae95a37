//! The one way this process connects to Redis, used by every Redis user (claims and the
//! rest of the hot store, the persister's reads, terminal nonces).
//!
//! A [`ConnectionManager`] multiplexes commands on one connection and re-makes it when it
//! breaks. Its own reconnection waits with a backoff of a second and more between attempts,
//! and every command issued meanwhile waits for that backoff: after a Redis restart, a till
//! would hang for as long as the backoff grew (minutes). So here a broken connection is
//! re-made on demand instead, one attempt at a time, each bounded by
//! [`RedisOptions::connect_timeout`]: while Redis is away each command fails at once (the
//! services answer 503 with `Retry-After`), and the first command after Redis is back
//! connects again. Every command is bounded by [`RedisOptions::response_timeout`], so a
//! Redis that accepts connections but does not answer cannot hold a request either.

use crate::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Timeouts of the Redis connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// A connection attempt gives up after this.
    pub connect_timeout: Duration,
    /// A command without an answer within this fails.
    pub response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
        }
    }
}

impl RedisOptions {
    /// The same options for a connection whose commands may block for `block` on the
    /// server (`XREADGROUP … BLOCK`): the response timeout is extended by that much.
    pub fn blocking_for(self, block: Duration) -> RedisOptions {
        RedisOptions {
            response_timeout: self.response_timeout + block,
            ..self
        }
    }

    fn manager_config(self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.response_timeout)
            // No backoff inside the manager: a failed attempt fails the commands waiting
            // for it at once, and the next command starts a new attempt.
            .set_number_of_retries(0)
    }
}

/// A client for `url` (`redis://host:port`, `redis+unix:///path`).
///
/// # Errors
/// A malformed URL.
pub fn client(url: &str) -> Result<redis::Client, StoreError> {
    Ok(redis::Client::open(url)?)
}

/// A reconnecting, multiplexed connection with `options`.
///
/// # Errors
/// The first connection failed.
pub async fn connect(
    client: &redis::Client,
    options: RedisOptions,
) -> Result<ConnectionManager, StoreError> {
    Ok(ConnectionManager::new_with_config(client.clone(), options.manager_config()).await?)
}
