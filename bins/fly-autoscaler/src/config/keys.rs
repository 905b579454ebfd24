//! The one table of configuration keys.
//!
//! Each setting is written once, in the [`config_keys!`] invocation at the bottom of this file: its YAML key, its
//! environment variable(s), its raw type and whether it is a secret. The macro expands the table into
//! - the typed key enums [`Key`] (top level) and [`CollectorKey`] (`metric-collectors` entries), which `build`
//!   reads values by, so a misspelt key is a compile error;
//! - the public name tables [`KEYS`], [`PROMETHEUS_ENV`] and [`TEMPORAL_ENV`] (documentation and tests);
//! - the serde structs of the file ([`FileConfig`], [`FileCollector`]) with `deny_unknown_fields`, whose field
//!   renames are the same YAML keys, so unknown-key errors list exactly the keys of the table.

use serde::Deserialize;

use super::raw::{Lenient, RegionList};

/// A raw value of the file, as text (every scalar is kept as written; `build` interprets it).
pub(crate) trait RawText {
    /// The value as text.
    fn into_text(self) -> String;
}

impl RawText for Lenient {
    fn into_text(self) -> String {
        self.0
    }
}

impl RawText for RegionList {
    fn into_text(self) -> String {
        self.0
    }
}

/// Expands the key table. Rows:
/// - top level: `Variant(field: RawType) = "yaml-key", env "FAS_VAR";`
/// - collector: `Variant(field) = "yaml-key", prometheus "VAR", temporal ["VAR", "ALIAS"...];`, each variable
///   part optional (temporal variables are tried in order, the first set one wins).
///
/// A row ending in `[secret]` holds a secret: messages never show its value.
macro_rules! config_keys {
    (@secret) => { false };
    (@secret secret) => { true };
    (
        top {
            $( $(#[doc = $tdoc:literal])*
               $tvar:ident ( $tfield:ident : $tty:ty ) = $tkey:literal, env $tenv:literal $( [$tsecret:ident] )? ; )*
        }
        collector {
            $( $(#[doc = $cdoc:literal])*
               $cvar:ident ( $cfield:ident ) = $ckey:literal
               $(, prometheus $penv:literal)?
               $(, temporal [ $($tmpenv:literal),+ ])?
               $( [$csecret:ident] )? ; )*
        }
    ) => {
        /// A top-level setting (one row of the key table).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) enum Key {
            $( $(#[doc = $tdoc])* $tvar, )*
        }

        impl Key {
            /// Every top-level setting, in documentation order.
            pub(crate) const ALL: &'static [Key] = &[ $( Key::$tvar ),* ];

            /// The YAML key (`app-name`).
            pub(crate) const fn yaml(self) -> &'static str {
                match self { $( Key::$tvar => $tkey, )* }
            }

            /// The environment variable (`FAS_APP_NAME`).
            pub(crate) const fn env(self) -> &'static str {
                match self { $( Key::$tvar => $tenv, )* }
            }

            /// Whether the value is a secret (never shown in messages).
            pub(crate) const fn is_secret(self) -> bool {
                match self { $( Key::$tvar => config_keys!(@secret $($tsecret)?), )* }
            }
        }

        /// Top-level settings: YAML key <-> environment variable, in documentation order. Every key has a variable
        /// (`verbose` got `FAS_VERBOSE`; the base URLs keep the names the Go Fly client reads).
        pub const KEYS: &[(&str, &str)] = &[ $( ($tkey, $tenv), )* ];

        /// A key of a `metric-collectors` entry (one row of the collector key table).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) enum CollectorKey {
            $( $(#[doc = $cdoc])* $cvar, )*
        }

        impl CollectorKey {
            /// Every collector key, in documentation order.
            pub(crate) const ALL: &'static [CollectorKey] = &[ $( CollectorKey::$cvar ),* ];

            /// The YAML key (`metric-name`).
            pub(crate) const fn yaml(self) -> &'static str {
                match self { $( CollectorKey::$cvar => $ckey, )* }
            }

            /// The variable of the env-only prometheus collector, if this key has one.
            pub(crate) const fn prometheus_env(self) -> &'static [&'static str] {
                match self { $( CollectorKey::$cvar => &[ $($penv)? ], )* }
            }

            /// The variables of the env-only temporal collector, first set one wins (none: not settable).
            pub(crate) const fn temporal_env(self) -> &'static [&'static str] {
                match self { $( CollectorKey::$cvar => &[ $( $($tmpenv),+ )? ], )* }
            }

            /// Whether the value is a secret (never shown in messages).
            pub(crate) const fn is_secret(self) -> bool {
                match self { $( CollectorKey::$cvar => config_keys!(@secret $($csecret)?), )* }
            }
        }

        /// Environment variables of the env-only prometheus collector: collector key <-> variable.
        pub const PROMETHEUS_ENV: &[(&str, &str)] = &[ $( $( ($ckey, $penv), )? )* ];

        /// Environment variables of the env-only temporal collector: collector key <-> variables (first set one
        /// wins).
        pub const TEMPORAL_ENV: &[(&str, &[&str])] = &[ $( $( ($ckey, &[ $($tmpenv),+ ]), )? )* ];

        /// The YAML file, as written. Every scalar is lenient text; unknown keys are rejected by serde.
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct FileConfig {
            $( #[serde(rename = $tkey)] $tfield: Option<$tty>, )*
            #[serde(rename = "metric-collectors")]
            metric_collectors: Option<Vec<FileCollector>>,
        }

        impl FileConfig {
            /// The top-level values present in the file (as text) and the collector list, if any.
            pub(crate) fn into_parts(self) -> (Vec<(Key, String)>, Option<Vec<FileCollector>>) {
                let mut values = Vec::new();
                $( if let Some(v) = self.$tfield { values.push((Key::$tvar, RawText::into_text(v))); } )*
                (values, self.metric_collectors)
            }
        }

        /// One `metric-collectors` entry, as written.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct FileCollector {
            $( #[serde(rename = $ckey)] $cfield: Option<Lenient>, )*
        }

        impl FileCollector {
            /// The values present in this entry, as text.
            pub(crate) fn into_values(self) -> Vec<(CollectorKey, String)> {
                let mut values = Vec::new();
                $( if let Some(v) = self.$cfield { values.push((CollectorKey::$cvar, RawText::into_text(v))); } )*
                values
            }
        }
    };
}

config_keys! {
    top {
        /// App to scale; may contain `*` wildcards.
        AppName(app_name: Lenient) = "app-name", env "FAS_APP_NAME";
        /// Organization slug (wildcard mode).
        Org(org: Lenient) = "org", env "FAS_ORG";
        /// Regions for new machines.
        Regions(regions: RegionList) = "regions", env "FAS_REGIONS";
        /// Process group acted on.
        ProcessGroup(process_group: Lenient) = "process-group", env "FAS_PROCESS_GROUP";
        /// Created count (both bounds).
        CreatedMachineCount(created_machine_count: Lenient) = "created-machine-count", env "FAS_CREATED_MACHINE_COUNT";
        /// Created lower bound.
        MinCreatedMachineCount(min_created_machine_count: Lenient) = "min-created-machine-count", env "FAS_MIN_CREATED_MACHINE_COUNT";
        /// Created upper bound.
        MaxCreatedMachineCount(max_created_machine_count: Lenient) = "max-created-machine-count", env "FAS_MAX_CREATED_MACHINE_COUNT";
        /// Started count (both bounds).
        StartedMachineCount(started_machine_count: Lenient) = "started-machine-count", env "FAS_STARTED_MACHINE_COUNT";
        /// Started lower bound.
        MinStartedMachineCount(min_started_machine_count: Lenient) = "min-started-machine-count", env "FAS_MIN_STARTED_MACHINE_COUNT";
        /// Started upper bound.
        MaxStartedMachineCount(max_started_machine_count: Lenient) = "max-started-machine-count", env "FAS_MAX_STARTED_MACHINE_COUNT";
        /// State of new machines.
        InitialMachineState(initial_machine_state: Lenient) = "initial-machine-state", env "FAS_INITIAL_MACHINE_STATE";
        /// Apps reconciled at once.
        Concurrency(concurrency: Lenient) = "concurrency", env "FAS_CONCURRENCY";
        /// Time between reconciliations.
        Interval(interval: Lenient) = "interval", env "FAS_INTERVAL";
        /// Limit on one app's reconciliation.
        Timeout(timeout: Lenient) = "timeout", env "FAS_TIMEOUT";
        /// Wildcard app list refresh.
        AppListRefreshInterval(app_list_refresh_interval: Lenient) = "app-list-refresh-interval", env "FAS_APP_LIST_REFRESH_INTERVAL";
        /// Scale-down stabilization window.
        ScaleDownWindow(scale_down_window: Lenient) = "scale-down-window", env "FAS_SCALE_DOWN_WINDOW";
        /// Most machines (or percent of the current count) a scale-up adds per tick.
        ScaleUpMaxStep(scale_up_max_step: Lenient) = "scale-up-max-step", env "FAS_SCALE_UP_MAX_STEP";
        /// Most machines (or percent of the current count) a scale-down removes per tick.
        ScaleDownMaxStep(scale_down_max_step: Lenient) = "scale-down-max-step", env "FAS_SCALE_DOWN_MAX_STEP";
        /// No scale-down within this time after a scale-up.
        ScaleDownCooldown(scale_down_cooldown: Lenient) = "scale-down-cooldown", env "FAS_SCALE_DOWN_COOLDOWN";
        /// IANA time zone of the calendar variables of expressions (`hour`, `weekday`...).
        Timezone(timezone: Lenient) = "timezone", env "FAS_TIMEZONE";
        /// Fly API token.
        ApiToken(api_token: Lenient) = "api-token", env "FAS_API_TOKEN" [secret];
        /// Debug logging.
        Verbose(verbose: Lenient) = "verbose", env "FAS_VERBOSE";
        /// Log output format.
        LogFormat(log_format: Lenient) = "log-format", env "FAS_LOG_FORMAT";
        /// `/metrics` listen address.
        MetricsAddress(metrics_address: Lenient) = "metrics-address", env "FAS_METRICS_ADDRESS";
        /// Stop or suspend.
        ScaleDown(scale_down: Lenient) = "scale-down", env "FAS_SCALE_DOWN";
        /// Per-tick create cap.
        MaxCreatesPerTick(max_creates_per_tick: Lenient) = "max-creates-per-tick", env "FAS_MAX_CREATES_PER_TICK";
        /// Per-tick destroy cap.
        MaxDestroysPerTick(max_destroys_per_tick: Lenient) = "max-destroys-per-tick", env "FAS_MAX_DESTROYS_PER_TICK";
        /// Per-tick start cap.
        MaxStartsPerTick(max_starts_per_tick: Lenient) = "max-starts-per-tick", env "FAS_MAX_STARTS_PER_TICK";
        /// Per-tick stop cap.
        MaxStopsPerTick(max_stops_per_tick: Lenient) = "max-stops-per-tick", env "FAS_MAX_STOPS_PER_TICK";
        /// Machine calls in flight per app.
        ActionConcurrency(action_concurrency: Lenient) = "action-concurrency", env "FAS_ACTION_CONCURRENCY";
        /// Machines API base URL.
        FlapsBaseUrl(flaps_base_url: Lenient) = "flaps-base-url", env "FLY_FLAPS_BASE_URL";
        /// GraphQL API base URL.
        GraphqlBaseUrl(graphql_base_url: Lenient) = "graphql-base-url", env "FLY_API_BASE_URL";
        /// Bearer token of `POST /trigger` (and the endpoint's switch: none = 404).
        TriggerToken(trigger_token: Lenient) = "trigger-token", env "FAS_TRIGGER_TOKEN" [secret];
        /// Shadow mode: plan without mutating calls.
        DryRun(dry_run: Lenient) = "dry-run", env "FAS_DRY_RUN";
        /// Least time between two triggered ticks of one app.
        TriggerMinGap(trigger_min_gap: Lenient) = "trigger-min-gap", env "FAS_TRIGGER_MIN_GAP";
        /// PostgreSQL URL of the replicas' coordination (none = this process runs alone).
        PostgresUrl(postgres_url: Lenient) = "postgres-url", env "FAS_POSTGRES_URL" [secret];
        /// Period of the coordination round (count replicas, confirm the session, take and release locks).
        PostgresHeartbeat(postgres_heartbeat: Lenient) = "postgres-heartbeat", env "FAS_POSTGRES_HEARTBEAT";
        /// Bound of each coordination query; over it the replica stops acting until it reconnects.
        PostgresQueryTimeout(postgres_query_timeout: Lenient) = "postgres-query-timeout", env "FAS_POSTGRES_QUERY_TIMEOUT";
        /// Apps a replica may hold above its fair share before it releases some.
        PostgresSlack(postgres_slack: Lenient) = "postgres-slack", env "FAS_POSTGRES_SLACK";
    }
    collector {
        /// `prometheus` or `temporal` (env collectors: implied by the address variable).
        Type(kind) = "type";
        /// Variable name in expressions.
        MetricName(metric_name) = "metric-name", prometheus "FAS_PROMETHEUS_METRIC_NAME", temporal ["FAS_TEMPORAL_METRIC_NAME"];
        /// Prometheus base URL or Temporal `host:port`.
        Address(address) = "address", prometheus "FAS_PROMETHEUS_ADDRESS", temporal ["FAS_TEMPORAL_ADDRESS"];
        /// PromQL or Temporal visibility query.
        Query(query) = "query", prometheus "FAS_PROMETHEUS_QUERY", temporal ["FAS_TEMPORAL_QUERY"];
        /// Prometheus token.
        Token(token) = "token", prometheus "FAS_PROMETHEUS_TOKEN" [secret];
        /// Temporal namespace.
        Namespace(namespace) = "namespace", temporal ["FAS_TEMPORAL_NAMESPACE"];
        /// Temporal client certificate.
        CertData(cert_data) = "cert-data", temporal ["TEMPORAL_TLS_CERT_DATA", "FAS_TEMPORAL_CERT_DATA"];
        /// Temporal client key.
        KeyData(key_data) = "key-data", temporal ["TEMPORAL_TLS_KEY_DATA", "FAS_TEMPORAL_KEY_DATA"] [secret];
        /// Temporal CA bundle.
        CaData(ca_data) = "ca-data", temporal ["TEMPORAL_TLS_CA_DATA", "FAS_TEMPORAL_CA_DATA"];
        /// Several Prometheus series: `first`, `error` or `sum`.
        MultipleSeries(multiple_series) = "multiple-series", prometheus "FAS_PROMETHEUS_MULTIPLE_SERIES";
        /// Batch collection: the label naming the app in one query for every app (prometheus only).
        GroupBy(group_by) = "group-by", prometheus "FAS_PROMETHEUS_GROUP_BY";
        /// Limit on one collection.
        Timeout(timeout) = "timeout", prometheus "FAS_PROMETHEUS_TIMEOUT", temporal ["FAS_TEMPORAL_TIMEOUT"];
        /// What a failed collection becomes: `skip` (the Go behaviour), `hold` or `value`.
        OnError(on_error) = "on-error", prometheus "FAS_PROMETHEUS_ON_ERROR", temporal ["FAS_TEMPORAL_ON_ERROR"];
        /// The value `on-error: value` uses.
        OnErrorValue(on_error_value) = "on-error-value", prometheus "FAS_PROMETHEUS_ON_ERROR_VALUE", temporal ["FAS_TEMPORAL_ON_ERROR_VALUE"];
        /// How old the last good value `on-error: hold` uses may be.
        MaxAge(max_age) = "max-age", prometheus "FAS_PROMETHEUS_MAX_AGE", temporal ["FAS_TEMPORAL_MAX_AGE"];
        /// Consecutive failures before `on-error: value` uses its value.
        FailureThreshold(failure_threshold) = "failure-threshold", prometheus "FAS_PROMETHEUS_FAILURE_THRESHOLD", temporal ["FAS_TEMPORAL_FAILURE_THRESHOLD"];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_env_names_are_unique() {
        let mut yaml: Vec<&str> = Key::ALL.iter().map(|k| k.yaml()).collect();
        let mut env: Vec<&str> = Key::ALL.iter().map(|k| k.env()).collect();
        let n = yaml.len();
        yaml.sort_unstable();
        yaml.dedup();
        env.extend(CollectorKey::ALL.iter().flat_map(|k| k.prometheus_env()));
        env.extend(CollectorKey::ALL.iter().flat_map(|k| k.temporal_env()));
        let m = env.len();
        env.sort_unstable();
        env.dedup();
        assert_eq!((yaml.len(), env.len()), (n, m));
    }

    #[test]
    fn the_public_tables_are_the_enum_rows() {
        let keys: Vec<(&str, &str)> = Key::ALL.iter().map(|k| (k.yaml(), k.env())).collect();
        assert_eq!(keys, KEYS);
        let prom: Vec<(&str, &str)> = CollectorKey::ALL
            .iter()
            .flat_map(|k| k.prometheus_env().iter().map(move |v| (k.yaml(), *v)))
            .collect();
        assert_eq!(prom, PROMETHEUS_ENV);
        let temporal: Vec<(&str, &[&str])> = CollectorKey::ALL
            .iter()
            .filter(|k| !k.temporal_env().is_empty())
            .map(|k| (k.yaml(), k.temporal_env()))
            .collect();
        assert_eq!(temporal, TEMPORAL_ENV);
        let secrets: Vec<&str> = Key::ALL
            .iter()
            .filter(|k| k.is_secret())
            .map(|k| k.yaml())
            .chain(
                CollectorKey::ALL
                    .iter()
                    .filter(|k| k.is_secret())
                    .map(|k| k.yaml()),
            )
            .collect();
        assert_eq!(
            secrets,
            [
                "api-token",
                "trigger-token",
                "postgres-url",
                "token",
                "key-data"
            ]
        );
    }
}
