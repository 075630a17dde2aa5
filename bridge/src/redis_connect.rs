//! Opening a Redis connection with explicit timeouts, for every task of the bridge that talks
//! to Redis (the library's default response timeout would be too short on a busy machine, and
//! no timeout would let a silent Redis hold a task forever).

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;

/// A multiplexed connection to `client`'s Redis that gives up connecting after
/// `connect_timeout` and on any answer after `response_timeout`.
pub async fn open(
    client: &redis::Client,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}
