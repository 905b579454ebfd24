//! Hostile Machines API answers to a list: 100 MB, a body that never ends, one byte a second,
//! invalid UTF-8, JSON nested 100 000 deep. Each ends with a clear error within the client's
//! timeout, with memory bounded by the body limit (32 MiB), and the client keeps working.
//! Times are printed, not asserted (the timeout bounds them).

use std::time::{Duration, Instant};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, Machine, RetryPolicy};
use fas_testkit::{Hostile, hostile};

async fn list(url: &str) -> (Result<Vec<Machine>, fas_flyapi::Error>, u64) {
    let mut cc = ClientConfig::new("test-token");
    cc.machines_base_url = url.to_owned();
    cc.timeout = Duration::from_secs(2);
    cc.retry = RetryPolicy::none();
    let client = Client::new(cc).unwrap();
    let before = rss_kib();
    let t0 = Instant::now();
    let r = client
        .list_machines("app", &ListMachinesOptions::default())
        .await;
    let grew = rss_kib().saturating_sub(before);
    eprintln!(
        "{url}: {:?} in {:?}, rss +{grew} KiB",
        r.as_ref().map(Vec::len),
        t0.elapsed()
    );
    (r, grew)
}

fn message(r: &Result<Vec<Machine>, fas_flyapi::Error>) -> String {
    match r {
        Ok(v) => panic!("a hostile answer listed {} machines", v.len()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_100_mb_list_is_refused_at_the_body_limit() {
    let url = hostile(Hostile::Huge).await;
    let (r, grew) = list(&url).await;
    assert!(!message(&r).is_empty());
    assert!(
        grew < 80 << 10,
        "memory grew by {grew} KiB for a 100 MB body"
    );
}

#[tokio::test]
async fn a_never_ending_list_is_cut() {
    let url = hostile(Hostile::Endless).await;
    let (r, grew) = list(&url).await;
    assert!(!message(&r).is_empty());
    assert!(grew < 80 << 10, "memory grew by {grew} KiB");
}

#[tokio::test]
async fn a_list_arriving_one_byte_a_second_times_out() {
    let url = hostile(Hostile::Trickle).await;
    let (r, _) = list(&url).await;
    assert!(matches!(r, Err(fas_flyapi::Error::Timeout { .. })), "{r:?}");
}

#[tokio::test]
async fn an_invalid_utf8_list_is_a_decode_error() {
    let url = hostile(Hostile::NotUtf8).await;
    let (r, _) = list(&url).await;
    assert!(!message(&r).is_empty());
}

#[tokio::test]
async fn a_deeply_nested_list_is_a_decode_error_not_a_stack_overflow() {
    let url = hostile(Hostile::DeepJson).await;
    let (r, _) = list(&url).await;
    assert!(!message(&r).is_empty());
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
