//! Live reload: `SIGHUP` or `POST /-/reload` reads the YAML file again (with the process's
//! environment, which cannot change under a running process, and the command's flags),
//! validates the whole configuration first, and only then swaps it in
//! ([`crate::tick::Reconciler::replace`]); on any problem the running configuration stays and
//! every problem is logged (and returned to the POST). Per-app state (target history, fallback
//! values, recent creates, region cursor) is kept for the apps that remain; the loop picks the
//! new configuration up at its next wake. `metrics-address`, `log-format`, `verbose` and the
//! `postgres-*` keys apply at the next start (the listener, the log subscriber and the
//! coordinator exist once per process); a reload that changes one logs a warning naming it.

use std::sync::{Arc, PoisonError, RwLock};

use secrecy::{ExposeSecret, SecretString};
use tracing::{info, warn};

use crate::config::{self, Config, Purpose, Sources};
use crate::telemetry as m;
use crate::tick::{Reconciler, Runtime};

/// The `/trigger` and `/-/reload` bearer token, replaced by a reload.
#[derive(Debug, Clone, Default)]
pub struct SharedToken(Arc<RwLock<Option<SecretString>>>);

impl SharedToken {
    /// A cell holding `token`.
    pub fn new(token: Option<SecretString>) -> SharedToken {
        SharedToken(Arc::new(RwLock::new(token)))
    }

    /// The current token.
    pub fn get(&self) -> Option<SecretString> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the token.
    pub fn set(&self, token: Option<SecretString>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = token;
    }
}

/// What a reload did: the warnings of the new configuration, or every problem that kept the old
/// one.
pub type ReloadResult = Result<Vec<String>, Vec<String>>;

/// Something that reloads the configuration (the HTTP endpoint calls it).
pub trait Reload: Send + Sync + std::fmt::Debug {
    /// Reads, validates and applies the configuration again.
    fn reload(&self) -> ReloadResult;
}

/// Reloads `serve`'s configuration from the same sources as at start (the environment and flags,
/// and the `--config` file read again).
pub struct Reloader {
    sources: Sources,
    reconciler: Arc<Reconciler>,
    token: SharedToken,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No `Sources` here: the environment holds tokens.
        f.debug_struct("Reloader")
            .field("file", &self.sources.file)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `reconciler` from `sources` (the file is read again on each reload),
    /// updating `token` (the endpoints' bearer token).
    pub fn new(sources: Sources, reconciler: Arc<Reconciler>, token: SharedToken) -> Reloader {
        Reloader {
            sources,
            reconciler,
            token,
        }
    }

    fn load(&self) -> Result<(Config, Runtime), Vec<String>> {
        let config = config::load(&self.sources, Purpose::Serve).map_err(|e| {
            e.problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })?;
        let client = crate::cli::build_client(&config).map_err(|e| vec![format!("{e:#}")])?;
        let collectors =
            crate::cli::build_collectors(&config).map_err(|e| vec![format!("{e:#}")])?;
        let runtime = Runtime {
            config: Arc::new(config.clone()),
            fly: Arc::new(client),
            collectors,
        };
        Ok((config, runtime))
    }
}

impl Reload for Reloader {
    fn reload(&self) -> ReloadResult {
        match self.load() {
            Err(problems) => {
                metrics::counter!(m::CONFIG_RELOADS, "result" => "error").increment(1);
                for p in &problems {
                    warn!(problem = %p, "configuration reload refused; the running configuration stays");
                }
                Err(problems)
            }
            Ok((config, runtime)) => {
                let old = self.reconciler.config();
                for (key, changed) in [
                    (
                        "metrics-address",
                        old.metrics_address != config.metrics_address,
                    ),
                    ("log-format", old.log_format != config.log_format),
                    ("verbose", old.verbose != config.verbose),
                    (
                        "postgres-url",
                        old.postgres_url.as_ref().map(ExposeSecret::expose_secret)
                            != config
                                .postgres_url
                                .as_ref()
                                .map(ExposeSecret::expose_secret),
                    ),
                    (
                        "postgres-heartbeat",
                        old.postgres_heartbeat != config.postgres_heartbeat,
                    ),
                    (
                        "postgres-query-timeout",
                        old.postgres_query_timeout != config.postgres_query_timeout,
                    ),
                    (
                        "postgres-slack",
                        old.postgres_slack != config.postgres_slack,
                    ),
                ] {
                    if changed {
                        warn!(key, "this setting changed but applies at the next start");
                    }
                }
                config.log_warnings();
                let warnings = config.warnings.iter().map(ToString::to_string).collect();
                self.token.set(config.trigger_token.clone());
                self.reconciler.replace(runtime);
                metrics::counter!(m::CONFIG_RELOADS, "result" => "ok").increment(1);
                info!("configuration reloaded");
                Ok(warnings)
            }
        }
    }
}
