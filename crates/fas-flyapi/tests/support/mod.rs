//! Shared set-up of the wiremock tests: a client pointed at the mock server with fast retries.

use fas_flyapi::{Client, ClientConfig, RetryPolicy};
use std::time::Duration;
use wiremock::MockServer;

/// A config for `server` with `token`, fast bounded retries and a 2 s request timeout.
pub(crate) fn config_with_token(server: &MockServer, token: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(token);
    cfg.machines_base_url = server.uri();
    cfg.graphql_base_url = server.uri();
    cfg.retry = RetryPolicy {
        max_attempts: 4,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(5),
    };
    cfg.timeout = Duration::from_secs(2);
    cfg
}

/// A client for `server` built from [`config_with_token`].
pub(crate) fn client_with_token(server: &MockServer, token: &str) -> Client {
    Client::new(config_with_token(server, token)).expect("a valid test config")
}
