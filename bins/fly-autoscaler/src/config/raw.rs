//! The raw layers: the environment and the YAML file, each turned into `key -> Setting` maps that remember where
//! every value came from, then merged (the file wins per key). Nothing here interprets a value; `build` does.

use std::collections::BTreeMap;
use std::fmt;

use figment::Figment;
use figment::providers::{Format, Yaml};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// One configured value and the name of the place it came from (`FAS_INTERVAL` or `interval`), which is what every
/// problem message shows. No `Debug`: the value may be a token.
#[derive(Clone)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) name: String,
}

/// Top-level settings: YAML key <-> environment variable, in documentation order. Every key has a variable
/// (`verbose` got `FAS_VERBOSE`; the base URLs keep the names the Go Fly client reads).
pub const KEYS: &[(&str, &str)] = &[
    ("app-name", "FAS_APP_NAME"),
    ("org", "FAS_ORG"),
    ("regions", "FAS_REGIONS"),
    ("process-group", "FAS_PROCESS_GROUP"),
    ("created-machine-count", "FAS_CREATED_MACHINE_COUNT"),
    ("min-created-machine-count", "FAS_MIN_CREATED_MACHINE_COUNT"),
    ("max-created-machine-count", "FAS_MAX_CREATED_MACHINE_COUNT"),
    ("started-machine-count", "FAS_STARTED_MACHINE_COUNT"),
    ("min-started-machine-count", "FAS_MIN_STARTED_MACHINE_COUNT"),
    ("max-started-machine-count", "FAS_MAX_STARTED_MACHINE_COUNT"),
    ("initial-machine-state", "FAS_INITIAL_MACHINE_STATE"),
    ("concurrency", "FAS_CONCURRENCY"),
    ("interval", "FAS_INTERVAL"),
    ("timeout", "FAS_TIMEOUT"),
    ("app-list-refresh-interval", "FAS_APP_LIST_REFRESH_INTERVAL"),
    ("scale-down-window", "FAS_SCALE_DOWN_WINDOW"),
    ("api-token", "FAS_API_TOKEN"),
    ("verbose", "FAS_VERBOSE"),
    ("log-format", "FAS_LOG_FORMAT"),
    ("metrics-address", "FAS_METRICS_ADDRESS"),
    ("scale-down", "FAS_SCALE_DOWN"),
    ("max-creates-per-tick", "FAS_MAX_CREATES_PER_TICK"),
    ("max-destroys-per-tick", "FAS_MAX_DESTROYS_PER_TICK"),
    ("max-starts-per-tick", "FAS_MAX_STARTS_PER_TICK"),
    ("max-stops-per-tick", "FAS_MAX_STOPS_PER_TICK"),
    ("action-concurrency", "FAS_ACTION_CONCURRENCY"),
    ("flaps-base-url", "FLY_FLAPS_BASE_URL"),
    ("graphql-base-url", "FLY_API_BASE_URL"),
];

/// Environment variables of the env-only prometheus collector: collector key <-> variable.
pub const PROMETHEUS_ENV: &[(&str, &str)] = &[
    ("address", "FAS_PROMETHEUS_ADDRESS"),
    ("metric-name", "FAS_PROMETHEUS_METRIC_NAME"),
    ("query", "FAS_PROMETHEUS_QUERY"),
    ("token", "FAS_PROMETHEUS_TOKEN"),
    ("multiple-series", "FAS_PROMETHEUS_MULTIPLE_SERIES"),
    ("timeout", "FAS_PROMETHEUS_TIMEOUT"),
];

/// Environment variables of the env-only temporal collector: collector key <-> variables (first set one wins).
pub const TEMPORAL_ENV: &[(&str, &[&str])] = &[
    ("address", &["FAS_TEMPORAL_ADDRESS"]),
    ("namespace", &["FAS_TEMPORAL_NAMESPACE"]),
    ("metric-name", &["FAS_TEMPORAL_METRIC_NAME"]),
    ("query", &["FAS_TEMPORAL_QUERY"]),
    (
        "cert-data",
        &["TEMPORAL_TLS_CERT_DATA", "FAS_TEMPORAL_CERT_DATA"],
    ),
    (
        "key-data",
        &["TEMPORAL_TLS_KEY_DATA", "FAS_TEMPORAL_KEY_DATA"],
    ),
    ("ca-data", &["TEMPORAL_TLS_CA_DATA", "FAS_TEMPORAL_CA_DATA"]),
    ("timeout", &["FAS_TEMPORAL_TIMEOUT"]),
];

/// Where a collector was defined; names the place of each of its keys in messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CollectorOrigin {
    /// `metric-collectors[i]` in the file.
    File(usize),
    /// `FAS_PROMETHEUS_*`.
    EnvPrometheus,
    /// `FAS_TEMPORAL_*`.
    EnvTemporal,
}

impl CollectorOrigin {
    /// How problems with this collector start: `metric-collectors[0]` or `FAS_PROMETHEUS_ADDRESS collector`.
    pub(crate) fn label(self) -> String {
        match self {
            Self::File(i) => format!("metric-collectors[{i}]"),
            Self::EnvPrometheus => "prometheus collector (FAS_PROMETHEUS_ADDRESS)".to_owned(),
            Self::EnvTemporal => "temporal collector (FAS_TEMPORAL_ADDRESS)".to_owned(),
        }
    }

    /// Where `key` is set for this collector, for "required" messages.
    pub(crate) fn key_name(self, key: &str) -> String {
        match self {
            Self::File(i) => format!("metric-collectors[{i}].{key}"),
            Self::EnvPrometheus => PROMETHEUS_ENV
                .iter()
                .find(|(k, _)| *k == key)
                .map_or_else(|| key.to_owned(), |(_, v)| (*v).to_owned()),
            Self::EnvTemporal => TEMPORAL_ENV
                .iter()
                .find(|(k, _)| *k == key)
                .map_or_else(|| key.to_owned(), |(_, v)| v.join(" or ")),
        }
    }
}

/// One collector's raw settings.
pub(crate) struct RawCollector {
    pub(crate) origin: CollectorOrigin,
    pub(crate) fields: BTreeMap<&'static str, Setting>,
}

/// One layer (environment, file, or both merged).
#[derive(Default)]
pub(crate) struct Layer {
    pub(crate) values: BTreeMap<&'static str, Setting>,
    /// `None`: this layer defines no collector list (the env layer without FAS_PROMETHEUS/TEMPORAL_ADDRESS, or a
    /// file without `metric-collectors`).
    pub(crate) collectors: Option<Vec<RawCollector>>,
}

impl Layer {
    /// The non-blank setting for `key`, if any (blank means "not set", as in the Go version).
    pub(crate) fn get(&self, key: &str) -> Option<&Setting> {
        self.values.get(key).filter(|s| !s.value.trim().is_empty())
    }

    /// Lays `file` over `self`: every key present in the file wins, and a file collector list replaces ours.
    pub(crate) fn overlay(mut self, file: Layer) -> Layer {
        self.values.extend(file.values);
        if file.collectors.is_some() {
            self.collectors = file.collectors;
        }
        self
    }
}

fn env_value(env: &BTreeMap<String, String>, name: &str) -> Option<Setting> {
    env.get(name).filter(|v| !v.is_empty()).map(|v| Setting {
        value: v.clone(),
        name: name.to_owned(),
    })
}

/// The environment layer: the `KEYS` table plus the env-only collectors.
pub(crate) fn env_layer(env: &BTreeMap<String, String>) -> Layer {
    let mut layer = Layer::default();
    for (key, var) in KEYS {
        if let Some(s) = env_value(env, var) {
            layer.values.insert(key, s);
        }
    }
    let mut collectors = Vec::new();
    if env_value(env, "FAS_PROMETHEUS_ADDRESS").is_some() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "type",
            Setting {
                value: "prometheus".into(),
                name: "FAS_PROMETHEUS_ADDRESS".into(),
            },
        );
        for (key, var) in PROMETHEUS_ENV {
            if let Some(s) = env_value(env, var) {
                fields.insert(*key, s);
            }
        }
        collectors.push(RawCollector {
            origin: CollectorOrigin::EnvPrometheus,
            fields,
        });
    }
    if env_value(env, "FAS_TEMPORAL_ADDRESS").is_some() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "type",
            Setting {
                value: "temporal".into(),
                name: "FAS_TEMPORAL_ADDRESS".into(),
            },
        );
        for (key, vars) in TEMPORAL_ENV {
            if let Some(s) = vars.iter().find_map(|var| env_value(env, var)) {
                fields.insert(*key, s);
            }
        }
        collectors.push(RawCollector {
            origin: CollectorOrigin::EnvTemporal,
            fields,
        });
    }
    if !collectors.is_empty() {
        layer.collectors = Some(collectors);
    }
    layer
}

/// `FAS_*` variables that no setting reads (probably typos), for a warning.
pub(crate) fn unknown_env_vars(env: &BTreeMap<String, String>) -> Vec<String> {
    env.keys()
        .filter(|k| k.starts_with("FAS_"))
        .filter(|k| {
            !KEYS.iter().any(|(_, v)| v == k)
                && !PROMETHEUS_ENV.iter().any(|(_, v)| v == k)
                && !TEMPORAL_ENV.iter().any(|(_, vs)| vs.contains(&k.as_str()))
        })
        .cloned()
        .collect()
}

/// A scalar that YAML may write unquoted: `started-machine-count: 5`, `verbose: true`, `interval: 15s`.
/// Numbers and booleans are kept as their text; interpretation happens later with a message that names the key.
pub(crate) struct Lenient(pub(crate) String);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor).map(Lenient)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// `regions:` as a YAML list (`[iad, ord]`) or a comma separated string (`iad,ord`, like FAS_REGIONS).
pub(crate) struct Regions(pub(crate) String);

impl<'de> Deserialize<'de> for Regions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of regions or a comma separated string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
                let mut out = Vec::new();
                while let Some(Lenient(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(out.join(","))
            }
        }
        d.deserialize_any(V).map(Regions)
    }
}

/// The YAML file, as written. Every scalar is lenient text; unknown keys are rejected by serde.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    app_name: Option<Lenient>,
    org: Option<Lenient>,
    regions: Option<Regions>,
    process_group: Option<Lenient>,
    created_machine_count: Option<Lenient>,
    min_created_machine_count: Option<Lenient>,
    max_created_machine_count: Option<Lenient>,
    started_machine_count: Option<Lenient>,
    min_started_machine_count: Option<Lenient>,
    max_started_machine_count: Option<Lenient>,
    initial_machine_state: Option<Lenient>,
    concurrency: Option<Lenient>,
    interval: Option<Lenient>,
    timeout: Option<Lenient>,
    app_list_refresh_interval: Option<Lenient>,
    scale_down_window: Option<Lenient>,
    api_token: Option<Lenient>,
    verbose: Option<Lenient>,
    log_format: Option<Lenient>,
    metrics_address: Option<Lenient>,
    scale_down: Option<Lenient>,
    max_creates_per_tick: Option<Lenient>,
    max_destroys_per_tick: Option<Lenient>,
    max_starts_per_tick: Option<Lenient>,
    max_stops_per_tick: Option<Lenient>,
    action_concurrency: Option<Lenient>,
    flaps_base_url: Option<Lenient>,
    graphql_base_url: Option<Lenient>,
    metric_collectors: Option<Vec<FileCollector>>,
}

/// One `metric-collectors` entry, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileCollector {
    #[serde(rename = "type")]
    kind: Option<Lenient>,
    metric_name: Option<Lenient>,
    address: Option<Lenient>,
    query: Option<Lenient>,
    token: Option<Lenient>,
    namespace: Option<Lenient>,
    cert_data: Option<Lenient>,
    key_data: Option<Lenient>,
    ca_data: Option<Lenient>,
    multiple_series: Option<Lenient>,
    timeout: Option<Lenient>,
}

fn put(
    map: &mut BTreeMap<&'static str, Setting>,
    key: &'static str,
    name: String,
    value: Option<Lenient>,
) {
    if let Some(Lenient(value)) = value {
        map.insert(key, Setting { value, name });
    }
}

/// Parses the (already expanded) YAML text into a layer. Errors are rendered one per line, naming `file_name`
/// and the key.
pub(crate) fn file_layer(text: &str, file_name: &str) -> Result<Layer, Vec<String>> {
    // An empty or comments-only file is valid and sets nothing (serde_yaml would call it a null document).
    let has_content = text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    });
    let file: FileConfig = if has_content {
        Figment::from(Yaml::string(text))
            .extract()
            .map_err(|e| render_figment_error(e, file_name))?
    } else {
        FileConfig::default()
    };
    let mut m = BTreeMap::new();
    macro_rules! top {
        ($($field:ident => $key:literal),* $(,)?) => {
            $( put(&mut m, $key, $key.to_owned(), file.$field); )*
        };
    }
    top!(
        app_name => "app-name", org => "org", process_group => "process-group",
        created_machine_count => "created-machine-count",
        min_created_machine_count => "min-created-machine-count",
        max_created_machine_count => "max-created-machine-count",
        started_machine_count => "started-machine-count",
        min_started_machine_count => "min-started-machine-count",
        max_started_machine_count => "max-started-machine-count",
        initial_machine_state => "initial-machine-state", concurrency => "concurrency",
        interval => "interval", timeout => "timeout",
        app_list_refresh_interval => "app-list-refresh-interval",
        scale_down_window => "scale-down-window", api_token => "api-token",
        verbose => "verbose", log_format => "log-format", metrics_address => "metrics-address",
        scale_down => "scale-down", max_creates_per_tick => "max-creates-per-tick",
        max_destroys_per_tick => "max-destroys-per-tick", max_starts_per_tick => "max-starts-per-tick",
        max_stops_per_tick => "max-stops-per-tick", action_concurrency => "action-concurrency",
        flaps_base_url => "flaps-base-url", graphql_base_url => "graphql-base-url",
    );
    if let Some(Regions(value)) = file.regions {
        m.insert(
            "regions",
            Setting {
                value,
                name: "regions".to_owned(),
            },
        );
    }
    let collectors = file.metric_collectors.map(|list| {
        list.into_iter()
            .enumerate()
            .map(|(i, c)| {
                let origin = CollectorOrigin::File(i);
                let mut f = BTreeMap::new();
                macro_rules! col {
                    ($($field:ident => $key:literal),* $(,)?) => {
                        $( put(&mut f, $key, origin.key_name($key), c.$field); )*
                    };
                }
                col!(
                    kind => "type", metric_name => "metric-name", address => "address", query => "query",
                    token => "token", namespace => "namespace", cert_data => "cert-data", key_data => "key-data",
                    ca_data => "ca-data",
                    multiple_series => "multiple-series", timeout => "timeout",
                );
                RawCollector { origin, fields: f }
            })
            .collect()
    });
    Ok(Layer {
        values: m,
        collectors,
    })
}

/// Renders figment's errors one per line: `config.yml: unknown key `adress` in metric-collectors[0] (did you mean
/// `address`?); valid keys: ...` or `config.yml: regions: invalid type: ...`.
fn render_figment_error(err: figment::Error, file_name: &str) -> Vec<String> {
    err.into_iter()
        .map(|e| {
            let mut parts: Vec<&str> = e.path.iter().map(String::as_str).collect();
            if let figment::error::Kind::UnknownField(found, expected) = &e.kind {
                // The path ends with the unknown key itself.
                if parts.last() == Some(&found.as_str()) {
                    parts.pop();
                }
                let place = if parts.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", render_path(&parts))
                };
                let hint = closest(found, expected)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return format!(
                    "{file_name}: unknown key `{found}`{place}{hint}; valid keys: {}",
                    expected.join(", ")
                );
            }
            if parts.is_empty() {
                format!("{file_name}: {}", e.kind)
            } else {
                format!("{file_name}: {}: {}", render_path(&parts), e.kind)
            }
        })
        .collect()
}

/// `["metric-collectors", "0", "query"]` -> `metric-collectors[0].query`.
fn render_path(parts: &[&str]) -> String {
    let mut path = String::new();
    for part in parts {
        if part.parse::<usize>().is_ok() {
            path.push_str(&format!("[{part}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
        }
    }
    path
}

/// The valid key closest to a misspelt one, if it is close (edit distance at most 2, or 3 for long keys).
fn closest<'a>(found: &str, valid: &[&'a str]) -> Option<&'a str> {
    let limit = if found.len() > 12 { 3 } else { 2 };
    valid
        .iter()
        .map(|v| (edit_distance(found, v), *v))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, v)| v)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
