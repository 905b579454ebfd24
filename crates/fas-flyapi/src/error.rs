//! The crate's error type and the parsing of Fly error bodies.

use std::time::Duration;

/// Maximum number of bytes of a response body kept in an error.
pub(crate) const SNIPPET_LEN: usize = 512;

/// Everything that can go wrong talking to Fly.
///
/// No variant ever contains the API token: messages come from response bodies, status codes
/// and transport errors only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 404: machine, app or lease not found (`machine not found`, ` lease not found`).
    #[error("not found (404): {message}{}", fmt_request_id(.request_id))]
    NotFound {
        /// The error message from the body (`message`, else `error`, else a body snippet).
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
    },
    /// 409: a lease is held by someone else (`lease currently held by`), a lease already
    /// exists on acquire, a version mismatch or a capacity conflict. See [`Error::is_lease_held`].
    #[error("conflict (409): {message}{}", fmt_request_id(.request_id))]
    Conflict {
        /// The error message from the body.
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
        /// The body's `status` code string, e.g. `insufficient_capacity`.
        code: Option<String>,
    },
    /// 412: the machine is not in a state that allows the call (for example
    /// `unable to start machine from current state`), or a version mismatch.
    #[error("precondition failed (412): {message}{}", fmt_request_id(.request_id))]
    PreconditionFailed {
        /// The error message from the body.
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
        /// The body's `status` code string, e.g. `insufficient_capacity`.
        code: Option<String>,
    },
    /// 429: Fly's rate limiter refused the call.
    #[error("rate limited (429): {message}{}", fmt_request_id(.request_id))]
    RateLimited {
        /// The error message from the body.
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
        /// The `Retry-After` header (seconds or HTTP date), when present and parseable.
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx status (400, 401, 403, 408, 422, 5xx, …).
    #[error("fly api returned {status}: {message}{}", fmt_request_id(.request_id))]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The error message from the body.
        message: String,
        /// The `fly-request-id` response header.
        request_id: Option<String>,
        /// The body's `status` code string, e.g. `insufficient_capacity`, `name_taken`.
        code: Option<String>,
    },
    /// The request did not complete within its timeout: the per-request timeout, or what was
    /// left of the call's total budget ([`crate::RetryPolicy::max_total`]) when that was
    /// shorter. For a mutation the side effect may or may not have happened.
    #[error("request timed out after {timeout:?}")]
    Timeout {
        /// The timeout that expired (the per-request timeout or the remaining budget).
        timeout: Duration,
    },
    /// Connecting, sending or receiving failed.
    #[error("transport error ({})", if *.connect { "connect" } else { "in flight" })]
    Transport {
        /// True when the failure happened while connecting, i.e. before anything was sent
        /// (a retry is then always safe).
        connect: bool,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A 2xx response body did not have the expected shape.
    #[error("cannot decode {what}: {source}; body starts with: {snippet}")]
    Decode {
        /// What was being decoded (e.g. `machine list`).
        what: &'static str,
        /// The first bytes of the body.
        snippet: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A GraphQL response (HTTP 200) carried `errors[]`; this is the first message.
    #[error("graphql error: {message}")]
    GraphQl {
        /// The first error's `message`.
        message: String,
    },
    /// A start call answered 200 but with `"status":"error"` in its body (flyctl treats this
    /// as a failure).
    #[error("start failed: {message}")]
    StartFailed {
        /// The body's `message`.
        message: String,
    },
    /// The client-side rate limiter would have had to wait longer than allowed: longer than
    /// [`crate::RateLimitPolicy::max_wait`], or than what is left of the call's total budget
    /// ([`crate::RetryPolicy::max_total`]). Nothing was sent.
    #[error(
        "client-side rate limit for {action} on `{key}` needs a wait of {wait:?}, more than the allowed {max_wait:?}"
    )]
    LocalRateLimit {
        /// The action (`start`, `get`, …).
        action: &'static str,
        /// The machine id or app name the bucket is keyed by.
        key: String,
        /// The wait that would have been needed.
        wait: Duration,
        /// The longest wait allowed: the configured `max_wait`, or the call's remaining budget
        /// when that was shorter.
        max_wait: Duration,
    },
    /// A paged GraphQL listing went past the configured page cap.
    #[error("listing {what} stopped after {pages} pages (page cap reached)")]
    TooManyPages {
        /// What was being listed.
        what: &'static str,
        /// Pages fetched.
        pages: usize,
    },
    /// The client configuration is invalid (bad base URL, empty token, …).
    #[error("invalid client configuration `{field}`: {message}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A caller-supplied value cannot be put into a request (e.g. a nonce that is not a valid
    /// header value).
    #[error("invalid {what}: {message}")]
    InvalidInput {
        /// The offending input.
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

fn fmt_request_id(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (fly-request-id {id})"),
        None => String::new(),
    }
}

impl Error {
    /// The HTTP status of the response, when the error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::NotFound { .. } => Some(404),
            Error::Conflict { .. } => Some(409),
            Error::PreconditionFailed { .. } => Some(412),
            Error::RateLimited { .. } => Some(429),
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The `fly-request-id` of the response, when known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::NotFound { request_id, .. }
            | Error::Conflict { request_id, .. }
            | Error::PreconditionFailed { request_id, .. }
            | Error::RateLimited { request_id, .. }
            | Error::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The body's `status` code string (`insufficient_capacity`, `name_taken`, `unknown`).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Conflict { code, .. }
            | Error::PreconditionFailed { code, .. }
            | Error::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The server's message, when the error came from a response.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::NotFound { message, .. }
            | Error::Conflict { message, .. }
            | Error::PreconditionFailed { message, .. }
            | Error::RateLimited { message, .. }
            | Error::Api { message, .. }
            | Error::GraphQl { message }
            | Error::StartFailed { message } => Some(message),
            _ => None,
        }
    }

    /// True for a 409 whose message says a lease is held by someone else.
    pub fn is_lease_held(&self) -> bool {
        matches!(self, Error::Conflict { message, .. } if message.contains("lease currently held by"))
    }

    /// True when the platform reported a capacity problem (`status: insufficient_capacity`
    /// or a `could not reserve resource for machine` message).
    pub fn is_insufficient_capacity(&self) -> bool {
        self.code() == Some("insufficient_capacity")
            || self
                .message()
                .is_some_and(|m| m.contains("could not reserve resource for machine"))
    }

    /// True when retrying the *same idempotent* request may succeed: 429, 5xx, timeouts and
    /// transport errors. Mutations use a stricter rule (see the crate documentation).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Builds the typed error for a non-2xx response, parsing the body as fly-go does:
/// `{error, message, status}`, `message` wins over `error`; a non-JSON (or message-less) body
/// is kept as a snippet.
pub(crate) fn from_response(
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    retry_after: Option<Duration>,
) -> Error {
    let (message, code) = parse_error_body(body);
    let message = message.unwrap_or_else(|| {
        let snippet = snippet(body);
        if snippet.is_empty() {
            format!("request returned non-2xx status: {status}")
        } else {
            format!("request returned non-2xx status: {status}: {snippet}")
        }
    });
    match status {
        404 => Error::NotFound {
            message,
            request_id,
        },
        409 => Error::Conflict {
            message,
            request_id,
            code,
        },
        412 => Error::PreconditionFailed {
            message,
            request_id,
            code,
        },
        429 => Error::RateLimited {
            message,
            request_id,
            retry_after,
        },
        _ => Error::Api {
            status,
            message,
            request_id,
            code,
        },
    }
}

/// Extracts `(message, status code string)` from a Fly error body.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Body {
        error: Option<serde_json::Value>,
        message: Option<serde_json::Value>,
        status: Option<serde_json::Value>,
    }
    fn text(v: Option<serde_json::Value>) -> Option<String> {
        match v? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s),
            serde_json::Value::String(_) | serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let message = text(b.message).or_else(|| text(b.error));
            // The lease/older shape uses `"status":"error"`, which is not a code.
            let code = text(b.status).filter(|s| s != "error" && s != "success");
            (message, code)
        }
        Err(_) => (None, None),
    }
}

/// The first [`SNIPPET_LEN`] bytes of a body as lossy UTF-8, trimmed.
pub(crate) fn snippet(body: &[u8]) -> String {
    let cut = &body[..body.len().min(SNIPPET_LEN)];
    let mut s = String::from_utf8_lossy(cut).trim().to_owned();
    if body.len() > SNIPPET_LEN {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_wins_over_error() {
        let e = from_response(
            409,
            br#"{"error":"e","message":"machine ID 3d8d lease currently held by x@y"}"#,
            Some("01J-yyz".into()),
            None,
        );
        assert!(e.is_lease_held());
        assert_eq!(e.status(), Some(409));
        assert_eq!(e.request_id(), Some("01J-yyz"));
        assert_eq!(
            e.to_string(),
            "conflict (409): machine ID 3d8d lease currently held by x@y (fly-request-id 01J-yyz)"
        );
    }

    #[test]
    fn error_field_and_capacity_code() {
        let e = from_response(
            412,
            br#"{"error":"no capacity in ord","status":"insufficient_capacity"}"#,
            None,
            None,
        );
        assert!(matches!(e, Error::PreconditionFailed { .. }));
        assert_eq!(e.code(), Some("insufficient_capacity"));
        assert!(e.is_insufficient_capacity());
        assert_eq!(e.message(), Some("no capacity in ord"));
    }

    #[test]
    fn lease_shape_status_error_is_not_a_code() {
        let e = from_response(
            404,
            br#"{"status":"error","message":"lease not found"}"#,
            None,
            None,
        );
        assert!(matches!(e, Error::NotFound { .. }));
        assert_eq!(e.code(), None);
        assert_eq!(e.message(), Some("lease not found"));
    }

    #[test]
    fn non_json_body_is_kept_as_snippet() {
        let e = from_response(502, b"<html>bad gateway</html>", None, None);
        assert_eq!(e.status(), Some(502));
        assert_eq!(
            e.message(),
            Some("request returned non-2xx status: 502: <html>bad gateway</html>")
        );
        assert!(e.is_retryable());
        let long = vec![b'x'; 5000];
        let e = from_response(500, &long, None, None);
        assert!(e.message().unwrap().len() < 700);
    }

    #[test]
    fn rate_limited_keeps_retry_after() {
        let e = from_response(
            429,
            br#"{"error":"resource_exhausted: rate limit exceeded"}"#,
            None,
            Some(Duration::from_secs(2)),
        );
        match e {
            Error::RateLimited {
                retry_after,
                message,
                ..
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
                assert_eq!(message, "resource_exhausted: rate limit exceeded");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn client_errors_are_not_retryable() {
        for s in [400u16, 401, 403, 404, 408, 409, 412, 422] {
            assert!(!from_response(s, b"{}", None, None).is_retryable(), "{s}");
        }
    }
}
