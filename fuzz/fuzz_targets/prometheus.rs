//! The Prometheus instant-query answer through the real collector (HTTP over loopback and the
//! decoder). Input: the first byte picks the HTTP status, the rest is the body.
#![no_main]

use std::sync::OnceLock;

use fas_collect::{Collector, MultipleSeries, PrometheusCollector, PrometheusConfig};
use fas_fuzz::{STATUSES, runtime, server};
use libfuzzer_sys::fuzz_target;

fn collectors() -> &'static [PrometheusCollector; 2] {
    static C: OnceLock<[PrometheusCollector; 2]> = OnceLock::new();
    C.get_or_init(|| {
        let (url, _) = server();
        let make = |multiple| {
            let mut cfg = PrometheusConfig::new("queue_depth", url, "sum(queue_depth)");
            cfg.multiple_series = multiple;
            PrometheusCollector::new(cfg).expect("collector")
        };
        [make(MultipleSeries::First), make(MultipleSeries::Sum)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(first & 7)];
    {
        let mut a = server().1.lock().unwrap();
        a.status = status;
        a.body = body.to_vec();
    }
    let collector = &collectors()[usize::from(first >> 7)];
    let result = runtime().block_on(collector.collect("app"));
    if !(200..300).contains(&status) {
        assert!(
            result.is_err(),
            "a {status} answer gave a value: {result:?}"
        );
    }
    if let Err(e) = result {
        assert!(!e.to_string().is_empty());
    }
});
