//! `POST /trigger`: wake the reconciliation of apps now instead of at their next interval.
//!
//! The endpoint is off (404) unless `trigger-token` is set; the caller sends
//! `Authorization: Bearer <token>`, compared in constant time; the token is never logged. The
//! body names the apps: `{"app":"my-app"}`, or a Prometheus Alertmanager webhook payload whose
//! alerts carry `labels.app` (an alert without it wakes every app). The handler only records
//! the wish in [`Triggers`]; the loop ([`crate::schedule`]) decides when the tick runs:
//! coalesced with a running tick, at most one triggered tick per app per `trigger-min-gap`.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use tokio::sync::Notify;

use crate::http::response;

/// Largest body accepted (an Alertmanager payload of a few hundred alerts fits).
pub const MAX_BODY: usize = 256 << 10;

/// The apps a trigger names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// These apps.
    Apps(BTreeSet<String>),
    /// Every app the loop reconciles.
    All,
}

/// Pending triggers, shared by the HTTP handler and the loop.
#[derive(Debug, Default)]
pub struct Triggers {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The apps the loop reconciles (set by the loop on each app-list refresh).
    known: BTreeSet<String>,
    /// Apps woken since the loop last looked.
    pending: BTreeSet<String>,
}

/// What [`Triggers::wake`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Woken {
    /// Apps woken.
    pub woken: Vec<String>,
    /// Names that are not apps the loop reconciles.
    pub unknown: Vec<String>,
}

impl Triggers {
    /// No app known, nothing pending.
    pub fn new() -> Triggers {
        Triggers::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The apps the loop reconciles; triggers for other names are refused.
    pub fn set_known<'a>(&self, apps: impl IntoIterator<Item = &'a String>) {
        let mut st = self.state();
        st.known = apps.into_iter().cloned().collect();
        let known = std::mem::take(&mut st.known);
        st.pending.retain(|a| known.contains(a));
        st.known = known;
    }

    /// Records a wish to reconcile apps now and wakes the loop.
    pub fn wake(&self, wake: &Wake) -> Woken {
        let mut st = self.state();
        let (woken, unknown): (Vec<String>, Vec<String>) = match wake {
            Wake::All => (st.known.iter().cloned().collect(), Vec::new()),
            Wake::Apps(apps) => apps.iter().cloned().partition(|a| st.known.contains(a)),
        };
        st.pending.extend(woken.iter().cloned());
        drop(st);
        if !woken.is_empty() {
            self.notify.notify_one();
        }
        Woken { woken, unknown }
    }

    /// Takes the apps woken since the last call.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.state().pending)
    }

    /// Resolves when a trigger may be pending (a wake before the call is not lost).
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// Parses a trigger body: `{"app":"name"}` or an Alertmanager webhook payload.
pub fn parse_body(body: &[u8]) -> Result<Wake, String> {
    const EXPECTED: &str = r#"expected {"app":"<name>"} or an Alertmanager webhook payload"#;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body ({e}): {EXPECTED}"))?;
    if let Some(app) = value.get("app") {
        return match app.as_str() {
            Some(a) if !a.is_empty() => Ok(Wake::Apps(BTreeSet::from([a.to_owned()]))),
            _ => Err(format!("`app` must be a non-empty string: {EXPECTED}")),
        };
    }
    let Some(alerts) = value.get("alerts").and_then(Value::as_array) else {
        return Err(EXPECTED.to_owned());
    };
    let mut apps = BTreeSet::new();
    for alert in alerts {
        match alert.pointer("/labels/app").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => {
                apps.insert(a.to_owned());
            }
            // An alert that names no app wakes every app.
            _ => return Ok(Wake::All),
        }
    }
    if apps.is_empty() {
        return Err("the Alertmanager payload has no alerts".to_owned());
    }
    Ok(Wake::Apps(apps))
}

/// Whether `header` is `Bearer <token>`; the comparison takes the same time wherever the first
/// difference is.
pub fn authorized(header: Option<&[u8]>, token: &SecretString) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
        return false;
    };
    given.ct_eq(token.expose_secret().as_bytes()).into()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    response(status, "application/json", format!("{body}\n"))
}

/// Answers `POST /trigger`.
pub async fn handle(
    req: Request<Incoming>,
    triggers: &Triggers,
    token: Option<&SecretString>,
) -> Response<Full<Bytes>> {
    let Some(token) = token else {
        return response(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    };
    if req.method() != Method::POST {
        let mut resp = response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use POST\n");
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
        return resp;
    }
    let header = req.headers().get(hyper::header::AUTHORIZATION);
    if !authorized(header.map(|h| h.as_bytes()), token) {
        tracing::warn!("trigger refused: missing or wrong bearer token");
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "missing or wrong bearer token"}),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("reading the body (at most {MAX_BODY} bytes): {e}")}),
            );
        }
    };
    let wake = match parse_body(&body) {
        Ok(w) => w,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    };
    let done = triggers.wake(&wake);
    if done.woken.is_empty() {
        let names = done.unknown.join(", ");
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("unknown app: {names}"), "unknown": done.unknown}),
        );
    }
    tracing::info!(apps = %done.woken.join(","), "trigger");
    let mut body = json!({"woken": done.woken});
    if !done.unknown.is_empty() {
        body["unknown"] = json!(done.unknown);
    }
    json_response(StatusCode::ACCEPTED, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps(names: &[&str]) -> Wake {
        Wake::Apps(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body(br#"{"app":"a"}"#), Ok(apps(&["a"])));
        let am = br#"{"version":"4","status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"QueueDeep","app":"a"}},
            {"status":"firing","labels":{"alertname":"QueueDeep","app":"b"}},
            {"status":"firing","labels":{"alertname":"QueueDeep","app":"a"}}]}"#;
        assert_eq!(parse_body(am), Ok(apps(&["a", "b"])));
        let no_app = br#"{"alerts":[{"labels":{"app":"a"}},{"labels":{"alertname":"X"}}]}"#;
        assert_eq!(parse_body(no_app), Ok(Wake::All));
        assert!(parse_body(br#"{"alerts":[]}"#).is_err());
        assert!(parse_body(br#"{"app":""}"#).is_err());
        assert!(parse_body(br#"{"app":3}"#).is_err());
        assert!(parse_body(b"not json").unwrap_err().contains("expected"));
        assert!(parse_body(br#"{"name":"a"}"#).is_err());
    }

    #[test]
    fn bearer_token() {
        let token = SecretString::from("s3cret");
        assert!(authorized(Some(b"Bearer s3cret"), &token));
        assert!(!authorized(Some(b"Bearer s3cre"), &token));
        assert!(!authorized(Some(b"Bearer s3cretx"), &token));
        assert!(!authorized(Some(b"s3cret"), &token));
        assert!(!authorized(Some(b"Basic s3cret"), &token));
        assert!(!authorized(None, &token));
    }

    #[test]
    fn wake_knows_only_the_loops_apps_and_coalesces() {
        let t = Triggers::new();
        let known = vec!["a".to_owned(), "b".to_owned()];
        t.set_known(&known);
        let w = t.wake(&apps(&["a", "zz"]));
        assert_eq!(w.woken, ["a"]);
        assert_eq!(w.unknown, ["zz"]);
        t.wake(&apps(&["a"]));
        assert_eq!(t.take(), BTreeSet::from(["a".to_owned()]), "coalesced");
        assert!(t.take().is_empty());
        assert_eq!(t.wake(&Wake::All).woken, ["a", "b"]);
        t.set_known(&vec!["b".to_owned()]);
        assert_eq!(
            t.take(),
            BTreeSet::from(["b".to_owned()]),
            "a left the list"
        );
    }
}
