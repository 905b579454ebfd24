//! The expression cases of the Go fly-autoscaler (`reconciler_test.go`), the README example, and
//! the arithmetic a Go user relies on.

use std::collections::BTreeMap;

use fas_expr::{Expr, ExprError};

fn vars(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn count(src: &str, pairs: &[(&str, f64)]) -> Result<u32, ExprError> {
    Expr::compile(src)?.eval_count(&vars(pairs))
}

fn value(src: &str, pairs: &[(&str, f64)]) -> f64 {
    Expr::compile(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .eval(&vars(pairs))
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

// --- Go: TestReconciler_MinStartedMachineN -------------------------------------------------

#[test]
fn go_constant() {
    assert_eq!(count("1", &[]), Ok(1));
}

#[test]
fn go_round() {
    assert_eq!(count("2.6", &[]), Ok(3));
}

#[test]
fn go_var() {
    assert_eq!(count("x + y + 2", &[("x", 4.0), ("y", 7.0)]), Ok(13));
}

#[test]
fn go_min() {
    assert_eq!(count("min(x, y)", &[("x", 4.0), ("y", 7.0)]), Ok(4));
}

#[test]
fn go_max() {
    assert_eq!(count("max(x, y)", &[("x", 4.0), ("y", 7.0)]), Ok(7));
}

#[test]
fn go_neg() {
    assert_eq!(count("-2", &[]), Ok(0));
}

#[test]
fn go_blank_is_not_configured() {
    assert!(Expr::compile_optional("").unwrap().is_none());
    assert!(Expr::compile_optional(" \t\n").unwrap().is_none());
    // A blank expression is not a valid expression for `compile` itself.
    let err = Expr::compile("").unwrap_err();
    assert!(err.to_string().contains("the expression is empty"), "{err}");
}

#[test]
fn go_nan() {
    assert_eq!(count("x + 1", &[("x", f64::NAN)]), Err(ExprError::NaN));
}

#[test]
fn go_inf() {
    let err = count("1 / 0", &[]).unwrap_err();
    assert_eq!(err, ExprError::Infinite { negative: false });
    assert_eq!(err.to_string(), "expression returned Inf");
}

#[test]
fn go_start_foo_plus_two() {
    assert_eq!(count("foo + 2", &[("foo", 1.0)]), Ok(3));
}

// --- README ---------------------------------------------------------------------------------

#[test]
fn readme_example() {
    let expr = Expr::compile("ceil(queue_depth / 10)").unwrap();
    assert_eq!(expr.variables(), ["queue_depth"]);
    expr.check_variables(&["queue_depth"]).unwrap();
    for (depth, want) in [
        (0.0, 0),
        (1.0, 1),
        (10.0, 1),
        (11.0, 2),
        (42.0, 5),
        (100.0, 10),
    ] {
        assert_eq!(
            expr.eval_count(&vars(&[("queue_depth", depth)])),
            Ok(want),
            "queue_depth = {depth}"
        );
    }
}

// --- arithmetic as in the Go version ----------------------------------------------------------

#[test]
fn division_is_true_division() {
    assert_eq!(value("7 / 2", &[]), 3.5);
    assert_eq!(value("x / 2", &[("x", 7.0)]), 3.5);
    assert_eq!(value("1 / 0", &[]), f64::INFINITY);
    assert_eq!(value("-1 / 0", &[]), f64::NEG_INFINITY);
    assert!(value("0 / 0", &[]).is_nan());
    assert_eq!(
        count("-1 / 0", &[]),
        Err(ExprError::Infinite { negative: true })
    );
    assert_eq!(
        count("x / 0", &[("x", 3.0)]),
        Err(ExprError::Infinite { negative: false })
    );
}

#[test]
fn modulo_never_fails_on_zero() {
    assert_eq!(value("7 % 2", &[]), 1.0);
    assert_eq!(value("7.5 % 2", &[]), 1.5);
    assert!(value("7 % 0", &[]).is_nan());
    assert_eq!(count("7 % 0", &[]), Err(ExprError::NaN));
}

#[test]
fn ints_and_floats_mix() {
    assert_eq!(value("x + 1", &[("x", 0.5)]), 1.5);
    assert_eq!(value("2 * x - 1", &[("x", 0.25)]), -0.5);
    assert_eq!(value("min(x, 2)", &[("x", 3.0)]), 2.0);
    assert_eq!(value("max(1, x)", &[("x", 0.5)]), 1.0);
    assert_eq!(value("0x10 + 1_000 + 1e3", &[]), 2016.0);
    // Integer literals beyond i64 do not overflow.
    assert_eq!(value("9223372036854775807 * 4", &[]), i64::MAX as f64 * 4.0);
}

#[test]
fn functions() {
    let x = [("x", 2.5)];
    assert_eq!(value("ceil(x)", &x), 3.0);
    assert_eq!(value("floor(x)", &x), 2.0);
    assert_eq!(value("round(x)", &x), 3.0);
    assert_eq!(value("round(-x)", &x), -3.0);
    assert_eq!(value("abs(-x)", &x), 2.5);
    assert_eq!(value("ceil(5)", &[]), 5.0);
    assert_eq!(value("sqrt(16)", &[]), 4.0);
    assert_eq!(value("pow(2, 10)", &[]), 1024.0);
    assert_eq!(value("2 ** 10", &[]), 1024.0);
    assert_eq!(value("2 ^ 10", &[]), 1024.0, "`^` is power, as in Expr");
    assert_eq!(
        value("2 ** 3 ** 2", &[]),
        512.0,
        "power is right-associative"
    );
    assert_eq!(value("clamp(x, 1, 2)", &x), 2.0);
    assert_eq!(value("clamp(x, 3, 4)", &x), 3.0);
    assert_eq!(value("clamp(x, 0, 10)", &x), 2.5);
}

#[test]
fn min_max_take_two_or_more_mixed_arguments() {
    let abcd = [("a", 4.0), ("b", 1.5), ("c", 9.0), ("d", -2.0)];
    assert_eq!(value("min(a, b, c)", &abcd), 1.5);
    assert_eq!(value("max(a, b, c, d)", &abcd), 9.0);
    assert_eq!(value("min(a, 2, c, 0.5, d)", &abcd), -2.0);
    assert_eq!(value("max(1, 2.5, 3, a)", &abcd), 4.0);
    let sixteen = vec!["1"; fas_expr::MAX_FN_ARGS].join(", ");
    assert_eq!(value(&format!("max({sixteen})"), &[]), 1.0);
    // A NaN metric is never silently ignored.
    assert_eq!(count("max(x, 1)", &[("x", f64::NAN)]), Err(ExprError::NaN));
    assert_eq!(
        count("min(1, 2, x)", &[("x", f64::NAN)]),
        Err(ExprError::NaN)
    );
}

#[test]
fn clamp_with_crossed_bounds_is_an_error_not_a_panic() {
    let err = count("clamp(x, 5, 1)", &[("x", 3.0)]).unwrap_err();
    assert!(matches!(err, ExprError::Eval { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the lower bound 5 is above the upper bound 1"),
        "{err}"
    );
    assert_eq!(
        count("clamp(x, 1, 5)", &[("x", f64::NAN)]),
        Err(ExprError::NaN)
    );
}

#[test]
fn comparisons_logic_and_if() {
    let v = [("x", 7.0), ("y", 2.0)];
    assert_eq!(value("if x > 5 { 10 } else { 1 }", &v), 10.0);
    assert_eq!(value("if x > 5 && y > 5 { 10 } else { 1 }", &v), 1.0);
    assert_eq!(value("if x > 5 || y > 5 { 10 } else { 1 }", &v), 10.0);
    assert_eq!(value("if !(x >= 7) { 10 } else { 1 }", &v), 1.0);
    assert_eq!(
        value(
            "if x == 7 && y != 7 && y <= 2 && y < x { 3 } else { 4 }",
            &v
        ),
        3.0
    );
    assert_eq!(
        value("if x > 10 { 3 } else if x > 5 { 2 } else { 1 }", &v),
        2.0
    );
}

#[test]
fn precedence() {
    assert_eq!(value("1 + 2 * 3", &[]), 7.0);
    assert_eq!(value("(1 + 2) * 3", &[]), 9.0);
    assert_eq!(
        value("-x ** 2", &[("x", 3.0)]),
        9.0,
        "rhai: unary minus binds tighter"
    );
    assert_eq!(value("10 - 4 - 3", &[]), 3.0);
    assert_eq!(value("+x", &[("x", 3.0)]), 3.0);
}

// --- results that are not counts ----------------------------------------------------------------

#[test]
fn non_numeric_results_name_the_type() {
    for (src, type_name) in [
        ("x > 1", "bool"),
        ("true", "bool"),
        ("\"ten\"", "string"),
        ("()", "()"),
        ("if x > 100 { 1 }", "()"),
    ] {
        let err = count(src, &[("x", 3.0)]).unwrap_err();
        assert_eq!(
            err,
            ExprError::NotANumber {
                type_name: type_name.to_owned()
            },
            "{src}"
        );
        assert_eq!(
            err.to_string(),
            format!("expression returned a value of type {type_name}, not a number")
        );
    }
}

#[test]
fn too_large_is_an_error() {
    assert_eq!(count("4294967295", &[]), Ok(u32::MAX));
    assert!(matches!(
        count("2 ** 40", &[]),
        Err(ExprError::TooLarge { .. })
    ));
}

#[test]
fn wrong_types_are_eval_errors() {
    let err = count("ceil(x > 1)", &[("x", 3.0)]).unwrap_err();
    assert!(matches!(err, ExprError::Eval { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("evaluating `ceil(x > 1)` failed: "),
        "{err}"
    );
}

// --- variables ----------------------------------------------------------------------------------

#[test]
fn variables_are_sorted_and_deduplicated() {
    let expr = Expr::compile("zeta + alpha * zeta + max(mid, alpha, 1)").unwrap();
    assert_eq!(expr.variables(), ["alpha", "mid", "zeta"]);
    assert!(Expr::compile("1 + 2").unwrap().variables().is_empty());
}

#[test]
fn check_variables_lists_known_names() {
    let expr = Expr::compile("ceil(queu_depth / 10)").unwrap();
    let err = expr
        .check_variables(&["workers", "queue_depth", "workers"])
        .unwrap_err();
    assert_eq!(
        err,
        ExprError::UnknownVariable {
            name: "queu_depth".into(),
            src: "ceil(queu_depth / 10)".into(),
            known: vec!["queue_depth".into(), "workers".into()],
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown variable `queu_depth` in `ceil(queu_depth / 10)`; known: queue_depth, workers"
    );
    let none: [&str; 0] = [];
    assert_eq!(
        expr.check_variables(&none).unwrap_err().to_string(),
        "unknown variable `queu_depth` in `ceil(queu_depth / 10)`; known: (none)"
    );
    expr.check_variables(&["queu_depth".to_string()]).unwrap();
}

#[test]
fn a_typo_in_a_dead_branch_is_still_found() {
    let expr = Expr::compile("if true { 1 } else { typo }").unwrap();
    assert_eq!(expr.variables(), ["typo"]);
    assert!(expr.check_variables(&["x"]).is_err());
    // ...and evaluation does not need it once it is known.
    assert_eq!(expr.eval(&vars(&[("typo", 5.0)])), Ok(1.0));
}

#[test]
fn missing_value_at_eval_is_its_own_error() {
    let expr = Expr::compile("x + y").unwrap();
    let err = expr.eval(&vars(&[("x", 1.0)])).unwrap_err();
    assert_eq!(
        err,
        ExprError::MissingVariable {
            name: "y".into(),
            src: "x + y".into()
        }
    );
    assert_eq!(err.to_string(), "no value for variable `y` in `x + y`");
}

#[test]
fn extra_values_are_ignored() {
    assert_eq!(count("x", &[("x", 2.0), ("unused", f64::NAN)]), Ok(2));
}

#[test]
fn variables_are_not_folded() {
    // The toolchain pitfall: compiling with constants in scope made the optimizer fold them.
    let expr = Expr::compile("ceil(queue_depth / 10) + 0 * 5").unwrap();
    assert_eq!(expr.eval_count(&vars(&[("queue_depth", 0.0)])), Ok(0));
    assert_eq!(expr.eval_count(&vars(&[("queue_depth", 420.0)])), Ok(42));
    assert_eq!(expr.eval_count(&vars(&[("queue_depth", 0.0)])), Ok(0));
}

#[test]
fn repeated_evaluation_reuses_state_without_mixing_values() {
    // Evaluation keeps a per-thread scope (values overwritten in place when the names repeat)
    // and function-resolution cache; interleave expressions with different and overlapping
    // names, several variables each, and check every result.
    let five = Expr::compile("clamp(ceil((q + b) / w) - i, m, 50)").unwrap();
    let two = Expr::compile("min(q, b) + max(q, b, 0)").unwrap();
    for round in 0..3 {
        let r = f64::from(round);
        let v = vars(&[
            ("q", 40.0 + r),
            ("b", 8.0),
            ("w", 4.0),
            ("i", r),
            ("m", 1.0),
        ]);
        // ceil((40 + r + 8) / 4) - r
        let want = ((48.0 + r) / 4.0).ceil() - r;
        assert_eq!(five.eval(&v), Ok(want), "round {round}");
        assert_eq!(five.eval(&v), Ok(want), "round {round}, again");
        assert_eq!(two.eval(&v), Ok(48.0 + r), "round {round}");
        let v = vars(&[("q", 1.0), ("b", 2.0), ("w", 0.5), ("i", 0.0), ("m", 30.0)]);
        assert_eq!(five.eval(&v), Ok(30.0), "round {round}, clamped up");
    }
    // A missing variable leaves nothing behind for the next evaluation.
    assert!(matches!(
        five.eval(&vars(&[("q", 1.0)])),
        Err(ExprError::MissingVariable { .. })
    ));
    assert_eq!(two.eval(&vars(&[("q", 3.0), ("b", 5.0)])), Ok(8.0));
}

#[test]
fn the_operation_limit_is_per_evaluation() {
    // The function-resolution cache is reused across evaluations, the operation count is not:
    // an expression well under the limit evaluates any number of times.
    let src = vec!["x"; 60].join(" + ");
    let expr = Expr::compile(&src).unwrap();
    let v = vars(&[("x", 1.0)]);
    let per_eval = 60; // at least one operation per addition
    for _ in 0..(3 * fas_expr::MAX_OPERATIONS / per_eval) {
        assert_eq!(expr.eval(&v), Ok(60.0));
    }
}

// --- the type -------------------------------------------------------------------------------------

#[test]
fn debug_and_display_show_the_source_only() {
    let expr = Expr::compile("ceil(x / 10)").unwrap();
    assert_eq!(format!("{expr:?}"), "Expr(\"ceil(x / 10)\")");
    assert_eq!(expr.to_string(), "ceil(x / 10)");
    assert_eq!(expr.source(), "ceil(x / 10)");
}

#[test]
fn evaluates_concurrently_from_many_threads() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Expr>();
    assert_send_sync_clone::<ExprError>();

    let expr = Expr::compile("ceil(queue_depth / 10) + min(a, b, 3)").unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let expr = expr.clone();
            s.spawn(move || {
                for i in 0..500 {
                    let depth = f64::from(t * 1000 + i);
                    let v = vars(&[("queue_depth", depth), ("a", 1.0), ("b", 2.0)]);
                    let want = (depth / 10.0).ceil() as u32 + 1;
                    assert_eq!(expr.eval_count(&v), Ok(want));
                }
            });
        }
    });
}
