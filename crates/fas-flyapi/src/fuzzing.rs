//! Entry points for the fuzz targets in `fuzz/` (not a stable API): the decoders the client runs
//! on a response body, without a network.

use crate::error::{self, Error};
use crate::graphql::{self, AppsData, CurrentReleaseData, OrganizationData};
use crate::responses::{OrgApp, Release};

/// The typed error the client returns for a non-2xx answer with this status and body.
pub fn error_from_response(status: u16, body: &[u8]) -> Error {
    error::from_response(status, body, None, None)
}

/// The current-release GraphQL answer as [`crate::Client::current_release`] decodes it.
pub fn current_release(body: &[u8]) -> Result<Option<Release>, Error> {
    let data: Option<CurrentReleaseData> = graphql::decode("current release", body)?;
    match data.and_then(|d| d.app) {
        Some(a) => Ok(a.current_release),
        None => Err(Error::GraphQl {
            message: "app not found (null `app` in response)".to_owned(),
        }),
    }
}

/// The organization GraphQL answer: the org id.
pub fn organization(body: &[u8]) -> Result<Option<String>, Error> {
    let data: Option<OrganizationData> = graphql::decode("organization", body)?;
    Ok(data.and_then(|d| d.organization).map(|o| o.id))
}

/// One page of the org's apps: the apps, whether there is a next page, and its cursor.
pub fn apps_page(body: &[u8]) -> Result<(Vec<OrgApp>, bool, Option<String>), Error> {
    let data: AppsData = graphql::decode("apps page", body)?;
    Ok((
        data.apps.nodes,
        data.apps.page_info.has_next_page,
        data.apps.page_info.end_cursor,
    ))
}
