//! Recommendation settings of one group, every key resolved: mode, replica
//! bounds, drain target, headroom, hysteresis, capacity learning and KEDA
//! options. Built from the `recommend:` section (and its per-group overrides,
//! first match wins) by the config's validation pass; defaults are the named
//! constants below.

use std::time::Duration;

use serde::Deserialize;

use super::keda::KedaOptions;
use crate::model::PerGroup;

/// How the recommendation is computed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// From rates, learned per-replica capacity and a drain target (default).
    #[default]
    RateAware,
    /// Exactly what KEDA's Kafka / NATS JetStream scaler and the HPA would run.
    Keda,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::RateAware => "rate_aware",
            Mode::Keda => "keda",
        }
    }
}

/// Advising zero replicas is a decision to take deliberately (min_replicas: 0).
pub const DEFAULT_MIN_REPLICAS: u32 = 1;
pub const DEFAULT_TARGET_DRAIN_TIME: Duration = Duration::from_secs(600);
/// One replica in five spare: absorbs rate noise and a rebalance pause.
pub const DEFAULT_HEADROOM: f64 = 0.2;
/// Twice the HPA's default 5 m scale-down stabilization window: lagwatch
/// advises, it does not act, so it may be slower to take capacity away.
pub const DEFAULT_SCALE_IN_AFTER: Duration = Duration::from_secs(600);
/// Kubernetes' --horizontal-pod-autoscaler-tolerance default.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// One default poll interval: caught up as far as a poll can tell.
pub const DEFAULT_SCALE_IN_MAX_TIME_LAG: Duration = Duration::from_secs(30);
/// Half the default analysis window: the window's consume rate is then at least
/// half saturated; the bias (if any) is low, towards more replicas.
pub const DEFAULT_LEARN_AFTER: Duration = Duration::from_secs(300);
/// One default poll interval of work queued on every partition.
pub const DEFAULT_MIN_BACKLOG: Duration = Duration::from_secs(30);

/// The settings of one group, every key resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub mode: Mode,
    /// Rate-aware floor. 0 allows "scale to zero" advice for idle groups.
    pub min_replicas: u32,
    /// Rate-aware ceiling. None: only the partition count bounds it.
    pub max_replicas: Option<u32>,
    /// The backlog should be gone within this long.
    pub target_drain_time: Duration,
    /// Spare capacity on top of what the rates need (0.2 = 20 %).
    pub headroom: f64,
    /// Scale-in is advised only after lower recommendations, with lag near zero
    /// and steady, for this long without a break.
    pub scale_in_after: Duration,
    /// Relative changes up to this are ignored (0.1: 10 %), as the HPA does.
    pub tolerance: f64,
    /// "Lag near zero" for scale-in: the oldest unconsumed message is at most
    /// this old.
    pub scale_in_max_time_lag: Duration,
    /// Capacity is learned only after the group has been saturated (every
    /// partition behind) for this long, so the window's rate is a saturated one.
    pub learn_after: Duration,
    /// A partition counts as behind when its backlog would take at least this
    /// long at its consume rate: its consumer never ran out of work.
    pub min_backlog: Duration,
    /// Per-replica capacity in msgs/s, when known from load tests; wins over
    /// the learned value.
    pub capacity_per_replica: Option<f64>,
    /// Current replicas when the broker cannot tell (JetStream pull consumers,
    /// push consumers with a deliver group).
    pub replicas: Option<u32>,
    pub keda: KedaOptions,
}

impl Default for Resolved {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            min_replicas: DEFAULT_MIN_REPLICAS,
            max_replicas: None,
            target_drain_time: DEFAULT_TARGET_DRAIN_TIME,
            headroom: DEFAULT_HEADROOM,
            scale_in_after: DEFAULT_SCALE_IN_AFTER,
            tolerance: DEFAULT_TOLERANCE,
            scale_in_max_time_lag: DEFAULT_SCALE_IN_MAX_TIME_LAG,
            learn_after: DEFAULT_LEARN_AFTER,
            min_backlog: DEFAULT_MIN_BACKLOG,
            capacity_per_replica: None,
            replicas: None,
            keda: KedaOptions::default(),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Resolved {
    pub fn target_drain_secs(&self) -> f64 {
        self.target_drain_time.as_secs_f64()
    }
    pub fn scale_in_after_ms(&self) -> i64 {
        ms(self.scale_in_after)
    }
    pub fn learn_after_ms(&self) -> i64 {
        ms(self.learn_after)
    }
    pub fn min_backlog_secs(&self) -> f64 {
        self.min_backlog.as_secs_f64()
    }
    pub fn scale_in_max_time_lag_secs(&self) -> f64 {
        self.scale_in_max_time_lag.as_secs_f64()
    }
}

/// The settings of each group (first matching pattern, else the section's).
pub type Resolver = PerGroup<Resolved>;
