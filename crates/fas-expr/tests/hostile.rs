//! Hostile expressions: loops, deep recursion and nesting, huge strings and arrays, dynamic code.
//! Each is refused when it is compiled (at load) or stopped by the sandbox when it is evaluated;
//! none panics, overflows the stack or hangs. Each test prints how long the refusal took (the
//! bound measured on a 2-core machine is in `docs/reliability.md`: all under 10 ms); timing is
//! reported, not asserted, so a loaded CI machine cannot fail the suite.

use std::collections::BTreeMap;
use std::time::Instant;

use fas_expr::{Expr, ExprError};

/// How `src` ends: refused at compile time, stopped at evaluation, or a value.
#[derive(Debug)]
enum Fate {
    Refused(ExprError),
    Stopped(ExprError),
    Value(f64),
}

fn fate(case: &str, src: &str) -> Fate {
    let vars: BTreeMap<String, f64> = [("x".to_owned(), 3.0)].into();
    let t0 = Instant::now();
    let fate = match Expr::compile(src) {
        Err(e) => Fate::Refused(e),
        Ok(expr) => match expr.eval(&vars) {
            Err(e) => Fate::Stopped(e),
            Ok(v) => Fate::Value(v),
        },
    };
    eprintln!(
        "{case}: {} in {:.3} ms ({} bytes)",
        match &fate {
            Fate::Refused(e) => format!("refused at compile ({e})"),
            Fate::Stopped(e) => format!("stopped at eval ({e})"),
            Fate::Value(v) => format!("value {v}"),
        },
        t0.elapsed().as_secs_f64() * 1e3,
        src.len()
    );
    fate
}

fn refused(case: &str, src: &str) -> ExprError {
    match fate(case, src) {
        Fate::Refused(e) => e,
        other => panic!("{case}: expected a compile-time refusal, got {other:?}"),
    }
}

#[test]
fn loops_are_refused_at_compile_time() {
    for (case, src) in [
        ("while", "while true { x }"),
        ("loop", "loop { x }"),
        ("for", "for i in 0..1000000000 { x }"),
        ("do-while", "do { x } while true"),
    ] {
        let e = refused(case, src);
        assert!(matches!(e, ExprError::Syntax { .. }), "{case}: {e:?}");
    }
}

#[test]
fn recursion_is_refused_at_compile_time() {
    for (case, src) in [
        ("fn", "fn f(n) { f(n) } f(1)"),
        ("closure", "|n| n"),
        ("call of a pointer", "Fn(\"ceil\").call(x)"),
    ] {
        let e = refused(case, src);
        assert!(
            matches!(
                e,
                ExprError::Syntax { .. } | ExprError::UnknownFunction { .. }
            ),
            "{case}: {e:?}"
        );
    }
}

#[test]
fn deep_nesting_within_the_length_limit_is_refused_without_overflowing_the_stack() {
    let n = 2_000;
    let parens = format!("{}x{}", "(".repeat(n), ")".repeat(n));
    let calls = format!("{}x{}", "abs(".repeat(n / 2), ")".repeat(n / 2));
    let arrays = format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let unary = format!("{}x", "-".repeat(4_000));
    let not = format!("{}true", "!".repeat(4_000));
    for (case, src) in [
        ("parentheses", parens),
        ("calls", calls),
        ("arrays", arrays),
        ("unary minus", unary),
        ("not", not),
    ] {
        match fate(case, &src) {
            Fate::Refused(_) | Fate::Stopped(_) => {}
            // `- - … x` with an even number of minus signs is just x.
            Fate::Value(v) => assert_eq!(v, 3.0, "{case}"),
        }
    }
}

#[test]
fn long_flat_chains_evaluate_or_stop_without_overflowing_the_stack() {
    // A left-deep tree of about 2000 additions: the longest chain under the source limit.
    let sum = format!("x{}", " + x".repeat(1_000));
    match fate("sum chain", &sum) {
        Fate::Value(v) => assert_eq!(v, 3.0 * 1_001.0),
        Fate::Refused(_) | Fate::Stopped(_) => {}
    }
    let pow = format!("x{}", " * x".repeat(1_000));
    match fate("product chain", &pow) {
        // 3^1001 overflows f64: an error of the value, never a panic.
        Fate::Value(v) => assert!(v.is_infinite(), "{v}"),
        Fate::Refused(_) | Fate::Stopped(_) => {}
    }
}

#[test]
fn sources_over_the_limit_are_refused_before_parsing() {
    let huge = format!("x + {}", "1".repeat(1 << 20));
    let e = refused("1 MiB source", &huge);
    assert!(matches!(e, ExprError::TooLong { .. }), "{e:?}");
    let string = format!("\"{}\"", "a".repeat(10 << 20));
    let e = refused("10 MiB string literal", &string);
    assert!(matches!(e, ExprError::TooLong { .. }), "{e:?}");
}

#[test]
fn huge_strings_and_arrays_are_refused_or_stopped() {
    for (case, src) in [
        ("string repeat", "\"a\" * 1000000000"),
        ("string pad", "\"a\".pad(1000000000, \"b\")"),
        ("array literal", "[x, x, x, x, x, x, x, x]"),
        ("array pad", "[].pad(1000000000, 1)"),
        ("range", "range(0, 1000000000)"),
        ("map", "#{a: x}"),
        ("string", "\"x\""),
    ] {
        match fate(case, src) {
            Fate::Refused(_) | Fate::Stopped(_) => {}
            Fate::Value(v) => panic!("{case}: a string or array became the value {v}"),
        }
    }
}

#[test]
fn dynamic_code_and_side_effects_are_refused_at_compile_time() {
    for (case, src) in [
        ("eval", "eval(\"x\")"),
        ("import", "import \"std\" as s; 1"),
        ("print", "print(x)"),
        ("debug", "debug(x)"),
        ("let", "let y = x; y"),
        ("assignment", "x = 1"),
        ("throw", "throw \"boom\""),
        ("type_of", "type_of(x)"),
        ("curry", "Fn(\"abs\").curry(x).call()"),
    ] {
        let e = refused(case, src);
        assert!(
            matches!(
                e,
                ExprError::Syntax { .. }
                    | ExprError::UnknownFunction { .. }
                    | ExprError::UnknownVariable { .. }
            ),
            "{case}: {e:?}"
        );
    }
}

#[test]
fn integer_overflow_is_an_error_not_a_panic() {
    for (case, src) in [
        ("pow", "2 ** 100000"),
        ("mul", "9223372036854775807 * 2"),
        ("neg", "-9223372036854775807 - 2"),
        ("div", "(-9223372036854775807 - 1) / -1"),
        ("shift", "1 << 100"),
    ] {
        match fate(case, src) {
            Fate::Refused(_) | Fate::Stopped(_) => {}
            // A huge value (the integer went to float, or inf) is refused as a count.
            Fate::Value(v) if !v.is_finite() || v > f64::from(u32::MAX) => {
                let vars = BTreeMap::new();
                let count = Expr::compile(src).unwrap().eval_count(&vars);
                assert!(count.is_err(), "{case}: {v} gave the count {count:?}");
            }
            // Integer overflow falls back to float arithmetic (negative counts are 0).
            Fate::Value(_) => {}
        }
    }
}
