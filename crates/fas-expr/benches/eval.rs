//! Speed of expression evaluation: `cargo bench -p fas-expr`.
//!
//! Measures compiled evaluation (the per-interval cost) and compile + evaluate (the load cost)
//! for the README example and a 5-variable expression. Prints the median ns/op over several runs.
//! Target: compiled evaluation ≤ 1 µs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use fas_expr::Expr;

const RUNS: usize = 9;

/// Median ns/op of `RUNS` runs of `iters` calls each, after a warm-up run.
fn median_ns(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters {
        f();
    }
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn main() {
    let cases: [(&str, &str, BTreeMap<String, f64>); 2] = [
        (
            "readme",
            "ceil(queue_depth / 10)",
            BTreeMap::from([("queue_depth".to_string(), 42.0)]),
        ),
        (
            "5 variables",
            "clamp(ceil((queue_depth + backlog) / per_worker) - idle, min_workers, 50)",
            BTreeMap::from([
                ("queue_depth".to_string(), 420.0),
                ("backlog".to_string(), 17.0),
                ("per_worker".to_string(), 8.0),
                ("idle".to_string(), 2.0),
                ("min_workers".to_string(), 1.0),
            ]),
        ),
    ];
    println!("fas-expr eval bench: median of {RUNS} runs");
    for (label, src, vars) in &cases {
        let expr = Expr::compile(src).expect("bench expression compiles");
        let count = expr.eval_count(vars).expect("bench expression evaluates");
        let eval = median_ns(200_000, || {
            black_box(expr.eval(black_box(vars)).expect("eval"));
        });
        let compile_eval = median_ns(5_000, || {
            let e = Expr::compile(black_box(src)).expect("compile");
            black_box(e.eval(black_box(vars)).expect("eval"));
        });
        println!("{label:<12} `{src}` = {count}");
        println!("  compiled eval:      {eval:>10.0} ns/op");
        println!("  compile + eval:     {compile_eval:>10.0} ns/op");
    }
    breakdown();
    adversarial();
}

/// The slowest of some hostile inputs (each at most `MAX_SOURCE_LEN` bytes): compile and, when
/// that works, evaluate. The sandbox promises well under 10 ms for any input.
fn adversarial() {
    let max = fas_expr::MAX_SOURCE_LEN;
    let chain = |sep: &str| {
        let mut s = "x".to_string();
        while s.len() + sep.len() < max {
            s.push_str(sep);
            s.push('x');
        }
        s
    };
    let inputs = [
        ("4096 x `(`", "(".repeat(max)),
        ("4096 digits", "9".repeat(max)),
        ("4096 quotes", "\"".repeat(max)),
        ("string literal", format!("\"{}\"", "a".repeat(max - 2))),
        ("60-term sum", vec!["x"; 60].join(" + ")),
        ("chain of +", chain("+")),
        ("chain of **", chain("**")),
        (
            "nested min",
            format!("{}x{}", "min(1,".repeat(15), ")".repeat(15)),
        ),
        ("many numbers", vec!["123456789.123456789"; 200].join("+")),
        ("garbage", "#{[`$(".repeat(max / 6)),
    ];
    let vars = BTreeMap::from([("x".to_string(), 1.5)]);
    println!("adversarial inputs, compile (+ eval when it compiles), median:");
    let mut worst = 0.0f64;
    for (label, src) in &inputs {
        let ns = median_ns(200, || {
            if let Ok(e) = Expr::compile(black_box(src)) {
                let _ = black_box(e.eval(&vars));
            }
        });
        worst = worst.max(ns);
        let outcome = match Expr::compile(src) {
            Ok(e) => format!("{:?}", e.eval(&vars)),
            Err(e) => format!("{:.70}", e.to_string()),
        };
        println!("  {label:<16} {:>10.1} µs  {outcome}", ns / 1000.0);
    }
    println!("  worst: {:.1} µs", worst / 1000.0);
}
/// Where the time goes: compiled evaluation of single constructs (one variable `x` = 42).
fn breakdown() {
    let vars = BTreeMap::from([("x".to_string(), 42.0)]);
    println!("breakdown, compiled eval:");
    for src in [
        "1",
        "x",
        "x / 10",
        "x + x + x + x + x",
        "ceil(1)",
        "ceil(x)",
        "min(x, 1)",
    ] {
        let expr = Expr::compile(src).expect("breakdown expression compiles");
        let ns = median_ns(200_000, || {
            black_box(expr.eval(black_box(&vars)).expect("eval"));
        });
        println!("  {src:<20} {ns:>8.0} ns/op");
    }
}
