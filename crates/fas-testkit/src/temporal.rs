//! A real Temporal dev server for tests.

use std::process::Command;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::process::{OwnedChild, find_binary, workspace_root};
use crate::{free_port, http_get};

/// How long [`TemporalServer::start`] waits for readiness.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Limit on one `temporal workflow start` invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// `temporal server start-dev` (in-memory, headless) on free loopback ports; killed and reaped
/// when dropped. Only the `default` namespace exists.
#[derive(Debug)]
pub struct TemporalServer {
    bin: std::path::PathBuf,
    grpc_port: u16,
    http_port: u16,
    child: OwnedChild,
    _dir: tempfile::TempDir,
}

impl TemporalServer {
    /// Starts the dev server and waits until its HTTP API serves the `default` namespace.
    ///
    /// Panics when the binary is missing (run `scripts/test`), exits early or is not ready in 30 s.
    pub async fn start() -> TemporalServer {
        let fallback = workspace_root().join(".tools/bin/temporal");
        let bin = find_binary(
            "FAS_TEST_TEMPORAL_BIN",
            &fallback.to_string_lossy(),
            "temporal",
        );
        let dir = tempfile::tempdir().expect("create a temp dir for temporal");
        let (grpc_port, http_port, metrics_port) = (free_port(), free_port(), free_port());
        let mut command = Command::new(&bin);
        command
            .args([
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
            ])
            .arg(grpc_port.to_string())
            .arg("--http-port")
            .arg(http_port.to_string())
            .arg("--metrics-port")
            .arg(metrics_port.to_string())
            .args(["--db-filename", "", "--log-level", "warn"])
            .current_dir(dir.path());
        let mut child = OwnedChild::spawn(command, &dir.path().join("temporal.log"));
        let url = format!("http://127.0.0.1:{http_port}/api/v1/namespaces/default");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            child.check_running("temporal dev server");
            if let Some((200, _)) = http_get(&url).await {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "temporal dev server not ready after {READY_DEADLINE:?}; log:\n{}",
                child.log_tail()
            );
            sleep(Duration::from_millis(50)).await;
        }
        TemporalServer {
            bin,
            grpc_port,
            http_port,
            child,
            _dir: dir,
        }
    }

    /// The gRPC frontend address, `127.0.0.1:<port>` (what users configure as `address`).
    pub fn grpc_address(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// The HTTP API base URL, `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts a workflow (no worker exists, so it stays `Running`) with the CLI:
    /// `temporal workflow start --address .. --namespace .. --type .. --task-queue q --workflow-id ..`.
    ///
    /// Panics when the CLI fails or takes more than 30 s.
    pub async fn start_workflow(&self, namespace: &str, workflow_type: &str, id: &str) {
        self.start_workflow_on_queue(namespace, workflow_type, "q", id)
            .await;
    }

    /// Like [`TemporalServer::start_workflow`] with a chosen task queue.
    pub async fn start_workflow_on_queue(
        &self,
        namespace: &str,
        workflow_type: &str,
        task_queue: &str,
        id: &str,
    ) {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(["workflow", "start", "--address"])
            .arg(self.grpc_address())
            .args([
                "--namespace",
                namespace,
                "--type",
                workflow_type,
                "--task-queue",
                task_queue,
            ])
            .args(["--workflow-id", id])
            .kill_on_drop(true);
        // `output()` waits for (reaps) the CLI process; on timeout kill_on_drop kills it.
        let output = tokio::time::timeout(CLI_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!("`temporal workflow start` for {id} took more than {CLI_TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        assert!(
            output.status.success(),
            "`temporal workflow start` for {id} failed ({}): {}{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.child.log_tail()
        );
    }
}
