//! Limits both sources put on reading the broker's timestamps of oldest
//! unconsumed messages (exact time lag, `analysis.exact_time_lag`). Those
//! reads are an extra the poll must never wait on for long: they are capped in
//! time, and when the broker refuses them (no read permission) or they time
//! out, they stop for a while, with one warning saying how to fix it. The time
//! lag then stays interpolated, with its bounds.

use std::time::{Duration, Instant};

use crate::model::SourceId;

/// The most one poll spends reading timestamps.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// After a refusal or a timeout, no reads for this long.
pub const BACKOFF: Duration = Duration::from_secs(600);

/// Whether reads are allowed now, and the warning when they stop.
#[derive(Debug, Default)]
pub struct Backoff {
    until: Option<Instant>,
}

impl Backoff {
    pub fn allows(&self, now: Instant) -> bool {
        self.until.is_none_or(|u| now >= u)
    }

    /// Reads failed in a way that will repeat (`why`): stop for [`BACKOFF`],
    /// warning once per stop.
    pub fn failed(&mut self, source: &SourceId, now: Instant, why: &str, fix: &str) {
        if self.allows(now) {
            tracing::warn!(
                source = %source,
                error = %why,
                "reading message timestamps for exact time lag failed; time lags stay interpolated (with their bounds) for the next {} minutes. {fix}, or set analysis.exact_time_lag.enabled: false",
                BACKOFF.as_secs() / 60
            );
        }
        self.until = Some(now + BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stops_reads_for_the_backoff_then_allows_them_again() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.allows(t0));
        b.failed(&SourceId::new("s"), t0, "denied", "grant read");
        assert!(!b.allows(t0 + BACKOFF - Duration::from_secs(1)));
        assert!(b.allows(t0 + BACKOFF));
    }
}
