//! Go-style duration parsing (`time.ParseDuration`), so that existing `FAS_INTERVAL=1m30s` values keep working.

use std::time::Duration;

/// Nanoseconds per unit, longest suffixes first where one is a prefix of another (`ms` before `m`).
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ MICRO SIGN, accepted by Go
    ("\u{3bc}s", 1_000), // μ GREEK SMALL LETTER MU, accepted by Go
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Largest duration Go can represent (`math.MaxInt64` nanoseconds, about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration: `15s`, `1m30s`, `500ms`, `1h`, `1.5s`, `2h45m`, `300us` / `300µs`, `0`.
///
/// A sequence of decimal numbers, each with an optional fraction and a unit suffix (`ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`). A bare `0` is allowed without a unit. Negative durations are rejected (no setting accepts them).
/// The error names the value and says what is wrong with it.
///
/// ```
/// use fly_autoscaler::config::parse_go_duration;
/// use std::time::Duration;
/// assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_go_duration("15").unwrap_err().contains("missing unit"));
/// ```
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    go_duration(s).map_err(|why| format!("invalid duration {s:?}: {why}"))
}

/// [`parse_go_duration`], the error saying only why (`missing unit (examples: 15s, 1m30s, 500ms)`), for messages
/// that show the value themselves.
pub(crate) fn go_duration(s: &str) -> Result<Duration, String> {
    let fail = |why: &str| Err(format!("{why} (examples: 15s, 1m30s, 500ms)"));
    let mut rest = s.trim();
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return fail("empty");
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Leading integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        // Optional fraction.
        let (frac_digits, after_frac) = match after_int.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return fail("expected a number");
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = after_frac
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after_frac.len());
        let (unit, after_unit) = after_frac.split_at(unit_len);
        if unit.is_empty() {
            return fail("missing unit");
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return fail(&format!(
                "unknown unit {unit:?} (use ns, us, ms, s, m or h)"
            ));
        };
        let int_value: u128 = if int_digits.is_empty() {
            0
        } else {
            match int_digits.parse::<u128>() {
                Ok(v) if v <= MAX_NANOS => v,
                _ => return fail("too large"),
            }
        };
        // Fraction, exact to the nanosecond (digits past 18 cannot matter once scaled).
        let frac = &frac_digits[..frac_digits.len().min(18)];
        let frac_nanos = if frac.is_empty() {
            0
        } else {
            // 18 digits fit in u128 easily; the parse cannot fail on ASCII digits.
            let f: u128 = frac.parse().unwrap_or(0);
            f * scale / 10u128.pow(frac.len() as u32)
        };
        total = match int_value
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_nanos))
            .and_then(|v| v.checked_add(total))
        {
            Some(v) if v <= MAX_NANOS => v,
            _ => return fail("too large"),
        };
        rest = after_unit;
    }
    if negative && total > 0 {
        return fail("negative durations are not allowed");
    }
    // total <= i64::MAX, so it fits in u64 nanoseconds.
    Ok(Duration::from_nanos(total as u64))
}

/// Renders a duration the way Go prints it (`1m30s`, `500ms`, `0s`), for docs and messages.
pub(crate) fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let sub = d.subsec_nanos();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sub == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let frac = format!("{sub:09}");
        out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
    }
    out
}
