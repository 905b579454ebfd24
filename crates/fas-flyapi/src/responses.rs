//! Response bodies other than [`crate::Machine`], decoded tolerantly.

use crate::types::{lenient_i64, lenient_i64_zero, null_default};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of a successful start: `{"previous_state":"stopped","migrated":false,"new_host":""}`
/// (fly-go also knows `message` and `status`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StartResponse {
    /// The state before the start.
    #[serde(deserialize_with = "null_default")]
    pub previous_state: String,
    /// Whether the machine moved host.
    #[serde(deserialize_with = "null_default")]
    pub migrated: bool,
    /// The new host, if it moved.
    #[serde(deserialize_with = "null_default")]
    pub new_host: String,
    /// Message (older shape).
    #[serde(deserialize_with = "null_default")]
    pub message: String,
    /// `status`; `"error"` makes the start a failure ([`crate::Error::StartFailed`]).
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The body of a successful wait: `{"ok":true}` or `{ok, state, version, event_id}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WaitResponse {
    /// `ok`.
    #[serde(deserialize_with = "null_default")]
    pub ok: bool,
    /// The state reached, when reported.
    pub state: Option<String>,
    /// The machine version, when reported.
    pub version: Option<String>,
    /// The event id, when reported.
    pub event_id: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A machine lease (the `data` of `{"status":"success","data":{…}}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Lease {
    /// The nonce to send in `fly-machine-lease-nonce`.
    #[serde(deserialize_with = "null_default")]
    pub nonce: String,
    /// Unix seconds.
    #[serde(deserialize_with = "lenient_i64")]
    pub expires_at: Option<i64>,
    /// Who holds it.
    #[serde(deserialize_with = "null_default")]
    pub owner: String,
    /// Description.
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    /// Lease version.
    #[serde(deserialize_with = "null_default")]
    pub version: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The lease wrapper `{status, data, message, code}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LeaseEnvelope {
    pub(crate) data: Option<Lease>,
}

/// An organization as embedded in an [`App`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AppOrganization {
    /// Name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Slug.
    #[serde(deserialize_with = "null_default")]
    pub slug: String,
    /// Unknown fields (e.g. `internal_numeric_id`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An app from `GET /v1/apps?org_slug=`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct App {
    /// App id.
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// App name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Machine count.
    #[serde(deserialize_with = "lenient_i64")]
    pub machine_count: Option<i64>,
    /// Volume count.
    #[serde(deserialize_with = "lenient_i64")]
    pub volume_count: Option<i64>,
    /// Network (kept raw).
    pub network: Option<Value>,
    /// Status.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// The organization.
    pub organization: Option<AppOrganization>,
    /// Unknown fields (e.g. `internal_numeric_id`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{"total_apps":N,"apps":[…]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ListAppsResponse {
    #[serde(deserialize_with = "null_default")]
    pub(crate) apps: Vec<App>,
}

/// A release's author.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleaseUser {
    /// User id.
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// Email.
    #[serde(deserialize_with = "null_default")]
    pub email: String,
    /// Name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

/// An app's current release (GraphQL `currentReleaseUnprocessed`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Release {
    /// Release id.
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// Release version (0 when missing).
    #[serde(deserialize_with = "lenient_i64_zero")]
    pub version: i64,
    /// Description.
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    /// Reason.
    #[serde(deserialize_with = "null_default")]
    pub reason: String,
    /// `pending`, `running`, `complete`, `failed` or `interrupted`.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// The image.
    pub image_ref: Option<String>,
    /// Whether the release is stable.
    #[serde(deserialize_with = "null_default")]
    pub stable: bool,
    /// Author.
    pub user: Option<ReleaseUser>,
    /// ISO 8601.
    #[serde(deserialize_with = "null_default")]
    pub created_at: String,
}

impl Release {
    /// True while a deploy is running: `status == "running"`, exactly as the Go autoscaler
    /// decides. `pending` is *not* counted (a release stays `pending` only until flyctl starts
    /// rolling it out, and counting it would block scaling of apps whose release was created
    /// but never run).
    pub fn in_progress(&self) -> bool {
        self.status == "running"
    }
}

/// The current release of an app in an org listing (`currentRelease { createdAt status }`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OrgAppRelease {
    /// ISO 8601.
    #[serde(deserialize_with = "null_default")]
    pub created_at: String,
    /// Release status.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
}

/// An organization reference in an org app listing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgRef {
    /// Slug.
    #[serde(deserialize_with = "null_default")]
    pub slug: String,
    /// Name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
}

/// An app from the GraphQL `apps` listing (wildcard mode).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OrgApp {
    /// App id.
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// App name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Whether it is deployed.
    #[serde(deserialize_with = "null_default")]
    pub deployed: bool,
    /// Hostname.
    #[serde(deserialize_with = "null_default")]
    pub hostname: String,
    /// Platform version (`machines`).
    #[serde(deserialize_with = "null_default")]
    pub platform_version: String,
    /// Organization.
    pub organization: Option<OrgRef>,
    /// Current release.
    pub current_release: Option<OrgAppRelease>,
    /// Status.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
}
