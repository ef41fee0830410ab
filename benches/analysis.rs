//! One full "poll" of the analysis core at scale: 50,000 keys with full rings,
//! record a sample for each, analyze each, roll up each group. Plain main, no
//! harness: prints the median time per poll and the memory per key.
//! Run: `cargo bench --bench analysis`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test and benchmark code: a panic is a failed run with its line; table tests are long by design"
)]

use std::hint::black_box;
use std::mem::size_of;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lagwatch::analysis::{analyze, rollup, Analysis, Settings, ThresholdResolver, Thresholds};
use lagwatch::history::{History, KeyHistory, Point};
use lagwatch::model::{ConsumerKey, GroupKey, Millis, Sample, SourceId};

const GROUPS: usize = 5_000;
const PARTITIONS: usize = 10;
const KEYS: usize = GROUPS * PARTITIONS;
const POLL: Duration = Duration::from_secs(30);
const TIMED_POLLS: usize = 9;

/// Resident set size in bytes.
fn rss_bytes() -> Option<u64> {
    Some(lagwatch::process::resident_bytes()).filter(|b| *b > 0)
}

/// Realistic shapes: most partitions keep pace, some fall behind, some are
/// stalled, some idle and caught up.
fn sample(key: &ConsumerKey, k: usize, poll: i64) -> Sample {
    let rate = (k % 97) as i64 + 1;
    let head = 1_000_000 + rate * 30 * poll;
    let committed = match k % 10 {
        0 => 900_000,                            // stalled
        1 => 1_000_000 + (rate - 1) * 30 * poll, // falling behind
        2 => head,                               // caught up
        _ => head - rate * 5 - (poll % 3),       // keeping pace, jittery
    };
    Sample {
        key: key.clone(),
        committed: Some(committed),
        head,
        low: Some(poll * rate),
        lag: u64::try_from(head - committed).unwrap_or(0),
        jetstream: None,
        oldest_written: None,
    }
}

fn main() {
    let mut settings = Settings::default();
    // Two patterns, so resolving thresholds per group costs what it will.
    let overrides = ["^payments-", "-batch$"].map(|p| {
        let t = Thresholds {
            allowed_lag: 100,
            ..Thresholds::default()
        };
        (regex::Regex::new(p).expect("a valid pattern"), t)
    });
    settings.thresholds = ThresholdResolver::new(Thresholds::default(), overrides.to_vec());
    let resolver = settings.thresholds.clone();
    let capacity = settings.capacity_for(POLL);
    let mut scratch = std::collections::VecDeque::new();

    let source = SourceId::new("bench");
    let mut keys = Vec::with_capacity(KEYS);
    for g in 0..GROUPS {
        // A source shares one Arc per group and topic name across partitions.
        let group = GroupKey {
            source: source.clone(),
            scope: None,
            group: Arc::from(format!("group-{g}").as_str()),
        };
        let topic: Arc<str> = Arc::from(format!("topic-{}", g % 500).as_str());
        for p in 0..PARTITIONS {
            keys.push(ConsumerKey {
                group: group.clone(),
                topic: topic.clone(),
                partition: Some(i32::try_from(p).unwrap_or(0)),
            });
        }
    }
    let mut samples: Vec<Sample> = keys
        .iter()
        .enumerate()
        .map(|(k, key)| sample(key, k, 0))
        .collect();

    let rss_before = rss_bytes();
    let mut history = History::new(capacity);
    let poll_ms = i64::try_from(POLL.as_millis()).unwrap_or(30_000);
    let start = 1_700_000_000_000_i64;
    let mut poll: i64 = 0;
    for _ in 0..capacity {
        for (k, s) in samples.iter_mut().enumerate() {
            *s = sample(&keys[k], k, poll);
            history.record(s, Millis(start + poll * poll_ms));
        }
        poll += 1;
    }
    let rss_after = rss_bytes();

    let mut analyses: Vec<Analysis> = Vec::with_capacity(KEYS);
    let mut times = Vec::with_capacity(TIMED_POLLS);
    let mut checksum = 0.0_f64;
    for _ in 0..TIMED_POLLS {
        let now = Millis(start + poll * poll_ms);
        for (k, s) in samples.iter_mut().enumerate() {
            *s = sample(&keys[k], k, poll);
        }
        let t0 = Instant::now();
        analyses.clear();
        for s in &samples {
            history.record(s, now);
        }
        for chunk in keys.chunks(PARTITIONS) {
            let Some(first) = chunk.first() else { continue };
            let t = resolver.for_group(&first.group);
            let from = analyses.len();
            for key in chunk {
                if let Some(h) = history.get(key) {
                    h.decode_into(&mut scratch);
                    analyses.push(analyze(h, &scratch, now, &settings, t, None));
                }
            }
            let g = rollup(analyses[from..].iter());
            checksum += g.lag_sum as f64 + g.produce_rate.unwrap_or(0.0);
        }
        times.push(t0.elapsed());
        poll += 1;
    }
    black_box(checksum);
    times.sort();
    let median = times[times.len() / 2];

    let ring_bytes: usize = history.iter().map(|(_, h)| h.heap_bytes()).sum();
    let ring_per_key = ring_bytes / KEYS.max(1);
    let computed = ring_per_key + size_of::<KeyHistory>() + size_of::<ConsumerKey>();
    println!("keys: {KEYS} ({GROUPS} groups x {PARTITIONS} partitions), ring capacity {capacity} (10m window at a 30s poll)");
    println!(
        "one poll (record + analyze + rollup), median of {TIMED_POLLS}: {:.1} ms (min {:.1}, max {:.1})",
        median.as_secs_f64() * 1e3,
        times.first().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    println!(
        "per key: {:.2} us",
        median.as_secs_f64() * 1e6 / KEYS as f64
    );
    println!(
        "memory per key, computed: ring {ring_per_key} B ({:.1} B per point; a decoded Point is {} B) + KeyHistory {} B + ConsumerKey {} B = {computed} B (before hash-table slack)",
        ring_per_key as f64 / capacity as f64,
        size_of::<Point>(),
        size_of::<KeyHistory>(),
        size_of::<ConsumerKey>(),
    );
    if let (Some(a), Some(b)) = (rss_before, rss_after) {
        let delta = b.saturating_sub(a);
        println!(
            "memory per key, measured RSS delta: {:.0} B ({:.1} MiB for {KEYS} keys)",
            delta as f64 / KEYS as f64,
            delta as f64 / (1024.0 * 1024.0)
        );
    }
}
