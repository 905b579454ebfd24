//! A throwaway PostgreSQL cluster for tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::free_port;

/// How long [`PgServer::start`] waits for the server to accept TCP connections.
const READY_DEADLINE: Duration = Duration::from_secs(20);
/// How long a stop waits for the postmaster to exit before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// The superuser `initdb` creates (trust authentication on loopback).
const USER: &str = "fas";

/// Debian's PostgreSQL (`/usr/lib/postgresql/<version>/bin`, or `$FAS_TEST_PG_BIN_DIR`) as a
/// throwaway cluster: `initdb` into a temporary directory, the server on `127.0.0.1:<free port>`
/// with `fsync=off`, trust authentication for the user `fas`. Run as the `postgres` user when
/// the test runs as root (PostgreSQL refuses root). The server can be stopped and started again
/// on the same port and data (outage tests); it is stopped by its PID (SIGQUIT, then SIGKILL) when
/// dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The `bin` directory of the newest installed PostgreSQL, or a panic pointing at `scripts/test`.
#[allow(
    clippy::disallowed_methods,
    reason = "dev-only: the test command may name the PostgreSQL bin directory in FAS_TEST_PG_BIN_DIR"
)]
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FAS_TEST_PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return dir;
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL binaries not found (/usr/lib/postgresql/*/bin/initdb; set FAS_TEST_PG_BIN_DIR or \
             install it): run `scripts/test`, which installs Debian's postgresql"
        ),
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgServer {
    /// Creates a cluster (`initdb`) and starts it; returns once it accepts connections.
    ///
    /// Panics when the binaries are missing (run `scripts/test`), `initdb` fails, or the server is
    /// not ready in 20 s.
    pub async fn start() -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("create a temp dir for postgres");
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = server.data();
        let out = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", USER, "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        server.start_again().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    /// The connection URL, e.g. `postgres://fas@127.0.0.1:41234/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the (stopped) server again on the same port and data; returns once it accepts
    /// connections. Panics after 20 s.
    pub async fn start_again(&self) {
        let log = self.dir.path().join("postgres.log");
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-s", "start", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
                self.port,
                self.dir.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl start");
        assert!(
            status.success(),
            "pg_ctl start failed; log:\n{}",
            self.log_tail()
        );
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if self.pid().is_some()
                && tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
            {
                // The postmaster accepts before recovery ends; `pg_ctl status` is not enough
                // either: ask the server itself.
                let ready = self
                    .command("pg_isready")
                    .args(["-h", "127.0.0.1", "-q", "-p"])
                    .arg(self.port.to_string())
                    .status()
                    .is_ok_and(|s| s.success());
                if ready {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready after {READY_DEADLINE:?}; log:\n{}",
                self.log_tail()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// The postmaster's PID (first line of `postmaster.pid`), while it runs.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Fast shutdown (SIGINT to the postmaster: sessions are terminated, their locks released);
    /// returns once the process is gone.
    pub async fn stop(&self) {
        self.signal_and_wait("-INT").await;
    }

    /// Immediate shutdown (SIGQUIT, as a crash): returns once the process is gone.
    pub async fn kill(&self) {
        self.signal_and_wait("-QUIT").await;
    }

    /// Freezes the server and its sessions (SIGSTOP to the postmaster and its children): TCP
    /// connections stay open but nothing answers, as a hung database. [`PgServer::resume`]
    /// undoes it.
    pub fn pause(&self) {
        self.signal_tree("-STOP");
    }

    /// Resumes a server frozen by [`PgServer::pause`].
    pub fn resume(&self) {
        self.signal_tree("-CONT");
    }

    fn signal_tree(&self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let mut pids = vec![pid];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`: the ppid is the second field after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pid) {
                pids.push(child);
            }
        }
        let _ = Command::new("kill")
            .arg(signal)
            .args(pids.iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
    }

    async fn signal_and_wait(&self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + STOP_DEADLINE;
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            sleep(Duration::from_millis(20)).await;
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }

    /// The last 40 lines of the server log.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate shutdown by PID, bounded, then SIGKILL: no server outlives its test.
        let Some(pid) = self.pid() else { return };
        self.resume();
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(pid.to_string())
            .status();
        let deadline = std::time::Instant::now() + STOP_DEADLINE;
        while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}
