//! The modelled fleet of `simulate`: machines that take `boot` to start and `stop` to stop,
//! changed only by the planner's actions. Pure: the time is an argument.

use std::time::{Duration, SystemTime};

use fas_reconcile::{Action, HostStatus, Machine, MachineState, Plan};

/// A modelled machine: its state and, while it moves, when it arrives and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Modelled {
    id: String,
    state: &'static str,
    /// `(at, state)`: the state reached at `at`.
    next: Option<(SystemTime, &'static str)>,
}

/// The modelled machines of one app's process group.
#[derive(Debug, Clone)]
pub struct Fleet {
    machines: Vec<Modelled>,
    created: usize,
    boot: Duration,
    stop: Duration,
    group: String,
}

impl Fleet {
    /// `machines` machines of process group `group`, the first `started` of them started, the
    /// others stopped; a start takes `boot`, a stop or suspend `stop`.
    pub fn new(machines: u32, started: u32, boot: Duration, stop: Duration, group: &str) -> Fleet {
        let machines = (0..machines)
            .map(|i| Modelled {
                id: format!("m{:03}", i + 1),
                state: if i < started { "started" } else { "stopped" },
                next: None,
            })
            .collect::<Vec<_>>();
        Fleet {
            created: machines.len(),
            machines,
            boot,
            stop,
            group: group.to_owned(),
        }
    }

    /// Moves every machine whose transition ends at or before `now` to its new state.
    pub fn advance(&mut self, now: SystemTime) {
        for m in &mut self.machines {
            if let Some((at, state)) = m.next
                && at <= now
            {
                m.state = state;
                m.next = None;
            }
        }
    }

    /// The machines as the planner sees them in a list.
    pub fn machines(&self) -> Vec<Machine> {
        self.machines
            .iter()
            .map(|m| Machine {
                id: m.id.clone(),
                state: MachineState::parse(m.state),
                region: "iad".to_owned(),
                process_group: Some(self.group.clone()),
                host: HostStatus::Ok,
                has_config: true,
                created_at: None,
            })
            .collect()
    }

    /// Machines in `started` (booting ones not included).
    pub fn started(&self) -> u32 {
        self.count(|s| s == "started")
    }

    /// Machines that exist.
    pub fn created(&self) -> u32 {
        self.count(|_| true)
    }

    fn count(&self, f: impl Fn(&str) -> bool) -> u32 {
        let n = self.machines.iter().filter(|m| f(m.state)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Carries out every action of `plan` at `now`, as if each succeeded: a start boots
    /// (`starting` for `boot`), a stop or suspend takes `stop`, a create clones a machine
    /// (booting, or stopped with `skip_launch`), a destroy removes the machine at once.
    pub fn apply(&mut self, plan: &Plan, now: SystemTime) {
        for planned in &plan.actions {
            match &planned.action {
                Action::Create { skip_launch, .. } => {
                    self.created += 1;
                    let id = format!("m{:03}", self.created);
                    let mut m = Modelled {
                        id,
                        state: "stopped",
                        next: None,
                    };
                    if !skip_launch {
                        self.begin(&mut m, now, "starting", self.boot, "started");
                    }
                    self.machines.push(m);
                }
                Action::Destroy { id } => self.machines.retain(|m| &m.id != id),
                Action::Start { id } => self.transition(id, now, "starting", self.boot, "started"),
                Action::Stop { id } => self.transition(id, now, "stopping", self.stop, "stopped"),
                Action::Suspend { id } => {
                    self.transition(id, now, "suspending", self.stop, "suspended");
                }
            }
        }
    }

    fn transition(
        &mut self,
        id: &str,
        now: SystemTime,
        during: &'static str,
        takes: Duration,
        then: &'static str,
    ) {
        if let Some(i) = self.machines.iter().position(|m| m.id == id) {
            let mut m = self.machines[i].clone();
            self.begin(&mut m, now, during, takes, then);
            self.machines[i] = m;
        }
    }

    fn begin(
        &self,
        m: &mut Modelled,
        now: SystemTime,
        during: &'static str,
        takes: Duration,
        then: &'static str,
    ) {
        if takes.is_zero() {
            m.state = then;
            m.next = None;
        } else {
            m.state = during;
            m.next = Some((now + takes, then));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_reconcile::{Bounds, Policy, RegionCursor, Targets};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn plan_for(fleet: &Fleet, created: (u32, u32), started: (u32, u32)) -> Plan {
        let targets = Targets {
            created: Some(Bounds {
                min: created.0,
                max: created.1,
            }),
            started: Some(Bounds {
                min: started.0,
                max: started.1,
            }),
        };
        fas_reconcile::plan(
            &fleet.machines(),
            &targets,
            &Policy::default(),
            RegionCursor::default(),
            at(0),
        )
    }

    #[test]
    fn starts_boot_and_stops_take_their_time() {
        let mut fleet = Fleet::new(3, 1, Duration::from_secs(2), Duration::from_secs(1), "app");
        assert_eq!((fleet.started(), fleet.created()), (1, 3));
        let plan = plan_for(&fleet, (3, 3), (3, 3));
        assert_eq!(plan.actions.len(), 2, "{:?}", plan.actions);
        fleet.apply(&plan, at(10));
        fleet.advance(at(11));
        assert_eq!(fleet.started(), 1, "still booting at +1 s");
        let again = plan_for(&fleet, (3, 3), (3, 3));
        assert!(
            again.actions.is_empty(),
            "starting counts as started: no second start"
        );
        fleet.advance(at(12));
        assert_eq!(fleet.started(), 3, "booted at +2 s");

        let down = plan_for(&fleet, (3, 3), (1, 1));
        fleet.apply(&down, at(20));
        assert_eq!(
            fleet.started(),
            1,
            "stopping machines are no longer started"
        );
        fleet.advance(at(21));
        let states: Vec<_> = fleet
            .machines()
            .iter()
            .map(|m| m.state.as_str().to_owned())
            .collect();
        assert_eq!(states.iter().filter(|s| *s == "stopped").count(), 2);
    }

    #[test]
    fn creates_clone_and_destroys_remove() {
        let mut fleet = Fleet::new(1, 1, Duration::ZERO, Duration::ZERO, "app");
        let up = plan_for(&fleet, (3, 3), (3, 3));
        fleet.apply(&up, at(0));
        assert_eq!(
            (fleet.started(), fleet.created()),
            (3, 3),
            "zero boot: started at once"
        );
        let ids: Vec<_> = fleet.machines().into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["m001", "m002", "m003"]);
        let down = plan_for(&fleet, (1, 1), (1, 1));
        fleet.apply(&down, at(1));
        assert_eq!(fleet.created(), 1);
    }
}
