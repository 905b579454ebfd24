//! A real Prometheus server for tests.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::process::{OwnedChild, find_binary};
use crate::{free_port, http_get};

/// How long [`PromServer::start`] waits for `/-/ready`.
const READY_DEADLINE: Duration = Duration::from_secs(20);
/// How long [`PromServer::wait_for`] polls (the first scrape lands ~6 s after start).
const DATA_DEADLINE: Duration = Duration::from_secs(30);

/// Debian's `prometheus`, listening on `127.0.0.1:<free port>`, scraping the given targets every
/// second (job `test`), storing in a temporary directory. Killed and reaped when dropped.
///
/// Note: Prometheus batches target discovery, so the first scrape lands about 6 s after start
/// even with a 1 s interval; call [`PromServer::wait_for`] before querying, and start as few
/// servers as possible (one per test function that checks several queries).
#[derive(Debug)]
pub struct PromServer {
    url: String,
    child: OwnedChild,
    _dir: tempfile::TempDir,
}

impl PromServer {
    /// Writes `prom.yml`, starts Prometheus and waits until `/-/ready` answers 200.
    ///
    /// Panics when the binary is missing (run `scripts/test`), exits early, or is not ready in 20 s.
    pub async fn start(scrape_targets: &[SocketAddr]) -> PromServer {
        let bin = find_binary("FAS_TEST_PROMETHEUS_BIN", "prometheus", "prometheus");
        let dir = tempfile::tempdir().expect("create a temp dir for prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: [",
        );
        for (i, target) in scrape_targets.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(config, "{sep}'{target}'");
        }
        config.push_str("]\n");
        let config_path = dir.path().join("prom.yml");
        std::fs::write(&config_path, config).expect("write prom.yml");
        let port = free_port();
        let mut command = Command::new(&bin);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let mut child = OwnedChild::spawn(command, &dir.path().join("prometheus.log"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            child.check_running("prometheus");
            if let Some((200, _)) = http_get(&format!("{url}/-/ready")).await {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after {READY_DEADLINE:?}; log:\n{}",
                child.log_tail()
            );
            sleep(Duration::from_millis(50)).await;
        }
        PromServer {
            url,
            child,
            _dir: dir,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234` (the API is at `{url}/api/v1/...`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Polls the instant query until its result is non-empty (deadline 30 s, then panics).
    pub async fn wait_for(&self, query: &str) {
        let encoded: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = format!("{}/api/v1/query?query={encoded}", self.url);
        let deadline = Instant::now() + DATA_DEADLINE;
        let mut last = String::new();
        loop {
            if let Some((200, body)) = http_get(&url).await {
                let has_data = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .is_some_and(|v| {
                        let result = &v["data"]["result"];
                        result.as_array().is_some_and(|a| !a.is_empty())
                            || v["data"]["resultType"] == "scalar"
                    });
                if has_data {
                    return;
                }
                last = body;
            }
            assert!(
                Instant::now() < deadline,
                "no data for `{query}` after {DATA_DEADLINE:?}; last answer: {last}; log:\n{}",
                self.child.log_tail()
            );
            sleep(Duration::from_millis(200)).await;
        }
    }
}
