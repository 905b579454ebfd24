//! Shared helpers of the end-to-end tests: the built binary as a child process ([`Fas`], killed on drop),
//! a fake Prometheus HTTP API ([`FakeProm`]), the simulator set-up, bounded polling and a `/metrics` reader.
#![allow(dead_code, unreachable_pub)]

pub mod fake_fly;
pub mod soak;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fas_flysim::{MachineSpec, SimConfig, Simulator};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// Every bounded wait of these tests gives up after this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_fly-autoscaler");

/// Routes of the simulator that change machines.
pub const MUTATIONS: &[&str] = &[
    "create", "start", "stop", "suspend", "destroy", "cordon", "uncordon",
];

// ----- the child process ---------------------------------------------------------------------------------------

/// A running `fly-autoscaler`, its stdout and stderr collected by reader threads. Killed and reaped on drop.
pub struct Fas {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn reader(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// The command for the binary with a cleared environment (PATH kept) plus `env`.
#[allow(
    clippy::disallowed_methods,
    reason = "the child keeps the test's PATH; nothing else of the environment"
)]
pub fn command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Fas {
    /// Spawns the binary with `args` and exactly `env` (plus PATH).
    pub fn spawn(args: &[&str], env: &[(String, String)]) -> Fas {
        let mut child = command(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fly-autoscaler");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            reader(child.stdout.take().unwrap(), stdout.clone()),
            reader(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Fas {
            child,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The stderr lines parsed as JSON (panics, with the line, when one is not JSON).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The JSON log lines whose `message` is `msg`.
    pub fn lines_with_message(&self, msg: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|l| l["message"] == msg)
            .collect()
    }

    /// Panics with the stderr tail when the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "fly-autoscaler exited early ({status}); stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// Sends `signal` (`TERM`, `INT`) with `kill`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }

    /// Waits (bounded by `limit`) for the process to exit; returns its status. Panics on timeout.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.status = Some(status);
                // The pipes close with the process: let the readers drain them.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "fly-autoscaler did not exit within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for exit code 0.
    pub async fn stop(&mut self) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(10)).await;
        assert_eq!(status.code(), Some(0), "stderr:\n{}", self.stderr());
    }

    /// Waits until at least `n` log lines have message `msg` (the process must stay up).
    pub async fn wait_for_lines(&mut self, msg: &str, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let lines = self.lines_with_message(msg);
            if lines.len() >= n {
                return lines;
            }
            self.assert_running();
            assert!(
                start.elapsed() < DEADLINE,
                "fewer than {n} log lines `{msg}` after {DEADLINE:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits for `n` more `reconcile` lines than there are now (i.e. `n` further ticks).
    pub async fn wait_ticks(&mut self, n: usize) {
        let now = self.lines_with_message("reconcile").len();
        self.wait_for_lines("reconcile", now + n).await;
    }
}

impl Drop for Fas {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- fly-autoscaler stderr ---\n{}", self.stderr());
        }
    }
}

/// Runs the binary to completion (bounded): exit code, stdout, stderr.
pub fn run(args: &[&str], env: &[(String, String)]) -> (Option<i32>, String, String) {
    let mut child = command(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fly-autoscaler");
    let out = Arc::new(Mutex::new(String::new()));
    let err = Arc::new(Mutex::new(String::new()));
    let r1 = reader(child.stdout.take().unwrap(), out.clone());
    let r2 = reader(child.stderr.take().unwrap(), err.clone());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{args:?} did not exit within {DEADLINE:?}; stderr:\n{}",
                err.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = (r1.join(), r2.join());
    let out = out.lock().unwrap().clone();
    let err = err.lock().unwrap().clone();
    (status.code(), out, err)
}

/// `env` pairs as owned strings.
pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ----- polling ------------------------------------------------------------------------------------------------

/// Polls `cond` every 25 ms until it holds; panics with `what` (and the stderr of `fas`) after [`DEADLINE`].
pub async fn wait_until(fas: &mut Fas, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        fas.assert_running();
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for: {what}; stderr:\n{}",
            fas.stderr()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ----- the simulator ------------------------------------------------------------------------------------------

/// A simulator with instant transitions and no rate limits (the loop runs every 200 ms).
pub async fn sim() -> Simulator {
    sim_with(SimConfig::instant()).await
}

/// A simulator from `cfg` with rate limits off.
pub async fn sim_with(mut cfg: SimConfig) -> Simulator {
    cfg.rate_limits.enabled = false;
    Simulator::start(cfg).await.expect("start the simulator")
}

/// Adds `n` machines of `spec` to `app`; returns their ids.
pub fn add_machines(sim: &Simulator, app: &str, n: usize, spec: &MachineSpec) -> Vec<String> {
    (0..n).map(|_| sim.add_machine(app, spec.clone())).collect()
}

/// Number of non-destroyed machines of `app`.
pub fn live(sim: &Simulator, app: &str) -> usize {
    sim.machines(app)
        .iter()
        .filter(|m| m.state != "destroyed" && m.state != "destroying")
        .count()
}

/// The mutating requests the simulator received (any app).
pub fn mutations(sim: &Simulator) -> Vec<String> {
    sim.request_log()
        .into_iter()
        .filter(|r| MUTATIONS.contains(&r.route.as_str()))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The environment of a `serve`/`eval` run against `sim` and a Prometheus at `prom_url`, scaling `app`'s
/// started count with `ceil(queue_depth / 10)` every 200 ms; `/metrics` on `metrics_port`.
pub fn base_env(
    sim: &Simulator,
    prom_url: &str,
    app: &str,
    metrics_port: u16,
) -> Vec<(String, String)> {
    env(&[
        ("FAS_APP_NAME", app),
        ("FAS_API_TOKEN", sim.token()),
        ("FLY_FLAPS_BASE_URL", &sim.base_url()),
        ("FLY_API_BASE_URL", &sim.base_url()),
        ("FAS_INTERVAL", "200ms"),
        ("FAS_METRICS_ADDRESS", &format!("127.0.0.1:{metrics_port}")),
        ("FAS_PROMETHEUS_ADDRESS", prom_url),
        ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth"),
        (
            "FAS_PROMETHEUS_QUERY",
            "sum(queue_depth{app=\"${APP_NAME}\"})",
        ),
        ("FAS_STARTED_MACHINE_COUNT", "ceil(queue_depth / 10)"),
    ])
}

/// Sets (or adds) `key` in `env`.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

// ----- a fake Prometheus HTTP API ---------------------------------------------------------------------------------

/// What the fake Prometheus answers.
#[derive(Debug, Clone, PartialEq)]
pub enum PromAnswer {
    /// A one-sample vector with this value.
    Value(f64),
    /// This HTTP status with an error body.
    Status(u16),
}

#[derive(Debug)]
struct PromState {
    answer: PromAnswer,
    queries: Vec<String>,
    auth: Vec<Option<String>>,
}

/// A fake Prometheus answering `/api/v1/query` (GET or form POST) with a settable answer, recording every query
/// and `Authorization` header it received. Dropping it closes the listener.
pub struct FakeProm {
    addr: SocketAddr,
    state: Arc<Mutex<PromState>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProm {
    /// Starts on a free port answering `answer`.
    pub async fn start(answer: PromAnswer) -> FakeProm {
        FakeProm::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), answer).await
    }

    /// Starts on `addr` answering `answer`.
    pub async fn start_on(addr: SocketAddr, answer: PromAnswer) -> FakeProm {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the fake prometheus");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(PromState {
            answer,
            queries: Vec::new(),
            auth: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(answer_query(req, &shared).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeProm { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the answer.
    pub fn set(&self, answer: PromAnswer) {
        self.state.lock().unwrap().answer = answer;
    }

    /// Every query received so far.
    pub fn queries(&self) -> Vec<String> {
        self.state.lock().unwrap().queries.clone()
    }

    /// Every `Authorization` header received so far (`None`: no header).
    pub fn auth_headers(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().auth.clone()
    }
}

impl Drop for FakeProm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer_query(
    req: Request<hyper::body::Incoming>,
    state: &Mutex<PromState>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let url_query = req.uri().query().unwrap_or_default().to_owned();
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path != "/api/v1/query" {
        return respond(
            404,
            "{\"status\":\"error\",\"error\":\"not found\"}".to_owned(),
        );
    }
    let form = if body.is_empty() {
        url_query.into_bytes()
    } else {
        body.to_vec()
    };
    let query = url::form_urlencoded::parse(&form)
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let answer = {
        let mut s = state.lock().unwrap();
        s.queries.push(query);
        s.auth.push(auth);
        s.answer.clone()
    };
    match answer {
        PromAnswer::Value(v) => respond(
            200,
            serde_json::json!({
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1_700_000_000.0, v.to_string()]}]}
            })
            .to_string(),
        ),
        PromAnswer::Status(code) => respond(
            code,
            "{\"status\":\"error\",\"errorType\":\"internal\",\"error\":\"fake prometheus failure\"}".to_owned(),
        ),
    }
}

fn respond(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

// ----- the /metrics endpoint ---------------------------------------------------------------------------------------

/// `GET http://127.0.0.1:port{path}` with `Connection: close`: status and body (None when it failed).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    // hyper answers a Full body with a content-length, never chunked.
    Some((status, body))
}

/// One sample of Prometheus text: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the sample lines of Prometheus text (comments skipped; label values without `,` or `}` inside).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}')?;
                    let labels = inner
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .filter_map(|p| {
                            let (k, v) = p.split_once('=')?;
                            Some((k.to_owned(), v.trim_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}

/// The value of the sample named `name` whose labels are exactly `labels`.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}
