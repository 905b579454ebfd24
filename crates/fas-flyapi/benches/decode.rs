//! Measures decoding a large machine list and building requests (prints numbers; no asserts).
//! Run: `cargo bench -p fas-flyapi --bench decode`.

use fas_flyapi::{ListMachinesOptions, Machine, MachineState, request};
use serde_json::Value;
use std::time::Instant;

fn main() {
    let path = format!(
        "{}/tests/fixtures/machine_rich.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let one: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture exists"))
        .expect("valid json");
    for n in [100usize, 1000] {
        let list = Value::Array((0..n).map(|_| one.clone()).collect());
        let bytes = serde_json::to_vec(&list).expect("serializable");
        let runs = 20;
        let t0 = Instant::now();
        for _ in 0..runs {
            let ms: Vec<Machine> = serde_json::from_slice(&bytes).expect("decodes");
            assert_eq!(ms.len(), n);
        }
        let per = t0.elapsed() / runs;
        println!(
            "decode list of {n} rich machines ({} KiB): {:.2} ms",
            bytes.len() / 1024,
            per.as_secs_f64() * 1000.0
        );
    }
    let opts = ListMachinesOptions {
        states: vec![MachineState::Started, MachineState::Stopped],
        region: Some("ord".into()),
        ..Default::default()
    };
    let runs = 100_000u32;
    let t0 = Instant::now();
    for _ in 0..runs {
        let r = request::list_machines("my-app", &opts).expect("valid");
        std::hint::black_box(r.path_and_query());
    }
    println!(
        "build list request + query string: {:.0} ns",
        t0.elapsed().as_nanos() as f64 / f64::from(runs)
    );
}
