//! Load for end-to-end tests on tansu: a producer and a group member, each
//! at a shared rate the test can change while they run.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// A shared rate in records/s.
pub fn rate(per_second: u32) -> Arc<AtomicU32> {
    Arc::new(AtomicU32::new(per_second))
}

/// Produces `rate` records/s (a shared, changeable rate) round-robin over
/// `partitions`, one record per batch (tansu's memory storage needs it; with
/// batch.num.messages=1 no flush per record is needed, which would cap the rate
/// at one broker round trip per record).
pub fn producer(
    bootstrap: String,
    topic: String,
    partitions: i32,
    rate: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        let mut sent = 0u64;
        let mut due = 0.0f64;
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            due += f64::from(rate.load(Ordering::Relaxed)) * last.elapsed().as_secs_f64();
            last = Instant::now();
            while due >= 1.0 {
                let part = i32::try_from(sent % u64::try_from(partitions).unwrap()).unwrap();
                let payload = format!("order {sent}");
                let _ = p.send(
                    BaseRecord::<(), _>::to(&topic)
                        .partition(part)
                        .payload(&payload),
                );
                sent += 1;
                due -= 1.0;
            }
            p.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = p.flush(Duration::from_secs(5));
    })
}

/// A group member consuming at most `rate` records/s (a shared, changeable
/// rate), committing every 250 ms, until `stop`.
pub fn consumer(
    bootstrap: String,
    group: String,
    topic: String,
    rate: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("max.poll.interval.ms", "6000")
            .create()
            .unwrap();
        c.subscribe(&[&topic]).unwrap();
        let mut budget = 0.0f64;
        let mut last = Instant::now();
        let mut last_commit = Instant::now();
        let mut dirty = false;
        while !stop.load(Ordering::Relaxed) {
            let rate = f64::from(rate.load(Ordering::Relaxed));
            budget = (budget + rate * last.elapsed().as_secs_f64()).min(rate.max(1.0));
            last = Instant::now();
            if budget >= 1.0 {
                if let Some(Ok(_)) = c.poll(Duration::from_millis(50)) {
                    budget -= 1.0;
                    dirty = true;
                }
            } else {
                // Throttled: not polling (a poll would consume a message).
                std::thread::sleep(Duration::from_millis(10));
            }
            if dirty && last_commit.elapsed() > Duration::from_millis(250) {
                let _ = c.commit_consumer_state(CommitMode::Sync);
                last_commit = Instant::now();
                dirty = false;
            }
        }
        if dirty {
            let _ = c.commit_consumer_state(CommitMode::Sync);
        }
    })
}
