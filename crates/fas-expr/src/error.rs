//! The one error type of the crate.

/// Everything that can go wrong compiling, checking or evaluating an expression.
///
/// Messages are self-contained (they quote the expression and say what to write instead), so the
/// rhai error that caused a `Syntax` or `Eval` error is rendered into `message` rather than chained
/// as a source: rhai's types stay out of this crate's public API, and printing the error chain does
/// not repeat the same text twice.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The expression does not parse, or uses syntax the sandbox does not allow.
    #[error("syntax error in `{}`{}: {message}", short(src), at(*line, *column))]
    Syntax {
        /// The expression as written.
        src: String,
        /// Line of the error, 1-based (0 when unknown).
        line: usize,
        /// Column of the error, 1-based (0 when unknown).
        column: usize,
        /// What is wrong and, where rhai knows it, what was expected.
        message: String,
    },
    /// The expression is longer than [`MAX_SOURCE_LEN`](crate::MAX_SOURCE_LEN) bytes.
    #[error("expression is {len} bytes long; the maximum is {max} bytes")]
    TooLong {
        /// Length of the expression in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The expression reads a variable that is not among the known names (load-time check).
    #[error(
        "unknown variable `{name}` in `{}`; known: {}",
        short(src),
        list(known)
    )]
    UnknownVariable {
        /// The unknown name.
        name: String,
        /// The expression as written.
        src: String,
        /// The names that exist, sorted.
        known: Vec<String>,
    },
    /// The expression calls a function that does not exist.
    #[error(
        "unknown function `{name}` in `{}`; available: {}",
        short(src),
        list(known)
    )]
    UnknownFunction {
        /// The unknown function name.
        name: String,
        /// The expression as written.
        src: String,
        /// The functions that exist, sorted.
        known: Vec<String>,
    },
    /// A function is called with the wrong number of arguments.
    #[error("function `{name}` takes {expected}, got {got} in `{}`", short(src))]
    Arity {
        /// The function name.
        name: String,
        /// The expression as written.
        src: String,
        /// What the function accepts, e.g. "1 argument" or "2 to 32 arguments".
        expected: String,
        /// How many arguments were given.
        got: usize,
    },
    /// No value was given for a variable the expression reads (evaluation time).
    #[error("no value for variable `{name}` in `{}`", short(src))]
    MissingVariable {
        /// The variable without a value.
        name: String,
        /// The expression as written.
        src: String,
    },
    /// The expression returned NaN (not a count).
    #[error("expression returned NaN")]
    NaN,
    /// The expression returned +Inf or -Inf (e.g. `1 / 0`).
    #[error("expression returned {}Inf", if *negative { "-" } else { "" })]
    Infinite {
        /// True for -Inf.
        negative: bool,
    },
    /// The expression returned something that is not a number (bool, string, unit, ...).
    #[error("expression returned a value of type {type_name}, not a number")]
    NotANumber {
        /// The rhai type name of the result, e.g. `bool`, `string`, `()`.
        type_name: String,
    },
    /// The rounded result does not fit a machine count (`u32`).
    #[error(
        "expression returned {value}, more than the largest machine count {}",
        u32::MAX
    )]
    TooLarge {
        /// The (rounded) value.
        value: f64,
    },
    /// Evaluation failed (a sandbox limit, a function applied to the wrong types, ...).
    #[error("evaluating `{}` failed: {message}", short(src))]
    Eval {
        /// The expression as written.
        src: String,
        /// What went wrong.
        message: String,
    },
}

fn at(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

/// Longest quote of the source in a message; longer sources are cut with "…".
const QUOTE_MAX: usize = 120;

fn short(src: &str) -> std::borrow::Cow<'_, str> {
    if src.len() <= QUOTE_MAX {
        return src.into();
    }
    let mut end = QUOTE_MAX;
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &src[..end]).into()
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}
