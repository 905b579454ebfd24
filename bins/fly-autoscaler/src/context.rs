//! The context variables of expressions ([`fas_expr::Context`]) from a tick: the calendar at the
//! tick in the configured time zone and the machine counts of the listed machines. Pure: the
//! time and the machines are arguments.

use std::time::SystemTime;

use fas_expr::{Calendar, Context, MachineCounts};
use fas_reconcile::{Machine, Policy, RegionCursor, Targets};

use crate::config::Config;

/// The calendar variables at `at`, in `tz` (UTC when `None`).
pub fn calendar(at: SystemTime, tz: Option<&jiff::tz::TimeZone>) -> Calendar {
    let ts = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = ts.to_zoned_datetime(tz.cloned().unwrap_or(jiff::tz::TimeZone::UTC));
    let num = |v: i8| u32::try_from(v).unwrap_or_default();
    Calendar {
        hour: num(zoned.hour()),
        minute: num(zoned.minute()),
        weekday: num(zoned.weekday().to_monday_zero_offset()),
        day_of_month: num(zoned.day()),
    }
}

/// The machine-count variables of `machines`, classified as the planner classifies them (the
/// counts of a plan without targets: the process group, reachable hosts, states on their way
/// out not created).
pub fn counts(machines: &[Machine], policy: &Policy) -> MachineCounts {
    let plan = fas_reconcile::plan(
        machines,
        &Targets::default(),
        policy,
        RegionCursor::default(),
        SystemTime::UNIX_EPOCH,
    );
    let c = &plan.counts;
    let state = |s: &str| c.by_state.get(s).copied().unwrap_or_default();
    MachineCounts {
        started: c.started,
        stopped: state("stopped"),
        suspended: state("suspended"),
        created: c.created,
    }
}

/// The context of one evaluation at `at`: the calendar always, the counts when the machines
/// were listed.
pub fn context(config: &Config, at: SystemTime, machines: Option<&[Machine]>) -> Context {
    Context {
        counts: machines.map(|m| counts(m, &config.policy())),
        calendar: Some(calendar(at, config.timezone.as_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        let ts: jiff::Timestamp = rfc3339.parse().unwrap();
        SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(ts.as_second()).unwrap())
    }

    fn paris() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Europe/Paris").unwrap()
    }

    fn hm(c: Calendar) -> (u32, u32, u32, u32) {
        (c.hour, c.minute, c.weekday, c.day_of_month)
    }

    #[test]
    fn utc_by_default_with_monday_zero() {
        // 2026-11-30 is a Monday.
        assert_eq!(
            hm(calendar(at("2026-11-30T17:05:00Z"), None)),
            (17, 5, 0, 30)
        );
        assert_eq!(
            hm(calendar(at("2026-12-06T23:59:00Z"), None)),
            (23, 59, 6, 6)
        );
    }

    #[test]
    fn paris_across_the_spring_dst_edge() {
        // 2026-03-29 (Sunday): 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let tz = paris();
        assert_eq!(
            hm(calendar(at("2026-03-29T00:59:00Z"), Some(&tz))),
            (1, 59, 6, 29)
        );
        assert_eq!(
            hm(calendar(at("2026-03-29T01:00:00Z"), Some(&tz))),
            (3, 0, 6, 29)
        );
    }

    #[test]
    fn paris_across_the_autumn_dst_edge_and_midnight() {
        // 2026-10-25 (Sunday): 03:00 CEST becomes 02:00 CET at 01:00 UTC.
        let tz = paris();
        assert_eq!(
            hm(calendar(at("2026-10-25T00:30:00Z"), Some(&tz))),
            (2, 30, 6, 25)
        );
        assert_eq!(
            hm(calendar(at("2026-10-25T01:30:00Z"), Some(&tz))),
            (2, 30, 6, 25)
        );
        // Sunday 23:30 UTC is already Monday in Paris (weekday and day change with the zone).
        assert_eq!(
            hm(calendar(at("2026-10-25T23:30:00Z"), Some(&tz))),
            (0, 30, 0, 26)
        );
    }

    #[test]
    fn counts_follow_the_planner_classification() {
        let m = |id: &str, state: &str, group: &str| Machine {
            id: id.into(),
            state: fas_reconcile::MachineState::parse(state),
            region: "iad".into(),
            process_group: Some(group.into()),
            host: fas_reconcile::HostStatus::Ok,
            has_config: true,
            created_at: None,
        };
        let policy = Policy {
            process_group: "app".into(),
            ..Policy::default()
        };
        let machines = [
            m("a", "started", "app"),
            m("b", "starting", "app"),
            m("c", "stopped", "app"),
            m("d", "suspended", "app"),
            m("e", "destroying", "app"),
            m("f", "started", "worker"),
        ];
        assert_eq!(
            counts(&machines, &policy),
            MachineCounts {
                started: 2,
                stopped: 1,
                suspended: 1,
                created: 4
            }
        );
    }
}
