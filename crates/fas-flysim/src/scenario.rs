//! Scenario files for the standalone binary (and for tests that prefer data over code).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::SimConfig;
use crate::sim::MachineSpec;

/// A whole simulated world: config toggles, orgs, apps with machines and release status.
///
/// ```
/// let s = fas_flysim::Scenario::from_json(r#"{
///   "config": {"rate_limits": {"enabled": false}},
///   "apps": [{"org": "acme", "name": "web", "release_status": "complete",
///             "machines": [{"count": 2, "spec": {"state": "stopped", "region": "iad"}}]}]
/// }"#).unwrap();
/// assert_eq!(s.apps[0].machines[0].count, 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Simulator configuration (defaults when absent).
    pub config: SimConfig,
    /// Orgs without apps (orgs of apps are created automatically).
    pub orgs: Vec<String>,
    /// Apps.
    pub apps: Vec<ScenarioApp>,
}

/// One app of a [`Scenario`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioApp {
    /// Org slug (default `personal`).
    #[serde(default = "personal")]
    pub org: String,
    /// App name.
    pub name: String,
    /// Current release status (`pending`, `running`, `complete`, `failed`…); absent means no release (`null`).
    #[serde(default)]
    pub release_status: Option<String>,
    /// Machines to add.
    #[serde(default)]
    pub machines: Vec<ScenarioMachines>,
}

/// `count` machines built from one spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioMachines {
    /// How many (default 1).
    #[serde(default = "one")]
    pub count: usize,
    /// The machine spec (defaults: `started`, `ord`, group `app`, host `ok`).
    #[serde(default)]
    pub spec: MachineSpec,
}

fn personal() -> String {
    "personal".to_owned()
}

fn one() -> usize {
    1
}

impl Scenario {
    /// Parse a scenario from JSON (unknown fields are errors that name the field).
    pub fn from_json(text: &str) -> Result<Scenario, Error> {
        serde_json::from_str(text).map_err(|source| Error::Scenario { source })
    }
}
