//! `analysis:`: window, data limits, history bounds, thresholds per group.

use std::time::Duration;

use super::{group_pattern, positive};
use crate::analysis::diagnosis::DiagnosisSettings;
use crate::analysis::settings::{
    millis, ExactTimeLag, Settings, ThresholdResolver, Thresholds, BYTES_PER_SAMPLE,
    MAX_SAMPLES_LIMIT,
};
use crate::config::problems::{At, Problems};
use crate::config::raw;
use crate::config::Seconds;

/// More message fetches per poll than this is a typo, not a plan.
const MAX_EXACT_PER_POLL: usize = 10_000;

pub(super) fn settings(a: &raw::Analysis, at: &At, p: &mut Problems) -> Option<Settings> {
    let before = p.len();
    limits(a, at, p);
    let expire_after = positive(p, &at.key("expire_after"), a.expire_after);
    let thresholds = per_group(a, at, p);
    if a.exact_time_lag.max_per_poll > MAX_EXACT_PER_POLL {
        p.push(
            &at.key("exact_time_lag").key("max_per_poll"),
            format!(
                "must be at most {MAX_EXACT_PER_POLL} (got {}): each is a fetch from the broker",
                a.exact_time_lag.max_per_poll
            ),
        );
    }
    let diagnosis = diagnosis(&a.diagnosis, &at.key("diagnosis"), p);
    if p.len() > before {
        return None;
    }
    Some(Settings {
        window: a.window.get(),
        min_samples: a.min_samples,
        min_span: a.min_span.get(),
        max_samples_per_key: a.max_samples_per_key,
        expire_after: expire_after?,
        thresholds: thresholds?,
        exact_time_lag: ExactTimeLag {
            enabled: a.exact_time_lag.enabled,
            max_per_poll: a.exact_time_lag.max_per_poll,
            max_error: a.exact_time_lag.max_error.get(),
        },
        diagnosis: diagnosis?,
        dead_letters: crate::analysis::dead_letters::DeadLetterSettings::default(),
    })
}

/// `analysis.diagnosis`: factors and shares in range, windows sensible.
fn diagnosis(d: &raw::Diagnosis, at: &At, p: &mut Problems) -> Option<DiagnosisSettings> {
    let def = DiagnosisSettings::default();
    let before = p.len();
    let mut factor = |key: &str, v: Option<f64>, low: f64, high: f64, default: f64| {
        let v = v.unwrap_or(default);
        if !(v.is_finite() && v > low && v < high) {
            p.push(
                &at.key(key),
                format!("must be above {low} and below {high} (got {v})"),
            );
        }
        v
    };
    let spike_factor = factor(
        "spike_factor",
        d.spike_factor,
        1.0,
        1000.0,
        def.spike_factor,
    );
    let slowdown_factor = factor(
        "slowdown_factor",
        d.slowdown_factor,
        0.0,
        1.0,
        def.slowdown_factor,
    );
    let hot_share = factor("hot_share", d.hot_share, 0.0, 1.0, def.hot_share);
    let rebalance_changes = d.rebalance_changes.unwrap_or(def.rebalance_changes);
    if rebalance_changes < 2 {
        p.push(
            &at.key("rebalance_changes"),
            "must be at least 2 (one change is a deploy, not a loop)",
        );
    }
    let baseline_window = d.baseline_window.map_or(def.baseline_window, Seconds::get);
    let baseline_min = d.baseline_min.map_or(def.baseline_min, Seconds::get);
    if baseline_min.is_zero() || baseline_min > baseline_window {
        p.push(
            &at.key("baseline_min"),
            format!(
                "must be above 0s and at most baseline_window ({})",
                humantime::format_duration(baseline_window)
            ),
        );
    }
    (p.len() == before).then_some(DiagnosisSettings {
        spike_factor,
        slowdown_factor,
        hot_share,
        rebalance_changes,
        baseline_window,
        baseline_min,
    })
}

/// The window and the "enough data" and memory limits.
fn limits(a: &raw::Analysis, at: &At, p: &mut Problems) {
    if a.window.get() < Duration::from_secs(1) {
        p.push(
            &at.key("window"),
            format!("must be at least 1s (got {})", a.window),
        );
    }
    if a.min_samples < 2 {
        p.push(
            &at.key("min_samples"),
            format!(
                "must be at least 2: a slope needs two points (got {})",
                a.min_samples
            ),
        );
    }
    if a.min_span >= a.window {
        p.push(
            &at.key("min_span"),
            format!(
                "must be shorter than `window` ({}), or no rate is ever computed (got {})",
                a.window, a.min_span
            ),
        );
    }
    if a.max_samples_per_key < a.min_samples.max(2) {
        p.push(
            &at.key("max_samples_per_key"),
            format!(
                "must be at least `min_samples` ({}) (got {})",
                a.min_samples.max(2),
                a.max_samples_per_key
            ),
        );
    }
    if a.max_samples_per_key > MAX_SAMPLES_LIMIT {
        p.push(
            &at.key("max_samples_per_key"),
            format!(
                "must be at most {MAX_SAMPLES_LIMIT} (got {}); each sample costs about \
                 {BYTES_PER_SAMPLE} bytes per partition or consumer",
                a.max_samples_per_key
            ),
        );
    }
}

/// The global thresholds and the per-group overrides (first match wins).
fn per_group(a: &raw::Analysis, at: &At, p: &mut Problems) -> Option<ThresholdResolver> {
    let before = p.len();
    let t = &a.thresholds;
    let global = thresholds(
        &at.key("thresholds"),
        a.window,
        t.error_time_lag,
        Some(t.stop_after),
        p,
    );
    let default = Thresholds {
        allowed_lag: t.allowed_lag,
        error_lag: t.error_lag,
        error_time_lag_secs: t.error_time_lag.map(|d| d.get().as_secs_f64()),
        stop_after_ms: millis(t.stop_after.get()),
    };
    let mut groups = Vec::with_capacity(a.groups.len());
    for (i, g) in a.groups.iter().enumerate() {
        let gat = at.key("groups").index(i);
        let re = group_pattern(p, &gat.key("pattern"), &g.pattern);
        thresholds(&gat, a.window, g.error_time_lag, g.stop_after, p);
        let resolved = Thresholds {
            allowed_lag: g.allowed_lag.unwrap_or(default.allowed_lag),
            error_lag: g.error_lag.or(default.error_lag),
            error_time_lag_secs: g
                .error_time_lag
                .map(|d| d.get().as_secs_f64())
                .or(default.error_time_lag_secs),
            stop_after_ms: g
                .stop_after
                .map_or(default.stop_after_ms, |d| millis(d.get())),
        };
        if let Some(re) = re {
            groups.push((re, resolved));
        }
    }
    global?;
    (p.len() == before).then(|| ThresholdResolver::new(default, groups))
}

/// The checks global and per-group thresholds share.
fn thresholds(
    at: &At,
    window: Seconds,
    error_time_lag: Option<Seconds>,
    stop_after: Option<Seconds>,
    p: &mut Problems,
) -> Option<()> {
    let before = p.len();
    if error_time_lag.is_some_and(|e| e.get().is_zero()) {
        p.push(
            &at.key("error_time_lag"),
            "must be greater than 0s; leave it unset for no time-lag threshold",
        );
    }
    if let Some(s) = stop_after.filter(|s| *s < window) {
        p.push(
            &at.key("stop_after"),
            format!("must be at least `window` ({window}), or STALL can never show (got {s})"),
        );
    }
    (p.len() == before).then_some(())
}
