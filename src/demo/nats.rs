//! The demo's JetStream part: a nats-server from PATH, shipments published at
//! the story's rate and consumed slower by a pull consumer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::story;

/// A nats-server for the JetStream part, when one is on PATH.
pub(super) struct NatsServer {
    child: std::process::Child,
    pub url: String,
    _dir: std::path::PathBuf,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()
        .map(|a| a.port())
}

pub(super) fn start_nats() -> Result<NatsServer, String> {
    let port = free_port().ok_or("no free port")?;
    let dir = std::env::temp_dir().join(format!("lagwatch-demo-{}", std::process::id()));
    let child = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("nats-server is not on PATH ({e}); install it (Debian: apt install nats-server) to see the JetStream part"))?;
    let server = NatsServer {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _dir: dir,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Err("nats-server did not start listening".into())
}

/// Publishes shipments and consumes them slowly with a pull consumer.
pub(super) async fn jetstream_story(
    url: String,
    speed: f64,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    use async_nats::jetstream::{self, consumer, stream};
    use futures::StreamExt;
    let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
    let js = jetstream::new(client);
    let s = js
        .create_stream(stream::Config {
            name: "SHIPMENTS".into(),
            subjects: vec!["shipments.>".into()],
            max_messages: 100_000,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let c: consumer::PullConsumer = s
        .create_consumer(consumer::pull::Config {
            durable_name: Some("fulfillment".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let pubs = {
        let js = js.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            let every = Duration::from_secs_f64(1.0 / (story::JS_RATE * speed));
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let _ = js
                    .publish("shipments.created", format!("shipment {n}").into())
                    .await;
                tokio::time::sleep(every).await;
            }
        })
    };
    let every = Duration::from_secs_f64(1.0 / (story::JS_CONSUME_RATE * speed));
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut batch) = c
            .fetch()
            .max_messages(1)
            .expires(Duration::from_millis(500))
            .messages()
            .await
        {
            while let Some(Ok(m)) = batch.next().await {
                let _ = m.ack().await;
            }
        }
        tokio::time::sleep(every).await;
    }
    pubs.abort();
    Ok(())
}
