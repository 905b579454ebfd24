//! The seam between the loop and Fly: the read calls a tick needs (current release, machine
//! list, org apps) and a factory of the executor's [`MachineOps`] for one app.
//!
//! [`fas_flyapi::Client`] implements [`Fly`] for production (through the simulator in tests);
//! in-process tests of the loop's policies implement it in memory, so the loop runs on a paused
//! tokio clock without a socket.

use std::fmt;

use fas_flyapi::{Client, ListMachinesOptions, Machine, Release};
use fas_reconcile::MachineOps;

use crate::ops::FlyOps;
use crate::telemetry::timed_api_call;

/// One app of the organization's list, as the wildcard mode reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The app name.
    pub name: String,
    /// The status of its current release (`running` while a deploy is in progress); `None` when
    /// it has no release.
    pub release_status: Option<String>,
}

/// What the loop needs from the Fly API. Every call must bound itself in time (the client's
/// request timeouts and retry budget do).
#[async_trait::async_trait]
pub trait Fly: Send + Sync + fmt::Debug + 'static {
    /// The app's current release; `None` when it has none. A `running` release is a deploy.
    async fn current_release(&self, app: &str) -> Result<Option<Release>, fas_flyapi::Error>;
    /// Every machine of the app, in any state (the default list).
    async fn list_machines(&self, app: &str) -> Result<Vec<Machine>, fas_flyapi::Error>;
    /// The organization's apps with their current release status (wildcard mode).
    async fn org_apps(&self, org: &str) -> Result<Vec<AppInfo>, fas_flyapi::Error>;
    /// The executor's operations on `app`, cloning from the machines of `listed`.
    fn machine_ops<'a>(&'a self, app: &'a str, listed: &'a [Machine]) -> Box<dyn MachineOps + 'a>;
}

#[async_trait::async_trait]
impl Fly for Client {
    async fn current_release(&self, app: &str) -> Result<Option<Release>, fas_flyapi::Error> {
        timed_api_call("current_release", Client::current_release(self, app)).await
    }

    async fn list_machines(&self, app: &str) -> Result<Vec<Machine>, fas_flyapi::Error> {
        let opts = ListMachinesOptions::default();
        timed_api_call("list", Client::list_machines(self, app, &opts)).await
    }

    async fn org_apps(&self, org: &str) -> Result<Vec<AppInfo>, fas_flyapi::Error> {
        let apps = timed_api_call("org_apps", Client::org_apps(self, org)).await?;
        Ok(apps
            .into_iter()
            .map(|a| AppInfo {
                release_status: a.current_release.map(|r| r.status),
                name: a.name,
            })
            .collect())
    }

    fn machine_ops<'a>(&'a self, app: &'a str, listed: &'a [Machine]) -> Box<dyn MachineOps + 'a> {
        Box::new(FlyOps::new(self, app, listed))
    }
}
