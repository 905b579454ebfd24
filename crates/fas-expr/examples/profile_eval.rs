//! Evaluates one expression many times, for a profiler:
//! `cargo run --release -p fas-expr --example profile_eval -- 'x + x' 100000`.

use std::collections::BTreeMap;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let src = args.next().unwrap_or_else(|| {
        "clamp(ceil((queue_depth + backlog) / per_worker) - idle, min_workers, 50)".to_owned()
    });
    let iters: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let expr = fas_expr::Expr::compile(&src).expect("expression compiles");
    let vars: BTreeMap<String, f64> = expr
        .variables()
        .into_iter()
        .zip([420.0, 17.0, 8.0, 2.0, 1.0].into_iter().cycle())
        .collect();
    let mut sum = 0.0;
    for _ in 0..iters {
        sum += black_box(expr.eval(black_box(&vars)).expect("expression evaluates"));
    }
    println!("{src}: {sum}");
}
