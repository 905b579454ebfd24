//! Standalone Fly Machines API simulator: `fas-flysim --listen 127.0.0.1:4280 --scenario FILE.json`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use fas_flysim::{Scenario, Simulator};

/// Run the Fly Machines API simulator until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "fas-flysim", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4280")]
    listen: SocketAddr,
    /// Scenario file (JSON): config toggles, orgs, apps, machines, release status.
    #[arg(long)]
    scenario: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading scenario {}", path.display()))?;
            Scenario::from_json(&text).with_context(|| format!("in scenario {}", path.display()))?
        }
        None => Scenario::default(),
    };
    let default_token = scenario.config.token == fas_flysim::DEFAULT_TOKEN;
    let sim = Simulator::from_scenario(args.listen, &scenario)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("fas-flysim listening on {}", sim.base_url());
    println!(
        "  machines API: {}/v1   graphql: {}/graphql",
        sim.base_url(),
        sim.base_url()
    );
    if default_token {
        println!(
            "  token: {} (the default test token)",
            fas_flysim::DEFAULT_TOKEN
        );
    } else {
        println!("  token: the one set in the scenario's config.token");
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}
