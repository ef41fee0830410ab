//! The demo's Kafka: librdkafka's in-process mock cluster, an order producer
//! following the story's rate, and throttled consumer group members.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::story;

/// Keeps the mock cluster alive on its own thread (it is not Send) until `stop`.
pub(super) fn start_mock_cluster(stop: Arc<AtomicBool>) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("demo-kafka".into())
        .spawn(move || {
            let cluster = match MockCluster::new(3) {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start the mock Kafka cluster: {e}")));
                    return;
                }
            };
            if let Err(e) = cluster.create_topic("orders.created", story::PARTITIONS, 1) {
                let _ = tx.send(Err(format!("cannot create orders.created: {e}")));
                return;
            }
            if let Err(e) = cluster.create_topic(story::DEAD_LETTER_TOPIC, 1, 1) {
                let _ = tx.send(Err(format!(
                    "cannot create {}: {e}",
                    story::DEAD_LETTER_TOPIC
                )));
                return;
            }
            let _ = tx.send(Ok(cluster.bootstrap_servers()));
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

/// Produces orders at the story's rate until `stop`.
pub(super) fn producer(bootstrap: String, speed: f64, start: Instant, stop: Arc<AtomicBool>) {
    let p: BaseProducer = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .create()
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "demo producer cannot start");
            return;
        }
    };
    let mut sent: f64 = 0.0;
    let mut last = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64() * speed;
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        sent += story::order_rate(t) * speed * dt;
        while sent >= 1.0 {
            n += 1;
            let key = format!("order-{n}");
            let payload = format!("{{\"type\":\"OrderCreated\",\"id\":{n}}}");
            let _ = p.send(BaseRecord::to("orders.created").key(&key).payload(&payload));
            // payment-service's error handler: during the sale some orders
            // fail validation and are parked, as a Spring or Kafka Connect
            // dead-letter handler would.
            if (story::SPIKE_FROM..story::SPIKE_TO).contains(&t)
                && n.is_multiple_of(story::DEAD_LETTER_EVERY)
            {
                let _ = p.send(
                    BaseRecord::to(story::DEAD_LETTER_TOPIC)
                        .key(&key)
                        .payload(&payload),
                );
            }
            sent -= 1.0;
        }
        p.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = p.flush(Duration::from_secs(2));
}

/// One consumer group member that consumes at most `rate` messages/second and
/// is absent while `down(t)`.
pub(super) fn consumer(
    bootstrap: String,
    group: &'static str,
    rate: f64,
    down: fn(f64) -> bool,
    speed: f64,
    start: Instant,
    stop: Arc<AtomicBool>,
) {
    let mut c: Option<BaseConsumer> = None;
    let mut budget: f64 = 0.0;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t = start.elapsed().as_secs_f64() * speed;
        if down(t) {
            if c.take().is_some() {
                tracing::info!(group, "demo: consumer goes down");
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        if c.is_none() {
            let made: Result<BaseConsumer, _> = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", group)
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "500")
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "500")
                .create();
            match made {
                Ok(consumer) => {
                    if let Err(e) = consumer.subscribe(&["orders.created"]) {
                        tracing::error!(group, error = %e, "demo consumer cannot subscribe");
                        return;
                    }
                    c = Some(consumer);
                    last = Instant::now();
                    budget = 0.0;
                }
                Err(e) => {
                    tracing::error!(group, error = %e, "demo consumer cannot start");
                    return;
                }
            }
        }
        let Some(consumer) = &c else { continue };
        budget = (budget + rate * speed * last.elapsed().as_secs_f64()).min(rate * speed);
        last = Instant::now();
        if budget < 1.0 {
            // Throttled: no poll, which would hand over (and consume) a message;
            // the budget refills long before max.poll.interval.ms runs out.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
            budget -= 1.0;
        }
    }
}

/// A consumer group of the story: name, msgs/s per member, when it is down, members.
pub(super) type ConsumerPlan = (&'static str, f64, fn(f64) -> bool, u32);

pub(super) fn never(_: f64) -> bool {
    false
}
pub(super) fn email_down(t: f64) -> bool {
    (story::EMAIL_DOWN_FROM..story::EMAIL_DOWN_TO).contains(&t)
}
