//! Context variables: values every expression may read besides the metrics.
//!
//! - machine counts of the app's process group, from the tick's machine list: `started`,
//!   `stopped`, `suspended`, `created` ([`COUNT_VARIABLES`]);
//! - the calendar at the tick, in UTC or the configured time zone: `hour`, `minute`, `weekday`
//!   (0 = Monday … 6 = Sunday), `day_of_month` ([`TIME_VARIABLES`]).
//!
//! A metric may not be named like one of them (the binary reports it as a configuration
//! error). Which values exist is the caller's business: a [`Context`] without counts makes an
//! expression that reads `started` fail with [`crate::ExprError::MissingVariable`].

/// The machine-count variables (they need the machine list before evaluation).
pub const COUNT_VARIABLES: [&str; 4] = ["started", "stopped", "suspended", "created"];

/// The calendar variables (UTC, or the configured time zone).
pub const TIME_VARIABLES: [&str; 4] = ["hour", "minute", "weekday", "day_of_month"];

/// Whether `name` is a context variable (a count or a calendar variable).
///
/// ```
/// assert!(fas_expr::is_context_variable("started"));
/// assert!(fas_expr::is_context_variable("weekday"));
/// assert!(!fas_expr::is_context_variable("queue_depth"));
/// ```
pub fn is_context_variable(name: &str) -> bool {
    COUNT_VARIABLES.contains(&name) || TIME_VARIABLES.contains(&name)
}

/// Current machine counts of the app's process group (as the planner counts them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineCounts {
    /// Machines counted as started (`started` + `starting`).
    pub started: u32,
    /// Machines in `stopped`.
    pub stopped: u32,
    /// Machines in `suspended`.
    pub suspended: u32,
    /// Machines counted as created (every state except those on their way out).
    pub created: u32,
}

/// The calendar at the tick, in the configured time zone (UTC by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calendar {
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u32,
    /// 1 to 31.
    pub day_of_month: u32,
}

/// The context variables available to one evaluation (`None`: not available).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// Machine counts, when the machine list was read before evaluation.
    pub counts: Option<MachineCounts>,
    /// The calendar at the tick.
    pub calendar: Option<Calendar>,
}

impl Context {
    /// The value of context variable `name`, if it is one and available.
    ///
    /// ```
    /// use fas_expr::{Calendar, Context, MachineCounts};
    /// let ctx = Context {
    ///     counts: Some(MachineCounts { started: 2, stopped: 1, suspended: 0, created: 3 }),
    ///     calendar: Some(Calendar { hour: 9, minute: 30, weekday: 0, day_of_month: 2 }),
    /// };
    /// assert_eq!(ctx.get("started"), Some(2.0));
    /// assert_eq!(ctx.get("weekday"), Some(0.0));
    /// assert_eq!(Context::default().get("started"), None);
    /// assert_eq!(ctx.get("queue_depth"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<f64> {
        let count = |f: fn(&MachineCounts) -> u32| self.counts.as_ref().map(|c| f64::from(f(c)));
        let cal = |f: fn(&Calendar) -> u32| self.calendar.as_ref().map(|c| f64::from(f(c)));
        match name {
            "started" => count(|c| c.started),
            "stopped" => count(|c| c.stopped),
            "suspended" => count(|c| c.suspended),
            "created" => count(|c| c.created),
            "hour" => cal(|c| c.hour),
            "minute" => cal(|c| c.minute),
            "weekday" => cal(|c| c.weekday),
            "day_of_month" => cal(|c| c.day_of_month),
            _ => None,
        }
    }
}
