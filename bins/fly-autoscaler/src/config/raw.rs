//! The raw layers: the environment and the YAML file, each turned into `key -> Setting` maps that remember where
//! every value came from, then merged (the file wins per key). Nothing here interprets a value; `build` does.
//! Which keys and variables exist is the table in `keys.rs`.

use std::collections::BTreeMap;
use std::fmt;

use figment::Figment;
use figment::providers::{Format, Yaml};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::keys::{CollectorKey, FileConfig, Key};
use super::problem::ConfigProblem;

/// One configured value, the name of the place it came from (`FAS_INTERVAL` or `interval`), which is what every
/// problem message shows, and whether it is a secret (then messages never show it). No `Debug`: the value may be a
/// token.
#[derive(Clone)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) name: String,
    pub(crate) secret: bool,
}

/// The two env-only collectors (`FAS_PROMETHEUS_ADDRESS`, `FAS_TEMPORAL_ADDRESS`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvCollector {
    /// `FAS_PROMETHEUS_*`.
    Prometheus,
    /// `FAS_TEMPORAL_*` (and `TEMPORAL_TLS_*`).
    Temporal,
}

impl EnvCollector {
    const ALL: [EnvCollector; 2] = [EnvCollector::Prometheus, EnvCollector::Temporal];

    /// The collector `type` this defines.
    fn kind(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Temporal => "temporal",
        }
    }

    /// The variables that set `key` for this collector, first set one wins (empty: not settable).
    pub(crate) fn vars(self, key: CollectorKey) -> &'static [&'static str] {
        match self {
            Self::Prometheus => key.prometheus_env(),
            Self::Temporal => key.temporal_env(),
        }
    }

    /// The variable whose presence adds this collector (`FAS_PROMETHEUS_ADDRESS`).
    fn address_var(self) -> &'static str {
        self.vars(CollectorKey::Address)
            .first()
            .copied()
            .unwrap_or_default()
    }
}

/// Where a collector was defined; names the place of each of its keys in messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CollectorOrigin {
    /// `metric-collectors[i]` in the file.
    File(usize),
    /// An env-only collector.
    Env(EnvCollector),
}

impl CollectorOrigin {
    /// How problems with this collector start: `metric-collectors[0]` or
    /// `prometheus collector (FAS_PROMETHEUS_ADDRESS)`.
    pub(crate) fn label(self) -> String {
        match self {
            Self::File(i) => format!("metric-collectors[{i}]"),
            Self::Env(c) => format!("{} collector ({})", c.kind(), c.address_var()),
        }
    }

    /// Where `key` is set for this collector: `metric-collectors[0].query`, `FAS_PROMETHEUS_QUERY`, or
    /// `TEMPORAL_TLS_KEY_DATA or FAS_TEMPORAL_KEY_DATA`.
    pub(crate) fn key_name(self, key: CollectorKey) -> String {
        match self {
            Self::File(i) => format!("metric-collectors[{i}].{}", key.yaml()),
            Self::Env(c) => match c.vars(key) {
                [] => key.yaml().to_owned(),
                vars => vars.join(" or "),
            },
        }
    }
}

/// One collector's raw settings.
pub(crate) struct RawCollector {
    pub(crate) origin: CollectorOrigin,
    pub(crate) fields: BTreeMap<CollectorKey, Setting>,
}

impl RawCollector {
    /// The non-blank setting for `key`, if any.
    pub(crate) fn get(&self, key: CollectorKey) -> Option<&Setting> {
        self.fields.get(&key).filter(|s| !s.value.trim().is_empty())
    }

    /// The trimmed non-blank value for `key`, if any.
    pub(crate) fn text(&self, key: CollectorKey) -> Option<String> {
        self.get(key).map(|s| s.value.trim().to_owned())
    }
}

/// One layer (environment, file, or both merged).
#[derive(Default)]
pub(crate) struct Layer {
    pub(crate) values: BTreeMap<Key, Setting>,
    /// `None`: this layer defines no collector list (the env layer without FAS_PROMETHEUS/TEMPORAL_ADDRESS, or a
    /// file without `metric-collectors`).
    pub(crate) collectors: Option<Vec<RawCollector>>,
}

impl Layer {
    /// The non-blank setting for `key`, if any (blank means "not set", as in the Go version).
    pub(crate) fn get(&self, key: Key) -> Option<&Setting> {
        self.values.get(&key).filter(|s| !s.value.trim().is_empty())
    }

    /// The trimmed non-blank value for `key`, if any.
    pub(crate) fn text(&self, key: Key) -> Option<String> {
        self.get(key).map(|s| s.value.trim().to_owned())
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

fn env_value(env: &BTreeMap<String, String>, name: &str, secret: bool) -> Option<Setting> {
    env.get(name).filter(|v| !v.is_empty()).map(|v| Setting {
        value: v.clone(),
        name: name.to_owned(),
        secret,
    })
}

/// The environment layer: a variable for every key of the table, plus the env-only collectors.
pub(crate) fn env_layer(env: &BTreeMap<String, String>) -> Layer {
    let mut layer = Layer::default();
    for &key in Key::ALL {
        if let Some(s) = env_value(env, key.env(), key.is_secret()) {
            layer.values.insert(key, s);
        }
    }
    let mut collectors = Vec::new();
    for c in EnvCollector::ALL {
        let address = c.address_var();
        if env_value(env, address, false).is_none() {
            continue;
        }
        let mut fields = BTreeMap::new();
        fields.insert(
            CollectorKey::Type,
            Setting {
                value: c.kind().to_owned(),
                name: address.to_owned(),
                secret: false,
            },
        );
        for &key in CollectorKey::ALL {
            if let Some(s) = c
                .vars(key)
                .iter()
                .find_map(|var| env_value(env, var, key.is_secret()))
            {
                fields.insert(key, s);
            }
        }
        collectors.push(RawCollector {
            origin: CollectorOrigin::Env(c),
            fields,
        });
    }
    if !collectors.is_empty() {
        layer.collectors = Some(collectors);
    }
    layer
}

/// Every variable the table reads: the top-level settings' and the env-only collectors' (aliases included).
pub(crate) fn known_env_vars() -> Vec<&'static str> {
    let collector_vars = CollectorKey::ALL
        .iter()
        .flat_map(|&k| EnvCollector::ALL.iter().flat_map(move |c| c.vars(k)));
    Key::ALL
        .iter()
        .map(|k| k.env())
        .chain(collector_vars.copied())
        .collect()
}

/// `FAS_*` variables that no setting reads (probably typos), for a warning.
pub(crate) fn unknown_env_vars(env: &BTreeMap<String, String>) -> Vec<String> {
    let known = known_env_vars();
    env.keys()
        .filter(|k| k.starts_with("FAS_") && !known.contains(&k.as_str()))
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
pub(crate) struct RegionList(pub(crate) String);

impl<'de> Deserialize<'de> for RegionList {
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
        d.deserialize_any(V).map(RegionList)
    }
}

/// Parses the (already expanded) YAML text into a layer. Errors name `file_name` and the key.
pub(crate) fn file_layer(text: &str, file_name: &str) -> Result<Layer, Vec<ConfigProblem>> {
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
    let (values, collectors) = file.into_parts();
    let values = values
        .into_iter()
        .map(|(key, value)| {
            let name = key.yaml().to_owned();
            let secret = key.is_secret();
            (
                key,
                Setting {
                    value,
                    name,
                    secret,
                },
            )
        })
        .collect();
    let collectors = collectors.map(|list| {
        list.into_iter()
            .enumerate()
            .map(|(i, c)| {
                let origin = CollectorOrigin::File(i);
                let fields = c
                    .into_values()
                    .into_iter()
                    .map(|(key, value)| {
                        let name = origin.key_name(key);
                        let secret = key.is_secret();
                        (
                            key,
                            Setting {
                                value,
                                name,
                                secret,
                            },
                        )
                    })
                    .collect();
                RawCollector { origin, fields }
            })
            .collect()
    });
    Ok(Layer { values, collectors })
}

/// Renders figment's errors, one problem each: `config.yml: unknown key `adress` in metric-collectors[0] (did you
/// mean `address`?); valid keys: ...` or `config.yml: regions: invalid type: ...`.
fn render_figment_error(err: figment::Error, file_name: &str) -> Vec<ConfigProblem> {
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
                return ConfigProblem::new(format!(
                    "unknown key `{found}`{place}{hint}; valid keys: {}",
                    expected.join(", ")
                ))
                .at(file_name);
            }
            let message = if parts.is_empty() {
                e.kind.to_string()
            } else {
                format!("{}: {}", render_path(&parts), e.kind)
            };
            ConfigProblem::new(message).at(file_name)
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
pub(crate) fn closest<'a>(found: &str, valid: &[&'a str]) -> Option<&'a str> {
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
