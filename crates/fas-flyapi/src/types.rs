//! The Machine object and its parts, decoded tolerantly (`null` and missing fields take their
//! defaults, unknown fields are kept in `extra`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Deserializes `null` as the type's default (Go emits `null` for nil slices and maps).
pub(crate) fn null_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// Deserializes an integer that may also arrive as a numeric string or a float; anything else
/// (or `null`) becomes `None` rather than an error.
pub(crate) fn lenient_i64<'de, D>(de: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(de)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Like [`lenient_i64`], with 0 for anything unusable.
pub(crate) fn lenient_i64_zero<'de, D>(de: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(lenient_i64(de)?.unwrap_or(0))
}

/// A machine state. Every documented state has a variant; anything else is kept verbatim in
/// [`MachineState::Unknown`]. Serialized as the wire string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MachineState {
    /// `created`: exists, never booted (or fresh from a create).
    Created,
    /// `creating` (transient).
    Creating,
    /// `starting` (transient).
    Starting,
    /// `started`.
    Started,
    /// `stopping` (transient).
    Stopping,
    /// `stopped`.
    Stopped,
    /// `restarting` (transient).
    Restarting,
    /// `suspending` (transient).
    Suspending,
    /// `suspended`.
    Suspended,
    /// `updating` (transient).
    Updating,
    /// `replacing` (transient).
    Replacing,
    /// `replaced` (terminal, only when an old version is queried).
    Replaced,
    /// `migrated` (terminal).
    Migrated,
    /// `destroying` (transient).
    Destroying,
    /// `destroyed` (terminal).
    Destroyed,
    /// `failed`.
    Failed,
    /// `launch_failed` (transient, moves on to destroyed).
    LaunchFailed,
    /// A state this crate does not know, kept verbatim (the empty string when the field is
    /// missing or `null`; that is also the [`Default`]).
    Unknown(String),
}

impl Default for MachineState {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

impl MachineState {
    /// Parses a wire string; unknown strings become [`MachineState::Unknown`].
    pub fn parse(s: &str) -> MachineState {
        match s {
            "created" => Self::Created,
            "creating" => Self::Creating,
            "starting" => Self::Starting,
            "started" => Self::Started,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "restarting" => Self::Restarting,
            "suspending" => Self::Suspending,
            "suspended" => Self::Suspended,
            "updating" => Self::Updating,
            "replacing" => Self::Replacing,
            "replaced" => Self::Replaced,
            "migrated" => Self::Migrated,
            "destroying" => Self::Destroying,
            "destroyed" => Self::Destroyed,
            "failed" => Self::Failed,
            "launch_failed" => Self::LaunchFailed,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Creating => "creating",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Restarting => "restarting",
            Self::Suspending => "suspending",
            Self::Suspended => "suspended",
            Self::Updating => "updating",
            Self::Replacing => "replacing",
            Self::Replaced => "replaced",
            Self::Migrated => "migrated",
            Self::Destroying => "destroying",
            Self::Destroyed => "destroyed",
            Self::Failed => "failed",
            Self::LaunchFailed => "launch_failed",
            Self::Unknown(s) => s,
        }
    }
}

impl std::fmt::Display for MachineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MachineState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MachineState {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(de)?;
        Ok(MachineState::parse(s.as_deref().unwrap_or("")))
    }
}

/// The reachability of the machine's host (`host_status`).
///
/// A missing, `null` or empty `host_status` decodes as [`HostStatus::Ok`] when the machine has a
/// `config`, and as [`HostStatus::Unknown`] when it has none (Fly drops `config` exactly when the
/// host is not ok, so a config-less machine without a status is treated as not ok).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum HostStatus {
    /// `ok`.
    #[default]
    Ok,
    /// `unknown`.
    Unknown,
    /// `unreachable`.
    Unreachable,
    /// Any other value, kept verbatim.
    Other(String),
}

impl HostStatus {
    /// Parses a wire string.
    pub fn parse(s: &str) -> HostStatus {
        match s {
            "ok" => Self::Ok,
            "unknown" => Self::Unknown,
            "unreachable" => Self::Unreachable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ok => "ok",
            Self::Unknown => "unknown",
            Self::Unreachable => "unreachable",
            Self::Other(s) => s,
        }
    }

    /// True for `ok`.
    pub fn is_ok(&self) -> bool {
        *self == Self::Ok
    }
}

impl Serialize for HostStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HostStatus {
    /// A string is parsed; `null` or `""` on its own decodes as [`HostStatus::Unknown`] (inside a
    /// [`Machine`] the missing-value rule above applies instead).
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(de)?;
        Ok(match s.as_deref() {
            None | Some("") => HostStatus::Unknown,
            Some(s) => HostStatus::parse(s),
        })
    }
}

/// A machine config, kept as the exact JSON object Fly returned so that a config fetched from
/// one machine and sent back in a create is preserved field for field, unknown fields included.
///
/// Typed accessors cover what an autoscaler needs; everything else is reachable through
/// [`MachineConfig::as_json`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MachineConfig(Map<String, Value>);

impl MachineConfig {
    /// Wraps a JSON object.
    pub fn from_json(map: Map<String, Value>) -> Self {
        Self(map)
    }

    /// A config with only `image` set.
    pub fn with_image(image: &str) -> Self {
        let mut c = Self::default();
        c.set_image(image);
        c
    }

    /// The raw JSON object.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The raw JSON object, mutable.
    pub fn as_json_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }

    /// Unwraps into the raw JSON object.
    pub fn into_json(self) -> Map<String, Value> {
        self.0
    }

    /// `image`, when it is a string.
    pub fn image(&self) -> Option<&str> {
        self.0.get("image").and_then(Value::as_str)
    }

    /// Sets `image`.
    pub fn set_image(&mut self, image: &str) {
        self.0
            .insert("image".to_owned(), Value::String(image.to_owned()));
    }

    /// One `metadata` value, when present and a string.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.0.get("metadata")?.as_object()?.get(key)?.as_str()
    }

    /// All string-valued `metadata` entries (non-string values are skipped).
    pub fn metadata(&self) -> BTreeMap<&str, &str> {
        self.0
            .get("metadata")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets one `metadata` entry, creating the object (or replacing a non-object) if needed.
    pub fn set_metadata(&mut self, key: &str, value: &str) {
        let meta = self
            .0
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Value::Object(m) = meta {
            m.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    }

    /// The process group: `metadata.fly_process_group`, else the legacy
    /// `metadata.process_group`; empty values count as absent (fly-go has no `"app"` default).
    pub fn process_group(&self) -> Option<&str> {
        self.metadata_value("fly_process_group")
            .filter(|s| !s.is_empty())
            .or_else(|| {
                self.metadata_value("process_group")
                    .filter(|s| !s.is_empty())
            })
    }
}

/// The image reference of a machine (`image_ref`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageRef {
    /// e.g. `registry.fly.io`.
    #[serde(deserialize_with = "null_default")]
    pub registry: String,
    /// e.g. `my-app`.
    #[serde(deserialize_with = "null_default")]
    pub repository: String,
    /// e.g. `deployment-01J…`; empty for digest-only images.
    #[serde(deserialize_with = "null_default")]
    pub tag: String,
    /// e.g. `sha256:…`.
    #[serde(deserialize_with = "null_default")]
    pub digest: String,
    /// Image labels.
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ImageRef {
    /// fly-go `FullImageRef`: `registry/repository`, then `:tag@digest`, `@digest` or `:tag`.
    /// Unlike fly-go, an empty registry gives `repository…` (no leading `/`), and an empty
    /// repository gives `None`.
    pub fn full(&self) -> Option<String> {
        if self.repository.is_empty() {
            return None;
        }
        let mut s = if self.registry.is_empty() {
            self.repository.clone()
        } else {
            format!("{}/{}", self.registry, self.repository)
        };
        match (self.tag.is_empty(), self.digest.is_empty()) {
            (false, false) => s.push_str(&format!(":{}@{}", self.tag, self.digest)),
            (true, false) => s.push_str(&format!("@{}", self.digest)),
            (false, true) => s.push_str(&format!(":{}", self.tag)),
            (true, true) => {}
        }
        Some(s)
    }
}

/// One machine event (newest first in [`Machine::events`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineEvent {
    /// Event id (optional).
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// e.g. `launch`, `start`, `exit`.
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// e.g. `created`, `started`.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// e.g. `user`, `flyd`.
    #[serde(deserialize_with = "null_default")]
    pub source: String,
    /// Unix milliseconds.
    #[serde(deserialize_with = "lenient_i64")]
    pub timestamp: Option<i64>,
    /// The request details (e.g. `exit_event`), raw.
    pub request: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One health-check result on a machine (`checks[]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckStatus {
    /// e.g. `servicecheck-00-tcp-8080`.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `passing`, `warning` or `critical`.
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// Check output.
    #[serde(deserialize_with = "null_default")]
    pub output: String,
    /// RFC 3339 time.
    #[serde(deserialize_with = "null_default")]
    pub updated_at: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The lease shown on a listed machine with `include_leases=true` (no nonce).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineLease {
    /// Lease description.
    #[serde(deserialize_with = "null_default")]
    pub description: String,
    /// Unix seconds.
    #[serde(deserialize_with = "lenient_i64")]
    pub expires_at: Option<i64>,
    /// Who holds it.
    #[serde(deserialize_with = "null_default")]
    pub owner: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The status of one container of a multi-container machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    /// Container name.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Container state.
    #[serde(deserialize_with = "null_default")]
    pub state: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Fly Machine as returned by list, get and create.
///
/// Every field is optional on the wire; unknown fields are kept in [`Machine::extra`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "RawMachine")]
pub struct Machine {
    /// Machine id (lowercase hex, usually 14 characters).
    pub id: String,
    /// Machine name.
    pub name: String,
    /// Current state.
    pub state: MachineState,
    /// Region code (`ord`).
    pub region: String,
    /// 26-character ULID; changes on every update.
    pub instance_id: String,
    /// fly-go's `version` (not in the OpenAPI spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// 6PN IPv6 address.
    pub private_ip: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The config; absent when `host_status` is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineConfig>,
    /// A partial config rebuilt while the host is unreachable; never safe to clone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_config: Option<MachineConfig>,
    /// The image reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    /// Events, newest first.
    pub events: Vec<MachineEvent>,
    /// Health-check results.
    pub checks: Vec<CheckStatus>,
    /// The lease nonce, only on a create with `lease_ttl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The lease, only with `include_leases=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<MachineLease>,
    /// Host reachability (see [`HostStatus`] for how a missing value is decoded).
    pub host_status: HostStatus,
    /// Whether the proxy stops routing to the machine.
    pub cordoned: bool,
    /// Containers of a multi-container machine.
    pub containers: Vec<ContainerStatus>,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Machine {
    /// `config`, else `incomplete_config` (fly-go `GetConfig`).
    pub fn any_config(&self) -> Option<&MachineConfig> {
        self.config.as_ref().or(self.incomplete_config.as_ref())
    }

    /// The process group: `fly_process_group`, falling back to `process_group`, read from
    /// `config` or, when absent, `incomplete_config`. `None` when unset or empty.
    pub fn process_group(&self) -> Option<&str> {
        self.any_config()?.process_group()
    }

    /// The full image reference (see [`ImageRef::full`]); `None` without `image_ref`.
    pub fn full_image_ref(&self) -> Option<String> {
        self.image_ref.as_ref()?.full()
    }
}

/// The wire shape; converted into [`Machine`] to settle the missing `host_status` rule.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMachine {
    #[serde(deserialize_with = "null_default")]
    id: String,
    #[serde(deserialize_with = "null_default")]
    name: String,
    state: MachineState,
    #[serde(deserialize_with = "null_default")]
    region: String,
    #[serde(deserialize_with = "null_default")]
    instance_id: String,
    version: Option<String>,
    #[serde(deserialize_with = "null_default")]
    private_ip: String,
    #[serde(deserialize_with = "null_default")]
    created_at: String,
    #[serde(deserialize_with = "null_default")]
    updated_at: String,
    config: Option<MachineConfig>,
    incomplete_config: Option<MachineConfig>,
    image_ref: Option<ImageRef>,
    #[serde(deserialize_with = "null_default")]
    events: Vec<MachineEvent>,
    #[serde(deserialize_with = "null_default")]
    checks: Vec<CheckStatus>,
    nonce: Option<String>,
    lease: Option<MachineLease>,
    host_status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    cordoned: bool,
    #[serde(deserialize_with = "null_default")]
    containers: Vec<ContainerStatus>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl From<RawMachine> for Machine {
    fn from(r: RawMachine) -> Self {
        let host_status = match r.host_status.as_deref() {
            None | Some("") if r.config.is_some() => HostStatus::Ok,
            None | Some("") => HostStatus::Unknown,
            Some(s) => HostStatus::parse(s),
        };
        Machine {
            id: r.id,
            name: r.name,
            state: r.state,
            region: r.region,
            instance_id: r.instance_id,
            version: r.version.filter(|v| !v.is_empty()),
            private_ip: r.private_ip,
            created_at: r.created_at,
            updated_at: r.updated_at,
            config: r.config,
            incomplete_config: r.incomplete_config,
            image_ref: r.image_ref,
            events: r.events,
            checks: r.checks,
            nonce: r.nonce.filter(|n| !n.is_empty()),
            lease: r.lease,
            host_status,
            cordoned: r.cordoned,
            containers: r.containers,
            extra: r.extra,
        }
    }
}
