//! `fly-autoscaler simulate`: replays a metric history through the real evaluation
//! ([`crate::tick::evaluate`]), stabilization and planner ([`crate::tick::decide`]) against a
//! modelled fleet ([`fleet::Fleet`]), with no Fly call. Pure apart from reading the input file
//! in [`run_command`]: the time of each tick comes from the history.

pub mod fleet;
pub mod input;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use fas_reconcile::{ActionKind, Bounds, Targets};

use crate::config::{self, Config, Purpose, Sources};
use crate::report::error_chain;
use crate::tick::{DecisionState, decide, evaluate};
use fleet::Fleet;
use input::Series;

/// A gap in the history longer than this many tick intervals is reported, not filled.
pub const MAX_GAP_TICKS: u32 = 10;

/// The modelled fleet at the start and how long its machines take to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetOptions {
    /// Machines at the start (`--machines`).
    pub machines: u32,
    /// Of which started (`--started`).
    pub started: u32,
    /// Time from a start (or a create) to `started` (`--boot`).
    pub boot: Duration,
    /// Time from a stop or suspend to `stopped` / `suspended` (`--stop`).
    pub stop: Duration,
}

/// What happened at one tick of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct TickRow {
    /// The tick's time.
    pub at: SystemTime,
    /// The metric values used (`None`: no sample within [`MAX_GAP_TICKS`] intervals).
    pub values: Option<Vec<f64>>,
    /// The targets the expressions gave (`None` when not evaluated).
    pub evaluated: Option<Targets>,
    /// The targets the planner got, after the scale-down window and the steps.
    pub planned: Option<Targets>,
    /// Started machines at the tick (booting ones not counted).
    pub started: u32,
    /// Existing machines at the tick.
    pub created: u32,
    /// Number of actions per kind.
    pub actions: BTreeMap<ActionKind, u32>,
    /// Why the tick did not plan (a gap, an evaluation error), empty otherwise.
    pub note: String,
}

/// The summary of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Ticks simulated.
    pub ticks: u32,
    /// Sum over ticks of started machines × interval.
    pub machine_seconds: f64,
    /// Time (ticks × interval) with fewer started machines than the evaluated min started.
    pub below_min_seconds: f64,
    /// Actions planned (creates, starts, stops, suspends, destroys).
    pub actions: u32,
    /// Changes of direction between scale-ups (create, start) and scale-downs.
    pub flaps: u32,
    /// Ticks without a sample within [`MAX_GAP_TICKS`] intervals.
    pub gaps: u32,
}

/// A whole simulation: one row per tick and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The metric names, in the columns' order.
    pub metrics: Vec<String>,
    /// One row per tick.
    pub rows: Vec<TickRow>,
    /// The totals.
    pub summary: Summary,
}

/// Replays `series` through `config` against a fleet modelled from `opts`: one tick per
/// `config.interval` from the first row's time to the last; each tick reads the latest row at
/// or before it.
pub fn simulate(config: &Config, series: &Series, opts: &FleetOptions) -> Simulation {
    let policy = config.policy();
    let mut fleet = Fleet::new(
        opts.machines,
        opts.started.min(opts.machines),
        opts.boot,
        opts.stop,
        &policy.process_group,
    );
    let mut state = DecisionState::default();
    let interval = config.interval.max(Duration::from_millis(1));
    let (Some(first), Some(last)) = (series.rows.first(), series.rows.last()) else {
        return Simulation {
            metrics: series.metrics.clone(),
            rows: Vec::new(),
            summary: Summary::default(),
        };
    };
    let mut rows = Vec::new();
    let mut summary = Summary::default();
    let mut last_direction: Option<bool> = None;
    let mut next = 0;
    let mut at = first.at;
    while at <= last.at {
        while next + 1 < series.rows.len() && series.rows[next + 1].at <= at {
            next += 1;
        }
        let sample = &series.rows[next];
        fleet.advance(at);
        let mut row = TickRow {
            at,
            values: None,
            evaluated: None,
            planned: None,
            started: fleet.started(),
            created: fleet.created(),
            actions: BTreeMap::new(),
            note: String::new(),
        };
        let age = at.duration_since(sample.at).unwrap_or_default();
        if age > interval * MAX_GAP_TICKS {
            summary.gaps += 1;
            row.note = format!(
                "gap: no sample for {}s (last at line {})",
                age.as_secs(),
                sample.line
            );
        } else {
            let values: BTreeMap<String, f64> = series
                .metrics
                .iter()
                .cloned()
                .zip(sample.values.iter().copied())
                .collect();
            row.values = Some(sample.values.clone());
            let machines = fleet.machines();
            let ctx = crate::context::context(config, at, Some(&machines));
            match evaluate(config, &values, &ctx) {
                Err(e) => row.note = format!("skipped: {}", error_chain(&e)),
                Ok(evaluated) => {
                    let (planned, plan) =
                        decide(config, &policy, &mut state, &machines, &evaluated, at);
                    if let Some(min) = evaluated.started.map(|b| b.min)
                        && row.started < min
                    {
                        summary.below_min_seconds += interval.as_secs_f64();
                    }
                    for a in &plan.actions {
                        *row.actions.entry(a.action.kind()).or_default() += 1;
                    }
                    let up = plan
                        .actions
                        .iter()
                        .any(|a| matches!(a.action.kind(), ActionKind::Create | ActionKind::Start));
                    if !plan.actions.is_empty() {
                        if last_direction.is_some_and(|d| d != up) {
                            summary.flaps += 1;
                        }
                        last_direction = Some(up);
                    }
                    summary.actions += u32::try_from(plan.actions.len()).unwrap_or(u32::MAX);
                    fleet.apply(&plan, at);
                    row.evaluated = Some(evaluated);
                    row.planned = Some(planned);
                }
            }
        }
        summary.machine_seconds += f64::from(row.started) * interval.as_secs_f64();
        summary.ticks += 1;
        rows.push(row);
        at += interval;
    }
    Simulation {
        metrics: series.metrics.clone(),
        rows,
        summary,
    }
}

/// `2026-11-30T08:00:00Z` (whole seconds).
fn time_text(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn bounds_text(b: Option<Bounds>) -> String {
    match b {
        None => "-".to_owned(),
        Some(b) if b.min == b.max => b.min.to_string(),
        Some(b) => format!("{}..{}", b.min, b.max),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Picks one count's bounds out of targets.
type Pick = fn(&Targets) -> Option<Bounds>;

/// One summary line: its label and how to print it.
type SummaryLine = (&'static str, fn(&Summary) -> String);

/// The per-tick table: time, each metric, the evaluated and planned targets of the configured
/// counts (`min..max`, or one number when equal), started / created machines, actions.
pub fn render_table(sim: &Simulation) -> String {
    let has = |f: Pick| {
        sim.rows
            .iter()
            .any(|r| r.evaluated.as_ref().and_then(f).is_some())
    };
    let (created, started) = (has(|t| t.created), has(|t| t.started));
    let mut header: Vec<String> = vec!["time".into()];
    header.extend(sim.metrics.iter().cloned());
    for (shown, name) in [(created, "created"), (started, "started")] {
        if shown {
            header.push(format!("eval {name}"));
            header.push(format!("plan {name}"));
        }
    }
    header.extend(["started", "created", "actions"].map(String::from));
    let mut table = vec![header];
    for r in &sim.rows {
        let mut cells = vec![time_text(r.at)];
        match &r.values {
            Some(vs) => cells.extend(vs.iter().map(|v| number(*v))),
            None => cells.extend(sim.metrics.iter().map(|_| "-".to_owned())),
        }
        let pick: [(bool, Pick); 2] = [(created, |t| t.created), (started, |t| t.started)];
        for (shown, f) in pick {
            if shown {
                cells.push(bounds_text(r.evaluated.as_ref().and_then(f)));
                cells.push(bounds_text(r.planned.as_ref().and_then(f)));
            }
        }
        cells.push(r.started.to_string());
        cells.push(r.created.to_string());
        let mut actions: Vec<String> = r
            .actions
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        if !r.note.is_empty() {
            actions.push(r.note.clone());
        }
        cells.push(if actions.is_empty() {
            "-".to_owned()
        } else {
            actions.join(", ")
        });
        table.push(cells);
    }
    let columns = table[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            // Text columns (time, actions) left-aligned, numbers right-aligned.
            if c == 0 || c == columns - 1 {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The summary of one or more runs, one column per run (`label`, simulation).
pub fn render_summary(runs: &[(&str, &Simulation)]) -> String {
    let lines: [SummaryLine; 6] = [
        ("ticks", |s| s.ticks.to_string()),
        ("machine-seconds started", |s| number(s.machine_seconds)),
        ("seconds with started < min started", |s| {
            number(s.below_min_seconds)
        }),
        ("scale actions", |s| s.actions.to_string()),
        ("flaps (direction changes)", |s| s.flaps.to_string()),
        ("gaps (ticks without data)", |s| s.gaps.to_string()),
    ];
    let label_width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut header = format!("{:<label_width$}", "summary");
    let cells: Vec<Vec<String>> = runs
        .iter()
        .map(|(_, sim)| lines.iter().map(|(_, f)| f(&sim.summary)).collect())
        .collect();
    let widths: Vec<usize> = runs
        .iter()
        .zip(&cells)
        .map(|((label, _), c)| {
            c.iter()
                .map(String::len)
                .chain([label.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    for ((label, _), w) in runs.iter().zip(&widths) {
        let _ = write!(header, "  {label:>w$}");
    }
    out.push_str(header.trim_end());
    out.push('\n');
    for (i, (label, _)) in lines.iter().enumerate() {
        let mut line = format!("{label:<label_width$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(line, "  {:>w$}", c[i]);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Where `simulate` reads the metric history.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// `--input FILE.csv`.
    Csv(PathBuf),
    /// `--prometheus-range START..END --step D`: a range query per collector, with the
    /// configuration's queries, for its app.
    PrometheusRange {
        /// First time.
        start: SystemTime,
        /// Last time.
        end: SystemTime,
        /// Resolution.
        step: Duration,
    },
}

impl Input {
    /// Parses `--prometheus-range START..END` (each RFC 3339 or unix seconds) and `--step`.
    pub fn prometheus_range(range: &str, step: Duration) -> anyhow::Result<Input> {
        let (a, b) = range.split_once("..").with_context(|| {
            format!("--prometheus-range {range:?}: expected START..END (RFC 3339 or unix seconds)")
        })?;
        let time = |s: &str| {
            input::parse_time(s.trim()).with_context(|| {
                format!("--prometheus-range: bad time `{s}`: expected RFC 3339 or unix seconds")
            })
        };
        let (start, end) = (time(a)?, time(b)?);
        anyhow::ensure!(
            end > start,
            "--prometheus-range {range:?}: END must be after START"
        );
        anyhow::ensure!(!step.is_zero(), "--step must be more than zero");
        Ok(Input::PrometheusRange { start, end, step })
    }
}

/// The arguments of `fly-autoscaler simulate`.
pub struct Args {
    /// The configuration (`--config`, laid over the environment).
    pub sources: Sources,
    /// Where the metric history comes from.
    pub input: Input,
    /// The fleet at the start and its timing.
    pub fleet: FleetOptions,
    /// A second configuration file run over the same input (`--compare OTHER.yml`).
    pub compare: Option<PathBuf>,
    /// Where to write the chart (`--svg FILE`).
    pub svg: Option<PathBuf>,
}

/// The chart points of a simulation: one per tick that planned (gaps and evaluation errors are
/// left out).
pub fn chart_points(sim: &Simulation) -> Vec<crate::status::ChartPoint> {
    sim.rows
        .iter()
        .filter_map(|row| {
            let targets = row.planned?;
            let values = row.values.as_ref()?;
            Some(crate::status::ChartPoint {
                t: crate::status::unix(row.at),
                metrics: sim
                    .metrics
                    .iter()
                    .cloned()
                    .zip(values.iter().copied())
                    .collect(),
                targets,
                started: row.started,
                created: row.created,
            })
        })
        .collect()
}

/// A standalone SVG document with one chart per run (metrics, target bounds, started and created
/// machines over the simulated time), drawn by the status page's chart code.
pub fn render_svg(runs: &[(&str, &Simulation)]) -> String {
    use crate::page::{HEIGHT, WIDTH, chart_svg, escape};
    let block = HEIGHT + 44.0;
    let start = runs
        .iter()
        .filter_map(|(_, s)| s.rows.first().map(|r| crate::status::unix(r.at)))
        .fold(f64::INFINITY, f64::min);
    let end = runs
        .iter()
        .filter_map(|(_, s)| s.rows.last().map(|r| crate::status::unix(r.at)))
        .fold(f64::NEG_INFINITY, f64::max);
    let (start, end) = if start.is_finite() && end > start {
        (start, end)
    } else {
        (0.0, 1.0)
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" \
         viewBox=\"0 0 {WIDTH} {}\" font-family=\"sans-serif\">\n",
        block * runs.len() as f64,
        block * runs.len() as f64
    );
    for (i, (label, sim)) in runs.iter().enumerate() {
        let y = block * i as f64;
        let points = chart_points(sim);
        let title = format!("{label}: {} ticks", sim.rows.len());
        let (chart, _) = chart_svg(label, &title, &points, start, end, "end");
        let _ = write!(
            out,
            "<text x=\"4\" y=\"{:.0}\" font-size=\"13\" font-weight=\"bold\">{}</text>\n\
             <g transform=\"translate(0 {:.0})\">{chart}</g>\n\
             <text x=\"4\" y=\"{:.0}\" font-size=\"10\" fill=\"#495057\">solid: started (green), \
             created (blue); dashed: min/max started and created targets; other lines: metrics ({}), \
             each scaled to its own range</text>\n",
            y + 14.0,
            escape(label),
            y + 18.0,
            y + 18.0 + HEIGHT + 16.0,
            escape(&sim.metrics.join(", "))
        );
    }
    out.push_str("</svg>\n");
    out
}

fn load(sources: &Sources) -> anyhow::Result<Config> {
    config::load(sources, Purpose::Eval).map_err(|e| anyhow::anyhow!("{e}"))
}

fn file_label(sources: &Sources) -> String {
    sources.file.as_deref().map_or_else(
        || "environment".to_owned(),
        |p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        },
    )
}

/// `simulate`: loads the configuration(s) and the input, runs, returns the text to print
/// (the table of the first configuration, then the summary of every run).
pub fn run_command(args: &Args) -> anyhow::Result<String> {
    let config = load(&args.sources)?;
    let series = read_series(&args.input, &config)?;
    let main = simulate(&config, &series, &args.fleet);
    let mut out = render_table(&main);
    out.push('\n');
    let main_label = file_label(&args.sources);
    let write_svg = |runs: &[(&str, &Simulation)]| -> anyhow::Result<()> {
        if let Some(path) = &args.svg {
            std::fs::write(path, render_svg(runs))
                .with_context(|| format!("writing the chart {}", path.display()))?;
        }
        Ok(())
    };
    match &args.compare {
        None => {
            out.push_str(&render_summary(&[(&main_label, &main)]));
            write_svg(&[(&main_label, &main)])?;
        }
        Some(other) => {
            let sources = Sources {
                env: args.sources.env.clone(),
                file: Some(other.clone()),
            };
            let other_config =
                load(&sources).with_context(|| format!("--compare {}", other.display()))?;
            let other_series = read_series(&args.input, &other_config)?;
            let second = simulate(&other_config, &other_series, &args.fleet);
            let other_label = file_label(&sources);
            let runs = [
                (main_label.as_str(), &main),
                (other_label.as_str(), &second),
            ];
            out.push_str(&render_summary(&runs));
            write_svg(&runs)?;
        }
    }
    Ok(out)
}

/// The app's current fleet, counted as the planner counts it, from one machine list call (the
/// configuration needs the API token; the app name must not be a wildcard).
pub fn fleet_from_list(sources: &Sources) -> anyhow::Result<fas_expr::MachineCounts> {
    let config = config::load(sources, Purpose::Serve).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(
        !config.has_wildcard(),
        "--from-list needs one app: app-name `{}` has a wildcard",
        config.app_name
    );
    let client = crate::cli::build_client(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listed = runtime
        .block_on(client.list_machines(&config.app_name, &Default::default()))
        .map_err(|e| anyhow::anyhow!("listing the machines of `{}`: {e}", config.app_name))?;
    let machines: Vec<_> = listed.iter().map(crate::ops::to_domain).collect();
    Ok(crate::context::counts(&machines, &config.policy()))
}

fn read_series(input: &Input, config: &Config) -> anyhow::Result<Series> {
    match input {
        Input::Csv(path) => read_input(path, &config.metric_names()),
        Input::PrometheusRange { start, end, step } => {
            read_prometheus_range(config, *start, *end, *step)
        }
    }
}

/// One range query per collector (all must be Prometheus collectors), for the configuration's
/// app, merged by time.
fn read_prometheus_range(
    config: &Config,
    start: SystemTime,
    end: SystemTime,
    step: Duration,
) -> anyhow::Result<Series> {
    anyhow::ensure!(
        !config.has_wildcard(),
        "--prometheus-range needs one app: app-name `{}` has a wildcard",
        config.app_name
    );
    let mut collectors = Vec::new();
    for c in &config.collectors {
        match c {
            crate::config::CollectorConfig::Prometheus(p) => collectors.push(
                fas_collect::PrometheusCollector::new(p.clone())
                    .with_context(|| format!("prometheus collector `{}`", p.metric_name))?,
            ),
            other => anyhow::bail!(
                "--prometheus-range reads Prometheus collectors only: `{}` is not one (export its history to CSV)",
                other.metric_name()
            ),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (start, end) = (crate::status::unix(start), crate::status::unix(end));
    let histories = runtime.block_on(async {
        let mut out = Vec::new();
        for c in &collectors {
            let h = c
                .query_range(&config.app_name, start, end, step)
                .await
                .map_err(|e| anyhow::anyhow!(crate::report::error_chain(&e)))?;
            out.push(h);
        }
        anyhow::Ok(out)
    })?;
    Ok(input::merge_histories(&config.metric_names(), &histories))
}

fn read_input(path: &Path, metrics: &[String]) -> anyhow::Result<Series> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the input {}", path.display()))?;
    Ok(input::parse_csv(
        &path.display().to_string(),
        &text,
        metrics,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &[(&str, &str)]) -> Config {
        let base = [
            ("FAS_APP_NAME", "web"),
            ("FAS_PROMETHEUS_ADDRESS", "http://127.0.0.1:1"),
            ("FAS_PROMETHEUS_METRIC_NAME", "q"),
            ("FAS_PROMETHEUS_QUERY", "q"),
            ("FAS_INTERVAL", "10s"),
        ];
        let env = base
            .iter()
            .chain(settings)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config::load(&Sources { env, file: None }, Purpose::Eval).expect("valid")
    }

    fn series(rows: &[(u64, f64)]) -> Series {
        Series {
            metrics: vec!["q".into()],
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, &(t, v))| input::Sample {
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(t),
                    line: i + 2,
                    values: vec![v],
                })
                .collect(),
        }
    }

    const FLEET: FleetOptions = FleetOptions {
        machines: 4,
        started: 1,
        boot: Duration::ZERO,
        stop: Duration::ZERO,
    };

    #[test]
    fn follows_the_metric_and_counts_flaps() {
        let c = config(&[("FAS_STARTED_MACHINE_COUNT", "q")]);
        let sim = simulate(
            &c,
            &series(&[(0, 1.0), (10, 3.0), (20, 1.0), (30, 1.0)]),
            &FLEET,
        );
        let started: Vec<u32> = sim.rows.iter().map(|r| r.started).collect();
        assert_eq!(started, [1, 1, 3, 1]);
        assert_eq!(sim.summary.actions, 4, "start 2, stop 2");
        assert_eq!(sim.summary.flaps, 1);
        assert_eq!(sim.summary.machine_seconds, 60.0);
        assert_eq!(
            sim.summary.below_min_seconds, 10.0,
            "the tick that asked for 3 had 1"
        );
    }

    #[test]
    fn the_svg_has_one_chart_per_run_with_one_vertex_per_planned_tick() {
        let c = config(&[("FAS_STARTED_MACHINE_COUNT", "q")]);
        let sim = simulate(
            &c,
            &series(&[(0, 1.0), (10, 3.0), (20, 1.0), (30, 1.0)]),
            &FLEET,
        );
        assert_eq!(chart_points(&sim).len(), 4);
        let svg = render_svg(&[("a <b>.yml", &sim), ("other.yml", &sim)]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<svg class=\"chart\"").count(), 2);
        assert!(svg.matches("data-points=\"4\"").count() >= 2);
        assert!(
            svg.contains("a &lt;b&gt;.yml") && !svg.contains("a <b>"),
            "labels escaped"
        );
        let metric_line = svg
            .split("<polyline class=\"series metric\"")
            .nth(1)
            .expect("a metric line");
        let pts = metric_line
            .split(" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 4, "one vertex per planned tick");
    }

    #[test]
    fn a_gap_longer_than_ten_ticks_is_reported_not_filled() {
        let c = config(&[("FAS_STARTED_MACHINE_COUNT", "q")]);
        let sim = simulate(&c, &series(&[(0, 2.0), (120, 2.0)]), &FLEET);
        assert_eq!(sim.summary.ticks, 13);
        assert_eq!(
            sim.summary.gaps, 1,
            "only the tick at 110 s is more than 100 s old"
        );
        let gap = &sim.rows[11];
        assert_eq!(gap.values, None);
        assert_eq!(gap.note, "gap: no sample for 110s (last at line 2)");
        assert!(gap.actions.is_empty());
    }

    #[test]
    fn count_variables_read_the_modelled_fleet() {
        let c = config(&[(
            "FAS_STARTED_MACHINE_COUNT",
            "if q > 5 { started + 1 } else { started }",
        )]);
        let sim = simulate(&c, &series(&[(0, 9.0), (10, 9.0), (20, 0.0)]), &FLEET);
        let started: Vec<u32> = sim.rows.iter().map(|r| r.started).collect();
        assert_eq!(started, [1, 2, 3]);
    }

    #[test]
    fn the_scale_down_window_holds_through_a_dip() {
        let c = config(&[
            ("FAS_STARTED_MACHINE_COUNT", "q"),
            ("FAS_SCALE_DOWN_WINDOW", "30s"),
        ]);
        let sim = simulate(
            &c,
            &series(&[(0, 3.0), (10, 1.0), (20, 3.0), (30, 1.0)]),
            &FLEET,
        );
        assert_eq!(sim.summary.flaps, 0);
        assert_eq!(
            sim.summary.actions, 2,
            "one start of 2, nothing stopped in the window"
        );
    }
}
