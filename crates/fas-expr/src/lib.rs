//! The scaling expression language of fly-autoscaler.
//!
//! Each machine count in the configuration (`min-started-machine-count`, ...) is an expression
//! over the collected metrics, each metric a variable named by its `metric-name`. The Go
//! fly-autoscaler used the Expr language; this crate runs the same everyday expressions on
//! [rhai](https://rhai.rs), with a few token rewrites so that what Go users wrote keeps working.
//! `docs/expressions.md` is the user guide (functions, operators, translations from Expr); its
//! Rust example runs as a doctest.
//!
//! ```
//! use std::collections::BTreeMap;
//! use fas_expr::Expr;
//!
//! // Compile once, at load time...
//! let expr = Expr::compile("ceil(queue_depth / 10)")?;
//! // ...check the names against the configured metrics (a typo is a load-time error)...
//! expr.check_variables(&["queue_depth"])?;
//! // ...and evaluate every interval.
//! let vars = BTreeMap::from([("queue_depth".to_string(), 42.0)]);
//! assert_eq!(expr.eval(&vars)?, 5.0);
//! assert_eq!(expr.eval_count(&vars)?, 5);
//! # Ok::<(), fas_expr::ExprError>(())
//! ```
//!
//! # Language
//!
//! - Every number is an `f64`: integer literals are read as floats, so `7 / 2` is 3.5 and `1 / 0`
//!   is +Inf, as in the Go version (guarded by `tests/go_cases.rs`).
//! - Functions: `ceil`, `floor`, `round`, `abs`, `sqrt`, `pow(x, y)`, `clamp(x, lo, hi)`, and
//!   `min` / `max` with 2 to [`MAX_FN_ARGS`] arguments. Any other function name, or a wrong
//!   number of arguments, is a compile error ([`ExprError::UnknownFunction`], [`ExprError::Arity`]).
//! - Operators: `+ - * / %`, power `**` (and `^`, its Expr-language spelling), comparisons,
//!   `&&`, `||`, `!`, and `if c { a } else { b }`. The Expr-language `a ? b : c`, `and`, `or`,
//!   `not` are compile errors that say what to write instead.
//!
//! # Count semantics
//!
//! [`to_count`] (used by [`Expr::eval_count`]) is the one place that turns a value into a machine
//! count: rounded half away from zero; negative → 0; NaN → [`ExprError::NaN`]; ±Inf →
//! [`ExprError::Infinite`]; above `u32::MAX` → [`ExprError::TooLarge`] (an error, not saturation:
//! four billion machines is always a bug, and saturating would create an absurd fleet). A
//! non-numeric result (bool, string, unit) is [`ExprError::NotANumber`] naming the type.
//! Guarded by the unit tests in `count.rs` and by `tests/go_cases.rs`.
//!
//! # Sandbox
//!
//! An expression is one expression: no statements, `let`, loops, closures, function
//! definitions, imports, `print`/`debug`, `eval`, method calls or module paths (`tests/sandbox.rs`).
//! Sources longer than [`MAX_SOURCE_LEN`] bytes are rejected ([`ExprError::TooLong`]); nesting
//! deeper than [`MAX_DEPTH`] is a syntax error; evaluation stops after [`MAX_OPERATIONS`]
//! operations. With no loops or recursion, evaluation time is linear in the (bounded) source
//! length: every input finishes, with a value or an error, in well under a millisecond
//! (`tests/props.rs` feeds arbitrary and adversarial strings; `benches/eval.rs` measures).
//!
//! # Invariants
//!
//! - One rhai `Engine` per process (built lazily in a `OnceLock`), shared by every [`Expr`]; an
//!   [`Expr`] is `Clone + Send + Sync` and evaluates from any thread (`tests/go_cases.rs`).
//! - Compilation never has variable values in scope, so the optimizer cannot fold a metric into
//!   a constant (the toolchain pitfall); the test `variables_are_not_folded` guards it.
//! - Variable names are extracted from the unoptimized AST, so a typo in a dead `if` branch is
//!   still reported by [`Expr::check_variables`] (`a_typo_in_a_dead_branch_is_still_found`).
//! - Evaluation pushes only the variables the expression reads, into a per-thread `Scope` that
//!   is reused (values overwritten) when the same names come again, next to a per-thread rhai
//!   function-resolution cache; no state leaks between expressions and the operation limit
//!   counts per evaluation (`evaluates_concurrently_from_many_threads`,
//!   `repeated_evaluation_reuses_state_without_mixing_values`,
//!   `the_operation_limit_is_per_evaluation`, `tests/props.rs`).
//!
//! # Performance
//!
//! `cargo bench -p fas-expr` (release; median of 9 runs; the numbers below are the fastest of
//! several bench runs on the shared 2-core machine, where one run in two is 1.5x slower):
//! compiled evaluation of `ceil(queue_depth / 10)` takes about 350 ns and of the 5-variable
//! `clamp(ceil((queue_depth + backlog) / per_worker) - idle, min_workers, 50)` about 1.1 µs
//! (9,700 instructions, `valgrind --tool=callgrind` on `examples/profile_eval.rs`). Of those,
//! 7,600 are rhai's own AST walk, the same as for a bare `Engine::new_raw()` with only `ceil` and
//! `clamp` registered, so no engine setting changes it; the rest is looking the five names up
//! and storing the values in the `Scope`. Compilation takes a few microseconds and happens once,
//! at load.
// Library crates document every public item; the workspace lint only warns (binaries).
#![deny(missing_docs)]

mod check;
mod context;
mod count;
mod engine;
mod error;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rhai::{AST, Caches, Dynamic, ImmutableString, OptimizationLevel, ParseError, Scope};

pub use context::{
    COUNT_VARIABLES, Calendar, Context, MachineCounts, TIME_VARIABLES, is_context_variable,
};
pub use count::to_count;

// The Rust examples of the user guide run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/expressions.md")]
struct ExpressionsGuide;
pub use error::ExprError;

/// Longest accepted expression source, in bytes. Real expressions are a few dozen bytes; the
/// limit bounds compile and evaluation time.
pub const MAX_SOURCE_LEN: usize = 4096;

/// Deepest accepted nesting of parentheses, calls and `if` (a syntax error beyond).
pub const MAX_DEPTH: usize = 64;

/// Most rhai operations one evaluation may run before it fails with [`ExprError::Eval`]. A
/// maximum-length expression needs fewer than half of this; it is a backstop.
pub const MAX_OPERATIONS: u64 = 10_000;

/// Most arguments `min` and `max` accept.
pub const MAX_FN_ARGS: usize = 16;

/// A compiled scaling expression.
///
/// Cheap to clone (the AST is shared), `Send + Sync`; `Debug` shows the source only.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

struct Inner {
    src: String,
    ast: AST,
    /// Variables read, sorted and deduplicated, in the form rhai's `Scope` stores them.
    vars: Vec<ImmutableString>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.inner.src).finish()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.src)
    }
}

impl Expr {
    /// Compiles an expression (syntax and sandbox checks, known functions and their arities).
    /// Variable names are not checked here: see [`Expr::check_variables`].
    ///
    /// ```
    /// let err = fas_expr::Expr::compile("ceil(x / 10").unwrap_err();
    /// assert!(err.to_string().starts_with("syntax error in `ceil(x / 10` at line 1, column"));
    /// let err = fas_expr::Expr::compile("x > 5 ? 10 : 1").unwrap_err();
    /// assert!(err.to_string().contains("write `if a { b } else { c }`"));
    /// ```
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        if src.len() > MAX_SOURCE_LEN {
            return Err(ExprError::TooLong {
                len: src.len(),
                max: MAX_SOURCE_LEN,
            });
        }
        if src.trim().is_empty() {
            return Err(ExprError::Syntax {
                src: src.to_owned(),
                line: 0,
                column: 0,
                message: "the expression is empty".to_owned(),
            });
        }
        let engine = engine::engine();
        let ast = engine
            .compile_expression(src)
            .map_err(|e| syntax_error(src, &e))?;
        let names = check::inspect(&ast, src)?;
        // Optimize with an EMPTY scope: nothing but literals can be folded.
        let ast = engine.optimize_ast(&Scope::new(), ast, OptimizationLevel::Simple);
        Ok(Expr {
            inner: Arc::new(Inner {
                src: src.to_owned(),
                ast,
                vars: names.into_iter().map(ImmutableString::from).collect(),
            }),
        })
    }

    /// Like [`Expr::compile`], but a blank or whitespace-only source means "not configured":
    /// `Ok(None)`.
    ///
    /// ```
    /// assert!(fas_expr::Expr::compile_optional("  ")?.is_none());
    /// assert!(fas_expr::Expr::compile_optional("2")?.is_some());
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn compile_optional(src: &str) -> Result<Option<Expr>, ExprError> {
        if src.trim().is_empty() {
            Ok(None)
        } else {
            Expr::compile(src).map(Some)
        }
    }

    /// Load-time check: every variable the expression reads must be in `known` (the configured
    /// metric names, plus any built-in variables).
    ///
    /// ```
    /// let expr = fas_expr::Expr::compile("ceil(queu_depth / 10)")?;
    /// let err = expr.check_variables(&["queue_depth", "workers"]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "unknown variable `queu_depth` in `ceil(queu_depth / 10)`; known: queue_depth, workers"
    /// );
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn check_variables<S: AsRef<str>>(&self, known: &[S]) -> Result<(), ExprError> {
        for name in &self.inner.vars {
            if !known.iter().any(|k| k.as_ref() == name.as_str()) {
                let mut known: Vec<String> = known.iter().map(|k| k.as_ref().to_owned()).collect();
                known.sort();
                known.dedup();
                return Err(ExprError::UnknownVariable {
                    name: name.to_string(),
                    src: self.inner.src.clone(),
                    known,
                });
            }
        }
        Ok(())
    }

    /// Names of the variables the expression reads, sorted and deduplicated.
    pub fn variables(&self) -> Vec<String> {
        self.inner.vars.iter().map(|v| v.to_string()).collect()
    }

    /// Whether the expression reads a machine-count variable ([`COUNT_VARIABLES`]): then the
    /// machine list must be read before it is evaluated.
    ///
    /// ```
    /// assert!(fas_expr::Expr::compile("if cpu > 0.8 { started + 1 } else { started }")?.uses_counts());
    /// assert!(!fas_expr::Expr::compile("if hour >= 8 { 2 } else { 0 }")?.uses_counts());
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn uses_counts(&self) -> bool {
        self.inner
            .vars
            .iter()
            .any(|v| COUNT_VARIABLES.contains(&v.as_str()))
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.inner.src
    }

    /// Evaluates to a raw number (not rounded; NaN and ±Inf are returned as they are).
    ///
    /// Errors: [`ExprError::MissingVariable`] when `vars` lacks a variable the expression reads,
    /// [`ExprError::NotANumber`] for a bool/string/unit result, [`ExprError::Eval`] for a
    /// runtime failure (a sandbox limit, a function applied to a bool, ...).
    pub fn eval(&self, vars: &BTreeMap<String, f64>) -> Result<f64, ExprError> {
        self.eval_with(|name| vars.get(name).copied())
    }

    /// Like [`Expr::eval`], with the variable values given by a lookup function.
    ///
    /// ```
    /// let expr = fas_expr::Expr::compile("max(a, b, 3) / 2")?;
    /// assert_eq!(expr.eval_with(|name| if name == "a" { Some(1.0) } else { Some(9.0) })?, 4.5);
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn eval_with(&self, lookup: impl Fn(&str) -> Option<f64>) -> Result<f64, ExprError> {
        // One reusable scope and function-resolution cache per thread: when a thread evaluates
        // the same variable names again (the common case), only the values are overwritten and
        // nothing is allocated, and every function call is found in the cache.
        thread_local! {
            static STATE: RefCell<EvalState> = RefCell::new(EvalState::default());
        }
        STATE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut state) => self.eval_in(&mut state, &lookup),
            // Unreachable today (no registered function evaluates an expression), but safe.
            Err(_) => self.eval_in(&mut EvalState::default(), &lookup),
        })
    }

    fn eval_in(
        &self,
        state: &mut EvalState,
        lookup: &impl Fn(&str) -> Option<f64>,
    ) -> Result<f64, ExprError> {
        let EvalState { scope, caches } = state;
        let vars = &self.inner.vars;
        // `Scope::iter_raw` yields the entries last-pushed first, hence the `rev()`.
        let same_names = scope.len() == vars.len()
            && scope
                .iter_raw()
                .zip(vars.iter().rev())
                .all(|((name, _, _), var)| name == var.as_str());
        if !same_names {
            scope.clear();
        }
        for name in vars {
            let Some(value) = lookup(name.as_str()) else {
                scope.clear();
                return Err(ExprError::MissingVariable {
                    name: name.to_string(),
                    src: self.inner.src.clone(),
                });
            };
            if same_names {
                match scope.get_value_mut::<f64>(name.as_str()) {
                    Some(slot) => *slot = value,
                    // The expression assigned a non-float to the variable last time.
                    None => {
                        scope.set_value(name.as_str(), value);
                    }
                }
            } else {
                scope.push_dynamic(name.as_str(), Dynamic::from_float(value));
            }
        }
        let engine = engine::engine();
        // What `Engine::eval_ast_with_scope` does, minus its two per-call costs: a fresh
        // function-resolution cache (every call of a registered function resolved from scratch,
        // then the cache freed) and installing the AST's script functions (an expression has
        // none). The runtime state is still fresh per evaluation, so the operation limit counts
        // from zero every time.
        let mut global = engine.new_global_runtime_state();
        #[allow(deprecated)] // the one public entry point that takes the caches
        let result = engine
            .eval_statements_raw(&mut global, caches, scope, self.inner.ast.statements())
            .map_err(|e| ExprError::Eval {
                src: self.inner.src.clone(),
                message: e.to_string(),
            })?;
        if let Ok(f) = result.as_float() {
            Ok(f)
        } else if let Ok(i) = result.as_int() {
            Ok(i as f64)
        } else {
            Err(ExprError::NotANumber {
                type_name: result.type_name().to_owned(),
            })
        }
    }

    /// [`Expr::eval`] followed by [`to_count`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let expr = fas_expr::Expr::compile("x + y + 2")?;
    /// let vars = BTreeMap::from([("x".to_string(), 4.0), ("y".to_string(), 7.0)]);
    /// assert_eq!(expr.eval_count(&vars)?, 13);
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn eval_count(&self, vars: &BTreeMap<String, f64>) -> Result<u32, ExprError> {
        to_count(self.eval(vars)?)
    }

    /// [`Expr::eval_count`] with the context variables ([`Context`]) besides the metrics. A
    /// metric never shares a context variable's name (a configuration error), so the order of
    /// the lookups does not matter; a context variable the context lacks is
    /// [`ExprError::MissingVariable`].
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use fas_expr::{Context, Expr, MachineCounts};
    /// let expr = Expr::compile("if cpu > 0.8 { started + 1 } else { started }")?;
    /// let ctx = Context { counts: Some(MachineCounts { started: 3, ..Default::default() }), calendar: None };
    /// let busy = BTreeMap::from([("cpu".to_string(), 0.9)]);
    /// assert_eq!(expr.eval_count_in(&busy, &ctx)?, 4);
    /// assert!(expr.eval_count_in(&busy, &Context::default()).is_err());
    /// # Ok::<(), fas_expr::ExprError>(())
    /// ```
    pub fn eval_count_in(
        &self,
        vars: &BTreeMap<String, f64>,
        ctx: &Context,
    ) -> Result<u32, ExprError> {
        to_count(self.eval_with(|name| vars.get(name).copied().or_else(|| ctx.get(name)))?)
    }
}

/// Per-thread evaluation state, reused across evaluations.
#[derive(Default)]
struct EvalState {
    /// The variables of the last expression evaluated, in `Inner::vars` order.
    scope: Scope<'static>,
    /// rhai's function-resolution cache. Only registered native functions exist (an
    /// expression defines none), so an entry stays valid for every expression. It is keyed by
    /// function and argument types, so it stays as small as the set of calls ever made.
    caches: Caches,
}

fn syntax_error(src: &str, err: &ParseError) -> ExprError {
    let message = err.err_type().to_string();
    let message = engine::hint_in(&message).map_or(message, str::to_owned);
    check::syntax(src, err.position(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(started: u32, hour: u32, weekday: u32) -> Context {
        Context {
            counts: Some(MachineCounts {
                started,
                stopped: 2,
                suspended: 1,
                created: started + 3,
            }),
            calendar: Some(Calendar {
                hour,
                minute: 15,
                weekday,
                day_of_month: 28,
            }),
        }
    }

    #[test]
    fn business_hours_floor_uses_hour_and_weekday() {
        let e = Expr::compile(
            "max(ceil(queue_depth / 10), if hour >= 8 && hour < 18 && weekday < 5 { 2 } else { 0 })",
        )
        .unwrap();
        let mut known: Vec<&str> = vec!["queue_depth"];
        known.extend(TIME_VARIABLES);
        e.check_variables(&known).unwrap();
        assert!(!e.uses_counts());
        let q = |v: f64| BTreeMap::from([("queue_depth".to_string(), v)]);
        assert_eq!(
            e.eval_count_in(&q(0.0), &ctx(0, 9, 0)).unwrap(),
            2,
            "monday 9:15"
        );
        assert_eq!(
            e.eval_count_in(&q(0.0), &ctx(0, 18, 0)).unwrap(),
            0,
            "18:15"
        );
        assert_eq!(
            e.eval_count_in(&q(0.0), &ctx(0, 9, 5)).unwrap(),
            0,
            "saturday"
        );
        assert_eq!(e.eval_count_in(&q(55.0), &ctx(0, 9, 6)).unwrap(), 6);
    }

    #[test]
    fn started_plus_one_when_busy() {
        let e = Expr::compile("if cpu > 0.8 { started + 1 } else { started }").unwrap();
        assert!(e.uses_counts());
        let cpu = |v: f64| BTreeMap::from([("cpu".to_string(), v)]);
        assert_eq!(e.eval_count_in(&cpu(0.9), &ctx(3, 0, 0)).unwrap(), 4);
        assert_eq!(e.eval_count_in(&cpu(0.5), &ctx(3, 0, 0)).unwrap(), 3);
    }

    #[test]
    fn every_context_variable_has_its_value() {
        let e = Expr::compile(
            "started * 1000000 + stopped * 100000 + suspended * 10000 + created * 1000 + hour * 100 + minute + weekday * 10 + day_of_month * 0.01",
        )
        .unwrap();
        let v = e.eval_with(|n| ctx(4, 7, 3).get(n)).unwrap();
        assert!(
            (v - (4_000_000.0 + 200_000.0 + 10_000.0 + 7_000.0 + 700.0 + 15.0 + 30.0 + 0.28)).abs()
                < 1e-6
        );
    }

    #[test]
    fn a_missing_count_names_the_variable() {
        let e = Expr::compile("stopped + 1").unwrap();
        let err = e
            .eval_count_in(
                &BTreeMap::new(),
                &Context {
                    counts: None,
                    calendar: ctx(1, 1, 1).calendar,
                },
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no value for variable `stopped` in `stopped + 1`"
        );
    }

    #[test]
    fn context_names_are_listed_and_absent_without_a_context() {
        assert_eq!(COUNT_VARIABLES.len() + TIME_VARIABLES.len(), 8);
        for n in COUNT_VARIABLES.iter().chain(&TIME_VARIABLES) {
            assert!(is_context_variable(n));
            assert!(Context::default().get(n).is_none());
            assert!(ctx(1, 1, 1).get(n).is_some());
        }
    }
}
