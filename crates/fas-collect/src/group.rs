//! Batch collection (`group-by`): one Prometheus query answers every app.
//!
//! [`GroupBy`] is the configuration, [`Grouped`] a collector's grouping (label, expanded query,
//! cache) and [`GroupCache`] the shared result: it keeps the last successful result with the time
//! its query started, and answers from it while it is younger than `max_age` and not invalidated.
//! Otherwise one caller runs the query while the others wait for it (single flight, a tokio mutex
//! held during the query): they all get its result, or all get a copy of its error. A failed
//! query is not kept: the next call that starts after the failure queries again. A caller whose
//! query is abandoned (its future dropped, e.g. by the tick's deadline) leaves nothing behind: the
//! next waiter queries itself.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::PrometheusConfig;
use crate::error::{CollectError, Origin, copy_of};
use crate::expand::expand_vars;

/// Batch collection: one query answers every app (`group-by` in the configuration).
///
/// The query has no per-app filter and keeps the label that names the app, e.g.
/// `sum by (app) (queue_depth)`; each app's value is the sample whose `label` equals the app's
/// name. An app without such a sample gets [`CollectError::EmptyResult`], as an ungrouped query
/// with an empty result; samples without the label are ignored (logged at debug level); several
/// samples with the same label value follow [`PrometheusConfig::multiple_series`], per value.
/// The query's `${VAR}`s are expanded once; it may not read `${APP_NAME}`.
///
/// The result is kept and shared by every app for `max_age` after its query started (the binary
/// uses the app `interval` minus a small margin, so one query runs per interval instead of one per
/// app). When it is older, the next collection queries again, once: collections arriving while
/// that query runs wait for it and get its result, or its error. A failed query is not kept (the
/// next collection retries). [`crate::Collector::invalidate`] makes the next collection query again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBy {
    /// The label whose value is the app name (`app`); a Prometheus label name.
    pub label: String,
    /// How long a result serves every app (from the start of its query).
    pub max_age: Duration,
}

impl GroupBy {
    /// Groups by `label`, keeping each result for `max_age`.
    pub fn new(label: &str, max_age: Duration) -> GroupBy {
        GroupBy {
            label: label.to_owned(),
            max_age,
        }
    }
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The grouping of a grouped Prometheus collector.
pub(crate) struct Grouped {
    /// The label whose value names the app.
    pub(crate) label: String,
    /// The query with its `${VAR}`s expanded (it has no `${APP_NAME}`).
    pub(crate) query: String,
    /// The shared result.
    pub(crate) cache: GroupCache,
}

impl Grouped {
    /// Checks the label and the query of `cfg` (errors name the key: `group-by`, `query`).
    pub(crate) fn new(group_by: &GroupBy, cfg: &PrometheusConfig) -> Result<Grouped, CollectError> {
        let config_error = |key: &'static str, message: String| CollectError::Config {
            metric: cfg.metric_name.clone(),
            key,
            message,
            source: None,
        };
        let label = group_by.label.trim();
        if !is_label_name(label) {
            return Err(config_error(
                "group-by",
                format!(
                    "`{label}` is not a prometheus label name (letters, digits and '_', not \
                     starting with a digit)"
                ),
            ));
        }
        let reads_app = std::cell::Cell::new(false);
        let query = expand_vars(&cfg.query, &|name| {
            if name == "APP_NAME" {
                reads_app.set(true);
                None
            } else {
                cfg.env.get(name).cloned()
            }
        });
        if reads_app.get() {
            return Err(config_error(
                "query",
                format!(
                    "a query grouped by `{label}` runs once for every app and cannot read \
                     ${{APP_NAME}}: drop the app filter and keep the label, e.g. sum by \
                     ({label}) (...)"
                ),
            ));
        }
        Ok(Grouped {
            label: label.to_owned(),
            query,
            cache: GroupCache::new(group_by.max_age),
        })
    }

    /// Groups a vector's samples (labels, value as written) by this label; every value is parsed
    /// with `parse` (a value that is not a number fails the whole result).
    pub(crate) fn group(
        &self,
        at: &Origin,
        samples: impl ExactSizeIterator<Item = (BTreeMap<String, String>, String)>,
        parse: impl Fn(&str) -> Result<f64, CollectError>,
    ) -> Result<Groups, CollectError> {
        let series = samples.len();
        let mut groups = Groups::new();
        let mut unlabelled = 0;
        for (mut labels, value) in samples {
            match labels.remove(&self.label) {
                Some(key) => groups.entry(key).or_default().push(parse(&value)?),
                None => unlabelled += 1,
            }
        }
        if unlabelled > 0 {
            tracing::debug!(
                metric = %at.metric,
                address = %at.address,
                label = %self.label,
                unlabelled,
                "prometheus samples without the group-by label are ignored"
            );
        }
        tracing::debug!(
            metric = %at.metric,
            address = %at.address,
            label = %self.label,
            series,
            groups = groups.len(),
            "grouped prometheus query answered"
        );
        Ok(groups)
    }
}

/// The decoded result of a grouped query: label value → the values of its series, in
/// Prometheus' order (the collector applies its multiple-series rule per label value).
pub(crate) type Groups = HashMap<String, Vec<f64>>;

/// The last result of a grouped query, shared by every app (see the module docs).
pub(crate) struct GroupCache {
    max_age: Duration,
    /// Bumped by [`GroupCache::invalidate`]. A query remembers the epoch it started in; a call
    /// uses a result (or shares a failure) only from a query that started in the epoch the call
    /// began in or later, i.e. after every invalidation that happened before the call.
    epoch: AtomicU64,
    /// How many queries have finished (succeeded or failed); read before waiting on `state`, so a
    /// waiter can tell that the query it waited for finished.
    finished: AtomicU64,
    /// Held while a query runs.
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last successful result.
    last: Option<Fetched>,
    /// The last finished query, if it failed (its error is handed to the callers that waited for it).
    failed: Option<Failed>,
}

struct Failed {
    epoch: u64,
    err: Arc<CollectError>,
}

struct Fetched {
    started: Instant,
    epoch: u64,
    groups: Arc<Groups>,
}

impl GroupCache {
    /// An empty cache whose results are used for `max_age` after their query started.
    pub(crate) fn new(max_age: Duration) -> GroupCache {
        GroupCache {
            max_age,
            epoch: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The configured maximum age.
    pub(crate) fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Makes every later call ignore the results of queries started before this one (the
    /// result kept, and a query in flight: its own caller still gets it).
    pub(crate) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The current result: the kept one if fresh, else the result of one query run by `fetch`
    /// (shared with every caller waiting meanwhile).
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<Groups>, CollectError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Groups, CollectError>>,
    {
        let need = self.epoch.load(Ordering::Acquire);
        let ticket = self.finished.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if let Some(groups) = self.fresh(&state, need) {
            return Ok(groups);
        }
        if self.finished.load(Ordering::Acquire) != ticket
            && let Some(failed) = &state.failed
            && failed.epoch >= need
        {
            // The query this caller waited for failed: the same error, no second query.
            return Err(copy_of(&failed.err));
        }
        let started = Instant::now();
        let epoch = self.epoch.load(Ordering::Acquire);
        let result = fetch().await;
        self.finished.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(groups) => {
                let groups = Arc::new(groups);
                state.failed = None;
                state.last = Some(Fetched {
                    started,
                    epoch,
                    groups: Arc::clone(&groups),
                });
                Ok(groups)
            }
            Err(err) => {
                let err = Arc::new(err);
                let copy = copy_of(&err);
                state.failed = Some(Failed { epoch, err });
                Err(copy)
            }
        }
    }

    /// The kept result, if younger than `max_age` and from a query started in epoch `need` or later.
    fn fresh(&self, state: &State, need: u64) -> Option<Arc<Groups>> {
        let last = state.last.as_ref()?;
        (last.epoch >= need && last.started.elapsed() < self.max_age)
            .then(|| Arc::clone(&last.groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_labels_are_prometheus_label_names() {
        for good in ["app", "_x", "app_name2"] {
            assert!(is_label_name(good), "{good}");
        }
        for bad in ["", "2app", "app-name", "a.b", "é"] {
            assert!(!is_label_name(bad), "{bad}");
        }
    }

    fn groups(value: f64) -> Groups {
        HashMap::from([("a".to_owned(), vec![value])])
    }

    #[tokio::test(start_paused = true)]
    async fn kept_for_max_age_then_refreshed() {
        let cache = GroupCache::new(Duration::from_secs(10));
        let calls = AtomicU64::new(0);
        let fetch = || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Ok(groups(n as f64))
        };
        assert_eq!(cache.get(fetch).await.unwrap()["a"], [0.0]);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(cache.get(fetch).await.unwrap()["a"], [0.0]);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get(fetch).await.unwrap()["a"], [1.0]);
        cache.invalidate();
        assert_eq!(cache.get(fetch).await.unwrap()["a"], [2.0]);
        assert_eq!(cache.get(fetch).await.unwrap()["a"], [2.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_a_failure_and_the_next_call_retries() {
        let cache = Arc::new(GroupCache::new(Duration::from_secs(10)));
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (cache, calls) = (Arc::clone(&cache), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Err(CollectError::EmptyResult {
                            at: Origin::new("m", "prometheus", "http://p"),
                        })
                    })
                    .await
            }));
        }
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert!(matches!(err, CollectError::EmptyResult { .. }), "{err:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let got = cache.get(|| async { Ok(groups(1.0)) }).await.unwrap();
        assert_eq!(got["a"], [1.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_of_a_query_older_than_an_invalidation_is_not_shared() {
        let cache = Arc::new(GroupCache::new(Duration::from_secs(10)));
        let failing = tokio::spawn({
            let cache = Arc::clone(&cache);
            async move {
                cache
                    .get(|| async {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Err(CollectError::EmptyResult {
                            at: Origin::new("m", "prometheus", "http://p"),
                        })
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cache.invalidate();
        // This call began after the invalidation: it waits for the old query, then runs its own.
        let got = cache.get(|| async { Ok(groups(1.0)) }).await.unwrap();
        assert_eq!(got["a"], [1.0]);
        assert!(failing.await.unwrap().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_query_leaves_the_next_caller_to_query() {
        let cache = GroupCache::new(Duration::from_secs(10));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(groups(-1.0))
            }),
        )
        .await;
        assert!(abandoned.is_err());
        let got = cache.get(|| async { Ok(groups(1.0)) }).await.unwrap();
        assert_eq!(got["a"], [1.0]);
    }

    #[test]
    fn a_copied_error_shows_and_chains_like_the_original() {
        let original = CollectError::Transport {
            at: Origin::new("m", "prometheus", "http://p"),
            source: Box::new(std::io::Error::other("connection refused")),
        };
        let shown = original.to_string();
        let copy = copy_of(&Arc::new(original));
        assert_eq!(copy.to_string(), shown);
        let source = std::error::Error::source(&copy).unwrap();
        assert_eq!(source.to_string(), "connection refused");
    }
}
