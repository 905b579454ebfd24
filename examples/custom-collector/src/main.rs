//! `custom-collector URL_TEMPLATE JSON_POINTER APP`: collects once and prints the value.

use std::time::Duration;

use anyhow::Context;
use custom_collector::JsonQueueCollector;
use fas_collect::Collector;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, pointer, app] = args.as_slice() else {
        anyhow::bail!("usage: custom-collector URL_TEMPLATE JSON_POINTER APP");
    };
    let collector = JsonQueueCollector::new("queue_length", url, pointer, Duration::from_secs(5));
    let value = collector
        .collect(app)
        .await
        .context("collecting queue_length")?;
    println!("{} = {value}", collector.metric_name());
    Ok(())
}
