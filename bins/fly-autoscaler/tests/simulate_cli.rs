//! `fly-autoscaler simulate`: the built binary on the committed example (`examples/simulate/simulate.yml`,
//! `examples/simulate/simulate-stable.yml`, `examples/simulate/simulate-load.csv`), checked against a snapshot of
//! its table and summary (`UPDATE_EXPECT=1` refreshes it), and a bad CSV's error.

mod support;

use std::path::PathBuf;

use expect_test::expect;
use support::run;

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/simulate")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn the_example_table_and_summary() {
    let (config, stable, input) = (
        example("simulate.yml"),
        example("simulate-stable.yml"),
        example("simulate-load.csv"),
    );
    let args = [
        "simulate",
        "--config",
        &config,
        "--input",
        &input,
        "--machines",
        "6",
        "--started",
        "1",
        "--boot",
        "20s",
        "--stop",
        "5s",
        "--compare",
        &stable,
    ];
    let (code, out, err) = run(&args, &[]);
    assert_eq!(code, Some(0), "{err}");
    expect![[r#"
        time                  queue_depth  eval started  plan started  started  created  actions
        2026-11-30T07:58:00Z            0             0             0        1        6  stop 1
        2026-11-30T07:58:15Z            0             0             0        0        6  -
        2026-11-30T07:58:30Z            0             0             0        0        6  -
        2026-11-30T07:58:45Z            0             0             0        0        6  -
        2026-11-30T07:59:00Z            0             0             0        0        6  -
        2026-11-30T07:59:15Z            0             0             0        0        6  -
        2026-11-30T07:59:30Z            0             0             0        0        6  -
        2026-11-30T07:59:45Z            0             0             0        0        6  -
        2026-11-30T08:00:00Z            3             1             1        0        6  start 1
        2026-11-30T08:00:15Z            4             1             1        0        6  -
        2026-11-30T08:00:30Z           38             4             4        1        6  start 3
        2026-11-30T08:00:45Z           52             6             6        1        6  start 2
        2026-11-30T08:01:00Z           47             5             5        4        6  stop 1
        2026-11-30T08:01:15Z            6             1             1        5        6  stop 4
        2026-11-30T08:01:30Z            5             1             1        1        6  -
        2026-11-30T08:01:45Z           49             5             5        1        6  start 4
        2026-11-30T08:02:00Z           55             6             6        1        6  start 1
        2026-11-30T08:02:15Z           41             5             5        5        6  stop 1
        2026-11-30T08:02:30Z           12             2             2        5        6  stop 3
        2026-11-30T08:02:45Z            4             1             1        2        6  stop 1
        2026-11-30T08:03:00Z            3             1             1        1        6  -
        2026-11-30T08:03:15Z            2             1             1        1        6  -
        2026-11-30T08:03:30Z            2             1             1        1        6  -
        2026-11-30T08:03:45Z            1             1             1        1        6  -

        summary                             simulate.yml  simulate-stable.yml
        ticks                                         24                   24
        machine-seconds started                      465                  780
        seconds with started < min started           105                   90
        scale actions                                 22                   12
        flaps (direction changes)                      4                    2
        gaps (ticks without data)                      0                    0
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_bad_csv_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "time,queue_depth\n2026-11-30T08:00:00Z,3\n2026-11-30T08:00:15Z,many\n",
    )
    .unwrap();
    let csv = csv.display().to_string();
    let config = example("simulate.yml");
    let (code, out, err) = run(&["simulate", "--config", &config, "--input", &csv], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        err.trim_end(),
        format!("ERROR: {csv}:3:2: bad number `many` for metric `queue_depth`")
    );
    std::fs::write(dir.path().join("bad.csv"), "time,queue\n1,2\n").unwrap();
    let (code, _, err) = run(&["simulate", "--config", &config, "--input", &csv], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "ERROR: {csv}:1:2: unknown metric `queue`: the configuration's metrics are `queue_depth`"
        )
    );
}

#[test]
fn svg_charts_both_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("chart.svg");
    let (config, stable, input) = (
        example("simulate.yml"),
        example("simulate-stable.yml"),
        example("simulate-load.csv"),
    );
    let svg_arg = svg.display().to_string();
    let args = [
        "simulate",
        "--config",
        &config,
        "--input",
        &input,
        "--machines",
        "6",
        "--started",
        "1",
        "--compare",
        &stable,
        "--svg",
        &svg_arg,
    ];
    let (code, _out, err) = run(&args, &[]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&svg).expect("the chart is written");
    // It parses as XML: one chart per configuration, one line per series in each (started,
    // created, min and max started, the metric), each line with one vertex per planned tick.
    let doc = roxmltree::Document::parse(&text).expect("the chart is XML");
    let charts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg") && n.attribute("class") == Some("chart"))
        .collect();
    assert_eq!(charts.len(), 2);
    for chart in &charts {
        let points: usize = chart.attribute("data-points").unwrap().parse().unwrap();
        let lines: Vec<_> = chart
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .collect();
        let mut classes: Vec<&str> = lines
            .iter()
            .map(|l| l.attribute("class").unwrap())
            .collect();
        classes.sort();
        assert_eq!(
            classes,
            [
                "series metric",
                "series step created",
                "series step started",
                "series step target-started-max",
                "series step target-started-min",
            ]
        );
        for line in lines {
            let vertices = line.attribute("points").unwrap().split(' ').count();
            let expected = if line.attribute("class") == Some("series metric") {
                points
            } else {
                2 * points - 1
            };
            assert_eq!(vertices, expected);
        }
    }
    assert!(text.contains("simulate.yml") && text.contains("simulate-stable.yml"));
    // The chart shown in README.md and docs/simulate.md (`UPDATE_EXPECT=1` refreshes it).
    expect_test::expect_file!["../../../docs/simulate-example.svg"].assert_eq(&text);
}

/// `--prometheus-range`: the history comes from a real Prometheus (Debian's, scraping a local
/// exporter) through the configuration's query, one range query per collector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_range_reads_the_history_from_a_real_prometheus() {
    let exporter = fas_testkit::Exporter::start().await;
    exporter.set("queue_depth{queue=\"a\"} 42\nqueue_depth{queue=\"b\"} 8\n");
    let prom = fas_testkit::PromServer::start(&[exporter.addr()]).await;
    prom.wait_for("queue_depth").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = format!("{}..{}", now - 20, now);
    let url = prom.url();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let env = [
            ("FAS_APP_NAME", "web"),
            ("FAS_PROMETHEUS_ADDRESS", url.as_str()),
            ("FAS_PROMETHEUS_METRIC_NAME", "queue_depth"),
            ("FAS_PROMETHEUS_QUERY", "sum(queue_depth)"),
            ("FAS_STARTED_MACHINE_COUNT", "ceil(queue_depth / 10)"),
            ("FAS_INTERVAL", "2s"),
        ];
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let args = [
            "simulate",
            "--prometheus-range",
            &range,
            "--step",
            "1s",
            "--machines",
            "6",
            "--started",
            "1",
        ];
        run(&args, &env)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("50"),
        "the summed value is in the table:\n{out}"
    );
    assert!(out.contains("start 4"), "1 started, target 5:\n{out}");
    assert!(out.contains("summary"), "{out}");
    // Temporal collectors have no range query: a clear error.
    let (code, _, err) = run(
        &["simulate", "--prometheus-range", "10..20"],
        &[
            ("FAS_APP_NAME".to_owned(), "web".to_owned()),
            ("FAS_TEMPORAL_ADDRESS".to_owned(), "127.0.0.1:1".to_owned()),
            ("FAS_TEMPORAL_METRIC_NAME".to_owned(), "wf".to_owned()),
            ("FAS_STARTED_MACHINE_COUNT".to_owned(), "wf".to_owned()),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Prometheus collectors only") && err.contains("`wf`"),
        "{err}"
    );
}

/// `--from-list`: the modelled fleet starts as the app's current one, counted from one list call
/// (here against the simulator: 5 machines, 2 started, 1 in another process group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_list_starts_from_the_apps_current_fleet() {
    use fas_flysim::MachineSpec;
    let sim = support::sim().await;
    support::add_machines(&sim, "web", 2, &MachineSpec::new().state("started"));
    support::add_machines(&sim, "web", 2, &MachineSpec::new().state("stopped"));
    sim.add_machine(
        "web",
        MachineSpec::new()
            .state("started")
            .process_group(Some("worker")),
    );
    let (config, input) = (example("simulate.yml"), example("simulate-load.csv"));
    let env = vec![
        ("FAS_API_TOKEN".to_owned(), sim.token().to_owned()),
        ("FLY_FLAPS_BASE_URL".to_owned(), sim.base_url()),
        ("FLY_API_BASE_URL".to_owned(), sim.base_url()),
    ];
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(
            &[
                "simulate",
                "--config",
                &config,
                "--input",
                &input,
                "--from-list",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{err}");
    let first = out.lines().nth(1).expect("a first row");
    let cells: Vec<&str> = first.split_whitespace().collect();
    // time, queue_depth, eval started, plan started, started, created, actions…
    assert_eq!((cells[4], cells[5]), ("2", "4"), "{first}");
    assert_eq!(sim.count_route("list"), 1, "one list call, nothing else");
    assert!(support::mutations(&sim).is_empty());
}
