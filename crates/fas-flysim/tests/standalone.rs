//! The standalone `fas-flysim` binary with the example scenario shipped in `examples/`, as the
//! README tells users to run it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use fas_flyapi::{Client, ClientConfig, ListMachinesOptions, MachineState};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scenario_path() -> String {
    format!(
        "{}/../../examples/flysim-scenario.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[tokio::test]
async fn serves_the_example_scenario() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fas-flysim"))
        .args(["--listen", "127.0.0.1:0", "--scenario", &scenario_path()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fas-flysim");
    let stdout = child.stdout.take().expect("piped stdout");
    let _guard = Killed(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("read the first line");
    let base = first
        .trim()
        .strip_prefix("fas-flysim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();

    let mut cfg = ClientConfig::new("flysim-demo-token");
    cfg.machines_base_url.clone_from(&base);
    cfg.graphql_base_url.clone_from(&base);
    let client = Client::new(cfg).unwrap();
    let machines = client
        .list_machines("my-app", &ListMachinesOptions::default())
        .await
        .unwrap();
    assert_eq!(machines.len(), 5);
    let started = machines
        .iter()
        .filter(|m| m.state == MachineState::Started)
        .count();
    assert_eq!(started, 1);
    assert!(machines.iter().all(|m| m.region == "iad"));
    assert!(machines.iter().all(|m| m.process_group() == Some("app")));
    let release = client.current_release("my-app").await.unwrap();
    assert_eq!(release.map(|r| r.status).as_deref(), Some("complete"));

    // The scenario's token is the only one accepted.
    let mut wrong = ClientConfig::new("not-the-token");
    wrong.machines_base_url = base;
    let err = Client::new(wrong)
        .unwrap()
        .list_machines("my-app", &ListMachinesOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}

#[test]
fn a_bad_scenario_names_the_problem() {
    let dir = std::env::temp_dir().join(format!("flysim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(&path, r#"{"apps": [{"name": "a", "machnes": []}]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fas-flysim"))
        .args(["--listen", "127.0.0.1:0", "--scenario"])
        .arg(&path)
        .output()
        .expect("run fas-flysim");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("machnes"), "{stderr}");
}
