//! The status page (`GET /`) in a real headless browser: the built `fly-autoscaler serve` against
//! the Fly API simulator and a fake Prometheus, the page loaded by Debian's `chromium`
//! (`--dump-dom`: the DOM as the browser built it), and a screenshot written to
//! `target/status-page.png` for humans.
//!
//! A missing `chromium` fails the test with a message pointing at `scripts/test`, which installs
//! it (`FAS_TEST_CHROMIUM_BIN` names another binary).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fas_flysim::MachineSpec;
use fas_testkit::free_port;
use serde_json::Value;
use support::{FakeProm, Fas, PromAnswer, add_machines, base_env, http_get, sim, wait_until};

/// The browser binary: `$FAS_TEST_CHROMIUM_BIN`, else `chromium` on `PATH`; panics, pointing at
/// `scripts/test`, when it is missing.
#[allow(
    clippy::disallowed_methods,
    reason = "dev-only: the test command may name the browser in FAS_TEST_CHROMIUM_BIN; PATH lookup"
)]
fn chromium() -> PathBuf {
    if let Some(bin) = std::env::var_os("FAS_TEST_CHROMIUM_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "FAS_TEST_CHROMIUM_BIN={} is not a file: run `scripts/test`, which installs Debian's chromium",
            bin.display()
        );
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium binary not found on PATH (set FAS_TEST_CHROMIUM_BIN or install it): run \
                 `scripts/test`, which installs Debian's chromium (apt-get install --no-install-recommends chromium)"
            )
        })
}

/// Runs the headless browser on `url` with `args`, bounded; returns stdout (panics on failure).
fn browse(bin: &Path, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} failed ({}); stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `attr="…"` in the first tag of `dom` containing `marker`.
fn attr(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let tag = dom.split('<').find(|t| t.contains(marker))?;
    let start = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_owned())
}

/// The chart length of `app` in `/status`.
fn chart_len(port: u16, app: &str) -> Option<usize> {
    let (status, body) = http_get(port, &format!("/status/{app}"))?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["chart"].as_array().map(Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_a_real_browser() {
    let bin = chromium();
    let sim = sim().await;
    add_machines(&sim, "web", 3, &MachineSpec::new().state("stopped"));
    let prom = FakeProm::start(PromAnswer::Value(20.0)).await;
    let port = free_port();
    let env = base_env(&sim, &prom.url(), "web", port);
    let mut fas = Fas::spawn(&["serve"], &env);
    wait_until(&mut fas, "2 machines started", || {
        sim.count_in_state("web", "started") == 2
    })
    .await;
    // A few ticks, a change of load (a scale-up), a few more: the chart has a story.
    fas.wait_ticks(3).await;
    prom.set(PromAnswer::Value(30.0));
    wait_until(&mut fas, "3 machines started", || {
        sim.count_in_state("web", "started") == 3
    })
    .await;
    fas.wait_ticks(3).await;
    wait_until(&mut fas, "a chart of 2 points or more", || {
        chart_len(port, "web").is_some_and(|n| n >= 2)
    })
    .await;

    let (status, raw) = http_get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(raw.starts_with("<!DOCTYPE html>"), "{raw}");

    let url = format!("http://127.0.0.1:{port}/");
    // The chart grows while the loop runs (one point per spacing): the count in the browser must
    // equal /status's chart length read around the same instant. Retry when the chart grew
    // between the two reads.
    let mut checked = false;
    for _ in 0..5 {
        let before = chart_len(port, "web").unwrap();
        let dom = tokio::task::block_in_place(|| browse(&bin, &["--dump-dom"], &url));
        let after = chart_len(port, "web").unwrap();
        assert!(
            dom.contains("<tr class=\"app\" data-app=\"web\">"),
            "the app row in the DOM:\n{dom}"
        );
        assert!(dom.contains("<strong>web</strong>"), "{dom}");
        assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
        let svg_points: usize = attr(&dom, "svg class=\"chart\" data-app=\"web\"", "data-points")
            .unwrap_or_else(|| panic!("the chart's svg in the DOM:\n{dom}"))
            .parse()
            .unwrap();
        let metric = attr(&dom, "data-series=\"queue_depth\"", "points")
            .unwrap_or_else(|| panic!("the queue_depth polyline in the DOM:\n{dom}"));
        let vertices = metric.split_whitespace().count();
        assert_eq!(vertices, svg_points, "one vertex per chart point");
        assert!(
            (before..=after).contains(&svg_points),
            "chart points in the page {svg_points}, in /status {before}..={after}"
        );
        if before == after {
            assert_eq!(svg_points, before);
            checked = true;
            break;
        }
    }
    assert!(checked, "the chart kept growing during every browser run");

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/status-page.png");
    // `target/` may not exist in this checkout (a CARGO_TARGET_DIR elsewhere).
    std::fs::create_dir_all(shot.parent().unwrap()).expect("the screenshot's directory");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::block_in_place(|| browse(&bin, &[&arg, "--window-size=1280,900"], &url));
    let png = std::fs::read(&shot).expect("the screenshot is written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(png.len() > 10_000, "a real picture: {} bytes", png.len());
    eprintln!("screenshot: {}", shot.canonicalize().unwrap().display());
    fas.stop().await;
}
