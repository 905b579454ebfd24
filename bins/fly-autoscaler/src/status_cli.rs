//! `fly-autoscaler status [--address URL]`: reads `GET /status` from a running `serve` (its
//! metrics listener) and prints the decision record as a table: one row per app (last tick,
//! trigger, outcome and decision, metrics, targets, started/created machines, next tick), then
//! the last actions of each app.
//!
//! One plain HTTP/1.1 GET through hyper-util's client, bounded by [`TIMEOUT`] from connecting to
//! the last byte; an error names the address. Remote text is printed without control characters
//! and long cells are cut, so the table stays a table in any terminal.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The address `status` reads when none is given (the default metrics listener).
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:9090";
/// The whole request (connect, answer, body) must finish within this.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `/status` body read.
pub const MAX_BODY: usize = 64 << 20;
/// Actions listed per app under the table.
pub const LAST_ACTIONS: usize = 5;
/// Cells longer than this (in characters) are cut with `…`.
const MAX_CELL: usize = 60;

/// The command: fetch `address`'s `/status`, print the table.
pub async fn run(address: &str) -> anyhow::Result<()> {
    let status = fetch(address, TIMEOUT).await?;
    print!("{}", render_table(&status, SystemTime::now()));
    Ok(())
}

/// The `/status` URL of `address` (`http://host:port`, a trailing `/` or no scheme accepted).
pub fn status_url(address: &str) -> anyhow::Result<Uri> {
    let address = address.trim();
    let base = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let url = format!("{}/status", base.trim_end_matches('/'));
    let uri: Uri = url
        .parse()
        .with_context(|| format!("invalid address {address:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("invalid address {address:?}: the status listener speaks plain http://");
    }
    Ok(uri)
}

/// `GET {address}/status` within `timeout`, parsed as JSON.
pub async fn fetch(address: &str, timeout: Duration) -> anyhow::Result<Value> {
    let uri = status_url(address)?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let request = async {
        let resp = client
            .get(uri.clone())
            .await
            .with_context(|| format!("cannot reach fly-autoscaler at {address} ({uri})"))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow!("reading the answer of {uri}: {e}"))?
            .to_bytes();
        anyhow::Ok((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, request).await.map_err(|_| {
        anyhow!(
            "no answer from fly-autoscaler at {address} ({uri}) within {}",
            humantime::format_duration(timeout)
        )
    })??;
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        bail!("{uri} answered {status}: {}", cut(&clean(text.trim()), 200));
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("the answer of {uri} is not the status JSON"))
}

/// Remote text without control characters (newlines and tabs become spaces).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `s` cut to `max` characters, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A cell from remote text: cleaned and cut.
fn cell(s: &str) -> String {
    cut(&clean(s), MAX_CELL)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// `"2"`, `"1-5"` or `"-"` for a `{min, max}` bounds value.
fn bounds(b: &Value) -> String {
    match (b["min"].as_u64(), b["max"].as_u64()) {
        (Some(min), Some(max)) if min == max => min.to_string(),
        (Some(min), Some(max)) => format!("{min}-{max}"),
        _ => "-".to_owned(),
    }
}

fn targets(t: &Value) -> String {
    if t.is_null() {
        return String::new();
    }
    format!(
        "started {}, created {}",
        bounds(&t["started"]),
        bounds(&t["created"])
    )
}

/// The time of day of an RFC 3339 time and how far it is from `now` (`12:00:03 (3s ago)`).
fn when(at: &str, now: SystemTime) -> String {
    let Ok(t) = humantime::parse_rfc3339_weak(at) else {
        return cell(at);
    };
    let day = humantime::format_rfc3339_seconds(t).to_string();
    let clock = day.get(11..19).unwrap_or(&day).to_owned();
    match crate::page::relative(at, now) {
        Some(rel) => format!("{clock} ({rel})"),
        None => clock,
    }
}

fn outcome(last: &Value) -> String {
    let mut s = text(last, "outcome").to_owned();
    if let Some(d) = last["decision"].as_str()
        && d != s
    {
        let _ = write!(s, " ({d})");
    }
    if last["dry_run"].as_bool() == Some(true) {
        s.push_str(" dry run");
    }
    if let Some(r) = last["reason"].as_str() {
        let _ = write!(s, ": {r}");
    }
    cell(&s)
}

fn metrics(last: &Value) -> String {
    let Some(m) = last["metrics"].as_object() else {
        return String::new();
    };
    let parts: Vec<String> = m
        .iter()
        .map(|(name, rec)| match rec["value"].as_f64() {
            Some(v) if rec["fallback"].is_string() => {
                format!("{name}={} ({})", number(v), text(rec, "fallback"))
            }
            Some(v) => format!("{name}={}", number(v)),
            None if rec["error"].is_string() => format!("{name}=error"),
            None => format!("{name}=-"),
        })
        .collect();
    cell(&parts.join(", "))
}

fn counts(last: &Value) -> String {
    let c = &last["counts"];
    match (c["started"].as_u64(), c["created"].as_u64()) {
        (Some(s), Some(cr)) => match c["failed"].as_u64() {
            Some(f) if f > 0 => format!("{s}/{cr} ({f} failed)"),
            _ => format!("{s}/{cr}"),
        },
        _ => String::new(),
    }
}

/// Lays `rows` out in columns (two spaces apart), the first row being the header.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                let pad = widths[i] - c.chars().count();
                let _ = write!(line, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table for a `/status` answer (`{"generated_at": …, "apps": [AppStatus…]}`). Relative
/// times are taken from the answer's `generated_at` (the server's clock), else from `now`.
pub fn render_table(status: &Value, now: SystemTime) -> String {
    let generated = text(status, "generated_at");
    let now = humantime::parse_rfc3339_weak(generated).unwrap_or(now);
    let apps = status["apps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut out = String::new();
    if apps.is_empty() {
        out.push_str("No app has been reconciled yet.\n");
        return out;
    }
    // With coordination (`postgres-url`): this replica, and who holds each app.
    let replica = &status["replica"];
    if !replica.is_null() {
        let owned = replica["owned"].as_array().map_or(0, Vec::len);
        let _ = writeln!(
            out,
            "Replica {} ({} live, session {}): holds {owned} of {} apps{}.\n",
            cell(text(replica, "id")),
            replica["replicas"].as_u64().unwrap_or(0),
            if replica["confirmed"] == true {
                "confirmed"
            } else {
                "NOT confirmed: acting on nothing"
            },
            apps.len(),
            if replica["store"] == true {
                "; state kept in PostgreSQL"
            } else {
                ""
            },
        );
    }
    let holder = |app: &str| -> String {
        match replica["holders"][app].as_str() {
            Some(id) if id == text(replica, "id") => "this replica".to_owned(),
            Some(id) => cell(id),
            None => "nobody".to_owned(),
        }
    };
    let mut header = vec![
        "APP",
        "LAST TICK",
        "TRIGGER",
        "OUTCOME",
        "METRICS",
        "TARGETS",
        "STARTED/CREATED",
        "NEXT TICK",
    ];
    if !replica.is_null() {
        header.push("HOLDER");
    }
    let mut rows = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    for app in apps {
        let last = &app["last"];
        let next = &app["next_tick"];
        let last_tick = if last.is_null() {
            "no tick yet".to_owned()
        } else {
            let at = last["last_at"].as_str().unwrap_or(text(last, "at"));
            let mut s = when(at, now);
            if let Some(r) = last["repeated"].as_u64() {
                let _ = write!(s, " x{}", r + 1);
            }
            s
        };
        let next_tick = if next.is_null() {
            "-".to_owned()
        } else {
            format!(
                "{} {}",
                when(text(next, "at"), now),
                cell(text(next, "why"))
            )
        };
        let mut row = vec![
            cell(text(app, "app")),
            last_tick,
            cell(text(last, "trigger")),
            outcome(last),
            metrics(last),
            targets(&last["stabilized"]),
            counts(last),
            next_tick,
        ];
        if !replica.is_null() {
            row.push(holder(text(app, "app")));
        }
        rows.push(row);
    }
    out.push_str(&columns(&rows));

    let mut actions = vec![
        ["APP", "AT", "ACTION", "OUTCOME", "REASON"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for app in apps {
        let history = app["history"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let recent = history
            .iter()
            .flat_map(|r| {
                r["actions"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(move |a| (r, a))
            })
            .take(LAST_ACTIONS);
        for (r, a) in recent {
            let mut result = text(a, "outcome").to_owned();
            if a["spare"].as_bool() == Some(true) {
                result.push_str(" (spare)");
            }
            if let Some(e) = a["error"].as_str() {
                let _ = write!(result, ": {e}");
            }
            actions.push(vec![
                cell(text(app, "app")),
                when(text(r, "at"), now),
                cell(text(a, "action")),
                cell(&result),
                cell(text(a, "reason")),
            ]);
        }
    }
    out.push('\n');
    if actions.len() == 1 {
        out.push_str("No action in the recorded ticks.\n");
    } else {
        out.push_str("Last actions (newest first):\n");
        out.push_str(&columns(&actions));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::json!({
            "generated_at": "2026-05-20T12:00:10.000Z",
            "apps": [{
                "app": "web",
                "last": {
                    "at": "2026-05-20T12:00:07.000Z",
                    "duration_ms": 4.2,
                    "trigger": "interval",
                    "outcome": "scaled",
                    "decision": "start",
                    "metrics": {"queue_depth": {"value": 20.0}},
                    "evaluated": {"created": null, "started": {"min": 2, "max": 2}},
                    "stabilized": {"created": {"min": 1, "max": 5}, "started": {"min": 2, "max": 2}},
                    "counts": {"created": 3, "started": 0, "failed": 0, "by_state": {}, "unreachable": 0, "other_group": 0},
                    "actions": [{"kind": "start", "action": "start m1", "reason": "started 0 < min 2", "outcome": "ok"}],
                    "notes": []
                },
                "next_tick": {"at": "2026-05-20T12:00:22.000Z", "why": "interval"},
                "history": [{
                    "at": "2026-05-20T12:00:07.000Z",
                    "actions": [
                        {"kind": "start", "action": "start m1", "reason": "started 0 < min 2", "outcome": "ok"},
                        {"kind": "start", "action": "start m2", "reason": "started 0 < min 2", "outcome": "failed", "error": "boom\n\u{1b}[31m"}
                    ]
                }],
                "chart": []
            }, {
                "app": "api\u{1b}[2J",
                "last": {
                    "at": "2026-05-20T12:00:09.000Z",
                    "trigger": "new",
                    "outcome": "skipped",
                    "reason": "collecting queue_depth: prometheus answered 500",
                    "metrics": {"queue_depth": {"error": "prometheus answered 500"}},
                    "actions": [],
                    "notes": []
                },
                "next_tick": null,
                "history": [],
                "chart": []
            }]
        })
    }

    #[test]
    fn one_row_per_app_with_its_decision() {
        let table = render_table(&sample(), SystemTime::UNIX_EPOCH);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("APP  "), "{table}");
        assert!(lines[0].contains("NEXT TICK"));
        let web = lines[1];
        for part in [
            "web",
            "12:00:07 (3s ago)",
            "interval",
            "scaled (start)",
            "queue_depth=20",
            "started 2, created 1-5",
            "0/3",
            "12:00:22 (in 12s) interval",
        ] {
            assert!(web.contains(part), "{part:?} in {web:?}");
        }
        let api = lines[2];
        assert!(api.contains("skipped: collecting queue_depth"), "{api}");
        assert!(api.contains("queue_depth=error"), "{api}");
        assert!(table.contains("Last actions"));
        assert!(table.contains("start m2  failed: boom"), "{table}");
        assert!(
            !table.contains('\u{1b}'),
            "no terminal escape from remote text"
        );
        // Columns line up: every row's OUTCOME starts at the header's column.
        let col = lines[0].find("OUTCOME").unwrap();
        assert_eq!(&web[col..col + 6], "scaled");
    }

    #[test]
    fn with_coordination_each_app_names_its_holder() {
        let mut status = sample();
        status["replica"] = serde_json::json!({
            "id": "aaa111", "host": "db:5432", "confirmed": true, "replicas": 2,
            "owned": ["web"], "holders": {"web": "aaa111", "worker": "bbb222"},
            "unheld": [], "store": true
        });
        let table = render_table(&status, SystemTime::UNIX_EPOCH);
        let first = table.lines().next().unwrap();
        assert!(
            first.starts_with("Replica aaa111 (2 live, session confirmed): holds 1 of"),
            "{table}"
        );
        assert!(first.contains("state kept in PostgreSQL"), "{table}");
        assert!(table.contains("HOLDER"), "{table}");
        let web = table.lines().find(|l| l.starts_with("web ")).unwrap();
        assert!(web.trim_end().ends_with("this replica"), "{table}");
        // Without coordination there is no holder column.
        let plain = render_table(&sample(), SystemTime::UNIX_EPOCH);
        assert!(
            !plain.contains("HOLDER") && !plain.contains("Replica"),
            "{plain}"
        );
    }

    #[test]
    fn empty_board() {
        let table = render_table(
            &serde_json::json!({"generated_at": "x", "apps": []}),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(table, "No app has been reconciled yet.\n");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            status_url("http://127.0.0.1:9090").unwrap().to_string(),
            "http://127.0.0.1:9090/status"
        );
        assert_eq!(
            status_url("127.0.0.1:9090/").unwrap().to_string(),
            "http://127.0.0.1:9090/status"
        );
        let err = status_url("https://x:1").unwrap_err().to_string();
        assert!(err.contains("https://x:1"), "{err}");
    }
}
