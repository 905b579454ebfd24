//! What a failed collection becomes: each collector's `on-error` policy.
//!
//! An error is never read as a number silently (KEDA's history has scale-to-zero outages where a
//! failed query was read as 0). Per collector:
//! - [`OnError::Skip`] (the default, the Go behaviour): the app is skipped this tick, nothing
//!   changes;
//! - [`OnError::Hold`]: the last good value stands in while it is younger than `max-age`, then
//!   the app is skipped;
//! - [`OnError::Value`]: after `failure-threshold` consecutive failures the configured value
//!   stands in (e.g. a safe high number), until the collector recovers; before that, skip.
//!
//! Pure, like the planner: time is an argument. [`FallbackState::apply`] turns one collection's
//! result into a [`Decision`]; a value that is not the collected one is always a
//! [`Decision::Fallback`], which carries the collector's error, so the tick logs it, counts it
//! (`fas_collect_fallback_total{app,metric,mode}`) and shows it in `/status` ([`record`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use fas_collect::CollectError;
use tokio::time::Instant;
use tracing::warn;

use crate::status::MetricRecord;
use crate::telemetry as m;

/// Default `max-age` of `on-error: hold`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Default `failure-threshold` of `on-error: value`.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;

/// A collector's policy when a collection fails (`on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum OnError {
    /// The app is skipped this tick (the Go behaviour).
    #[default]
    Skip,
    /// The last good value stands in while it is younger than `max_age`; then skip.
    Hold {
        /// How old the last good value may be (`max-age`, default 5 min).
        max_age: Duration,
    },
    /// After `failure_threshold` consecutive failures `value` stands in, until the collector
    /// recovers; before that, skip.
    Value {
        /// The value used (`on-error-value`).
        value: f64,
        /// Consecutive failures before `value` is used (`failure-threshold`, at least 1, default 3).
        failure_threshold: u32,
    },
}

impl OnError {
    /// The configuration's name of the policy: `skip`, `hold` or `value`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OnError::Skip => "skip",
            OnError::Hold { .. } => "hold",
            OnError::Value { .. } => "value",
        }
    }
}

/// Which fallback stood in for a failed collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The last good value (`on-error: hold`).
    Hold,
    /// The configured value (`on-error: value`).
    Value,
}

impl Mode {
    /// `hold` or `value` (the `mode` label, the `/status` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hold => "hold",
            Mode::Value => "value",
        }
    }
}

/// What one collection's result becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<E> {
    /// The collected value.
    Use(f64),
    /// The collection failed and a fallback stands in: used as the metric's value, and reported
    /// (log, counter, `/status`) with the collector's error.
    Fallback {
        /// The value used instead.
        value: f64,
        /// Which fallback.
        mode: Mode,
        /// The collector's error.
        error: E,
    },
    /// The collection failed and nothing stands in: the app is skipped this tick.
    Skip(E),
}

/// What one metric of one app remembers between ticks for its fallback.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FallbackState {
    /// The last good (finite) collected value and when it was collected.
    last_good: Option<(f64, Instant)>,
    /// Failures since the last success.
    failures: u32,
}

impl FallbackState {
    /// Applies `policy` to one collection's `result`, collected at `now`, and remembers what the
    /// next collections need (the last good value, the consecutive failures).
    ///
    /// A success is always used as collected (a NaN or an infinity too: the expression then
    /// fails with its own error) but only a finite value is kept for `hold`. A failure becomes a
    /// [`Decision::Fallback`] only as the policy says, never a [`Decision::Use`].
    pub fn apply<E>(
        &mut self,
        policy: &OnError,
        result: Result<f64, E>,
        now: Instant,
    ) -> Decision<E> {
        let error = match result {
            Ok(value) => {
                self.failures = 0;
                if value.is_finite() {
                    self.last_good = Some((value, now));
                }
                return Decision::Use(value);
            }
            Err(error) => error,
        };
        self.failures = self.failures.saturating_add(1);
        match *policy {
            OnError::Skip => Decision::Skip(error),
            OnError::Hold { max_age } => match self.last_good {
                Some((value, at)) if now.saturating_duration_since(at) < max_age => {
                    Decision::Fallback {
                        value,
                        mode: Mode::Hold,
                        error,
                    }
                }
                _ => Decision::Skip(error),
            },
            OnError::Value {
                value,
                failure_threshold,
            } if self.failures >= failure_threshold => Decision::Fallback {
                value,
                mode: Mode::Value,
                error,
            },
            OnError::Value { .. } => Decision::Skip(error),
        }
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// What is kept in the database ([`crate::store`]): the last good value with its wall-clock
    /// time (`now` and `wall` are the same moment on both clocks), and the failures in a row.
    pub fn to_stored(&self, now: Instant, wall: SystemTime) -> StoredFallback {
        StoredFallback {
            last_good: self
                .last_good
                .map(|(value, at)| (value, crate::store::to_wall(at, now, wall))),
            failures: self.failures,
        }
    }

    /// The state back from the database: the last good value is as old as its wall-clock time
    /// says (never newer than `now`; dropped when that age is beyond what the monotonic clock
    /// can express).
    pub fn from_stored(stored: &StoredFallback, now: Instant, wall: SystemTime) -> FallbackState {
        FallbackState {
            last_good: stored.last_good.and_then(|(value, at)| {
                crate::store::from_wall(at, now, wall).map(|at| (value, at))
            }),
            failures: stored.failures,
        }
    }
}

/// A [`FallbackState`] as the database keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredFallback {
    /// The last good value and its time in seconds since the Unix epoch.
    pub last_good: Option<(f64, f64)>,
    /// Failures since the last success.
    pub failures: u32,
}

/// Applies each metric's policy (`policies` by metric name; none: skip) to one tick's results,
/// collected at `now`, with `states` the app's remembered states (those of metrics no longer
/// collected are dropped). Pure: no log, no metric (see [`record`]).
pub fn decide_all(
    policies: &BTreeMap<String, OnError>,
    states: &mut crate::named::Named<FallbackState>,
    results: Vec<(String, Result<f64, CollectError>)>,
    now: Instant,
) -> Vec<(String, Decision<CollectError>)> {
    states.retain(|metric, _| results.iter().any(|(m, _)| m == metric));
    results
        .into_iter()
        .map(|(metric, result)| {
            let policy = policies.get(&metric).copied().unwrap_or_default();
            let state = states.get_or_default(&metric);
            let decision = state.apply(&policy, result, now);
            (metric, decision)
        })
        .collect()
}

/// Records one tick's decisions for `app`: each metric's value, error and fallback in
/// `metric_records` (`/status`), and every fallback as a warning naming the app, metric, mode,
/// value and error and in `fas_collect_fallback_total{app,metric,mode}`. Returns the results the
/// tick goes on with: a fallback's value in place of its error, a skip's error.
pub fn record(
    app: &str,
    decisions: Vec<(String, Decision<CollectError>)>,
    metric_records: &mut BTreeMap<String, MetricRecord>,
) -> Vec<(String, Result<f64, CollectError>)> {
    decisions
        .into_iter()
        .map(|(metric, decision)| {
            let (record, result) = match decision {
                Decision::Use(value) => (
                    MetricRecord {
                        value: Some(value),
                        error: None,
                        fallback: None,
                    },
                    Ok(value),
                ),
                Decision::Fallback { value, mode, error } => {
                    let error = crate::report::error_chain(&error);
                    warn!(
                        app,
                        metric = %metric,
                        mode = mode.as_str(),
                        value,
                        error = %error,
                        "collection failed: fallback value used"
                    );
                    metrics::counter!(
                        m::FALLBACK,
                        "app" => m::app_label(app),
                        "metric" => metric.clone(),
                        "mode" => mode.as_str()
                    )
                    .increment(1);
                    (
                        MetricRecord {
                            value: Some(value),
                            error: Some(error),
                            fallback: Some(mode.as_str().to_owned()),
                        },
                        Ok(value),
                    )
                }
                Decision::Skip(error) => (
                    MetricRecord {
                        value: None,
                        error: Some(crate::report::error_chain(&error)),
                        fallback: None,
                    },
                    Err(error),
                ),
            };
            metric_records.insert(metric.clone(), record);
            (metric, result)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOLD: OnError = OnError::Hold {
        max_age: Duration::from_secs(60),
    };
    const VALUE: OnError = OnError::Value {
        value: 100.0,
        failure_threshold: 3,
    };

    fn empty() -> CollectError {
        CollectError::EmptyResult {
            at: fas_collect::Origin::new("m", "prometheus", "http://p"),
        }
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn skip_never_gives_a_number_for_an_error() {
        let t0 = Instant::now();
        let mut s = FallbackState::default();
        assert_eq!(
            s.apply(&OnError::Skip, Ok::<_, &str>(4.0), t0),
            Decision::Use(4.0)
        );
        for i in 1..10 {
            assert_eq!(
                s.apply(&OnError::Skip, Err("down"), at(t0, i)),
                Decision::Skip("down")
            );
        }
    }

    #[test]
    fn a_stored_state_keeps_the_age_of_the_held_value_across_a_restart() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut s = FallbackState::default();
        s.apply(&HOLD, Ok::<_, &str>(7.0), t0);
        s.apply(&HOLD, Err("down"), at(t0, 1));
        // Saved 40 s after the good value, read back by a process whose clock reads 10 s later.
        let stored = s.to_stored(at(t0, 40), wall + Duration::from_secs(40));
        assert_eq!(stored.failures, 1);
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredFallback = serde_json::from_str(&json).unwrap();
        let later = at(t0, 50);
        let mut r = FallbackState::from_stored(&back, later, wall + Duration::from_secs(50));
        assert_eq!(r.failures(), 1);
        // 50 s old: still held (max age 60 s)...
        assert!(matches!(
            r.apply(&HOLD, Err("down"), later),
            Decision::Fallback { value, .. } if value == 7.0
        ));
        // ...and no longer 11 s later: the age went on counting.
        assert_eq!(
            r.apply(&HOLD, Err("down"), at(t0, 61)),
            Decision::Skip("down")
        );
        // A value from the future (clock skew) is never younger than now.
        let skewed = FallbackState::from_stored(&back, later, wall);
        assert!(matches!(
            skewed.clone().apply(&HOLD, Err("x"), later),
            Decision::Fallback { .. }
        ));
    }

    #[test]
    fn hold_uses_the_last_good_value_while_it_is_younger_than_max_age() {
        let t0 = Instant::now();
        let mut s = FallbackState::default();
        assert_eq!(
            s.apply(&HOLD, Err("down"), t0),
            Decision::Skip("down"),
            "no good value yet"
        );
        assert_eq!(
            s.apply(&HOLD, Ok::<_, &str>(7.0), at(t0, 10)),
            Decision::Use(7.0)
        );
        let held = Decision::Fallback {
            value: 7.0,
            mode: Mode::Hold,
            error: "down",
        };
        assert_eq!(s.apply(&HOLD, Err("down"), at(t0, 25)), held);
        assert_eq!(s.apply(&HOLD, Err("down"), at(t0, 69)), held, "59 s old");
        assert_eq!(
            s.apply(&HOLD, Err("down"), at(t0, 70)),
            Decision::Skip("down"),
            "60 s old"
        );
        assert_eq!(
            s.apply(&HOLD, Err("down"), at(t0, 100)),
            Decision::Skip("down")
        );
        // A new good value starts a new max-age.
        assert_eq!(
            s.apply(&HOLD, Ok::<_, &str>(2.0), at(t0, 115)),
            Decision::Use(2.0)
        );
        assert_eq!(
            s.apply(&HOLD, Err("down"), at(t0, 130)),
            Decision::Fallback {
                value: 2.0,
                mode: Mode::Hold,
                error: "down"
            }
        );
    }

    #[test]
    fn hold_never_holds_a_nan() {
        let t0 = Instant::now();
        let mut s = FallbackState::default();
        assert!(
            matches!(s.apply(&HOLD, Ok::<_, &str>(f64::NAN), t0), Decision::Use(v) if v.is_nan())
        );
        assert_eq!(
            s.apply(&HOLD, Err("down"), at(t0, 1)),
            Decision::Skip("down")
        );
    }

    #[test]
    fn value_stands_in_after_the_threshold_until_the_collector_recovers() {
        let t0 = Instant::now();
        let mut s = FallbackState::default();
        let n = Decision::Fallback {
            value: 100.0,
            mode: Mode::Value,
            error: "down",
        };
        assert_eq!(s.apply(&VALUE, Ok::<_, &str>(1.0), t0), Decision::Use(1.0));
        assert_eq!(
            s.apply(&VALUE, Err("down"), at(t0, 1)),
            Decision::Skip("down")
        );
        assert_eq!(
            s.apply(&VALUE, Err("down"), at(t0, 2)),
            Decision::Skip("down")
        );
        assert_eq!(s.apply(&VALUE, Err("down"), at(t0, 3)), n);
        assert_eq!(s.apply(&VALUE, Err("down"), at(t0, 400)), n, "no age limit");
        assert_eq!(s.failures(), 4);
        assert_eq!(
            s.apply(&VALUE, Ok::<_, &str>(2.0), at(t0, 401)),
            Decision::Use(2.0)
        );
        assert_eq!(s.failures(), 0);
        assert_eq!(
            s.apply(&VALUE, Err("down"), at(t0, 402)),
            Decision::Skip("down"),
            "counted again"
        );
        let once = OnError::Value {
            value: 0.5,
            failure_threshold: 1,
        };
        assert_eq!(
            FallbackState::default().apply(&once, Err("down"), t0),
            Decision::Fallback {
                value: 0.5,
                mode: Mode::Value,
                error: "down"
            }
        );
    }

    #[test]
    fn decide_all_keeps_each_metric_apart_and_forgets_the_metrics_gone() {
        let t0 = Instant::now();
        let policies = BTreeMap::from([("a".to_owned(), HOLD), ("b".to_owned(), OnError::Skip)]);
        let mut states = crate::named::Named::new();
        let err = empty;
        let first = decide_all(
            &policies,
            &mut states,
            vec![
                ("a".into(), Ok(1.0)),
                ("b".into(), Ok(2.0)),
                ("c".into(), Ok(3.0)),
            ],
            t0,
        );
        assert!(first.iter().all(|(_, d)| matches!(d, Decision::Use(_))));
        let second = decide_all(
            &policies,
            &mut states,
            vec![("a".into(), Err(err())), ("b".into(), Err(err()))],
            at(t0, 1),
        );
        assert!(matches!(
            second[0].1,
            Decision::Fallback {
                value: 1.0,
                mode: Mode::Hold,
                ..
            }
        ));
        assert!(matches!(second[1].1, Decision::Skip(_)));
        assert_eq!(
            states.keys().collect::<Vec<_>>(),
            ["a", "b"],
            "c is forgotten"
        );
    }

    #[test]
    fn record_reports_a_fallback_with_its_error_and_keeps_a_skip_an_error() {
        let decisions = vec![
            ("a".to_owned(), Decision::Use(1.0)),
            (
                "b".to_owned(),
                Decision::Fallback {
                    value: 9.0,
                    mode: Mode::Value,
                    error: empty(),
                },
            ),
            ("c".to_owned(), Decision::Skip(empty())),
        ];
        let mut records = BTreeMap::new();
        let results = record("app", decisions, &mut records);
        assert!(matches!(results[0].1, Ok(1.0)));
        assert!(matches!(results[1].1, Ok(9.0)));
        assert!(results[2].1.is_err());
        assert_eq!(records["a"].fallback, None);
        assert_eq!(records["b"].value, Some(9.0));
        assert_eq!(records["b"].fallback.as_deref(), Some("value"));
        assert!(
            records["b"].error.is_some(),
            "the error is shown beside the fallback"
        );
        assert_eq!(
            (records["c"].value, records["c"].fallback.as_ref()),
            (None, None)
        );
        assert!(records["c"].error.is_some());
    }

    fn policy() -> impl Strategy<Value = OnError> {
        prop_oneof![
            Just(OnError::Skip),
            (0u64..200).prop_map(|s| OnError::Hold {
                max_age: Duration::from_secs(s)
            }),
            (-1e6f64..1e6, 1u32..6).prop_map(|(value, failure_threshold)| OnError::Value {
                value,
                failure_threshold
            }),
        ]
    }

    /// One collection: `Some(value)` or a failure, and the seconds since the previous one.
    fn step() -> impl Strategy<Value = (Option<f64>, u64)> {
        (
            prop_oneof![
                3 => (-1e3f64..1e3).prop_map(Some),
                1 => Just(Some(f64::NAN)),
                4 => Just(None),
            ],
            0u64..90,
        )
    }

    proptest! {
        /// No configuration makes an error become a number silently: a decision is a number only
        /// if it is the collected value, or (hold) the last good value younger than max-age, or
        /// (value) N after at least the threshold of consecutive failures; every such stand-in is
        /// a `Fallback` carrying the collector's error, never a `Use`; and a skip carries the
        /// collector's error.
        #[test]
        fn an_error_never_becomes_a_number_silently(
            policy in policy(),
            steps in proptest::collection::vec(step(), 1..60),
        ) {
            let t0 = Instant::now();
            let mut state = FallbackState::default();
            let mut now = t0;
            // The model: the last finite collected value and when; the current run of failures.
            let mut last_good: Option<(f64, Instant)> = None;
            let mut run = 0u32;
            for (i, (collected, dt)) in steps.into_iter().enumerate() {
                now += Duration::from_secs(dt);
                let result = collected.ok_or(i);
                let decision = state.apply(&policy, result, now);
                match collected {
                    Some(v) => {
                        // A success is used as collected, never reported as a fallback.
                        match decision {
                            Decision::Use(got) => prop_assert!(got.to_bits() == v.to_bits()),
                            other => prop_assert!(false, "success {v} became {other:?}"),
                        }
                        run = 0;
                        if v.is_finite() {
                            last_good = Some((v, now));
                        }
                    }
                    None => {
                        run += 1;
                        let expected = match policy {
                            OnError::Skip => None,
                            OnError::Hold { max_age } => last_good
                                .filter(|(_, at)| now - *at < max_age)
                                .map(|(v, _)| (v, Mode::Hold)),
                            OnError::Value { value, failure_threshold } => {
                                (run >= failure_threshold).then_some((value, Mode::Value))
                            }
                        };
                        match (decision, expected) {
                            (Decision::Use(v), _) => {
                                prop_assert!(false, "failure {i} became Use({v})")
                            }
                            (Decision::Skip(e), None) => prop_assert_eq!(e, i),
                            (Decision::Fallback { value, mode, error }, Some((v, m))) => {
                                prop_assert_eq!(error, i, "the fallback carries its error");
                                prop_assert_eq!(mode, m);
                                prop_assert!(value.to_bits() == v.to_bits());
                                prop_assert!(policy != OnError::Skip);
                            }
                            (d, e) => prop_assert!(false, "failure {i}: got {d:?}, model {e:?}"),
                        }
                    }
                }
            }
        }
    }
}
