//! The sandbox: one expression, no statements, no side effects, bounded size and depth, and
//! compile errors that say what to write instead.

use fas_expr::{Expr, ExprError, MAX_DEPTH, MAX_SOURCE_LEN};

fn compile_err(src: &str) -> ExprError {
    match Expr::compile(src) {
        Ok(expr) => panic!("`{src}` compiled to {expr:?}"),
        Err(e) => e,
    }
}

fn syntax_message(src: &str) -> String {
    match compile_err(src) {
        ExprError::Syntax { message, .. } => message,
        other => panic!("`{src}`: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_name_the_expression_the_position_and_what_was_expected() {
    let err = compile_err("ceil(queue_depth / 10");
    assert_eq!(
        err.to_string(),
        "syntax error in `ceil(queue_depth / 10` at line 1, column 22: \
         Expecting ')' to close the arguments list of this function call 'ceil'"
    );
    let ExprError::Syntax { line, column, .. } = err else {
        unreachable!()
    };
    assert_eq!((line, column), (1, 22));

    let err = compile_err("x +\n  * 2");
    assert!(err.to_string().contains("at line 2, column 3"), "{err}");
}

#[test]
fn statements_are_rejected() {
    for src in [
        "let a = 1",
        "const a = 1",
        "x = 1",
        "x += 1",
        "1; 2",
        "ceil(x);",
        "{ 1 }",
        "if x { let a = 1; a } else { 2 }",
        "return 1",
        "throw 1",
    ] {
        compile_err(src);
    }
}

#[test]
fn loops_functions_closures_and_imports_are_rejected() {
    for src in [
        "while true {}",
        "loop { 1 }",
        "for i in 0..10 { i }",
        "do { 1 } while false",
        "fn f() { 1 }",
        "|a| a + 1",
        "import \"std\" as s",
    ] {
        let err = compile_err(src);
        assert!(matches!(err, ExprError::Syntax { .. }), "`{src}`: {err:?}");
    }
}

#[test]
fn side_effects_and_dynamic_code_are_rejected() {
    for src in [
        "print(1)",
        "debug(1)",
        "Fn(\"ceil\")",
        "type_of(1)",
        "is_def_var(\"x\")",
        "call(1)",
    ] {
        let err = compile_err(src);
        assert!(
            matches!(err, ExprError::UnknownFunction { .. }),
            "`{src}`: {err:?}"
        );
    }
    assert!(syntax_message("eval(\"1 + 1\")").contains("eval"));
}

#[test]
fn unknown_functions_list_the_available_ones() {
    assert_eq!(
        compile_err("ceiling(x / 10)").to_string(),
        "unknown function `ceiling` in `ceiling(x / 10)`; available: \
         abs, ceil, clamp, floor, max, min, pow, round, sqrt"
    );
}

#[test]
fn wrong_argument_counts_are_compile_errors() {
    assert_eq!(
        compile_err("ceil(x, 2)").to_string(),
        "function `ceil` takes 1 argument, got 2 in `ceil(x, 2)`"
    );
    assert_eq!(
        compile_err("min(x)").to_string(),
        "function `min` takes 2 to 16 arguments, got 1 in `min(x)`"
    );
    assert_eq!(
        compile_err("clamp(x, 1)").to_string(),
        "function `clamp` takes 3 arguments, got 2 in `clamp(x, 1)`"
    );
    let seventeen = vec!["1"; 17].join(",");
    assert!(matches!(
        compile_err(&format!("max({seventeen})")),
        ExprError::Arity { got: 17, .. }
    ));
}

#[test]
fn method_calls_member_access_and_module_paths_are_rejected() {
    assert!(syntax_message("x.abs()").contains("not supported"));
    assert!(syntax_message("x.len").contains("not supported"));
    assert_eq!(
        syntax_message("math::pi"),
        "module paths (`::`) are not allowed in expressions"
    );
}

#[test]
fn expr_language_idioms_get_a_hint() {
    assert_eq!(
        compile_err("x > 5 ? 10 : 1").to_string(),
        "syntax error in `x > 5 ? 10 : 1` at line 1, column 7: \
         the ternary `a ? b : c` is not supported: write `if a { b } else { c }`"
    );
    assert_eq!(
        syntax_message("x > 1 and y > 1"),
        "`and` is not supported: write `&&`"
    );
    assert_eq!(
        syntax_message("x > 1 or y > 1"),
        "`or` is not supported: write `||`"
    );
    assert_eq!(
        syntax_message("not (x > 1)"),
        "`not` is not supported: write `!`"
    );
    assert_eq!(
        syntax_message("if not x { 1 } else { 2 }"),
        "`not` is not supported: write `!`"
    );
}

#[test]
fn long_sources_are_rejected() {
    let src = format!("1{}", " ".repeat(MAX_SOURCE_LEN));
    assert_eq!(
        compile_err(&src),
        ExprError::TooLong {
            len: MAX_SOURCE_LEN + 1,
            max: MAX_SOURCE_LEN
        }
    );
    assert_eq!(
        compile_err(&src).to_string(),
        format!(
            "expression is {} bytes long; the maximum is 4096 bytes",
            MAX_SOURCE_LEN + 1
        )
    );
    // Exactly the maximum is fine.
    let src = format!("1{}", " ".repeat(MAX_SOURCE_LEN - 1));
    assert!(Expr::compile(&src).is_ok());
}

#[test]
fn deep_nesting_is_a_syntax_error() {
    for src in [
        format!("{}x{}", "(".repeat(1000), ")".repeat(1000)),
        format!("{}x", "- ".repeat(2000)),
        format!("{}x", "!".repeat(4000)),
        format!("{}x{}", "[".repeat(2000), "]".repeat(2000)),
        format!("{}x{}", "abs(".repeat(800), ")".repeat(800)),
        vec!["x"; 2000].join("+"),
        "(".repeat(MAX_SOURCE_LEN),
    ] {
        let message = syntax_message(&src);
        assert!(
            message.contains("maximum complexity") || message.contains("incomplete"),
            "{message}"
        );
    }
    // Reasonable nesting compiles.
    let depth = MAX_DEPTH / 8;
    let src = format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
    assert!(Expr::compile(&src).is_ok(), "{depth} parentheses");
    assert!(Expr::compile(&vec!["x"; MAX_DEPTH / 2].join(" + ")).is_ok());
}

#[test]
fn long_sources_are_quoted_shortened_in_messages() {
    let src = format!("{} +", vec!["x"; 40].join(" + "));
    let message = compile_err(&src).to_string();
    assert!(message.contains("…`"), "{message}");
    assert!(message.len() < src.len() + 60, "{message}");
}
