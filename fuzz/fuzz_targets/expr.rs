//! Expressions: compile, check the variables, evaluate with the given values.
//! Input: the expression, then NUL-separated `name=value` variables (values parsed as f64).
#![no_main]

use std::collections::BTreeMap;

use fas_expr::Expr;
use fas_fuzz::text_and_pairs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (src, pairs) = text_and_pairs(data);
    let vars: BTreeMap<String, f64> = pairs
        .into_iter()
        .map(|(k, v)| (k, v.trim().parse::<f64>().unwrap_or(0.0)))
        .collect();
    let Ok(expr) = Expr::compile(&src) else {
        return;
    };
    let names: Vec<&String> = vars.keys().collect();
    let known = expr.check_variables(&names).is_ok();
    let value = expr.eval(&vars);
    if let Ok(v) = &value {
        // A value is a number (NaN and infinities are errors of the count, not of eval).
        let _ = v.is_finite();
    }
    let count = expr.eval_count(&vars);
    if let Ok(n) = count {
        // A count comes from the same evaluation: it is the rounded, clamped value.
        let v = value.as_ref().copied().expect("a count implies a value");
        assert!(v.is_finite(), "count {n} from a non-finite value {v}");
        assert!((f64::from(n) - v.max(0.0)).abs() <= 0.5 + 1e-9 || v > f64::from(u32::MAX));
    }
    if known {
        // Every variable the expression reads was given: evaluation never fails for a missing one.
        if let Err(e) = &value {
            assert!(
                !e.to_string().contains("missing"),
                "known variables but: {e}"
            );
        }
    }
});
