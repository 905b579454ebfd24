//! The three GraphQL queries an autoscaler sends, recognised by the field names in the query text.

use serde_json::{Value, json};

use crate::server::Reply;
use crate::util;
use crate::world::World;

fn gql_error(message: &str) -> Reply {
    Reply::json(200, json!({"data": null, "errors": [{"message": message}]}))
}

/// Handle `POST /graphql`.
pub(crate) fn handle(w: &mut World, body: &[u8]) -> Reply {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return Reply::error(400, "invalid GraphQL request: body is not JSON");
    };
    let query = req.get("query").and_then(Value::as_str).unwrap_or("");
    let vars = req.get("variables").cloned().unwrap_or(Value::Null);
    let compact: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("currentReleaseUnprocessed") {
        current_release(w, &compact, &vars)
    } else if compact.contains("apps(") {
        apps_page(w, &compact, &vars)
    } else if compact.contains("organization(") {
        organization(w, &compact, &vars)
    } else {
        gql_error("flysim: unsupported GraphQL query")
    }
}

/// A variable's string value, or the literal `name:"value"` argument written in the query text.
fn arg(compact: &str, vars: &Value, var: &str, literal: &str) -> Option<String> {
    if let Some(v) = vars.get(var).and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    let pat = format!("{literal}:\"");
    let start = compact.find(&pat)? + pat.len();
    let end = compact[start..].find('"')?;
    Some(compact[start..start + end].to_owned())
}

fn current_release(w: &World, compact: &str, vars: &Value) -> Reply {
    let Some(name) = arg(compact, vars, "appName", "name") else {
        return gql_error("Variable $appName of type String! was provided invalid value");
    };
    let Some(app) = w.apps.get(&name) else {
        return gql_error(&format!("Could not find App \"{name}\""));
    };
    let release = app.release.as_ref().map(|r| {
        json!({
            "id": r.id, "version": r.version, "description": "flysim release", "reason": "deploy",
            "status": r.status, "imageRef": Value::Null, "stable": r.status == "complete",
            "user": {"id": "user-flysim", "email": "flysim@example.com", "name": "flysim"},
            "createdAt": util::rfc3339(r.created_at),
        })
    });
    Reply::json(200, json!({"data": {"app": {"currentRelease": release}}}))
}

fn organization(w: &World, compact: &str, vars: &Value) -> Reply {
    let Some(slug) = arg(compact, vars, "slug", "slug") else {
        return gql_error("Variable $slug of type String! was provided invalid value");
    };
    let Some(org) = w.orgs.get(&slug) else {
        return gql_error(&format!("Could not find Organization \"{slug}\""));
    };
    Reply::json(
        200,
        json!({"data": {"organization": {
            "id": org.id, "internalNumericId": org.numeric_id.to_string(), "slug": org.slug,
            "rawSlug": org.slug, "name": org.name, "type": "SHARED", "billable": true,
            "limitedAccessTokens": {"nodes": []},
        }}}),
    )
}

/// The integer literal after `first:` in the query, or the `first` variable.
fn first(compact: &str, vars: &Value) -> Option<usize> {
    if let Some(n) = vars.get("first").and_then(Value::as_u64) {
        return Some(n as usize);
    }
    let start = compact.find("first:")? + "first:".len();
    let digits: String = compact[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn cursor(index: usize) -> String {
    format!("flysim:{index}")
}

fn apps_page(w: &World, compact: &str, vars: &Value) -> Reply {
    let org_id = arg(compact, vars, "org", "organizationId");
    let org_slug = match &org_id {
        Some(id) => match w.orgs.values().find(|o| &o.id == id) {
            Some(o) => Some(o.slug.clone()),
            None => return gql_error(&format!("Could not find Organization with id \"{id}\"")),
        },
        None => None,
    };
    let after = match arg(compact, vars, "after", "after") {
        None => 0,
        Some(c) => match c
            .strip_prefix("flysim:")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n + 1,
            None => return gql_error(&format!("invalid cursor \"{c}\"")),
        },
    };
    let mut page = first(compact, vars).unwrap_or(100);
    if let Some(cap) = w.cfg.graphql_page_cap {
        page = page.min(cap.max(1));
    }
    let all: Vec<&crate::world::App> = w
        .apps
        .values()
        .filter(|a| org_slug.as_deref().is_none_or(|s| s == a.org_slug))
        .collect();
    let end = (after + page).min(all.len());
    let start = after.min(end);
    let nodes: Vec<Value> = all[start..end]
        .iter()
        .map(|a| {
            let org = w.orgs.get(&a.org_slug);
            json!({
                "id": a.name, "name": a.name, "deployed": true, "hostname": format!("{}.fly.dev", a.name),
                "platformVersion": "machines",
                "organization": {"slug": a.org_slug, "name": org.map_or(a.org_slug.as_str(), |o| o.name.as_str())},
                "currentRelease": a.release.as_ref().map(|r| json!({
                    "createdAt": util::rfc3339(r.created_at), "status": r.status,
                })),
                "status": "deployed",
            })
        })
        .collect();
    let end_cursor = if end > start {
        Some(cursor(end - 1))
    } else {
        None
    };
    Reply::json(
        200,
        json!({"data": {"apps": {
            "pageInfo": {"hasNextPage": end < all.len(), "endCursor": end_cursor},
            "nodes": nodes,
        }}}),
    )
}
