//! A complete custom metric collector: the length of a queue, read from an HTTP endpoint that
//! returns JSON (for example a job runner's `GET /queues/my-app` answering `{"stats": {"pending": 17}}`).
//!
//! It shows everything a collector written outside `fas-collect` has to do:
//! - implement [`Collector`] (`metric_name` + async `collect`), be `Debug + Send + Sync`;
//! - expand `${APP_NAME}` with [`fas_collect::expand_vars`] so one collector serves every app;
//! - bound each call with a timeout;
//! - report failures as [`CollectError::Custom`] with an [`Origin`] naming the metric and the URL.
//!
//! ```no_run
//! use std::time::Duration;
//! use custom_collector::JsonQueueCollector;
//! use fas_collect::Collector;
//!
//! # async fn demo() -> Result<(), fas_collect::CollectError> {
//! let queue = JsonQueueCollector::new(
//!     "pending_jobs",
//!     "http://jobs.internal:8080/queues/${APP_NAME}",
//!     "/stats/pending",
//!     Duration::from_secs(5),
//! );
//! let collectors: Vec<Box<dyn Collector>> = vec![Box::new(queue)];
//! let pending = collectors[0].collect("my-app").await?;
//! # let _ = pending; Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;
use fas_collect::{CollectError, Collector, Origin, expand_vars};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Largest JSON body read.
const MAX_BODY: usize = 1024 * 1024;

/// Reads one number from a JSON document served over plain HTTP (use hyper-rustls for https).
#[derive(Debug)]
pub struct JsonQueueCollector {
    metric_name: String,
    url_template: String,
    pointer: String,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl JsonQueueCollector {
    /// `url_template` may contain `${APP_NAME}`; `pointer` is a JSON pointer (RFC 6901) to a
    /// number, e.g. `/stats/pending`, or `""` for a document that is just a number.
    pub fn new(
        metric_name: &str,
        url_template: &str,
        pointer: &str,
        timeout: Duration,
    ) -> JsonQueueCollector {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeout));
        JsonQueueCollector {
            metric_name: metric_name.to_owned(),
            url_template: url_template.to_owned(),
            pointer: pointer.to_owned(),
            timeout,
            client: Client::builder(TokioExecutor::new()).build(http),
        }
    }

    fn error(
        &self,
        url: &str,
        message: String,
        source: Option<fas_collect::BoxError>,
    ) -> CollectError {
        CollectError::Custom {
            at: Origin::new(&self.metric_name, "json-queue", url),
            message,
            source,
        }
    }

    async fn fetch(&self, url: &str) -> Result<f64, CollectError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| self.error(url, "not a URL".into(), Some(Box::new(e))))?;
        let response = self
            .client
            .get(uri)
            .await
            .map_err(|e| self.error(url, "request failed".into(), Some(Box::new(e))))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| self.error(url, "cannot read the body".into(), Some(e)))?
            .to_bytes();
        if !status.is_success() {
            return Err(self.error(url, format!("http status {status}"), None));
        }
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| self.error(url, "the body is not JSON".into(), Some(Box::new(e))))?;
        let value = json
            .pointer(&self.pointer)
            .ok_or_else(|| self.error(url, format!("no value at `{}`", self.pointer), None))?;
        value.as_f64().ok_or_else(|| {
            self.error(
                url,
                format!("the value at `{}` is not a number: {value}", self.pointer),
                None,
            )
        })
    }
}

#[async_trait::async_trait]
impl Collector for JsonQueueCollector {
    fn metric_name(&self) -> &str {
        &self.metric_name
    }

    async fn collect(&self, app: &str) -> Result<f64, CollectError> {
        let url = expand_vars(&self.url_template, &|name| {
            (name == "APP_NAME").then(|| app.to_owned())
        });
        match tokio::time::timeout(self.timeout, self.fetch(&url)).await {
            Ok(result) => result,
            Err(_) => Err(CollectError::Timeout {
                at: Origin::new(&self.metric_name, "json-queue", &url),
                timeout: self.timeout,
            }),
        }
    }
}
