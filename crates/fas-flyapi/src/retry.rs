//! Retry decisions and backoff, as pure functions.

use crate::config::RetryPolicy;
use crate::error::Error;
use crate::request::RetryClass;
use std::time::Duration;

/// Whether a failed attempt of a request of this class may be retried.
///
/// - Idempotent (GET, GraphQL query): 429, 5xx, client timeout, any transport error.
/// - Mutation (create, start, stop, suspend, destroy, lease): only when no side effect is
///   proven: a connect error (nothing was sent), 429 or 503. Never on 408, 500, 502, 504, a
///   timeout or a mid-flight transport error, where the side effect may have happened.
pub fn should_retry(class: RetryClass, err: &Error) -> bool {
    match class {
        RetryClass::Idempotent => err.is_retryable(),
        RetryClass::Mutation => match err {
            Error::Transport { connect, .. } => *connect,
            Error::RateLimited { .. } => true,
            Error::Api { status, .. } => *status == 503,
            _ => false,
        },
    }
}

/// The backoff before retry number `retry` (1 for the first retry), before jitter:
/// `min(max_delay, initial_delay · 2^(retry-1))`.
pub fn base_delay(policy: &RetryPolicy, retry: u32) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    policy
        .initial_delay
        .checked_mul(factor)
        .unwrap_or(policy.max_delay)
        .min(policy.max_delay)
}

/// The delay before retry `retry`: the server's `Retry-After` when the error carries one,
/// else [`base_delay`] scaled by `jitter` (clamped to `[0.5, 1.0]`).
pub fn retry_delay(policy: &RetryPolicy, retry: u32, err: &Error, jitter: f64) -> Duration {
    if let Error::RateLimited {
        retry_after: Some(ra),
        ..
    } = err
    {
        return *ra;
    }
    base_delay(policy, retry).mul_f64(jitter.clamp(0.5, 1.0))
}

/// Parses `Retry-After`: delay-seconds, or an HTTP date relative to `now` (a past date gives
/// zero). Unparseable values give `None`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let when = httpdate_parse(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only format servers must send.
fn httpdate_parse(s: &str) -> Option<std::time::SystemTime> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::from_response;

    fn transport(connect: bool) -> Error {
        Error::Transport {
            connect,
            source: "boom".into(),
        }
    }

    #[test]
    fn idempotent_retries_on_429_5xx_timeouts_and_transport() {
        for s in [429u16, 500, 502, 503, 504] {
            assert!(
                should_retry(RetryClass::Idempotent, &from_response(s, b"", None, None)),
                "{s}"
            );
        }
        assert!(should_retry(
            RetryClass::Idempotent,
            &Error::Timeout {
                timeout: Duration::from_secs(1)
            }
        ));
        assert!(should_retry(RetryClass::Idempotent, &transport(false)));
        for s in [400u16, 401, 404, 408, 409, 412, 422] {
            assert!(
                !should_retry(RetryClass::Idempotent, &from_response(s, b"", None, None)),
                "{s}"
            );
        }
    }

    #[test]
    fn mutations_retry_only_when_no_side_effect_is_proven() {
        assert!(should_retry(RetryClass::Mutation, &transport(true)));
        assert!(should_retry(
            RetryClass::Mutation,
            &from_response(429, b"", None, None)
        ));
        assert!(should_retry(
            RetryClass::Mutation,
            &from_response(503, b"", None, None)
        ));
        assert!(!should_retry(RetryClass::Mutation, &transport(false)));
        assert!(!should_retry(
            RetryClass::Mutation,
            &Error::Timeout {
                timeout: Duration::from_secs(1)
            }
        ));
        for s in [408u16, 500, 502, 504, 409, 412, 422] {
            assert!(
                !should_retry(RetryClass::Mutation, &from_response(s, b"", None, None)),
                "{s}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(base_delay(&p, 1), Duration::from_millis(100));
        assert_eq!(base_delay(&p, 2), Duration::from_millis(200));
        assert_eq!(base_delay(&p, 5), Duration::from_millis(1600));
        assert_eq!(base_delay(&p, 6), Duration::from_secs(2));
        assert_eq!(base_delay(&p, 100), Duration::from_secs(2));
        let e = from_response(500, b"", None, None);
        assert_eq!(retry_delay(&p, 2, &e, 0.0), Duration::from_millis(100));
        assert_eq!(retry_delay(&p, 2, &e, 0.75), Duration::from_millis(150));
        assert_eq!(retry_delay(&p, 2, &e, 9.0), Duration::from_millis(200));
    }

    #[test]
    fn retry_after_wins() {
        let p = RetryPolicy::default();
        let e = from_response(429, b"", None, Some(Duration::from_secs(3)));
        assert_eq!(retry_delay(&p, 1, &e, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn retry_after_parsing() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}
