//! A replica partitioned from PostgreSQL but not from Fly: it reaches the database through a
//! `fas_testkit::Proxy` that the test cuts silently (no socket closes, queries just get no
//! answer). The other replicas and the Fly simulator stay reachable; every mutating call is
//! recorded with its replica and its lock state (the cluster of `support/ha.rs`).
//!
//! A silent cut is the case the fail-closed bound exists for: the server keeps the cut replica's
//! session, and so its locks, until its TCP keepalives notice the silent peer (about 11 s with
//! the default knobs). The proxy's kernel answers those probes, so the test plays the server
//! noticing with `Proxy::close_upstream`, earlier than reality (4 s after the cut): if the cut
//! replica still acted by then, two replicas would act on one app.

#[path = "support/ha.rs"]
mod ha;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use fas_testkit::{PgServer, Proxy};
use fly_autoscaler::coord::CoordPolicy;
use secrecy::SecretString;
use tokio::time::Instant;

const APPS: usize = 12;
const REPLICAS: usize = 3;
/// The replica behind the proxy.
const CUT: usize = 0;
/// When the test's "server" ends the cut replica's session, after the cut. Shorter than the real
/// keepalive detection (`keepalive_idle + keepalive_interval × keepalive_count` = 11 s), so
/// stricter than reality.
const SERVER_NOTICES: Duration = Duration::from_secs(4);

/// 3 replicas, 12 apps, replica 0 behind a proxy. Cut: it stops acting within heartbeat + query
/// timeout of its last confirmation (which precedes the cut: no answer crosses after it), and
/// nobody acts on its apps while the server still holds its locks. The server ends its session (4 s after the cut): the others own and act on its apps.
/// The cut replica made no mutating call after it lost confirmation (so none after its locks could
/// move). Heal: it reconnects, takes a share again, and every app converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cut_from_postgres_stops_acting_and_its_apps_move_once_its_session_ends() {
    let pg = PgServer::start().await;
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], pg.port()))).await;
    let mut c = ha::cluster_on(pg, APPS, 2.0).await;
    let via_proxy = SecretString::from(format!(
        "postgres://fas@127.0.0.1:{}/postgres",
        proxy.port()
    ));
    assert_eq!(c.add_replica_at(&via_proxy), CUT);
    for _ in 1..REPLICAS {
        c.add_replica();
    }
    let share = APPS.div_ceil(REPLICAS);
    c.until("every app owned, spread", Duration::from_secs(20), |c| {
        c.all_owned()
            && c.owned_counts()[CUT] >= 1
            && c.owned_counts().iter().all(|&n| n <= share + 1)
    })
    .await;
    c.until("converged to 2", Duration::from_secs(15), |c| {
        c.converged(2)
    })
    .await;
    let its_apps = c.replicas[CUT].coord.owned();
    assert!(!its_apps.is_empty());
    let bound = CoordPolicy::default().confirmation_ttl();

    // The partition. The load moves at once: the cut replica may still act until its
    // confirmation expires, never after.
    proxy.cut();
    let t_cut = Instant::now();
    c.load.set(3.0);
    c.until_every(
        "the cut replica stops acting",
        bound + Duration::from_secs(3),
        Duration::from_millis(20),
        |c| c.replicas[CUT].coord.owned().is_empty(),
    )
    .await;
    let t_stopped = Instant::now();
    let stopped = t_stopped - t_cut;
    eprintln!(
        "cut: replica {CUT} ({} apps) stopped acting {stopped:?} after the cut (bound {bound:?} \
         from its last confirmation, which precedes the cut)",
        its_apps.len(),
    );
    // Sampled every 20 ms on a loaded machine: the slack is for the sampler, not the replica
    // (its calls are checked exactly below).
    assert!(
        stopped <= bound + Duration::from_millis(1500),
        "stopped acting {stopped:?} after the cut"
    );
    // From here its apps need acting on (4 started), and nobody may until the server ends the
    // cut session.
    c.load.set(4.0);
    let notice = t_cut + SERVER_NOTICES;
    c.until_every(
        "the server's notice",
        SERVER_NOTICES + Duration::from_secs(1),
        Duration::from_millis(50),
        |_| Instant::now() >= notice,
    )
    .await;
    for app in &its_apps {
        assert!(
            c.owners()[app].is_empty(),
            "{app} owned while the cut session held its lock: {:?}",
            c.owners()[app]
        );
        assert_ne!(
            c.sim.count_in_state(app, "started"),
            4,
            "{app} acted on while nobody held its lock"
        );
    }
    let others_at_4 = c
        .apps
        .iter()
        .filter(|a| !its_apps.contains(a))
        .all(|a| c.sim.count_in_state(a, "started") == 4);
    eprintln!("cut: the other replicas' apps at 4 started before the notice: {others_at_4}");

    // The server notices the dead peer and ends the session: the locks are released.
    proxy.close_upstream();
    let t_close = Instant::now();
    let moved = c
        .until("its apps move", Duration::from_secs(15), |c| {
            its_apps
                .iter()
                .all(|a| (0..REPLICAS).any(|r| r != CUT && c.replicas[r].coord.may_act(a)))
        })
        .await;
    let converged = c
        .until("its apps converge to 4", Duration::from_secs(15), |c| {
            its_apps
                .iter()
                .all(|a| c.sim.count_in_state(a, "started") == 4)
        })
        .await;
    let acts = c.acts();
    let first_act = acts
        .iter()
        .filter(|a| a.replica != CUT && a.at >= t_close && its_apps.contains(&a.app))
        .map(|a| a.at - t_close)
        .min();
    eprintln!(
        "session ended (close_upstream, {SERVER_NOTICES:?} after the cut): its apps owned by the \
         others after {moved:?}, first call on them after {first_act:?}, converged after \
         {converged:?}"
    );
    // Safety, from the recorded calls: nothing by the cut replica once its confirmation could
    // have expired, nor once it was seen stopped, nor (a fortiori) once its locks could move.
    let cut_acts: Vec<&ha::Act> = acts.iter().filter(|a| a.replica == CUT).collect();
    let last_cut_act = cut_acts.iter().map(|a| a.at).max();
    for a in &cut_acts {
        assert!(
            a.at <= t_cut + bound && a.at < t_stopped,
            "the cut replica acted after it lost confirmation: {a:?} (cut at {t_cut:?})"
        );
        assert!(
            a.end <= t_close,
            "a call of the cut replica ran past the moment its locks moved: {a:?}"
        );
    }
    if let Some(last) = last_cut_act {
        eprintln!(
            "cut: its last mutating call was sent {:?} relative to the cut ({} calls in all)",
            last.checked_duration_since(t_cut)
                .map_or_else(|| "before".to_owned(), |d| format!("{d:?} after")),
            cut_acts.len()
        );
    }
    c.check_acts();

    // The network heals: it reconnects and takes a share again.
    proxy.heal();
    let t_heal = Instant::now();
    let back = c
        .until(
            "the healed replica owns apps",
            Duration::from_secs(25),
            |c| c.all_owned() && c.owned_counts()[CUT] >= 2,
        )
        .await;
    c.load.set(1.0);
    c.until("converged to 1", Duration::from_secs(20), |c| {
        c.converged(1)
    })
    .await;
    let settled = t_heal.elapsed();
    let counts = c.owned_counts();
    eprintln!(
        "heal: replica {CUT} owns apps again after {back:?}; every app converged after \
         {settled:?}; owned per replica: {counts:?}"
    );
    assert_eq!(counts.iter().sum::<usize>(), APPS, "{counts:?}");
    assert_eq!(c.sim.count_in_state("other", "started"), 0);
    c.check_acts();
    c.shutdown().await;
    drop(proxy);
}
