//! The adapter from [`fas_flyapi::Client`] to the executor's [`MachineOps`] trait, and the one place
//! where Fly API machines become planner machines.

use std::collections::HashMap;

use fas_flyapi::{Client, CreateMachineRequest, DestroyOptions, StopRequest};
use fas_reconcile::{MachineOps, OpError, OpErrorKind};

use crate::telemetry::timed_api_call;

/// Converts a listed Fly machine into the planner's domain type.
pub fn to_domain(m: &fas_flyapi::Machine) -> fas_reconcile::Machine {
    fas_reconcile::Machine {
        id: m.id.clone(),
        state: fas_reconcile::MachineState::parse(m.state.as_str()),
        region: m.region.clone(),
        process_group: m.process_group().map(str::to_owned),
        host: match m.host_status {
            fas_flyapi::HostStatus::Ok => fas_reconcile::HostStatus::Ok,
            fas_flyapi::HostStatus::Unreachable => fas_reconcile::HostStatus::Unreachable,
            _ => fas_reconcile::HostStatus::Unknown,
        },
        has_config: m.config.is_some(),
        created_at: (!m.created_at.is_empty()).then(|| m.created_at.clone()),
    }
}

/// [`MachineOps`] for one app, backed by the Fly Machines API.
///
/// It keeps the machines of the tick's list so that a create can clone its source's config.
#[derive(Debug)]
pub struct FlyOps<'a> {
    client: &'a Client,
    app: &'a str,
    listed: HashMap<&'a str, &'a fas_flyapi::Machine>,
}

impl<'a> FlyOps<'a> {
    /// An adapter for `app`, cloning from the machines of `listed`.
    pub fn new(client: &'a Client, app: &'a str, listed: &'a [fas_flyapi::Machine]) -> Self {
        let listed = listed.iter().map(|m| (m.id.as_str(), m)).collect();
        FlyOps {
            client,
            app,
            listed,
        }
    }

    /// The create request that clones `source` (config with the full image reference) into `region`.
    pub fn clone_request(
        source: &fas_flyapi::Machine,
        region: &str,
        skip_launch: bool,
    ) -> Result<CreateMachineRequest, OpError> {
        let mut config = source.config.clone().ok_or_else(|| {
            OpError::other(format!(
                "machine {} has no config (host not reachable?)",
                source.id
            ))
        })?;
        if let Some(image) = source.full_image_ref() {
            config.set_image(&image);
        }
        Ok(CreateMachineRequest {
            config,
            region: (!region.is_empty()).then(|| region.to_owned()),
            name: None,
            skip_launch,
            skip_service_registration: false,
            lease_ttl: None,
        })
    }
}

fn op_error(err: fas_flyapi::Error) -> OpError {
    use fas_flyapi::Error as E;
    let kind = match &err {
        E::NotFound { .. } => OpErrorKind::NotFound,
        E::RateLimited { .. } => OpErrorKind::RateLimited,
        E::Conflict { .. } | E::PreconditionFailed { .. } => OpErrorKind::Conflict,
        E::Timeout { .. } => OpErrorKind::Timeout,
        _ => OpErrorKind::Other,
    };
    // No answer came back although the request was sent (a timeout, a connection lost in
    // flight): the call may have worked, so the executor calls in no spare. An error answer
    // (500, 502, …) keeps the Go behaviour: the next candidate is tried.
    let effect_unknown = match &err {
        E::Transport { connect, .. } => !connect,
        _ => false,
    };
    let e = OpError::new(kind, err.to_string());
    if effect_unknown {
        e.with_effect_unknown()
    } else {
        e
    }
}

async fn timed<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, fas_flyapi::Error>>,
) -> Result<T, OpError> {
    timed_api_call(op, call).await.map_err(op_error)
}

#[async_trait::async_trait]
impl MachineOps for FlyOps<'_> {
    async fn create(
        &self,
        source: &str,
        region: &str,
        skip_launch: bool,
    ) -> Result<String, OpError> {
        let src = self
            .listed
            .get(source)
            .ok_or_else(|| OpError::other(format!("clone source {source} is not in the list")))?;
        let req = Self::clone_request(src, region, skip_launch)?;
        let created = timed("create", self.client.create_machine(self.app, &req)).await?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), OpError> {
        timed("start", self.client.start_machine(self.app, id, None))
            .await
            .map(drop)
    }

    async fn stop(&self, id: &str) -> Result<(), OpError> {
        timed(
            "stop",
            self.client
                .stop_machine(self.app, id, &StopRequest::default(), None),
        )
        .await
    }

    async fn suspend(&self, id: &str) -> Result<(), OpError> {
        timed("suspend", self.client.suspend_machine(self.app, id, None)).await
    }

    async fn destroy(&self, id: &str) -> Result<(), OpError> {
        timed(
            "destroy",
            self.client
                .destroy_machine(self.app, id, &DestroyOptions::default(), None),
        )
        .await
    }
}
