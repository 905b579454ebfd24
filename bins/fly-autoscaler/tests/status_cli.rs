//! `fly-autoscaler status [--address URL]` end to end: the table of a running `serve` (against
//! the Fly API simulator and a fake Prometheus), and a clear error with exit code 1 when nothing
//! listens at the address.

mod support;

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, run, sim, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_each_app_and_its_decision() {
    let sim = sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let env = base_env(&sim, &prom.url(), "web", port);
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "a scaled tick in /status", || {
        http_get(port, "/status/web").is_some_and(|(_, body)| body.contains("\"scaled\""))
    })
    .await;
    let address = format!("http://127.0.0.1:{port}");
    let (code, out, err) =
        tokio::task::block_in_place(|| run(&["status", "--address", &address], &[]));
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("APP "), "{out}");
    for header in [
        "LAST TICK",
        "TRIGGER",
        "OUTCOME",
        "METRICS",
        "TARGETS",
        "NEXT TICK",
    ] {
        assert!(lines[0].contains(header), "{header} in {out}");
    }
    let web = lines[1];
    assert!(web.starts_with("web "), "{out}");
    assert!(web.contains("queue_depth=20"), "{out}");
    assert!(web.contains("started 2"), "the targets: {out}");
    // The last decision: the scale-up, or the steady state after it.
    assert!(
        web.contains("scaled (start)") || web.contains("no_scale"),
        "{out}"
    );
    // The scale-up is among the last actions even after later no-scale ticks.
    assert!(out.contains("Last actions"), "{out}");
    let start = out
        .lines()
        .find(|l| l.contains("start ") && l.contains("ok"))
        .unwrap_or_else(|| panic!("a start action in:\n{out}"));
    assert!(start.contains("started 0 < min 2"), "{start}");
    fas.stop().await;
}

#[test]
fn status_against_a_closed_port_fails_naming_the_address() {
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let (code, out, err) = run(&["status", "--address", &address], &[]);
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.starts_with("ERROR: "), "{err}");
    assert!(err.contains(&address), "the address in: {err}");
    assert!(err.contains("cannot reach fly-autoscaler"), "{err}");
}
