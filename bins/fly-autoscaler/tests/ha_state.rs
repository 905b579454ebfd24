//! The per-app state kept in PostgreSQL when coordination is on (`crate::store`), on a real
//! throwaway PostgreSQL (`fas-testkit`): the schema migration (idempotent, safe when replicas
//! start together), the fenced save (only while the session holds the app's lock), and, with the
//! built binary, a restart of every replica that continues the scale-down window.

mod support;

use std::time::Duration;

use fas_flysim::MachineSpec;
use fas_testkit::PgServer;
use fly_autoscaler::coord::{CoordPolicy, Coordinator, Saved};
use fly_autoscaler::store;
use secrecy::SecretString;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

async fn connect(pg: &PgServer) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("test connection");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    (client, conn)
}

/// Polls `cond` every 50 ms until it holds; panics after `limit` with `state()`.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool, state: impl Fn() -> String) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "{}", state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Six replicas migrate a fresh database at the same moment: each version is applied exactly
/// once, every replica ends on the latest version, and migrating again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schema_migration_is_versioned_idempotent_and_safe_when_replicas_start_together() {
    let pg = PgServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(connect(&pg).await);
    }
    let results = futures_util::future::join_all(
        clients
            .iter()
            .enumerate()
            .map(|(i, (c, _))| async move { store::migrate(c, &format!("r{i}")).await }),
    )
    .await;
    let latest = store::latest_version();
    let migrated: Vec<store::Migrated> = results
        .into_iter()
        .map(|r| r.expect("every concurrent migration succeeds"))
        .collect();
    assert_eq!(
        migrated.iter().filter(|m| m.from == 0).count(),
        1,
        "exactly one replica migrated: {migrated:?}"
    );
    assert!(migrated.iter().all(|m| m.to == latest), "{migrated:?}");
    let (c, _) = &clients[0];
    let versions: Vec<i32> = c
        .query(
            "select version from fas_schema_migrations order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=latest).collect::<Vec<_>>());
    // Idempotent: a second start finds nothing to do.
    let again = store::migrate(c, "r9").await.unwrap();
    assert_eq!(
        again,
        store::Migrated {
            from: latest,
            to: latest
        }
    );
    // A session used by a migration goes on working (no transaction left open).
    let one: i32 = c.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

fn fast_policy() -> CoordPolicy {
    CoordPolicy {
        heartbeat: Duration::from_millis(300),
        ..CoordPolicy::default()
    }
}

/// A save lands only while the coordinator's session holds the app's lock: the app it owns is
/// written (and read back with its holder); an app whose lock another session holds is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_lands_only_while_the_session_holds_the_app_lock() {
    let pg = PgServer::start().await;
    let (other, _conn) = connect(&pg).await;
    // Another session holds app "b".
    let held: bool = other
        .query_one(
            "select pg_try_advisory_lock($1)",
            &[&fly_autoscaler::coord::lock_key("b")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(held);
    let stop = CancellationToken::new();
    let url = SecretString::from(pg.url());
    let coord =
        Coordinator::start_with_id(&url, fast_policy(), "state-test".into(), stop.clone()).unwrap();
    coord.set_apps(&["a".to_owned(), "b".to_owned()]);
    eventually(
        Duration::from_secs(10),
        || coord.may_act("a") && coord.has_store(),
        || "never owned a".to_owned(),
    )
    .await;
    assert!(coord.ownership("a").is_some());
    assert!(!coord.may_act("b"));
    assert_eq!(
        coord
            .save_state("a", r#"{"v":1,"cursor":3}"#)
            .await
            .unwrap(),
        Saved::Ok
    );
    assert_eq!(
        coord.save_state("b", r#"{"v":1}"#).await.unwrap(),
        Saved::Fenced
    );
    // The cost a tick pays: one save of a full document (20 decision records, as `/status`
    // keeps) on loopback.
    let record = serde_json::json!({
        "at": "2026-11-30T10:00:00.000Z", "duration_ms": 12.5, "trigger": "interval",
        "outcome": "scaled", "decision": "start",
        "metrics": {"queue_depth": {"value": 42.0}},
        "evaluated": {"created": null, "started": {"min": 5, "max": 5}},
        "stabilized": {"created": null, "started": {"min": 5, "max": 5}},
        "counts": {"created": 8, "started": 3, "failed": 0,
                   "by_state": {"started": 3, "stopped": 5}, "unreachable": 0, "other_group": 0},
        "actions": [
            {"kind": "start", "action": "start 1bb75438d9464e", "reason": "started 3 < min 5",
             "outcome": "ok"},
            {"kind": "start", "action": "start 9e8d2c1f00a7b3", "reason": "started 3 < min 5",
             "outcome": "ok"}],
        "notes": []
    });
    let doc = serde_json::json!({
        "v": 1, "cursor": 3, "behavior": {"last_scale_up": null},
        "history": [], "fallbacks": {},
        "records": vec![record; 20],
    })
    .to_string();
    let mut took = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(coord.save_state("a", &doc).await.unwrap(), Saved::Ok);
        took.push(t.elapsed());
    }
    took.sort();
    eprintln!(
        "save of a {} B document: p50 {:?}, p99 {:?}, max {:?} (200 saves)",
        doc.len(),
        took[100],
        took[198],
        took[199]
    );
    assert_eq!(
        coord
            .save_state("a", r#"{"v":1,"cursor":3}"#)
            .await
            .unwrap(),
        Saved::Ok
    );
    let loaded = coord.load_state("a").await.unwrap().expect("row of a");
    let doc: store::StoredApp = serde_json::from_str(&loaded.state).unwrap();
    assert_eq!(doc.cursor, fas_reconcile::RegionCursor(3));
    assert_eq!(loaded.holder, "state-test");
    assert!(coord.load_state("b").await.unwrap().is_none());
    // /status names the holder of every app, this replica's included.
    eventually(
        Duration::from_secs(5),
        || {
            let holders = coord.holders();
            holders.get("a").map(String::as_str) == Some("state-test") && holders.len() == 1
        },
        || format!("holders: {:?}", coord.holders()),
    )
    .await;
    let status = coord.status_json();
    assert_eq!(status["holders"]["a"], "state-test", "{status}");
    // "b" is held by a session that is not a replica: shown as unheld by any replica.
    assert_eq!(status["unheld"], serde_json::json!(["b"]), "{status}");
    stop.cancel();
}

/// A role that may not create tables (PostgreSQL 15 no longer lets every role create in
/// `public`) still coordinates: the store is off on its session (`store: false`), the app is
/// owned and a save is a no-op, never an error that stops acting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_create_still_coordinates_with_state_in_memory() {
    let pg = PgServer::start().await;
    let (admin, _conn) = connect(&pg).await;
    admin
        .batch_execute("create role limited login")
        .await
        .expect("create role");
    let stop = CancellationToken::new();
    let url = SecretString::from(pg.url().replace("fas@", "limited@"));
    let coord =
        Coordinator::start_with_id(&url, fast_policy(), "limited".into(), stop.clone()).unwrap();
    coord.set_apps(&["a".to_owned()]);
    eventually(
        Duration::from_secs(10),
        || coord.may_act("a"),
        || "never owned a".to_owned(),
    )
    .await;
    assert!(!coord.has_store());
    assert_eq!(coord.status_json()["store"], false);
    assert_eq!(coord.save_state("a", "{}").await.unwrap(), Saved::NoStore);
    assert!(coord.load_state("a").await.unwrap().is_none());
    // Still owned a few heartbeats later: the missing store does not end the session.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(coord.may_act("a"));
    let tables: i64 = admin
        .query_one(
            "select count(*) from pg_tables where tablename like 'fas_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
    stop.cancel();
    // The tables made by another role (the administrator migrated first): still no store for a
    // role that may not use them, rather than every tick failing to load.
    store::migrate(&admin, "admin").await.unwrap();
    admin
        .batch_execute("grant create, usage on schema public to limited")
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let coord =
        Coordinator::start_with_id(&url, fast_policy(), "limited2".into(), stop.clone()).unwrap();
    coord.set_apps(&["a".to_owned()]);
    eventually(
        Duration::from_secs(10),
        || coord.may_act("a"),
        || "never owned a".to_owned(),
    )
    .await;
    assert!(!coord.has_store());
    stop.cancel();
}

/// Every replica restarts (SIGKILL) while the scale-down window holds a high target: the new
/// replicas continue the window from the stored history (no burst of stops at their first
/// tick), scale down once the window has passed, and show the old decision records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_replica_continues_the_scale_down_window() {
    use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, set, wait_until};
    const WINDOW: Duration = Duration::from_secs(15);
    let pg = PgServer::start().await;
    let sim = support::sim().await;
    add_machines(&sim, "web", 4, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(40.0)).await;
    let spawn = |n: usize| {
        let ports: Vec<u16> = (0..n).map(|_| fas_testkit::free_port()).collect();
        let procs: Vec<Fas> = ports
            .iter()
            .map(|&port| {
                let mut env = base_env(&sim, &prom.url(), "web", port);
                set(&mut env, "FAS_POSTGRES_URL", &pg.url());
                set(&mut env, "FAS_POSTGRES_HEARTBEAT", "1s");
                set(&mut env, "FAS_POSTGRES_QUERY_TIMEOUT", "500ms");
                set(&mut env, "FAS_SCALE_DOWN_WINDOW", "15s");
                Fas::spawn(&["serve"], &env)
            })
            .collect();
        (ports, procs)
    };
    let status = |port: u16| -> Option<serde_json::Value> {
        let (code, body) = http_get(port, "/status")?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    };
    let owner = |ports: &[u16]| {
        ports.iter().position(|&p| {
            status(p).is_some_and(|s| s["replica"]["owned"] == serde_json::json!(["web"]))
        })
    };

    let (ports, mut first) = spawn(2);
    wait_until(&mut first[0], "4 machines started", || {
        sim.count_in_state("web", "started") == 4
    })
    .await;
    // The load drops: the window holds 4 started for 15 s after the last high reading.
    prom.set(PromAnswer::Value(10.0));
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sim.count_in_state("web", "started"),
        4,
        "held by the window"
    );
    let old_owner = owner(&ports).expect("one of the first replicas owns web");
    let old_records = status(ports[old_owner]).unwrap()["apps"][0]["history"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(old_records > 0);
    // Every replica is killed (as a host failure or a deploy of the autoscaler would).
    for f in &mut first {
        f.signal("KILL");
        f.wait_exit(Duration::from_secs(5)).await;
    }
    let restarted = Instant::now();
    let (ports, mut second) = spawn(2);
    let mut took = None;
    while took.is_none() {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "nobody took web"
        );
        took = owner(&ports);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let new_owner = took.unwrap();
    eprintln!(
        "restart: web owned again {:?} after the kill",
        restarted.elapsed()
    );
    // Until the window ends (minus a margin for the ticks' timing), 4 stay started: a replica
    // with a fresh history would have stopped 3 at its first tick.
    let hold_until = dropped + WINDOW - Duration::from_secs(2);
    let mut samples = 0;
    while Instant::now() < hold_until {
        assert_eq!(
            sim.count_in_state("web", "started"),
            4,
            "a machine was stopped {:?} after the load dropped, inside the 15 s window",
            dropped.elapsed()
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(samples > 50);
    wait_until(
        &mut second[new_owner],
        "scaled down to 1 after the window",
        || sim.count_in_state("web", "started") == 1,
    )
    .await;
    let scaled_down = dropped.elapsed();
    eprintln!("scale-down after {scaled_down:?} (window {WINDOW:?})");
    assert!(
        scaled_down >= WINDOW - Duration::from_secs(1),
        "{scaled_down:?}"
    );
    // The new owner loaded the state and shows the first replicas' records too.
    let s = status(ports[new_owner]).unwrap();
    let history = s["apps"][0]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let restart_at =
        jiff::Timestamp::now() - jiff::SignedDuration::try_from(restarted.elapsed()).unwrap();
    let older = history
        .iter()
        .filter(|r| {
            r["at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t < restart_at)
        })
        .count();
    assert!(older > 0, "no record from before the restart: {s}");
    let (_, metrics) = http_get(ports[new_owner], "/metrics").unwrap();
    assert!(
        metrics.contains(r#"fas_state_loads_total{result="found"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"fas_state_saves_total{result="ok"}"#),
        "{metrics}"
    );
    for f in &mut second {
        f.stop().await;
    }
}

/// A shadow (dry-run) replica is not counted among the live replicas: a live replica beside it
/// takes every app (were the shadow counted, the live one would stop at half and leave the rest
/// unowned), and a shadow turned live takes its share again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_does_not_shrink_the_live_replicas_share() {
    let pg = PgServer::start().await;
    let url = SecretString::from(pg.url());
    let apps: Vec<String> = (0..10).map(|i| format!("app-{i}")).collect();
    let stop = CancellationToken::new();
    let shadow =
        Coordinator::start_with_id(&url, fast_policy(), "shadow".into(), stop.clone()).unwrap();
    shadow.set_shadow(true);
    // It knows the apps (it shows their holders) but takes none.
    shadow.set_apps(&apps);
    let live =
        Coordinator::start_with_id(&url, fast_policy(), "live".into(), stop.clone()).unwrap();
    live.set_apps(&apps);
    eventually(
        Duration::from_secs(10),
        || live.owned().len() == apps.len(),
        || {
            format!(
                "the live replica owns {:?} (replicas counted: {})",
                live.owned(),
                live.replicas()
            )
        },
    )
    .await;
    assert_eq!(live.replicas(), 1);
    assert!(shadow.owned().is_empty());
    // The shadow turns live (a reload turned dry-run off): it is counted again and takes its
    // share from the other, which releases down to 5 (10 > 5 + slack 1).
    shadow.set_shadow(false);
    shadow.set_apps(&apps);
    eventually(
        Duration::from_secs(10),
        || shadow.owned().len() == 5 && live.owned().len() == 5,
        || format!("shadow {:?}, live {:?}", shadow.owned(), live.owned()),
    )
    .await;
    stop.cancel();
}

/// A dry-run replica (shadow mode) beside a live one, on the same database: it takes no lock, so
/// the live replica owns the app and scales it, while the shadow still ticks the app and records
/// what it would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_replica_takes_no_lock_and_shadows_every_app() {
    use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, set, wait_until};
    let pg = PgServer::start().await;
    let sim = support::sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let env = |port: u16, dry: bool| {
        let mut env = base_env(&sim, &prom.url(), "web", port);
        set(&mut env, "FAS_POSTGRES_URL", &pg.url());
        set(&mut env, "FAS_POSTGRES_HEARTBEAT", "1s");
        set(&mut env, "FAS_POSTGRES_QUERY_TIMEOUT", "500ms");
        if dry {
            set(&mut env, "FAS_DRY_RUN", "true");
        }
        env
    };
    // The shadow starts first: were it to take locks, it would own the app.
    let shadow_port = fas_testkit::free_port();
    let mut shadow = Fas::spawn(&["serve"], &env(shadow_port, true));
    let status = |port: u16| -> Option<serde_json::Value> {
        let (code, body) = http_get(port, "/status")?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    };
    wait_until(
        &mut shadow,
        "the shadow records a would-be decision",
        || status(shadow_port).is_some_and(|s| s["apps"][0]["last"]["outcome"] == "would_scale"),
    )
    .await;
    let live_port = fas_testkit::free_port();
    let mut live = Fas::spawn(&["serve"], &env(live_port, false));
    wait_until(&mut live, "the live replica scales web", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    let s = status(live_port).unwrap();
    assert_eq!(s["replica"]["owned"], serde_json::json!(["web"]), "{s}");
    let shadow_status = status(shadow_port).unwrap();
    assert_eq!(
        shadow_status["replica"]["owned"],
        serde_json::json!([]),
        "{shadow_status}"
    );
    // It still shows who holds the app (from its next round).
    let live_id = s["replica"]["id"].clone();
    wait_until(&mut shadow, "the shadow names the live holder", || {
        status(shadow_port).is_some_and(|st| st["replica"]["holders"]["web"] == live_id)
    })
    .await;
    let (_, metrics) = http_get(shadow_port, "/metrics").unwrap();
    assert!(
        metrics.contains("fas_lock_acquisitions_total 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("fas_state_saves_total"), "{metrics}");
    live.stop().await;
    shadow.stop().await;
}
