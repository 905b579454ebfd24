//! `fly-autoscaler`: a metrics-based autoscaler for Fly.io Machines, compatible with the Go
//! `fly-autoscaler` (same commands, environment variables, YAML keys and metric names).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fly_autoscaler::{cli, config};

/// Metrics-based autoscaler for Fly.io Machines.
///
/// Configuration comes from FAS_* environment variables; a YAML file given with --config is laid
/// over them. See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "fly-autoscaler", version = cli::VERSION, disable_version_flag = false)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reconciliation loop until SIGINT/SIGTERM; serve Prometheus metrics on :9090/metrics.
    Serve {
        /// YAML configuration file, laid over the FAS_* environment.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Shadow mode: collect, evaluate, list and plan, but never create, start, stop or
        /// destroy a machine (same as FAS_DRY_RUN=true).
        #[arg(long)]
        dry_run: bool,
    },
    /// Collect every metric once, evaluate every count expression, print JSON; scale nothing.
    Eval {
        /// YAML configuration file, laid over the FAS_* environment.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Collect, evaluate and list machines once, then print the plan that `serve` would carry out;
    /// change nothing.
    Plan {
        /// YAML configuration file, laid over the FAS_* environment.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Print the plan as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print what a running `serve` decided for each app (its `GET /status`) as a table.
    Status {
        /// The `serve` metrics listener to ask.
        #[arg(long, default_value = fly_autoscaler::status_cli::DEFAULT_ADDRESS, value_name = "URL")]
        address: String,
    },
    /// Replay a metric history (CSV or a Prometheus range) through the real evaluation, stabilization and planner
    /// against a modelled fleet; print a table per tick and a summary. No Fly call.
    Simulate(SimulateArgs),
    /// Print the version (and commit).
    Version,
    #[cfg(feature = "demo")]
    /// Run a self-contained demo: the real serve loop against a local Fly API simulator and a
    /// synthetic queue-depth metric that rises and falls.
    Demo {
        /// How long the demo runs (Go duration syntax).
        #[arg(long, default_value = "60s", value_name = "DURATION")]
        duration: String,
    },
}

/// The flags of `simulate`.
#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// YAML configuration file, laid over the FAS_* environment.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The metric history: a `time` column (RFC 3339 or unix seconds) and one column per
    /// metric name.
    #[arg(
        long,
        value_name = "FILE.csv",
        required_unless_present = "prometheus_range",
        conflicts_with = "prometheus_range"
    )]
    input: Option<PathBuf>,
    /// Instead of --input: a range query per collector (the configuration's queries, for its
    /// app) from START to END (RFC 3339 or unix seconds).
    #[arg(long, value_name = "START..END")]
    prometheus_range: Option<String>,
    /// The resolution of --prometheus-range (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    step: String,
    /// Machines at the start.
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        conflicts_with = "from_list"
    )]
    machines: u32,
    /// Of which started at the start (default: all).
    #[arg(long, value_name = "N", conflicts_with = "from_list")]
    started: Option<u32>,
    /// Start from the app's current fleet: one machine list call (needs the API token); the
    /// machines are counted as the planner counts them.
    #[arg(long)]
    from_list: bool,
    /// Time a start or create takes to reach `started` (Go duration).
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    boot: String,
    /// Time a stop or suspend takes (Go duration).
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    stop: String,
    /// A second configuration file run over the same input; both go in the summary.
    #[arg(long, value_name = "OTHER.yml")]
    compare: Option<PathBuf>,
    /// Also write a chart of metrics, targets and machines over time (one per configuration).
    #[arg(long, value_name = "FILE.svg")]
    svg: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Go's flag package also takes `-config PATH`; clap only takes `--config`.
    let cli = match Cli::try_parse_from(config::normalize_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => return cli::clap_exit(&e),
    };
    let env = cli::process_env();
    let result = match cli.command {
        Command::Version => {
            println!("{}", cli::version_line());
            Ok(())
        }
        Command::Serve { config, dry_run } => {
            let mut env = env;
            if dry_run {
                env.insert("FAS_DRY_RUN".to_owned(), "true".to_owned());
            }
            cli::run_async(cli::serve(sources(env, config)))
        }
        Command::Eval { config } => cli::run_async(cli::eval(sources(env, config))),
        Command::Plan { config, json } => cli::run_async(cli::plan(sources(env, config), json)),
        Command::Simulate(args) => simulate(sources(env, args.config.clone()), args),
        Command::Status { address } => cli::run_async(fly_autoscaler::status_cli::run(&address)),
        #[cfg(feature = "demo")]
        Command::Demo { duration } => cli::run_async(fly_autoscaler::demo::run(&duration)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn sources(
    env: std::collections::BTreeMap<String, String>,
    file: Option<PathBuf>,
) -> config::Sources {
    config::Sources { env, file }
}

fn simulate(sources: config::Sources, args: SimulateArgs) -> anyhow::Result<()> {
    use fly_autoscaler::simulate::{Args, FleetOptions, Input, run_command};
    let duration = |flag: &str, v: &str| {
        config::parse_go_duration(v).map_err(|e| anyhow::anyhow!("--{flag} {v:?}: {e}"))
    };
    let (machines, started) = if args.from_list {
        let counts = fly_autoscaler::simulate::fleet_from_list(&sources)?;
        (counts.created, Some(counts.started))
    } else {
        (args.machines, args.started)
    };
    let fleet = FleetOptions {
        machines,
        started: started.unwrap_or(machines),
        boot: duration("boot", &args.boot)?,
        stop: duration("stop", &args.stop)?,
    };
    let input = match (args.input, args.prometheus_range.as_deref()) {
        (Some(path), _) => Input::Csv(path),
        (None, Some(range)) => Input::prometheus_range(range, duration("step", &args.step)?)?,
        (None, None) => anyhow::bail!("give --input FILE.csv or --prometheus-range START..END"),
    };
    let out = run_command(&Args {
        sources,
        input,
        fleet,
        compare: args.compare,
        svg: args.svg,
    })?;
    print!("{out}");
    Ok(())
}
