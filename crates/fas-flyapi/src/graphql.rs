//! The GraphQL queries and their response shapes.

use crate::error::{Error, snippet};
use crate::responses::{OrgApp, Release};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The current-release query, exactly as fly-go's `GetAppCurrentReleaseMachines`.
pub const CURRENT_RELEASE_QUERY: &str = r#"
query ($appName: String!) {
  app(name: $appName) {
    currentRelease: currentReleaseUnprocessed {
      id version description reason status imageRef stable
      user { id email name } createdAt
    }
  }
}
"#;

/// The organization lookup (only the id is used). fly-go v0.1.36 also asks for
/// `limitedAccessTokens`; newer fly-go dropped it, and so does this crate.
pub const ORGANIZATION_QUERY: &str = r#"
query ($slug: String!) {
  organization(slug: $slug) { id internalNumericId slug name type billable }
}
"#;

/// One page of the org's apps, as fly-go's `GetAppsForOrganization` (200 per page).
pub const APPS_PAGE_QUERY: &str = r#"
query ($org: ID, $role: String, $after: String) {
  apps(type: "container", first: 200, after: $after, organizationId: $org, role: $role) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name deployed hostname platformVersion
      organization { slug name }
      currentRelease { createdAt status }
      status
    }
  }
}
"#;

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<GqlError>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GqlError {
    message: String,
}

/// Decodes a GraphQL 200 body: a non-empty `errors[]` gives [`Error::GraphQl`] with the first
/// message; otherwise `data` is decoded.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, Error> {
    let env: Envelope<Value> = serde_json::from_slice(body).map_err(|source| Error::Decode {
        what,
        snippet: snippet(body),
        source,
    })?;
    if let Some(first) = env.errors.as_ref().and_then(|e| e.first()) {
        return Err(Error::GraphQl {
            message: first.message.clone(),
        });
    }
    let data = env.data.unwrap_or(Value::Null);
    serde_json::from_value(data).map_err(|source| Error::Decode {
        what,
        snippet: snippet(body),
        source,
    })
}

#[derive(Deserialize)]
pub(crate) struct CurrentReleaseData {
    pub(crate) app: Option<AppRelease>,
}

#[derive(Deserialize)]
pub(crate) struct AppRelease {
    #[serde(rename = "currentRelease", default)]
    pub(crate) current_release: Option<Release>,
}

#[derive(Deserialize)]
pub(crate) struct OrganizationData {
    pub(crate) organization: Option<Organization>,
}

#[derive(Deserialize)]
pub(crate) struct Organization {
    pub(crate) id: String,
}

#[derive(Deserialize)]
pub(crate) struct AppsData {
    pub(crate) apps: AppsPage,
}

#[derive(Deserialize)]
pub(crate) struct AppsPage {
    #[serde(rename = "pageInfo")]
    pub(crate) page_info: PageInfo,
    #[serde(default)]
    pub(crate) nodes: Vec<OrgApp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PageInfo {
    #[serde(rename = "hasNextPage")]
    pub(crate) has_next_page: bool,
    #[serde(rename = "endCursor")]
    pub(crate) end_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_win_and_first_message_is_used() {
        let body = br#"{"data":null,"errors":[{"message":"Could not find App \"x\""},{"message":"second"}]}"#;
        let e = decode::<CurrentReleaseData>("release", body).err().unwrap();
        assert_eq!(e.to_string(), "graphql error: Could not find App \"x\"");
    }

    #[test]
    fn null_release_is_none() {
        let body = br#"{"data":{"app":{"currentRelease":null}}}"#;
        let d: CurrentReleaseData = decode("release", body).unwrap();
        assert!(d.app.unwrap().current_release.is_none());
    }

    #[test]
    fn release_decodes() {
        let body = br#"{"data":{"app":{"currentRelease":{"id":"r1","version":7,"description":"d","reason":"deploy","status":"running","imageRef":"registry.fly.io/a:deployment-1","stable":false,"user":{"id":"u","email":"e@x","name":"n"},"createdAt":"2024-01-01T00:00:00Z"}}}}"#;
        let d: CurrentReleaseData = decode("release", body).unwrap();
        let r = d.app.unwrap().current_release.unwrap();
        assert_eq!(r.version, 7);
        assert!(r.in_progress());
        assert_eq!(
            r.image_ref.as_deref(),
            Some("registry.fly.io/a:deployment-1")
        );
    }

    #[test]
    fn bad_json_is_a_decode_error_with_snippet() {
        let e = decode::<CurrentReleaseData>("release", b"<html>oops")
            .err()
            .unwrap();
        assert!(e.to_string().contains("<html>oops"), "{e}");
    }
}
