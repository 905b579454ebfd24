//! The HTTP client: one `send()` that rate-limits, retries, times out and maps statuses.

use crate::config::{ClientConfig, RetryPolicy};
use crate::error::{Error, from_response, snippet};
use crate::graphql::{self, AppsData, CurrentReleaseData, OrganizationData};
use crate::ratelimit::RateLimiter;
use crate::request::{self, ApiKind, ApiRequest, NONCE_HEADER};
use crate::responses::{
    App, Lease, LeaseEnvelope, ListAppsResponse, OrgApp, Release, StartResponse, WaitResponse,
};
use crate::retry::{parse_retry_after, retry_delay, should_retry};
use crate::types::Machine;
use crate::{
    CreateMachineRequest, DestroyOptions, LeaseRequest, ListMachinesOptions, StopRequest,
    WaitOptions,
};
use bytes::Bytes;
use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{ConfigBuilderExt as _, HttpsConnector};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Largest response body read (32 MiB); a list of thousands of machines fits comfortably.
const MAX_BODY: usize = 32 << 20;

/// The least time left in a call's budget for which another attempt is started (after a
/// rate-limiter wait or a backoff); with less, the call ends with the error it has.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// The total budget of one call: [`RetryPolicy::max_total`], stretched to the attempt timeout
/// for a request that asks for a longer one (a wait call's server-side timeout plus a margin),
/// so that such a call gets at least one whole attempt.
fn call_budget(
    max_total: Duration,
    min_timeout: Option<Duration>,
    per_attempt: Duration,
) -> Duration {
    match min_timeout {
        Some(_) => max_total.max(per_attempt),
        None => max_total,
    }
}

type Http = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client's connections: HTTP/1.1, or HTTP/2 when TLS negotiates it through ALPN.
///
/// - `auto` offers `h2` and `http/1.1` through ALPN (plain `http://` is HTTP/1.1). Over HTTP/1.1
///   it opens one connection per call in flight and keeps up to
///   [`ClientConfig::pool_max_idle_per_host`] of them idle for
///   [`ClientConfig::pool_idle_timeout`], so that the next tick reuses them.
/// - Once a server has answered over HTTP/2, its calls go to the `h2` pools in turn instead:
///   HTTP/2 only, one connection per host each, opened by the first call while the others wait
///   for it. Several connections because a server caps the streams of one
///   (`SETTINGS_MAX_CONCURRENT_STREAMS`) and hyper queues the calls beyond the cap rather than
///   opening another connection. Only after a first answer: while the protocol is unknown,
///   every call of a burst would open its own TLS connection to learn it.
/// - A transport error in an `h2` pool sends that API's calls back to `auto` until the next
///   HTTP/2 answer, so a server that stops offering HTTP/2 costs one failed call.
struct Transport {
    auto: Http,
    h2: Vec<Http>,
    next_h2: AtomicUsize,
    /// Per API ([`ApiKind`]): the server answered over HTTP/2.
    speaks_h2: [AtomicBool; 2],
}

impl Transport {
    fn new(cfg: &ClientConfig) -> Result<Transport, Error> {
        let bad_tls = |message: String| Error::InvalidConfig {
            field: "tls",
            message,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad_tls(e.to_string()))?;
        let tls = if cfg.tls_root_certificates_der.is_empty() {
            versions.with_webpki_roots().with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for der in &cfg.tls_root_certificates_der {
                roots
                    .add(rustls::pki_types::CertificateDer::from(der.clone()))
                    .map_err(|e| bad_tls(format!("a root certificate is not usable: {e}")))?;
            }
            versions.with_root_certificates(roots).with_no_client_auth()
        };
        let pool = |h2_only: bool| {
            let mut connector = HttpConnector::new();
            connector.enforce_http(false);
            connector.set_connect_timeout(Some(cfg.connect_timeout));
            connector.set_nodelay(true);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http();
            let https = if h2_only {
                https.enable_http2().wrap_connector(connector)
            } else {
                https
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(connector)
            };
            HyperClient::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(cfg.pool_idle_timeout)
                .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
                .http2_only(h2_only)
                .build(https)
        };
        Ok(Transport {
            auto: pool(false),
            h2: (0..cfg.http2_connections.max(1))
                .map(|_| pool(true))
                .collect(),
            next_h2: AtomicUsize::new(0),
            speaks_h2: [AtomicBool::new(false), AtomicBool::new(false)],
        })
    }

    /// Sends one request through the right pool and learns the server's protocol.
    async fn request(
        &self,
        api: ApiKind,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        let speaks_h2 = &self.speaks_h2[match api {
            ApiKind::Machines => 0,
            ApiKind::GraphQl => 1,
        }];
        if speaks_h2.load(Ordering::Relaxed) {
            let i = self.next_h2.fetch_add(1, Ordering::Relaxed) % self.h2.len();
            let resp = self.h2[i].request(req).await;
            if resp.is_err() {
                speaks_h2.store(false, Ordering::Relaxed);
            }
            resp
        } else {
            let resp = self.auto.request(req).await?;
            if resp.version() == http::Version::HTTP_2 {
                speaks_h2.store(true, Ordering::Relaxed);
            }
            Ok(resp)
        }
    }
}

/// A Fly Machines API + GraphQL client. Cheap to clone (an `Arc` inside), `Send + Sync`.
/// Connections are pooled and reused across calls and ticks (HTTP/1.1, or HTTP/2 when TLS
/// negotiates it through ALPN); see [`ClientConfig::http2_connections`] and
/// [`ClientConfig::pool_max_idle_per_host`].
///
/// # Time bound of a call
///
/// Every method returns within [`RetryPolicy::max_total`] of the moment its first request may
/// go out (plus scheduling slack of a few milliseconds), whatever the server does: every
/// attempt, every backoff or `Retry-After` wait and the rate-limiter waits of the retries all
/// fit in that one budget (see [`RetryPolicy`]). The wait for the first token is pacing, bounded
/// by [`crate::RateLimitPolicy`]'s `max_wait`. The one exception is [`Client::wait_machine`], whose budget is at least
/// its own attempt timeout (the server-side wait plus 5 s). [`Client::org_apps`] makes one
/// call per page, each with its own budget.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: Transport,
    machines_base: String,
    graphql_url: String,
    flaps_auth: HeaderValue,
    graphql_auth: HeaderValue,
    user_agent: HeaderValue,
    timeout: Duration,
    retry: RetryPolicy,
    limiter: RateLimiter,
    max_pages: usize,
    rng: Mutex<SmallRng>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("machines_base_url", &self.inner.machines_base)
            .field("graphql_url", &self.inner.graphql_url)
            .field("user_agent", &self.inner.user_agent)
            .field("token", &"[REDACTED]")
            .field("timeout", &self.inner.timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// A successful (2xx) response.
struct Response {
    body: Bytes,
}

fn base_url(field: &'static str, url: &str) -> Result<String, Error> {
    let bad = |message: String| Error::InvalidConfig { field, message };
    let trimmed = url.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| bad(format!("`{trimmed}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(bad(format!(
                "`{trimmed}` must start with http:// or https://"
            )));
        }
    }
    if uri.authority().is_none() {
        return Err(bad(format!("`{trimmed}` has no host")));
    }
    if uri.query().is_some() {
        return Err(bad(format!("`{trimmed}` must not have a query string")));
    }
    Ok(trimmed.to_owned())
}

fn auth_header(value: Option<String>) -> Result<HeaderValue, Error> {
    let value = value.ok_or_else(|| Error::InvalidConfig {
        field: "token",
        message: "no token found (empty after removing `Bearer `/`FlyV1 ` prefixes)".to_owned(),
    })?;
    let mut hv = HeaderValue::from_str(&value).map_err(|_| Error::InvalidConfig {
        field: "token",
        message: "contains characters not allowed in an HTTP header".to_owned(),
    })?;
    hv.set_sensitive(true);
    Ok(hv)
}

fn decode<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        what,
        snippet: snippet(body),
        source,
    })
}

/// Decodes a body that may legitimately be empty.
fn decode_or_default<T: DeserializeOwned + Default>(
    what: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    decode::<Option<T>>(what, body).map(Option::unwrap_or_default)
}

fn missing(what: &'static str, field: &str, body: &[u8]) -> Error {
    Error::Decode {
        what,
        snippet: snippet(body),
        source: serde::de::Error::custom(format!("missing `{field}`")),
    }
}

impl Client {
    /// Builds a client (no I/O). Fails on an invalid base URL, an empty token, a token
    /// that cannot be a header value, or a zero `timeout` or `retry.max_total`.
    pub fn new(cfg: ClientConfig) -> Result<Client, Error> {
        let machines_base = base_url("machines_base_url", &cfg.machines_base_url)?;
        let graphql_url = format!(
            "{}/graphql",
            base_url("graphql_base_url", &cfg.graphql_base_url)?
        );
        let token = cfg.token.expose_secret();
        let flaps_auth = auth_header(crate::auth::flaps_authorization(token))?;
        let graphql_auth = auth_header(crate::auth::graphql_authorization(token))?;
        let user_agent =
            HeaderValue::from_str(&cfg.user_agent).map_err(|_| Error::InvalidConfig {
                field: "user_agent",
                message: format!("`{}` is not a valid header value", cfg.user_agent),
            })?;
        if cfg.timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "timeout",
                message: "must be greater than zero".to_owned(),
            });
        }
        if cfg.retry.max_total.is_zero() {
            return Err(Error::InvalidConfig {
                field: "retry.max_total",
                message: "must be greater than zero".to_owned(),
            });
        }

        let http = Transport::new(&cfg)?;

        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                machines_base,
                graphql_url,
                flaps_auth,
                graphql_auth,
                user_agent,
                timeout: cfg.timeout,
                retry: cfg.retry,
                limiter: RateLimiter::new(cfg.rate_limit),
                max_pages: cfg.max_graphql_pages.max(1),
                rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            }),
        })
    }

    /// Sends a request: client-side rate limit, then attempts with the retry policy. Returns
    /// the 2xx response or the typed error of the last attempt.
    ///
    /// The first token is waited for (bounded by the limiter's `max_wait`); then everything
    /// happens before one deadline, [`call_budget`] later: the rate-limiter wait of every retry
    /// is refused past it, each attempt's timeout is cut to
    /// it, and a backoff (computed or `Retry-After`) that would leave less than
    /// [`MIN_ATTEMPT`] before it is not slept: the last error is returned at once.
    async fn send(&self, req: &ApiRequest) -> Result<Response, Error> {
        let inner = &*self.inner;
        let policy = &inner.retry;
        let per_attempt = req
            .min_timeout
            .map_or(inner.timeout, |m| m.max(inner.timeout));
        let budget = call_budget(policy.max_total, req.min_timeout, per_attempt);
        // The first token is pacing, not retrying: the limiter's own `max_wait` bounds it, and
        // the budget starts once the call may go out (so a tick's creates, paced at Fly's 1/s,
        // are not refused for waiting their turn).
        inner
            .limiter
            .acquire(req.action, &req.rate_key, Duration::MAX)
            .await?;
        let deadline = Instant::now() + budget;
        let attempts = policy.max_attempts.max(1);
        let mut attempt = 1;
        let mut last: Option<Error> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let acquired = if attempt == 1 {
                Ok(())
            } else {
                inner
                    .limiter
                    .acquire(req.action, &req.rate_key, left.saturating_sub(MIN_ATTEMPT))
                    .await
            };
            if let Err(e) = acquired {
                // On a retry the server's answer says more than the local refusal.
                return Err(match last {
                    Some(last) => {
                        tracing::debug!(
                            action = req.action.as_str(),
                            attempt,
                            error = %e,
                            "retry budget exhausted while rate limited"
                        );
                        last
                    }
                    None => e,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Only reachable when a timer fired late; the budget is spent.
                return Err(last.unwrap_or(Error::Timeout { timeout: budget }));
            }
            let err = match self.attempt(req, attempt, per_attempt.min(left)).await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if attempt >= attempts || !should_retry(req.retry, &err) {
                return Err(err);
            }
            let jitter = inner
                .rng
                .lock()
                .map_or(1.0, |mut r| r.random_range(0.5..=1.0));
            let delay = retry_delay(policy, attempt, &err, jitter);
            let left = deadline.saturating_duration_since(Instant::now());
            if delay.saturating_add(MIN_ATTEMPT) > left {
                tracing::debug!(
                    action = req.action.as_str(),
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    left_ms = left.as_millis() as u64,
                    "retry budget exhausted"
                );
                return Err(err);
            }
            tracing::debug!(
                action = req.action.as_str(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            last = Some(err);
            attempt += 1;
        }
    }

    /// One attempt: build the HTTP request, send it under `timeout`, map the status.
    async fn attempt(
        &self,
        req: &ApiRequest,
        attempt: u32,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let inner = &*self.inner;
        let (url, auth, content_type) = match req.api {
            ApiKind::Machines => (
                format!("{}/v1{}", inner.machines_base, req.path_and_query()),
                &inner.flaps_auth,
                "application/json",
            ),
            ApiKind::GraphQl => (
                inner.graphql_url.clone(),
                &inner.graphql_auth,
                "application/json; charset=utf-8",
            ),
        };
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(&url)
            .header(AUTHORIZATION, auth.clone())
            .header(USER_AGENT, inner.user_agent.clone());
        builder = match req.api {
            ApiKind::Machines => builder.header(ACCEPT, "application/json"),
            ApiKind::GraphQl => builder.header(ACCEPT, "application/json; charset=utf-8"),
        };
        if let Some(nonce) = &req.nonce {
            let hv = HeaderValue::from_str(nonce).map_err(|_| Error::InvalidInput {
                what: "lease nonce",
                message: "not a valid header value".to_owned(),
            })?;
            builder = builder.header(NONCE_HEADER, hv);
        }
        let body = match &req.body {
            Some(v) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Bytes::from(serde_json::to_vec(v).map_err(|e| Error::InvalidInput {
                    what: "request body",
                    message: e.to_string(),
                })?)
            }
            None => Bytes::new(),
        };
        let http_req = builder
            .body(Full::new(body))
            .map_err(|e| Error::InvalidInput {
                what: "request",
                message: e.to_string(),
            })?;

        let t0 = Instant::now();
        let exchange = async {
            let resp =
                inner
                    .http
                    .request(req.api, http_req)
                    .await
                    .map_err(|e| Error::Transport {
                        connect: e.is_connect(),
                        source: Box::new(e),
                    })?;
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|source| Error::Transport {
                    connect: false,
                    source,
                })?
                .to_bytes();
            Ok::<_, Error>((parts, bytes))
        };
        let (parts, body) = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(method = %req.method, path = %req.path, attempt, error = %e, "fly api request failed");
                return Err(e);
            }
            Err(_) => {
                tracing::debug!(method = %req.method, path = %req.path, attempt, timeout_ms = timeout.as_millis() as u64, "fly api request timed out");
                return Err(Error::Timeout { timeout });
            }
        };
        let request_id = parts
            .headers
            .get("fly-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        tracing::debug!(
            method = %req.method,
            path = %req.path_and_query(),
            attempt,
            status = parts.status.as_u16(),
            request_id = request_id.as_deref().unwrap_or(""),
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "fly api response"
        );
        if parts.status.is_success() {
            return Ok(Response { body });
        }
        let retry_after = parts
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        Err(from_response(
            parts.status.as_u16(),
            &body,
            request_id,
            retry_after,
        ))
    }

    /// Lists the app's machines (`GET /v1/apps/{app}/machines`). No pagination exists; the
    /// whole app comes back in one array.
    pub async fn list_machines(
        &self,
        app: &str,
        opts: &ListMachinesOptions,
    ) -> Result<Vec<Machine>, Error> {
        let resp = self.send(&request::list_machines(app, opts)?).await?;
        decode_or_default("machine list", &resp.body)
    }

    /// Gets one machine. A missing machine is [`Error::NotFound`].
    pub async fn get_machine(&self, app: &str, id: &str) -> Result<Machine, Error> {
        let resp = self.send(&request::get_machine(app, id)?).await?;
        decode("machine", &resp.body)
    }

    /// Creates (launches) a machine. Never retried after an ambiguous failure (408, 500, 502,
    /// 504, timeout, mid-flight transport error): re-list and look for the machine instead.
    pub async fn create_machine(
        &self,
        app: &str,
        req: &CreateMachineRequest,
    ) -> Result<Machine, Error> {
        let resp = self.send(&request::create_machine(app, req)?).await?;
        decode("created machine", &resp.body)
    }

    /// Starts a machine. A 200 whose body says `"status":"error"` is [`Error::StartFailed`].
    pub async fn start_machine(
        &self,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<StartResponse, Error> {
        let resp = self.send(&request::start_machine(app, id, nonce)?).await?;
        let start: StartResponse = decode_or_default("start response", &resp.body)?;
        if start.status == "error" {
            return Err(Error::StartFailed {
                message: if start.message.is_empty() {
                    "start returned status error".to_owned()
                } else {
                    start.message
                },
            });
        }
        Ok(start)
    }

    /// Stops a machine (`{}` body by default).
    pub async fn stop_machine(
        &self,
        app: &str,
        id: &str,
        req: &StopRequest,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        self.send(&request::stop_machine(app, id, req, nonce)?)
            .await
            .map(drop)
    }

    /// Suspends a machine.
    pub async fn suspend_machine(
        &self,
        app: &str,
        id: &str,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        self.send(&request::suspend_machine(app, id, nonce)?)
            .await
            .map(drop)
    }

    /// Destroys a machine (`?force=true` by default, see [`DestroyOptions`]).
    pub async fn destroy_machine(
        &self,
        app: &str,
        id: &str,
        opts: &DestroyOptions,
        nonce: Option<&str>,
    ) -> Result<(), Error> {
        self.send(&request::destroy_machine(app, id, opts, nonce)?)
            .await
            .map(drop)
    }

    /// Waits for a state server-side. A 408 ([`Error::Api`] with status 408) means the wait
    /// timed out; it is not retried.
    pub async fn wait_machine(
        &self,
        app: &str,
        id: &str,
        opts: &WaitOptions,
    ) -> Result<WaitResponse, Error> {
        let resp = self.send(&request::wait_machine(app, id, opts)?).await?;
        decode_or_default("wait response", &resp.body)
    }

    /// Acquires a lease (or refreshes it when `nonce` is the held lease's nonce). 409 when
    /// someone else holds one.
    pub async fn acquire_lease(
        &self,
        app: &str,
        id: &str,
        req: &LeaseRequest,
        nonce: Option<&str>,
    ) -> Result<Lease, Error> {
        let resp = self
            .send(&request::acquire_lease(app, id, req, nonce)?)
            .await?;
        let env: LeaseEnvelope = decode("lease", &resp.body)?;
        env.data.ok_or_else(|| missing("lease", "data", &resp.body))
    }

    /// Gets the current lease. 404 ([`Error::NotFound`]) when there is none.
    pub async fn get_lease(&self, app: &str, id: &str) -> Result<Lease, Error> {
        let resp = self.send(&request::get_lease(app, id)?).await?;
        let env: LeaseEnvelope = decode("lease", &resp.body)?;
        env.data.ok_or_else(|| missing("lease", "data", &resp.body))
    }

    /// Releases a lease (the nonce is required).
    pub async fn release_lease(&self, app: &str, id: &str, nonce: &str) -> Result<(), Error> {
        self.send(&request::release_lease(app, id, nonce)?)
            .await
            .map(drop)
    }

    /// Lists an org's apps over REST (`GET /v1/apps?org_slug=`).
    pub async fn list_apps(&self, org_slug: &str) -> Result<Vec<App>, Error> {
        let resp = self.send(&request::list_apps(org_slug)?).await?;
        let list: ListAppsResponse = decode_or_default("app list", &resp.body)?;
        Ok(list.apps)
    }

    /// The app's current release over GraphQL. `Ok(None)` when the app has no release yet
    /// (`currentRelease: null`). An unknown app is a [`Error::GraphQl`] (`Could not find App`).
    pub async fn current_release(&self, app: &str) -> Result<Option<Release>, Error> {
        let req = request::graphql(graphql::CURRENT_RELEASE_QUERY, json!({ "appName": app }));
        let resp = self.send(&req).await?;
        let data: Option<CurrentReleaseData> = graphql::decode("current release", &resp.body)?;
        match data.and_then(|d| d.app) {
            Some(a) => Ok(a.current_release),
            None => Err(Error::GraphQl {
                message: format!("app `{app}` not found (null `app` in response)"),
            }),
        }
    }

    /// All apps of an org over GraphQL (wildcard mode): the `organization` query for the id,
    /// then `apps` pages of 200 while `hasNextPage`, up to the configured page cap.
    pub async fn org_apps(&self, org_slug: &str) -> Result<Vec<OrgApp>, Error> {
        let req = request::graphql(graphql::ORGANIZATION_QUERY, json!({ "slug": org_slug }));
        let resp = self.send(&req).await?;
        let data: Option<OrganizationData> = graphql::decode("organization", &resp.body)?;
        let org_id = data
            .and_then(|d| d.organization)
            .map(|o| o.id)
            .ok_or_else(|| Error::GraphQl {
                message: format!(
                    "organization `{org_slug}` not found (null `organization` in response)"
                ),
            })?;
        let mut apps = Vec::new();
        let mut after: Option<String> = None;
        for page in 1..=self.inner.max_pages {
            let vars = json!({ "org": org_id, "role": serde_json::Value::Null, "after": after });
            let resp = self
                .send(&request::graphql(graphql::APPS_PAGE_QUERY, vars))
                .await?;
            let data: AppsData = graphql::decode("apps page", &resp.body)?;
            apps.extend(data.apps.nodes);
            let next = data.apps.page_info.end_cursor.filter(|c| !c.is_empty());
            if !data.apps.page_info.has_next_page || next.is_none() {
                tracing::debug!(
                    org = org_slug,
                    pages = page,
                    apps = apps.len(),
                    "listed org apps"
                );
                return Ok(apps);
            }
            after = next;
        }
        Err(Error::TooManyPages {
            what: "org apps",
            pages: self.inner.max_pages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated() {
        assert_eq!(
            base_url("f", "https://api.machines.dev/").unwrap(),
            "https://api.machines.dev"
        );
        assert_eq!(
            base_url("f", "http://_api.internal:4280").unwrap(),
            "http://_api.internal:4280"
        );
        assert_eq!(
            base_url("f", "http://127.0.0.1:1/prefix/").unwrap(),
            "http://127.0.0.1:1/prefix"
        );
        for bad in ["api.machines.dev", "ftp://x", "", "http://x/?a=b"] {
            assert!(
                matches!(
                    base_url("f", bad),
                    Err(Error::InvalidConfig { field: "f", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn connection_set_up_is_validated() {
        let mut cfg = ClientConfig::new("t");
        cfg.http2_connections = 0;
        let client = Client::new(cfg.clone()).unwrap();
        assert_eq!(client.inner.http.h2.len(), 1, "0 is treated as 1");
        cfg.http2_connections = 3;
        assert_eq!(Client::new(cfg.clone()).unwrap().inner.http.h2.len(), 3);
        cfg.tls_root_certificates_der = vec![b"not a certificate".to_vec()];
        assert!(matches!(
            Client::new(cfg),
            Err(Error::InvalidConfig { field: "tls", .. })
        ));
    }

    #[test]
    fn auth_header_is_sensitive_and_errors_hide_the_token() {
        let hv = auth_header(Some("FlyV1 fm2_x".into())).unwrap();
        assert!(hv.is_sensitive());
        let e = auth_header(Some("Bearer CANARY\nX".into())).unwrap_err();
        assert!(!e.to_string().contains("CANARY"));
        assert!(matches!(
            auth_header(None),
            Err(Error::InvalidConfig { field: "token", .. })
        ));
    }
}
