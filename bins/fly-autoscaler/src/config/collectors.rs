//! The metric collectors: each raw collector (file entry or env-only) checked and turned into a
//! [`CollectorConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fas_collect::{MultipleSeries, PrometheusConfig, TemporalConfig};
use secrecy::SecretString;

use super::duration::format_go_duration;
use super::keys::CollectorKey;
use super::problem::{ConfigProblem, Findings};
use super::raw::{RawCollector, Setting};
use super::{CollectorConfig, DEFAULT_COLLECTOR_TIMEOUT, parse};

/// The variables a text refers to (`$VAR` / `${VAR}`), in order, without duplicates; `$1` and `$$` are not
/// variables (see [`fas_collect::expand_vars`]).
pub(crate) fn referenced_vars(text: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::<String>::new());
    fas_collect::expand_vars(text, &|name| {
        let mut names = names.borrow_mut();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        None
    });
    names.into_inner()
}

/// The warning for a variable that is referenced but not set (it expands to the empty string, as in Go).
pub(crate) fn unset_variable(place: impl Into<String>, name: &str) -> ConfigProblem {
    ConfigProblem::new(format!("unset variable `{name}`"))
        .at(place)
        .hint("it expands to the empty string")
}

/// The environment values a query refers to (`${VAR}` / `$VAR`, not `APP_NAME`, which the collector fills in per
/// app), so that a collector carries only what it needs instead of the whole environment (which holds the API
/// token). A variable that is not set maps to the empty string, like Go's `os.Expand`, with a warning.
fn query_env(
    query: &Setting,
    env: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> BTreeMap<String, String> {
    referenced_vars(&query.value)
        .into_iter()
        .filter(|n| n != "APP_NAME")
        .map(|n| {
            let value = match env.get(&n) {
                Some(v) => v.clone(),
                None => {
                    findings.warn(unset_variable(&query.name, &n));
                    String::new()
                }
            };
            (n, value)
        })
        .collect()
}

/// Every collector, in order. A collector with a problem is left out (the problems are recorded).
pub(crate) fn collectors(
    raw: &[RawCollector],
    app_timeout: Duration,
    env: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> Vec<CollectorConfig> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for c in raw {
        let before = findings.problems.len();
        let metric_name = metric_name(c, &mut seen, findings);
        let timeout = timeout(c, app_timeout, findings);
        let built = match c.get(CollectorKey::Type) {
            None => {
                findings.problem(
                    ConfigProblem::new("type required")
                        .at(c.origin.label())
                        .hint(format!(
                            "set {} to prometheus or temporal",
                            c.origin.key_name(CollectorKey::Type)
                        )),
                );
                None
            }
            Some(s) => match s.value.trim() {
                "prometheus" => prometheus(c, metric_name, timeout, env, findings),
                "temporal" => temporal(c, metric_name, timeout, env, findings),
                _ => {
                    findings.problem(
                        ConfigProblem::invalid(s, "invalid type")
                            .hint("expected prometheus or temporal"),
                    );
                    None
                }
            },
        };
        if findings.problems.len() == before {
            out.extend(built);
        }
    }
    out
}

/// `metric-name`: required, an identifier, unique.
fn metric_name(
    c: &RawCollector,
    seen: &mut BTreeSet<String>,
    findings: &mut Findings,
) -> Option<String> {
    let label = c.origin.label();
    let Some(s) = c.get(CollectorKey::MetricName) else {
        findings.problem(
            ConfigProblem::new("metric name required")
                .at(label)
                .hint(format!(
                    "set {}",
                    c.origin.key_name(CollectorKey::MetricName)
                )),
        );
        return None;
    };
    let name = s.value.trim().to_owned();
    if !parse::is_identifier(&name) {
        findings.problem(
            ConfigProblem::invalid(s, "invalid metric name").hint(
                "must be a variable name (letters, digits and '_', not starting with a digit)",
            ),
        );
    } else if !seen.insert(name.clone()) {
        findings.problem(
            ConfigProblem::new("duplicate metric name")
                .at(label)
                .value(&name)
                .hint("each collector needs its own"),
        );
    }
    Some(name)
}

/// `timeout`: 10 s by default, never more than the app timeout.
fn timeout(c: &RawCollector, app_timeout: Duration, findings: &mut Findings) -> Duration {
    let default = DEFAULT_COLLECTOR_TIMEOUT.min(app_timeout);
    let Some(s) = c.get(CollectorKey::Timeout) else {
        return default;
    };
    match parse::nonzero_duration(s.value.trim()) {
        Ok(d) if d > app_timeout => {
            findings.problem(
                ConfigProblem::invalid(s, "invalid collector timeout").hint(format!(
                    "must not exceed the app timeout {}",
                    format_go_duration(app_timeout)
                )),
            );
            default
        }
        Ok(d) => d,
        Err(rejected) => {
            findings.problem(rejected.at(s));
            default
        }
    }
}

/// `{label}: {what} required: set {key}` when `key` is missing.
fn required(
    c: &RawCollector,
    key: CollectorKey,
    what: &str,
    findings: &mut Findings,
) -> Option<String> {
    let value = c.text(key);
    if value.is_none() {
        findings.problem(
            ConfigProblem::new(format!("{what} required"))
                .at(c.origin.label())
                .hint(format!("set {}", c.origin.key_name(key))),
        );
    }
    value
}

fn prometheus(
    c: &RawCollector,
    metric_name: Option<String>,
    timeout: Duration,
    env: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> Option<CollectorConfig> {
    let address = required(c, CollectorKey::Address, "prometheus address", findings);
    let query = required(c, CollectorKey::Query, "prometheus query", findings);
    let multiple_series = match c.get(CollectorKey::MultipleSeries) {
        None => MultipleSeries::default(),
        Some(s) => parse::multiple_series(s.value.trim()).unwrap_or_else(|rejected| {
            findings.problem(rejected.at(s));
            MultipleSeries::default()
        }),
    };
    let env = c
        .get(CollectorKey::Query)
        .map(|q| query_env(q, env, findings))
        .unwrap_or_default();
    Some(CollectorConfig::Prometheus(PrometheusConfig {
        env,
        metric_name: metric_name?,
        address: address?,
        query: query?,
        token: c.text(CollectorKey::Token).map(SecretString::from),
        timeout,
        multiple_series,
    }))
}

fn temporal(
    c: &RawCollector,
    metric_name: Option<String>,
    timeout: Duration,
    env: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> Option<CollectorConfig> {
    let address = required(c, CollectorKey::Address, "temporal address", findings);
    if let Some(s) = c.get(CollectorKey::MultipleSeries) {
        findings.problem(
            ConfigProblem::new("multiple-series applies to prometheus collectors only").at(&s.name),
        );
    }
    let cert = c.text(CollectorKey::CertData);
    let key = c.get(CollectorKey::KeyData).map(|s| s.value.clone());
    if cert.is_some() != key.is_some() {
        findings.problem(
            ConfigProblem::new("TLS needs both a certificate and a key")
                .at(c.origin.label())
                .hint(format!(
                    "set {} and {} together",
                    c.origin.key_name(CollectorKey::CertData),
                    c.origin.key_name(CollectorKey::KeyData)
                )),
        );
    }
    let env = c
        .get(CollectorKey::Query)
        .map(|q| query_env(q, env, findings))
        .unwrap_or_default();
    Some(CollectorConfig::Temporal(TemporalConfig {
        env,
        metric_name: metric_name?,
        address: address?,
        namespace: c
            .text(CollectorKey::Namespace)
            .unwrap_or_else(|| "default".to_owned()),
        query: c.text(CollectorKey::Query),
        cert_pem: cert,
        key_pem: key.map(SecretString::from),
        ca_pem: c.text(CollectorKey::CaData),
        timeout,
    }))
}

/// The metric names declared by the collectors, even by a collector with other problems, so that expressions are
/// not also reported for reading them.
pub(crate) fn declared_names(raw: &[RawCollector]) -> Vec<String> {
    raw.iter()
        .filter_map(|c| c.text(CollectorKey::MetricName))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_vars_lists_each_name_once_and_skips_regexp_groups() {
        assert_eq!(
            referenced_vars(r#"x{a="${A}",b="$B",c="$1",d="${A}",e="$$C"}"#),
            ["A", "B"]
        );
    }
}
