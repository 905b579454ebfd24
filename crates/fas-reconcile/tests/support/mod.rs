//! Compact text fixtures for planner tests.
//!
//! One machine per line: `ID STATE [r=REGION] [g=GROUP|g=-] [h=ok|unreachable|unknown]
//! [t=CREATED_AT] [noconfig]` (defaults: r=iad, g=app, h=ok, no created_at, has a config).
//! STATE is the wire name, read by `MachineState::parse` (`failed`, `replacing`, `updating`,
//! `launch_failed`, or any unknown string for `Other`).
//! Other lines: `created MIN..MAX` or `created N`, `started MIN..MAX` or `started N`,
//! `regions A B ...`, `cursor N`, `initial stopped|started`, `scale_down stop|suspend`,
//! `group NAME`, `limit creates|destroys|starts|stops N|none`, `unbounded` (no caps).

#![allow(dead_code, unreachable_pub)]

use std::time::SystemTime;

use expect_test::Expect;
use fas_reconcile::{
    ActionLimits, Bounds, HostStatus, InitialState, Machine, MachineState, Policy, RegionCursor,
    ScaleDown, Targets, plan,
};

pub struct Fixture {
    pub machines: Vec<Machine>,
    pub targets: Targets,
    pub policy: Policy,
    pub cursor: RegionCursor,
}

fn bounds(s: &str) -> Bounds {
    match s.split_once("..") {
        Some((a, b)) => Bounds {
            min: a.parse().unwrap(),
            max: b.parse().unwrap(),
        },
        None => Bounds::exactly(s.parse().unwrap()),
    }
}

pub fn parse(text: &str) -> Fixture {
    let mut f = Fixture {
        machines: Vec::new(),
        targets: Targets::default(),
        policy: Policy::default(),
        cursor: RegionCursor(0),
    };
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "created" => f.targets.created = Some(bounds(words[1])),
            "started" => f.targets.started = Some(bounds(words[1])),
            "regions" => f.policy.regions = words[1..].iter().map(|s| s.to_string()).collect(),
            "cursor" => f.cursor = RegionCursor(words[1].parse().unwrap()),
            "initial" => {
                f.policy.initial_state = match words[1] {
                    "stopped" => InitialState::Stopped,
                    _ => InitialState::Started,
                }
            }
            "scale_down" => {
                f.policy.scale_down = match words[1] {
                    "suspend" => ScaleDown::Suspend,
                    _ => ScaleDown::Stop,
                }
            }
            "group" => f.policy.process_group = words[1].to_owned(),
            "unbounded" => f.policy.limits = ActionLimits::unbounded(),
            "limit" => {
                let v = if words[2] == "none" {
                    None
                } else {
                    Some(words[2].parse().unwrap())
                };
                match words[1] {
                    "creates" => f.policy.limits.creates = v,
                    "destroys" => f.policy.limits.destroys = v,
                    "starts" => f.policy.limits.starts = v,
                    "stops" => f.policy.limits.stops = v,
                    other => panic!("unknown limit {other}"),
                }
            }
            id => {
                let mut m = Machine {
                    id: id.to_owned(),
                    state: MachineState::parse(words[1]),
                    region: "iad".to_owned(),
                    process_group: Some("app".to_owned()),
                    host: HostStatus::Ok,
                    has_config: true,
                    created_at: None,
                };
                for w in &words[2..] {
                    match w.split_once('=') {
                        Some(("r", v)) => m.region = v.to_owned(),
                        Some(("g", "-")) => m.process_group = None,
                        Some(("g", v)) => m.process_group = Some(v.to_owned()),
                        Some(("h", "ok")) => m.host = HostStatus::Ok,
                        Some(("h", "unreachable")) => m.host = HostStatus::Unreachable,
                        Some(("h", _)) => m.host = HostStatus::Unknown,
                        Some(("t", v)) => m.created_at = Some(v.to_owned()),
                        None if *w == "noconfig" => m.has_config = false,
                        _ => panic!("bad machine attribute {w:?} in {line:?}"),
                    }
                }
                f.machines.push(m);
            }
        }
    }
    f
}

/// Parses `fixture`, plans at the Unix epoch and compares the rendered table with `expect`.
pub fn check(fixture: &str, expect: Expect) {
    let f = parse(fixture);
    let p = plan(
        &f.machines,
        &f.targets,
        &f.policy,
        f.cursor,
        SystemTime::UNIX_EPOCH,
    );
    expect.assert_eq(&p.render_table());
}
