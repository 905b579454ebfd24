//! Configuration problems and warnings as values ([`ConfigProblem`]), rendered in one place (its `Display`).

use std::fmt;

use super::raw::Setting;

/// One finding about the configuration: where it is, the value at fault (when it may be shown), what is wrong and
/// what to do.
///
/// Rendered as `key: message "value": hint`, each part present only when set:
/// `FAS_INTERVAL: invalid duration "soon": expected a number (examples: 15s, 1m30s, 500ms)`,
/// `app name required: set app-name or FAS_APP_NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where: the environment variable or YAML key (`FAS_INTERVAL`, `metric-collectors[0].query`), a collector
    /// (`metric-collectors[0]`) or the file; `None` for a rule about several settings.
    pub key: Option<String>,
    /// The value at fault, when it may be shown: never the value of a secret (`api-token`, `token`, `key-data`).
    pub value: Option<String>,
    /// What is wrong, lower-case.
    pub message: String,
    /// What was expected or what to do, if there is more to say.
    pub hint: Option<String>,
}

/// A finding that does not stop the program (an unknown `FAS_*` variable, a clamped value, an unset variable in a
/// query). The caller logs it once logging is set up ([`super::Config::log_warnings`]).
pub type ConfigWarning = ConfigProblem;

impl ConfigProblem {
    /// A problem with no key, value or hint.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigProblem {
            key: None,
            value: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with the value of `setting`: named by where it was set, showing the value unless it is a secret.
    pub(crate) fn invalid(setting: &Setting, message: impl Into<String>) -> Self {
        ConfigProblem {
            key: Some(setting.name.clone()),
            value: (!setting.secret).then(|| setting.value.trim().to_owned()),
            message: message.into(),
            hint: None,
        }
    }

    /// Sets where the problem is.
    pub(crate) fn at(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value shown (only for values that are not secrets).
    pub(crate) fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets the hint.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(value) = &self.value {
            write!(f, " {value:?}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

/// A rejected value: what kind of value it should have been and why it is not (the parsers' error type). The
/// caller turns it into a [`ConfigProblem`] that names the setting and shows the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// `invalid duration`, `invalid integer`...
    pub(crate) what: &'static str,
    /// Why, or what is expected.
    pub(crate) why: String,
}

impl Rejected {
    /// A rejection of a value that should have been `what`.
    pub(crate) fn new(what: &'static str, why: impl Into<String>) -> Self {
        Rejected {
            what,
            why: why.into(),
        }
    }

    /// The problem with `setting`.
    pub(crate) fn at(self, setting: &Setting) -> ConfigProblem {
        ConfigProblem::invalid(setting, self.what).hint(self.why)
    }
}

/// Everything found while building the configuration: problems (fatal, all reported together) and warnings.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Problems, in the order found.
    pub(crate) problems: Vec<ConfigProblem>,
    /// Warnings, in the order found.
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl Findings {
    /// Records a problem.
    pub(crate) fn problem(&mut self, problem: ConfigProblem) {
        self.problems.push(problem);
    }

    /// Records a warning.
    pub(crate) fn warn(&mut self, warning: ConfigWarning) {
        self.warnings.push(warning);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(value: &str, secret: bool) -> Setting {
        Setting {
            value: value.into(),
            name: "FAS_X".into(),
            secret,
        }
    }

    #[test]
    fn renders_each_part_only_when_present() {
        let cases = [
            (ConfigProblem::new("app name required"), "app name required"),
            (
                ConfigProblem::new("app name required").hint("set app-name"),
                "app name required: set app-name",
            ),
            (
                ConfigProblem::new("bad").at("metric-collectors[0]"),
                "metric-collectors[0]: bad",
            ),
            (
                Rejected::new("invalid duration", "missing unit").at(&setting(" 15 ", false)),
                "FAS_X: invalid duration \"15\": missing unit",
            ),
            (
                ConfigProblem::new("duplicate metric name")
                    .at("c")
                    .value("q\"x"),
                "c: duplicate metric name \"q\\\"x\"",
            ),
        ];
        for (problem, want) in cases {
            assert_eq!(problem.to_string(), want);
        }
    }

    #[test]
    fn a_secret_value_is_never_shown() {
        let p = Rejected::new("invalid token", "whatever").at(&setting("CANARY", true));
        assert_eq!(p.value, None);
        assert_eq!(p.to_string(), "FAS_X: invalid token: whatever");
    }
}
