//! Helpers for the tests that measure lagwatch against a truth they record
//! themselves (tests/accuracy.rs, tests/truth.rs): producers and consumers at
//! known rates on real brokers, a record of when every message was written, and
//! the daemon's readings of one group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

use super::Daemon;

/// The daemon's poll interval in every test: 1 s, the smallest it accepts.
pub const POLL: f64 = 1.0;

/// Slack on top of one poll interval for time lag: the poll is stamped when it
/// starts (`at`) but reads head a few ms later, the test stamps a message when
/// its produce is acknowledged (a few ms after it is in the log), and two cores
/// shared by six tests and their brokers delay threads by tens of ms.
pub const SLACK: f64 = 0.5;

/// A random-enough name per test run: tests share no broker state.
pub fn name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

/// Wall clock in seconds since the epoch: lagwatch stamps polls with the same
/// clock (`Millis::now()`), so the two compare directly.
pub fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// When each message was written, by offset (Kafka, from 0) or stream sequence
/// (JetStream, from 1): the time its produce was acknowledged.
#[derive(Clone)]
pub struct Written {
    base: i64,
    times: Arc<Mutex<Vec<f64>>>,
}

impl Written {
    pub fn new(base: i64) -> Self {
        Self {
            base,
            times: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn push(&self, offset: i64, t: f64) {
        let mut v = self.times.lock().unwrap();
        assert_eq!(
            offset,
            self.base + v.len() as i64,
            "offsets are written in order"
        );
        v.push(t);
    }

    pub fn time_of(&self, offset: i64) -> Option<f64> {
        let i = usize::try_from(offset - self.base).ok()?;
        self.times.lock().unwrap().get(i).copied()
    }

    /// One past the last message written.
    pub fn end(&self) -> i64 {
        self.base + self.times.lock().unwrap().len() as i64
    }

    /// The first offset written after `cutoff`: a consumer that has processed
    /// every message written at or before `cutoff` commits this.
    pub fn first_after(&self, cutoff: f64) -> i64 {
        let v = self.times.lock().unwrap();
        self.base + v.partition_point(|&t| t <= cutoff) as i64
    }

    /// The true time lag at `at`: the age of the oldest unconsumed message,
    /// 0 when there is none (or it was written after `at`).
    pub fn true_age(&self, committed: i64, head: i64, at: f64) -> f64 {
        if committed >= head {
            return 0.0;
        }
        // Missing only if the broker counted it before the test recorded it:
        // written just now, after the poll began.
        self.time_of(committed).map_or(0.0, |t| (at - t).max(0.0))
    }
}

// ---------------------------------------------------------------- Kafka side

/// How a producer paces its records.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Evenly, this many per second (on an absolute schedule: no drift).
    Steady(f64),
    /// `size` records as fast as possible every `every` seconds.
    Bursts { size: usize, every: f64 },
}

impl Pace {
    pub fn due(self, i: usize) -> f64 {
        match self {
            Pace::Steady(rate) => i as f64 / rate,
            Pace::Bursts { size, every } => (i / size) as f64 * every,
        }
    }
}

/// A producer thread writing to partition 0 of a fresh topic, one record at a
/// time: each is awaited before the next is sent, so every batch holds one
/// record (tansu's memory storage counts the high watermark from the last
/// batch's first offset: BROKERS.md). `BaseProducer::flush` would do the same
/// but returns only every 100 ms (measured: 10 msg/s at most); awaiting the
/// delivery takes under 1 ms and reports the record's offset.
pub struct KafkaProducer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<f64>>,
    pub started: f64,
}

impl KafkaProducer {
    pub fn start(bootstrap: &str, topic: &str, pace: Pace, written: Written) -> Self {
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let topic = topic.to_string();
        let started = now_s();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let start = Instant::now();
            let mut late = 0.0_f64;
            for i in 0.. {
                let due = start + Duration::from_secs_f64(pace.due(i));
                while Instant::now() < due {
                    if flag.load(Ordering::Relaxed) {
                        return late;
                    }
                    std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
                }
                if flag.load(Ordering::Relaxed) {
                    return late;
                }
                late = late.max(start.elapsed().as_secs_f64() - pace.due(i));
                let payload = format!("m{i}");
                let record = FutureRecord::<(), _>::to(&topic)
                    .partition(0)
                    .payload(&payload);
                let delivery = rt
                    .block_on(p.send(record, Duration::from_secs(10)))
                    .map_err(|(e, _)| e)
                    .unwrap();
                written.push(delivery.offset, now_s());
            }
            late
        });
        Self {
            stop,
            handle: Some(handle),
            started,
        }
    }

    /// Stops the producer; returns how late it ever was on its schedule (s).
    pub fn stop(&mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map_or(0.0, |h| h.join().unwrap())
    }
}

impl Drop for KafkaProducer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a group member commits: the offset it wants committed now (it never
/// commits past what it has received), or None to commit nothing.
pub type Policy = Box<dyn FnMut(f64) -> Option<i64> + Send>;

/// A real member of a consumer group (subscribed, assigned partition 0 of the
/// topic, polling all the time so it stays in the group) that commits what
/// `policy` says, at most every `every`.
pub struct Member {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// (when, offset) of the last successful commit.
    last_commit: Arc<Mutex<Option<(f64, i64)>>>,
}

impl Member {
    /// `fresh`: the group has no offsets yet; commit offset 0 as soon as the
    /// partition is assigned (so lagwatch lists the group, whose ListGroups on
    /// tansu shows only groups that committed, before anything is produced).
    /// Returns once the member has committed once.
    pub fn start(
        bootstrap: &str,
        group: &str,
        topic: &str,
        every: Duration,
        fresh: bool,
        mut policy: Policy,
    ) -> Self {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // tansu's JoinGroup waits about half the session timeout (BROKERS.md).
            .set("session.timeout.ms", "6000")
            .set("max.poll.interval.ms", "6000")
            // Receive records as soon as they exist (librdkafka default 500 ms).
            .set("fetch.wait.max.ms", "50")
            .create()
            .unwrap();
        c.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let last_commit = Arc::new(Mutex::new(None));
        let (flag, record, topic) = (stop.clone(), last_commit.clone(), topic.to_string());
        let handle = std::thread::spawn(move || {
            let mut received: Option<i64> = fresh.then_some(0);
            let mut last: Option<i64> = None;
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                    received = Some(received.unwrap_or(0).max(m.offset() + 1));
                }
                if Instant::now() < next {
                    continue;
                }
                next = Instant::now() + every;
                let (Some(want), Some(got)) = (policy(now_s()), received) else {
                    continue;
                };
                let target = want.min(got);
                let assigned = c.assignment().map(|a| a.count()).unwrap_or(0) > 0;
                if Some(target) == last || !assigned {
                    continue;
                }
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, 0, Offset::Offset(target))
                    .unwrap();
                match c.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => {
                        last = Some(target);
                        *record.lock().unwrap() = Some((now_s(), target));
                    }
                    Err(e) => eprintln!("commit {target} failed (will retry): {e}"),
                }
            }
        });
        let m = Self {
            stop,
            handle: Some(handle),
            last_commit,
        };
        super::wait_until(
            "the group member's first commit",
            Duration::from_secs(30),
            || m.last_commit().is_some(),
        );
        m
    }

    pub fn last_commit(&self) -> Option<(f64, i64)> {
        *self.last_commit.lock().unwrap()
    }

    /// Stops polling and closes the consumer (it leaves the group).
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

// ------------------------------------------------------------ Kafka by hand

/// Commits `offset` for partition 0 of `topic` as `group`, the way
/// `kafka-consumer-groups --reset-offsets` does: from a client that never joins
/// the group (which has no active member).
pub fn commit_as_admin(bootstrap: &str, group: &str, topic: &str, offset: i64) {
    commit_partitions(bootstrap, group, topic, &[offset]);
}

/// A producer that sends one record per batch: tansu's memory storage puts
/// the high watermark at the last batch's first offset + 1.
fn one_record_per_batch(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap()
}

/// Writes exactly `n` records to partition 0, one at a time, and records when
/// each was written.
pub fn write_records(bootstrap: &str, topic: &str, n: usize, written: &Written) {
    let p = one_record_per_batch(bootstrap);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for i in 0..n {
        let payload = format!("r{i}");
        let record = FutureRecord::<(), _>::to(topic)
            .partition(0)
            .payload(&payload);
        let delivery = rt
            .block_on(p.send(record, Duration::from_secs(10)))
            .map_err(|(e, _)| e)
            .unwrap();
        written.push(delivery.offset, now_s());
    }
}

// ------------------------------------------------------------ JetStream by hand

/// Creates stream `name` (subjects `name.>`) with a durable pull consumer
/// `consumer` that acks nothing, then publishes `n` messages to `name.e`,
/// recording each one's stream sequence and acknowledgement time in `written`.
pub async fn stream_with_idle_consumer(
    js: &jetstream::Context,
    name: &str,
    consumer: &str,
    n: usize,
    written: &Written,
) -> stream::Stream {
    let s = js
        .create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    s.create_consumer(consumer::pull::Config {
        durable_name: Some(consumer.into()),
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..n {
        let ack = js
            .publish(format!("{name}.e"), format!("e{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
        written.push(i64::try_from(ack.sequence).unwrap(), now_s());
    }
    s
}

// ------------------------------------------------------------ daemon readings

pub fn kafka_config(bootstrap: &str, analysis: &str) -> String {
    format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{bootstrap}\"]\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n{analysis}"
    )
}

pub fn nats_config(url: &str, analysis: &str) -> String {
    format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{url}\"]\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n{analysis}"
    )
}

/// One poll's view of one group, from `GET /api/v1/groups/{source}/{group}`.
pub struct Reading {
    /// When the poll began (seconds since the epoch): lagwatch's `now`.
    pub at: f64,
    pub json: Value,
}

impl Reading {
    pub fn group(&self) -> &Value {
        &self.json["group"]
    }
    pub fn partition(&self) -> &Value {
        &self.json["partitions"][0]
    }
    pub fn committed(&self) -> i64 {
        self.partition()["committed"].as_i64().unwrap()
    }
    pub fn latest(&self) -> i64 {
        self.partition()["latest"].as_i64().unwrap()
    }
    pub fn lag(&self) -> u64 {
        self.group()["lag"].as_u64().unwrap()
    }
    pub fn lag_seconds(&self) -> Option<f64> {
        self.group()["lag_seconds"]["seconds"].as_f64()
    }
    pub fn quality(&self) -> &str {
        self.group()["lag_seconds"]["quality"].as_str().unwrap()
    }
    pub fn status(&self) -> &str {
        self.group()["status"].as_str().unwrap()
    }
    pub fn rate(&self, which: &str) -> Option<f64> {
        self.group()[which].as_f64()
    }
}

/// When the group's figures were read: the group's `polled_at` (its source's
/// poll), else the answer's `at`.
pub fn parse_at(json: &Value) -> f64 {
    let s = json["group"]["polled_at"]
        .as_str()
        .unwrap_or_else(|| json["at"].as_str().unwrap());
    humantime::parse_rfc3339(s)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits for the first poll after `after` that reports the group.
pub fn next_reading(d: &Daemon, path: &str, after: f64) -> Reading {
    let start = Instant::now();
    loop {
        let (status, body) = d.get(path);
        if status == 200 {
            let json: Value = serde_json::from_str(&body).unwrap();
            let at = parse_at(&json);
            if at > after {
                return Reading { at, json };
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no new poll of {path} within 15 s (last answer {status}: {body})\nlogs:\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the series `family{...}` whose labels include every one of
/// `labels` (written `key="value"`).
pub fn metric(body: &str, family: &str, labels: &[&str]) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(family)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        let all = labels
            .iter()
            .all(|want| set.split(',').any(|have| have == *want));
        all.then(|| value.trim().parse().ok())?
    })
}

/// Checks that /metrics says what the API says for the same snapshot: the time
/// lag and its quality. Retries while a poll lands between the two reads.
pub fn metrics_agree_with_api(d: &Daemon, path: &str, group: &str) {
    for _ in 0..20 {
        let before = next_reading(d, path, 0.0);
        let body = d.metrics();
        let after = next_reading(d, path, 0.0);
        if before.at != after.at {
            continue;
        }
        let g = format!("group=\"{group}\"");
        let q = format!("quality=\"{}\"", before.quality());
        assert_eq!(
            metric(&body, "lagwatch_group_lag_seconds", &[&g]),
            before.lag_seconds(),
            "lagwatch_group_lag_seconds agrees with the API"
        );
        assert_eq!(
            metric(&body, "lagwatch_group_lag_seconds_quality", &[&g, &q]),
            Some(1.0),
            "lagwatch_group_lag_seconds_quality agrees with the API"
        );
        return;
    }
    panic!("never read /metrics and the API from the same poll");
}

// ------------------------------------------------------------ JetStream side

/// Publishes at `rate` msg/s (absolute schedule) and records each sequence.
pub async fn publish_steady(
    js: jetstream::Context,
    subject: String,
    rate: f64,
    written: Written,
    stop: Arc<AtomicBool>,
) -> f64 {
    let start = tokio::time::Instant::now();
    let mut late = 0.0_f64;
    for i in 0_u32.. {
        let due = start + Duration::from_secs_f64(f64::from(i) / rate);
        tokio::time::sleep_until(due).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        late = late.max(start.elapsed().as_secs_f64() - f64::from(i) / rate);
        let ack = js
            .publish(subject.clone(), format!("event {i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
        written.push(i64::try_from(ack.sequence).unwrap(), now_s());
    }
    late
}

/// A pull consumer that fetches and acks, in order, every message before the
/// sequence `target(now)` says (never past what was written).
pub async fn ack_up_to(
    stream: stream::Stream,
    name: String,
    written: Written,
    target: impl Fn(f64) -> i64,
    stop: Arc<AtomicBool>,
) {
    let c: consumer::PullConsumer = stream.get_consumer(&name).await.unwrap();
    let mut next = 1_i64; // the first sequence not acked
    while !stop.load(Ordering::Relaxed) {
        let want = target(now_s()).min(written.end());
        if want > next {
            let n = usize::try_from(want - next).unwrap();
            let mut msgs = c
                .fetch()
                .max_messages(n)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .unwrap();
            while let Some(m) = msgs.next().await {
                let m = m.unwrap();
                let seq = i64::try_from(m.info().unwrap().stream_sequence).unwrap();
                m.double_ack().await.unwrap();
                next = seq + 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------ Kafka, several partitions

/// Writes `counts[p]` records to partition p of `topic`.
pub fn produce_to(bootstrap: &str, topic: &str, counts: &[usize]) {
    let p = one_record_per_batch(bootstrap);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (partition, n) in counts.iter().enumerate() {
        for i in 0..*n {
            let payload = format!("e{i}");
            let record = FutureRecord::<(), _>::to(topic)
                .partition(i32::try_from(partition).unwrap())
                .payload(&payload);
            rt.block_on(p.send(record, Duration::from_secs(10)))
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
}

/// Commits `offsets[p]` for partition p of `topic` as `group`, from a client
/// that never joins the group (as `kafka-consumer-groups --reset-offsets`).
pub fn commit_partitions(bootstrap: &str, group: &str, topic: &str, offsets: &[i64]) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets.iter().enumerate() {
        tpl.add_partition_offset(topic, i32::try_from(p).unwrap(), Offset::Offset(*o))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = c.commit(&tpl, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "commit for {group}: {e}");
        std::thread::sleep(Duration::from_millis(300));
    }
}
