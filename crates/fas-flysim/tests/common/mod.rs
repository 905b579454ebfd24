//! A minimal HTTP client for the simulator's own tests (deliberately not fas-flyapi).
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use fas_flysim::Simulator;

/// A response: status, headers, JSON body (Null when not JSON) and raw text.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }
}

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
    pub auth: Option<String>,
}

impl Http {
    pub fn new(sim: &Simulator) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: sim.base_url(),
            auth: Some(format!("Bearer {}", sim.token())),
        }
    }

    pub fn with_auth(mut self, auth: Option<&str>) -> Http {
        self.auth = auth.map(str::to_owned);
        self
    }

    /// Send a request; Err on transport failure (e.g. an injected connection reset).
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Full::new(Bytes::from(serde_json::to_vec(v).unwrap()))
            }
            None => Full::new(Bytes::new()),
        };
        let resp = self
            .client
            .request(b.body(body).unwrap())
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            json,
            text,
        })
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.try_send(method, path, body, headers)
            .await
            .expect("transport error")
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Resp {
        self.send("POST", path, body, &[]).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None, &[]).await
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Resp {
        let body = serde_json::json!({"query": query, "variables": variables});
        self.post("/graphql", Some(&body)).await
    }
}

/// The body FAS-like clients send to create a machine.
pub fn create_body(image: &str, region: Option<&str>) -> Value {
    let mut v = serde_json::json!({
        "config": {"image": image, "metadata": {"fly_process_group": "app"}, "guest": {"cpus": 1}},
        "unknown_top_level": 1,
    });
    if let Some(r) = region {
        v["region"] = Value::String(r.to_owned());
    }
    v
}

pub const RELEASE_QUERY: &str = "query ($appName: String!) {\n  app(name: $appName) {\n    currentRelease: currentReleaseUnprocessed {\n      id version description reason status imageRef stable\n      user { id email name } createdAt\n    }\n  }\n}";

pub const ORG_QUERY: &str = "query($slug: String!) { organization(slug: $slug) { id internalNumericId slug name type billable limitedAccessTokens { nodes { id name expiresAt revokedAt user { email } } } } }";

pub fn apps_query(first: usize) -> String {
    format!(
        "query($org: ID, $role: String, $after: String) {{ apps(type: \"container\", first: {first}, after: $after, organizationId: $org, role: $role) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ id name deployed hostname platformVersion organization {{ slug name }} currentRelease {{ createdAt status }} status }} }} }}"
    )
}
