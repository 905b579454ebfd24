//! The metric collectors: each raw collector (file entry or env-only) checked and turned into a
//! [`CollectorConfig`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fas_collect::{GroupBy, MultipleSeries, PrometheusConfig, TemporalConfig};
use secrecy::SecretString;

use super::duration::format_go_duration;
use super::keys::CollectorKey;
use super::problem::{ConfigProblem, Findings};
use super::raw::{RawCollector, Setting};
use super::{CollectorConfig, DEFAULT_COLLECTOR_TIMEOUT, parse};
use crate::fallback::{DEFAULT_FAILURE_THRESHOLD, DEFAULT_MAX_AGE, OnError};

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

/// How long a grouped collector's result serves every app (`group-by`): the app `interval` minus a
/// margin of a tenth of it, at most 1 s, so that the app whose tick ran the query finds the result
/// expired at its next tick and one query runs per interval (ticks drift a little; a result kept
/// for exactly one interval could be reused by that tick and serve for almost two).
pub(crate) fn group_max_age(interval: Duration) -> Duration {
    interval - (interval / 10).min(Duration::from_secs(1))
}

/// Every collector, in order, and each one's `on-error` policy by metric name. A collector with a problem is left
/// out (the problems are recorded).
pub(crate) fn collectors(
    raw: &[RawCollector],
    app_timeout: Duration,
    interval: Duration,
    env: &BTreeMap<String, String>,
    findings: &mut Findings,
) -> (Vec<CollectorConfig>, BTreeMap<String, OnError>) {
    let mut out = Vec::new();
    let mut policies = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for c in raw {
        let before = findings.problems.len();
        let metric_name = metric_name(c, &mut seen, findings);
        let timeout = timeout(c, app_timeout, findings);
        let policy = on_error(c, findings);
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
                "prometheus" => prometheus(c, metric_name, timeout, interval, env, findings),
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
        if findings.problems.len() == before
            && let Some(built) = built
        {
            policies.insert(built.metric_name().to_owned(), policy);
            out.push(built);
        }
    }
    (out, policies)
}

/// `on-error` (`skip`, the default and the Go behaviour; `hold`; `value`) with the settings of its mode:
/// `max-age` (hold, default 5m), `on-error-value` (value, required) and `failure-threshold` (value, at least 1,
/// default 3). A setting of another mode than the one chosen is a problem: it would be ignored.
fn on_error(c: &RawCollector, findings: &mut Findings) -> OnError {
    let mode = c.get(CollectorKey::OnError).map_or_else(
        || "skip".to_owned(),
        |s| s.value.trim().to_ascii_lowercase(),
    );
    let policy = match mode.as_str() {
        "skip" => OnError::Skip,
        "hold" => OnError::Hold {
            max_age: match c.get(CollectorKey::MaxAge) {
                None => DEFAULT_MAX_AGE,
                Some(s) => parse::nonzero_duration(s.value.trim()).unwrap_or_else(|rejected| {
                    findings.problem(rejected.at(s));
                    DEFAULT_MAX_AGE
                }),
            },
        },
        "value" => {
            let failure_threshold = match c.get(CollectorKey::FailureThreshold) {
                None => DEFAULT_FAILURE_THRESHOLD,
                Some(s) => match parse::positive_integer(s.value.trim()) {
                    Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
                    Err(rejected) => {
                        findings.problem(rejected.at(s));
                        DEFAULT_FAILURE_THRESHOLD
                    }
                },
            };
            let value = match c.get(CollectorKey::OnErrorValue) {
                None => {
                    findings.problem(
                        ConfigProblem::new("on-error value required")
                            .at(c.origin.label())
                            .hint(format!(
                                "set {} to the number used after {} consecutive failures (e.g. a safe high value)",
                                c.origin.key_name(CollectorKey::OnErrorValue),
                                failure_threshold
                            )),
                    );
                    0.0
                }
                Some(s) => match s.value.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    _ => {
                        findings.problem(
                            ConfigProblem::invalid(s, "invalid number")
                                .hint("expected a finite number, e.g. 100"),
                        );
                        0.0
                    }
                },
            };
            OnError::Value {
                value,
                failure_threshold,
            }
        }
        _ => {
            if let Some(s) = c.get(CollectorKey::OnError) {
                findings.problem(
                    ConfigProblem::invalid(s, "invalid on-error")
                        .hint("expected skip, hold or value"),
                );
            }
            return OnError::Skip;
        }
    };
    for (key, wanted) in [
        (CollectorKey::MaxAge, "hold"),
        (CollectorKey::OnErrorValue, "value"),
        (CollectorKey::FailureThreshold, "value"),
    ] {
        if let Some(s) = c.get(key)
            && mode != wanted
        {
            findings.problem(
                ConfigProblem::new(format!("{} applies to on-error: {wanted} only", key.yaml()))
                    .at(&s.name)
                    .hint(format!(
                        "set {} to {wanted}, or remove it",
                        c.origin.key_name(CollectorKey::OnError)
                    )),
            );
        }
    }
    policy
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
    } else if fas_expr::is_context_variable(&name) {
        findings.problem(
            ConfigProblem::invalid(
                s,
                "metric name clashes with a context variable of expressions",
            )
            .hint(format!(
                "metric `{name}` would hide the context variable `{name}`; choose another \
                 metric-name (context variables: {}; see docs/expressions.md)",
                fas_expr::COUNT_VARIABLES
                    .iter()
                    .chain(&fas_expr::TIME_VARIABLES)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
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

/// `group-by`: a Prometheus label name, and then a query without `${APP_NAME}` (it runs once for
/// every app).
fn group_by(c: &RawCollector, interval: Duration, findings: &mut Findings) -> Option<GroupBy> {
    let s = c.get(CollectorKey::GroupBy)?;
    let label = s.value.trim();
    if !parse::is_identifier(label) {
        findings.problem(ConfigProblem::invalid(s, "invalid group-by label").hint(
            "must be a prometheus label name (letters, digits and '_', not starting with a digit), \
             e.g. app",
        ));
        return None;
    }
    if let Some(query) = c.get(CollectorKey::Query)
        && referenced_vars(&query.value)
            .iter()
            .any(|n| n == "APP_NAME")
    {
        findings.problem(
            ConfigProblem::new(format!(
                "a query grouped by `{label}` cannot read ${{APP_NAME}}"
            ))
            .at(&query.name)
            .hint(format!(
                "it runs once for every app: drop the app filter and keep the label, e.g. \
                 sum by ({label}) (...), or remove {}",
                c.origin.key_name(CollectorKey::GroupBy)
            )),
        );
    }
    Some(GroupBy::new(label, group_max_age(interval)))
}

fn prometheus(
    c: &RawCollector,
    metric_name: Option<String>,
    timeout: Duration,
    interval: Duration,
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
    let group_by = group_by(c, interval, findings);
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
        group_by,
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
    for key in [CollectorKey::MultipleSeries, CollectorKey::GroupBy] {
        if let Some(s) = c.get(key) {
            findings.problem(
                ConfigProblem::new(format!(
                    "{} applies to prometheus collectors only",
                    key.yaml()
                ))
                .at(&s.name),
            );
        }
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
    fn group_max_age_is_the_interval_minus_a_small_margin() {
        let ms = Duration::from_millis;
        assert_eq!(group_max_age(ms(15_000)), ms(14_000));
        assert_eq!(group_max_age(ms(60_000)), ms(59_000));
        assert_eq!(group_max_age(ms(5_000)), ms(4_500));
        assert_eq!(group_max_age(ms(1_000)), ms(900));
    }

    #[test]
    fn referenced_vars_lists_each_name_once_and_skips_regexp_groups() {
        assert_eq!(
            referenced_vars(r#"x{a="${A}",b="$B",c="$1",d="${A}",e="$$C"}"#),
            ["A", "B"]
        );
    }
}
