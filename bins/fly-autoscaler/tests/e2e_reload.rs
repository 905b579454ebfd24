//! Live reload end to end: the built `fly-autoscaler serve --config FILE`, the Fly API simulator
//! and a fake Prometheus. SIGHUP and `POST /-/reload` read the file again; an invalid file keeps
//! the running configuration and every problem is reported.

mod support;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use support::{
    FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, parse_metrics, sample, set, sim,
    wait_until,
};

const TOKEN: &str = "reload-canary-33d0";

fn post_reload(port: u16, token: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /-/reload HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

fn write_config(path: &std::path::Path, started: &str) {
    std::fs::write(path, format!("started-machine-count: \"{started}\"\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_post_reload_apply_a_valid_file_and_keep_the_old_config_on_errors() {
    let sim = sim().await;
    add_machines(&sim, "web", 4, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(10.0)).await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fas.yml");
    write_config(&file, "1");
    let mut env = base_env(&sim, &prom.url(), "web", port);
    // The file sets the started count; the env's would collide with it.
    env.retain(|(k, _)| k != "FAS_STARTED_MACHINE_COUNT");
    set(&mut env, "FAS_TRIGGER_TOKEN", TOKEN);
    let path = file.to_str().unwrap().to_owned();
    let mut fas = Fas::spawn(&["serve", "--config", &path], &env);
    wait_until(&mut fas, "1 started", || {
        sim.count_in_state("web", "started") == 1
    })
    .await;

    write_config(&file, "2");
    fas.signal("HUP");
    wait_until(&mut fas, "2 started after SIGHUP", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;

    // An invalid file: refused, every problem logged, the running configuration stays.
    std::fs::write(
        &file,
        "started-machine-count: \"3\"\ninterval: soon\ntimeout: never\n",
    )
    .unwrap();
    fas.signal("HUP");
    let refusals = fas
        .wait_for_lines(
            "configuration reload refused; the running configuration stays",
            2,
        )
        .await;
    assert!(refusals.len() >= 2, "every problem: {refusals:?}");
    let (status, body) = post_reload(port, TOKEN);
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("interval") && body.contains("timeout"),
        "{body}"
    );
    fas.wait_ticks(3).await;
    assert_eq!(
        sim.count_in_state("web", "started"),
        2,
        "the old configuration still runs"
    );
    fas.assert_running();

    // Fixed; reloaded over HTTP.
    assert_eq!(post_reload(port, "wrong").0, 401);
    write_config(&file, "3");
    let (status, body) = post_reload(port, TOKEN);
    assert_eq!(status, 200, "{body}");
    wait_until(&mut fas, "3 started after POST", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;

    let (_, text) = http_get(port, "/metrics").unwrap();
    let m = parse_metrics(&text);
    assert_eq!(
        sample(&m, "fas_config_reloads_total", &[("result", "ok")]),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, "fas_config_reloads_total", &[("result", "error")]),
        Some(2.0)
    );
    assert!(!fas.stderr().contains(TOKEN));
    fas.stop().await;
}
