//! Locating binaries and owning child processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Finds a test binary: `$env_var`, else `fallback` (a path, or a name looked up on `PATH`).
/// Panics, telling the user to run `scripts/test`, when it is missing.
#[allow(
    clippy::disallowed_methods,
    reason = "dev-only: the test command names the server binaries in FAS_TEST_*_BIN and PATH"
)]
pub(crate) fn find_binary(env_var: &str, fallback: &str, what: &str) -> PathBuf {
    let candidate = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback));
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return candidate;
        }
    } else if let Some(found) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&candidate))
        .find(|path| path.is_file())
    {
        return found;
    }
    panic!(
        "{what} binary not found (tried {}; set {env_var} or install it): run `scripts/test`, which installs it \
         and exports {env_var}",
        candidate.display()
    );
}

/// The workspace root (two levels above this crate's manifest).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A child process with its output in a log file; killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct OwnedChild {
    child: Child,
    log: PathBuf,
}

impl OwnedChild {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut command: Command, log: &Path) -> OwnedChild {
        let file = std::fs::File::create(log).expect("create the server log file");
        let err = file.try_clone().expect("clone the log file handle");
        command.stdin(Stdio::null()).stdout(file).stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        OwnedChild {
            child,
            log: log.to_owned(),
        }
    }

    /// Panics if the process has already exited, with its log tail.
    pub(crate) fn check_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{what} exited early ({status}); log:\n{}", self.log_tail());
        }
    }

    /// The last 40 lines of the process log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        // SIGKILL then wait: the process is gone and reaped before the ports and temp dir are reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
