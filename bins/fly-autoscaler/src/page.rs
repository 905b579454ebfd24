//! The status page at `GET /`: the decision record of [`crate::status`] as one small HTML
//! document, hand-written, with no script and no external asset. It reloads itself every
//! [`REFRESH_SECS`] seconds (`<meta http-equiv="refresh">`).
//!
//! One table row per app (last tick, trigger, outcome and decision, metrics, targets, started and
//! created machines, next tick), and under it the app's chart of the last hour (from
//! [`AppStatus::chart`]) with the last actions and the plan's notes.
//!
//! The chart is an inline SVG; the x axis ends at `now` and goes back to the oldest point (at most
//! [`CHART_SPAN`], one hour; at least [`MIN_SPAN`], so a young app's points are not squeezed
//! into the right edge). Two scales share it:
//! - machines (left axis, from 0 to the largest count or bound seen): started and created
//!   machines and the target bounds (min/max started, min/max created) are step lines, each value
//!   held until the next point;
//! - metrics: each metric is normalised to its own range (from `min(0, lowest)` to its highest
//!   value over the chart, both shown in the legend) and drawn as a polyline with exactly one
//!   vertex per chart point that has a finite value for it.
//!
//! Every series carries `data-points="N"` (the chart points it was drawn from) and the `<svg>`
//! carries `data-points` with the chart's length, so a test can count them.
//!
//! Everything inserted into the document (app names, metric names, errors, reasons, notes: user
//! or remote data) goes through [`escape`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use fas_reconcile::{Bounds, Targets};

use crate::status::{AppStatus, CHART_SPAN, ChartPoint, TickRecord};

/// Seconds between the page's reloads.
pub const REFRESH_SECS: u32 = 10;
/// The shortest time the chart's x axis shows.
pub const MIN_SPAN: Duration = Duration::from_secs(60);
/// Actions listed per app under its chart.
pub const LAST_ACTIONS: usize = 8;

/// Width of one chart ([`chart_svg`]), in SVG units.
pub const WIDTH: f64 = 960.0;
/// Height of one chart ([`chart_svg`]), in SVG units.
pub const HEIGHT: f64 = 180.0;
/// Left margin (machine axis labels), top and bottom margins.
const LEFT: f64 = 36.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 20.0;
const PALETTE: &[&str] = &[
    "#d9480f", "#7048e8", "#0c8599", "#c2255c", "#5c940d", "#e67700", "#1864ab", "#862e9c",
];
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#212529}\
h1{font-size:1.4em;margin:0 0 .2em}\
.meta{color:#666;margin:0 0 1em}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;vertical-align:top;padding:.35em .6em;border-bottom:1px solid #dee2e6}\
th{background:#f1f3f5;font-weight:600}\
tr.app td{border-bottom:none;background:#f8f9fa}\
td.chart{padding-bottom:1em}\
.o-scaled{color:#2b8a3e;font-weight:600}.o-failed{color:#c92a2a;font-weight:600}\
.o-skipped{color:#e67700;font-weight:600}.o-would_scale{color:#1864ab;font-weight:600}\
.err{color:#c92a2a}.dim{color:#868e96}\
ul{margin:.3em 0;padding-left:1.2em}\
svg{background:#fff;border:1px solid #dee2e6;max-width:100%;height:auto}\
.legend span{margin-right:1em;white-space:nowrap}\
.sw{display:inline-block;width:1.2em;height:.25em;vertical-align:middle;margin-right:.3em}";

/// Escapes `s` for HTML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `at` (RFC 3339) relative to `now`: `"12s ago"`, `"in 3s"` (whole seconds). Shared with
/// `fly-autoscaler status`.
pub fn relative(at: &str, now: SystemTime) -> Option<String> {
    let t = humantime::parse_rfc3339_weak(at).ok()?;
    let (d, past) = match now.duration_since(t) {
        Ok(d) => (d, true),
        Err(e) => (e.duration(), false),
    };
    let d = Duration::from_secs(d.as_secs());
    let human = if d.is_zero() {
        "0s".to_owned()
    } else {
        humantime::format_duration(d).to_string()
    };
    Some(if past {
        format!("{human} ago")
    } else {
        format!("in {human}")
    })
}

/// A time cell: the RFC 3339 time in a `<time>` element, and how long ago (or until) it is.
fn time_cell(out: &mut String, at: &str, now: SystemTime) {
    let _ = write!(out, "<time datetime=\"{0}\">{0}</time>", escape(at));
    if let Some(rel) = relative(at, now) {
        let _ = write!(out, "<br><span class=\"dim\">{}</span>", escape(&rel));
    }
}

fn bounds(b: Option<Bounds>) -> String {
    match b {
        None => "–".to_owned(),
        Some(b) if b.min == b.max => b.min.to_string(),
        Some(b) => format!("{}–{}", b.min, b.max),
    }
}

fn targets_text(t: &Targets) -> String {
    format!(
        "started {} · created {}",
        bounds(t.started),
        bounds(t.created)
    )
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

/// Renders the whole page for `apps` at `now`.
pub fn render(apps: &[AppStatus], now: SystemTime) -> String {
    render_with(apps, None, now)
}

/// What the page shows of the coordination of replicas (`postgres-url`).
#[derive(Debug, Clone, Default)]
pub struct ReplicaView {
    /// This replica's id.
    pub id: String,
    /// Whether its session is confirmed (it may act).
    pub confirmed: bool,
    /// Live replicas at the last count.
    pub replicas: usize,
    /// Who held each app's lock at the last round (app → replica id).
    pub holders: std::collections::BTreeMap<String, String>,
}

/// [`render`], with a line naming this replica and, per app, who holds it when coordination is
/// on.
pub fn render_with(apps: &[AppStatus], replica: Option<&ReplicaView>, now: SystemTime) -> String {
    let mut out = String::with_capacity(4096 + apps.len() * 8192);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>fly-autoscaler status</title><style>{STYLE}</style></head>\n<body>\
         <h1>fly-autoscaler</h1><p class=\"meta\">{} app{} · generated <time datetime=\"{generated}\">{generated}</time> \
         · refreshes every {REFRESH_SECS} s · JSON: <a href=\"/status\">/status</a> · \
         <a href=\"/metrics\">/metrics</a></p>\n",
        apps.len(),
        if apps.len() == 1 { "" } else { "s" },
        generated = escape(&crate::status::rfc3339(now)),
    );
    if let Some(r) = replica {
        let held = r.holders.values().filter(|id| **id == r.id).count();
        let _ = writeln!(
            out,
            "<p class=\"meta\" id=\"replica\">Replica <code>{}</code> · {} live · session {} · \
             holds {held} of {} app{}</p>",
            escape(&r.id),
            r.replicas,
            if r.confirmed {
                "confirmed"
            } else {
                "<span class=\"err\">not confirmed: acting on nothing</span>"
            },
            apps.len(),
            if apps.len() == 1 { "" } else { "s" },
        );
    }
    if apps.is_empty() {
        out.push_str("<p id=\"empty\">No app has been reconciled yet.</p>\n");
    } else {
        out.push_str(
            "<table id=\"apps\"><thead><tr><th>App</th><th>Last tick</th><th>Trigger</th>\
             <th>Outcome</th><th>Metrics</th><th>Targets</th><th>Started / created</th>\
             <th>Next tick</th></tr></thead>\n<tbody>\n",
        );
        for app in apps {
            app_rows(&mut out, app, replica, now);
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn app_rows(out: &mut String, app: &AppStatus, replica: Option<&ReplicaView>, now: SystemTime) {
    let name = escape(&app.app);
    let _ = write!(
        out,
        "<tr class=\"app\" data-app=\"{name}\"><td><strong>{name}</strong>"
    );
    if let Some(r) = replica {
        let holder = match r.holders.get(&app.app) {
            Some(id) if *id == r.id => "held here".to_owned(),
            Some(id) => format!("held by <code>{}</code>", escape(id)),
            None => "held by nobody".to_owned(),
        };
        let _ = write!(out, "<br><span class=\"dim holder\">{holder}</span>");
    }
    out.push_str("</td>");
    match &app.last {
        None => out.push_str(
            "<td class=\"dim\">no tick yet</td><td></td><td></td><td></td><td></td><td></td>",
        ),
        Some(last) => last_cells(out, last, now),
    }
    out.push_str("<td>");
    match &app.next_tick {
        Some(next) => {
            time_cell(out, &next.at, now);
            let _ = write!(out, "<br><span class=\"dim\">{}</span>", escape(next.why));
        }
        None => out.push_str("<span class=\"dim\">–</span>"),
    }
    out.push_str("</td></tr>\n");
    out.push_str("<tr class=\"detail\"><td colspan=\"8\" class=\"chart\">");
    chart(out, app, now);
    actions(out, app);
    if let Some(last) = &app.last
        && !last.notes.is_empty()
    {
        out.push_str("<div class=\"notes\"><strong>Notes</strong><ul>");
        for n in &last.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul></div>");
    }
    out.push_str("</td></tr>\n");
}

fn last_cells(out: &mut String, last: &TickRecord, now: SystemTime) {
    out.push_str("<td>");
    time_cell(out, last.last_at.as_deref().unwrap_or(&last.at), now);
    let _ = write!(
        out,
        "<br><span class=\"dim\">{} ms",
        number((last.duration_ms * 10.0).round() / 10.0)
    );
    if last.repeated > 0 {
        let _ = write!(out, " · same decision ×{}", last.repeated + 1);
    }
    out.push_str("</span></td>");
    let _ = write!(out, "<td>{}</td>", escape(last.trigger));
    let _ = write!(
        out,
        "<td><span class=\"outcome o-{0}\">{0}</span>",
        escape(last.outcome)
    );
    if let Some(d) = last.decision.filter(|d| *d != last.outcome) {
        let _ = write!(out, " <span class=\"decision\">({})</span>", escape(d));
    }
    if last.dry_run {
        out.push_str(" <span class=\"dim\">dry run</span>");
    }
    if let Some(reason) = &last.reason {
        let _ = write!(out, "<br><span class=\"err\">{}</span>", escape(reason));
    }
    out.push_str("</td><td>");
    for (name, m) in &last.metrics {
        let _ = write!(out, "<div>{} = ", escape(name));
        match (m.value, &m.error) {
            (Some(v), _) => out.push_str(&escape(&number(v))),
            (None, Some(e)) => {
                let _ = write!(out, "<span class=\"err\">{}</span>", escape(e));
            }
            (None, None) => out.push('–'),
        }
        if let Some(f) = &m.fallback {
            let _ = write!(out, " <span class=\"dim\">(fallback {})</span>", escape(f));
        }
        out.push_str("</div>");
    }
    out.push_str("</td><td>");
    if let Some(t) = &last.stabilized {
        let _ = write!(out, "<div>{}</div>", escape(&targets_text(t)));
    }
    if let Some(t) = &last.evaluated
        && last.stabilized.as_ref() != Some(t)
    {
        let _ = write!(
            out,
            "<div class=\"dim\">evaluated: {}</div>",
            escape(&targets_text(t))
        );
    }
    out.push_str("</td><td>");
    if let Some(c) = &last.counts {
        let _ = write!(out, "{} / {}", c.started, c.created);
        if c.failed > 0 {
            let _ = write!(out, " <span class=\"err\">({} failed)</span>", c.failed);
        }
    }
    out.push_str("</td>");
}

/// The last [`LAST_ACTIONS`] actions of the app's history, newest first.
fn actions(out: &mut String, app: &AppStatus) {
    let recent: Vec<_> = app
        .history
        .iter()
        .flat_map(|r| r.actions.iter().map(move |a| (r, a)))
        .take(LAST_ACTIONS)
        .collect();
    if recent.is_empty() {
        return;
    }
    out.push_str("<div class=\"actions\"><strong>Last actions</strong><ul>");
    for (r, a) in recent {
        let _ = write!(
            out,
            "<li><time datetime=\"{at}\">{at}</time> {action}: <span class=\"outcome o-{outcome}\">{outcome}</span>",
            at = escape(&r.at),
            action = escape(&a.action),
            outcome = escape(a.outcome),
        );
        if a.spare {
            out.push_str(" (spare)");
        }
        if let Some(e) = &a.error {
            let _ = write!(out, " <span class=\"err\">{}</span>", escape(e));
        }
        if !a.reason.is_empty() {
            let _ = write!(out, " <span class=\"dim\">— {}</span>", escape(&a.reason));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></div>");
}

/// Maps times and values to SVG coordinates.
struct Frame {
    start: f64,
    span: f64,
}

impl Frame {
    fn x(&self, t: f64) -> f64 {
        let f = ((t - self.start) / self.span).clamp(0.0, 1.0);
        LEFT + f * (WIDTH - LEFT - 4.0)
    }

    /// `f` in 0..=1 (bottom to top).
    fn y(f: f64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        TOP + (1.0 - f.clamp(0.0, 1.0)) * plot
    }
}

fn coord(out: &mut String, x: f64, y: f64) {
    if !out.is_empty() {
        out.push(' ');
    }
    let _ = write!(out, "{x:.1},{y:.1}");
}

/// A step line through `(t, value)`: each value held until the next point (2N-1 vertices).
fn step_points(frame: &Frame, values: &[(f64, f64)], max: f64) -> String {
    let mut pts = String::new();
    for (i, &(t, v)) in values.iter().enumerate() {
        let y = Frame::y(v / max);
        if i > 0 {
            coord(&mut pts, frame.x(t), Frame::y(values[i - 1].1 / max));
        }
        coord(&mut pts, frame.x(t), y);
    }
    pts
}

struct Step {
    class: &'static str,
    label: &'static str,
    color: &'static str,
    dashed: bool,
    value: fn(&ChartPoint) -> Option<u32>,
}

const STEPS: &[Step] = &[
    Step {
        class: "started",
        label: "started",
        color: "#2b8a3e",
        dashed: false,
        value: |p| Some(p.started),
    },
    Step {
        class: "created",
        label: "created",
        color: "#1971c2",
        dashed: false,
        value: |p| Some(p.created),
    },
    Step {
        class: "target-started-min",
        label: "min started",
        color: "#69db7c",
        dashed: true,
        value: |p| p.targets.started.map(|b| b.min),
    },
    Step {
        class: "target-started-max",
        label: "max started",
        color: "#2b8a3e",
        dashed: true,
        value: |p| p.targets.started.map(|b| b.max),
    },
    Step {
        class: "target-created-min",
        label: "min created",
        color: "#74c0fc",
        dashed: true,
        value: |p| p.targets.created.map(|b| b.min),
    },
    Step {
        class: "target-created-max",
        label: "max created",
        color: "#1971c2",
        dashed: true,
        value: |p| p.targets.created.map(|b| b.max),
    },
];

/// The app's chart of the last hour (see the module docs for the scales).
fn chart(out: &mut String, app: &AppStatus, now: SystemTime) {
    let points: Vec<ChartPoint> = app.chart.iter().cloned().collect();
    let end = crate::status::unix(now);
    let span = points
        .first()
        .map_or(0.0, |p| end - p.t)
        .clamp(MIN_SPAN.as_secs_f64(), CHART_SPAN.as_secs_f64());
    let title = format!(
        "{}: the last {} ({} points)",
        app.app,
        ago(span),
        points.len()
    );
    let (svg, legend) = chart_svg(&app.app, &title, &points, end - span, end, "now");
    out.push_str(&svg);
    if !legend.is_empty() {
        let _ = write!(
            out,
            "<div class=\"legend\">{legend}<span class=\"dim\">machines on the left axis; \
             each metric scaled to its own range</span></div>"
        );
    }
}

/// A chart of `points` from `start` to `end` (unix seconds) as a standalone `<svg>` element, and
/// its legend as HTML. Started and created machines and the target bounds are step lines on the
/// left axis (machines); each metric is a polyline scaled to its own range. The time axis is
/// labelled back from `end_label` (`now` on the status page). Used by the status page and by
/// `fly-autoscaler simulate --svg`.
pub fn chart_svg(
    name: &str,
    title: &str,
    points: &[ChartPoint],
    start: f64,
    end: f64,
    end_label: &str,
) -> (String, String) {
    let mut out = String::new();
    let span = (end - start).max(1.0);
    let frame = Frame { start, span };
    let _ = write!(
        out,
        "<svg class=\"chart\" data-app=\"{}\" data-points=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(name),
        points.len()
    );
    let _ = write!(out, "<title>{}</title>", escape(title));
    // Machine scale: 0 ..= the largest count or bound seen (at least 1).
    let steps: Vec<(&Step, Vec<(f64, f64)>)> = STEPS
        .iter()
        .map(|s| {
            let values = points
                .iter()
                .filter_map(|p| (s.value)(p).map(|v| (p.t, f64::from(v))))
                .collect();
            (s, values)
        })
        .collect();
    let max_machines = steps
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, v)| *v))
        .fold(1.0_f64, f64::max);
    axes(&mut out, &frame, max_machines, end_label);
    if points.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#868e96\">no data yet</text>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
    }
    let mut legend = String::new();
    for (s, values) in &steps {
        if values.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<polyline class=\"series step {}\" data-points=\"{}\" fill=\"none\" stroke=\"{}\" \
             stroke-width=\"{}\"{} points=\"{}\"/>",
            s.class,
            values.len(),
            s.color,
            if s.dashed { "1.5" } else { "2" },
            if s.dashed {
                " stroke-dasharray=\"5 3\""
            } else {
                ""
            },
            step_points(&frame, values, max_machines)
        );
        let _ = write!(
            legend,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            s.color, s.label
        );
    }
    // Metrics: each normalised to its own range, one vertex per point.
    let mut names: Vec<&str> = points.iter().flat_map(|p| p.metrics.keys()).collect();
    names.sort();
    names.dedup();
    for (i, name) in names.into_iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let values: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.metrics.get(name).map(|v| (p.t, *v)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        let lo = values.iter().map(|(_, v)| *v).fold(0.0_f64, f64::min);
        let hi = values.iter().map(|(_, v)| *v).fold(lo, f64::max);
        let range = if hi > lo { hi - lo } else { 1.0 };
        let mut pts = String::new();
        for &(t, v) in &values {
            coord(&mut pts, frame.x(t), Frame::y((v - lo) / range));
        }
        let _ = write!(
            out,
            "<polyline class=\"series metric\" data-series=\"{}\" data-points=\"{}\" fill=\"none\" \
             stroke=\"{color}\" stroke-width=\"1.5\" points=\"{pts}\"/>",
            escape(name),
            values.len(),
        );
        let _ = write!(
            legend,
            "<span><i class=\"sw\" style=\"background:{color}\"></i>{} ({} – {})</span>",
            escape(name),
            number(lo),
            number(hi)
        );
    }
    out.push_str("</svg>");
    (out, legend)
}

/// `"15 min"` or `"45 s"`.
fn ago(secs: f64) -> String {
    if secs >= 600.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

/// Machine axis (0, the middle, the maximum) and the time axis (quarters of the span back to
/// `end_label`).
fn axes(out: &mut String, frame: &Frame, max: f64, end_label: &str) {
    for f in [0.0, 0.5, 1.0] {
        let y = Frame::y(f);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e9ecef\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\" fill=\"#868e96\">{}</text>",
            WIDTH - 4.0,
            LEFT - 4.0,
            y + 3.0,
            number((max * f * 10.0).round() / 10.0)
        );
    }
    for (quarters, anchor) in [
        (4.0, "start"),
        (3.0, "middle"),
        (2.0, "middle"),
        (1.0, "middle"),
    ] {
        let back = frame.span * quarters / 4.0;
        let x = frame.x(frame.start + frame.span - back);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\" font-size=\"10\" fill=\"#868e96\">-{}</text>",
            HEIGHT - 6.0,
            ago(back)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\" fill=\"#868e96\">{}</text>",
        WIDTH - 4.0,
        HEIGHT - 6.0,
        escape(end_label)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::status::{ActionRecord, MetricRecord, NextTick};

    const NOW: f64 = 1_800_000_000.0;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(NOW)
    }

    fn point(i: usize) -> ChartPoint {
        ChartPoint {
            t: NOW - 3_000.0 + i as f64 * 10.0,
            metrics: [
                ("queue_depth".to_owned(), i as f64 * 2.5),
                ("latency".to_owned(), 100.0 - i as f64),
            ]
            .into_iter()
            .collect(),
            targets: Targets {
                created: None,
                started: Some(Bounds {
                    min: 1 + (i as u32 % 3),
                    max: 5,
                }),
            },
            started: 1 + (i as u32 % 4),
            created: 4,
        }
    }

    fn app(name: &str, n: usize) -> AppStatus {
        let mut last = TickRecord::new(
            now() - Duration::from_secs(3),
            Duration::from_millis(12),
            "interval",
        );
        last.outcome = "scaled";
        last.decision = Some("start");
        last.stabilized = Some(Targets {
            created: None,
            started: Some(Bounds { min: 1, max: 3 }),
        });
        last.metrics.insert(
            "queue_depth".to_owned(),
            MetricRecord {
                value: Some(20.0),
                error: None,
                fallback: None,
            },
        );
        last.actions.push(ActionRecord {
            kind: "start",
            action: "start m1".to_owned(),
            reason: "started 0 < min 2".to_owned(),
            outcome: "ok",
            error: None,
            spare: false,
        });
        AppStatus {
            app: name.to_owned(),
            last: Some(last.clone()),
            next_tick: Some(NextTick {
                at: crate::status::rfc3339(now() + Duration::from_secs(12)),
                why: "interval",
            }),
            history: VecDeque::from([last]),
            chart: (0..n).map(point).collect(),
        }
    }

    /// The value of `attr="…"` in each tag of `html` that contains `marker`.
    fn attr_of(html: &str, marker: &str, attr: &str) -> Vec<String> {
        html.split('<')
            .filter(|tag| tag.contains(marker))
            .filter_map(|tag| {
                let start = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
                let len = tag[start..].find('"')?;
                Some(tag[start..start + len].to_owned())
            })
            .collect()
    }

    #[test]
    fn n_chart_points_make_n_vertices() {
        for n in [0, 1, 2, 37, 720] {
            let html = render(&[app("web", n)], now());
            assert_eq!(
                attr_of(&html, "svg class=\"chart\"", "data-points"),
                [n.to_string()]
            );
            let metrics = attr_of(&html, "series metric", "points");
            if n == 0 {
                assert!(metrics.is_empty());
                assert!(html.contains("no data yet"));
                continue;
            }
            assert_eq!(metrics.len(), 2, "one polyline per metric");
            for pts in &metrics {
                assert_eq!(pts.split(' ').count(), n, "one vertex per point");
            }
            assert_eq!(
                attr_of(&html, "series metric", "data-points"),
                [n.to_string(), n.to_string()]
            );
            // Step lines: a vertex per point plus one per change of point.
            for pts in attr_of(&html, "series step", "points") {
                assert_eq!(pts.split(' ').count(), 2 * n - 1);
            }
            let classes = attr_of(&html, "series step", "class");
            assert_eq!(
                classes,
                [
                    "series step started",
                    "series step created",
                    "series step target-started-min",
                    "series step target-started-max",
                ],
                "unconfigured targets are not drawn"
            );
        }
    }

    #[test]
    fn vertices_stay_inside_the_chart() {
        let mut a = app("web", 5);
        a.chart[0].t = NOW - 10_000.0; // older than the hour: clamped to the left edge
        a.chart[4].t = NOW + 100.0; // a clock ahead: clamped to the right edge
        a.chart[2]
            .metrics
            .insert("queue_depth".to_owned(), f64::NAN);
        let html = render(&[a], now());
        for pts in attr_of(&html, "series ", "points") {
            for xy in pts.split(' ') {
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (0.0..=WIDTH).contains(&x) && (0.0..=HEIGHT).contains(&y),
                    "{xy}"
                );
            }
        }
        assert_eq!(
            attr_of(&html, "data-series=\"queue_depth\"", "data-points"),
            ["4"],
            "a non-finite value is no vertex"
        );
    }

    #[test]
    fn every_inserted_text_is_escaped() {
        let evil = "<script>alert(\"x\")</script>";
        let mut a = app(evil, 3);
        let last = a.last.as_mut().unwrap();
        last.reason = Some(format!("reason {evil}"));
        last.notes.push(format!("note {evil}"));
        last.metrics.insert(
            evil.to_owned(),
            MetricRecord {
                value: None,
                error: Some(format!("error {evil}")),
                fallback: Some(evil.to_owned()),
            },
        );
        last.actions[0].error = Some(evil.to_owned());
        last.actions[0].reason = evil.to_owned();
        a.history = VecDeque::from([last.clone()]);
        a.chart[0].metrics.insert(evil.to_owned(), 1.0);
        let html = render(&[a], now());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(\"x\")"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(html.contains("data-app=\"&lt;script&gt;"));
        assert_eq!(escape("a&b'c"), "a&amp;b&#39;c");
    }

    #[test]
    fn the_page_refreshes_itself_and_loads_nothing() {
        let html = render(&[app("web", 3), app("api", 0)], now());
        assert!(html.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">"
        )));
        assert!(!html.contains("<script"));
        assert!(!html.contains(" src="), "no external asset");
        assert!(!html.contains("<link"));
        assert_eq!(html.matches("<tr class=\"app\"").count(), 2);
        assert!(html.contains("started 1–3 · created –"));
        assert!(html.contains("3s ago"));
        assert!(html.contains("in 12s"));
        assert!(html.contains("start m1"));
        assert!(html.contains("started 0 &lt; min 2"));
        let replica = ReplicaView {
            id: "aaa<1>".into(),
            confirmed: true,
            replicas: 2,
            holders: [
                ("web".to_owned(), "aaa<1>".to_owned()),
                ("api".to_owned(), "bbb".to_owned()),
            ]
            .into_iter()
            .collect(),
        };
        let html = render_with(&[app("web", 3), app("api", 0)], Some(&replica), now());
        assert!(
            html.contains(
                "Replica <code>aaa&lt;1&gt;</code> · 2 live · session confirmed · holds 1 of 2 apps"
            ),
            "{html}"
        );
        assert!(html.contains("held here"), "{html}");
        assert!(html.contains("held by <code>bbb</code>"), "{html}");
        assert!(!render(&[app("web", 3)], now()).contains("held"));
        let empty = render(&[], now());
        assert!(empty.contains("No app has been reconciled yet."));
    }
}
