//! The hyper server: connection handling, auth, latency, faults, rate limits, logging, dispatch.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::Rng;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::{FaultKind, FaultMatch};
use crate::conn::Counters;
use crate::world::{LoggedRequest, World};
use crate::{Error, api, graphql};

/// State shared by the server tasks and the [`crate::Simulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    /// Woken after every mutation, so `wait` requests re-check.
    pub(crate) notify: Notify,
    /// Connections accepted (see [`crate::Simulator::connections`]).
    pub(crate) conns: Counters,
}

impl Shared {
    /// Lock the world. A poisoned lock (a panic while holding it) is recovered: the data is plain state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A parsed request.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) query: Vec<(String, String)>,
    pub(crate) nonce: Option<String>,
    pub(crate) body: Bytes,
}

impl Req {
    /// The last value of a query parameter.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean query parameter (`true`/`1`).
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.param(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }
}

/// A response to send.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) retry_after: Option<u64>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
        }
    }

    pub(crate) fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, json!({ "error": message }))
    }

    pub(crate) fn ok() -> Reply {
        Reply::json(200, json!({"ok": true}))
    }
}

/// Which endpoint a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    ListApps,
    GetApp {
        app: String,
    },
    List {
        app: String,
    },
    Create {
        app: String,
    },
    Get {
        app: String,
        id: String,
    },
    Destroy {
        app: String,
        id: String,
    },
    Action {
        app: String,
        id: String,
        action: String,
    },
    Wait {
        app: String,
        id: String,
    },
    LeaseGet {
        app: String,
        id: String,
    },
    LeaseAcquire {
        app: String,
        id: String,
    },
    LeaseRelease {
        app: String,
        id: String,
    },
    Graphql,
    Unknown,
}

impl Route {
    pub(crate) fn parse(method: &str, path: &str) -> Route {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let s = |x: &str| x.to_owned();
        match (method, segs.as_slice()) {
            ("POST", ["graphql"]) => Route::Graphql,
            ("GET", ["v1", "apps"]) => Route::ListApps,
            ("GET", ["v1", "apps", app]) => Route::GetApp { app: s(app) },
            ("GET", ["v1", "apps", app, "machines"]) => Route::List { app: s(app) },
            ("POST", ["v1", "apps", app, "machines"]) => Route::Create { app: s(app) },
            ("GET", ["v1", "apps", app, "machines", id]) => Route::Get {
                app: s(app),
                id: s(id),
            },
            ("DELETE", ["v1", "apps", app, "machines", id]) => Route::Destroy {
                app: s(app),
                id: s(id),
            },
            ("GET", ["v1", "apps", app, "machines", id, "wait"]) => Route::Wait {
                app: s(app),
                id: s(id),
            },
            ("GET", ["v1", "apps", app, "machines", id, "lease"]) => Route::LeaseGet {
                app: s(app),
                id: s(id),
            },
            ("POST", ["v1", "apps", app, "machines", id, "lease"]) => Route::LeaseAcquire {
                app: s(app),
                id: s(id),
            },
            ("DELETE", ["v1", "apps", app, "machines", id, "lease"]) => Route::LeaseRelease {
                app: s(app),
                id: s(id),
            },
            ("POST", ["v1", "apps", app, "machines", id, action])
                if ["start", "stop", "suspend", "cordon", "uncordon"].contains(action) =>
            {
                Route::Action {
                    app: s(app),
                    id: s(id),
                    action: s(action),
                }
            }
            _ => Route::Unknown,
        }
    }

    /// The route name used in logs, fault matching and rate-limit keys.
    pub(crate) fn name(&self) -> &str {
        match self {
            Route::ListApps => "list_apps",
            Route::GetApp { .. } => "get_app",
            Route::List { .. } => "list",
            Route::Create { .. } => "create",
            Route::Get { .. } => "get",
            Route::Destroy { .. } => "destroy",
            Route::Action { action, .. } => action,
            Route::Wait { .. } => "wait",
            Route::LeaseGet { .. } => "lease_get",
            Route::LeaseAcquire { .. } => "lease_acquire",
            Route::LeaseRelease { .. } => "lease_release",
            Route::Graphql => "graphql",
            Route::Unknown => "unknown",
        }
    }

    pub(crate) fn app(&self) -> Option<&str> {
        match self {
            Route::GetApp { app }
            | Route::List { app }
            | Route::Create { app }
            | Route::Get { app, .. }
            | Route::Destroy { app, .. }
            | Route::Action { app, .. }
            | Route::Wait { app, .. }
            | Route::LeaseGet { app, .. }
            | Route::LeaseAcquire { app, .. }
            | Route::LeaseRelease { app, .. } => Some(app),
            _ => None,
        }
    }

    pub(crate) fn machine_id(&self) -> Option<&str> {
        match self {
            Route::Get { id, .. }
            | Route::Destroy { id, .. }
            | Route::Action { id, .. }
            | Route::Wait { id, .. }
            | Route::LeaseGet { id, .. }
            | Route::LeaseAcquire { id, .. }
            | Route::LeaseRelease { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Accept connections until `shutdown` changes; with `tls`, each connection is a TLS one whose
/// protocol (HTTP/2 or HTTP/1.1) the client chose through ALPN.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) {
    loop {
        tokio::select! {
            res = listener.accept() => {
                let stream = match res {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "flysim accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                shared.conns.accepted();
                // As real servers do: without it, an HTTP/2 response written as two frames
                // waits for the client's delayed ACK (40 ms on Linux) between them.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "flysim could not set TCP_NODELAY");
                }
                let shared = shared.clone();
                let sd = shutdown.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Some(acceptor) = tls else {
                        return serve_connection(stream, shared, sd).await;
                    };
                    match acceptor.accept(stream).await {
                        Ok(stream) => {
                            shared.conns.tls_handshake(stream.get_ref().1.alpn_protocol());
                            serve_connection(stream, shared, sd).await;
                        }
                        Err(e) => tracing::debug!(error = %e, "flysim TLS handshake failed"),
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Serves one connection (HTTP/1.1, or HTTP/2 when the client speaks it) until it closes or the
/// simulator shuts down.
async fn serve_connection<I>(io: I, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(shared.clone(), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {}
        _ = shutdown.changed() => {}
    }
}

fn authorized(header: Option<&HeaderValue>, token: &str) -> bool {
    let Some(v) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let v = v.trim();
    let rest = if let Some(r) = strip_ci(v, "Bearer ") {
        strip_ci(r.trim_start(), "FlyV1 ").unwrap_or(r)
    } else if let Some(r) = strip_ci(v, "FlyV1 ") {
        r
    } else {
        return false;
    };
    rest.trim() == token
}

fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn matches(m: &FaultMatch, route: &str, method: &str) -> bool {
    m.route.as_deref().is_none_or(|r| r == route)
        && m.method
            .as_deref()
            .is_none_or(|x| x.eq_ignore_ascii_case(method))
}

/// Pick the fault for this request: the first matching scripted fault (consumed), else a random one.
fn pick_fault(world: &mut World, route: &str, method: &str) -> Option<FaultKind> {
    if let Some(pos) = world
        .script
        .iter()
        .position(|f| matches(&f.matches, route, method))
    {
        return world.script.remove(pos).map(|f| f.fault);
    }
    let candidates: Vec<(f64, FaultKind)> = world
        .cfg
        .faults
        .random
        .iter()
        .filter(|f| matches(&f.matches, route, method))
        .map(|f| (f.probability.clamp(0.0, 1.0), f.fault.clone()))
        .collect();
    candidates
        .into_iter()
        .find_map(|(p, f)| world.rng.random_bool(p).then_some(f))
}

fn rate_key<'a>(route: &'a Route, req: &'a Req) -> Option<(&'a str, &'a str)> {
    match route {
        Route::Graphql | Route::Unknown => None,
        Route::ListApps => Some(("list_apps", req.param("org_slug").unwrap_or(""))),
        Route::GetApp { app } => Some(("get_app", app)),
        Route::List { app } | Route::Create { app } => Some((route.name(), app)),
        other => other.machine_id().map(|id| (other.name(), id)),
    }
}

/// Handles one request in its own task: Fly does not cancel a request when its caller goes away, so a
/// request whose client timed out (a [`FaultKind::Delay`] longer than the client's timeout) still takes
/// effect, which is the ambiguous case clients must survive. hyper drops the service future when the
/// connection closes; the spawned task is not dropped with it.
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Error> {
    match tokio::spawn(handle_detached(shared, req)).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::ConnectionReset),
    }
}

async fn handle_detached(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Error> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let route = Route::parse(&method, &path);
    let r = Req {
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        nonce: parts
            .headers
            .get("fly-machine-lease-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.clone(),
    };

    let (latency, token_ok, fault) = {
        let mut w = shared.lock();
        let ok = authorized(parts.headers.get(header::AUTHORIZATION), &w.cfg.token);
        let fault = if ok {
            pick_fault(&mut w, route.name(), &method)
        } else {
            None
        };
        if let Some(f) = &fault {
            w.count_fault(&fault_name(f));
        }
        (w.cfg.latency(), ok, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(FaultKind::Delay { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        // Reached only when the connection was still served after the delay.
        shared.lock().count_fault("delay_completed");
    }

    let reply = if !token_ok {
        Some(Reply::error(401, "Authenticate: token validation error"))
    } else {
        match &fault {
            Some(FaultKind::Reset) => None,
            Some(FaultKind::Status { status }) => Some(fault_reply(*status)),
            Some(FaultKind::AmbiguousCreate { status })
                if !matches!(route, Route::Create { .. }) =>
            {
                Some(fault_reply(*status))
            }
            _ => Some(dispatch(&shared, &route, &r, fault.as_ref()).await),
        }
    };

    let status = reply.as_ref().map_or(0, |r| r.status);
    {
        let mut w = shared.lock();
        if status == 429 {
            w.rate_limited += 1;
        }
        let limit = w.cfg.request_log_limit.max(1);
        if w.log.len() >= limit {
            let drop = (limit / 10).max(1).min(w.log.len());
            w.log.drain(..drop);
        }
        let at = arrived.saturating_duration_since(w.start);
        w.log.push(LoggedRequest {
            method,
            path,
            query: raw_query,
            body: String::from_utf8_lossy(&body).into_owned(),
            status,
            route: route.name().to_owned(),
            app: route.app().map(str::to_owned),
            machine_id: route.machine_id().map(str::to_owned),
            at,
        });
    }
    shared.notify.notify_waiters();

    let Some(reply) = reply else {
        return Err(Error::ConnectionReset);
    };
    let request_id = {
        let mut w = shared.lock();
        format!("{}-sim", w.ulid_at(arrived))
    };
    Ok(build_response(reply, &request_id))
}

/// The name a fault is counted under: `status_503`, `reset`, `delay`, `ambiguous_create_502`.
fn fault_name(f: &FaultKind) -> String {
    match f {
        FaultKind::Status { status } => format!("status_{status}"),
        FaultKind::Reset => "reset".to_owned(),
        FaultKind::Delay { .. } => "delay".to_owned(),
        FaultKind::AmbiguousCreate { status } => format!("ambiguous_create_{status}"),
    }
}

fn fault_reply(status: u16) -> Reply {
    let msg = match status {
        408 => "deadline_exceeded: request timed out",
        502 => "bad gateway",
        503 => "unavailable: service unavailable",
        504 => "gateway timeout",
        _ => "internal: internal server error",
    };
    Reply::error(status, msg)
}

async fn dispatch(shared: &Shared, route: &Route, req: &Req, fault: Option<&FaultKind>) -> Reply {
    if let Route::Graphql = route {
        let mut w = shared.lock();
        return graphql::handle(&mut w, &req.body);
    }
    if let Route::Unknown = route {
        return Reply::error(404, "not found");
    }
    {
        let mut w = shared.lock();
        let now = Instant::now();
        if let Some((action, key)) = rate_key(route, req)
            && let Err(retry) = w.take_token(action, key, now)
        {
            let mut r = Reply::error(429, "resource_exhausted: rate limit exceeded");
            r.retry_after = w.cfg.rate_limits.retry_after.then_some(retry);
            return r;
        }
    }
    if let Route::Wait { app, id } = route {
        return api::wait(shared, app, id, req).await;
    }
    let mut w = shared.lock();
    let now = Instant::now();
    if let Some(app) = route.app() {
        w.advance(app, now);
    }
    let reply = api::handle(&mut w, route, req, now);
    match (fault, route) {
        (Some(FaultKind::AmbiguousCreate { status }), Route::Create { .. })
            if reply.status == 200 =>
        {
            fault_reply(*status)
        }
        _ => reply,
    }
}

fn build_response(reply: Reply, request_id: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&reply.body).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("fly-request-id", v);
    }
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_accepts_the_three_schemes_only() {
        let ok = |s: &str| authorized(Some(&HeaderValue::from_str(s).unwrap()), "tok");
        assert!(ok("Bearer tok"));
        assert!(ok("FlyV1 tok"));
        assert!(ok("Bearer FlyV1 tok"));
        assert!(ok("bearer tok"));
        assert!(!ok("Bearer nope"));
        assert!(!ok("tok"));
        assert!(!ok("Basic tok"));
        assert!(!authorized(None, "tok"));
    }

    #[test]
    fn routes_parse() {
        assert_eq!(Route::parse("GET", "/v1/apps/a/machines").name(), "list");
        assert_eq!(
            Route::parse("POST", "/v1/apps/a/machines/m/stop").name(),
            "stop"
        );
        assert_eq!(
            Route::parse("POST", "/v1/apps/a/machines/m/reboot"),
            Route::Unknown
        );
        assert_eq!(
            Route::parse("DELETE", "/v1/apps/a/machines/m/lease").name(),
            "lease_release"
        );
        assert_eq!(Route::parse("POST", "/graphql"), Route::Graphql);
    }
}
