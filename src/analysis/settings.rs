//! Analysis settings in the units analysis works in: the window, "not enough
//! data" limits, history bounds, and status thresholds per group. Built from the
//! `analysis:` section by the config's validation pass; the defaults are the
//! named constants below.

use std::time::Duration;

use crate::model::PerGroup;

/// Burrow evaluates 10 commit intervals, about 10 minutes at the usual 60 s
/// commit interval.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
/// Two points always fit a line exactly, so a slope from two says nothing about
/// noise; three is the least that can disagree.
pub const DEFAULT_MIN_SAMPLES: usize = 3;
/// One default poll interval (30 s): three samples at the default interval span
/// 60 s, comfortably above it even with jitter.
pub const DEFAULT_MIN_SPAN: Duration = Duration::from_secs(30);
/// At a 30 s poll the 10 m window needs 23 samples; polls faster than ~10 s see
/// a shorter effective window. At about [`BYTES_PER_SAMPLE`] a sample, 64 cost
/// under 1 KiB per key.
pub const DEFAULT_MAX_SAMPLES_PER_KEY: usize = 64;
/// Longer than the window, so a partition gone for a few polls (a rebalance, a
/// broker restart) keeps its history.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(900);
/// Burrow: "if the lag is ever zero ... the period is OK".
pub const DEFAULT_ALLOWED_LAG: u64 = 0;
/// Twice the default window: a stuck consumer is STALL for one window once the
/// whole window shows no progress, then STOP.
pub const DEFAULT_STOP_AFTER: Duration = Duration::from_secs(1200);
/// A ring larger than this is a typo, not a plan.
pub const MAX_SAMPLES_LIMIT: usize = 4096;
/// Memory one history sample costs, delta-encoded (see `history::Ring`): 10-15
/// bytes measured at 30 s polls; the figure users size memory by.
pub const BYTES_PER_SAMPLE: usize = 13;

/// The `analysis:` section, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Samples younger than this feed the rates and the status rules.
    pub window: Duration,
    /// Fewer samples than this in the window: rates are None ("not enough data").
    pub min_samples: usize,
    /// Samples spanning less time than this: rates are None.
    pub min_span: Duration,
    /// Upper bound on the ring per key, whatever the poll interval.
    pub max_samples_per_key: usize,
    /// A key not seen for this long is forgotten.
    pub expire_after: Duration,
    /// The status thresholds of each group.
    pub thresholds: ThresholdResolver,
    /// Reading the broker's timestamp of the oldest unconsumed message.
    pub exact_time_lag: ExactTimeLag,
    /// Why a group is behind.
    pub diagnosis: super::diagnosis::DiagnosisSettings,
    /// Dead-letter topics and advisories (`dead_letters:` of the config).
    pub dead_letters: super::dead_letters::DeadLetterSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            min_samples: DEFAULT_MIN_SAMPLES,
            min_span: DEFAULT_MIN_SPAN,
            max_samples_per_key: DEFAULT_MAX_SAMPLES_PER_KEY,
            expire_after: DEFAULT_EXPIRE_AFTER,
            thresholds: ThresholdResolver::uniform(Thresholds::default()),
            exact_time_lag: ExactTimeLag::default(),
            diagnosis: super::diagnosis::DiagnosisSettings::default(),
            dead_letters: super::dead_letters::DeadLetterSettings::default(),
        }
    }
}

/// Where interpolation cannot answer well, the time lag is read off the oldest
/// unconsumed message itself: its broker timestamp (Kafka: one record fetched
/// at the offset; JetStream: STREAM.MSG.GET). Asked only for the partitions
/// that need it, a bounded number per poll, each (partition, offset) once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactTimeLag {
    pub enabled: bool,
    /// At most this many messages read per source and poll.
    pub max_per_poll: usize,
    /// An interpolated time lag whose error could exceed this is read exactly
    /// too (unknown and extrapolated ones always are, first).
    pub max_error: Duration,
}

/// On: a consumer stuck on an idle topic gets an exact, growing time lag
/// instead of "at least N s".
pub const DEFAULT_EXACT_ENABLED: bool = true;
/// 100 messages a poll: at a 30 s poll, a few kilobytes a second of fetches.
pub const DEFAULT_EXACT_MAX_PER_POLL: usize = 100;
/// A second: what on-call reads a time lag to, not what a poll interval gives.
pub const DEFAULT_EXACT_MAX_ERROR: Duration = Duration::from_secs(1);

impl Default for ExactTimeLag {
    fn default() -> Self {
        ExactTimeLag {
            enabled: DEFAULT_EXACT_ENABLED,
            max_per_poll: DEFAULT_EXACT_MAX_PER_POLL,
            max_error: DEFAULT_EXACT_MAX_ERROR,
        }
    }
}

/// Thresholds resolved for one group, in the units analysis works in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Lag at or below this is fine (Burrow's "lag is zero" rule, generalised).
    pub allowed_lag: u64,
    /// Lag above this is ERR. None: no lag threshold (Burrow's stance).
    pub error_lag: Option<u64>,
    /// Time lag above this is ERR. None: no time-lag threshold.
    pub error_time_lag_secs: Option<f64>,
    /// Committed offset unchanged for longer than this while lagging: STOP.
    pub stop_after_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            allowed_lag: DEFAULT_ALLOWED_LAG,
            error_lag: None,
            error_time_lag_secs: None,
            stop_after_ms: millis(DEFAULT_STOP_AFTER),
        }
    }
}

/// The thresholds of each group (first matching pattern, else the global).
pub type ThresholdResolver = PerGroup<Thresholds>;

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Settings {
    /// Window length in milliseconds.
    pub fn window_ms(&self) -> i64 {
        millis(self.window)
    }
    pub fn min_span_ms(&self) -> i64 {
        millis(self.min_span)
    }
    pub fn expire_after_ms(&self) -> i64 {
        millis(self.expire_after)
    }

    /// Ring capacity for a poll interval: the window's samples, plus one for the
    /// fence post, plus two spare for jitter and a late poll, capped at
    /// `max_samples_per_key`, and never below `min_samples`.
    pub fn capacity_for(&self, poll_interval: Duration) -> usize {
        let poll = poll_interval.as_millis().max(1);
        let window = self.window.as_millis();
        let n = usize::try_from(window.div_ceil(poll)).unwrap_or(usize::MAX);
        n.saturating_add(3)
            .min(self.max_samples_per_key)
            .max(self.min_samples)
            .max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_covers_the_window_with_slack_and_respects_the_cap() {
        let s = Settings::default();
        // case 1: 10 m at 30 s: 20 intervals + 3.
        assert_eq!(s.capacity_for(Duration::from_secs(30)), 23);
        // case 2: 10 m at 1 s would be 603: capped at 64.
        assert_eq!(s.capacity_for(Duration::from_secs(1)), 64);
        // case 3: a poll slower than the window still keeps min_samples.
        assert_eq!(s.capacity_for(Duration::from_secs(3600)), 4);
    }
}
