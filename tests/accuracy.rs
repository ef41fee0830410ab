//! Accuracy against reality: the lag analysis (time lag, rates, status) measured
//! against real brokers (tansu, nats-server) driven at known rates by real
//! producers and consumers, while the test keeps its own record of when every
//! message was written. Each figure lagwatch reports is compared with that
//! truth, at the instant of the poll it came from (the API's `at`).
//!
//! Run with `-- --nocapture` to see the measured accuracies (`accuracy:` lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, stream};
use common::{Daemon, Nats, Tansu};
use futures::StreamExt;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

/// The daemon's poll interval in every test: 1 s, the smallest it accepts.
const POLL: f64 = 1.0;

/// Slack on top of one poll interval for time lag: the poll is stamped when it
/// starts (`at`) but reads head a few ms later, the test stamps a message when
/// its produce is acknowledged (a few ms after it is in the log), and two cores
/// shared by six tests and their brokers delay threads by tens of ms.
const SLACK: f64 = 0.5;

/// A random-enough name per test run: tests share no broker state.
fn name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:08x}", std::process::id())
}

/// Wall clock in seconds since the epoch: lagwatch stamps polls with the same
/// clock (`Millis::now()`), so the two compare directly.
fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// When each message was written, by offset (Kafka, from 0) or stream sequence
/// (JetStream, from 1): the time its produce was acknowledged.
#[derive(Clone)]
struct Written {
    base: i64,
    times: Arc<Mutex<Vec<f64>>>,
}

impl Written {
    fn new(base: i64) -> Self {
        Self {
            base,
            times: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn push(&self, offset: i64, t: f64) {
        let mut v = self.times.lock().unwrap();
        assert_eq!(
            offset,
            self.base + v.len() as i64,
            "offsets are written in order"
        );
        v.push(t);
    }

    fn time_of(&self, offset: i64) -> Option<f64> {
        let i = usize::try_from(offset - self.base).ok()?;
        self.times.lock().unwrap().get(i).copied()
    }

    /// One past the last message written.
    fn end(&self) -> i64 {
        self.base + self.times.lock().unwrap().len() as i64
    }

    /// The first offset written after `cutoff`: a consumer that has processed
    /// every message written at or before `cutoff` commits this.
    fn first_after(&self, cutoff: f64) -> i64 {
        let v = self.times.lock().unwrap();
        self.base + v.partition_point(|&t| t <= cutoff) as i64
    }

    /// The true time lag at `at`: the age of the oldest unconsumed message,
    /// 0 when there is none (or it was written after `at`).
    fn true_age(&self, committed: i64, head: i64, at: f64) -> f64 {
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
enum Pace {
    /// Evenly, this many per second (on an absolute schedule: no drift).
    Steady(f64),
    /// `size` records as fast as possible every `every` seconds.
    Bursts { size: usize, every: f64 },
}

impl Pace {
    fn due(self, i: usize) -> f64 {
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
struct KafkaProducer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<f64>>,
    started: f64,
}

impl KafkaProducer {
    fn start(bootstrap: &str, topic: &str, pace: Pace, written: Written) -> Self {
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
    fn stop(&mut self) -> f64 {
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
type Policy = Box<dyn FnMut(f64) -> Option<i64> + Send>;

/// A real member of a consumer group (subscribed, assigned partition 0 of the
/// topic, polling all the time so it stays in the group) that commits what
/// `policy` says, at most every `every`.
struct Member {
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
    fn start(
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
        common::wait_until(
            "the group member's first commit",
            Duration::from_secs(30),
            || m.last_commit().is_some(),
        );
        m
    }

    fn last_commit(&self) -> Option<(f64, i64)> {
        *self.last_commit.lock().unwrap()
    }

    /// Stops polling and closes the consumer (it leaves the group).
    fn kill(&mut self) {
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

// ------------------------------------------------------------ daemon readings

fn kafka_config(bootstrap: &str, analysis: &str) -> String {
    format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: k\n    kafka:\n      bootstrap_servers: [\"{bootstrap}\"]\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n{analysis}"
    )
}

fn nats_config(url: &str, analysis: &str) -> String {
    format!(
        "http:\n  listen: 127.0.0.1:0\nshutdown_timeout: 2s\nsources:\n  - name: nats\n    jetstream:\n      servers: [\"{url}\"]\n      poll_interval: 1s\n      request_timeout: 2s\nanalysis:\n{analysis}"
    )
}

/// One poll's view of one group, from `GET /api/v1/groups/{source}/{group}`.
struct Reading {
    /// When the poll began (seconds since the epoch): lagwatch's `now`.
    at: f64,
    json: Value,
}

impl Reading {
    fn group(&self) -> &Value {
        &self.json["group"]
    }
    fn partition(&self) -> &Value {
        &self.json["partitions"][0]
    }
    fn committed(&self) -> i64 {
        self.partition()["committed"].as_i64().unwrap()
    }
    fn latest(&self) -> i64 {
        self.partition()["latest"].as_i64().unwrap()
    }
    fn lag(&self) -> u64 {
        self.group()["lag"].as_u64().unwrap()
    }
    fn lag_seconds(&self) -> Option<f64> {
        self.group()["lag_seconds"]["seconds"].as_f64()
    }
    fn quality(&self) -> &str {
        self.group()["lag_seconds"]["quality"].as_str().unwrap()
    }
    fn status(&self) -> &str {
        self.group()["status"].as_str().unwrap()
    }
    fn rate(&self, which: &str) -> Option<f64> {
        self.group()[which].as_f64()
    }
}

fn parse_at(json: &Value) -> f64 {
    let s = json["at"].as_str().unwrap();
    humantime::parse_rfc3339(s)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Waits for the first poll after `after` that reports the group.
fn next_reading(d: &Daemon, path: &str, after: f64) -> Reading {
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
fn metric(body: &str, family: &str, labels: &[&str]) -> Option<f64> {
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
fn metrics_agree_with_api(d: &Daemon, path: &str, group: &str) {
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

// --------------------------------------------------------------------- tests

#[test]
fn a_consumer_kept_eight_seconds_behind_a_steady_producer_shows_eight_seconds_of_time_lag() {
    let clock = Instant::now();
    // 20 msg/s; the consumer commits, every 0.5 s, past every message at least
    // D old. The oldest unconsumed message is then between D - 0.05 s (one
    // message younger) and D + 0.5 s (a commit period later) old at any poll.
    const D: f64 = 8.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("steady"), name("steady-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 20s\n  min_span: 5s\n"));
    let written = Written::new(0);
    let w = written.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(500),
        true,
        Box::new(move |now| Some(w.first_after(now - D))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    // lagwatch has the group (committed 0, head 0) before the first write, so
    // every write falls between two of its samples.
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(20.0), written.clone());
    let started = producer.started;

    let (mut worst_vs_truth, mut steady) = (0.0_f64, Vec::new());
    while last.at < started + D + 16.0 {
        last = next_reading(&daemon, &path, last.at);
        let (c, h) = (last.committed(), last.latest());
        let truth = written.true_age(c, h, last.at);
        let got = last
            .lag_seconds()
            .unwrap_or_else(|| panic!("time lag unknown at {:?}", last.json));
        // Against the truth at every poll, from the first write on (while the
        // consumer still sits at 0 the truth grows 0 -> D): the interpolation
        // between two samples is wrong by at most the time between them.
        assert!(
            (got - truth).abs() <= POLL + SLACK,
            "reported {got:.3} s, true age {truth:.3} s (committed {c}, head {h})"
        );
        worst_vs_truth = worst_vs_truth.max((got - truth).abs());
        if c < h {
            assert_eq!(last.quality(), "interpolated", "{:?}", last.json);
        }
        // Steady state: the consumer has been committing for a few seconds.
        if last.at > started + D + 3.0 {
            assert!(
                (got - D).abs() <= POLL + SLACK,
                "steady state: reported {got:.3} s for a consumer {D} s behind"
            );
            steady.push(got);
        }
    }
    metrics_agree_with_api(&daemon, &path, &group);
    let late = producer.stop();
    assert!(
        late < 0.25,
        "the producer kept its schedule (late by {late:.3} s)"
    );
    assert!(steady.len() >= 10, "{} steady polls", steady.len());
    let (lo, hi) = steady
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let mean = steady.iter().sum::<f64>() / steady.len() as f64;
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): steady time lag, consumer {D} s behind at 20 msg/s: {} polls, reported min {lo:.3} mean {mean:.3} max {hi:.3} s; worst |reported - true age| {worst_vs_truth:.3} s",
        steady.len()
    );
}

#[test]
fn time_lag_under_a_bursty_producer_is_never_negative_never_unknown_and_within_a_poll_of_the_truth()
{
    let clock = Instant::now();
    // Bursts of 40 records every 3.7 s; the consumer commits (every 0.25 s)
    // past every record at least 2 s old, so it is caught up for the last
    // ~1.7 s of each cycle and lagging a whole burst for the first ~2 s. 3.7 s
    // is not a multiple of the 1 s poll, so bursts land at every phase of the
    // poll cycle (a 4 s period lands each burst just after a poll, where
    // interpolation is trivially right).
    const D: f64 = 2.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("bursty"), name("bursty-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(
        &b,
        "  window: 8s\n  min_span: 3s\n  min_samples: 3\n",
    ));
    let written = Written::new(0);
    let w = written.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(250),
        true,
        Box::new(move |now| Some(w.first_after(now - D))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let pace = Pace::Bursts {
        size: 40,
        every: 3.7,
    };
    let mut producer = KafkaProducer::start(&b, &topic, pace, written.clone());
    let started = producer.started;

    let (mut lagging, mut caught_up, mut worst_over, mut worst_under) = (0, 0, 0.0_f64, 0.0_f64);
    while last.at < started + 26.0 {
        last = next_reading(&daemon, &path, last.at);
        let (c, h) = (last.committed(), last.latest());
        let truth = written.true_age(c, h, last.at);
        assert_ne!(last.quality(), "unknown", "{:?}", last.json);
        let got = last.lag_seconds().unwrap();
        assert!(got >= 0.0, "negative time lag {got}");
        if c >= h {
            // Caught up between bursts: exactly 0, not an age of the last burst.
            assert_eq!((got, last.quality()), (0.0, "exact"), "{:?}", last.json);
            caught_up += 1;
            continue;
        }
        lagging += 1;
        // A burst is dated between the two samples around it: the estimate is
        // never above the truth by more than the time between those samples
        // (one poll), nor below it by more.
        assert!(
            got <= truth + POLL + SLACK,
            "reported {got:.3} s > true age {truth:.3} s + one poll (committed {c}, head {h})"
        );
        assert!(
            got >= truth - POLL - SLACK,
            "reported {got:.3} s < true age {truth:.3} s - one poll (committed {c}, head {h})"
        );
        worst_over = worst_over.max(got - truth);
        worst_under = worst_under.max(truth - got);
    }
    producer.stop();
    assert!(lagging >= 5, "{lagging} polls while lagging a burst");
    assert!(caught_up >= 3, "{caught_up} polls caught up between bursts");
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): bursty time lag: {lagging} lagging polls, {caught_up} caught-up polls (all exact 0); reported - true age within [-{worst_under:.3}, +{worst_over:.3}] s"
    );
}

#[test]
fn time_lag_of_a_consumer_caught_up_on_an_idle_topic_is_exactly_zero() {
    let clock = Instant::now();
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("idle"), name("idle-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 6s\n  min_span: 3s\n"));
    let written = Written::new(0);
    // The consumer commits up to `target`; 0 until the test lets it catch up.
    let target = Arc::new(AtomicI64::new(0));
    let t = target.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(100),
        true,
        Box::new(move |_| Some(t.load(Ordering::Relaxed))),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(
        &b,
        &topic,
        Pace::Bursts {
            size: 50,
            every: 1000.0,
        },
        written.clone(),
    );
    common::wait_until("50 records written", Duration::from_secs(20), || {
        written.end() == 50
    });
    producer.stop();
    let done = written.time_of(49).unwrap();

    // Unconsumed for 3 s: the time lag is the age of record 0, not 0.
    while last.at < done + 3.0 {
        last = next_reading(&daemon, &path, last.at);
    }
    let truth = written.true_age(last.committed(), last.latest(), last.at);
    let before = last.lag_seconds().unwrap();
    assert_eq!(last.latest(), 50);
    assert!(
        (before - truth).abs() <= POLL + SLACK,
        "before catching up: reported {before:.3} s, true age {truth:.3} s"
    );

    // Caught up, then nothing is written for longer than the window: exactly
    // 0, Exact, on every poll (kafka-lag-exporter reports the age of the last
    // write here, growing for as long as the topic stays idle).
    target.store(i64::MAX, Ordering::Relaxed);
    while last.committed() < 50 {
        last = next_reading(&daemon, &path, last.at);
    }
    let caught_up = last.at;
    let mut polls = 0;
    while last.at < caught_up + 10.0 {
        assert_eq!(last.lag(), 0);
        assert_eq!(
            (last.lag_seconds(), last.quality()),
            (Some(0.0), "exact"),
            "{:?}",
            last.json
        );
        assert_eq!(last.status(), "OK");
        polls += 1;
        last = next_reading(&daemon, &path, last.at);
    }
    assert!(polls >= 8, "{polls} idle polls");
    let body = daemon.metrics();
    let g = format!("group=\"{group}\"");
    assert_eq!(
        metric(&body, "lagwatch_group_lag_seconds", &[&g]),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &body,
            "lagwatch_group_lag_seconds_quality",
            &[&g, "quality=\"exact\""]
        ),
        Some(1.0)
    );
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): idle topic: before catching up reported {before:.3} s vs true {truth:.3} s; then {polls} polls over {:.1} s idle, all exactly 0 (exact)",
        last.at - caught_up
    );
}

#[test]
fn produce_and_consume_rates_are_within_five_percent_of_the_rates_driven() {
    let clock = Instant::now();
    // 30 msg/s in; the consumer commits floor(20 (t - t0)) every 0.1 s (steps
    // of two records), so 20 msg/s out and the lag grows 10 msg/s.
    const PRODUCE: f64 = 30.0;
    const CONSUME: f64 = 20.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("rates"), name("rates-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(&b, "  window: 10s\n  min_span: 5s\n"));
    let written = Written::new(0);
    let t0 = Arc::new(Mutex::new(f64::MAX));
    let start_at = t0.clone();
    let _member = Member::start(
        &b,
        &group,
        &topic,
        Duration::from_millis(100),
        true,
        Box::new(move |now| {
            let t0 = *start_at.lock().unwrap();
            Some(((now - t0).max(0.0) * CONSUME).floor() as i64)
        }),
    );
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let mut producer = KafkaProducer::start(&b, &topic, Pace::Steady(PRODUCE), written.clone());
    // The consumer starts a second later so that it never catches up with head.
    *t0.lock().unwrap() = producer.started + 1.0;

    // Steady state once the window holds only samples of both running.
    let from = producer.started + 1.0 + 10.0 + POLL;
    let mut seen: Vec<(f64, f64, f64)> = Vec::new();
    while seen.len() < 10 {
        last = next_reading(&daemon, &path, last.at);
        if last.at < from {
            continue;
        }
        let (p, c, g) = (
            last.rate("produce_rate").unwrap(),
            last.rate("consume_rate").unwrap(),
            last.rate("lag_growth").unwrap(),
        );
        // 5% of each driven rate; the lag growth is their difference, so its
        // errors add up: 5% of the produce rate.
        assert!((p - PRODUCE).abs() <= 0.05 * PRODUCE, "produce {p:.3}/s");
        assert!((c - CONSUME).abs() <= 0.05 * CONSUME, "consume {c:.3}/s");
        let growth = PRODUCE - CONSUME;
        assert!((g - growth).abs() <= 0.05 * PRODUCE, "lag growth {g:.3}/s");
        seen.push((p, c, g));
    }
    let late = producer.stop();
    assert!(
        late < 0.25,
        "the producer kept its schedule (late by {late:.3} s)"
    );
    let worst = |f: fn(&(f64, f64, f64)) -> f64, truth: f64| {
        seen.iter()
            .map(|r| (f(r) - truth).abs() / truth * 100.0)
            .fold(0.0_f64, f64::max)
    };
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): kafka rates over {} polls: produce {:.3}..{:.3} (worst {:.2}% off 30), consume {:.3}..{:.3} (worst {:.2}% off 20), lag growth worst {:.2}% off 10",
        seen.len(),
        seen.iter().map(|r| r.0).fold(f64::MAX, f64::min),
        seen.iter().map(|r| r.0).fold(f64::MIN, f64::max),
        worst(|r| r.0, PRODUCE),
        seen.iter().map(|r| r.1).fold(f64::MAX, f64::min),
        seen.iter().map(|r| r.1).fold(f64::MIN, f64::max),
        worst(|r| r.1, CONSUME),
        worst(|r| r.2, PRODUCE - CONSUME),
    );
}

/// Polls until the group shows `status`; returns that reading. Fails if a
/// status outside `allowed` shows up on the way, or after `timeout`.
fn wait_status(
    d: &Daemon,
    path: &str,
    last: &mut Reading,
    status: &str,
    allowed: &[&str],
    timeout: f64,
) -> f64 {
    let start = last.at;
    loop {
        *last = next_reading(d, path, last.at);
        let s = last.status().to_string();
        if s == status {
            return last.at;
        }
        assert!(
            allowed.contains(&s.as_str()),
            "status {s} while waiting for {status} (allowed on the way: {allowed:?}): {:?}",
            last.json
        );
        assert!(
            last.at - start < timeout,
            "no {status} within {timeout} s; last {:?}",
            last.json
        );
    }
}

#[test]
fn status_goes_ok_stall_ok_stop_ok_when_the_rules_say() {
    let clock = Instant::now();
    // window 6 s, stop_after 10 s. STALL: committed constant across the whole
    // window while lagging. STOP: committed unchanged for longer than
    // stop_after. lagwatch sees offsets, not members, so a consumer that is
    // alive but stuck also reaches STOP after stop_after (docs/analysis.md:
    // OK/WARN -> STALL -> STOP); the test stalls a live member for less than
    // stop_after, and lets a killed one run past it.
    const WINDOW: f64 = 6.0;
    const STOP_AFTER: f64 = 10.0;
    let tansu = Tansu::start();
    let b = tansu.bootstrap();
    let (topic, group) = (name("status"), name("status-g"));
    tansu.create_topic(&topic, 1);
    let daemon = Daemon::start(&kafka_config(
        &b,
        "  window: 6s\n  min_span: 3s\n  thresholds:\n    stop_after: 10s\n",
    ));
    let written = Written::new(0);
    // 0: commit every record as soon as it is received; 1: commit nothing.
    let mode = Arc::new(AtomicU8::new(0));
    let keep_up = |mode: &Arc<AtomicU8>| -> Policy {
        let m = mode.clone();
        Box::new(move |_| (m.load(Ordering::Relaxed) == 0).then_some(i64::MAX))
    };
    let mut member = Member::start(&b, &group, &topic, Duration::ZERO, true, keep_up(&mode));
    let path = format!("/api/v1/groups/k/{group}");
    let mut last = next_reading(&daemon, &path, 0.0);
    let _producer = KafkaProducer::start(&b, &topic, Pace::Steady(10.0), written.clone());

    // Keeping up: OK, and still OK once the window is full of it.
    wait_status(&daemon, &path, &mut last, "OK", &[], 5.0);
    let ok_from = last.at;
    while last.at < ok_from + WINDOW + POLL {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "OK", "{:?}", last.json);
    }

    // Stuck but alive (polling, in the group), for 8 s < stop_after: STALL
    // once the window holds only samples after the last commit, i.e. within
    // (window - 1 poll, window + 1 poll] of it (+1 poll if the first of them
    // still had lag 0, + slack), WARN allowed before it (lag rising); no STOP.
    mode.store(1, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    let (held, _) = member.last_commit().unwrap();
    let stall_at = wait_status(&daemon, &path, &mut last, "STALL", &["OK", "WARN"], 15.0);
    let stall_after = stall_at - held;
    assert!(
        (WINDOW - POLL..=WINDOW + 2.0 * POLL + SLACK).contains(&stall_after),
        "STALL {stall_after:.2} s after the last commit"
    );
    while last.at < held + 8.0 {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "STALL", "{:?}", last.json);
        // Alive and in the group while stalled (tansu answers DescribeGroups).
        let g = last.group();
        assert_eq!(
            (g["state"].as_str(), g["members"].as_u64()),
            (Some("Stable"), Some(1))
        );
    }

    // It resumes and catches up: OK at the first poll after its commit (the
    // committed offset moves and the lag falls).
    mode.store(0, Ordering::Relaxed);
    let resumed = now_s();
    let ok_at = wait_status(&daemon, &path, &mut last, "OK", &["STALL"], 5.0);
    let ok_after = ok_at - resumed;
    assert!(ok_after <= 2.0 * POLL, "OK {ok_after:.2} s after resuming");
    let steady_from = last.at;
    while last.at < steady_from + 2.0 {
        last = next_reading(&daemon, &path, last.at);
        assert_eq!(last.status(), "OK", "{:?}", last.json);
    }

    // Killed: STALL after the window, then STOP once committed has not moved
    // for stop_after: the first poll more than stop_after after the first poll
    // that saw the last commit, so within (stop_after, stop_after + 2 polls].
    member.kill();
    let (died, _) = member.last_commit().unwrap();
    wait_status(&daemon, &path, &mut last, "STALL", &["OK", "WARN"], 15.0);
    let stop_at = wait_status(&daemon, &path, &mut last, "STOP", &["STALL"], 15.0);
    let stop_after = stop_at - died;
    // The killed member left: nobody in the group.
    let g = last.group();
    assert_eq!(
        (g["state"].as_str(), g["members"].as_u64()),
        (Some("Empty"), Some(0))
    );
    assert!(
        (STOP_AFTER..=STOP_AFTER + 2.0 * POLL + SLACK).contains(&stop_after),
        "STOP {stop_after:.2} s after the last commit"
    );
    let g = format!("group=\"{group}\"");
    let body = daemon.metrics();
    assert_eq!(
        metric(&body, "lagwatch_group_status", &[&g, "status=\"STOP\""]),
        Some(1.0)
    );
    assert_eq!(
        metric(&body, "lagwatch_group_status_code", &[&g]),
        Some(4.0)
    );

    // A new member of the group resumes from the committed offset: OK again.
    let restarted = now_s();
    let _member = Member::start(&b, &group, &topic, Duration::ZERO, false, keep_up(&mode));
    let back_at = wait_status(&daemon, &path, &mut last, "OK", &["STOP"], 20.0);
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): status: STALL {stall_after:.2} s after the last commit (window {WINDOW} s); OK {ok_after:.2} s after resuming; STOP {stop_after:.2} s after the last commit (stop_after {STOP_AFTER} s); OK {:.2} s after a new member started (join included)",
        back_at - restarted
    );
}

// ------------------------------------------------------------ JetStream side

/// Publishes at `rate` msg/s (absolute schedule) and records each sequence.
async fn publish_steady(
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
async fn ack_up_to(
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

#[test]
fn jetstream_time_lag_and_rates_match_the_truth_within_a_poll_and_five_percent() {
    let clock = Instant::now();
    // One stream, 30 msg/s; two pull consumers: `delayed` acks every message
    // once it is D old (time lag D, consumes 30/s), `slow` acks 20 msg/s
    // (lag grows 10/s). JetStream's produce rate is consume + lag growth.
    const D: f64 = 6.0;
    const PRODUCE: f64 = 30.0;
    const SLOW: f64 = 20.0;
    let nats = Nats::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stream_name = name("ACC").replace('-', "_");
    let subject = format!("{stream_name}.events");
    let (js, stream) = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let stream = js
            .create_stream(stream::Config {
                name: stream_name.clone(),
                subjects: vec![format!("{stream_name}.>")],
                ..Default::default()
            })
            .await
            .unwrap();
        for durable in ["delayed", "slow"] {
            stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(durable.into()),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        (js, stream)
    });
    let daemon = Daemon::start(&nats_config(&nats.url(), "  window: 10s\n  min_span: 5s\n"));
    let (delayed, slow) = ("/api/v1/groups/nats/delayed", "/api/v1/groups/nats/slow");
    let mut last_d = next_reading(&daemon, delayed, 0.0);

    let written = Written::new(1);
    let stop = Arc::new(AtomicBool::new(false));
    let started = now_s();
    let publisher = rt.spawn(publish_steady(
        js,
        subject,
        PRODUCE,
        written.clone(),
        stop.clone(),
    ));
    let w = written.clone();
    rt.spawn(ack_up_to(
        stream.clone(),
        "delayed".into(),
        written.clone(),
        move |now| w.first_after(now - D),
        stop.clone(),
    ));
    // The slow one starts a second later so that it never reaches head.
    rt.spawn(ack_up_to(
        stream,
        "slow".into(),
        written.clone(),
        move |now| 1 + ((now - started - 1.0).max(0.0) * SLOW).floor() as i64,
        stop.clone(),
    ));

    // Time lag of `delayed` against the truth at every poll, and against D
    // once it acks steadily; its rates once the window holds only that.
    let (mut worst, mut steady, mut rates) = (0.0_f64, Vec::new(), Vec::new());
    while last_d.at < started + D + 10.0 + POLL + 6.0 {
        last_d = next_reading(&daemon, delayed, last_d.at);
        let (c, h) = (last_d.committed(), last_d.latest());
        let truth = written.true_age(c, h, last_d.at);
        let got = last_d
            .lag_seconds()
            .unwrap_or_else(|| panic!("unknown: {:?}", last_d.json));
        assert!(
            (got - truth).abs() <= POLL + SLACK,
            "reported {got:.3} s, true age {truth:.3} s (ack floor + 1 = {c}, head {h})"
        );
        worst = worst.max((got - truth).abs());
        if last_d.at > started + D + 3.0 {
            assert!(
                (got - D).abs() <= POLL + SLACK,
                "steady: {got:.3} s vs {D} s"
            );
            steady.push(got);
        }
        if last_d.at > started + D + 10.0 + POLL {
            let (p, c) = (
                last_d.rate("produce_rate").unwrap(),
                last_d.rate("consume_rate").unwrap(),
            );
            assert!(
                (p - PRODUCE).abs() <= 0.05 * PRODUCE,
                "delayed produce {p:.3}"
            );
            assert!(
                (c - PRODUCE).abs() <= 0.05 * PRODUCE,
                "delayed consume {c:.3}"
            );
            rates.push((p, c));
        }
    }
    // `slow`: its rates, from the same daemon, in steady state by now.
    let mut last_s = next_reading(&daemon, slow, 0.0);
    let mut slow_rates = Vec::new();
    for _ in 0..5 {
        last_s = next_reading(&daemon, slow, last_s.at);
        let (p, c, g) = (
            last_s.rate("produce_rate").unwrap(),
            last_s.rate("consume_rate").unwrap(),
            last_s.rate("lag_growth").unwrap(),
        );
        assert!((p - PRODUCE).abs() <= 0.05 * PRODUCE, "slow produce {p:.3}");
        assert!((c - SLOW).abs() <= 0.05 * SLOW, "slow consume {c:.3}");
        assert!(
            (g - (PRODUCE - SLOW)).abs() <= 0.05 * PRODUCE,
            "slow lag growth {g:.3}"
        );
        slow_rates.push((p, c, g));
    }
    stop.store(true, Ordering::Relaxed);
    let late = rt.block_on(publisher).unwrap();
    assert!(
        late < 0.25,
        "the publisher kept its schedule (late by {late:.3} s)"
    );
    assert!(
        steady.len() >= 8 && rates.len() >= 4,
        "{steady:?} {rates:?}"
    );
    let span = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::MAX, f64::min),
            v.iter().copied().fold(f64::MIN, f64::max),
        )
    };
    let s = span(&steady);
    let dp = span(&rates.iter().map(|r| r.0).collect::<Vec<_>>());
    let dc = span(&rates.iter().map(|r| r.1).collect::<Vec<_>>());
    let sp = span(&slow_rates.iter().map(|r| r.0).collect::<Vec<_>>());
    let sc = span(&slow_rates.iter().map(|r| r.1).collect::<Vec<_>>());
    let sg = span(&slow_rates.iter().map(|r| r.2).collect::<Vec<_>>());
    let elapsed = clock.elapsed().as_secs_f64();
    eprintln!(
        "accuracy ({elapsed:.0} s): jetstream: delayed {D} s: time lag {:.3}..{:.3} s over {} polls, worst |reported - true age| {worst:.3} s; rates produce {:.3}..{:.3} consume {:.3}..{:.3} (30); slow: produce {:.3}..{:.3} (30) consume {:.3}..{:.3} (20) growth {:.3}..{:.3} (10)",
        s.0, s.1, steady.len(), dp.0, dp.1, dc.0, dc.1, sp.0, sp.1, sc.0, sc.1, sg.0, sg.1
    );
}
