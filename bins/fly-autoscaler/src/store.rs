//! What each app's ticks remember, kept in PostgreSQL when coordination is on (`postgres-url`),
//! so that it survives a restart of every replica and a handover of the app to another replica:
//! the target history of `scale-down-window`, the last scale-up (steps, `scale-down-cooldown`),
//! the region cursor, the `on-error` fallback states, the last decision records of `/status`, and
//! the recent creates and starts of unknown outcome that the machine list may not show yet.
//!
//! # Schema
//!
//! Created and migrated by the binary when its coordination session opens ([`migrate`]):
//! versioned ([`MIGRATIONS`], recorded in `fas_schema_migrations`), idempotent (a version is
//! applied once), safe when several replicas start at once (the migration runs in one
//! transaction under a transaction-level advisory lock, [`migration_lock`]). Migrations only add:
//! a replica of an older version keeps working on a newer schema during a rolling deploy.
//!
//! - `fas_app_state(app text primary key, state jsonb, holder text, updated_at timestamptz)`:
//!   one row per app, the JSON of [`StoredApp`], `holder` the replica id that wrote it.
//!
//! # Fencing
//!
//! A row is written on the coordination session itself and only while that session holds the
//! app's advisory lock ([`SAVE`] checks `pg_locks` for its own backend): a replica that lost the
//! app (partitioned, released, replaced) can never overwrite the new owner's state.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use fas_reconcile::{BehaviorState, RegionCursor, TargetHistory};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::fallback::StoredFallback;
use crate::status::TickRecord;

/// The key of the transaction-level advisory lock that serializes migrations (FNV-1a 64 of a
/// name no app key can have: the app keys hash `"fly-autoscaler:" + app`).
pub fn migration_lock() -> i64 {
    crate::coord::fnv1a64("fly-autoscaler-schema/migrations")
}

/// One schema version: its number and the statements that bring the previous version to it.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version this migration brings the schema to (1, 2, …).
    pub version: i32,
    /// What it does, for the log.
    pub name: &'static str,
    /// The statements (one batch, run in the migration's transaction).
    pub sql: &'static str,
}

/// Every schema version, in order. Never edit a released migration: add one.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "per-app state",
    sql: "create table if not exists fas_app_state (
              app text primary key,
              state jsonb not null,
              holder text not null,
              updated_at timestamptz not null default now()
          )",
}];

/// The newest schema version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: i32,
    /// The version left (`from` when nothing was applied, or when the schema is newer).
    pub to: i32,
}

/// Creates or migrates the schema to [`latest_version`]: in one transaction under the
/// transaction-level advisory lock [`migration_lock`] (so concurrent starts apply each version
/// once and the others wait, then find nothing to do), each migration newer than the recorded
/// version is applied and recorded with `replica` and the time. A schema newer than this binary
/// is left as it is (migrations only add). The caller bounds the time.
pub async fn migrate(
    client: &tokio_postgres::Client,
    replica: &str,
) -> Result<Migrated, tokio_postgres::Error> {
    client.batch_execute("begin").await?;
    let result = async {
        client
            .batch_execute(&format!(
                "select pg_advisory_xact_lock({}); \
                 create table if not exists fas_schema_migrations (\
                     version integer primary key, \
                     name text not null, \
                     applied_at timestamptz not null default now(), \
                     applied_by text not null)",
                migration_lock()
            ))
            .await?;
        let row = client
            .query_one(
                "select coalesce(max(version), 0) from fas_schema_migrations",
                &[],
            )
            .await?;
        let from: i32 = row.get(0);
        let mut to = from;
        for m in MIGRATIONS.iter().filter(|m| m.version > from) {
            client.batch_execute(m.sql).await?;
            client
                .execute(
                    "insert into fas_schema_migrations (version, name, applied_by) \
                     values ($1, $2, $3)",
                    &[&m.version, &m.name, &replica],
                )
                .await?;
            to = m.version;
        }
        client.batch_execute("commit").await?;
        Ok(Migrated { from, to })
    }
    .await;
    if result.is_err() {
        // The transaction is aborted: end it, or every later query of the session would fail
        // (the session goes on coordinating without the store).
        let _ = client.batch_execute("rollback").await;
    }
    result
}

/// Whether this session's role may read and write the state table.
pub const USABLE: &str = "select has_table_privilege('fas_app_state', 'select, insert, update')";

/// Reads one app's state: `$1` app → `state::text`, `holder`, `updated_at` as Unix seconds.
pub const LOAD: &str = "select state::text, holder, extract(epoch from updated_at)::float8 \
     from fas_app_state where app = $1";

/// Writes one app's state, only while this session holds the app's advisory lock (the `bigint`
/// key appears in `pg_locks` as `classid` = its high 32 bits, `objid` = its low 32 bits,
/// `objsubid` = 1): `$1` app, `$2` state JSON, `$3` replica id, `$4` high bits, `$5` low bits.
/// One row affected = saved; none = this session does not hold the lock (fenced).
pub const SAVE: &str = "insert into fas_app_state (app, state, holder, updated_at) \
     select $1, ($2::text)::jsonb, $3, now() \
     where exists (select 1 from pg_locks \
         where locktype = 'advisory' and pid = pg_backend_pid() and granted \
         and database = (select oid from pg_database where datname = current_database()) \
         and classid::int8 = $4 and objid::int8 = $5 and objsubid = 1) \
     on conflict (app) do update \
     set state = excluded.state, holder = excluded.holder, updated_at = excluded.updated_at";

/// The `pg_locks` halves of an advisory lock key: (`classid`, `objid`) as `bigint`s.
pub fn lock_halves(key: i64) -> (i64, i64) {
    let k = u64::from_ne_bytes(key.to_ne_bytes());
    ((k >> 32) as i64, (k & 0xffff_ffff) as i64)
}

/// The wall-clock time (Unix seconds) of the monotonic instant `at`, given one moment read on
/// both clocks (`now`, `wall`): what the database keeps of a monotonic time.
pub fn to_wall(at: Instant, now: Instant, wall: SystemTime) -> f64 {
    crate::status::unix(wall) - now.saturating_duration_since(at).as_secs_f64()
}

/// The monotonic instant of the wall-clock time `at` (Unix seconds), given one moment read on
/// both clocks: never later than `now` (a time from the future, clock skew, counts as `now`);
/// `None` when it is older than the monotonic clock can express.
pub fn from_wall(at: f64, now: Instant, wall: SystemTime) -> Option<Instant> {
    let age = (crate::status::unix(wall) - at).max(0.0);
    now.checked_sub(Duration::try_from_secs_f64(age).ok()?)
}

/// The version of the [`StoredApp`] document (inside the JSON, apart from the schema version).
pub const DOCUMENT_VERSION: u32 = 1;

/// What is kept of one app, as JSON in `fas_app_state.state`. Unknown fields are ignored and
/// missing ones take their defaults, so replicas of neighbouring versions read each other's rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredApp {
    /// [`DOCUMENT_VERSION`] of the writer.
    pub v: u32,
    /// Recent targets of the scale-down window (`[time, targets]` pairs, oldest first).
    pub history: TargetHistory,
    /// The last scale-up, for steps and the cooldown.
    pub behavior: BehaviorState,
    /// The region rotation.
    pub cursor: RegionCursor,
    /// Per metric, its `on-error` fallback state.
    pub fallbacks: BTreeMap<String, StoredFallback>,
    /// The last decision records, newest first (`/status`).
    pub records: Vec<TickRecord>,
    /// Machines created by recent ticks that the list may not show yet
    /// ([`crate::creates::RecentCreates`]): a new owner counts them as the old one did.
    pub creates: Vec<crate::creates::StoredBatch>,
    /// Starts of unknown outcome (machine id → wall-clock time), [`crate::pending::PendingStarts`].
    pub pending_starts: BTreeMap<String, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_halves_split_the_key_like_pg_locks() {
        assert_eq!(lock_halves(0), (0, 0));
        assert_eq!(lock_halves(1), (0, 1));
        assert_eq!(lock_halves(1 << 32), (1, 0));
        assert_eq!(lock_halves(-1), (0xffff_ffff, 0xffff_ffff));
        let (hi, lo) = lock_halves(crate::coord::lock_key("my-app"));
        let back = ((hi as u64) << 32) | lo as u64;
        assert_eq!(back as i64, crate::coord::lock_key("my-app"));
    }

    #[test]
    fn migrations_are_numbered_one_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.name);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i32);
    }

    #[test]
    fn the_migration_lock_is_not_an_app_key() {
        // App keys hash "fly-autoscaler:" + app; the migration lock hashes another prefix.
        assert_ne!(
            migration_lock(),
            crate::coord::lock_key("schema/migrations")
        );
        assert_ne!(migration_lock(), crate::coord::lock_key(""));
    }

    #[test]
    fn a_document_with_unknown_and_missing_fields_reads() {
        let doc: StoredApp = serde_json::from_str(
            r#"{"v": 9, "cursor": 2, "from_the_future": [1, 2], "records": [
                {"at": "2026-11-30T10:00:00Z", "duration_ms": 3.5, "trigger": "new",
                 "outcome": "scaled", "decision": "start", "metrics": {"q": {"value": 4.0}},
                 "actions": [{"kind": "start", "action": "start m1", "reason": "r",
                              "outcome": "ok"}], "notes": [], "novel": true},
                {"at": "2026-11-30T09:59:00Z", "duration_ms": 1.0, "trigger": "something_new",
                 "outcome": "skipped"}]}"#,
        )
        .unwrap();
        assert_eq!(doc.v, 9);
        assert_eq!(doc.cursor, RegionCursor(2));
        assert!(doc.history.is_empty());
        assert_eq!(doc.records.len(), 2);
        assert_eq!(doc.records[0].decision, Some("start"));
        assert_eq!(doc.records[0].actions[0].outcome, "ok");
        assert_eq!(doc.records[1].trigger, "unknown");
        assert!(doc.creates.is_empty() && doc.pending_starts.is_empty());
    }

    #[test]
    fn the_fuzz_seed_is_a_full_document_that_round_trips() {
        let seed = include_str!("../../../fuzz/corpus/stored_state/seed-full");
        let doc: StoredApp = serde_json::from_str(seed).unwrap();
        assert_eq!(doc.history.len(), 2);
        assert_eq!(doc.records[0].actions.len(), 2);
        assert_eq!(doc.creates.len(), 1);
        assert_eq!(doc.pending_starts.len(), 1);
        assert!(doc.behavior.last_scale_up().is_some());
        let again: StoredApp = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(doc, again);
    }

    #[test]
    fn wall_times_round_trip_and_never_lie_in_the_future() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let at = now - Duration::from_secs(30);
        let w = to_wall(at, now, wall);
        assert!((crate::status::unix(wall) - w - 30.0).abs() < 1e-6);
        // Read back by a process 5 s later on both clocks: still 35 s old.
        let later = now + Duration::from_secs(5);
        let back = from_wall(w, later, wall + Duration::from_secs(5)).unwrap();
        assert!(
            later.duration_since(back).abs_diff(Duration::from_secs(35)) < Duration::from_millis(1)
        );
        // From the future (skew): now.
        assert_eq!(from_wall(w + 100.0, now, wall), Some(now));
        // Very old: very old (or none where the monotonic clock cannot express it).
        assert!(
            from_wall(-1e12, now, wall)
                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(1_000_000))
        );
    }
}
