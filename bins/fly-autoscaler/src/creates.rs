//! What one app's recent creates became: the machines this process created that the list does
//! not show yet (read-after-write lag), and whether every machine of a batch of creates ended
//! `failed`.
//!
//! Pure, like the planner: time is an argument. The tick records each batch of successful
//! creates ([`RecentCreates::record`]) and, on the next ticks, passes the listed machines to
//! [`RecentCreates::observe`], which returns the machines to add to the plan's input (created
//! but not listed yet, so a follow-up tick 2 s later does not create them again) and the ids of a
//! batch whose machines all ended `failed` (a clone that cannot boot).

use std::collections::BTreeMap;
use std::time::Duration;

use fas_reconcile::{HostStatus, Machine, MachineState};
use tokio::time::Instant;

/// How long a created machine that the list does not show is still assumed to exist. Fly
/// documents no bound for its read-after-write lag; past this, the list is believed again (a
/// machine that never appears was most likely destroyed at once, e.g. `launch_failed`).
pub const LIST_GRACE: Duration = Duration::from_secs(60);

/// How long a batch of creates is watched for the states its machines settle in; past this, it is
/// forgotten without a verdict (a machine still `starting` after 5 minutes is Fly's "wedged").
pub const WATCH_LIMIT: Duration = Duration::from_secs(300);

/// One created machine being watched.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    region: String,
    /// The state it was last listed in; `None` while the list has not shown it.
    listed: Option<MachineState>,
    /// Listed once, then missing: destroyed.
    gone: bool,
}

impl Entry {
    /// Whether its fate is known: listed in a state that is not a launch in progress, or gone.
    fn settled(&self) -> bool {
        self.gone
            || self.listed.as_ref().is_some_and(|s| {
                !matches!(s, MachineState::Created | MachineState::Starting)
                    && s.as_str() != "creating"
            })
    }
}

/// The machines of one tick's successful creates.
#[derive(Debug, Clone)]
struct Batch {
    at: Instant,
    machines: BTreeMap<String, Entry>,
}

/// One tick's batch of creates as the database keeps it ([`crate::store`]): its time in Unix
/// seconds and its machines.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredBatch {
    at: f64,
    machines: BTreeMap<String, Entry>,
}

/// What [`RecentCreates::observe`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Created machines the list does not show yet, as the planner should count them: state
    /// `created` (what the create call answered), in the app's process group, reachable, without
    /// a config (so never a clone source).
    pub unlisted: Vec<Machine>,
    /// The ids of a batch of creates whose machines all ended `failed`, once per batch.
    pub all_failed: Vec<String>,
}

/// The recent creates of one app (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct RecentCreates {
    batches: Vec<Batch>,
}

impl RecentCreates {
    /// Remembers the machines one tick created (`(id, region)`), at `now`.
    pub fn record(&mut self, now: Instant, created: impl IntoIterator<Item = (String, String)>) {
        let machines: BTreeMap<_, _> = created
            .into_iter()
            .map(|(id, region)| {
                let entry = Entry {
                    region,
                    listed: None,
                    gone: false,
                };
                (id, entry)
            })
            .collect();
        if !machines.is_empty() {
            self.batches.push(Batch { at: now, machines });
        }
    }

    /// Whether nothing is being watched.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// What the database keeps ([`crate::store`]); `now` and `wall` are one moment on both
    /// clocks.
    pub fn to_stored(&self, now: Instant, wall: std::time::SystemTime) -> Vec<StoredBatch> {
        self.batches
            .iter()
            .map(|b| StoredBatch {
                at: crate::store::to_wall(b.at, now, wall),
                machines: b.machines.clone(),
            })
            .collect()
    }

    /// The creates back from the database. A batch older than the monotonic clock can express
    /// is kept as made `now`: its machines count a little longer rather than be created twice.
    pub fn from_stored(
        stored: &[StoredBatch],
        now: Instant,
        wall: std::time::SystemTime,
    ) -> RecentCreates {
        RecentCreates {
            batches: stored
                .iter()
                .map(|b| Batch {
                    at: crate::store::from_wall(b.at, now, wall).unwrap_or(now),
                    machines: b.machines.clone(),
                })
                .collect(),
        }
    }

    /// Updates what is known from this tick's list (`listed`: every listed machine, any group or
    /// host) and returns the machines to add to the planner's input and any batch that all
    /// failed. Batches whose machines all settled, or older than [`WATCH_LIMIT`], are forgotten.
    pub fn observe(&mut self, listed: &[Machine], group: &str, now: Instant) -> Observation {
        let by_id: BTreeMap<&str, &Machine> = listed.iter().map(|m| (m.id.as_str(), m)).collect();
        let mut out = Observation::default();
        self.batches.retain_mut(|batch| {
            let age = now.saturating_duration_since(batch.at);
            for (id, entry) in &mut batch.machines {
                match by_id.get(id.as_str()) {
                    Some(m) => entry.listed = Some(m.state.clone()),
                    None if entry.listed.is_some() => entry.gone = true,
                    None if age < LIST_GRACE => out.unlisted.push(Machine {
                        id: id.clone(),
                        state: MachineState::Created,
                        region: entry.region.clone(),
                        process_group: Some(group.to_owned()),
                        host: HostStatus::Ok,
                        has_config: false,
                        created_at: None,
                    }),
                    None => entry.gone = true,
                }
            }
            let settled = batch.machines.values().all(Entry::settled);
            if settled {
                let all_failed = batch
                    .machines
                    .values()
                    .all(|e| !e.gone && e.listed == Some(MachineState::Failed));
                if all_failed {
                    out.all_failed.extend(batch.machines.keys().cloned());
                }
            }
            !settled && age < WATCH_LIMIT
        });
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A listed machine of the `app` group in `iad`, reachable, with a config (shared with the
    /// tests of `pending.rs`).
    pub(crate) fn listed(id: &str, state: &str) -> Machine {
        Machine {
            id: id.to_owned(),
            state: MachineState::parse(state),
            region: "iad".to_owned(),
            process_group: Some("app".to_owned()),
            host: HostStatus::Ok,
            has_config: true,
            created_at: None,
        }
    }

    fn ids(ms: &[Machine]) -> Vec<&str> {
        ms.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn recent_creates_survive_a_handover_through_the_store() {
        let t0 = Instant::now();
        let wall = std::time::SystemTime::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into()), ("b".into(), "ord".into())]);
        rc.observe(
            &[listed("a", "starting")],
            "app",
            t0 + Duration::from_secs(1),
        );
        let stored = rc.to_stored(t0 + Duration::from_secs(1), wall);
        let json = serde_json::to_string(&stored).unwrap();
        let back: Vec<StoredBatch> = serde_json::from_str(&json).unwrap();
        // Another process, 2 s later on both clocks: b is still counted, a is listed.
        let later = t0 + Duration::from_secs(3);
        let mut other = RecentCreates::from_stored(&back, later, wall + Duration::from_secs(2));
        let o = other.observe(&[listed("a", "started")], "app", later);
        assert_eq!(ids(&o.unlisted), ["b"]);
        assert_eq!(o.unlisted[0].region, "ord");
        // The grace counts from the create, not from the handover.
        let o = other.observe(
            &[listed("a", "started")],
            "app",
            t0 + LIST_GRACE + Duration::from_secs(1),
        );
        assert!(o.unlisted.is_empty());
    }

    #[test]
    fn unlisted_creates_are_counted_until_listed() {
        let t0 = Instant::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into()), ("b".into(), "ord".into())]);
        let o = rc.observe(
            &[listed("x", "started")],
            "app",
            t0 + Duration::from_secs(2),
        );
        assert_eq!(ids(&o.unlisted), ["a", "b"]);
        assert_eq!(o.unlisted[1].region, "ord");
        assert!(!o.unlisted[0].has_config, "never a clone source");
        let o = rc.observe(
            &[listed("a", "starting")],
            "app",
            t0 + Duration::from_secs(4),
        );
        assert_eq!(ids(&o.unlisted), ["b"], "a is listed now");
        let o = rc.observe(
            &[listed("a", "started"), listed("b", "started")],
            "app",
            t0 + Duration::from_secs(6),
        );
        assert!(o.unlisted.is_empty() && o.all_failed.is_empty());
        assert!(rc.is_empty(), "a settled batch is forgotten");
    }

    #[test]
    fn unlisted_creates_are_believed_gone_after_the_grace() {
        let t0 = Instant::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into())]);
        let o = rc.observe(&[], "app", t0 + LIST_GRACE);
        assert!(o.unlisted.is_empty());
        assert!(
            o.all_failed.is_empty(),
            "a machine never seen is not a failed boot"
        );
        assert!(rc.is_empty());
    }

    #[test]
    fn a_batch_that_all_failed_is_reported_once() {
        let t0 = Instant::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into()), ("b".into(), "iad".into())]);
        let o = rc.observe(
            &[listed("a", "failed"), listed("b", "starting")],
            "app",
            t0 + Duration::from_secs(2),
        );
        assert!(o.all_failed.is_empty(), "b is still booting");
        let both = [listed("a", "failed"), listed("b", "failed")];
        let o = rc.observe(&both, "app", t0 + Duration::from_secs(4));
        assert_eq!(o.all_failed, ["a", "b"]);
        let o = rc.observe(&both, "app", t0 + Duration::from_secs(6));
        assert!(o.all_failed.is_empty(), "reported once");
    }

    #[test]
    fn a_batch_with_one_healthy_machine_is_not_all_failed() {
        let t0 = Instant::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into()), ("b".into(), "iad".into())]);
        let o = rc.observe(
            &[listed("a", "failed"), listed("b", "started")],
            "app",
            t0 + Duration::from_secs(2),
        );
        assert!(o.all_failed.is_empty());
        assert!(rc.is_empty());
    }

    #[test]
    fn a_batch_stuck_booting_is_forgotten_after_the_watch_limit() {
        let t0 = Instant::now();
        let mut rc = RecentCreates::default();
        rc.record(t0, [("a".into(), "iad".into())]);
        let stuck = [listed("a", "starting")];
        rc.observe(&stuck, "app", t0 + Duration::from_secs(10));
        assert!(!rc.is_empty());
        rc.observe(&stuck, "app", t0 + WATCH_LIMIT);
        assert!(rc.is_empty());
    }
}
