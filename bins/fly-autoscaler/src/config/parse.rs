//! Value parsers: text in, a typed value or a [`Rejected`] (what it should have been, and why) out. They never see
//! the name of the setting; the caller adds it (`Rejected::at`).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use fas_collect::MultipleSeries;
use fas_reconcile::{InitialState, ScaleDown, Step};

use super::LogFormat;
use super::duration::{format_go_duration, go_duration};
use super::problem::Rejected;

/// A Go duration, zero allowed (`scale-down-window`).
pub(crate) fn duration(v: &str) -> Result<Duration, Rejected> {
    go_duration(v).map_err(|why| Rejected::new("invalid duration", why))
}

/// A Go duration greater than zero (`interval`, `timeout`...).
pub(crate) fn nonzero_duration(v: &str) -> Result<Duration, Rejected> {
    match duration(v)? {
        d if d.is_zero() => Err(Rejected::new(
            "invalid duration",
            "must be greater than zero",
        )),
        d => Ok(d),
    }
}

/// A Go duration from `min` to `max` (`postgres-heartbeat`).
pub(crate) fn duration_between(
    v: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, Rejected> {
    match duration(v)? {
        d if d < min || d > max => Err(Rejected::new(
            "invalid duration",
            format!(
                "must be from {} to {}",
                format_go_duration(min),
                format_go_duration(max)
            ),
        )),
        d => Ok(d),
    }
}

/// A whole number of 0 or more (`postgres-slack`).
pub(crate) fn non_negative_integer(v: &str) -> Result<usize, Rejected> {
    v.parse::<usize>()
        .map_err(|_| Rejected::new("invalid integer", "expected a whole number of 0 or more"))
}

/// A whole number of 1 or more (`action-concurrency`).
pub(crate) fn positive_integer(v: &str) -> Result<usize, Rejected> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Rejected::new(
            "invalid integer",
            "expected a whole number of 1 or more",
        )),
    }
}

/// A whole number, possibly zero or negative (`concurrency`, which Go clamps to 1 instead of refusing).
pub(crate) fn integer(v: &str) -> Result<i64, Rejected> {
    v.parse::<i64>()
        .map_err(|_| Rejected::new("invalid integer", "expected a whole number of 1 or more"))
}

/// A per-tick cap: a whole number, or `unlimited` for no cap (the Go behaviour).
pub(crate) fn limit(v: &str) -> Result<Option<u32>, Rejected> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    v.parse::<u32>().map(Some).map_err(|_| {
        Rejected::new(
            "invalid integer",
            "expected a whole number of 0 or more, or \"unlimited\"",
        )
    })
}

/// `scale-up-max-step`: machines per tick (`3`), a percentage of the current count (`50%`, more than 100 % allowed),
/// or `unlimited` for no limit (the default).
pub(crate) fn up_step(v: &str) -> Result<Option<Step>, Rejected> {
    step(v, None)
}

/// `scale-down-max-step`: machines per tick (`3`), a percentage of the current count from `1%` to `100%`, or
/// `unlimited` for no limit (the default).
pub(crate) fn down_step(v: &str) -> Result<Option<Step>, Rejected> {
    step(v, Some(100))
}

fn step(v: &str, max_percent: Option<u32>) -> Result<Option<Step>, Rejected> {
    if v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let bad = || {
        Rejected::new(
            "invalid step",
            "expected a number of machines of 1 or more, a percentage of the current count such as \"50%\", or \"unlimited\"",
        )
    };
    match v.strip_suffix('%') {
        Some(p) => match p.trim().parse::<u32>() {
            Ok(p) if max_percent.is_some_and(|m| p > m) => Err(Rejected::new(
                "invalid step",
                "a scale-down percentage must be from 1% to 100%",
            )),
            Ok(p) if p >= 1 => Ok(Some(Step::Percent(p))),
            _ => Err(bad()),
        },
        None => match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Some(Step::Machines(n))),
            _ => Err(bad()),
        },
    }
}

/// Go's `strconv.ParseBool` values, plus yes/no/on/off.
pub(crate) fn boolean(v: &str) -> Result<bool, Rejected> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(Rejected::new("invalid boolean", "expected true or false")),
    }
}

/// An IANA time zone name (`Europe/Paris`, `UTC`), from the tz database bundled in the binary.
pub(crate) fn timezone(v: &str) -> Result<jiff::tz::TimeZone, Rejected> {
    jiff::tz::TimeZone::get(v).map_err(|_| {
        Rejected::new(
            "unknown time zone",
            "expected an IANA time zone name such as UTC or Europe/Paris",
        )
    })
}

/// `:9090` (every interface, IPv4 and IPv6 like Go), `localhost:9090`, `127.0.0.1:9090`, `[::1]:9090`.
pub(crate) fn socket_addr(v: &str) -> Result<SocketAddr, Rejected> {
    let bad = || {
        Rejected::new(
            "invalid address",
            "expected [host]:port such as :9090 or 127.0.0.1:9090",
        )
    };
    if let Some(port) = v.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from((Ipv6Addr::UNSPECIFIED, p)))
            .map_err(|_| bad());
    }
    if let Some(port) = v.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
            .map_err(|_| bad());
    }
    v.parse::<SocketAddr>().map_err(|_| bad())
}

/// `http(s)://host[:port]`, without a trailing `/`.
pub(crate) fn base_url(v: &str) -> Result<String, Rejected> {
    let trimmed = v.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(trimmed.to_owned()),
        _ => Err(Rejected::new(
            "invalid URL",
            "expected http://host[:port] or https://host[:port]",
        )),
    }
}

/// `started` or `stopped` (the Go wording).
pub(crate) fn initial_state(v: &str) -> Result<InitialState, Rejected> {
    match v.to_ascii_lowercase().as_str() {
        "started" => Ok(InitialState::Started),
        "stopped" => Ok(InitialState::Stopped),
        _ => Err(Rejected::new(
            "invalid value",
            "initial machine state must be either 'started' or 'stopped'",
        )),
    }
}

/// `json` or `text`.
pub(crate) fn log_format(v: &str) -> Result<LogFormat, Rejected> {
    match v.to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        _ => Err(Rejected::new(
            "invalid log format",
            "expected \"json\" or \"text\"",
        )),
    }
}

/// `stop` or `suspend`.
pub(crate) fn scale_down(v: &str) -> Result<ScaleDown, Rejected> {
    match v.to_ascii_lowercase().as_str() {
        "stop" => Ok(ScaleDown::Stop),
        "suspend" => Ok(ScaleDown::Suspend),
        _ => Err(Rejected::new(
            "invalid scale-down",
            "expected \"stop\" or \"suspend\"",
        )),
    }
}

/// `first` (the Go behaviour), `error` or `sum`.
pub(crate) fn multiple_series(v: &str) -> Result<MultipleSeries, Rejected> {
    match v.to_ascii_lowercase().as_str() {
        "first" => Ok(MultipleSeries::First),
        "error" => Ok(MultipleSeries::Error),
        "sum" => Ok(MultipleSeries::Sum),
        _ => Err(Rejected::new(
            "invalid value",
            "expected \"first\", \"error\" or \"sum\"",
        )),
    }
}

/// `FAS_REGIONS=iad,ord` (spaces tolerated; empty items dropped).
pub(crate) fn regions(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `name` can be read as a variable in an expression.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
