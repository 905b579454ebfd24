//! The one shared rhai [`Engine`]: sandbox limits, the token mapper and the function table.

use std::any::TypeId;
use std::sync::OnceLock;

use rhai::{Dynamic, Engine, EvalAltResult, FloatWrapper, LexError, OptimizationLevel, Token};

use crate::{MAX_DEPTH, MAX_FN_ARGS, MAX_OPERATIONS, MAX_SOURCE_LEN};

/// A function users may call, with the number of arguments it accepts.
pub(crate) struct FnSpec {
    pub(crate) name: &'static str,
    pub(crate) min_args: usize,
    pub(crate) max_args: usize,
}

const fn spec(name: &'static str, min_args: usize, max_args: usize) -> FnSpec {
    FnSpec {
        name,
        min_args,
        max_args,
    }
}

/// Every function an expression may call, sorted by name. The engine registers exactly these
/// (it starts from `Engine::new_raw()`, which has none), and compilation rejects any other name.
pub(crate) const FUNCTIONS: &[FnSpec] = &[
    spec("abs", 1, 1),
    spec("ceil", 1, 1),
    spec("clamp", 3, 3),
    spec("floor", 1, 1),
    spec("max", 2, MAX_FN_ARGS),
    spec("min", 2, MAX_FN_ARGS),
    spec("pow", 2, 2),
    spec("round", 1, 1),
    spec("sqrt", 1, 1),
];

/// The shared engine, built once per process (building one costs about 0.3 ms).
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(build)
}

fn build() -> Engine {
    let mut engine = Engine::new_raw();
    // Compile unoptimized: the AST walk must see every variable and call as written (dead `if`
    // branches included). `Expr::compile` optimizes afterwards with an empty scope, so no
    // constant can ever be folded into the AST.
    engine.set_optimization_level(OptimizationLevel::None);
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(8);
    engine.set_max_expr_depths(MAX_DEPTH, MAX_DEPTH);
    engine.set_max_string_size(MAX_SOURCE_LEN);
    engine.set_max_array_size(MAX_SOURCE_LEN);
    engine.set_max_map_size(MAX_SOURCE_LEN);
    engine.set_max_variables(64);
    engine.set_allow_looping(false);
    engine.set_allow_anonymous_fn(false);
    engine.set_allow_shadowing(false);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    #[allow(deprecated)] // "volatile", not deprecated; pinned by the workspace's rhai version
    engine.on_parse_token(|token, _, _| map_token(token));
    register_functions(&mut engine);
    engine
}

/// Rewrites tokens so that rhai reads what Go users wrote for the Expr language.
fn map_token(token: Token) -> Token {
    match token {
        // Every number is a float, as in the Go version: `7 / 2` is 3.5, `1 / 0` is +Inf and
        // `%` never raises an integer-division error. (Integers beyond 2^53 lose precision.)
        Token::IntegerConstant(n) => Token::FloatConstant(Box::new((
            FloatWrapper::new(n as f64),
            n.to_string().into(),
        ))),
        // Expr language: `^` is power (rhai: bitwise xor, meaningless on floats).
        Token::XOr => Token::PowerOf,
        Token::Reserved(s) if s.as_str() == "?" => improper("?", HINT_TERNARY),
        Token::Identifier(s) if s.as_str() == "and" => improper("and", HINT_AND),
        Token::Identifier(s) if s.as_str() == "or" => improper("or", HINT_OR),
        Token::Identifier(s) if s.as_str() == "not" => improper("not", HINT_NOT),
        Token::DoubleColon => improper("::", HINT_MODULE),
        other => other,
    }
}

const HINT_TERNARY: &str =
    "the ternary `a ? b : c` is not supported: write `if a { b } else { c }`";
const HINT_AND: &str = "`and` is not supported: write `&&`";
const HINT_OR: &str = "`or` is not supported: write `||`";
const HINT_NOT: &str = "`not` is not supported: write `!`";
const HINT_MODULE: &str = "module paths (`::`) are not allowed in expressions";

/// The parser reports a rewritten token either with our message alone or wrapped as
/// "Unexpected '<message>'"; this returns our message in both cases.
pub(crate) fn hint_in(parse_message: &str) -> Option<&'static str> {
    [HINT_TERNARY, HINT_AND, HINT_OR, HINT_NOT, HINT_MODULE]
        .into_iter()
        .find(|hint| parse_message.contains(hint))
}

fn improper(symbol: &str, message: &str) -> Token {
    Token::LexError(Box::new(LexError::ImproperSymbol(
        symbol.to_owned(),
        message.to_owned(),
    )))
}

fn register_functions(engine: &mut Engine) {
    // Unary `-` on floats is built in; unary `+` is not (`Engine::new_raw()`).
    engine.register_fn("+", |x: f64| x);
    engine.register_fn("abs", f64::abs);
    engine.register_fn("ceil", f64::ceil);
    engine.register_fn("floor", f64::floor);
    // f64::round rounds half away from zero, like Go's math.Round.
    engine.register_fn("round", f64::round);
    engine.register_fn("sqrt", f64::sqrt);
    engine.register_fn("pow", f64::powf);
    engine.register_fn("clamp", clamp);
    let types = [TypeId::of::<f64>(); MAX_FN_ARGS];
    for n in 2..=MAX_FN_ARGS {
        engine.register_raw_fn("min", &types[..n], |_, args| Ok(fold(args, f64::min)));
        engine.register_raw_fn("max", &types[..n], |_, args| Ok(fold(args, f64::max)));
    }
}

/// `clamp(x, lo, hi)`; unlike `f64::clamp` it never panics: `lo > hi` is an evaluation error
/// and a NaN anywhere gives NaN (which the count semantics turn into an error).
fn clamp(x: f64, lo: f64, hi: f64) -> Result<f64, Box<EvalAltResult>> {
    if x.is_nan() || lo.is_nan() || hi.is_nan() {
        return Ok(f64::NAN);
    }
    if lo > hi {
        return Err(format!("clamp: the lower bound {lo} is above the upper bound {hi}").into());
    }
    Ok(x.max(lo).min(hi))
}

/// min/max over any number of floats; a NaN argument gives NaN (a broken metric must not be
/// silently ignored, which `f64::min` alone would do).
fn fold(args: &mut [&mut Dynamic], pick: fn(f64, f64) -> f64) -> f64 {
    let mut values = args.iter().map(|a| a.as_float().unwrap_or(f64::NAN));
    let Some(first) = values.next() else {
        return f64::NAN;
    };
    values.fold(first, |acc, v| {
        if acc.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            pick(acc, v)
        }
    })
}
