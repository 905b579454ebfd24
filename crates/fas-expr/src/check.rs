//! Compile-time inspection of an AST: the variables it reads and the functions it calls.

use std::collections::BTreeSet;

use rhai::{AST, ASTNode, Expr, Position};

use crate::ExprError;
use crate::engine::FUNCTIONS;

/// Walks the (unoptimized) AST. Returns the variable names (sorted, deduplicated), or the first
/// call to an unknown function, a call with the wrong number of arguments, a method call or a
/// member access.
pub(crate) fn inspect(ast: &AST, src: &str) -> Result<Vec<String>, ExprError> {
    let mut vars = BTreeSet::new();
    let mut error = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(expr)) = path.last() else {
            return true;
        };
        let result = match expr {
            Expr::Variable(x, ..) => {
                vars.insert(x.1.to_string());
                Ok(())
            }
            // Operators (`+`, `==`, unary `-`, `!`, ...) are calls with an operator token.
            Expr::FnCall(call, pos) if call.op_token.is_none() => {
                check_call(src, &call.name, call.args.len(), *pos)
            }
            Expr::MethodCall(call, pos) => Err(syntax(
                src,
                *pos,
                format!(
                    "method calls are not supported: write `{}(x)` instead of `x.{}()`",
                    call.name, call.name
                ),
            )),
            Expr::Dot(_, _, pos) => {
                Err(syntax(src, *pos, "member access with `.` is not supported"))
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                error = Some(e);
                false
            }
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(vars.into_iter().collect()),
    }
}

fn check_call(src: &str, name: &str, got: usize, _pos: Position) -> Result<(), ExprError> {
    let Some(spec) = FUNCTIONS.iter().find(|f| f.name == name) else {
        return Err(ExprError::UnknownFunction {
            name: name.to_owned(),
            src: src.to_owned(),
            known: FUNCTIONS.iter().map(|f| f.name.to_owned()).collect(),
        });
    };
    if (spec.min_args..=spec.max_args).contains(&got) {
        return Ok(());
    }
    let expected = match (spec.min_args, spec.max_args) {
        (1, 1) => "1 argument".to_owned(),
        (a, b) if a == b => format!("{a} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    };
    Err(ExprError::Arity {
        name: name.to_owned(),
        src: src.to_owned(),
        expected,
        got,
    })
}

/// A syntax error at `pos`.
pub(crate) fn syntax(src: &str, pos: Position, message: impl Into<String>) -> ExprError {
    ExprError::Syntax {
        src: src.to_owned(),
        line: pos.line().unwrap_or(0),
        column: pos.position().unwrap_or(0),
        message: message.into(),
    }
}
