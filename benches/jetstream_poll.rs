//! Benchmark: one full JetStream poll over 200 streams x 50 consumers (10,000
//! consumers) on a real nats-server started for the run.
//!
//! Run: `cargo bench --bench jetstream_poll` (needs nats-server: scripts/test-env.sh).
//! Sizes can be changed with LAGWATCH_BENCH_STREAMS / LAGWATCH_BENCH_CONSUMERS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support.rs"]
mod support;

use std::time::Instant;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use lagwatch::model::SourceId;
use lagwatch::source::jetstream::JetstreamPoller;
use lagwatch::source::Poller;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let streams = env_usize("LAGWATCH_BENCH_STREAMS", 200);
    let consumers = env_usize("LAGWATCH_BENCH_CONSUMERS", 50);
    let nats = common::Nats::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);

    let setup = Instant::now();
    futures::stream::iter(0..streams)
        .for_each_concurrent(8, |s| {
            let js = js.clone();
            async move {
                let name = format!("S{s:03}");
                let st = js
                    .create_stream(stream::Config {
                        name: name.clone(),
                        subjects: vec![format!("{name}.>")],
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                for i in 0..10 {
                    js.publish(format!("{name}.e"), format!("{i}").into())
                        .await
                        .unwrap();
                }
                for c in 0..consumers {
                    st.create_consumer(consumer::pull::Config {
                        durable_name: Some(format!("c{c:02}")),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                }
            }
        })
        .await;
    eprintln!(
        "setup: {streams} streams x {consumers} consumers in {:.1?}",
        setup.elapsed()
    );

    let config = lagwatch::config::from_yaml(
        "bench",
        &format!(
            "request_timeout: 10s\nsources:\n  - name: bench\n    jetstream:\n      servers: [\"{}\"]\n",
            nats.url()
        ),
        &|_| None,
    )
    .unwrap();
    let src = &config.sources[0];
    let mut poller = JetstreamPoller::new(
        SourceId::new("bench"),
        src.kind.jetstream().cloned().unwrap(),
        src.timing,
    );
    // Warm up: connect and fill caches.
    let first = poller.poll().await.unwrap();
    assert_eq!(first.samples.len(), streams * consumers);

    let rss_before = support::rss_bytes();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..10 {
        let cpu0 = support::cpu_seconds();
        let t = Instant::now();
        let data = poller.poll().await.unwrap();
        walls.push(t.elapsed());
        cpus.push(support::cpu_seconds() - cpu0);
        assert_eq!(data.samples.len(), streams * consumers);
    }
    walls.sort();
    cpus.sort_by(f64::total_cmp);
    let requests = 1 + streams * (consumers.div_ceil(256));
    println!(
        "jetstream poll: {} consumers in {streams} streams",
        streams * consumers
    );
    println!("  JetStream API requests per poll: {requests} (1 STREAM.LIST page + CONSUMER.LIST pages, 16 in flight)");
    println!(
        "  wall per poll: median {:.1?}, max {:.1?}",
        walls[walls.len() / 2],
        walls[walls.len() - 1]
    );
    println!(
        "  lagwatch CPU per poll (user+sys, whole process incl. decoding): median {:.3}s",
        cpus[cpus.len() / 2]
    );
    println!(
        "  resident memory: {:.1} MiB (before the timed polls {:.1} MiB)",
        support::rss_bytes() as f64 / 1048576.0,
        rss_before as f64 / 1048576.0
    );
}
