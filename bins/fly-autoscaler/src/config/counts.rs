//! The targets: `created-machine-count` / `started-machine-count` and their min/max pairs, compiled and checked
//! against the metric names of the collectors.

use fas_expr::Expr;

use super::CountExprs;
use super::keys::Key;
use super::problem::{ConfigProblem, Findings};
use super::raw::{Layer, Setting};

/// `app-name or FAS_APP_NAME`: how to tell the user where a missing setting goes.
pub(crate) fn both_names(key: Key) -> String {
    format!("{} or {}", key.yaml(), key.env())
}

/// The three keys of one count.
struct CountKeys {
    /// `created` or `started`, as the Go messages say it.
    which: &'static str,
    single: Key,
    min: Key,
    max: Key,
}

const CREATED: CountKeys = CountKeys {
    which: "created",
    single: Key::CreatedMachineCount,
    min: Key::MinCreatedMachineCount,
    max: Key::MaxCreatedMachineCount,
};

const STARTED: CountKeys = CountKeys {
    which: "started",
    single: Key::StartedMachineCount,
    min: Key::MinStartedMachineCount,
    max: Key::MaxStartedMachineCount,
};

/// The compiled counts (`None`: not configured, or not valid).
pub(crate) struct Counts {
    pub(crate) created: Option<CountExprs>,
    pub(crate) started: Option<CountExprs>,
}

/// Both counts; `known` are the metric names expressions may read.
pub(crate) fn counts(layer: &Layer, known: &[String], findings: &mut Findings) -> Counts {
    let (created_defined, created) = count(layer, &CREATED, known, findings);
    let (started_defined, started) = count(layer, &STARTED, known, findings);
    if !created_defined && !started_defined {
        findings.problem(
            ConfigProblem::new("must define either created machine count or started machine count")
                .hint(format!(
                    "set {} or {} (or a min/max pair)",
                    both_names(Key::CreatedMachineCount),
                    both_names(Key::StartedMachineCount)
                )),
        );
    }
    Counts { created, started }
}

/// Compiles one expression setting and checks its variables; records problems under the setting's name.
fn compile(s: &Setting, known: &[String], findings: &mut Findings) -> Option<Expr> {
    let checked = Expr::compile(s.value.trim()).and_then(|e| e.check_variables(known).map(|()| e));
    match checked {
        Ok(e) => Some(e),
        Err(err) => {
            findings.problem(ConfigProblem::new(err.to_string()).at(&s.name));
            None
        }
    }
}

/// One of the two counts. Returns (defined, compiled bounds).
fn count(
    layer: &Layer,
    keys: &CountKeys,
    known: &[String],
    findings: &mut Findings,
) -> (bool, Option<CountExprs>) {
    let which = keys.which;
    let (single, min, max) = (
        layer.get(keys.single),
        layer.get(keys.min),
        layer.get(keys.max),
    );
    let defined = single.is_some() || min.is_some() || max.is_some();
    let exprs = match (single, min, max) {
        (None, None, None) => None,
        (Some(s), None, None) => compile(s, known, findings).map(|e| CountExprs {
            min: e.clone(),
            max: e,
        }),
        (Some(s), lo, hi) => {
            let others: Vec<&str> = [lo, hi]
                .into_iter()
                .flatten()
                .map(|x| x.name.as_str())
                .collect();
            findings.problem(
                ConfigProblem::new(format!(
                    "cannot define {which} machine count and min/max {which} machine count"
                ))
                .hint(format!(
                    "{} is set together with {}",
                    s.name,
                    others.join(" and ")
                )),
            );
            None
        }
        (None, Some(lo), None) => {
            findings.problem(
                ConfigProblem::new(format!(
                    "max {which} machine count required if min {which} machine count is defined"
                ))
                .hint(format!(
                    "{} is set, set {} too",
                    lo.name,
                    both_names(keys.max)
                )),
            );
            None
        }
        (None, None, Some(hi)) => {
            findings.problem(
                ConfigProblem::new(format!(
                    "min {which} machine count required if max {which} machine count is defined"
                ))
                .hint(format!(
                    "{} is set, set {} too",
                    hi.name,
                    both_names(keys.min)
                )),
            );
            None
        }
        (None, Some(lo), Some(hi)) => {
            let lo = compile(lo, known, findings);
            let hi = compile(hi, known, findings);
            lo.zip(hi).map(|(min, max)| CountExprs { min, max })
        }
    };
    (defined, exprs)
}
