//! Request descriptions built by pure functions (method, path, query, nonce, body), one per
//! endpoint. [`crate::Client`] turns them into HTTP requests and sends them from one place.

use crate::error::Error;
use crate::types::{MachineConfig, MachineState};
use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Characters escaped in a path segment (everything but unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Characters escaped in a query key or value; `,` is kept so `state=started,stopped` reads
/// as documented.
const QUERY: &AsciiSet = &SEGMENT.remove(b',');

/// The lease nonce header.
pub const NONCE_HEADER: &str = "fly-machine-lease-nonce";

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    /// The Machines API: the path is appended to `{machines_base_url}/v1`.
    Machines,
    /// GraphQL: `POST {graphql_base_url}/graphql`.
    GraphQl,
}

/// What a request does; selects its rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List machines (keyed by app).
    List,
    /// Get one machine (keyed by machine id).
    Get,
    /// Create a machine (keyed by app).
    Create,
    /// Start (keyed by machine id).
    Start,
    /// Stop (keyed by machine id).
    Stop,
    /// Suspend (keyed by machine id).
    Suspend,
    /// Destroy (keyed by machine id).
    Destroy,
    /// Wait for a state (keyed by machine id).
    Wait,
    /// Acquire, get or release a lease (keyed by machine id).
    Lease,
    /// List apps over REST (keyed by org).
    ListApps,
    /// A GraphQL query (not rate limited).
    GraphQl,
}

impl Action {
    /// A short name for logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Get => "get",
            Action::Create => "create",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Suspend => "suspend",
            Action::Destroy => "destroy",
            Action::Wait => "wait",
            Action::Lease => "lease",
            Action::ListApps => "list_apps",
            Action::GraphQl => "graphql",
        }
    }
}

/// How a failed request may be retried (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Reads and GraphQL queries: retried on 429, 5xx, timeouts and transport errors.
    Idempotent,
    /// Mutations, create included: retried only when no side effect is proven (a connect
    /// error before sending, 429 or 503).
    Mutation,
}

/// A fully described request, built without I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// Target API.
    pub api: ApiKind,
    /// HTTP method.
    pub method: Method,
    /// Path under `/v1` (Machines) or empty (GraphQL).
    pub path: String,
    /// Query pairs, unencoded.
    pub query: Vec<(String, String)>,
    /// The `fly-machine-lease-nonce` header value.
    pub nonce: Option<String>,
    /// JSON body; `None` means no body and no `Content-Type`.
    pub body: Option<Value>,
    /// Rate-limit action.
    pub action: Action,
    /// Rate-limit key (machine id, app or org).
    pub rate_key: String,
    /// Retry class.
    pub retry: RetryClass,
    /// A minimum per-request timeout (a wait call's server timeout plus a margin).
    pub min_timeout: Option<Duration>,
}

impl ApiRequest {
    fn new(api: ApiKind, method: Method, path: String, action: Action, key: &str) -> Self {
        let retry = if method == Method::GET || action == Action::GraphQl {
            RetryClass::Idempotent
        } else {
            RetryClass::Mutation
        };
        Self {
            api,
            method,
            path,
            query: Vec::new(),
            nonce: None,
            body: None,
            action,
            rate_key: key.to_owned(),
            retry,
            min_timeout: None,
        }
    }

    fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    fn nonce(mut self, nonce: Option<&str>) -> Self {
        self.nonce = nonce.filter(|n| !n.is_empty()).map(str::to_owned);
        self
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The path with its encoded query string (`/apps/a/machines?state=started,stopped`).
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY),
                    utf8_percent_encode(v, QUERY)
                )
            })
            .collect();
        format!("{}?{}", self.path, q.join("&"))
    }
}

fn seg<'a>(what: &'static str, v: &'a str) -> Result<percent_encoding::PercentEncode<'a>, Error> {
    if v.trim().is_empty() {
        return Err(Error::InvalidInput {
            what,
            message: "must not be empty".to_owned(),
        });
    }
    Ok(utf8_percent_encode(v, SEGMENT))
}

fn machines_path(app: &str) -> Result<String, Error> {
    Ok(format!("/apps/{}/machines", seg("app name", app)?))
}

fn machine_path(app: &str, id: &str) -> Result<String, Error> {
    Ok(format!(
        "{}/{}",
        machines_path(app)?,
        seg("machine id", id)?
    ))
}

/// Options of [`crate::Client::list_machines`]. The default lists every non-destroyed machine
/// with its full config (never `summary`, which drops `config` and `host_status`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMachinesOptions {
    /// `include_deleted=true`: also list destroyed machines.
    pub include_deleted: bool,
    /// `region=`: exact region code.
    pub region: Option<String>,
    /// `state=a,b`: keep only these states (comma-separated, as documented).
    pub states: Vec<MachineState>,
    /// `metadata.{key}=value` filters.
    pub metadata: Vec<(String, String)>,
    /// `include_leases=true`: add `lease` to each machine.
    pub include_leases: bool,
}

/// `GET /apps/{app}/machines`.
pub fn list_machines(app: &str, opts: &ListMachinesOptions) -> Result<ApiRequest, Error> {
    let mut r = ApiRequest::new(
        ApiKind::Machines,
        Method::GET,
        machines_path(app)?,
        Action::List,
        app,
    );
    if opts.include_deleted {
        r = r.query("include_deleted", "true");
    }
    if let Some(region) = opts.region.as_deref().filter(|s| !s.is_empty()) {
        r = r.query("region", region);
    }
    if !opts.states.is_empty() {
        let states: Vec<&str> = opts.states.iter().map(MachineState::as_str).collect();
        r = r.query("state", states.join(","));
    }
    for (k, v) in &opts.metadata {
        r = r.query(&format!("metadata.{k}"), v.as_str());
    }
    if opts.include_leases {
        r = r.query("include_leases", "true");
    }
    Ok(r)
}

/// `GET /apps/{app}/machines/{id}`.
pub fn get_machine(app: &str, id: &str) -> Result<ApiRequest, Error> {
    Ok(ApiRequest::new(
        ApiKind::Machines,
        Method::GET,
        machine_path(app, id)?,
        Action::Get,
        id,
    ))
}

/// The body of a create (`POST /apps/{app}/machines`). Only set fields are sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateMachineRequest {
    /// The config (sent back exactly as given).
    pub config: MachineConfig,
    /// Target region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Unique machine name (generated by Fly when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Create without booting: the machine ends up `stopped`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_launch: bool,
    /// Create already cordoned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_service_registration: bool,
    /// Take a lease of this many seconds; the response's `nonce` holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
}

/// `POST /apps/{app}/machines`.
pub fn create_machine(app: &str, req: &CreateMachineRequest) -> Result<ApiRequest, Error> {
    let body = serde_json::to_value(req).map_err(|e| Error::InvalidInput {
        what: "create request",
        message: e.to_string(),
    })?;
    Ok(ApiRequest::new(
        ApiKind::Machines,
        Method::POST,
        machines_path(app)?,
        Action::Create,
        app,
    )
    .body(body))
}

/// `POST /apps/{app}/machines/{id}/start` (no body).
pub fn start_machine(app: &str, id: &str, nonce: Option<&str>) -> Result<ApiRequest, Error> {
    let path = format!("{}/start", machine_path(app, id)?);
    Ok(ApiRequest::new(ApiKind::Machines, Method::POST, path, Action::Start, id).nonce(nonce))
}

/// The body of a stop. The default serializes as `{}` (server and `stop_config` defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StopRequest {
    /// e.g. `SIGTERM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Wait before SIGKILL, as a Go duration (`"10s"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `POST /apps/{app}/machines/{id}/stop` with a JSON body (`{}` by default).
pub fn stop_machine(
    app: &str,
    id: &str,
    req: &StopRequest,
    nonce: Option<&str>,
) -> Result<ApiRequest, Error> {
    let path = format!("{}/stop", machine_path(app, id)?);
    let body = serde_json::to_value(req).map_err(|e| Error::InvalidInput {
        what: "stop request",
        message: e.to_string(),
    })?;
    Ok(
        ApiRequest::new(ApiKind::Machines, Method::POST, path, Action::Stop, id)
            .nonce(nonce)
            .body(body),
    )
}

/// `POST /apps/{app}/machines/{id}/suspend` (no body).
pub fn suspend_machine(app: &str, id: &str, nonce: Option<&str>) -> Result<ApiRequest, Error> {
    let path = format!("{}/suspend", machine_path(app, id)?);
    Ok(ApiRequest::new(ApiKind::Machines, Method::POST, path, Action::Suspend, id).nonce(nonce))
}

/// Which query parameter a destroy uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DestroyParam {
    /// `?force=true` (documented); nothing is sent when `force` is false.
    #[default]
    Force,
    /// `?kill=<true|false>`, always sent, as fly-go and the Go autoscaler do.
    Kill,
}

/// Options of a destroy. The default is `force: true` (`?force=true`), like the Go autoscaler
/// (which sends `?kill=true`): a started machine is killed rather than refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Kill the machine if it is running.
    pub force: bool,
    /// The parameter name used to say so.
    pub param: DestroyParam,
}

impl Default for DestroyOptions {
    fn default() -> Self {
        Self {
            force: true,
            param: DestroyParam::Force,
        }
    }
}

/// `DELETE /apps/{app}/machines/{id}` with `force` or `kill`.
pub fn destroy_machine(
    app: &str,
    id: &str,
    opts: &DestroyOptions,
    nonce: Option<&str>,
) -> Result<ApiRequest, Error> {
    let mut r = ApiRequest::new(
        ApiKind::Machines,
        Method::DELETE,
        machine_path(app, id)?,
        Action::Destroy,
        id,
    )
    .nonce(nonce);
    match opts.param {
        DestroyParam::Force if opts.force => r = r.query("force", "true"),
        DestroyParam::Force => {}
        DestroyParam::Kill => r = r.query("kill", if opts.force { "true" } else { "false" }),
    }
    Ok(r)
}

/// Options of a wait (`GET /apps/{app}/machines/{id}/wait`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitOptions {
    /// States to wait for (comma-separated on the wire); empty means the server default
    /// (`started`).
    pub states: Vec<MachineState>,
    /// Server-side timeout, sent in whole seconds clamped to 1–60 (absent: server default 60).
    pub timeout: Option<Duration>,
    /// `version` (the machine's `instance_id`); waiting for `stopped` needs it or `instance_id`.
    pub version: Option<String>,
    /// Deprecated alias of `version`, as fly-go v0.1.36 sends it.
    pub instance_id: Option<String>,
    /// `from_event_id`.
    pub from_event_id: Option<String>,
}

/// Clamps a wait timeout to whole seconds in 1–60.
fn wait_seconds(t: Duration) -> u64 {
    t.as_secs().clamp(1, 60)
}

/// `GET /apps/{app}/machines/{id}/wait`. The per-request timeout is raised to the wait's own
/// timeout (60 s when unset) plus 5 s.
pub fn wait_machine(app: &str, id: &str, opts: &WaitOptions) -> Result<ApiRequest, Error> {
    let path = format!("{}/wait", machine_path(app, id)?);
    let mut r = ApiRequest::new(ApiKind::Machines, Method::GET, path, Action::Wait, id);
    if !opts.states.is_empty() {
        let states: Vec<&str> = opts.states.iter().map(MachineState::as_str).collect();
        r = r.query("state", states.join(","));
    }
    let secs = opts.timeout.map_or(60, wait_seconds);
    if opts.timeout.is_some() {
        r = r.query("timeout", secs.to_string());
    }
    if let Some(v) = opts.version.as_deref().filter(|s| !s.is_empty()) {
        r = r.query("version", v);
    }
    if let Some(v) = opts.instance_id.as_deref().filter(|s| !s.is_empty()) {
        r = r.query("instance_id", v);
    }
    if let Some(v) = opts.from_event_id.as_deref().filter(|s| !s.is_empty()) {
        r = r.query("from_event_id", v);
    }
    r.min_timeout = Some(Duration::from_secs(secs + 5));
    Ok(r)
}

/// The body of a lease acquire or refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Lease duration in seconds.
    pub ttl: u64,
    /// Free-text description.
    pub description: Option<String>,
}

impl Default for LeaseRequest {
    fn default() -> Self {
        Self {
            ttl: 30,
            description: None,
        }
    }
}

/// `POST /apps/{app}/machines/{id}/lease`: body `{"ttl":N,"description":…}` (documented) and
/// `?ttl=N` (what fly-go sends); with a nonce it refreshes the held lease.
pub fn acquire_lease(
    app: &str,
    id: &str,
    req: &LeaseRequest,
    nonce: Option<&str>,
) -> Result<ApiRequest, Error> {
    let path = format!("{}/lease", machine_path(app, id)?);
    let mut body = json!({ "ttl": req.ttl });
    if let Some(d) = &req.description {
        body["description"] = Value::String(d.clone());
    }
    Ok(
        ApiRequest::new(ApiKind::Machines, Method::POST, path, Action::Lease, id)
            .query("ttl", req.ttl.to_string())
            .nonce(nonce)
            .body(body),
    )
}

/// `GET /apps/{app}/machines/{id}/lease`.
pub fn get_lease(app: &str, id: &str) -> Result<ApiRequest, Error> {
    let path = format!("{}/lease", machine_path(app, id)?);
    Ok(ApiRequest::new(
        ApiKind::Machines,
        Method::GET,
        path,
        Action::Lease,
        id,
    ))
}

/// `DELETE /apps/{app}/machines/{id}/lease` with the nonce header (required).
pub fn release_lease(app: &str, id: &str, nonce: &str) -> Result<ApiRequest, Error> {
    if nonce.is_empty() {
        return Err(Error::InvalidInput {
            what: "lease nonce",
            message: "must not be empty".to_owned(),
        });
    }
    let path = format!("{}/lease", machine_path(app, id)?);
    Ok(
        ApiRequest::new(ApiKind::Machines, Method::DELETE, path, Action::Lease, id)
            .nonce(Some(nonce)),
    )
}

/// `GET /apps?org_slug=<slug>`.
pub fn list_apps(org_slug: &str) -> Result<ApiRequest, Error> {
    seg("org slug", org_slug)?;
    Ok(ApiRequest::new(
        ApiKind::Machines,
        Method::GET,
        "/apps".to_owned(),
        Action::ListApps,
        org_slug,
    )
    .query("org_slug", org_slug))
}

/// Collapses runs of whitespace into single spaces, as fly-go does before sending a query.
pub fn compact_query(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `POST /graphql` with `{"query": <compacted>, "variables": …}`.
pub fn graphql(query: &str, variables: Value) -> ApiRequest {
    ApiRequest::new(
        ApiKind::GraphQl,
        Method::POST,
        String::new(),
        Action::GraphQl,
        "",
    )
    .body(json!({ "query": compact_query(query), "variables": variables }))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
