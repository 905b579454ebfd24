//! Hostile Prometheus answers: 100 MB, a body that never ends, one byte a second, invalid UTF-8,
//! JSON nested 100 000 deep. Each ends with a clear error within the collector's timeout, with
//! memory bounded by the body limit (8 MiB), and the collector keeps working afterwards. Times
//! are printed, not asserted (the timeout bounds them).

use std::time::{Duration, Instant};

use fas_collect::{Collector, PrometheusCollector, PrometheusConfig};
use fas_testkit::{Hostile, hostile};

/// A well-formed Prometheus answer: 42.
const SANE: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}"#;

async fn collect(url: &str) -> (Result<f64, fas_collect::CollectError>, Duration, u64) {
    let mut cfg = PrometheusConfig::new("queue_depth", url, "sum(queue_depth)");
    cfg.timeout = Duration::from_secs(2);
    let c = PrometheusCollector::new(cfg).unwrap();
    let before = rss_kib();
    let t0 = Instant::now();
    let r = c.collect("app").await;
    let elapsed = t0.elapsed();
    let grew = rss_kib().saturating_sub(before);
    eprintln!("{url}: {r:?} in {elapsed:?}, rss +{grew} KiB");
    (r, elapsed, grew)
}

fn message(r: &Result<f64, fas_collect::CollectError>) -> String {
    match r {
        Ok(v) => panic!("a hostile answer gave the value {v}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_100_mb_answer_is_refused_at_the_body_limit() {
    let url = hostile(Hostile::Huge).await;
    let (r, _, grew) = collect(&url).await;
    let m = message(&r);
    assert!(!m.is_empty());
    assert!(
        grew < 40 << 10,
        "memory grew by {grew} KiB for a 100 MB body"
    );
}

#[tokio::test]
async fn a_never_ending_body_is_cut() {
    let url = hostile(Hostile::Endless).await;
    let (r, _, grew) = collect(&url).await;
    assert!(!message(&r).is_empty());
    assert!(grew < 40 << 10, "memory grew by {grew} KiB");
}

#[tokio::test]
async fn a_body_arriving_one_byte_a_second_times_out() {
    let url = hostile(Hostile::Trickle).await;
    let (r, _, _) = collect(&url).await;
    let m = message(&r);
    assert!(m.contains("timed out") || m.contains("timeout"), "{m}");
}

#[tokio::test]
async fn invalid_utf8_is_a_decode_error() {
    let url = hostile(Hostile::NotUtf8).await;
    let (r, _, _) = collect(&url).await;
    assert!(!message(&r).is_empty());
}

#[tokio::test]
async fn deeply_nested_json_is_a_decode_error_not_a_stack_overflow() {
    let url = hostile(Hostile::DeepJson).await;
    let (r, _, _) = collect(&url).await;
    assert!(!message(&r).is_empty());
}

/// After a hostile answer the same collector answers the next (sane) server at once: nothing is
/// left blocked or poisoned, so the next app's tick goes on.
#[tokio::test]
async fn the_collector_works_after_a_hostile_answer() {
    let bad = hostile(Hostile::Endless).await;
    let (r, _, _) = collect(&bad).await;
    assert!(r.is_err());
    let good = hostile(Hostile::Body(SANE)).await;
    let (r, _, _) = collect(&good).await;
    assert_eq!(r.unwrap(), 42.0);
}

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
