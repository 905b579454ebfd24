//! Property tests: no input panics or hangs, and generated arithmetic agrees with Rust's f64.

use std::collections::BTreeMap;

use fas_expr::Expr;
use proptest::prelude::*;

/// Compiles and, if that works, evaluates with every variable set; must never panic.
fn run(src: &str) {
    if let Ok(expr) = Expr::compile(src) {
        let vars: BTreeMap<String, f64> = expr.variables().into_iter().map(|v| (v, 3.0)).collect();
        let _ = expr.eval_count(&vars);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(src in ".{0,300}") {
        run(&src);
    }

    #[test]
    fn expression_alphabet_never_panics(
        src in r#"[a-z0-9_ .,()\[\]{}+\-*/%^!<>=&|?:;"'#$`\n]{0,200}"#
    ) {
        run(&src);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(vec![
        "x", "y", "1", "0", "2.5", "-", "+", "*", "/", "%", "**", "^", "(", ")", ",", "min(",
        "max(", "ceil(", "clamp(", "if", "else", "{", "}", "&&", "||", "!", ">", "==", "true",
        "\"s\"", "[", "]", "#{", ":", "?", "and", "not", "let", ";", "=", ".", "::", "1e308",
    ]), 0..120)) {
        run(&tokens.join(" "));
    }

    #[test]
    fn deep_nesting_never_panics(
        depth in 0usize..12_000,
        open in prop::sample::select(vec!["(", "-", "!", "[", "ceil(", "min(1,", "if x {", "#{a:"]),
    ) {
        let src = format!("{}x", open.repeat(depth));
        run(&src);
        run(&src[..src.len().min(fas_expr::MAX_SOURCE_LEN)]);
    }

    #[test]
    fn arithmetic_matches_f64(tree in arith(), x in -1e6f64..1e6, y in -1e6f64..1e6) {
        let (src, _) = &tree;
        let expr = Expr::compile(src).unwrap();
        let vars = BTreeMap::from([("x".to_string(), x), ("y".to_string(), y)]);
        let got = expr.eval(&vars).unwrap();
        let want = eval_tree(&tree.1, x, y);
        prop_assert!(
            got == want || (got.is_nan() && want.is_nan()),
            "{src}: got {got}, want {want}"
        );
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Num(u32),
    X,
    Y,
    Bin(Box<Tree>, char, Box<Tree>),
    Call(&'static str, Vec<Tree>),
}

fn eval_tree(t: &Tree, x: f64, y: f64) -> f64 {
    match t {
        Tree::Num(n) => f64::from(*n),
        Tree::X => x,
        Tree::Y => y,
        Tree::Bin(a, op, b) => {
            let (a, b) = (eval_tree(a, x, y), eval_tree(b, x, y));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                '/' => a / b,
                _ => a % b,
            }
        }
        Tree::Call(name, args) => {
            let v: Vec<f64> = args.iter().map(|a| eval_tree(a, x, y)).collect();
            match *name {
                "ceil" => v[0].ceil(),
                "floor" => v[0].floor(),
                "abs" => v[0].abs(),
                "round" => v[0].round(),
                "min" if v.iter().any(|f| f.is_nan()) => f64::NAN,
                "max" if v.iter().any(|f| f.is_nan()) => f64::NAN,
                "min" => v.iter().copied().fold(f64::INFINITY, f64::min),
                _ => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            }
        }
    }
}

/// Random arithmetic trees, rendered fully parenthesized so precedence does not matter.
fn arith() -> impl Strategy<Value = (String, Tree)> {
    let leaf = prop_oneof![
        (0u32..1000).prop_map(Tree::Num),
        Just(Tree::X),
        Just(Tree::Y),
    ];
    let tree = leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!['+', '-', '*', '/', '%']),
                inner.clone()
            )
                .prop_map(|(a, op, b)| Tree::Bin(Box::new(a), op, Box::new(b))),
            (
                prop::sample::select(vec!["ceil", "floor", "abs", "round"]),
                inner.clone()
            )
                .prop_map(|(f, a)| Tree::Call(f, vec![a])),
            (
                prop::sample::select(vec!["min", "max"]),
                prop::collection::vec(inner, 2..5)
            )
                .prop_map(|(f, args)| Tree::Call(f, args)),
        ]
    });
    tree.prop_map(|t| (render(&t), t))
}

fn render(t: &Tree) -> String {
    match t {
        Tree::Num(n) => n.to_string(),
        Tree::X => "x".into(),
        Tree::Y => "y".into(),
        Tree::Bin(a, op, b) => format!("({} {op} {})", render(a), render(b)),
        Tree::Call(f, args) => {
            let args: Vec<String> = args.iter().map(render).collect();
            format!("{f}({})", args.join(", "))
        }
    }
}
