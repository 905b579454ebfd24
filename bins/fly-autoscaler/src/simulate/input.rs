//! The metric history of `simulate`: a CSV file with a `time` column (RFC 3339 or unix
//! seconds) and one column per metric name. Every error names the file, the line and the
//! column.

use std::time::{Duration, SystemTime};

/// A problem in the input file, at a line and a column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct InputError {
    /// The file as given on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (the field number).
    pub column: usize,
    /// What is wrong, lower case.
    pub message: String,
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The row's time.
    pub at: SystemTime,
    /// The row's line in the file (1-based).
    pub line: usize,
    /// One value per metric, in [`Series::metrics`] order.
    pub values: Vec<f64>,
}

/// A metric history: rows in strictly increasing time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric names, in the configuration's order.
    pub metrics: Vec<String>,
    /// The rows.
    pub rows: Vec<Sample>,
}

/// Parses a CSV history whose metric columns must be exactly the configured metric names
/// (`known`), in any order. `file` is only used in messages.
pub fn parse_csv(file: &str, text: &str, known: &[String]) -> Result<Series, InputError> {
    let err = |line: usize, column: usize, message: String| InputError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(err(
            1,
            1,
            "empty file: expected a header `time,<metric>...`".into(),
        ));
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut time_col = None;
    // For each configured metric, the column that holds it.
    let mut cols: Vec<Option<usize>> = vec![None; known.len()];
    for (i, name) in names.iter().enumerate() {
        if *name == "time" {
            time_col = Some(i);
            continue;
        }
        match known.iter().position(|k| k == name) {
            Some(k) if cols[k].is_some() => {
                return Err(err(
                    header_line,
                    i + 1,
                    format!("duplicate column `{name}`"),
                ));
            }
            Some(k) => cols[k] = Some(i),
            None => {
                return Err(err(
                    header_line,
                    i + 1,
                    format!(
                        "unknown metric `{name}`: the configuration's metrics are {}",
                        list(known)
                    ),
                ));
            }
        }
    }
    let Some(time_col) = time_col else {
        return Err(err(header_line, 1, "no `time` column in the header".into()));
    };
    if let Some(k) = cols.iter().position(Option::is_none) {
        return Err(err(
            header_line,
            names.len() + 1,
            format!("no column for metric `{}` of the configuration", known[k]),
        ));
    }
    let cols: Vec<usize> = cols.into_iter().flatten().collect();
    let mut rows: Vec<Sample> = Vec::new();
    for (line, text) in lines {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(err(
                line,
                fields.len().min(names.len()) + 1,
                format!("{} fields, the header has {}", fields.len(), names.len()),
            ));
        }
        let at = parse_time(fields[time_col]).ok_or_else(|| {
            err(
                line,
                time_col + 1,
                format!(
                    "bad time `{}`: expected RFC 3339 (2026-11-30T08:00:00Z) or unix seconds",
                    fields[time_col]
                ),
            )
        })?;
        if let Some(prev) = rows.last()
            && at <= prev.at
        {
            return Err(err(
                line,
                time_col + 1,
                format!(
                    "time `{}` is not after the previous row's (line {}): rows must be in increasing time",
                    fields[time_col], prev.line
                ),
            ));
        }
        let mut values = Vec::with_capacity(cols.len());
        for (k, &c) in cols.iter().enumerate() {
            let v: f64 = fields[c].parse().map_err(|_| {
                err(
                    line,
                    c + 1,
                    format!("bad number `{}` for metric `{}`", fields[c], known[k]),
                )
            })?;
            values.push(v);
        }
        rows.push(Sample { at, line, values });
    }
    if rows.is_empty() {
        return Err(err(header_line, 1, "no rows after the header".into()));
    }
    Ok(Series {
        metrics: known.to_vec(),
        rows,
    })
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 3339 (`2026-11-30T08:00:00Z`, any offset) or unix seconds (`1764489600`, `1764489600.5`).
/// Parses a time: RFC 3339 (`2026-11-30T08:00:00Z`) or unix seconds.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let ts: jiff::Timestamp = s.parse().ok()?;
    let secs = u64::try_from(ts.as_second()).ok()?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(secs)
            + Duration::from_nanos(u64::try_from(ts.subsec_nanosecond()).unwrap_or(0)),
    )
}

/// Merges per-metric histories (`(unix seconds, value)`, each in time order) into rows: one per
/// distinct time, each metric's latest value at or before it; times before every metric has a
/// value are left out. Rows are numbered from 1 (their `line`).
pub fn merge_histories(metrics: &[String], histories: &[Vec<(f64, f64)>]) -> Series {
    let mut times: Vec<f64> = histories.iter().flatten().map(|(t, _)| *t).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let mut next = vec![0usize; histories.len()];
    let mut latest: Vec<Option<f64>> = vec![None; histories.len()];
    let mut rows = Vec::new();
    for t in times {
        for (i, h) in histories.iter().enumerate() {
            while next[i] < h.len() && h[next[i]].0 <= t {
                latest[i] = Some(h[next[i]].1);
                next[i] += 1;
            }
        }
        if let Some(values) = latest.iter().copied().collect::<Option<Vec<f64>>>() {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
            rows.push(Sample {
                at,
                line: rows.len() + 1,
                values,
            });
        }
    }
    Series {
        metrics: metrics.to_vec(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["queue_depth".into(), "cpu".into()]
    }

    fn parse(text: &str) -> Result<Series, String> {
        parse_csv("load.csv", text, &known()).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_rfc3339_and_unix_seconds_in_any_column_order() {
        let s = parse("cpu,time,queue_depth\n0.5,2026-11-30T08:00:00Z,12\n\n0.7,1796025630,20.5\n")
            .unwrap();
        assert_eq!(s.metrics, known());
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].values, [12.0, 0.5]);
        assert_eq!(s.rows[1].values, [20.5, 0.7]);
        assert_eq!(s.rows[1].line, 4);
        let t0 = s.rows[0].at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(t0.as_secs(), 1_796_025_600);
        assert_eq!(
            s.rows[1].at.duration_since(s.rows[0].at).unwrap().as_secs(),
            30
        );
    }

    #[test]
    fn histories_merge_by_time_carrying_each_value_forward() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        let s = merge_histories(
            &names,
            &[
                vec![(10.0, 1.0), (20.0, 2.0), (30.0, 3.0)],
                vec![(20.0, 5.0), (40.0, 6.0)],
            ],
        );
        let rows: Vec<(u64, Vec<f64>)> = s
            .rows
            .iter()
            .map(|r| {
                let t =
                    r.at.duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                (t, r.values.clone())
            })
            .collect();
        assert_eq!(
            rows,
            [
                (20, vec![2.0, 5.0]),
                (30, vec![3.0, 5.0]),
                (40, vec![3.0, 6.0])
            ],
            "10 s is left out: b has no value yet"
        );
        assert_eq!(s.rows[0].line, 1);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let head = "time,queue_depth,cpu\n";
        assert_eq!(
            parse("time,queue_depht,cpu\n1,2,3\n").unwrap_err(),
            "load.csv:1:2: unknown metric `queue_depht`: the configuration's metrics are `queue_depth`, `cpu`"
        );
        assert_eq!(
            parse(&format!("{head}1,2,3\nyesterday,2,3\n")).unwrap_err(),
            "load.csv:3:1: bad time `yesterday`: expected RFC 3339 (2026-11-30T08:00:00Z) or unix seconds"
        );
        assert_eq!(
            parse(&format!("{head}1,2,3\n2,2,lots\n")).unwrap_err(),
            "load.csv:3:3: bad number `lots` for metric `cpu`"
        );
        assert_eq!(
            parse(&format!("{head}10,2,3\n5,2,3\n")).unwrap_err(),
            "load.csv:3:1: time `5` is not after the previous row's (line 2): rows must be in increasing time"
        );
        assert_eq!(
            parse(&format!("{head}1,2\n")).unwrap_err(),
            "load.csv:2:3: 2 fields, the header has 3"
        );
        assert_eq!(
            parse("time,queue_depth\n1,2\n").unwrap_err(),
            "load.csv:1:3: no column for metric `cpu` of the configuration"
        );
        assert_eq!(
            parse("queue_depth,cpu\n1,2\n").unwrap_err(),
            "load.csv:1:1: no `time` column in the header"
        );
        assert_eq!(
            parse(head).unwrap_err(),
            "load.csv:1:1: no rows after the header"
        );
        assert_eq!(
            parse("").unwrap_err(),
            "load.csv:1:1: empty file: expected a header `time,<metric>...`"
        );
    }
}
